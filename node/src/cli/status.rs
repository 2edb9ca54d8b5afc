//! `nexus status`: what a node holds and whom it talks to.

use anyhow::Result;

use crate::units::ByteSize;
use nexus_api::client::NodeClient;
use nexus_api::types::Status;

/// Prints the node's status.
pub(crate) async fn status(client: &NodeClient, json: bool) -> Result<()> {
    let s: Status = client.get_json("/v1/status").await?;
    if json {
        out!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    out!("peer id:    {}", s.peer_id);
    out!("account:    {} (balance {})", s.account, s.balance);
    out!("listening:  {}", s.listen_addrs.join(", "));
    match s.validator {
        Some(key) => out!("role:       validator {key} + storage"),
        None => out!("role:       storage"),
    }
    out!("peers:      {}", s.peers.len());
    for p in &s.peers {
        out!("            {p}");
    }
    if !s.banned_peers.is_empty() {
        out!(
            "dropped:    {} (sent invalid data)",
            s.banned_peers.join(", ")
        );
    }
    out!(
        "finalized:  {} (hash {})",
        opt(s.height.map(|h| h.to_string())),
        opt(s.tip_hash.map(|h| h.to_string()))
    );
    out!(
        "latest:     {}",
        opt(s.latest_height.map(|h| h.to_string()))
    );
    out!(
        "chain:      {} ({} validators), genesis {}",
        opt(s.chain_id.clone()),
        opt(s.validators.map(|v| v.to_string())),
        opt(s.genesis.map(|h| h.to_string()))
    );
    out!(
        "ledger:     epoch {}, state root {}",
        opt(s.epoch.map(|e| e.to_string())),
        opt(s.state_root.map(|r| r.to_string()))
    );
    out!(
        "blobs:      {} complete, {} replicating",
        s.blobs_complete,
        s.blobs_partial
    );
    let capacity = s
        .capacity
        .map_or("unlimited".into(), |c| ByteSize(c).to_string());
    out!("stored:     {} of {capacity}", ByteSize(s.used_bytes));
    if s.staged_bytes > 0 {
        out!(
            "staged:     {} of uploads waiting for their registration",
            ByteSize(s.staged_bytes)
        );
    }
    if s.receiving_bytes > 0 {
        out!(
            "receiving:  {} of uploads in progress",
            ByteSize(s.receiving_bytes)
        );
    }
    out!("disk used:  {}", ByteSize(s.disk_bytes));
    out!("custody:    {} cells of block payloads", s.custody_cells);
    for problem in &s.problems {
        out!("PROBLEM:    {problem}");
    }
    if s.corrupt_chunks_found > 0 {
        out!(
            "repairs:    {} corrupted chunks found on disk and fetched again from peers",
            s.corrupt_chunks_found
        );
    }
    Ok(())
}
