//! `/nexus/chunk/1`: fetch one chunk of a blob with its Merkle proof.

use libp2p::StreamProtocol;
use nexus_storage::{BlobId, ChunkIndex, MerkleProof, CHUNK_SIZE};
use serde::{Deserialize, Serialize};

use crate::codec::Caps;

/// Protocol id.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/nexus/chunk/1");

/// Size caps: a request is a few dozen bytes; a response is one chunk plus a proof of at
/// most 32 levels.
pub const CAPS: Caps = Caps {
    request: 128,
    response: CHUNK_SIZE + 4096,
};

/// Asks for chunk `index` of `blob_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRequest {
    /// The blob.
    pub blob_id: BlobId,
    /// The chunk.
    pub index: ChunkIndex,
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
