//! Reconstruction: from any set of cells, fill lines along every axis while a line has at
//! least half of its cells, until nothing more can be filled.
//!
//! Rows are recovered with rust_eth_kzg's cell recovery; further axes with the Fr erasure
//! decoder of [`crate::line`]. Cells given here are trusted: verify samples first.

use ekzg_bls12_381::Scalar;
use rayon::prelude::*;

use crate::field::{cell_from_bytes, unpack_into, FieldError};
use crate::kzg::RowCodec;
use crate::line::LineCode;
use crate::params::{
    CodeParams, Coord, ParamsError, BYTES_PER_CELL, CELLS_PER_ROW, CELL_ELEMENTS,
    ORIGINAL_CELLS_PER_ROW, ROW_DATA_BYTES, ROW_ELEMENTS,
};

/// Why reconstruction stopped short.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReconstructError {
    /// The parameters are invalid.
    #[error(transparent)]
    Params(#[from] ParamsError),
    /// A cell given is malformed.
    #[error("cell {coord:?}: {error}")]
    BadCell {
        /// Where.
        coord: Coord,
        /// What is wrong.
        error: FieldError,
    },
    /// A coordinate is outside the grid.
    #[error("cell {0:?} is outside the grid")]
    OutsideGrid(Coord),
    /// A cell does not hold exactly 64 field elements.
    #[error("cell {coord:?} holds {len} elements, not {CELL_ELEMENTS}")]
    BadCellLength {
        /// Where.
        coord: Coord,
        /// Elements given.
        len: usize,
    },
    /// A cell already held was given again with different contents (never overwritten).
    #[error("cell {0:?} was given twice with different contents")]
    Conflicting(Coord),
    /// Original cells are still missing and no line has enough cells to go on.
    #[error(
        "{missing_original} original cells cannot be recovered ({held} of {total} cells held); \
         rows with most missing: {}",
        worst_rows.iter().map(|(r, m)| format!("row {r}: {m} missing")).collect::<Vec<_>>().join(", ")
    )]
    Unrecoverable {
        /// Original cells still missing.
        missing_original: u64,
        /// Cells held after filling everything that could be filled.
        held: u64,
        /// Cells in the grid.
        total: u64,
        /// Up to eight rows with the most missing cells, as (row, missing cells).
        worst_rows: Vec<(u32, usize)>,
    },
    /// The cells given are not one codeword (they were not verified, or were altered).
    #[error("cells along {axis_name} line at {at:?} are inconsistent")]
    Inconsistent {
        /// "a row" or "an axis-N".
        axis_name: String,
        /// A cell on that line.
        at: Coord,
    },
    /// The byte range asked for is not inside the data.
    #[error("bytes {offset}..+{len} are outside the {data_len} bytes of data")]
    OutsideData {
        /// Start asked for.
        offset: u64,
        /// Length asked for.
        len: u64,
        /// Length of the data.
        data_len: u64,
    },
    /// The recovered data is not a packing of bytes (the encoder was not honest).
    #[error("recovered data is not packed bytes: {0}")]
    NotPacked(FieldError),
}

/// Cells a line recovery filled in, with their elements.
type Recovered = Vec<(Coord, Vec<Scalar>)>;

/// What to fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    /// Just the original cells (enough to return the data).
    Original,
    /// Every cell that can be recovered.
    Everything,
}

/// A partly known extended grid.
#[derive(Debug, Clone)]
pub struct PartialGrid {
    params: CodeParams,
    known: Vec<bool>,
    cells: Vec<Scalar>,
}

/// A line to recover: along `axis` (0 = a row), through the given cell coordinates.
struct Line {
    axis: usize,
    coords: Vec<Coord>,
}

