//! `nexus bench compute`: our node-by-node proving (each tree node proven and checked as
//! the network does it) beside OpenVM's own SDK proving the same run in one process, in
//! the same run; per-node time and peak memory; Universal Proof size and verify time per
//! segment count; and the int8 MLP guest's cycles per inference.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use nexus_compute::examples::{loop_input, Example, MlpModel};
use nexus_compute::zkvm::{prove_with_sdk, TreeEvent, Zkvm};
use nexus_compute::{tree_latency, Machines, NodeRef, ProofTree, TreeShape};

use crate::cli::{counted, default_key_dir, describe_tree};
use crate::units::ByteSize;

/// Options of `nexus bench compute`.
#[derive(Debug, clap::Args)]
pub(crate) struct ComputeArgs {
    /// Segment counts of the loop jobs proven (each by us and by OpenVM's SDK).
    #[arg(long, value_delimiter = ',', default_value = "1,4")]
    segments: Vec<u32>,
    /// Verifications timed per proof (the median is kept).
    #[arg(long, default_value_t = 20)]
    verify_runs: usize,
    /// Only our proving (skip OpenVM's SDK).
    #[arg(long)]
    no_baseline: bool,
    /// The zkVM's key cache.
    #[arg(long, env = "NEXUS_ZKVM_KEYS")]
    keys: Option<PathBuf>,
}

/// Loop iterations per full segment of 2^19 rows (the shift chip fills first).
const ITERATIONS_PER_SEGMENT: u32 = 129_000;

/// Peak resident memory of this process since the last [`reset_peak_memory`], in bytes.
fn peak_memory() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

/// Starts a new peak-memory measurement (Linux: `/proc/self/clear_refs`).
fn reset_peak_memory() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times.get(times.len() / 2).copied().unwrap_or_default()
}

/// Runs `nexus bench compute`.
pub(crate) fn run(args: ComputeArgs) -> Result<()> {
    let keys = args.keys.clone().unwrap_or_else(default_key_dir);
    let started = Instant::now();
    let zkvm = Zkvm::open(&keys)?;
    out!(
        "zkVM keys ready in {:.1} s ({}; generated the first time, read after)",
        started.elapsed().as_secs_f64(),
        keys.display()
    );
    let elf = Example::Loop.elf()?;
    let program = zkvm.load(elf)?;
    let mut rows = Vec::new();
    let mut nodes = Vec::new();
    let mut latencies = Vec::new();
    for &target in &args.segments {
        let iterations =
            ITERATIONS_PER_SEGMENT * target.saturating_sub(1) + ITERATIONS_PER_SEGMENT / 2;
        let input = loop_input(iterations, 7);
        let run = zkvm.run(
            &program,
            &input,
            nexus_compute::binding::NO_BENEFICIARY,
            u64::MAX >> 1,
        )?;
        if run.segments.len() != target as usize {
            bail!(
                "{iterations} iterations take {} segments, not {target}",
                run.segments.len()
            );
        }
        let tree = ProofTree::plan(target, TreeShape::WIDEST)?;
        out!("\n{} cycles: {}", run.cycles, describe_tree(&tree));
        let started = Instant::now();
        let mut segment_time = Duration::ZERO;
        let mut node_times = HashMap::new();
        let proof = zkvm.prove_tree(
            &program,
            &input,
            &run,
            TreeShape::WIDEST,
            |event| match event {
                TreeEvent::Starting(_) => reset_peak_memory(),
                TreeEvent::Proven(done) => {
                    let kind = format!("{:?}", tree.level_kind(done.node.level));
                    if done.node.level == 0 {
                        segment_time += done.took;
                    }
                    node_times.insert(done.node, done.took);
                    let line = format!(
                        "| {target} | {kind} #{} | {:.1} s | {} | {} |",
                        done.node.index,
                        done.took.as_secs_f64(),
                        ByteSize(peak_memory()),
                        ByteSize(done.bytes as u64)
                    );
                    out!("{line}");
                    nodes.push(line);
                }
                TreeEvent::Sealed { wraps, took } => {
                    let line = format!(
                        "| {target} | seal ({}) | {:.1} s | | |",
                        counted(*wraps as usize, "wrap"),
                        took.as_secs_f64(),
                    );
                    out!("{line}");
                    nodes.push(line);
                }
            },
        )?;
        let ours = started.elapsed();
        latencies.push(latency_row(&tree, &node_times, ours));
        let bytes = proof.to_bytes();
        let verifier = zkvm.verifier();
        let verify = median(
            (0..args.verify_runs.max(1))
                .map(|_| {
                    let t = Instant::now();
                    let decoded = nexus_compute::zkvm::UniversalProof::from_bytes(&bytes)?;
                    verifier.verify(&decoded, program.commit(), run.public_value)?;
                    Ok(t.elapsed())
                })
                .collect::<Result<Vec<_>>>()?,
        );
        let (sdk_prove, sdk_bytes, sdk_verify) = if args.no_baseline {
            ("-".to_string(), "-".to_string(), "-".to_string())
        } else {
            let sdk = prove_with_sdk(elf, &input)?;
            (
                format!(
                    "{:.1} s ({:.2}×)",
                    sdk.prove.as_secs_f64(),
                    sdk.prove.as_secs_f64() / ours.as_secs_f64()
                ),
                sdk.proof_bytes.to_string(),
                format!("{:.1} ms", sdk.verify.as_secs_f64() * 1000.0),
            )
        };
        rows.push(format!(
            "| {target} | {} | {:.1} s | {:.0} | {:.0} | {sdk_prove} | {} B / {sdk_bytes} B | {:.1} ms / {sdk_verify} |",
            run.cycles,
            ours.as_secs_f64(),
            run.cycles as f64 / segment_time.as_secs_f64(),
            run.cycles as f64 / ours.as_secs_f64(),
            bytes.len(),
            verify.as_secs_f64() * 1000.0,
        ));
    }
    out!("\n| segments | cycles | ours: job | ours: segment proving (cycles/s) | ours: whole job (cycles/s) | OpenVM SDK: job (its time / ours) | Universal Proof (ours / SDK) | verify (ours / SDK) |");
    out!("|---|---|---|---|---|---|---|---|");
    rows.iter().for_each(|r| out!("{r}"));
    out!("\n| segments | node | time | peak RSS | proof |");
    out!("|---|---|---|---|---|");
    nodes.iter().for_each(|r| out!("{r}"));
    out!(
        "\nJob latency on more machines, from the node times above (greedy: a node starts once \
         its children are proven and a machine is free; sealing and checks after the root as \
         measured): k delegators with 1 orchestrator / with k orchestrators"
    );
    let header: String = DELEGATORS.iter().map(|k| format!(" k = {k} |")).collect();
    out!("\n| segments |{header}");
    out!("|---|{}", "---|".repeat(DELEGATORS.len()));
    latencies.iter().for_each(|r| out!("{r}"));
    mlp(&zkvm)
}

