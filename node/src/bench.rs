//! `nexus bench`: measured figures, each beside its peer in the same run.

mod compute;
mod consensus;
mod erasure;
mod erasure_devnet;
mod replicated;
mod spam;

use anyhow::Result;

/// Which benchmark to run.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum BenchCommand {
    /// Finality: commit latency and blocks/s of real validator processes, idle and under
    /// load, and the das upload path, beside the floor this machine sets.
    Consensus(consensus::ConsensusArgs),
    /// Season 1: put/get vs `cp`, catch-up time and peak RSS on a 3-node devnet.
    Replicated(replicated::ReplicatedArgs),
    /// Season 2: erasure encode/decode of our path vs raw reed-solomon-simd.
    Erasure(erasure::ErasureArgs),
    /// Season 2: put --policy erasure vs replicated on a devnet of 6 providers.
    ErasureDevnet(erasure_devnet::ErasureDevnetArgs),
    /// Verifiable compute: our node-by-node proving beside OpenVM's SDK proving the same
    /// run; per-node time and memory; Universal Proof size and verify time.
    Compute(compute::ComputeArgs),
    /// Hardening: block rate and a paid transfer's latency during transaction floods
    /// (from an unfunded and a funded key) beside the same devnet idle.
    Spam(spam::SpamArgs),
}

/// Runs the chosen benchmark and prints a Markdown table.
pub(crate) async fn run(command: BenchCommand) -> Result<()> {
    match command {
        BenchCommand::Consensus(args) => consensus::run(args).await,
        BenchCommand::Replicated(args) => replicated::run(args).await,
        BenchCommand::Erasure(args) => erasure::run(args),
        BenchCommand::ErasureDevnet(args) => erasure_devnet::run(args).await,
        BenchCommand::Spam(args) => spam::run(args).await,
        BenchCommand::Compute(args) => compute::run(args),
    }
}
