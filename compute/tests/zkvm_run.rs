//! Running real guests in OpenVM (no proving): the shipped examples compute what the host
//! computes, and bad programs or inputs end in clear errors.

use nexus_compute::{
    binding::public_value,
    examples::{loop_input, Example, MlpModel},
    zkvm::{LoadError, RunError, Zkvm},
    ProgramError,
};

const TRAP: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/trap.elf"));
const UNBOUND: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/unbound.elf"));
const BUDGET: u64 = 50_000_000;

fn zkvm() -> Zkvm {
    Zkvm::new().expect("zkvm")
}

#[test]
fn every_example_outputs_what_the_host_computes_and_binds_input_and_output() {
    let zkvm = zkvm();
    let model = MlpModel::demo(64, 32, 10, 11);
    let cases = [
        (
            Example::Sha256,
            (0..5000u32).map(|i| (i * 7) as u8).collect::<Vec<_>>(),
        ),
        (Example::Mlp, model.encode(&model.demo_samples(4, 5))),
        (Example::Loop, loop_input(10_000, 3)),
    ];
    for (example, input) in cases {
        let program = zkvm.load(example.elf().expect("built")).expect("load");
        let run = zkvm.run(&program, &input, BUDGET).expect("run");
        let expected = example.reference_output(&input).expect("valid input");
        assert_eq!(run.output, expected, "{example:?}");
        assert_eq!(
            run.public_value,
            public_value(&input, &expected),
            "{example:?}"
        );
        assert!(run.cycles > 0 && !run.segments.is_empty());
        assert_eq!(
            run.segments.iter().map(|s| s.cycles).sum::<u64>(),
            run.cycles
        );
        println!(
            "{example:?}: {} cycles, {} segments",
            run.cycles,
            run.segments.len()
        );
    }
}

#[test]
fn a_long_run_is_cut_into_segments_whose_boundaries_chain() {
    let zkvm = zkvm();
    let program = zkvm
        .load(Example::Loop.elf().expect("built"))
        .expect("load");
    let input = loop_input(250_000, 9);
    let run = zkvm.run(&program, &input, BUDGET).expect("run");
    assert!(run.segments.len() >= 2, "{} segments", run.segments.len());
    for pair in run.segments.windows(2) {
        assert_eq!(pair[0].start + pair[0].cycles, pair[1].start);
    }
    let boundaries = zkvm.boundaries(&program, &input, &run).expect("boundaries");
    assert_eq!(boundaries.len(), run.segments.len() + 1);
    assert_eq!(boundaries[0].pc, program.info().entry);
    assert_ne!(boundaries[0].memory_root, boundaries[1].memory_root);
}

#[test]
fn the_cycle_budget_is_enforced_exactly() {
    let zkvm = zkvm();
    let program = zkvm
        .load(Example::Loop.elf().expect("built"))
        .expect("load");
    let input = loop_input(1000, 1);
    let run = zkvm.run(&program, &input, BUDGET).expect("run");
    // The budget counts everything before the final `terminate`.
    assert!(zkvm.run(&program, &input, run.cycles - 1).is_ok());
    assert_eq!(
        zkvm.run(&program, &input, run.cycles - 2).err(),
        Some(RunError::TooLong(run.cycles - 2))
    );
}

#[test]
fn bad_programs_and_inputs_end_in_clear_errors() {
    let zkvm = zkvm();
    assert!(matches!(
        zkvm.load(b"#!/bin/sh\necho hi\n"),
        Err(LoadError::Program(ProgramError::NotElf))
    ));
    let this_test = std::fs::read(std::env::current_exe().expect("exe")).expect("read");
    let refused = zkvm.load(&this_test).err().expect("an x86 ELF is refused");
    assert!(
        refused.to_string().contains("another architecture"),
        "{refused}"
    );

    let trap = zkvm.load(TRAP).expect("load");
    let err = zkvm.run(&trap, b"", BUDGET).expect_err("trap");
    assert!(matches!(err, RunError::Trapped(_)), "{err}");

    let unbound = zkvm.load(UNBOUND).expect("load");
    let err = zkvm.run(&unbound, b"", BUDGET).expect_err("unbound");
    assert!(matches!(err, RunError::NotNexusGuest(_)), "{err}");

    // The MLP guest fails (exit code 1) on a truncated model.
    let mlp = zkvm.load(Example::Mlp.elf().expect("built")).expect("load");
    let model = MlpModel::demo(8, 4, 2, 1);
    let input = model.encode(&model.demo_samples(1, 1));
    assert_eq!(
        zkvm.run(&mlp, &input[..input.len() - 3], BUDGET).err(),
        Some(RunError::Failed(1))
    );

    // An endless loop is cut at its budget.
    let looping = zkvm
        .load(Example::Loop.elf().expect("built"))
        .expect("load");
    assert_eq!(
        zkvm.run(&looping, &loop_input(u32::MAX, 1), 100_000).err(),
        Some(RunError::TooLong(100_000))
    );
}