impl PartialGrid {
    /// An empty grid for `params`.
    pub fn new(params: CodeParams) -> Result<PartialGrid, ReconstructError> {
        params.validate()?;
        let cells = params.total_cells() as usize;
        Ok(PartialGrid {
            params,
            known: vec![false; cells],
            cells: vec![Scalar::from(0u64); cells * CELL_ELEMENTS],
        })
    }

    /// The parameters.
    pub fn params(&self) -> &CodeParams {
        &self.params
    }

    fn index(&self, coord: Coord) -> usize {
        coord.row as usize * CELLS_PER_ROW + usize::from(coord.column)
    }

    /// Adds a serialized cell.
    pub fn insert(
        &mut self,
        coord: Coord,
        cell: &[u8; BYTES_PER_CELL],
    ) -> Result<(), ReconstructError> {
        let elements =
            cell_from_bytes(cell).map_err(|error| ReconstructError::BadCell { coord, error })?;
        self.insert_elements(coord, &elements)
    }

    /// Adds a cell given as its 64 field elements. Giving a held cell again is accepted
    /// only with the same contents: a different copy is refused, never written over.
    pub fn insert_elements(
        &mut self,
        coord: Coord,
        elements: &[Scalar],
    ) -> Result<(), ReconstructError> {
        if !self.params.contains(coord) {
            return Err(ReconstructError::OutsideGrid(coord));
        }
        if elements.len() != CELL_ELEMENTS {
            return Err(ReconstructError::BadCellLength {
                coord,
                len: elements.len(),
            });
        }
        if let Some(held) = self.elements(coord) {
            return if held == elements {
                Ok(())
            } else {
                Err(ReconstructError::Conflicting(coord))
            };
        }
        let i = self.index(coord);
        self.known[i] = true;
        self.cells[i * CELL_ELEMENTS..(i + 1) * CELL_ELEMENTS].copy_from_slice(elements);
        Ok(())
    }

    /// Whether the cell at `coord` is held.
    pub fn has(&self, coord: Coord) -> bool {
        self.params.contains(coord) && self.known[self.index(coord)]
    }

    /// The field elements of a held cell.
    pub fn elements(&self, coord: Coord) -> Option<&[Scalar]> {
        self.has(coord).then(|| {
            let i = self.index(coord);
            &self.cells[i * CELL_ELEMENTS..(i + 1) * CELL_ELEMENTS]
        })
    }

    /// Cells held.
    pub fn held(&self) -> u64 {
        self.known.iter().filter(|&&k| k).count() as u64
    }

    fn missing_original(&self) -> u64 {
        self.all_coords()
            .filter(|&c| self.params.is_original(c) && !self.has(c))
            .count() as u64
    }

