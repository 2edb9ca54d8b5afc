//! Proving a whole job in one process, node by node in the order the network proves it
//! (segments, then each level of the tree), each proof checked as its receiver would check
//! it. For `nexus compute prove` and the benchmarks; the network splits the same steps
//! between delegators and orchestrators.

use std::time::{Duration, Instant};

use super::{NodeProof, Program, Run, UniversalProof, Zkvm, ZkvmError};
use crate::tree::{NodeRef, ProofTree, TreeShape};

/// A node proven, reported as the tree is proven.
#[derive(Debug, Clone)]
pub struct NodeProven {
    /// The node.
    pub node: NodeRef,
    /// Time to prove it.
    pub took: Duration,
    /// Size of its proof, encoded.
    pub bytes: usize,
}

/// What [`Zkvm::prove_tree`] reports as it goes.
#[derive(Debug, Clone)]
pub enum TreeEvent {
    /// A node's proof is being made.
    Starting(NodeRef),
    /// A node is proven (and its proof checked).
    Proven(NodeProven),
    /// The root is sealed into the Universal Proof, with this many wraps, in this time.
    Sealed {
        /// Single-child recursive layers added ([`ProofTree::seal_wraps`]).
        wraps: u32,
        /// Time to seal.
        took: Duration,
    },
}

impl Zkvm {
    /// Proves every node of `run`'s tree planned with `shape` and seals the root,
    /// reporting each node as it starts and once it is proven.
    pub fn prove_tree(
        &self,
        program: &Program,
        input: &[u8],
        run: &Run,
        shape: TreeShape,
        mut on_event: impl FnMut(&TreeEvent),
    ) -> Result<UniversalProof, ZkvmError> {
        let tree = ProofTree::plan(run.segments.len() as u32, shape)
            .map_err(|e| ZkvmError::Prover(e.to_string()))?;
        let boundaries = self
            .boundaries(program, input, run)
            .map_err(|e| ZkvmError::Prover(e.to_string()))?;
        let mut below: Vec<NodeProof> = Vec::new();
        for level in 0..tree.depth() {
            let mut proven = Vec::with_capacity(tree.width(level) as usize);
            for index in 0..tree.width(level) {
                let node = NodeRef { level, index };
                on_event(&TreeEvent::Starting(node));
                let started = Instant::now();
                let proof = if level == 0 {
                    self.prove_segment(program, input, run, index as usize)?
                } else {
                    let children: Vec<NodeProof> = tree
                        .children(node)
                        .iter()
                        .map(|c| below[c.index as usize].clone())
                        .collect();
                    self.fold(tree.level_kind(level), &children)?
                };
                let took = started.elapsed();
                self.check(program, &tree, node, &boundaries, &proof)
                    .map_err(|e| {
                        ZkvmError::Prover(format!("own proof of {node:?} refused: {e}"))
                    })?;
                on_event(&TreeEvent::Proven(NodeProven {
                    node,
                    took,
                    bytes: proof.to_bytes().len(),
                }));
                proven.push(proof);
            }
            below = proven;
        }
        let root = below
            .pop()
            .ok_or_else(|| ZkvmError::Prover("the tree has no root".into()))?;
        let started = Instant::now();
        let sealed = self.seal(program, input, run, &tree, &root)?;
        on_event(&TreeEvent::Sealed {
            wraps: tree.seal_wraps(),
            took: started.elapsed(),
        });
        Ok(sealed)
    }
}
