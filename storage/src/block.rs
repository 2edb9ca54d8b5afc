//! Blocks of the replicated chain: a signed header over an ordered list of blob
//! registrations, and the inclusion proof a user can check offline.
//!
//! Blocks arrive from the network as plain [`Block`] values; [`Block::verify_child`] and
//! [`Block::verify_genesis`] are the only ways to get a [`VerifiedBlock`], the only kind the
//! store accepts.

use serde::{Deserialize, Serialize};

use crate::blob::BlobId;
use crate::bytes::fixed_bytes;
use crate::keys::{PublicKey, Signature, SigningKey};
use crate::merkle::{leaf_hash, Digest, MerkleProof, MerkleTree};

/// Most registrations one block may carry (bounds a block's encoded size to ~250 KiB).
pub const MAX_REGISTRATIONS_PER_BLOCK: usize = 4096;

const HEADER_TAG: &[u8] = b"nexus/header/v1";

fixed_bytes!(
    /// Hash of a block header.
    BlockHash,
    32
);

impl BlockHash {
    /// The parent hash of the genesis block.
    pub const ZERO: BlockHash = BlockHash([0; 32]);
}

/// Position of a block in the chain; genesis is height 0.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
pub struct Height(pub u64);

impl Height {
    /// The next height, or `None` at `u64::MAX`.
    pub fn next(self) -> Option<Height> {
        self.0.checked_add(1).map(Height)
    }
}

impl std::fmt::Display for Height {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// How a registered blob is kept by the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoragePolicy {
    /// Every storage node keeps the whole blob.
    Replicated,
}

/// A blob anchored in a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BlobRegistration {
    /// The blob's content identity.
    pub blob_id: BlobId,
    /// Its length in bytes.
    pub size: u64,
    /// How it is stored.
    pub policy: StoragePolicy,
}

impl BlobRegistration {
    /// The Merkle leaf of this registration in its block's registrations tree.
    pub fn leaf(&self) -> Digest {
        leaf_hash(&postcard::to_stdvec(self).unwrap_or_default())
    }
}

/// The signed part of a block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Position in the chain.
    pub height: Height,
    /// Hash of the previous header ([`BlockHash::ZERO`] for genesis).
    pub parent: BlockHash,
    /// Proposer's clock, milliseconds since the Unix epoch; never below the parent's.
    pub timestamp_ms: u64,
    /// Merkle root over the block's registrations.
    pub registrations_root: Digest,
    /// Number of registrations (needed to check inclusion paths).
    pub registration_count: u32,
    /// The proposer's BLS key.
    pub proposer: PublicKey,
}

impl Header {
    /// The header's hash, which the proposer signs and children link to.
    pub fn hash(&self) -> BlockHash {
        // Encoding a plain struct into a Vec cannot fail.
        let bytes = postcard::to_stdvec(self).unwrap_or_default();
        BlockHash(Digest::of(&[HEADER_TAG, &bytes]).0)
    }
}

/// A header, its proposer's signature and the registrations it commits to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// The header.
    pub header: Header,
    /// The proposer's signature over `header.hash()`.
    pub signature: Signature,
    /// Blob registrations in block order.
    pub registrations: Vec<BlobRegistration>,
}

/// A block whose signature, links and contents were checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedBlock(Block);

impl std::ops::Deref for VerifiedBlock {
    type Target = Block;
    fn deref(&self) -> &Block {
        &self.0
    }
}

impl VerifiedBlock {
    /// The block, giving up the verified marker (for encoding or sending).
    pub fn into_inner(self) -> Block {
        self.0
    }
}

