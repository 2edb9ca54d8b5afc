//! The HTTP API on localhost. Uploads and downloads stream (memory does not grow with the
//! blob) and an upload must keep a minimum rate; every other route has a 64 KiB body limit
//! and a 30 s timeout. Queries, writes and downloads have separate budgets of requests
//! served at once, and connections are capped per client with a header read timeout
//! ([`nexus_api::server::listener`]). Every error is a JSON [`ErrorBody`] with a status code.

mod blobs;
mod compute;
mod ledger;
mod metrics;
pub(crate) mod uploads;

pub(crate) use compute::store_own_blob;
pub(crate) use nexus_api::server::listener::serve;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post, put};
use axum::{Json, Router};
use nexus_storage::{BlobId, Height};
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::ServiceBuilder;

use super::submit::SubmitError;
use super::Node;
use nexus_api::server::error::{ApiError, ApiResult};
use nexus_api::types::{ErrorBody, Status, ValidatorView};

/// Status, info, proofs and blocks served at once (more wait their turn).
const MAX_QUERIES: usize = 64;
/// Transactions (and job submissions) served at once; uploads have their own budget,
/// shared fairly between clients ([`slots`]).
const MAX_TRANSACTIONS: usize = 64;
/// Downloads served at once (more wait their turn).
const MAX_DOWNLOADS: usize = 64;
/// Body limit of every route but the upload.
const SMALL_BODY_LIMIT: usize = 64 * 1024;
/// Timeout of every route but the streaming ones and transactions.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// [`ApiError::Expired`] if the ledger at `node`'s tip no longer stores `id`, which a
/// block at `height` registered.
pub(crate) fn unless_expired(node: &Node, id: BlobId, height: Height) -> Result<(), ApiError> {
    if node.store.tip().is_none() || node.store.ledger_stores(&id) {
        return Ok(());
    }
    Err(ApiError::Expired {
        id,
        registered_at: height.0,
    })
}

/// `id` is not registered in any block `node` holds.
pub(crate) fn unknown_blob(node: &Node, id: BlobId) -> ApiError {
    let synced = node.store.tip().map_or(0, |t| t.header.height.0);
    ApiError::UnknownBlob {
        id,
        synced,
        network: node.announced.load(std::sync::atomic::Ordering::Relaxed),
    }
}

/// Maps a failed submission of this node's transaction; `what` says what it was for.
fn submit_error(what: &str, e: SubmitError) -> ApiError {
    match e {
        SubmitError::Rejected(_) | SubmitError::Failed(_) => {
            ApiError::Rejected(format!("{what}: {e}"))
        }
        SubmitError::NoChain | SubmitError::Timeout(_) | SubmitError::Superseded => {
            ApiError::Unavailable(format!("{what}: {e}"))
        }
        SubmitError::Store(m) => ApiError::Internal(m),
    }
}

