//! `nexus bench consensus`: finality of real validator processes on loopback — commit
//! latency (proposal to commit, as each proposer sees it) and finalized blocks per second,
//! idle and under a steady upload load, and the das upload path — beside the floor the
//! same machine sets in the same run (an fsync of the consensus state, a BLS signature and
//! a verification per round, two rounds per commit).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use nexus_consensus::{
    BlockHash, ChainSpec, Committee, Epoch, QuorumCertificate, RecoveryState, Round, SafetyData,
    SigningKey, Validator, Vote, VoteData,
};
use nexus_storage::Store;

use super::replicated::write_random_file;
use crate::cli::{upload, Policy};
use crate::devnet::{Devnet, DevnetArgs};
use crate::units::ByteSize;
use nexus_api::client::NodeClient;
use nexus_api::stats::{summarize, Summary};
use nexus_api::types::{Receipt, Status, ValidatorView};

/// Options of `nexus bench consensus`.
#[derive(Debug, clap::Args)]
pub(crate) struct ConsensusArgs {
    /// Validator processes.
    #[arg(long, default_value_t = 4)]
    validators: u16,
    /// Seconds measured idle, and again under load.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Least time between blocks (0: as fast as consensus goes).
    #[arg(long, default_value_t = 0)]
    block_interval_ms: u64,
    /// Node i listens on BASE+i, its API on BASE+100+i.
    #[arg(long, default_value_t = 7400)]
    base_port: u16,
    /// Working directory (default: a temporary one).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// `das` blobs to put (one at a time) after the load phase; 0 skips the das figures.
    #[arg(long, default_value_t = 0)]
    das_puts: u32,
    /// Size of each das blob.
    #[arg(long, default_value = "6MiB")]
    das_size: ByteSize,
}

/// Median wall time of `runs` runs of `f`, in ms.
fn median_ms(runs: usize, mut f: impl FnMut()) -> f64 {
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[runs / 2]
}

/// What one round costs a validator on this machine, whatever the network.
struct Floor {
    persist_ms: f64,
    raw_fsync_ms: f64,
    sign_ms: f64,
    verify_ms: f64,
}

impl Floor {
    fn measure(dir: &Path) -> Result<Floor> {
        let store = Store::open(&dir.join("floor-store"), None)?;
        let keys: Vec<SigningKey> = (0..4u8).map(|i| SigningKey::from_seed(&[i; 32])).collect();
        let validators = keys.iter().map(|k| Validator::new(k, 1, "")).collect();
        let spec = ChainSpec::new("floor", Committee::new(Epoch(0), validators)?);
        let data = VoteData {
            epoch: Epoch(0),
            round: Round(7),
            block: BlockHash([7; 32]),
            commit: Some(BlockHash([6; 32])),
        };
        let vote = Vote::sign(&keys[0], &spec.tag(), data);
        let state = RecoveryState {
            safety: SafetyData {
                last_vote: Some(vote.clone()),
                ..SafetyData::default()
            },
            high_qc: QuorumCertificate::genesis(BlockHash([1; 32])),
            high_tc: None,
        };
        let persist_ms = median_ms(200, || {
            let _ = store.save_consensus_state(&state);
        });
        let raw = dir.join("floor-raw");
        let mut file = std::fs::File::create(&raw)?;
        let raw_fsync_ms = median_ms(200, || {
            use std::io::Write as _;
            let _ = file.write_all(&[7; 600]);
            let _ = file.sync_data();
        });
        let sign_ms = median_ms(200, || {
            std::hint::black_box(Vote::sign(&keys[1], &spec.tag(), data));
        });
        let ctx = nexus_consensus::Context::new(spec, BlockHash([1; 32]));
        let verify_ms = median_ms(200, || {
            let message = nexus_consensus::ConsensusMessage::Vote(Box::new(vote.clone()));
            std::hint::black_box(message.verify(&ctx).is_ok());
        });
        Ok(Floor {
            persist_ms,
            raw_fsync_ms,
            sign_ms,
            verify_ms,
        })
    }

    /// Two rounds, each a persist, a signature and the verification of a quorum's votes
    /// (`quorum - 1` others and the proposal), computed one after the other.
    fn commit_ms(&self, quorum: usize) -> f64 {
        2.0 * (self.persist_ms + self.sign_ms + quorum as f64 * self.verify_ms)
    }
}

