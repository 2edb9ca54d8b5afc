//! Blob routes: streaming upload (stored, persisted, paid and anchored before the answer),
//! streaming download (verified chunk by chunk, fetched or repaired from peers as needed),
//! blob info and inclusion proofs.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderName};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures::StreamExt;
use nexus_consensus::DataHeader;
use nexus_das::{CodeParams, ExtendedData, ProofStrategy};
use nexus_storage::erasure::ErasureLayout;
use nexus_storage::ledger::{PolicySpec, TxKind};
use nexus_storage::{
    BlobId, BlobLayout, BlobRegistration, BlobWriter, ChunkIndex, Height, Ingested, ReadChunkError,
    Stage, StoreError,
};
use tokio::sync::mpsc;

use super::{parse_blob_id, submit_error};
use crate::daemon::fetch::{fetch_chunk, gather_shards, read_local};
use crate::daemon::retrieve::{das_blob, RetrieveError};
use crate::daemon::submit::{dry_run, submit};
use crate::daemon::Node;
use crate::units::now_ms;
use nexus_api::server::error::{ApiError, ApiResult};
use nexus_api::server::listener::{client_of, ClientAddr};
use nexus_api::server::slots::{Slot, MIN_UPLOAD_RATE};
use nexus_api::types::{BlobInfo, Receipt, CELLS_FETCHED, CELL_BYTES_FETCHED};

/// Longest pause allowed between two pieces of an upload.
const UPLOAD_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// An upload may start slowly for this long; after it, it must have averaged its slot's
/// rate floor since it began, or it is cut off (a slow client would otherwise hold its
/// place in the upload budget indefinitely).
const UPLOAD_GRACE: Duration = Duration::from_secs(5);
/// Epochs paid for when the uploader does not say.
const DEFAULT_EPOCHS: u64 = 100;

/// Query of `PUT /v1/blobs`.
#[derive(Debug, serde::Deserialize)]
pub(super) struct PutQuery {
    /// Epochs to pay for.
    epochs: Option<u64>,
    /// `replicated` (default), `erasure` or `das`.
    policy: Option<String>,
}

