//! `nexus put FILE`: streams a file to a node, which stores it and anchors it in a block.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use crate::units::ByteSize;
use nexus_api::client::{Failure, NodeClient};
use nexus_api::types::{LedgerView, Receipt, Status, UploadView};
use reqwest::StatusCode;

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
    // Looked at before it is opened: opening a FIFO without a writer would wait forever.
    let meta = tokio::fs::metadata(file)
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
        let held = status.used_bytes + status.staged_bytes + status.receiving_bytes;
        let available = capacity.saturating_sub(held);
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
    // A resumable upload: the node checks everything it can (balance, an orchestrator with
    // room...) when the session opens, before any byte is sent.
    let mut open = client.url("/v1/uploads")?;
    open.query_pairs_mut()
        .append_pair("size", &size.to_string())
        .append_pair("policy", policy);
    if let Some(e) = epochs {
        open.query_pairs_mut().append_pair("epochs", &e.to_string());
    }
    let opened = client.attempt(|http| http.post(open.clone())).await;
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
    let receipt = match opened {
        Ok(response) => {
            let session: UploadView = response
                .json()
                .await
                .map_err(|e| anyhow!("malformed answer from the node: {e}"))?;
            send_resuming(client, &session, file, size, &bar).await
        }
        // This client holds as many sessions as the node allows: one plain request.
        Err(Failure::Answer { status, error, .. }) if status == StatusCode::TOO_MANY_REQUESTS => {
            eprintln!("{error}; sending it in one request instead (not resumable)");
            send_whole(client, file, size, policy, epochs, &bar).await
        }
        Err(failure) => Err(failure.into_error()),
    };
    bar.finish_and_clear();
    receipt
}

/// One `PUT /v1/blobs` carrying the whole file (after the same checks a session gets).
async fn send_whole(
    client: &NodeClient,
    file: &std::path::Path,
    size: u64,
    policy: &str,
    epochs: Option<u64>,
    bar: &ProgressBar,
) -> Result<Receipt> {
    // An answer sent while the body is still being written reaches the client as a
    // broken connection: ask first what the node would refuse.
    let mut check = client.url("/v1/blobs/preflight")?;
    let mut url = client.url("/v1/blobs")?;
    for u in [&mut check, &mut url] {
        u.query_pairs_mut().append_pair("policy", policy);
        if let Some(e) = epochs {
            u.query_pairs_mut().append_pair("epochs", &e.to_string());
        }
    }
    check
        .query_pairs_mut()
        .append_pair("size", &size.to_string());
    client.send(|http| http.get(check.clone())).await?;
    let f = tokio::fs::File::open(file)
        .await
        .with_context(|| format!("file not readable: {}", file.display()))?;
    client
        .attempt_once(
            client
                .http()
                .put(url)
                .header(reqwest::header::CONTENT_LENGTH, size)
                .body(counted_body(f, size, bar)),
        )
        .await
        .map_err(Failure::into_error)?
        .json()
        .await
        .map_err(|e| anyhow!("malformed receipt from the node: {e}"))
}

/// The next `len` bytes of `f` as a request body, counted on `bar`.
fn counted_body(f: tokio::fs::File, len: u64, bar: &ProgressBar) -> reqwest::Body {
    let counted = bar.clone();
    let stream = ReaderStream::with_capacity(f.take(len), 256 * 1024).map(move |piece| {
        if let Ok(bytes) = &piece {
            counted.inc(bytes.len() as u64);
        }
        piece
    });
    reqwest::Body::wrap_stream(stream)
}

/// Consecutive interruptions without progress after which an upload gives up.
const MAX_RESUMES: u32 = 5;

/// Sends the file from the session's offset to its end, resuming where the node got to
/// after a broken connection or a cut-off request, until the node answers with the
/// receipt.
async fn send_resuming(
    client: &NodeClient,
    session: &UploadView,
    file: &std::path::Path,
    size: u64,
    bar: &ProgressBar,
) -> Result<Receipt> {
    let path = format!("/v1/uploads/{}", session.upload);
    let url = client.url(&path)?;
    let mut offset = session.offset;
    let mut failures = 0;
    loop {
        bar.set_position(offset);
        unchanged(file, size).await?;
        let mut f = tokio::fs::File::open(file)
            .await
            .with_context(|| format!("file not readable: {}", file.display()))?;
        f.seek(std::io::SeekFrom::Start(offset))
            .await
            .with_context(|| format!("file not readable: {}", file.display()))?;
        let (failure, answered) = match send_from(client, &url, f, offset, size, bar).await {
            Ok(response) if response.status() == StatusCode::CREATED => {
                return response
                    .json()
                    .await
                    .map_err(|e| anyhow!("malformed receipt from the node: {e}"));
            }
            Ok(response) => {
                let view: UploadView = response
                    .json()
                    .await
                    .map_err(|e| anyhow!("malformed answer from the node: {e}"))?;
                if view.offset <= offset {
                    bail!(
                        "{} ended before its {size} bytes: did it change while being sent?",
                        file.display()
                    );
                }
                offset = view.offset;
                continue;
            }
            Err(Failure::Answer { status, error, .. })
                if status == StatusCode::REQUEST_TIMEOUT || status == StatusCode::CONFLICT =>
            {
                (error, true)
            }
            // Turned away before a byte was read (too many connections): ask again where
            // the upload stands after a pause, as after a broken connection.
            Err(busy) if busy.is_busy() => (busy.into_error(), false),
            Err(Failure::Transport(error)) => (error, false),
            Err(failure) => return Err(failure.into_error()),
        };
        // Where did the node get to? A session gone after an answer means the answer was
        // about the finished upload (e.g. the bytes are registered with another policy);
        // after a broken connection, that every byte arrived and the answer was lost, or
        // that the lease ended.
        unchanged(file, size).await?;
        let view: UploadView = match client.get_json(&path).await {
            Ok(view) => view,
            Err(_) if answered => return Err(failure),
            Err(e) => bail!(
                "the upload was interrupted ({failure}) and cannot be resumed ({e}); put the \
                 file again (a node keeps one copy of the same bytes and registers it once)"
            ),
        };
        if view.offset > offset {
            failures = 0;
        }
        failures += 1;
        if failures > MAX_RESUMES {
            bail!(
                "the upload keeps failing at byte {}: {failure}",
                view.offset
            );
        }
        eprintln!(
            "upload interrupted at {} of {size} bytes ({failure}); resuming",
            view.offset
        );
        offset = view.offset;
        tokio::time::sleep(std::time::Duration::from_millis(250 << failures.min(4))).await;
    }
}

/// Fails, in words, if `file` is no longer `size` bytes long: it changed while being sent.
async fn unchanged(file: &std::path::Path, size: u64) -> Result<()> {
    let now = tokio::fs::metadata(file)
        .await
        .with_context(|| format!("file not readable: {}", file.display()))?
        .len();
    if now != size {
        bail!(
            "{} changed while being sent: it is {now} bytes now, {size} when the put began; \
             put it again once it no longer changes",
            file.display()
        );
    }
    Ok(())
}

/// One `PATCH` sending the rest of the file, `f` positioned at `offset`.
async fn send_from(
    client: &NodeClient,
    url: &reqwest::Url,
    f: tokio::fs::File,
    offset: u64,
    size: u64,
    bar: &ProgressBar,
) -> Result<reqwest::Response, Failure> {
    client
        .attempt_once(
            client
                .http()
                .patch(url.clone())
                .header("upload-offset", offset)
                .header(reqwest::header::CONTENT_LENGTH, size - offset)
                .body(counted_body(f, size - offset, bar)),
        )
        .await
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
