//! `/nexus/prove/1`: a job's driving orchestrator asks a prover for one node of the job's
//! proof tree — a delegator proves a segment, an orchestrator folds the child proofs it is
//! sent. The answer comes when the proof is made (minutes), so the protocol has its own
//! long timeout; a prover that dies mid-proof closes the stream and the driver reassigns
//! the node at once.

use std::time::Duration;

use libp2p::StreamProtocol;
use nexus_consensus::Signature;
use nexus_das::merkle::Digest;
use serde::{Deserialize, Serialize};

use crate::codec::Caps;

/// Protocol id.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/nexus/prove/1");

/// Largest proof carried (a segment proof is ~0.5–1.2 MB).
pub const MAX_PROOF_BYTES: usize = 8 << 20;

/// Most children a folding node has (OpenVM's leaf arity).
pub const MAX_CHILDREN: usize = 4;

/// Size caps: a fold request carries its children's proofs.
pub const CAPS: Caps = Caps {
    request: MAX_CHILDREN * (MAX_PROOF_BYTES + 16) + 1024,
    response: MAX_PROOF_BYTES + 4096,
};

/// How long a driver waits for one proof before it reassigns the node.
pub const TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// One node of a job's proof tree to prove.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProveRequest {
    /// Prove segment `index` of the job's run (a delegator's work).
    Segment {
        /// The job's id.
        job: Digest,
        /// The segment.
        index: u32,
    },
    /// Fold `children` (the proofs of the node's children, in order) into the proof of
    /// node `index` of tree level `level` (an orchestrator's work).
    Fold {
        /// The job's id.
        job: Digest,
        /// Tree level (1 = leaves).
        level: u16,
        /// Position in the level.
        index: u32,
        /// The children's proofs.
        children: Vec<serde_bytes::ByteBuf>,
    },
}

impl ProveRequest {
    /// The job, and the level (0 for a segment) and index of the tree node asked for.
    pub fn node(&self) -> (Digest, u16, u32) {
        match self {
            ProveRequest::Segment { job, index } => (*job, 0, *index),
            ProveRequest::Fold {
                job, level, index, ..
            } => (*job, *level, *index),
        }
    }
}

/// The answer to a [`ProveRequest`]. The driver checks the proof before it uses it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProveResponse {
    /// The node's proof, with the prover's receipt for it: its account's signature of
    /// the ledger's receipt message for this job, node and driver, which the driver's
    /// result carries so that the ledger pays the prover for the node.
    Proof {
        /// The proof, encoded.
        #[serde(with = "serde_bytes")]
        proof: Vec<u8>,
        /// The receipt.
        receipt: Signature,
    },
    /// The prover will not prove it (not its role, unknown job, busy), in words.
    Refused(String),
}
