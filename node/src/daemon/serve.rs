//! Answers to peers' requests: chunks (verified before they leave), blocks and headers.

use nexus_consensus::{BlockHash, CertifiedHeader};
use nexus_net::codec::Encoded;
use nexus_net::protocol::blocks::{self, BlockRequest, BlockResponse, MAX_BLOCKS_PER_RESPONSE};
use nexus_net::protocol::chunks::{ChunkRequest, ChunkResponse};
use nexus_net::protocol::headers::{HeaderRequest, HeaderResponse, MAX_HEADERS_PER_RESPONSE};
use nexus_storage::{BlobId, Block, ChunkIndex, Height};

use super::fetch::read_local;
use super::{Fault, Node};

/// Reads, verifies and returns a chunk of a stored (not staged) blob; a chunk found corrupt
/// is discarded (and refetched by replication) rather than served.
pub(crate) async fn chunk(node: &Node, request: ChunkRequest) -> ChunkResponse {
    let (blob_id, index) = (BlobId(request.blob_id.0), ChunkIndex(request.index));
    // An upload still waiting for its registration is nobody's to fetch yet.
    if node.store.is_staged(&blob_id).unwrap_or(true) {
        return ChunkResponse::NotFound;
    }
    match read_local(node, blob_id, index).await {
        Ok(mut chunk) => {
            if node.has_fault(Fault::CorruptChunks) {
                if let Some(b) = chunk.data.first_mut() {
                    *b ^= 0xff;
                }
            }
            node.bytes_served.fetch_add(
                chunk.data.len() as u64,
                std::sync::atomic::Ordering::Relaxed,
            );
            ChunkResponse::Chunk {
                data: chunk.data,
                proof: chunk.proof,
            }
        }
        Err(_) => ChunkResponse::NotFound,
    }
}

/// Final blocks by height (with their proofs, within the response cap), or one block by
/// hash (pending or among the recent final ones).
pub(crate) async fn blocks(node: &Node, request: BlockRequest) -> BlockResponse {
    let blocks = match request {
        BlockRequest::Range { from, max } => {
            let store = node.store.clone();
            let max = usize::from(max.min(MAX_BLOCKS_PER_RESPONSE));
            let found = tokio::task::spawn_blocking(move || store.blocks_from(from, max))
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default();
            let mut total = 0usize;
            let mut encoded = Vec::new();
            for block in found {
                let e = Encoded::of(&block);
                total += e.len();
                if total > blocks::CAPS.response - 64 * 1024 {
                    break;
                }
                encoded.push(e);
            }
            encoded
        }
        BlockRequest::ByHash(hash) => block_by_hash(node, &hash)
            .map(|b| vec![Encoded::of(&b)])
            .unwrap_or_default(),
    };
    BlockResponse { blocks }
}

/// Final blocks this far below the tip are searched for by hash.
const RECENT_FINAL: u64 = 64;

fn block_by_hash(node: &Node, hash: &BlockHash) -> Option<Block> {
    if let Some(block) = node.tree_block(hash) {
        return Some(block);
    }
    let tip = node.store.tip()?.header.height.0;
    (tip.saturating_sub(RECENT_FINAL)..=tip)
        .rev()
        .filter_map(|h| node.store.block(Height(h)).ok().flatten())
        .find(|b| b.header.hash() == *hash)
}

/// The genesis header with its chain spec, or final headers with their proofs.
pub(crate) async fn headers(node: &Node, request: HeaderRequest) -> HeaderResponse {
    let store = node.store.clone();
    let answer = tokio::task::spawn_blocking(move || match request {
        HeaderRequest::Genesis => {
            let genesis = store.block(Height(0)).ok().flatten()?;
            let spec = genesis.genesis?.spec;
            Some(HeaderResponse::Genesis {
                header: Box::new(genesis.header),
                spec: Box::new(spec),
            })
        }
        HeaderRequest::Range { from, max } => {
            let max = usize::from(max.min(MAX_HEADERS_PER_RESPONSE));
            let blocks = store.blocks_from(from, max).ok()?;
            Some(HeaderResponse::Headers(
                blocks
                    .into_iter()
                    .map_while(|b| {
                        b.proof.map(|proof| CertifiedHeader {
                            header: b.block.header,
                            proof,
                        })
                    })
                    .collect(),
            ))
        }
    })
    .await;
    answer.ok().flatten().unwrap_or(HeaderResponse::Unavailable)
}
