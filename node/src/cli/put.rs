//! `nexus put FILE`: streams a file to a node, which stores it and anchors it in a block.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use tokio_util::io::ReaderStream;

use crate::api::{LedgerView, Receipt, Status};
use crate::client::NodeClient;
use crate::units::ByteSize;

/// Options of `nexus put`.
#[derive(Debug, clap::Args)]
pub(crate) struct PutArgs {
    /// The file to store.
    pub(crate) file: PathBuf,
    /// Print the receipt as JSON only.
    #[arg(long)]
    pub(crate) json: bool,
    /// How the network keeps it: `replicated` (every node, whole), `erasure`
    /// (Reed-Solomon shards on an orchestrator's providers) or `das` (in a block's payload,
    /// as cells custodied by every storage node and sampled by light clients).
    #[arg(long, value_enum, default_value = "replicated")]
    pub(crate) policy: Policy,
    /// Epochs to pay for.
    #[arg(long)]
    pub(crate) epochs: Option<u64>,
}

/// Storage policy chosen on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Policy {
    /// Every storage node keeps the whole blob.
    Replicated,
    /// Reed-Solomon shards spread over one orchestrator's providers.
    Erasure,
    /// Carried in a block's payload, KZG tensor-coded, kept as custody cells.
    Das,
}

/// Uploads `file`; the node answers once the blob is persisted and registered in a final
/// block.
pub(crate) async fn upload(
    client: &NodeClient,
    file: &std::path::Path,
    policy: Policy,
    epochs: Option<u64>,
    progress: bool,
) -> Result<Receipt> {
    let f = tokio::fs::File::open(file)
        .await
        .with_context(|| format!("file not readable: {}", file.display()))?;
    let meta = f
        .metadata()
        .await
        .with_context(|| format!("file not readable: {}", file.display()))?;
    if !meta.is_file() {
        bail!(
            "{} is not a regular file: nexus put stores one file (archive a directory first, e.g. with tar)",
            file.display()
        );
    }
    let size = meta.len();
    // A node answers an over-quota upload before reading it, which most HTTP clients see as
    // a broken connection: check the room first, so the user gets the real reason.
    let status: Status = client.get_json("/v1/status").await?;
    if let Some(capacity) = status.capacity {
        let available = capacity.saturating_sub(status.used_bytes + status.staged_bytes);
        if size > available {
            bail!(
                "disk quota exceeded: {} needs {} but the node has {} free of its {} capacity",
                file.display(),
                ByteSize(size),
                ByteSize(available),
                ByteSize(capacity)
            );
        }
    }
    if policy == Policy::Das {
        let ledger: LedgerView = client.get_json("/v1/ledger").await?;
        let max = ledger.params.max_block_data;
        if size > max {
            bail!(
                "{} is {} but a das blob rides in one block, which carries at most {}: use --policy replicated or erasure",
                file.display(),
                ByteSize(size),
                ByteSize(max)
            );
        }
    }
    let policy = match policy {
        Policy::Replicated => "replicated",
        Policy::Erasure => "erasure",
        Policy::Das => "das",
    };
    // Everything else the node would refuse before reading the body (balance, an
    // orchestrator with room...), asked first: an answer sent while the body is still
    // being written reaches the client as a broken connection.
    let mut check = client.url("/v1/blobs/preflight")?;
    check
        .query_pairs_mut()
        .append_pair("size", &size.to_string())
        .append_pair("policy", policy);
    if let Some(e) = epochs {
        check
            .query_pairs_mut()
            .append_pair("epochs", &e.to_string());
    }
    client.send(|http| http.get(check)).await?;
    let bar = if progress && size >= 8 << 20 {
        let bar = ProgressBar::new(size);
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let counted = bar.clone();
    let stream = ReaderStream::with_capacity(f, 256 * 1024).map(move |piece| {
        if let Ok(bytes) = &piece {
            counted.inc(bytes.len() as u64);
        }
        piece
    });
    let mut url = client.url("/v1/blobs")?;
    url.query_pairs_mut().append_pair("policy", policy);
    if let Some(e) = epochs {
        url.query_pairs_mut().append_pair("epochs", &e.to_string());
    }
    let response = client
        .send(|http| {
            http.put(url)
                .header(reqwest::header::CONTENT_LENGTH, size)
                .body(reqwest::Body::wrap_stream(stream))
        })
        .await;
    bar.finish_and_clear();
    response?
        .json()
        .await
        .map_err(|e| anyhow!("malformed receipt from the node: {e}"))
}

/// Runs `nexus put`.
pub(crate) async fn put(client: &NodeClient, args: PutArgs) -> Result<()> {
    let receipt = upload(client, &args.file, args.policy, args.epochs, !args.json).await?;
    if args.json {
        out!("{}", serde_json::to_string_pretty(&receipt)?);
        return Ok(());
    }
    out!("blob id:    {}", receipt.blob_id);
    out!(
        "size:       {} ({} bytes)",
        ByteSize(receipt.size),
        receipt.size
    );
    out!("policy:     {}", receipt.policy);
    out!(
        "block:      {} (hash {}), final; finalized height {}",
        receipt.height,
        receipt.block_hash,
        receipt.finalized_height
    );
    out!(
        "receipt:    registration #{} of block {}, proposed by validator {}",
        receipt.index,
        receipt.height,
        receipt.proposer
    );
    out!("check it:   nexus verify {}", receipt.blob_id);
    Ok(())
}
