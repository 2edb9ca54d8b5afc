//! Ledger routes: the node's own transactions (signed with its account key), accounts and
//! their roles, and a summary of the ledger at the tip.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use nexus_storage::ledger::{PolicySpec, TxKind};
use nexus_storage::PublicKey;

use super::submit_error;
use crate::daemon::submit::submit;
use crate::daemon::Node;
use nexus_api::server::error::{ApiError, ApiResult};
use nexus_api::types::{AccountView, LedgerView, TxReceipt};

/// Signs `kind` with this node's account and waits until a block includes it.
pub(super) async fn transaction(
    State(node): State<Arc<Node>>,
    Json(kind): Json<TxKind>,
) -> ApiResult<Json<TxReceipt>> {
    if matches!(kind, TxKind::StoreBlob { .. }) {
        return Err(ApiError::BadRequest(
            "store blobs with PUT /v1/blobs, which also uploads them".into(),
        ));
    }
    let included = submit(&node, kind, node.finality_deadline)
        .await
        .map_err(|e| submit_error("transaction not applied", e))?;
    Ok(Json(TxReceipt {
        height: included.height,
        index: included.index,
    }))
}

fn tip_ledger(node: &Node) -> ApiResult<nexus_storage::Tip> {
    node.store
        .tip()
        .ok_or_else(|| ApiError::Unavailable("this node has no chain yet".into()))
}

/// An account, with its orchestrator and provider roles if any.
pub(super) async fn account(
    State(node): State<Arc<Node>>,
    Path(key): Path<String>,
) -> ApiResult<Json<AccountView>> {
    let key: PublicKey = key.parse().map_err(|e| {
        ApiError::BadRequest(format!(
            "{key:?} is not an account key (96 hex characters): {e}"
        ))
    })?;
    let tip = tip_ledger(&node)?;
    let ledger = &tip.ledger;
    let stored_bytes = ledger
        .blobs()
        .filter(|(_, b)| b.orchestrator == Some(key))
        .map(|(_, b)| match &b.policy {
            PolicySpec::Erasure { shard_size, .. } => {
                shard_size * b.placement.iter().flatten().count() as u64
            }
            PolicySpec::Replicated | PolicySpec::Das { .. } => 0,
        })
        .sum();
    Ok(Json(AccountView {
        key,
        account: ledger.account(&key),
        orchestrator: ledger.orchestrator(&key).cloned(),
        provider: ledger.provider(&key).cloned(),
        compute: ledger.prover(&key).cloned(),
        stored_bytes,
    }))
}

/// The ledger at the tip.
pub(super) async fn summary(State(node): State<Arc<Node>>) -> ApiResult<Json<LedgerView>> {
    let tip = tip_ledger(&node)?;
    let l = &tip.ledger;
    let (escrow, burned, slashed) = l.sinks();
    Ok(Json(LedgerView {
        height: tip.header.height,
        epoch: l.epoch(),
        state_root: l.state_root(),
        total_supply: l.total_supply(),
        escrow,
        burned,
        slashed,
        params: l.params().clone(),
        orchestrators: l.orchestrators().map(|(k, o)| (*k, o.clone())).collect(),
    }))
}
