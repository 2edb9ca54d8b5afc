//! Following the chain: the proposer's genesis, appending blocks, gossip validation of
//! new blocks and transactions, range sync from peers, and submitting this node's own
//! transactions (uploads, transfers, staking) until a block includes them. Block
//! production is in [`super::propose`].

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Result};
use nexus_net::protocol::blocks::{BlockRequest, MAX_BLOCKS_PER_RESPONSE};
use nexus_net::protocol::gossip::{GossipMessage, TxSubmission};
use nexus_net::{GossipId, PeerId, Validation};
use nexus_storage::chain::{accept_child, accept_genesis, create_genesis};
use nexus_storage::ledger::{
    Genesis, LedgerEvent, SignedTransaction, Transaction, TxError, TxKind,
};
use nexus_storage::{AppendError, Block, BlockError, Height, SigningKey, Store, Transition};

use super::Node;

pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Creates the genesis block on a proposer's first start; refuses a data dir whose chain
/// belongs to another proposer.
pub(crate) fn ensure_genesis(store: &Store, key: &SigningKey, genesis: Genesis) -> Result<()> {
    match store.block(Height(0))? {
        Some(existing) if existing.header.proposer != key.public() => bail!(
            "this data dir follows the chain of proposer {}, not this node's key {}",
            existing.header.proposer,
            key.public()
        ),
        Some(_) => Ok(()),
        None => {
            let step = create_genesis(key, genesis, now_ms())?;
            store.append_block(&step)?;
            tracing::info!(hash = %step.block.header.hash(), "created genesis block");
            Ok(())
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum AcceptError {
    #[error(transparent)]
    Invalid(#[from] BlockError),
    #[error("store: {0}")]
    Store(String),
}

/// Verifies `block` (form and ledger transition) as the next block of the local chain, or
/// as the genesis of an empty one, and appends it.
fn accept_next(node: &Node, block: Block) -> Result<(), AcceptError> {
    let step = match node.store.tip() {
        None => accept_genesis(block, node.genesis_pin)?,
        Some(tip) => accept_child(block, &tip.header, &tip.ledger)?,
    };
    append(node, &step).map_err(AcceptError::Store)
}

pub(super) fn append(node: &Node, step: &Transition) -> Result<(), String> {
    match node.store.append_block(step) {
        Ok(()) => {}
        // Gossip and sync raced to append the same block: the other one won.
        Err(AppendError::NotNext {
            tip: Some(tip),
            height,
        }) if tip >= height => return Ok(()),
        Err(e) => return Err(e.to_string()),
    }
    node.chain_advanced();
    let mut expired = Vec::new();
    for event in &step.events {
        tracing::info!(height = %step.block.header.height, "ledger: {event:?}");
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
        height = %step.block.header.height,
        transactions = step.block.transactions.len(),
        "block appended"
    );
    Ok(())
}

/// Validates a gossiped message before it is forwarded.
pub(crate) async fn on_gossip(node: &Node, id: GossipId, message: GossipMessage) {
    let verdict = match message {
        GossipMessage::Block(block) => on_block(node, id.source(), *block),
        GossipMessage::Transaction(sub) => on_transaction(node, sub.tx),
    };
    node.net.report(id, verdict).await;
}

fn on_block(node: &Node, source: PeerId, block: Block) -> Validation {
    let Some(tip) = node.store.tip() else {
        node.sync_now.notify_one();
        return Validation::Ignore;
    };
    let height = block.header.height;
    if height <= tip.header.height {
        return match node.store.block(height) {
            Ok(Some(ours)) if ours.header.hash() == block.header.hash() => Validation::Ignore,
            Ok(Some(_)) => Validation::Reject,
            _ => Validation::Ignore,
        };
    }
    if Some(height) == tip.header.height.next() {
        return match accept_next(node, block) {
            Ok(()) => Validation::Accept,
            Err(AcceptError::Invalid(e)) => {
                tracing::warn!(peer = %source, "invalid block {height}: {e}");
                Validation::Reject
            }
            Err(AcceptError::Store(e)) => {
                tracing::error!("cannot append block {height}: {e}");
                Validation::Ignore
            }
        };
    }
    // Ahead of us: we are missing blocks. Forward it if the proposer signed it; catch up.
    let proposer = tip.header.proposer;
    if block.header.proposer == proposer
        && proposer.verify(&block.header.hash().0, &block.signature)
    {
        node.announced.fetch_max(height.0, Ordering::Relaxed);
        node.sync_now.notify_one();
        Validation::Accept
    } else {
        Validation::Reject
    }
}

fn on_transaction(node: &Node, tx: SignedTransaction) -> Validation {
    if !tx.signature_valid() {
        return Validation::Reject;
    }
    if node.is_proposer {
        enqueue(node, tx);
    }
    Validation::Accept
}

pub(super) fn enqueue(node: &Node, tx: SignedTransaction) {
    if matches!(node.store.transaction_location(&tx.id()), Ok(Some(_))) {
        return;
    }
    let mut pool = node.mempool.lock().unwrap_or_else(|p| p.into_inner());
    if !pool.contains(&tx) {
        pool.push(tx);
    }
}

/// Catches up on missing blocks from peers, when woken or every two seconds.
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

/// Pulls blocks from `peer` until it has no more; true if we ended level with it.
async fn sync_from(node: &Node, peer: PeerId) -> bool {
    loop {
        let from = node
            .store
            .tip()
            .and_then(|t| t.header.height.next())
            .unwrap_or(Height(0));
        let request = BlockRequest {
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
        for block in response.blocks {
            let height = block.header.height;
            // Gossip may have appended these blocks since we asked: skip what we hold, but
            // a different block at a height we hold is a fork from a peer to drop.
            if node.store.tip().is_some_and(|t| height <= t.header.height) {
                match node.store.block(height) {
                    Ok(Some(ours)) if ours.header.hash() != block.header.hash() => {
                        tracing::warn!("peer {peer} served a conflicting block {height}");
                        node.net.penalise(peer).await;
                        return false;
                    }
                    _ => continue,
                }
            }
            match accept_next(node, block) {
                Ok(()) => {}
                Err(AcceptError::Invalid(e)) => {
                    tracing::warn!("peer {peer} served invalid block {height}: {e}");
                    node.net.penalise(peer).await;
                    return false;
                }
                Err(AcceptError::Store(e)) => {
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

/// Why this node's own transaction did not make it into a block.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SubmitError {
    #[error("this node has no chain yet (it has not reached its peers)")]
    NoChain,
    #[error("the ledger refuses it: {0}")]
    Rejected(TxError),
    #[error("it was not included in a block within {0:?}: is the proposer reachable?")]
    Timeout(Duration),
    #[error("store failure: {0}")]
    Store(String),
    #[error("another transaction of this account took its nonce; submit it again")]
    Superseded,
}

/// Where a transaction was included.
#[derive(Debug, Clone)]
pub(crate) struct Included {
    pub(crate) height: Height,
    pub(crate) index: u32,
}

/// Signs `kind` with the node's account, checks it against the tip's ledger, hands it to
/// the proposer and waits until a block includes it.
pub(crate) async fn submit(
    node: &Node,
    kind: TxKind,
    deadline: Duration,
) -> Result<Included, SubmitError> {
    let _turn = node.submit_lock.lock().await;
    let tip = node.store.tip().ok_or(SubmitError::NoChain)?;
    let sender = node.account.public();
    let nonce = tip.ledger.account(&sender).nonce;
    let tx = Transaction {
        sender,
        nonce,
        kind,
    }
    .sign(&node.account);
    let mut dry_run = (*tip.ledger).clone();
    dry_run.apply_tx(&tx).map_err(SubmitError::Rejected)?;

    let mut blocks = node.new_block.subscribe();
    let started = tokio::time::Instant::now();
    let id = tx.id();
    for attempt in 0u64.. {
        match node.store.transaction_location(&id) {
            Ok(Some((height, index))) => return Ok(Included { height, index }),
            Ok(None) => {}
            Err(e) => return Err(SubmitError::Store(e.to_string())),
        }
        // Our nonce was used by another transaction of this account: ours can never land.
        if let Some(t) = node.store.tip() {
            if t.ledger.account(&sender).nonce > nonce {
                return Err(SubmitError::Superseded);
            }
        }
        if started.elapsed() >= deadline {
            break;
        }
        if attempt % 4 == 0 {
            if node.is_proposer {
                enqueue(node, tx.clone());
            } else {
                let sub = TxSubmission {
                    tx: tx.clone(),
                    attempt,
                };
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
