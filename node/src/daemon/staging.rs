//! Collects uploads that waited for their registration: kept once a final block registers
//! them (e.g. after a crash between the upload and its registration), deleted when their
//! lease ends unregistered. Runs at start-up and every half minute.

use std::sync::Arc;
use std::time::Duration;

use super::chain::now_ms;
use super::Node;

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
        tokio::time::sleep(COLLECT_EVERY).await;
    }
}
