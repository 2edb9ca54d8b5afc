//! What the ledger needs of a zkVM, as a trait of its own: the verifying commitment of a
//! job's program, and the verdict on a Universal Proof. Every function that executes
//! transactions takes one, so that the ledger does not link the zkVM (its tests build in
//! seconds) and whoever executes a block says which zkVM decides — there is no default a
//! process could fall back on. [`OpenVm`] (feature `zkvm`) is the one every node uses.

/// The zkVM the ledger's compute rules rely on. Both answers must be functions of their
/// arguments alone: two nodes that run the same implementation on the same bytes reach the
/// same verdict.
pub trait ComputeVerifier: Send + Sync {
    /// The verifying commitment of the program `elf`, or why the zkVM cannot run it as
    /// RISC-V means it.
    fn program_commit(&self, elf: &[u8]) -> Result<[u8; 32], String>;

    /// Whether `proof` (a Universal Proof's bytes) proves a successful run of the program
    /// committed to by `program_commit`, revealing `public_value`.
    fn verify_universal(
        &self,
        proof: &[u8],
        program_commit: [u8; 32],
        public_value: [u8; 32],
    ) -> Result<(), String>;
}

#[cfg(feature = "zkvm")]
mod openvm {
    use nexus_compute::zkvm::{program_commit, UniversalProof, Verifier};

    use super::ComputeVerifier;
    use crate::blob::BlobId;
    use crate::ledger::memo::Memo;
    use crate::merkle::Digest;

    const PROOF_KEY_TAG: &[u8] = b"nexus/verified-proof/v1";

    /// Universal Proofs that verified, by a digest of the proof, the program commitment
    /// and the public value checked: a pure verification's results.
    static PROOFS: Memo<Digest, ()> = Memo::new(1024);

    /// Program commitments (or why there is none), by the program's BlobId, which fixes
    /// its bytes: deriving one takes about two seconds.
    static COMMITMENTS: Memo<BlobId, Result<[u8; 32], String>> = Memo::new(256);

    /// OpenVM 2.0.2, with the verifying key shipped in the build; verdicts are remembered
    /// (by keys that cover every input) so that the same bytes are verified once per
    /// process.
    #[derive(Debug, Clone, Copy, Default)]
    pub struct OpenVm;

    impl ComputeVerifier for OpenVm {
        fn program_commit(&self, elf: &[u8]) -> Result<[u8; 32], String> {
            COMMITMENTS.get_or_compute(BlobId::of(elf), || {
                program_commit(elf).map_err(|e| e.to_string())
            })
        }

        fn verify_universal(
            &self,
            proof: &[u8],
            program_commit: [u8; 32],
            public_value: [u8; 32],
        ) -> Result<(), String> {
            let key = Digest::of(&[PROOF_KEY_TAG, &program_commit, &public_value, proof]);
            if PROOFS.get(&key).is_some() {
                return Ok(());
            }
            let decoded = UniversalProof::from_bytes(proof).map_err(|e| e.to_string())?;
            Verifier::embedded()
                .verify(&decoded, program_commit, public_value)
                .map_err(|e| e.to_string())?;
            PROOFS.insert(key, ());
            Ok(())
        }
    }
}

#[cfg(feature = "zkvm")]
pub use openvm::OpenVm;
