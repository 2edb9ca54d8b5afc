//! Proving a job's tree one node at a time, sealing the root into the Universal Proof, and
//! checking every proof a party receives before it is used.

use std::{
    borrow::Borrow,
    io::Read,
    panic::{catch_unwind, AssertUnwindSafe},
};

use openvm_circuit::{
    arch::{
        hasher::poseidon2::vm_poseidon2_hasher, CONNECTOR_AIR_ID, MERKLE_AIR_ID, PROGRAM_AIR_ID,
        PROGRAM_CACHED_TRACE_INDEX,
    },
    system::{
        connector::{VmConnectorPvs, DEFAULT_SUSPEND_EXIT_CODE},
        memory::{
            merkle::{public_values::UserPublicValuesProof, MemoryMerklePvs, MerkleTree},
            CHUNK,
        },
    },
};
use openvm_continuations::{circuit::inner::ProofsType, prover::ChildVkKind};
use openvm_sdk::{prover::vm::new_local_prover, DefaultStarkEngine, F, SC};
use openvm_stark_backend::{
    codec::{Decode, Encode},
    keygen::types::MultiStarkVerifyingKey,
    p3_field::PrimeField32,
    proof::Proof,
    StarkEngine,
};
use openvm_verify_stark_host::{
    pvs::{VerifierBasePvs, VmPvs, VERIFIER_PVS_AIR_ID, VM_PVS_AIR_ID},
    VmStarkProof,
};

use super::{run::Boundary, Program, Run, Zkvm, ZkvmError};
use crate::tree::{Level, NodeRef, ProofTree};

pub use crate::sizes::{MAX_NODE_PROOF_BYTES, MAX_UNIVERSAL_PROOF_BYTES};

/// The proof of one node of a job's tree: a segment, a leaf or an internal node.
#[derive(Clone)]
pub struct NodeProof(Proof<SC>);

/// A job's Universal Proof: its root wrapped once or twice more, with the proof of its
/// public values. Verifies in constant time whatever the number of segments.
#[derive(Clone)]
pub struct UniversalProof(VmStarkProof);

/// Why a received proof is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// More bytes than any proof of its kind has.
    #[error("the proof is {0} bytes, more than a proof of its kind can be")]
    TooLarge(usize),
    /// The bytes do not decode as a proof.
    #[error("the proof is malformed: {0}")]
    Malformed(String),
    /// The STARK does not verify.
    #[error("the proof does not verify: {0}")]
    Invalid(String),
    /// It verifies, but proves something else than the node it was given for.
    #[error("the proof is not of this node: {0}")]
    WrongStatement(&'static str),
}

impl NodeProof {
    /// The proof's encoding (OpenVM's codec).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0
            .encode_to_vec()
            .expect("encoding into memory cannot fail")
    }

    /// Decodes a proof received from a peer; it still has to be [`Zkvm::check`]ed.
    pub fn from_bytes(bytes: &[u8]) -> Result<NodeProof, ProofError> {
        if bytes.len() > MAX_NODE_PROOF_BYTES {
            return Err(ProofError::TooLarge(bytes.len()));
        }
        guarded(|| Proof::<SC>::decode_from_bytes(bytes))
            .and_then(|r| r.map_err(|e| ProofError::Malformed(e.to_string())))
            .map(NodeProof)
    }
}

impl UniversalProof {
    /// The proof's encoding: OpenVM's `VmStarkProof` codec, zstd-compressed (the format
    /// `openvm-verify-stark-host` reads).
    pub fn to_bytes(&self) -> Vec<u8> {
        let raw = self
            .0
            .encode_to_vec()
            .expect("encoding into memory cannot fail");
        zstd::encode_all(&raw[..], 0).expect("compressing into memory cannot fail")
    }

