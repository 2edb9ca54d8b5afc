//! `nexus bench erasure-devnet`: on a devnet of real node processes (a validator that is
//! also the orchestrator, 6 providers, an uploader), times `put --policy erasure` and
//! `put --policy replicated` of blobs of the same size in the same run, until the data is
//! where the policy wants it, and measures the bytes each policy keeps across the network.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::replicated::write_random_file;
use crate::cli::{upload, Policy};
use crate::devnet::{join_orchestrator, Devnet, DevnetArgs, ERASURE_PROVIDERS as PROVIDERS};
use crate::units::ByteSize;
use nexus_api::client::NodeClient;
use nexus_api::types::{BlobInfo, Status};

/// Options of `nexus bench erasure-devnet`.
#[derive(Debug, clap::Args)]
pub(crate) struct ErasureDevnetArgs {
    /// Size of each blob.
    #[arg(long, default_value = "1GiB")]
    size: ByteSize,
    /// Working directory (default: a temporary directory, removed afterwards).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// First port of the bench devnet.
    #[arg(long, default_value_t = 7400)]
    base_port: u16,
}

async fn used_bytes(devnet: &Devnet) -> Result<u64> {
    let mut total = 0;
    for n in &devnet.nodes {
        let s: Status = NodeClient::new(&n.api)?.get_json("/v1/status").await?;
        total += s.used_bytes;
    }
    Ok(total)
}

