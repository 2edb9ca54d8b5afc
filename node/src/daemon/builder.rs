//! Building this validator's proposals: the pending transactions on top of the block
//! consensus says to extend, executed by `nexus_storage::chain::propose_child`. Nothing is
//! encoded here: a `das` blob arrives already encoded by its uploader, its commitment in
//! its registration, and rides (one per block) once this node's sampling found it
//! available; until then it waits in the pool, while other transactions go ahead.

use nexus_storage::ledger::OpenVm;
use std::sync::Arc;

use nexus_consensus::{PublicKey, Round};
use nexus_net::protocol::blocks::MAX_BLOCK_BYTES;
use nexus_storage::chain::{propose_child, Built};
use nexus_storage::ledger::{LedgerState, SignedTransaction, TxError};
use nexus_storage::{BlobRegistration, BlockError, Header, Transition, MAX_TRANSACTIONS_PER_BLOCK};

use super::availability::Availability;
use super::Node;
use crate::units::now_ms;
use nexus_sampler::verdicts::Purpose;

/// The block this validator proposes for `round` on top of `parent` (ledger `state`).
pub(crate) async fn build(
    node: &Arc<Node>,
    proposer: PublicKey,
    round: Round,
    parent: Header,
    state: Arc<LedgerState>,
) -> Result<Transition, BlockError> {
    let next = parent.height.next().unwrap_or(parent.height);
    let candidates = take_batch(node, next, &state);
    let built = tokio::task::spawn_blocking(move || {
        propose_child(
            proposer,
            round,
            &parent,
            &state,
            candidates,
            now_ms(),
            &OpenVm,
        )
    })
    .await
    .map_err(|e| BlockError::Data(nexus_consensus::DataError(e.to_string())))?;
    let Built {
        step,
        refused,
        failed,
    } = built?;
    for (index, error) in failed {
        tracing::debug!(
            index,
            "transaction carried as failed (its fee is charged): {error}"
        );
    }
    // What the ledger refuses for a reason other than an early nonce can never apply.
    let mut pool = node.mempool.lock().unwrap_or_else(|p| p.into_inner());
    for (tx, error) in refused {
        if !matches!(error, TxError::WrongNonce { expected, found } if found > expected) {
            tracing::debug!(sender = %tx.tx.sender, "transaction refused: {error}");
            pool.discard(&tx.id());
        }
    }
    Ok(step)
}

/// Bytes of a block besides its transactions (header, outcomes, data header), with margin.
const BLOCK_OVERHEAD: usize = 64 * 1024;

/// The pool's transactions that apply in order on `state` (the parent's ledger), with at
/// most one `das` blob, whose grid this node found available. The `das` blobs left out
/// stay in the pool (and are sampled meanwhile).
fn take_batch(
    node: &Arc<Node>,
    height: nexus_consensus::Height,
    state: &LedgerState,
) -> Vec<SignedTransaction> {
    let mut has_das = false;
    // The block must fit the wire (compute results carry ~230 KB proofs).
    let mut room = MAX_BLOCK_BYTES - BLOCK_OVERHEAD;
    let pool = node.mempool.lock().unwrap_or_else(|p| p.into_inner());
    pool.batch(state, MAX_TRANSACTIONS_PER_BLOCK, |tx| {
        let size = postcard::to_stdvec(tx).map_or(usize::MAX, |b| b.len());
        if size > room {
            return false;
        }
        let take = match BlobRegistration::of(tx).and_then(|r| r.policy.das_data()) {
            None => true,
            Some(data) => {
                !has_das && Availability::check(node, Purpose::Ahead, height, data, |_| ()) && {
                    has_das = true;
                    true
                }
            }
        };
        if take {
            room -= size;
        }
        take
    })
}
