//! `nexus verify BLOBID`: checks that a blob is registered in a final block: the inclusion
//! proof against the block's header, and the header's finality certificate against the
//! chain's committee — from a node, or offline from a saved proof.

use std::path::PathBuf;

use anyhow::{anyhow, Context, Result};
use nexus_storage::{BlobId, BlobProof, BlockHash};

use nexus_api::client::NodeClient;

/// Options of `nexus verify`.
#[derive(Debug, clap::Args)]
pub(crate) struct VerifyArgs {
    /// The blob's id.
    pub(crate) blob_id: BlobId,
    /// Check this proof file (saved with --save) instead of asking a node: works offline.
    #[arg(long)]
    pub(crate) proof: Option<PathBuf>,
    /// The genesis hash to trust; without it the proof's own chain is checked and its
    /// genesis hash printed, to compare with one you trust.
    #[arg(long)]
    pub(crate) genesis_hash: Option<BlockHash>,
    /// Save the proof fetched from the node to this file.
    #[arg(long)]
    pub(crate) save: Option<PathBuf>,
}

/// Runs `nexus verify`.
pub(crate) async fn verify(client: &NodeClient, args: VerifyArgs) -> Result<()> {
    let proof: BlobProof = match &args.proof {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("file not readable: {}", path.display()))?;
            serde_json::from_str(&text)
                .map_err(|e| anyhow!("{} is not a blob proof: {e}", path.display()))?
        }
        None => {
            client
                .get_json(&format!("/v1/blobs/{}/proof", args.blob_id))
                .await?
        }
    };
    if let Some(path) = &args.save {
        std::fs::write(path, serde_json::to_string_pretty(&proof)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let ctx = proof
        .verify(&args.blob_id, args.genesis_hash)
        .map_err(|e| anyhow!("proof REJECTED: {e}"))?;
    let header = &proof.inclusion.header;
    let qc = &proof.finality.qc;
    let signers: u64 = qc.signers.indices().map(|i| ctx.committee().stake(i)).sum();
    out!(
        "verified: blob {} ({} bytes) is registration #{} of block {} (hash {})",
        args.blob_id,
        proof.inclusion.registration().map_or(0, |r| r.size),
        proof.inclusion.index,
        header.height,
        header.hash(),
    );
    out!(
        "final:    certified in round {} by {} validators holding {} of {} stake (chain {})",
        qc.round(),
        qc.signers.count(),
        signers,
        ctx.committee().total_stake(),
        ctx.spec().chain_id,
    );
    match args.genesis_hash {
        Some(g) => out!("genesis:  {g} (as trusted)"),
        None => out!(
            "genesis:  {} (pass --genesis-hash to check it against one you trust)",
            ctx.genesis()
        ),
    }
    Ok(())
}
