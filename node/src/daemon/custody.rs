//! Custody of block payloads: the uploader of a `das` blob encodes it and serves its
//! cells; every storage node keeps the cells of its custody groups, fetched from peers and
//! verified against the block's DataRoot; and anyone's cell requests are answered.

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use nexus_consensus::DataHeader;
use nexus_das::params::CELLS_PER_ROW;
use nexus_das::CodeParams;
use nexus_das::{
    verify_samples, Coord, DataRoot, ExtendedData, PartialGrid, ProofStrategy, Sample,
};
use nexus_light_client::custody_params;
use nexus_net::protocol::cells::{CellsRequest, CellsResponse, MAX_CELLS_PER_REQUEST};
use nexus_net::PeerId;
use nexus_sampler::{Custody, CustodyParams};
use nexus_storage::{Header, Height};

use super::{Fault, Node};

/// Encoded grids (das blobs this node uploaded, payloads it rebuilt) served from memory;
/// a 6 MiB blob's grid with its proofs takes about 30 MiB.
const RECENT_ENCODINGS: usize = 16;
/// Blocks behind the tip whose custody is still checked and filled.
const CUSTODY_WINDOW: u64 = 256;

/// Recent encoded grids by DataRoot, newest last, and the blocks a rebuild was tried for.
#[derive(Default)]
pub(crate) struct Encodings {
    recent: Mutex<VecDeque<Arc<ExtendedData>>>,
    rebuilds: Mutex<BTreeSet<Height>>,
}

impl Encodings {
    /// True the first time it is asked about `height` (recent heights only are kept).
    fn first_attempt(&self, height: Height) -> bool {
        let mut tried = self.rebuilds.lock().unwrap_or_else(|p| p.into_inner());
        while tried.len() > CUSTODY_WINDOW as usize {
            tried.pop_first();
        }
        tried.insert(height)
    }

    /// Keeps an encoded grid (the oldest is dropped past the limit).
    pub(crate) fn insert(&self, data: Arc<ExtendedData>) {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent.retain(|d| d.root() != data.root());
        recent.push_back(data);
        while recent.len() > RECENT_ENCODINGS {
            recent.pop_front();
        }
    }

    /// Forgets the grid committed by `root` (its data expired, or is withheld).
    pub(crate) fn forget(&self, root: &DataRoot) {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent.retain(|d| d.root() != *root);
    }

    /// The grid committed by `root`, if this node encoded or rebuilt it lately.
    pub(crate) fn get(&self, root: &DataRoot) -> Option<Arc<ExtendedData>> {
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent.iter().find(|d| d.root() == *root).cloned()
    }
}

/// The network's custody parameters (the defaults until this node has a chain).
pub(crate) fn network_custody(node: &Node) -> CustodyParams {
    node.context()
        .map_or(CustodyParams::DEFAULT, |c| custody_params(c.spec()))
}

/// The custody assignment for block `height` over `nodes`, the storage nodes this node
/// knows (its identified storage peers and itself).
pub(crate) fn custody_at(node: &Node, nodes: &[Vec<u8>], height: Height) -> Custody<Vec<u8>> {
    let params = network_custody(node);
    Custody::new(params, params.epoch_of(height.0), nodes.iter().cloned())
}

/// The cells of a grid laid out as `layout` that this node keeps.
pub(crate) fn wanted(custody: &Custody<Vec<u8>>, me: &[u8], layout: &CodeParams) -> Vec<Coord> {
    custody.cells_of(&me.to_vec(), layout.extended_rows() as u32)
}

/// Answers a cell request from memory (recent blocks encoded or reconstructed here) or
/// the custody store.
pub(crate) async fn serve(node: &Node, request: CellsRequest) -> CellsResponse {
    let coords: Vec<Coord> = request
        .coords
        .into_iter()
        .take(MAX_CELLS_PER_REQUEST)
        .collect();
    let (height, root) = (request.height, request.root);
    // Cells kept in custody are filed by height: served only if that final block's payload
    // is the grid asked for (a grid not final yet may be asked for by a height it will not
    // end up at).
    let is_final = matches!(node.store.block(height), Ok(Some(b)) if b.header.data.root == root);
    let samples: Vec<Option<Sample>> = match node.encodings.get(&root) {
        Some(data) => coords.iter().map(|&c| data.sample(c)).collect(),
        None if is_final => {
            let store = node.store.clone();
            let wanted = coords.clone();
            tokio::task::spawn_blocking(move || {
                wanted
                    .into_iter()
                    .map(|c| store.cell(height, c).ok().flatten())
                    .collect()
            })
            .await
            .unwrap_or_default()
        }
        None => vec![None; coords.len()],
    };
    // Faults that withhold cells strike once the grid is a final block's payload: the data
    // was there when validators sampled it, and goes missing after.
    CellsResponse {
        samples: samples
            .into_iter()
            .map(|s| misbehave(node, is_final, s))
            .collect(),
    }
}