/// Commit times and finalized heights over one window.
struct Window {
    commits: Option<Summary>,
    blocks_per_s: f64,
    blocks: u64,
}

async fn views(clients: &[NodeClient]) -> Result<Vec<ValidatorView>> {
    let mut out = Vec::new();
    for c in clients {
        out.push(c.get_json::<ValidatorView>("/v1/validator").await?);
    }
    Ok(out)
}

async fn height(client: &NodeClient) -> Result<u64> {
    let s: Status = client.get_json("/v1/status").await?;
    Ok(s.height.map_or(0, |h| h.0))
}

/// Measures `seconds` of finality on `clients`.
async fn window(clients: &[NodeClient], seconds: u64) -> Result<Window> {
    let before = views(clients).await?;
    let (h0, t0) = (height(&clients[0]).await?, Instant::now());
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let (h1, elapsed) = (height(&clients[0]).await?, t0.elapsed());
    let after = views(clients).await?;
    let mut samples = Vec::new();
    for (b, a) in before.iter().zip(&after) {
        let new = a.commits.total.saturating_sub(b.commits.total) as usize;
        let recent: Vec<f64> = a.commits.recent.iter().copied().collect();
        samples.extend_from_slice(&recent[recent.len().saturating_sub(new)..]);
    }
    Ok(Window {
        commits: summarize(samples),
        blocks_per_s: (h1 - h0) as f64 / elapsed.as_secs_f64(),
        blocks: h1 - h0,
    })
}

fn cell(s: Option<Summary>, f: impl Fn(&Summary) -> f64) -> String {
    s.map_or("-".into(), |s| format!("{:.1}", f(&s)))
}

/// Runs the benchmark and prints Markdown tables.
pub(crate) async fn run(args: ConsensusArgs) -> Result<()> {
    let tmp = tempfile::Builder::new().prefix("nexus-bench-").tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    let floor = Floor::measure(&dir)?;
    let n = usize::from(args.validators);
    let quorum = n * 2 / 3 + 1;

    eprintln!("starting {n} validators");
    let devnet = Devnet::launch(DevnetArgs {
        validators: args.validators,
        nodes: 0,
        data_dir: Some(dir.join("devnet")),
        base_port: args.base_port,
        capacity: None,
        block_interval_ms: args.block_interval_ms,
        compute: false,
    })
    .await?;
    let result = measure(&args, &devnet, &dir).await;
    devnet.stop().await?;
    let (idle, loaded, puts, das) = result?;

    out!(
        "### {n} validators, block interval {} ms, {} s per window\n",
        args.block_interval_ms,
        args.seconds
    );
    out!("| window | commit p50 (ms) | commit p99 (ms) | finalized blocks/s | blocks |");
    out!("|---|---|---|---|---|");
    for (name, w) in [("idle (empty blocks)", &idle), ("steady uploads", &loaded)] {
        out!(
            "| {name} | {} | {} | {:.1} | {} |",
            cell(w.commits, |s| s.p50),
            cell(w.commits, |s| s.p99),
            w.blocks_per_s,
            w.blocks
        );
    }
    out!(
        "\nUploads during the loaded window: {puts} puts of 4 KiB ({:.1}/s), each answered \
         once final.",
        puts as f64 / args.seconds as f64
    );
    out!(
        "\nFloor measured in this run: fsync of the consensus state {:.2} ms (raw file \
         write+fdatasync {:.2} ms), BLS sign {:.2} ms, verify {:.2} ms; two rounds with a \
         quorum of {quorum} = {:.1} ms. Idle commit p50 / floor = {}.",
        floor.persist_ms,
        floor.raw_fsync_ms,
        floor.sign_ms,
        floor.verify_ms,
        floor.commit_ms(quorum),
        idle.commits.map_or("-".into(), |s| format!(
            "{:.1}",
            s.p50 / floor.commit_ms(quorum)
        )),
    );
    if let Some(das) = das {
        out!("\n{das}");
    }
    Ok(())
}

type Measured = (Window, Window, u64, Option<String>);

