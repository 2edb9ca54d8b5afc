//! Verifiable compute on this node: the zkVM, the jobs it has prepared (program, input,
//! run), proving tree nodes for the job drivers that ask (a delegator proves segments, an
//! orchestrator folds; each proof made for the asking driver and handed over with a signed
//! receipt), and driving jobs (an orchestrator that ranks first for a job hands its nodes
//! out, checks every proof, seals the root and anchors the result with the receipts of the
//! nodes others proved). The rules — tree shape, who proves what when, what a proof must
//! state — are `nexus-compute`'s; who is paid for what is the ledger's.

mod driver;
mod journal;
mod material;
mod prover;
mod views;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use nexus_compute::progress::DriveView;
use nexus_compute::zkvm::Zkvm;
use nexus_compute::ProverId;
use nexus_storage::ledger::LedgerState;
use nexus_storage::{Digest, PublicKey};
use tokio::sync::{OnceCell, Semaphore};

pub(crate) use driver::drive_loop;
pub(crate) use material::{prepare_submission, read_blob, MaterialKey, Prepared};
pub(crate) use prover::{offer_loop, serve};
pub(crate) use views::serve as serve_drive;
pub(crate) use views::view_of;

/// Memory one proof takes at most (an OpenVM segment proof peaks near 6.5 GB).
pub(crate) const PROOF_MEMORY: u64 = 7 << 30;

/// What this node offers to verifiable compute, and with what.
#[derive(Debug, Clone)]
pub(crate) struct ComputeConfig {
    /// Proves segments.
    pub(crate) delegator: bool,
    /// Drives jobs and folds proofs.
    pub(crate) orchestrator: bool,
    /// Proofs made at once.
    pub(crate) parallel: usize,
    /// The zkVM's key cache.
    pub(crate) key_dir: PathBuf,
    /// Where a driver keeps the proofs it checked (see [`journal`]).
    pub(crate) journal_dir: PathBuf,
}

/// The node's compute state.
pub(crate) struct Compute {
    pub(crate) config: ComputeConfig,
    /// The zkVM with its proving keys (opened once, keys generated or read from the cache).
    zkvm: OnceCell<Arc<Zkvm>>,
    /// Proofs being made now.
    slots: Arc<Semaphore>,
    /// Job submissions being run to derive their parameters (one at a time).
    pub(crate) admissions: Semaphore,
    /// Client addresses with a submission in admission (one each).
    admitting: Arc<Mutex<BTreeSet<IpAddr>>>,
    /// Requests waiting for a slot or proving.
    queued: std::sync::atomic::AtomicUsize,
    /// Jobs whose material is ready, by job and beneficiary, newest last (a few at most).
    prepared: Mutex<Vec<(MaterialKey, Arc<Prepared>)>>,
    /// The jobs this node drives, for `GET /v1/compute/jobs/{id}` and `/nexus/drive/1`.
    pub(crate) drives: Mutex<BTreeMap<Digest, DriveView>>,
    /// The checked proofs of the jobs this node drives, on disk.
    journal: journal::ProofJournal,
}

impl Compute {
    /// Compute state for `config`; the zkVM opens on first use.
    pub(crate) fn new(config: ComputeConfig) -> Compute {
        let parallel = config.parallel.max(1);
        Compute {
            journal: journal::ProofJournal::new(config.journal_dir.clone()),
            config,
            zkvm: OnceCell::new(),
            slots: Arc::new(Semaphore::new(parallel)),
            admissions: Semaphore::new(1),
            admitting: Arc::default(),
            queued: Default::default(),
            prepared: Mutex::new(Vec::new()),
            drives: Mutex::new(BTreeMap::new()),
        }
    }

    /// Whether this node proves anything.
    pub(crate) fn proves(&self) -> bool {
        self.config.delegator || self.config.orchestrator
    }

    /// A turn for `client` to have a job run for admission, unless it has one already;
    /// the turn ends when the returned guard drops.
    pub(crate) fn admit_client(&self, client: IpAddr) -> Option<ClientTurn> {
        let mut admitting = self.admitting.lock().unwrap_or_else(|p| p.into_inner());
        admitting.insert(client).then(|| ClientTurn {
            admitting: self.admitting.clone(),
            client,
        })
    }

    /// The zkVM, opened with the cached keys (generated and cached the first time).
    pub(crate) async fn zkvm(&self) -> anyhow::Result<Arc<Zkvm>> {
        let dir = self.config.key_dir.clone();
        self.zkvm
            .get_or_try_init(|| async move {
                let opened = tokio::task::spawn_blocking(move || Zkvm::open(&dir)).await??;
                anyhow::Ok(Arc::new(opened))
            })
            .await
            .cloned()
    }
}

/// A client's turn at job admission (see [`Compute::admit_client`]).
pub(crate) struct ClientTurn {
    admitting: Arc<Mutex<BTreeSet<IpAddr>>>,
    client: IpAddr,
}

impl Drop for ClientTurn {
    fn drop(&mut self) {
        self.admitting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.client);
    }
}

/// A prover's id in schedules: the SHA-256 of its account key.
pub(crate) fn prover_id(account: &PublicKey) -> ProverId {
    use sha2::Digest as _;
    ProverId(sha2::Sha256::digest(account.0).into())
}

/// The provers the ledger lists, with their peer ids: (delegators, orchestrators).
pub(crate) fn provers(ledger: &LedgerState) -> (Vec<Prover>, Vec<Prover>) {
    let mut delegators = Vec::new();
    let mut orchestrators = Vec::new();
    for (account, offer) in ledger.provers() {
        let Ok(peer) = nexus_net::PeerId::from_bytes(&offer.node) else {
            continue;
        };
        let prover = Prover {
            id: prover_id(account),
            account: *account,
            peer,
        };
        if offer.delegator {
            delegators.push(prover.clone());
        }
        if offer.orchestrator {
            orchestrators.push(prover);
        }
    }
    (delegators, orchestrators)
}

/// A node offering its CPU.
#[derive(Debug, Clone)]
pub(crate) struct Prover {
    pub(crate) id: ProverId,
    pub(crate) account: PublicKey,
    pub(crate) peer: nexus_net::PeerId,
}
