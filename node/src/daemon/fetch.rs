//! Getting chunks from peers: each is verified against its BlobId before it is stored; a
//! peer that serves a bad chunk is dropped and the chunk is asked of the next peer. The
//! replication loop uses this to make every node hold every registered blob.

use std::sync::Arc;
use std::time::Duration;

use futures::{stream, StreamExt};
use nexus_net::protocol::chunks::{ChunkRequest, ChunkResponse};
use std::sync::atomic::Ordering;

use nexus_storage::ledger::PolicySpec;
use nexus_storage::merkle::MerkleProof;
use nexus_storage::{
    BlobId, BlobLayout, BlobRegistration, ChunkIndex, PutChunkError, ReadChunkError, StoredChunk,
    CHUNK_SIZE,
};

use super::{Fault, Node};

/// Chunk fetches in flight per blob.
const PARALLEL_FETCHES: usize = 8;
/// Deadline of one chunk request.
const CHUNK_TIMEOUT: Duration = Duration::from_secs(20);

/// Why a chunk could not be fetched.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("no connected peer could provide chunk {index} of blob {blob_id}")]
    Unavailable { blob_id: BlobId, index: ChunkIndex },
    #[error("cannot store chunk: {0}")]
    Store(String),
}

/// Reads a chunk from the local store, verified. A chunk found corrupt on disk is
/// discarded, counted, and left for replication to fetch again; the error is returned.
pub(crate) async fn read_local(
    node: &Node,
    blob_id: BlobId,
    index: ChunkIndex,
) -> Result<StoredChunk, ReadChunkError> {
    let store = node.store.clone();
    let read = tokio::task::spawn_blocking(move || store.read_chunk(&blob_id, index))
        .await
        .map_err(|e| {
            ReadChunkError::Store(nexus_storage::StoreError::CorruptRecord {
                keyspace: "chunks",
                reason: e.to_string(),
            })
        })?;
    if let Err(e @ ReadChunkError::Corrupt { .. }) = &read {
        tracing::error!("{e}; discarding it and repairing it from a peer");
        node.corrupt_chunks_found.fetch_add(1, Ordering::Relaxed);
        let store = node.store.clone();
        let _ = tokio::task::spawn_blocking(move || store.discard_chunk(&blob_id, index)).await;
        node.replicate_now.notify_one();
    }
    read
}

/// Why a fetched chunk was not taken.
enum Refusal {
    /// The chunk does not verify: the peer is penalised and the next one asked.
    Invalid(String),
    /// Something local failed: stop asking.
    Local(FetchError),
}

/// Asks peers in turn for chunk `index` of `blob_id` and hands each chunk served to
/// `accept`, which verifies it (and stores it, or not), until one is accepted.
async fn fetch_from_peers<T, F, Fut>(
    node: &Node,
    blob_id: BlobId,
    index: ChunkIndex,
    mut accept: F,
) -> Result<T, FetchError>
where
    F: FnMut(Vec<u8>, MerkleProof) -> Fut,
    Fut: std::future::Future<Output = Result<T, Refusal>>,
{
    let mut peers = node.net.storage_peers().await;
    // Spread the chunks of one blob over all peers.
    if !peers.is_empty() {
        let shift = index.0 as usize % peers.len();
        peers.rotate_left(shift);
    }
    for peer in peers {
        if let Some(limit) = &node.bandwidth {
            limit.acquire(CHUNK_SIZE as u64).await;
        }
        let request = ChunkRequest {
            blob_id: nexus_storage::Digest(blob_id.0),
            index: index.0,
        };
        let response =
            tokio::time::timeout(CHUNK_TIMEOUT, node.net.request_chunk(peer, request)).await;
        let (data, proof) = match response {
            Ok(Ok(ChunkResponse::Chunk { data, proof })) => (data, proof),
            Ok(Ok(ChunkResponse::NotFound)) => continue,
            Ok(Err(e)) => {
                tracing::debug!("chunk request failed: {e}");
                continue;
            }
            Err(_) => {
                tracing::debug!(%peer, "chunk request timed out");
                continue;
            }
        };
        let len = data.len() as u64;
        match accept(data, proof).await {
            Ok(taken) => {
                node.bytes_fetched.fetch_add(len, Ordering::Relaxed);
                return Ok(taken);
            }
            Err(Refusal::Invalid(e)) => {
                tracing::warn!(%peer, "peer served a corrupt chunk ({e}); dropping it");
                node.net.penalise(peer).await;
                node.unverifiable
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(blob_id);
            }
            Err(Refusal::Local(e)) => return Err(e),
        }
    }
    Err(FetchError::Unavailable { blob_id, index })
}

/// Fetches chunk `index` of `blob_id` from some peer, verifies and stores it. The blob
/// must already have a record in the store (see `Store::begin_replica`).
pub(crate) async fn fetch_chunk(
    node: &Node,
    blob_id: BlobId,
    index: ChunkIndex,
) -> Result<(), FetchError> {
    fetch_from_peers(node, blob_id, index, |data, proof| async move {
        let store = node.store.clone();
        let put =
            tokio::task::spawn_blocking(move || store.put_chunk(&blob_id, index, &data, &proof))
                .await
                .map_err(|e| Refusal::Local(FetchError::Store(e.to_string())))?;
        match put {
            Ok(()) => Ok(()),
            Err(PutChunkError::Invalid(e)) => Err(Refusal::Invalid(e.to_string())),
            Err(e) => Err(Refusal::Local(FetchError::Store(e.to_string()))),
        }
    })
    .await
}

