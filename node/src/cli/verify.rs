//! `nexus verify BLOBID`: checks that a blob is registered in a block signed by the chain's
//! proposer, from an inclusion proof fetched from a node or read from a file (offline).

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use nexus_storage::{BlobId, Block, Height, InclusionProof, PublicKey};

use crate::client::NodeClient;

/// Options of `nexus verify`.
#[derive(Debug, clap::Args)]
pub(crate) struct VerifyArgs {
    /// The blob's id.
    pub(crate) blob_id: BlobId,
    /// Check this proof file instead of asking the node (works offline with --proposer).
    #[arg(long)]
    pub(crate) proof: Option<PathBuf>,
    /// The proposer key to trust; by default the one of the node's genesis block.
    #[arg(long)]
    pub(crate) proposer: Option<PublicKey>,
    /// Save the proof fetched from the node to this file.
    #[arg(long)]
    pub(crate) save: Option<PathBuf>,
}

/// Runs `nexus verify`.
pub(crate) async fn verify(client: &NodeClient, args: VerifyArgs) -> Result<()> {
    let proof: InclusionProof = match &args.proof {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("file not readable: {}", path.display()))?;
            serde_json::from_str(&text)
                .map_err(|e| anyhow!("{} is not an inclusion proof: {e}", path.display()))?
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
    let proposer = match args.proposer {
        Some(p) => p,
        None if args.proof.is_some() => bail!("offline verification needs --proposer KEY (shown by `nexus status` as the genesis proposer)"),
        None => {
            let genesis: Block = client.get_json(&format!("/v1/blocks/{}", Height(0))).await?;
            genesis.header.proposer
        }
    };
    proof
        .verify(&args.blob_id, &proposer)
        .map_err(|e| anyhow!("inclusion proof REJECTED: {e}"))?;
    println!(
        "verified: blob {} ({} bytes) is registration #{} of block {} (hash {}), signed by proposer {}",
        args.blob_id,
        proof.registration().map_or(0, |r| r.size),
        proof.index,
        proof.header.height,
        proof.header.hash(),
        proposer
    );
    Ok(())
}
