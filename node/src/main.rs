//! `nexus`: the Nexus storage daemon, its command-line client and a local devnet.

/// `println!` for command output: a reader that stops early (`nexus status | head -1`)
/// ends the process quietly, as for any Unix tool, instead of a panic on the closed pipe.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($arg)*) {
            $crate::stdout_failed(e);
        }
    }};
}

/// Set for commands that run until stopped (a node, a devnet, a light client, a bench):
/// they must stop their children and flush their stores, so a failed write to standard
/// output is dropped rather than ending the process.
static LONG_RUNNING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// After standard output failed: a one-shot command ends, quietly if its reader went
/// away; a long-running one carries on without that line.
fn stdout_failed(e: std::io::Error) {
    if LONG_RUNNING.load(std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    if e.kind() != std::io::ErrorKind::BrokenPipe {
        eprintln!("error: cannot write the output: {e}");
        std::process::exit(1);
    }
    std::process::exit(0)
}

mod bench;
mod cli;
mod config;
mod daemon;
mod devnet;
mod units;

use std::io::IsTerminal;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// Nexus: a storage-centric data-availability network.
#[derive(Debug, Parser)]
#[command(name = "nexus", version, about)]
struct Cli {
    /// HTTP API of the node to talk to.
    #[arg(
        long,
        global = true,
        env = "NEXUS_NODE",
        default_value = nexus_api::client::DEFAULT_NODE
    )]
    node: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a storage node.
    Node {
        #[command(subcommand)]
        command: NodeCommand,
    },
    /// Store a file; answers once its registration is final, with a receipt.
    Put(cli::PutArgs),
    /// Fetch a blob into a file, verified against its id.
    Get(cli::GetArgs),
    /// Show a node's peers, finalized and latest height, blobs and disk use.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Draw a block's extended data as a grid: cells held, sampled from peers, missing.
    Inspect(cli::InspectArgs),
    /// Check that a blob is registered in a final block (inclusion and finality proofs).
    Verify(cli::VerifyArgs),
    /// A validator's view of consensus.
    Validator {
        #[command(subcommand)]
        command: cli::ValidatorCommand,
    },
    /// Account balance and transfers (signed by the node's account key).
    Account {
        #[command(subcommand)]
        command: cli::AccountCommand,
    },
    /// Register and manage a staked orchestrator.
    Orchestrator {
        #[command(subcommand)]
        command: cli::OrchestratorCommand,
    },
    /// Offer this node's disk to an orchestrator.
    Provider {
        #[command(subcommand)]
        command: cli::ProviderCommand,
    },
    /// Verifiable compute: submit jobs and follow them, or run, prove and verify guest
    /// programs on this machine.
    Compute {
        #[command(subcommand)]
        command: cli::ComputeCommand,
    },
    /// Show a node's peer id and account key (creating them in DIR if missing).
    Keys(cli::KeysArgs),
    /// Run a light client: follow the chain and sample every block's data (as `nexus-light`).
    Light(nexus_light_client::LightArgs),
    /// Run a local network of validators, storage nodes and a light client until Ctrl-C.
    Devnet(devnet::DevnetArgs),
    /// Measure figures, each beside its peer in the same run.
    Bench {
        #[command(subcommand)]
        command: bench::BenchCommand,
    },
}

#[derive(Debug, Subcommand)]
enum NodeCommand {
    /// Start the daemon.
    Start(Box<daemon::StartArgs>),
    /// Set aside a store that no longer opens and start an empty one, which the node
    /// refills from peers (run with the node stopped).
    Repair(daemon::repair::RepairArgs),
}

fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // A log that cannot be written (its disk is full) is dropped: logging never takes a
    // node down (the subscriber would otherwise report the failure with a panicking
    // `eprintln!`).
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .log_internal_errors(false)
        .init();
}

async fn run(cli: Cli) -> Result<()> {
    let client = || nexus_api::client::NodeClient::new(&cli.node);
    match cli.command {
        Command::Node {
            command: NodeCommand::Start(args),
        } => daemon::run(*args).await,
        Command::Node {
            command: NodeCommand::Repair(args),
        } => daemon::repair::run(args),
        Command::Put(args) => cli::put(&client()?, args).await,
        Command::Get(args) => cli::get(&client()?, args).await,
        Command::Status { json } => cli::status(&client()?, json).await,
        Command::Verify(args) => cli::verify(&client()?, args).await,
        Command::Validator { command } => cli::validator(&client()?, command).await,
        Command::Inspect(args) => cli::inspect(&client()?, args).await,
        Command::Keys(args) => cli::keys(args),
        Command::Compute { command } => cli::compute(&cli.node, command).await,
        Command::Account { command } => cli::account(&client()?, command).await,
        Command::Orchestrator { command } => cli::orchestrator(&client()?, command).await,
        Command::Provider { command } => cli::provider(&client()?, command).await,
        Command::Devnet(args) => devnet::run(args).await,
        Command::Light(args) => nexus_light_client::run(args, |report| out!("{report}")).await,
        Command::Bench { command } => bench::run(command).await,
    }
}

fn main() {
    let args = match config::expand(std::env::args_os().collect()) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    };
    let cli = Cli::parse_from(args);
    let long_running = matches!(
        cli.command,
        Command::Node {
            command: NodeCommand::Start(_)
        } | Command::Devnet(_)
            | Command::Light(_)
            | Command::Bench { .. }
    );
    LONG_RUNNING.store(long_running, std::sync::atomic::Ordering::Relaxed);
    let verbose = matches!(
        cli.command,
        Command::Node {
            command: NodeCommand::Start(_)
        }
    );
    // Gossipsub warns of every message a slow peer's full queue drops, each dumped whole:
    // nothing an operator acts on.
    init_logging(if verbose {
        "info,libp2p_gossipsub=error"
    } else {
        "warn,libp2p_gossipsub=error"
    });
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(run(cli)) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
