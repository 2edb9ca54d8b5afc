//! Transactions: what an account asks the ledger to do, signed with its BLS key.

use serde::{Deserialize, Serialize};

use super::memo::Memo;
use super::types::{Amount, Credit, Epoch, PolicySpec};
use crate::blob::BlobId;
use crate::keys::{PublicKey, Signature, SigningKey};
use crate::merkle::{Digest, MerkleProof};
use nexus_consensus::ChainTag;

const TX_TAG: &[u8] = b"nexus/tx/v1";

/// Largest encoded transaction of any kind but a compute job or result.
pub const MAX_TX_BYTES: usize = 64 * 1024;
/// Largest program a `ComputeJob` carries (an RV32IM ELF file; a model's weights belong in
/// the job's input).
pub const MAX_PROGRAM_BYTES: usize = 256 * 1024;
/// Largest encoded `ComputeResult` (its Universal Proof included): the largest
/// transaction of any kind.
pub const MAX_RESULT_TX_BYTES: usize =
    nexus_compute::sizes::MAX_UNIVERSAL_PROOF_BYTES + MAX_TX_BYTES;

/// Signature verdicts by transaction id (which covers the signed bytes and the
/// signature): a pure function's results.
static SIGNATURES: Memo<Digest, bool> = Memo::new(1 << 16);

/// One challenged leaf, proven against its shard's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeafAnswer {
    /// Leaf index within the shard.
    pub leaf: u64,
    /// The leaf's bytes (at most 4 KiB).
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
    /// Its Merkle path to the shard's root.
    pub proof: MerkleProof,
}

/// What a transaction does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxKind {
    /// Moves `amount` to `to`.
    Transfer {
        /// Recipient.
        to: PublicKey,
        /// Amount.
        amount: Amount,
    },
    /// Becomes an orchestrator, bonding `stake`.
    RegisterOrchestrator {
        /// Initial stake.
        stake: Amount,
        /// Share of fees kept, in basis points.
        commission_bps: u64,
    },
    /// Bonds more stake.
    AddStake {
        /// Amount.
        amount: Amount,
    },
    /// Starts returning stake to the balance (after the unbonding period).
    Unbond {
        /// Amount.
        amount: Amount,
    },
    /// Offers `capacity` bytes of disk to `orchestrator` (the sender is the provider).
    JoinOrchestrator {
        /// The orchestrator joined.
        orchestrator: PublicKey,
        /// Bytes offered.
        capacity: u64,
        /// The provider node's peer id, so that others can reach it.
        node: Vec<u8>,
    },
    /// Leaves the orchestrator; its shards are moved to the orchestrator's other providers.
    LeaveOrchestrator,
    /// Pays for keeping a blob for `epochs` epochs.
    StoreBlob {
        /// The blob.
        blob_id: BlobId,
        /// Its size.
        size: u64,
        /// Its encoding.
        policy: PolicySpec,
        /// Epochs paid for.
        epochs: u64,
    },
    /// Answers the challenge on `shard` of `blob_id` issued in `epoch`.
    ChallengeResponse {
        /// The blob.
        blob_id: BlobId,
        /// Shard index.
        shard: u16,
        /// Epoch of the challenge.
        epoch: Epoch,
        /// One answer per challenged leaf.
        answers: Vec<LeafAnswer>,
    },
    /// Offers (or, with both roles off, withdraws) the sender's node to verifiable compute.
    OfferCompute {
        /// Proves segments.
        delegator: bool,
        /// Drives jobs and folds proofs.
        orchestrator: bool,
        /// The node's libp2p peer id.
        node: Vec<u8>,
    },
    /// Asks the network to prove a run of `program` on `input`. The ledger derives the
    /// program's verifying commitment from the bytes carried here (refusing a program the
    /// zkVM would not run as RISC-V means it), and both the program and the input must be
    /// registered blobs, so the job names exactly the bytes a proof of it speaks about. The
    /// reward is held until a proven result pays it or the job expires.
    ComputeJob {
        /// The program: an RV32IM ELF file of at most [`MAX_PROGRAM_BYTES`], whose BlobId
        /// is a registered blob.
        #[serde(with = "serde_bytes")]
        program: Vec<u8>,
        /// The input blob (registered); a proof binds its BlobId.
        input: BlobId,
        /// Most instructions the run may take.
        max_cycles: u64,
        /// Segments the run takes.
        segments: u32,
        /// Paid for the proven result: to the provers its credits name, the rest to
        /// whoever anchors it.
        reward: Amount,
        /// Blocks the job may take before it expires.
        lifetime: u64,
    },
    /// Anchors a job's result. Its Universal Proof must verify for the job's program, its
    /// input, this output and the sender as beneficiary (`nexus_compute::binding`), and
    /// every credit must carry its prover's signatures, or the transaction is refused
    /// outright (never carried in a block, like a bad signature): a proof made for one
    /// account pays no other.
    ComputeResult {
        /// The job (its id).
        job: Digest,
        /// The output, a registered blob; the proof binds its BlobId.
        output: BlobId,
        /// The Universal Proof stored as a registered blob (its id must be that of
        /// `proof`), so that anyone can fetch it later.
        proof_blob: BlobId,
        /// The Universal Proof (zstd-compressed OpenVM STARK, ~230 KB).
        #[serde(with = "serde_bytes")]
        proof: Vec<u8>,
        /// The provers that made nodes of the job's proof tree for the sender, each with
        /// its signed receipts: each credited node is paid a share of the reward.
        credits: Vec<Credit>,
    },
}