/// Why a block was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// Not the next height.
    #[error("expected height {expected}, found {found}")]
    WrongHeight {
        /// Next height of the local chain.
        expected: Height,
        /// Height in the block.
        found: Height,
    },
    /// Does not link to the local tip.
    #[error("block links to parent {found}, expected {expected}")]
    WrongParent {
        /// Hash of the local tip.
        expected: BlockHash,
        /// Parent hash in the block.
        found: BlockHash,
    },
    /// Signed by someone other than the chain's proposer.
    #[error("block proposed by {found}, expected {expected}")]
    WrongProposer {
        /// The chain's proposer.
        expected: PublicKey,
        /// Proposer in the block.
        found: PublicKey,
    },
    /// The signature does not verify.
    #[error("invalid proposer signature")]
    BadSignature,
    /// Root or count in the header do not match the registrations carried.
    #[error("registrations do not match the header's root or count")]
    RegistrationsMismatch,
    /// Too many registrations.
    #[error("block has {found} registrations, at most {max} allowed")]
    TooManyRegistrations {
        /// The cap.
        max: usize,
        /// The block's count.
        found: usize,
    },
    /// A blob registered twice in one block.
    #[error("blob {0} is registered twice in the block")]
    DuplicateRegistration(BlobId),
    /// Timestamp goes backwards.
    #[error("timestamp {found} is before the parent's {parent}")]
    TimestampBeforeParent {
        /// Parent's timestamp.
        parent: u64,
        /// Block's timestamp.
        found: u64,
    },
    /// A genesis block is malformed or is not the expected one.
    #[error("not an acceptable genesis block: {0}")]
    BadGenesis(&'static str),
    /// The chain cannot grow past `u64::MAX` blocks.
    #[error("height overflow")]
    HeightOverflow,
}

/// Merkle tree over registrations, in order.
fn registrations_tree(registrations: &[BlobRegistration]) -> MerkleTree {
    MerkleTree::from_leaves(registrations.iter().map(BlobRegistration::leaf).collect())
}

impl Block {
    /// Builds and signs a block. With `parent = None` this is the genesis block (which must
    /// carry no registrations).
    pub fn propose(
        key: &SigningKey,
        parent: Option<&Header>,
        timestamp_ms: u64,
        registrations: Vec<BlobRegistration>,
    ) -> Result<VerifiedBlock, BlockError> {
        let (height, parent_hash, timestamp_ms) = match parent {
            Some(p) => (
                p.height.next().ok_or(BlockError::HeightOverflow)?,
                p.hash(),
                timestamp_ms.max(p.timestamp_ms),
            ),
            None => (Height(0), BlockHash::ZERO, timestamp_ms),
        };
        let header = Header {
            height,
            parent: parent_hash,
            timestamp_ms,
            registrations_root: registrations_tree(&registrations).root(),
            registration_count: u32::try_from(registrations.len()).unwrap_or(u32::MAX),
            proposer: key.public(),
        };
        let signature = key.sign(&header.hash().0);
        let block = Block {
            header,
            signature,
            registrations,
        };
        match parent {
            Some(p) => block.verify_child(p),
            None => block.verify_genesis(None),
        }
    }

    /// Verifies a genesis block: height 0, no parent, no registrations, self-signed; and,
    /// when `expected` is given, that its hash is the one pinned by the operator.
    pub fn verify_genesis(self, expected: Option<BlockHash>) -> Result<VerifiedBlock, BlockError> {
        let h = &self.header;
        if h.height != Height(0) || h.parent != BlockHash::ZERO {
            return Err(BlockError::BadGenesis("height or parent is not zero"));
        }
        if !self.registrations.is_empty() {
            return Err(BlockError::BadGenesis("genesis carries registrations"));
        }
        if expected.is_some_and(|e| e != h.hash()) {
            return Err(BlockError::BadGenesis(
                "hash differs from the pinned genesis",
            ));
        }
        let proposer = h.proposer;
        self.check_contents(proposer)
    }

    /// Verifies a block as the child of `parent`, signed by the same proposer.
    pub fn verify_child(self, parent: &Header) -> Result<VerifiedBlock, BlockError> {
        let h = &self.header;
        let expected = parent.height.next().ok_or(BlockError::HeightOverflow)?;
        if h.height != expected {
            return Err(BlockError::WrongHeight {
                expected,
                found: h.height,
            });
        }
        if h.parent != parent.hash() {
            return Err(BlockError::WrongParent {
                expected: parent.hash(),
                found: h.parent,
            });
        }
        if h.timestamp_ms < parent.timestamp_ms {
            return Err(BlockError::TimestampBeforeParent {
                parent: parent.timestamp_ms,
                found: h.timestamp_ms,
            });
        }
        self.check_contents(parent.proposer)
    }

