//! The node's durable state in one fjall database: blobs (chunks and their Merkle proofs),
//! and the chain of blocks that registers them.
//!
//! Keyspaces: `blobs` (BlobId → record), `chunks` (seq‖index → bytes, key-value separated),
//! `proofs` (seq‖index → Merkle path), `uploads` (seq of uploads in progress), `blocks`
//! (height → block), `registered` (BlobId → height‖index), `transactions` (tx id →
//! height‖index), `cells` (height‖row‖column → custody sample), `meta` (counters, the ledger
//! state after the tip, the validator's consensus state), `finality` (height → finality
//! proof), `pending` (block hash → validated, not yet final block). Every write
//! that is acknowledged to a caller is persisted with `PersistMode::SyncData` first.

mod blobs;
mod cells;
mod chain;
mod consensus;
mod expiry;
mod files;
mod salvage;
mod shards;
mod staging;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use fjall::{
    CompressionType, Database, Keyspace, KeyspaceCreateOptions, KvSeparationOptions, PersistMode,
};
use serde::{Deserialize, Serialize};

pub use blobs::{BlobWriter, Ingested, PutChunkError, ReadChunkError, StoredChunk};
pub use chain::{AppendError, Tip};
pub use expiry::Released;
pub use salvage::Salvaged;
pub use shards::ShardStoreError;
pub use staging::{Stage, StagedCollection};

use crate::blob::{BlobId, ChunkError, ChunkIndex};
use files::BlobFiles;

/// A failure of the store itself (as opposed to bad input from a caller or a peer).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The storage engine failed (I/O error, poisoned journal...).
    #[error("storage engine failure: {0}")]
    Engine(#[from] fjall::Error),
    /// Writing would exceed the node's configured capacity.
    #[error("disk quota exceeded: {needed} more bytes needed but only {available} of the {capacity}-byte capacity are free")]
    QuotaExceeded {
        /// Configured capacity in bytes.
        capacity: u64,
        /// Free bytes before the write.
        available: u64,
        /// Bytes the write needs.
        needed: u64,
    },
    /// The disk holding the data dir is (nearly) full: the write would eat into the room
    /// kept for the chain and the ledger.
    #[error("disk full: {needed} more bytes needed but only {free} are free on the data dir's disk, of which {DISK_RESERVE} are kept for the chain and the ledger")]
    DiskFull {
        /// Free bytes on the disk.
        free: u64,
        /// Bytes the write needs.
        needed: u64,
    },
    /// A stored record could not be decoded.
    #[error("corrupt record in keyspace {keyspace}: {reason}")]
    CorruptRecord {
        /// Where.
        keyspace: &'static str,
        /// What failed.
        reason: String,
    },
    /// A blob too large to index (more than `u32::MAX` chunks).
    #[error(transparent)]
    Layout(#[from] ChunkError),
    /// A blob file could not be written or read (the disk failed or is full).
    #[error("blob file: {0}")]
    Files(String),
}

impl StoreError {
    /// Whether the bytes on disk are damaged (a checksum, a framing or a record that does
    /// not decode), as opposed to the engine being busy or the disk failing or full.
    pub fn is_corruption(&self) -> bool {
        match self {
            StoreError::Engine(e) => blobs::is_corruption(e),
            StoreError::CorruptRecord { .. } => true,
            _ => false,
        }
    }

    /// Whether another process holds the store open.
    pub fn is_locked(&self) -> bool {
        matches!(self, StoreError::Engine(fjall::Error::Locked))
    }
}

/// An engine error opening a store that existed, when it says one of the store's own
/// files is missing or cut short (its manifest, a version file): the store is damaged, and
/// `nexus node repair` is the way out, rather than a failure of the engine or the disk.
fn damaged_at_open(e: StoreError, existed: bool) -> StoreError {
    use std::io::ErrorKind;
    let io = match &e {
        StoreError::Engine(fjall::Error::Io(io))
        | StoreError::Engine(fjall::Error::Storage(fjall::LsmError::Io(io))) => Some(io.kind()),
        _ => None,
    };
    match io {
        Some(kind @ (ErrorKind::NotFound | ErrorKind::UnexpectedEof | ErrorKind::InvalidData))
            if existed =>
        {
            StoreError::CorruptRecord {
                keyspace: "manifest",
                reason: format!("a file the store's manifest names is {kind} ({e})"),
            }
        }
        _ => e,
    }
}

/// What the store knows about one blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRecord {
    /// Local key prefix of the blob's chunks.
    seq: u64,
    /// Size in bytes.
    pub size: u64,
    /// True once every chunk and proof is stored and persisted.
    pub complete: bool,
}

