//! KZG over one row, exactly as EIP-7594 defines it, on rust_eth_kzg's components
//! (`ekzg-*`: FK20 prover, multi-opening verifier, cell recovery) and Ethereum's trusted setup.
//!
//! Rows are handled as field elements, not bytes, so the tensor code can extend them
//! without serializing; the bytes they serialize to are what `c-kzg` produces.

use std::sync::OnceLock;

use ekzg_bls12_381::{fixed_base_msm::UsePrecomp, traits::Curve, G1Point, Scalar};
use ekzg_erasure_codes::{BlockErasureIndices, ReedSolomon};
use ekzg_multi_open::{
    commit_key::CommitKey, recover_evaluations_in_domain_order, verification_key::VerificationKey,
    Prover, ProverInput, Verifier,
};
use ekzg_polynomial::{domain::Domain, poly_coeff::PolyCoeff};
use ekzg_trusted_setup::TrustedSetup;

use crate::line::bit_reverse;
use crate::params::{CELLS_PER_ROW, CELL_ELEMENTS, EXTENDED_ROW_ELEMENTS, ROW_ELEMENTS};

/// The Ethereum KZG ceremony's setup (4096 G1 and 65 G2 powers), parsed once.
fn trusted_setup() -> &'static TrustedSetup {
    static SETUP: OnceLock<TrustedSetup> = OnceLock::new();
    SETUP.get_or_init(TrustedSetup::default)
}

/// A row as a polynomial in monomial form (4096 coefficients).
pub(crate) type RowPoly = PolyCoeff;

/// A row's 128 cell proofs and 128 cells (64 elements each), in column order.
pub(crate) type ProvenRow = (Vec<G1Point>, Vec<Vec<Scalar>>);

/// Why a row could not be recovered from its cells.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RowRecoveryError {
    /// Fewer than 64 of the row's 128 cells are known.
    #[error("{known} of {CELLS_PER_ROW} cells known; 64 are needed")]
    TooFewCells {
        /// Cells present.
        known: usize,
    },
    /// A cell index is not a column of the row (`0..128`).
    #[error("cell index {index} is outside the row (0..{CELLS_PER_ROW})")]
    IndexOutOfRange {
        /// The index given.
        index: usize,
    },
    /// Cell indices repeat or are not ascending (a repeat could silently replace a cell).
    #[error("cell index {index} follows {previous}: indices must be ascending without repeats")]
    IndicesNotAscending {
        /// The index before it.
        previous: usize,
        /// The offending index.
        index: usize,
    },
    /// A cell does not hold exactly 64 field elements.
    #[error("cell {index} holds {len} elements, not {CELL_ELEMENTS}")]
    BadCellLength {
        /// The cell's index.
        index: usize,
        /// Elements it holds.
        len: usize,
    },
    /// The cells are not evaluations of one polynomial of degree below 4096.
    #[error("the cells are not one row's evaluations: {0}")]
    Inconsistent(String),
}

/// Why a batch of cell openings was refused before any pairing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OpeningError {
    /// An opening names a commitment that is not in the batch.
    #[error("opening names commitment {row} of {commitments}")]
    UnknownCommitment {
        /// The index named.
        row: u64,
        /// Commitments in the batch.
        commitments: usize,
    },
    /// An opening's column is not in the row (`0..128`).
    #[error("column {0} is outside the row (0..{CELLS_PER_ROW})")]
    ColumnOutOfRange(u64),
    /// An opening's cell does not hold exactly 64 field elements.
    #[error("a cell holds {0} elements, not {CELL_ELEMENTS}")]
    BadCellLength(usize),
    /// The pairing check failed: some proof does not open its commitment to its cell.
    #[error("a proof does not open its commitment to its cell")]
    WrongProof,
}

/// Interpolates and commits to rows: all an uploader or a block validator needs.
#[derive(Debug)]
pub struct RowCommitter {
    key: CommitKey,
    row_domain: Domain,
}

