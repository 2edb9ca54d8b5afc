//! The sampler against storage nodes held in memory, serving real KZG samples: honest,
//! withholding, lying, slow.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::future::BoxFuture;
use nexus_das::params::ORIGINAL_CELLS_PER_ROW;
use nexus_das::{samples_needed, Coord, DataRoot, ExtendedData};
use nexus_sampler::{
    CellSource, Custody, CustodyParams, FetchError, Fetched, Sampler, SamplerConfig,
};
use rand::{rngs::StdRng, SeedableRng};

fn payload() -> Arc<ExtendedData> {
    static DATA: OnceLock<Arc<ExtendedData>> = OnceLock::new();
    DATA.get_or_init(|| {
        let bytes: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        Arc::new(ExtendedData::encode(&bytes, 2).expect("encode"))
    })
    .clone()
}

#[derive(Default)]
struct Behaviour {
    lies: bool,
    delay: Duration,
}

/// Storage nodes in memory: each serves the cells of its custody groups.
struct Nodes {
    data: Arc<ExtendedData>,
    custody: Custody<Vec<u8>>,
    behaviour: Vec<Behaviour>,
    withheld: HashSet<Coord>,
    penalised: Mutex<Vec<usize>>,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
}

impl Nodes {
    fn new(n: usize, withheld: HashSet<Coord>) -> Nodes {
        Nodes {
            data: payload(),
            custody: Custody::new(CustodyParams::DEFAULT, 0, (0..n).map(|i| vec![i as u8; 4])),
            behaviour: (0..n).map(|_| Behaviour::default()).collect(),
            withheld,
            penalised: Mutex::new(Vec::new()),
            in_flight: Arc::default(),
            max_in_flight: Arc::default(),
        }
    }
}

/// Counts a request in flight until dropped (a timed-out request is dropped mid-way).
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn enter(count: Arc<AtomicUsize>, max: &AtomicUsize) -> InFlight {
        let now = count.fetch_add(1, Ordering::SeqCst) + 1;
        max.fetch_max(now, Ordering::SeqCst);
        InFlight(count)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl CellSource for Nodes {
    type Peer = usize;

    fn custodians(&self, _: &DataRoot, coord: Coord) -> Vec<usize> {
        self.custody
            .custodians(coord)
            .map(|n| usize::from(n[0]))
            .collect()
    }

    fn fetch(
        &self,
        peer: usize,
        _: DataRoot,
        coord: Coord,
    ) -> BoxFuture<'static, Result<Fetched, FetchError>> {
        let data = Arc::clone(&self.data);
        let withheld = self.withheld.contains(&coord);
        let (lies, delay) = (self.behaviour[peer].lies, self.behaviour[peer].delay);
        let (in_flight, max) = (Arc::clone(&self.in_flight), Arc::clone(&self.max_in_flight));
        Box::pin(async move {
            let _guard = InFlight::enter(in_flight, &max);
            tokio::time::sleep(delay).await;
            if withheld {
                return Err(FetchError::NotHeld);
            }
            let mut sample = data.sample(coord).ok_or(FetchError::NotHeld)?;
            if lies {
                let other = Coord {
                    row: coord.row,
                    column: (coord.column + 1) % 128,
                };
                sample.proof = data.proof(other).ok_or(FetchError::NotHeld)?;
            }
            Ok(Fetched {
                sample,
                bytes: 2_200,
            })
        })
    }

    fn penalise(&self, peer: &usize) {
        self.penalised.lock().expect("lock").push(*peer);
    }
}

fn config() -> SamplerConfig {
    SamplerConfig {
        request_timeout: Duration::from_millis(300),
        ..SamplerConfig::default()
    }
}

#[tokio::test]
async fn honest_custodians_make_a_payload_available_at_the_target() {
    let nodes = Arc::new(Nodes::new(6, HashSet::new()));
    let sampler = Sampler::new(Arc::clone(&nodes), config());
    let data = payload();
    let report = sampler
        .sample(data.root(), *data.params(), &mut StdRng::seed_from_u64(1))
        .await;
    let needed = samples_needed(data.params(), 0.9999).expect("reachable");
    assert!(report.available, "{report:?}");
    assert_eq!((report.drawn, report.verified), (needed, needed));
    assert!(report.confidence >= 0.9999);
    assert_eq!(report.bytes, needed * 2_200);
    assert!(report.penalised.is_empty());
}

