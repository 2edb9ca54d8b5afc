//! What this node's own sampling found about `das` grids: a validator includes a `das`
//! blob in its proposal, and votes for a block carrying one, only once sampling the
//! uploader's commitment reached the confidence target. Sampling starts when the blob's
//! registration first reaches the validator, so a proposal seldom waits for it; a grid
//! nobody serves is never proposed by honest leaders, and never voted for.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nexus_consensus::{DataHeader, Height};
use nexus_das::DataRoot;
use nexus_light_client::NetCellSource;
use nexus_sampler::{Sampler, SamplerConfig};
use rand::SeedableRng as _;

use super::custody::network_custody;
use super::Node;

/// Longest one sampling waits for cells nobody has yet.
const PATIENCE: Duration = Duration::from_secs(4);
/// How long a grid found unavailable is not sampled again.
const RETRY_AFTER: Duration = Duration::from_secs(5);
/// How long a grid found available is trusted to stay so; after that it is sampled again
/// before this validator proposes or votes for it.
const TRUSTED_FOR: Duration = Duration::from_secs(30);
/// Grids remembered (the oldest verdicts are forgotten first).
const REMEMBERED: usize = 1024;
/// Samplings of pending registrations under way at once (a flood of registrations must
/// not turn into a flood of cell requests); a block to vote on is always sampled.
const MAX_AHEAD: usize = 8;

/// Why a grid is sampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// A registration waiting in the pool: sampled ahead if there is room.
    Ahead,
    /// A proposed block this validator may vote for: always sampled.
    Vote,
}

#[derive(Debug, Clone, Copy)]
enum Verdict {
    Sampling,
    Available,
    Unavailable(Instant),
}

/// Called with the verdict once a sampling under way ends.
type Waiter = Box<dyn FnOnce(bool) + Send>;

struct Entry {
    verdict: Verdict,
    since: Instant,
    waiters: Vec<Waiter>,
}

/// Verdicts of this node's sampling, by DataRoot.
#[derive(Default)]
pub(crate) struct Availability {
    verdicts: Mutex<HashMap<DataRoot, Entry>>,
}

impl Availability {
    /// Whether the grid of `data` is known available: this node holds it whole, or its
    /// sampling succeeded. Otherwise starts sampling it (unless it is under way, failed a
    /// moment ago, or `purpose` is [`Purpose::Ahead`] and enough samplings are under way)
    /// and answers false; `done` is then called with the verdict.
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
        {
            let mut verdicts = node
                .availability
                .verdicts
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            match verdicts.get_mut(&data.root) {
                Some(Entry {
                    verdict: Verdict::Available,
                    since,
                    ..
                }) if since.elapsed() < TRUSTED_FOR => return true,
                Some(Entry {
                    verdict: Verdict::Sampling,
                    waiters,
                    ..
                }) => {
                    waiters.push(Box::new(done));
                    return false;
                }
                Some(Entry {
                    verdict: Verdict::Unavailable(at),
                    ..
                }) if at.elapsed() < RETRY_AFTER => return false,
                _ => {}
            }
            let ahead = verdicts
                .values()
                .filter(|e| matches!(e.verdict, Verdict::Sampling))
                .count();
            if purpose == Purpose::Ahead && ahead >= MAX_AHEAD {
                return false;
            }
            if verdicts.len() >= REMEMBERED {
                let oldest = verdicts
                    .iter()
                    .filter(|(_, e)| !matches!(e.verdict, Verdict::Sampling))
                    .min_by_key(|(_, e)| e.since)
                    .map(|(r, _)| *r);
                if let Some(oldest) = oldest {
                    verdicts.remove(&oldest);
                }
            }
            verdicts.insert(
                data.root,
                Entry {
                    verdict: Verdict::Sampling,
                    since: Instant::now(),
                    waiters: vec![Box::new(done)],
                },
            );
        }
        let node = node.clone();
        tokio::spawn(async move {
            let available = sample(&node, height, data).await;
            let verdict = if available {
                Verdict::Available
            } else {
                Verdict::Unavailable(Instant::now())
            };
            let waiters = {
                let mut verdicts = node
                    .availability
                    .verdicts
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                let entry = verdicts.entry(data.root).or_insert(Entry {
                    verdict,
                    since: Instant::now(),
                    waiters: Vec::new(),
                });
                entry.verdict = verdict;
                entry.since = Instant::now();
                std::mem::take(&mut entry.waiters)
            };
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
