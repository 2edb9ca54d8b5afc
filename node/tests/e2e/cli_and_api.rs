//! The CLI's and the HTTP API's answers to bad input, missing data and full disks, on a
//! real node process; and `nexus devnet` started and stopped as a user would.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::*;

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[test]
fn bad_input_gets_clear_errors_and_changes_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let node = start_proposer(tmp.path(), &[tmp.path().join("n")], &["--capacity", "1MiB"]);

    // Malformed ids and heights are 400s with a JSON body; unknown ones are 404s.
    for path in [
        "/v1/blobs/zz/info",
        "/v1/blobs/00/proof",
        "/v1/blocks/-1",
        "/v1/blocks/abc",
    ] {
        let (code, body) = http_get(&node.api, path).expect("answer");
        assert_eq!(code, 400, "{path}: {body}");
        assert!(body.contains("\"kind\":\"bad_request\""), "{path}: {body}");
    }
    // What HTTP itself refuses before a route sees it is JSON too.
    let long_uri = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70_000));
    for (request, code, kind) in [
        ("GARBAGE\r\n\r\n".to_string(), 400, "bad_request"),
        (
            "GET /v1/status HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n".to_string(),
            400,
            "bad_request",
        ),
        ("GET /v1/status\r\n\r\n".to_string(), 400, "bad_request"),
        (long_uri, 414, "uri_too_long"),
    ] {
        let (got, body) = http_raw(&node.api, request.as_bytes()).expect("answer");
        assert_eq!(got, code, "{body}");
        assert!(body.contains(&format!("\"kind\":\"{kind}\"")), "{body}");
    }
    // A FIFO nobody writes to is refused at once, not waited on forever.
    let fifo = tmp.path().join("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    let started = std::time::Instant::now();
    let out = cli(&node.api, &["put", fifo.to_str().expect("utf8")]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a regular file"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    let unknown = "00".repeat(32);
    let (code, body) = http_get(&node.api, &format!("/v1/blobs/{unknown}")).expect("answer");
    assert_eq!((code, body.contains("unknown blob")), (404, true), "{body}");
    assert_eq!(http_get(&node.api, "/v1/nothing").expect("answer").0, 404);
    // What the HTTP framework refuses is JSON too, with the reason.
    let long = "x".repeat(70_000);
    let oversized = format!(
        "POST /v1/transactions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{long}",
        long.len()
    );
    for (request, code, kind) in [
        (
            "PUT /v1/blobs?epochs=many HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string(),
            400,
            "bad_request",
        ),
        (
            "POST /v1/transactions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5\r\nConnection: close\r\n\r\n{bad}".to_string(),
            400,
            "bad_request",
        ),
        (
            "POST /v1/transactions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}".to_string(),
            415,
            "unsupported_media_type",
        ),
        (oversized, 413, "too_large"),
        (
            "DELETE /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_string(),
            405,
            "method_not_allowed",
        ),
    ] {
        let (got, body) = http_raw(&node.api, request.as_bytes()).expect("answer");
        let json: serde_json::Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{request:.40}: not JSON ({e}): {body}"));
        assert_eq!((got, json["kind"].as_str()), (code, Some(kind)), "{body}");
        assert!(
            json["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{body}"
        );
    }
    assert_eq!(http_get(&node.api, "/v1/blocks/99").expect("answer").0, 404);
    // Random path segments never take the node down.
    for seed in 0..50u64 {
        let junk: String = bytes(20, seed)
            .iter()
            .map(|b| char::from(b'a' + b % 26))
            .collect();
        let (code, _) = http_get(&node.api, &format!("/v1/blobs/{junk}/info")).expect("answer");
        assert_eq!(code, 400);
    }

    // The CLI says what is wrong in words.
    let out = cli(&node.api, &["get", &unknown, "-o", "/dev/null"]);
    assert!(
        stderr_of(&out).contains("unknown blob"),
        "{}",
        stderr_of(&out)
    );
    let out = cli(&node.api, &["put", tmp.path().to_str().expect("utf8")]);
    assert!(
        stderr_of(&out).contains("is not a regular file"),
        "{}",
        stderr_of(&out)
    );
    // A reader that stops early (`nexus status | head -1`) ends the CLI quietly.
    let mut early = Command::new(NEXUS)
        .args(["--node", &node.api, "status", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn status");
    drop(early.stdout.take());
    let out = early.wait_with_output().expect("status output");
    assert!(!stderr_of(&out).contains("panicked"), "{}", stderr_of(&out));
    let out = cli(&node.api, &["put", "/definitely/not/here"]);
    assert!(
        stderr_of(&out).contains("file not readable"),
        "{}",
        stderr_of(&out)
    );
    let out = cli("http://127.0.0.1:9", &["status"]);
    assert!(
        stderr_of(&out).contains("node not reachable"),
        "{}",
        stderr_of(&out)
    );
    let out = cli(&node.api, &["get", "xyz", "-o", "/dev/null"]);
    assert!(!out.status.success());

    // Over the capacity: refused, nothing kept, and the next fitting put still works.
    let big = write_file(tmp.path(), "big", &bytes(2 << 20, 1));
    let out = cli(&node.api, &["put", &big]);
    assert!(
        stderr_of(&out).contains("disk quota exceeded"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(node.status()["used_bytes"], 0);
    // The node itself refuses an upload announced too large, before reading its body.
    let request = b"PUT /v1/blobs HTTP/1.1\r\nHost: x\r\nContent-Length: 2097152\r\n\r\nabc";
    let (code, body) = http_raw(&node.api, request).expect("answer");
    assert_eq!(code, 507, "{body}");
    assert!(body.contains("quota_exceeded"), "{body}");
    let small_data = bytes(1000, 2);
    let id = put(&node.api, &write_file(tmp.path(), "small", &small_data));
    assert_eq!(node.status()["used_bytes"], 1000);
    assert!(node.has_complete(&id));

    // The same content under another policy is refused, not silently re-labelled.
    let small = tmp.path().join("small");
    let out = cli(
        &node.api,
        &["put", small.to_str().expect("utf8"), "--policy", "das"],
    );
    assert!(
        stderr_of(&out).contains("already registered with the replicated policy")
            && !stderr_of(&out).contains("resumed"),
        "{}",
        stderr_of(&out)
    );
    // Erasure storage needs an orchestrator with enough providers: a clear refusal.
    let other = write_file(tmp.path(), "other", &bytes(500, 3));
    let out = cli(&node.api, &["put", &other, "--policy", "erasure"]);
    assert!(
        stderr_of(&out).contains("no orchestrator has 6 providers"),
        "{}",
        stderr_of(&out)
    );
    // A light client asked for certainty, which sampling cannot give, says so.
    let addr = node.addr();
    let out = cli(
        &node.api,
        &["light", "--bootstrap", &addr, "--target-confidence", "1"],
    );
    assert!(!out.status.success());
    assert!(
        stderr_of(&out).contains("--target-confidence must be above 0 and below 1"),
        "{}",
        stderr_of(&out)
    );
    // A second node on the first one's p2p address stops at once and says why.
    let dir = tmp.path().join("second");
    let out = Command::new(NEXUS)
        .args(["node", "start", "--listen", &node.listen, "--data-dir"])
        .arg(&dir)
        .output()
        .expect("run nexus");
    assert!(!out.status.success());
    assert!(
        stderr_of(&out).contains(&format!(
            "cannot listen on {}: Address already in use",
            node.listen
        )),
        "{}",
        stderr_of(&out)
    );
}

/// A compute job the node cannot run is refused at `POST /v1/compute/jobs` with the reason
/// (the CLI checks the same locally; this is the path a client skipping it takes), and
/// nothing is submitted: the node's account sends no transaction.
#[test]
fn a_job_that_cannot_run_is_refused_by_the_node_and_nothing_is_submitted() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let node = start_proposer(tmp.path(), &[tmp.path().join("n")], &[]);
    let examples = tmp.path().join("examples");
    cli_ok(
        &node.api,
        &["compute", "examples", examples.to_str().expect("utf8")],
    );
    let example = |name: &str| put(&node.api, &examples.join(name).display().to_string());
    let endless = [u32::MAX.to_le_bytes(), 1u32.to_le_bytes()].concat();
    let endless = put(&node.api, &write_file(tmp.path(), "endless.bin", &endless));
    let truncated = put(
        &node.api,
        &write_file(tmp.path(), "short.bin", b"\x01\x02\x03"),
    );
    let small = [[1u8, 0, 0, 0], [7, 0, 0, 0]].concat();
    let small = put(&node.api, &write_file(tmp.path(), "small.bin", &small));
    let script = write_file(tmp.path(), "script.sh", b"#!/bin/sh\necho no\n");
    // The loop example with crt0's first instruction made an `unimp`, which OpenVM 2.0.2
    // would run as a no-op (GHSA-6p9w-9j7q-867r): refused by `compute run` as by the node.
    let mut unimp = std::fs::read(examples.join("loop.elf")).expect("loop.elf");
    let at = unimp
        .windows(4)
        .position(|w| w == 0x0020_0137u32.to_le_bytes())
        .expect("crt0's first instruction");
    unimp[at..at + 4].copy_from_slice(&0xc000_1073u32.to_le_bytes());
    let unimp = write_file(tmp.path(), "unimp.elf", &unimp);
    let ran = cli(&node.api, &["compute", "run", &unimp]);
    let said = String::from_utf8_lossy(&ran.stderr);
    assert!(!ran.status.success());
    assert!(
        said.contains("0xc0001073 at 0x200800") && said.contains("GHSA-6p9w-9j7q-867r"),
        "{said}"
    );
    let cases = [
        (put(&node.api, &script), &endless, "not an ELF"),
        (put(&node.api, &unimp), &endless, "GHSA-6p9w-9j7q-867r"),
        (
            put(&node.api, "/bin/true"),
            &endless,
            "another architecture",
        ),
        (
            example("loop.elf"),
            &endless,
            "did not finish within 200000 cycles",
        ),
        (
            example("mlp.elf"),
            &truncated,
            "the program failed (exit code 1)",
        ),
    ];
    let account = node.status()["account"]
        .as_str()
        .expect("account key")
        .to_string();
    let nonce = || {
        get_json(&node.api, &format!("/v1/accounts/{account}")).expect("account")["account"]
            ["nonce"]
            .as_u64()
            .expect("nonce")
    };
    let before = nonce();
    for (program, input, reason) in cases {
        let body = format!(
            r#"{{"program":"{program}","input":"{input}","max_cycles":200000,"reward":1,"lifetime":100}}"#
        );
        let (code, answer) = post_job(&node.api, &body);
        assert_eq!(code, 400, "{reason}: {answer}");
        assert!(
            answer.contains("the job cannot run") && answer.contains(reason),
            "{reason}: {answer}"
        );
    }
    // A job the ledger would refuse (no lifetime, a reward beyond any balance) is refused
    // before anything runs: it costs the node next to no CPU.
    let pid = node.child.as_ref().expect("running").id();
    let loop_elf = example("loop.elf");
    for (lifetime, reward, reason) in [
        (0u64, 1u64, "lifetime"),
        (100, u64::MAX / 2, "insufficient balance"),
    ] {
        let body = format!(
            r#"{{"program":"{loop_elf}","input":"{small}","max_cycles":4294967296,"reward":{reward},"lifetime":{lifetime}}}"#
        );
        let before = cpu_ms(pid);
        let (code, answer) = post_job(&node.api, &body);
        let spent = cpu_ms(pid) - before;
        assert_eq!(code, 422, "{reason}: {answer}");
        assert!(answer.contains(reason), "{reason}: {answer}");
        assert!(spent < 100, "a refused job cost {spent} ms of node CPU");
    }
    let height = node.status()["height"].as_u64().expect("height");
    wait_until("two more final blocks", Duration::from_secs(30), || {
        node.status()["height"]
            .as_u64()
            .is_some_and(|h| h >= height + 2)
    });
    assert_eq!(nonce(), before, "a refused job sent a transaction");
}

/// `POST /v1/compute/jobs` with the JSON `body`: the status code and the answer.
fn post_job(api: &str, body: &str) -> (u16, String) {
    let request = format!(
        "POST /v1/compute/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    http_raw(api, request.as_bytes()).expect("answer")
}

/// CPU time (user + system) process `pid` has used, in milliseconds.
fn cpu_ms(pid: u32) -> i64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    // The fields after the command name (which may hold spaces) start past its ')'.
    let fields: Vec<&str> = stat[stat.rfind(')').expect("comm") + 2..]
        .split_whitespace()
        .collect();
    let ticks: i64 =
        fields[11].parse::<i64>().expect("utime") + fields[12].parse::<i64>().expect("stime");
    // Linux reports in clock ticks of 1/100 s here (sysconf(_SC_CLK_TCK) = 100).
    ticks * 10
}

#[test]
fn devnet_starts_serves_and_stops_cleanly_on_ctrl_c() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let base = free_port().saturating_sub(200).max(10_000);
    let data_dir = tmp.path().to_str().expect("utf8");
    let (mut devnet, lines, banner) = start_devnet(&[
        "--validators",
        "1",
        "--nodes",
        "1",
        "--base-port",
        &base.to_string(),
        "--data-dir",
        data_dir,
    ]);
    let _stop = InterruptOnPanic(devnet.id());
    assert!(banner.contains("validator"), "{banner}");
    let api0 = format!("http://127.0.0.1:{}", base + 100);
    // Off the default port, every suggested command says which node to talk to.
    for line in banner
        .lines()
        .filter(|l| l.contains(" status ") || l.contains(" put "))
    {
        assert!(line.contains(&format!("NEXUS_NODE={api0}")), "{line}");
    }
    let api1 = format!("http://127.0.0.1:{}", base + 101);
    let data = bytes(300_000, 9);
    let id = put(&api0, &write_file(tmp.path(), "f", &data));
    wait_until("node 1 to replicate", Duration::from_secs(60), || {
        get_json(&api1, &format!("/v1/blobs/{id}/info")).is_some_and(|i| i["complete"] == true)
    });

    nix_interrupt(devnet.id());
    let status = wait_exit(&mut devnet, Duration::from_secs(30));
    assert!(status.success(), "devnet exited with {status}");
    let rest: String = lines.map_while(Result::ok).collect::<Vec<_>>().join("\n");
    assert!(rest.contains("stopped 2 nodes"), "{rest}");
    assert!(
        http_get(&api0, "/v1/status").is_none(),
        "node 0 still answers"
    );
    assert!(
        http_get(&api1, "/v1/status").is_none(),
        "node 1 still answers"
    );
}

/// Starts `nexus devnet ARGS` and reads its output up to the end of its banner; returns
/// the process, the rest of its output, and the banner.
fn start_devnet(
    args: &[&str],
) -> (
    std::process::Child,
    std::io::Lines<BufReader<std::process::ChildStdout>>,
    String,
) {
    let mut devnet = Command::new(NEXUS)
        .arg("devnet")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn devnet");
    let stdout = devnet.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut banner = String::new();
    for line in lines.by_ref() {
        let line = line.expect("line");
        banner.push_str(&line);
        banner.push('\n');
        if line.contains("Ctrl-C") {
            break;
        }
    }
    (devnet, lines, banner)
}

/// A devnet sent SIGTERM while it is still starting (as a supervisor or `timeout` would)
/// stops every node it started: none is left holding its ports.
#[test]
fn a_devnet_terminated_while_starting_leaves_no_node_behind() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let base = free_port().saturating_sub(200).max(10_000);
    let mut devnet = Command::new(NEXUS)
        .args(["devnet", "--base-port", &base.to_string(), "--data-dir"])
        .arg(tmp.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn devnet");
    let _stop = InterruptOnPanic(devnet.id());
    // The first node answers: the devnet is in the middle of starting the others.
    let api0 = format!("http://127.0.0.1:{}", base + 100);
    wait_until("the first node to start", Duration::from_secs(60), || {
        http_get(&api0, "/v1/status").is_some()
    });
    let ok = Command::new("kill")
        .args(["-TERM", &devnet.id().to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok);
    wait_exit(&mut devnet, Duration::from_secs(30));
    // Every node of the devnet (7 and the light client's peers) is gone.
    wait_until("every node to be gone", Duration::from_secs(15), || {
        (0..8u16).all(|i| std::net::TcpStream::connect(("127.0.0.1", base + 100 + i)).is_err())
    });
}

/// Sends Ctrl-C to the devnet (which then stops its nodes) if the test fails before it
/// does: a failed test must not leave node processes behind.
struct InterruptOnPanic(u32);

impl Drop for InterruptOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = Command::new("kill")
                .args(["-INT", &self.0.to_string()])
                .status();
        }
    }
}

fn nix_interrupt(pid: u32) {
    let ok = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok);
}

fn wait_exit(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("process did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_node_runs_from_one_config_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("n");
    let genesis = solo_genesis(tmp.path(), &dir);
    let api = format!("127.0.0.1:{}", free_port());
    let config = tmp.path().join("node.toml");
    std::fs::write(
        &config,
        format!(
            "data-dir = {:?}\napi = {api:?}\nlisten = \"/ip4/127.0.0.1/tcp/{}\"\n\
             validator = true\ngenesis-config = {genesis:?}\nblock-interval-ms = 100\n",
            dir.display().to_string(),
            free_port()
        ),
    )
    .expect("write config");
    let mut node = Command::new(NEXUS)
        .args(["node", "start", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let _stop = InterruptOnPanic(node.id());
    let api = format!("http://{api}");
    wait_until(
        "the node to finalize blocks",
        Duration::from_secs(30),
        || get_json(&api, "/v1/status").is_some_and(|s| s["height"].as_u64() > Some(2)),
    );
    assert!(
        dir.join("store").is_dir(),
        "the data dir came from the file"
    );
    nix_interrupt(node.id());
    assert!(wait_exit(&mut node, Duration::from_secs(30)).success());
}

#[test]
fn the_default_devnet_offers_every_policy() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let base = free_port().saturating_sub(300).max(10_000);
    let data_dir = tmp.path().join("devnet");
    let (mut devnet, lines, banner) = start_devnet(&[
        "--base-port",
        &base.to_string(),
        "--data-dir",
        data_dir.to_str().expect("utf8"),
    ]);
    let _stop = InterruptOnPanic(devnet.id());
    // Keep reading, as a terminal would, until the devnet ends.
    let rest = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());
    assert!(banner.contains("--policy erasure"), "{banner}");
    let api0 = format!("http://127.0.0.1:{}", base + 100);
    for (i, policy) in ["replicated", "erasure", "das"].iter().enumerate() {
        let file = write_file(tmp.path(), policy, &bytes(200_000, i as u64));
        let out = cli_ok(&api0, &["put", &file, "--policy", policy, "--json"]);
        let receipt: serde_json::Value = serde_json::from_str(&out).expect("receipt");
        assert_eq!(receipt["policy"], *policy, "{out}");
    }
    let status = cli_ok(&api0, &["orchestrator", "status"]);
    assert!(status.contains("providers:    6"), "{status}");
    nix_interrupt(devnet.id());
    assert!(wait_exit(&mut devnet, Duration::from_secs(30)).success());
    let rest = rest.join().expect("reader").join("\n");
    assert!(rest.contains("stopped 7 nodes"), "{rest}");
    assert!(
        http_get(&api0, "/v1/status").is_none(),
        "node 0 still answers"
    );
}
