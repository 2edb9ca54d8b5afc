//! `nexus devnet`: real `nexus node start` processes on loopback — a committee of
//! validators and some storage nodes, all built from one genesis file — and a light
//! client, data in a fresh directory; stopped cleanly (SIGTERM, then SIGKILL) on Ctrl-C.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use nexus_consensus::{ChainSpec, Committee, Epoch, Validator};
use nexus_storage::ledger::TxKind;
use nexus_storage::ChainGenesis;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use crate::cli::{funded_genesis, node_keys, send_transaction};
use nexus_api::client::NodeClient;
use nexus_api::types::{AccountView, Status};

/// Balance of every devnet node's account at genesis.
const DEVNET_FUNDS: u64 = 1_000_000_000_000;

/// Options of `nexus devnet`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct DevnetArgs {
    /// Validators (nodes 0 to V-1): they order and finalize blocks, and store data too.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub(crate) validators: u16,
    /// Storage nodes besides the validators.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(0..=64))]
    pub(crate) nodes: u16,
    /// Where the nodes keep their data (default: a fresh temporary directory).
    #[arg(long)]
    pub(crate) data_dir: Option<PathBuf>,
    /// Node i listens for peers on BASE+i and serves its API on BASE+100+i.
    #[arg(long, default_value_t = 7000)]
    pub(crate) base_port: u16,
    /// Disk quota of each node, e.g. `10GiB`.
    #[arg(long)]
    pub(crate) capacity: Option<String>,
    /// Least time between blocks, in milliseconds.
    #[arg(long, default_value_t = 500)]
    pub(crate) block_interval_ms: u64,
    /// Verifiable compute: the first storage node drives jobs and folds proofs (an
    /// orchestrator), the others prove segments (delegators). Each proof takes up to
    /// ~7 GB of RAM.
    #[arg(long)]
    pub(crate) compute: bool,
}

/// One running node of a devnet.
pub(crate) struct DevnetNode {
    pub(crate) child: Child,
    pub(crate) api: String,
    pub(crate) p2p: String,
    pub(crate) dir: PathBuf,
}

/// A running devnet.
pub(crate) struct Devnet {
    pub(crate) dir: PathBuf,
    pub(crate) nodes: Vec<DevnetNode>,
    args: DevnetArgs,
}

/// Providers the `erasure` policy needs (4 data + 2 parity shards, each on its own).
pub(crate) const ERASURE_PROVIDERS: u16 = 6;