/// What a node started with a cell fault does to a sample it is about to serve (of a
/// final block's payload if `is_final`).
fn misbehave(node: &Node, is_final: bool, sample: Option<Sample>) -> Option<Sample> {
    let mut sample = sample?;
    let params = sample.params;
    let corner = |c: Coord| {
        let [a, b] = params.row_position(c.row as usize);
        a <= params.original_len(1)
            && b <= params.original_len(2)
            && usize::from(c.column) <= params.original_len(0)
    };
    // The corner's far cell: position k on every used axis (0 on unused ones).
    let far = |axis: usize| {
        if axis < usize::from(params.dims) {
            params.original_len(axis)
        } else {
            0
        }
    };
    let spared = Coord {
        row: params.row_at([far(1), far(2)]) as u32,
        column: far(0) as u16,
    };
    let withheld = (is_final && node.has_fault(Fault::WithholdCorner) && corner(sample.coord))
        || (is_final
            && node.has_fault(Fault::WithholdCornerButOne)
            && corner(sample.coord)
            && sample.coord != spared)
        || node.has_fault(Fault::WithholdProposals);
    if withheld {
        return None;
    }
    if node.has_fault(Fault::WrongProofs) {
        sample.proof = sample.commitment;
    }
    Some(sample)
}

/// Keeps this node's custody filled for recent blocks: every few seconds, and whenever the
/// chain grows. Heights whose custody is settled are not looked at again until the set of
/// storage nodes changes (which changes who keeps what).
pub(crate) async fn custody_loop(node: Arc<Node>) {
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    let mut new_block = node.new_block.subscribe();
    let mut settled: BTreeSet<Height> = BTreeSet::new();
    let mut known: Vec<Vec<u8>> = Vec::new();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = new_block.changed() => {}
        }
        let Some(tip) = node.store.tip() else {
            continue;
        };
        let mut nodes: Vec<Vec<u8>> = vec![node.net.peer_id().to_bytes()];
        nodes.extend(
            node.net
                .storage_peers()
                .await
                .into_iter()
                .map(PeerId::to_bytes),
        );
        nodes.sort();
        if nodes != known {
            settled.clear();
            known = nodes;
        }
        let from = tip.header.height.0.saturating_sub(CUSTODY_WINDOW);
        settled.retain(|h| h.0 >= from);
        for h in (from..=tip.header.height.0).map(Height) {
            if settled.contains(&h) {
                continue;
            }
            match fill(&node, &known, h).await {
                Ok(()) => {
                    settled.insert(h);
                }
                Err(e) => tracing::debug!(height = %h, "custody not filled yet: {e}"),
            }
        }
    }
}

