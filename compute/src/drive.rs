//! Driving one job, sans-io: what an orchestrator that drives a job asks of whom next,
//! what it records, and what a restart resumes. A [`Drive`] wraps the job's [`Schedule`]
//! with the proofs in hand, the record of who proved what (and their receipts, which the
//! result needs to pay them) and the view users see. The caller does the I/O: it asks the
//! provers the drive names, checks what comes back (the zkVM and the receipt's signature),
//! keeps proofs and the record on disk when told, and feeds verdicts and new heights in.
//!
//! Generic over the proof `P` and receipt `R` types, so the rules are tested here without
//! a zkVM.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::progress::DriveView;
use crate::schedule::{Action, Failure, Input, JobId, Progress, ProverId, Schedule, ScheduleError};
use crate::tree::{NodeRef, ProofTree};

/// Blocks a prover has for one node before it moves on.
pub const ATTEMPT_BLOCKS: u64 = 1200;
/// Blocks an orchestrator drives a job before the next one in the ranking takes over.
pub const DRIVER_LEASE_BLOCKS: u64 = 3600;

/// The lease of a job submitted at height `submitted` that covers `height`: the ranking
/// of [`crate::driver`] picks a new driver each [`DRIVER_LEASE_BLOCKS`] blocks without a
/// result.
pub fn lease(submitted: u64, height: u64) -> u32 {
    u32::try_from(height.saturating_sub(submitted) / DRIVER_LEASE_BLOCKS).unwrap_or(u32::MAX)
}

/// A driver's record of a job beside its proofs: the prover of each node proven, the
/// receipts of those proven by others, and the failures counted per prover.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriveRecord<R> {
    /// The account key of the prover of each proven node.
    pub proven_by: BTreeMap<NodeRef, String>,
    /// The receipt of each node another prover proved (checked when it arrived).
    pub receipts: BTreeMap<NodeRef, R>,
    /// Failures per prover.
    pub failures: BTreeMap<ProverId, u32>,
}

impl<R> Default for DriveRecord<R> {
    fn default() -> Self {
        DriveRecord {
            proven_by: BTreeMap::new(),
            receipts: BTreeMap::new(),
            failures: BTreeMap::new(),
        }
    }
}

/// What a step of the drive asks of its caller.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Outputs {
    /// Nodes to ask of provers now, each with its prover (the children's proofs are
    /// [`Drive::children`]).
    pub asks: Vec<(NodeRef, ProverId)>,
    /// The record changed: keep [`Drive::record`] on disk before showing the view, so
    /// that what the view shows proven survives a crash.
    pub record_changed: bool,
    /// Provers that failed a node, for the log: (node, prover's account, why).
    pub failed: Vec<(NodeRef, String, Failure)>,
    /// Every node is proven: the root's proof is [`Drive::into_root`].
    pub done: bool,
}

/// A prover the drive may ask: its id in the schedule and its account key (as text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriveProver {
    /// Its id in the schedule.
    pub id: ProverId,
    /// Its account key, as the record and the view name it.
    pub account: String,
}

/// One job's drive: its schedule, proofs in hand, record and view.
#[derive(Debug)]
pub struct Drive<P, R> {
    schedule: Schedule,
    accounts: HashMap<ProverId, String>,
    proofs: BTreeMap<NodeRef, P>,
    /// Receipts of proofs checked, until the schedule counts the node proven by them.
    arrived: HashMap<(NodeRef, ProverId), R>,
    record: DriveRecord<R>,
    view: DriveView,
}

impl<P, R> Drive<P, R> {
    /// Starts (or resumes) driving job `job` over `tree` at `height`: the nodes of `kept`
    /// (proofs the caller checked again) count as proven by whom `record` says, the
    /// failures `record` counted go on counting, and the schedule hands out the rest.
    pub fn start(
        job: JobId,
        tree: ProofTree,
        delegators: &[DriveProver],
        orchestrators: &[DriveProver],
        height: u64,
        kept: BTreeMap<NodeRef, P>,
        mut record: DriveRecord<R>,
    ) -> Result<(Drive<P, R>, Outputs), ScheduleError> {
        let kept: BTreeMap<NodeRef, P> = kept
            .into_iter()
            .filter(|(n, _)| tree.contains(*n))
            .collect();
        record.proven_by.retain(|n, _| kept.contains_key(n));
        record.receipts.retain(|n, _| kept.contains_key(n));
        let mut view = DriveView::waiting(&tree, "proving");
        for n in kept.keys() {
            view.set(*n, "proven", record.proven_by.get(n).cloned(), 0);
        }
        let progress = Progress {
            proven: kept.keys().copied().collect(),
            failures: record.failures.clone(),
        };
        let (schedule, actions) = Schedule::start(
            job,
            tree,
            delegators.iter().map(|p| p.id).collect(),
            orchestrators.iter().map(|p| p.id).collect(),
            ATTEMPT_BLOCKS,
            height,
            &progress,
        )?;
        let accounts = delegators
            .iter()
            .chain(orchestrators)
            .map(|p| (p.id, p.account.clone()))
            .collect();
        let mut drive = Drive {
            schedule,
            accounts,
            proofs: kept,
            arrived: HashMap::new(),
            record,
            view,
        };
        let outputs = drive.apply(actions);
        Ok((drive, outputs))
    }

