//! `nexus compute`: submit jobs to the network and follow them (`submit`, `status`, `get`,
//! `verify JOB`), or run, prove and check guest programs on this machine (`run`, `prove`,
//! `verify-local`), and write the example guests. The zkVM's keys are generated once and
//! cached (`--keys`); verifying needs only the key shipped in the binary.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nexus_compute::{
    binding,
    examples::{loop_input, Example, MlpModel},
    zkvm::{
        Program, Run, TreeEvent, UniversalProof, Verifier, Zkvm, MAX_INPUT_BYTES, SEGMENT_LOG_ROWS,
    },
    ProofTree, TreeShape,
};
use nexus_storage::ledger::{ComputeJob, JobResult, JobState, MAX_PROGRAM_BYTES};
use nexus_storage::{BlobId, Digest};

use super::{download, upload, Policy};
use crate::units::ByteSize;
use nexus_api::client::NodeClient;
use nexus_api::types::{JobReceipt, JobRequest, JobView};

/// `nexus compute` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum ComputeCommand {
    /// Submit a job: store the program and the input as blobs, have the network prove the
    /// run, and follow it (segments and tree levels as they are proven) until its result
    /// is anchored.
    Submit(SubmitArgs),
    /// Show a job: the ledger's record and, from its driver, the proof tree (which prover
    /// proved which node, what is left).
    Status {
        /// The job id.
        job: Digest,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Fetch a proven job's output, checked against the BlobId its proof binds.
    Get {
        /// The job id.
        job: Digest,
        /// Where to write the output.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Check a proven job on this machine: fetch its Universal Proof and verify it for the
    /// program commitment, input and output the final ledger records and for the account
    /// that anchored it (well under a second). The ledger's record comes from the node.
    Verify {
        /// The job id.
        job: Digest,
        /// Also fetch the program and recompute its commitment (about two seconds), for
        /// who does not take the ledger's word for it.
        #[arg(long)]
        recompute: bool,
    },
    /// Run a program on this machine without proving it: its output, its cycles and the
    /// segments and proof tree its proof would take.
    Run(RunArgs),
    /// Prove a program's run on this machine, node by node, into a Universal Proof file.
    Prove(ProveArgs),
    /// Check a Universal Proof file against the program, the input and the output.
    VerifyLocal(VerifyArgs),
    /// Write the example guests (SHA-256, int8 MLP inference, a long loop) and inputs for
    /// them into a folder.
    Examples {
        /// The folder (created if missing).
        dir: PathBuf,
    },
}

/// What every command takes: the program and its input.
#[derive(Debug, clap::Args)]
pub(crate) struct JobArgs {
    /// The program: an RV32IM ELF file (see `nexus compute examples`).
    program: PathBuf,
    /// The input file (none: an empty input).
    #[arg(long)]
    input: Option<PathBuf>,
    /// Refuse runs longer than this many instructions.
    #[arg(long, default_value_t = 1_000_000_000)]
    max_cycles: u64,
}

/// Options of `nexus compute run`.
#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    job: JobArgs,
    /// Write the output bytes to this file.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Options of `nexus compute prove`.
#[derive(Debug, clap::Args)]
pub(crate) struct ProveArgs {
    #[command(flatten)]
    job: JobArgs,
    /// Where to write the Universal Proof.
    #[arg(short = 'p', long)]
    proof: PathBuf,
    /// Where to write the output bytes.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// The zkVM's key cache.
    #[arg(long, env = "NEXUS_ZKVM_KEYS")]
    keys: Option<PathBuf>,
}

/// Options of `nexus compute verify`.
#[derive(Debug, clap::Args)]
pub(crate) struct VerifyArgs {
    #[command(flatten)]
    job: JobArgs,
    /// The Universal Proof file.
    #[arg(short = 'p', long)]
    proof: PathBuf,
    /// The output file the proof is claimed to prove.
    #[arg(short, long)]
    output: PathBuf,
    /// The zkVM's key cache.
    #[arg(long, env = "NEXUS_ZKVM_KEYS")]
    keys: Option<PathBuf>,
}

/// Options of `nexus compute submit`.
#[derive(Debug, clap::Args)]
pub(crate) struct SubmitArgs {
    #[command(flatten)]
    job: JobArgs,
    /// Paid to whoever anchors the proven result.
    #[arg(long, default_value_t = 1000)]
    reward: u64,
    /// Blocks the job may take before it expires (its reward then returns).
    #[arg(long, default_value_t = 100_000)]
    lifetime: u64,
    /// Answer once the job is accepted, without following it.
    #[arg(long)]
    no_wait: bool,
}

/// Runs `nexus compute …`.
pub(crate) async fn compute(node: &str, command: ComputeCommand) -> Result<()> {
    let client = || NodeClient::new(node);
    match command {
        ComputeCommand::Submit(args) => submit(&client()?, args).await,
        ComputeCommand::Status { job, json } => status(&client()?, job, json).await,
        ComputeCommand::Get { job, output } => get(&client()?, job, &output).await,
        ComputeCommand::Verify { job, recompute } => verify_job(&client()?, job, recompute).await,
        ComputeCommand::Run(args) => run(args),
        ComputeCommand::Prove(args) => prove(args),
        ComputeCommand::VerifyLocal(args) => verify(args),
        ComputeCommand::Examples { dir } => examples(&dir),
    }
}

async fn submit(client: &NodeClient, args: SubmitArgs) -> Result<()> {
    // Refuse here what the network would refuse: not a zkVM program, no termination.
    let zkvm = Zkvm::new()?;
    let (_, _, run) = load_and_run(&zkvm, &args.job)?;
    out!(
        "runs locally: {} cycles, {}",
        run.cycles,
        counted(run.segments.len(), "segment")
    );
    let program = upload(client, &args.job.program, Policy::Replicated, None, false).await?;
    let input = match &args.job.input {
        Some(path) => upload(client, path, Policy::Replicated, None, false).await?,
        None => bail!("a job needs an input file (--input)"),
    };
    out!(
        "program {} and input {} stored",
        program.blob_id,
        input.blob_id
    );
    let url = client.url("/v1/compute/jobs")?;
    let request = JobRequest {
        program: program.blob_id,
        input: input.blob_id,
        max_cycles: args.job.max_cycles,
        reward: args.reward,
        lifetime: args.lifetime,
    };
    let receipt: JobReceipt = client
        .send(|http| http.post(url.clone()).json(&request))
        .await?
        .json()
        .await
        .context("malformed answer from the node")?;
    out!(
        "job {} accepted in block {} ({}, program commitment {})",
        receipt.job,
        receipt.height,
        counted(receipt.segments as usize, "segment"),
        receipt.program_commit
    );
    if args.no_wait {
        return Ok(());
    }
    follow(client, receipt.job).await
}

/// Prints the job's progress as it changes, until it is proven or expires.
async fn follow(client: &NodeClient, job: Digest) -> Result<()> {
    let mut last = String::new();
    loop {
        let view: JobView = client.get_json(&format!("/v1/compute/jobs/{job}")).await?;
        let line = progress_line(&view);
        if line != last {
            out!("{line}");
            last = line;
        }
        match &view.job.state {
            JobState::Proven(result) => {
                out!(
                    "proven: output {}, Universal Proof {}, anchored in block {}",
                    result.output,
                    result.proof,
                    result.height
                );
                out!("check it yourself: nexus compute verify {job}");
                return Ok(());
            }
            JobState::Expired => bail!("job {job} expired unproven (its reward went back)"),
            JobState::Open => tokio::time::sleep(std::time::Duration::from_secs(2)).await,
        }
    }
}

/// "segments 3/4 · level 1 0/1 · ... · proving"
fn progress_line(view: &JobView) -> String {
    let Some(drive) = &view.drive else {
        return "open; waiting for its driver to report progress".to_string();
    };
    let levels: Vec<String> = drive
        .levels
        .iter()
        .enumerate()
        .map(|(level, width)| {
            let proven = drive
                .nodes
                .iter()
                .filter(|n| usize::from(n.level) == level && n.state == "proven")
                .count();
            format!("{} {proven}/{width}", level_name(&view.job, level))
        })
        .collect();
    if levels.is_empty() {
        return drive.phase.clone();
    }
    format!("{} · {}", levels.join(" · "), drive.phase)
}

async fn status(client: &NodeClient, job: Digest, json: bool) -> Result<()> {
    let view: JobView = client.get_json(&format!("/v1/compute/jobs/{job}")).await?;
    if json {
        out!("{}", serde_json::to_string_pretty(&view)?);
        return Ok(());
    }
    let j = &view.job;
    out!("job        {job}");
    out!("submitter  {}", j.submitter);
    out!(
        "program    {} (commitment {})",
        j.program,
        hex::encode(j.program_commit)
    );
    out!("input      {}", j.input);
    out!(
        "run        {}, at most {} cycles",
        counted(j.segments as usize, "segment"),
        j.max_cycles
    );
    out!(
        "reward     {}; submitted at {}, deadline {}",
        j.reward,
        j.submitted,
        j.deadline
    );
    match &j.state {
        JobState::Open => out!("state      open (height {})", view.height),
        JobState::Expired => out!("state      expired"),
        JobState::Proven(r) => {
            out!(
                "state      proven in block {} by {}: output {}, proof {}",
                r.height,
                r.prover,
                r.output,
                r.proof
            );
            for p in &r.payouts {
                let what = match p.nodes {
                    0 => "the rest".to_string(),
                    n => counted(n as usize, "node"),
                };
                out!(
                    "paid       {} to {} for {what}",
                    p.amount,
                    abbreviated(&p.account.to_string())
                );
            }
        }
    }
    let Some(drive) = &view.drive else {
        out!("tree       not known: the job's driver did not answer");
        return Ok(());
    };
    let driver = view.driver.as_deref().unwrap_or("?");
    out!("driver     node {driver}: {}", drive.phase);
    // A prover as the devnet's banner shows it: the peer id ending its peer address.
    let node_of = |account: &str| {
        view.provers
            .get(account)
            .map_or_else(|| abbreviated(account), |peer| format!("node {peer}"))
    };
    for (level, width) in drive.levels.iter().enumerate() {
        out!("{} ({width})", level_name(j, level));
        for n in drive.nodes.iter().filter(|n| usize::from(n.level) == level) {
            let prover = n.prover.as_deref().map_or("-".into(), node_of);
            out!(
                "  #{:<3} {:<9} by {prover} (attempt {})",
                n.index,
                n.state,
                n.attempt
            );
        }
    }
    let sealed = matches!(j.state, JobState::Proven(_));
    out!(
        "seal       {}",
        if sealed {
            "done (the Universal Proof)"
        } else {
            "after the root"
        }
    );
    for (prover, failures) in &drive.failures {
        out!(
            "failures   {} (as its driver counted): {failures}",
            node_of(prover)
        );
    }
    Ok(())
}

/// The name of tree level `level` of `job`'s proof tree: `segment`, `leaf`,
/// `internal-for-leaf`, `internal-recursive.N`.
fn level_name(job: &ComputeJob, level: usize) -> String {
    match ProofTree::plan(job.segments, TreeShape::WIDEST) {
        Ok(tree) => tree.level_kind(level as u16).to_string(),
        Err(_) => format!("level {level}"),
    }
}

/// The first 16 characters of an account key, as the driver (another node) reported it.
fn abbreviated(key: &str) -> String {
    let mut short: String = key.chars().take(16).collect();
    if short.len() < key.len() {
        short.push('…');
    }
    short
}

/// The job's record, required proven.
async fn proven(client: &NodeClient, job: Digest) -> Result<(ComputeJob, JobResult)> {
    let view: JobView = client.get_json(&format!("/v1/compute/jobs/{job}")).await?;
    match view.job.state.clone() {
        JobState::Proven(result) => Ok((view.job, result)),
        JobState::Open => bail!("job {job} is not proven yet (see `nexus compute status {job}`)"),
        JobState::Expired => bail!("job {job} expired unproven"),
    }
}

/// Downloads blob `id` into memory (through a temporary file), checked against its id.
async fn fetch(client: &NodeClient, id: &BlobId, dir: &Path, name: &str) -> Result<Vec<u8>> {
    let path = dir.join(name);
    download(client, id, &path).await?;
    std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))
}

