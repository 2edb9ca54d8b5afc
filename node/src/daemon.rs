//! The storage daemon (`nexus node start`): wires the store, the network, chain following,
//! replication, custody, the consensus task (on validators) and the HTTP API, and stops
//! them cleanly.

mod availability;
mod builder;
mod chain;
mod compute;
mod consensus;
mod custody;
mod duties;
mod fetch;
mod health;
mod http;
mod keys;
mod pool;
mod prefetch;
mod priority;
mod rate;
pub(crate) mod repair;
mod retrieve;
mod serve;
mod staging;
mod submit;
mod timings;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};

use nexus_consensus::{Context, EngineStatus, PacemakerConfig, PublicKey};
use nexus_net::protocol::gossip::GossipMessage;
use nexus_net::{Multiaddr, Network, NetworkConfig, NetworkEvent, Validation};
use nexus_storage::ledger::{Genesis, LedgerParams, LedgerState, SignedTransaction};
use nexus_storage::mempool::{Mempool, PoolLimits};
use nexus_storage::{BlockHash, BlockTree, ChainGenesis, Header, Height, SigningKey, Store};
use tokio::sync::{mpsc, watch, Notify};

use crate::units::ByteSize;
pub(crate) use keys::{
    load_or_create_account_key, load_or_create_identity, load_or_create_validator_key,
};

/// Deliberate misbehaviour, for tests of how honest nodes cope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Fault {
    /// Serve every chunk with one byte flipped.
    CorruptChunks,
    /// Delete every shard assigned to this node and never fetch them again.
    DropShards,
    /// Once a block is final, never serve the cells of a smallest unrecoverable corner of
    /// its payload (on the uploader of a das blob: its data goes missing after validators
    /// sampled it).
    WithholdCorner,
    /// Like `withhold-corner`, but serve one cell of the corner (so it stays recoverable).
    WithholdCornerButOne,
    /// Serve every cell with the proof of its neighbour.
    WrongProofs,
    /// Start with an empty custody store (then behave honestly).
    DropCustody,
    /// Fetch custody cells only once their block has been final for a while (not when the
    /// registration of a das blob arrives), so that custody depends on whoever serves them
    /// after finality — every node has the final block by then, so a node withholding
    /// cells of final blocks does withhold them.
    LateCustody,
    /// Keep its own transactions to itself and serve no cells: as a validator, it proposes
    /// the das blobs put through it, whose data only it holds (so they must never become
    /// final).
    WithholdProposals,
    /// As a validator, exit with status 75 (as on a full disk) at the first commit made 3 s
    /// or more after start, after consensus committed the blocks and before the store
    /// appended them.
    ExitBeforeAppend,
}

