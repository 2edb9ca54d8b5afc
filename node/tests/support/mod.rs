//! Harness for end-to-end tests: real `nexus` processes on loopback, data in temp dirs.

#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const NEXUS: &str = env!("CARGO_BIN_EXE_nexus");

/// Ports handed out below Linux's ephemeral range (32768–60999), so that the
/// kernel never gives one of them to an outgoing connection between our check and the
/// node's bind (a CI run lost a node that way).
const PORTS: std::ops::Range<u16> = 20_000..32_000;

/// A port nobody listens on right now, from [`PORTS`], different on every call in
/// this process.
pub fn free_port() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    // A random start per test process (so concurrent test binaries spread out).
    static START: std::sync::OnceLock<u16> = std::sync::OnceLock::new();
    let span = PORTS.end - PORTS.start;
    let start = *START.get_or_init(|| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        (h.finish() % u64::from(span)) as u16
    });
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = PORTS.start + (start.wrapping_add(n.wrapping_mul(7))) % span;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Polls `check` every 100 ms until it holds or `limit` passes.
pub fn wait_until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A minimal HTTP/1.1 GET: (status code, body).
pub fn http_get(api: &str, path: &str) -> Option<(u16, String)> {
    let host = api.trim_start_matches("http://");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    http_raw(api, request.as_bytes())
}

/// Sends raw request bytes; returns the status code and body of the answer.
pub fn http_raw(api: &str, request: &[u8]) -> Option<(u16, String)> {
    let addr = api.trim_start_matches("http://");
    exchange(TcpStream::connect(addr).ok()?, request)
}

/// Like [`http_raw`] from the loopback address `from` (another client to the node).
pub fn http_raw_from(from: [u8; 4], api: &str, request: &[u8]) -> Option<(u16, String)> {
    exchange(connect_from(from, api), request)
}

/// A connection to `api` from the loopback address `from` (another client to the node).
pub fn connect_from(from: [u8; 4], api: &str) -> std::net::TcpStream {
    let to: std::net::SocketAddr = api
        .trim_start_matches("http://")
        .parse()
        .expect("api address");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let stream = runtime
        .block_on(async {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind((std::net::Ipv4Addr::from(from), 0).into())?;
            socket.connect(to).await
        })
        .expect("connect");
    let stream = stream.into_std().expect("std stream");
    stream.set_nonblocking(false).expect("blocking");
    stream
}

/// Sends `request` on `s` and reads the answer to its end: (status, body).
fn exchange(mut s: TcpStream, request: &[u8]) -> Option<(u16, String)> {
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    // The server may answer (and close) before it read the whole request: keep its answer.
    let _ = s.write_all(request);
    let mut raw = Vec::new();
    // The server may close before reading everything we sent; keep what was answered.
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((code, body))
}

/// GET returning parsed JSON when the status is 200.
pub fn get_json(api: &str, path: &str) -> Option<serde_json::Value> {
    let (code, body) = http_get(api, path)?;
    (code == 200)
        .then(|| serde_json::from_str(&body).ok())
        .flatten()
}

/// Runs the `nexus` CLI against `api`.
pub fn cli(api: &str, args: &[&str]) -> Output {
    Command::new(NEXUS)
        .arg("--node")
        .arg(api)
        .args(args)
        .output()
        .expect("run nexus")
}