/// The signed part of a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    /// The chain it is meant for: signed, so it never applies on another network.
    pub chain: ChainTag,
    /// The account acting (and signing).
    pub sender: PublicKey,
    /// Must equal the sender's next nonce.
    pub nonce: u64,
    /// Paid (burned) when the transaction applies; at least the ledger's `min_tx_fee`.
    pub fee: Amount,
    /// The action.
    pub kind: TxKind,
}

impl Transaction {
    /// The digest the sender signs.
    pub fn digest(&self) -> Digest {
        Digest::of(&[TX_TAG, &postcard::to_stdvec(self).unwrap_or_default()])
    }

    /// Signs the transaction with the sender's key.
    pub fn sign(self, key: &SigningKey) -> SignedTransaction {
        let signature = key.sign(&self.digest().0);
        SignedTransaction {
            tx: self,
            signature,
        }
    }
}

/// A transaction and its sender's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedTransaction {
    /// The transaction.
    pub tx: Transaction,
    /// The sender's signature over `tx.digest()`.
    pub signature: Signature,
}

impl SignedTransaction {
    /// True when the signature is the sender's. A transaction is checked at admission,
    /// when its block is built and when the block is validated: valid signatures are
    /// remembered by transaction id (which covers the signature), so that the same bytes
    /// cost one pairing per process rather than one per pass.
    pub fn signature_valid(&self) -> bool {
        SIGNATURES.get_or_compute(self.id(), || {
            self.tx.sender.verify(&self.tx.digest().0, &self.signature)
        })
    }

    /// Whether `encoded_len` (this transaction's encoded size) is within what its kind may
    /// take: [`MAX_TX_BYTES`], more by [`MAX_PROGRAM_BYTES`] for a compute job, or
    /// [`MAX_RESULT_TX_BYTES`] for a compute result.
    pub fn size_allowed(&self, encoded_len: usize) -> bool {
        let limit = match self.tx.kind {
            TxKind::ComputeResult { .. } => MAX_RESULT_TX_BYTES,
            TxKind::ComputeJob { .. } => MAX_TX_BYTES + MAX_PROGRAM_BYTES,
            _ => MAX_TX_BYTES,
        };
        encoded_len <= limit
    }

    /// Hash identifying the signed transaction (leaf of the block's transaction tree).
    pub fn id(&self) -> Digest {
        crate::merkle::leaf_hash(&postcard::to_stdvec(self).unwrap_or_default())
    }
}

