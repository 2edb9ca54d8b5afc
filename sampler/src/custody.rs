//! Custody: which storage nodes keep which cells.
//!
//! Cells are split into custody groups by column (`column mod groups`), so a node that
//! keeps a group keeps whole columns and can rebuild any of its cells from the rest of
//! that column (for d ≥ 2) or from the other cells of its row. The custodians of a group
//! in an epoch are the `custodians_per_group` nodes with the highest
//! `SHA-256("nexus/custody/1" ‖ epoch ‖ group ‖ node id)` (rendezvous hashing): every
//! group has exactly that many custodians (or every node, if there are fewer), anyone who
//! knows the node set computes the same answer with no lookup, and a node joining or
//! leaving moves only the groups it wins or loses.

use std::collections::{BTreeMap, HashSet};

use nexus_das::params::CELLS_PER_ROW;
use nexus_das::Coord;
use sha2::{Digest as _, Sha256};

/// The network's custody parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CustodyParams {
    /// Number of custody groups; a divisor of 128 so every group has the same columns.
    pub groups: u16,
    /// Nodes that keep each group.
    pub custodians_per_group: u16,
    /// Blocks per custody epoch: the assignment rotates at each epoch boundary.
    pub epoch_blocks: u64,
}

impl CustodyParams {
    /// 32 groups of 4 columns, each kept by 2 nodes: with n nodes each keeps about 2/n of
    /// every payload, and losing any one node loses no cell.
    pub const DEFAULT: CustodyParams = CustodyParams {
        groups: 32,
        custodians_per_group: 2,
        epoch_blocks: 1024,
    };

    /// The custody epoch of block `height`.
    pub fn epoch_of(&self, height: u64) -> u64 {
        height / self.epoch_blocks.max(1)
    }

    /// The group a cell belongs to.
    pub fn group_of(&self, coord: Coord) -> u16 {
        coord.column % self.groups
    }

    /// Columns of a group.
    pub fn columns(&self, group: u16) -> impl Iterator<Item = u16> + '_ {
        (0..CELLS_PER_ROW as u16).filter(move |c| c % self.groups == group)
    }
}

/// Custody assignment for one epoch over a known set of nodes.
#[derive(Debug, Clone)]
pub struct Custody<N> {
    params: CustodyParams,
    nodes: Vec<N>,
    /// For each group, indices into `nodes`, highest score first.
    by_group: Vec<Vec<usize>>,
}

fn score(epoch: u64, group: u16, node: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"nexus/custody/1");
    h.update(epoch.to_be_bytes());
    h.update(group.to_be_bytes());
    h.update(node);
    h.finalize().into()
}

impl<N: AsRef<[u8]> + Clone + Eq> Custody<N> {
    /// The assignment for `epoch` over `nodes` (duplicates are ignored).
    pub fn new(
        params: CustodyParams,
        epoch: u64,
        nodes: impl IntoIterator<Item = N>,
    ) -> Custody<N> {
        let mut seen = HashSet::new();
        let nodes: Vec<N> = nodes
            .into_iter()
            .filter(|n| seen.insert(n.as_ref().to_vec()))
            .collect();
        let by_group = (0..params.groups)
            .map(|group| {
                let mut ranked: Vec<(usize, [u8; 32])> = nodes
                    .iter()
                    .enumerate()
                    .map(|(i, n)| (i, score(epoch, group, n.as_ref())))
                    .collect();
                ranked.sort_by_key(|r| std::cmp::Reverse(r.1));
                ranked
                    .into_iter()
                    .take(usize::from(params.custodians_per_group))
                    .map(|(i, _)| i)
                    .collect()
            })
            .collect();
        Custody {
            params,
            nodes,
            by_group,
        }
    }

    /// The parameters.
    pub fn params(&self) -> &CustodyParams {
        &self.params
    }

