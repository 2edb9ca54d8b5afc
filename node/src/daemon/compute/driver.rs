//! Driving a job (an orchestrator's duty when it ranks first for the job): the job's
//! schedule hands each node of the proof tree to a prover; every proof that comes back (made
//! for this driver as beneficiary) is checked, with the prover's receipt, before the
//! schedule hears of it; a prover that fails, refuses, breaks the connection or misses its
//! deadline loses the node to the next; the root is sealed into the Universal Proof, and the
//! output and the proof are stored as blobs and anchored by a `ComputeResult` transaction
//! that credits every other prover with the nodes it made.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use nexus_compute::drive::{lease, Drive, DriveProver, Outputs};
use nexus_compute::progress::DriveView;
use nexus_compute::zkvm::{NodeProof, UniversalProof};
use nexus_compute::{driver, JobId, NodeRef, ProverId};
use nexus_net::protocol::proofs::{ProveRequest, ProveResponse};
use nexus_net::PeerId;
use nexus_storage::ledger::{receipt_message, ComputeJob, Credit, JobState, LedgerState, TxKind};
use nexus_storage::{Digest, PublicKey, Signature};
use tokio::sync::mpsc;

use super::journal::DriveRecord;
use super::material::{prepare, Prepared};
use super::prover::{prove_requested, Asker};
use super::{prover_id, provers, Prover};
use crate::daemon::{http, submit, Node};

/// Blocks a closed job's view is still shown (and served to peers) after it closed.
const VIEW_KEPT_BLOCKS: u64 = 7200;
/// Blocks between two sweeps of the journal for the proofs of closed jobs.
const SWEEP_BLOCKS: u64 = 100;
/// Pause before a prover's failure to answer is reported (so that a dead peer does not
/// make the schedule spin).
const FAILURE_PAUSE: Duration = Duration::from_secs(3);

/// Watches the final chain and drives every open job this orchestrator ranks first for.
pub(crate) async fn drive_loop(node: Arc<Node>) {
    if !node.compute.config.orchestrator {
        return;
    }
    let me = prover_id(&node.account.public());
    let driving: Arc<Mutex<BTreeSet<Digest>>> = Arc::default();
    let mut blocks = node.new_block.subscribe();
    let mut swept_at = None;
    loop {
        let _ = tokio::time::timeout(Duration::from_secs(5), blocks.changed()).await;
        let Some(tip) = node.store.tip() else {
            continue;
        };
        let height = tip.header.height.0;
        if swept_at.is_none_or(|at| at + SWEEP_BLOCKS <= height) {
            swept_at = Some(height);
            let open: BTreeSet<String> = tip
                .ledger
                .jobs()
                .filter(|(_, job)| job.state == JobState::Open)
                .map(|(id, _)| id.to_string())
                .collect();
            let journal = node.compute.journal.clone();
            let _ = tokio::task::spawn_blocking(move || {
                journal.forget_closed(|name| open.contains(name))
            })
            .await;
            forget_old_views(&node, &tip.ledger, height);
        }
        let (_, orchestrators) = provers(&tip.ledger);
        for (id, job) in tip.ledger.jobs() {
            if job.state != JobState::Open
                || driver_at(&orchestrators, id, job, height).map(|d| d.id) != Some(me)
            {
                continue;
            }
            if !driving
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(*id)
            {
                continue;
            }
            let (node, driving, id) = (node.clone(), driving.clone(), *id);
            tokio::spawn(async move {
                tracing::info!(job = %id, "driving compute job");
                if let Err(e) = drive(&node, id).await {
                    tracing::warn!(job = %id, "compute job not finished: {e:#}");
                    set_phase(&node, &id, format!("stopped: {e:#}"));
                }
                driving
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id);
            });
        }
    }
}

/// The orchestrator among `orchestrators` whose lease on job `id` covers `height`: it
/// drives the job then (the rendezvous ranking of `nexus_compute::driver`, a new one each
/// [`nexus_compute::drive::DRIVER_LEASE_BLOCKS`] blocks without a result).
fn driver_at<'a>(
    orchestrators: &'a [Prover],
    id: &Digest,
    job: &ComputeJob,
    height: u64,
) -> Option<&'a Prover> {
    let ids: Vec<ProverId> = orchestrators.iter().map(|o| o.id).collect();
    let chosen = driver(&JobId(id.0), &ids, lease(job.submitted, height))?;
    orchestrators.iter().find(|o| o.id == chosen)
}