/// Counts and sizes for status reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreStats {
    /// Blobs held whole.
    pub blobs_complete: u64,
    /// Blobs still being replicated or repaired.
    pub blobs_partial: u64,
    /// Bytes of stored (registered or replicated) blob content, counted against the
    /// capacity.
    pub used_bytes: u64,
    /// Bytes of uploads waiting for their registration: they take room in the capacity
    /// too, until they are registered or collected.
    pub staged_bytes: u64,
    /// Bytes of uploads still being received (not finished): room they take in the
    /// capacity until they finish or are given up.
    pub receiving_bytes: u64,
    /// The configured capacity, if any.
    pub capacity: Option<u64>,
    /// Bytes the database's files really occupy on disk (allocated blocks, so a
    /// preallocated journal counts for what it holds, not its nominal size).
    pub disk_bytes: u64,
    /// Custody cells of block payloads held (counted by a scan).
    pub custody_cells: u64,
}

#[derive(Clone)]
struct Keyspaces {
    blobs: Keyspace,
    chunks: Keyspace,
    proofs: Keyspace,
    uploads: Keyspace,
    blocks: Keyspace,
    registered: Keyspace,
    transactions: Keyspace,
    cells: Keyspace,
    meta: Keyspace,
    finality: Keyspace,
    pending: Keyspace,
    staged: Keyspace,
}

struct Shared {
    capacity: Option<u64>,
    used: AtomicU64,
    /// Of `used`, the bytes of uploads not finished yet.
    receiving: AtomicU64,
    next_seq: Mutex<u64>,
    tip: RwLock<Option<Tip>>,
    /// Serialises block appends so the tip check and the write are atomic.
    append: Mutex<()>,
}

/// Handle to the store; cheap to clone, safe to share between threads.
#[derive(Clone)]
pub struct Store {
    db: Database,
    ks: Keyspaces,
    files: BlobFiles,
    shared: Arc<Shared>,
    dir: std::path::PathBuf,
}

const NEXT_SEQ_KEY: &[u8] = b"next_seq";
/// Key written by [`Store::probe`].
const PROBE_KEY: &[u8] = b"probe";

/// Bytes of the disk never given to blob content: blocks, the ledger, custody cells and
/// the engine's own files keep growing into it.
pub const DISK_RESERVE: u64 = 16 << 20;
/// Memtable size of the chunks keyspace.
const CHUNK_MEMTABLE_BYTES: u64 = 16 << 20;

fn chunk_key(seq: u64, index: ChunkIndex) -> [u8; 12] {
    let mut k = [0; 12];
    k[..8].copy_from_slice(&seq.to_be_bytes());
    k[8..].copy_from_slice(&index.0.to_be_bytes());
    k
}

fn decode<T: for<'a> Deserialize<'a>>(
    keyspace: &'static str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::CorruptRecord {
        keyspace,
        reason: e.to_string(),
    })
}

/// Bytes allocated on disk to the files under `dir` (what `du` reports); unreadable
/// entries count as nothing.
fn allocated_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(m) if m.is_dir() => allocated_bytes(&entry.path()),
            Ok(m) => m.blocks() * 512,
            Err(_) => 0,
        })
        .sum()
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Encoding our own plain structs into a Vec cannot fail.
    postcard::to_stdvec(value).unwrap_or_default()
}

impl Store {
    /// Opens (or creates) the store in `dir`. `capacity` caps the bytes of blob content
    /// kept. Uploads interrupted by a crash are discarded here, and the chunks of a store
    /// written before blob files moved into them.
    pub fn open(dir: &Path, capacity: Option<u64>) -> Result<Store, StoreError> {
        let existed = dir.join("version").exists();
        let store = Store::open_engine(dir, capacity).map_err(|e| damaged_at_open(e, existed))?;
        store.discard_interrupted_uploads()?;
        store.move_legacy_chunks()?;
        store.count_used()?;
        store.load_tip()?;
        Ok(store)
    }