/// Options of `nexus node start`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct StartArgs {
    /// A TOML file of settings, one key per flag of this command (`data-dir = "/var/lib/
    /// nexus"`, `validator = true`, `bootstrap = ["/dns4/…"]`); flags given on the command
    /// line win over the file's.
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
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
    /// Take part in consensus with the validator key of the data dir (`validator.key`),
    /// which must be in the genesis committee. A validator without `--genesis-config` on
    /// an empty data dir starts a chain of its own, with itself as the only validator and
    /// only its account funded.
    #[arg(long)]
    pub(crate) validator: bool,
    /// The chain's genesis (JSON: chain spec with the committee, time, ledger params and
    /// balances). Every node given the same file builds the same genesis block; without
    /// it, a node takes the genesis its peers serve.
    #[arg(long)]
    pub(crate) genesis_config: Option<PathBuf>,
    /// Most bytes of blob content this node keeps, e.g. `500GiB`.
    #[arg(long)]
    pub(crate) capacity: Option<ByteSize>,
    /// Accept only the genesis block with this hash (otherwise the first one seen is trusted).
    #[arg(long)]
    pub(crate) genesis_hash: Option<BlockHash>,
    /// Least time between a block and its child, in milliseconds (0: as fast as
    /// consensus goes; empty blocks still count epochs and deadlines).
    #[arg(long, default_value_t = 1000)]
    pub(crate) block_interval_ms: u64,
    /// How long a consensus round may last before validators time it out, in
    /// milliseconds (grows 1.5x per failed round); at least twice the block interval.
    #[arg(long, default_value_t = 2000)]
    pub(crate) round_timeout_ms: u64,
    /// How long an upload (or transaction) waits for a final block to include it before
    /// the node answers that it is not final, in seconds.
    #[arg(long, default_value_t = 60)]
    pub(crate) finality_deadline_secs: u64,
    /// Cap on the bandwidth used to replicate blobs from peers, e.g. `50MiB` (per second).
    #[arg(long)]
    pub(crate) replication_bandwidth: Option<ByteSize>,
    /// Offer this node's CPU to prove segments of compute jobs (a delegator).
    #[arg(long)]
    pub(crate) delegator: bool,
    /// Drive compute jobs and fold their proofs (a compute orchestrator).
    #[arg(long)]
    pub(crate) orchestrator: bool,
    /// Most proofs made at once (each takes up to ~7 GB of RAM).
    #[arg(long, default_value_t = 1)]
    pub(crate) max_parallel_proofs: usize,
    /// Memory proving may use, e.g. `14GiB`: at most one proof per 7 GiB of it.
    #[arg(long)]
    pub(crate) prover_memory: Option<ByteSize>,
    /// Where the zkVM's keys are cached (generated there the first time, ~30 s).
    #[arg(long, env = "NEXUS_ZKVM_KEYS")]
    pub(crate) zkvm_keys: Option<PathBuf>,
    /// Misbehave on purpose (tests only; may be repeated).
    #[arg(long, hide = true)]
    pub(crate) fault: Vec<Fault>,
}

/// Balance of a solo validator's own account in its default genesis.
const DEFAULT_FUNDS: u64 = 1_000_000_000_000;

/// Everything the daemon's tasks share.
pub(crate) struct Node {
    pub(crate) store: Store,
    pub(crate) net: Network,
    /// The node's ledger account.
    pub(crate) account: SigningKey,
    /// This node's validator key, if it takes part in consensus.
    pub(crate) validator: Option<PublicKey>,
    /// How long this node's own transactions wait to be final.
    pub(crate) finality_deadline: Duration,
    /// This node's own transactions not yet seen final, in nonce order: the next one
    /// takes the nonce after them, so concurrent submissions never collide.
    pub(crate) own_txs: Mutex<Vec<SignedTransaction>>,
    pub(crate) genesis_pin: Option<BlockHash>,
    pub(crate) faults: Vec<Fault>,
    /// Transactions waiting for a block (validators only), admitted by the ledger's rules.
    pub(crate) mempool: Mutex<Mempool>,
    /// The latest final height; watched by uploads waiting to be anchored.
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
    /// Bytes of blob content served since start (to peers and API clients).
    pub(crate) bytes_served: AtomicU64,
    /// Uploads being received now.
    pub(crate) uploads_in_flight: AtomicU64,
    /// Resumable uploads open.
    pub(crate) upload_sessions: http::uploads::UploadSessions,
    /// The upload budget, shared fairly between client addresses.
    pub(crate) write_slots: Arc<nexus_api::server::slots::WriteSlots>,
    /// Registered blobs of which peers served only copies that fail verification, until
    /// this node holds them whole (a problem of its health).
    pub(crate) unverifiable: Mutex<std::collections::BTreeSet<nexus_storage::BlobId>>,
    /// Grids this node encoded (its das uploads) or rebuilt lately, for serving cells.
    pub(crate) encodings: Arc<custody::Encodings>,
    /// What this node's sampling found about das grids.
    pub(crate) availability: availability::Availability,
    /// Custody cells of das blobs fetched before their block is final.
    pub(crate) staged: prefetch::Staged,
    /// Highest final height announced with a valid proof (sync aims for it).
    pub(crate) announced: AtomicU64,
    /// The chain's spec and genesis, once the genesis block is known.
    context: OnceLock<Context>,
    /// Validated blocks not final yet, over the final tip (validators only).
    tree: Mutex<Option<BlockTree>>,
    /// The consensus engine's last snapshot (validators only).
    pub(crate) engine_status: Mutex<Option<EngineStatus>>,
    /// Build and commit times of this validator's blocks.
    pub(crate) timings: Mutex<timings::Timings>,
    /// Where consensus gossip goes (validators only).
    consensus: Option<mpsc::Sender<consensus::ConsensusEvent>>,
    /// Verifiable compute: the zkVM, prepared jobs, proving slots, driven jobs.
    pub(crate) compute: compute::Compute,
}

