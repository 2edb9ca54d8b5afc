//! Building this validator's proposals: the pending transactions on top of the block
//! consensus says to extend, executed by `nexus_storage::chain::propose_child`. Nothing is
//! encoded here: a `das` blob arrives already encoded by its uploader, its commitment in
//! its registration, and rides (one per block) once this node's sampling found it
//! available; until then it waits in the pool, while other transactions go ahead.

use std::sync::Arc;

use nexus_consensus::{PublicKey, Round};
use nexus_storage::chain::propose_child;
use nexus_storage::ledger::{LedgerState, SignedTransaction, TxError};
use nexus_storage::{BlobRegistration, BlockError, Header, Transition, MAX_TRANSACTIONS_PER_BLOCK};

use super::availability::{Availability, Purpose};
use super::chain::{enqueue, now_ms};
use super::Node;

/// The block this validator proposes for `round` on top of `parent` (ledger `state`).
pub(crate) async fn build(
    node: &Arc<Node>,
    proposer: PublicKey,
    round: Round,
    parent: Header,
    state: Arc<LedgerState>,
) -> Result<Transition, BlockError> {
    let next = parent.height.next().unwrap_or(parent.height);
    let candidates = take_batch(node, next);
    let built = tokio::task::spawn_blocking(move || {
        propose_child(proposer, round, &parent, &state, candidates, now_ms())
    })
    .await
    .map_err(|e| BlockError::Data(nexus_consensus::DataError(e.to_string())))?;
    let (step, refused) = built?;
    // Keep transactions that are only early (a gap in their sender's nonces).
    for (tx, error) in refused {
        match error {
            TxError::WrongNonce { expected, found } if found > expected => enqueue(node, tx),
            e => tracing::debug!(sender = %tx.tx.sender, "transaction refused: {e}"),
        }
    }
    Ok(step)
}

/// Pending transactions for the next block (at `height`): all but those a final block
/// holds already, with at most one `das` blob, whose grid this node found available.
/// The `das` blobs left out stay in the pool (and are sampled meanwhile).
fn take_batch(node: &Arc<Node>, height: nexus_consensus::Height) -> Vec<SignedTransaction> {
    let pool: Vec<SignedTransaction> = {
        let mut pool = node.mempool.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::take(&mut *pool)
    };
    let mut batch = Vec::new();
    let mut has_das = false;
    for tx in pool {
        if matches!(node.store.transaction_location(&tx.id()), Ok(Some(_))) {
            continue;
        }
        let das = BlobRegistration::of(&tx).and_then(|r| r.policy.das_data());
        let ready = match das {
            None => batch.len() < MAX_TRANSACTIONS_PER_BLOCK,
            Some(data) => {
                !has_das && Availability::check(node, Purpose::Ahead, height, data, |_| ()) && {
                    has_das = true;
                    true
                }
            }
        };
        if ready && batch.len() < MAX_TRANSACTIONS_PER_BLOCK {
            batch.push(tx);
        } else {
            enqueue(node, tx);
        }
    }
    batch
}
