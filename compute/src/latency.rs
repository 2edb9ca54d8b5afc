//! How long a job's proof tree takes when its nodes are proven in parallel: segments by
//! `delegators` machines, folds by `orchestrators` machines, a node started as soon as its
//! children are proven and a machine of its kind is free (greedy, level by level). Fed
//! with measured node times, it tells the speed-up the tree buys on more machines than a
//! benchmark host has.

use std::time::Duration;

use crate::tree::{NodeRef, ProofTree};

/// Machines working on one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Machines {
    /// Machines proving segments (level 0), one node at a time each.
    pub delegators: u32,
    /// Machines folding (every level above 0), one node at a time each.
    pub orchestrators: u32,
}

/// The time from the job's start until its root is proven, when node `n` takes
/// `time(n)` on any machine of its kind. At least one machine of each kind is assumed.
pub fn tree_latency(
    tree: &ProofTree,
    machines: Machines,
    time: impl Fn(NodeRef) -> Duration,
) -> Duration {
    let mut delegators = vec![Duration::ZERO; machines.delegators.max(1) as usize];
    let mut orchestrators = vec![Duration::ZERO; machines.orchestrators.max(1) as usize];
    // Finish times per level, indexed like the level's nodes.
    let mut finished: Vec<Vec<Duration>> = Vec::new();
    for level in 0..tree.depth() {
        let mut row = Vec::with_capacity(tree.width(level) as usize);
        for index in 0..tree.width(level) {
            let node = NodeRef { level, index };
            let ready = tree
                .children(node)
                .iter()
                .map(|c| finished[c.level as usize][c.index as usize])
                .max()
                .unwrap_or_default();
            let pool = if level == 0 {
                &mut delegators
            } else {
                &mut orchestrators
            };
            // The machine free first; every pool has at least one.
            let free = pool.iter_mut().min().expect("a pool has a machine");
            let end = (*free).max(ready) + time(node);
            *free = end;
            row.push(end);
        }
        finished.push(row);
    }
    finished
        .last()
        .and_then(|root| root.first().copied())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::TreeShape;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// Segments 10 s, leaves 20 s, folds above 30 s.
    fn times(node: NodeRef) -> Duration {
        secs(match node.level {
            0 => 10,
            1 => 20,
            _ => 30,
        })
    }

    #[test]
    fn one_machine_each_is_the_sum_of_the_segments_then_the_folds() {
        let tree = ProofTree::plan(8, TreeShape::WIDEST).expect("a tree");
        let one = Machines {
            delegators: 1,
            orchestrators: 1,
        };
        // 8 segments end at 80 s; leaf 0 ran from 40 s to 60 s, leaf 1 from 80 s to 100 s;
        // then internal-for-leaf and one internal-recursive level: 160 s.
        assert_eq!(tree_latency(&tree, one, times), secs(160));
    }

    #[test]
    fn a_machine_per_node_leaves_only_the_critical_path() {
        let tree = ProofTree::plan(16, TreeShape::WIDEST).expect("a tree");
        let plenty = Machines {
            delegators: 16,
            orchestrators: 16,
        };
        let levels = u64::from(tree.depth());
        let path = 10 + 20 + 30 * (levels - 2);
        assert_eq!(tree_latency(&tree, plenty, times), secs(path));
    }

    #[test]
    fn more_machines_never_take_longer() {
        for segments in [1, 2, 5, 16, 33] {
            let tree = ProofTree::plan(segments, TreeShape::WIDEST).expect("a tree");
            let mut last = Duration::MAX;
            for k in 1..=20 {
                let latency = tree_latency(
                    &tree,
                    Machines {
                        delegators: k,
                        orchestrators: 1,
                    },
                    times,
                );
                assert!(latency <= last, "{segments} segments, {k} delegators");
                last = latency;
            }
        }
    }

    #[test]
    fn zero_machines_count_as_one() {
        let tree = ProofTree::plan(3, TreeShape::WIDEST).expect("a tree");
        let none = Machines {
            delegators: 0,
            orchestrators: 0,
        };
        let one = Machines {
            delegators: 1,
            orchestrators: 1,
        };
        assert_eq!(
            tree_latency(&tree, none, times),
            tree_latency(&tree, one, times)
        );
    }
}
