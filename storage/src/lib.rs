//! Nexus storage: blob identities (chunked SHA-256 Merkle roots), the chain of blocks that
//! registers blobs and the ledger they change, the tree of blocks not yet final, and the
//! fjall store that keeps all of it.
//!
//! Headers, certificates and finality proofs live in `nexus-consensus`, which light
//! clients use without this crate.
//!
//! Everything read from disk or received from a peer is checked against its BlobId, or its
//! ledger transition and finality proof, before it is used; the store accepts only
//! [`VerifiedBlock`]s and chunks whose Merkle proofs hold.

pub mod blob;
pub mod block;
pub mod chain;
pub mod erasure;
pub mod genesis;
pub use nexus_consensus::keys;
pub mod ledger;
pub mod mempool;
pub mod store;
#[cfg(test)]
mod test_support;

pub use blob::{
    chunk_root, leaf_proof, BlobId, BlobIdBuilder, BlobLayout, ChunkError, ChunkIndex, CHUNK_SIZE,
    LEAF_SIZE,
};
pub use block::{
    BlobProof, BlobProofError, BlobRegistration, Block, BlockError, BlockHash, CertifiedBlock,
    Header, Height, InclusionError, InclusionProof, VerifiedBlock, MAX_TRANSACTIONS_PER_BLOCK,
};
pub use chain::{BlockTree, ChainGenesis, Transition};
pub use keys::{KeyError, PublicKey, Signature, SigningKey};
pub use merkle::{Digest, MerkleProof, MerkleTree};
pub use nexus_das::bytes::ParseBytesError;
pub use nexus_das::merkle;
pub use store::{
    AppendError, BlobRecord, BlobWriter, Ingested, PutChunkError, ReadChunkError, Released,
    Salvaged, ShardStoreError, Stage, StagedCollection, Store, StoreError, StoreStats, StoredChunk,
    Tip,
};