#[tokio::test]
async fn a_withheld_corner_makes_it_unavailable() {
    let data = payload();
    let k1 = data.params().original_len(1) as u32;
    let withheld: HashSet<Coord> = (0..=k1)
        .flat_map(|row| {
            (0..=ORIGINAL_CELLS_PER_ROW as u16).map(move |column| Coord { row, column })
        })
        .collect();
    assert_eq!(
        withheld.len() as u64,
        data.params().min_unrecoverable_cells()
    );
    let nodes = Arc::new(Nodes::new(6, withheld.clone()));
    let sampler = Sampler::new(Arc::clone(&nodes), config());
    let report = sampler
        .sample(data.root(), *data.params(), &mut StdRng::seed_from_u64(2))
        .await;
    assert!(!report.available);
    assert!(!report.missing.is_empty());
    assert!(report.missing.iter().all(|c| withheld.contains(c)));
    assert!(report.verified < report.drawn);
}

#[tokio::test]
async fn a_lying_custodian_is_penalised_and_its_cells_come_from_the_other() {
    let mut nodes = Nodes::new(6, HashSet::new());
    nodes.behaviour[0].lies = true;
    let nodes = Arc::new(nodes);
    let sampler = Sampler::new(Arc::clone(&nodes), config());
    let data = payload();
    let report = sampler
        .sample(data.root(), *data.params(), &mut StdRng::seed_from_u64(3))
        .await;
    assert!(report.available, "{report:?}");
    assert_eq!(report.penalised, vec![0]);
    assert!(!nodes.penalised.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn slow_custodians_time_out_and_others_answer_within_the_per_peer_limit() {
    let mut nodes = Nodes::new(3, HashSet::new());
    nodes.behaviour[1].delay = Duration::from_secs(5);
    for b in [0, 2] {
        nodes.behaviour[b].delay = Duration::from_millis(20);
    }
    let nodes = Arc::new(nodes);
    let sampler = Sampler::new(
        Arc::clone(&nodes),
        SamplerConfig {
            per_peer_concurrency: 2,
            ..config()
        },
    );
    let data = payload();
    let report = sampler
        .sample(data.root(), *data.params(), &mut StdRng::seed_from_u64(4))
        .await;
    assert!(report.available, "{report:?}");
    assert!(report.penalised.is_empty());
    // Three peers, at most two requests each in flight.
    assert!(nodes.max_in_flight.load(Ordering::SeqCst) <= 6);
}

#[tokio::test]
async fn chosen_cells_are_fetched_verified_and_the_withheld_ones_named() {
    let data = payload();
    let row: Vec<Coord> = (0..128u16).map(|column| Coord { row: 1, column }).collect();
    let withheld: HashSet<Coord> = row.iter().copied().filter(|c| c.column % 4 == 0).collect();
    let mut nodes = Nodes::new(6, withheld.clone());
    nodes.behaviour[2].lies = true;
    let nodes = Arc::new(nodes);
    let sampler = Sampler::new(Arc::clone(&nodes), config());
    let report = sampler.fetch_cells(data.root(), row.clone()).await;
    // Every cell but the withheld ones, each verified, each exactly the one asked for.
    let got: HashSet<Coord> = report.samples.iter().map(|s| s.coord).collect();
    let expected: HashSet<Coord> = row
        .iter()
        .copied()
        .filter(|c| !withheld.contains(c))
        .collect();
    assert_eq!(got, expected);
    assert_eq!(report.samples.len(), expected.len());
    assert!(report
        .samples
        .iter()
        .all(|s| s.verify(&data.root()).is_ok()));
    let missing: HashSet<Coord> = report.missing.iter().copied().collect();
    assert_eq!(missing, withheld);
    // The liar custodies some of the row's groups and was caught on them.
    assert!(row.iter().any(|&c| nodes.custody.holds(&vec![2u8; 4], c)));
    assert_eq!(report.penalised, vec![2]);
}
