//! `nexus status`: what a node holds and whom it talks to.

use anyhow::Result;

use crate::api::Status;
use crate::client::NodeClient;
use crate::units::ByteSize;

/// Prints the node's status.
pub(crate) async fn status(client: &NodeClient, json: bool) -> Result<()> {
    let s: Status = client.get_json("/v1/status").await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    println!("peer id:    {}", s.peer_id);
    println!("account:    {} (balance {})", s.account, s.balance);
    println!("listening:  {}", s.listen_addrs.join(", "));
    match s.validator {
        Some(key) => println!("role:       validator {key} + storage"),
        None => println!("role:       storage"),
    }
    println!("peers:      {}", s.peers.len());
    for p in &s.peers {
        println!("            {p}");
    }
    if !s.banned_peers.is_empty() {
        println!(
            "dropped:    {} (sent invalid data)",
            s.banned_peers.join(", ")
        );
    }
    println!(
        "finalized:  {} (hash {})",
        opt(s.height.map(|h| h.to_string())),
        opt(s.tip_hash.map(|h| h.to_string()))
    );
    println!(
        "latest:     {}",
        opt(s.latest_height.map(|h| h.to_string()))
    );
    println!(
        "chain:      {} ({} validators), genesis {}",
        opt(s.chain_id.clone()),
        opt(s.validators.map(|v| v.to_string())),
        opt(s.genesis.map(|h| h.to_string()))
    );
    println!(
        "ledger:     epoch {}, state root {}",
        opt(s.epoch.map(|e| e.to_string())),
        opt(s.state_root.map(|r| r.to_string()))
    );
    println!(
        "blobs:      {} complete, {} replicating",
        s.blobs_complete, s.blobs_partial
    );
    let capacity = s
        .capacity
        .map_or("unlimited".into(), |c| ByteSize(c).to_string());
    println!("stored:     {} of {capacity}", ByteSize(s.used_bytes));
    println!("disk used:  {}", ByteSize(s.disk_bytes));
    println!("custody:    {} cells of block payloads", s.custody_cells);
    if s.corrupt_chunks_found > 0 {
        println!(
            "repairs:    {} corrupted chunks found on disk and fetched again from peers",
            s.corrupt_chunks_found
        );
    }
    Ok(())
}
