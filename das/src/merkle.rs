//! A SHA-256 binary Merkle tree with domain-separated leaves and inner nodes.
//!
//! The shape is RFC 6962's: a level's last node, when it has no sibling, is carried up
//! unchanged. A proof is the list of siblings from the leaf upwards; verifying it needs the
//! leaf index and the leaf count, which callers always know (from a blob's length or a
//! block header's registration count).

use sha2::{Digest as _, Sha256};

crate::fixed_bytes!(
    /// A SHA-256 digest.
    Digest,
    32
);

impl Digest {
    /// The all-zero digest: the root of an empty list and the parent of a genesis block.
    pub const ZERO: Digest = Digest([0; 32]);

    /// SHA-256 of the concatenation of `parts`.
    pub fn of(parts: &[&[u8]]) -> Digest {
        let mut h = Sha256::new();
        for p in parts {
            h.update(p);
        }
        Digest(h.finalize().into())
    }
}

const LEAF_TAG: u8 = 0x00;
const NODE_TAG: u8 = 0x01;

/// Hash of a leaf's content: `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Digest {
    Digest::of(&[&[LEAF_TAG], data])
}

/// Hash of an inner node: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Digest, right: &Digest) -> Digest {
    Digest::of(&[&[NODE_TAG], &left.0, &right.0])
}

/// The siblings on the path from one leaf to the root, lowest first.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MerkleProof {
    /// Sibling hashes, from the leaf's level upwards (carried-up levels have none).
    pub siblings: Vec<Digest>,
}

impl MerkleProof {
    /// Recomputes the root for `leaf` at `index` in a tree of `leaf_count` leaves.
    ///
    /// Returns `None` when the index is out of range or the number of siblings does not
    /// match the tree's shape; a wrong sibling yields a different root.
    pub fn root(&self, leaf: Digest, index: u64, leaf_count: u64) -> Option<Digest> {
        if index >= leaf_count {
            return None;
        }
        let mut siblings = self.siblings.iter();
        let (mut hash, mut index, mut width) = (leaf, index, leaf_count);
        while width > 1 {
            if index % 2 == 1 {
                hash = node_hash(siblings.next()?, &hash);
            } else if index + 1 < width {
                hash = node_hash(&hash, siblings.next()?);
            }
            index /= 2;
            width = width.div_ceil(2);
        }
        siblings.next().is_none().then_some(hash)
    }
}

/// A whole tree kept level by level, for producing proofs.
#[derive(Debug, Clone)]
pub struct MerkleTree {
    levels: Vec<Vec<Digest>>,
}

impl MerkleTree {
    /// Builds the tree over already-hashed leaves.
    pub fn from_leaves(leaves: Vec<Digest>) -> MerkleTree {
        let mut levels = vec![leaves];
        while levels.last().is_some_and(|l| l.len() > 1) {
            let below = levels.last().map(Vec::as_slice).unwrap_or_default();
            let above = below
                .chunks(2)
                .map(|pair| match pair {
                    [l, r] => node_hash(l, r),
                    [single] => *single,
                    _ => unreachable!("chunks(2) yields one or two items"),
                })
                .collect();
            levels.push(above);
        }
        MerkleTree { levels }
    }

    /// The root; [`Digest::ZERO`] for a tree without leaves.
    pub fn root(&self) -> Digest {
        self.levels
            .last()
            .and_then(|top| top.first())
            .copied()
            .unwrap_or(Digest::ZERO)
    }

    /// Number of leaves.
    pub fn leaf_count(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// The proof for leaf `index`, or `None` if out of range.
    pub fn proof(&self, index: u64) -> Option<MerkleProof> {
        if index >= self.leaf_count() {
            return None;
        }
        let mut index = usize::try_from(index).ok()?;
        let mut siblings = Vec::new();
        for level in &self.levels[..self.levels.len() - 1] {
            let sibling = if index % 2 == 1 {
                level.get(index - 1)
            } else {
                level.get(index + 1)
            };
            siblings.extend(sibling.copied());
            index /= 2;
        }
        Some(MerkleProof { siblings })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn leaves(n: usize) -> Vec<Digest> {
        (0..n).map(|i| leaf_hash(&i.to_le_bytes())).collect()
    }

    /// RFC 6962's recursive definition, as an independent reference.
    fn reference_root(leaves: &[Digest]) -> Digest {
        match leaves.len() {
            0 => Digest::ZERO,
            1 => leaves[0],
            n => {
                let k = n.next_power_of_two() / 2;
                node_hash(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
            }
        }
    }

    proptest! {
        #[test]
        fn root_matches_rfc6962_and_every_proof_verifies(n in 1usize..300, seed in any::<u64>()) {
            let l = leaves(n);
            let tree = MerkleTree::from_leaves(l.clone());
            prop_assert_eq!(tree.root(), reference_root(&l));
            let i = (seed % n as u64) as usize;
            let proof = tree.proof(i as u64).expect("in range");
            prop_assert_eq!(proof.root(l[i], i as u64, n as u64), Some(tree.root()));
        }

        #[test]
        fn tampered_proofs_fail(n in 2usize..200, seed in any::<u64>(), bit in 0usize..256) {
            let l = leaves(n);
            let tree = MerkleTree::from_leaves(l.clone());
            let i = seed % n as u64;
            let proof = tree.proof(i).expect("in range");
            let root = tree.root();
            // A flipped bit in any sibling changes the root.
            for s in 0..proof.siblings.len() {
                let mut bad = proof.clone();
                bad.siblings[s].0[bit / 8] ^= 1 << (bit % 8);
                prop_assert_ne!(bad.root(l[i as usize], i, n as u64), Some(root));
            }
            // The wrong leaf, a wrong index, a wrong count, or a truncated path fail too.
            prop_assert_ne!(proof.root(leaf_hash(b"other"), i, n as u64), Some(root));
            prop_assert_ne!(proof.root(l[i as usize], (i + 1) % n as u64, n as u64), Some(root));
            prop_assert_eq!(proof.root(l[i as usize], n as u64, n as u64), None);
            let mut short = proof.clone();
            short.siblings.pop();
            prop_assert_ne!(short.root(l[i as usize], i, n as u64), Some(root));
            let mut long = proof;
            long.siblings.push(Digest::ZERO);
            prop_assert_eq!(long.root(l[i as usize], i, n as u64), None);
        }
    }

    #[test]
    fn single_leaf_and_empty_trees() {
        let one = MerkleTree::from_leaves(leaves(1));
        assert_eq!(one.root(), leaves(1)[0]);
        let proof = one.proof(0).expect("in range");
        assert!(proof.siblings.is_empty());
        assert_eq!(proof.root(leaves(1)[0], 0, 1), Some(one.root()));
        let empty = MerkleTree::from_leaves(Vec::new());
        assert_eq!(empty.root(), Digest::ZERO);
        assert!(empty.proof(0).is_none());
    }

    #[test]
    fn leaf_and_node_domains_differ() {
        let (a, b) = (leaf_hash(b"a"), leaf_hash(b"b"));
        let mut concat = vec![];
        concat.extend_from_slice(&a.0);
        concat.extend_from_slice(&b.0);
        assert_ne!(leaf_hash(&concat), node_hash(&a, &b));
    }
}