/// Waits until every node in `apis` holds each of `ids` whole.
async fn wait_held(apis: &[(String, Vec<String>)], limit: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        let mut done = true;
        for (api, ids) in apis {
            let client = NodeClient::new(api)?;
            for id in ids {
                let info: Result<BlobInfo> = client.get_json(&format!("/v1/blobs/{id}/info")).await;
                done &= info.is_ok_and(|i| i.complete);
            }
        }
        if done {
            return Ok(());
        }
        if start.elapsed() > limit {
            bail!("data not in place after {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs the benchmark and prints a Markdown table.
pub(crate) async fn run(args: ErasureDevnetArgs) -> Result<()> {
    let tmp = tempfile::Builder::new().prefix("nexus-bench-").tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    let size = args.size.0;
    let (erasure_file, replicated_file) = (dir.join("erasure.bin"), dir.join("replicated.bin"));
    write_random_file(&erasure_file, size, 21)?;
    write_random_file(&replicated_file, size, 22)?;

    let mut devnet = Devnet::launch(DevnetArgs {
        validators: 1,
        nodes: PROVIDERS + 1,
        data_dir: Some(dir.join("devnet")),
        base_port: args.base_port,
        capacity: None,
        block_interval_ms: 1000,
        compute: false,
    })
    .await?;
    let result = measure(&mut devnet, &erasure_file, &replicated_file, size).await;
    devnet.stop().await?;
    out!("{}", result?);
    Ok(())
}

async fn measure(
    devnet: &mut Devnet,
    erasure_file: &std::path::Path,
    replicated_file: &std::path::Path,
    size: u64,
) -> Result<String> {
    let clients: Vec<NodeClient> = devnet
        .nodes
        .iter()
        .map(|n| NodeClient::new(&n.api))
        .collect::<Result<_>>()?;
    devnet.offer_erasure(4 * size.max(1 << 30)).await?;
    let uploader = clients.last().context("no uploader")?;
    let base = used_bytes(devnet).await?;

    let start = Instant::now();
    let receipt = upload(uploader, erasure_file, Policy::Erasure, None, false).await?;
    let erasure_put = start.elapsed();
    let proof: nexus_storage::InclusionProof = uploader
        .get_json(&format!("/v1/blobs/{}/proof", receipt.blob_id))
        .await?;
    let Some(nexus_storage::ledger::PolicySpec::Erasure { shards, .. }) =
        proof.registration().map(|r| r.policy)
    else {
        bail!("the blob was not stored with the erasure policy");
    };
    // Every shard on some provider: ask each provider for all shards, wait for placement.
    let providers: Vec<String> = devnet.nodes[1..=usize::from(PROVIDERS)]
        .iter()
        .map(|n| n.api.clone())
        .collect();
    let start_spread = Instant::now();
    loop {
        let mut held = 0;
        for shard in &shards {
            for api in &providers {
                let info: Result<BlobInfo> = NodeClient::new(api)?
                    .get_json(&format!("/v1/blobs/{shard}/info"))
                    .await;
                if info.is_ok_and(|i| i.complete) {
                    held += 1;
                    break;
                }
            }
        }
        if held == shards.len() {
            break;
        }
        if start_spread.elapsed() > Duration::from_secs(1800) {
            bail!("shards not spread after 30 min");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let erasure_spread = erasure_put + start_spread.elapsed();
    let after_erasure = used_bytes(devnet).await?;
    let uploader_status: Status = uploader.get_json("/v1/status").await?;
    // The uploader keeps the blob and its shards as a cache; count the providers' copies.
    let provider_bytes = after_erasure - base - uploader_status.used_bytes;

    let start = Instant::now();
    let replicated = upload(uploader, replicated_file, Policy::Replicated, None, false).await?;
    let replicated_put = start.elapsed();
    let everyone: Vec<(String, Vec<String>)> = devnet
        .nodes
        .iter()
        .map(|n| (n.api.clone(), vec![replicated.blob_id.to_string()]))
        .collect();
    wait_held(&everyone, Duration::from_secs(3600)).await?;
    let replicated_spread = start.elapsed();
    let after_replicated = used_bytes(devnet).await?;
    let replicated_bytes = after_replicated - after_erasure;

    let (repair_time, repair_bytes) = measure_repair(devnet, &shards).await?;

    let mb = |d: Duration| size as f64 / d.as_secs_f64() / 1e6;
    Ok(format!(
        "| {sz} blob, devnet of 8 processes (validator + orchestrator, {PROVIDERS} providers, uploader) | value |\n|---|---|\n\
         | put --policy replicated (stored, anchored) | {rp:.2?} ({rpm:.0} MB/s) |\n\
         | put --policy erasure (stored, encoded, anchored) | {ep:.2?} ({epm:.0} MB/s) |\n\
         | **erasure / replicated put throughput** | **{ratio:.2}** |\n\
         | until every node holds the replicated blob | {rs:.2?} |\n\
         | until every shard is on its provider | {es:.2?} |\n\
         | bytes kept by the network, replicated (8 nodes) | {rb} ({rx:.2}× the blob) |\n\
         | bytes kept by providers, erasure 4+2 | {pb} ({px:.2}× the blob) |\n\
         | repair traffic for one lost shard, erasure (measured: chunk bytes fetched by all nodes) | {rep} ({repx:.2}× the blob, {repshard:.2}× the shard) |\n\
         | from the provider losing its shard to the shard whole on its new holder | {rt:.2?} |\n\
         | repair traffic per lost replica, replicated (one whole copy) | {sz} (1.00× the blob) |\n",
        sz = ByteSize(size),
        rp = replicated_put,
        rpm = mb(replicated_put),
        ep = erasure_put,
        epm = mb(erasure_put),
        ratio = replicated_put.as_secs_f64() / erasure_put.as_secs_f64(),
        rs = replicated_spread,
        es = erasure_spread,
        rb = ByteSize(replicated_bytes),
        rx = replicated_bytes as f64 / size as f64,
        pb = ByteSize(provider_bytes),
        px = provider_bytes as f64 / size as f64,
        rep = ByteSize(repair_bytes),
        repx = repair_bytes as f64 / size as f64,
        repshard = repair_bytes as f64 / (provider_bytes as f64 / 6.0),
        rt = repair_time,
    ))
}

/// Chunk bytes fetched by every running node but `skip` (whose counter restarts with it).
async fn total_fetched(devnet: &Devnet, skip: usize) -> Result<u64> {
    let mut total = 0;
    for (_, n) in devnet.nodes.iter().enumerate().filter(|(i, _)| *i != skip) {
        if let Ok(s) = NodeClient::new(&n.api)?
            .get_json::<Status>("/v1/status")
            .await
        {
            total += s.bytes_fetched;
        }
    }
    Ok(total)
}

async fn holds(api: &str, shard: nexus_storage::BlobId) -> bool {
    let Ok(client) = NodeClient::new(api) else {
        return false;
    };
    let info: Result<BlobInfo> = client.get_json(&format!("/v1/blobs/{shard}/info")).await;
    info.is_ok_and(|i| i.complete)
}

/// Adds a spare provider, makes the holder of shard 0 lose it (restarted with `--fault
/// drop-shards`), then waits until the ledger evicted it and the orchestrator's rebuilt
/// shard reached its new holder (the spare).
/// Returns the time that took and the chunk bytes all nodes fetched meanwhile.
async fn measure_repair(
    devnet: &mut Devnet,
    shards: &[nexus_storage::BlobId],
) -> Result<(Duration, u64)> {
    let providers = 1..=usize::from(PROVIDERS);
    let mut culprit = None;
    for i in providers.clone() {
        if holds(&devnet.nodes[i].api, shards[0]).await {
            culprit = Some(i);
        }
    }
    let culprit = culprit.context("no provider holds shard 0")?;
    // The uploader still caches every shard: stop it, so the lost shard must be rebuilt.
    let uploader = devnet.nodes.len() - 1;
    devnet.nodes[uploader].child.kill().await?;
    // A seventh provider joins now, so that the lost shard has somewhere to go.
    let spare_index = devnet.nodes.len() as u16;
    let spare = devnet.spawn(spare_index).await?;
    crate::devnet::wait_ready(&spare.api, Duration::from_secs(60)).await?;
    let spare_client = NodeClient::new(&spare.api)?;
    let orchestrator: Status = NodeClient::new(&devnet.nodes[0].api)?
        .get_json("/v1/status")
        .await?;
    join_orchestrator(&spare_client, orchestrator.account, 64 << 30).await?;
    // Let the spare finish catching up on the replicated blob, so that only repair
    // traffic is counted below.
    loop {
        let s: Status = spare_client.get_json("/v1/status").await?;
        if s.blobs_partial == 0 && s.blobs_complete >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    devnet.nodes.push(spare);
    eprintln!("provider {culprit} loses shard 0; waiting for its eviction and the repair");
    let before = total_fetched(devnet, culprit).await?;
    let start = Instant::now();
    devnet.nodes[culprit].child.kill().await?;
    // The culprit comes back without its shard and fetches nothing from now on.
    devnet.nodes[culprit] = devnet
        .spawn_with(culprit as u16, &["--fault", "drop-shards"])
        .await?;
    loop {
        let mut repaired = false;
        let culprit_api = &devnet.nodes[culprit].api;
        let uploader_api = &devnet.nodes[uploader].api;
        for node in devnet
            .nodes
            .iter()
            .skip(1)
            .filter(|n| &n.api != culprit_api && &n.api != uploader_api)
        {
            repaired |= holds(&node.api, shards[0]).await;
        }
        if repaired {
            break;
        }
        if start.elapsed() > Duration::from_secs(900) {
            bail!("shard 0 not repaired after 15 min");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let elapsed = start.elapsed();
    Ok((
        elapsed,
        total_fetched(devnet, culprit).await?.saturating_sub(before),
    ))
}
