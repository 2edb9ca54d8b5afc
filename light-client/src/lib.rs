//! A Nexus light client: follows final headers over gossipsub (back-filling gaps with
//! request-response), checks each one's finality proof against the committee of the
//! trusted genesis and its link to the last, and samples every new block's data through
//! `nexus-sampler` until it reaches the target confidence. It keeps no blob data and no
//! database: the chain spec, the last header and its peers.

mod follow;
mod source;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nexus_consensus::{BlockHash, Header};
use nexus_net::{Keypair, Multiaddr, Network, NetworkConfig, NetworkEvent, Role};
use nexus_sampler::{CustodyParams, Sampler, SamplerConfig};
use rand::SeedableRng as _;

pub use follow::{FollowError, Follower};
pub use source::{custody_params, NetCellSource};

/// Options of `nexus-light` (and `nexus light`).
#[derive(Debug, Clone, clap::Args)]
pub struct LightArgs {
    /// Storage nodes to join through, as multiaddrs (`/ip4/…/tcp/…/p2p/…`, `/dns4/…`).
    #[arg(long, num_args = 1.., required = true)]
    pub bootstrap: Vec<Multiaddr>,
    /// libp2p listen address.
    #[arg(long, default_value = "/ip4/127.0.0.1/tcp/0")]
    pub listen: Multiaddr,
    /// Confidence that a block's data is available before saying so.
    #[arg(long, default_value_t = 0.9999)]
    pub target_confidence: f64,
    /// Accept only the genesis block with this hash (otherwise the first one seen is trusted).
    #[arg(long)]
    pub genesis_hash: Option<BlockHash>,
    /// Longest wait for one cell from one peer, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub request_timeout_ms: u64,
    /// How long after a header its cells may still be arriving at their custodians, in
    /// milliseconds; a cell nobody has after that counts as withheld.
    #[arg(long, default_value_t = 4000)]
    pub patience_ms: u64,
}

/// Peers asked for one cell before it counts as missing: its custodians, then other
/// storage peers. A light client discovers storage nodes gradually, so the custodians it
/// computes from the nodes it knows may not be the real ones; asking further peers (the
/// blob's uploader among them, which serves every cell of its grid) keeps that from
/// counting as withholding.
const PEERS_PER_CELL: usize = 16;

/// What the light client concluded about one block.
#[derive(Debug, Clone)]
pub struct BlockReport {
    /// The block's height.
    pub height: u64,
    /// Whether every drawn cell arrived with a valid proof (always true for an empty block).
    pub available: bool,
    /// Confidence the verified samples give.
    pub confidence: f64,
    /// Cells drawn.
    pub samples: u64,
    /// Cells verified.
    pub verified: u64,
    /// Bytes received.
    pub bytes: u64,
    /// From receiving the header to the verdict.
    pub elapsed: Duration,
    /// The block carries no data.
    pub empty: bool,
    /// Peers that served a cell that did not verify (they are dropped).
    pub penalised: usize,
}

impl std::fmt::Display for BlockReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.empty {
            return write!(
                f,
                "height {}: available (empty block, nothing to sample)",
                self.height
            );
        }
        write!(
            f,
            "height {}: {}, confidence {:.6}, {}/{} samples, {} bytes, {} ms",
            self.height,
            if self.available {
                "available"
            } else {
                "UNAVAILABLE"
            },
            self.confidence,
            self.verified,
            self.samples,
            self.bytes,
            self.elapsed.as_millis()
        )?;
        if self.penalised > 0 {
            write!(f, ", penalised {} peer(s) for bad cells", self.penalised)?;
        }
        Ok(())
    }
}

/// Runs the light client until the process is stopped, calling `report` for every block.
pub async fn run(
    args: LightArgs,
    report: impl Fn(BlockReport) + Send + Sync + 'static,
) -> Result<()> {
    let target = args.target_confidence;
    if !(target > 0.0 && target < 1.0) {
        anyhow::bail!(
            "--target-confidence must be above 0 and below 1 (for example 0.9999), not {target}"
        );
    }
    let (net, mut events) = Network::start(NetworkConfig {
        keypair: Keypair::generate_ed25519(),
        listen: vec![args.listen.clone()],
        bootstrap: args.bootstrap.clone(),
        request_timeout: Duration::from_millis(args.request_timeout_ms.max(100)),
        role: Role::Light,
    })
    .context("cannot start the network")?;
    let source = Arc::new(NetCellSource::new(net.clone()));
    let sampler = Arc::new(Sampler::new(
        source.clone(),
        SamplerConfig {
            target_confidence: args.target_confidence,
            request_timeout: Duration::from_millis(args.request_timeout_ms.max(100)),
            patience: Duration::from_millis(args.patience_ms),
            attempts_per_cell: PEERS_PER_CELL,
            ..SamplerConfig::default()
        },
    ));
    let report = Arc::new(report);
    let mut follower = Follower::new(net.clone(), args.genesis_hash);
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        let new_headers = tokio::select! {
            event = events.recv() => match event {
                Some(NetworkEvent::Gossip { id, message }) => follower.on_gossip(id, message).await,
                Some(NetworkEvent::PeerConnected(_)) => follower.catch_up().await,
                Some(_) => Vec::new(),
                None => anyhow::bail!("the network service stopped"),
            },
            _ = tick.tick() => follower.catch_up().await,
        };
        let custody = follower.custody();
        for header in new_headers {
            let (sampler, source, report) = (sampler.clone(), source.clone(), report.clone());
            tokio::spawn(
                async move { report(sample_block(&sampler, &source, custody, header).await) },
            );
        }
    }
}

/// Samples one block and says what was found.
async fn sample_block(
    sampler: &Sampler<NetCellSource>,
    source: &NetCellSource,
    custody: CustodyParams,
    header: Header,
) -> BlockReport {
    let start = Instant::now();
    let data = header.data;
    if data.is_empty() {
        return BlockReport {
            height: header.height.0,
            available: true,
            confidence: 1.0,
            samples: 0,
            verified: 0,
            bytes: 0,
            elapsed: start.elapsed(),
            empty: true,
            penalised: 0,
        };
    }
    source.prepare(header.height, data.root, custody).await;
    let mut rng = rand::rngs::StdRng::from_entropy();
    let outcome = sampler.sample(data.root, data.params, &mut rng).await;
    BlockReport {
        height: header.height.0,
        available: outcome.available,
        confidence: outcome.confidence,
        samples: outcome.drawn,
        verified: outcome.verified,
        bytes: outcome.bytes,
        elapsed: start.elapsed(),
        empty: false,
        penalised: outcome.penalised.len(),
    }
}
