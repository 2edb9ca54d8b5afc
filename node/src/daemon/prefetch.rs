//! Custody ahead of finality: a storage node fetches its custody cells of a `das` blob as
//! soon as the blob's registration reaches it — from the uploader, which serves the whole
//! grid until then — and keeps them in memory until the block carrying the blob is final,
//! when custody stores them. Custody then does not depend on the uploader staying up after
//! the validators found the data available.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use nexus_consensus::DataHeader;
use nexus_das::{DataRoot, Sample};
use nexus_net::PeerId;

use super::custody::{custody_at, fetch_verified, wanted};
use super::Node;

/// Grids whose cells are kept waiting for their block (the oldest are dropped first).
const STAGED_GRIDS: usize = 16;
/// Grids fetched at once.
const MAX_FETCHING: usize = 4;

/// Custody cells of `das` blobs not final yet, by DataRoot.
#[derive(Default)]
pub(crate) struct Staged {
    grids: Mutex<VecDeque<(DataRoot, Vec<Sample>)>>,
    fetching: Mutex<HashSet<DataRoot>>,
}

impl Staged {
    /// Starts fetching this node's custody cells of the grid of `data`, unless they are
    /// held or being fetched already, this node encoded it, enough fetches run, or the node
    /// was told to fetch late (tests).
    pub(crate) fn start(node: &Arc<Node>, data: DataHeader) {
        let this = &node.staged;
        if data.is_empty()
            || node.encodings.get(&data.root).is_some()
            || node.has_fault(super::Fault::LateCustody)
        {
            return;
        }
        if this
            .grids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|(r, _)| *r == data.root)
        {
            return;
        }
        {
            let mut fetching = this.fetching.lock().unwrap_or_else(|p| p.into_inner());
            if fetching.len() >= MAX_FETCHING || !fetching.insert(data.root) {
                return;
            }
        }
        let node = node.clone();
        tokio::spawn(async move {
            let samples = fetch_custody(&node, data).await;
            let this = &node.staged;
            this.fetching
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&data.root);
            tracing::info!(root = %data.root, cells = samples.len(), "custody cells staged");
            let mut grids = this.grids.lock().unwrap_or_else(|p| p.into_inner());
            grids.push_back((data.root, samples));
            while grids.len() > STAGED_GRIDS {
                grids.pop_front();
            }
        });
    }

    /// The staged cells of the grid committed by `root`, handed over once.
    pub(crate) fn take(&self, root: &DataRoot) -> Option<Vec<Sample>> {
        let mut grids = self.grids.lock().unwrap_or_else(|p| p.into_inner());
        let at = grids.iter().position(|(r, _)| r == root)?;
        grids.remove(at).map(|(_, samples)| samples)
    }
}

/// This node's custody cells of the grid of `data`, as the next block would assign them,
/// from storage peers (the uploader among them), each verified.
async fn fetch_custody(node: &Node, data: DataHeader) -> Vec<Sample> {
    let Some(tip) = node.store.tip() else {
        return Vec::new();
    };
    let height = tip.header.height.next().unwrap_or(tip.header.height);
    let me = node.net.peer_id().to_bytes();
    let mut nodes: Vec<Vec<u8>> = node
        .net
        .storage_peers()
        .await
        .into_iter()
        .map(PeerId::to_bytes)
        .collect();
    nodes.push(me.clone());
    let custody = custody_at(node, &nodes, height);
    let coords = wanted(&custody, &me, &data.params);
    fetch_verified(node, height, &data, &coords).await
}
