//! Who proves which node of a job's proof tree, and when a node moves to another prover.
//!
//! Segments go to *delegators*, every folding node to *orchestrators*, each node to the
//! prover with the fewest of the job's nodes in hand among those that have not failed it,
//! ties broken by rendezvous hashing of (job, node, attempt, prover), so a job's nodes
//! spread evenly over its provers. A node's attempt ends at a block height; a proof that
//! does not verify, or none by then, counts as a failure of that prover and moves the node
//! on. A folding node is handed out once all its children are proven. Deterministic: the
//! same job, prover lists and events give the same assignments everywhere, so anyone can
//! recompute the schedule from the chain. Proofs are checked by the caller (the zkVM's
//! verifier); this module only learns the verdict.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::tree::{NodeRef, ProofTree};

/// A job's identity (the id of its `ComputeJob` transaction).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct JobId(pub [u8; 32]);

/// A prover's identity (a digest of its account key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ProverId(pub [u8; 32]);

/// What the schedule learns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Input {
    /// The chain reached `height`: attempts that ended by then fail.
    Tick {
        /// The height.
        height: u64,
    },
    /// `by` sent a proof of `node`, which the caller checked: `valid` is the verdict.
    Proof {
        /// The node it proves.
        node: NodeRef,
        /// Its sender.
        by: ProverId,
        /// Whether it verified (against the node's circuit and its children's proofs).
        valid: bool,
        /// Height at which it arrived.
        height: u64,
    },
}

/// What the schedule decides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// `to` is to prove `node` before height `until`.
    Assign {
        /// The node.
        node: NodeRef,
        /// Its prover for this attempt.
        to: ProverId,
        /// Attempt number, from 0.
        attempt: u32,
        /// The attempt's last height.
        until: u64,
    },
    /// `node` is proven (by `by`'s proof, which verified).
    Proven {
        /// The node.
        node: NodeRef,
        /// Whose proof it is.
        by: ProverId,
    },
    /// A prover failed a node: its proof did not verify, or it sent none in time.
    Failed {
        /// The node.
        node: NodeRef,
        /// The prover.
        by: ProverId,
        /// Why.
        reason: Failure,
    },
    /// A proof that changes nothing (not asked of its sender, or the node is proven).
    Ignored {
        /// The node.
        node: NodeRef,
        /// Its sender.
        by: ProverId,
    },
    /// The root is proven: the job's proof tree is complete.
    Done,
}

/// Why a prover failed a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Failure {
    /// Its proof did not verify.
    InvalidProof,
    /// No proof by the end of its attempt.
    Late,
}

/// Why a schedule cannot start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// Nobody to prove segments, or nobody to fold them.
    #[error("a job needs at least one delegator and one orchestrator")]
    NoProvers,
    /// Attempts must last at least a block.
    #[error("an attempt must last at least one block")]
    ZeroDeadline,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum NodeState {
    /// Some children are not proven yet.
    Waiting,
    /// Handed out.
    Assigned {
        to: ProverId,
        attempt: u32,
        until: u64,
        /// Provers that failed it (excluded from later attempts while others remain).
        failed: Vec<ProverId>,
    },
    Proven,
}

/// The schedule of one job's proof tree.
#[derive(Debug, Clone)]
pub struct Schedule {
    job: JobId,
    tree: ProofTree,
    delegators: Vec<ProverId>,
    orchestrators: Vec<ProverId>,
    attempt_blocks: u64,
    nodes: BTreeMap<NodeRef, NodeState>,
    failures: BTreeMap<ProverId, u32>,
    done: bool,
}

/// What a driver kept of a job's schedule across a restart: the nodes whose proofs it
/// still holds (checked again) and the failures it had counted. Empty for a new job.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// Nodes proven already.
    pub proven: BTreeSet<NodeRef>,
    /// Failures counted per prover so far.
    pub failures: BTreeMap<ProverId, u32>,
}