    fn check_contents(self, proposer: PublicKey) -> Result<VerifiedBlock, BlockError> {
        let h = &self.header;
        if h.proposer != proposer {
            return Err(BlockError::WrongProposer {
                expected: proposer,
                found: h.proposer,
            });
        }
        if self.registrations.len() > MAX_REGISTRATIONS_PER_BLOCK {
            return Err(BlockError::TooManyRegistrations {
                max: MAX_REGISTRATIONS_PER_BLOCK,
                found: self.registrations.len(),
            });
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(dup) = self.registrations.iter().find(|r| !seen.insert(r.blob_id)) {
            return Err(BlockError::DuplicateRegistration(dup.blob_id));
        }
        if h.registration_count as usize != self.registrations.len()
            || registrations_tree(&self.registrations).root() != h.registrations_root
        {
            return Err(BlockError::RegistrationsMismatch);
        }
        if !proposer.verify(&h.hash().0, &self.signature) {
            return Err(BlockError::BadSignature);
        }
        Ok(VerifiedBlock(self))
    }

    /// The inclusion proof of the registration at `index`, if there is one.
    pub fn inclusion_proof(&self, index: u32) -> Option<InclusionProof> {
        let registration = *self.registrations.get(index as usize)?;
        let path = registrations_tree(&self.registrations).proof(u64::from(index))?;
        Some(InclusionProof {
            header: self.header.clone(),
            signature: self.signature,
            registration,
            index,
            path,
        })
    }
}

/// Evidence that a blob is registered in a signed block, checkable offline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionProof {
    /// The block's header.
    pub header: Header,
    /// The proposer's signature of the header.
    pub signature: Signature,
    /// The registration proven.
    pub registration: BlobRegistration,
    /// Its position in the block.
    pub index: u32,
    /// Merkle path from the registration to `header.registrations_root`.
    pub path: MerkleProof,
}

/// Why an inclusion proof does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InclusionError {
    /// The proof is about another blob.
    #[error("the proof is for blob {found}, not {expected}")]
    WrongBlob {
        /// Blob asked about.
        expected: BlobId,
        /// Blob in the proof.
        found: BlobId,
    },
    /// The header was signed by a key other than the trusted proposer.
    #[error("header signed by {found}, but the chain's proposer is {expected}")]
    WrongProposer {
        /// Trusted proposer.
        expected: PublicKey,
        /// Proposer in the header.
        found: PublicKey,
    },
    /// The header signature is invalid.
    #[error("the header's signature is invalid")]
    BadSignature,
    /// The Merkle path does not lead to the header's registrations root.
    #[error("the Merkle path does not lead to the header's registrations root")]
    PathMismatch,
}