async fn get(client: &NodeClient, job: Digest, output: &Path) -> Result<()> {
    let (_, result) = proven(client, job).await?;
    // The download checks every chunk against the output's BlobId, which the proof binds.
    download(client, &result.output, output).await?;
    let size = std::fs::metadata(output)
        .with_context(|| format!("cannot read {}", output.display()))?
        .len();
    out!(
        "{size} bytes written to {} (blob {}, as proven)",
        output.display(),
        result.output
    );
    Ok(())
}

async fn verify_job(client: &NodeClient, job: Digest, recompute: bool) -> Result<()> {
    let started = std::time::Instant::now();
    let (record, result) = proven(client, job).await?;
    let dir = tempfile::tempdir()?;
    let proof = fetch(client, &result.proof, dir.path(), "proof").await?;
    let fetched = started.elapsed();
    let commit = if recompute {
        let elf = fetch(client, &record.program, dir.path(), "program").await?;
        let started = std::time::Instant::now();
        let commit = nexus_compute::zkvm::program_commit(&elf)?;
        if commit != record.program_commit {
            bail!("the program blob's commitment is not the one the ledger records");
        }
        out!(
            "the program's commitment recomputed in {:.0} ms: as the ledger records",
            started.elapsed().as_secs_f64() * 1000.0
        );
        commit
    } else {
        record.program_commit
    };
    let checking = std::time::Instant::now();
    let statement = binding::public_value(
        &binding::beneficiary(&job.0, &result.prover.0),
        &record.input.0,
        &result.output.0,
    );
    let proof = UniversalProof::from_bytes(&proof)?;
    Verifier::embedded()
        .verify(&proof, commit, statement)
        .context("the Universal Proof does not prove this program, input and output")?;
    out!(
        "verified in {:.0} ms ({:.0} ms for the proof, {:.0} ms to fetch the record and \
         the proof): program {} run on input {} outputs {}, anchored by {}",
        started.elapsed().as_secs_f64() * 1000.0,
        checking.elapsed().as_secs_f64() * 1000.0,
        fetched.as_secs_f64() * 1000.0,
        hex::encode(commit),
        record.input,
        result.output,
        result.prover
    );
    Ok(())
}