/// The orchestrator that drives job `id` as of the final `ledger` at `height` — for a
/// proven job the one that anchored its result, for an expired one the one whose lease
/// its deadline fell in — if it is still registered.
pub(crate) fn driver_of(
    ledger: &LedgerState,
    id: &Digest,
    job: &ComputeJob,
    height: u64,
) -> Option<Prover> {
    let (_, orchestrators) = provers(ledger);
    let found = match &job.state {
        JobState::Open => driver_at(&orchestrators, id, job, height),
        JobState::Expired => driver_at(&orchestrators, id, job, job.deadline),
        JobState::Proven(result) => orchestrators.iter().find(|o| o.account == result.prover),
    };
    found.cloned()
}

/// What came back for a node from a prover: its proof and receipt (none from this node
/// itself), or why not.
type Outcome = (
    NodeRef,
    ProverId,
    Result<(Vec<u8>, Option<Signature>), String>,
);

/// Drops the views of jobs closed more than [`VIEW_KEPT_BLOCKS`] ago, so that the views
/// kept do not grow with every job ever driven.
fn forget_old_views(node: &Node, ledger: &LedgerState, height: u64) {
    let recent = |closed: u64| closed.saturating_add(VIEW_KEPT_BLOCKS) > height;
    node.compute
        .drives
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|id, _| {
            ledger.job(id).is_some_and(|job| match &job.state {
                JobState::Open => true,
                JobState::Proven(result) => recent(result.height),
                JobState::Expired => recent(job.deadline),
            })
        });
}

/// Drives job `id` to its anchored result, from what the journal kept if this node drove
/// it before.
async fn drive(node: &Arc<Node>, id: Digest) -> Result<()> {
    let tip = node.store.tip().context("no chain")?;
    let job = tip.ledger.job(&id).cloned().context("no such job")?;
    let height = tip.header.height.0;
    let zkvm = node.compute.zkvm().await?;
    set_phase(
        node,
        &id,
        "preparing (reading the program and input, running it)".into(),
    );
    let prepared = prepare(node, zkvm.clone(), &id, &job, &node.account.public()).await?;
    let journal = node.compute.journal.clone();
    let kept = tokio::task::spawn_blocking(move || journal.kept(&id)).await?;
    let (proof, record) = match kept_sealed(&zkvm, &prepared, kept.sealed).await {
        Some(proof) => {
            tracing::info!(job = %id, "resuming with the sealed Universal Proof kept");
            (proof, kept.record)
        }
        None => {
            let (root, record) =
                prove_root(node, &zkvm, &prepared, id, height, kept.nodes, kept.record).await?;
            set_phase(node, &id, "sealing the Universal Proof".into());
            let sealed = {
                let (zkvm, prepared) = (zkvm.clone(), prepared.clone());
                tokio::task::spawn_blocking(move || {
                    zkvm.seal(
                        &prepared.program,
                        &prepared.input,
                        &prepared.run,
                        &prepared.tree,
                        &root,
                    )
                })
                .await??
            };
            let proof = sealed.to_bytes();
            keep(node, &id, Keep::Sealed(proof.clone())).await;
            (proof, record)
        }
    };
    anchor(node, id, &prepared, proof, &record).await
}