/// Why a transaction was rejected. A rejected transaction changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    /// Not signed by the sender.
    #[error("invalid signature")]
    BadSignature,
    /// Signed for another chain.
    #[error("signed for another chain")]
    WrongChain,
    /// The fee offered is below the ledger's minimum.
    #[error("fee {offered} is below the minimum {min}")]
    FeeTooLow {
        /// Fee offered.
        offered: Amount,
        /// Minimum fee.
        min: Amount,
    },
    /// Replayed or out-of-order nonce.
    #[error("wrong nonce: expected {expected}, found {found}")]
    WrongNonce {
        /// The account's next nonce.
        expected: u64,
        /// The transaction's nonce.
        found: u64,
    },
    /// Not enough balance.
    #[error("insufficient balance: {needed} needed, {available} available")]
    InsufficientBalance {
        /// Amount needed.
        needed: Amount,
        /// Balance.
        available: Amount,
    },
    /// The amount is zero or otherwise unusable.
    #[error("invalid amount: {0}")]
    InvalidAmount(&'static str),
    /// The named orchestrator does not exist (or the sender is not one).
    #[error("unknown orchestrator {0}")]
    UnknownOrchestrator(PublicKey),
    /// The sender is already an orchestrator.
    #[error("already an orchestrator")]
    AlreadyOrchestrator,
    /// Stake below the minimum.
    #[error("stake {found} is below the minimum {min}")]
    StakeTooLow {
        /// Minimum.
        min: Amount,
        /// Offered.
        found: Amount,
    },
    /// Commission above 100 %.
    #[error("commission {0} bps exceeds 10000")]
    BadCommission(u64),
    /// The sender is already a provider.
    #[error("already a provider of orchestrator {0}")]
    AlreadyProvider(PublicKey),
    /// The sender is not a provider.
    #[error("not a provider")]
    NotProvider,
    /// The orchestrator's stake cannot back that much more capacity.
    #[error("over capacity: the orchestrator's stake backs {limit} bytes, {requested} requested in total")]
    OverCapacity {
        /// Bytes the stake backs.
        limit: u64,
        /// Bytes that would be offered.
        requested: u64,
    },
    /// The orchestrator still keeps data and cannot drop below the minimum stake.
    #[error("unbonding would leave {left}, below the minimum stake {min}, while data is kept")]
    UnbondBelowMinimum {
        /// Stake that would remain.
        left: Amount,
        /// Minimum.
        min: Amount,
    },
    /// The blob is already paid for.
    #[error("blob {0} is already stored")]
    AlreadyStored(BlobId),
    /// The storage request is malformed.
    #[error("invalid storage request: {0}")]
    InvalidStorage(String),
    /// No orchestrator can take the blob.
    #[error("no orchestrator has {needed} providers with {shard_size} bytes free each")]
    NoOrchestrator {
        /// Providers needed.
        needed: usize,
        /// Bytes each.
        shard_size: u64,
    },
    /// No such open challenge for this sender.
    #[error(
        "no open challenge on shard {shard} of blob {blob_id} for this provider in epoch {epoch}"
    )]
    NoChallenge {
        /// Blob.
        blob_id: BlobId,
        /// Shard.
        shard: u16,
        /// Epoch.
        epoch: Epoch,
    },
    /// The answer does not prove the challenged leaves.
    #[error("wrong challenge answer: {0}")]
    WrongAnswer(String),
    /// An arithmetic overflow (amounts too large).
    #[error("arithmetic overflow")]
    Overflow,
    /// A compute job that cannot be accepted.
    #[error("invalid compute job: {0}")]
    BadJob(String),
    /// No such compute job.
    #[error("unknown compute job {0}")]
    UnknownJob(Digest),
    /// The job is already proven or expired.
    #[error("compute job {0} is closed (proven or expired)")]
    JobClosed(Digest),
    /// The result's Universal Proof does not verify.
    #[error("the Universal Proof does not verify: {0}")]
    BadProof(String),
    /// A result's credit is malformed or not signed by the prover it names.
    #[error("invalid credit: {0}")]
    BadCredit(String),
}
