//! Retrieval of a `das` blob: its bytes lie in rows of a block's payload, so the rows
//! holding them are gathered cell by cell from custodians (original cells first, then as
//! many extension cells as the losses seen so far call for), every cell verified against
//! the DataRoot, decoded, and checked against the BlobId.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use nexus_das::params::{CELLS_PER_ROW, ORIGINAL_CELLS_PER_ROW};
use nexus_das::{Coord, DataRoot, PartialGrid, ReconstructError};
use nexus_light_client::NetCellSource;
use nexus_sampler::{Sampler, SamplerConfig};
use nexus_storage::{BlobId, BlobRegistration, Header, Height};

use super::custody::network_custody;
use super::Node;

/// Longest wait for one cell from one peer.
const CELL_TIMEOUT: Duration = Duration::from_secs(5);

/// A `das` blob's bytes and what getting them cost.
pub(crate) struct Retrieved {
    /// The blob's content, checked against its id.
    pub(crate) bytes: Vec<u8>,
    /// Cells fetched from peers (and verified).
    pub(crate) cells_fetched: u64,
    /// Bytes received for them.
    pub(crate) bytes_fetched: u64,
}

/// Why a `das` blob could not be retrieved.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RetrieveError {
    #[error("block {0} is not in the local chain")]
    NoBlock(Height),
    #[error("blob {0} is not in its block's payload")]
    NotInPayload(BlobId),
    #[error("not enough cells could be fetched: {0}")]
    Unrecoverable(ReconstructError),
    #[error("the decoded bytes are not blob {0}: its uploader committed other data")]
    WrongContent(BlobId),
    #[error("{0}")]
    Internal(String),
}

impl From<anyhow::Error> for RetrieveError {
    fn from(e: anyhow::Error) -> Self {
        RetrieveError::Internal(e.to_string())
    }
}

/// Gets the bytes of `das` blob `reg`, registered in block `height`.
pub(crate) async fn das_blob(
    node: &Node,
    height: Height,
    reg: &BlobRegistration,
) -> Result<Retrieved, RetrieveError> {
    let block = node
        .store
        .block(height)
        .map_err(|e| RetrieveError::Internal(e.to_string()))?
        .ok_or(RetrieveError::NoBlock(height))?;
    // A das blob is the whole payload of its block.
    let header = &block.header;
    if reg.policy.das_data() != Some(header.data) {
        return Err(RetrieveError::NotInPayload(reg.blob_id));
    }
    let (offset, len) = (0, reg.size);
    let params = header.data.params;
    let rows = params
        .rows_holding(offset, len)
        .ok_or(RetrieveError::NotInPayload(reg.blob_id))?;
    let mut grid = PartialGrid::new(params).map_err(RetrieveError::Unrecoverable)?;
    insert_local(node, (height, header.data.root), &rows, &mut grid)?;

    let source = Arc::new(NetCellSource::for_storage_node(
        node.net.clone(),
        node.net.peer_id(),
    ));
    source
        .prepare(height, header.data.root, network_custody(node))
        .await;
    let peers = node.net.storage_peers().await.len();
    let sampler = Sampler::new(
        source,
        SamplerConfig {
            request_timeout: CELL_TIMEOUT,
            // Custodians first, then every other storage node.
            attempts_per_cell: peers.max(1),
            ..SamplerConfig::default()
        },
    );
    let mut fetched = Fetch::default();
    // Original cells first: when they all come, nothing needs decoding.
    let originals: Vec<Coord> = rows
        .iter()
        .flat_map(|&row| {
            (0..ORIGINAL_CELLS_PER_ROW as u16).map(move |column| Coord { row, column })
        })
        .filter(|&c| !grid.has(c))
        .collect();
    fetched
        .gather(&sampler, header, originals, &mut grid)
        .await?;
    // Then, per row short of half its cells, extension cells in proportion to the losses
    // seen so far, until every row can be decoded or no peer has more.
    loop {
        let wanted = extension_cells(&grid, &rows, fetched.loss());
        if wanted.is_empty() {
            break;
        }
        let before = grid.held();
        fetched.gather(&sampler, header, wanted, &mut grid).await?;
        if grid.held() == before {
            break;
        }
    }
    let missing_rows = rows
        .iter()
        .any(|&row| row_held(&grid, row) * 2 < CELLS_PER_ROW);
    if missing_rows {
        // Too few cells in some row: decoding needs the other axes, so take every cell
        // peers have.
        let everything: Vec<Coord> = (0..params.extended_rows() as u32)
            .flat_map(|row| (0..CELLS_PER_ROW as u16).map(move |column| Coord { row, column }))
            .filter(|&c| !grid.has(c))
            .collect();
        fetched
            .gather(&sampler, header, everything, &mut grid)
            .await?;
    }
    let bytes = tokio::task::spawn_blocking(move || grid.read(offset, len))
        .await
        .map_err(|e| RetrieveError::Internal(e.to_string()))?
        .map_err(RetrieveError::Unrecoverable)?;
    if BlobId::of(&bytes) != reg.blob_id {
        return Err(RetrieveError::WrongContent(reg.blob_id));
    }
    Ok(Retrieved {
        bytes,
        cells_fetched: fetched.cells,
        bytes_fetched: fetched.bytes,
    })
}

