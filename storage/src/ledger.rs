//! The ledger of storage season 2: accounts, staked orchestrators and the providers that
//! joined them, paid storage, storage challenges and slashing. A deterministic state
//! machine applied to every block; pure (no I/O), so nodes replaying the same blocks reach
//! the same state root.

mod memo;
mod state;
mod tx;
mod types;
mod verifier;

#[cfg(test)]
mod tests;

pub use state::{
    job_id, prepare_execution, receipt_message, ChallengeDuty, GenesisError, LedgerEvent,
    LedgerState, ShardDuty, MAX_CREDITED_NODES, MAX_CREDITS, MAX_JOB_LIFETIME, MAX_JOB_SEGMENTS,
};
pub use tx::{
    LeafAnswer, SignedTransaction, Transaction, TxError, TxKind, MAX_PROGRAM_BYTES,
    MAX_RESULT_TX_BYTES, MAX_TX_BYTES,
};
pub use types::{
    Account, Amount, Challenge, ComputeJob, ComputeProver, Credit, Epoch, Genesis, JobResult,
    JobState, LedgerParams, Orchestrator, Payout, PolicySpec, Provider, StoredBlob, Unbonding, BPS,
};
pub use verifier::ComputeVerifier;
#[cfg(feature = "zkvm")]
pub use verifier::OpenVm;
