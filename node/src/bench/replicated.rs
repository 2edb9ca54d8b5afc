//! `nexus bench replicated`: the season-1 figures, measured on a real devnet of node
//! processes and side by side with `cp` of the same file on the same disk, in the same run.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nexus_storage::BlobId;
use rand::{RngCore, SeedableRng};

use crate::cli::{download, upload, Policy};
use crate::devnet::{wait_ready, Devnet, DevnetArgs};
use crate::units::ByteSize;
use nexus_api::client::NodeClient;
use nexus_api::types::BlobInfo;

/// Options of `nexus bench replicated`.
#[derive(Debug, clap::Args)]
pub(crate) struct ReplicatedArgs {
    /// Size of the main blob.
    #[arg(long, default_value = "1GiB")]
    size: ByteSize,
    /// Working directory (default: a temporary directory, removed afterwards).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// First port of the bench devnet.
    #[arg(long, default_value_t = 7300)]
    base_port: u16,
}

pub(super) fn write_random_file(path: &Path, size: u64, seed: u64) -> Result<()> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut buf = vec![0u8; 4 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        rng.fill_bytes(&mut buf[..n]);
        f.write_all(&buf[..n])?;
        left -= n as u64;
    }
    f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(())
}

/// Peak resident set size (VmHWM) of a process, in bytes.
fn peak_rss(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .context("no VmHWM line")?;
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .context("malformed VmHWM")?
        .parse()?;
    Ok(kib * 1024)
}

/// Times `cp src dst` followed by `sync dst`, so both sides end with data on disk.
fn time_cp(src: &Path, dst: &Path) -> Result<Duration> {
    let start = Instant::now();
    let ok = std::process::Command::new("cp")
        .arg(src)
        .arg(dst)
        .status()?
        .success()
        && std::process::Command::new("sync")
            .arg(dst)
            .status()?
            .success();
    if !ok {
        bail!("cp failed");
    }
    Ok(start.elapsed())
}