/// The API's routes with their limits. Uploads, transactions, downloads, and every other
/// route (status, info, proofs, blocks) each have their own budget of requests served at
/// once, so that slow uploads never keep a status query or a transaction waiting.
pub(crate) fn router(node: Arc<Node>) -> Router {
    let bounded = Router::new()
        .route("/v1/status", get(status))
        .route("/v1/health", get(health))
        .route("/metrics", get(metrics::metrics))
        .route("/v1/blobs/preflight", get(blobs::preflight_put))
        .route("/v1/uploads", post(uploads::open))
        .route(
            "/v1/uploads/{id}",
            get(uploads::status).delete(uploads::abandon),
        )
        .route("/v1/blobs/{id}/info", get(blobs::blob_info))
        .route("/v1/blobs/{id}/proof", get(blobs::proof))
        .route("/v1/blocks/{height}", get(block))
        .route("/v1/blocks/{height}/cells", get(cells))
        .route("/v1/accounts/{key}", get(ledger::account))
        .route("/v1/ledger", get(ledger::summary))
        .route("/v1/chain", get(chain))
        .route("/v1/validator", get(validator))
        .route("/v1/compute/jobs/{id}", get(compute::job))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
                    ApiError::Unavailable("the request timed out".into())
                }))
                .timeout(REQUEST_TIMEOUT),
        )
        .layer(DefaultBodyLimit::max(SMALL_BODY_LIMIT))
        .layer(GlobalConcurrencyLimitLayer::new(MAX_QUERIES));
    let uploads = Router::new()
        .route("/v1/blobs", put(blobs::put_blob))
        .route("/v1/uploads/{id}", patch(uploads::append))
        .layer(DefaultBodyLimit::disable());
    let downloads = Router::new()
        .route("/v1/blobs/{id}", get(blobs::get_blob))
        .layer(GlobalConcurrencyLimitLayer::new(MAX_DOWNLOADS));
    // Waits for a block, so it gets its own (longer) deadline inside `submit`.
    let transactions = Router::new()
        .route("/v1/transactions", post(ledger::transaction))
        .route("/v1/compute/jobs", post(compute::submit_job))
        .layer(DefaultBodyLimit::max(SMALL_BODY_LIMIT))
        .layer(GlobalConcurrencyLimitLayer::new(MAX_TRANSACTIONS));
    bounded
        .merge(uploads)
        .merge(downloads)
        .merge(transactions)
        .fallback(|| async { ApiError::NotFound("no such API route".into()) })
        .layer(axum::middleware::map_response(json_errors))
        .with_state(node)
}

/// Rewrites an error the framework answered in plain text (a bad query or JSON body, a
/// body over its limit, a wrong content type, a method the route does not take) as the
/// API's JSON [`ErrorBody`], keeping its status and its message.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let allow = response.headers().get(header::ALLOW).cloned();
    let text = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let kind = match status {
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::REQUEST_TIMEOUT => "timeout",
        s if s.is_client_error() => "bad_request",
        _ => "internal",
    };
    let error = match (text.is_empty(), status) {
        (false, _) => text,
        (true, StatusCode::METHOD_NOT_ALLOWED) => format!(
            "this route does not take that method (it takes {})",
            allow
                .as_ref()
                .and_then(|a| a.to_str().ok())
                .unwrap_or("another")
        ),
        (true, s) => s.canonical_reason().unwrap_or("error").to_string(),
    };
    let body = ErrorBody {
        kind: kind.into(),
        error,
    };
    let mut rewritten = (status, Json(body)).into_response();
    if let Some(allow) = allow {
        rewritten.headers_mut().insert(header::ALLOW, allow);
    }
    rewritten
}

pub(super) fn parse_blob_id(s: &str) -> ApiResult<BlobId> {
    s.parse().map_err(|e| {
        ApiError::BadRequest(format!("{s:?} is not a blob id (64 hex characters): {e}"))
    })
}

/// `GET /v1/health`: `200` when the node can do its job, else `503`; both list what is
/// wrong, in words.
async fn health(State(node): State<Arc<Node>>) -> Response {
    let problems = node.problems();
    let code = match problems.is_empty() {
        true => StatusCode::OK,
        false => StatusCode::SERVICE_UNAVAILABLE,
    };
    let body = serde_json::json!({
        "healthy": problems.is_empty(),
        "problems": problems,
        "disk_free": node.store.disk_free(),
    });
    (code, Json(body)).into_response()
}

