//! `nexus-light`: a light client that prints, per block, whether its data is available.

use clap::Parser;
use nexus_light_client::{run, LightArgs};

#[derive(Parser)]
#[command(
    name = "nexus-light",
    version,
    about = "Follow a Nexus chain and sample every block's data"
)]
struct Cli {
    #[command(flatten)]
    args: LightArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    run(cli.args, |report| println!("{report}")).await
}
