//! `nexus devnet`: N real `nexus node start` processes on loopback, node 0 the proposer,
//! data in a fresh directory; stopped cleanly (SIGTERM, then SIGKILL) on Ctrl-C.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use crate::api::Status;
use crate::cli::{funded_genesis, node_keys};
use crate::client::NodeClient;

/// Balance of every devnet node's account at genesis.
const DEVNET_FUNDS: u64 = 1_000_000_000_000;

/// Options of `nexus devnet`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct DevnetArgs {
    /// Number of storage nodes (node 0 also proposes blocks).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=64))]
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

impl Devnet {
    /// Starts the nodes and waits until each serves its API and holds the genesis block.
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
        if args.base_port.checked_add(100 + args.nodes).is_none() {
            bail!(
                "--base-port {} leaves no room for {} nodes",
                args.base_port,
                args.nodes
            );
        }
        // Every node's account is funded at genesis, so that any of them can pay for uploads.
        let accounts = (0..args.nodes)
            .map(|i| node_keys(&dir.join(format!("node-{i}"))).map(|k| k.account))
            .collect::<Result<Vec<_>>>()?;
        let genesis = funded_genesis(&accounts, DEVNET_FUNDS);
        std::fs::write(
            dir.join("genesis.json"),
            serde_json::to_string_pretty(&genesis)?,
        )?;
        let mut devnet = Devnet {
            dir,
            nodes: Vec::new(),
            args,
        };
        for i in 0..devnet.args.nodes {
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

    /// Starts node `i` (or restarts it on its existing data dir).
    pub(crate) async fn spawn(&self, i: u16) -> Result<DevnetNode> {
        self.spawn_with(i, &[]).await
    }

    /// Starts node `i` with `extra` arguments.
    pub(crate) async fn spawn_with(&self, i: u16, extra: &[&str]) -> Result<DevnetNode> {
        let base = self.args.base_port;
        let dir = self.dir.join(format!("node-{i}"));
        let peer = node_keys(&dir)?.peer_id;
        let p2p = format!("/ip4/127.0.0.1/tcp/{}/p2p/{peer}", base + i);
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
            .arg(&api);
        if i == 0 {
            cmd.arg("--proposer")
                .arg("--genesis-config")
                .arg(self.dir.join("genesis.json"));
        } else {
            let proposer = node_keys(&self.dir.join("node-0"))?.peer_id;
            cmd.arg("--bootstrap")
                .arg(format!("/ip4/127.0.0.1/tcp/{base}/p2p/{proposer}"));
        }
        if let Some(c) = &self.args.capacity {
            cmd.arg("--capacity").arg(c);
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

/// Starts a light client following the devnet through node 0; its report lines go to
/// `DIR/light.log`.
fn spawn_light_client(devnet: &Devnet, exe: &Path) -> Result<Child> {
    let log = std::fs::File::create(devnet.dir.join("light.log"))?;
    let node0 = devnet.nodes.first().context("the devnet has no nodes")?;
    Command::new(exe)
        .args(["light", "--bootstrap", &node0.p2p])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .context("cannot start the light client")
}

fn print_banner(devnet: &Devnet, exe: &Path) {
    let exe = exe.display();
    println!(
        "Nexus devnet: {} storage nodes on 127.0.0.1, data in {}\n",
        devnet.nodes.len(),
        devnet.dir.display()
    );
    println!("  node  role      API                     peer address");
    for (i, n) in devnet.nodes.iter().enumerate() {
        let role = if i == 0 { "proposer" } else { "storage " };
        println!("  {i:<4}  {role}  {:<22}  {}", n.api, n.p2p);
    }
    println!(
        "  and a light client sampling every block: tail -f {}/light.log",
        devnet.dir.display()
    );
    let last = devnet.nodes.last().map_or("", |n| n.api.as_str());
    println!("\nTry it from another terminal:");
    println!(
        "  {exe} put FILE                      # store a file (via node 0), prints its blob id"
    );
    println!("  NEXUS_NODE={last} {exe} get BLOBID -o copy   # fetch it from another node");
    println!("  {exe} verify BLOBID                 # check its inclusion proof against the chain");
    println!("  {exe} status                        # peers, height, blobs, disk");
    println!(
        "\nLogs: {}/node-N/node.log. Press Ctrl-C to stop every node.",
        devnet.dir.display()
    );
}

/// Runs `nexus devnet` until Ctrl-C (or SIGTERM), or until a node dies.
pub(crate) async fn run(args: DevnetArgs) -> Result<()> {
    let mut devnet = Devnet::launch(args).await?;
    let exe = std::env::current_exe()?;
    let _light = spawn_light_client(&devnet, &exe)?;
    print_banner(&devnet, &exe);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
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
    let dir = devnet.dir.clone();
    let count = devnet.nodes.len();
    devnet.stop().await?;
    match died {
        None => {
            println!("\nstopped {count} nodes; data kept in {}", dir.display());
            Ok(())
        }
        Some((i, status)) => Err(anyhow!(
            "node {i} exited unexpectedly ({}); see {}/node-{i}/node.log",
            status.map_or_else(|e| e.to_string(), |s| s.to_string()),
            dir.display()
        )),
    }
}
