//! Abuse and load with real `nexus` processes on loopback: many concurrent puts through
//! one node.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::support::*;

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
    let receipts = put_all_at_once(&node.api, &files);
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
    // The node's metrics, as Prometheus scrapes them, agree.
    let (code, metrics) = http_get(&node.api, "/metrics").expect("metrics");
    assert_eq!(code, 200);
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{metrics}"))
    };
    assert!(
        metrics.contains("# TYPE nexus_bytes_served_total counter"),
        "{metrics}"
    );
    assert!(value("nexus_blobs") >= PUTS as f64);
    assert!(value("nexus_finalized_height") >= *heights.last().expect("a height") as f64);
    assert_eq!(value("nexus_uploads_in_flight"), 0.0);
    assert_eq!(value("nexus_stored_bytes"), (PUTS * 100_000) as f64);
}

/// Runs `nexus put --json` of every file at once, one process each; every one must succeed.
fn put_all_at_once(api: &str, files: &[String]) -> Vec<serde_json::Value> {
    std::thread::scope(|s| {
        let running: Vec<_> = files
            .iter()
            .map(|f| {
                s.spawn(move || {
                    let out = cli(api, &["put", f, "--json"]);
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
    })
}

/// More `nexus put` processes than a client address may hold connections (128) or upload
/// sessions: those turned away wait and ask again, and every put lands.
#[test]
fn two_hundred_concurrent_puts_from_one_address_all_succeed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let node = start_proposer(tmp.path(), &[tmp.path().join("v")], &[]);
    let files: Vec<String> = (0..200)
        .map(|i| write_file(tmp.path(), &format!("f{i}"), &bytes(2_000, i as u64)))
        .collect();
    let started = Instant::now();
    let receipts = put_all_at_once(&node.api, &files);
    let ids: BTreeSet<&str> = receipts
        .iter()
        .map(|r| r["blob_id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids.len(), files.len());
    eprintln!("200 concurrent puts final in {:?}", started.elapsed());
}

#[test]
fn the_same_bytes_put_through_two_nodes_at_once_both_succeed_and_the_loser_pays_a_fee() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dirs: Vec<_> = ["v", "n"].iter().map(|n| tmp.path().join(n)).collect();
    let validator = start_proposer(tmp.path(), &dirs, &[]);
    let node = TestNode::start(&dirs[1], false, &[validator.addr()], &[]);
    let mut blocks = BTreeSet::new();
    for i in 0..4u64 {
        let file = write_file(tmp.path(), &format!("same{i}"), &bytes(50_000, 100 + i));
        // Both sign a registration of these bytes before either is final.
        let receipts: Vec<serde_json::Value> = std::thread::scope(|s| {
            let puts: Vec<_> = [&validator.api, &node.api]
                .into_iter()
                .map(|api| {
                    let file = file.clone();
                    s.spawn(move || {
                        let out = cli(api, &["put", &file, "--json"]);
                        let err = String::from_utf8_lossy(&out.stderr).to_string();
                        assert!(out.status.success(), "put through {api} failed: {err}");
                        serde_json::from_slice(&out.stdout).expect("receipt json")
                    })
                })
                .collect();
            puts.into_iter().map(|t| t.join().expect("put")).collect()
        });
        assert_eq!(receipts[0]["blob_id"], receipts[1]["blob_id"]);
        // Both answer with the registration that took effect.
        assert_eq!(receipts[0]["height"], receipts[1]["height"]);
        blocks.insert(receipts[0]["height"].as_u64().expect("height"));
    }
    // The losing registrations are carried as failed (in the winner's block or a later
    // one) and pay their fee: count them in the blocks since.
    let top = validator.status()["height"].as_u64().expect("height");
    let first = *blocks.first().expect("a block");
    let mut failed = 0;
    for h in first..=top {
        let block = get_json(&validator.api, &format!("/v1/blocks/{h}")).expect("block");
        failed += block["failed"].as_array().expect("failed positions").len();
    }
    eprintln!("4 raced puts: {failed} registrations carried as failed");
    // Each loser signed before the winner was final (a registration takes a few block
    // intervals to be final, an upload of 50 KB milliseconds): at least one raced.
    assert!((1..=4).contains(&failed), "{failed} failed registrations");
}

/// A chunked upload (no Content-Length, so nothing is known before its body is read).
fn chunked_put(api: &str, query: &str, data: &[u8]) -> (u16, String) {
    let mut request = format!(
        "PUT /v1/blobs{query} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    for piece in data.chunks(1 << 20) {
        request.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        request.extend_from_slice(piece);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    http_raw(api, &request).expect("answer")
}

#[test]
fn refused_uploads_leave_nothing_stored_counted_or_served() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let node = start_proposer(
        tmp.path(),
        &[tmp.path().join("n")],
        &["--capacity", "20MiB"],
    );
    let six = bytes(6 << 20, 11);
    let file = write_file(tmp.path(), "six", &six);
    let stderr = |args: &[&str]| {
        let out = cli(&node.api, args);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        )
    };
    // Refused before the body is read.
    let (code, body) = chunked_put(&node.api, "?policy=foo", b"abc");
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("unknown policy"), "{body}");
    let (code, body) = chunked_put(&node.api, "?epochs=0", b"abc");
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("at least 1"), "{body}");
    let refused = stderr(&["put", &file, "--policy", "erasure"]);
    assert!(
        refused.contains("no orchestrator has 6 providers"),
        "{refused}"
    );
    let refused = stderr(&["put", &file, "--epochs", "1000000000000"]);
    assert!(refused.contains("insufficient balance"), "{refused}");
    // Refused after it was read (nothing announced its size): the bytes and the 6 shards
    // encoded from them go at once. Three times: more than the capacity in all.
    for round in 0..3 {
        let (code, body) = chunked_put(&node.api, "?policy=erasure", &six);
        assert_eq!(code, 422, "round {round}: {body}");
        let status = node.status();
        assert_eq!(
            (
                status["used_bytes"].as_u64(),
                status["staged_bytes"].as_u64()
            ),
            (Some(0), Some(0)),
            "round {round}: {status}"
        );
    }
    let id = nexus_storage::BlobId::of(&six).to_string();
    assert_eq!(
        http_get(&node.api, &format!("/v1/blobs/{id}")).map(|r| r.0),
        Some(404)
    );
    // The room is all there for a paid put.
    let four = write_file(tmp.path(), "four", &bytes(4 << 20, 12));
    put(&node.api, &four);
    assert_eq!(node.status()["used_bytes"].as_u64(), Some(4 << 20));
}

#[test]
fn a_blob_no_copy_of_which_verifies_is_an_error_not_a_cut_200() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dirs = [tmp.path().join("liar"), tmp.path().join("fresh")];
    // The only other holder serves every chunk corrupted.
    let liar = start_proposer(tmp.path(), &dirs, &["--fault", "corrupt-chunks"]);
    let data = bytes(600_000, 5);
    let id = put(&liar.api, &write_file(tmp.path(), "input", &data));
    let fresh = TestNode::start(&dirs[1], false, &[liar.addr()], &[]);
    wait_until(
        "the fresh node to learn the blob",
        Duration::from_secs(30),
        || fresh.blob_info(&id).is_some(),
    );
    let (code, body) = http_get(&fresh.api, &format!("/v1/blobs/{id}")).expect("answer");
    assert_eq!(code, 503, "{body:.200}");
    let json: serde_json::Value = serde_json::from_str(&body).expect("a JSON error");
    assert!(
        json["error"]
            .as_str()
            .is_some_and(|e| e.contains("cannot be served")),
        "{body}"
    );
    // The node says so in its health, in words.
    let (code, health) = http_get(&fresh.api, "/v1/health").expect("health");
    assert_eq!(code, 503, "{health}");
    assert!(
        health.contains(&id) && health.contains("do not verify"),
        "{health}"
    );
}