impl Schedule {
    /// Starts the schedule at `height` from `kept` (empty for a new job, or what a driver
    /// that restarted had kept): only what is still needed is handed out — no node under a
    /// proven one, and a node only once its children are proven, so a new job hands out
    /// every segment at once and a kept root makes the schedule done at once. Failures go
    /// on counting from `kept`'s. Each attempt lasts `attempt_blocks`.
    pub fn start(
        job: JobId,
        tree: ProofTree,
        delegators: Vec<ProverId>,
        orchestrators: Vec<ProverId>,
        attempt_blocks: u64,
        height: u64,
        kept: &Progress,
    ) -> Result<(Schedule, Vec<Action>), ScheduleError> {
        if delegators.is_empty() || orchestrators.is_empty() {
            return Err(ScheduleError::NoProvers);
        }
        if attempt_blocks == 0 {
            return Err(ScheduleError::ZeroDeadline);
        }
        let nodes = tree
            .nodes()
            .map(|n| {
                let state = if kept.proven.contains(&n) {
                    NodeState::Proven
                } else {
                    NodeState::Waiting
                };
                (n, state)
            })
            .collect();
        let mut schedule = Schedule {
            job,
            tree,
            delegators,
            orchestrators,
            attempt_blocks,
            nodes,
            failures: kept.failures.clone(),
            done: false,
        };
        let mut actions = Vec::new();
        if schedule.is_proven(schedule.tree.root()) {
            schedule.done = true;
            actions.push(Action::Done);
            return Ok((schedule, actions));
        }
        let ready: Vec<NodeRef> = schedule
            .tree
            .nodes()
            .filter(|n| !schedule.is_proven(*n) && !schedule.has_proven_ancestor(*n))
            .filter(|n| {
                let children = schedule.tree.children(*n);
                children.iter().all(|c| schedule.is_proven(*c))
            })
            .collect();
        for node in ready {
            schedule.assign(node, 0, Vec::new(), height, &mut actions);
        }
        Ok((schedule, actions))
    }

    /// Whether a node above `node` is proven (which makes `node`'s proof unneeded).
    fn has_proven_ancestor(&self, node: NodeRef) -> bool {
        std::iter::successors(self.tree.parent(node), |p| self.tree.parent(*p))
            .any(|p| self.is_proven(p))
    }

    /// The tree scheduled.
    pub fn tree(&self) -> &ProofTree {
        &self.tree
    }

    /// Whether the root is proven.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Failures per prover so far (bad or missing proofs).
    pub fn failures(&self) -> &BTreeMap<ProverId, u32> {
        &self.failures
    }

    /// Whether `node` is proven.
    pub fn is_proven(&self, node: NodeRef) -> bool {
        matches!(self.nodes.get(&node), Some(NodeState::Proven))
    }

    /// Who must prove `node` now, and until when (none if it waits or is proven).
    pub fn assignee(&self, node: NodeRef) -> Option<(ProverId, u64)> {
        match self.nodes.get(&node) {
            Some(NodeState::Assigned { to, until, .. }) => Some((*to, *until)),
            _ => None,
        }
    }

    /// Takes in `input`; returns what follows from it, in order.
    pub fn step(&mut self, input: Input) -> Vec<Action> {
        let mut actions = Vec::new();
        match input {
            Input::Tick { height } => {
                let ended: Vec<NodeRef> = self
                    .nodes
                    .iter()
                    .filter(
                        |(_, s)| matches!(s, NodeState::Assigned { until, .. } if *until <= height),
                    )
                    .map(|(n, _)| *n)
                    .collect();
                for node in ended {
                    self.fail(node, Failure::Late, height, &mut actions);
                }
            }
            Input::Proof {
                node,
                by,
                valid,
                height,
            } => self.on_proof(node, by, valid, height, &mut actions),
        }
        actions
    }

    fn on_proof(
        &mut self,
        node: NodeRef,
        by: ProverId,
        valid: bool,
        height: u64,
        actions: &mut Vec<Action>,
    ) {
        let Some(NodeState::Assigned { to, failed, .. }) = self.nodes.get(&node) else {
            actions.push(Action::Ignored { node, by });
            return;
        };
        // A late prover's valid proof is as good as anyone's: the work is done.
        let asked = *to == by || failed.contains(&by);
        match (asked, valid) {
            (true, true) => self.proven(node, by, height, actions),
            (true, false) if *to == by => self.fail(node, Failure::InvalidProof, height, actions),
            (true, false) => {
                *self.failures.entry(by).or_default() += 1;
                actions.push(Action::Failed {
                    node,
                    by,
                    reason: Failure::InvalidProof,
                });
            }
            (false, _) => actions.push(Action::Ignored { node, by }),
        }
    }

