//! Key files in the data directory, created on first start: `identity.key` (the libp2p
//! ed25519 identity), `account.key` (the BLS key of the node's ledger account) and, on
//! validators, `validator.key` (the BLS key that signs proposals, votes and timeouts).

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{anyhow, Context, Result};
use nexus_net::Keypair;
use nexus_storage::SigningKey;

/// Writes `bytes` to a new file readable only by its owner.
fn write_secret(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create key file {}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

/// Loads the node's libp2p identity from `dir/identity.key`, creating it if absent.
pub(crate) fn load_or_create_identity(dir: &Path) -> Result<Keypair> {
    let path = dir.join("identity.key");
    if path.exists() {
        let bytes = fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        return Keypair::from_protobuf_encoding(&bytes)
            .map_err(|e| anyhow!("{} is not a valid identity key: {e}", path.display()));
    }
    let key = Keypair::generate_ed25519();
    let bytes = key
        .to_protobuf_encoding()
        .context("cannot encode identity key")?;
    write_secret(&path, &bytes)?;
    Ok(key)
}

/// Loads the node's BLS account key from `dir/account.key`, creating it if absent.
pub(crate) fn load_or_create_account_key(dir: &Path) -> Result<SigningKey> {
    load_or_create_bls_key(&dir.join("account.key"))
}

/// Loads the node's BLS validator key from `dir/validator.key`, creating it if absent.
pub(crate) fn load_or_create_validator_key(dir: &Path) -> Result<SigningKey> {
    load_or_create_bls_key(&dir.join("validator.key"))
}

fn load_or_create_bls_key(path: &Path) -> Result<SigningKey> {
    if path.exists() {
        let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| anyhow!("{} must hold exactly 32 bytes", path.display()))?;
        return SigningKey::from_bytes(&bytes)
            .with_context(|| format!("{} is invalid", path.display()));
    }
    let seed: [u8; 32] = rand::random();
    let key = SigningKey::from_seed(&seed);
    write_secret(path, &key.to_bytes())?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_created_once_and_reloaded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = load_or_create_identity(dir.path()).expect("create");
        let b = load_or_create_identity(dir.path()).expect("load");
        assert_eq!(a.public(), b.public());
        let p = load_or_create_account_key(dir.path()).expect("create");
        let q = load_or_create_account_key(dir.path()).expect("load");
        assert_eq!(p.public(), q.public());
        fs::write(dir.path().join("account.key"), b"short").expect("write");
        assert!(load_or_create_account_key(dir.path()).is_err());
    }
}
