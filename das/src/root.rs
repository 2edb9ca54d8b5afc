//! The names a commitment is known by: the [`DataRoot`] of a payload and the compressed
//! G1 points ([`G1Bytes`]) it is built from, shared by encoding and sample verification.

use crate::merkle::{leaf_hash, Digest};
use crate::params::CodeParams;

crate::fixed_bytes!(
    /// The commitment to an encoded payload: SHA-256 over its parameters and the Merkle
    /// root of all extended row commitments.
    DataRoot,
    32
);

crate::fixed_bytes!(
    /// A compressed G1 point: a row commitment or a cell proof, as EIP-7594 serializes it.
    G1Bytes,
    48
);

/// Domain tag of the DataRoot hash.
const DATA_ROOT_TAG: u8 = 0x03;

impl DataRoot {
    /// The root for `params` over a commitment tree with root `commitments_root`.
    pub(crate) fn compute(params: &CodeParams, commitments_root: &Digest) -> DataRoot {
        DataRoot(Digest::of(&[&[DATA_ROOT_TAG], &params.to_bytes(), &commitments_root.0]).0)
    }
}

/// Merkle leaf of one row commitment.
pub(crate) fn commitment_leaf(commitment: &G1Bytes) -> Digest {
    leaf_hash(&commitment.0)
}
