//! The `erasure` policy against the store: a stored blob is encoded into shards that are
//! stored as blobs of their own (identified by their BlobIds), and a blob is decoded,
//! stripe by stripe, from any k shards held whole. Both stream: memory holds one stripe and
//! one chunk per shard.

use super::{ReadChunkError, Stage, Store, StoreError};
use crate::blob::{BlobId, BlobLayout, ChunkIndex, CHUNK_SIZE};
use crate::erasure::{EncodeError, ErasureError, ErasureLayout, ShardDecoder, ShardEncoder};

/// Why a blob could not be encoded or decoded from the store.
#[derive(Debug, thiserror::Error)]
pub enum ShardStoreError {
    /// The code failed (parameters, too few shards...).
    #[error(transparent)]
    Erasure(#[from] ErasureError),
    /// A chunk could not be read (missing, corrupt...).
    #[error(transparent)]
    Read(#[from] ReadChunkError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The shards produced are not the ones expected.
    #[error("shard {index} encodes to {found}, expected {expected}")]
    ShardMismatch {
        /// Shard index.
        index: usize,
        /// Expected id.
        expected: BlobId,
        /// Computed id.
        found: BlobId,
    },
    /// The sink refused the decoded bytes (the reader went away).
    #[error("decoded bytes not accepted: {0}")]
    Sink(String),
}

/// Reads byte ranges of a stored blob, keeping the last chunk read.
struct RangeReader<'a> {
    store: &'a Store,
    id: BlobId,
    cached: Option<(u32, Vec<u8>)>,
}

impl RangeReader<'_> {
    fn read(&mut self, offset: u64, len: usize, out: &mut Vec<u8>) -> Result<(), ReadChunkError> {
        let (mut at, end) = (offset, offset + len as u64);
        while at < end {
            let index = (at / CHUNK_SIZE as u64) as u32;
            if self.cached.as_ref().map(|(i, _)| *i) != Some(index) {
                let chunk = self.store.read_chunk(&self.id, ChunkIndex(index))?;
                self.cached = Some((index, chunk.data));
            }
            let data = self
                .cached
                .as_ref()
                .map(|(_, d)| d.as_slice())
                .unwrap_or_default();
            let start = (at - u64::from(index) * CHUNK_SIZE as u64) as usize;
            let take = ((end - at) as usize).min(data.len().saturating_sub(start));
            if take == 0 {
                return Err(ReadChunkError::Missing {
                    blob_id: self.id,
                    index: ChunkIndex(index),
                });
            }
            out.extend_from_slice(&data[start..start + take]);
            at += take as u64;
        }
        Ok(())
    }
}

impl Store {
    /// Encodes the stored blob `id` into `layout`'s shards and stores each shard as a blob,
    /// staged with `stage` (kept by `id`'s registration) if given. Returns the shard ids
    /// (data shards, then parity).
    pub fn encode_shards(
        &self,
        id: &BlobId,
        layout: ErasureLayout,
        stage: Option<Stage>,
    ) -> Result<Vec<BlobId>, ShardStoreError> {
        let mut writers = (0..layout.total_shards())
            .map(|_| match stage {
                Some(stage) => self.ingest_staged(Stage {
                    kept_by: Some(*id),
                    ..stage
                }),
                None => self.ingest(),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut encoder = ShardEncoder::new(layout)?;
        let mut sink = |i: usize, piece: &[u8]| writers[i].write(piece);
        let lift = |e: EncodeError<StoreError>| match e {
            EncodeError::Erasure(e) => ShardStoreError::Erasure(e),
            EncodeError::Sink(e) => ShardStoreError::Store(e),
        };
        for index in BlobLayout::new(layout.size())
            .map_err(StoreError::from)?
            .indices()
        {
            let chunk = self.read_chunk(id, index)?;
            encoder.update(&chunk.data, &mut sink).map_err(lift)?;
        }
        let ids = encoder.finish(&mut sink).map_err(lift)?;
        for (index, (writer, expected)) in writers.into_iter().zip(&ids).enumerate() {
            let found = writer.finish()?.blob_id;
            if found != *expected {
                return Err(ShardStoreError::ShardMismatch {
                    index,
                    expected: *expected,
                    found,
                });
            }
        }
        Ok(ids)
    }

    /// Rebuilds shard `index` from at least k other shards held whole here, and stores it.
    pub fn rebuild_shard(
        &self,
        layout: ErasureLayout,
        shards: &[BlobId],
        index: usize,
    ) -> Result<(), ShardStoreError> {
        let expected = *shards
            .get(index)
            .ok_or(ErasureError::NotEnoughShards { have: 0, need: 1 })?;
        let mut encoder = ShardEncoder::new(layout)?;
        let mut writer = self.ingest()?;
        let mut keep = |i: usize, piece: &[u8]| {
            if i == index {
                writer.write(piece)
            } else {
                Ok(())
            }
        };
        let mut failure = None;
        self.decode_shards(layout, shards, &mut |bytes| {
            encoder.update(&bytes, &mut keep).map_err(|e| {
                let m = format!("{e}");
                failure = Some(m.clone());
                m
            })
        })?;
        if let Some(m) = failure {
            return Err(ShardStoreError::Sink(m));
        }
        encoder
            .finish(&mut keep)
            .map_err(|e| ShardStoreError::Sink(e.to_string()))?;
        let found = writer.finish()?.blob_id;
        if found != expected {
            return Err(ShardStoreError::ShardMismatch {
                index,
                expected,
                found,
            });
        }
        Ok(())
    }

    /// Decodes a blob from the shards held whole in this store (at least k of them),
    /// handing the blob's bytes to `sink` stripe by stripe.
    pub fn decode_shards(
        &self,
        layout: ErasureLayout,
        shards: &[BlobId],
        sink: &mut impl FnMut(Vec<u8>) -> Result<(), String>,
    ) -> Result<(), ShardStoreError> {
        let mut readers: Vec<Option<RangeReader<'_>>> = Vec::with_capacity(shards.len());
        let mut have = 0;
        for id in shards {
            let whole = self.blob(id)?.is_some_and(|r| r.complete) && have < layout.data_shards();
            have += usize::from(whole);
            readers.push(whole.then_some(RangeReader {
                store: self,
                id: *id,
                cached: None,
            }));
        }
        if have < layout.data_shards() {
            return Err(ErasureError::NotEnoughShards {
                have,
                need: layout.data_shards(),
            }
            .into());
        }
        let mut decoder = ShardDecoder::new(layout)?;
        let w = layout.width();
        let mut pieces: Vec<Vec<u8>> = vec![Vec::with_capacity(w); shards.len()];
        for stripe in 0..layout.stripes() {
            for (reader, piece) in readers.iter_mut().zip(pieces.iter_mut()) {
                piece.clear();
                if let Some(r) = reader {
                    r.read(stripe * w as u64, w, piece)?;
                }
            }
            let refs: Vec<Option<&[u8]>> = readers
                .iter()
                .zip(&pieces)
                .map(|(r, p)| r.as_ref().map(|_| p.as_slice()))
                .collect();
            sink(decoder.stripe(stripe, &refs)?).map_err(ShardStoreError::Sink)?;
        }
        Ok(())
    }
}
