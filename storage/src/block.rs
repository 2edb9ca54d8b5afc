//! Blocks of the replicated chain: a signed header over an ordered list of transactions
//! and the ledger state they lead to, and the inclusion proof a user can check offline.
//!
//! Blocks arrive from the network as plain [`Block`] values; [`Block::verify_child`] checks
//! signature, links and the transactions root, and [`crate::chain`] adds the ledger
//! transition (and checks a genesis block against the chain genesis it carries): its functions are the only way to get a
//! [`VerifiedBlock`], the only kind the store accepts.

use serde::{Deserialize, Serialize};

use crate::blob::BlobId;
use crate::genesis::ChainGenesis;
use crate::ledger::{PolicySpec, SignedTransaction, TxKind};
use crate::merkle::{Digest, MerkleProof, MerkleTree};
pub use nexus_consensus::{BlockHash, DataHeader, Header, Height};
use nexus_consensus::{PublicKey, Round};

/// Most transactions one block may carry.
pub const MAX_TRANSACTIONS_PER_BLOCK: usize = 2048;

/// A blob registered in a block: the content of a `StoreBlob` transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRegistration {
    /// The blob's content identity.
    pub blob_id: BlobId,
    /// Its length in bytes.
    pub size: u64,
    /// How it is stored.
    pub policy: PolicySpec,
}

impl BlobRegistration {
    /// The registration carried by `tx`, if it is a `StoreBlob`.
    pub fn of(tx: &SignedTransaction) -> Option<BlobRegistration> {
        match &tx.tx.kind {
            TxKind::StoreBlob {
                blob_id,
                size,
                policy,
                ..
            } => Some(BlobRegistration {
                blob_id: *blob_id,
                size: *size,
                policy: policy.clone(),
            }),
            _ => None,
        }
    }
}

/// The data commitment a block carrying `transactions` must have: the one its `das`
/// registration brings (the uploader encoded the blob and committed to it), or the empty
/// grid's. A block carries at most one `das` blob, so a light client samples one grid per
/// block whatever the number of blobs registered.
pub fn block_data<'a>(
    transactions: impl IntoIterator<Item = &'a SignedTransaction>,
    dims: u8,
) -> Result<DataHeader, BlockError> {
    let mut das = transactions
        .into_iter()
        .filter_map(BlobRegistration::of)
        .filter_map(|r| r.policy.das_data());
    match (das.next(), das.next()) {
        (None, _) => Ok(DataHeader::empty(dims)?),
        (Some(data), None) => Ok(data),
        (Some(_), Some(_)) => Err(BlockError::TooManyDasBlobs),
    }
}

/// A header and the transactions it commits to. Its finality comes from consensus (a
/// quorum certificate), not from a signature of its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// The header.
    pub header: Header,
    /// Transactions in block order.
    pub transactions: Vec<SignedTransaction>,
    /// Positions (ascending) of the transactions whose action failed: they paid their fee
    /// and used their nonce, and did nothing else. Committed by the transactions root.
    pub failed: Vec<u32>,
    /// The chain's starting point; present in the genesis block only.
    pub genesis: Option<ChainGenesis>,
}

/// A final block as stored and served: the block and why it is final (no proof for
/// genesis, which is trusted by its hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertifiedBlock {
    /// The block.
    pub block: Block,
    /// Its finality proof.
    pub proof: Option<nexus_consensus::FinalityProof>,
}

/// A block whose links, contents and ledger transition were checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedBlock(Block);

impl std::ops::Deref for VerifiedBlock {
    type Target = Block;
    fn deref(&self) -> &Block {
        &self.0
    }
}

impl VerifiedBlock {
    /// Marks a block verified; only [`crate::chain`] does this, after checking the
    /// ledger transition too.
    pub(crate) fn assume_verified(block: Block) -> VerifiedBlock {
        VerifiedBlock(block)
    }

    /// The block, giving up the verified marker (for encoding or sending).
    pub fn into_inner(self) -> Block {
        self.0
    }
}