/// Cells of `rows` this node already has: all of them if it encoded or rebuilt the
/// payload, else those of its custody.
fn insert_local(
    node: &Node,
    (height, root): (Height, DataRoot),
    rows: &[u32],
    grid: &mut PartialGrid,
) -> Result<(), RetrieveError> {
    let internal = |e: ReconstructError| RetrieveError::Internal(e.to_string());
    if let Some(data) = node.encodings.get(&root) {
        for &row in rows {
            for column in 0..CELLS_PER_ROW as u16 {
                let c = Coord { row, column };
                grid.insert_elements(c, data.cell_elements(c))
                    .map_err(internal)?;
            }
        }
        return Ok(());
    }
    let rows: HashSet<u32> = rows.iter().copied().collect();
    let store_error = |e: nexus_storage::StoreError| RetrieveError::Internal(e.to_string());
    for c in node.store.cells_held(height).map_err(store_error)? {
        if !rows.contains(&c.row) {
            continue;
        }
        if let Some(sample) = node.store.cell(height, c).map_err(store_error)? {
            grid.insert(c, &sample.cell.0).map_err(internal)?;
        }
    }
    Ok(())
}

/// Cells held in extended row `row`.
fn row_held(grid: &PartialGrid, row: u32) -> usize {
    (0..CELLS_PER_ROW as u16)
        .filter(|&column| grid.has(Coord { row, column }))
        .count()
}

/// For every row of `rows` missing original cells and short of half its cells, enough
/// extension cells not held yet to make up the shortfall at a loss rate of `loss`.
fn extension_cells(grid: &PartialGrid, rows: &[u32], loss: f64) -> Vec<Coord> {
    let mut wanted = Vec::new();
    for &row in rows {
        let held = row_held(grid, row);
        let complete =
            (0..ORIGINAL_CELLS_PER_ROW as u16).all(|column| grid.has(Coord { row, column }));
        if complete || held * 2 >= CELLS_PER_ROW {
            continue;
        }
        let short = CELLS_PER_ROW / 2 - held;
        let ask = ((short as f64 / (1.0 - loss).max(0.05)) * 1.1).ceil() as usize + 1;
        wanted.extend(
            (ORIGINAL_CELLS_PER_ROW as u16..CELLS_PER_ROW as u16)
                .map(|column| Coord { row, column })
                .filter(|&c| !grid.has(c))
                .take(ask),
        );
    }
    wanted
}

/// Running totals of a retrieval.
#[derive(Default)]
struct Fetch {
    asked: u64,
    cells: u64,
    bytes: u64,
}

impl Fetch {
    /// Share of the cells asked for that no peer delivered.
    fn loss(&self) -> f64 {
        if self.asked == 0 {
            return 0.0;
        }
        1.0 - self.cells as f64 / self.asked as f64
    }

    /// Fetches `coords` (verified by the sampler) into `grid`.
    async fn gather(
        &mut self,
        sampler: &Sampler<NetCellSource>,
        header: &Header,
        coords: Vec<Coord>,
        grid: &mut PartialGrid,
    ) -> Result<(), RetrieveError> {
        if coords.is_empty() {
            return Ok(());
        }
        self.asked += coords.len() as u64;
        let report = sampler.fetch_cells(header.data.root, coords).await;
        self.bytes += report.bytes;
        self.cells += report.samples.len() as u64;
        for sample in report.samples {
            grid.insert(sample.coord, &sample.cell.0)
                .map_err(|e| RetrieveError::Internal(e.to_string()))?;
        }
        Ok(())
    }
}
