//! Collects uploads that waited for their registration: kept once a final block registers
//! them (e.g. after a crash between the upload and its registration), deleted when their
//! lease ends unregistered; and resumable uploads not resumed within their lease, whose
//! bytes are discarded. Runs at start-up and every half minute.

use std::sync::Arc;
use std::time::Duration;

use super::Node;
use crate::units::now_ms;

/// How often staged uploads are looked at.
const COLLECT_EVERY: Duration = Duration::from_secs(30);

/// Collects staged uploads until the node stops.
pub(crate) async fn collect_loop(node: Arc<Node>) {
    loop {
        let store = node.store.clone();
        match tokio::task::spawn_blocking(move || store.collect_staged(now_ms())).await {
            Ok(Ok(done)) => {
                for id in &done.kept {
                    tracing::info!(blob = %id, "staged upload registered: kept");
                }
                for id in &done.discarded {
                    tracing::info!(blob = %id, "staged upload never registered: deleted");
                }
            }
            Ok(Err(e)) => tracing::warn!("cannot collect staged uploads: {e}"),
            Err(e) => tracing::warn!("staged upload collection stopped: {e}"),
        }
        let ended = node.upload_sessions.expire(std::time::Instant::now());
        if !ended.is_empty() {
            tracing::info!(
                count = ended.len(),
                "resumable uploads not resumed in time: discarded"
            );
            // Dropping a writer deletes what it wrote.
            let _ = tokio::task::spawn_blocking(move || drop(ended)).await;
        }
        tokio::time::sleep(COLLECT_EVERY).await;
    }
}
