//! `GET /metrics`: the node's counters and gauges in Prometheus' text format (version
//! 0.0.4), for scraping.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::daemon::Node;
use nexus_api::server::error::ApiResult;

/// One metric: name, type, help, value.
type Metric = (&'static str, &'static str, &'static str, f64);

/// The metrics, as Prometheus scrapes them.
pub(super) async fn metrics(State(node): State<Arc<Node>>) -> ApiResult<impl IntoResponse> {
    let store = node.store.clone();
    let stats = tokio::task::spawn_blocking(move || store.stats()).await??;
    let info = node.net.info().await;
    let tip = node.store.tip();
    let count = |v: usize| v as f64;
    let metrics: [Metric; 16] = [
        (
            "nexus_finalized_height",
            "gauge",
            "Height of the latest final block held.",
            tip.as_ref().map_or(0.0, |t| t.header.height.0 as f64),
        ),
        (
            "nexus_announced_height",
            "gauge",
            "Highest final height announced by peers with a valid proof.",
            node.announced.load(Ordering::Relaxed) as f64,
        ),
        (
            "nexus_peers",
            "gauge",
            "Connected peers.",
            info.as_ref().map_or(0.0, |i| count(i.connected.len())),
        ),
        (
            "nexus_banned_peers",
            "gauge",
            "Peers banned for sending invalid data.",
            info.as_ref().map_or(0.0, |i| count(i.banned.len())),
        ),
        (
            "nexus_stored_bytes",
            "gauge",
            "Bytes of stored blob content.",
            stats.used_bytes as f64,
        ),
        (
            "nexus_staged_bytes",
            "gauge",
            "Bytes of uploads waiting for their registration.",
            stats.staged_bytes as f64,
        ),
        (
            "nexus_receiving_bytes",
            "gauge",
            "Bytes of uploads still being received.",
            stats.receiving_bytes as f64,
        ),
        (
            "nexus_disk_bytes",
            "gauge",
            "Bytes the store's files occupy on disk.",
            stats.disk_bytes as f64,
        ),
        (
            "nexus_disk_free_bytes",
            "gauge",
            "Bytes free on the data dir's disk.",
            node.store.disk_free().map_or(f64::NAN, |f| f as f64),
        ),
        (
            "nexus_blobs",
            "gauge",
            "Blobs held whole.",
            stats.blobs_complete as f64,
        ),
        (
            "nexus_uploads_in_flight",
            "gauge",
            "Uploads being received.",
            node.uploads_in_flight.load(Ordering::Relaxed) as f64,
        ),
        (
            "nexus_upload_sessions",
            "gauge",
            "Resumable uploads open (received in part, waiting to be resumed or finished).",
            node.upload_sessions.len() as f64,
        ),
        (
            "nexus_bytes_served_total",
            "counter",
            "Bytes of blob content served to peers and clients.",
            node.bytes_served.load(Ordering::Relaxed) as f64,
        ),
        (
            "nexus_bytes_fetched_total",
            "counter",
            "Bytes of verified chunk data fetched from peers.",
            node.bytes_fetched.load(Ordering::Relaxed) as f64,
        ),
        (
            "nexus_corrupt_chunks_total",
            "counter",
            "Chunks found corrupt on disk (discarded and fetched again).",
            node.corrupt_chunks_found.load(Ordering::Relaxed) as f64,
        ),
        (
            "nexus_mempool_transactions",
            "gauge",
            "Transactions waiting in this validator's pool.",
            count(node.mempool.lock().unwrap_or_else(|p| p.into_inner()).len()),
        ),
    ];
    let mut text = String::new();
    for (name, kind, help, value) in metrics {
        let _ = writeln!(
            text,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text))
}
