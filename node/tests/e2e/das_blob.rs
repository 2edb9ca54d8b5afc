//! The `das` policy end to end: a blob of several MiB rides in a block's payload, storage
//! nodes keep only their custody cells, and another node gets it back from cells after
//! every custodian of at least a quarter of the cells (and the proposer, which holds the
//! whole encoding in memory) has been stopped.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use crate::support::*;
use nexus_net::PeerId;
use nexus_sampler::{Custody, CustodyParams};

const NODES: usize = 8;
const BLOB: usize = 3 << 20;

/// Column groups whose every custodian is in `stopped`, under `custody`.
fn lost_groups(custody: &Custody<Vec<u8>>, stopped: &BTreeSet<Vec<u8>>) -> u16 {
    let params = *custody.params();
    (0..params.groups)
        .filter(|&g| {
            let column = params.columns(g).next().expect("a group has columns");
            custody
                .custodians(nexus_das::Coord { row: 0, column })
                .all(|n| stopped.contains(n))
        })
        .count() as u16
}

/// A validator and `count - 1` storage nodes in `root` with blocks `interval_ms` apart,
/// once every node sees every other (custody is computed over the nodes each one knows).
fn meshed(root: &std::path::Path, count: usize, interval_ms: &str) -> Vec<TestNode> {
    let dirs: Vec<PathBuf> = (0..count).map(|i| root.join(format!("n{i}"))).collect();
    let interval = ["--block-interval-ms", interval_ms];
    let validator = start_proposer(root, &dirs, &interval);
    let boot = vec![validator.addr()];
    let mut nodes = vec![validator];
    nodes.extend(
        dirs[1..]
            .iter()
            .map(|d| TestNode::start(d, false, &boot, &interval)),
    );
    wait_until(
        "every node to see the others",
        Duration::from_secs(60),
        || {
            nodes.iter().all(|n| {
                n.status()["peers"]
                    .as_array()
                    .is_some_and(|p| p.len() >= count - 1)
            })
        },
    );
    nodes
}

