//! Blob routes: streaming upload (stored, persisted, paid and anchored before the answer),
//! streaming download (verified chunk by chunk, fetched or repaired from peers as needed),
//! blob info and inclusion proofs.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use nexus_storage::ledger::{PolicySpec, TxKind};
use nexus_storage::{BlobId, BlobLayout, ChunkIndex, ReadChunkError, StoreError};
use tokio::sync::mpsc;

use super::{parse_blob_id, submit_error, ApiError, ApiResult};
use crate::api::{BlobInfo, Receipt};
use crate::daemon::chain::submit;
use crate::daemon::fetch::{fetch_chunk, read_local};
use crate::daemon::Node;

/// Longest pause allowed between two pieces of an upload.
const UPLOAD_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait for a stored blob to be registered in a block.
const ANCHOR_DEADLINE: Duration = Duration::from_secs(60);
/// Epochs paid for when the uploader does not say.
const DEFAULT_EPOCHS: u64 = 100;

/// Query of `PUT /v1/blobs`.
#[derive(Debug, serde::Deserialize)]
pub(super) struct PutQuery {
    /// Epochs to pay for.
    epochs: Option<u64>,
}

pub(super) async fn blob_info(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
) -> ApiResult<Json<BlobInfo>> {
    let id = parse_blob_id(&id)?;
    let store = node.store.clone();
    tokio::task::spawn_blocking(move || {
        let registered = store.registration(&id)?;
        let Some(record) = store.blob(&id)? else {
            return match registered {
                Some((height, _, reg)) => Ok(Json(BlobInfo {
                    blob_id: id,
                    size: reg.size,
                    complete: false,
                    missing_chunks: BlobLayout::new(reg.size)
                        .map_err(StoreError::from)?
                        .chunk_count(),
                    registered_at: Some(height),
                })),
                None => Err(ApiError::UnknownBlob(id)),
            };
        };
        let missing = if record.complete {
            0
        } else {
            store
                .missing_chunks(&id)
                .map_err(|e| ApiError::Internal(e.to_string()))?
                .len() as u64
        };
        Ok(Json(BlobInfo {
            blob_id: id,
            size: record.size,
            complete: record.complete,
            missing_chunks: missing,
            registered_at: registered.map(|(h, _, _)| h),
        }))
    })
    .await?
}

pub(super) async fn proof(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = parse_blob_id(&id)?;
    let store = node.store.clone();
    let proof = tokio::task::spawn_blocking(move || store.inclusion_proof(&id)).await??;
    proof
        .map(|p| Json(p).into_response())
        .ok_or(ApiError::UnknownBlob(id))
}

pub(super) async fn put_blob(
    State(node): State<Arc<Node>>,
    Query(query): Query<PutQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Receipt>> {
    // Refuse an upload that cannot fit before reading any of it.
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(len) = announced {
        node.store.check_room(len)?;
    }
    let mut writer = node.store.ingest()?;
    let mut stream = body.into_data_stream();
    loop {
        let piece = tokio::time::timeout(UPLOAD_IDLE_TIMEOUT, stream.next())
            .await
            .map_err(|_| ApiError::BadRequest("upload stalled for 60 s; aborted".into()))?;
        match piece {
            Some(Ok(bytes)) => tokio::task::block_in_place(|| writer.write(&bytes))?,
            Some(Err(e)) => return Err(ApiError::BadRequest(format!("upload interrupted: {e}"))),
            None => break,
        }
    }
    let ingested = tokio::task::spawn_blocking(move || writer.finish()).await??;
    let (blob_id, size) = (ingested.blob_id, ingested.size);
    tracing::info!(blob = %blob_id, size, "blob stored");
    let store = node.store.clone();
    let known = tokio::task::spawn_blocking(move || store.registration(&blob_id)).await??;
    let (height, index) = match known {
        // Already registered (the same content was put before): nothing more to pay.
        Some((height, index, _)) => (height, index),
        None => {
            let kind = TxKind::StoreBlob {
                blob_id,
                size,
                policy: PolicySpec::Replicated,
                epochs: query.epochs.unwrap_or(DEFAULT_EPOCHS),
            };
            let included = submit(&node, kind, ANCHOR_DEADLINE).await.map_err(|e| {
                submit_error(
                    &format!("blob {blob_id} is stored here but not registered"),
                    e,
                )
            })?;
            (included.height, included.index)
        }
    };
    let store = node.store.clone();
    let block = tokio::task::spawn_blocking(move || store.block(height))
        .await??
        .ok_or_else(|| ApiError::Internal(format!("block {height} vanished")))?;
    Ok(Json(Receipt {
        blob_id,
        size,
        height,
        block_hash: block.header.hash(),
        index,
        proposer: block.header.proposer,
    }))
}

/// Reads a chunk, fetching it from peers if it is missing or corrupt on disk.
async fn read_or_fetch(node: &Node, id: BlobId, index: ChunkIndex) -> Result<Vec<u8>, String> {
    for _ in 0..3 {
        match read_local(node, id, index).await {
            Ok(chunk) => return Ok(chunk.data),
            Err(ReadChunkError::Missing { .. } | ReadChunkError::Corrupt { .. }) => {}
            Err(e) => return Err(e.to_string()),
        }
        fetch_chunk(node, id, index)
            .await
            .map_err(|e| e.to_string())?;
    }
    Err(format!(
        "chunk {index} of blob {id} keeps failing verification"
    ))
}

pub(super) async fn get_blob(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = parse_blob_id(&id)?;
    let store = node.store.clone();
    let size = tokio::task::spawn_blocking(move || -> ApiResult<u64> {
        if let Some(record) = store.blob(&id)? {
            return Ok(record.size);
        }
        // Registered but not replicated here yet: fetch it on demand.
        let (_, _, reg) = store.registration(&id)?.ok_or(ApiError::UnknownBlob(id))?;
        store.begin_replica(&reg)?;
        Ok(reg.size)
    })
    .await??;
    let layout = BlobLayout::new(size).map_err(|e| ApiError::Internal(e.to_string()))?;
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(4);
    tokio::spawn(async move {
        for index in layout.indices() {
            let piece = read_or_fetch(&node, id, index)
                .await
                .map(Bytes::from)
                .map_err(|e| {
                    tracing::error!("cannot serve blob {id}: {e}");
                    io::Error::other(e)
                });
            let failed = piece.is_err();
            if tx.send(piece).await.is_err() || failed {
                return;
            }
        }
        node.replicate_now.notify_one();
    });
    let body = Body::from_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }));
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, size.to_string()),
        ],
        body,
    )
        .into_response())
}
