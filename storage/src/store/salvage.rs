//! Salvage from a store that no longer opens: its blob files are read back one by one,
//! hashed again and written into a fresh store as staged blobs. Nothing of the old store is
//! trusted, not even its database (which need not open at all): a file's identity is what
//! its bytes hash to, and the fresh store keeps it only if a final block registers that id
//! (the staging collector's rule), so a damaged or partial copy is never served — it is
//! collected when its lease ends, and the blob comes from peers as any missing one does.

use std::io::Read as _;
use std::path::Path;

use super::files::BlobFiles;
use super::{Store, StoreError};
use crate::blob::{BlobId, CHUNK_SIZE};
use crate::store::Stage;

/// What a salvage recovered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Salvaged {
    /// Blobs written into the fresh store (staged until their registration is seen).
    pub blobs: Vec<BlobId>,
    /// Their bytes.
    pub bytes: u64,
    /// Files left out: unreadable, or their blob held already.
    pub skipped: u64,
}

impl Store {
    /// Copies every blob file of the store set aside in `old` into this store, each
    /// staged under `stage` under the id its bytes hash to. An unreadable file is left
    /// out; an error of this store (full disk, quota) stops the salvage.
    pub fn salvage_from(&self, old: &Path, stage: Stage) -> Result<Salvaged, StoreError> {
        let mut done = Salvaged::default();
        let Some(files) = BlobFiles::existing(old) else {
            return Ok(done);
        };
        for (_, path) in files.all() {
            let Ok(mut file) = std::fs::File::open(&path) else {
                done.skipped += 1;
                continue;
            };
            if file.metadata().is_ok_and(|m| m.len() == 0) {
                continue;
            }
            let mut writer = self.ingest_staged(stage)?;
            let mut buf = vec![0u8; CHUNK_SIZE];
            let whole = loop {
                match file.read(&mut buf) {
                    Ok(0) => break true,
                    Ok(n) => writer.write(&buf[..n])?,
                    Err(_) => break false,
                }
            };
            if !whole {
                done.skipped += 1;
                continue;
            }
            let ingested = writer.finish()?;
            if ingested.newly_stored {
                done.blobs.push(ingested.blob_id);
                done.bytes += ingested.size;
            } else {
                done.skipped += 1;
            }
        }
        Ok(done)
    }
}
