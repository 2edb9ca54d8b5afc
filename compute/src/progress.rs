//! What the orchestrator driving a compute job reports of it: the job's proof tree, which
//! nodes are proven and by whom, what is assigned, the failures counted. Shown to users
//! (`nexus compute status`) as the driver reports it; nothing in it decides anything.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::tree::{NodeRef, ProofTree};

/// A driven job's proof tree as its driver sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriveView {
    /// What the driver is doing, in words.
    pub phase: String,
    /// Nodes per tree level, segments first.
    pub levels: Vec<u32>,
    /// Every node of the tree.
    pub nodes: Vec<NodeView>,
    /// Failures per prover (account key), as the driver's schedule counted them.
    pub failures: BTreeMap<String, u32>,
}

/// One node of a driven job's tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeView {
    /// Tree level (0 = segments).
    pub level: u16,
    /// Position in the level.
    pub index: u32,
    /// `waiting`, `assigned` or `proven`.
    pub state: String,
    /// The prover's account key, once assigned.
    pub prover: Option<String>,
    /// Attempt number (each failure moves the node on).
    pub attempt: u32,
}

impl DriveView {
    /// The view of `tree` before anything is proven, in phase `phase`.
    pub fn waiting(tree: &ProofTree, phase: &str) -> DriveView {
        DriveView {
            phase: phase.into(),
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

    /// A view that says only what the driver is doing (no tree known yet).
    pub fn phase_only(phase: String) -> DriveView {
        DriveView {
            phase,
            levels: Vec::new(),
            nodes: Vec::new(),
            failures: BTreeMap::new(),
        }
    }

    /// Sets what the view shows of node `n`.
    pub fn set(&mut self, n: NodeRef, state: &str, prover: Option<String>, attempt: u32) {
        if let Some(v) = self.node_mut(n) {
            v.state = state.into();
            v.prover = prover;
            v.attempt = attempt;
        }
    }

    /// The attempt the view shows for node `n`.
    pub fn attempt(&self, n: NodeRef) -> u32 {
        self.nodes
            .iter()
            .find(|v| v.level == n.level && v.index == n.index)
            .map_or(0, |v| v.attempt)
    }

    fn node_mut(&mut self, n: NodeRef) -> Option<&mut NodeView> {
        self.nodes
            .iter_mut()
            .find(|v| v.level == n.level && v.index == n.index)
    }
}