/// `count` connections from `from` that each send `start` of a request, then nothing.
fn open_stalled(count: usize, from: [u8; 4], api: &str, start: &[u8]) -> Vec<std::net::TcpStream> {
    use std::io::Write;
    (0..count)
        .map(|_| {
            let mut s = connect_from(from, api);
            s.write_all(start).expect("send");
            s
        })
        .collect()
}

/// What the node wrote on `stream` before closing it (within `limit`).
fn answer_of(stream: &mut std::net::TcpStream, limit: Duration) -> String {
    use std::io::Read;
    stream.set_read_timeout(Some(limit)).expect("timeout");
    let mut got = Vec::new();
    let _ = stream.read_to_end(&mut got);
    String::from_utf8_lossy(&got).to_string()
}

#[test]
fn slow_clients_neither_lock_the_api_nor_keep_their_connections() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let node = start_proposer(tmp.path(), &[tmp.path().join("n")], &[]);
    // 100 uploads that announce a megabyte and send one byte.
    let upload = b"PUT /v1/blobs HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\nx";
    let mut slow = open_stalled(100, [127, 0, 0, 1], &node.api, upload);
    std::thread::sleep(Duration::from_millis(500));
    let asked = Instant::now();
    let (code, _) = http_get(&node.api, "/v1/status").expect("status answers");
    let waited = asked.elapsed();
    eprintln!("/v1/status with 100 slow uploads open: {waited:?}");
    assert_eq!(code, 200);
    assert!(waited < Duration::from_secs(5), "status took {waited:?}");
    // Each is cut off once below the minimum rate, with the reason.
    for s in &mut slow {
        let answer = answer_of(s, Duration::from_secs(30));
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("upload too slow"), "{answer}");
    }
    assert_eq!(node.status()["staged_bytes"].as_u64(), Some(0));

    // 300 connections from one other client that never finish their headers: beyond its
    // cap they are refused at once; the rest are closed by the header timeout.
    let mut idle = open_stalled(
        300,
        [127, 0, 0, 2],
        &node.api,
        b"GET /v1/status HTTP/1.1\r\nHost:",
    );
    let refused = idle
        .iter_mut()
        .skip(200)
        .map(|s| answer_of(s, Duration::from_secs(5)))
        .filter(|a| a.starts_with("HTTP/1.1 429"))
        .count();
    assert_eq!(refused, 100, "connections over the per-client cap");
    let (code, _) = http_get(&node.api, "/v1/status").expect("status answers");
    assert_eq!(code, 200, "another client is still served");
    let closed_at = Instant::now();
    for s in idle.iter_mut().take(128) {
        answer_of(s, Duration::from_secs(30));
    }
    let held = closed_at.elapsed();
    assert!(
        held < Duration::from_secs(20),
        "header-less connections held for {held:?}"
    );
}

