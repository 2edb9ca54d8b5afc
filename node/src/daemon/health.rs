//! The node's health, in words: whether its store can still write and its disk has room.
//! A store the engine gave up on (a write hit a full or failing disk) cannot recover in
//! this process: the node then exits with [`EXIT_STORE_FAILED`], so that a supervisor
//! restarts it once space is freed, instead of running on as a zombie.

use std::sync::Arc;
use std::time::Duration;

use nexus_storage::store::DISK_RESERVE;

use super::Node;
use crate::units::ByteSize;

/// Exit status of a node whose store can no longer write (EX_TEMPFAIL: retry later).
pub(crate) const EXIT_STORE_FAILED: i32 = 75;
/// How often the store is probed.
const PROBE_EVERY: Duration = Duration::from_secs(5);

impl Node {
    /// What keeps this node from doing its job now; empty when healthy. (A store that
    /// can no longer write is not listed: the [`watchdog`] ends the process then.)
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(free) = self.store.disk_free() {
            if free < DISK_RESERVE {
                problems.push(format!(
                    "disk full: {} free on the data dir's disk, below the {} kept for the chain; uploads are refused",
                    ByteSize(free),
                    ByteSize(DISK_RESERVE)
                ));
            }
        }
        let registered = self.store.tip().map(|t| t.ledger);
        let unverifiable = self.unverifiable.lock().unwrap_or_else(|p| p.into_inner());
        for id in unverifiable.iter() {
            if registered.as_ref().is_some_and(|l| l.blob(id).is_some()) {
                problems.push(format!(
                    "blob {id}: the copies peers served do not verify against its id, and \
                     this node holds none that does; it cannot be served until a good copy \
                     is found"
                ));
            }
        }
        problems
    }
}

/// Probes the store every few seconds; exits the process once it can no longer write.
pub(crate) async fn watchdog(node: Arc<Node>) {
    loop {
        tokio::time::sleep(PROBE_EVERY).await;
        let store = node.store.clone();
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || store.probe()).await {
            tracing::error!(
                "the store can no longer write ({e}): the disk is full or failing. Exiting \
                 with status {EXIT_STORE_FAILED} so that a supervisor restarts the node once \
                 space is freed; everything acknowledged is on disk"
            );
            std::process::exit(EXIT_STORE_FAILED);
        }
    }
}
