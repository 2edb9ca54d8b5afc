//! What the ledger asks of one account: as a provider, which shards it must hold and which
//! challenged leaves it must prove; as an orchestrator, which moved shards it must rebuild
//! for their new holder. Nodes act on these; the answers are checked by the ledger itself.

use super::LedgerState;
use crate::blob::BlobId;
use crate::keys::PublicKey;
use crate::ledger::types::{Epoch, PolicySpec, StoredBlob};

/// One shard of an erasure blob: which blob, its index there, the shard's own blob id
/// and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardDuty {
    /// The erasure blob.
    pub blob: BlobId,
    /// The shard's index in the blob's shards.
    pub index: u16,
    /// The shard's own content id (what is stored and fetched).
    pub shard: BlobId,
    /// The shard's size in bytes.
    pub size: u64,
}

/// An open challenge a provider must answer by proving `leaves` of its shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeDuty {
    /// The challenged shard.
    pub shard: ShardDuty,
    /// The epoch that issued the challenge.
    pub epoch: Epoch,
    /// Leaves of the shard to prove.
    pub leaves: Vec<u64>,
}

/// The shards of `blob` (id `id`) whose index passes `keep`.
fn shards_of<'a>(
    id: &'a BlobId,
    blob: &'a StoredBlob,
    keep: impl Fn(usize) -> bool + 'a,
) -> impl Iterator<Item = ShardDuty> + 'a {
    let (size, shards) = match &blob.policy {
        PolicySpec::Erasure { shard_size, shards } => (*shard_size, shards.as_slice()),
        PolicySpec::Replicated | PolicySpec::Das { .. } => (0, &[][..]),
    };
    shards
        .iter()
        .enumerate()
        .filter(move |(i, _)| keep(*i))
        .filter_map(move |(i, shard)| {
            Some(ShardDuty {
                blob: *id,
                index: u16::try_from(i).ok()?,
                shard: *shard,
                size,
            })
        })
}

impl LedgerState {
    /// Every shard the ledger places on `provider`: what it must hold and serve.
    pub fn shards_placed_at(&self, provider: &PublicKey) -> Vec<ShardDuty> {
        self.blobs()
            .flat_map(|(id, blob)| {
                shards_of(id, blob, move |i| {
                    blob.placement.get(i) == Some(&Some(*provider))
                })
            })
            .collect()
    }

    /// Shards of the blobs `orchestrator` is responsible for that the ledger moved to a new
    /// holder and that must be rebuilt for it (flagged until the new holder passes a
    /// challenge on them).
    pub fn repairs_due(&self, orchestrator: &PublicKey) -> Vec<ShardDuty> {
        self.blobs()
            .filter(|(_, blob)| blob.orchestrator == Some(*orchestrator))
            .flat_map(|(id, blob)| shards_of(id, blob, move |i| blob.repair.get(i) == Some(&true)))
            .collect()
    }

    /// Open challenges `provider` must answer, with the shard each is about.
    pub fn challenges_due(&self, provider: &PublicKey) -> Vec<ChallengeDuty> {
        self.challenges_for(provider)
            .filter_map(|(blob_id, index, epoch, challenge)| {
                let blob = self.blob(&blob_id)?;
                let shard = shards_of(&blob_id, blob, |i| i == usize::from(index)).next()?;
                Some(ChallengeDuty {
                    shard,
                    epoch,
                    leaves: challenge.leaves.clone(),
                })
            })
            .collect()
    }
}
