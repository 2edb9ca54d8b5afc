//! Custody cells: the samples of block payloads this node keeps, keyed by height and
//! coordinates. Callers verify samples against the block's DataRoot before storing them.

use nexus_das::{Coord, Sample};

use super::{decode, encode, Store, StoreError};
use crate::block::Height;

fn cell_key(height: Height, coord: Coord) -> [u8; 14] {
    let mut k = [0; 14];
    k[..8].copy_from_slice(&height.0.to_be_bytes());
    k[8..12].copy_from_slice(&coord.row.to_be_bytes());
    k[12..].copy_from_slice(&coord.column.to_be_bytes());
    k
}

impl Store {
    /// Stores verified samples of block `height`'s payload, durably.
    pub fn put_cells(&self, height: Height, samples: &[Sample]) -> Result<(), StoreError> {
        let mut batch = self.db.batch();
        for s in samples {
            batch.insert(&self.ks.cells, cell_key(height, s.coord), encode(s));
        }
        batch.commit()?;
        self.persist()
    }

    /// The stored sample at `coord` of block `height`, if held.
    pub fn cell(&self, height: Height, coord: Coord) -> Result<Option<Sample>, StoreError> {
        self.ks
            .cells
            .get(cell_key(height, coord))?
            .map(|v| decode("cells", &v))
            .transpose()
    }

    /// Forgets every custody cell (an operator wiping custody; tests of refilling it).
    pub fn drop_all_cells(&self) -> Result<(), StoreError> {
        self.drop_cells_with_prefix(&[])
    }

    /// Forgets the custody cells of block `height`.
    pub fn drop_cells(&self, height: Height) -> Result<(), StoreError> {
        self.drop_cells_with_prefix(&height.0.to_be_bytes())
    }

    fn drop_cells_with_prefix(&self, prefix: &[u8]) -> Result<(), StoreError> {
        let keys: Vec<_> = self
            .ks
            .cells
            .prefix(prefix)
            .map(|item| item.key())
            .collect::<Result<_, _>>()?;
        for k in keys {
            self.ks.cells.remove(k)?;
        }
        self.persist()
    }

    /// Coordinates held for block `height`.
    pub fn cells_held(&self, height: Height) -> Result<Vec<Coord>, StoreError> {
        let mut coords = Vec::new();
        for item in self.ks.cells.prefix(height.0.to_be_bytes()) {
            let (k, _) = item.into_inner()?;
            if k.len() == 14 {
                coords.push(Coord {
                    row: u32::from_be_bytes([k[8], k[9], k[10], k[11]]),
                    column: u16::from_be_bytes([k[12], k[13]]),
                });
            }
        }
        Ok(coords)
    }
}
