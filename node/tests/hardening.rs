//! Abuse and load with real `nexus` processes on loopback: many concurrent puts through
//! one node.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use support::*;

const PUTS: usize = 40;

#[test]
fn concurrent_puts_through_one_node_all_land_in_a_few_blocks() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dirs: Vec<_> = ["v", "n"].iter().map(|n| tmp.path().join(n)).collect();
    let validator = start_proposer(tmp.path(), &dirs, &[]);
    let node = TestNode::start(&dirs[1], false, &[validator.addr()], &[]);
    wait_until(
        "the node to reach the chain",
        Duration::from_secs(30),
        || node.status()["height"].as_u64().is_some(),
    );
    let files: Vec<String> = (0..PUTS)
        .map(|i| write_file(tmp.path(), &format!("f{i}"), &bytes(100_000, i as u64)))
        .collect();
    let started = Instant::now();
    // Every put signs a registration from the node's one account at the same time.
    let receipts: Vec<serde_json::Value> = std::thread::scope(|s| {
        let running: Vec<_> = files
            .iter()
            .map(|f| {
                let api = node.api.clone();
                s.spawn(move || {
                    let out = cli(&api, &["put", f, "--json"]);
                    let text = String::from_utf8_lossy(&out.stdout).to_string();
                    let err = String::from_utf8_lossy(&out.stderr).to_string();
                    assert!(out.status.success(), "put {f} failed: {err}");
                    serde_json::from_str(&text).expect("receipt json")
                })
            })
            .collect();
        running
            .into_iter()
            .map(|t| t.join().expect("put thread"))
            .collect()
    });
    let heights: BTreeSet<u64> = receipts
        .iter()
        .map(|r| r["height"].as_u64().expect("height"))
        .collect();
    eprintln!(
        "{PUTS} concurrent puts final in {:?}, in {} blocks: {heights:?}",
        started.elapsed(),
        heights.len()
    );
    // Not one block per put: the registrations share blocks.
    assert!(
        heights.len() <= PUTS / 4,
        "{PUTS} registrations took {} blocks",
        heights.len()
    );
    let ids: BTreeSet<&str> = receipts
        .iter()
        .map(|r| r["blob_id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids.len(), PUTS);
}