impl Node {
    /// Records that the chain grew and wakes whoever waits for it.
    pub(crate) fn chain_advanced(&self) {
        let tip = self.store.tip().map(|t| t.header.height);
        self.new_block.send_replace(tip);
        self.replicate_now.notify_one();
    }

    /// Whether this node was started to misbehave with `fault` (tests only).
    pub(crate) fn has_fault(&self, fault: Fault) -> bool {
        self.faults.contains(&fault)
    }

    /// Whether this node takes part in consensus.
    pub(crate) fn is_validator(&self) -> bool {
        self.validator.is_some()
    }

    /// The chain's verification context (spec, committee, genesis), once the genesis block
    /// is stored.
    pub(crate) fn context(&self) -> Option<Context> {
        if let Some(ctx) = self.context.get() {
            return Some(ctx.clone());
        }
        let genesis = self.store.block(Height(0)).ok().flatten()?;
        let chain = genesis.genesis.as_ref()?;
        let ctx = chain.context(genesis.header.hash());
        Some(self.context.get_or_init(|| ctx).clone())
    }

    fn with_tree<T>(&self, f: impl FnOnce(&mut BlockTree) -> T) -> Option<T> {
        if !self.is_validator() {
            return None;
        }
        let mut tree = self.tree.lock().unwrap_or_else(|p| p.into_inner());
        if tree.is_none() {
            let tip = self.store.tip()?;
            *tree = Some(BlockTree::new(tip.header, tip.ledger));
        }
        tree.as_mut().map(f)
    }

    /// The header of block `hash` and the ledger after it, if it is the final tip or a
    /// validated pending block.
    pub(crate) fn tree_state(&self, hash: &BlockHash) -> Option<(Header, Arc<LedgerState>)> {
        self.with_tree(|t| t.state(hash)).flatten()
    }

    /// Whether `hash` is the final tip or a validated pending block.
    pub(crate) fn tree_contains(&self, hash: &BlockHash) -> bool {
        self.with_tree(|t| t.contains(hash)).unwrap_or(false)
    }

    /// A validated block not final yet.
    pub(crate) fn tree_block(&self, hash: &BlockHash) -> Option<nexus_storage::Block> {
        self.with_tree(|t| t.block(hash).cloned()).flatten()
    }

    /// The height of the last block this validator committed (its store may lag a little).
    pub(crate) fn tree_root_height(&self) -> Option<Height> {
        if !self.is_validator() {
            return None;
        }
        let tree = self.tree.lock().unwrap_or_else(|p| p.into_inner());
        tree.as_ref().map(|t| t.root().height)
    }

    /// The highest validated block's height and the number of blocks pending.
    pub(crate) fn tree_summary(&self) -> Option<(Height, usize)> {
        self.with_tree(|t| (t.highest(), t.len()))
    }

    /// Keeps a validated block.
    pub(crate) fn tree_insert(
        &self,
        step: nexus_storage::Transition,
    ) -> Result<(), nexus_storage::chain::TreeError> {
        self.with_tree(|t| t.insert(step)).unwrap_or(Ok(()))
    }

    /// The pending blocks up to `hash`, oldest first.
    pub(crate) fn tree_path(
        &self,
        hash: &BlockHash,
    ) -> Option<Vec<Arc<nexus_storage::Transition>>> {
        self.with_tree(|t| t.path_to(hash).ok()).flatten()
    }