/// Fetches the custody cells of block `height` that are missing: those staged before the
/// block was final, from memory if this node encoded or rebuilt the payload, else from
/// storage peers; if peers cannot supply them all, rebuilds the payload from whatever
/// cells they have (once per block).
async fn fill(node: &Node, nodes: &[Vec<u8>], height: Height) -> anyhow::Result<()> {
    let Some(block) = node.store.block(height)? else {
        return Ok(());
    };
    let header = &block.header;
    if header.data.is_empty() || node.store.das_blobs_expired(height)? {
        return Ok(());
    }
    if node.has_fault(super::Fault::LateCustody)
        && crate::units::now_ms() < header.timestamp_ms.saturating_add(LATE_CUSTODY_MS)
    {
        anyhow::bail!("fault late-custody: waiting until the block has been final a while");
    }
    let me = node.net.peer_id().to_bytes();
    let custody = custody_at(node, nodes, height);
    let held: HashSet<Coord> = node.store.cells_held(height)?.into_iter().collect();
    let mut missing: Vec<Coord> = wanted(&custody, &me, &header.data.params)
        .into_iter()
        .filter(|c| !held.contains(c))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let root = header.data.root;
    if let Some(staged) = node.staged.take(&root) {
        let wanted: HashSet<Coord> = missing.iter().copied().collect();
        let keep: Vec<Sample> = staged
            .into_iter()
            .filter(|s| wanted.contains(&s.coord))
            .collect();
        tokio::task::block_in_place(|| node.store.put_cells(height, &keep))?;
        let got: HashSet<Coord> = keep.iter().map(|s| s.coord).collect();
        missing.retain(|c| !got.contains(c));
        if missing.is_empty() {
            return Ok(());
        }
    }
    if node.encodings.get(&root).is_none() {
        let samples = fetch_verified(node, height, &header.data, &missing).await;
        // A few MiB of writes: keep them off the threads that answer peers.
        tokio::task::block_in_place(|| node.store.put_cells(height, &samples))?;
        let got: HashSet<Coord> = samples.iter().map(|s| s.coord).collect();
        missing.retain(|c| !got.contains(c));
        if missing.is_empty() {
            return Ok(());
        }
        if !node.encodings.first_attempt(height) {
            anyhow::bail!(
                "{} custody cells missing and not recoverable",
                missing.len()
            );
        }
        tracing::debug!(%height, missing = missing.len(), "custody cells unavailable, rebuilding");
        let data = rebuild(node, header).await?;
        tracing::info!(%height, "rebuilt a block's payload from peers' cells");
        node.encodings.insert(Arc::new(data));
    }
    if let Some(data) = node.encodings.get(&root) {
        let samples: Vec<Sample> = missing.iter().filter_map(|&c| data.sample(c)).collect();
        tokio::task::block_in_place(|| node.store.put_cells(height, &samples))?;
    }
    Ok(())
}

/// How long after its block's time a node with the `late-custody` fault fetches cells.
const LATE_CUSTODY_MS: u64 = 2_000;

/// Batches of cells asked for at once, each of its own peers.
const PARALLEL_BATCHES: usize = 8;

/// Asks storage peers for the cells at `coords` of the block with `header`, and returns
/// those that verify against its DataRoot. Cells go out in batches of one custody group,
/// in parallel, each to the group's custodians first and then to every other peer until
/// its cells are found. A peer serving cells that do not verify is penalised and not asked
/// again.
pub(crate) async fn fetch_verified(
    node: &Node,
    height: Height,
    data: &DataHeader,
    coords: &[Coord],
) -> Vec<Sample> {
    let peers = node.net.storage_peers().await;
    let mut nodes: Vec<Vec<u8>> = peers.iter().map(|p| p.to_bytes()).collect();
    nodes.push(node.net.peer_id().to_bytes());
    let custody = custody_at(node, &nodes, height);
    let peer_bytes: Vec<Vec<u8>> = peers.iter().map(|p| p.to_bytes()).collect();
    let batches: Vec<(Vec<PeerId>, Vec<Coord>)> = custody
        .fetch_plan(coords, &peer_bytes, MAX_CELLS_PER_REQUEST)
        .into_iter()
        .map(|(order, cells)| {
            let order = order
                .iter()
                .filter_map(|id| PeerId::from_bytes(id).ok())
                .collect();
            (order, cells)
        })
        .collect();
    let banned: Mutex<HashSet<PeerId>> = Mutex::new(HashSet::new());
    let found: Vec<Vec<Sample>> = futures::stream::iter(batches)
        .map(|(order, batch)| fetch_batch(node, (height, data), order, batch, &banned))
        .buffer_unordered(PARALLEL_BATCHES)
        .collect()
        .await;
    found.into_iter().flatten().collect()
}