    /// Decodes a Universal Proof, refusing anything larger than a real one before and
    /// after decompression.
    pub fn from_bytes(bytes: &[u8]) -> Result<UniversalProof, ProofError> {
        if bytes.len() > MAX_UNIVERSAL_PROOF_BYTES {
            return Err(ProofError::TooLarge(bytes.len()));
        }
        let mut raw = Vec::new();
        zstd::Decoder::new(bytes)
            .and_then(|d| {
                d.take(4 * MAX_UNIVERSAL_PROOF_BYTES as u64 + 1)
                    .read_to_end(&mut raw)
            })
            .map_err(|e| ProofError::Malformed(e.to_string()))?;
        if raw.len() > 4 * MAX_UNIVERSAL_PROOF_BYTES {
            return Err(ProofError::TooLarge(raw.len()));
        }
        guarded(|| VmStarkProof::decode_from_bytes(&raw))
            .and_then(|r| r.map_err(|e| ProofError::Malformed(e.to_string())))
            .map(UniversalProof)
    }

    /// The 32 public bytes the proof carries (the guest's binding of input and output).
    pub fn public_value(&self) -> Option<[u8; 32]> {
        let values = &self.0.user_pvs_proof.public_values;
        let bytes: Vec<u8> = values
            .iter()
            .map(|f| u8::try_from(f.as_canonical_u32()).ok())
            .collect::<Option<_>>()?;
        bytes.try_into().ok()
    }

    pub(super) fn inner(&self) -> &VmStarkProof {
        &self.0
    }
}

/// Runs OpenVM code on input it may not expect; a panic becomes an error, not a crash.
pub(super) fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, ProofError> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|panic| {
        let why = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "the verifier panicked".into());
        ProofError::Malformed(why)
    })
}

type Engine = DefaultStarkEngine;

impl Zkvm {
    /// Proves segment `index` of `run` (a delegator's work): executes up to the segment's
    /// start, then proves its instructions.
    pub fn prove_segment(
        &self,
        program: &Program,
        input: &[u8],
        run: &Run,
        index: usize,
    ) -> Result<NodeProof, ZkvmError> {
        let segment = run
            .segments
            .get(index)
            .ok_or_else(|| ZkvmError::Prover(format!("the run has no segment {index}")))?;
        let from = self
            .state_at(program, input, run, segment)
            .map_err(|e| ZkvmError::Prover(e.to_string()))?;
        let mut instance = new_local_prover::<Engine, _>(
            openvm_sdk_config::SdkVmCpuBuilder,
            &self.app_pk.app_vm_pk,
            program.exe.clone(),
        )
        .map_err(prover_error)?;
        let vm = &mut instance.vm;
        vm.transport_init_memory_to_device(&from.memory);
        let executed = vm
            .execute_preflight(
                &mut instance.interpreter,
                from,
                Some(segment.cycles),
                &segment.trace_heights,
            )
            .map_err(prover_error)?;
        let ctx = vm
            .generate_proving_ctx(executed.system_records, executed.record_arenas)
            .map_err(prover_error)?;
        let proof = vm.engine.prove(vm.pk(), ctx).map_err(prover_error)?;
        Ok(NodeProof(proof))
    }

    /// Proves a folding node of `level` from its children's proofs, in order (an
    /// orchestrator's work). The children must have been [`Zkvm::check`]ed.
    pub fn fold(&self, level: Level, children: &[NodeProof]) -> Result<NodeProof, ZkvmError> {
        let agg = self.agg();
        let proofs: Vec<Proof<SC>> = children.iter().map(|c| c.0.clone()).collect();
        let proof = match level {
            Level::Segment => {
                return Err(ZkvmError::Prover("a segment is proven, not folded".into()))
            }
            Level::Leaf => agg
                .leaf_prover
                .agg_prove_no_def::<Engine>(&proofs, ChildVkKind::App),
            Level::InternalForLeaf => agg
                .internal_for_leaf_prover
                .agg_prove_no_def::<Engine>(&proofs, ChildVkKind::Standard),
            Level::InternalRecursive(0) => agg
                .internal_recursive_prover
                .agg_prove_no_def::<Engine>(&proofs, ChildVkKind::Standard),
            Level::InternalRecursive(_) => agg
                .internal_recursive_prover
                .agg_prove_no_def::<Engine>(&proofs, ChildVkKind::RecursiveSelf),
        }
        .map_err(prover_error)?;
        Ok(NodeProof(proof))
    }

