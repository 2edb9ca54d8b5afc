//! The proof tree of a job: its segment proofs at the bottom, folded level by level into
//! one root, the job's Universal Proof. The shape is OpenVM's aggregation (`AggProver::
//! prove_vm` in `openvm-sdk`): *leaf* nodes verify up to `leaf_arity` consecutive segment
//! proofs, *internal-for-leaf* nodes up to `internal_arity` leaf proofs, then at least one
//! level of *internal-recursive* nodes, repeated until one proof is left. Each node can be
//! proven on another machine once its children are proven; planning it here lets every
//! party agree on the same tree without running a prover.

use serde::{Deserialize, Serialize};

/// How many children a node of each kind verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeShape {
    /// Segment proofs per leaf node (OpenVM allows at most 4).
    pub leaf_arity: u32,
    /// Proofs per internal node (OpenVM allows at most 3).
    pub internal_arity: u32,
}

impl TreeShape {
    /// OpenVM's largest arities (`MAX_NUM_CHILDREN_LEAF`, `MAX_NUM_CHILDREN_INTERNAL`):
    /// the fewest nodes.
    pub const WIDEST: TreeShape = TreeShape {
        leaf_arity: 4,
        internal_arity: 3,
    };

    /// Two children per node: proofs folded pairwise, the most parallel tree.
    pub const PAIRWISE: TreeShape = TreeShape {
        leaf_arity: 2,
        internal_arity: 2,
    };
}

/// The kind of a tree level, which decides the circuit that proves its nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Level {
    /// A segment of the program's run, proven by the app circuit.
    Segment,
    /// Verifies segment proofs.
    Leaf,
    /// Verifies leaf proofs.
    InternalForLeaf,
    /// Verifies internal proofs; the `n`th such level (0 verifies internal-for-leaf ones).
    InternalRecursive(u32),
}

impl std::fmt::Display for Level {
    /// The level's name as the README and the CLI use it: `segment`, `leaf`,
    /// `internal-for-leaf`, `internal-recursive.N`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Level::Segment => f.write_str("segment"),
            Level::Leaf => f.write_str("leaf"),
            Level::InternalForLeaf => f.write_str("internal-for-leaf"),
            Level::InternalRecursive(n) => write!(f, "internal-recursive.{n}"),
        }
    }
}

/// Which verifying key a node's children are checked against (OpenVM's `ChildVkKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChildKind {
    /// A segment node has no children.
    None,
    /// The program's own (app) key.
    App,
    /// The key of the level below, fixed.
    Standard,
    /// The internal-recursive key itself.
    RecursiveSelf,
}

/// One node of a tree: its level (0 = segments) and its position in that level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeRef {
    /// Level, counted from the segments (0) up.
    pub level: u16,
    /// Position within the level, from 0.
    pub index: u32,
}

/// Why a tree cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// A job has at least one segment.
    #[error("a job has at least one segment")]
    NoSegments,
    /// Arities outside what the aggregation circuits take.
    #[error("arities must be 2..=4 for leaves and 2..=3 for internal nodes, not {0:?}")]
    BadShape(TreeShape),
}

/// The planned tree of a job with a given number of segments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofTree {
    shape: TreeShape,
    /// Node count per level, segments first; the last level has one node.
    widths: Vec<u32>,
}

impl ProofTree {
    /// The tree folding `segments` proofs with `shape`, exactly as OpenVM's aggregation
    /// would in one process.
    pub fn plan(segments: u32, shape: TreeShape) -> Result<ProofTree, PlanError> {
        if segments == 0 {
            return Err(PlanError::NoSegments);
        }
        if !(2..=4).contains(&shape.leaf_arity) || !(2..=3).contains(&shape.internal_arity) {
            return Err(PlanError::BadShape(shape));
        }
        let leaves = segments.div_ceil(shape.leaf_arity);
        let internal_for_leaf = leaves.div_ceil(shape.internal_arity);
        // One internal-recursive level at least, then more until one proof is left.
        let mut widths = vec![segments, leaves, internal_for_leaf];
        let mut width = internal_for_leaf.div_ceil(shape.internal_arity);
        widths.push(width);
        while width > 1 {
            width = width.div_ceil(shape.internal_arity);
            widths.push(width);
        }
        Ok(ProofTree { shape, widths })
    }