/// Why a block was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// Not the next height.
    #[error("expected height {expected}, found {found}")]
    WrongHeight {
        /// Next height of the local chain.
        expected: Height,
        /// Height in the block.
        found: Height,
    },
    /// Does not link to the local tip.
    #[error("block links to parent {found}, expected {expected}")]
    WrongParent {
        /// Hash of the local tip.
        expected: BlockHash,
        /// Parent hash in the block.
        found: BlockHash,
    },
    /// Proposed in a round not above its parent's, or under another chain spec or epoch.
    #[error("the block's round, epoch or chain spec does not follow its parent's")]
    BadConsensusFields,
    /// The failed positions are not ascending positions of the block's transactions.
    #[error("the failed transactions' positions are out of order or out of the block")]
    BadOutcomes,
    /// The failed positions are not those the ledger finds.
    #[error("the block's failed transactions are not those executing it finds")]
    OutcomesMismatch,
    /// Root or count in the header do not match the transactions carried.
    #[error("transactions do not match the header's root or count")]
    TransactionsMismatch,
    /// Too many transactions.
    #[error("block has {found} transactions, at most {max} allowed")]
    TooManyTransactions {
        /// The cap.
        max: usize,
        /// The block's count.
        found: usize,
    },
    /// A transaction the ledger refuses.
    #[error("transaction {index} is invalid: {error}")]
    InvalidTransaction {
        /// Position in the block.
        index: usize,
        /// Why.
        error: crate::ledger::TxError,
    },
    /// The header's state root is not the state the transactions lead to.
    #[error("state root mismatch: header says {claimed}, transactions lead to {computed}")]
    StateRootMismatch {
        /// In the header.
        claimed: Digest,
        /// Recomputed.
        computed: Digest,
    },
    /// Timestamp goes backwards.
    #[error("timestamp {found} is before the parent's {parent}")]
    TimestampBeforeParent {
        /// Parent's timestamp.
        parent: u64,
        /// Block's timestamp.
        found: u64,
    },
    /// A genesis block is malformed or is not the expected one.
    #[error("not an acceptable genesis block: {0}")]
    BadGenesis(&'static str),
    /// The ledger genesis it carries is unusable.
    #[error(transparent)]
    InvalidGenesis(#[from] crate::ledger::GenesisError),
    /// The chain cannot grow past `u64::MAX` blocks.
    #[error("height overflow")]
    HeightOverflow,
    /// The payload cannot be encoded with the network's code.
    #[error(transparent)]
    Data(#[from] nexus_consensus::DataError),
    /// The chain spec of a genesis is unusable.
    #[error("invalid chain spec: {0}")]
    InvalidSpec(#[from] nexus_consensus::SpecError),
    /// The header's DataRoot or parameters are not those of the block's payload.
    #[error("the header's data commitment does not match the block's payload")]
    DataMismatch,
    /// More than one `das` blob in a block.
    #[error("a block carries at most one das blob")]
    TooManyDasBlobs,
}

/// The transactions of `transactions` not listed (by position, ascending) in `failed`.
pub(crate) fn effective<'a>(
    transactions: &'a [SignedTransaction],
    failed: &'a [u32],
) -> impl Iterator<Item = (u32, &'a SignedTransaction)> + 'a {
    transactions
        .iter()
        .enumerate()
        .map(|(i, tx)| (i as u32, tx))
        .filter(|(i, _)| failed.binary_search(i).is_err())
}

/// Merkle tree over transactions, in order, each leaf with its outcome: a transaction
/// that took effect is its id (so an inclusion proof of it proves it took effect), one
/// whose action failed (`failed`, ascending positions) a digest of that id.
fn transactions_tree(transactions: &[SignedTransaction], failed: &[u32]) -> MerkleTree {
    let mut failed = failed.iter().peekable();
    let leaves = transactions
        .iter()
        .enumerate()
        .map(|(i, tx)| {
            let id = tx.id();
            if failed.next_if(|&&f| f as usize == i).is_some() {
                Digest::of(&[b"nexus-failed-transaction", &id.0])
            } else {
                id
            }
        })
        .collect();
    MerkleTree::from_leaves(leaves)
}

/// The fields of a new block's header that are not derived from its contents.
#[derive(Debug, Clone, Copy)]
pub struct Slot<'a> {
    /// The parent's header (none for genesis).
    pub parent: Option<&'a Header>,
    /// Round the block is proposed in.
    pub round: Round,
    /// Its proposer.
    pub proposer: PublicKey,
    /// Its timestamp (raised to the parent's if below).
    pub timestamp_ms: u64,
    /// Digest of the chain spec in force.
    pub spec: Digest,
}

impl Block {
    /// Builds a block (unverified: [`crate::chain`] checks the ledger side).
    pub(crate) fn build(
        slot: Slot<'_>,
        transactions: Vec<SignedTransaction>,
        failed: Vec<u32>,
        state_root: Digest,
        genesis: Option<ChainGenesis>,
        data: DataHeader,
    ) -> Result<Block, BlockError> {
        let (height, parent_hash, timestamp_ms, epoch) = match slot.parent {
            Some(p) => (
                p.height.next().ok_or(BlockError::HeightOverflow)?,
                p.hash(),
                slot.timestamp_ms.max(p.timestamp_ms),
                p.epoch,
            ),
            None => (
                Height(0),
                BlockHash::ZERO,
                slot.timestamp_ms,
                Default::default(),
            ),
        };
        let header = Header {
            height,
            epoch,
            round: slot.round,
            parent: parent_hash,
            timestamp_ms,
            transactions_root: transactions_tree(&transactions, &failed).root(),
            transaction_count: u32::try_from(transactions.len()).unwrap_or(u32::MAX),
            state_root,
            proposer: slot.proposer,
            data,
            spec: slot.spec,
        };
        Ok(Block {
            header,
            transactions,
            failed,
            genesis,
        })
    }

    /// Checks a block's form as the child of `parent`: height, link, round, epoch, chain
    /// spec, timestamp, transactions root and data layout (the ledger transition is
    /// checked by [`crate::chain`], finality by consensus).
    pub fn verify_child(self, parent: &Header) -> Result<Block, BlockError> {
        let h = &self.header;
        if self.genesis.is_some() {
            return Err(BlockError::BadGenesis(
                "only height 0 carries a chain genesis",
            ));
        }
        let expected = parent.height.next().ok_or(BlockError::HeightOverflow)?;
        if h.height != expected {
            return Err(BlockError::WrongHeight {
                expected,
                found: h.height,
            });
        }
        if h.parent != parent.hash() {
            return Err(BlockError::WrongParent {
                expected: parent.hash(),
                found: h.parent,
            });
        }
        if h.round <= parent.round || h.epoch != parent.epoch || h.spec != parent.spec {
            return Err(BlockError::BadConsensusFields);
        }
        if h.timestamp_ms < parent.timestamp_ms {
            return Err(BlockError::TimestampBeforeParent {
                parent: parent.timestamp_ms,
                found: h.timestamp_ms,
            });
        }
        self.check_contents()
    }

    fn check_contents(self) -> Result<Block, BlockError> {
        let h = &self.header;
        if self.transactions.len() > MAX_TRANSACTIONS_PER_BLOCK {
            return Err(BlockError::TooManyTransactions {
                max: MAX_TRANSACTIONS_PER_BLOCK,
                found: self.transactions.len(),
            });
        }
        let ascending = self.failed.windows(2).all(|w| w[0] < w[1]);
        let in_block = self
            .failed
            .last()
            .is_none_or(|&last| (last as usize) < self.transactions.len());
        if !ascending || !in_block {
            return Err(BlockError::BadOutcomes);
        }
        if h.transaction_count as usize != self.transactions.len()
            || transactions_tree(&self.transactions, &self.failed).root() != h.transactions_root
        {
            return Err(BlockError::TransactionsMismatch);
        }
        // The DataRoot of a `das` blob cannot be recomputed (nodes do not hold its bytes):
        // it must be the one its registration carries, sampling checks the data is there,
        // and an uploader that committed other bytes than its blob's is caught by the
        // BlobId check of whoever retrieves it.
        if block_data(self.effective().map(|(_, tx)| tx), h.data.params.dims)? != h.data {
            return Err(BlockError::DataMismatch);
        }
        Ok(self)
    }

    /// Whether the transaction at `index` failed (it only paid its fee).
    pub fn failed_at(&self, index: u32) -> bool {
        self.failed.binary_search(&index).is_ok()
    }

    /// The transactions that took effect, with their positions.
    pub fn effective(&self) -> impl Iterator<Item = (u32, &SignedTransaction)> + '_ {
        effective(&self.transactions, &self.failed)
    }

    /// The blobs this block registers (failed registrations left out): (transaction
    /// index, registration).
    pub fn registrations(&self) -> impl Iterator<Item = (u32, BlobRegistration)> + '_ {
        self.effective()
            .filter_map(|(i, tx)| BlobRegistration::of(tx).map(|r| (i, r)))
    }

    /// The inclusion proof of the transaction at `index`, if it took effect.
    pub fn inclusion_proof(&self, index: u32) -> Option<InclusionProof> {
        if self.failed_at(index) {
            return None;
        }
        let transaction = self.transactions.get(index as usize)?.clone();
        let path = transactions_tree(&self.transactions, &self.failed).proof(u64::from(index))?;
        Some(InclusionProof {
            header: self.header.clone(),
            transaction,
            index,
            path,
        })
    }
}

