//! Following the chain: the proposer's genesis and block production, gossip validation of
//! new blocks and transactions, range sync from peers, and submitting this node's own
//! transactions (uploads, transfers, staking) until a block includes them.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Result};
use nexus_net::protocol::blocks::{BlockRequest, MAX_BLOCKS_PER_RESPONSE};
use nexus_net::protocol::gossip::{GossipMessage, TxSubmission};
use nexus_net::{GossipId, PeerId, PublishError, Validation};
use nexus_storage::block::DasBlobs;
use nexus_storage::chain::{accept_child, accept_genesis, create_genesis, propose_child};
use nexus_storage::ledger::{Genesis, PolicySpec, SignedTransaction, Transaction, TxError, TxKind};
use nexus_storage::{
    AppendError, BlobRegistration, Block, BlockError, Height, SigningKey, Store, Transition,
    MAX_TRANSACTIONS_PER_BLOCK,
};

use super::{fetch, Node};

fn now_ms() -> u64 {
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

fn append(node: &Node, step: &Transition) -> Result<(), String> {
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
    for event in &step.events {
        tracing::info!(height = %step.block.header.height, "ledger: {event:?}");
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

fn enqueue(node: &Node, tx: SignedTransaction) {
    if matches!(node.store.transaction_location(&tx.id()), Ok(Some(_))) {
        return;
    }
    let mut pool = node.mempool.lock().unwrap_or_else(|p| p.into_inner());
    if !pool.contains(&tx) {
        pool.push(tx);
    }
}

/// The proposer's loop: every `interval`, cut a block from the pending transactions (an
/// empty block if there are none: epochs and challenge deadlines count blocks).
pub(crate) async fn propose_loop(node: Arc<Node>, interval: Duration) {
    if !node.is_proposer {
        return;
    }
    // Build the FK20 tables now rather than on the first block that carries data.
    let _ = tokio::task::spawn_blocking(|| {
        nexus_das::kzg::RowProver::get();
    })
    .await;
    let mut tick = tokio::time::interval(interval);
    loop {
        tick.tick().await;
        let Some(tip) = node.store.tip() else {
            continue;
        };
        let batch: Vec<_> = {
            let mut pool = node.mempool.lock().unwrap_or_else(|p| p.into_inner());
            let take = pool.len().min(MAX_TRANSACTIONS_PER_BLOCK);
            pool.drain(..take).collect()
        };
        // A resubmission can arrive while its first copy is being included: drop those.
        let batch: Vec<_> = batch
            .into_iter()
            .filter(|tx| matches!(node.store.transaction_location(&tx.id()), Ok(None)))
            .collect();
        let max_data = tip.ledger.params().max_block_data;
        let (batch, blobs) = stage_das_blobs(&node, batch, max_data).await;
        // Encoding a payload takes seconds: off the threads that serve peers.
        let proposer = node.clone();
        let proposed = tokio::task::spawn_blocking(move || {
            let mut encoding = None;
            let proposed = propose_child(
                &proposer.account,
                &tip.header,
                &tip.ledger,
                batch,
                now_ms(),
                |payload, dims| {
                    let (data, encoded) = super::custody::encode_payload(payload, dims, &blobs)?;
                    encoding = encoded;
                    Ok(data)
                },
            );
            proposed.map(|p| (p, encoding))
        })
        .await;
        let ((step, refused), encoding) = match proposed {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                tracing::error!("cannot propose a block: {e}");
                continue;
            }
            Err(e) => {
                tracing::error!("block proposal stopped: {e}");
                continue;
            }
        };
        // Keep transactions that are only early (a gap in their sender's nonces).
        {
            let mut pool = node.mempool.lock().unwrap_or_else(|p| p.into_inner());
            for (tx, error) in refused {
                match error {
                    TxError::WrongNonce { expected, found } if found > expected => pool.push(tx),
                    e => tracing::debug!(sender = %tx.tx.sender, "transaction refused: {e}"),
                }
            }
        }
        // Kept before the block is appended (peers sync appended blocks) or announced, so
        // its cells can be served as soon as anyone sees its header.
        if let Some(data) = encoding {
            node.encodings
                .insert(step.block.header.height, Arc::new(data));
        }
        if let Err(e) = append(&node, &step) {
            tracing::error!("cannot append own block: {e}");
            continue;
        }
        let block = step.block.into_inner();
        match node
            .net
            .publish(GossipMessage::Block(Box::new(block.clone())))
            .await
        {
            Ok(()) | Err(PublishError::NoPeers) => {}
            Err(e) => tracing::warn!("cannot announce block: {e}"),
        }
    }
}

/// Gets the bytes of the `das` blobs `batch` registers, up to `max_data` bytes in all.
/// Transactions over the cap wait in the pool for the next block; those whose bytes no
/// peer serves are dropped (their sender's node submits them again).
async fn stage_das_blobs(
    node: &Node,
    batch: Vec<SignedTransaction>,
    max_data: u64,
) -> (Vec<SignedTransaction>, DasBlobs) {
    let mut blobs = DasBlobs::new();
    let mut kept = Vec::with_capacity(batch.len());
    let mut total = 0u64;
    for tx in batch {
        let Some(reg) = BlobRegistration::of(&tx).filter(|r| r.policy == PolicySpec::Das) else {
            kept.push(tx);
            continue;
        };
        // One blob over the cap is kept, for the ledger to refuse with the reason.
        if total > 0 && total.saturating_add(reg.size) > max_data {
            enqueue(node, tx);
            continue;
        }
        if reg.size > max_data {
            kept.push(tx);
            continue;
        }
        match fetch::blob_bytes(node, &reg).await {
            Ok(bytes) => {
                total += reg.size;
                blobs.insert(reg.blob_id, Arc::new(bytes));
                kept.push(tx);
            }
            Err(e) => tracing::warn!(blob = %reg.blob_id, "das blob left out of the block: {e}"),
        }
    }
    (kept, blobs)
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