#[test]
fn a_full_disk_refuses_uploads_in_words_and_the_node_stays_healthy() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("n");
    let genesis = solo_genesis(tmp.path(), &dir);
    // The store lives on a 64 MiB disk of its own.
    let node = TestNode::start_on_tmpfs(&dir, "64m", true, &["--genesis-config", &genesis]);
    // Announced too large for the disk: refused before a byte is written.
    let big = write_file(tmp.path(), "big", &bytes(100 << 20, 1));
    let out = cli(&node.api, &["put", &big]);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success());
    assert!(stderr.contains("disk full"), "{stderr}");
    // What fits is stored.
    let small = bytes(1 << 20, 3);
    let id = put(&node.api, &write_file(tmp.path(), "small", &small));
    assert_eq!(get_bytes(&node.api, &id, tmp.path()), small);
    // Announced by nobody: refused once the disk is down to the room kept for the chain.
    let (code, body) = chunked_put(&node.api, "", &bytes(100 << 20, 2));
    assert_eq!(code, 507, "{body}");
    assert!(body.contains("disk_full"), "{body}");
    // The node says so, and keeps doing its job on the room it kept: blocks go on.
    let (code, health) = http_get(&node.api, "/v1/health").expect("health");
    let status = node.status();
    assert_eq!(status["staged_bytes"].as_u64(), Some(0), "{status}");
    let problems = status["problems"].as_array().expect("problems").clone();
    assert_eq!(code == 200, problems.is_empty(), "{health}");
    let before = status["height"].as_u64().expect("height");
    wait_until("blocks to go on", Duration::from_secs(30), || {
        node.status()["height"].as_u64() > Some(before + 5)
    });
    assert_eq!(get_bytes(&node.api, &id, tmp.path()), small);
    // Uploads refused after their body was read give their room back at once: a das blob
    // over a block's data, a storage fee beyond any balance, and the chunked 100 MB above.
    let (code, body) = chunked_put(&node.api, "?policy=das", &bytes(9 << 20, 4));
    assert!(code >= 400, "{code}: {body}");
    let (code, body) = chunked_put(&node.api, "?epochs=1000000000000", &bytes(8 << 20, 5));
    assert!(code >= 400, "{code}: {body}");
    let status = node.status();
    assert_eq!(
        (
            status["staged_bytes"].as_u64(),
            status["receiving_bytes"].as_u64()
        ),
        (Some(0), Some(0)),
        "{status}"
    );
    // ... so a paid 4 MB put fits, at once.
    let four = bytes(4 << 20, 6);
    let four_id = put(&node.api, &write_file(tmp.path(), "four", &four));
    assert_eq!(get_bytes(&node.api, &four_id, tmp.path()), four);
    let log = node.log();
    assert!(
        !log.contains("Poisoned") && !log.contains("can no longer write"),
        "{log}"
    );
}