/// Runs the CLI and returns stdout, failing the test with stderr if it fails.
pub fn cli_ok(api: &str, args: &[&str]) -> String {
    let out = cli(api, args);
    assert!(
        out.status.success(),
        "nexus {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Deterministic pseudo-random bytes.
pub fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// One `nexus node start` process.
pub struct TestNode {
    pub child: Option<Child>,
    pub api: String,
    pub listen: String,
    pub dir: PathBuf,
    args: Vec<String>,
    /// A command the node runs under (e.g. a namespace with its own mounts), if any.
    wrapper: Vec<String>,
}

impl TestNode {
    /// Starts a node in `dir` and waits until it has a chain (a node given the genesis file
    /// has one at once; others once they synced the genesis). A `validator` takes part in
    /// consensus with the key of its data dir.
    pub fn start(dir: &Path, validator: bool, bootstrap: &[String], extra: &[&str]) -> TestNode {
        let mut node = TestNode::prepare(dir, validator, bootstrap, extra);
        node.spawn();
        node
    }

    /// Like [`TestNode::start`] inside the network namespace of process `netns_holder`
    /// (`nsenter`), listening for peers on `peer_ip` and serving its API on `api_ip`
    /// (fixed ports: the namespace is the node's own).
    pub fn start_in_netns(
        dir: &Path,
        netns_holder: u32,
        peer_ip: &str,
        api_ip: &str,
        validator: bool,
        bootstrap: &[String],
        extra: &[&str],
    ) -> TestNode {
        let listen = format!("/ip4/{peer_ip}/tcp/7000");
        let api = format!("{api_ip}:7100");
        let mut node = TestNode::prepare_at(dir, listen, api, validator, bootstrap, extra);
        node.wrapper = vec![
            "nsenter".into(),
            "-t".into(),
            netns_holder.to_string(),
            "--net".into(),
        ];
        node.spawn();
        node
    }

    /// The node [`TestNode::start`] starts, not started yet.
    fn prepare(dir: &Path, validator: bool, bootstrap: &[String], extra: &[&str]) -> TestNode {
        let listen = format!("/ip4/127.0.0.1/tcp/{}", free_port());
        let api = format!("127.0.0.1:{}", free_port());
        TestNode::prepare_at(dir, listen, api, validator, bootstrap, extra)
    }

    /// A node listening on `listen` (multiaddr) with its API on `api` (host:port), not
    /// started yet.
    fn prepare_at(
        dir: &Path,
        listen: String,
        api: String,
        validator: bool,
        bootstrap: &[String],
        extra: &[&str],
    ) -> TestNode {
        let mut args: Vec<String> = vec![
            "node".into(),
            "start".into(),
            "--data-dir".into(),
            dir.display().to_string(),
            "--listen".into(),
            listen.clone(),
            "--api".into(),
            api.clone(),
        ];
        if !extra.contains(&"--block-interval-ms") {
            args.extend(["--block-interval-ms".into(), "100".into()]);
        }
        if validator {
            args.push("--validator".into());
        }
        for b in bootstrap {
            args.push("--bootstrap".into());
            args.push(b.clone());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        TestNode {
            child: None,
            api: format!("http://{api}"),
            listen,
            dir: dir.to_path_buf(),
            args,
            wrapper: Vec::new(),
        }
    }

    /// Like [`TestNode::start`] with the node's standard output and error on `/dev/full`:
    /// every line it logs fails to be written (a log on a full disk).
    pub fn start_logging_to_a_full_disk(dir: &Path, validator: bool, extra: &[&str]) -> TestNode {
        let mut node = TestNode::prepare(dir, validator, &[], extra);
        node.wrapper = vec![
            "sh".into(),
            "-c".into(),
            "exec \"$0\" \"$@\" >/dev/full 2>&1".into(),
        ];
        node.spawn();
        node
    }

    /// Like [`TestNode::start`] with the store on a tmpfs of `size` (e.g. `64m`) of its
    /// own: the node runs in a user and mount namespace (`unshare`) where the tmpfs is
    /// mounted on `dir/store`; its keys and log stay outside.
    pub fn start_on_tmpfs(dir: &Path, size: &str, validator: bool, extra: &[&str]) -> TestNode {
        let mut node = TestNode::prepare(dir, validator, &[], extra);
        let store = dir.join("store");
        node.wrapper = vec![
            "unshare".into(),
            "--user".into(),
            "--map-root-user".into(),
            "--mount".into(),
            "sh".into(),
            "-c".into(),
            format!(
                "mkdir -p '{0}' && mount -t tmpfs -o size={size} tmpfs '{0}' && exec \"$0\" \"$@\"",
                store.display()
            ),
        ];
        node.spawn();
        node
    }

    /// Starts the process and waits until it is ready. A first start whose port was
    /// taken meanwhile moves to fresh ports; a restart (whose address peers know) waits
    /// for its ports to free up. Any other early exit fails at once with the log.
    fn spawn(&mut self) {
        let first_start = self.child.is_none() && !self.dir.join("node.log").exists();
        for _ in 0..10 {
            match self.try_spawn() {
                Ok(()) => return,
                Err(log) if log.contains("Address already in use") => {
                    if first_start {
                        self.move_to_fresh_ports();
                    } else {
                        std::thread::sleep(Duration::from_secs(1));
                    }
                }
                Err(log) => panic!("node {} exited before it was ready:\n{log}", self.api),
            }
        }
        panic!("node {}: its ports stayed taken\n{}", self.api, self.log());
    }

    /// Replaces the listen and API ports with fresh ones.
    fn move_to_fresh_ports(&mut self) {
        let listen = format!("/ip4/127.0.0.1/tcp/{}", free_port());
        let api = format!("127.0.0.1:{}", free_port());
        for (flag, value) in [("--listen", &listen), ("--api", &api)] {
            let at = self.args.iter().position(|a| a == flag).expect("flag") + 1;
            self.args[at] = value.clone();
        }
        self.listen = listen;
        self.api = format!("http://{api}");
    }

    /// One attempt: Ok once ready, Err(log) if the process exited first.
    fn try_spawn(&mut self) -> Result<(), String> {
        std::fs::create_dir_all(&self.dir).expect("dir");
        let log_start = std::fs::metadata(self.dir.join("node.log")).map_or(0, |m| m.len());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("node.log"))
            .expect("log");
        let mut command = match self.wrapper.split_first() {
            Some((program, wrapper_args)) => {
                let mut c = Command::new(program);
                c.args(wrapper_args).arg(NEXUS);
                c
            }
            None => Command::new(NEXUS),
        };
        let child = command
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn node");
        self.child = Some(child);
        let api = self.api.clone();
        let mut exited = false;
        wait_until(
            &format!("node {api} ready"),
            Duration::from_secs(60),
            || {
                exited = self
                    .child
                    .as_mut()
                    .is_some_and(|c| c.try_wait().ok().flatten().is_some());
                exited || get_json(&api, "/v1/status").is_some_and(|s| !s["height"].is_null())
            },
        );
        if exited {
            self.child = None;
            let log = self.log();
            return Err(log.get(log_start as usize..).unwrap_or(&log).to_string());
        }
        Ok(())
    }

    /// This node's address, from its key file (works while it is down).
    pub fn addr_offline(&self) -> String {
        format!(
            "{}/p2p/{}",
            self.listen,
            keys_of(&self.dir)["peer_id"].as_str().expect("peer id")
        )
    }

    /// This node's address for others to bootstrap from.
    pub fn addr(&self) -> String {
        let status = get_json(&self.api, "/v1/status").expect("status");
        format!(
            "{}/p2p/{}",
            self.listen,
            status["peer_id"].as_str().expect("peer id")
        )
    }

    pub fn status(&self) -> serde_json::Value {
        get_json(&self.api, "/v1/status").expect("status")
    }

    pub fn blob_info(&self, id: &str) -> Option<serde_json::Value> {
        get_json(&self.api, &format!("/v1/blobs/{id}/info"))
    }

    pub fn has_complete(&self, id: &str) -> bool {
        self.blob_info(id).is_some_and(|i| i["complete"] == true)
    }

    /// SIGKILL, no chance to clean up.
    /// Waits (at most `limit`) for the node to exit by itself; its exit status.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(status) = self.child.as_mut()?.try_wait().ok().flatten() {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts again on the same data dir, with `extra_override` replacing the extra
    /// arguments when given.
    pub fn restart_without(&mut self, drop_args: &[&str]) {
        self.kill9();
        let mut args = Vec::new();
        let mut skip = false;
        for a in self.args.drain(..) {
            if skip {
                skip = false;
                continue;
            }
            if drop_args.contains(&a.as_str()) {
                skip = true;
                continue;
            }
            args.push(a);
        }
        self.args = args;
        self.spawn();
    }

    /// Restarts on the same data dir with `extra` arguments added.
    pub fn restart_with(&mut self, extra: &[&str]) {
        self.kill9();
        self.args.extend(extra.iter().map(|s| s.to_string()));
        self.spawn();
    }

    /// The node's log so far (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("node.log")).unwrap_or_default()
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            if let Ok(dir) = std::env::var("NEXUS_TEST_LOGS") {
                let name = self.api.replace([':', '/', '.'], "_");
                let _ = std::fs::copy(self.dir.join("node.log"), format!("{dir}/{name}.log"));
            }
        }
    }
}