    /// The nodes that keep the cell at `coord`.
    pub fn custodians(&self, coord: Coord) -> impl Iterator<Item = &N> + '_ {
        self.by_group[usize::from(self.params.group_of(coord))]
            .iter()
            .map(|&i| &self.nodes[i])
    }

    /// The groups `node` keeps (empty for a node outside the set).
    pub fn groups_of(&self, node: &N) -> Vec<u16> {
        let Some(index) = self.nodes.iter().position(|n| n == node) else {
            return Vec::new();
        };
        (0..self.params.groups)
            .filter(|&g| self.by_group[usize::from(g)].contains(&index))
            .collect()
    }

    /// Whether `node` keeps the cell at `coord`.
    pub fn holds(&self, node: &N, coord: Coord) -> bool {
        self.custodians(coord).any(|n| n == node)
    }

    /// Every cell `node` keeps of a grid of `rows` extended rows: the whole columns of its
    /// groups.
    pub fn cells_of(&self, node: &N, rows: u32) -> Vec<Coord> {
        self.groups_of(node)
            .into_iter()
            .flat_map(|g| self.params.columns(g).collect::<Vec<_>>())
            .flat_map(|column| (0..rows).map(move |row| Coord { row, column }))
            .collect()
    }

    /// How to fetch the cells at `coords` from `peers`: batches of at most `per_request`
    /// cells of one custody group, each with the peers to ask in order — the group's
    /// custodians among `peers` first, then every other peer in an order rotated by the
    /// group, so that the load spreads when custodians are missing.
    pub fn fetch_plan(
        &self,
        coords: &[Coord],
        peers: &[N],
        per_request: usize,
    ) -> Vec<(Vec<N>, Vec<Coord>)> {
        let mut by_group: BTreeMap<u16, Vec<Coord>> = BTreeMap::new();
        for &c in coords {
            by_group.entry(self.params.group_of(c)).or_default().push(c);
        }
        let mut batches = Vec::new();
        for (group, cells) in by_group {
            let mut order: Vec<N> = cells
                .first()
                .map(|&c| {
                    self.custodians(c)
                        .filter(|n| peers.contains(n))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            let shift = usize::from(group) % peers.len().max(1);
            for p in peers[shift..].iter().chain(&peers[..shift]) {
                if !order.contains(p) {
                    order.push(p.clone());
                }
            }
            for batch in cells.chunks(per_request.max(1)) {
                batches.push((order.clone(), batch.to_vec()));
            }
        }
        batches
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(n: u8) -> Vec<Vec<u8>> {
        (0..n).map(|i| vec![i; 38]).collect()
    }

    #[test]
    fn every_group_has_exactly_the_configured_custodians() {
        let params = CustodyParams::DEFAULT;
        let custody = Custody::new(params, 7, nodes(6));
        for column in 0..CELLS_PER_ROW as u16 {
            let coord = Coord { row: 3, column };
            let holders: Vec<_> = custody.custodians(coord).collect();
            assert_eq!(holders.len(), 2);
            assert_ne!(holders[0], holders[1]);
            assert!(holders.iter().all(|n| custody.holds(n, coord)));
        }
        let total: usize = nodes(6).iter().map(|n| custody.groups_of(n).len()).sum();
        assert_eq!(total, 2 * usize::from(params.groups));
        // Fewer nodes than custodians per group: everyone keeps everything.
        let one = Custody::new(params, 7, nodes(1));
        assert_eq!(one.groups_of(&nodes(1)[0]).len(), 32);
        assert!(one.groups_of(&vec![9u8; 38]).is_empty());
    }

    #[test]
    fn assignment_is_deterministic_rotates_by_epoch_and_moves_little_on_churn() {
        let params = CustodyParams::DEFAULT;
        let a = Custody::new(params, 1, nodes(8));
        let mut shuffled = nodes(8);
        shuffled.reverse();
        let b = Custody::new(params, 1, shuffled);
        let next = Custody::new(params, 2, nodes(8));
        let n0 = nodes(8)[0].clone();
        assert_eq!(a.groups_of(&n0), b.groups_of(&n0));
        assert_ne!(
            (0..8)
                .map(|i| a.groups_of(&nodes(8)[i]))
                .collect::<Vec<_>>(),
            (0..8)
                .map(|i| next.groups_of(&nodes(8)[i]))
                .collect::<Vec<_>>()
        );
        // A ninth node only takes groups; nobody else gains any.
        let grown = Custody::new(params, 1, nodes(9));
        for node in &nodes(8) {
            let before: HashSet<u16> = a.groups_of(node).into_iter().collect();
            assert!(grown.groups_of(node).iter().all(|g| before.contains(g)));
        }
    }

    #[test]
    fn a_node_keeps_whole_columns_of_its_groups() {
        let params = CustodyParams::DEFAULT;
        let custody = Custody::new(params, 3, nodes(6));
        let me = nodes(6)[2].clone();
        let cells = custody.cells_of(&me, 8);
        let groups = custody.groups_of(&me);
        let columns_per_group = CELLS_PER_ROW / usize::from(params.groups);
        assert_eq!(cells.len(), groups.len() * columns_per_group * 8);
        assert!(cells.iter().all(|c| custody.holds(&me, *c) && c.row < 8));
        assert!(custody.cells_of(&vec![9u8; 38], 8).is_empty());
    }

    #[test]
    fn a_fetch_plan_asks_custodians_first_and_covers_every_cell_once() {
        let params = CustodyParams::DEFAULT;
        let all = nodes(6);
        let custody = Custody::new(params, 3, all.clone());
        // This node (the last) asks the five others.
        let peers = &all[..5];
        let coords: Vec<Coord> = (0..4)
            .flat_map(|row| (0..CELLS_PER_ROW as u16).map(move |column| Coord { row, column }))
            .collect();
        let plan = custody.fetch_plan(&coords, peers, 10);
        let mut covered: Vec<Coord> = plan.iter().flat_map(|(_, c)| c.clone()).collect();
        covered.sort_by_key(|c| (c.row, c.column));
        let mut expected = coords.clone();
        expected.sort_by_key(|c| (c.row, c.column));
        assert_eq!(covered, expected);
        for (order, cells) in &plan {
            assert!(cells.len() <= 10);
            let group = params.group_of(cells[0]);
            assert!(
                cells.iter().all(|c| params.group_of(*c) == group),
                "one group per batch"
            );
            assert_eq!(order.len(), peers.len(), "every peer is a fallback");
            let custodians: Vec<&Vec<u8>> = custody
                .custodians(cells[0])
                .filter(|n| peers.contains(n))
                .collect();
            let first: Vec<&Vec<u8>> = order.iter().take(custodians.len()).collect();
            assert_eq!(first, custodians, "custodians are asked first");
        }
        assert!(custody
            .fetch_plan(&coords, &[], 10)
            .iter()
            .all(|(o, _)| o.is_empty()));
    }
}
