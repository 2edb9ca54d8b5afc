//! Blob identity: content cut into fixed-size 4 KiB leaves, a Merkle tree over the leaves,
//! and the byte length bound into the id.
//!
//! `BlobId = SHA-256(0x02 || len as u64 big-endian || merkle_root(leaves))`. A blob always
//! has at least one leaf (the empty blob has one empty leaf), so every blob has a root.
//!
//! Blobs move in 256 KiB chunks of 64 leaves. Because a chunk is an aligned power-of-two run
//! of leaves, it is exactly one subtree: its root is computed from its bytes alone, and a
//! chunk proof is the path from that subtree to the root. A single leaf can be proven too
//! (storage challenges): its proof is the in-chunk path followed by the chunk's path.

use crate::merkle::{leaf_hash, Digest, MerkleProof, MerkleTree};
use nexus_das::fixed_bytes;

/// Size of every leaf but the last one of a blob.
pub const LEAF_SIZE: usize = 4096;
/// Size of every chunk but the last one of a blob (64 leaves).
pub const CHUNK_SIZE: usize = 256 * 1024;

const BLOB_ID_TAG: u8 = 0x02;

fixed_bytes!(
    /// A blob's identity, derived from its content and length only.
    BlobId,
    32
);

/// Position of a chunk within its blob.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct ChunkIndex(pub u32);

impl std::fmt::Display for ChunkIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Why a chunk does not belong to a blob.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// The blob has no chunk at this index.
    #[error("chunk {index} is out of range: the blob has {count} chunks")]
    OutOfRange {
        /// Requested index.
        index: ChunkIndex,
        /// Chunks in the blob.
        count: u64,
    },
    /// The chunk's length is not the one the blob's size implies.
    #[error("chunk {index} has {found} bytes, expected {expected}")]
    WrongLength {
        /// The chunk.
        index: ChunkIndex,
        /// Expected length.
        expected: usize,
        /// Received length.
        found: usize,
    },
    /// The Merkle proof does not lead to the blob id.
    #[error("chunk {index} does not match blob {blob_id}: its Merkle proof fails")]
    ProofMismatch {
        /// The blob.
        blob_id: BlobId,
        /// The chunk.
        index: ChunkIndex,
    },
    /// The blob is larger than this implementation can index.
    #[error("blob of {0} bytes has too many chunks")]
    TooLarge(u64),
}

/// The blob's shape: how many chunks a blob of `size` bytes has and how long each is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobLayout {
    size: u64,
}

impl BlobLayout {
    /// The layout of a blob of `size` bytes; fails if its chunk count exceeds `u32`.
    pub fn new(size: u64) -> Result<BlobLayout, ChunkError> {
        let layout = BlobLayout { size };
        if layout.chunk_count() > u64::from(u32::MAX) {
            return Err(ChunkError::TooLarge(size));
        }
        Ok(layout)
    }

    /// Size of the blob in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Number of chunks (at least one).
    pub fn chunk_count(&self) -> u64 {
        self.size.div_ceil(CHUNK_SIZE as u64).max(1)
    }

    /// Every chunk index, in order.
    pub fn indices(&self) -> impl Iterator<Item = ChunkIndex> {
        // `new` guarantees the count fits in u32.
        (0..self.chunk_count() as u32).map(ChunkIndex)
    }

    /// Length of chunk `index`, or an error if out of range.
    pub fn chunk_len(&self, index: ChunkIndex) -> Result<usize, ChunkError> {
        let count = self.chunk_count();
        if u64::from(index.0) >= count {
            return Err(ChunkError::OutOfRange { index, count });
        }
        let start = u64::from(index.0) * CHUNK_SIZE as u64;
        Ok((self.size - start).min(CHUNK_SIZE as u64) as usize)
    }

    /// Byte offset of chunk `index` in the blob.
    pub fn offset(&self, index: ChunkIndex) -> u64 {
        u64::from(index.0) * CHUNK_SIZE as u64
    }

    /// Number of leaves (at least one).
    pub fn leaf_count(&self) -> u64 {
        self.size.div_ceil(LEAF_SIZE as u64).max(1)
    }

    /// Length of leaf `index`, or `None` if out of range.
    pub fn leaf_len(&self, index: u64) -> Option<usize> {
        let start = index.checked_mul(LEAF_SIZE as u64)?;
        (index < self.leaf_count()).then(|| (self.size - start).min(LEAF_SIZE as u64) as usize)
    }
}

/// Leaf hashes of a chunk (one empty leaf for an empty chunk).
fn chunk_leaves(data: &[u8]) -> Vec<Digest> {
    if data.is_empty() {
        return vec![leaf_hash(&[])];
    }
    data.chunks(LEAF_SIZE).map(leaf_hash).collect()
}