    /// The current assignee of `node` failed it: recorded, and the node moves on.
    fn fail(&mut self, node: NodeRef, reason: Failure, height: u64, actions: &mut Vec<Action>) {
        let Some(NodeState::Assigned {
            to,
            attempt,
            mut failed,
            ..
        }) = self.nodes.get(&node).cloned()
        else {
            return;
        };
        *self.failures.entry(to).or_default() += 1;
        actions.push(Action::Failed {
            node,
            by: to,
            reason,
        });
        if !failed.contains(&to) {
            failed.push(to);
        }
        self.assign(node, attempt + 1, failed, height, actions);
    }

    fn proven(&mut self, node: NodeRef, by: ProverId, height: u64, actions: &mut Vec<Action>) {
        self.nodes.insert(node, NodeState::Proven);
        actions.push(Action::Proven { node, by });
        let Some(parent) = self.tree.parent(node) else {
            self.done = true;
            actions.push(Action::Done);
            return;
        };
        if self
            .tree
            .children(parent)
            .iter()
            .all(|c| self.is_proven(*c))
        {
            self.assign(parent, 0, Vec::new(), height, actions);
        }
    }

    /// Nodes of this job handed to each prover and not proven yet (one pass over the tree).
    fn loads(&self) -> BTreeMap<ProverId, u64> {
        let mut loads = BTreeMap::new();
        for state in self.nodes.values() {
            if let NodeState::Assigned { to, .. } = state {
                *loads.entry(*to).or_default() += 1;
            }
        }
        loads
    }

    /// Hands `node` to the least loaded prover of its pool that has not failed it (any of
    /// the pool if all have), the first by rank among equals, so that a job's nodes spread
    /// evenly over its provers. The attempt lasts `attempt_blocks` for each node queued at
    /// that prover, this one included (a prover proves its share one after another).
    fn assign(
        &mut self,
        node: NodeRef,
        attempt: u32,
        failed: Vec<ProverId>,
        height: u64,
        actions: &mut Vec<Action>,
    ) {
        let pool = if node.level == 0 {
            &self.delegators
        } else {
            &self.orchestrators
        };
        let fresh: Vec<&ProverId> = pool.iter().filter(|p| !failed.contains(p)).collect();
        let candidates = if fresh.is_empty() {
            pool.iter().collect()
        } else {
            fresh
        };
        let loads = self.loads();
        let load = |p: &ProverId| loads.get(p).copied().unwrap_or(0);
        let to = **candidates
            .iter()
            .min_by_key(|p| (load(p), Reverse(rank(&self.job, node, attempt, p))))
            .expect("pools are not empty (checked at start)");
        let queued = load(&to) + 1;
        let until = height.saturating_add(self.attempt_blocks.saturating_mul(queued));
        self.nodes.insert(
            node,
            NodeState::Assigned {
                to,
                attempt,
                until,
                failed,
            },
        );
        actions.push(Action::Assign {
            node,
            to,
            attempt,
            until,
        });
    }
}

/// The orchestrator that drives `job` (hands its nodes out, seals and anchors it) during
/// its `lease`-th lease: the first by rendezvous hash among `orchestrators`, so each lease
/// that passes without a result moves the job to another.
pub fn driver(job: &JobId, orchestrators: &[ProverId], lease: u32) -> Option<ProverId> {
    let role = NodeRef {
        level: u16::MAX,
        index: u32::MAX,
    };
    orchestrators
        .iter()
        .max_by_key(|p| rank(job, role, lease, p))
        .copied()
}

