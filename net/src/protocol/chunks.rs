//! `/nexus/chunk/1`: fetch one chunk of a blob with its Merkle proof.

use libp2p::StreamProtocol;
use nexus_das::merkle::{Digest, MerkleProof};
use serde::{Deserialize, Serialize};

use crate::codec::Caps;

/// Protocol id.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/nexus/chunk/1");

/// Largest chunk carried (the storage layer's chunks must not exceed it).
pub const MAX_CHUNK_BYTES: usize = 256 * 1024;

/// Size caps: a request is a few dozen bytes; a response is one chunk plus a proof of at
/// most 32 levels.
pub const CAPS: Caps = Caps {
    request: 128,
    response: MAX_CHUNK_BYTES + 4096,
};

/// Asks for chunk `index` of blob `blob_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRequest {
    /// The blob's id (its content digest).
    pub blob_id: Digest,
    /// The chunk.
    pub index: u32,
}

/// The answer to a [`ChunkRequest`]. The receiver must verify the chunk against the
/// BlobId before using it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChunkResponse {
    /// The chunk and its Merkle path.
    Chunk {
        /// Chunk bytes.
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
        /// Merkle path to the blob's root.
        proof: MerkleProof,
    },
    /// The peer does not hold this chunk.
    NotFound,
}
