//! The sampling loop: draw, fetch, verify in one batch, retry elsewhere, score.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::{join_all, BoxFuture};
use nexus_das::params::CELLS_PER_ROW;
use nexus_das::{confidence, samples_needed, verify_samples, CodeParams, Coord, DataRoot, Sample};
use rand::Rng;
use tower::limit::ConcurrencyLimit;
use tower::timeout::Timeout;
use tower::{Service, ServiceBuilder, ServiceExt};

use crate::source::{CellSource, FetchError, Fetched};

/// How hard to sample.
#[derive(Debug, Clone, Copy)]
pub struct SamplerConfig {
    /// Confidence to reach before calling data available, e.g. 0.9999.
    pub target_confidence: f64,
    /// Longest wait for one cell from one peer.
    pub request_timeout: Duration,
    /// Custodians tried per cell before it counts as missing.
    pub attempts_per_cell: usize,
    /// Requests in flight to one peer at a time.
    pub per_peer_concurrency: usize,
    /// How long a cell no custodian has yet may keep being asked for (cells reach their
    /// custodians shortly after the header); after that it counts as missing.
    pub patience: Duration,
    /// Pause before asking custodians again for cells none of them had.
    pub retry_delay: Duration,
}

impl Default for SamplerConfig {
    fn default() -> SamplerConfig {
        SamplerConfig {
            target_confidence: 0.9999,
            request_timeout: Duration::from_secs(2),
            attempts_per_cell: 3,
            per_peer_concurrency: 8,
            patience: Duration::ZERO,
            retry_delay: Duration::from_millis(250),
        }
    }
}

/// The outcome of sampling one payload.
#[derive(Debug, Clone)]
pub struct SamplingReport<P> {
    /// Every drawn cell was delivered with a valid proof.
    pub available: bool,
    /// Confidence the verified samples give (`nexus_das::confidence`); meaningful as
    /// availability only when `available`.
    pub confidence: f64,
    /// Cells drawn.
    pub drawn: u64,
    /// Cells delivered and verified.
    pub verified: u64,
    /// Bytes received, bad samples included.
    pub bytes: u64,
    /// Cells no custodian delivered verifiably.
    pub missing: Vec<Coord>,
    /// Peers that served a sample that did not verify.
    pub penalised: Vec<P>,
}

/// The outcome of fetching a set of cells.
#[derive(Debug, Clone)]
pub struct CellsReport<P> {
    /// Cells delivered, each verified against the root.
    pub samples: Vec<Sample>,
    /// Bytes received, bad samples included.
    pub bytes: u64,
    /// Cells no peer delivered verifiably.
    pub missing: Vec<Coord>,
    /// Peers that served a sample that did not verify.
    pub penalised: Vec<P>,
}

/// One peer's fetches as a tower service, so limits and timeouts are layers.
struct PeerFetch<S: CellSource> {
    source: Arc<S>,
    peer: S::Peer,
}

impl<S: CellSource> Clone for PeerFetch<S> {
    fn clone(&self) -> Self {
        PeerFetch {
            source: Arc::clone(&self.source),
            peer: self.peer.clone(),
        }
    }
}

impl<S: CellSource> Service<(DataRoot, Coord)> for PeerFetch<S> {
    type Response = Fetched;
    type Error = FetchError;
    type Future = BoxFuture<'static, Result<Fetched, FetchError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), FetchError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, (root, coord): (DataRoot, Coord)) -> Self::Future {
        self.source.fetch(self.peer.clone(), root, coord)
    }
}

type PeerService<S> = ConcurrencyLimit<Timeout<PeerFetch<S>>>;

/// Samples payloads through a [`CellSource`], with per-peer limits kept across calls.
pub struct Sampler<S: CellSource> {
    source: Arc<S>,
    config: SamplerConfig,
    peers: Mutex<HashMap<S::Peer, PeerService<S>>>,
}

/// A cell still to be delivered, with the custodians not yet tried.
struct Pending<P> {
    coord: Coord,
    candidates: VecDeque<P>,
}

