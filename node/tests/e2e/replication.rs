//! Season 1 end to end: real `nexus` node processes on loopback replicate every blob and
//! every block, recover from crashes, survive peers that serve corrupted chunks, and free
//! what expired blobs held.

use std::time::Duration;

use crate::support::*;

const CHUNK: usize = 256 * 1024;

#[test]
fn put_on_one_node_get_the_same_bytes_from_another_and_verify_inclusion() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dirs: Vec<_> = ["n1", "n2", "n3"]
        .iter()
        .map(|n| tmp.path().join(n))
        .collect();
    let n1 = start_proposer(tmp.path(), &dirs, &[]);
    let boot = vec![n1.addr()];
    let n2 = TestNode::start(&dirs[1], false, &boot, &[]);
    // Node 3 finds the network through a DNS name (resolved by libp2p's dns transport).
    let by_name = vec![n1.addr().replace("/ip4/127.0.0.1/", "/dns4/localhost/")];
    let n3 = TestNode::start(&dirs[2], false, &by_name, &[]);

    // Put through a node that is not the proposer: the registration travels over gossip.
    let data = bytes(3 * CHUNK + 12_345, 1);
    let file = write_file(tmp.path(), "input", &data);
    let id = put(&n2.api, &file);

    wait_until(
        "node 3 to replicate the blob",
        Duration::from_secs(60),
        || n3.has_complete(&id),
    );
    assert_eq!(get_bytes(&n3.api, &id, tmp.path()), data);
    assert!(n1.has_complete(&id), "the proposer keeps every blob too");

    // The inclusion and finality proofs check online, offline from a saved file against
    // the trusted genesis hash, and fail when tampered.
    let proof = tmp.path().join("proof.json");
    let proof_path = proof.to_str().expect("utf8");
    let out = cli_ok(&n3.api, &["verify", &id, "--save", proof_path]);
    assert!(out.contains("verified") && out.contains("final"), "{out}");
    let genesis = n3.status()["genesis"]
        .as_str()
        .expect("genesis")
        .to_string();
    let verify_with = |genesis: &str| {
        let args = [
            "verify",
            &id,
            "--proof",
            proof_path,
            "--genesis-hash",
            genesis,
        ];
        cli("http://127.0.0.1:9", &args)
    };
    let verify_offline = || verify_with(&genesis);
    let other_chain = verify_with(&"ab".repeat(32));
    assert!(!other_chain.status.success(), "a proof of another chain");
    assert!(
        verify_offline().status.success(),
        "offline check of a good proof"
    );

    let mut tampered: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&proof).expect("proof")).expect("json");
    let size = &mut tampered["inclusion"]["transaction"]["tx"]["kind"]["StoreBlob"]["size"];
    assert_eq!(*size, serde_json::json!(data.len()), "proof layout changed");
    *size = serde_json::json!(data.len() + 1);
    std::fs::write(&proof, tampered.to_string()).expect("write");
    let out = verify_offline();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("REJECTED"));

    std::fs::write(&proof, b"{ not a proof").expect("write");
    let out = verify_offline();
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a blob proof"));
}

#[test]
fn late_node_catches_up_and_a_node_killed_mid_replication_recovers() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let n1 = start_proposer(tmp.path(), &[tmp.path().join("n1")], &[]);
    let boot = vec![n1.addr()];
    let _n2 = TestNode::start(&tmp.path().join("n2"), false, &boot, &[]);

    let small = bytes(CHUNK + 1, 2);
    let large = bytes(48 * CHUNK, 3);
    let small_id = put(&n1.api, &write_file(tmp.path(), "small", &small));
    let large_id = put(&n1.api, &write_file(tmp.path(), "large", &large));

    // A node that joins after the puts, throttled so that replication takes seconds.
    let mut late = TestNode::start(
        &tmp.path().join("late"),
        false,
        &boot,
        &["--replication-bandwidth", "2MiB"],
    );
    wait_until(
        "the late node to be mid-way through the large blob",
        Duration::from_secs(60),
        || {
            late.blob_info(&large_id).is_some_and(|i| {
                let missing = i["missing_chunks"].as_u64().unwrap_or(0);
                i["complete"] == false && missing > 0 && missing < 48
            })
        },
    );
    late.kill9();

    late.restart_without(&["--replication-bandwidth"]);
    wait_until(
        "the restarted node to finish",
        Duration::from_secs(60),
        || late.has_complete(&small_id) && late.has_complete(&large_id),
    );
    // Blocks keep coming every 100 ms: the late node must reach where n1 was just now.
    let target = n1.status()["height"].as_u64().expect("height");
    wait_until(
        "the restarted node to follow the chain",
        Duration::from_secs(30),
        || {
            late.status()["height"]
                .as_u64()
                .is_some_and(|h| h >= target)
        },
    );
    for (id, data) in [(&small_id, &small), (&large_id, &large)] {
        assert!(
            get_bytes(&late.api, id, tmp.path()) == *data,
            "blob {id} differs"
        );
    }
}