async fn measure(args: &ConsensusArgs, devnet: &Devnet, dir: &Path) -> Result<Measured> {
    let clients: Vec<NodeClient> = devnet
        .nodes
        .iter()
        .map(|n| NodeClient::new(&n.api))
        .collect::<Result<_>>()?;
    // Warm up: every validator proposed and committed something.
    let start = Instant::now();
    while height(&clients[0]).await? < 20 {
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(60),
            "the validators do not finalize"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("measuring idle finality for {} s", args.seconds);
    let idle = window(&clients, args.seconds).await?;

    eprintln!(
        "measuring under a steady upload load for {} s",
        args.seconds
    );
    let stop = Arc::new(AtomicBool::new(false));
    let puts = Arc::new(AtomicU64::new(0));
    let mut loaders = Vec::new();
    for (i, client) in clients.iter().enumerate() {
        let file = dir.join(format!("load-{i}.bin"));
        let (client, stop, puts) = (client.clone(), stop.clone(), puts.clone());
        loaders.push(tokio::spawn(async move {
            let mut k = 0u64;
            while !stop.load(Ordering::Relaxed) {
                k += 1;
                if write_random_file(&file, 4096, i as u64 * 1_000_000 + k).is_err() {
                    break;
                }
                if upload(&client, &file, Policy::Replicated, Some(1), false)
                    .await
                    .is_ok()
                {
                    puts.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let done_before = puts.load(Ordering::Relaxed);
    let loaded = window(&clients, args.seconds).await?;
    let done = puts.load(Ordering::Relaxed) - done_before;
    stop.store(true, Ordering::Relaxed);
    for l in loaders {
        let _ = l.await;
    }

    let das = if args.das_puts > 0 {
        Some(das_figures(args, &clients, dir).await?)
    } else {
        None
    };
    Ok((idle, loaded, done, das))
}

/// Puts das blobs one at a time through validator 0 and splits each put's time into
/// encoding and the rest; compares how long proposals take to build with and without one.
async fn das_figures(args: &ConsensusArgs, clients: &[NodeClient], dir: &Path) -> Result<String> {
    let size = args.das_size.0;
    let mut totals = Vec::new();
    let mut encodes = Vec::new();
    for k in 0..args.das_puts {
        let file = dir.join(format!("das-{k}.bin"));
        write_random_file(&file, size, 7_000 + u64::from(k))?;
        let started = Instant::now();
        // A put the loaders left in flight may still take this account's next nonce: the
        // node then says to submit again, which a client does.
        let receipt: Receipt = match upload(&clients[0], &file, Policy::Das, Some(1), false).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("das put {k} refused ({e:#}); again");
                upload(&clients[0], &file, Policy::Das, Some(1), false)
                    .await
                    .with_context(|| format!("das put {k}"))?
            }
        };
        let total = started.elapsed().as_secs_f64() * 1000.0;
        let encode = receipt.encode_ms.unwrap_or(0) as f64;
        eprintln!("das put {k}: {total:.0} ms, of which encoding {encode:.0} ms");
        totals.push(total);
        encodes.push(encode);
    }
    let rest: Vec<f64> = totals.iter().zip(&encodes).map(|(t, e)| t - e).collect();
    let (mut plain, mut with_data) = (Vec::new(), Vec::new());
    for v in views(clients).await? {
        plain.extend(v.build_ms.map(|s| s.p50));
        with_data.extend(v.build_with_data_ms.map(|s| s.p50));
    }
    let (total, encode, rest) = (
        summarize(totals),
        summarize(encodes),
        summarize(rest.clone()),
    );
    let mut out = format!(
        "das uploads of {} through validator 0, one at a time ({} puts):\n\n",
        ByteSize(size),
        args.das_puts
    );
    out.push_str("| part of the put | p50 (ms) | p99 (ms) |\n|---|---|---|\n");
    for (name, s) in [
        ("whole put (upload, encode, register, final)", total),
        ("encoding (cells and proofs, on the uploader)", encode),
        ("everything but encoding", rest),
    ] {
        out.push_str(&format!(
            "| {name} | {} | {} |\n",
            cell(s, |s| s.p50),
            cell(s, |s| s.p99)
        ));
    }
    out.push_str(&format!(
        "\nProposal build time (median over validators of each one's p50): without data {} \
         ms, with a das blob {} ms.\n",
        cell(summarize(plain), |s| s.p50),
        cell(summarize(with_data), |s| s.p50),
    ));
    Ok(out)
}
