//! The zkVM behind verifiable compute: OpenVM 2.0.2 (CPU prover), driven one proof-tree
//! node at a time so that different machines prove different nodes. A *segment* proof is
//! made by a delegator ([`Zkvm::prove_segment`]); leaf and internal proofs fold their
//! children ([`Zkvm::fold`]); the root is sealed into the job's Universal Proof
//! ([`Zkvm::seal`]), which [`Verifier::verify`] checks against the program's commitment and
//! the public value binding input and output ([`crate::binding`]).
//!
//! Every proof a party receives is checked before it is used: [`Zkvm::check`] verifies it
//! and compares what it claims (program, first and last pc, memory roots, termination) with
//! the boundaries of its span recomputed by executing the program ([`Zkvm::boundaries`]).

mod baseline;
mod keys;
mod local;
mod proofs;
mod run;

use std::{
    path::Path,
    sync::{Arc, OnceLock},
};

use openvm_circuit::arch::VmExecutor;
use openvm_instructions::exe::VmExe;
use openvm_sdk::{
    config::{AggregationConfig, AggregationSystemParams, AggregationTreeConfig, AppConfig},
    keygen::AppProvingKey,
    prover::{AggProver, AppProver},
    DefaultStarkEngine, StdIn, F,
};
use openvm_sdk_config::TranspilerConfig;
use openvm_sdk_config::{SdkVmConfig, SdkVmCpuBuilder};
use openvm_transpiler::FromElf;

pub use baseline::{prove_with_sdk, SdkRun};
pub use keys::Verifier;
pub use local::{NodeProven, TreeEvent};
pub use proofs::{
    NodeProof, ProofError, UniversalProof, MAX_NODE_PROOF_BYTES, MAX_UNIVERSAL_PROOF_BYTES,
};
pub use run::{Boundary, Run, RunError, Segment};

use crate::program::{inspect, ProgramError, ProgramInfo};

/// log2 of the trace rows of one segment: 2^19, the smallest OpenVM 2.0.2 proves (its RV32M
/// range checker is a fixed 2^19-row table). Every party must use the same value: it fixes
/// the app key and so every verifying key above it.
pub const SEGMENT_LOG_ROWS: usize = 19;

/// The largest job input the zkVM accepts, in bytes.
pub const MAX_INPUT_BYTES: usize = 64 << 20;

/// The largest output a guest may commit (`NEXUS_MAX_OUTPUT` in `guest/nexus_guest.h`).
pub const MAX_OUTPUT_BYTES: usize = 1 << 20;