    /// The database and its keyspaces in `dir`, with nothing read or cleaned yet.
    fn open_engine(dir: &Path, capacity: Option<u64>) -> Result<Store, StoreError> {
        // The smallest journal budget fjall allows (64 MiB, not 512): its files hold every
        // write until flushed, so they are what a full disk runs out of first.
        let db = Database::builder(dir)
            .max_journaling_size(64 << 20)
            .open()?;
        let plain = KeyspaceCreateOptions::default;
        let ks = Keyspaces {
            blobs: db.keyspace("blobs", plain)?,
            // Where blob content was kept before it moved to plain files; read once, at open,
            // to move what an older store holds there.
            chunks: db.keyspace("chunks", || {
                KeyspaceCreateOptions::default()
                    .max_memtable_size(CHUNK_MEMTABLE_BYTES)
                    .with_kv_separation(Some(
                        KvSeparationOptions::default().compression(CompressionType::None),
                    ))
            })?,
            proofs: db.keyspace("proofs", plain)?,
            uploads: db.keyspace("uploads", plain)?,
            blocks: db.keyspace("blocks", plain)?,
            registered: db.keyspace("registered", plain)?,
            transactions: db.keyspace("transactions", plain)?,
            cells: db.keyspace("cells", plain)?,
            meta: db.keyspace("meta", plain)?,
            finality: db.keyspace("finality", plain)?,
            pending: db.keyspace("pending", plain)?,
            staged: db.keyspace("staged", plain)?,
        };
        let next_seq = match ks.meta.get(NEXT_SEQ_KEY)? {
            Some(v) => u64::from_be_bytes(v.as_ref().try_into().map_err(|_| {
                StoreError::CorruptRecord {
                    keyspace: "meta",
                    reason: "next_seq is not 8 bytes".into(),
                }
            })?),
            None => 0,
        };
        let files = BlobFiles::open(dir).map_err(|e| StoreError::Files(e.to_string()))?;
        Ok(Store {
            db,
            ks,
            files,
            dir: dir.to_path_buf(),
            shared: Arc::new(Shared {
                capacity,
                used: AtomicU64::new(0),
                receiving: AtomicU64::new(0),
                next_seq: Mutex::new(next_seq),
                tip: RwLock::new(None),
                append: Mutex::new(()),
            }),
        })
    }

    /// Adds up the sizes of the blobs held, for the capacity.
    fn count_used(&self) -> Result<(), StoreError> {
        let mut used = 0u64;
        for item in self.ks.blobs.iter() {
            let (_, v) = item.into_inner()?;
            used = used.saturating_add(decode::<BlobRecord>("blobs", &v)?.size);
        }
        self.shared.used.store(used, Ordering::SeqCst);
        Ok(())
    }

    /// Whether the store can still write: a tiny write that fails once the engine gave
    /// up (a write that hit a full disk poisons it until the process restarts).
    pub fn probe(&self) -> Result<(), StoreError> {
        self.ks.meta.insert(PROBE_KEY, [])?;
        Ok(())
    }

    /// Forces everything written so far to disk.
    pub fn persist(&self) -> Result<(), StoreError> {
        Ok(self.db.persist(PersistMode::SyncData)?)
    }

    /// Counts and sizes for status reports.
    pub fn stats(&self) -> Result<StoreStats, StoreError> {
        let staged_bytes = self.staged_bytes()?;
        let (mut complete, mut partial) = (0, 0);
        for item in self.ks.blobs.iter() {
            let (_, v) = item.into_inner()?;
            if decode::<BlobRecord>("blobs", &v)?.complete {
                complete += 1;
            } else {
                partial += 1;
            }
        }
        let receiving_bytes = self.shared.receiving.load(Ordering::SeqCst);
        Ok(StoreStats {
            blobs_complete: complete,
            blobs_partial: partial,
            used_bytes: self
                .shared
                .used
                .load(Ordering::SeqCst)
                .saturating_sub(staged_bytes)
                .saturating_sub(receiving_bytes),
            staged_bytes,
            receiving_bytes,
            capacity: self.shared.capacity,
            disk_bytes: allocated_bytes(&self.dir),
            custody_cells: self.ks.cells.len()? as u64,
        })
    }

    /// Bytes free on the disk holding the store (for unprivileged users), if the system
    /// says.
    pub fn disk_free(&self) -> Option<u64> {
        let s = nix::sys::statvfs::statvfs(&self.dir).ok()?;
        Some(s.blocks_available().saturating_mul(s.fragment_size()))
    }

    /// Fails with `DiskFull` unless `bytes` more (written once, in a blob file) leave
    /// [`DISK_RESERVE`] free on the disk.
    fn check_disk(&self, bytes: u64) -> Result<(), StoreError> {
        let Some(free) = self.disk_free() else {
            return Ok(());
        };
        if bytes.saturating_add(DISK_RESERVE) > free {
            return Err(StoreError::DiskFull {
                free,
                needed: bytes,
            });
        }
        Ok(())
    }

