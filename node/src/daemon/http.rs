//! The HTTP API on localhost. Uploads and downloads stream (memory does not grow with the
//! blob); every other route has a 64 KiB body limit and a 30 s timeout; the whole API has a
//! concurrency limit. Every error is a JSON [`ErrorBody`] with a status code.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use futures::StreamExt;
use nexus_storage::{
    BlobId, BlobLayout, BlobRegistration, ChunkIndex, Height, ReadChunkError, StoragePolicy,
    StoreError,
};
use tokio::sync::mpsc;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::ServiceBuilder;

use super::chain::{anchor, AnchorError};
use super::fetch::{fetch_chunk, read_local};
use super::Node;
use crate::api::{BlobInfo, ErrorBody, Receipt, Status};

/// Requests served at once.
const MAX_CONCURRENT_REQUESTS: usize = 64;
/// Body limit of every route but the upload.
const SMALL_BODY_LIMIT: usize = 64 * 1024;
/// Timeout of every route but the streaming ones.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest pause allowed between two pieces of an upload.
const UPLOAD_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait for a stored blob to be registered in a block.
const ANCHOR_DEADLINE: Duration = Duration::from_secs(60);

/// An API failure: status code plus a message a user can act on.
#[derive(Debug)]
pub(crate) enum ApiError {
    BadRequest(String),
    UnknownBlob(BlobId),
    NotFound(String),
    QuotaExceeded(String),
    Unavailable(String),
    Internal(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind, error) = match self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, "bad_request", m),
            ApiError::UnknownBlob(id) => (
                StatusCode::NOT_FOUND,
                "unknown_blob",
                format!("unknown blob {id}: no node in this network registered it"),
            ),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, "not_found", m),
            ApiError::QuotaExceeded(m) => (StatusCode::INSUFFICIENT_STORAGE, "quota_exceeded", m),
            ApiError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", m),
            ApiError::Internal(m) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", m),
        };
        let body = ErrorBody {
            kind: kind.into(),
            error,
        };
        (status, Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::QuotaExceeded { .. } => ApiError::QuotaExceeded(e.to_string()),
            e => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// The API's routes with their limits.
pub(crate) fn router(node: Arc<Node>) -> Router {
    let bounded = Router::new()
        .route("/v1/status", get(status))
        .route("/v1/blobs/{id}/info", get(blob_info))
        .route("/v1/blobs/{id}/proof", get(proof))
        .route("/v1/blocks/{height}", get(block))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
                    ApiError::Unavailable("the request timed out".into())
                }))
                .timeout(REQUEST_TIMEOUT),
        )
        .layer(DefaultBodyLimit::max(SMALL_BODY_LIMIT));
    let streaming = Router::new()
        .route("/v1/blobs", put(put_blob))
        .route("/v1/blobs/{id}", get(get_blob))
        .layer(DefaultBodyLimit::disable());
    bounded
        .merge(streaming)
        .fallback(|| async { ApiError::NotFound("no such API route".into()) })
        .layer(GlobalConcurrencyLimitLayer::new(MAX_CONCURRENT_REQUESTS))
        .with_state(node)
}

fn parse_blob_id(s: &str) -> ApiResult<BlobId> {
    s.parse().map_err(|e| {
        ApiError::BadRequest(format!("{s:?} is not a blob id (64 hex characters): {e}"))
    })
}

async fn status(State(node): State<Arc<Node>>) -> ApiResult<Json<Status>> {
    let info = node
        .net
        .info()
        .await
        .ok_or_else(|| ApiError::Unavailable("the network service stopped".into()))?;
    let store = node.store.clone();
    let (stats, genesis) = tokio::task::spawn_blocking(move || {
        Ok::<_, StoreError>((store.stats()?, store.block(Height(0))?))
    })
    .await??;
    let tip = node.store.tip();
    Ok(Json(Status {
        peer_id: info.peer_id.to_string(),
        listen_addrs: info.listen_addrs.iter().map(ToString::to_string).collect(),
        peers: info.connected.iter().map(ToString::to_string).collect(),
        banned_peers: info.banned.iter().map(ToString::to_string).collect(),
        is_proposer: node.proposer_key.is_some(),
        proposer: genesis.as_ref().map(|g| g.header.proposer),
        genesis: genesis.map(|g| g.header.hash()),
        height: tip.as_ref().map(|t| t.height),
        tip_hash: tip.map(|t| t.hash()),
        blobs_complete: stats.blobs_complete,
        blobs_partial: stats.blobs_partial,
        used_bytes: stats.used_bytes,
        capacity: stats.capacity,
        disk_bytes: stats.disk_bytes,
        corrupt_chunks_found: node.corrupt_chunks_found.load(Ordering::Relaxed),
    }))
}

async fn blob_info(
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

async fn proof(State(node): State<Arc<Node>>, Path(id): Path<String>) -> ApiResult<Response> {
    let id = parse_blob_id(&id)?;
    let store = node.store.clone();
    let proof = tokio::task::spawn_blocking(move || store.inclusion_proof(&id)).await??;
    proof
        .map(|p| Json(p).into_response())
        .ok_or(ApiError::UnknownBlob(id))
}

async fn block(State(node): State<Arc<Node>>, Path(height): Path<String>) -> ApiResult<Response> {
    let height = height
        .parse::<u64>()
        .map(Height)
        .map_err(|_| ApiError::BadRequest(format!("{height:?} is not a block height")))?;
    let store = node.store.clone();
    let block = tokio::task::spawn_blocking(move || store.block(height)).await??;
    block
        .map(|b| Json(b).into_response())
        .ok_or_else(|| ApiError::NotFound(format!("no block at height {height} yet")))
}

async fn put_blob(
    State(node): State<Arc<Node>>,
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
    tracing::info!(blob = %ingested.blob_id, size = ingested.size, "blob stored");
    let reg = BlobRegistration {
        blob_id: ingested.blob_id,
        size: ingested.size,
        policy: StoragePolicy::Replicated,
    };
    let (height, index) = anchor(&node, reg, ANCHOR_DEADLINE)
        .await
        .map_err(|e| match e {
            AnchorError::Timeout(_) => ApiError::Unavailable(format!("blob {}: {e}", reg.blob_id)),
            AnchorError::Store(m) => ApiError::Internal(m),
        })?;
    let store = node.store.clone();
    let block = tokio::task::spawn_blocking(move || store.block(height))
        .await??
        .ok_or_else(|| ApiError::Internal(format!("block {height} vanished")))?;
    Ok(Json(Receipt {
        blob_id: reg.blob_id,
        size: reg.size,
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

async fn get_blob(State(node): State<Arc<Node>>, Path(id): Path<String>) -> ApiResult<Response> {
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
