//! The chain: verified blocks by height, the index from blob to registration, and the
//! tip.

use super::{decode, encode, Store, StoreError};
use crate::blob::BlobId;
use crate::block::{
    BlobRegistration, Block, BlockHash, Header, Height, InclusionProof, VerifiedBlock,
};

/// Why a verified block could not be appended.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The block is not the child of the current tip (or not genesis on an empty chain).
    #[error("block {height} does not extend the local tip {tip:?}")]
    NotNext {
        /// Height of the block.
        height: Height,
        /// Local tip height, if any.
        tip: Option<Height>,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn location(height: Height, index: u32) -> [u8; 12] {
    let mut v = [0; 12];
    v[..8].copy_from_slice(&height.0.to_be_bytes());
    v[8..].copy_from_slice(&index.to_be_bytes());
    v
}

impl Store {
    pub(super) fn load_tip(&self) -> Result<(), StoreError> {
        let tip = match self.ks.blocks.last_key_value() {
            Some(item) => {
                let (_, v) = item.into_inner()?;
                Some(decode::<Block>("blocks", &v)?.header)
            }
            None => None,
        };
        *self.shared.tip.write().unwrap_or_else(|p| p.into_inner()) = tip;
        Ok(())
    }

    /// The header of the highest block, if the chain has a genesis.
    pub fn tip(&self) -> Option<Header> {
        self.shared
            .tip
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The block at `height`.
    pub fn block(&self, height: Height) -> Result<Option<Block>, StoreError> {
        self.ks
            .blocks
            .get(height.0.to_be_bytes())?
            .map(|v| decode("blocks", &v))
            .transpose()
    }

    /// Up to `max` consecutive blocks starting at `from`.
    pub fn blocks_from(&self, from: Height, max: usize) -> Result<Vec<Block>, StoreError> {
        self.ks
            .blocks
            .range(from.0.to_be_bytes()..)
            .take(max)
            .map(|item| decode("blocks", &item.into_inner()?.1))
            .collect()
    }

    /// Appends a block that extends the tip (or a genesis to an empty chain) atomically
    /// with its registrations index, persisted before returning.
    pub fn append_block(&self, block: &VerifiedBlock) -> Result<(), AppendError> {
        let _guard = self.shared.append.lock().unwrap_or_else(|p| p.into_inner());
        let tip = self.tip();
        let h = &block.header;
        let extends = match &tip {
            None => h.height == Height(0) && h.parent == BlockHash::ZERO,
            Some(t) => Some(h.height) == t.height.next() && h.parent == t.hash(),
        };
        if !extends {
            return Err(AppendError::NotNext {
                height: h.height,
                tip: tip.map(|t| t.height),
            });
        }
        let mut batch = self.db.batch();
        batch.insert(&self.ks.blocks, h.height.0.to_be_bytes(), encode(&**block));
        for (i, reg) in block.registrations.iter().enumerate() {
            if self
                .ks
                .registered
                .get(reg.blob_id.0)
                .map_err(StoreError::from)?
                .is_none()
            {
                batch.insert(
                    &self.ks.registered,
                    reg.blob_id.0,
                    location(h.height, i as u32),
                );
            }
        }
        batch.commit().map_err(StoreError::from)?;
        self.persist()?;
        *self.shared.tip.write().unwrap_or_else(|p| p.into_inner()) = Some(h.clone());
        Ok(())
    }

    /// Where `id` was first registered: block height, index in the block, registration.
    pub fn registration(
        &self,
        id: &BlobId,
    ) -> Result<Option<(Height, u32, BlobRegistration)>, StoreError> {
        let Some(loc) = self.ks.registered.get(id.0)? else {
            return Ok(None);
        };
        let corrupt = || StoreError::CorruptRecord {
            keyspace: "registered",
            reason: "bad location".into(),
        };
        let height = Height(u64::from_be_bytes(
            loc.get(..8)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(corrupt)?,
        ));
        let index = u32::from_be_bytes(
            loc.get(8..12)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(corrupt)?,
        );
        let block = self.block(height)?.ok_or_else(corrupt)?;
        let reg = *block
            .registrations
            .get(index as usize)
            .ok_or_else(corrupt)?;
        Ok(Some((height, index, reg)))
    }

    /// The inclusion proof of `id`'s registration.
    pub fn inclusion_proof(&self, id: &BlobId) -> Result<Option<InclusionProof>, StoreError> {
        let Some((height, index, _)) = self.registration(id)? else {
            return Ok(None);
        };
        Ok(self
            .block(height)?
            .and_then(|block| block.inclusion_proof(index)))
    }

    /// Registered blobs this store does not hold whole yet, oldest first.
    pub fn unreplicated(&self) -> Result<Vec<BlobRegistration>, StoreError> {
        let mut out = Vec::new();
        for item in self.ks.registered.iter() {
            let key = item.key()?;
            let id = BlobId(
                key.as_ref()
                    .try_into()
                    .map_err(|_| StoreError::CorruptRecord {
                        keyspace: "registered",
                        reason: "key is not a blob id".into(),
                    })?,
            );
            if self.blob(&id)?.is_some_and(|r| r.complete) {
                continue;
            }
            if let Some((height, _, reg)) = self.registration(&id)? {
                out.push((height, reg));
            }
        }
        out.sort_by_key(|(h, _)| *h);
        Ok(out.into_iter().map(|(_, r)| r).collect())
    }
}