/// Root of the subtree formed by one chunk's leaves.
pub fn chunk_root(data: &[u8]) -> Digest {
    MerkleTree::from_leaves(chunk_leaves(data)).root()
}

/// Proof of leaf `leaf_in_chunk` of `chunk`, given the chunk's own proof: the in-chunk path
/// followed by the chunk's path. `None` if the leaf is outside the chunk.
pub fn leaf_proof(
    chunk: &[u8],
    chunk_proof: &MerkleProof,
    leaf_in_chunk: u32,
) -> Option<MerkleProof> {
    let mut proof = MerkleTree::from_leaves(chunk_leaves(chunk)).proof(u64::from(leaf_in_chunk))?;
    proof.siblings.extend_from_slice(&chunk_proof.siblings);
    Some(proof)
}

impl BlobId {
    /// The id of a blob of `size` bytes whose chunk tree has root `root`.
    pub fn from_root(size: u64, root: &Digest) -> BlobId {
        BlobId(Digest::of(&[&[BLOB_ID_TAG], &size.to_be_bytes(), &root.0]).0)
    }

    /// The id of `data`, computed in one go (tests and small blobs).
    pub fn of(data: &[u8]) -> BlobId {
        let mut b = BlobIdBuilder::new();
        b.update(data);
        b.finish().0
    }

    /// Checks that `data` is chunk `index` of this blob of `size` bytes, using `proof`.
    pub fn verify_chunk(
        &self,
        size: u64,
        index: ChunkIndex,
        data: &[u8],
        proof: &MerkleProof,
    ) -> Result<(), ChunkError> {
        let layout = BlobLayout::new(size)?;
        let expected = layout.chunk_len(index)?;
        if data.len() != expected {
            return Err(ChunkError::WrongLength {
                index,
                expected,
                found: data.len(),
            });
        }
        let root = proof.root(chunk_root(data), u64::from(index.0), layout.chunk_count());
        match root {
            Some(root) if BlobId::from_root(size, &root) == *self => Ok(()),
            _ => Err(ChunkError::ProofMismatch {
                blob_id: *self,
                index,
            }),
        }
    }

    /// Checks that `data` is leaf `index` of this blob of `size` bytes, using `proof` (as
    /// made by [`leaf_proof`]). Used to answer storage challenges with 4 KiB, not 256 KiB.
    pub fn verify_leaf(&self, size: u64, index: u64, data: &[u8], proof: &MerkleProof) -> bool {
        let layout = BlobLayout { size };
        if layout.leaf_len(index) != Some(data.len()) {
            return false;
        }
        proof
            .root(leaf_hash(data), index, layout.leaf_count())
            .is_some_and(|root| BlobId::from_root(size, &root) == *self)
    }
}

/// Computes a BlobId from a stream of bytes, keeping one chunk buffered and one subtree
/// root per chunk (32 bytes per 256 KiB), so memory stays flat in practice as blobs grow.
#[derive(Debug, Default)]
pub struct BlobIdBuilder {
    pending: Vec<u8>,
    leaves: Vec<Digest>,
    size: u64,
}

impl BlobIdBuilder {
    /// An empty builder.
    pub fn new() -> BlobIdBuilder {
        BlobIdBuilder::default()
    }

