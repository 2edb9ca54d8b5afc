//! `nexus get BLOBID -o FILE`: streams a blob to a file and checks it against its id.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use futures::StreamExt;
use nexus_storage::{BlobId, BlobIdBuilder};
use tokio::io::AsyncWriteExt;

use crate::units::ByteSize;
use nexus_api::client::NodeClient;
use nexus_api::types::{CELLS_FETCHED, CELL_BYTES_FETCHED};

/// Options of `nexus get`.
#[derive(Debug, clap::Args)]
pub(crate) struct GetArgs {
    /// The blob's id.
    pub(crate) blob_id: BlobId,
    /// Where to write the blob.
    #[arg(short, long)]
    pub(crate) output: PathBuf,
}

/// What a download got.
pub(crate) struct Downloaded {
    /// Bytes written.
    pub(crate) size: u64,
    /// For a `das` blob: cells the node fetched to rebuild it, and their bytes.
    pub(crate) cells: Option<(u64, u64)>,
}

/// Downloads `id` into `output` (via `output.partial`, renamed only once the content's
/// BlobId matches).
pub(crate) async fn download(
    client: &NodeClient,
    id: &BlobId,
    output: &Path,
) -> Result<Downloaded> {
    let url = client.url(&format!("/v1/blobs/{id}"))?;
    let response = client.send(|http| http.get(url.clone())).await?;
    let number =
        |name: &str| -> Option<u64> { response.headers().get(name)?.to_str().ok()?.parse().ok() };
    let cells = number(CELLS_FETCHED).zip(number(CELL_BYTES_FETCHED));
    let partial = output.with_extension("partial");
    let mut file = tokio::fs::File::create(&partial)
        .await
        .with_context(|| format!("cannot write {}", partial.display()))?;
    let mut hasher = BlobIdBuilder::new();
    let mut stream = response.bytes_stream();
    while let Some(piece) = stream.next().await {
        let piece = match piece {
            Ok(p) => p,
            Err(e) => {
                let _ = tokio::fs::remove_file(&partial).await;
                bail!("download of {id} interrupted: {e}");
            }
        };
        hasher.update(&piece);
        file.write_all(&piece).await?;
    }
    file.sync_all().await?;
    let size = hasher.size();
    let (got, _, _) = hasher.finish();
    if got != *id {
        let _ = tokio::fs::remove_file(&partial).await;
        bail!("corrupted data: the bytes received hash to {got}, not {id}; nothing was written");
    }
    tokio::fs::rename(&partial, output)
        .await
        .with_context(|| format!("cannot move the blob to {}", output.display()))?;
    Ok(Downloaded { size, cells })
}

/// Runs `nexus get`.
pub(crate) async fn get(client: &NodeClient, args: GetArgs) -> Result<()> {
    let got = download(client, &args.blob_id, &args.output).await?;
    match got.cells {
        Some((0, _)) => out!("rebuilt from the cells this node holds; none fetched"),
        Some((cells, bytes)) => out!(
            "rebuilt from {cells} cells ({}) fetched from custodians",
            ByteSize(bytes)
        ),
        None => {}
    }
    out!(
        "wrote {} ({}) to {}; content verified against its blob id",
        args.blob_id,
        ByteSize(got.size),
        args.output.display()
    );
    Ok(())
}