impl<S: CellSource> Sampler<S> {
    /// A sampler over `source`.
    pub fn new(source: Arc<S>, config: SamplerConfig) -> Sampler<S> {
        Sampler {
            source,
            config,
            peers: Mutex::new(HashMap::new()),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SamplerConfig {
        &self.config
    }

    fn service(&self, peer: &S::Peer) -> PeerService<S> {
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        peers
            .entry(peer.clone())
            .or_insert_with(|| {
                ServiceBuilder::new()
                    .concurrency_limit(self.config.per_peer_concurrency.max(1))
                    .timeout(self.config.request_timeout)
                    .service(PeerFetch {
                        source: Arc::clone(&self.source),
                        peer: peer.clone(),
                    })
            })
            .clone()
    }

    async fn fetch(
        &self,
        peer: S::Peer,
        root: DataRoot,
        coord: Coord,
    ) -> Result<Fetched, FetchError> {
        self.service(&peer)
            .oneshot((root, coord))
            .await
            .map_err(|e| match e.downcast::<FetchError>() {
                Ok(e) => *e,
                Err(e) if e.is::<tower::timeout::error::Elapsed>() => FetchError::TimedOut,
                Err(e) => FetchError::Failed(e.to_string()),
            })
    }

    /// Draws enough distinct cells of the payload (`root`, `params`) for the target
    /// confidence and fetches them with [`Sampler::fetch_cells`].
    pub async fn sample(
        &self,
        root: DataRoot,
        params: CodeParams,
        rng: &mut impl Rng,
    ) -> SamplingReport<S::Peer> {
        let total = params.total_cells();
        let wanted = samples_needed(&params, self.config.target_confidence)
            .unwrap_or(total)
            .min(total);
        let coords = rand::seq::index::sample(rng, total as usize, wanted as usize)
            .into_iter()
            .map(|i| Coord {
                row: (i / CELLS_PER_ROW) as u32,
                column: (i % CELLS_PER_ROW) as u16,
            })
            .collect();
        let cells = self.fetch_cells(root, coords).await;
        let verified = cells.samples.len() as u64;
        SamplingReport {
            available: cells.missing.is_empty(),
            confidence: confidence(&params, verified),
            drawn: wanted,
            verified,
            bytes: cells.bytes,
            missing: cells.missing,
            penalised: cells.penalised,
        }
    }

    /// Fetches the cells at `coords` of the payload committed by `root` in parallel,
    /// verifies them in one batch per round, and retries any cell that failed on its next
    /// custodian.
    pub async fn fetch_cells(&self, root: DataRoot, coords: Vec<Coord>) -> CellsReport<S::Peer> {
        let started = tokio::time::Instant::now();
        let mut pending: Vec<Pending<S::Peer>> = coords
            .into_iter()
            .map(|coord| Pending {
                coord,
                candidates: self.candidates(&root, coord),
            })
            .collect();
        let mut report = CellsReport {
            samples: Vec::new(),
            bytes: 0,
            missing: Vec::new(),
            penalised: Vec::new(),
        };

        while !pending.is_empty() {
            // Cells no custodian had: ask again while patience lasts, else they are missing.
            let (live, exhausted): (Vec<_>, Vec<_>) =
                pending.into_iter().partition(|p| !p.candidates.is_empty());
            let waited = started.elapsed() + self.config.retry_delay;
            if !exhausted.is_empty() && waited < self.config.patience {
                tokio::time::sleep(self.config.retry_delay).await;
                pending = live;
                pending.extend(exhausted.into_iter().map(|mut p| {
                    p.candidates = self.candidates(&root, p.coord);
                    p
                }));
                continue;
            }
            report
                .missing
                .extend(exhausted.into_iter().map(|p| p.coord));
            pending = live;
            if pending.is_empty() {
                break;
            }
            let round: Vec<(Pending<S::Peer>, S::Peer)> = pending
                .into_iter()
                .filter_map(|mut p| {
                    let peer = p.candidates.pop_front()?;
                    Some((p, peer))
                })
                .collect();
            let results = join_all(
                round
                    .iter()
                    .map(|(p, peer)| self.fetch(peer.clone(), root, p.coord)),
            )
            .await;

            pending = Vec::new();
            let mut delivered: Vec<(Pending<S::Peer>, S::Peer, Sample)> = Vec::new();
            for ((p, peer), result) in round.into_iter().zip(results) {
                match result {
                    Ok(fetched) => {
                        report.bytes += fetched.bytes;
                        if fetched.sample.coord == p.coord {
                            delivered.push((p, peer, fetched.sample));
                        } else {
                            self.penalise(&peer, &mut report);
                            pending.push(p);
                        }
                    }
                    Err(_) => pending.push(p),
                }
            }
            let samples: Vec<Sample> = delivered.iter().map(|(_, _, s)| s.clone()).collect();
            let bad: Vec<usize> = match verify_samples(&root, &samples) {
                Ok(()) => Vec::new(),
                Err(e) => e.failures.into_iter().map(|(i, _)| i).collect(),
            };
            for (i, (p, peer, sample)) in delivered.into_iter().enumerate() {
                if bad.contains(&i) {
                    self.penalise(&peer, &mut report);
                    pending.push(p);
                } else {
                    report.samples.push(sample);
                }
            }
        }
        report
    }

    /// The custodians to try for `coord`, at most `attempts_per_cell` of them.
    fn candidates(&self, root: &DataRoot, coord: Coord) -> VecDeque<S::Peer> {
        let mut candidates: VecDeque<S::Peer> = self.source.custodians(root, coord).into();
        candidates.truncate(self.config.attempts_per_cell.max(1));
        candidates
    }

    fn penalise(&self, peer: &S::Peer, report: &mut CellsReport<S::Peer>) {
        self.source.penalise(peer);
        if !report.penalised.contains(peer) {
            report.penalised.push(peer.clone());
        }
    }
}
