//! `nexus node repair`: what to do with a store that no longer opens. Its files are set
//! aside (never deleted: an operator may want them) and an empty store takes their place;
//! the node then syncs the final chain with its proofs and fetches every registered blob
//! and its custody cells from peers, as a new node would. A store that opens needs no
//! offline repair: chunks are verified whenever they are read, and a corrupt one is
//! discarded and fetched again by the running node.

use std::path::PathBuf;

use anyhow::{bail, Context as _, Result};
use nexus_storage::Store;

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
    Store::open(&store_dir, None).context("cannot create an empty store")?;
    out!(
        "the store could not be opened: {error}\nmoved it to {}; an empty store takes its \
         place. Start the node: it syncs the final chain (with its finality proofs) and \
         fetches every registered blob and its custody cells from peers. Keys and settings \
         are untouched; delete {} once the node has caught up.",
        aside.display(),
        aside.display()
    );
    Ok(())
}
