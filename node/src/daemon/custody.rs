//! Custody of block payloads: the proposer encodes each block's payload and serves its
//! cells; every storage node keeps the cells of its custody groups, fetched from peers and
//! verified against the block's DataRoot; and anyone's cell requests are answered.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nexus_das::{verify_samples, Coord, ExtendedData, ProofStrategy, Sample};
use nexus_net::protocol::cells::{CellsRequest, CellsResponse, MAX_CELLS_PER_REQUEST};
use nexus_net::PeerId;
use nexus_sampler::{Custody, CustodyParams};
use nexus_storage::block::BlockPayload;
use nexus_storage::{Block, Header, Height};

use super::Node;

/// Encoded payloads of the most recent blocks this node proposed, served from memory.
const RECENT_ENCODINGS: usize = 64;
/// Blocks behind the tip whose custody is still checked and filled.
const CUSTODY_WINDOW: u64 = 256;

/// Recent encoded payloads, newest last.
#[derive(Default)]
pub(crate) struct Encodings(Mutex<VecDeque<(Height, Arc<ExtendedData>)>>);

impl Encodings {
    fn insert(&self, height: Height, data: Arc<ExtendedData>) {
        let mut recent = self.0.lock().unwrap_or_else(|p| p.into_inner());
        recent.push_back((height, data));
        while recent.len() > RECENT_ENCODINGS {
            recent.pop_front();
        }
    }

    fn get(&self, height: Height) -> Option<Arc<ExtendedData>> {
        let recent = self.0.lock().unwrap_or_else(|p| p.into_inner());
        recent
            .iter()
            .find(|(h, _)| *h == height)
            .map(|(_, d)| d.clone())
    }
}

/// The custody assignment for block `height` over the storage nodes this node knows
/// (its identified storage peers and itself).
pub(crate) async fn custody_at(node: &Node, height: Height) -> Custody<Vec<u8>> {
    let mut nodes: Vec<Vec<u8>> = vec![node.net.peer_id().to_bytes()];
    if let Some(info) = node.net.info().await {
        nodes.extend(info.storage_peers.into_iter().map(PeerId::to_bytes));
    }
    let params = CustodyParams::DEFAULT;
    Custody::new(params, params.epoch_of(height.0), nodes)
}

/// The cells of block `header`'s payload that this node keeps.
fn wanted(custody: &Custody<Vec<u8>>, me: &[u8], header: &Header) -> Vec<Coord> {
    let params = custody.params();
    let rows = header.data.params.extended_rows() as u32;
    custody
        .groups_of(&me.to_vec())
        .into_iter()
        .flat_map(|g| params.columns(g).collect::<Vec<_>>())
        .flat_map(|column| (0..rows).map(move |row| Coord { row, column }))
        .collect()
}

/// On the proposer: encodes a block it just proposed and keeps it for serving cells.
pub(crate) async fn encode_own_block(node: &Node, block: &Block) {
    if block.header.data.is_empty() {
        return;
    }
    let payload = BlockPayload::of(&block.transactions).to_bytes();
    let params = block.header.data.params;
    let encoded = tokio::task::spawn_blocking(move || {
        ExtendedData::encode_with(&payload, params, ProofStrategy::FASTEST)
    })
    .await;
    match encoded {
        Ok(Ok(data)) if data.root() == block.header.data.root => {
            node.encodings.insert(block.header.height, Arc::new(data));
        }
        _ => tracing::error!(height = %block.header.height, "cannot encode own block's payload"),
    }
}

/// Answers a cell request from memory (own recent blocks) or the custody store.
pub(crate) async fn serve(node: &Node, request: CellsRequest) -> CellsResponse {
    let coords: Vec<Coord> = request
        .coords
        .into_iter()
        .take(MAX_CELLS_PER_REQUEST)
        .collect();
    if let Some(data) = node.encodings.get(request.height) {
        return CellsResponse {
            samples: coords.into_iter().map(|c| data.sample(c)).collect(),
        };
    }
    let store = node.store.clone();
    let height = request.height;
    let samples = tokio::task::spawn_blocking(move || {
        coords
            .into_iter()
            .map(|c| store.cell(height, c).ok().flatten())
            .collect()
    })
    .await
    .unwrap_or_default();
    CellsResponse { samples }
}

/// Keeps this node's custody filled for recent blocks: every few seconds, and whenever the
/// chain grows.
pub(crate) async fn custody_loop(node: Arc<Node>) {
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    let mut new_block = node.new_block.subscribe();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = new_block.changed() => {}
        }
        let Some(tip) = node.store.tip() else {
            continue;
        };
        let from = tip.header.height.0.saturating_sub(CUSTODY_WINDOW);
        for h in from..=tip.header.height.0 {
            if let Err(e) = fill(&node, Height(h)).await {
                tracing::debug!(height = h, "custody not filled yet: {e}");
            }
        }
    }
}

/// Fetches the custody cells of block `height` that are missing, from storage peers.
async fn fill(node: &Node, height: Height) -> anyhow::Result<()> {
    let Some(block) = node.store.block(height)? else {
        return Ok(());
    };
    let header = &block.header;
    if header.data.is_empty() {
        return Ok(());
    }
    let me = node.net.peer_id().to_bytes();
    let custody = custody_at(node, height).await;
    let held: std::collections::HashSet<Coord> =
        node.store.cells_held(height)?.into_iter().collect();
    let mut missing: Vec<Coord> = wanted(&custody, &me, header)
        .into_iter()
        .filter(|c| !held.contains(c))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if let Some(data) = node.encodings.get(height) {
        let samples: Vec<Sample> = missing.iter().filter_map(|&c| data.sample(c)).collect();
        node.store.put_cells(height, &samples)?;
        return Ok(());
    }
    let peers = node
        .net
        .info()
        .await
        .map(|i| i.storage_peers)
        .unwrap_or_default();
    for peer in peers {
        for batch in missing.clone().chunks(MAX_CELLS_PER_REQUEST) {
            let request = CellsRequest {
                height,
                coords: batch.to_vec(),
            };
            let Ok(response) = node.net.request_cells(peer, request).await else {
                break;
            };
            let samples: Vec<Sample> = response
                .samples
                .into_iter()
                .zip(batch)
                .filter_map(|(s, c)| s.filter(|s| s.coord == *c))
                .collect();
            if samples.is_empty() {
                continue;
            }
            if verify_samples(&header.data.root, &samples).is_err() {
                tracing::warn!(%peer, %height, "peer served cells that do not verify");
                node.net.penalise(peer).await;
                break;
            }
            node.store.put_cells(height, &samples)?;
            missing.retain(|c| !samples.iter().any(|s| s.coord == *c));
        }
        if missing.is_empty() {
            return Ok(());
        }
    }
    anyhow::bail!("{} custody cells still missing", missing.len())
}
