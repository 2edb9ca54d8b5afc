//! The storage daemon (`nexus node start`): wires the store, the network, chain following,
//! replication, the proposer (if configured) and the HTTP API, and stops them cleanly.

mod chain;
mod custody;
mod duties;
mod fetch;
mod http;
mod keys;
mod propose;
mod rate;
mod retrieve;
mod serve;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use nexus_net::{Multiaddr, Network, NetworkConfig, NetworkEvent};
use nexus_storage::ledger::{Genesis, LedgerParams, SignedTransaction};
use nexus_storage::{BlockHash, Height, SigningKey, Store};
use tokio::sync::{mpsc, watch, Notify};

use crate::units::ByteSize;
pub(crate) use keys::{load_or_create_account_key, load_or_create_identity};

/// Deliberate misbehaviour, for tests of how honest nodes cope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Fault {
    /// Serve every chunk with one byte flipped.
    CorruptChunks,
    /// Delete every shard assigned to this node and never fetch them again.
    DropShards,
    /// Never serve the cells of a smallest unrecoverable corner of any block's payload.
    WithholdCorner,
    /// Like `withhold-corner`, but serve one cell of the corner (so it stays recoverable).
    WithholdCornerButOne,
    /// Serve every cell with the proof of its neighbour.
    WrongProofs,
    /// Start with an empty custody store (then behave honestly).
    DropCustody,
}

/// Options of `nexus node start`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct StartArgs {
    /// Directory for the store and the key files (created if missing).
    #[arg(long)]
    pub(crate) data_dir: PathBuf,
    /// libp2p listen address.
    #[arg(long, default_value = "/ip4/127.0.0.1/tcp/7000")]
    pub(crate) listen: Multiaddr,
    /// HTTP API address (keep it on localhost).
    #[arg(long, default_value = "127.0.0.1:7100")]
    pub(crate) api: SocketAddr,
    /// Peers to join through, as multiaddrs (`/ip4/…/tcp/…/p2p/…`, `/dns4/…`, `/dnsaddr/…`).
    #[arg(long, num_args = 1..)]
    pub(crate) bootstrap: Vec<Multiaddr>,
    /// Make this node the network's block proposer (creates the genesis on first start).
    #[arg(long)]
    pub(crate) proposer: bool,
    /// Ledger genesis (JSON: params and balances) for a proposer creating a new chain;
    /// by default only this node's account is funded.
    #[arg(long)]
    pub(crate) genesis_config: Option<PathBuf>,
    /// Most bytes of blob content this node keeps, e.g. `500GiB`.
    #[arg(long)]
    pub(crate) capacity: Option<ByteSize>,
    /// Accept only the genesis block with this hash (otherwise the first one seen is trusted).
    #[arg(long)]
    pub(crate) genesis_hash: Option<BlockHash>,
    /// How often the proposer cuts a block, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub(crate) block_interval_ms: u64,
    /// Cap on the bandwidth used to replicate blobs from peers, e.g. `50MiB` (per second).
    #[arg(long)]
    pub(crate) replication_bandwidth: Option<ByteSize>,
    /// Misbehave on purpose (tests only).
    #[arg(long, hide = true)]
    pub(crate) fault: Option<Fault>,
}

/// Balance of the proposer's own account in a default genesis.
const DEFAULT_FUNDS: u64 = 1_000_000_000_000;

/// Everything the daemon's tasks share.
pub(crate) struct Node {
    pub(crate) store: Store,
    pub(crate) net: Network,
    /// The node's ledger account; it signs blocks too when the node is the proposer.
    pub(crate) account: SigningKey,
    pub(crate) is_proposer: bool,
    /// Serialises this node's own transactions so their nonces stay in order.
    pub(crate) submit_lock: tokio::sync::Mutex<()>,
    pub(crate) genesis_pin: Option<BlockHash>,
    pub(crate) fault: Option<Fault>,
    /// Transactions waiting for the next block (proposer only).
    pub(crate) mempool: Mutex<Vec<SignedTransaction>>,
    /// The latest appended height; watched by uploads waiting to be anchored.
    pub(crate) new_block: watch::Sender<Option<Height>>,
    /// Wakes chain sync early.
    pub(crate) sync_now: Notify,
    /// Wakes replication early.
    pub(crate) replicate_now: Notify,
    pub(crate) bandwidth: Option<rate::RateLimit>,
    /// Chunks found corrupt on disk since start (each is discarded and fetched again).
    pub(crate) corrupt_chunks_found: AtomicU64,
    /// Bytes of verified chunk data fetched from peers since start.
    pub(crate) bytes_fetched: AtomicU64,
    /// Payloads this node encoded recently (as proposer), for serving cells.
    pub(crate) encodings: Arc<custody::Encodings>,
    /// Highest height a proposer-signed block was announced at (sync aims for it).
    pub(crate) announced: AtomicU64,
}