/// Evidence that a blob is registered (by a `StoreBlob` transaction) in a block, checkable
/// offline; the header's finality is proven apart (a [`nexus_consensus::FinalityProof`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionProof {
    /// The block's header.
    pub header: Header,
    /// The transaction proven.
    pub transaction: SignedTransaction,
    /// Its position in the block.
    pub index: u32,
    /// Merkle path from the transaction to `header.transactions_root`.
    pub path: MerkleProof,
}

/// Why an inclusion proof does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InclusionError {
    /// The proof is about another blob.
    #[error("the proof is for blob {found}, not {expected}")]
    WrongBlob {
        /// Blob asked about.
        expected: BlobId,
        /// Blob in the proof.
        found: BlobId,
    },
    /// The Merkle path does not lead to the header's transactions root.
    #[error("the Merkle path does not lead to the header's transactions root")]
    PathMismatch,
}

impl InclusionProof {
    /// The registration the proven transaction makes, if it is a `StoreBlob`.
    pub fn registration(&self) -> Option<BlobRegistration> {
        BlobRegistration::of(&self.transaction)
    }

    /// Checks that `blob_id` is registered by a transaction of the block of `self.header`
    /// that took effect (a failed one has another leaf).
    pub fn verify(&self, blob_id: &BlobId) -> Result<(), InclusionError> {
        let found = self.registration().map(|r| r.blob_id);
        if found != Some(*blob_id) {
            return Err(InclusionError::WrongBlob {
                expected: *blob_id,
                found: found.unwrap_or(BlobId([0; 32])),
            });
        }
        let root = self.path.root(
            self.transaction.id(),
            u64::from(self.index),
            u64::from(self.header.transaction_count),
        );
        if root != Some(self.header.transactions_root) {
            return Err(InclusionError::PathMismatch);
        }
        Ok(())
    }
}

