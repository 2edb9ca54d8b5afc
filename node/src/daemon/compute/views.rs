//! The picture of a job's proof tree that `GET /v1/compute/jobs/{id}` shows: this node's
//! own when it drives the job, else the driver's, asked over `/nexus/drive/1` — so that a
//! job's progress shows through any node — and the answer to the peers that ask.

use std::time::Duration;

use nexus_net::protocol::drives::{DriveRequest, DriveResponse, DriveView};
use nexus_net::PeerId;
use nexus_storage::ledger::{ComputeJob, LedgerState};
use nexus_storage::Digest;

use super::driver::driver_of;
use crate::daemon::Node;

/// How long a view is waited for from the driver before the job is shown without it.
const ASK_TIMEOUT: Duration = Duration::from_secs(5);

/// The view of job `id` and whose it is: this node's if it drives (or drove) the job,
/// else its driver's as the driver reports it. `None` when no driver is known or it does
/// not answer in [`ASK_TIMEOUT`].
pub(crate) async fn view_of(
    node: &Node,
    ledger: &LedgerState,
    id: &Digest,
    job: &ComputeJob,
    height: u64,
) -> Option<(PeerId, DriveView)> {
    let me = node.net.peer_id();
    if let Some(view) = own_view(node, id) {
        return Some((me, view));
    }
    let driver = driver_of(ledger, id, job, height)?;
    if driver.peer == me {
        return None;
    }
    let asked = node
        .net
        .request_drive(driver.peer, DriveRequest { job: *id });
    match tokio::time::timeout(ASK_TIMEOUT, asked).await {
        Ok(Ok(DriveResponse::View(view))) => Some((driver.peer, view)),
        Ok(Ok(DriveResponse::Unknown)) => None,
        Ok(Err(e)) => {
            tracing::debug!(job = %id, "the job's driver did not answer: {e}");
            None
        }
        Err(_) => None,
    }
}

/// The answer to a peer asking for this node's view of a job.
pub(crate) fn serve(node: &Node, request: DriveRequest) -> DriveResponse {
    own_view(node, &request.job).map_or(DriveResponse::Unknown, DriveResponse::View)
}

/// This node's view of job `id`, if it drives (or drove) it.
fn own_view(node: &Node, id: &Digest) -> Option<DriveView> {
    node.compute
        .drives
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(id)
        .cloned()
}
