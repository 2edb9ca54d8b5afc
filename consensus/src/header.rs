//! Block headers: what a quorum certificate certifies and a light client follows.
//!
//! A header commits to its block's transactions (Merkle root and count), the ledger state
//! after them, the block's data for sampling (DataRoot and code parameters) and the chain
//! spec (committee) it was certified under. Its hash is what votes sign.

use serde::{Deserialize, Serialize};

use crate::ids::{BlockHash, Epoch, Height, Round};
use crate::keys::PublicKey;
use nexus_das::merkle::Digest;
use nexus_das::{CodeParams, DataCommitment, DataRoot};

const HEADER_TAG: &[u8] = b"nexus/header/v2";

/// What a header says about its block's data: the DataRoot and the code's parameters,
/// which is all a light client needs to sample it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataHeader {
    /// Commitment to the encoded payload.
    pub root: DataRoot,
    /// Layout of the encoded payload.
    pub params: CodeParams,
}

/// Why a payload cannot be committed to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("block data cannot be encoded: {0}")]
pub struct DataError(pub String);

impl DataHeader {
    /// Whether the block carries no data (its grid is all zero, available by definition).
    pub fn is_empty(&self) -> bool {
        self.params.data_len == 0
    }

    /// Encodes `payload` in `dims` dimensions and commits to it.
    pub fn commit(payload: &[u8], dims: u8) -> Result<DataHeader, DataError> {
        let params = CodeParams::for_data(dims, payload.len() as u64)
            .map_err(|e| DataError(e.to_string()))?;
        let commitment =
            DataCommitment::compute(payload, params).map_err(|e| DataError(e.to_string()))?;
        Ok(DataHeader {
            root: commitment.root(),
            params,
        })
    }

    /// The commitment of a block without data, in `dims` dimensions (computed once).
    pub fn empty(dims: u8) -> Result<DataHeader, DataError> {
        static EMPTY: [std::sync::OnceLock<Result<DataHeader, DataError>>; 4] =
            [const { std::sync::OnceLock::new() }; 4];
        match EMPTY.get(usize::from(dims)) {
            Some(cell) => cell.get_or_init(|| DataHeader::commit(&[], dims)).clone(),
            None => DataHeader::commit(&[], dims),
        }
    }
}

/// The certified part of a block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Position in the chain.
    pub height: Height,
    /// Epoch of the committee that certifies it.
    pub epoch: Epoch,
    /// Round it was proposed in (0 for genesis).
    pub round: Round,
    /// Hash of the parent header ([`BlockHash::ZERO`] for genesis).
    pub parent: BlockHash,
    /// Proposer's clock, milliseconds since the Unix epoch; never below the parent's.
    pub timestamp_ms: u64,
    /// Merkle root over the block's transactions.
    pub transactions_root: Digest,
    /// Number of transactions (needed to check inclusion paths).
    pub transaction_count: u32,
    /// Root of the ledger state after this block.
    pub state_root: Digest,
    /// The key of the validator that proposed it (all zero for genesis).
    pub proposer: PublicKey,
    /// Commitment to the block's payload, for data-availability sampling.
    pub data: DataHeader,
    /// Digest of the chain spec (chain id, committee, sampling parameters) in force.
    pub spec: Digest,
}

impl Header {
    /// The header's hash, which votes sign and children link to.
    pub fn hash(&self) -> BlockHash {
        // Encoding a plain struct into a Vec cannot fail.
        let bytes = postcard::to_stdvec(self).unwrap_or_default();
        BlockHash(Digest::of(&[HEADER_TAG, &bytes]).0)
    }

    /// The proposer of genesis: nobody.
    pub const GENESIS_PROPOSER: PublicKey = PublicKey([0; 48]);
}
