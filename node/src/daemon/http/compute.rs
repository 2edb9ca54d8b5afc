//! Compute routes: submitting a job (the node runs the program once to count its segments
//! and refuse what cannot run; the `ComputeJob` carries the program, whose commitment the
//! ledger derives), and a job's state — the ledger's record, and the proof tree as its
//! driver sees it (asked of the driver when it is another node).

use nexus_storage::ledger::OpenVm;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Extension, Path, State};
use axum::Json;
use nexus_storage::ledger::{prepare_execution, Transaction, TxKind, MAX_PROGRAM_BYTES};
use nexus_storage::{BlobId, Digest};

use super::blobs::{finish_and_register, fresh_stage, Policy};
use super::submit_error;
use crate::daemon::compute::{self, prepare_submission, read_blob};
use crate::daemon::submit::submit;
use crate::daemon::Node;
use nexus_api::server::error::{ApiError, ApiResult};
use nexus_api::server::listener::ClientAddr;
use nexus_api::types::{JobReceipt, JobRequest, JobView};

/// Most cycles a submitted job may ask for (the accepting node runs it once).
pub(crate) const MAX_SUBMIT_CYCLES: u64 = 1 << 32;
/// How long a submission waits for another's admission run to end.
const ADMISSION_WAIT: Duration = Duration::from_secs(60);

/// `POST /v1/compute/jobs`: checks what costs nothing first (the ledger's terms for the
/// job, the node's balance), then runs the program on the input (both already stored
/// through this node or replicated to it) to count the run's segments — one run at a time
/// per client and, waiting its turn for at most [`ADMISSION_WAIT`], one at a time in all —
/// then submits the `ComputeJob` and waits until it is final.
pub(super) async fn submit_job(
    State(node): State<Arc<Node>>,
    addr: Option<Extension<ClientAddr>>,
    Json(request): Json<JobRequest>,
) -> ApiResult<Json<JobReceipt>> {
    if request.max_cycles == 0 || request.max_cycles > MAX_SUBMIT_CYCLES {
        return Err(ApiError::BadRequest(format!(
            "max_cycles must be 1 to {MAX_SUBMIT_CYCLES}"
        )));
    }
    let tip = node
        .store
        .tip()
        .ok_or_else(|| ApiError::Unavailable("this node has no chain yet".into()))?;
    for (what, id) in [("program", request.program), ("input", request.input)] {
        if tip.ledger.blob(&id).is_none() {
            return Err(ApiError::BadRequest(format!(
                "the {what} {id} is not a registered blob: put it first"
            )));
        }
    }
    let program = read_blob(&node.store, &request.program, MAX_PROGRAM_BYTES as u64)
        .await
        .map_err(|e| ApiError::BadRequest(format!("the program: {e:#}")))?;
    let kind = |program: Vec<u8>, segments: u32| TxKind::ComputeJob {
        program,
        input: request.input,
        max_cycles: request.max_cycles,
        segments,
        reward: request.reward,
        lifetime: request.lifetime,
    };
    let sender = node.account.public();
    let terms = Transaction {
        chain: tip.ledger.chain(),
        sender,
        nonce: tip.ledger.account(&sender).nonce,
        fee: tip.ledger.params().min_tx_fee,
        kind: kind(program.clone(), 1),
    };
    tip.ledger
        .precheck_job(&terms)
        .map_err(|e| ApiError::Rejected(format!("job not accepted: the ledger refuses it: {e}")))?;
    let client = addr.map_or(IpAddr::from([127, 0, 0, 1]), |Extension(ClientAddr(ip))| ip);
    let _client_turn = node.compute.admit_client(client).ok_or_else(|| {
        ApiError::Busy(
            "this client's previous job is still being run for admission; wait for it".into(),
        )
    })?;
    // Each run can take the whole cycle budget: one at a time here.
    let _turn = tokio::time::timeout(ADMISSION_WAIT, node.compute.admissions.acquire())
        .await
        .map_err(|_| {
            ApiError::Unavailable("other jobs are being admitted here; retry later".into())
        })?
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let derived = prepare_submission(&node, program, &request.input, request.max_cycles)
        .await
        .map_err(|e| ApiError::BadRequest(format!("the job cannot run: {e:#}")))?;
    let kind = kind(derived.program, derived.segments);
    // The dry run before it is sent derives the program's commitment: not on this thread.
    let prepared = kind.clone();
    tokio::task::spawn_blocking(move || prepare_execution(&prepared, &OpenVm))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let nonce_before = tip.ledger.account(&sender).nonce;
    let included = submit(&node, kind.clone(), node.finality_deadline)
        .await
        .map_err(|e| submit_error("job not accepted", e))?;
    // The job's id is fixed by the nonce it was signed with.
    let block = node
        .store
        .block(included.height)?
        .ok_or_else(|| ApiError::Internal("the including block is gone".into()))?;
    let nonce = block
        .transactions
        .get(included.index as usize)
        .map_or(nonce_before, |t| t.tx.nonce);
    Ok(Json(JobReceipt {
        job: nexus_storage::ledger::job_id(&sender, nonce, &kind),
        height: included.height,
        segments: derived.segments,
        cycles: derived.cycles,
        program_commit: hex::encode(derived.program_commit),
    }))
}

/// `GET /v1/compute/jobs/{id}`: the ledger's record of the job, and the driver's view of
/// its proof tree — this node's own if it drives the job, else asked of its driver.
pub(super) async fn job(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
) -> ApiResult<Json<JobView>> {
    let id: Digest = id
        .parse()
        .map_err(|e| ApiError::BadRequest(format!("{id:?} is not a job id: {e}")))?;
    let tip = node
        .store
        .tip()
        .ok_or_else(|| ApiError::Unavailable("this node has no chain yet".into()))?;
    let job = tip.ledger.job(&id).cloned().ok_or_else(|| {
        ApiError::NotFound(format!("no job {id} as of height {}", tip.header.height))
    })?;
    let view = compute::view_of(&node, &tip.ledger, &id, &job, tip.header.height.0).await;
    let (driver, drive) = view.map_or((None, None), |(peer, view)| {
        (Some(peer.to_string()), Some(view))
    });
    let (delegators, orchestrators) = compute::provers(&tip.ledger);
    let provers = delegators
        .into_iter()
        .chain(orchestrators)
        .map(|p| (p.account.to_string(), p.peer.to_string()))
        .collect();
    Ok(Json(JobView {
        id,
        height: tip.header.height,
        job,
        driver,
        drive,
        provers,
    }))
}

/// Stores `bytes` as a replicated blob of this node's own (a job's output or proof) and
/// waits until its registration is final.
pub(crate) async fn store_own_blob(node: &Arc<Node>, bytes: Vec<u8>) -> anyhow::Result<BlobId> {
    let mut writer = node
        .store
        .ingest_staged(fresh_stage())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    tokio::task::block_in_place(|| writer.write(&bytes)).map_err(|e| anyhow::anyhow!("{e}"))?;
    let epochs = super::blobs::checked_epochs(None).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let receipt = finish_and_register(node, writer, Policy::Replicated, epochs)
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    Ok(receipt.blob_id)
}