/// A prover's rank for an attempt at a node: a hash everyone computes alike.
fn rank(job: &JobId, node: NodeRef, attempt: u32, prover: &ProverId) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"nexus-compute-assignment");
    h.update(job.0);
    h.update(node.level.to_be_bytes());
    h.update(node.index.to_be_bytes());
    h.update(attempt.to_be_bytes());
    h.update(prover.0);
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::TreeShape;

    fn resume(segments: u32, proven: &[(u16, u32)]) -> (Schedule, Vec<Action>) {
        let kept = Progress {
            proven: proven
                .iter()
                .map(|&(level, index)| NodeRef { level, index })
                .collect(),
            failures: BTreeMap::new(),
        };
        resume_from(segments, &kept)
    }

    fn resume_from(segments: u32, kept: &Progress) -> (Schedule, Vec<Action>) {
        let tree = ProofTree::plan(segments, TreeShape::WIDEST).expect("a tree");
        Schedule::start(
            JobId([7; 32]),
            tree,
            vec![ProverId([1; 32]), ProverId([2; 32])],
            vec![ProverId([3; 32])],
            10,
            100,
            kept,
        )
        .expect("provers in both pools")
    }

    fn assigned(actions: &[Action]) -> Vec<(u16, u32)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Assign { node, .. } => Some((node.level, node.index)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn resuming_hands_out_only_what_is_missing() {
        // 8 segments, 2 leaves; segments 0-3 and 5 kept: leaf 0 can be folded now,
        // segments 4, 6, 7 are proven again.
        let (_, actions) = resume(8, &[(0, 0), (0, 1), (0, 2), (0, 3), (0, 5)]);
        assert_eq!(assigned(&actions), [(0, 4), (0, 6), (0, 7), (1, 0)]);
    }

    #[test]
    fn nothing_under_a_proven_node_is_proven_again() {
        // Leaf 0 kept (its segments not): only leaf 1's segments are handed out.
        let (mut schedule, actions) = resume(8, &[(1, 0)]);
        assert_eq!(assigned(&actions), [(0, 4), (0, 5), (0, 6), (0, 7)]);
        for index in 4..8 {
            let node = NodeRef { level: 0, index };
            let (by, _) = schedule.assignee(node).expect("assigned");
            schedule.step(Input::Proof {
                node,
                by,
                valid: true,
                height: 101,
            });
        }
        // Leaf 1 proven by its orchestrator: the internal node follows.
        let leaf = NodeRef { level: 1, index: 1 };
        let (by, _) = schedule.assignee(leaf).expect("assigned");
        let next = schedule.step(Input::Proof {
            node: leaf,
            by,
            valid: true,
            height: 102,
        });
        assert_eq!(assigned(&next), [(2, 0)]);
    }

    #[test]
    fn failures_go_on_counting_from_the_kept_ones() {
        let (late, other) = (ProverId([1; 32]), ProverId([9; 32]));
        let kept = Progress {
            proven: BTreeSet::new(),
            failures: [(late, 2), (other, 5)].into(),
        };
        let (mut schedule, _) = resume_from(1, &kept);
        assert_eq!(schedule.failures(), &kept.failures);
        let segment = NodeRef { level: 0, index: 0 };
        let (by, until) = schedule.assignee(segment).expect("assigned");
        schedule.step(Input::Tick { height: until });
        assert_eq!(
            schedule.failures()[&by],
            kept.failures.get(&by).map_or(1, |n| n + 1)
        );
        assert_eq!(schedule.failures()[&other], 5);
    }

    #[test]
    fn nodes_spread_evenly_and_a_queued_node_gets_time_for_those_ahead() {
        let (schedule, actions) = resume(8, &[]);
        let mut per_prover: BTreeMap<ProverId, Vec<u64>> = BTreeMap::new();
        for action in &actions {
            if let Action::Assign { to, until, .. } = action {
                per_prover.entry(*to).or_default().push(*until);
            }
        }
        assert_eq!(per_prover.len(), 2, "{per_prover:?}");
        for untils in per_prover.values() {
            // Four segments each, the k-th due k attempts after the start (height 100).
            assert_eq!(untils, &[110, 120, 130, 140]);
        }
        // A failure moves the node to the other delegator, behind its own four.
        let mut schedule = schedule;
        let segment = NodeRef { level: 0, index: 0 };
        let (first, _) = schedule.assignee(segment).expect("assigned");
        schedule.step(Input::Proof {
            node: segment,
            by: first,
            valid: false,
            height: 105,
        });
        let (second, until) = schedule.assignee(segment).expect("reassigned");
        assert_ne!(second, first);
        assert_eq!(until, 105 + 5 * 10);
    }

    #[test]
    fn a_kept_root_is_done_at_once() {
        let tree = ProofTree::plan(3, TreeShape::WIDEST).expect("a tree");
        let root = tree.root();
        let (schedule, actions) = resume(3, &[(root.level, root.index)]);
        assert!(schedule.is_done());
        assert!(matches!(actions.as_slice(), [Action::Done]));
    }
}
