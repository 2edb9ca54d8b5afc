//! Admission of transactions to this validator's pool, by the ledger's rules against the
//! latest final state, and the derivation in the background of what a pooled
//! transaction's execution will need.

use std::sync::atomic::Ordering;

use nexus_storage::ledger::{prepare_execution, OpenVm, SignedTransaction, TxKind};
use nexus_storage::mempool::AdmitError;

use super::Node;
use crate::units::now_ms;

/// Derives what executing a pooled transaction of `kind` will need (a compute job's
/// program commitment), one at a time in the background, so that this validator does not
/// wait on it while it builds or checks a block: skipped while one is under way.
pub(super) fn prepare_in_background(kind: TxKind) {
    static BUSY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !matches!(kind, TxKind::ComputeJob { .. }) || BUSY.swap(true, Ordering::SeqCst) {
        return;
    }
    tokio::task::spawn_blocking(move || {
        prepare_execution(&kind, &OpenVm);
        BUSY.store(false, Ordering::SeqCst);
    });
}

/// Admits a transaction to this validator's pool by the ledger's rules, against the
/// latest final state.
pub(super) fn enqueue(node: &Node, tx: SignedTransaction) -> Result<(), AdmitError> {
    let tip = node.store.tip().ok_or(AdmitError::PoolFull)?;
    node.mempool
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .admit(tx, &tip.ledger, now_ms())
}