async fn wait_complete(api: &str, ids: &[BlobId], limit: Duration) -> Result<Duration> {
    let client = NodeClient::new(api)?;
    let start = Instant::now();
    loop {
        let mut done = true;
        for id in ids {
            let info: Result<BlobInfo> = client.get_json(&format!("/v1/blobs/{id}/info")).await;
            done &= info.is_ok_and(|i| i.complete);
        }
        if done {
            return Ok(start.elapsed());
        }
        if start.elapsed() > limit {
            bail!(
                "{api} did not replicate {} blobs within {limit:?}",
                ids.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn mbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e6
}

/// Runs the benchmark and prints a Markdown report.
pub(crate) async fn run(args: ReplicatedArgs) -> Result<()> {
    let tmp = match &args.dir {
        Some(_) => None,
        None => Some(tempfile::Builder::new().prefix("nexus-bench-").tempdir()?),
    };
    let dir = args.dir.clone().unwrap_or_else(|| {
        tmp.as_ref()
            .map(|t| t.path().to_path_buf())
            .unwrap_or_default()
    });
    std::fs::create_dir_all(&dir)?;
    let size = args.size.0;
    let small = (size / 4).max(1);
    eprintln!(
        "writing {} and {} of random data in {}",
        ByteSize(size),
        ByteSize(small),
        dir.display()
    );
    let (big_file, small_file) = (dir.join("input.bin"), dir.join("input-small.bin"));
    write_random_file(&big_file, size, 1)?;
    write_random_file(&small_file, small, 2)?;

    // `cp` timings swing with the page cache and writeback: take the median of three.
    let mut cps = Vec::new();
    for _ in 0..3 {
        cps.push(time_cp(&big_file, &dir.join("cp-copy.bin"))?);
        std::fs::remove_file(dir.join("cp-copy.bin"))?;
    }
    cps.sort();
    let cp = cps[1];

    eprintln!("starting a 3-node devnet");
    let mut devnet = Devnet::launch(DevnetArgs {
        validators: 1,
        nodes: 2,
        data_dir: Some(dir.join("devnet")),
        base_port: args.base_port,
        capacity: None,
        block_interval_ms: 1000,
        compute: false,
    })
    .await?;
    let result = measure(&mut devnet, &big_file, &small_file, size, small, cp, &dir).await;
    devnet.stop().await?;
    let report = result?;
    out!("{report}");
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn measure(
    devnet: &mut Devnet,
    big_file: &Path,
    small_file: &Path,
    size: u64,
    small: u64,
    cp: Duration,
    dir: &Path,
) -> Result<String> {
    let node0 = NodeClient::new(&devnet.nodes[0].api)?;
    let pid0 = devnet.nodes[0]
        .child
        .id()
        .context("node 0 is not running")?;

    eprintln!("put {} (warm-up, for the RSS comparison)", ByteSize(small));
    let small_receipt = upload(&node0, small_file, Policy::Replicated, None, false).await?;
    let rss_small = peak_rss(pid0)?;
    // Let the other nodes finish replicating it, so the timed put runs alone.
    for node in &devnet.nodes[1..] {
        wait_complete(
            &node.api,
            &[small_receipt.blob_id],
            Duration::from_secs(600),
        )
        .await?;
    }

    eprintln!("put {}", ByteSize(size));
    let start = Instant::now();
    let receipt = upload(&node0, big_file, Policy::Replicated, None, false).await?;
    let put = start.elapsed();
    let rss_big = peak_rss(pid0)?;

    let ids = [small_receipt.blob_id, receipt.blob_id];
    let replicate = wait_complete(&devnet.nodes[2].api, &ids, Duration::from_secs(1800)).await?;

    eprintln!("get {} from node 2", ByteSize(size));
    let node2 = NodeClient::new(&devnet.nodes[2].api)?;
    let out = dir.join("get-copy.bin");
    let start = Instant::now();
    download(&node2, &receipt.blob_id, &out).await?;
    let get = start.elapsed();
    std::fs::remove_file(&out)?;

    eprintln!("starting a fresh node 3 and timing its catch-up");
    let start = Instant::now();
    let fresh = devnet.spawn(3).await?;
    let fresh_api = fresh.api.clone();
    devnet.nodes.push(fresh);
    wait_ready(&fresh_api, Duration::from_secs(60)).await?;
    wait_complete(&fresh_api, &ids, Duration::from_secs(1800)).await?;
    let catch_up_total = start.elapsed();

    // Peak RSS must not follow the blob size: put a blob twice as large and look again.
    let double = dir.join("input-double.bin");
    write_random_file(&double, 2 * size, 3)?;
    eprintln!("put {} (RSS check)", ByteSize(2 * size));
    upload(&node0, &double, Policy::Replicated, None, false).await?;
    let rss_double = peak_rss(pid0)?;
    std::fs::remove_file(&double)?;

    let total = size + small;
    Ok(format!(
        "| figure | value |\n|---|---|\n\
         | cp + sync of {sz} (median of 3) | {cp:.2?} ({cpm:.0} MB/s) |\n\
         | put {sz} to node 0 (stored, fsynced, anchored) | {put:.2?} ({putm:.0} MB/s) |\n\
         | put / cp throughput ratio | {pr:.2} |\n\
         | replication to node 2, from the end of the put | {rep:.2?} |\n\
         | get {sz} from node 2 (streamed, verified, fsynced) | {get:.2?} ({getm:.0} MB/s) |\n\
         | get / cp throughput ratio | {gr:.2} |\n\
         | fresh node catch-up of {tot} (start to all blobs whole) | {cu:.2?} ({cum:.0} MB/s) |\n\
         | node 0 peak RSS after putting {ssz} | {r1} |\n\
         | node 0 peak RSS after also putting {sz} | {r2} |\n\
         | node 0 peak RSS after also putting {dsz} | {r3} |\n",
        sz = ByteSize(size),
        ssz = ByteSize(small),
        tot = ByteSize(total),
        cpm = mbps(size, cp),
        putm = mbps(size, put),
        pr = cp.as_secs_f64() / put.as_secs_f64(),
        rep = replicate,
        getm = mbps(size, get),
        gr = cp.as_secs_f64() / get.as_secs_f64(),
        cu = catch_up_total,
        cum = mbps(total, catch_up_total),
        r1 = ByteSize(rss_small),
        r2 = ByteSize(rss_big),
        r3 = ByteSize(rss_double),
        dsz = ByteSize(2 * size),
    ))
}