/// One batch of [`fetch_verified`]: asks `peers` in order until its cells are found.
async fn fetch_batch(
    node: &Node,
    (height, data): (Height, &DataHeader),
    peers: Vec<PeerId>,
    mut missing: Vec<Coord>,
    banned: &Mutex<HashSet<PeerId>>,
) -> Vec<Sample> {
    let mut found = Vec::new();
    for peer in peers {
        if missing.is_empty() {
            break;
        }
        if banned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&peer)
        {
            continue;
        }
        let request = CellsRequest {
            height,
            root: data.root,
            coords: missing.clone(),
        };
        let response = match node.net.request_cells(peer, request).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!("cells request failed: {e}");
                continue;
            }
        };
        let samples: Vec<Sample> = response
            .samples
            .into_iter()
            .zip(&missing)
            .filter_map(|(s, c)| s.filter(|s| s.coord == *c))
            .collect();
        if samples.is_empty() {
            continue;
        }
        let valid = tokio::task::block_in_place(|| verify_samples(&data.root, &samples));
        if valid.is_err() {
            tracing::warn!(%peer, %height, "peer served cells that do not verify");
            banned
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(peer);
            node.net.penalise(peer).await;
            continue;
        }
        missing.retain(|c| !samples.iter().any(|s| s.coord == *c));
        found.extend(samples);
    }
    found
}

/// Rebuilds a block's payload from every cell peers (and this node) hold, and encodes it
/// again, which also restores cells nobody was serving.
async fn rebuild(node: &Node, header: &Header) -> anyhow::Result<ExtendedData> {
    let params = header.data.params;
    let mut grid = PartialGrid::new(params)?;
    for coord in node.store.cells_held(header.height)? {
        if let Some(sample) = node.store.cell(header.height, coord)? {
            grid.insert(coord, &sample.cell.0)?;
        }
    }
    let wanted: Vec<Coord> = (0..params.extended_rows() as u32)
        .flat_map(|row| (0..CELLS_PER_ROW as u16).map(move |column| Coord { row, column }))
        .filter(|&c| !grid.has(c))
        .collect();
    tracing::debug!(
        held = grid.held(),
        "rebuild: asking peers for {} cells",
        wanted.len()
    );
    for sample in fetch_verified(node, header.height, &header.data, &wanted).await {
        grid.insert(sample.coord, &sample.cell.0)?;
    }
    tracing::debug!(held = grid.held(), "rebuild: decoding");
    let root = header.data.root;
    tokio::task::spawn_blocking(move || {
        let data = grid.into_data()?;
        let encoded = ExtendedData::encode_with(&data, params, ProofStrategy::FASTEST)?;
        anyhow::ensure!(
            encoded.root() == root,
            "rebuilt payload has another DataRoot"
        );
        Ok(encoded)
    })
    .await?
}

/// The state of every cell of block `height`'s extended grid as this node sees it, one
/// string per row: `H` held here, `S` sampled from a peer and verified, `M` asked for and
/// not found, `.` not checked. Up to `samples` cells this node does not hold are sampled.
pub(crate) async fn grid_view(
    node: &Node,
    height: Height,
    samples: usize,
) -> anyhow::Result<Option<GridView>> {
    let Some(block) = node.store.block(height)? else {
        return Ok(None);
    };
    let header = &block.header;
    let params = header.data.params;
    let rows = params.extended_rows();
    let mut grid = vec![vec![b'.'; CELLS_PER_ROW]; rows];
    let held: HashSet<Coord> = match node.encodings.get(&header.data.root) {
        Some(_) => grid_coords(rows).collect(),
        None => node.store.cells_held(height)?.into_iter().collect(),
    };
    let mut others: Vec<Coord> = grid_coords(rows).filter(|c| !held.contains(c)).collect();
    {
        use rand::seq::SliceRandom as _;
        others.shuffle(&mut rand::thread_rng());
    }
    others.truncate(samples);
    if header.data.is_empty() {
        others.clear();
    }
    let found: HashSet<Coord> = fetch_verified(node, height, &header.data, &others)
        .await
        .into_iter()
        .map(|s| s.coord)
        .collect();
    for c in &held {
        grid[c.row as usize][usize::from(c.column)] = b'H';
    }
    for c in &others {
        grid[c.row as usize][usize::from(c.column)] = if found.contains(c) { b'S' } else { b'M' };
    }
    Ok(Some(GridView {
        height,
        root: header.data.root.to_string(),
        dims: params.dims,
        data_len: params.data_len,
        rows: grid
            .into_iter()
            .map(|r| String::from_utf8_lossy(&r).into_owned())
            .collect(),
    }))
}

fn grid_coords(rows: usize) -> impl Iterator<Item = Coord> {
    (0..rows as u32)
        .flat_map(|row| (0..CELLS_PER_ROW as u16).map(move |column| Coord { row, column }))
}

pub(crate) use nexus_api::types::GridView;
