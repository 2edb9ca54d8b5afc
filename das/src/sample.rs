//! Samples: one cell with everything needed to check it against a DataRoot alone.

use std::collections::HashMap;
use std::fmt;

use ekzg_bls12_381::{G1Point, Scalar};
use serde::{Deserialize, Serialize};

use crate::field::{cell_from_bytes, FieldError};
use crate::kzg::CellVerifier;
use crate::merkle::MerkleProof;
use crate::params::{CodeParams, Coord, ParamsError, BYTES_PER_CELL};
use crate::root::{commitment_leaf, DataRoot, G1Bytes};

/// One serialized cell: 64 big-endian scalars, as EIP-7594 lays them out.
#[derive(Clone, PartialEq, Eq)]
pub struct Cell(pub Box<[u8; BYTES_PER_CELL]>);

impl Serialize for Cell {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0[..])
    }
}

impl<'de> Deserialize<'de> for Cell {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Cell, D::Error> {
        let bytes = serde_bytes::ByteBuf::deserialize(d)?;
        let found = bytes.len();
        let boxed: Box<[u8; BYTES_PER_CELL]> = bytes
            .into_vec()
            .into_boxed_slice()
            .try_into()
            .map_err(|_| {
                serde::de::Error::custom(format!("a cell is {BYTES_PER_CELL} bytes, not {found}"))
            })?;
        Ok(Cell(boxed))
    }
}

impl fmt::Debug for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cell({}…)", hex::encode(&self.0[..8]))
    }
}

impl From<Box<[u8; BYTES_PER_CELL]>> for Cell {
    fn from(bytes: Box<[u8; BYTES_PER_CELL]>) -> Cell {
        Cell(bytes)
    }
}

/// Why a sample does not prove its cell under a root.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SampleError {
    /// The parameters it carries are not valid.
    #[error("invalid parameters: {0}")]
    Params(#[from] ParamsError),
    /// Its coordinates are outside the grid its parameters describe.
    #[error("cell {coord:?} is outside the grid")]
    OutsideGrid {
        /// The coordinates claimed.
        coord: Coord,
    },
    /// Its commitment, path and parameters do not lead to the root.
    #[error("row commitment is not under the DataRoot")]
    NotUnderRoot,
    /// Its commitment is not a point of the G1 subgroup.
    #[error("row commitment is not a valid G1 point")]
    BadCommitment,
    /// Its proof is not a point of the G1 subgroup.
    #[error("proof is not a valid G1 point")]
    BadProof,
    /// Its cell is not 64 canonical scalars.
    #[error("cell is malformed: {0}")]
    BadCell(#[from] FieldError),
    /// The KZG proof does not open the row commitment to this cell.
    #[error("KZG proof does not match the cell")]
    WrongProof,
}

/// Samples of a batch that failed, with why; every other sample of the batch verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} of the samples failed; first: #{}: {}", failures.len(), failures[0].0, failures[0].1)]
pub struct BatchError {
    /// Index in the batch and reason, in batch order (never empty).
    pub failures: Vec<(usize, SampleError)>,
}

/// A cell of the extended grid with its KZG proof, its row's commitment and the Merkle
/// path from that commitment to the DataRoot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    /// The code's parameters (bound into the root).
    pub params: CodeParams,
    /// Where the cell is.
    pub coord: Coord,
    /// The cell.
    pub cell: Cell,
    /// KZG proof opening the row commitment at the cell's coset.
    pub proof: G1Bytes,
    /// Commitment of the cell's row.
    pub commitment: G1Bytes,
    /// Path from the commitment's leaf to the commitments' Merkle root.
    pub path: MerkleProof,
}

/// A sample parsed and placed under its root, ready for the pairing check.
struct Parsed {
    commitment_bytes: [u8; 48],
    commitment: G1Point,
    column: u64,
    cell: Vec<Scalar>,
    proof: G1Point,
}

impl Sample {
    /// Checks this sample alone against `root`.
    pub fn verify(&self, root: &DataRoot) -> Result<(), SampleError> {
        verify_samples(root, std::slice::from_ref(self))
            .map_err(|mut e| e.failures.swap_remove(0).1)
    }

    /// Everything but the pairing check: parameters, position, inclusion, encodings.
    /// Commitments are decompressed (and subgroup-checked) once per batch via `points`.
    fn parse(&self, root: &DataRoot, points: &mut PointCache) -> Result<Parsed, SampleError> {
        self.params.validate()?;
        if !self.params.contains(self.coord) {
            return Err(SampleError::OutsideGrid { coord: self.coord });
        }
        let commitments_root = self
            .path
            .root(
                commitment_leaf(&self.commitment),
                u64::from(self.coord.row),
                self.params.extended_rows() as u64,
            )
            .ok_or(SampleError::NotUnderRoot)?;
        if DataRoot::compute(&self.params, &commitments_root) != *root {
            return Err(SampleError::NotUnderRoot);
        }
        let commitment = *points
            .entry(self.commitment.0)
            .or_insert_with(|| point(&self.commitment));
        Ok(Parsed {
            commitment_bytes: self.commitment.0,
            commitment: commitment.ok_or(SampleError::BadCommitment)?,
            column: u64::from(self.coord.column),
            cell: cell_from_bytes(&self.cell.0)?,
            proof: point(&self.proof).ok_or(SampleError::BadProof)?,
        })
    }
}

/// Commitments already decompressed in this batch, by their bytes.
type PointCache = HashMap<[u8; 48], Option<G1Point>>;

/// A compressed G1 point, if it is one and lies in the prime-order subgroup.
fn point(bytes: &G1Bytes) -> Option<G1Point> {
    Option::from(G1Point::from_compressed(&bytes.0))
}

/// Verifies all `samples` against `root` with one pairing check.
///
/// If the batch fails, each sample is checked alone so the error names exactly the
/// samples that are wrong.
pub fn verify_samples(root: &DataRoot, samples: &[Sample]) -> Result<(), BatchError> {
    let mut failures = Vec::new();
    let mut parsed = Vec::with_capacity(samples.len());
    let mut points = PointCache::new();
    for (i, sample) in samples.iter().enumerate() {
        match sample.parse(root, &mut points) {
            Ok(p) => parsed.push((i, p)),
            Err(e) => failures.push((i, e)),
        }
    }
    if !pairing_check(parsed.iter().map(|(_, p)| p)) {
        for (i, p) in &parsed {
            if !pairing_check(std::iter::once(p)) {
                failures.push((*i, SampleError::WrongProof));
            }
        }
        failures.sort_by_key(|(i, _)| *i);
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(BatchError { failures })
    }
}

/// One random-linear-combination pairing check over all openings.
fn pairing_check<'a>(openings: impl Iterator<Item = &'a Parsed>) -> bool {
    let mut commitments: Vec<G1Point> = Vec::new();
    let mut index: HashMap<[u8; 48], u64> = HashMap::new();
    let mut batch = Vec::new();
    for p in openings {
        let row = *index.entry(p.commitment_bytes).or_insert_with(|| {
            commitments.push(p.commitment);
            commitments.len() as u64 - 1
        });
        batch.push((row, p.column, p.cell.clone(), p.proof));
    }
    CellVerifier::get().verify(&commitments, &batch).is_ok()
}
