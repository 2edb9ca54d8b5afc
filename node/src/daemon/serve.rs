//! Answers to peers' requests: chunks (verified before they leave) and block ranges.

use nexus_net::protocol::blocks::{BlockRequest, BlockResponse, MAX_BLOCKS_PER_RESPONSE};
use nexus_net::protocol::chunks::{ChunkRequest, ChunkResponse};

use super::fetch::read_local;
use super::{Fault, Node};

/// Reads, verifies and returns a chunk; a chunk found corrupt is discarded (and refetched by
/// replication) rather than served.
pub(crate) async fn chunk(node: &Node, request: ChunkRequest) -> ChunkResponse {
    match read_local(node, request.blob_id, request.index).await {
        Ok(mut chunk) => {
            if node.fault == Some(Fault::CorruptChunks) {
                if let Some(b) = chunk.data.first_mut() {
                    *b ^= 0xff;
                }
            }
            ChunkResponse::Chunk {
                data: chunk.data,
                proof: chunk.proof,
            }
        }
        Err(_) => ChunkResponse::NotFound,
    }
}

/// Up to the requested number of consecutive blocks (capped).
pub(crate) async fn blocks(node: &Node, request: BlockRequest) -> BlockResponse {
    let store = node.store.clone();
    let max = usize::from(request.max.min(MAX_BLOCKS_PER_RESPONSE));
    let blocks = tokio::task::spawn_blocking(move || store.blocks_from(request.from, max))
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    BlockResponse { blocks }
}