/// The default key cache: `~/.nexus/zkvm-keys`.
pub(crate) fn default_key_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(".nexus")
        .join("zkvm-keys")
}

fn read_limited(path: &Path, limit: usize, what: &str) -> Result<Vec<u8>> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("cannot read {what} {}", path.display()))?
        .len();
    if size > limit as u64 {
        bail!(
            "{what} {} is {}, more than the {} allowed",
            path.display(),
            ByteSize(size),
            ByteSize(limit as u64)
        );
    }
    std::fs::read(path).with_context(|| format!("cannot read {what} {}", path.display()))
}

/// Loads the program and input and runs them for no beneficiary.
fn load_and_run(zkvm: &Zkvm, job: &JobArgs) -> Result<(Program, Vec<u8>, Run)> {
    let elf = read_limited(&job.program, MAX_PROGRAM_BYTES, "program")?;
    let program = zkvm
        .load(&elf)
        .with_context(|| format!("{} cannot run in the zkVM", job.program.display()))?;
    let input = match &job.input {
        Some(path) => read_limited(path, MAX_INPUT_BYTES, "input")?,
        None => Vec::new(),
    };
    let run = zkvm.run(&program, &input, binding::NO_BENEFICIARY, job.max_cycles)?;
    Ok((program, input, run))
}

