//! Uploads waiting for their registration. A blob uploaded here (and the erasure shards
//! encoded from it) is *staged* until a final block registers it: it occupies its room
//! on disk but is not served, not counted as stored data, and is collected when its lease
//! ends unregistered — or at once when the upload is refused. A crash between the upload
//! and its registration leaves it staged, so the next collection keeps it if the
//! registration landed after all, and deletes it otherwise.

use serde::{Deserialize, Serialize};

use super::{decode, encode, Store, StoreError};
use crate::blob::BlobId;

/// How a staged blob waits for its registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stage {
    /// Until when (milliseconds since the Unix epoch) it may wait unregistered.
    pub lease_until_ms: u64,
    /// The blob whose registration keeps this one (an erasure shard's source blob);
    /// `None` when it is its own.
    pub kept_by: Option<BlobId>,
}

/// What a collection of staged blobs did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StagedCollection {
    /// Registered meanwhile: now stored blobs.
    pub kept: Vec<BlobId>,
    /// Lease over and not registered: deleted.
    pub discarded: Vec<BlobId>,
}

impl Store {
    /// Every staged blob with its stage.
    fn staged(&self) -> Result<Vec<(BlobId, Stage)>, StoreError> {
        self.ks
            .staged
            .iter()
            .map(|item| {
                let (key, value) = item.into_inner()?;
                let id =
                    BlobId(
                        key.as_ref()
                            .try_into()
                            .map_err(|_| StoreError::CorruptRecord {
                                keyspace: "staged",
                                reason: "key is not a blob id".into(),
                            })?,
                    );
                Ok((id, decode("staged", &value)?))
            })
            .collect()
    }

    /// Whether `id` is staged: uploaded here but not (yet) registered.
    pub fn is_staged(&self, id: &BlobId) -> Result<bool, StoreError> {
        Ok(self.ks.staged.contains_key(id.0)?)
    }

    /// Bytes of staged blobs.
    pub fn staged_bytes(&self) -> Result<u64, StoreError> {
        let mut total = 0u64;
        for (id, _) in self.staged()? {
            total = total.saturating_add(self.blob(&id)?.map_or(0, |r| r.size));
        }
        Ok(total)
    }

    /// `id` and what it keeps, staged or not.
    fn with_dependents(&self, id: &BlobId) -> Result<Vec<BlobId>, StoreError> {
        let mut ids = vec![*id];
        ids.extend(
            self.staged()?
                .into_iter()
                .filter(|(_, s)| s.kept_by == Some(*id))
                .map(|(d, _)| d),
        );
        Ok(ids)
    }

    /// The registration of `id` is final: it and the shards it keeps become stored
    /// blobs, persisted before returning.
    pub fn keep_staged(&self, id: &BlobId) -> Result<(), StoreError> {
        let mut batch = self.db.batch();
        for d in self.with_dependents(id)? {
            batch.remove(&self.ks.staged, d.0);
        }
        batch.commit()?;
        self.persist()
    }

    /// The upload of `id` was refused: it and the shards it keeps are deleted if they
    /// are still staged (a blob registered or kept otherwise is never touched).
    pub fn discard_staged(&self, id: &BlobId) -> Result<(), StoreError> {
        for d in self.with_dependents(id)? {
            if self.is_staged(&d)? {
                self.delete_blob(&d)?;
                self.ks.staged.remove(d.0)?;
            }
        }
        self.persist()
    }

    /// Keeps the staged blobs whose registration (or their keeper's) is now in a final
    /// block, and deletes those whose lease ended at `now_ms` unregistered.
    pub fn collect_staged(&self, now_ms: u64) -> Result<StagedCollection, StoreError> {
        let mut done = StagedCollection::default();
        for (id, stage) in self.staged()? {
            let keeper = stage.kept_by.unwrap_or(id);
            if self.registration(&keeper)?.is_some() {
                self.ks.staged.remove(id.0)?;
                done.kept.push(id);
            } else if now_ms >= stage.lease_until_ms {
                self.delete_blob(&id)?;
                self.ks.staged.remove(id.0)?;
                done.discarded.push(id);
            }
        }
        self.persist()?;
        Ok(done)
    }

    /// Stages `id` in `batch` (written with the blob's record).
    pub(super) fn stage_in(&self, batch: &mut fjall::OwnedWriteBatch, id: &BlobId, stage: Stage) {
        batch.insert(&self.ks.staged, id.0, encode(&stage));
    }
}