#[test]
fn a_das_blob_is_rebuilt_from_cells_with_a_quarter_of_custodians_stopped() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // Custody is computed over the storage nodes each one knows: let them all meet.
    let mut nodes = meshed(tmp.path(), NODES, "300");

    // Put through node 1; it keeps the upload, everyone else only cells.
    let data = bytes(BLOB, 42);
    let file = write_file(tmp.path(), "big", &data);
    let out = cli_ok(&nodes[1].api, &["put", &file, "--policy", "das", "--json"]);
    let receipt: serde_json::Value = serde_json::from_str(&out).expect("receipt");
    let id = receipt["blob_id"].as_str().expect("id").to_string();
    let height = receipt["height"].as_u64().expect("height");
    assert_eq!(receipt["policy"], "das");

    // A das blob must fit in one block: a larger one is refused with the reason.
    let too_big = write_file(tmp.path(), "too-big", &bytes((8 << 20) + 1, 1));
    let refused = cli(&nodes[1].api, &["put", &too_big, "--policy", "das"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(stderr.contains("carries at most 8.0 MiB"), "{stderr}");
    // The node itself refuses it from the announced length, before reading any of it.
    let host = nodes[1].api.trim_start_matches("http://");
    let request = format!(
        "PUT /v1/blobs?policy=das HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        (8 << 20) + 1
    );
    let (code, body) = http_raw(&nodes[1].api, request.as_bytes()).expect("answer");
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("at most 8388608 bytes"), "{body}");

    let grid_path = format!("/v1/blocks/{height}/cells?samples=0");
    wait_until("node 2 to have the block", Duration::from_secs(30), || {
        get_json(&nodes[2].api, &grid_path).is_some()
    });
    let grid = get_json(&nodes[2].api, &grid_path).expect("grid");
    let rows = grid["rows"].as_array().expect("rows").len() as u64;
    let cells = rows * 128;
    assert!(
        rows >= 50,
        "a {BLOB}-byte payload spans {rows} extended rows"
    );
    wait_until("custody to fill", Duration::from_secs(120), || {
        let held: u64 = nodes
            .iter()
            .map(|n| n.status()["custody_cells"].as_u64().unwrap_or(0))
            .sum();
        held >= 2 * cells
    });
    // No node but the uploader holds the blob whole; none holds all its cells.
    for (i, n) in nodes.iter().enumerate().skip(2) {
        let info = n.blob_info(&id).expect("info");
        assert_eq!(
            (&info["policy"], &info["complete"], &info["missing_chunks"]),
            (&"das".into(), &false.into(), &0.into()),
            "node {i}: {info}"
        );
        let held = n.status()["custody_cells"].as_u64().expect("count");
        assert!(held < cells, "node {i} keeps {held} of {cells} cells");
    }

    // Das blobs put at the same time through different nodes all land: one payload is
    // encoded at a time, the others wait for the next.
    let small: Vec<(String, Vec<u8>)> = (0..3u64)
        .map(|i| {
            let data = bytes(100_000, 100 + i);
            (write_file(tmp.path(), &format!("small{i}"), &data), data)
        })
        .collect();
    let receipts: Vec<serde_json::Value> = std::thread::scope(|scope| {
        let puts: Vec<_> = small
            .iter()
            .enumerate()
            .map(|(i, (file, _))| {
                let api = nodes[3 + i].api.clone();
                scope.spawn(move || {
                    let out = cli_ok(&api, &["put", file, "--policy", "das", "--json"]);
                    serde_json::from_str::<serde_json::Value>(&out).expect("receipt")
                })
            })
            .collect();
        puts.into_iter()
            .map(|p| p.join().expect("put thread"))
            .collect()
    });
    for (receipt, (_, data)) in receipts.iter().zip(&small) {
        let id = receipt["blob_id"].as_str().expect("id");
        assert_eq!(get_bytes(&nodes[6].api, id, tmp.path()), *data);
    }

    // Stop the proposer and a set of other nodes (not the uploader or the getter) so that
    // every custodian of at least a quarter of the column groups is gone, and no more than
    // half (beyond which no row could be decoded).
    let ids: Vec<Vec<u8>> = nodes
        .iter()
        .map(|n| {
            let id: PeerId = n.status()["peer_id"]
                .as_str()
                .expect("peer id")
                .parse()
                .expect("valid peer id");
            id.to_bytes()
        })
        .collect();
    let chain = get_json(&nodes[2].api, "/v1/chain").expect("chain");
    let group_count = |key: &str| chain["spec"][key].as_u64().expect(key) as u16;
    let params = CustodyParams {
        groups: group_count("custody_groups"),
        custodians_per_group: group_count("custodians_per_group"),
        ..CustodyParams::DEFAULT
    };
    let custody = Custody::new(params, params.epoch_of(height), ids.iter().cloned());
    let candidates: Vec<usize> = (3..NODES).collect();
    let (stop, lost) = (0u32..1 << candidates.len())
        .map(|mask| {
            let mut stop: Vec<usize> = vec![0];
            stop.extend(
                candidates
                    .iter()
                    .enumerate()
                    .filter(|(b, _)| mask & (1 << b) != 0)
                    .map(|(_, &n)| n),
            );
            let stopped: BTreeSet<Vec<u8>> = stop.iter().map(|&n| ids[n].clone()).collect();
            let lost = lost_groups(&custody, &stopped);
            (stop, lost)
        })
        .filter(|(_, lost)| (params.groups / 4..=params.groups / 2).contains(lost))
        .min_by_key(|(stop, lost)| (*lost, stop.len()))
        .expect("some set of nodes custodies a quarter to a half of the groups alone");
    for &n in &stop {
        nodes[n].kill9();
    }

    // Node 2 never held the blob: it gathers cells from the survivors and decodes.
    let copy = tmp.path().join("copy");
    let out = cli_ok(
        &nodes[2].api,
        &["get", &id, "-o", copy.to_str().expect("utf8")],
    );
    assert_eq!(std::fs::read(&copy).expect("copy"), data, "{out}");
    assert!(out.contains("rebuilt from"), "{out}");
    eprintln!(
        "stopped {} nodes, {lost} of {} column groups left without a custodian; {out}",
        stop.len(),
        params.groups
    );
}

#[test]
fn custody_cells_are_fetched_when_the_registration_arrives_so_the_uploader_may_leave() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // Slow blocks: the registration travels well before its block is final.
    let mut nodes = meshed(tmp.path(), 5, "1500");
    let data = bytes(1 << 20, 77);
    let file = write_file(tmp.path(), "leaving", &data);
    let out = cli_ok(&nodes[1].api, &["put", &file, "--policy", "das", "--json"]);
    let receipt: serde_json::Value = serde_json::from_str(&out).expect("receipt");
    let id = receipt["blob_id"].as_str().expect("id").to_string();
    // Every storage node started fetching its cells when the registration arrived; on a
    // loaded machine a fetch may still be finishing as the block becomes final. Without the
    // prefetch no node would ever stage cells and this wait fails.
    wait_until(
        "every storage node to stage its custody cells",
        Duration::from_secs(30),
        || {
            nodes
                .iter()
                .skip(2)
                .all(|n| n.log().contains("custody cells staged"))
        },
    );
    // The uploader, the only node that ever held the blob whole, leaves.
    nodes[1].kill9();
    let copy = tmp.path().join("copy");
    let mut last = String::new();
    wait_until(
        "another node to rebuild the blob",
        Duration::from_secs(60),
        || {
            let out = cli(
                &nodes[4].api,
                &["get", &id, "-o", copy.to_str().expect("utf8")],
            );
            last = String::from_utf8_lossy(&out.stderr).to_string();
            out.status.success()
        },
    );
    assert_eq!(std::fs::read(&copy).expect("copy"), data, "{last}");
}
