//! `nexus keys --data-dir DIR`: a node's identities (created if missing), for operators and
//! for building a genesis that funds known accounts.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nexus_storage::ledger::{Genesis, LedgerParams};
use nexus_storage::PublicKey;
use serde::{Deserialize, Serialize};

use crate::daemon::{
    load_or_create_account_key, load_or_create_identity, load_or_create_validator_key,
};
use nexus_storage::Signature;

/// Options of `nexus keys`.
#[derive(Debug, clap::Args)]
pub(crate) struct KeysArgs {
    /// The node's data directory (keys are created there if missing).
    #[arg(long)]
    pub(crate) data_dir: PathBuf,
}

/// A node's public identities.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct NodeKeys {
    /// libp2p peer id.
    pub(crate) peer_id: String,
    /// Ledger account (BLS public key).
    pub(crate) account: PublicKey,
    /// Validator key (BLS), for a genesis committee.
    pub(crate) validator: PublicKey,
    /// Its proof of possession, which the committee checks.
    pub(crate) validator_proof_of_possession: Signature,
}

/// Loads (or creates) the keys in `dir`.
pub(crate) fn node_keys(dir: &Path) -> Result<NodeKeys> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let validator = load_or_create_validator_key(dir)?;
    Ok(NodeKeys {
        validator: validator.public(),
        validator_proof_of_possession: validator.proof_of_possession(),
        peer_id: load_or_create_identity(dir)?
            .public()
            .to_peer_id()
            .to_string(),
        account: load_or_create_account_key(dir)?.public(),
    })
}

/// A genesis funding each of `accounts` with `funds`, with default parameters.
pub(crate) fn funded_genesis(accounts: &[PublicKey], funds: u64) -> Genesis {
    Genesis {
        params: LedgerParams::default(),
        balances: accounts.iter().map(|a| (*a, funds)).collect(),
    }
}

/// Runs `nexus keys`.
pub(crate) fn keys(args: KeysArgs) -> Result<()> {
    out!(
        "{}",
        serde_json::to_string_pretty(&node_keys(&args.data_dir)?)?
    );
    Ok(())
}
