//! `nexus node repair`: what to do with a store that no longer opens. Its files are set
//! aside (never deleted: an operator may want them) and an empty store takes their place,
//! with the blob content that still hashes right salvaged from the old files (staged until
//! the synced chain shows it registered); the node then syncs the final chain with its
//! proofs and fetches every other registered blob and its custody cells from peers, as a
//! new node would. A store that opens needs no
//! offline repair: chunks are verified whenever they are read, and a corrupt one is
//! discarded and fetched again by the running node.

use std::path::PathBuf;

use anyhow::{bail, Context as _, Result};
use nexus_storage::{Salvaged, Stage, Store};

use crate::units::now_ms;

/// Options of `nexus node repair`.
#[derive(Debug, clap::Args)]
pub(crate) struct RepairArgs {
    /// The data dir of the (stopped) node.
    #[arg(long)]
    data_dir: PathBuf,
}

/// Runs `nexus node repair`.
pub(crate) fn run(args: RepairArgs) -> Result<()> {
    let store_dir = args.data_dir.join("store");
    if !store_dir.is_dir() {
        bail!("no store in {}: nothing to repair", args.data_dir.display());
    }
    let error = match Store::open(&store_dir, None) {
        Ok(store) => {
            let height = store.tip().map(|t| t.header.height.0);
            let stats = store.stats()?;
            out!(
                "the store opens: final chain up to height {}, {} blobs whole, {} being \
                 fetched. Nothing to repair offline: chunks are verified whenever they are \
                 read, and a corrupt one is fetched again by the running node.",
                height.map_or("-".into(), |h| h.to_string()),
                stats.blobs_complete,
                stats.blobs_partial
            );
            return Ok(());
        }
        Err(e) if e.is_locked() => bail!(
            "the store in {} is in use by a running node: stop it first",
            args.data_dir.display()
        ),
        Err(e) => e,
    };
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let aside = args.data_dir.join(format!("store.corrupt-{stamp}"));
    std::fs::rename(&store_dir, &aside)
        .with_context(|| format!("cannot move {} aside", store_dir.display()))?;
    let fresh = Store::open(&store_dir, None).context("cannot create an empty store")?;
    out!(
        "the store could not be opened: {error}\nmoved it to {}; an empty store takes its \
         place.",
        aside.display()
    );
    match salvage(&aside, &fresh) {
        Ok(s) => out!(
            "salvaged {} blobs ({} bytes) from it, identified by hashing their bytes again: \
             each is kept once the synced chain shows it registered (within {} h), else \
             deleted; {} runs of chunks were incomplete or unreadable.",
            s.blobs.len(),
            s.bytes,
            SALVAGE_LEASE.as_secs() / 3600,
            s.skipped
        ),
        Err(e) => out!("nothing could be salvaged from it: {e:#}"),
    }
    out!(
        "Start the node: it syncs the final chain (with its finality proofs) and fetches \
         every other registered blob and its custody cells from peers. Keys and settings \
         are untouched; delete {} once the node has caught up.",
        aside.display()
    );
    Ok(())
}

/// How long salvaged blobs wait for the synced chain to show their registration.
const SALVAGE_LEASE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Copies the blob files of the store set aside in `aside` into `fresh`, each under the
/// id its bytes hash to: blob content lives in plain files, so this works whatever became
/// of the old store's database (even a damaged journal the engine refuses).
fn salvage(aside: &std::path::Path, fresh: &Store) -> Result<Salvaged> {
    let stage = Stage {
        lease_until_ms: now_ms() + SALVAGE_LEASE.as_millis() as u64,
        kept_by: None,
    };
    Ok(fresh.salvage_from(aside, stage)?)
}
