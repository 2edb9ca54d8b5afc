//! What the crate's tests share: the verifier of compute programs and proofs their ledgers
//! run with.

use crate::ledger::ComputeVerifier;

/// Tests built without the zkVM run ledgers that refuse any compute program or proof — as
/// no node does (every node runs the zkVM; see `ledger::OpenVm`). The tests of the compute
/// rules need the real one and are built with the `zkvm` feature only.
#[cfg(not(feature = "zkvm"))]
struct NoZkvm;

#[cfg(not(feature = "zkvm"))]
impl ComputeVerifier for NoZkvm {
    fn program_commit(&self, _elf: &[u8]) -> Result<[u8; 32], String> {
        Err("this test build has no zkVM".into())
    }

    fn verify_universal(&self, _: &[u8], _: [u8; 32], _: [u8; 32]) -> Result<(), String> {
        Err("this test build has no zkVM".into())
    }
}

/// The verifier tests pass to everything that executes transactions.
pub(crate) fn verifier() -> &'static dyn ComputeVerifier {
    #[cfg(feature = "zkvm")]
    {
        &crate::ledger::OpenVm
    }
    #[cfg(not(feature = "zkvm"))]
    {
        &NoZkvm
    }
}
