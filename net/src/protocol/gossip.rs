//! Gossipsub topics: consensus messages among validators, final headers for everyone
//! (light clients included), and transactions submitted to the validators.

use nexus_consensus::{CertifiedHeader, ConsensusMessage};
use serde::{Deserialize, Serialize};

use crate::codec::Encoded;

/// Topic of proposals, votes and timeouts (validators only).
pub const CONSENSUS_TOPIC: &str = "/nexus/consensus/1";
/// Topic on which validators announce each block that became final.
pub const FINALIZED_TOPIC: &str = "/nexus/finalized/1";
/// Topic on which nodes submit transactions for the validators to order.
pub const TRANSACTIONS_TOPIC: &str = "/nexus/transactions/1";
/// Largest gossip message accepted: a proposal carries its whole block.
pub const MAX_GOSSIP_SIZE: usize = crate::protocol::blocks::MAX_BLOCK_BYTES + 64 * 1024;

/// A consensus message; a proposal travels with its block's body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsensusGossip {
    /// The message (unverified).
    pub message: ConsensusMessage,
    /// For a proposal: the encoded block (header and transactions); empty otherwise.
    pub body: Encoded,
    /// Distinguishes sends of the same message (gossipsub drops exact duplicates, and a
    /// timeout is re-sent until its round ends, for validators that were away).
    pub send: u64,
}

/// A transaction a node asks the validators to include. `attempt` makes a resubmission
/// a new message (gossipsub drops exact duplicates).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxSubmission {
    /// The encoded signed transaction.
    pub tx: Encoded,
    /// Distinguishes resubmissions.
    pub attempt: u64,
}

/// Any message carried over gossip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GossipMessage {
    /// Between validators.
    Consensus(Box<ConsensusGossip>),
    /// A block became final: its header and the proof.
    Finalized(Box<CertifiedHeader>),
    /// A transaction for the validators.
    Transaction(Box<TxSubmission>),
}

impl GossipMessage {
    /// The topic this message travels on.
    pub fn topic(&self) -> &'static str {
        match self {
            GossipMessage::Consensus(_) => CONSENSUS_TOPIC,
            GossipMessage::Finalized(_) => FINALIZED_TOPIC,
            GossipMessage::Transaction(_) => TRANSACTIONS_TOPIC,
        }
    }
}
