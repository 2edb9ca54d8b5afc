//! Following the chain: the proposer's genesis and block production, gossip validation of
//! new blocks, range sync from peers, and anchoring a freshly stored blob in a block.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Result};
use nexus_net::protocol::blocks::{BlockRequest, MAX_BLOCKS_PER_RESPONSE};
use nexus_net::protocol::gossip::{GossipMessage, RegistrationSubmission};
use nexus_net::{GossipId, PeerId, PublishError, Validation};
use nexus_storage::{
    BlobRegistration, Block, BlockError, Height, SigningKey, Store, VerifiedBlock,
    MAX_REGISTRATIONS_PER_BLOCK,
};

use super::Node;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Creates the genesis block on a proposer's first start; refuses a data dir whose chain
/// belongs to another proposer.
pub(crate) fn ensure_genesis(store: &Store, key: &SigningKey) -> Result<()> {
    match store.block(Height(0))? {
        Some(genesis) if genesis.header.proposer != key.public() => bail!(
            "this data dir follows the chain of proposer {}, not this node's key {}",
            genesis.header.proposer,
            key.public()
        ),
        Some(_) => Ok(()),
        None => {
            let genesis = Block::propose(key, None, now_ms(), Vec::new())?;
            store.append_block(&genesis)?;
            tracing::info!(hash = %genesis.header.hash(), "created genesis block");
            Ok(())
        }
    }
}

/// Verifies `block` as the next block of the local chain (or as the genesis of an empty
/// one) and appends it.
fn accept_next(node: &Node, block: Block) -> Result<VerifiedBlock, AcceptError> {
    let verified = match node.store.tip() {
        None => block.verify_genesis(node.genesis_pin)?,
        Some(tip) => block.verify_child(&tip)?,
    };
    node.store
        .append_block(&verified)
        .map_err(|e| AcceptError::Store(e.to_string()))?;
    node.chain_advanced();
    tracing::info!(
        height = %verified.header.height,
        registrations = verified.registrations.len(),
        "block appended"
    );
    Ok(verified)
}

#[derive(Debug, thiserror::Error)]
enum AcceptError {
    #[error(transparent)]
    Invalid(#[from] BlockError),
    #[error("store: {0}")]
    Store(String),
}

/// Validates a gossiped message before it is forwarded.
pub(crate) async fn on_gossip(node: &Node, id: GossipId, message: GossipMessage) {
    let verdict = match message {
        GossipMessage::Block(block) => on_block(node, id.source(), *block),
        GossipMessage::Registration(sub) => on_registration(node, sub.registration),
    };
    node.net.report(id, verdict).await;
}

fn on_block(node: &Node, source: PeerId, block: Block) -> Validation {
    let Some(tip) = node.store.tip() else {
        node.sync_now.notify_one();
        return Validation::Ignore;
    };
    let height = block.header.height;
    if height <= tip.height {
        return match node.store.block(height) {
            Ok(Some(ours)) if ours.header.hash() == block.header.hash() => Validation::Ignore,
            Ok(Some(_)) => Validation::Reject,
            _ => Validation::Ignore,
        };
    }
    if Some(height) == tip.height.next() {
        return match accept_next(node, block) {
            Ok(_) => Validation::Accept,
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
    node.sync_now.notify_one();
    if block.header.proposer == tip.proposer
        && tip
            .proposer
            .verify(&block.header.hash().0, &block.signature)
    {
        Validation::Accept
    } else {
        Validation::Reject
    }
}

fn on_registration(node: &Node, reg: BlobRegistration) -> Validation {
    if nexus_storage::BlobLayout::new(reg.size).is_err() {
        return Validation::Reject;
    }
    if node.proposer_key.is_some() {
        enqueue(node, reg);
    }
    Validation::Accept
}

fn enqueue(node: &Node, reg: BlobRegistration) {
    if matches!(node.store.registration(&reg.blob_id), Ok(Some(_))) {
        return;
    }
    let mut pool = node.mempool.lock().unwrap_or_else(|p| p.into_inner());
    if !pool.iter().any(|r| r.blob_id == reg.blob_id) {
        pool.push(reg);
    }
}

/// The proposer's loop: every `interval`, cut a block from pending registrations.
pub(crate) async fn propose_loop(node: Arc<Node>, interval: Duration) {
    let Some(key) = &node.proposer_key else {
        return;
    };
    let mut tick = tokio::time::interval(interval);
    loop {
        tick.tick().await;
        let batch: Vec<_> = {
            let mut pool = node.mempool.lock().unwrap_or_else(|p| p.into_inner());
            let take = pool.len().min(MAX_REGISTRATIONS_PER_BLOCK);
            pool.drain(..take).collect()
        };
        let batch: Vec<_> = batch
            .into_iter()
            .filter(|r| matches!(node.store.registration(&r.blob_id), Ok(None)))
            .collect();
        if batch.is_empty() {
            continue;
        }
        let Some(tip) = node.store.tip() else {
            continue;
        };
        let block = match Block::propose(key, Some(&tip), now_ms(), batch) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!("cannot propose a block: {e}");
                continue;
            }
        };
        if let Err(e) = accept_next(node.as_ref(), block.clone().into_inner()) {
            tracing::error!("cannot append own block: {e}");
            continue;
        }
        match node
            .net
            .publish(GossipMessage::Block(Box::new(block.into_inner())))
            .await
        {
            Ok(()) | Err(PublishError::NoPeers) => {}
            Err(e) => tracing::warn!("cannot announce block: {e}"),
        }
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
        for peer in info.connected {
            if sync_from(&node, peer).await {
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
            .and_then(|t| t.height.next())
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
            match accept_next(node, block) {
                Ok(_) => {}
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

/// Why a stored blob could not be anchored in time.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AnchorError {
    #[error("the blob is stored here but was not anchored in a block within {0:?}: is the proposer reachable?")]
    Timeout(Duration),
    #[error("store failure: {0}")]
    Store(String),
}

/// Submits `reg` to the proposer and waits until a block registers it; returns the
/// inclusion location (height, index).
pub(crate) async fn anchor(
    node: &Node,
    reg: BlobRegistration,
    deadline: Duration,
) -> Result<(Height, u32), AnchorError> {
    let mut blocks = node.new_block.subscribe();
    let started = tokio::time::Instant::now();
    let mut nonce = 0u64;
    loop {
        match node.store.registration(&reg.blob_id) {
            Ok(Some((height, index, _))) => return Ok((height, index)),
            Ok(None) => {}
            Err(e) => return Err(AnchorError::Store(e.to_string())),
        }
        if started.elapsed() >= deadline {
            return Err(AnchorError::Timeout(deadline));
        }
        if node.proposer_key.is_some() {
            enqueue(node, reg);
        } else {
            let sub = RegistrationSubmission {
                registration: reg,
                nonce,
            };
            if let Err(e) = node.net.publish(GossipMessage::Registration(sub)).await {
                tracing::debug!("registration not published yet: {e}");
            }
            nonce += 1;
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), blocks.changed()).await;
    }
}
