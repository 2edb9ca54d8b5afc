//! Gossipsub topics: new blocks from the proposer, and transactions submitted to it.

use nexus_storage::ledger::SignedTransaction;
use nexus_storage::Block;
use serde::{Deserialize, Serialize};

/// Topic on which the proposer announces each new block.
pub const BLOCKS_TOPIC: &str = "/nexus/blocks/1";
/// Topic on which nodes submit transactions for the proposer to order.
pub const TRANSACTIONS_TOPIC: &str = "/nexus/transactions/1";
/// Largest gossip message accepted.
pub const MAX_GOSSIP_SIZE: usize = 1024 * 1024;

/// A transaction a node asks the proposer to include. `attempt` makes a resubmission a
/// new message (gossipsub drops exact duplicates).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxSubmission {
    /// The signed transaction.
    pub tx: SignedTransaction,
    /// Distinguishes resubmissions.
    pub attempt: u64,
}

/// Any message carried over gossip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GossipMessage {
    /// A new block (unverified).
    Block(Box<Block>),
    /// A transaction for the proposer.
    Transaction(Box<TxSubmission>),
}

impl GossipMessage {
    /// The topic this message travels on.
    pub fn topic(&self) -> &'static str {
        match self {
            GossipMessage::Block(_) => BLOCKS_TOPIC,
            GossipMessage::Transaction(_) => TRANSACTIONS_TOPIC,
        }
    }
}
