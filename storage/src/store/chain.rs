//! The chain on disk: verified blocks by height, the ledger state after the tip, and the
//! indexes from blob and from transaction to where they were included.

use std::sync::Arc;

use super::{decode, encode, Store, StoreError};
use crate::blob::BlobId;
use crate::block::{
    BlobProof, BlobRegistration, Block, BlockHash, CertifiedBlock, Header, Height, InclusionProof,
};
use crate::chain::Transition;
use crate::ledger::{LedgerState, PolicySpec};
use crate::merkle::Digest;
use nexus_consensus::FinalityProof;

const LEDGER_KEY: &[u8] = b"ledger";

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

/// The tip of the local chain and the ledger state after it.
#[derive(Debug, Clone)]
pub struct Tip {
    /// Header of the highest block.
    pub header: Header,
    /// Ledger state after it.
    pub ledger: Arc<LedgerState>,
}

fn location(height: Height, index: u32) -> [u8; 12] {
    let mut v = [0; 12];
    v[..8].copy_from_slice(&height.0.to_be_bytes());
    v[8..].copy_from_slice(&index.to_be_bytes());
    v
}

fn parse_location(bytes: &[u8], keyspace: &'static str) -> Result<(Height, u32), StoreError> {
    let corrupt = || StoreError::CorruptRecord {
        keyspace,
        reason: "bad location".into(),
    };
    let height = u64::from_be_bytes(
        bytes
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(corrupt)?,
    );
    let index = u32::from_be_bytes(
        bytes
            .get(8..12)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(corrupt)?,
    );
    Ok((Height(height), index))
}

impl Store {
    pub(super) fn load_tip(&self) -> Result<(), StoreError> {
        let header = match self.ks.blocks.last_key_value() {
            Some(item) => Some(decode::<Block>("blocks", &item.into_inner()?.1)?.header),
            None => None,
        };
        let tip = match header {
            Some(header) => {
                let ledger = self
                    .ks
                    .meta
                    .get(LEDGER_KEY)?
                    .ok_or(StoreError::CorruptRecord {
                        keyspace: "meta",
                        reason: "blocks without a ledger state".into(),
                    })?;
                Some(Tip {
                    header,
                    ledger: Arc::new(decode("meta", &ledger)?),
                })
            }
            None => None,
        };
        *self.shared.tip.write().unwrap_or_else(|p| p.into_inner()) = tip;
        Ok(())
    }