    /// Moves the tree's root to a block that became final (synced, or committed here)
    /// and forgets on disk the pending blocks dropped, but for `unappended`: the final
    /// blocks the store has not appended yet, which stay on disk until it has (so that a
    /// crash between a commit and its append loses nothing: the restarted node appends
    /// them from there). The others can never be final.
    pub(crate) fn advance_tree(
        &self,
        header: &Header,
        ledger: &LedgerState,
        unappended: &[BlockHash],
    ) {
        let dropped: Vec<BlockHash> = self
            .with_tree(|t| t.advance_root(header.clone(), Arc::new(ledger.clone())))
            .unwrap_or_default()
            .into_iter()
            .filter(|h| !unappended.contains(h))
            .collect();
        if let Err(e) = self.store.forget_pending(&dropped) {
            tracing::warn!("cannot forget pending blocks: {e}");
        }
    }
}

/// Runs the daemon until SIGINT or SIGTERM.
pub(crate) async fn run(args: StartArgs) -> Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create data dir {}", args.data_dir.display()))?;
    let identity = load_or_create_identity(&args.data_dir)?;
    let account = load_or_create_account_key(&args.data_dir)?;
    let store_dir = args.data_dir.join("store");
    let capacity = args.capacity.map(|c| c.0);
    let opened = {
        let store_dir = store_dir.clone();
        tokio::task::spawn_blocking(move || Store::open(&store_dir, capacity)).await?
    };
    let store = match opened {
        Ok(store) => store,
        Err(e) if e.is_locked() => bail!(
            "cannot open the store in {}: another running node uses this data dir",
            store_dir.display()
        ),
        Err(e) if e.is_corruption() => bail!(
            "the store in {} is corrupt: {e}. Stop here and run `nexus node repair              --data-dir {}`: it sets the damaged store aside and starts an empty one; the              chain and every registered blob then come back from peers",
            store_dir.display(),
            args.data_dir.display()
        ),
        Err(e) => bail!("cannot open the store in {}: {e}", store_dir.display()),
    };
    if args.fault.contains(&Fault::DropCustody) {
        let held = store.stats()?.custody_cells;
        store.drop_all_cells()?;
        tracing::warn!(held, "fault drop-custody: custody store emptied");
    }
    let validator_key = if args.validator {
        Some(load_or_create_validator_key(&args.data_dir)?)
    } else {
        None
    };
    let genesis = match &args.genesis_config {
        Some(path) => Some(read_genesis(path)?),
        None => match &validator_key {
            // A validator with no chain and no genesis file starts a chain of its own.
            Some(key) if store.tip().is_none() => Some(ChainGenesis::solo(
                &format!("nexus-solo-{}", &key.public().to_string()[..12]),
                key,
                &args.listen.to_string(),
                Genesis {
                    params: LedgerParams::default(),
                    balances: vec![(account.public(), DEFAULT_FUNDS)],
                },
                crate::units::now_ms(),
            )?),
            _ => None,
        },
    };
    if let Some(genesis) = genesis {
        if let Some(key) = &validator_key {
            if genesis.spec.committee.index_of(&key.public()).is_none() {
                bail!(
                    "this node's validator key {} is not in the genesis committee; start it \
                     without --validator, or add the key (shown by `nexus keys`) to the genesis",
                    key.public()
                );
            }
        }
        chain::ensure_genesis(&store, genesis)?;
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
        role: if validator_key.is_some() {
            nexus_net::Role::Validator
        } else {
            nexus_net::Role::Storage
        },
    })?;
    let listener = tokio::net::TcpListener::bind(args.api)
        .await
        .with_context(|| format!("cannot bind the HTTP API on {}", args.api))?;
    let (consensus_tx, consensus_rx) = mpsc::channel(1024);
    let node = Arc::new(Node {
        new_block: watch::Sender::new(store.tip().map(|t| t.header.height)),
        store,
        net,
        account,
        validator: validator_key.as_ref().map(SigningKey::public),
        finality_deadline: Duration::from_secs(args.finality_deadline_secs.max(1)),
        own_txs: Mutex::new(Vec::new()),
        genesis_pin: args.genesis_hash,
        faults: args.fault.clone(),
        mempool: Mutex::new(Mempool::new(PoolLimits::default())),
        sync_now: Notify::new(),
        replicate_now: Notify::new(),
        bandwidth: args
            .replication_bandwidth
            .map(|b| rate::RateLimit::new(b.0)),
        corrupt_chunks_found: AtomicU64::new(0),
        bytes_fetched: AtomicU64::new(0),
        bytes_served: AtomicU64::new(0),
        uploads_in_flight: AtomicU64::new(0),
        upload_sessions: Default::default(),
        write_slots: Default::default(),
        unverifiable: Default::default(),
        encodings: Arc::default(),
        availability: availability::Availability::default(),
        staged: prefetch::Staged::default(),
        announced: AtomicU64::new(0),
        context: OnceLock::new(),
        tree: Mutex::new(None),
        engine_status: Mutex::new(None),
        timings: Mutex::new(timings::Timings::default()),
        consensus: validator_key.as_ref().map(|_| consensus_tx),
        compute: compute::Compute::new(compute::ComputeConfig {
            delegator: args.delegator,
            orchestrator: args.orchestrator,
            parallel: match args.prover_memory {
                Some(memory) => args
                    .max_parallel_proofs
                    .min((memory.0 / compute::PROOF_MEMORY).max(1) as usize),
                None => args.max_parallel_proofs,
            },
            key_dir: args
                .zkvm_keys
                .clone()
                .unwrap_or_else(crate::cli::default_key_dir),
            journal_dir: args.data_dir.join("compute-journal"),
        }),
    });
    // Load the KZG trusted setup now, not inside the first block that carries data.
    tokio::task::spawn_blocking(|| {
        nexus_das::kzg::RowCommitter::get();
        nexus_das::kzg::CellVerifier::get();
    });
    tracing::info!(
        peer_id = %node.net.peer_id(),
        api = %args.api,
        validator = ?node.validator.map(|k| k.to_string()),
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
        tokio::spawn(staging::collect_loop(node.clone())),
        tokio::spawn(health::watchdog(node.clone())),
        tokio::spawn(priority::priority_loop(node.clone())),
        tokio::spawn(compute::offer_loop(node.clone())),
        tokio::spawn(compute::drive_loop(node.clone())),
    ];
    let consensus_task = validator_key.map(|key| {
        let config = PacemakerConfig {
            round_timeout_ms: args
                .round_timeout_ms
                .max(args.block_interval_ms.saturating_mul(2))
                .max(50),
            max_round_timeout_ms: 60_000,
            min_block_interval_ms: args.block_interval_ms,
        };
        tokio::spawn(consensus::run(node.clone(), key, config, consensus_rx))
    });
    http::serve(listener, http::router(node.clone()), shutdown_signal()).await;
    tracing::info!("shutting down");
    for t in tasks.into_iter().chain(consensus_task) {
        t.abort();
    }
    node.store.persist()?;
    Ok(())
}

