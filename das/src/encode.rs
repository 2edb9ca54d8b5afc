//! Encoding: bytes to the extended grid, row commitments, cell proofs and the DataRoot.
//!
//! Original rows are committed and proven with KZG (FK20); every further axis is then
//! extended 2x. Row polynomials are extended in Fr (their coefficients are linear in the
//! data), row commitments in G1 from the original commitments, and cell proofs either in
//! G1 from the original proofs or by FK20 on each extended row ([`ProofStrategy`]).

use ekzg_bls12_381::{g1_batch_normalize, traits::*, G1Point, G1Projective, Scalar};
use rayon::prelude::*;

use crate::field::{cell_to_bytes, pack_into};
use crate::kzg::{ProvenRow, RowCodec, RowCommitter, RowPoly, RowProver};
use crate::line::LineCode;
use crate::merkle::MerkleTree;
use crate::params::{
    CodeParams, Coord, ParamsError, BYTES_PER_CELL, CELLS_PER_ROW, CELL_ELEMENTS,
    EXTENDED_ROW_ELEMENTS, ROW_DATA_BYTES, ROW_ELEMENTS,
};
use crate::root::{commitment_leaf, DataRoot, G1Bytes};
use crate::sample::Sample;

/// How extended rows get their cell proofs; both give identical proofs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofStrategy {
    /// Extend the original rows' proofs along each further axis by an FFT in G1.
    ExtendInG1,
    /// Run FK20 on every extended row.
    Fk20,
}

impl ProofStrategy {
    /// The strategy measured to be faster on this code (see BENCHMARKS.md).
    pub const FASTEST: ProofStrategy = ProofStrategy::ExtendInG1;
}

/// Why data could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The parameters are invalid or too small for the data.
    #[error(transparent)]
    Params(#[from] ParamsError),
    /// The parameters describe a different data length.
    #[error("parameters are for {expected} bytes but {actual} were given")]
    LengthMismatch {
        /// `params.data_len`.
        expected: u64,
        /// Bytes given.
        actual: u64,
    },
}

/// The row commitments and DataRoot of a payload: what an uploader must compute.
#[derive(Debug, Clone)]
pub struct DataCommitment {
    params: CodeParams,
    commitments: Vec<G1Bytes>,
    tree: MerkleTree,
    root: DataRoot,
}

impl DataCommitment {
    /// Commits to `data` laid out by `params`, without computing any cell or proof.
    pub fn compute(data: &[u8], params: CodeParams) -> Result<DataCommitment, EncodeError> {
        let polys = original_polys(data, &params)?;
        let commitments = extended_commitments(&params, &polys);
        Ok(DataCommitment::from_points(params, &commitments))
    }

    fn from_points(params: CodeParams, points: &[G1Point]) -> DataCommitment {
        let commitments: Vec<G1Bytes> = points.iter().map(|p| G1Bytes(p.to_compressed())).collect();
        let tree = MerkleTree::from_leaves(commitments.iter().map(commitment_leaf).collect());
        let root = DataRoot::compute(&params, &tree.root());
        DataCommitment {
            params,
            commitments,
            tree,
            root,
        }
    }

    /// The parameters bound into the root.
    pub fn params(&self) -> &CodeParams {
        &self.params
    }

    /// The DataRoot.
    pub fn root(&self) -> DataRoot {
        self.root
    }

    /// Commitments of all extended rows, in row order.
    pub fn commitments(&self) -> &[G1Bytes] {
        &self.commitments
    }
}

/// A payload encoded in full: every cell of the extended grid with its proof.
#[derive(Debug, Clone)]
pub struct ExtendedData {
    commitment: DataCommitment,
    proofs: Vec<G1Point>,
    cells: Vec<Scalar>,
}

impl ExtendedData {
    /// Encodes `data` in `dims` dimensions on the smallest grid that holds it.
    pub fn encode(data: &[u8], dims: u8) -> Result<ExtendedData, EncodeError> {
        let params = CodeParams::for_data(dims, data.len() as u64)?;
        ExtendedData::encode_with(data, params, ProofStrategy::FASTEST)
    }