#[test]
fn a_corrupt_store_is_named_set_aside_by_repair_and_refilled_from_peers() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dirs = [tmp.path().join("a"), tmp.path().join("b")];
    let a = start_proposer(tmp.path(), &dirs, &[]);
    let mut b = TestNode::start(&dirs[1], false, &[a.addr()], &[]);
    let data = bytes(600_000, 21);
    let id = put(&a.api, &write_file(tmp.path(), "input", &data));
    wait_until("b to replicate", Duration::from_secs(60), || {
        b.has_complete(&id)
    });
    b.kill9();
    // One flipped bit in b's journal (which still holds every recent write).
    let journal = dirs[1].join("store").join("0.jnl");
    let mut bytes_on_disk = std::fs::read(&journal).expect("journal");
    bytes_on_disk[1000] ^= 0x10;
    std::fs::write(&journal, &bytes_on_disk).expect("write");
    // Starting says what is wrong and what to do.
    let out = std::process::Command::new(NEXUS)
        .args(["node", "start", "--api", "127.0.0.1:0", "--listen"])
        .arg("/ip4/127.0.0.1/tcp/0")
        .arg("--data-dir")
        .arg(&dirs[1])
        .output()
        .expect("run nexus");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success());
    assert!(
        stderr.contains("is corrupt") && stderr.contains("nexus node repair"),
        "{stderr}"
    );
    assert!(!stderr.contains("another"), "{stderr}");
    // Repair sets the store aside; the node refills from its peer.
    let out = cli_ok(
        &a.api,
        &[
            "node",
            "repair",
            "--data-dir",
            dirs[1].to_str().expect("utf8"),
        ],
    );
    assert!(out.contains("moved it to"), "{out}");
    // A damaged journal leaves the engine nothing it can read, but blob content lives in
    // files of its own: the blob is salvaged (staged until the synced chain shows it).
    assert!(out.contains("salvaged 1 blobs"), "{out}");
    b.restart_without(&[]);
    wait_until("b to hold the blob again", Duration::from_secs(60), || {
        b.has_complete(&id)
    });
    assert_eq!(get_bytes(&b.api, &id, tmp.path()), data);
    // A running node's store is left alone.
    let busy = cli(
        &a.api,
        &[
            "node",
            "repair",
            "--data-dir",
            dirs[0].to_str().expect("utf8"),
        ],
    );
    let stderr = String::from_utf8_lossy(&busy.stderr).to_string();
    assert!(!busy.status.success());
    assert!(stderr.contains("in use by a running node"), "{stderr}");
}

