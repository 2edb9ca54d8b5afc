//! Blob content: streaming ingest of new blobs, verified chunk reads, and chunk-by-chunk
//! replicas fetched from peers. The bytes live in blob files ([`super::files`]); the
//! database keeps each copy's record and each chunk's proof, whose presence says the
//! chunk is stored.

use super::{chunk_key, encode, BlobRecord, Stage, Store, StoreError};
use crate::blob::{BlobId, BlobIdBuilder, BlobLayout, ChunkError, ChunkIndex};
use crate::block::BlobRegistration;
use crate::merkle::MerkleProof;

/// Proofs written per batch when an upload completes.
const PROOF_BATCH: usize = 1024;

/// A chunk read from disk and checked against its BlobId.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredChunk {
    /// The chunk's bytes.
    pub data: Vec<u8>,
    /// Its Merkle path to the blob's root.
    pub proof: MerkleProof,
}

/// Why a chunk could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadChunkError {
    /// The store has no record of this blob.
    #[error("unknown blob {0}")]
    UnknownBlob(BlobId),
    /// The blob is known but this chunk is not (yet) stored.
    #[error("chunk {index} of blob {blob_id} is not stored here")]
    Missing {
        /// The blob.
        blob_id: BlobId,
        /// The chunk.
        index: ChunkIndex,
    },
    /// The chunk on disk fails its Merkle check or the engine's checksum: it must be
    /// discarded and fetched again.
    #[error("corrupted data found on disk: chunk {index} of blob {blob_id}: {reason}")]
    Corrupt {
        /// The blob.
        blob_id: BlobId,
        /// The chunk.
        index: ChunkIndex,
        /// What failed.
        reason: String,
    },
    /// The index is outside the blob.
    #[error(transparent)]
    OutOfRange(ChunkError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a chunk received from a peer was not stored.
#[derive(Debug, thiserror::Error)]
pub enum PutChunkError {
    /// No replica of this blob was started.
    #[error("unknown blob {0}")]
    UnknownBlob(BlobId),
    /// The chunk does not belong to the blob: the peer that sent it is at fault.
    #[error("invalid chunk from peer: {0}")]
    Invalid(#[from] ChunkError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// True for engine errors that mean the bytes on disk are damaged (checksums, framing).
pub(super) fn is_corruption(e: &fjall::Error) -> bool {
    use fjall::LsmError;
    matches!(
        e,
        fjall::Error::JournalRecovery(_)
            | fjall::Error::InvalidVersion(_)
            | fjall::Error::Storage(
                LsmError::ChecksumMismatch { .. }
                    | LsmError::Decompress(_)
                    | LsmError::InvalidHeader(_)
                    | LsmError::InvalidTag(_)
                    | LsmError::InvalidTrailer
            )
            | fjall::Error::Decompress(_)
            | fjall::Error::InvalidTag(_)
            | fjall::Error::InvalidTrailer
    )
}

fn files_error(e: std::io::Error) -> StoreError {
    StoreError::Files(e.to_string())
}

fn engine<E: From<StoreError>>(e: fjall::Error) -> E {
    E::from(StoreError::Engine(e))
}

impl Store {
    /// Starts ingesting a new blob whose id will be known at the end.
    pub fn ingest(&self) -> Result<BlobWriter, StoreError> {
        self.ingest_as(None)
    }

    /// Starts ingesting a new blob that, once finished, stays staged (see
    /// [`Store::keep_staged`]) until its registration is final or its lease ends.
    pub fn ingest_staged(&self, stage: Stage) -> Result<BlobWriter, StoreError> {
        self.ingest_as(Some(stage))
    }

    fn ingest_as(&self, stage: Option<Stage>) -> Result<BlobWriter, StoreError> {
        let mut batch = self.db.batch();
        let seq = self.allocate_seq(&mut batch);
        batch.insert(&self.ks.uploads, seq.to_be_bytes(), []);
        batch.commit()?;
        let file = self.files.create(seq).map_err(files_error)?;
        Ok(BlobWriter {
            store: self.clone(),
            seq,
            file,
            builder: BlobIdBuilder::new(),
            next_index: 0,
            finished: false,
            stage,
        })
    }

    /// Reads chunk `index` of `id` and checks it against the BlobId before returning it.
    pub fn read_chunk(
        &self,
        id: &BlobId,
        index: ChunkIndex,
    ) -> Result<StoredChunk, ReadChunkError> {
        let record = self.blob(id)?.ok_or(ReadChunkError::UnknownBlob(*id))?;
        let len = BlobLayout::new(record.size)
            .map_err(StoreError::from)?
            .chunk_len(index)
            .map_err(ReadChunkError::OutOfRange)?;
        let key = chunk_key(record.seq, index);
        let missing = ReadChunkError::Missing {
            blob_id: *id,
            index,
        };
        let corrupt = |reason: String| ReadChunkError::Corrupt {
            blob_id: *id,
            index,
            reason,
        };
        let checked = |e: fjall::Error| match is_corruption(&e) {
            true => corrupt(e.to_string()),
            false => engine(e),
        };
        let Some(proof) = self.ks.proofs.get(key).map_err(checked)? else {
            return Err(missing);
        };
        let proof: MerkleProof =
            postcard::from_bytes(&proof).map_err(|e| corrupt(format!("unreadable proof: {e}")))?;
        // A proof without its bytes: they were lost (a crash before they were synced).
        let data = self
            .files
            .read_chunk(record.seq, index, len)
            .map_err(|e| corrupt(e.to_string()))?
            .ok_or_else(|| corrupt("its bytes are missing from the blob file".into()))?;
        id.verify_chunk(record.size, index, &data, &proof)
            .map_err(|e| corrupt(e.to_string()))?;
        Ok(StoredChunk { data, proof })
    }

    /// Starts (or resumes) a replica of a registered blob, reserving its size against the
    /// capacity. Returns the record.
    pub fn begin_replica(&self, reg: &BlobRegistration) -> Result<BlobRecord, StoreError> {
        if let Some(record) = self.blob(&reg.blob_id)? {
            return Ok(record);
        }
        BlobLayout::new(reg.size)?;
        self.reserve(reg.size)?;
        let mut batch = self.db.batch();
        let record = BlobRecord {
            seq: self.allocate_seq(&mut batch),
            size: reg.size,
            complete: false,
        };
        batch.insert(&self.ks.blobs, reg.blob_id.0, encode(&record));
        if let Err(e) = batch.commit() {
            self.release(reg.size);
            return Err(e.into());
        }
        Ok(record)
    }

    /// Chunks of `id` not stored yet (all of them for an unknown blob's layout is the
    /// caller's business: this needs a record).
    pub fn missing_chunks(&self, id: &BlobId) -> Result<Vec<ChunkIndex>, ReadChunkError> {
        let record = self.blob(id)?.ok_or(ReadChunkError::UnknownBlob(*id))?;
        let layout = BlobLayout::new(record.size).map_err(StoreError::from)?;
        let mut present = vec![false; layout.chunk_count() as usize];
        for item in self.ks.proofs.prefix(record.seq.to_be_bytes()) {
            let key = item.key().map_err(engine::<ReadChunkError>)?;
            if let Some(i) = key.get(8..12).and_then(|b| <[u8; 4]>::try_from(b).ok()) {
                if let Some(slot) = present.get_mut(u32::from_be_bytes(i) as usize) {
                    *slot = true;
                }
            }
        }
        Ok(layout
            .indices()
            .filter(|i| !present[i.0 as usize])
            .collect())
    }

    /// Verifies a chunk received from a peer and stores it with its proof.
    pub fn put_chunk(
        &self,
        id: &BlobId,
        index: ChunkIndex,
        data: &[u8],
        proof: &MerkleProof,
    ) -> Result<(), PutChunkError> {
        let record = self.blob(id)?.ok_or(PutChunkError::UnknownBlob(*id))?;
        id.verify_chunk(record.size, index, data, proof)?;
        // The bytes first: a proof is stored only once its chunk is.
        self.files
            .write_chunk(record.seq, index, data)
            .map_err(|e| PutChunkError::Store(files_error(e)))?;
        self.ks
            .proofs
            .insert(chunk_key(record.seq, index), encode(proof))
            .map_err(engine::<PutChunkError>)
    }

    /// Marks a replica complete once every chunk is stored, persisting first. Returns
    /// whether the blob is now complete.
    pub fn complete_replica(&self, id: &BlobId) -> Result<bool, ReadChunkError> {
        let record = self.blob(id)?.ok_or(ReadChunkError::UnknownBlob(*id))?;
        if record.complete {
            return Ok(true);
        }
        if !self.missing_chunks(id)?.is_empty() {
            return Ok(false);
        }
        self.files.sync(record.seq).map_err(files_error)?;
        self.persist()?;
        let done = BlobRecord {
            complete: true,
            ..record
        };
        self.ks
            .blobs
            .insert(id.0, encode(&done))
            .map_err(engine::<ReadChunkError>)?;
        self.persist()?;
        Ok(true)
    }

    /// Drops a chunk found corrupt on disk (its proof: the chunk counts as missing, and
    /// its bytes are written over when it comes again) and marks its blob incomplete, so
    /// that it is fetched again from a peer.
    pub fn discard_chunk(&self, id: &BlobId, index: ChunkIndex) -> Result<(), StoreError> {
        let Some(record) = self.blob(id)? else {
            return Ok(());
        };
        let key = chunk_key(record.seq, index);
        let mut batch = self.db.batch();
        batch.remove(&self.ks.proofs, key);
        let partial = BlobRecord {
            complete: false,
            ..record
        };
        batch.insert(&self.ks.blobs, id.0, encode(&partial));
        batch.commit()?;
        self.persist()
    }

    /// Deletes the local copy of a blob (chunks, proofs and record), freeing its quota.
    /// Returns whether there was one.
    pub fn delete_blob(&self, id: &BlobId) -> Result<bool, StoreError> {
        let Some(record) = self.blob(id)? else {
            return Ok(false);
        };
        self.delete_seq(record.seq)?;
        self.ks.blobs.remove(id.0)?;
        self.release(record.size);
        self.persist()?;
        Ok(true)
    }

    /// Overwrites a stored chunk's bytes without any check, to simulate disk corruption.
    #[cfg(test)]
    pub(crate) fn corrupt_chunk_for_test(&self, id: &BlobId, index: ChunkIndex, data: &[u8]) {
        let record = self.blob(id).ok().flatten().expect("blob exists");
        self.files
            .write_chunk(record.seq, index, data)
            .expect("write");
    }
}

/// A blob being ingested. Chunks go to disk as they fill; nothing is visible until
/// [`BlobWriter::finish`] persisted the blob. Dropping an unfinished writer discards it.
pub struct BlobWriter {
    store: Store,
    seq: u64,
    /// Its blob file, written in order.
    file: std::fs::File,
    builder: BlobIdBuilder,
    next_index: u32,
    finished: bool,
    stage: Option<Stage>,
}

/// The outcome of an ingest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ingested {
    /// The blob's id.
    pub blob_id: BlobId,
    /// Its size.
    pub size: u64,
    /// False when the store already held the blob whole (the new copy was dropped).
    pub newly_stored: bool,
}

impl BlobWriter {
    /// Appends bytes to the blob, storing each completed chunk.
    pub fn write(&mut self, data: &[u8]) -> Result<(), StoreError> {
        self.store.reserve(data.len() as u64)?;
        self.store.receiving(data.len() as u64, true);
        for chunk in self.builder.update(data) {
            self.put(&chunk)?;
        }
        Ok(())
    }

    /// Records the finished blob as staged under `stage` rather than the stage it was
    /// started with (an upload that took longer than planned, resumed ones).
    pub fn renew_stage(&mut self, stage: Stage) {
        self.stage = Some(stage);
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.builder.size()
    }

    fn put(&mut self, chunk: &[u8]) -> Result<(), StoreError> {
        super::files::BlobFiles::append(&mut self.file, chunk).map_err(files_error)?;
        self.next_index =
            self.next_index
                .checked_add(1)
                .ok_or(StoreError::Layout(ChunkError::TooLarge(
                    self.builder.size(),
                )))?;
        Ok(())
    }

    /// Completes the blob: stores the last chunk and every proof, records the blob (staged,
    /// if it was ingested so) and persists with `SyncData` before returning.
    pub fn finish(mut self) -> Result<Ingested, StoreError> {
        let builder = std::mem::take(&mut self.builder);
        let size = builder.size();
        // Received whole: from here the bytes are staged or stored (or released below).
        self.store.receiving(size, false);
        let (blob_id, tree, tail) = builder.finish();
        if let Some(tail) = tail {
            self.put(&tail)?;
        }
        // The bytes are durable before the record that makes them visible.
        self.file.sync_data().map_err(files_error)?;
        let store = self.store.clone();
        let existing = store.blob(&blob_id)?;
        if existing.is_some_and(|r| r.complete) {
            // Already held: keep the old copy and drop this one.
            store.release(size);
            self.abort()?;
            self.finished = true;
            return Ok(Ingested {
                blob_id,
                size,
                newly_stored: false,
            });
        }
        // Proofs go in bounded batches (the upload marker still hides them on a crash); the
        // record is written last, in the final batch.
        let mut batch = store.db.batch();
        for i in 0..tree.leaf_count() {
            let proof = tree
                .proof(i)
                .unwrap_or_else(|| unreachable!("index below count"));
            batch.insert(
                &store.ks.proofs,
                chunk_key(self.seq, ChunkIndex(i as u32)),
                encode(&proof),
            );
            if batch.len() >= PROOF_BATCH {
                std::mem::replace(&mut batch, store.db.batch()).commit()?;
            }
        }
        let record = BlobRecord {
            seq: self.seq,
            size,
            complete: true,
        };
        batch.insert(&store.ks.blobs, blob_id.0, encode(&record));
        if let Some(stage) = self.stage {
            store.stage_in(&mut batch, &blob_id, stage);
        }
        batch.remove(&store.ks.uploads, self.seq.to_be_bytes());
        batch.commit()?;
        store.persist()?;
        self.finished = true;
        if let Some(old) = existing {
            // A partial replica is superseded by this complete copy.
            store.release(old.size);
            store.delete_seq(old.seq)?;
        }
        Ok(Ingested {
            blob_id,
            size,
            newly_stored: true,
        })
    }

    /// Gives the writer up without cleaning anything, as a crash would.
    #[cfg(test)]
    pub(crate) fn abandon_for_test(mut self) {
        self.finished = true;
    }

    fn abort(&self) -> Result<(), StoreError> {
        self.store.delete_seq(self.seq)?;
        self.store.ks.uploads.remove(self.seq.to_be_bytes())?;
        Ok(())
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if !self.finished {
            self.store.release(self.builder.size());
            self.store.receiving(self.builder.size(), false);
            // Best effort: whatever is left is discarded at the next open.
            let _ = self.abort();
        }
    }
}