    /// The shape it was planned with.
    pub fn shape(&self) -> TreeShape {
        self.shape
    }

    /// Number of segments.
    pub fn segments(&self) -> u32 {
        self.widths[0]
    }

    /// Number of levels, segments included.
    pub fn depth(&self) -> u16 {
        self.widths.len() as u16
    }

    /// Nodes in `level`.
    pub fn width(&self, level: u16) -> u32 {
        self.widths.get(usize::from(level)).copied().unwrap_or(0)
    }

    /// The kind of `level`.
    pub fn level_kind(&self, level: u16) -> Level {
        match level {
            0 => Level::Segment,
            1 => Level::Leaf,
            2 => Level::InternalForLeaf,
            n => Level::InternalRecursive(u32::from(n) - 3),
        }
    }

    /// What a node's children are verified against.
    pub fn child_kind(&self, level: u16) -> ChildKind {
        match self.level_kind(level) {
            Level::Segment => ChildKind::None,
            Level::Leaf => ChildKind::App,
            Level::InternalForLeaf | Level::InternalRecursive(0) => ChildKind::Standard,
            Level::InternalRecursive(_) => ChildKind::RecursiveSelf,
        }
    }

    /// The root: the node whose proof, wrapped [`ProofTree::seal_wraps`] times, is the
    /// Universal Proof.
    pub fn root(&self) -> NodeRef {
        NodeRef {
            level: self.depth() - 1,
            index: 0,
        }
    }