    /// What came back from `by` for node `n` at `height`: a proof the caller checked
    /// (with the receipt, if it came with one whose signature the caller checked) or why
    /// there is none.
    pub fn on_proof(
        &mut self,
        n: NodeRef,
        by: ProverId,
        outcome: Result<(P, Option<R>), String>,
        height: u64,
    ) -> Outputs {
        let valid = match outcome {
            Ok((proof, receipt)) => {
                if let Some(receipt) = receipt {
                    self.arrived.insert((n, by), receipt);
                }
                self.proofs.insert(n, proof);
                true
            }
            Err(_) => false,
        };
        let actions = self.schedule.step(Input::Proof {
            node: n,
            by,
            valid,
            height,
        });
        self.apply(actions)
    }

    /// The chain reached `height`: attempts that ended fail and move on.
    pub fn on_height(&mut self, height: u64) -> Outputs {
        let actions = self.schedule.step(Input::Tick { height });
        self.apply(actions)
    }

    /// The proofs of `n`'s children, all in hand once `n` is asked for.
    pub fn children(&self, n: NodeRef) -> Option<Vec<&P>> {
        self.schedule
            .tree()
            .children(n)
            .iter()
            .map(|c| self.proofs.get(c))
            .collect()
    }

    /// The record to keep: who proved what, their receipts, the failures.
    pub fn record(&self) -> &DriveRecord<R> {
        &self.record
    }

    /// What users see of the drive.
    pub fn view(&self) -> &DriveView {
        &self.view
    }

    /// The account of prover `p`, if the drive knows it.
    pub fn account_of(&self, p: &ProverId) -> Option<&str> {
        self.accounts.get(p).map(String::as_str)
    }

    /// The root's proof and the record, once the drive is done.
    pub fn into_root(mut self) -> Option<(P, DriveRecord<R>)> {
        if !self.schedule.is_done() {
            return None;
        }
        let root = self.proofs.remove(&self.schedule.tree().root())?;
        Some((root, self.record))
    }

