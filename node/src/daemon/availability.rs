//! This node's sampling of `das` grids, by the rules of [`nexus_sampler::verdicts`]: a
//! validator includes a `das` blob in its proposal, and votes for a block carrying one,
//! only once sampling the uploader's commitment reached the confidence target. Sampling
//! starts when the blob's registration first reaches the validator, so a proposal seldom
//! waits for it; a grid nobody serves is never proposed by honest leaders, and never voted
//! for.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nexus_consensus::{DataHeader, Height};
use nexus_light_client::NetCellSource;
use nexus_sampler::verdicts::{Answer, Purpose, VerdictBook};
use nexus_sampler::{Sampler, SamplerConfig};
use rand::SeedableRng as _;

use super::custody::network_custody;
use super::Node;

/// Longest one sampling waits for cells nobody has yet.
const PATIENCE: Duration = Duration::from_secs(4);

/// Called with the verdict once a sampling under way ends.
type Waiter = Box<dyn FnOnce(bool) + Send>;

/// Verdicts of this node's sampling, by DataRoot ([`VerdictBook`]).
#[derive(Default)]
pub(crate) struct Availability {
    book: Mutex<VerdictBook<Waiter>>,
}

impl Availability {
    /// Whether the grid of `data` is known available: this node holds it whole, or its
    /// sampling succeeded. Otherwise starts sampling it when the [`VerdictBook`] says so
    /// and answers false; `done` is then called with the verdict (unless the book says
    /// not now).
    pub(crate) fn check(
        node: &Arc<Node>,
        purpose: Purpose,
        height: Height,
        data: DataHeader,
        done: impl FnOnce(bool) + Send + 'static,
    ) -> bool {
        if data.is_empty() || node.encodings.get(&data.root).is_some() {
            return true;
        }
        let answer = node
            .availability
            .book
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .check(data.root, purpose, Instant::now(), Box::new(done));
        match answer {
            Answer::Available => return true,
            Answer::Waiting | Answer::NotNow => return false,
            Answer::Sample => {}
        }
        let node = node.clone();
        tokio::spawn(async move {
            let available = sample(&node, height, data).await;
            let waiters = node
                .availability
                .book
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .finish(data.root, available, Instant::now());
            for waiter in waiters {
                waiter(available);
            }
        });
        false
    }
}

/// Samples the grid of `data` (the payload of block `height`, or to be) from storage
/// peers until the confidence target is reached or cells stay missing.
async fn sample(node: &Node, height: Height, data: DataHeader) -> bool {
    let source = Arc::new(NetCellSource::for_storage_node(
        node.net.clone(),
        node.net.peer_id(),
    ));
    source
        .prepare(height, data.root, network_custody(node))
        .await;
    let peers = node.net.storage_peers().await.len();
    let sampler = Sampler::new(
        source,
        SamplerConfig {
            attempts_per_cell: peers.max(1),
            patience: PATIENCE,
            ..SamplerConfig::default()
        },
    );
    let mut rng = rand::rngs::StdRng::from_entropy();
    let started = Instant::now();
    let report = sampler.sample(data.root, data.params, &mut rng).await;
    tracing::info!(
        root = %data.root,
        available = report.available,
        confidence = report.confidence,
        samples = report.verified,
        ms = started.elapsed().as_millis() as u64,
        "sampled a das grid"
    );
    report.available
}