    /// Wraps the root's proof in [`ProofTree::seal_wraps`] more single-child recursive
    /// layers (OpenVM's `StarkProver::prove` wraps once; a root over several children needs
    /// a second for the proof to keep its size) and attaches the proof of the run's public
    /// values: the Universal Proof.
    pub fn seal(
        &self,
        program: &Program,
        input: &[u8],
        run: &Run,
        tree: &ProofTree,
        root: &NodeProof,
    ) -> Result<UniversalProof, ZkvmError> {
        self.seal_wrapped(program, input, run, root, tree.seal_wraps())
    }

    /// [`Zkvm::seal`] with `wraps` (at least one) single-child recursive layers whatever
    /// the tree: any number verifies alike, only the proof's size and the time to seal
    /// differ.
    pub fn seal_wrapped(
        &self,
        program: &Program,
        input: &[u8],
        run: &Run,
        root: &NodeProof,
        wraps: u32,
    ) -> Result<UniversalProof, ZkvmError> {
        if wraps == 0 {
            return Err(ZkvmError::Prover(
                "a Universal Proof wraps its root at least once".into(),
            ));
        }
        let agg = self.agg();
        let mut inner = root.0.clone();
        for _ in 0..wraps {
            inner = agg
                .internal_recursive_prover
                .agg_prove::<Engine>(
                    std::slice::from_ref(&inner),
                    ChildVkKind::RecursiveSelf,
                    ProofsType::Vm,
                    None,
                )
                .map_err(prover_error)?;
        }
        let last = self
            .final_state(program, input, run)
            .map_err(|e| ZkvmError::Prover(e.to_string()))?;
        let config = self.config().as_ref();
        let dims = config.memory_config.memory_dimensions();
        let hasher = vm_poseidon2_hasher::<F>();
        let tree = MerkleTree::from_memory(&last.memory.memory, &dims, &hasher);
        let user_pvs_proof = UserPublicValuesProof::compute(
            dims,
            config.num_public_values,
            &hasher,
            &last.memory.memory,
            &tree.top_tree(dims.addr_space_height),
        );
        Ok(UniversalProof(VmStarkProof {
            inner,
            user_pvs_proof,
            deferral_merkle_proofs: None,
        }))
    }

    /// Checks a proof received for `node` of the job's `tree`: it verifies under the key of
    /// its level and states exactly the node's span of the run — this program, the pc and
    /// memory root at the span's first and last boundary, and termination only at the end.
    /// `boundaries` come from [`Zkvm::boundaries`].
    pub fn check(
        &self,
        program: &Program,
        tree: &ProofTree,
        node: NodeRef,
        boundaries: &[Boundary],
        proof: &NodeProof,
    ) -> Result<(), ProofError> {
        if !tree.contains(node) || boundaries.len() != tree.segments() as usize + 1 {
            return Err(ProofError::WrongStatement(
                "the node is not in the job's tree",
            ));
        }
        let span = tree.span(node);
        let expected = Claim {
            program: program.code_commit,
            first: boundaries[span.start as usize],
            last: boundaries[span.end as usize],
            terminates: span.end == tree.segments(),
        };
        let level = tree.level_kind(node.level);
        let vk = self.level_vk(level);
        let engine = Engine::new(vk.inner.params.clone());
        guarded(|| engine.verify(&vk, &proof.0))?
            .map_err(|e| ProofError::Invalid(format!("{e:?}")))?;
        let claimed = guarded(|| claim_of(level, &proof.0))??;
        if claimed.program != expected.program {
            return Err(ProofError::WrongStatement("it proves another program"));
        }
        if claimed.first != expected.first {
            return Err(ProofError::WrongStatement(
                "it starts from another state than the node's first segment",
            ));
        }
        if claimed.last != expected.last {
            return Err(ProofError::WrongStatement(
                "it ends at another state than the node's last segment",
            ));
        }
        if claimed.terminates != expected.terminates {
            return Err(ProofError::WrongStatement(
                "it terminates where the run does not, or the reverse",
            ));
        }
        Ok(())
    }

