//! Running real guests in OpenVM (no proving): the shipped examples compute what the host
//! computes, and bad programs or inputs end in clear errors.

use nexus_compute::{
    binding::{beneficiary, blob_id, public_value, NO_BENEFICIARY},
    examples::{loop_input, Example, MlpModel},
    zkvm::{LoadError, RunError, Zkvm},
    ProgramError,
};

const TRAP: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/trap.elf"));
const UNBOUND: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/unbound.elf"));
const UNIMP: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/unimp.elf"));
const BUDGET: u64 = 50_000_000;
const NONE: [u8; 32] = NO_BENEFICIARY;

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
        let run = zkvm.run(&program, &input, NONE, BUDGET).expect("run");
        let expected = example.reference_output(&input).expect("valid input");
        assert_eq!(run.output, expected, "{example:?}");
        assert_eq!(
            run.public_value,
            public_value(&NONE, &blob_id(&input), &blob_id(&expected)),
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
fn the_beneficiary_changes_the_public_value_and_nothing_else() {
    let zkvm = zkvm();
    let program = zkvm
        .load(Example::Sha256.elf().expect("built"))
        .expect("load");
    // Inputs around the 4 KiB leaf size and several leaves: the guest's BlobIds are the
    // host's.
    for len in [0, 1, 4096, 4097, 3 * 4096 + 5] {
        let input: Vec<u8> = (0..len).map(|i| (i * 13 % 251) as u8).collect();
        let alice = beneficiary(&[7; 32], b"alice");
        let none = zkvm.run(&program, &input, NONE, BUDGET).expect("run");
        let paid = zkvm.run(&program, &input, alice, BUDGET).expect("run");
        assert_eq!(none.output, paid.output);
        assert_eq!(none.segments, paid.segments, "{len}");
        assert_eq!(
            paid.public_value,
            public_value(&alice, &blob_id(&input), &blob_id(&paid.output)),
            "{len}"
        );
        assert_ne!(none.public_value, paid.public_value);
    }
}

#[test]
fn a_long_run_is_cut_into_segments_whose_boundaries_chain() {
    let zkvm = zkvm();
    let program = zkvm
        .load(Example::Loop.elf().expect("built"))
        .expect("load");
    let input = loop_input(250_000, 9);
    let run = zkvm.run(&program, &input, NONE, BUDGET).expect("run");
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
    let run = zkvm.run(&program, &input, NONE, BUDGET).expect("run");
    // The budget counts everything before the final `terminate`.
    assert!(zkvm.run(&program, &input, NONE, run.cycles - 1).is_ok());
    assert_eq!(
        zkvm.run(&program, &input, NONE, run.cycles - 2).err(),
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
    let err = zkvm.run(&trap, b"", NONE, BUDGET).expect_err("trap");
    assert!(matches!(err, RunError::Trapped(_)), "{err}");

    let unbound = zkvm.load(UNBOUND).expect("load");
    let err = zkvm.run(&unbound, b"", NONE, BUDGET).expect_err("unbound");
    assert!(matches!(err, RunError::NotNexusGuest(_)), "{err}");

    // A guest that aborts with `unimp`, which OpenVM 2.0.2 would run as a no-op
    // (GHSA-6p9w-9j7q-867r), is refused before it runs, naming the instruction.
    match zkvm.load(UNIMP) {
        Err(LoadError::Program(ProgramError::RefusedInstruction {
            address,
            word,
            reason,
        })) => {
            assert_eq!(word, 0xc000_1073, "unimp is csrrw x0, cycle, x0");
            assert!(address >= 0x0020_0800, "{address:#x}");
            assert!(reason.contains("GHSA-6p9w-9j7q-867r"), "{reason}");
        }
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(_) => panic!("a program using unimp was accepted"),
    }
    assert!(matches!(
        nexus_compute::inspect(UNIMP),
        Err(ProgramError::RefusedInstruction { .. })
    ));

    // The MLP guest fails (exit code 1) on a truncated model.
    let mlp = zkvm.load(Example::Mlp.elf().expect("built")).expect("load");
    let model = MlpModel::demo(8, 4, 2, 1);
    let input = model.encode(&model.demo_samples(1, 1));
    assert_eq!(
        zkvm.run(&mlp, &input[..input.len() - 3], NONE, BUDGET)
            .err(),
        Some(RunError::Failed(1))
    );

    // An endless loop is cut at its budget.
    let looping = zkvm
        .load(Example::Loop.elf().expect("built"))
        .expect("load");
    assert_eq!(
        zkvm.run(&looping, &loop_input(u32::MAX, 1), NONE, 100_000)
            .err(),
        Some(RunError::TooLong(100_000))
    );
}
