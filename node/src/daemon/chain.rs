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
use nexus_net::protocol::gossip::GossipMessage;
use nexus_net::{GossipId, PeerId, Validation};
use nexus_storage::block::CertifiedBlock;
use nexus_storage::chain::{accept_final, accept_genesis, create_genesis, FinalBlockError};
use nexus_storage::ledger::{LedgerEvent, SignedTransaction, MAX_RESULT_TX_BYTES};
use nexus_storage::mempool::{precheck, PoolLimits};
use nexus_storage::{AppendError, BlobRegistration, ChainGenesis, Height, Store, Transition};

use super::availability::Availability;
use super::pool::{enqueue, prepare_in_background};
use super::prefetch::Staged;
use super::Node;
use nexus_sampler::verdicts::Purpose;

use crate::units::now_ms;

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
