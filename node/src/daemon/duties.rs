//! What the ledger asks of this node: as a provider, answer storage challenges on the
//! shards it keeps; as an orchestrator, rebuild shards the ledger moved to a new provider
//! (repair), so the new provider can fetch them; and free what expired blobs held.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nexus_storage::erasure::ErasureLayout;
use nexus_storage::ledger::{Epoch, LeafAnswer, PolicySpec, TxKind};
use nexus_storage::{leaf_proof, BlobId, ChunkIndex, Store};

use super::custody::Encodings;
use super::fetch::{gather_shards, read_local};
use super::submit::submit;
use super::Node;

/// Deletes what this node holds for blobs whose paid epochs ran out (`ids`, from a
/// block's `BlobExpired` events): their copies, shards and, for `das` blobs, the custody
/// cells (stored and in memory) of blocks left with no stored `das` blob. Blocking: call
/// off the async threads.
pub(super) fn release_expired(store: &Store, encodings: &Encodings, ids: &[BlobId]) {
    for id in ids {
        match store.release_expired(id) {
            Ok(released) => {
                if let Some(height) = released.cells_of {
                    if let Ok(Some(block)) = store.block(height) {
                        encodings.forget(&block.header.data.root);
                    }
                }
                tracing::info!(
                    blob = %id,
                    copies = released.copies,
                    cells_of_block = ?released.cells_of.map(|h| h.0),
                    "expired blob released"
                );
            }
            Err(e) => tracing::error!(blob = %id, "cannot release an expired blob: {e}"),
        }
    }
}

/// Deadline for a challenge answer to be included.
const ANSWER_DEADLINE: Duration = Duration::from_secs(30);

/// Proves the challenged leaves of one shard from the local copy.
async fn answers(node: &Node, shard: BlobId, leaves: &[u64]) -> Option<Vec<LeafAnswer>> {
    let mut out = Vec::with_capacity(leaves.len());
    for leaf in leaves {
        let chunk = read_local(node, shard, ChunkIndex(u32::try_from(leaf / 64).ok()?))
            .await
            .ok()?;
        let in_chunk = (leaf % 64) as usize;
        let proof = leaf_proof(&chunk.data, &chunk.proof, in_chunk as u32)?;
        let start = in_chunk * nexus_storage::LEAF_SIZE;
        let end = (start + nexus_storage::LEAF_SIZE).min(chunk.data.len());
        out.push(LeafAnswer {
            leaf: *leaf,
            data: chunk.data.get(start..end)?.to_vec(),
            proof,
        });
    }
    Some(out)
}

/// Answers every open challenge addressed to this node's account, after each new block.
pub(crate) async fn challenge_loop(node: Arc<Node>) {
    let mut blocks = node.new_block.subscribe();
    let mut answered: HashSet<(BlobId, u16, Epoch)> = HashSet::new();
    let me = node.account.public();
    while blocks.changed().await.is_ok() {
        let Some(tip) = node.store.tip() else {
            continue;
        };
        let open: Vec<_> = tip
            .ledger
            .challenges_due(&me)
            .into_iter()
            .filter(|c| !answered.contains(&(c.shard.blob, c.shard.index, c.epoch)))
            .collect();
        for due in open {
            let (blob_id, shard, epoch) = (due.shard.blob, due.shard.index, due.epoch);
            let Some(answers) = answers(&node, due.shard.shard, &due.leaves).await else {
                tracing::warn!(blob = %blob_id, shard, "cannot answer a challenge: the shard is not held here");
                continue;
            };
            answered.insert((blob_id, shard, epoch));
            let node = node.clone();
            tokio::spawn(async move {
                let kind = TxKind::ChallengeResponse {
                    blob_id,
                    shard,
                    epoch,
                    answers,
                };
                match submit(&node, kind, ANSWER_DEADLINE).await {
                    Ok(_) => tracing::info!(blob = %blob_id, shard, %epoch, "challenge answered"),
                    Err(e) => {
                        tracing::warn!(blob = %blob_id, shard, "challenge answer failed: {e}")
                    }
                }
            });
        }
    }
}

/// As orchestrator, rebuilds every shard the ledger flags for repair (moved to a new
/// provider) that this node does not hold yet, after each block. Driven by the ledger, so a
/// restart resumes unfinished repairs; failures back off per shard.
pub(crate) async fn repair_loop(node: Arc<Node>) {
    let mut blocks = node.new_block.subscribe();
    let mut backoff: HashMap<(BlobId, u16), (Instant, Duration)> = HashMap::new();
    let me = node.account.public();
    loop {
        let wanted: Vec<(BlobId, u16)> = node.store.tip().map_or_else(Vec::new, |tip| {
            tip.ledger
                .repairs_due(&me)
                .into_iter()
                .filter(|d| !matches!(node.store.blob(&d.shard), Ok(Some(r)) if r.complete))
                .map(|d| (d.blob, d.index))
                .collect()
        });
        for (blob_id, shard) in wanted {
            let now = Instant::now();
            if backoff
                .get(&(blob_id, shard))
                .is_some_and(|(at, _)| *at > now)
            {
                continue;
            }
            match repair(&node, blob_id, shard).await {
                Ok(()) => {
                    backoff.remove(&(blob_id, shard));
                    tracing::info!(blob = %blob_id, shard, "shard rebuilt for its new provider");
                }
                Err(e) => {
                    let delay = backoff
                        .get(&(blob_id, shard))
                        .map_or(Duration::from_millis(500), |(_, d)| {
                            (*d * 2).min(Duration::from_secs(30))
                        });
                    backoff.insert((blob_id, shard), (now + delay, delay));
                    tracing::warn!(blob = %blob_id, shard, "repair failed, retrying in {delay:?}: {}", e.reason);
                }
            }
        }
        tokio::select! {
            changed = blocks.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
}

struct RepairError {
    reason: String,
}

async fn repair(node: &Node, blob_id: BlobId, shard: u16) -> Result<(), RepairError> {
    let gone = |reason: &str| RepairError {
        reason: reason.into(),
    };
    let tip = node.store.tip().ok_or_else(|| gone("no chain"))?;
    let blob = tip
        .ledger
        .blob(&blob_id)
        .ok_or_else(|| gone("the blob expired"))?;
    let PolicySpec::Erasure { shard_size, shards } = &blob.policy else {
        return Err(gone("not an erasure blob"));
    };
    let p = tip.ledger.params();
    let layout = ErasureLayout::new(blob.size, p.data_shards, p.parity_shards)
        .map_err(|e| gone(&e.to_string()))?;
    let target = usize::from(shard);
    let others: Vec<BlobId> = shards
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != target)
        .map(|(_, s)| *s)
        .collect();
    let held = gather_shards(node, &others, *shard_size, layout.data_shards()).await;
    if held < layout.data_shards() {
        return Err(RepairError {
            reason: format!(
                "only {held} other shards reachable, {} needed",
                layout.data_shards()
            ),
        });
    }
    let store = node.store.clone();
    let shards = shards.clone();
    tokio::task::spawn_blocking(move || store.rebuild_shard(layout, &shards, target))
        .await
        .map_err(|e| RepairError {
            reason: e.to_string(),
        })?
        .map_err(|e| RepairError {
            reason: e.to_string(),
        })
}