impl Node {
    /// Records that the chain grew and wakes whoever waits for it.
    pub(crate) fn chain_advanced(&self) {
        let tip = self.store.tip().map(|t| t.header.height);
        self.new_block.send_replace(tip);
        self.replicate_now.notify_one();
    }
}

/// Runs the daemon until SIGINT or SIGTERM.
pub(crate) async fn run(args: StartArgs) -> Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create data dir {}", args.data_dir.display()))?;
    let identity = load_or_create_identity(&args.data_dir)?;
    let account = load_or_create_account_key(&args.data_dir)?;
    let store_dir = args.data_dir.join("store");
    let store =
        tokio::task::spawn_blocking(move || Store::open(&store_dir, args.capacity.map(|c| c.0)))
            .await?
            .context("cannot open the store (is another node using this data dir?)")?;
    if args.fault == Some(Fault::DropCustody) {
        let held = store.stats()?.custody_cells;
        store.drop_all_cells()?;
        tracing::warn!(held, "fault drop-custody: custody store emptied");
    }
    if args.proposer {
        let genesis = match &args.genesis_config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                serde_json::from_str(&text)
                    .with_context(|| format!("{} is not a ledger genesis", path.display()))?
            }
            None => Genesis {
                params: LedgerParams::default(),
                balances: vec![(account.public(), DEFAULT_FUNDS)],
            },
        };
        chain::ensure_genesis(&store, &account, genesis)?;
    }
    if let (Some(pin), Some(genesis)) = (args.genesis_hash, store.block(Height(0))?) {
        if genesis.header.hash() != pin {
            bail!(
                "the data dir holds genesis {} but --genesis-hash is {pin}",
                genesis.header.hash()
            );
        }
    }
    let (net, events) = Network::start(NetworkConfig {
        keypair: identity,
        listen: vec![args.listen.clone()],
        bootstrap: args.bootstrap.clone(),
        request_timeout: Duration::from_secs(30),
        role: nexus_net::Role::Storage,
    })?;
    let listener = tokio::net::TcpListener::bind(args.api)
        .await
        .with_context(|| format!("cannot bind the HTTP API on {}", args.api))?;
    let node = Arc::new(Node {
        new_block: watch::Sender::new(store.tip().map(|t| t.header.height)),
        store,
        net,
        account,
        is_proposer: args.proposer,
        submit_lock: tokio::sync::Mutex::new(()),
        genesis_pin: args.genesis_hash,
        fault: args.fault,
        mempool: Mutex::new(Vec::new()),
        sync_now: Notify::new(),
        replicate_now: Notify::new(),
        bandwidth: args
            .replication_bandwidth
            .map(|b| rate::RateLimit::new(b.0)),
        corrupt_chunks_found: AtomicU64::new(0),
        bytes_fetched: AtomicU64::new(0),
        encodings: Arc::default(),
        announced: AtomicU64::new(0),
    });
    // Load the KZG trusted setup now, not inside the first block that carries data.
    tokio::task::spawn_blocking(|| {
        nexus_das::kzg::RowCommitter::get();
        nexus_das::kzg::CellVerifier::get();
    });
    tracing::info!(
        peer_id = %node.net.peer_id(),
        api = %args.api,
        proposer = node.is_proposer,
        account = %node.account.public(),
        "nexus node started"
    );
    let tasks = [
        tokio::spawn(dispatch(node.clone(), events)),
        tokio::spawn(chain::sync_loop(node.clone())),
        tokio::spawn(fetch::replication_loop(node.clone())),
        tokio::spawn(duties::challenge_loop(node.clone())),
        tokio::spawn(duties::repair_loop(node.clone())),
        tokio::spawn(custody::custody_loop(node.clone())),
        tokio::spawn(propose::propose_loop(
            node.clone(),
            Duration::from_millis(args.block_interval_ms.max(10)),
        )),
    ];
    let server =
        axum::serve(listener, http::router(node.clone())).with_graceful_shutdown(shutdown_signal());
    let result = server.await.context("HTTP server failed");
    tracing::info!("shutting down");
    for t in tasks {
        t.abort();
    }
    node.store.persist()?;
    result
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Routes network events to their handlers, each in its own task so the network never waits.
async fn dispatch(node: Arc<Node>, mut events: mpsc::Receiver<NetworkEvent>) {
    while let Some(event) = events.recv().await {
        let node = node.clone();
        match event {
            NetworkEvent::ChunkRequest { request, reply, .. } => {
                tokio::spawn(async move { reply.send(serve::chunk(&node, request).await) });
            }
            NetworkEvent::BlockRequest { request, reply, .. } => {
                tokio::spawn(async move { reply.send(serve::blocks(&node, request).await) });
            }
            NetworkEvent::CellsRequest { request, reply, .. } => {
                tokio::spawn(async move { reply.send(custody::serve(&node, request).await) });
            }
            NetworkEvent::Gossip { id, message } => {
                tokio::spawn(async move { chain::on_gossip(&node, id, message).await });
            }
            NetworkEvent::PeerConnected(_) => {
                node.sync_now.notify_one();
                node.replicate_now.notify_one();
            }
        }
    }
}
