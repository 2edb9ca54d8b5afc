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
use nexus_compute::progress::{DriveView, NodeView};
use nexus_compute::zkvm::{NodeProof, UniversalProof};
use nexus_compute::{driver, Action, Input, JobId, NodeRef, Progress, ProverId, Schedule};
use nexus_net::protocol::proofs::{ProveRequest, ProveResponse};
use nexus_net::PeerId;
use nexus_storage::ledger::{
    receipt_message, ComputeJob, Credit, JobState, LedgerState, TxKind, MAX_CREDITED_NODES,
    MAX_CREDITS,
};
use nexus_storage::{Digest, PublicKey, Signature};
use tokio::sync::mpsc;

use super::journal::DriveRecord;
use super::material::{prepare, Prepared};
use super::prover::{prove_requested, Asker};
use super::{prover_id, provers, Prover};
use crate::daemon::{http, submit, Node};

/// Blocks a prover has for one node before it moves on.
const ATTEMPT_BLOCKS: u64 = 1200;
/// Blocks a driver has for a job before the next orchestrator takes over.
const DRIVER_LEASE_BLOCKS: u64 = 3600;
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
/// [`DRIVER_LEASE_BLOCKS`] blocks without a result).
fn driver_at<'a>(
    orchestrators: &'a [Prover],
    id: &Digest,
    job: &ComputeJob,
    height: u64,
) -> Option<&'a Prover> {
    let ids: Vec<ProverId> = orchestrators.iter().map(|o| o.id).collect();
    let lease = (height.saturating_sub(job.submitted) / DRIVER_LEASE_BLOCKS) as u32;
    let chosen = driver(&JobId(id.0), &ids, lease)?;
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

/// Proves the root of `prepared`'s tree: the nodes of `kept` that check out count as
/// proven (by the prover `record` names) and the failures `record` counted go on counting,
/// the schedule hands out the rest, every proof that comes back is checked (and kept) with
/// its receipt before the schedule hears of it, and the record is kept after every change.
/// Returns the root's proof and the record: who proved what, with their receipts.
async fn prove_root(
    node: &Arc<Node>,
    zkvm: &Arc<nexus_compute::zkvm::Zkvm>,
    prepared: &Arc<Prepared>,
    id: Digest,
    height: u64,
    kept: BTreeMap<NodeRef, Vec<u8>>,
    mut record: DriveRecord,
) -> Result<(NodeProof, DriveRecord)> {
    let tip = node.store.tip().context("no chain")?;
    let (delegators, orchestrators) = provers(&tip.ledger);
    let peers: HashMap<ProverId, (PeerId, PublicKey)> = delegators
        .iter()
        .chain(&orchestrators)
        .map(|p| (p.id, (p.peer, p.account)))
        .collect();
    let account_of = |p: &ProverId| peers.get(p).map(|(_, a)| a.to_string());
    let me = node.account.public();
    let chain = tip.ledger.chain();
    // Receipts of proofs checked, until the schedule counts the node proven by them.
    let mut arrived: HashMap<(NodeRef, ProverId), Signature> = HashMap::new();
    let mut view = new_view(prepared);
    let mut proofs: BTreeMap<NodeRef, NodeProof> = BTreeMap::new();
    for (n, bytes) in kept {
        if !prepared.tree.contains(n) {
            continue;
        }
        match checked(zkvm, prepared, n, bytes).await {
            Ok(proof) => {
                set_node(&mut view, n, "proven", record.proven_by.get(&n).cloned(), 0);
                proofs.insert(n, proof);
            }
            Err(why) => tracing::warn!(job = %id, node = ?n, "a kept proof is not usable: {why}"),
        }
    }
    record.proven_by.retain(|n, _| proofs.contains_key(n));
    record.receipts.retain(|n, _| proofs.contains_key(n));
    if !proofs.is_empty() {
        tracing::info!(job = %id, kept = proofs.len(), "resuming with kept proofs");
    }
    let progress = Progress {
        proven: proofs.keys().copied().collect(),
        failures: record.failures.clone(),
    };
    let (mut schedule, mut actions) = Schedule::start(
        JobId(id.0),
        prepared.tree.clone(),
        delegators.iter().map(|p| p.id).collect(),
        orchestrators.iter().map(|p| p.id).collect(),
        ATTEMPT_BLOCKS,
        height,
        &progress,
    )?;
    let (outcomes, mut answers) = mpsc::channel::<Outcome>(64);
    let mut blocks = node.new_block.subscribe();
    view.phase = "proving".into();
    loop {
        let mut done = false;
        let mut recorded = false;
        for action in actions.drain(..) {
            match action {
                Action::Assign {
                    node: n,
                    to,
                    attempt,
                    ..
                } => {
                    let (peer, account) = peers.get(&to).copied().context("unknown prover")?;
                    set_node(&mut view, n, "assigned", Some(account.to_string()), attempt);
                    let children = prepared
                        .tree
                        .children(n)
                        .iter()
                        .map(|c| proofs.get(c).map(NodeProof::to_bytes))
                        .collect::<Option<Vec<_>>>()
                        .context("a child of an assigned node has no proof")?;
                    ask(node, id, n, to, peer, children, outcomes.clone());
                }
                Action::Proven { node: n, by } => {
                    let account = account_of(&by);
                    let attempt = attempt_of(&view, n);
                    set_node(&mut view, n, "proven", account.clone(), attempt);
                    if let Some(account) = account {
                        record.proven_by.insert(n, account);
                    }
                    if let Some(receipt) = arrived.remove(&(n, by)) {
                        record.receipts.insert(n, receipt);
                    }
                    recorded = true;
                }
                Action::Failed {
                    node: n,
                    by,
                    reason,
                } => {
                    let account = account_of(&by).unwrap_or_default();
                    tracing::warn!(job = %id, node = ?n, prover = %account, ?reason, "prover failed a node");
                    recorded = true;
                }
                Action::Ignored { .. } => {}
                Action::Done => done = true,
            }
        }
        view.failures = schedule
            .failures()
            .iter()
            .map(|(p, n)| (account_of(p).unwrap_or_default(), *n))
            .collect();
        // On disk before it is shown: what the view shows proven survives a crash.
        if recorded {
            record.failures.clone_from(schedule.failures());
            keep(node, &id, Keep::Record(record.clone())).await;
        }
        publish(node, &id, &view);
        if done {
            break;
        }
        tokio::select! {
            Some((n, by, outcome)) = answers.recv() => {
                let (proof, receipt) = match outcome {
                    Ok((bytes, receipt)) => (checked(zkvm, prepared, n, bytes).await, receipt),
                    Err(why) => (Err(why), None),
                };
                let valid = match proof {
                    Ok(proof) => {
                        let message = receipt_message(&chain, &id, &me, n);
                        match (receipt, peers.get(&by)) {
                            (Some(sig), Some((_, key))) if key.verify(&message.0, &sig) => {
                                arrived.insert((n, by), sig);
                            }
                            (None, _) => {}
                            _ => tracing::warn!(job = %id, node = ?n, "a proof came with a receipt that is not its prover's: it goes uncredited"),
                        }
                        keep(node, &id, Keep::Node(n, proof.to_bytes())).await;
                        proofs.insert(n, proof);
                        true
                    }
                    Err(why) => {
                        tracing::warn!(job = %id, node = ?n, "no usable proof: {why}");
                        false
                    }
                };
                let height = node.store.tip().map_or(height, |t| t.header.height.0);
                actions = schedule.step(Input::Proof { node: n, by, valid, height });
            }
            _ = blocks.changed() => {
                let Some(tip) = node.store.tip() else { continue };
                if tip.ledger.job(&id).is_none_or(|j| j.state != JobState::Open) {
                    bail!("the job closed meanwhile");
                }
                actions = schedule.step(Input::Tick { height: tip.header.height.0 });
            }
        }
    }
    let root = proofs
        .remove(&prepared.tree.root())
        .context("the root is proven but its proof is missing")?;
    Ok((root, record))
}

