//! `nexus bench spam`: a devnet of validators flooded over gossip with signed transfers —
//! from a key that holds nothing, then from a funded one — beside the same devnet idle in
//! the same run: finalized blocks per second and the time a paid transfer (submitted by
//! node 0) takes to be final, per window.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use nexus_consensus::{ChainTag, SigningKey};
use nexus_net::codec::Encoded;
use nexus_net::protocol::gossip::{GossipMessage, TxSubmission};
use nexus_net::{Keypair, Network, NetworkConfig, Role};
use nexus_storage::ledger::{SignedTransaction, Transaction, TxKind};

use crate::devnet::{Devnet, DevnetArgs};
use nexus_api::client::NodeClient;
use nexus_api::types::{ChainView, LedgerView, Status, TxReceipt};

/// Options of `nexus bench spam`.
#[derive(Debug, clap::Args)]
pub(crate) struct SpamArgs {
    /// Validator processes.
    #[arg(long, default_value_t = 4)]
    validators: u16,
    /// Transactions in each flood.
    #[arg(long, default_value_t = 20_000)]
    transactions: u64,
    /// Seconds each window lasts (the flood is spread over it).
    #[arg(long, default_value_t = 13)]
    seconds: u64,
    /// Node i listens on BASE+i, its API on BASE+100+i.
    #[arg(long, default_value_t = 7600)]
    base_port: u16,
    /// Working directory (default: a temporary one).
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// What one window measured.
struct Window {
    blocks_per_s: f64,
    transfers: Vec<f64>,
    published: u64,
}

/// Runs the benchmark and prints a Markdown table.
pub(crate) async fn run(args: SpamArgs) -> Result<()> {
    let tmp = tempfile::Builder::new().prefix("nexus-bench-").tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    eprintln!("starting {} validators", args.validators);
    let devnet = Devnet::launch(DevnetArgs {
        validators: args.validators,
        nodes: 0,
        data_dir: Some(dir.join("devnet")),
        base_port: args.base_port,
        capacity: None,
        block_interval_ms: 0,
        compute: false,
    })
    .await?;
    let result = measure(&args, &devnet).await;
    devnet.stop().await?;
    let windows = result?;
    out!(
        "### {} validators; floods of {} transfers over {} s, published over gossip\n",
        args.validators,
        args.transactions,
        args.seconds
    );
    out!(
        "| window | published | finalized blocks/s | paid transfer p50 (s) | max (s) | transfers |"
    );
    out!("|---|---|---|---|---|---|");
    for (name, w) in &windows {
        let mut t = w.transfers.clone();
        t.sort_by(f64::total_cmp);
        let p50 = t.get(t.len() / 2).map_or("-".into(), |v| format!("{v:.2}"));
        let max = t.last().map_or("-".into(), |v| format!("{v:.2}"));
        out!(
            "| {name} | {} | {:.1} | {p50} | {max} | {} |",
            w.published,
            w.blocks_per_s,
            t.len()
        );
    }
    Ok(())
}

async fn measure(args: &SpamArgs, devnet: &Devnet) -> Result<Vec<(&'static str, Window)>> {
    let node0 = NodeClient::new(&devnet.nodes[0].api)?;
    let chain: ChainView = node0.get_json("/v1/chain").await?;
    let ledger: LedgerView = node0.get_json("/v1/ledger").await?;
    let tag = chain.spec.tag();
    let fee = ledger.params.min_tx_fee;
    // A peer of the validators that only publishes.
    let (net, mut events) = Network::start(NetworkConfig {
        keypair: Keypair::generate_ed25519(),
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse()?],
        bootstrap: vec![devnet.nodes[0].p2p.parse()?],
        request_timeout: Duration::from_secs(10),
        role: Role::Storage,
    })?;
    // Its events are not used, but must be drained: a full channel stalls the swarm.
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    tokio::time::sleep(Duration::from_secs(3)).await;

    let unfunded = SigningKey::from_seed(&[0xee; 32]);
    let funded = SigningKey::from_seed(&[0xef; 32]);
    eprintln!("signing {} transfers twice", args.transactions);
    let empty = flood(&unfunded, tag, fee, args.transactions);
    let paid = flood(&funded, tag, fee, args.transactions);
    // Fund the second spammer from node 0's account.
    transfer(&node0, &funded, 1_000_000_000).await?;

    let mut windows = Vec::new();
    eprintln!("idle window");
    windows.push(("idle", window(&node0, &net, &[], args.seconds).await?));
    eprintln!("flood from an unfunded key");
    windows.push((
        "flood, unfunded key",
        window(&node0, &net, &empty, args.seconds).await?,
    ));
    eprintln!("flood from a funded key");
    windows.push((
        "flood, funded key",
        window(&node0, &net, &paid, args.seconds).await?,
    ));
    Ok(windows)
}

/// `count` transfers of 1 from `key`, nonces 0 up, signed for `tag`.
fn flood(key: &SigningKey, tag: ChainTag, fee: u64, count: u64) -> Vec<SignedTransaction> {
    let to = SigningKey::from_seed(&[0x5a; 32]).public();
    (0..count)
        .map(|nonce| {
            Transaction {
                chain: tag,
                sender: key.public(),
                nonce,
                fee,
                kind: TxKind::Transfer { to, amount: 1 },
            }
            .sign(key)
        })
        .collect()
}

/// A transfer by node 0, answered once final.
async fn transfer(node0: &NodeClient, to: &SigningKey, amount: u64) -> Result<()> {
    let url = node0.url("/v1/transactions")?;
    let kind = TxKind::Transfer {
        to: to.public(),
        amount,
    };
    let _: TxReceipt = node0
        .send(|http| http.post(url.clone()).json(&kind))
        .await?
        .json()
        .await
        .context("malformed transaction receipt")?;
    Ok(())
}

/// `seconds` during which `txs` are published evenly and node 0 makes paid transfers one
/// after the other.
async fn window(
    node0: &NodeClient,
    net: &Network,
    txs: &[SignedTransaction],
    seconds: u64,
) -> Result<Window> {
    let height = |s: Status| s.height.map_or(0, |h| h.0);
    let h0 = height(node0.get_json("/v1/status").await?);
    let started = Instant::now();
    let published = Arc::new(AtomicU64::new(0));
    let spam = {
        let (net, txs, published) = (net.clone(), txs.to_vec(), published.clone());
        let gap = Duration::from_secs(seconds).as_secs_f64() / txs.len().max(1) as f64;
        tokio::spawn(async move {
            for (i, tx) in txs.iter().enumerate() {
                let due = started + Duration::from_secs_f64(gap * i as f64);
                tokio::time::sleep_until(due.into()).await;
                let message = GossipMessage::Transaction(Box::new(TxSubmission {
                    tx: Encoded::of(tx),
                    attempt: 0,
                }));
                if net.publish(message).await.is_ok() {
                    published.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    let recipient = SigningKey::from_seed(&[0x77; 32]);
    let mut transfers = Vec::new();
    while started.elapsed() < Duration::from_secs(seconds) {
        let t = Instant::now();
        transfer(node0, &recipient, 1).await?;
        transfers.push(t.elapsed().as_secs_f64());
    }
    spam.await?;
    let elapsed = started.elapsed().as_secs_f64();
    let h1 = height(node0.get_json("/v1/status").await?);
    Ok(Window {
        blocks_per_s: (h1 - h0) as f64 / elapsed,
        transfers,
        published: published.load(Ordering::Relaxed),
    })
}
