//! Following the final chain: the genesis (built from a genesis file, or the first one
//! peers serve), appending final blocks with their proofs, gossip of final headers and of
//! transactions, range sync from peers, and submitting this node's own transactions
//! until a final block includes them. Consensus itself is driven by
//! [`super::consensus`].

use nexus_storage::ledger::OpenVm;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};
use nexus_consensus::{CertifiedHeader, FinalityProof};
use nexus_net::codec::Encoded;
use nexus_net::protocol::blocks::{BlockRequest, MAX_BLOCKS_PER_RESPONSE, MAX_BLOCK_BYTES};
use nexus_net::protocol::gossip::{GossipMessage, TxSubmission};
use nexus_net::{GossipId, PeerId, Validation};
use nexus_storage::block::CertifiedBlock;
use nexus_storage::chain::{accept_final, accept_genesis, create_genesis, FinalBlockError};
use nexus_storage::ledger::{
    prepare_execution, LedgerEvent, SignedTransaction, Transaction, TxError, TxKind,
    MAX_RESULT_TX_BYTES,
};
use nexus_storage::mempool::{precheck, AdmitError, PoolLimits};
use nexus_storage::{AppendError, BlobRegistration, ChainGenesis, Height, Store, Transition};

use super::availability::{Availability, Purpose};
use super::prefetch::Staged;
use super::Node;

/// Largest encoded transaction accepted from gossip.
pub(super) use crate::units::now_ms;