    /// Bytes the store could still take now: under its capacity and on its disk above the
    /// reserve. `None` when neither bounds it.
    pub fn room(&self) -> Option<u64> {
        let under_capacity = self
            .shared
            .capacity
            .map(|c| c.saturating_sub(self.shared.used.load(Ordering::SeqCst)));
        let on_disk = self
            .disk_free()
            .map(|free| free.saturating_sub(DISK_RESERVE));
        match (under_capacity, on_disk) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Fails with `QuotaExceeded` if `bytes` more would not fit in the capacity, or with
    /// `DiskFull` if not on the disk (a cheap early check; writes still reserve as they go).
    pub fn check_room(&self, bytes: u64) -> Result<(), StoreError> {
        self.check_disk(bytes)?;
        let Some(capacity) = self.shared.capacity else {
            return Ok(());
        };
        let used = self.shared.used.load(Ordering::SeqCst);
        let available = capacity.saturating_sub(used);
        if bytes > available {
            return Err(StoreError::QuotaExceeded {
                capacity,
                available,
                needed: bytes,
            });
        }
        Ok(())
    }

    /// Reserves `bytes` against the capacity, or fails with `QuotaExceeded` (or with
    /// `DiskFull` when the disk itself has no room left for them).
    fn reserve(&self, bytes: u64) -> Result<(), StoreError> {
        self.check_disk(bytes)?;
        let used = &self.shared.used;
        let Some(capacity) = self.shared.capacity else {
            used.fetch_add(bytes, Ordering::SeqCst);
            return Ok(());
        };
        used.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |u| {
            u.checked_add(bytes).filter(|total| *total <= capacity)
        })
        .map(|_| ())
        .map_err(|u| StoreError::QuotaExceeded {
            capacity,
            available: capacity.saturating_sub(u),
            needed: bytes,
        })
    }

    /// Counts `bytes` more (or, `received` false, fewer) of unfinished uploads.
    fn receiving(&self, bytes: u64, received: bool) {
        let counter = &self.shared.receiving;
        let _ = counter.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
            Some(if received {
                n.saturating_add(bytes)
            } else {
                n.saturating_sub(bytes)
            })
        });
    }

    fn release(&self, bytes: u64) {
        let _ = self
            .shared
            .used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |u| {
                Some(u.saturating_sub(bytes))
            });
    }

    /// Allocates a fresh local key prefix, persisting the counter in `batch`.
    fn allocate_seq(&self, batch: &mut fjall::OwnedWriteBatch) -> u64 {
        let mut next = self
            .shared
            .next_seq
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let seq = *next;
        *next += 1;
        batch.insert(&self.ks.meta, NEXT_SEQ_KEY, next.to_be_bytes().to_vec());
        seq
    }

    /// Removes every proof stored under `seq`, then its blob file (whose room comes back
    /// at once).
    fn delete_seq(&self, seq: u64) -> Result<(), StoreError> {
        let prefix = seq.to_be_bytes();
        let mut batch = self.db.batch();
        for item in self.ks.proofs.prefix(prefix) {
            batch.remove(&self.ks.proofs, item.key()?);
        }
        batch.commit()?;
        self.files
            .delete(seq)
            .map_err(|e| StoreError::Files(e.to_string()))
    }

    /// Moves the chunks an older store kept in the database into blob files, each copy's
    /// file synced before its chunks leave the database.
    fn move_legacy_chunks(&self) -> Result<(), StoreError> {
        let mut moved: Vec<([u8; 12], u64)> = Vec::new();
        for item in self.ks.chunks.iter() {
            let (key, value) = item.into_inner()?;
            let Ok(key) = <[u8; 12]>::try_from(key.as_ref()) else {
                continue;
            };
            let seq = u64::from_be_bytes(key[..8].try_into().unwrap_or_default());
            let index = ChunkIndex(u32::from_be_bytes(key[8..].try_into().unwrap_or_default()));
            self.files
                .write_chunk(seq, index, &value)
                .map_err(|e| StoreError::Files(e.to_string()))?;
            moved.push((key, seq));
        }
        if moved.is_empty() {
            return Ok(());
        }
        let mut seqs: Vec<u64> = moved.iter().map(|(_, s)| *s).collect();
        seqs.dedup();
        for seq in seqs {
            self.files
                .sync(seq)
                .map_err(|e| StoreError::Files(e.to_string()))?;
        }
        let mut batch = self.db.batch();
        for (key, _) in &moved {
            batch.remove(&self.ks.chunks, *key);
        }
        batch.commit()?;
        self.persist()
    }

    fn discard_interrupted_uploads(&self) -> Result<(), StoreError> {
        let seqs: Vec<_> = self
            .ks
            .uploads
            .iter()
            .map(|item| item.key())
            .collect::<Result<_, _>>()?;
        for key in seqs {
            let seq = u64::from_be_bytes(key.as_ref().try_into().map_err(|_| {
                StoreError::CorruptRecord {
                    keyspace: "uploads",
                    reason: "key is not 8 bytes".into(),
                }
            })?);
            self.delete_seq(seq)?;
            self.ks.uploads.remove(key)?;
        }
        self.persist()
    }

    /// The record of `id`, if the store has (part of) it.
    pub fn blob(&self, id: &BlobId) -> Result<Option<BlobRecord>, StoreError> {
        self.ks
            .blobs
            .get(id.0)?
            .map(|v| decode("blobs", &v))
            .transpose()
    }
}

#[cfg(test)]
mod tests;