    /// Feeds more bytes; returns the chunks completed by them (for callers that store them).
    pub fn update(&mut self, mut data: &[u8]) -> Vec<Vec<u8>> {
        let mut done = Vec::new();
        self.size += data.len() as u64;
        while !data.is_empty() {
            let take = (CHUNK_SIZE - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.pending.len() == CHUNK_SIZE {
                let chunk = std::mem::replace(&mut self.pending, Vec::with_capacity(CHUNK_SIZE));
                self.leaves.push(chunk_root(&chunk));
                done.push(chunk);
            }
        }
        done
    }

    /// Bytes fed so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Ends the stream: returns the id, the tree over chunk roots (whose proofs are chunk
    /// proofs), and the final partial chunk (if the
    /// blob is empty or its length is not a multiple of [`CHUNK_SIZE`]).
    pub fn finish(mut self) -> (BlobId, MerkleTree, Option<Vec<u8>>) {
        let tail = if !self.pending.is_empty() || self.leaves.is_empty() {
            self.leaves.push(chunk_root(&self.pending));
            Some(self.pending)
        } else {
            None
        };
        let tree = MerkleTree::from_leaves(self.leaves);
        (BlobId::from_root(self.size, &tree.root()), tree, tail)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Builds (id, tree, chunks) for `data` by feeding it in pieces of `step` bytes.
    fn build(data: &[u8], step: usize) -> (BlobId, MerkleTree, Vec<Vec<u8>>) {
        let mut b = BlobIdBuilder::new();
        let mut chunks = Vec::new();
        for piece in data.chunks(step.max(1)) {
            chunks.extend(b.update(piece));
        }
        let (id, tree, tail) = b.finish();
        chunks.extend(tail);
        (id, tree, chunks)
    }

    fn sizes() -> impl Strategy<Value = usize> {
        prop_oneof![
            Just(0),
            Just(1),
            Just(CHUNK_SIZE - 1),
            Just(CHUNK_SIZE),
            Just(CHUNK_SIZE + 1),
            Just(3 * CHUNK_SIZE),
            0usize..5 * CHUNK_SIZE,
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn every_chunk_verifies_and_ids_do_not_depend_on_feeding(
            size in sizes(), step in 1usize..400_000, seed in any::<u8>(), pick in any::<u32>()
        ) {
            let data: Vec<u8> = (0..size).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect();
            let (id, tree, chunks) = build(&data, step);
            prop_assert_eq!(id, BlobId::of(&data));
            let layout = BlobLayout::new(size as u64).expect("small");
            prop_assert_eq!(chunks.len() as u64, layout.chunk_count());
            let index = ChunkIndex(pick % chunks.len() as u32);
            let chunk = &chunks[index.0 as usize];
            prop_assert_eq!(chunk.len(), layout.chunk_len(index).expect("in range"));
            let proof = tree.proof(u64::from(index.0)).expect("in range");
            prop_assert_eq!(id.verify_chunk(size as u64, index, chunk, &proof), Ok(()));

            // Tampering with data, length, index or the claimed size is rejected.
            if !chunk.is_empty() {
                let mut bad = chunk.clone();
                let at = pick as usize % bad.len();
                bad[at] ^= 0x40;
                prop_assert!(id.verify_chunk(size as u64, index, &bad, &proof).is_err());
            }
            prop_assert!(id.verify_chunk(size as u64 + 1, index, chunk, &proof).is_err());
            let beyond = ChunkIndex(chunks.len() as u32);
            prop_assert!(
                matches!(
                    id.verify_chunk(size as u64, beyond, chunk, &proof),
                    Err(ChunkError::OutOfRange { .. })
                ),
                "index beyond the last chunk must be out of range"
            );
        }
    }

    #[test]
    fn length_is_bound_into_the_id() {
        // Two blobs with the same chunk content but different lengths cannot share an id:
        // the empty blob and a blob of a single empty chunk's worth of zero bytes differ.
        assert_ne!(BlobId::of(b""), BlobId::of(b"\0"));
        assert_ne!(BlobId::of(b"abc"), BlobId::of(b"abd"));
    }

    #[test]
    fn known_vector_is_stable() {
        // Pin the definition: changing it would orphan every stored blob.
        let id = BlobId::of(b"nexus");
        let leaf = leaf_hash(b"nexus");
        assert_eq!(id, BlobId::from_root(5, &leaf));
        assert_eq!(
            id.to_string(),
            "9dbb5ec64bef22c1b6bb65f64b8b82a047cd43d9291c54e1103afd04e6f419a5"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// The chunked computation is the plain Merkle tree over 4 KiB leaves, and every leaf
        /// proves alone.
        #[test]
        fn chunks_are_subtrees_and_leaves_prove(size in sizes(), seed in any::<u8>(), pick in any::<u64>()) {
            // Varies from leaf to leaf, so that no two leaves are equal.
            let data: Vec<u8> = (0..size as u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 ^ seed)
                .collect();
            let (id, tree, chunks) = build(&data, 100_000);
            let leaves: Vec<Digest> = if data.is_empty() {
                vec![leaf_hash(&[])]
            } else {
                data.chunks(LEAF_SIZE).map(leaf_hash).collect()
            };
            let flat = MerkleTree::from_leaves(leaves);
            prop_assert_eq!(id, BlobId::from_root(size as u64, &flat.root()));

            let layout = BlobLayout::new(size as u64).expect("small");
            let leaf = pick % layout.leaf_count();
            let chunk = (leaf / 64) as usize;
            let chunk_proof = tree.proof(chunk as u64).expect("chunk");
            let proof = leaf_proof(&chunks[chunk], &chunk_proof, (leaf % 64) as u32).expect("leaf");
            prop_assert_eq!(&proof, &flat.proof(leaf).expect("flat proof"));
            let start = (leaf as usize) * LEAF_SIZE;
            let bytes = &data[start..(start + LEAF_SIZE).min(data.len())];
            prop_assert!(id.verify_leaf(size as u64, leaf, bytes, &proof));
            prop_assert!(!id.verify_leaf(size as u64, leaf + 1, bytes, &proof));
            if !bytes.is_empty() {
                let mut bad = bytes.to_vec();
                bad[0] ^= 1;
                prop_assert!(!id.verify_leaf(size as u64, leaf, &bad, &proof));
            }
        }
    }
}