/// The whole content of a registered blob, in memory: read from the local store if held
/// whole, else fetched chunk by chunk from peers and verified.
pub(crate) async fn blob_bytes(node: &Node, reg: &BlobRegistration) -> Result<Vec<u8>, FetchError> {
    let (id, size) = (reg.blob_id, reg.size);
    let layout = BlobLayout::new(size).map_err(|e| FetchError::Store(e.to_string()))?;
    let held = matches!(node.store.blob(&id), Ok(Some(r)) if r.complete);
    let pieces: Vec<Result<Vec<u8>, FetchError>> = stream::iter(layout.indices())
        .map(|index| async move {
            if held {
                if let Ok(chunk) = read_local(node, id, index).await {
                    return Ok(chunk.data);
                }
            }
            fetch_from_peers(node, id, index, |data, proof| async move {
                id.verify_chunk(size, index, &data, &proof)
                    .map_err(|e| Refusal::Invalid(e.to_string()))?;
                Ok(data)
            })
            .await
        })
        .buffered(PARALLEL_FETCHES)
        .collect()
        .await;
    let mut bytes = Vec::with_capacity(size as usize);
    for piece in pieces {
        bytes.extend_from_slice(&piece?);
    }
    Ok(bytes)
}

/// Fetches every missing chunk of a registered blob and marks it complete. Returns whether
/// the blob is now whole.
pub(crate) async fn replicate(node: &Node, reg: BlobRegistration) -> Result<bool, String> {
    let store = node.store.clone();
    let id = reg.blob_id;
    let missing = tokio::task::spawn_blocking(move || {
        store.begin_replica(&reg).map_err(|e| e.to_string())?;
        store
            .missing_chunks(&reg.blob_id)
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())??;
    let failures = stream::iter(missing)
        .map(|index| fetch_chunk(node, id, index))
        .buffer_unordered(PARALLEL_FETCHES)
        .filter(|r| std::future::ready(r.is_err()))
        .count()
        .await;
    if failures > 0 {
        return Ok(false);
    }
    let store = node.store.clone();
    let whole = tokio::task::spawn_blocking(move || store.complete_replica(&id))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    if whole {
        node.unverifiable
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }
    Ok(whole)
}

/// Shards the ledger assigns to this node's account that it does not hold whole yet,
/// as registrations of blobs of their own.
fn assigned_shards(node: &Node) -> Vec<BlobRegistration> {
    let Some(tip) = node.store.tip() else {
        return Vec::new();
    };
    let mut mine: Vec<BlobRegistration> = tip
        .ledger
        .shards_placed_at(&node.account.public())
        .into_iter()
        .map(|duty| BlobRegistration {
            blob_id: duty.shard,
            size: duty.size,
            policy: PolicySpec::Replicated,
        })
        .collect();
    let ids: Vec<BlobId> = mine.iter().map(|r| r.blob_id).collect();
    if drop_assigned_shards(node, &ids) {
        return Vec::new();
    }
    mine.retain(|r| !matches!(node.store.blob(&r.blob_id), Ok(Some(rec)) if rec.complete));
    mine
}

/// Keeps every registered blob whole: after each new block, on each new peer, and every
/// few seconds (which also resumes work interrupted by a crash).
pub(crate) async fn replication_loop(node: Arc<Node>) {
    loop {
        tokio::select! {
            _ = node.replicate_now.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(3)) => {}
        }
        let store = node.store.clone();
        let pending = match tokio::task::spawn_blocking(move || store.unreplicated()).await {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => {
                tracing::error!("cannot list blobs to replicate: {e}");
                continue;
            }
            Err(_) => continue,
        };
        for reg in pending.into_iter().chain(assigned_shards(&node)) {
            let (id, size) = (reg.blob_id, reg.size);
            match replicate(&node, reg).await {
                Ok(true) => tracing::info!(blob = %id, size, "blob replicated"),
                Ok(false) => tracing::debug!(blob = %id, "blob partly replicated; will retry"),
                Err(e) => tracing::warn!(blob = %id, "cannot replicate: {e}"),
            }
        }
    }
}

/// Makes at least `need` of `shards` whole in the local store, fetching them in parallel
/// (data shards first, then parity as fallbacks). Returns how many are whole.
pub(crate) async fn gather_shards(
    node: &Node,
    shards: &[BlobId],
    shard_size: u64,
    need: usize,
) -> usize {
    let whole = |id: &BlobId| matches!(node.store.blob(id), Ok(Some(r)) if r.complete);
    let mut held = shards.iter().filter(|s| whole(s)).count();
    let mut candidates = shards.iter().filter(|s| !whole(s)).copied();
    while held < need {
        let batch: Vec<BlobId> = candidates.by_ref().take(need - held).collect();
        if batch.is_empty() {
            break;
        }
        let fetches = batch.into_iter().map(|shard| {
            let reg = BlobRegistration {
                blob_id: shard,
                size: shard_size,
                policy: PolicySpec::Replicated,
            };
            replicate(node, reg)
        });
        held += futures::future::join_all(fetches)
            .await
            .into_iter()
            .filter(|r| matches!(r, Ok(true)))
            .count();
    }
    held
}

/// With `Fault::DropShards`, deletes the shards this node was given (a provider that lost
/// its data); returns true when the fault is active.
fn drop_assigned_shards(node: &Node, assigned: &[BlobId]) -> bool {
    if !node.has_fault(Fault::DropShards) {
        return false;
    }
    for shard in assigned {
        if matches!(node.store.delete_blob(shard), Ok(true)) {
            tracing::warn!(%shard, "fault injection: shard deleted");
        }
    }
    true
}
