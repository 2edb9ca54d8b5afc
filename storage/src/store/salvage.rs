//! Salvage from a store that no longer opens: its blob content is read back run by run
//! (chunk 0, 1, 2... of each upload), hashed again and written into a fresh store as
//! staged blobs. Nothing of the old store's records is trusted: a run's identity is what
//! its bytes hash to, and the fresh store keeps it only if a final block registers that
//! id (the staging collector's rule), so a damaged run is never served — it is collected
//! when its lease ends, and the blob comes from peers as any missing one does.

use std::path::Path;

use super::{Store, StoreError};
use crate::blob::{BlobId, ChunkIndex};
use crate::store::{BlobWriter, Stage};

/// What a salvage recovered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Salvaged {
    /// Blobs written into the fresh store (staged until their registration is seen).
    pub blobs: Vec<BlobId>,
    /// Their bytes.
    pub bytes: u64,
    /// Runs left out: a chunk missing or unreadable, or the blob held already.
    pub skipped: u64,
}

/// The upload a chunk belongs to and its place in it, from its key.
fn parse_chunk_key(key: &[u8]) -> Option<(u64, ChunkIndex)> {
    let seq = u64::from_be_bytes(key.get(..8)?.try_into().ok()?);
    let index = u32::from_be_bytes(key.get(8..12)?.try_into().ok()?);
    (key.len() == 12).then_some((seq, ChunkIndex(index)))
}

/// A run being copied: its upload, the next chunk expected and the writer.
struct Run {
    seq: u64,
    next: u32,
    writer: Option<BlobWriter>,
}

impl Store {
    /// Opens the database in `dir` for reading what is left, without the checks and
    /// clean-ups of [`Store::open`] (which may be what fails).
    pub fn open_for_salvage(dir: &Path) -> Result<Store, StoreError> {
        Store::open_engine(dir, None)
    }

    /// Copies every complete-looking run of chunks into `target`, each staged under
    /// `stage` under the id its bytes hash to. A run with a gap or an unreadable chunk is
    /// left out; an error of `target` (full disk, quota) stops the salvage.
    pub fn salvage_into(&self, target: &Store, stage: Stage) -> Result<Salvaged, StoreError> {
        let mut done = Salvaged::default();
        let mut run: Option<Run> = None;
        for item in self.ks.chunks.iter() {
            let Ok((key, value)) = item.into_inner() else {
                // Unreadable: the run it belongs to cannot be trusted whole.
                if let Some(r) = run.as_mut() {
                    if r.writer.take().is_some() {
                        done.skipped += 1;
                    }
                }
                continue;
            };
            let Some((seq, index)) = parse_chunk_key(&key) else {
                continue;
            };
            if run.as_ref().is_none_or(|r| r.seq != seq) {
                if let Some(previous) = run.take() {
                    finish_run(previous, &mut done)?;
                }
                run = Some(Run {
                    seq,
                    next: 0,
                    writer: (index.0 == 0)
                        .then(|| target.ingest_staged(stage))
                        .transpose()?,
                });
                if index.0 != 0 {
                    done.skipped += 1;
                }
            }
            let Some(r) = run.as_mut() else { continue };
            if r.writer.is_some() && index.0 != r.next {
                r.writer = None;
                done.skipped += 1;
            }
            if let Some(writer) = r.writer.as_mut() {
                writer.write(&value)?;
                r.next += 1;
            }
        }
        if let Some(last) = run {
            finish_run(last, &mut done)?;
        }
        Ok(done)
    }
}

/// Finishes a run's blob, if the run was whole.
fn finish_run(run: Run, done: &mut Salvaged) -> Result<(), StoreError> {
    let Some(writer) = run.writer else {
        return Ok(());
    };
    let ingested = writer.finish()?;
    if ingested.newly_stored {
        done.blobs.push(ingested.blob_id);
        done.bytes += ingested.size;
    } else {
        done.skipped += 1;
    }
    Ok(())
}
