//! Nexus storage: blob identities (chunked SHA-256 Merkle roots), the chain of signed
//! blocks that registers blobs, BLS proposer keys, and the fjall store that keeps both.
//!
//! The fjall store is behind the default `store` feature; without it the crate holds only
//! the chain's types and rules, which is all light clients and wire protocols need.
//!
//! Everything read from disk or received from a peer is checked against its BlobId or its
//! proposer's signature before it is used; the store accepts only [`VerifiedBlock`]s and
//! chunks whose Merkle proofs hold.

pub mod blob;
pub mod block;
pub mod chain;
pub mod erasure;
pub use nexus_consensus::keys;
pub mod ledger;
#[cfg(feature = "store")]
pub mod store;

pub use blob::{
    chunk_root, leaf_proof, BlobId, BlobIdBuilder, BlobLayout, ChunkError, ChunkIndex, CHUNK_SIZE,
    LEAF_SIZE,
};
pub use block::{
    BlobRegistration, Block, BlockError, BlockHash, Header, Height, InclusionError, InclusionProof,
    VerifiedBlock, MAX_TRANSACTIONS_PER_BLOCK,
};
pub use chain::Transition;
pub use keys::{KeyError, PublicKey, Signature, SigningKey};
pub use merkle::{Digest, MerkleProof, MerkleTree};
pub use nexus_das::bytes::ParseBytesError;
pub use nexus_das::merkle;
#[cfg(feature = "store")]
pub use store::{
    AppendError, BlobRecord, BlobWriter, Ingested, PutChunkError, ReadChunkError, Released,
    ShardStoreError, Store, StoreError, StoreStats, StoredChunk, Tip,
};