/// 128 uploads trickling at 70 KiB/s from one address — above the minimum rate, holding
/// every upload slot — do not keep another address's put from landing within 10 s: that
/// client waits for its share, and the trickler, over its share while someone waits, must
/// send faster or lose its uploads.
#[test]
fn a_client_holding_every_upload_slot_does_not_keep_another_one_waiting() {
    use std::io::Write;
    use std::sync::atomic::{AtomicBool, Ordering};
    let tmp = tempfile::tempdir().expect("tempdir");
    let node = start_proposer(tmp.path(), &[tmp.path().join("v")], &[]);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..128 {
            let (api, stop) = (&node.api, &stop);
            s.spawn(move || {
                let mut upload = connect_from([127, 0, 0, 2], api);
                let head = "PUT /v1/blobs HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n";
                if upload.write_all(head.as_bytes()).is_err() {
                    return;
                }
                let piece = [7u8; 7 * 1024];
                while !stop.load(Ordering::Relaxed) {
                    if upload.write_all(&piece).is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            });
        }
        std::thread::sleep(Duration::from_secs(3));
        let file = write_file(tmp.path(), "mine", &bytes(1 << 20, 9));
        let started = Instant::now();
        let out = cli(&node.api, &["put", &file]);
        let took = started.elapsed();
        stop.store(true, Ordering::Relaxed);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!("a 1 MiB put beside 128 trickling uploads from another address: {took:?}");
        assert!(took < Duration::from_secs(10), "the put took {took:?}");
    });
}

/// Resumable uploads from one address cannot squat a small node's room: its sessions may
/// claim half of it at most, and the owner's put still fits.
#[test]
fn upload_sessions_cannot_squat_a_node_s_room() {
    use std::io::Write;
    let tmp = tempfile::tempdir().expect("tempdir");
    let node = start_proposer(
        tmp.path(),
        &[tmp.path().join("v")],
        &["--capacity", "20MiB"],
    );
    let open = |size: u64| {
        let mut s = connect_from([127, 0, 0, 2], &node.api);
        let request = format!(
            "POST /v1/uploads?size={size} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        s.write_all(request.as_bytes()).expect("send");
        answer_of(&mut s, Duration::from_secs(10))
    };
    let first = open(8 << 20);
    assert!(first.starts_with("HTTP/1.1 201"), "{first}");
    let id = first
        .split("\"upload\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("an upload id")
        .to_string();
    // It sends 8 MB into its session and keeps it open.
    let mut s = connect_from([127, 0, 0, 2], &node.api);
    let head = format!(
        "PATCH /v1/uploads/{id} HTTP/1.1\r\nHost: x\r\nUpload-Offset: 0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        (8 << 20) - 1
    );
    s.write_all(head.as_bytes()).expect("send");
    s.write_all(&bytes((8 << 20) - 1, 5)).expect("send");
    let answer = answer_of(&mut s, Duration::from_secs(20));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(
        node.status()["receiving_bytes"].as_u64(),
        Some((8 << 20) - 1)
    );
    assert_eq!(
        node.status()["used_bytes"].as_u64(),
        Some(0),
        "not stored data"
    );
    let second = open(8 << 20);
    assert!(second.starts_with("HTTP/1.1 429"), "{second}");
    assert!(second.contains("half"), "{second}");
    // The owner's 4 MB put fits in what is left.
    let mine = write_file(tmp.path(), "mine", &bytes(4 << 20, 6));
    let out = cli(&node.api, &["put", &mine]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A node whose log cannot be written (on a full disk) runs on: logging never takes it down.
#[test]
fn a_node_whose_log_is_on_a_full_disk_runs_on() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("n");
    let genesis = solo_genesis(tmp.path(), &dir);
    let mut node = TestNode::start_logging_to_a_full_disk(
        &dir,
        true,
        &["--genesis-config", &genesis, "--block-interval-ms", "200"],
    );
    let first = node.status()["height"].as_u64().unwrap_or(0);
    wait_until(
        "blocks while every log line fails",
        Duration::from_secs(30),
        || {
            node.status()["height"]
                .as_u64()
                .is_some_and(|h| h >= first + 5)
        },
    );
    // A put logs too.
    let file = write_file(tmp.path(), "f", &bytes(100_000, 1));
    put(&node.api, &file);
    assert!(
        node.wait_exit(Duration::from_secs(1)).is_none(),
        "the node exited"
    );
}