impl InclusionProof {
    /// Checks that `blob_id` is registered in a header signed by `proposer`.
    pub fn verify(&self, blob_id: &BlobId, proposer: &PublicKey) -> Result<(), InclusionError> {
        if self.registration.blob_id != *blob_id {
            return Err(InclusionError::WrongBlob {
                expected: *blob_id,
                found: self.registration.blob_id,
            });
        }
        if self.header.proposer != *proposer {
            return Err(InclusionError::WrongProposer {
                expected: *proposer,
                found: self.header.proposer,
            });
        }
        let root = self.path.root(
            self.registration.leaf(),
            u64::from(self.index),
            u64::from(self.header.registration_count),
        );
        if root != Some(self.header.registrations_root) {
            return Err(InclusionError::PathMismatch);
        }
        if !proposer.verify(&self.header.hash().0, &self.signature) {
            return Err(InclusionError::BadSignature);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn reg(i: u64) -> BlobRegistration {
        BlobRegistration {
            blob_id: BlobId::of(&i.to_le_bytes()),
            size: 8,
            policy: StoragePolicy::Replicated,
        }
    }

    fn chain(key: &SigningKey, regs: usize) -> (VerifiedBlock, VerifiedBlock) {
        let genesis = Block::propose(key, None, 1_000, vec![]).expect("genesis");
        let regs = (0..regs as u64).map(reg).collect();
        let child = Block::propose(key, Some(&genesis.header), 2_000, regs).expect("child");
        (genesis, child)
    }

    #[test]
    fn proposed_blocks_verify_and_link() {
        let key = SigningKey::from_seed(&[3; 32]);
        let (genesis, child) = chain(&key, 5);
        let pinned = Some(genesis.header.hash());
        assert!(genesis.clone().into_inner().verify_genesis(pinned).is_ok());
        assert!(child
            .clone()
            .into_inner()
            .verify_child(&genesis.header)
            .is_ok());
    }

    #[test]
    fn bad_blocks_are_rejected_with_the_reason() {
        let key = SigningKey::from_seed(&[3; 32]);
        let (genesis, child) = chain(&key, 3);
        let g = &genesis.header;

        let mut b = child.clone().into_inner();
        b.header.height = Height(5);
        assert!(matches!(
            b.verify_child(g),
            Err(BlockError::WrongHeight { .. })
        ));

        let mut b = child.clone().into_inner();
        b.header.parent = BlockHash([9; 32]);
        assert!(matches!(
            b.verify_child(g),
            Err(BlockError::WrongParent { .. })
        ));

        let mut b = child.clone().into_inner();
        b.registrations.pop();
        assert_eq!(b.verify_child(g), Err(BlockError::RegistrationsMismatch));

        let mut b = child.clone().into_inner();
        b.header.timestamp_ms += 1;
        assert_eq!(b.verify_child(g), Err(BlockError::BadSignature));

        let other = SigningKey::from_seed(&[4; 32]);
        let forged = Block::propose(&other, None, 0, vec![]).expect("other genesis");
        let b = Block::propose(&other, Some(&forged.header), 2_000, vec![]).expect("forged");
        let mut b = b.into_inner();
        b.header.parent = g.hash();
        assert!(matches!(
            b.verify_child(g),
            Err(BlockError::WrongProposer { .. })
        ));

        let dup = vec![reg(1), reg(1)];
        let b = Block::propose(&key, Some(g), 2_000, dup);
        assert!(matches!(b, Err(BlockError::DuplicateRegistration(_))));

        let wrong_pin = Some(BlockHash([1; 32]));
        assert!(genesis
            .clone()
            .into_inner()
            .verify_genesis(wrong_pin)
            .is_err());
        assert!(child.into_inner().verify_genesis(None).is_err());
    }

    proptest! {
        #[test]
        fn inclusion_proofs_verify_for_every_index_and_reject_tampering(
            n in 1usize..70, pick in any::<u32>(), byte in 0usize..32
        ) {
            let key = SigningKey::from_seed(&[5; 32]);
            let (_, block) = chain(&key, n);
            let index = pick % n as u32;
            let proof = block.inclusion_proof(index).expect("in range");
            let id = proof.registration.blob_id;
            prop_assert_eq!(proof.verify(&id, &key.public()), Ok(()));

            let other = SigningKey::from_seed(&[6; 32]).public();
            prop_assert!(proof.verify(&id, &other).is_err());
            prop_assert!(proof.verify(&BlobId([0; 32]), &key.public()).is_err());

            let mut bad = proof.clone();
            bad.registration.size += 1;
            prop_assert_eq!(bad.verify(&id, &key.public()), Err(InclusionError::PathMismatch));
            let mut bad = proof.clone();
            bad.index = (index + 1) % n as u32;
            if n > 1 {
                prop_assert!(bad.verify(&id, &key.public()).is_err());
            }
            let mut bad = proof.clone();
            bad.header.timestamp_ms ^= 1;
            prop_assert_eq!(bad.verify(&id, &key.public()), Err(InclusionError::BadSignature));
            if let Some(s) = proof.path.siblings.first() {
                let mut bad = proof.clone();
                let mut s = *s;
                s.0[byte] ^= 0x80;
                bad.path.siblings[0] = s;
                prop_assert_eq!(bad.verify(&id, &key.public()), Err(InclusionError::PathMismatch));
            }
        }
    }

    #[test]
    fn decoding_garbage_is_an_error_not_a_panic() {
        for len in 0..200usize {
            let junk: Vec<u8> = (0..len).map(|i| (i * 37 % 251) as u8).collect();
            let _ = postcard::from_bytes::<Block>(&junk);
        }
        let key = SigningKey::from_seed(&[3; 32]);
        let (_, block) = chain(&key, 2);
        let bytes = postcard::to_stdvec(&block.into_inner()).expect("encode");
        for cut in 0..bytes.len() {
            assert!(postcard::from_bytes::<Block>(&bytes[..cut]).is_err());
        }
    }
}