    /// The highest block's header and the ledger after it, if the chain has a genesis.
    pub fn tip(&self) -> Option<Tip> {
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

    /// Up to `max` consecutive final blocks starting at `from`, each with its finality
    /// proof (none for genesis).
    pub fn blocks_from(&self, from: Height, max: usize) -> Result<Vec<CertifiedBlock>, StoreError> {
        self.ks
            .blocks
            .range(from.0.to_be_bytes()..)
            .take(max)
            .map(|item| {
                let (key, value) = item.into_inner()?;
                let block: Block = decode("blocks", &value)?;
                let proof = self
                    .ks
                    .finality
                    .get(key)?
                    .map(|v| decode("finality", &v))
                    .transpose()?;
                Ok(CertifiedBlock { block, proof })
            })
            .collect()
    }

    /// The finality proof of the block at `height` (none for genesis or unknown heights).
    pub fn finality_proof(&self, height: Height) -> Result<Option<FinalityProof>, StoreError> {
        self.ks
            .finality
            .get(height.0.to_be_bytes())?
            .map(|v| decode("finality", &v))
            .transpose()
    }

    /// Appends a verified, final block that extends the tip (or a genesis to an empty
    /// chain) with the proof of its finality, atomically with its indexes and the ledger
    /// state after it, persisted before returning.
    pub fn append_block(
        &self,
        step: &Transition,
        proof: Option<&FinalityProof>,
    ) -> Result<(), AppendError> {
        let _guard = self.shared.append.lock().unwrap_or_else(|p| p.into_inner());
        let tip = self.tip();
        let h = &step.block.header;
        let extends = match &tip {
            None => h.height == Height(0) && h.parent == BlockHash::ZERO,
            Some(t) => Some(h.height) == t.header.height.next() && h.parent == t.header.hash(),
        };
        if !extends {
            return Err(AppendError::NotNext {
                height: h.height,
                tip: tip.map(|t| t.header.height),
            });
        }
        let mut batch = self.db.batch();
        batch.insert(
            &self.ks.blocks,
            h.height.0.to_be_bytes(),
            encode(&*step.block),
        );
        for (i, tx) in step.block.transactions.iter().enumerate() {
            batch.insert(
                &self.ks.transactions,
                tx.id().0,
                location(h.height, i as u32),
            );
        }
        for (i, reg) in step.block.registrations() {
            batch.insert(&self.ks.registered, reg.blob_id.0, location(h.height, i));
        }
        if let Some(proof) = proof {
            batch.insert(&self.ks.finality, h.height.0.to_be_bytes(), encode(proof));
        }
        batch.remove(&self.ks.pending, h.hash().0);
        batch.insert(&self.ks.meta, LEDGER_KEY, encode(&step.ledger));
        batch.commit().map_err(StoreError::from)?;
        self.persist()?;
        let new_tip = Tip {
            header: h.clone(),
            ledger: Arc::new(step.ledger.clone()),
        };
        *self.shared.tip.write().unwrap_or_else(|p| p.into_inner()) = Some(new_tip);
        Ok(())
    }

    /// Where transaction `id` was included: (height, index in the block).
    pub fn transaction_location(&self, id: &Digest) -> Result<Option<(Height, u32)>, StoreError> {
        self.ks
            .transactions
            .get(id.0)?
            .map(|v| parse_location(&v, "transactions"))
            .transpose()
    }

    /// Where `id` was registered: block height, transaction index, registration.
    pub fn registration(
        &self,
        id: &BlobId,
    ) -> Result<Option<(Height, u32, BlobRegistration)>, StoreError> {
        let Some(loc) = self.ks.registered.get(id.0)? else {
            return Ok(None);
        };
        let (height, index) = parse_location(&loc, "registered")?;
        let corrupt = || StoreError::CorruptRecord {
            keyspace: "registered",
            reason: "dangling location".into(),
        };
        let block = self.block(height)?.ok_or_else(corrupt)?;
        let tx = block.transactions.get(index as usize).ok_or_else(corrupt)?;
        let reg = BlobRegistration::of(tx).ok_or_else(corrupt)?;
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

    /// The registration of `id` with the proofs that make it checkable offline: inclusion
    /// in its block, the block's finality, and the chain's genesis and spec.
    pub fn blob_proof(&self, id: &BlobId) -> Result<Option<BlobProof>, StoreError> {
        let Some(inclusion) = self.inclusion_proof(id)? else {
            return Ok(None);
        };
        let corrupt = |reason: &str| StoreError::CorruptRecord {
            keyspace: "finality",
            reason: reason.into(),
        };
        let finality = self
            .finality_proof(inclusion.header.height)?
            .ok_or_else(|| corrupt("a final block without its proof"))?;
        let genesis = self
            .block(Height(0))?
            .ok_or_else(|| corrupt("blocks without a genesis"))?;
        let spec = genesis
            .genesis
            .ok_or_else(|| corrupt("a genesis block without its chain genesis"))?
            .spec;
        Ok(Some(BlobProof {
            inclusion,
            finality,
            genesis: genesis.header,
            spec,
        }))
    }

    /// Replicated blobs the ledger stores and this store does not hold whole yet, oldest
    /// first.
    pub fn unreplicated(&self) -> Result<Vec<BlobRegistration>, StoreError> {
        let Some(tip) = self.tip() else {
            return Ok(Vec::new());
        };
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
            if tip.ledger.blob(&id).is_none() || self.blob(&id)?.is_some_and(|r| r.complete) {
                continue;
            }
            if let Some((height, _, reg)) = self.registration(&id)? {
                if reg.policy == PolicySpec::Replicated {
                    out.push((height, reg));
                }
            }
        }
        out.sort_by_key(|(h, _)| *h);
        Ok(out.into_iter().map(|(_, r)| r).collect())
    }
}