impl RowCommitter {
    /// The shared committer, built on first use from the embedded trusted setup.
    pub fn get() -> &'static RowCommitter {
        static COMMITTER: OnceLock<RowCommitter> = OnceLock::new();
        COMMITTER.get_or_init(|| RowCommitter {
            key: CommitKey::new(trusted_setup().g1_monomial.clone()),
            row_domain: Domain::new(ROW_ELEMENTS),
        })
    }

    /// The polynomial whose evaluations (in EIP-7594's bit-reversed order) are `row`.
    pub(crate) fn interpolate(&self, row: &[Scalar]) -> RowPoly {
        let mut values = row.to_vec();
        bit_reverse(&mut values);
        self.row_domain.ifft_scalars(values)
    }

    /// The KZG commitment to a row polynomial.
    pub(crate) fn commit(&self, poly: &RowPoly) -> G1Point {
        self.key.commit_g1(poly).to_affine()
    }
}

/// Proves rows: FK20 with 8-bit precomputed tables, about 1.5x faster proofs for some
/// seconds and tens of MB at start-up, worth it on nodes that encode.
#[derive(Debug)]
pub struct RowProver {
    prover: Prover,
}

impl RowProver {
    /// The shared prover, built on first use from the embedded trusted setup.
    pub fn get() -> &'static RowProver {
        static PROVER: OnceLock<RowProver> = OnceLock::new();
        PROVER.get_or_init(|| RowProver {
            prover: Prover::new(
                CommitKey::new(trusted_setup().g1_monomial.clone()),
                ROW_ELEMENTS,
                CELL_ELEMENTS,
                EXTENDED_ROW_ELEMENTS,
                UsePrecomp::Yes { width: 8 },
            ),
        })
    }

    /// The 128 cells of a row and their FK20 proofs.
    pub(crate) fn cells_and_proofs(&self, poly: RowPoly) -> ProvenRow {
        self.prover
            .compute_multi_opening_proofs(ProverInput::PolyCoeff(poly))
    }
}

/// Extends and recovers rows, without proofs and so without the prover's tables: a node
/// that only decodes (retrieval, reconstruction) is ready in milliseconds.
#[derive(Debug)]
pub struct RowCodec {
    extended_domain: Domain,
    rs: ReedSolomon,
}

impl RowCodec {
    /// The shared codec.
    pub fn get() -> &'static RowCodec {
        static CODEC: OnceLock<RowCodec> = OnceLock::new();
        CODEC.get_or_init(|| RowCodec {
            extended_domain: Domain::new(EXTENDED_ROW_ELEMENTS),
            rs: ReedSolomon::new(ROW_ELEMENTS, 2, CELLS_PER_ROW),
        })
    }

    /// The 128 cells of a row: its polynomial evaluated over the extended domain, in
    /// EIP-7594's bit-reversed order, 64 evaluations per cell.
    pub(crate) fn cells(&self, poly: RowPoly) -> Vec<Vec<Scalar>> {
        let mut evaluations = self.extended_domain.fft_scalars(poly);
        bit_reverse(&mut evaluations);
        evaluations
            .chunks_exact(CELL_ELEMENTS)
            .map(<[Scalar]>::to_vec)
            .collect()
    }

    /// Recovers a row's polynomial from at least 64 of its cells, given as
    /// `(column, elements)`; columns out of range, repeated or out of ascending order, and
    /// cells of the wrong length are refused with an error before any arithmetic.
    pub(crate) fn recover(
        &self,
        cells: Vec<(usize, Vec<Scalar>)>,
    ) -> Result<RowPoly, RowRecoveryError> {
        let mut previous: Option<usize> = None;
        for (index, elements) in &cells {
            let index = *index;
            if index >= CELLS_PER_ROW {
                return Err(RowRecoveryError::IndexOutOfRange { index });
            }
            if let Some(previous) = previous.filter(|&p| p >= index) {
                return Err(RowRecoveryError::IndicesNotAscending { previous, index });
            }
            if elements.len() != CELL_ELEMENTS {
                return Err(RowRecoveryError::BadCellLength {
                    index,
                    len: elements.len(),
                });
            }
            previous = Some(index);
        }
        let known = cells.len();
        if known < CELLS_PER_ROW / 2 {
            return Err(RowRecoveryError::TooFewCells { known });
        }
        let (columns, evals): (Vec<usize>, Vec<Vec<Scalar>>) = cells.into_iter().unzip();
        let (in_domain_order, flat) =
            recover_evaluations_in_domain_order(EXTENDED_ROW_ELEMENTS, columns, evals)
                .ok_or_else(|| RowRecoveryError::Inconsistent("malformed cells".into()))?;
        let mut present = [false; CELLS_PER_ROW];
        for c in in_domain_order {
            present[c] = true;
        }
        let missing = (0..CELLS_PER_ROW).filter(|&c| !present[c]).collect();
        self.rs
            .recover_polynomial_coefficient(flat, BlockErasureIndices(missing))
            .map_err(|e| RowRecoveryError::Inconsistent(format!("{e:?}")))
    }
}