/// Reads a genesis file.
fn read_genesis(path: &std::path::Path) -> Result<ChainGenesis> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a chain genesis (spec with chain_id and committee, time_ms, ledger)",
            path.display()
        )
    })
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
            NetworkEvent::HeaderRequest { request, reply, .. } => {
                tokio::spawn(async move { reply.send(serve::headers(&node, request).await) });
            }
            NetworkEvent::ProveRequest {
                peer,
                request,
                reply,
            } => {
                tokio::spawn(async move {
                    let answer = compute::serve(&node, peer, request, &reply).await;
                    reply.send(answer);
                });
            }
            NetworkEvent::DriveRequest { request, reply, .. } => {
                reply.send(compute::serve_drive(&node, request));
            }
            NetworkEvent::Gossip {
                id,
                message: GossipMessage::Consensus(gossip),
            } => match &node.consensus {
                // The consensus task validates in arrival order, off the dispatcher; when it
                // is behind, what does not fit its queue is dropped (gossip ignores it) so
                // that a flood never stalls the network.
                Some(tx) => {
                    if let Err(e) = tx.try_send(consensus::ConsensusEvent::Gossip(id, gossip)) {
                        if let consensus::ConsensusEvent::Gossip(id, _) = e.into_inner() {
                            node.net.report(id, Validation::Ignore).await;
                        }
                    }
                }
                None => node.net.report(id, Validation::Ignore).await,
            },
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