/// A blob's registration with everything needed to check it offline: the inclusion proof,
/// the finality proof of its block, and the chain (genesis header and the spec whose
/// committee signs) the proofs are about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobProof {
    /// The registration in its block.
    pub inclusion: InclusionProof,
    /// Why that block is final.
    pub finality: nexus_consensus::FinalityProof,
    /// The chain's genesis header.
    pub genesis: Header,
    /// The chain spec the genesis header names (its committee signs the finality proof).
    pub spec: nexus_consensus::ChainSpec,
}

/// Why a blob proof does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlobProofError {
    /// The genesis is not the trusted one, or does not name the spec given.
    #[error("the chain is not the trusted one: {0}")]
    Chain(&'static str),
    /// The registration is not in the block.
    #[error(transparent)]
    Inclusion(#[from] InclusionError),
    /// The block is not proven final.
    #[error("the block is not proven final: {0}")]
    Finality(#[from] nexus_consensus::FinalityError),
}

impl BlobProof {
    /// Checks that `blob_id` is registered in a final block of the chain whose genesis
    /// hashes to `trusted_genesis` (or, without one, of the chain the proof names, whose
    /// genesis hash the caller should compare with one it trusts).
    pub fn verify(
        &self,
        blob_id: &BlobId,
        trusted_genesis: Option<BlockHash>,
    ) -> Result<nexus_consensus::Context, BlobProofError> {
        let genesis = self.genesis.hash();
        if trusted_genesis.is_some_and(|t| t != genesis) {
            return Err(BlobProofError::Chain("another genesis"));
        }
        if self.genesis.height != Height(0) || self.genesis.spec != self.spec.digest() {
            return Err(BlobProofError::Chain("the spec is not the genesis's"));
        }
        let ctx = nexus_consensus::Context::new(self.spec.clone(), genesis);
        self.inclusion.verify(blob_id)?;
        self.finality.verify(&self.inclusion.header, &ctx)?;
        Ok(ctx)
    }
}
