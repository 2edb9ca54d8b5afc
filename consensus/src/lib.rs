//! Nexus consensus: pipelined two-chain HotStuff-2 (the Jolteon/Aptos form) run by a
//! stake-weighted validator committee, as a deterministic state machine.
//!
//! - [`Engine::step`] is the single entry point: [`Input`]s (verified messages, timer
//!   ticks, "sampling finished") in, [`Action`]s (persist, broadcast, propose, sample,
//!   commit) out. No I/O, no clock, no threads: the host passes time in.
//! - [`SafetyRules`] is the only signer of votes and timeouts; the host persists its
//!   [`RecoveryState`] before anything it signed leaves the node.
//! - Certificates are one aggregate BLS signature and a signer bitmap over more than two
//!   thirds of the committee's stake; every signed message has one canonical,
//!   domain-separated encoding (chain, kind, epoch, round).
//! - [`Header`], [`FinalityProof`] and [`Context`] are all a light client needs to check
//!   that a block is final.

mod bitmap;
mod certificate;
mod committee;
mod context;
mod engine;
mod finality;
mod header;
mod ids;
mod io;
pub mod keys;
mod message;
mod pacemaker;
mod safety;
mod signing;
mod spec;
mod votes;

pub use bitmap::SignerBitmap;
pub use certificate::{CertificateError, QuorumCertificate, TimeoutCertificate, VoteData};
pub use committee::{Committee, CommitteeError, Validator, MAX_VALIDATORS};
pub use context::Context;
pub use engine::{Engine, EngineCounters, EngineStatus};
pub use finality::{CertifiedHeader, FinalityError, FinalityProof, MAX_PROOF_HEADERS};
pub use header::{DataError, DataHeader, Header};
pub use ids::{BlockHash, Epoch, Height, Round};
pub use io::{Action, Input, RecoveryState};
pub use keys::{KeyError, PublicKey, Signature, SigningKey};
pub use message::{ConsensusMessage, MessageError, Proposal, Timeout, Verified, Vote};
pub use pacemaker::PacemakerConfig;
pub use safety::{SafetyData, SafetyError, SafetyRules};
pub use spec::{ChainSpec, ChainTag, SpecError, MAX_CHAIN_ID_LEN};
pub use votes::Evidence;
