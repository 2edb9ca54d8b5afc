//! What the engine takes in and what it asks its host to do.
//!
//! The host runs the actions of one step in order. [`Action::Persist`] comes before the
//! messages it protects: the host must have it on disk (fsync) before it sends anything
//! listed after it.

use serde::{Deserialize, Serialize};

use crate::certificate::{QuorumCertificate, TimeoutCertificate};
use crate::header::Header;
use crate::ids::{BlockHash, Round};
use crate::message::{ConsensusMessage, Verified};
use crate::safety::SafetyData;
use crate::votes::Evidence;

/// An event for the engine.
#[derive(Debug, Clone)]
pub enum Input {
    /// Time passed (the host calls this at [`crate::Engine::next_wakeup`] or sooner).
    Tick,
    /// A message from a validator, checked with [`ConsensusMessage::verify`]. A proposal
    /// is passed on only once the host checked its block's body and ledger transition.
    Message(Verified<ConsensusMessage>),
    /// The block the host built after [`Action::Propose`].
    Built(Box<Header>),
    /// The host's own sampling of this block's data reached its confidence target.
    Available(BlockHash),
}

/// Something the host must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write this durably (fsync) before doing any later action of the same step.
    Persist(Box<RecoveryState>),
    /// Send to every validator.
    Broadcast(ConsensusMessage),
    /// Build a block for `round` on top of `parent` (ledger-valid, timestamped, with this
    /// node's key as proposer), and hand its header back with [`Input::Built`].
    Propose {
        /// The round.
        round: Round,
        /// The block to extend.
        parent: BlockHash,
    },
    /// Sample this block's data; report [`Input::Available`] once the target is reached
    /// (and nothing if it never is: the engine simply does not vote).
    Sample {
        /// The block.
        block: BlockHash,
        /// Its header (with the DataRoot and code parameters).
        header: Header,
    },
    /// `block` is final, proven by `qc` (whose vote commits it), and so is every ancestor
    /// not yet committed.
    Commit {
        /// The block.
        block: BlockHash,
        /// Its finality certificate.
        qc: QuorumCertificate,
    },
    /// A validator signed conflicting messages.
    Evidence(Box<Evidence>),
}

/// What a validator persists to resume safely: its safety data and the highest
/// certificates it holds (so that after a restart it can time out and propose on them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryState {
    /// The signer's state.
    pub safety: SafetyData,
    /// Highest QC held.
    pub high_qc: QuorumCertificate,
    /// Latest TC held.
    pub high_tc: Option<TimeoutCertificate>,
}