    /// Applies the schedule's decisions to the record and the view.
    fn apply(&mut self, actions: Vec<Action>) -> Outputs {
        let mut out = Outputs::default();
        for action in actions {
            match action {
                Action::Assign {
                    node: n,
                    to,
                    attempt,
                    ..
                } => {
                    let account = self.accounts.get(&to).cloned();
                    self.view.set(n, "assigned", account, attempt);
                    out.asks.push((n, to));
                }
                Action::Proven { node: n, by } => {
                    let account = self.accounts.get(&by).cloned();
                    let attempt = self.view.attempt(n);
                    self.view.set(n, "proven", account.clone(), attempt);
                    if let Some(account) = account {
                        self.record.proven_by.insert(n, account);
                    }
                    if let Some(receipt) = self.arrived.remove(&(n, by)) {
                        self.record.receipts.insert(n, receipt);
                    }
                    out.record_changed = true;
                }
                Action::Failed {
                    node: n,
                    by,
                    reason,
                } => {
                    let account = self.accounts.get(&by).cloned().unwrap_or_default();
                    out.failed.push((n, account, reason));
                    out.record_changed = true;
                }
                Action::Ignored { .. } => {}
                Action::Done => out.done = true,
            }
        }
        self.view.failures = self
            .schedule
            .failures()
            .iter()
            .map(|(p, n)| (self.accounts.get(p).cloned().unwrap_or_default(), *n))
            .collect();
        if out.record_changed {
            self.record.failures.clone_from(self.schedule.failures());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::TreeShape;

    fn prover(i: u8) -> DriveProver {
        DriveProver {
            id: ProverId([i; 32]),
            account: format!("account-{i}"),
        }
    }

    fn node(level: u16, index: u32) -> NodeRef {
        NodeRef { level, index }
    }

    /// A drive of 4 segments folded pairwise, delegators 1 and 2, orchestrator 9.
    fn start(
        kept: BTreeMap<NodeRef, String>,
        record: DriveRecord<u8>,
    ) -> (Drive<String, u8>, Outputs) {
        let tree = ProofTree::plan(4, TreeShape::PAIRWISE).expect("tree");
        Drive::start(
            JobId([5; 32]),
            tree,
            &[prover(1), prover(2)],
            &[prover(9)],
            100,
            kept,
            record,
        )
        .expect("start")
    }

    /// Answers every ask with a valid proof and a receipt; returns the next outputs.
    fn answer_all(drive: &mut Drive<String, u8>, asks: &[(NodeRef, ProverId)]) -> Vec<Outputs> {
        asks.iter()
            .map(|(n, to)| {
                let proof = format!("proof of {n:?}");
                drive.on_proof(*n, *to, Ok((proof, Some(to.0[0]))), 101)
            })
            .collect()
    }

    #[test]
    fn a_drive_asks_segments_then_folds_and_records_who_proved_what() {
        let (mut drive, out) = start(BTreeMap::new(), DriveRecord::default());
        assert_eq!(out.asks.len(), 4, "every segment is asked at once");
        assert!(out.asks.iter().all(|(n, to)| n.level == 0 && to.0[0] != 9));
        assert_eq!(drive.view().phase, "proving");
        let mut asks = out.asks;
        let mut done = false;
        while !asks.is_empty() {
            let outs = answer_all(&mut drive, &asks);
            assert!(
                outs.iter().all(|o| o.record_changed),
                "each proof is recorded"
            );
            for (n, _) in outs.iter().flat_map(|o| &o.asks) {
                let children = drive.children(*n).expect("children in hand when asked");
                assert!(!children.is_empty());
            }
            done |= outs.iter().any(|o| o.done);
            asks = outs.into_iter().flat_map(|o| o.asks).collect();
        }
        assert!(done);
        let view = drive.view().clone();
        assert!(view.nodes.iter().all(|n| n.state == "proven"));
        let (root, record) = drive.into_root().expect("done");
        assert!(root.starts_with("proof of"));
        let tree = ProofTree::plan(4, TreeShape::PAIRWISE).expect("tree");
        assert_eq!(record.proven_by.len(), tree.nodes().count());
        assert_eq!(record.receipts.len(), tree.nodes().count());
        assert!(record.failures.is_empty());
    }

    #[test]
    fn a_bad_proof_moves_the_node_on_and_counts_against_its_prover() {
        let (mut drive, out) = start(BTreeMap::new(), DriveRecord::default());
        let (n, to) = out.asks[0];
        let next = drive.on_proof(n, to, Err("does not verify".into()), 101);
        assert_eq!(next.failed.len(), 1);
        assert_eq!(next.failed[0].2, Failure::InvalidProof);
        assert!(next.record_changed);
        assert_eq!(next.asks.len(), 1);
        assert_eq!(next.asks[0].0, n);
        assert_ne!(next.asks[0].1, to, "the node goes to the other delegator");
        assert_eq!(drive.record().failures.get(&to), Some(&1));
        assert_eq!(
            drive
                .view()
                .failures
                .get(drive.account_of(&to).expect("known")),
            Some(&1)
        );
    }

    #[test]
    fn a_late_prover_loses_its_node_at_the_deadline() {
        // Each delegator has two segments: the first of each is due after one attempt's
        // blocks, the one queued behind it gets time for both.
        let (mut drive, _) = start(BTreeMap::new(), DriveRecord::default());
        assert!(drive.on_height(100 + ATTEMPT_BLOCKS - 1).failed.is_empty());
        let late = drive.on_height(100 + ATTEMPT_BLOCKS);
        assert_eq!(late.failed.len(), 2);
        assert!(late.failed.iter().all(|f| f.2 == Failure::Late));
        assert_eq!(late.asks.len(), 2, "the late nodes are asked again");
        assert!(late.record_changed);
        let failed: u32 = drive.record().failures.values().sum();
        assert_eq!(failed, 2);
    }

    #[test]
    fn a_restart_resumes_from_kept_proofs_and_the_record() {
        let kept: BTreeMap<NodeRef, String> =
            [(node(0, 0), "a".into()), (node(0, 1), "b".into())].into();
        let mut record = DriveRecord::default();
        record.proven_by.insert(node(0, 0), "account-1".into());
        record.proven_by.insert(node(0, 1), "account-2".into());
        // A node no longer kept loses its record entry; its receipt goes with it.
        record.proven_by.insert(node(0, 2), "account-1".into());
        record.receipts.insert(node(0, 2), 1);
        record.failures.insert(ProverId([2; 32]), 3);
        let (drive, out) = start(kept, record);
        let mut asked: Vec<NodeRef> = out.asks.iter().map(|(n, _)| *n).collect();
        asked.sort();
        assert_eq!(asked, vec![node(0, 2), node(0, 3), node(1, 0)]);
        assert_eq!(drive.record().proven_by.len(), 2);
        assert!(drive.record().receipts.is_empty());
        assert_eq!(drive.record().failures.get(&ProverId([2; 32])), Some(&3));
        assert_eq!(
            drive.children(node(1, 0)),
            Some(vec![&"a".to_string(), &"b".to_string()])
        );
    }

    #[test]
    fn leases_change_every_lease_period() {
        assert_eq!(lease(10, 10), 0);
        assert_eq!(lease(10, 10 + DRIVER_LEASE_BLOCKS - 1), 0);
        assert_eq!(lease(10, 10 + DRIVER_LEASE_BLOCKS), 1);
        assert_eq!(
            lease(10, 5),
            0,
            "a height before submission is the first lease"
        );
    }
}
