//! Gossipsub topics: new blocks from the proposer, and blob registrations submitted to it.

use nexus_storage::{BlobRegistration, Block};
use serde::{Deserialize, Serialize};

/// Topic on which the proposer announces each new block.
pub const BLOCKS_TOPIC: &str = "/nexus/blocks/1";
/// Topic on which nodes submit blob registrations for the proposer to order.
pub const REGISTRATIONS_TOPIC: &str = "/nexus/registrations/1";
/// Largest gossip message accepted.
pub const MAX_GOSSIP_SIZE: usize = 1024 * 1024;

/// A registration a node asks the proposer to include. `nonce` makes a resubmission a new
/// message (gossipsub drops exact duplicates).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrationSubmission {
    /// The registration.
    pub registration: BlobRegistration,
    /// Distinguishes resubmissions.
    pub nonce: u64,
}

/// Any message carried over gossip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GossipMessage {
    /// A new block (unverified).
    Block(Box<Block>),
    /// A registration for the proposer.
    Registration(RegistrationSubmission),
}

impl GossipMessage {
    /// The topic this message travels on.
    pub fn topic(&self) -> &'static str {
        match self {
            GossipMessage::Block(_) => BLOCKS_TOPIC,
            GossipMessage::Registration(_) => REGISTRATIONS_TOPIC,
        }
    }
}
