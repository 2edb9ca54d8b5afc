//! Ledger value types: amounts, epochs, parameters, genesis, and the records the state keeps.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::blob::BlobId;
use crate::keys::{PublicKey, Signature};
use nexus_consensus::DataHeader;

/// An amount of the native token, in base units.
pub type Amount = u64;

/// An epoch number: epoch `e` starts at block `e * epoch_blocks`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
pub struct Epoch(pub u64);

impl std::fmt::Display for Epoch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Basis points: 10 000 = 100 %.
pub const BPS: u64 = 10_000;

/// The network's economic and storage parameters, fixed at genesis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerParams {
    /// Blocks per epoch.
    pub epoch_blocks: u64,
    /// Epochs an unbonded stake waits before it returns to the balance.
    pub unbonding_epochs: u64,
    /// Smallest stake an orchestrator may hold.
    pub min_stake: Amount,
    /// Provider capacity (bytes) one unit of an orchestrator's stake can back.
    pub bytes_per_stake: u64,
    /// Fee per MiB of encoded data per epoch.
    pub price_per_mib_epoch: Amount,
    /// Reed-Solomon data shards of the `erasure` policy.
    pub data_shards: u16,
    /// Reed-Solomon parity shards of the `erasure` policy.
    pub parity_shards: u16,
    /// Leaves challenged per placed shard per epoch.
    pub challenges_per_shard: u16,
    /// Blocks a provider has to answer a challenge.
    pub response_window: u64,
    /// Missed or wrong answers after which the provider is evicted and its orchestrator
    /// slashed.
    pub failure_threshold: u32,
    /// Fraction of the orchestrator's stake slashed per evicted provider, in basis points.
    pub slash_bps: u64,
    /// Dimensions of the KZG tensor code every block's payload is encoded with (1 to 3).
    #[serde(default = "default_data_dims")]
    pub data_dims: u8,
    /// Most bytes of `das` blobs one block may carry in its payload.
    #[serde(default = "default_max_block_data")]
    pub max_block_data: u64,
    /// Smallest fee a transaction may offer; fees are burned when a transaction applies.
    #[serde(default = "default_min_tx_fee")]
    pub min_tx_fee: Amount,
}

/// One token: spam costs money while a put's own fee dwarfs it.
fn default_min_tx_fee() -> Amount {
    1
}

/// 8 MiB: a block's payload then fits 67 of the 1,024 rows the code allows, and its
/// uploader encodes it (with every proof) in about ten seconds on two cores.
fn default_max_block_data() -> u64 {
    8 << 20
}

/// Two dimensions, Danksharding's square: the fewest samples for a payload larger than
/// one row (see the README's confidence table).
fn default_data_dims() -> u8 {
    2
}

impl Default for LedgerParams {
    fn default() -> Self {
        LedgerParams {
            epoch_blocks: 20,
            unbonding_epochs: 2,
            min_stake: 1_000,
            bytes_per_stake: 1 << 30,
            price_per_mib_epoch: 1,
            data_shards: 4,
            parity_shards: 2,
            challenges_per_shard: 2,
            response_window: 10,
            failure_threshold: 1,
            slash_bps: 1_000,
            data_dims: default_data_dims(),
            max_block_data: default_max_block_data(),
            min_tx_fee: default_min_tx_fee(),
        }
    }
}

/// What the chain starts with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    /// Parameters.
    pub params: LedgerParams,
    /// Initial balances.
    pub balances: Vec<(PublicKey, Amount)>,
}

/// A balance and the next nonce it expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Account {
    /// Spendable balance.
    pub balance: Amount,
    /// Nonce the next transaction from this account must carry.
    pub nonce: u64,
}

/// Stake returning to the balance at `release`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unbonding {
    /// Epoch at which it is released.
    pub release: Epoch,
    /// Amount.
    pub amount: Amount,
}

/// A staked orchestrator and the providers that joined it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Orchestrator {
    /// Bonded stake (slashable).
    pub stake: Amount,
    /// Share of fees the orchestrator keeps, in basis points; the rest goes to providers.
    pub commission_bps: u64,
    /// Stake on its way back.
    pub unbonding: Vec<Unbonding>,
    /// Providers that joined.
    pub providers: BTreeSet<PublicKey>,
    /// Challenges its providers passed.
    pub challenges_passed: u64,
    /// Challenges its providers missed or failed.
    pub challenges_failed: u64,
    /// Total slashed from its stake.
    pub slashed: Amount,
}

/// A storage provider: disk offered to one orchestrator, without stake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provider {
    /// The orchestrator it joined.
    pub orchestrator: PublicKey,
    /// Bytes offered.
    pub capacity: u64,
    /// Bytes of shards placed on it.
    pub used: u64,
    /// How to reach it (the node's libp2p peer id, opaque to the ledger).
    pub node: Vec<u8>,
    /// Missed or wrong challenge answers since it joined.
    pub failures: u32,
}

