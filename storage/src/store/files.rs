//! Blob content on disk: one plain file per blob copy (`blob-data/SEQ.blob`, chunk `i` at
//! byte `i × CHUNK_SIZE`), beside the database that keeps the records and proofs. A copy
//! is written once, at disk speed (no journal in between); deleting it unlinks its file,
//! so the room of a refused, expired or abandoned upload comes back at once.
//!
//! The database says which chunks are present (a chunk's proof is stored only once its
//! bytes are): bytes without a proof are never read, and bytes lost in a crash before they
//! were synced fail their Merkle check when read, are discarded and fetched again.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write as _};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use crate::blob::{ChunkIndex, CHUNK_SIZE};

/// The folder of blob files inside a store's directory.
const FOLDER: &str = "blob-data";

/// The blob files of one store.
#[derive(Debug, Clone)]
pub(super) struct BlobFiles {
    dir: PathBuf,
}

/// The byte offset of chunk `index`.
fn offset(index: ChunkIndex) -> u64 {
    u64::from(index.0) * CHUNK_SIZE as u64
}

impl BlobFiles {
    /// The blob files under store directory `store`, creating their folder.
    pub(super) fn open(store: &Path) -> std::io::Result<BlobFiles> {
        let dir = store.join(FOLDER);
        std::fs::create_dir_all(&dir)?;
        Ok(BlobFiles { dir })
    }

    /// The blob files under `store`, if it has any, for reading what is left of it.
    pub(super) fn existing(store: &Path) -> Option<BlobFiles> {
        let dir = store.join(FOLDER);
        dir.is_dir().then_some(BlobFiles { dir })
    }

    fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:016x}.blob"))
    }

    /// The file of copy `seq`, created empty if it is not there; its folder entry is
    /// synced when the file is new.
    pub(super) fn create(&self, seq: u64) -> std::io::Result<File> {
        let path = self.path(seq);
        let existed = path.exists();
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)?;
        if !existed {
            File::open(&self.dir)?.sync_all()?;
        }
        Ok(file)
    }

    /// Writes chunk `index` of copy `seq`.
    pub(super) fn write_chunk(
        &self,
        seq: u64,
        index: ChunkIndex,
        data: &[u8],
    ) -> std::io::Result<()> {
        self.create(seq)?.write_all_at(data, offset(index))
    }

    /// Reads `len` bytes of chunk `index` of copy `seq`; `None` if the file is missing or
    /// shorter (bytes never written or lost).
    pub(super) fn read_chunk(
        &self,
        seq: u64,
        index: ChunkIndex,
        len: usize,
    ) -> std::io::Result<Option<Vec<u8>>> {
        let file = match File::open(self.path(seq)) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut data = vec![0u8; len];
        match file.read_exact_at(&mut data, offset(index)) {
            Ok(()) => Ok(Some(data)),
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Makes what was written to copy `seq` durable.
    pub(super) fn sync(&self, seq: u64) -> std::io::Result<()> {
        match File::open(self.path(seq)) {
            Ok(f) => f.sync_data(),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Deletes copy `seq`'s file: its room comes back at once.
    pub(super) fn delete(&self, seq: u64) -> std::io::Result<()> {
        match std::fs::remove_file(self.path(seq)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Every copy's file, by sequence number, for a salvage.
    pub(super) fn all(&self) -> Vec<(u64, PathBuf)> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut found: Vec<(u64, PathBuf)> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let seq = u64::from_str_radix(name.strip_suffix(".blob")?, 16).ok()?;
                Some((seq, e.path()))
            })
            .collect();
        found.sort();
        found
    }

    /// Appends `data` to an open copy's file, for a writer that keeps it open.
    pub(super) fn append(file: &mut File, data: &[u8]) -> std::io::Result<()> {
        file.write_all(data)
    }
}