    /// Encodes `data` laid out by `params`, proving extended rows with `strategy`.
    pub fn encode_with(
        data: &[u8],
        params: CodeParams,
        strategy: ProofStrategy,
    ) -> Result<ExtendedData, EncodeError> {
        let polys = original_polys(data, &params)?;
        let prover = RowProver::get();
        let rows = params.extended_rows();

        // Original rows: FK20 gives their cells and proofs.
        let mut cells_and_proofs: Vec<Option<ProvenRow>> = polys
            .par_iter()
            .map(|poly| poly.clone().map(|p| prover.cells_and_proofs(p)))
            .collect();
        let commitments = extended_commitments(&params, &polys);

        // Extended rows: polynomials by extension in Fr, then cells (and maybe proofs).
        let coeffs = polys.into_iter().map(|p| p.map(|p| p.0)).collect();
        let ext_polys = extend_grid(&params, coeffs, ROW_ELEMENTS, Scalar::ZERO, |code, v| {
            code.extend_scalars(v)
        });
        let extended: Vec<Option<ProvenRow>> = ext_polys
            .into_par_iter()
            .enumerate()
            .map(|(row, poly)| {
                let poly = poly.filter(|_| !params.is_original_row(row))?;
                Some(match strategy {
                    ProofStrategy::Fk20 => prover.cells_and_proofs(RowPoly::from(poly)),
                    ProofStrategy::ExtendInG1 => {
                        (Vec::new(), RowCodec::get().cells(RowPoly::from(poly)))
                    }
                })
            })
            .collect();
        for (slot, ext) in cells_and_proofs.iter_mut().zip(extended) {
            if ext.is_some() {
                *slot = ext;
            }
        }
        if strategy == ProofStrategy::ExtendInG1 {
            let original_proofs = cells_and_proofs
                .iter()
                .enumerate()
                .map(|(row, cp)| {
                    cp.as_ref()
                        .filter(|_| params.is_original_row(row))
                        .map(|(proofs, _)| proofs.iter().map(G1Projective::from).collect())
                })
                .collect();
            let proofs = extend_grid(
                &params,
                original_proofs,
                CELLS_PER_ROW,
                G1Projective::identity(),
                |code, v| code.extend_g1(v),
            );
            for (row, (slot, proofs)) in cells_and_proofs.iter_mut().zip(proofs).enumerate() {
                if let (Some((p, _)), Some(extended)) = (slot.as_mut(), proofs) {
                    if !params.is_original_row(row) {
                        *p = g1_batch_normalize(&extended);
                    }
                }
            }
        }

        let mut proofs = Vec::with_capacity(rows * CELLS_PER_ROW);
        let mut cells = Vec::with_capacity(rows * EXTENDED_ROW_ELEMENTS);
        for slot in cells_and_proofs {
            match slot {
                Some((p, c)) => {
                    proofs.extend(p);
                    cells.extend(c.into_iter().flatten());
                }
                None => {
                    proofs.extend(std::iter::repeat_n(G1Point::identity(), CELLS_PER_ROW));
                    cells.extend(std::iter::repeat_n(Scalar::ZERO, EXTENDED_ROW_ELEMENTS));
                }
            }
        }
        Ok(ExtendedData {
            commitment: DataCommitment::from_points(params, &commitments),
            proofs,
            cells,
        })
    }

    /// The parameters.
    pub fn params(&self) -> &CodeParams {
        &self.commitment.params
    }

    /// The DataRoot.
    pub fn root(&self) -> DataRoot {
        self.commitment.root
    }

    /// The commitments and root alone.
    pub fn commitment(&self) -> &DataCommitment {
        &self.commitment
    }

    /// The field elements of the cell at `coord` (which must be inside the grid).
    pub fn cell_elements(&self, coord: Coord) -> &[Scalar] {
        let start =
            (coord.row as usize * CELLS_PER_ROW + usize::from(coord.column)) * CELL_ELEMENTS;
        &self.cells[start..start + CELL_ELEMENTS]
    }

    /// The serialized cell at `coord`, or `None` outside the grid.
    pub fn cell(&self, coord: Coord) -> Option<Box<[u8; BYTES_PER_CELL]>> {
        self.params()
            .contains(coord)
            .then(|| cell_to_bytes(self.cell_elements(coord)))
    }

    /// The proof of the cell at `coord`, or `None` outside the grid.
    pub fn proof(&self, coord: Coord) -> Option<G1Bytes> {
        self.params().contains(coord).then(|| {
            G1Bytes(
                self.proofs[coord.row as usize * CELLS_PER_ROW + usize::from(coord.column)]
                    .to_compressed(),
            )
        })
    }

    /// A self-contained sample of the cell at `coord`, or `None` outside the grid.
    pub fn sample(&self, coord: Coord) -> Option<Sample> {
        let row = coord.row as usize;
        Some(Sample {
            params: *self.params(),
            coord,
            cell: self.cell(coord)?.into(),
            proof: self.proof(coord)?,
            commitment: *self.commitment.commitments.get(row)?,
            path: self.commitment.tree.proof(row as u64)?,
        })
    }
}

