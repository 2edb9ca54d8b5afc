//! Running a program without proving it: the output, the cycle count, the segments the
//! proof will have, and the state at each segment boundary (what each segment proof must
//! start and end at).

use openvm_circuit::{
    arch::{hasher::poseidon2::vm_poseidon2_hasher, ExecutionError, VmState},
    system::memory::{
        merkle::{public_values::extract_public_values, MerkleTree},
        online::GuestMemory,
    },
};
use openvm_instructions::{exe::VmExe, LocalOpcode, SystemOpcode};
use openvm_sdk::F;
use openvm_stark_backend::p3_field::PrimeField32;

use super::{stdin, Program, Zkvm, MAX_INPUT_BYTES, MAX_OUTPUT_BYTES};
use crate::binding;

/// Where the guest runtime leaves (output pointer, output length): `NEXUS_OUTPUT_DESCRIPTOR`.
const OUTPUT_DESCRIPTOR: u32 = 0x0020_0400;
/// RISC-V memory's address space in OpenVM.
const RAM: u32 = 2;

/// One segment of a run: the instructions one segment proof covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Instructions executed before the segment.
    pub start: u64,
    /// Instructions in the segment.
    pub cycles: u64,
    pub(super) trace_heights: Vec<u32>,
}

/// A completed run of a program on an input.
#[derive(Debug, Clone)]
pub struct Run {
    /// The bytes the program committed as its output.
    pub output: Vec<u8>,
    /// The beneficiary it was run for (see [`crate::binding`]).
    pub beneficiary: [u8; 32],
    /// The 32-byte public value it revealed (= [`crate::binding::public_value`] of the
    /// beneficiary and the input's and output's BlobIds).
    pub public_value: [u8; 32],
    /// Instructions executed, the final `terminate` included.
    pub cycles: u64,
    /// The segments its proof is cut into, in order.
    pub segments: Vec<Segment>,
}

/// The machine state between two segments, as a segment proof states it: the program
/// counter and the Merkle root of the whole memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Boundary {
    /// Program counter.
    pub pc: u32,
    /// Memory root (eight BabyBear elements).
    pub memory_root: [u32; 8],
}

/// Why a run produced no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    /// The input exceeds [`MAX_INPUT_BYTES`].
    #[error("the input is {0} bytes; the zkVM takes at most {MAX_INPUT_BYTES}")]
    InputTooLarge(usize),
    /// The program did not finish within its cycle budget.
    #[error("the program did not finish within {0} cycles")]
    TooLong(u64),
    /// The program ended with a non-zero exit code.
    #[error("the program failed (exit code {0})")]
    Failed(u32),
    /// The program trapped (an invalid instruction, an access outside memory, …).
    #[error("the program trapped: {0}")]
    Trapped(String),
    /// The program's output or public value does not follow the Nexus guest ABI.
    #[error("the program does not follow the Nexus guest ABI: {0}")]
    NotNexusGuest(&'static str),
}

impl From<ExecutionError> for RunError {
    fn from(e: ExecutionError) -> RunError {
        match e {
            ExecutionError::FailedWithExitCode(code) => RunError::Failed(code),
            other => RunError::Trapped(other.to_string()),
        }
    }
}

impl Zkvm {
    /// Runs `program` on `input` for `beneficiary` (see [`crate::binding`]) for at most
    /// `max_cycles` instructions (the final `terminate` not counted) and measures the
    /// segments its proof will have. Their number does not depend on the beneficiary.
    pub fn run(
        &self,
        program: &Program,
        input: &[u8],
        beneficiary: [u8; 32],
        max_cycles: u64,
    ) -> Result<Run, RunError> {
        if input.len() > MAX_INPUT_BYTES {
            return Err(RunError::InputTooLarge(input.len()));
        }
        let executor = &self.executor;
        let instance = executor
            .instance(&program.exe)
            .map_err(|e| RunError::Trapped(e.to_string()))?;
        let state = instance.execute(stdin(input, &beneficiary), Some(max_cycles))?;
        if !at_terminate(&program.exe, state.pc()) {
            return Err(RunError::TooLong(max_cycles));
        }
        // The run stopped at a `terminate`: execute it, which fails on a non-zero code.
        let state = instance.execute_from_state(state, Some(1))?;
        let output = read_output(&state)?;
        let public_value: [u8; 32] = extract_public_values(32, &state.memory.memory)
            .try_into()
            .map_err(|_| RunError::NotNexusGuest("fewer than 32 public bytes"))?;
        let expected = binding::public_value(
            &beneficiary,
            &binding::blob_id(input),
            &binding::blob_id(&output),
        );
        if public_value != expected {
            return Err(RunError::NotNexusGuest(
                "its public value is not SHA-256(beneficiary || BlobId(input) || BlobId(output))",
            ));
        }
        let segments = self.segments(program, input, &beneficiary)?;
        let cycles = segments.iter().map(|s| s.cycles).sum();
        Ok(Run {
            output,
            beneficiary,
            public_value,
            cycles,
            segments,
        })
    }

