//! The peer our node-by-node proving is measured against: OpenVM's own SDK proving a whole
//! run in one process (`Sdk::prove`: every segment, the aggregation tree, one wrap), on the
//! same program and input, for `nexus bench compute`.

use std::io::Read as _;
use std::time::{Duration, Instant};

use openvm_sdk::{Sdk, StdIn};
use openvm_stark_backend::codec::Encode;

use super::{Zkvm, ZkvmError};

/// What OpenVM's SDK took for one run.
#[derive(Debug, Clone)]
pub struct SdkRun {
    /// Generating its keys (app and aggregation).
    pub keygen: Duration,
    /// Proving the run into its final STARK.
    pub prove: Duration,
    /// Verifying that STARK.
    pub verify: Duration,
    /// The proof's size, zstd-compressed as ours travel.
    pub proof_bytes: usize,
}

/// Proves `elf` on `input` with OpenVM's SDK alone and verifies the proof.
pub fn prove_with_sdk(elf: &[u8], input: &[u8]) -> Result<SdkRun, ZkvmError> {
    let error = |e: &dyn std::fmt::Display| ZkvmError::Prover(e.to_string());
    let sdk = Sdk::riscv32(Zkvm::app_params(), Zkvm::agg_params());
    let started = Instant::now();
    let agg_vk = sdk.agg_vk();
    let keygen = started.elapsed();
    let stdin: StdIn = super::stdin(input, &crate::binding::NO_BENEFICIARY);
    let started = Instant::now();
    let (proof, baseline) = sdk.prove(elf, stdin, &[]).map_err(|e| error(&e))?;
    let prove = started.elapsed();
    let raw = proof.encode_to_vec().map_err(|e| error(&e))?;
    let compressed = zstd::encode_all(&raw[..], 0).map_err(|e| error(&e))?;
    let mut check = Vec::new();
    zstd::Decoder::new(&compressed[..])
        .and_then(|mut d| d.read_to_end(&mut check))
        .map_err(|e| error(&e))?;
    let started = Instant::now();
    Sdk::verify_proof((*agg_vk).clone(), baseline, &proof).map_err(|e| error(&e))?;
    Ok(SdkRun {
        keygen,
        prove,
        verify: started.elapsed(),
        proof_bytes: compressed.len(),
    })
}