/// Builds the genesis block of `genesis` on first start; refuses a data dir that follows
/// another chain.
pub(crate) fn ensure_genesis(store: &Store, genesis: ChainGenesis) -> Result<()> {
    let step = create_genesis(genesis)?;
    match store.block(Height(0))? {
        Some(existing) if existing.header.hash() != step.block.header.hash() => bail!(
            "this data dir follows the chain with genesis {}, not the one the genesis file \
             describes ({})",
            existing.header.hash(),
            step.block.header.hash()
        ),
        Some(_) => Ok(()),
        None => {
            store.append_block(&step, None)?;
            tracing::info!(hash = %step.block.header.hash(), "created genesis block");
            Ok(())
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum AcceptError {
    #[error(transparent)]
    Invalid(#[from] FinalBlockError),
    #[error("no chain context yet")]
    NoContext,
    #[error("store: {0}")]
    Store(String),
}

/// Verifies a final block from a peer (ledger transition and finality proof) as the next
/// block of the local chain, or as the genesis of an empty one, and appends it.
fn accept_next(node: &Node, certified: CertifiedBlock) -> Result<(), AcceptError> {
    let CertifiedBlock { block, proof } = certified;
    let step = match (node.store.tip(), proof) {
        (None, _) => accept_genesis(block, node.genesis_pin).map_err(FinalBlockError::from)?,
        (Some(tip), Some(proof)) => {
            let ctx = node.context().ok_or(AcceptError::NoContext)?;
            let step = accept_final(block, &proof, &tip.header, &tip.ledger, &ctx, &OpenVm)?;
            return append_final(node, &step, Some(proof)).map_err(AcceptError::Store);
        }
        (Some(_), None) => {
            return Err(AcceptError::Invalid(FinalBlockError::Block(
                nexus_storage::BlockError::BadGenesis("a block past genesis needs a proof"),
            )))
        }
    };
    append_final(node, &step, None).map_err(AcceptError::Store)
}

/// Appends a final block (with its proof), moves the pending tree's root to it, and acts
/// on its ledger events.
pub(super) fn append_final(
    node: &Node,
    step: &Transition,
    proof: Option<FinalityProof>,
) -> Result<(), String> {
    match node.store.append_block(step, proof.as_ref()) {
        Ok(()) => {}
        // Consensus and sync raced to append the same block: the other one won.
        Err(AppendError::NotNext {
            tip: Some(tip),
            height,
        }) if tip >= height => return Ok(()),
        Err(e) => return Err(e.to_string()),
    }
    let header = &step.block.header;
    node.advance_tree(header, &step.ledger, &[]);
    node.mempool
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .prune(&step.ledger, now_ms());
    node.chain_advanced();
    let mut expired = Vec::new();
    for event in &step.events {
        tracing::info!(height = %header.height, "ledger: {event:?}");
        if let LedgerEvent::BlobExpired(id) = event {
            expired.push(*id);
        }
    }
    if !expired.is_empty() {
        let (store, encodings) = (node.store.clone(), node.encodings.clone());
        tokio::task::spawn_blocking(move || {
            super::duties::release_expired(&store, &encodings, &expired);
        });
    }
    tracing::debug!(
        height = %header.height,
        transactions = step.block.transactions.len(),
        "final block appended"
    );
    Ok(())
}

/// Validates a gossiped message (other than consensus) before it is forwarded.
pub(crate) async fn on_gossip(node: &Arc<Node>, id: GossipId, message: GossipMessage) {
    let verdict = match message {
        GossipMessage::Finalized(certified) => on_finalized(node, *certified),
        GossipMessage::Transaction(sub) => on_transaction(node, &sub.tx),
        // Routed to the consensus task by the dispatcher; a node that is not a validator
        // does not subscribe to the topic.
        GossipMessage::Consensus(_) => Validation::Ignore,
    };
    node.net.report(id, verdict).await;
}

/// A block became final elsewhere: forward the announcement if its proof holds, and
/// fetch the block if it is ahead of us.
fn on_finalized(node: &Node, certified: CertifiedHeader) -> Validation {
    let Some(ctx) = node.context() else {
        node.sync_now.notify_one();
        return Validation::Ignore;
    };
    let height = certified.header.height;
    // A block already held (or committed here, the store catching up) is not checked again.
    let held = node
        .store
        .tip()
        .map_or(0, |t| t.header.height.0)
        .max(node.tree_root_height().map_or(0, |h| h.0));
    if height.0 <= held {
        return Validation::Ignore;
    }
    if let Err(e) = certified.verify(&ctx) {
        tracing::warn!(%height, "final header with an invalid proof: {e}");
        return Validation::Reject;
    }
    node.announced.fetch_max(height.0, Ordering::Relaxed);
    node.sync_now.notify_one();
    Validation::Accept
}

fn on_transaction(node: &Arc<Node>, tx: &Encoded) -> Validation {
    let encoded_len = tx.len();
    let Ok(tx) = tx.decode::<SignedTransaction>(MAX_RESULT_TX_BYTES) else {
        return Validation::Reject;
    };
    if !tx.size_allowed(encoded_len) {
        return Validation::Reject;
    }
    let Some(tip) = node.store.tip() else {
        return Validation::Ignore;
    };
    // What could never pay (unfunded sender, another chain, a forged signature) is
    // rejected, and what cannot apply soon (a used nonce, one far ahead) not relayed: spam
    // stops at the first honest node. Validators check all that in their pool's admission.
    if !node.is_validator() {
        match precheck(&tx, &tip.ledger, PoolLimits::default().nonce_window) {
            Ok(()) => {}
            Err(e) if e.is_invalid() => return Validation::Reject,
            Err(_) => return Validation::Ignore,
        }
    }
    let das = BlobRegistration::of(&tx).and_then(|r| r.policy.das_data());
    if let Some(data) = das {
        // Every storage node fetches its custody cells now, while the uploader serves them.
        Staged::start(node, data);
    }
    if node.is_validator() {
        // A das blob is sampled as soon as its registration arrives, so that it is known
        // available (or not) before this validator leads or votes on a block carrying it.
        if let Some(data) = das {
            let next = tip.header.height.next().unwrap_or(tip.header.height);
            Availability::check(node, Purpose::Ahead, next, data, |_| ());
        }
        let kind = tx.tx.kind.clone();
        match enqueue(node, tx) {
            Ok(()) => prepare_in_background(kind),
            Err(e) if e.is_invalid() => return Validation::Reject,
            Err(e) => {
                tracing::debug!("transaction not admitted: {e}");
                return Validation::Ignore;
            }
        }
    }
    Validation::Accept
}

/// Derives what executing a pooled transaction of `kind` will need (a compute job's
/// program commitment), one at a time in the background, so that this validator does not
/// wait on it while it builds or checks a block: skipped while one is under way.
fn prepare_in_background(kind: TxKind) {
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

/// Catches up on final blocks from peers, when woken or every two seconds.
pub(crate) async fn sync_loop(node: Arc<Node>) {
    loop {
        tokio::select! {
            _ = node.sync_now.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
        let Some(info) = node.net.info().await else {
            return;
        };
        // Ask storage peers in turn until the chain reaches the highest height gossip
        // announced: a peer as far behind as we are has nothing to give.
        for peer in info.storage_peers {
            let caught_up = sync_from(&node, peer).await
                && node.store.tip().map_or(0, |t| t.header.height.0)
                    >= node.announced.load(Ordering::Relaxed);
            if caught_up {
                break;
            }
        }
    }
}

/// Pulls final blocks from `peer` until it has no more; true if we ended level with it.
async fn sync_from(node: &Node, peer: PeerId) -> bool {
    loop {
        let from = node
            .store
            .tip()
            .and_then(|t| t.header.height.next())
            .unwrap_or(Height(0));
        let request = BlockRequest::Range {
            from,
            max: MAX_BLOCKS_PER_RESPONSE,
        };
        let response = match node.net.request_blocks(peer, request).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!("block sync from {peer} failed: {e}");
                return false;
            }
        };
        let count = response.blocks.len();
        if count == 0 {
            return true;
        }
        for encoded in response.blocks {
            let Ok(certified) = encoded.decode::<CertifiedBlock>(MAX_BLOCK_BYTES * 2) else {
                tracing::warn!("peer {peer} served an undecodable block");
                node.net.penalise(peer).await;
                return false;
            };
            let height = certified.block.header.height;
            // Consensus may have appended these blocks since we asked: skip what we hold,
            // but a different block at a height we hold is a fork from a peer to drop.
            if node.store.tip().is_some_and(|t| height <= t.header.height) {
                match node.store.block(height) {
                    Ok(Some(ours)) if ours.header.hash() != certified.block.header.hash() => {
                        tracing::warn!("peer {peer} served a conflicting block {height}");
                        node.net.penalise(peer).await;
                        return false;
                    }
                    _ => continue,
                }
            }
            let hash = certified.block.header.hash();
            let result = tokio::task::block_in_place(|| accept_next(node, certified));
            match result {
                Ok(()) => {}
                // Consensus appended this very block meanwhile: not the peer's fault.
                Err(AcceptError::Invalid(_)) if matches!(node.store.block(height), Ok(Some(ours)) if ours.header.hash() == hash) =>
                    {}
                Err(AcceptError::Invalid(e)) => {
                    tracing::warn!("peer {peer} served invalid block {height}: {e}");
                    node.net.penalise(peer).await;
                    return false;
                }
                Err(e) => {
                    tracing::error!("cannot append block {height}: {e}");
                    return false;
                }
            }
        }
        if count < usize::from(MAX_BLOCKS_PER_RESPONSE) {
            return true;
        }
    }
}

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