/// Delegator counts of the latency table.
const DELEGATORS: [u32; 5] = [1, 2, 4, 8, 16];

/// One row of the latency table: the tree's nodes at their measured times on k machines,
/// plus what the whole job spent outside the nodes (sealing, checks).
fn latency_row(tree: &ProofTree, node_times: &HashMap<NodeRef, Duration>, job: Duration) -> String {
    let time = |n: NodeRef| node_times.get(&n).copied().unwrap_or_default();
    let nodes_alone: Duration = node_times.values().sum();
    let outside = job.saturating_sub(nodes_alone);
    let cells: String = DELEGATORS
        .iter()
        .map(|&k| {
            let secs = |orchestrators| {
                let machines = Machines {
                    delegators: k,
                    orchestrators,
                };
                (tree_latency(tree, machines, time) + outside).as_secs_f64()
            };
            format!(" {:.0} s / {:.0} s |", secs(1), secs(k))
        })
        .collect();
    format!("| {} |{cells}", tree.segments())
}

/// Cycles per inference of the int8 MLP guest (64 inputs, 32 hidden, 10 classes).
fn mlp(zkvm: &Zkvm) -> Result<()> {
    let program = zkvm.load(Example::Mlp.elf()?)?;
    let model = MlpModel::demo(64, 32, 10, 1);
    let cycles = |samples: u32| -> Result<u64> {
        let input = model.encode(&model.demo_samples(samples, 2));
        Ok(zkvm
            .run(
                &program,
                &input,
                nexus_compute::binding::NO_BENEFICIARY,
                u64::MAX >> 1,
            )?
            .cycles)
    };
    let (one, many) = (cycles(1)?, cycles(65)?);
    let per_inference = (many - one) / 64;
    out!(
        "\nint8 MLP 64→32→10: {per_inference} cycles per inference ({one} for a job of one, \
         {many} for 65); about {} inferences fill a segment of ~1.05 M cycles",
        1_050_000 / per_inference.max(1)
    );
    Ok(())
}
