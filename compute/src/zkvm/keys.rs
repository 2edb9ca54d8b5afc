//! The zkVM's keys, generated once and cached on disk, and the verifier of Universal
//! Proofs, which needs only the small verifying key.

use std::{
    fs,
    path::{Path, PathBuf},
    sync::{Arc, OnceLock},
};

use openvm_continuations::CommitBytes;
use openvm_sdk::{
    config::AggregationTreeConfig,
    fs::{read_object_from_file, write_object_to_file},
    keygen::{AggPrefixProvingKey, AggProvingKey},
    prover::AggProver,
};
use openvm_verify_stark_host::{
    verify_vm_stark_proof_decoded,
    vk::{read_vk_from_file, write_vk_to_file, VerificationBaseline, VmStarkVerifyingKey},
};

use super::{
    proofs::{guarded, ProofError, UniversalProof},
    Zkvm, ZkvmError,
};

/// Keys depend on OpenVM's version and on the segment size: each pair has its own folder.
const KEY_FOLDER: &str = "openvm-2.0.2-rv32im-seg19";
const PROVING_KEY: &str = "aggregation.pk";
const VERIFYING_KEY: &str = "universal.vk";

/// Checks Universal Proofs: constant time whatever the job's length. Holds OpenVM's
/// internal-recursive verifying key and the commitments of the verifier circuits below it.
#[derive(Clone)]
pub struct Verifier {
    /// The key with a zero program commitment; each check puts in the job's.
    template: VmStarkVerifyingKey,
}

/// The verifying key of Universal Proofs for this OpenVM version and segment size, as
/// [`Zkvm::open`] derives it (a test checks they are equal): every node verifies with it
/// at once, without generating keys.
const EMBEDDED_KEY: &[u8] = include_bytes!("universal.vk");

impl Verifier {
    /// The verifier of the key shipped with this build.
    pub fn embedded() -> &'static Verifier {
        static EMBEDDED: OnceLock<Verifier> = OnceLock::new();
        EMBEDDED.get_or_init(|| Verifier {
            template: bitcode::deserialize(EMBEDDED_KEY)
                .expect("the embedded verifying key is a valid key (tested)"),
        })
    }

    /// The verifying key's encoding (bitcode, as OpenVM writes it).
    pub fn key_bytes(&self) -> Vec<u8> {
        bitcode::serialize(&self.template).expect("a verifying key serializes")
    }

    /// The verifier from the key cached in `key_dir`; without one, opens the whole zkVM
    /// (generating and caching its keys) to derive it.
    pub fn open(key_dir: &Path) -> Result<Verifier, ZkvmError> {
        let path = key_dir.join(KEY_FOLDER).join(VERIFYING_KEY);
        match read_vk_from_file(&path) {
            Ok(template) => Ok(Verifier { template }),
            Err(_) => Ok(Zkvm::open(key_dir)?.verifier().clone()),
        }
    }

    /// Accepts `proof` only if it proves a successful run of the program whose commitment
    /// is `program_commit` and carries `public_value` (the binding of its input and output).
    pub fn verify(
        &self,
        proof: &UniversalProof,
        program_commit: [u8; 32],
        public_value: [u8; 32],
    ) -> Result<(), ProofError> {
        let commit = CommitBytes::try_new(program_commit)
            .map_err(|_| ProofError::WrongStatement("the program commitment is not canonical"))?;
        let mut vk = self.template.clone();
        vk.baseline.app_exe_commit = commit.into();
        guarded(|| verify_vm_stark_proof_decoded(&vk, proof.inner()))?
            .map_err(|e| ProofError::Invalid(e.to_string()))?;
        if proof.public_value() != Some(public_value) {
            return Err(ProofError::WrongStatement(
                "it proves another input or another output",
            ));
        }
        Ok(())
    }
}

/// Gives `zkvm` the aggregation keys read from `key_dir`, or generated and written there,
/// and the verifier derived from them (its key written beside them).
pub(super) fn open(zkvm: &Zkvm, key_dir: &Path) -> Result<(), ZkvmError> {
    let dir = key_dir.join(KEY_FOLDER);
    let pk_path = dir.join(PROVING_KEY);
    let cached = read_object_from_file::<AggProvingKey, _>(&pk_path).ok();
    let generate = cached.is_none();
    if let Some(agg_pk) = cached {
        let prover = AggProver::from_pk(
            Arc::new(zkvm.app_pk.app_vm_pk.vm_pk.get_vk()),
            agg_pk,
            AggregationTreeConfig::default(),
            None,
        );
        let _ = zkvm.agg.set(Arc::new(prover));
    }
    let agg = zkvm.agg();
    let verifier = zkvm.verifier();
    fs::create_dir_all(&dir).map_err(|e| keys_error(&dir, e))?;
    if generate {
        let agg_pk = AggProvingKey {
            prefix: AggPrefixProvingKey {
                leaf: agg.leaf_prover.get_pk(),
                internal_for_leaf: agg.internal_for_leaf_prover.get_pk(),
            },
            internal_recursive: agg.internal_recursive_prover.get_pk(),
        };
        write_atomically(&pk_path, |tmp| write_object_to_file(tmp, agg_pk))?;
    }
    let vk_path = dir.join(VERIFYING_KEY);
    if generate || !vk_path.exists() {
        write_atomically(&vk_path, |tmp| write_vk_to_file(tmp, &verifier.template))?;
    }
    Ok(())
}

/// The verifier of proofs made with `zkvm`'s keys, as OpenVM's `StarkProver::
/// generate_baseline` builds its key, with a zero program commitment.
pub(super) fn verifier_of(zkvm: &Zkvm) -> Verifier {
    let agg = zkvm.agg();
    let config = zkvm.config().as_ref();
    Verifier {
        template: VmStarkVerifyingKey {
            mvk: (*agg.internal_recursive_prover.get_vk()).clone(),
            baseline: VerificationBaseline {
                app_exe_commit: Default::default(),
                memory_dimensions: config.memory_config.memory_dimensions(),
                num_user_pvs: config.num_public_values,
                app_vk_commit: agg.leaf_prover.get_vk_commit(false),
                leaf_vk_commit: agg.internal_for_leaf_prover.get_vk_commit(false),
                internal_for_leaf_vk_commit: agg.internal_recursive_prover.get_vk_commit(false),
                internal_recursive_vk_commit: agg.internal_recursive_prover.get_vk_commit(true),
                expected_def_hook_commit: None,
            },
        },
    }
}

/// Writes through a temporary file and a rename, so a crash never leaves half a key.
fn write_atomically<E: std::fmt::Display>(
    path: &Path,
    write: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<(), ZkvmError> {
    let mut tmp = PathBuf::from(path);
    tmp.set_extension("tmp");
    write(&tmp).map_err(|e| keys_error(&tmp, std::io::Error::other(e.to_string())))?;
    fs::rename(&tmp, path).map_err(|e| keys_error(path, e))
}

fn keys_error(path: &Path, source: std::io::Error) -> ZkvmError {
    ZkvmError::Keys {
        path: path.display().to_string(),
        source,
    }
}