fn write_output(path: Option<&Path>, bytes: &[u8]) -> Result<()> {
    if let Some(path) = path {
        std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

fn run(args: RunArgs) -> Result<()> {
    let zkvm = Zkvm::new()?;
    let (program, _input, run) = load_and_run(&zkvm, &args.job)?;
    write_output(args.output.as_deref(), &run.output)?;
    let tree = ProofTree::plan(run.segments.len() as u32, TreeShape::WIDEST)?;
    if args.json {
        let report = serde_json::json!({
            "program_commit": hex::encode(program.commit()),
            "output": hex::encode(&run.output),
            "output_bytes": run.output.len(),
            "public_value": hex::encode(run.public_value),
            "cycles": run.cycles,
            "segments": run.segments.len(),
            "tree_levels": (0..tree.depth()).map(|l| tree.width(l)).collect::<Vec<_>>(),
        });
        out!("{report}");
        return Ok(());
    }
    out!(
        "program       {} (commitment {})",
        args.job.program.display(),
        hex::encode(program.commit())
    );
    out!(
        "output        {} bytes: {}",
        run.output.len(),
        preview(&run.output)
    );
    out!("cycles        {}", run.cycles);
    out!(
        "segments      {} of at most 2^{SEGMENT_LOG_ROWS} trace rows (cycles per segment: {})",
        run.segments.len(),
        run.segments
            .iter()
            .map(|s| s.cycles.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    out!("proof tree    {}", describe_tree(&tree));
    out!(
        "public value  {} = SHA-256(beneficiary ‖ BlobId(input) ‖ BlobId(output)), \
         no beneficiary",
        hex::encode(run.public_value)
    );
    Ok(())
}

fn prove(args: ProveArgs) -> Result<()> {
    let keys = args.keys.clone().unwrap_or_else(default_key_dir);
    out!(
        "opening the zkVM keys in {} (generated the first time, ~30 s)",
        keys.display()
    );
    let zkvm = Zkvm::open(&keys)?;
    let (program, input, run) = load_and_run(&zkvm, &args.job)?;
    let tree = ProofTree::plan(run.segments.len() as u32, TreeShape::WIDEST)?;
    out!("{} cycles; proof tree {}", run.cycles, describe_tree(&tree));
    let started = std::time::Instant::now();
    let proof = zkvm.prove_tree(
        &program,
        &input,
        &run,
        TreeShape::WIDEST,
        |event| match event {
            TreeEvent::Starting(_) => {}
            TreeEvent::Proven(done) => {
                let kind = tree.level_kind(done.node.level).to_string();
                out!(
                    "  {kind:<22} {:>3} proven in {:>6.1} s ({})",
                    done.node.index,
                    done.took.as_secs_f64(),
                    ByteSize(done.bytes as u64)
                );
            }
            TreeEvent::Sealed { wraps, took } => {
                out!(
                    "  sealed ({})           in {:>6.1} s",
                    counted(*wraps as usize, "wrap"),
                    took.as_secs_f64()
                );
            }
        },
    )?;
    let bytes = proof.to_bytes();
    std::fs::write(&args.proof, &bytes)
        .with_context(|| format!("cannot write {}", args.proof.display()))?;
    write_output(args.output.as_deref(), &run.output)?;
    out!(
        "Universal Proof: {} written to {} in {:.1} s ({:.0} cycles/s)",
        ByteSize(bytes.len() as u64),
        args.proof.display(),
        started.elapsed().as_secs_f64(),
        run.cycles as f64 / started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn verify(args: VerifyArgs) -> Result<()> {
    let keys = args.keys.clone().unwrap_or_else(default_key_dir);
    let zkvm = Zkvm::new()?;
    let elf = read_limited(&args.job.program, MAX_PROGRAM_BYTES, "program")?;
    let program = zkvm.load(&elf)?;
    let input = match &args.job.input {
        Some(path) => read_limited(path, MAX_INPUT_BYTES, "input")?,
        None => Vec::new(),
    };
    let output = read_limited(
        &args.output,
        nexus_compute::zkvm::MAX_OUTPUT_BYTES,
        "output",
    )?;
    let bytes = read_limited(
        &args.proof,
        nexus_compute::zkvm::MAX_UNIVERSAL_PROOF_BYTES,
        "proof",
    )?;
    let verifier = Verifier::open(&keys)?;
    let started = std::time::Instant::now();
    let proof = UniversalProof::from_bytes(&bytes)?;
    verifier
        .verify(
            &proof,
            program.commit(),
            binding::public_value(
                &binding::NO_BENEFICIARY,
                &binding::blob_id(&input),
                &binding::blob_id(&output),
            ),
        )
        .context("the proof does not prove this program, input and output")?;
    out!(
        "verified in {:.0} ms: {} run on this input outputs these {} bytes",
        started.elapsed().as_secs_f64() * 1000.0,
        args.job.program.display(),
        output.len()
    );
    Ok(())
}

fn examples(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for example in Example::ALL {
        let path = dir.join(format!("{}.elf", example.name()));
        std::fs::write(&path, example.elf()?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let model = MlpModel::demo(64, 32, 10, 1);
    let inputs: [(&str, Vec<u8>); 3] = [
        (
            "sha256-input.bin",
            (0..100_000u32).map(|i| (i % 251) as u8).collect(),
        ),
        ("mlp-input.bin", model.encode(&model.demo_samples(8, 2))),
        // About four segments of 2^19 rows.
        ("loop-input.bin", loop_input(500_000, 7)),
    ];
    for (name, bytes) in inputs {
        let path = dir.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let d = dir.display();
    out!("wrote sha256.elf, mlp.elf, loop.elf and an input for each to {d}; try:");
    out!("  nexus compute run {d}/mlp.elf --input {d}/mlp-input.bin -o classes.bin");
    out!("  nexus compute run {d}/loop.elf --input {d}/loop-input.bin");
    out!(
        "  nexus compute prove {d}/sha256.elf --input {d}/sha256-input.bin -p sha.proof -o sha.out"
    );
    out!("  nexus compute verify-local {d}/sha256.elf --input {d}/sha256-input.bin -p sha.proof -o sha.out");
    out!("  nexus compute submit {d}/loop.elf --input {d}/loop-input.bin   # on a network with provers");
    Ok(())
}

/// "4 segments → 1 leaf → 1 internal-for-leaf → 1 internal-recursive.0, then sealed (1
/// wrap)"
pub(crate) fn describe_tree(tree: &ProofTree) -> String {
    let mut parts = vec![counted(tree.segments() as usize, "segment")];
    for level in 1..tree.depth() {
        parts.push(format!("{} {}", tree.width(level), tree.level_kind(level)));
    }
    format!(
        "{}, then sealed ({})",
        parts.join(" → "),
        counted(tree.seal_wraps() as usize, "wrap")
    )
}

/// "1 segment", "2 segments": `n` and `noun`, plural unless `n` is 1.
pub(crate) fn counted(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

/// The output in hex when short, else its first bytes.
fn preview(bytes: &[u8]) -> String {
    if bytes.len() <= 64 {
        return hex::encode(bytes);
    }
    format!("{}… (use -o FILE for all of it)", hex::encode(&bytes[..32]))
}