/// Writes `data` to `dir/name` and returns the path as a string.
pub fn write_file(dir: &Path, name: &str, data: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, data).expect("write");
    path.display().to_string()
}

/// Runs `nexus get ID` on `api` into a file in `dir` and returns the bytes it wrote.
pub fn get_bytes(api: &str, id: &str, dir: &Path) -> Vec<u8> {
    let copy = dir.join(format!("copy-{id}"));
    cli_ok(api, &["get", id, "-o", copy.to_str().expect("utf8")]);
    std::fs::read(&copy).expect("read the copy")
}

/// Runs `nexus put` on `api` and returns the blob id.
pub fn put(api: &str, file: &str) -> String {
    put_with(api, file, &[])
}

/// Runs `nexus put FILE --json EXTRA...` on `api` and returns the blob id.
pub fn put_with(api: &str, file: &str, extra: &[&str]) -> String {
    let mut args = vec!["put", file, "--json"];
    args.extend_from_slice(extra);
    let out = cli_ok(api, &args);
    let receipt: serde_json::Value = serde_json::from_str(&out).expect("receipt json");
    receipt["blob_id"].as_str().expect("blob id").to_string()
}

/// Ledger parameters of test networks: `epoch_blocks` decides how soon challenges come.
pub fn params(epoch_blocks: u64) -> serde_json::Value {
    serde_json::json!({
        "epoch_blocks": epoch_blocks, "unbonding_epochs": 2, "min_stake": 1000,
        "bytes_per_stake": 1u64 << 30, "price_per_mib_epoch": 1,
        "data_shards": 4, "parity_shards": 2, "challenges_per_shard": 2,
        "response_window": (epoch_blocks * 3 / 4).max(10), "failure_threshold": 1,
        "slash_bps": 1000
    })
}