/// How a stored blob is encoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicySpec {
    /// Every storage node keeps it whole.
    Replicated,
    /// The payload of a block of its own: encoded by its uploader with the KZG tensor code
    /// (whose commitment this is), each storage node keeps the cells of its custody, light
    /// clients and validators sample it.
    Das {
        /// The blob's DataRoot and code parameters, which its block's header carries.
        data: DataHeader,
    },
    /// Reed-Solomon shards, each identified by the BlobId of its bytes.
    Erasure {
        /// Bytes per shard.
        shard_size: u64,
        /// Ids of the data shards then the parity shards.
        shards: Vec<BlobId>,
    },
}

impl PolicySpec {
    /// Whether the blob is kept as `das` cells.
    pub fn is_das(&self) -> bool {
        matches!(self, PolicySpec::Das { .. })
    }

    /// The data commitment of a `das` blob.
    pub fn das_data(&self) -> Option<DataHeader> {
        match self {
            PolicySpec::Das { data } => Some(*data),
            _ => None,
        }
    }
}

/// A blob the ledger pays for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredBlob {
    /// Who paid.
    pub owner: PublicKey,
    /// Content size.
    pub size: u64,
    /// Encoding.
    pub policy: PolicySpec,
    /// Epoch ends still paid for; the blob expires when this reaches zero.
    pub epochs_left: u64,
    /// Fee released from escrow each epoch (erasure only).
    pub fee_per_epoch: Amount,
    /// Orchestrator responsible (erasure only).
    pub orchestrator: Option<PublicKey>,
    /// Provider holding each shard, by shard index; `None` while unplaced.
    pub placement: Vec<Option<PublicKey>>,
    /// Epoch in which each shard was (re)assigned: a shard is first challenged once a
    /// whole epoch has passed, so its new holder has time to fetch or receive it.
    pub assigned: Vec<Epoch>,
    /// Shards moved to a new holder that must be rebuilt by the orchestrator; cleared when
    /// the new holder first passes a challenge on it.
    pub repair: Vec<bool>,
}

/// An open storage challenge on one shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// The provider that must answer.
    pub provider: PublicKey,
    /// Leaves to prove.
    pub leaves: Vec<u64>,
    /// Last block height at which an answer is accepted.
    pub deadline: u64,
}

/// A verifiable-compute job: what to run, what a proof of it must state, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComputeJob {
    /// Who submitted (and paid for) it.
    pub submitter: PublicKey,
    /// The program, a registered blob (an RV32IM ELF file).
    pub program: BlobId,
    /// The input, a registered blob; a proof binds its BlobId.
    pub input: BlobId,
    /// The program's verifying commitment (OpenVM's app exe commit), derived by the ledger
    /// from the program's bytes when it accepted the job. A proof must be of this program.
    pub program_commit: [u8; 32],
    /// Most instructions the run may take.
    pub max_cycles: u64,
    /// Segments the run takes (the width of its proof tree), measured when accepted.
    pub segments: u32,
    /// Held in escrow; paid for the proven result (see [`JobResult::payouts`]).
    pub reward: Amount,
    /// Height of the block that accepted it.
    pub submitted: u64,
    /// Last height at which a result is accepted; then it expires and the reward returns.
    pub deadline: u64,
    /// How it stands.
    pub state: JobState,
}

/// Where a job stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for its proof.
    Open,
    /// Proven: its result is final with the block that anchored it.
    Proven(JobResult),
    /// Not proven by its deadline; the reward went back to the submitter.
    Expired,
}

/// A job's anchored result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobResult {
    /// The output, a registered blob; the verified proof binds its BlobId.
    pub output: BlobId,
    /// The Universal Proof, a registered blob.
    pub proof: BlobId,
    /// Who anchored it: the beneficiary the proof names.
    pub prover: PublicKey,
    /// Height of the block that anchored it.
    pub height: u64,
    /// How the reward was paid: each credited prover with the nodes it made and its
    /// share, in the order of the result's credits, then the anchorer with the rest.
    pub payouts: Vec<Payout>,
}

/// A share of a job's reward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payout {
    /// The account paid.
    pub account: PublicKey,
    /// Nodes of the proof tree it was credited with (none for the anchorer's rest).
    pub nodes: u32,
    /// What it was paid.
    pub amount: Amount,
}

/// Nodes of a job's proof tree that `prover` made for the result's anchorer, with the
/// prover's receipts: its signatures of [`receipt_message`](crate::ledger::receipt_message)
/// for each node, added up into one. The anchorer cannot credit anyone with work they did
/// not sign for, for this job and this anchorer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credit {
    /// The prover (a registered compute prover).
    pub prover: PublicKey,
    /// The nodes, in increasing order, each in the job's tree.
    pub nodes: Vec<nexus_compute::NodeRef>,
    /// The aggregate of the prover's receipt signatures, one per node.
    pub signature: Signature,
}

/// A node that offers its CPU to verifiable compute: delegators prove segments,
/// orchestrators drive jobs and fold proofs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComputeProver {
    /// Proves segments.
    pub delegator: bool,
    /// Drives jobs and folds proofs.
    pub orchestrator: bool,
    /// How to reach it (the node's libp2p peer id, opaque to the ledger).
    pub node: Vec<u8>,
}
