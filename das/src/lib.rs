//! Nexus's final storage form: data laid out as a d-dimensional tensor over BLS12-381's
//! scalar field, extended 2x along every axis, committed with KZG.
//!
//! - Axis 0 is an EIP-7594 row: 4096 elements extended to 128 cells of 64, byte for byte
//!   what `c-kzg`'s `compute_cells_and_kzg_proofs` returns ([`ExtendedData`]).
//! - Further axes (d = 2, 3) are extended by FFT over Fr; commitments and proofs of the
//!   extended rows follow by the same FFT in G1.
//! - [`DataRoot`] commits to the parameters and every row commitment; a [`Sample`] verifies
//!   against it alone, and [`verify_samples`] checks many with one pairing.
//! - [`PartialGrid`] reconstructs from any sufficient set of cells; [`confidence`] says how
//!   sure a given number of samples makes a client.
//!
//! Pure computation: no I/O, no async.

pub mod bytes;
pub mod confidence;
pub mod encode;
pub mod field;
pub mod kzg;
mod line;
pub mod merkle;
pub mod params;
pub mod reconstruct;
pub mod root;
pub mod sample;

pub use confidence::{confidence, miss_probability, samples_needed};
pub use encode::{DataCommitment, EncodeError, ExtendedData, ProofStrategy};
pub use line::LineError;
pub use params::{CodeParams, Coord, ParamsError};
pub use reconstruct::{Goal, PartialGrid, ReconstructError};
pub use root::{DataRoot, G1Bytes};
pub use sample::{verify_samples, BatchError, Cell, Sample, SampleError};
