//! `/nexus/drive/1`: anyone asks the orchestrator that drives a compute job for its picture
//! of the job's proof tree — which nodes are proven and by whom, what is assigned, what is
//! left, the failures counted — so that `nexus compute status` and `submit` show a job's
//! progress through any node, not only through its driver. Read-only, answered from memory,
//! shown as the driver reports it (nothing in it is used for a decision).

use libp2p::StreamProtocol;
use nexus_das::merkle::Digest;
use serde::{Deserialize, Serialize};

pub use nexus_compute::progress::{DriveView, NodeView};

use crate::codec::Caps;

/// Protocol id.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/nexus/drive/1");

/// Size caps: the view of a job of 4,096 segments (the most a job has) lists ~5,500 tree
/// nodes of ~130 bytes each.
pub const CAPS: Caps = Caps {
    request: 64,
    response: 2 * 1024 * 1024,
};

/// Asks for the driver's view of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriveRequest {
    /// The job's id.
    pub job: Digest,
}

/// The answer to a [`DriveRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DriveResponse {
    /// The peer drives (or drove) the job: its view.
    View(DriveView),
    /// The peer has no view of the job (it does not drive it, or has forgotten it).
    Unknown,
}