impl Devnet {
    /// Makes `put --policy erasure` work: node 0 registers as a staked orchestrator and
    /// nodes 1 to 6 join it as providers of `capacity` bytes each.
    pub(crate) async fn offer_erasure(&self, capacity: u64) -> Result<()> {
        let clients: Vec<NodeClient> = self
            .nodes
            .iter()
            .map(|n| NodeClient::new(&n.api))
            .collect::<Result<_>>()?;
        let orchestrator: Status = clients[0].get_json("/v1/status").await?;
        send_transaction(
            &clients[0],
            TxKind::RegisterOrchestrator {
                stake: 1_000_000,
                commission_bps: 1_000,
            },
        )
        .await?;
        for c in &clients[1..=usize::from(ERASURE_PROVIDERS)] {
            join_orchestrator(c, orchestrator.account, capacity).await?;
        }
        // Node 0 takes puts by default: wait until its own ledger shows every provider,
        // so that a `put --policy erasure` copied from the banner finds them.
        let path = format!("/v1/accounts/{}", orchestrator.account);
        loop {
            let view: nexus_api::types::AccountView = clients[0].get_json(&path).await?;
            let joined = view.orchestrator.map_or(0, |o| o.providers.len());
            if joined >= usize::from(ERASURE_PROVIDERS) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Writes the genesis, starts the nodes and waits until each serves its API and holds
    /// the genesis block.
    pub(crate) async fn launch(args: DevnetArgs) -> Result<Devnet> {
        let dir = match &args.data_dir {
            Some(d) => d.clone(),
            None => tempfile::Builder::new()
                .prefix("nexus-devnet-")
                .tempdir()
                .context("cannot create a temporary directory")?
                .keep(),
        };
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let total = args.validators + args.nodes;
        if args.base_port.checked_add(100 + total).is_none() {
            bail!(
                "--base-port {} leaves no room for {total} nodes",
                args.base_port
            );
        }
        let devnet = Devnet {
            dir,
            nodes: Vec::new(),
            args,
        };
        let genesis = devnet.genesis()?;
        std::fs::write(
            devnet.dir.join("genesis.json"),
            serde_json::to_string_pretty(&genesis)?,
        )?;
        let mut devnet = devnet;
        for i in 0..total {
            let node = devnet.spawn(i).await?;
            devnet.nodes.push(node);
        }
        for (i, node) in devnet.nodes.iter().enumerate() {
            wait_ready(&node.api, Duration::from_secs(60))
                .await
                .with_context(|| {
                    format!(
                        "node {i} did not come up; see {}",
                        node.dir.join("node.log").display()
                    )
                })?;
        }
        Ok(devnet)
    }

    /// The APIs of the nodes that prove with `--compute`: the storage nodes, the first of
    /// them orchestrating (empty without `--compute`).
    fn compute_provers(&self) -> Vec<String> {
        if !self.args.compute {
            return Vec::new();
        }
        let storage = usize::from(self.args.validators);
        self.nodes
            .iter()
            .skip(storage)
            .map(|n| n.api.clone())
            .collect()
    }

    fn node_dir(&self, i: u16) -> PathBuf {
        self.dir.join(format!("node-{i}"))
    }

    fn p2p_addr(&self, i: u16) -> Result<String> {
        let peer = node_keys(&self.node_dir(i))?.peer_id;
        Ok(format!(
            "/ip4/127.0.0.1/tcp/{}/p2p/{peer}",
            self.args.base_port + i
        ))
    }

    /// The chain every node builds: the validators' keys (equal stakes) and every node's
    /// account funded (so that any of them can pay for uploads).
    fn genesis(&self) -> Result<ChainGenesis> {
        let total = self.args.validators + self.args.nodes;
        let mut accounts = Vec::new();
        let mut validators = Vec::new();
        for i in 0..total {
            let keys = node_keys(&self.node_dir(i))?;
            accounts.push(keys.account);
            if i < self.args.validators {
                validators.push(Validator {
                    key: keys.validator,
                    proof_of_possession: keys.validator_proof_of_possession,
                    stake: 1,
                    address: self.p2p_addr(i)?,
                });
            }
        }
        Ok(ChainGenesis {
            spec: ChainSpec::new("nexus-devnet", Committee::new(Epoch(0), validators)?),
            time_ms: crate::units::now_ms(),
            ledger: funded_genesis(&accounts, DEVNET_FUNDS),
        })
    }

    /// Starts node `i` (or restarts it on its existing data dir).
    pub(crate) async fn spawn(&self, i: u16) -> Result<DevnetNode> {
        self.spawn_with(i, &[]).await
    }

    /// Starts node `i` with `extra` arguments.
    pub(crate) async fn spawn_with(&self, i: u16, extra: &[&str]) -> Result<DevnetNode> {
        let base = self.args.base_port;
        let dir = self.node_dir(i);
        let p2p = self.p2p_addr(i)?;
        let api = format!("127.0.0.1:{}", base + 100 + i);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("node.log"))?;
        let exe = std::env::current_exe().context("cannot find the nexus executable")?;
        let mut cmd = Command::new(exe);
        cmd.arg("node")
            .arg("start")
            .arg("--data-dir")
            .arg(&dir)
            .arg("--listen")
            .arg(format!("/ip4/127.0.0.1/tcp/{}", base + i))
            .arg("--api")
            .arg(&api)
            .arg("--genesis-config")
            .arg(self.dir.join("genesis.json"))
            .arg("--block-interval-ms")
            .arg(self.args.block_interval_ms.to_string());
        if i < self.args.validators {
            cmd.arg("--validator");
        }
        for v in (0..self.args.validators).filter(|v| *v != i) {
            cmd.arg("--bootstrap").arg(self.p2p_addr(v)?);
        }
        if let Some(c) = &self.args.capacity {
            cmd.arg("--capacity").arg(c);
        }
        if self.args.compute && i >= self.args.validators {
            cmd.arg(if i == self.args.validators {
                "--orchestrator"
            } else {
                "--delegator"
            });
        }
        cmd.args(extra);
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("cannot start a node process")?;
        Ok(DevnetNode {
            child,
            api: format!("http://{api}"),
            p2p,
            dir,
        })
    }

    /// Stops every node: SIGTERM, then SIGKILL after 10 s.
    pub(crate) async fn stop(mut self) -> Result<()> {
        for node in &self.nodes {
            if let Some(pid) = node.child.id() {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
            }
        }
        for node in &mut self.nodes {
            if tokio::time::timeout(Duration::from_secs(10), node.child.wait())
                .await
                .is_err()
            {
                let _ = node.child.kill().await;
            }
        }
        Ok(())
    }
}

/// Polls a node's status until it has a chain.
pub(crate) async fn wait_ready(api: &str, limit: Duration) -> Result<Status> {
    let client = NodeClient::new(api)?;
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match client.get_json::<Status>("/v1/status").await {
            Ok(s) if s.height.is_some() => return Ok(s),
            _ if tokio::time::Instant::now() >= deadline => {
                bail!("{api} not ready after {limit:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Starts a light client following the devnet through the validators; its report lines
/// go to `DIR/light.log`.
fn spawn_light_client(devnet: &Devnet, exe: &Path) -> Result<Child> {
    let log = std::fs::File::create(devnet.dir.join("light.log"))?;
    let mut cmd = Command::new(exe);
    cmd.arg("light");
    for n in devnet.nodes.iter().take(2) {
        cmd.arg("--bootstrap").arg(&n.p2p);
    }
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .context("cannot start the light client")
}

fn print_banner(devnet: &Devnet, exe: &Path) {
    let exe = exe.display();
    out!(
        "Nexus devnet: {} validators and {} storage nodes on 127.0.0.1, data in {}\n",
        devnet.args.validators,
        devnet.args.nodes,
        devnet.dir.display()
    );
    out!("  node  role       API                     peer address");
    for (i, n) in devnet.nodes.iter().enumerate() {
        let role = if i < usize::from(devnet.args.validators) {
            "validator"
        } else {
            "storage  "
        };
        out!("  {i:<4}  {role}  {:<22}  {}", n.api, n.p2p);
    }
    out!(
        "  and a light client checking finality and sampling every block: tail -f {}/light.log",
        devnet.dir.display()
    );
    let last = devnet.nodes.last().map_or("", |n| n.api.as_str());
    // Commands reach node 0 by default only when it listens where the CLI looks first.
    let first = devnet.nodes.first().map_or("", |n| n.api.as_str());
    let cmd = if first == nexus_api::client::DEFAULT_NODE {
        exe.to_string()
    } else {
        format!("NEXUS_NODE={first} {exe}")
    };
    out!("\nTry it from another terminal:");
    out!("  {cmd} put FILE                  # store a file (via node 0); answers once final");
    out!("  NEXUS_NODE={last} {exe} get BLOBID -o copy   # fetch it from another node");
    out!("  {cmd} verify BLOBID             # inclusion + finality proof vs the committee");
    out!("  {cmd} status                    # peers, finalized height, blobs, disk");
    if devnet.nodes.len() > usize::from(ERASURE_PROVIDERS) {
        out!("  {cmd} put FILE --policy erasure # 6 shards over nodes 1-6, orchestrated by node 0");
        out!("  {cmd} orchestrator status       # node 0's stake, providers, challenges");
    }
    out!("  {cmd} put FILE --policy das     # encoded, sampled by the validators, kept as cells");
    out!("  {cmd} validator status          # round, leader, last QC, votes");
    if devnet.args.compute && devnet.args.nodes >= 2 {
        let v = devnet.args.validators;
        let delegators = match devnet.args.nodes {
            2 => format!("node {}", v + 1),
            n => format!("nodes {}-{}", v + 1, v + n - 1),
        };
        out!(
            "\nVerifiable compute: node {v} orchestrates, {delegators} prove segments (each opens"
        );
        out!("the zkVM keys before it offers; the devnet says when all offers are final):");
        out!("  {exe} compute examples ex                   # example guests and inputs");
        out!("  {cmd} compute submit ex/mlp.elf --input ex/mlp-input.bin    # int8 MLP inference");
        out!("  {cmd} compute submit ex/loop.elf --input ex/loop-input.bin  # ~4 segments");
        out!("  {cmd} compute status JOB                # the proof tree, as its driver sees it");
        out!("  {cmd} compute verify JOB                # check the Universal Proof here");
    }
    out!(
        "\nLogs: {}/node-N/node.log. Press Ctrl-C to stop every node.\n",
        devnet.dir.display()
    );
}

/// Prints the finalized height (and round) whenever it moved, every few seconds.
async fn report_progress(api: String) {
    let Ok(client) = NodeClient::new(&api) else {
        return;
    };
    let mut last = None;
    loop {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let Ok(status) = client.get_json::<Status>("/v1/status").await else {
            continue;
        };
        if status.height != last {
            last = status.height;
            let finalized = last.map_or("-".into(), |h| h.to_string());
            let latest = status.latest_height.map_or("-".into(), |h| h.to_string());
            out!("finalized height {finalized} (latest {latest})");
        }
    }
}

/// Prints once the compute offer of every node behind `provers` is in the ledger (they
/// open the zkVM keys first), so that whoever waits knows a job now finds its provers.
async fn report_compute_ready(provers: Vec<String>) {
    let Ok(clients) = provers
        .iter()
        .map(|api| NodeClient::new(api))
        .collect::<Result<Vec<_>>>()
    else {
        return;
    };
    loop {
        let mut offered = 0;
        for client in &clients {
            let Ok(status) = client.get_json::<Status>("/v1/status").await else {
                continue;
            };
            let path = format!("/v1/accounts/{}", status.account);
            if let Ok(view) = client.get_json::<AccountView>(&path).await {
                offered += usize::from(view.compute.is_some());
            }
        }
        if offered == clients.len() {
            out!("verifiable compute ready: the offers of all {offered} provers are final");
            return;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Runs `nexus devnet` until Ctrl-C (or SIGTERM), or until a node dies. The signals are
/// heeded from before the first node starts: stopped while it launches, the devnet drops
/// (and so kills) every node it started.
pub(crate) async fn run(args: DevnetArgs) -> Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let stopped = || async {
        out!("stopped while starting; the nodes started so far are stopped");
        Ok(())
    };
    let mut devnet = tokio::select! {
        launched = Devnet::launch(args) => launched?,
        _ = tokio::signal::ctrl_c() => return stopped().await,
        _ = term.recv() => return stopped().await,
    };
    if devnet.nodes.len() > usize::from(ERASURE_PROVIDERS) {
        out!("registering node 0 as an orchestrator and nodes 1 to {ERASURE_PROVIDERS} as its providers");
        let offered = tokio::select! {
            offered = devnet.offer_erasure(1 << 30) => Some(offered),
            _ = tokio::signal::ctrl_c() => None,
            _ = term.recv() => None,
        };
        match offered {
            Some(result) => result?,
            None => {
                devnet.stop().await?;
                return stopped().await;
            }
        }
    }
    let exe = std::env::current_exe()?;
    let _light = spawn_light_client(&devnet, &exe)?;
    print_banner(&devnet, &exe);
    let progress = devnet.nodes.first().map(|n| n.api.clone());
    let reporter = progress.map(|api| tokio::spawn(report_progress(api)));
    let provers = devnet.compute_provers();
    let compute_reporter =
        (provers.len() >= 2).then(|| tokio::spawn(report_compute_ready(provers)));
    let died = {
        let waits = devnet
            .nodes
            .iter_mut()
            .enumerate()
            .map(|(i, n)| Box::pin(async move { (i, n.child.wait().await) }));
        tokio::select! {
            _ = tokio::signal::ctrl_c() => None,
            _ = term.recv() => None,
            ((i, status), _, _) = futures::future::select_all(waits) => Some((i, status)),
        }
    };
    for r in reporter.into_iter().chain(compute_reporter) {
        r.abort();
    }
    let dir = devnet.dir.clone();
    let count = devnet.nodes.len();
    devnet.stop().await?;
    match died {
        None => {
            out!("\nstopped {count} nodes; data kept in {}", dir.display());
            Ok(())
        }
        Some((i, status)) => Err(anyhow!(
            "node {i} exited unexpectedly ({}); see {}/node-{i}/node.log",
            status.map_or_else(|e| e.to_string(), |s| s.to_string()),
            dir.display()
        )),
    }
}

/// Has the node behind `client` join `orchestrator` with `capacity`, once it has seen the
/// orchestrator's registration (its own ledger must know it to accept the transaction).
pub(crate) async fn join_orchestrator(
    client: &NodeClient,
    orchestrator: nexus_storage::PublicKey,
    capacity: u64,
) -> Result<()> {
    let path = format!("/v1/accounts/{orchestrator}");
    while client
        .get_json::<nexus_api::types::AccountView>(&path)
        .await?
        .orchestrator
        .is_none()
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let me: Status = client.get_json("/v1/status").await?;
    let node = me.peer_id.into_bytes();
    send_transaction(
        client,
        TxKind::JoinOrchestrator {
            orchestrator,
            capacity,
            node,
        },
    )
    .await?;
    Ok(())
}