pub(super) async fn blob_info(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
) -> ApiResult<Json<BlobInfo>> {
    let id = parse_blob_id(&id)?;
    tokio::task::spawn_blocking(move || {
        let store = &node.store;
        let registered = store.registration(&id)?;
        if let Some((height, _, _)) = &registered {
            super::unless_expired(&node, id, *height)?;
        }
        let policy = registered
            .as_ref()
            .map(|(_, _, reg)| policy_name(&reg.policy).to_string());
        let Some(record) = store.blob(&id)?.filter(|_| !staged(store, &id)) else {
            return match registered {
                Some((height, _, reg)) => Ok(Json(BlobInfo {
                    blob_id: id,
                    size: reg.size,
                    complete: false,
                    missing_chunks: match reg.policy {
                        PolicySpec::Das { .. } => 0,
                        _ => BlobLayout::new(reg.size)
                            .map_err(StoreError::from)?
                            .chunk_count(),
                    },
                    registered_at: Some(height),
                    policy,
                })),
                None => Err(super::unknown_blob(&node, id)),
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
            policy,
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
    let proof = tokio::task::spawn_blocking(move || store.blob_proof(&id)).await??;
    proof
        .map(|p| Json(p).into_response())
        .ok_or_else(|| super::unknown_blob(&node, id))
}

pub(super) async fn put_blob(
    State(node): State<Arc<Node>>,
    addr: Option<Extension<ClientAddr>>,
    Query(query): Query<PutQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Receipt>> {
    // Everything that can be checked is checked before reading any of the body.
    let wanted = Policy::parse(query.policy.as_deref())?;
    let epochs = checked_epochs(query.epochs)?;
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(len) = announced {
        node.store.check_room(len)?;
        preflight(&node, wanted, len, epochs)?;
    }
    let slot = node.write_slots.acquire(client_of(addr)).await;
    let _in_flight = InFlight::count(&node);
    let mut writer = node.store.ingest_staged(fresh_stage())?;
    receive(&mut writer, body, None, &slot).await?;
    finish_and_register(&node, writer, wanted, epochs)
        .await
        .map(Json)
}

/// The stage of an upload finished now: kept, unserved, for [`UPLOAD_LEASE`] unless its
/// registration lands.
pub(crate) fn fresh_stage() -> Stage {
    Stage {
        lease_until_ms: now_ms() + UPLOAD_LEASE.as_millis() as u64,
        kept_by: None,
    }
}

/// Writes `body` into `writer` as it arrives, refusing to go past `limit` bytes in all;
/// the request is cut off if, after a grace period, it averages below its `slot`'s rate
/// floor (raised while other clients wait for a slot) or pauses too long. What was
/// received before an error stays written.
pub(super) async fn receive(
    writer: &mut BlobWriter,
    body: Body,
    limit: Option<u64>,
    slot: &Slot,
) -> ApiResult<()> {
    let mut stream = body.into_data_stream();
    let started = tokio::time::Instant::now();
    let base = writer.size();
    loop {
        // The next piece must come before this request falls below its rate floor (after
        // a grace period), and within the idle timeout.
        let received = writer.size() - base;
        let floor = slot.rate_floor();
        let owed = Duration::from_secs_f64(received as f64 / floor as f64);
        let deadline =
            (started + UPLOAD_GRACE + owed).min(tokio::time::Instant::now() + UPLOAD_IDLE_TIMEOUT);
        let piece = tokio::time::timeout_at(deadline, stream.next())
            .await
            .map_err(|_| {
                ApiError::SlowUpload(format!(
                    "upload too slow: {received} bytes in {:.0} s, below the {} KiB/s asked of \
                     it{}; aborted",
                    started.elapsed().as_secs_f64(),
                    floor >> 10,
                    if floor > MIN_UPLOAD_RATE {
                        " while other clients wait for an upload slot"
                    } else {
                        ""
                    }
                ))
            })?;
        match piece {
            Some(Ok(bytes)) => {
                let after = writer.size() + bytes.len() as u64;
                if let Some(limit) = limit.filter(|&l| after > l) {
                    return Err(ApiError::BadRequest(format!(
                        "more bytes than the {limit} the upload declared"
                    )));
                }
                tokio::task::block_in_place(|| writer.write(&bytes))?;
            }
            Some(Err(e)) => return Err(ApiError::BadRequest(format!("upload interrupted: {e}"))),
            None => return Ok(()),
        }
    }
}

/// Finishes `writer`'s blob as a staged upload, registers it with `wanted` for `epochs`
/// and waits until the registration is final. Registered: the upload becomes a stored
/// blob before the answer. Refused: it goes. Not final in time (or the request dropped
/// meanwhile): its registration may still land, so it stays staged for its lease — kept if
/// it lands, and a retry of the same put reuses it.
pub(crate) async fn finish_and_register(
    node: &Arc<Node>,
    mut writer: BlobWriter,
    wanted: Policy,
    epochs: u64,
) -> ApiResult<Receipt> {
    let stage = fresh_stage();
    writer.renew_stage(stage);
    let ingested = tokio::task::spawn_blocking(move || writer.finish()).await??;
    let blob_id = ingested.blob_id;
    tracing::info!(blob = %blob_id, size = ingested.size, "blob staged");
    let outcome = register(node, wanted, ingested, epochs, stage).await;
    let store = node.store.clone();
    let fate = match &outcome {
        Ok(_) => Some(true),
        Err(ApiError::Unavailable(_)) => None,
        Err(_) => Some(false),
    };
    tokio::task::spawn_blocking(move || match fate {
        Some(true) => store.keep_staged(&blob_id),
        Some(false) => store.discard_staged(&blob_id),
        None => Ok(()),
    })
    .await??;
    outcome
}

/// Query of `GET /v1/blobs/preflight`.
#[derive(Debug, serde::Deserialize)]
pub(super) struct PreflightQuery {
    /// Bytes to upload.
    size: u64,
    /// Epochs to pay for.
    epochs: Option<u64>,
    /// `replicated` (default), `erasure` or `das`.
    policy: Option<String>,
}

/// Whether a put of `size` bytes with this policy and these epochs would be accepted now
/// (room, size limits, balance, an orchestrator with room): what `PUT /v1/blobs` checks
/// before reading a body, asked first by clients that cannot read an answer before they
/// have sent the whole body.
pub(super) async fn preflight_put(
    State(node): State<Arc<Node>>,
    Query(query): Query<PreflightQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    let policy = Policy::parse(query.policy.as_deref())?;
    let epochs = checked_epochs(query.epochs)?;
    node.store.check_room(query.size)?;
    preflight(&node, policy, query.size, epochs)?;
    Ok(Json(serde_json::json!({ "accepted": true })))
}

/// The epochs asked for (the default if none), refused if zero.
pub(crate) fn checked_epochs(epochs: Option<u64>) -> ApiResult<u64> {
    match epochs.unwrap_or(DEFAULT_EPOCHS) {
        0 => Err(ApiError::BadRequest(
            "epochs must be at least 1: a blob is paid for by the epoch".into(),
        )),
        n => Ok(n),
    }
}

/// One upload counted in [`Node::uploads_in_flight`] while it lives.
pub(super) struct InFlight(Arc<Node>);

impl InFlight {
    /// Counts one more upload in flight until dropped.
    pub(super) fn count(node: &Arc<Node>) -> InFlight {
        node.uploads_in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(node.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.uploads_in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How long an upload may wait for its registration before it is collected.
const UPLOAD_LEASE: Duration = Duration::from_secs(10 * 60);

/// The storage policies a put may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Policy {
    Replicated,
    Erasure,
    Das,
}

impl Policy {
    /// The policy named in a query (`replicated` when none is).
    pub(super) fn parse(name: Option<&str>) -> ApiResult<Policy> {
        match name {
            None | Some("replicated") => Ok(Policy::Replicated),
            Some("erasure") => Ok(Policy::Erasure),
            Some("das") => Ok(Policy::Das),
            Some(other) => Err(ApiError::BadRequest(format!(
                "unknown policy {other:?}: use replicated, erasure or das"
            ))),
        }
    }

    /// The policy's name in queries and receipts.
    pub(super) fn name(self) -> &'static str {
        match self {
            Policy::Replicated => "replicated",
            Policy::Erasure => "erasure",
            Policy::Das => "das",
        }
    }
}

/// Refuses, before its body is read, an upload of `size` bytes the ledger would refuse
/// to register: its registration (with a placeholder id and commitment of the right
/// shape) is dry-run after this node's waiting transactions.
pub(super) fn preflight(node: &Node, policy: Policy, size: u64, epochs: u64) -> ApiResult<()> {
    let tip = node
        .store
        .tip()
        .ok_or_else(|| ApiError::Unavailable("this node has no chain yet".into()))?;
    let p = tip.ledger.params();
    let placeholder = BlobId::of(b"nexus/preflight");
    let policy = match policy {
        Policy::Replicated => PolicySpec::Replicated,
        Policy::Das => {
            check_das_size(node, size)?;
            let params = CodeParams::for_data(p.data_dims, size)
                .map_err(|e| ApiError::BadRequest(format!("cannot encode the blob: {e}")))?;
            PolicySpec::Das {
                data: DataHeader {
                    root: nexus_das::DataRoot([0; 32]),
                    params,
                },
            }
        }
        Policy::Erasure => {
            let layout = ErasureLayout::new(size, p.data_shards, p.parity_shards)
                .map_err(|e| ApiError::BadRequest(e.to_string()))?;
            PolicySpec::Erasure {
                shard_size: layout.shard_size(),
                shards: vec![placeholder; layout.total_shards()],
            }
        }
    };
    if tip.header.height.0 < node.announced.load(std::sync::atomic::Ordering::Relaxed) {
        // Still catching up: its ledger cannot judge the rest yet; the registration's own
        // dry run, after the upload, will.
        return Ok(());
    }
    let kind = TxKind::StoreBlob {
        blob_id: placeholder,
        size,
        policy,
        epochs,
    };
    dry_run(node, &kind).map_err(|e| submit_error("upload refused before it was read", e))
}

/// Registers the staged upload `ingested` with `policy` (unless the same content is
/// registered already) and waits until the registration is final.
async fn register(
    node: &Arc<Node>,
    wanted: Policy,
    ingested: Ingested,
    epochs: u64,
    stage: Stage,
) -> ApiResult<Receipt> {
    let (blob_id, size) = (ingested.blob_id, ingested.size);
    let store = node.store.clone();
    let known = tokio::task::spawn_blocking(move || store.registration(&blob_id)).await??;
    // A registration whose epochs ran out no longer keeps the blob: register it anew.
    let known = known.filter(|_| node.store.ledger_stores(&blob_id));
    let mut encode_ms = None;
    let (height, index) = match known {
        // Already registered (the same content was put before): nothing more to pay, as
        // long as it is kept the way the uploader asks.
        Some((height, index, reg)) => {
            let existing = policy_name(&reg.policy);
            if existing != wanted.name() {
                return Err(ApiError::Conflict(format!(
                    "blob {blob_id} is already registered with the {existing} policy (block {height}); it is kept that way"
                )));
            }
            (height, index)
        }
        None => {
            let policy = match wanted {
                Policy::Replicated => PolicySpec::Replicated,
                Policy::Erasure => erasure_policy(node, blob_id, size, stage).await?,
                Policy::Das => {
                    check_das_size(node, size)?;
                    let started = std::time::Instant::now();
                    let policy = das_policy(node, blob_id, size).await?;
                    encode_ms = Some(started.elapsed().as_millis() as u64);
                    policy
                }
            };
            let kind = TxKind::StoreBlob {
                blob_id,
                size,
                policy,
                epochs,
            };
            let included = submit(node, kind, node.finality_deadline)
                .await
                .map_err(|e| submit_error(&format!("blob {blob_id} was not registered"), e))?;
            (included.height, included.index)
        }
    };
    let store = node.store.clone();
    let block = tokio::task::spawn_blocking(move || store.block(height))
        .await??
        .ok_or_else(|| ApiError::Internal(format!("block {height} vanished")))?;
    Ok(Receipt {
        blob_id,
        size,
        height,
        block_hash: block.header.hash(),
        index,
        finalized_height: node.store.tip().map_or(height, |t| t.header.height),
        proposer: block.header.proposer,
        policy: wanted.name().to_string(),
        encode_ms,
    })
}

/// Whether `id` is an upload still waiting for its registration (a store failure counts
/// as staged: when in doubt, do not serve).
fn staged(store: &nexus_storage::Store, id: &BlobId) -> bool {
    store.is_staged(id).unwrap_or(true)
}

/// The policy's name on the command line and in receipts.
fn policy_name(policy: &PolicySpec) -> &'static str {
    match policy {
        PolicySpec::Replicated => "replicated",
        PolicySpec::Erasure { .. } => "erasure",
        PolicySpec::Das { .. } => "das",
    }
}

/// Refuses a `das` blob larger than a block's data, before it is read or paid for.
fn check_das_size(node: &Node, size: u64) -> ApiResult<()> {
    let max = node
        .store
        .tip()
        .ok_or_else(|| ApiError::Unavailable("this node has no chain yet".into()))?
        .ledger
        .params()
        .max_block_data;
    if size > max {
        return Err(ApiError::BadRequest(format!(
            "a das blob rides in one block, which carries at most {max} bytes; this one has {size}: use the replicated or erasure policy"
        )));
    }
    Ok(())
}

/// Encodes a stored blob with the network's tensor code (its cells and proofs, kept here
/// to serve the validators that sample it and the custodians that keep it) and returns
/// the policy carrying its commitment. This is where a `das` blob is encoded, once, before
/// its registration is proposed.
async fn das_policy(node: &Arc<Node>, blob_id: BlobId, size: u64) -> ApiResult<PolicySpec> {
    let tip = node
        .store
        .tip()
        .ok_or_else(|| ApiError::Unavailable("this node has no chain yet".into()))?;
    let dims = tip.ledger.params().data_dims;
    let reg = BlobRegistration {
        blob_id,
        size,
        policy: PolicySpec::Replicated,
    };
    let bytes = crate::daemon::fetch::blob_bytes(node, &reg)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let started = std::time::Instant::now();
    let encoded = tokio::task::spawn_blocking(move || {
        let params = CodeParams::for_data(dims, size).map_err(|e| e.to_string())?;
        ExtendedData::encode_with(&bytes, params, ProofStrategy::FASTEST).map_err(|e| e.to_string())
    })
    .await?;
    let data = encoded.map_err(|e| ApiError::BadRequest(format!("cannot encode the blob: {e}")))?;
    tracing::info!(
        blob = %blob_id,
        rows = data.params().extended_rows(),
        ms = started.elapsed().as_millis() as u64,
        "encoded a das blob"
    );
    let commitment = DataHeader {
        root: data.root(),
        params: *data.params(),
    };
    node.encodings.insert(Arc::new(data));
    Ok(PolicySpec::Das { data: commitment })
}

/// Encodes a staged blob into shards (staged here with it, for providers to fetch once it
/// is registered) with the network's parameters.
async fn erasure_policy(
    node: &Arc<Node>,
    blob_id: BlobId,
    size: u64,
    stage: Stage,
) -> ApiResult<PolicySpec> {
    let tip = node
        .store
        .tip()
        .ok_or_else(|| ApiError::Unavailable("this node has no chain yet".into()))?;
    let p = tip.ledger.params();
    let layout = ErasureLayout::new(size, p.data_shards, p.parity_shards)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let store = node.store.clone();
    let shards =
        tokio::task::spawn_blocking(move || store.encode_shards(&blob_id, layout, Some(stage)))
            .await?
            .map_err(|e| ApiError::Internal(format!("cannot encode shards: {e}")))?;
    tracing::info!(blob = %blob_id, shards = shards.len(), shard_size = layout.shard_size(), "blob encoded");
    Ok(PolicySpec::Erasure {
        shard_size: layout.shard_size(),
        shards,
    })
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

/// Where a blob's bytes come from.
enum Source {
    /// Chunks of the blob itself (held, or fetched from peers that replicate it).
    Chunks(u64),
    /// Reed-Solomon shards held by providers.
    Shards {
        size: u64,
        shard_size: u64,
        shards: Vec<BlobId>,
    },
    /// Cells of the block payload that carries it.
    Cells(Height, BlobRegistration),
}

pub(super) async fn get_blob(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = parse_blob_id(&id)?;
    let source = tokio::task::spawn_blocking({
        let node = node.clone();
        move || -> ApiResult<Source> {
            let store = &node.store;
            let registered = store.registration(&id)?;
            if let Some((height, _, _)) = &registered {
                super::unless_expired(&node, id, *height)?;
            }
            // An upload still waiting for its registration is not served.
            if let Some(record) = store.blob(&id)?.filter(|_| !staged(store, &id)) {
                return Ok(Source::Chunks(record.size));
            }
            let (height, _, reg) = registered.ok_or_else(|| super::unknown_blob(&node, id))?;
            match reg.policy {
                // Registered but not replicated here yet: fetch it on demand.
                PolicySpec::Replicated => {
                    store.begin_replica(&reg)?;
                    Ok(Source::Chunks(reg.size))
                }
                PolicySpec::Erasure { shard_size, shards } => Ok(Source::Shards {
                    size: reg.size,
                    shard_size,
                    shards,
                }),
                PolicySpec::Das { .. } => Ok(Source::Cells(height, reg)),
            }
        }
    })
    .await??;

    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(4);
    let size = match source {
        Source::Chunks(size) => {
            let layout = BlobLayout::new(size).map_err(|e| ApiError::Internal(e.to_string()))?;
            let mut indices = layout.indices();
            // The first chunk is read (or fetched) and verified before the status line: a
            // blob no copy of which verifies is an error, not a `200` with a cut body.
            let first = match indices.next() {
                Some(index) => Some(read_or_fetch(&node, id, index).await.map_err(|e| {
                    ApiError::Unavailable(format!("blob {id} cannot be served: {e}"))
                })?),
                None => None,
            };
            tokio::spawn(async move {
                if let Some(first) = first {
                    let len = first.len() as u64;
                    if !forward(&tx, id, Ok(Bytes::from(first))).await {
                        return;
                    }
                    node.bytes_served.fetch_add(len, Ordering::Relaxed);
                }
                for index in indices {
                    let piece = read_or_fetch(&node, id, index).await.map(Bytes::from);
                    let len = piece.as_ref().map_or(0, |b| b.len() as u64);
                    if !forward(&tx, id, piece).await {
                        return;
                    }
                    node.bytes_served.fetch_add(len, Ordering::Relaxed);
                }
                node.replicate_now.notify_one();
            });
            size
        }
        Source::Shards {
            size,
            shard_size,
            shards,
        } => {
            let params = node.store.tip().map(|t| t.ledger.params().clone());
            let params = params.ok_or_else(|| ApiError::Unavailable("no chain yet".into()))?;
            let layout = ErasureLayout::new(size, params.data_shards, params.parity_shards)
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            if layout.shard_size() != shard_size || layout.total_shards() != shards.len() {
                return Err(ApiError::Internal(format!(
                    "blob {id} has an inconsistent erasure layout"
                )));
            }
            let held = gather_shards(&node, &shards, shard_size, layout.data_shards()).await;
            if held < layout.data_shards() {
                return Err(ApiError::Unavailable(format!(
                    "blob {id}: only {held} of {} shards could be fetched, {} needed",
                    shards.len(),
                    layout.data_shards()
                )));
            }
            let store = node.store.clone();
            tokio::task::spawn_blocking(move || {
                let mut sink = |bytes: Vec<u8>| {
                    tx.blocking_send(Ok(Bytes::from(bytes)))
                        .map_err(|_| "the reader went away".to_string())
                };
                if let Err(e) = store.decode_shards(layout, &shards, &mut sink) {
                    tracing::error!("cannot decode blob {id}: {e}");
                    let _ = tx.blocking_send(Err(io::Error::other(e.to_string())));
                }
            });
            size
        }
        Source::Cells(height, reg) => return cells_response(&node, height, &reg).await,
    };
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

/// A `das` blob, rebuilt from cells; the response says how many were fetched.
async fn cells_response(
    node: &Node,
    height: Height,
    reg: &BlobRegistration,
) -> ApiResult<Response> {
    let got = das_blob(node, height, reg).await.map_err(|e| match e {
        RetrieveError::Unrecoverable(_) | RetrieveError::WrongContent(_) => {
            ApiError::Unavailable(format!("blob {}: {e}", reg.blob_id))
        }
        e => ApiError::Internal(e.to_string()),
    })?;
    tracing::info!(blob = %reg.blob_id, cells = got.cells_fetched, bytes = got.bytes_fetched, "das blob rebuilt from cells");
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (
                HeaderName::from_static(CELLS_FETCHED),
                got.cells_fetched.to_string(),
            ),
            (
                HeaderName::from_static(CELL_BYTES_FETCHED),
                got.bytes_fetched.to_string(),
            ),
        ],
        got.bytes,
    )
        .into_response())
}

/// Sends one piece of a download; false when the download must stop.
async fn forward(
    tx: &mpsc::Sender<io::Result<Bytes>>,
    id: BlobId,
    piece: Result<Bytes, String>,
) -> bool {
    let failed = piece.is_err();
    let piece = piece.map_err(|e| {
        tracing::error!("cannot serve blob {id}: {e}");
        io::Error::other(e)
    });
    tx.send(piece).await.is_ok() && !failed
}