/// Verifies cell proofs against row commitments, in batches.
#[derive(Debug)]
pub struct CellVerifier {
    verifier: Verifier,
}

impl CellVerifier {
    /// The shared verifier, built on first use from the embedded trusted setup.
    pub fn get() -> &'static CellVerifier {
        static VERIFIER: OnceLock<CellVerifier> = OnceLock::new();
        VERIFIER.get_or_init(|| {
            let setup = trusted_setup();
            let g2 = setup.g2_monomial.clone();
            let key = VerificationKey::new(
                setup.g1_monomial[..g2.len()].to_vec(),
                g2,
                CELL_ELEMENTS,
                ROW_ELEMENTS,
            );
            CellVerifier {
                verifier: Verifier::new(key, EXTENDED_ROW_ELEMENTS, CELLS_PER_ROW),
            }
        })
    }

    /// Checks every `(commitment index, column, cell, proof)` opening with one random
    /// linear combination and a single pairing check. Empty input verifies; an opening
    /// naming a missing commitment, a column outside the row or a cell of the wrong length
    /// is refused with an error, never handed to the pairing library.
    pub(crate) fn verify(
        &self,
        commitments: &[G1Point],
        openings: &[(u64, u64, Vec<Scalar>, G1Point)],
    ) -> Result<(), OpeningError> {
        for (row, column, cell, _) in openings {
            if usize::try_from(*row).map_or(true, |r| r >= commitments.len()) {
                return Err(OpeningError::UnknownCommitment {
                    row: *row,
                    commitments: commitments.len(),
                });
            }
            if *column >= CELLS_PER_ROW as u64 {
                return Err(OpeningError::ColumnOutOfRange(*column));
            }
            if cell.len() != CELL_ELEMENTS {
                return Err(OpeningError::BadCellLength(cell.len()));
            }
        }
        if openings.is_empty() {
            return Ok(());
        }
        let rows: Vec<u64> = openings.iter().map(|o| o.0).collect();
        let columns: Vec<u64> = openings.iter().map(|o| o.1).collect();
        let cells: Vec<Vec<Scalar>> = openings.iter().map(|o| o.2.clone()).collect();
        let proofs: Vec<G1Point> = openings.iter().map(|o| o.3).collect();
        self.verifier
            .verify_multi_opening(commitments, &rows, &columns, &cells, &proofs)
            .map_err(|_| OpeningError::WrongProof)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row of `seed`-derived coefficients: its 128 cells.
    fn row_cells(seed: u64) -> (RowPoly, Vec<Vec<Scalar>>) {
        let poly: RowPoly = (0..ROW_ELEMENTS as u64)
            .map(|i| Scalar::from(i.wrapping_mul(seed) ^ 0x5eed))
            .collect::<Vec<_>>()
            .into();
        let cells = RowCodec::get().cells(poly.clone());
        (poly, cells)
    }

    fn some_cells(cells: &[Vec<Scalar>], columns: &[usize]) -> Vec<(usize, Vec<Scalar>)> {
        columns.iter().map(|&c| (c, cells[c].clone())).collect()
    }

    #[test]
    fn recovery_from_any_half_in_order_gives_the_row_back() {
        let (poly, cells) = row_cells(7);
        let columns: Vec<usize> = (0..CELLS_PER_ROW).step_by(2).collect();
        let recovered = RowCodec::get()
            .recover(some_cells(&cells, &columns))
            .expect("half the cells");
        assert_eq!(&recovered[..ROW_ELEMENTS], &poly[..]);
    }

    #[test]
    fn recovery_refuses_repeats_disorder_excess_and_foreign_indices() {
        let (_, cells) = row_cells(9);
        let codec = RowCodec::get();
        let mut columns: Vec<usize> = (0..64).collect();
        columns.push(10);
        assert_eq!(
            codec.recover(some_cells(&cells, &columns)),
            Err(RowRecoveryError::IndicesNotAscending {
                previous: 63,
                index: 10
            })
        );
        // A repeated index holding different bytes must not replace the first copy.
        let mut repeated = some_cells(&cells, &(0..65).collect::<Vec<_>>());
        repeated.insert(1, (0, cells[5].clone()));
        assert_eq!(
            codec.recover(repeated),
            Err(RowRecoveryError::IndicesNotAscending {
                previous: 0,
                index: 0
            })
        );
        let mut reversed = some_cells(&cells, &(0..64).collect::<Vec<_>>());
        reversed.reverse();
        assert!(matches!(
            codec.recover(reversed),
            Err(RowRecoveryError::IndicesNotAscending { .. })
        ));
        let mut excess = some_cells(&cells, &(0..CELLS_PER_ROW).collect::<Vec<_>>());
        excess.push((CELLS_PER_ROW, cells[0].clone()));
        assert_eq!(
            codec.recover(excess),
            Err(RowRecoveryError::IndexOutOfRange {
                index: CELLS_PER_ROW
            })
        );
        let mut short = some_cells(&cells, &(0..64).collect::<Vec<_>>());
        short[3].1.pop();
        assert_eq!(
            codec.recover(short),
            Err(RowRecoveryError::BadCellLength { index: 3, len: 63 })
        );
        assert_eq!(
            codec.recover(some_cells(&cells, &(0..63).collect::<Vec<_>>())),
            Err(RowRecoveryError::TooFewCells { known: 63 })
        );
    }

    #[test]
    fn verification_refuses_foreign_columns_rows_and_lengths_without_panicking() {
        let (poly, _) = row_cells(3);
        let commitment = RowCommitter::get().commit(&poly);
        let (proofs, cells) = RowProver::get().cells_and_proofs(poly);
        let verifier = CellVerifier::get();
        let opening = |row: u64, column: u64, cell: Vec<Scalar>| (row, column, cell, proofs[0]);
        let commitments = [commitment];
        assert_eq!(
            verifier.verify(&commitments, &[opening(0, 0, cells[0].clone())]),
            Ok(())
        );
        assert_eq!(
            verifier.verify(&commitments, &[opening(0, 1, cells[0].clone())]),
            Err(OpeningError::WrongProof)
        );
        assert_eq!(
            verifier.verify(&commitments, &[opening(0, 128, cells[0].clone())]),
            Err(OpeningError::ColumnOutOfRange(128))
        );
        assert_eq!(
            verifier.verify(&commitments, &[opening(0, u64::MAX, cells[0].clone())]),
            Err(OpeningError::ColumnOutOfRange(u64::MAX))
        );
        assert_eq!(
            verifier.verify(&commitments, &[opening(1, 0, cells[0].clone())]),
            Err(OpeningError::UnknownCommitment {
                row: 1,
                commitments: 1
            })
        );
        assert_eq!(
            verifier.verify(&commitments, &[opening(0, 0, cells[0][..10].to_vec())]),
            Err(OpeningError::BadCellLength(10))
        );
    }
}