    fn all_coords(&self) -> impl Iterator<Item = Coord> + '_ {
        (0..self.params.extended_rows() as u32)
            .flat_map(|row| (0..CELLS_PER_ROW as u16).map(move |column| Coord { row, column }))
    }

    /// Every line of the grid along every axis.
    fn lines(&self) -> Vec<Line> {
        let p = &self.params;
        let mut lines: Vec<Line> = (0..p.extended_rows() as u32)
            .map(|row| Line {
                axis: 0,
                coords: (0..CELLS_PER_ROW as u16)
                    .map(|column| Coord { row, column })
                    .collect(),
            })
            .collect();
        for axis in 1..usize::from(p.dims) {
            let across = p.extended_len(3 - axis);
            for other in 0..across {
                let rows: Vec<usize> = (0..p.extended_len(axis))
                    .map(|i| {
                        if axis == 1 {
                            p.row_at([i, other])
                        } else {
                            p.row_at([other, i])
                        }
                    })
                    .collect();
                for column in 0..CELLS_PER_ROW as u16 {
                    lines.push(Line {
                        axis,
                        coords: rows
                            .iter()
                            .map(|&r| Coord {
                                row: r as u32,
                                column,
                            })
                            .collect(),
                    });
                }
            }
        }
        lines
    }

    /// Fills lines until `goal` is met or nothing more can be recovered; returns the
    /// number of cells filled.
    ///
    /// Lines holding wanted missing cells go first; when none of them can be recovered,
    /// the first axis with any recoverable line is filled, which may unlock them.
    pub fn fill(&mut self, goal: Goal) -> Result<u64, ReconstructError> {
        let lines = self.lines();
        let codes: Vec<Option<LineCode>> = (0..usize::from(self.params.dims))
            .map(|axis| (axis > 0).then(|| LineCode::new(self.params.original_len(axis))))
            .collect();
        let before = self.held();
        loop {
            if goal == Goal::Original && self.missing_original() == 0 {
                break;
            }
            let recoverable: Vec<&Line> = lines
                .iter()
                .filter(|l| {
                    let held = l.coords.iter().filter(|&&c| self.has(c)).count();
                    held < l.coords.len() && held * 2 >= l.coords.len()
                })
                .collect();
            let wanted: Vec<&Line> = recoverable
                .iter()
                .copied()
                .filter(|l| {
                    goal == Goal::Everything
                        || l.coords
                            .iter()
                            .any(|&c| self.params.is_original(c) && !self.has(c))
                })
                .collect();
            let batch = if wanted.is_empty() {
                match recoverable.first() {
                    Some(first) => recoverable
                        .iter()
                        .copied()
                        .filter(|l| l.axis == first.axis)
                        .collect(),
                    None => break,
                }
            } else {
                wanted
            };
            let recovered: Vec<Result<Recovered, ReconstructError>> = batch
                .par_iter()
                .map(|line| self.recover_line(line, codes[line.axis].as_ref()))
                .collect();
            for result in recovered {
                for (coord, elements) in result? {
                    if !self.has(coord) {
                        self.insert_elements(coord, &elements)?;
                    }
                }
            }
        }
        Ok(self.held() - before)
    }

    /// The missing cells of one line, recovered from the held ones.
    fn recover_line(
        &self,
        line: &Line,
        code: Option<&LineCode>,
    ) -> Result<Recovered, ReconstructError> {
        let at = line.coords[0];
        let inconsistent = || ReconstructError::Inconsistent {
            axis_name: if line.axis == 0 {
                "a row".into()
            } else {
                format!("an axis-{}", line.axis)
            },
            at,
        };
        let missing: Vec<Coord> = line
            .coords
            .iter()
            .copied()
            .filter(|&c| !self.has(c))
            .collect();
        match code {
            None => {
                let held: Vec<(usize, Vec<Scalar>)> = line
                    .coords
                    .iter()
                    .filter_map(|&c| Some((usize::from(c.column), self.elements(c)?.to_vec())))
                    .collect();
                let codec = RowCodec::get();
                let poly = codec.recover(held).map_err(|_| inconsistent())?;
                if poly.len() > ROW_ELEMENTS {
                    return Err(inconsistent());
                }
                let cells = codec.cells(poly);
                Ok(missing
                    .into_iter()
                    .map(|c| (c, cells[usize::from(c.column)].clone()))
                    .collect())
            }
            Some(code) => {
                let known: Vec<bool> = line.coords.iter().map(|&c| self.has(c)).collect();
                let mut values: Vec<Vec<Scalar>> = line
                    .coords
                    .iter()
                    .map(|&c| self.elements(c).map(<[Scalar]>::to_vec).unwrap_or_default())
                    .collect();
                code.recover(&known, &mut values)
                    .map_err(|_| inconsistent())?;
                Ok(line
                    .coords
                    .iter()
                    .zip(values)
                    .filter(|(c, _)| !self.has(**c))
                    .map(|(c, v)| (*c, v))
                    .collect())
            }
        }
    }

    /// Bytes `offset..offset + len` of the data. The rows holding them are recovered along
    /// the row axis when each holds half its cells; otherwise the grid is filled along every
    /// axis first (slower, but needs fewer cells per row).
    pub fn read(&mut self, offset: u64, len: u64) -> Result<Vec<u8>, ReconstructError> {
        let outside = ReconstructError::OutsideData {
            offset,
            len,
            data_len: self.params.data_len,
        };
        let rows = self.params.rows_holding(offset, len).ok_or(outside)?;
        if len == 0 {
            return Ok(Vec::new());
        }
        let row_line = |row: u32| Line {
            axis: 0,
            coords: (0..CELLS_PER_ROW as u16)
                .map(|column| Coord { row, column })
                .collect(),
        };
        let incomplete: Vec<Line> = rows
            .iter()
            .map(|&row| row_line(row))
            .filter(|l| {
                l.coords
                    .iter()
                    .any(|&c| self.params.is_original(c) && !self.has(c))
            })
            .collect();
        let by_rows = incomplete
            .iter()
            .all(|l| l.coords.iter().filter(|&&c| self.has(c)).count() * 2 >= CELLS_PER_ROW);
        if by_rows {
            let recovered: Vec<Result<Recovered, ReconstructError>> = incomplete
                .par_iter()
                .map(|line| self.recover_line(line, None))
                .collect();
            for result in recovered {
                for (coord, elements) in result? {
                    self.insert_elements(coord, &elements)?;
                }
            }
        } else {
            self.fill(Goal::Original)?;
        }
        let missing_original = rows
            .iter()
            .flat_map(|&row| row_line(row).coords)
            .filter(|&c| self.params.is_original(c) && !self.has(c))
            .count() as u64;
        if missing_original > 0 {
            return Err(self.unrecoverable(missing_original));
        }
        let mut bytes = Vec::with_capacity(rows.len() * ROW_DATA_BYTES);
        for &row in &rows {
            let start = row as usize * CELLS_PER_ROW * CELL_ELEMENTS;
            let end = start + ORIGINAL_CELLS_PER_ROW * CELL_ELEMENTS;
            unpack_into(&self.cells[start..end], &mut bytes)
                .map_err(ReconstructError::NotPacked)?;
        }
        let skip = (offset % ROW_DATA_BYTES as u64) as usize;
        Ok(bytes[skip..skip + len as usize].to_vec())
    }

    /// The error for `missing_original` original cells left missing, naming the rows
    /// with the most missing cells.
    fn unrecoverable(&self, missing_original: u64) -> ReconstructError {
        let mut worst: Vec<(u32, usize)> = (0..self.params.extended_rows() as u32)
            .map(|row| {
                let missing = (0..CELLS_PER_ROW as u16)
                    .filter(|&column| !self.has(Coord { row, column }))
                    .count();
                (row, missing)
            })
            .filter(|&(_, m)| m > 0)
            .collect();
        worst.sort_by_key(|&(r, m)| (std::cmp::Reverse(m), r));
        worst.truncate(8);
        ReconstructError::Unrecoverable {
            missing_original,
            held: self.held(),
            total: self.params.total_cells(),
            worst_rows: worst,
        }
    }

    /// Fills what is needed and returns the original bytes.
    pub fn into_data(mut self) -> Result<Vec<u8>, ReconstructError> {
        self.fill(Goal::Original)?;
        let missing_original = self.missing_original();
        if missing_original > 0 {
            return Err(self.unrecoverable(missing_original));
        }
        let mut data = Vec::with_capacity(self.params.capacity() as usize);
        for row in 0..self.params.extended_rows() {
            if !self.params.is_original_row(row) {
                continue;
            }
            let start = row * CELLS_PER_ROW * CELL_ELEMENTS;
            let end = start + ORIGINAL_CELLS_PER_ROW * CELL_ELEMENTS;
            unpack_into(&self.cells[start..end], &mut data).map_err(ReconstructError::NotPacked)?;
            if data.len() as u64 >= self.params.data_len {
                break;
            }
        }
        data.truncate(self.params.data_len as usize);
        Ok(data)
    }
}