#[test]
fn a_peer_serving_corrupted_chunks_is_dropped_and_the_blob_arrives_intact() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let honest = start_proposer(tmp.path(), &[tmp.path().join("honest")], &[]);
    let liar = TestNode::start(
        &tmp.path().join("liar"),
        false,
        &[honest.addr()],
        &["--fault", "corrupt-chunks"],
    );
    let data = bytes(32 * CHUNK, 4);
    let id = put(&honest.api, &write_file(tmp.path(), "input", &data));
    wait_until("the liar to hold the blob", Duration::from_secs(60), || {
        liar.has_complete(&id)
    });

    // A new node that knows both; throttled so that it asks both peers for chunks.
    let liar_id = liar.status()["peer_id"]
        .as_str()
        .expect("peer id")
        .to_string();
    let fresh = TestNode::start(
        &tmp.path().join("fresh"),
        false,
        &[liar.addr(), honest.addr()],
        &["--replication-bandwidth", "4MiB"],
    );
    wait_until(
        "the fresh node to replicate",
        Duration::from_secs(90),
        || fresh.has_complete(&id),
    );
    let banned = fresh.status()["banned_peers"].clone();
    assert!(
        banned
            .as_array()
            .is_some_and(|b| b.iter().any(|p| p == liar_id.as_str())),
        "the corrupt peer was not dropped: {banned}\n{}",
        fresh.log()
    );
    assert_eq!(get_bytes(&fresh.api, &id, tmp.path()), data);
}

/// Every file below `dir`, recursively.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn chunks_corrupted_on_disk_are_detected_and_repaired_from_a_peer() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let a = start_proposer(tmp.path(), &[tmp.path().join("a")], &[]);
    let mut b = TestNode::start(&tmp.path().join("b"), false, &[a.addr()], &[]);
    let data = bytes(8 * CHUNK, 7);
    let id = put(&a.api, &write_file(tmp.path(), "input", &data));
    wait_until("b to replicate", Duration::from_secs(120), || {
        b.has_complete(&id)
    });

    let needle = &data[5 * CHUNK + 1000..5 * CHUNK + 1032];
    // Chunk bytes live in the store's blob files; search every file of the store.
    let store = b.dir.join("store");
    wait_until(
        "chunk 5 to reach a data file",
        Duration::from_secs(60),
        || {
            files_under(&store)
                .iter()
                .any(|f| std::fs::read(f).is_ok_and(|c| find(&c, needle).is_some()))
        },
    );
    b.kill9();
    let mut flipped = 0;
    for file in files_under(&store) {
        let mut content = std::fs::read(&file).expect("read");
        if let Some(at) = find(&content, needle) {
            content[at + 7] ^= 0xff;
            std::fs::write(&file, &content).expect("write");
            flipped += 1;
        }
    }
    assert!(flipped > 0, "no on-disk copy of chunk 5 found");

    b.restart_without(&[]);
    assert!(
        get_bytes(&b.api, &id, tmp.path()) == data,
        "repaired blob differs"
    );
    let found = b.status()["corrupt_chunks_found"].as_u64().unwrap_or(0);
    assert!(found >= 1, "corruption was not noticed:\n{}", b.log());
    wait_until(
        "b to hold the blob whole again",
        Duration::from_secs(60),
        || b.has_complete(&id),
    );
}