    /// Every node, level by level from the segments.
    pub fn nodes(&self) -> impl Iterator<Item = NodeRef> + '_ {
        self.widths.iter().enumerate().flat_map(|(level, &width)| {
            (0..width).map(move |index| NodeRef {
                level: level as u16,
                index,
            })
        })
    }

    /// Whether `node` is in the tree.
    pub fn contains(&self, node: NodeRef) -> bool {
        node.index < self.width(node.level)
    }

    fn arity(&self, level: u16) -> u32 {
        if level == 1 {
            self.shape.leaf_arity
        } else {
            self.shape.internal_arity
        }
    }

    /// The children of `node` in the level below, in order (none for a segment).
    pub fn children(&self, node: NodeRef) -> Vec<NodeRef> {
        if node.level == 0 || !self.contains(node) {
            return Vec::new();
        }
        let arity = self.arity(node.level);
        let below = self.width(node.level - 1);
        let first = node.index * arity;
        (first..(first + arity).min(below))
            .map(|index| NodeRef {
                level: node.level - 1,
                index,
            })
            .collect()
    }

    /// The node that verifies `node`'s proof (none for the root).
    pub fn parent(&self, node: NodeRef) -> Option<NodeRef> {
        if !self.contains(node) || node == self.root() {
            return None;
        }
        Some(NodeRef {
            level: node.level + 1,
            index: node.index / self.arity(node.level + 1),
        })
    }

    /// The segments a node's proof covers, in order (a segment covers itself).
    pub fn span(&self, node: NodeRef) -> std::ops::Range<u32> {
        let mut first = node.index;
        let mut end = node.index + 1;
        for level in (1..=node.level).rev() {
            let arity = self.arity(level);
            first *= arity;
            end = (end * arity).min(self.width(level - 1));
        }
        first..end
    }

    /// How many times the seal wraps the root's proof in one more single-child
    /// internal-recursive layer to make the Universal Proof. Once, as OpenVM's
    /// `StarkProver::prove` does, when the root verified a single child; twice when it
    /// verified more (13 segments and up with the widest shape): a root over several
    /// children has taller traces (445 vs 321 KiB measured at 16 segments), one wrap of it
    /// still comes out ~20 % larger (279.6 vs 232 KB), and the second wrap, over a
    /// single-child proof, brings it back to the size every job's proof has.
    pub fn seal_wraps(&self) -> u32 {
        if self.width(self.depth() - 2) > 1 {
            2
        } else {
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn widths(segments: u32, shape: TreeShape) -> Vec<u32> {
        let tree = ProofTree::plan(segments, shape).expect("plan");
        (0..tree.depth()).map(|l| tree.width(l)).collect()
    }

    #[test]
    fn shapes_are_openvm_s() {
        let w = TreeShape::WIDEST;
        // One segment still goes through a leaf, an internal-for-leaf and one recursive
        // level, as `prove_vm` does.
        assert_eq!(widths(1, w), vec![1, 1, 1, 1]);
        assert_eq!(widths(8, w), vec![8, 2, 1, 1]);
        assert_eq!(widths(40, w), vec![40, 10, 4, 2, 1]);
        assert_eq!(widths(5, TreeShape::PAIRWISE), vec![5, 3, 2, 1]);
        let tree = ProofTree::plan(40, w).expect("plan");
        assert_eq!(tree.level_kind(4), Level::InternalRecursive(1));
        assert_eq!(tree.child_kind(1), ChildKind::App);
        assert_eq!(tree.child_kind(3), ChildKind::Standard);
        assert_eq!(tree.child_kind(4), ChildKind::RecursiveSelf);
    }

    #[test]
    fn a_root_over_several_children_is_wrapped_twice() {
        let wraps = |segments| {
            ProofTree::plan(segments, TreeShape::WIDEST)
                .expect("plan")
                .seal_wraps()
        };
        // Up to 12 segments the root verifies one internal-for-leaf proof.
        for segments in [1, 2, 4, 8, 12] {
            assert_eq!(wraps(segments), 1, "{segments} segments");
        }
        // From 13 on it verifies two or three, and at 40 an upper recursive level does.
        for segments in [13, 16, 36, 40] {
            assert_eq!(wraps(segments), 2, "{segments} segments");
        }
        assert_eq!(
            ProofTree::plan(5, TreeShape::PAIRWISE)
                .expect("plan")
                .seal_wraps(),
            2
        );
    }

    #[test]
    fn impossible_trees_are_refused() {
        assert_eq!(
            ProofTree::plan(0, TreeShape::WIDEST),
            Err(PlanError::NoSegments)
        );
        let wide = TreeShape {
            leaf_arity: 5,
            internal_arity: 3,
        };
        assert_eq!(ProofTree::plan(3, wide), Err(PlanError::BadShape(wide)));
    }

    proptest! {
        #[test]
        fn every_node_but_the_root_has_one_parent_that_lists_it(
            segments in 1u32..300, leaf in 2u32..=4, internal in 2u32..=3
        ) {
            let shape = TreeShape { leaf_arity: leaf, internal_arity: internal };
            let tree = ProofTree::plan(segments, shape).expect("plan");
            prop_assert_eq!(tree.width(tree.depth() - 1), 1);
            prop_assert_eq!(tree.span(tree.root()), 0..segments);
            for node in tree.nodes() {
                match tree.parent(node) {
                    None => prop_assert_eq!(node, tree.root()),
                    Some(p) => prop_assert!(tree.children(p).contains(&node)),
                }
                let span = tree.span(node);
                prop_assert!(!span.is_empty() && span.end <= segments);
                if node.level > 0 {
                    let kids = tree.children(node);
                    // A node covers exactly what its children cover, back to back.
                    prop_assert_eq!(span.start, tree.span(kids[0]).start);
                    prop_assert_eq!(span.end, tree.span(*kids.last().expect("kids")).end);
                    for pair in kids.windows(2) {
                        prop_assert_eq!(tree.span(pair[0]).end, tree.span(pair[1]).start);
                    }
                    prop_assert!(!kids.is_empty());
                    prop_assert!(kids.len() as u32 <= tree.arity(node.level));
                }
            }
        }
    }
}