/// Proves the root of `prepared`'s tree by the rules of [`Drive`]: the nodes of `kept`
/// that check out count as proven (by the prover `record` names), every proof that comes
/// back is checked (and kept) with its receipt before the drive hears of it, and the record
/// is kept whenever the drive says it changed. Returns the root's proof and the record:
/// who proved what, with their receipts.
async fn prove_root(
    node: &Arc<Node>,
    zkvm: &Arc<nexus_compute::zkvm::Zkvm>,
    prepared: &Arc<Prepared>,
    id: Digest,
    height: u64,
    kept: BTreeMap<NodeRef, Vec<u8>>,
    record: DriveRecord,
) -> Result<(NodeProof, DriveRecord)> {
    let tip = node.store.tip().context("no chain")?;
    let (delegators, orchestrators) = provers(&tip.ledger);
    let peers: HashMap<ProverId, (PeerId, PublicKey)> = delegators
        .iter()
        .chain(&orchestrators)
        .map(|p| (p.id, (p.peer, p.account)))
        .collect();
    let me = node.account.public();
    let chain = tip.ledger.chain();
    let mut usable = BTreeMap::new();
    for (n, bytes) in kept {
        if !prepared.tree.contains(n) {
            continue;
        }
        match checked(zkvm, prepared, n, bytes).await {
            Ok(proof) => {
                usable.insert(n, proof);
            }
            Err(why) => tracing::warn!(job = %id, node = ?n, "a kept proof is not usable: {why}"),
        }
    }
    if !usable.is_empty() {
        tracing::info!(job = %id, kept = usable.len(), "resuming with kept proofs");
    }
    let (mut drive, mut out) = Drive::start(
        JobId(id.0),
        prepared.tree.clone(),
        &drive_provers(&delegators),
        &drive_provers(&orchestrators),
        height,
        usable,
        record,
    )?;
    let (outcomes, mut answers) = mpsc::channel::<Outcome>(64);
    let mut blocks = node.new_block.subscribe();
    loop {
        for (n, to) in &out.asks {
            let (peer, _) = peers.get(to).copied().context("unknown prover")?;
            let children = drive
                .children(*n)
                .context("a child of an assigned node has no proof")?
                .into_iter()
                .map(NodeProof::to_bytes)
                .collect();
            ask(node, id, *n, *to, peer, children, outcomes.clone());
        }
        for (n, prover, reason) in &out.failed {
            tracing::warn!(job = %id, node = ?n, %prover, ?reason, "prover failed a node");
        }
        // On disk before it is shown: what the view shows proven survives a crash.
        if out.record_changed {
            keep(node, &id, Keep::Record(drive.record().clone())).await;
        }
        publish(node, &id, drive.view());
        if out.done {
            break;
        }
        out = tokio::select! {
            Some((n, by, outcome)) = answers.recv() => {
                let outcome = match outcome {
                    Ok((bytes, receipt)) => checked(zkvm, prepared, n, bytes)
                        .await
                        .map(|proof| (proof, receipt)),
                    Err(why) => Err(why),
                };
                let outcome = match outcome {
                    Ok((proof, receipt)) => {
                        let message = receipt_message(&chain, &id, &me, n);
                        let receipt = match (receipt, peers.get(&by)) {
                            (Some(sig), Some((_, key))) if key.verify(&message.0, &sig) => Some(sig),
                            (None, _) => None,
                            _ => {
                                tracing::warn!(job = %id, node = ?n, "a proof came with a receipt that is not its prover's: it goes uncredited");
                                None
                            }
                        };
                        keep(node, &id, Keep::Node(n, proof.to_bytes())).await;
                        Ok((proof, receipt))
                    }
                    Err(why) => {
                        tracing::warn!(job = %id, node = ?n, "no usable proof: {why}");
                        Err(why)
                    }
                };
                let height = node.store.tip().map_or(height, |t| t.header.height.0);
                drive.on_proof(n, by, outcome, height)
            }
            _ = blocks.changed() => match node.store.tip() {
                None => Outputs::default(),
                Some(tip) => {
                    if tip.ledger.job(&id).is_none_or(|j| j.state != JobState::Open) {
                        bail!("the job closed meanwhile");
                    }
                    drive.on_height(tip.header.height.0)
                }
            },
        };
    }
    drive
        .into_root()
        .context("the root is proven but its proof is missing")
}

/// `provers` as the drive names them.
fn drive_provers(provers: &[Prover]) -> Vec<DriveProver> {
    provers
        .iter()
        .map(|p| DriveProver {
            id: p.id,
            account: p.account.to_string(),
        })
        .collect()
}

/// The credits a result carries: the nodes `record` holds receipts of, by their provers,
/// as the ledger at the tip takes them ([`LedgerState::credits_for`]).
fn credits(record: &DriveRecord, ledger: &LedgerState) -> Vec<Credit> {
    ledger.credits_for(record.receipts.iter().filter_map(|(n, receipt)| {
        let prover = record.proven_by.get(n)?.parse::<PublicKey>().ok()?;
        Some((*n, prover, *receipt))
    }))
}

/// The kept sealed proof, if it verifies for this job's program and public value.
async fn kept_sealed(
    zkvm: &Arc<nexus_compute::zkvm::Zkvm>,
    prepared: &Arc<Prepared>,
    sealed: Option<Vec<u8>>,
) -> Option<Vec<u8>> {
    let bytes = sealed?;
    let (zkvm, prepared) = (zkvm.clone(), prepared.clone());
    tokio::task::spawn_blocking(move || {
        let proof = UniversalProof::from_bytes(&bytes).ok()?;
        zkvm.verifier()
            .verify(&proof, prepared.program.commit(), prepared.run.public_value)
            .ok()?;
        Some(bytes)
    })
    .await
    .ok()
    .flatten()
}

/// What the driver keeps in the journal.
enum Keep {
    /// A node's checked proof.
    Node(NodeRef, Vec<u8>),
    /// The sealed Universal Proof.
    Sealed(Vec<u8>),
    /// Who proved what and who failed.
    Record(DriveRecord),
}

/// Keeps `what` in the journal. A failure to write costs only a resume: it is logged and
/// the drive goes on from memory.
async fn keep(node: &Arc<Node>, id: &Digest, what: Keep) {
    let (journal, id) = (node.compute.journal.clone(), *id);
    let written = tokio::task::spawn_blocking(move || match what {
        Keep::Node(n, bytes) => journal.keep(&id, n, &bytes),
        Keep::Sealed(bytes) => journal.keep_sealed(&id, &bytes),
        Keep::Record(record) => journal.keep_record(&id, &record),
    })
    .await
    .unwrap_or_else(|e| Err(std::io::Error::other(e)));
    if let Err(e) = written {
        tracing::warn!(job = %id, "cannot keep the drive's progress on disk: {e}");
    }
}