#[test]
fn blobs_whose_epochs_ran_out_are_deleted_everywhere_and_get_says_so() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dirs: Vec<_> = ["a", "b", "c"].iter().map(|n| tmp.path().join(n)).collect();
    // Epochs of 20 blocks of 200 ms: a blob paid for 2 epochs lives 4 to 8 s.
    let slow = ["--block-interval-ms", "200"];
    let a = start_proposer(tmp.path(), &dirs, &slow);
    let b = TestNode::start(&dirs[1], false, &[a.addr()], &slow);
    let c = TestNode::start(&dirs[2], false, &[a.addr()], &slow);
    let nodes = [&a, &b, &c];

    let short = put_with(
        &a.api,
        &write_file(tmp.path(), "short", &bytes(CHUNK + 7, 21)),
        &["--epochs", "2"],
    );
    let das = put_with(
        &a.api,
        &write_file(tmp.path(), "das", &bytes(100_000, 22)),
        &["--policy", "das", "--epochs", "2"],
    );
    let lasting_data = bytes(2 * CHUNK, 23);
    let lasting = put(&b.api, &write_file(tmp.path(), "lasting", &lasting_data));
    let das_height = a.blob_info(&das).expect("das info")["registered_at"]
        .as_u64()
        .expect("height");
    // Cells of the das blob's block that `node` keeps.
    let held_cells = |node: &TestNode| {
        get_json(
            &node.api,
            &format!("/v1/blocks/{das_height}/cells?samples=0"),
        )
        .map_or(0, |g| {
            g["rows"]
                .as_array()
                .expect("rows")
                .iter()
                .map(|r| r.as_str().expect("row").matches('H').count())
                .sum::<usize>()
        })
    };
    let expired = |node: &TestNode, id: &str| {
        http_get(&node.api, &format!("/v1/blobs/{id}/info")).is_some_and(|(code, _)| code == 410)
    };
    // Replicas and custody cells arrive long before the expiry, on every node but under
    // a heavy load; the deletions below are what this test is about.
    wait_until(
        "replicas and custody cells",
        Duration::from_secs(30),
        || {
            [&b, &c]
                .iter()
                .all(|n| (n.has_complete(&short) || expired(n, &short)) && n.has_complete(&lasting))
                && (held_cells(&c) > 0 || expired(&c, &das))
        },
    );

    for node in nodes {
        wait_until("the short blobs to expire", Duration::from_secs(60), || {
            expired(node, &short) && expired(node, &das)
        });
        wait_until("their bytes to be deleted", Duration::from_secs(30), || {
            node.status()["used_bytes"] == lasting_data.len() as u64 && held_cells(node) == 0
        });
    }
    let out = cli(&c.api, &["get", &short, "-o", "/dev/null"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("expired"),
        "{stderr}"
    );
    // Expired means deleted, not forgotten: the registration stays provable.
    cli_ok(&c.api, &["verify", &short]);
    assert_eq!(get_bytes(&c.api, &lasting, tmp.path()), lasting_data);
    // Nothing comes back: replication does not fetch an expired blob again.
    std::thread::sleep(Duration::from_secs(4));
    for node in nodes {
        assert_eq!(node.status()["used_bytes"], lasting_data.len() as u64);
        assert_eq!(held_cells(node), 0);
    }
    // The same content put again is registered anew (not answered with the old receipt)
    // and stored again.
    let again = cli_ok(
        &b.api,
        &[
            "put",
            &tmp.path().join("short").display().to_string(),
            "--json",
        ],
    );
    let receipt: serde_json::Value = serde_json::from_str(&again).expect("receipt");
    assert_eq!(receipt["blob_id"], short.as_str());
    assert!(receipt["height"].as_u64().expect("height") > das_height);
    assert_eq!(get_bytes(&c.api, &short, tmp.path()), bytes(CHUNK + 7, 21));
}