/// A node's keys, as `nexus keys` prints them (creating them in `dir` if missing).
pub fn keys_of(dir: &Path) -> serde_json::Value {
    let out = Command::new(NEXUS)
        .args(["keys", "--data-dir"])
        .arg(dir)
        .output()
        .expect("nexus keys");
    assert!(out.status.success(), "nexus keys failed");
    serde_json::from_slice(&out.stdout).expect("json")
}

/// Writes a chain genesis whose committee is the first `validators` nodes of `dirs`
/// (stake 1 each), funding every node's account, and returns its path for
/// `--genesis-config`. `spec` overrides fields of the chain spec (e.g. custody).
pub fn chain_genesis(
    root: &Path,
    dirs: &[PathBuf],
    validators: usize,
    params: serde_json::Value,
    spec: serde_json::Value,
) -> String {
    let keys: Vec<serde_json::Value> = dirs.iter().map(|d| keys_of(d)).collect();
    let balances: Vec<serde_json::Value> = keys
        .iter()
        .map(|k| serde_json::json!([k["account"], 1_000_000_000_000u64]))
        .collect();
    let committee: Vec<serde_json::Value> = keys
        .iter()
        .take(validators)
        .map(|k| {
            serde_json::json!({
                "key": k["validator"],
                "proof_of_possession": k["validator_proof_of_possession"],
                "stake": 1,
                "address": "",
            })
        })
        .collect();
    let mut chain = serde_json::json!({
        "chain_id": "nexus-test",
        "committee": { "epoch": 0, "validators": committee },
        "custody_groups": 32,
        "custodians_per_group": 2,
    });
    if let (Some(chain), Some(extra)) = (chain.as_object_mut(), spec.as_object()) {
        for (k, v) in extra {
            chain.insert(k.clone(), v.clone());
        }
    }
    let genesis = serde_json::json!({
        "spec": chain,
        "time_ms": 1_700_000_000_000u64,
        "ledger": { "params": params, "balances": balances },
    });
    let path = root.join("genesis.json");
    std::fs::write(&path, genesis.to_string()).expect("write genesis");
    path.display().to_string()
}

/// The genesis of a chain whose only validator (and funded account) is the node of `dir`
/// (epochs of 20 blocks), written under `root`; returns its path.
pub fn solo_genesis(root: &Path, dir: &Path) -> String {
    let dirs = [dir.to_path_buf()];
    chain_genesis(root, &dirs, 1, params(20), serde_json::json!({}))
}

/// Starts a single validator in `dirs[0]` whose genesis funds every node in `dirs`
/// (epochs of 20 blocks).
pub fn start_proposer(root: &Path, dirs: &[PathBuf], extra: &[&str]) -> TestNode {
    start_proposer_with(root, dirs, params(20), extra)
}

/// Like [`start_proposer`] with explicit ledger parameters.
pub fn start_proposer_with(
    root: &Path,
    dirs: &[PathBuf],
    params: serde_json::Value,
    extra: &[&str],
) -> TestNode {
    start_proposer_with_spec(root, dirs, params, serde_json::json!({}), extra)
}

/// Like [`start_proposer_with`], overriding fields of the chain spec.
pub fn start_proposer_with_spec(
    root: &Path,
    dirs: &[PathBuf],
    params: serde_json::Value,
    spec: serde_json::Value,
    extra: &[&str],
) -> TestNode {
    let genesis = chain_genesis(root, dirs, 1, params, spec);
    let mut args = vec!["--genesis-config", genesis.as_str()];
    args.extend_from_slice(extra);
    TestNode::start(&dirs[0], true, &[], &args)
}

/// A `nexus light` process; its report lines go to a file.
pub struct LightClient {
    child: Child,
    out: PathBuf,
}

impl LightClient {
    /// Starts a light client following the chain through `bootstrap`, reporting to `out`.
    pub fn start(out: PathBuf, bootstrap: &[String]) -> LightClient {
        let file = std::fs::File::create(&out).expect("light client output");
        let mut cmd = Command::new(NEXUS);
        cmd.args([
            "light",
            "--target-confidence",
            "0.9999",
            "--patience-ms",
            "10000",
        ]);
        for b in bootstrap {
            cmd.args(["--bootstrap", b]);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("output"))
            .stderr(file)
            .spawn()
            .expect("spawn light client");
        LightClient { child, out }
    }

    /// The report line per height printed so far.
    pub fn reports(&self) -> std::collections::BTreeMap<u64, String> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let rest = l.strip_prefix("height ")?;
                let (h, verdict) = rest.split_once(": ")?;
                Some((h.parse().ok()?, verdict.to_string()))
            })
            .collect()
    }
}

impl Drop for LightClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
