//! What the orchestrator driving a compute job reports of it: the job's proof tree, which
//! nodes are proven and by whom, what is assigned, the failures counted. Shown to users
//! (`nexus compute status`) as the driver reports it; nothing in it decides anything.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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