/// Interpolates each original row of `data` (in data order); all-zero rows are `None`.
fn original_polys(data: &[u8], params: &CodeParams) -> Result<Vec<Option<RowPoly>>, EncodeError> {
    params.validate()?;
    if params.data_len != data.len() as u64 {
        return Err(EncodeError::LengthMismatch {
            expected: params.data_len,
            actual: data.len() as u64,
        });
    }
    let committer = RowCommitter::get();
    let mut polys: Vec<Option<RowPoly>> = vec![None; params.extended_rows()];
    let interpolated: Vec<Option<RowPoly>> = (0..params.original_rows())
        .into_par_iter()
        .map(|i| {
            let start = (i * ROW_DATA_BYTES).min(data.len());
            let bytes = &data[start..(start + ROW_DATA_BYTES).min(data.len())];
            if bytes.iter().all(|&b| b == 0) {
                return None;
            }
            let mut row = vec![Scalar::ZERO; ROW_ELEMENTS];
            pack_into(bytes, &mut row);
            Some(committer.interpolate(&row))
        })
        .collect();
    let mut interpolated = interpolated.into_iter();
    for (row, slot) in polys.iter_mut().enumerate() {
        if params.is_original_row(row) {
            *slot = interpolated.next().flatten();
        }
    }
    Ok(polys)
}

/// Commitments of all extended rows: the originals by KZG, the rest by extension in G1.
fn extended_commitments(params: &CodeParams, polys: &[Option<RowPoly>]) -> Vec<G1Point> {
    let committer = RowCommitter::get();
    let originals: Vec<Option<Vec<G1Projective>>> = polys
        .par_iter()
        .map(|poly| {
            poly.as_ref()
                .map(|p| vec![G1Projective::from(committer.commit(p))])
        })
        .collect();
    let extended = extend_grid(params, originals, 1, G1Projective::identity(), |code, v| {
        code.extend_g1(v)
    });
    let flat: Vec<G1Projective> = extended
        .into_iter()
        .map(|c| c.map_or(G1Projective::identity(), |v| v[0]))
        .collect();
    g1_batch_normalize(&flat)
}

/// Extends per-row vectors of `lanes` values along every further axis.
///
/// On entry the original rows hold their values (`None` for all-zero rows) and every other
/// row is ignored; on exit every row holds its extension, `None` where it is all zero.
fn extend_grid<T>(
    params: &CodeParams,
    mut rows: Vec<Option<Vec<T>>>,
    lanes: usize,
    zero: T,
    extend: impl Fn(&LineCode, &[T]) -> Vec<T> + Sync,
) -> Vec<Option<Vec<T>>>
where
    T: Copy + Send + Sync,
{
    for axis in 1..usize::from(params.dims) {
        let code = LineCode::new(params.original_len(axis));
        for line in lines_to_extend(params, axis) {
            let (originals, targets) = line.split_at(code.k());
            if originals.iter().all(|&r| rows[r].is_none()) {
                targets.iter().for_each(|&r| rows[r] = None);
                continue;
            }
            let per_lane: Vec<Vec<T>> = (0..lanes)
                .into_par_iter()
                .map(|lane| {
                    let values: Vec<T> = originals
                        .iter()
                        .map(|&r| rows[r].as_ref().map_or(zero, |v| v[lane]))
                        .collect();
                    extend(&code, &values)
                })
                .collect();
            for (i, &r) in targets.iter().enumerate() {
                rows[r] = Some(per_lane.iter().map(|lane| lane[i]).collect());
            }
        }
    }
    rows
}

/// Lines along `axis` whose first half is already known when that axis is extended, each
/// listed as extended row numbers in position order.
///
/// Axes are extended in order, so lines along axis 1 run through original positions of
/// axis 2 only, and lines along axis 2 through every position of axis 1.
pub(crate) fn lines_to_extend(params: &CodeParams, axis: usize) -> Vec<Vec<usize>> {
    let len = params.extended_len(axis);
    let across = match axis {
        1 => params.original_len(2),
        _ => params.extended_len(1),
    };
    (0..across)
        .map(|other| {
            (0..len)
                .map(|i| match axis {
                    1 => params.row_at([i, other]),
                    _ => params.row_at([other, i]),
                })
                .collect()
        })
        .collect()
}