    /// The verifying key a proof of `level` is checked against.
    fn level_vk(&self, level: Level) -> std::sync::Arc<MultiStarkVerifyingKey<SC>> {
        let agg = self.agg();
        match level {
            Level::Segment => std::sync::Arc::new(self.app_pk.app_vm_pk.vm_pk.get_vk()),
            Level::Leaf => agg.leaf_prover.get_vk(),
            Level::InternalForLeaf => agg.internal_for_leaf_prover.get_vk(),
            Level::InternalRecursive(_) => agg.internal_recursive_prover.get_vk(),
        }
    }
}

/// What a node proof states about the run.
#[derive(Debug, PartialEq, Eq)]
struct Claim {
    program: [F; 8],
    first: Boundary,
    last: Boundary,
    terminates: bool,
}

/// Reads the statement out of a verified proof's public values.
fn claim_of(level: Level, proof: &Proof<SC>) -> Result<Claim, ProofError> {
    let malformed = || ProofError::Malformed("public values missing".into());
    let pvs = |air: usize| proof.public_values.get(air).ok_or_else(malformed);
    let (program, first, last, exit_code, terminates) = if level == Level::Segment {
        let program = proof
            .trace_vdata
            .get(PROGRAM_AIR_ID)
            .and_then(|v| v.as_ref())
            .and_then(|v| v.cached_commitments.get(PROGRAM_CACHED_TRACE_INDEX))
            .copied()
            .ok_or_else(malformed)?;
        let connector = pvs(CONNECTOR_AIR_ID)?;
        let merkle = pvs(MERKLE_AIR_ID)?;
        if connector.len() != VmConnectorPvs::<u8>::width()
            || merkle.len() != MemoryMerklePvs::<u8, CHUNK>::width()
        {
            return Err(malformed());
        }
        let c: &VmConnectorPvs<F> = connector.as_slice().borrow();
        let m: &MemoryMerklePvs<F, CHUNK> = merkle.as_slice().borrow();
        (
            program,
            boundary(c.initial_pc, m.initial_root),
            boundary(c.final_pc, m.final_root),
            c.exit_code.as_canonical_u32(),
            c.is_terminate.as_canonical_u32() == 1,
        )
    } else {
        let base = pvs(VERIFIER_PVS_AIR_ID)?;
        let vm = pvs(VM_PVS_AIR_ID)?;
        if base.len() < VerifierBasePvs::<u8>::width() || vm.len() != VmPvs::<u8>::width() {
            return Err(malformed());
        }
        let b: &VerifierBasePvs<F> = base[..VerifierBasePvs::<u8>::width()].borrow();
        let expected_flag = match level {
            Level::Leaf => 0,
            Level::InternalForLeaf => 1,
            _ => 2,
        };
        if b.internal_flag.as_canonical_u32() != expected_flag {
            return Err(ProofError::WrongStatement(
                "it is a proof of another tree level",
            ));
        }
        let v: &VmPvs<F> = vm.as_slice().borrow();
        (
            v.program_commit,
            boundary(v.initial_pc, v.initial_root),
            boundary(v.final_pc, v.final_root),
            v.exit_code.as_canonical_u32(),
            v.is_terminate.as_canonical_u32() == 1,
        )
    };
    let expected_exit = if terminates {
        0
    } else {
        DEFAULT_SUSPEND_EXIT_CODE
    };
    if exit_code != expected_exit {
        return Err(ProofError::WrongStatement(
            "it ends with a failing exit code",
        ));
    }
    Ok(Claim {
        program,
        first,
        last,
        terminates,
    })
}

/// A boundary as a proof's public values state it.
fn boundary(pc: F, root: [F; CHUNK]) -> Boundary {
    Boundary {
        pc: pc.as_canonical_u32(),
        memory_root: root.map(|f| f.as_canonical_u32()),
    }
}

fn prover_error(e: impl std::fmt::Display) -> ZkvmError {
    ZkvmError::Prover(e.to_string())
}