    /// Splits a run known to terminate into OpenVM's segments.
    fn segments(
        &self,
        program: &Program,
        input: &[u8],
        beneficiary: &[u8; 32],
    ) -> Result<Vec<Segment>, RunError> {
        let app = self
            .app_prover(program.exe.clone())
            .map_err(|e| RunError::Trapped(e.to_string()))?;
        let vm = app.vm();
        let ctx = vm.build_metered_ctx(&program.exe);
        let interpreter = vm
            .metered_interpreter(&program.exe)
            .map_err(|e| RunError::Trapped(e.to_string()))?;
        let (segments, _) = interpreter.execute_metered(stdin(input, beneficiary), ctx)?;
        Ok(segments
            .into_iter()
            .map(|s| Segment {
                start: s.instret_start,
                cycles: s.num_insns,
                trace_heights: s.trace_heights,
            })
            .collect())
    }

    /// The state at every segment boundary of `run`: `segments + 1` entries, the first
    /// the initial state, the last the final one.
    pub fn boundaries(
        &self,
        program: &Program,
        input: &[u8],
        run: &Run,
    ) -> Result<Vec<Boundary>, RunError> {
        let executor = &self.executor;
        let instance = executor
            .instance(&program.exe)
            .map_err(|e| RunError::Trapped(e.to_string()))?;
        let dims = self.config().as_ref().memory_config.memory_dimensions();
        let hasher = vm_poseidon2_hasher::<F>();
        let boundary = |state: &VmState<F, GuestMemory>| Boundary {
            pc: state.pc(),
            memory_root: MerkleTree::from_memory(&state.memory.memory, &dims, &hasher)
                .root()
                .map(|f| f.as_canonical_u32()),
        };
        let mut state = instance.execute(stdin(input, &run.beneficiary), Some(0))?;
        let mut out = vec![boundary(&state)];
        for segment in &run.segments {
            state = instance.execute_from_state(state, Some(segment.cycles))?;
            out.push(boundary(&state));
        }
        Ok(out)
    }

    /// The state at the start of `segment` of `run`, by executing the instructions before
    /// it.
    pub(super) fn state_at(
        &self,
        program: &Program,
        input: &[u8],
        run: &Run,
        segment: &Segment,
    ) -> Result<VmState<F, GuestMemory>, RunError> {
        let executor = &self.executor;
        let instance = executor
            .instance(&program.exe)
            .map_err(|e| RunError::Trapped(e.to_string()))?;
        Ok(instance.execute(stdin(input, &run.beneficiary), Some(segment.start))?)
    }

    /// The memory needed to seal a run's root: its final state.
    pub(super) fn final_state(
        &self,
        program: &Program,
        input: &[u8],
        run: &Run,
    ) -> Result<VmState<F, GuestMemory>, RunError> {
        let executor = &self.executor;
        let instance = executor
            .instance(&program.exe)
            .map_err(|e| RunError::Trapped(e.to_string()))?;
        Ok(instance.execute(stdin(input, &run.beneficiary), None)?)
    }
}

/// Whether the instruction at `pc` is OpenVM's `terminate`.
fn at_terminate(exe: &VmExe<F>, pc: u32) -> bool {
    let Some(offset) = pc.checked_sub(exe.program.pc_base) else {
        return false;
    };
    exe.program
        .get_instruction_and_debug_info(
            (offset / openvm_instructions::program::DEFAULT_PC_STEP) as usize,
        )
        .is_some_and(|(inst, _)| inst.opcode == SystemOpcode::TERMINATE.global_opcode())
}

/// The output the guest runtime left in memory, bounds-checked.
fn read_output(state: &VmState<F, GuestMemory>) -> Result<Vec<u8>, RunError> {
    let word = |addr: u32| -> u32 {
        // SAFETY: address space 2 holds u8 cells and the descriptor lies far inside it.
        let bytes: [u8; 4] = unsafe { state.memory.read::<u8, 4>(RAM, addr) };
        u32::from_le_bytes(bytes)
    };
    let (ptr, len) = (word(OUTPUT_DESCRIPTOR), word(OUTPUT_DESCRIPTOR + 4));
    if len as usize > MAX_OUTPUT_BYTES {
        return Err(RunError::NotNexusGuest("its output is larger than 1 MiB"));
    }
    if u64::from(ptr) + u64::from(len) > crate::program::MEM_SIZE {
        return Err(RunError::NotNexusGuest("its output lies outside memory"));
    }
    // SAFETY: `ptr..ptr + len` was checked to lie inside the 2^29-byte RAM address space.
    let bytes = unsafe {
        state
            .memory
            .memory
            .get_u8_slice(RAM, ptr as usize, len as usize)
    };
    Ok(bytes.to_vec())
}