/// Stores the output and the Universal Proof as blobs and anchors the result, crediting
/// the provers `record` holds receipts of; retried until it lands or the job closes (the
/// proof is not remade). Only this node can anchor the proof: it names it as beneficiary.
async fn anchor(
    node: &Arc<Node>,
    id: Digest,
    prepared: &Prepared,
    proof: Vec<u8>,
    record: &DriveRecord,
) -> Result<()> {
    set_phase(
        node,
        &id,
        format!("anchoring (Universal Proof of {} bytes)", proof.len()),
    );
    let output_blob = http::store_own_blob(node, prepared.run.output.clone()).await?;
    let proof_blob = http::store_own_blob(node, proof.clone()).await?;
    let at = loop {
        let Some(tip) = node.store.tip() else {
            bail!("no chain");
        };
        let kind = TxKind::ComputeResult {
            job: id,
            output: output_blob,
            proof_blob,
            proof: proof.clone(),
            credits: credits(record, &tip.ledger),
        };
        match submit::submit(node, kind, node.finality_deadline).await {
            Ok(at) => break at,
            Err(e) => {
                let open = node
                    .store
                    .tip()
                    .and_then(|t| t.ledger.job(&id).map(|j| j.state == JobState::Open));
                if open == Some(false) {
                    bail!("the job closed while its result was being anchored: {e}");
                }
                // Whoever follows the job sees why (a refusal names the ledger's reason).
                tracing::warn!(job = %id, "result not anchored yet, retrying: {e}");
                set_phase(
                    node,
                    &id,
                    format!("anchoring, not accepted yet ({e}); retrying"),
                );
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    };
    set_phase(node, &id, format!("anchored in block {}", at.height));
    tracing::info!(job = %id, height = %at.height, "compute result anchored");
    Ok(())
}

/// Asks prover `to` (this node itself, or its peer) for node `n`'s proof; the outcome
/// comes back on `outcomes`.
fn ask(
    node: &Arc<Node>,
    job: Digest,
    n: NodeRef,
    to: ProverId,
    peer: PeerId,
    children: Vec<Vec<u8>>,
    outcomes: mpsc::Sender<Outcome>,
) {
    let node = node.clone();
    tokio::spawn(async move {
        let request = if n.level == 0 {
            ProveRequest::Segment {
                job,
                index: n.index,
            }
        } else {
            ProveRequest::Fold {
                job,
                level: n.level,
                index: n.index,
                children: children
                    .into_iter()
                    .map(serde_bytes::ByteBuf::from)
                    .collect(),
            }
        };
        let outcome = if to == prover_id(&node.account.public()) {
            prove_requested(&node, Asker::Itself, request)
                .await
                .map(|p| (p.proof.to_bytes(), None))
                .map_err(|e| format!("{e:#}"))
        } else {
            match node.net.request_proof(peer, request).await {
                Ok(ProveResponse::Proof { proof, receipt }) => Ok((proof, Some(receipt))),
                Ok(ProveResponse::Refused(why)) => Err(format!("refused: {why}")),
                Err(e) => Err(format!("no answer: {e}")),
            }
        };
        if outcome.is_err() {
            tokio::time::sleep(FAILURE_PAUSE).await;
        }
        let _ = outcomes.send((n, to, outcome)).await;
    });
}

/// Decodes and checks a received proof of node `n`.
async fn checked(
    zkvm: &Arc<nexus_compute::zkvm::Zkvm>,
    prepared: &Arc<Prepared>,
    n: NodeRef,
    bytes: Vec<u8>,
) -> Result<NodeProof, String> {
    let (zkvm, prepared) = (zkvm.clone(), prepared.clone());
    tokio::task::spawn_blocking(move || {
        let proof = NodeProof::from_bytes(&bytes).map_err(|e| e.to_string())?;
        zkvm.check(
            &prepared.program,
            &prepared.tree,
            n,
            prepared.boundaries(&zkvm).map_err(|e| format!("{e:#}"))?,
            &proof,
        )
        .map_err(|e| e.to_string())?;
        Ok(proof)
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Shows `view` as this node's view of job `id`.
fn publish(node: &Node, id: &Digest, view: &DriveView) {
    node.compute
        .drives
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(*id, view.clone());
}

/// Sets what the view of job `id` says the driver is doing.
fn set_phase(node: &Node, id: &Digest, phase: String) {
    let mut drives = node
        .compute
        .drives
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    drives
        .entry(*id)
        .or_insert_with(|| DriveView::phase_only(String::new()))
        .phase = phase;
}