/// The credits a result carries: for every prover the ledger still lists, the nodes it
/// proved for this driver with their receipts aggregated, in the order the ledger takes
/// them; provers beyond [`MAX_CREDITS`] or nodes beyond [`MAX_CREDITED_NODES`] go
/// uncredited (their shares stay with the driver).
fn credits(record: &DriveRecord, ledger: &LedgerState) -> Vec<Credit> {
    let mut by_prover: BTreeMap<PublicKey, Vec<(NodeRef, Signature)>> = BTreeMap::new();
    for (n, receipt) in &record.receipts {
        let Some(account) = record
            .proven_by
            .get(n)
            .and_then(|a| a.parse::<PublicKey>().ok())
        else {
            continue;
        };
        if ledger.prover(&account).is_none() {
            continue;
        }
        by_prover.entry(account).or_default().push((*n, *receipt));
    }
    let mut budget = MAX_CREDITED_NODES;
    let mut out = Vec::new();
    for (prover, mut nodes) in by_prover.into_iter().take(MAX_CREDITS) {
        nodes.truncate(budget);
        budget -= nodes.len();
        let Some(signature) = nexus_consensus::keys::aggregate(nodes.iter().map(|(_, s)| s)) else {
            continue;
        };
        out.push(Credit {
            prover,
            nodes: nodes.into_iter().map(|(n, _)| n).collect(),
            signature,
        });
    }
    out
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

/// The view of `prepared`'s tree before anything is proven.
fn new_view(prepared: &Prepared) -> DriveView {
    let tree = &prepared.tree;
    DriveView {
        phase: String::new(),
        levels: (0..tree.depth()).map(|l| tree.width(l)).collect(),
        nodes: tree
            .nodes()
            .map(|n| NodeView {
                level: n.level,
                index: n.index,
                state: "waiting".into(),
                prover: None,
                attempt: 0,
            })
            .collect(),
        failures: BTreeMap::new(),
    }
}

/// Sets what `view` shows of node `n`.
fn set_node(view: &mut DriveView, n: NodeRef, state: &str, prover: Option<String>, attempt: u32) {
    if let Some(v) = view
        .nodes
        .iter_mut()
        .find(|v| v.level == n.level && v.index == n.index)
    {
        v.state = state.into();
        v.prover = prover;
        v.attempt = attempt;
    }
}

/// The attempt `view` shows for node `n`.
fn attempt_of(view: &DriveView, n: NodeRef) -> u32 {
    view.nodes
        .iter()
        .find(|v| v.level == n.level && v.index == n.index)
        .map_or(0, |v| v.attempt)
}

fn publish(node: &Node, id: &Digest, view: &DriveView) {
    node.compute
        .drives
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(*id, view.clone());
}

fn set_phase(node: &Node, id: &Digest, phase: String) {
    let mut drives = node
        .compute
        .drives
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let view = drives.entry(*id).or_insert_with(|| DriveView {
        phase: String::new(),
        levels: Vec::new(),
        nodes: Vec::new(),
        failures: BTreeMap::new(),
    });
    view.phase = phase;
}