async fn status(State(node): State<Arc<Node>>) -> ApiResult<Json<Status>> {
    let info = node
        .net
        .info()
        .await
        .ok_or_else(|| ApiError::Unavailable("the network service stopped".into()))?;
    let store = node.store.clone();
    let stats = tokio::task::spawn_blocking(move || store.stats()).await??;
    let tip = node.store.tip();
    let ctx = node.context();
    let final_height = tip.as_ref().map(|t| t.header.height);
    let latest = [
        final_height,
        node.tree_summary().map(|(h, _)| h),
        Some(Height(node.announced.load(Ordering::Relaxed))),
    ]
    .into_iter()
    .flatten()
    .max()
    .filter(|_| final_height.is_some());
    Ok(Json(Status {
        peer_id: info.peer_id.to_string(),
        listen_addrs: info.listen_addrs.iter().map(ToString::to_string).collect(),
        peers: info.connected.iter().map(ToString::to_string).collect(),
        banned_peers: info.banned.iter().map(ToString::to_string).collect(),
        validator: node.validator,
        account: node.account.public(),
        balance: tip
            .as_ref()
            .map_or(0, |t| t.ledger.account(&node.account.public()).balance),
        epoch: tip.as_ref().map(|t| t.ledger.epoch()),
        state_root: tip.as_ref().map(|t| t.ledger.state_root()),
        chain_id: ctx.as_ref().map(|c| c.spec().chain_id.clone()),
        validators: ctx.as_ref().map(|c| c.committee().len()),
        genesis: ctx.as_ref().map(|c| c.genesis()),
        height: final_height,
        latest_height: latest,
        tip_hash: tip.map(|t| t.header.hash()),
        blobs_complete: stats.blobs_complete,
        blobs_partial: stats.blobs_partial,
        used_bytes: stats.used_bytes,
        staged_bytes: stats.staged_bytes,
        receiving_bytes: stats.receiving_bytes,
        capacity: stats.capacity,
        disk_bytes: stats.disk_bytes,
        corrupt_chunks_found: node.corrupt_chunks_found.load(Ordering::Relaxed),
        problems: node.problems(),
        bytes_fetched: node.bytes_fetched.load(Ordering::Relaxed),
        custody_cells: stats.custody_cells,
    }))
}

/// `GET /v1/chain`: the genesis header and the chain spec it names (committee included).
async fn chain(State(node): State<Arc<Node>>) -> ApiResult<Response> {
    let store = node.store.clone();
    let genesis = tokio::task::spawn_blocking(move || store.block(Height(0))).await??;
    let genesis =
        genesis.ok_or_else(|| ApiError::Unavailable("this node has no chain yet".into()))?;
    let spec = genesis
        .genesis
        .map(|g| g.spec)
        .ok_or_else(|| ApiError::Internal("the genesis block has no chain genesis".into()))?;
    Ok(Json(nexus_api::types::ChainView {
        genesis: genesis.header,
        spec,
    })
    .into_response())
}

/// `GET /v1/validator`: consensus as this validator sees it.
async fn validator(State(node): State<Arc<Node>>) -> ApiResult<Json<ValidatorView>> {
    let engine = node
        .engine_status
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
        .ok_or_else(|| {
            ApiError::NotFound(if node.is_validator() {
                "this validator has not started consensus yet (no chain?)".into()
            } else {
                "this node is not a validator (start it with --validator)".into()
            })
        })?;
    let timings = node.timings.lock().unwrap_or_else(|p| p.into_inner());
    Ok(Json(ValidatorView {
        engine,
        finalized_height: node.store.tip().map(|t| t.header.height),
        pending_blocks: node.tree_summary().map_or(0, |(_, n)| n),
        commit_ms: timings.commit.summary(),
        build_ms: timings.build.summary(),
        build_with_data_ms: timings.build_with_data.summary(),
        commits: timings.commit.clone(),
    }))
}

/// Query of `GET /v1/blocks/{height}/cells`.
#[derive(Debug, serde::Deserialize)]
struct CellsQuery {
    /// Cells not held here to sample from peers (default 64).
    samples: Option<usize>,
}

async fn cells(
    State(node): State<Arc<Node>>,
    Path(height): Path<String>,
    axum::extract::Query(query): axum::extract::Query<CellsQuery>,
) -> ApiResult<Response> {
    let height = height
        .parse::<u64>()
        .map(Height)
        .map_err(|_| ApiError::BadRequest(format!("{height:?} is not a block height")))?;
    let samples = query.samples.unwrap_or(64).min(4096);
    super::custody::grid_view(&node, height, samples)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map(|v| Json(v).into_response())
        .ok_or_else(|| ApiError::NotFound(format!("no block at height {height} yet")))
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
