//! Submitting this node's own transactions: signed with the next free nonce once a dry
//! run on the tip's ledger accepts them, handed to the validators, and followed until a
//! final block includes them (or says why not).

use std::time::Duration;

use nexus_net::codec::Encoded;
use nexus_net::protocol::gossip::{GossipMessage, TxSubmission};
use nexus_storage::ledger::{OpenVm, SignedTransaction, Transaction, TxError, TxKind};
use nexus_storage::{BlobRegistration, Height};

use super::pool::enqueue;
use super::Node;

/// Why this node's own transaction did not make it into a final block.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SubmitError {
    #[error("this node has no chain yet (it has not reached its peers)")]
    NoChain,
    #[error("the ledger refuses it: {0}")]
    Rejected(TxError),
    #[error(
        "it was not final within {0:?}: are enough validators (more than two thirds of the \
         stake) up and reachable?"
    )]
    Timeout(Duration),
    #[error("store failure: {0}")]
    Store(String),
    #[error("another transaction of this account took its nonce; submit it again")]
    Superseded,
    #[error(
        "block {0} carries it as failed (its fee was charged): the ledger changed since it \
         was checked; submit it again"
    )]
    Failed(Height),
}

/// Where a transaction was included.
#[derive(Debug, Clone)]
pub(crate) struct Included {
    pub(crate) height: Height,
    pub(crate) index: u32,
}

/// Signs `kind` with the node's account, checks it against the tip's ledger, hands it to
/// the validators and waits until a final block includes it. Any number of submissions
/// may run at once: each takes the nonce after this node's transactions still waiting.
pub(crate) async fn submit(
    node: &Node,
    kind: TxKind,
    deadline: Duration,
) -> Result<Included, SubmitError> {
    let tx = sign_next(node, kind)?;
    let outcome = wait_final(node, &tx, deadline).await;
    let id = tx.id();
    if !matches!(node.store.transaction_location(&id), Ok(Some(_))) {
        // Given up (or done by another's transaction): this node no longer offers it, and
        // its next transaction takes its nonce.
        node.own_txs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|t| t.id() != id);
        node.mempool
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .discard(&id);
    }
    outcome
}

/// Signs `kind` with the nonce after this node's waiting transactions, once a dry run on
/// the tip's ledger (after those transactions) accepts it, and adds it to them.
fn sign_next(node: &Node, kind: TxKind) -> Result<SignedTransaction, SubmitError> {
    let mut own = node.own_txs.lock().unwrap_or_else(|p| p.into_inner());
    let (mut tx, next) = checked(node, &mut own, kind)?;
    tx.nonce = next + own.len() as u64;
    let signed = tx.sign(&node.account);
    own.push(signed.clone());
    Ok(signed)
}

/// Whether the ledger would accept `kind` from this node's account now, after the
/// node's waiting transactions; nothing is signed or sent.
pub(crate) fn dry_run(node: &Node, kind: &TxKind) -> Result<(), SubmitError> {
    let mut own = node.own_txs.lock().unwrap_or_else(|p| p.into_inner());
    checked(node, &mut own, kind.clone()).map(|_| ())
}

/// `kind` as this node's unsigned transaction, dry-run on the tip's ledger after `own`
/// (which drops those the tip has passed), with the tip's next nonce of the account.
fn checked(
    node: &Node,
    own: &mut Vec<SignedTransaction>,
    kind: TxKind,
) -> Result<(Transaction, u64), SubmitError> {
    let tip = node.store.tip().ok_or(SubmitError::NoChain)?;
    let sender = node.account.public();
    // Those the tip's ledger has passed landed (or were superseded).
    let next = tip.ledger.account(&sender).nonce;
    own.retain(|t| t.tx.nonce >= next);
    let mut state = (*tip.ledger).clone();
    for t in own.iter() {
        // One that no longer applies will fail on its own; it does not decide this one.
        let _ = state.apply_unsigned(&t.tx, &OpenVm);
    }
    let tx = Transaction {
        chain: tip.ledger.chain(),
        sender,
        nonce: state.account(&sender).nonce,
        fee: tip.ledger.params().min_tx_fee,
        kind,
    };
    state
        .apply_unsigned(&tx, &OpenVm)
        .map_err(SubmitError::Rejected)?;
    Ok((tx, next))
}

/// What became of this node's transaction that the final block at `height` carries at
/// `index`: it took effect, or it failed there and only paid its fee.
fn landed(node: &Node, height: Height, index: u32) -> Result<Included, SubmitError> {
    match node.store.block(height) {
        Ok(Some(block)) if block.failed_at(index) => Err(SubmitError::Failed(height)),
        Ok(_) => Ok(Included { height, index }),
        Err(e) => Err(SubmitError::Store(e.to_string())),
    }
}

/// Publishes `tx` (and adds it to this validator's pool) until a final block includes it.
async fn wait_final(
    node: &Node,
    tx: &SignedTransaction,
    deadline: Duration,
) -> Result<Included, SubmitError> {
    let (sender, nonce) = (tx.tx.sender, tx.tx.nonce);
    let mut blocks = node.new_block.subscribe();
    let started = tokio::time::Instant::now();
    let id = tx.id();
    // A registration is done once the blob is registered, by this transaction or by
    // another account's registration of the same bytes that got there first (after now:
    // an older, expired registration does not count).
    let registers = BlobRegistration::of(tx).map(|r| r.blob_id);
    let signed_at = node.store.tip().map_or(Height(0), |t| t.header.height);
    for attempt in 0u64.. {
        // First the registration: ours may have failed for another's (the same bytes).
        if let Some(blob_id) = registers {
            match node.store.registration(&blob_id) {
                Ok(Some((height, index, _))) if height > signed_at => {
                    return Ok(Included { height, index })
                }
                Ok(_) => {}
                Err(e) => return Err(SubmitError::Store(e.to_string())),
            }
        }
        match node.store.transaction_location(&id) {
            Ok(Some((height, index))) => return landed(node, height, index),
            Ok(None) => {}
            Err(e) => return Err(SubmitError::Store(e.to_string())),
        }
        // Our nonce was used by another transaction of this account: ours can never land.
        // (The store indexes a block's transactions before it moves the tip: look again.)
        if let Some(t) = node.store.tip() {
            if t.ledger.account(&sender).nonce > nonce {
                return match node.store.transaction_location(&id) {
                    Ok(Some((height, index))) => landed(node, height, index),
                    Ok(None) => Err(SubmitError::Superseded),
                    Err(e) => Err(SubmitError::Store(e.to_string())),
                };
            }
        }
        if started.elapsed() >= deadline {
            break;
        }
        if attempt % 4 == 0 {
            if node.is_validator() {
                if let Err(e) = enqueue(node, tx.clone()) {
                    tracing::debug!(nonce, "own transaction not admitted yet: {e}");
                }
            }
            let sub = TxSubmission {
                tx: Encoded::of(tx),
                attempt,
            };
            let withheld = node.has_fault(super::Fault::WithholdProposals);
            if !withheld {
                if let Err(e) = node
                    .net
                    .publish(GossipMessage::Transaction(Box::new(sub)))
                    .await
                {
                    tracing::debug!("transaction not published yet: {e}");
                }
            }
        }
        let _ = tokio::time::timeout(Duration::from_millis(500), blocks.changed()).await;
    }
    Err(SubmitError::Timeout(deadline))
}