/// Why the zkVM could not be set up or could not prove.
#[derive(Debug, thiserror::Error)]
pub enum ZkvmError {
    /// The key directory could not be read or written.
    #[error("zkVM keys in {path}: {source}")]
    Keys {
        /// The file concerned.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// OpenVM refused or failed (the message is OpenVM's).
    #[error("zkVM: {0}")]
    Prover(String),
}

/// Why a program cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file is not an RV32IM ELF at the zkVM's addresses.
    #[error(transparent)]
    Program(#[from] ProgramError),
    /// OpenVM's transpiler refused an instruction or a segment.
    #[error("the program cannot be transpiled for the zkVM: {0}")]
    Transpile(String),
    /// The zkVM itself could not be set up.
    #[error(transparent)]
    Zkvm(#[from] ZkvmError),
}

/// The verifying commitment of the program `elf` ([`Program::commit`]), for a party that
/// needs only the commitment (the ledger accepting a job). About two seconds on two cores
/// whatever the program's size: OpenVM commits the program's trace at a segment's full
/// height and hashes the whole initial memory.
pub fn program_commit(elf: &[u8]) -> Result<[u8; 32], LoadError> {
    Ok(Zkvm::new()?.load(elf)?.commit())
}

/// A program ready to run and prove: its executable and the commitment a proof of it
/// carries (OpenVM's *app exe commit*: code, initial memory and entry point).
#[derive(Clone)]
pub struct Program {
    exe: Arc<VmExe<F>>,
    info: ProgramInfo,
    commit: [u8; 32],
    code_commit: [F; 8],
}

impl Program {
    /// What [`inspect`] found in the ELF file.
    pub fn info(&self) -> &ProgramInfo {
        &self.info
    }

    /// The program's verifying commitment (OpenVM's app exe commit, 32 bytes).
    pub fn commit(&self) -> [u8; 32] {
        self.commit
    }
}

/// The zkVM with its keys: runs programs, proves tree nodes, checks proofs. Shared
/// between threads (`Send + Sync`).
pub struct Zkvm {
    /// The app (segment) circuit's keys: milliseconds to generate.
    app_pk: AppProvingKey<SdkVmConfig>,
    executor: VmExecutor<F, SdkVmConfig>,
    /// The aggregation provers, with their keys (generated on first use, or cached).
    agg: OnceLock<Arc<AggProver>>,
    verifier: OnceLock<Verifier>,
}

impl Zkvm {
    /// The zkVM for running programs (milliseconds to set up). Proving or checking with it
    /// first generates the aggregation keys in memory (about half a minute on two cores);
    /// [`Zkvm::open`] caches them on disk instead.
    pub fn new() -> Result<Zkvm, ZkvmError> {
        let app_pk = AppProvingKey::keygen(AppConfig::riscv32(Zkvm::app_params()))
            .map_err(|e| ZkvmError::Prover(e.to_string()))?;
        let executor = VmExecutor::new(app_pk.app_vm_pk.vm_config.clone())
            .map_err(|e| ZkvmError::Prover(e.to_string()))?;
        Ok(Zkvm {
            app_pk,
            executor,
            agg: OnceLock::new(),
            verifier: OnceLock::new(),
        })
    }

    /// The zkVM with the aggregation keys cached in `key_dir`, generating and writing them
    /// there the first time.
    pub fn open(key_dir: &Path) -> Result<Zkvm, ZkvmError> {
        let zkvm = Zkvm::new()?;
        keys::open(&zkvm, key_dir)?;
        Ok(zkvm)
    }

    /// The verifier of Universal Proofs made with these keys.
    pub fn verifier(&self) -> &Verifier {
        self.verifier.get_or_init(|| keys::verifier_of(self))
    }

    /// The aggregation provers (leaf, internal-for-leaf, internal-recursive), their keys
    /// generated on first use unless [`Zkvm::open`] read them.
    fn agg(&self) -> Arc<AggProver> {
        self.agg
            .get_or_init(|| {
                Arc::new(AggProver::new(
                    Arc::new(self.app_pk.app_vm_pk.vm_pk.get_vk()),
                    AggregationConfig {
                        params: Zkvm::agg_params(),
                    },
                    AggregationTreeConfig::default(),
                    None,
                ))
            })
            .clone()
    }

    /// The VM's configuration (RV32IM with OpenVM's I/O).
    fn config(&self) -> &SdkVmConfig {
        &self.app_pk.app_vm_pk.vm_config
    }

    /// A prover of the app circuit for `exe` (commits its code).
    fn app_prover(
        &self,
        exe: Arc<VmExe<F>>,
    ) -> Result<AppProver<DefaultStarkEngine, SdkVmCpuBuilder>, ZkvmError> {
        AppProver::new(SdkVmCpuBuilder, &self.app_pk.app_vm_pk, exe)
            .map_err(|e| ZkvmError::Prover(e.to_string()))
    }

    /// Checks, transpiles and commits to a program.
    pub fn load(&self, elf: &[u8]) -> Result<Program, LoadError> {
        let info = inspect(elf)?;
        let decoded = openvm_transpiler::elf::Elf::decode(elf, crate::program::MEM_SIZE as u32)
            .map_err(|e| LoadError::Transpile(e.to_string()))?;
        let transpiler = self.config().transpiler();
        let exe = Arc::new(
            VmExe::from_elf(decoded, transpiler)
                .map_err(|e| LoadError::Transpile(e.to_string()))?,
        );
        let app = self
            .app_prover(exe.clone())
            .map_err(|e| LoadError::Transpile(e.to_string()))?;
        let commit = *openvm_continuations::CommitBytes::from(app.app_exe_commit()).as_slice();
        let code_commit = app.app_program_commit();
        Ok(Program {
            exe,
            info,
            commit,
            code_commit,
        })
    }

    fn app_params() -> openvm_stark_backend::SystemParams {
        openvm_stark_sdk::config::app_params_with_100_bits_security(SEGMENT_LOG_ROWS)
    }

    fn agg_params() -> AggregationSystemParams {
        AggregationSystemParams::default()
    }
}

/// The zkVM's input stream of a run: the input's bytes, then the beneficiary (read by the
/// guest runtime when the output is committed).
fn stdin(input: &[u8], beneficiary: &[u8; 32]) -> StdIn {
    let mut stdin = StdIn::default();
    stdin.write_bytes(input);
    stdin.write_bytes(beneficiary);
    stdin
}
