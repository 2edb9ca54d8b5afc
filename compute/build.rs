//! Compiles the example guests in `guest/examples` (and the test guests in `guest/tests`)
//! to RV32IM ELF files with Debian's `gcc-riscv64-unknown-elf` (or `$NEXUS_RISCV_CC`).
//! Without that compiler the crate still builds; the examples then report that they were
//! not built.

use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
};

const GUESTS: [&str; 6] = [
    "examples/sha256",
    "examples/mlp",
    "examples/loop",
    "tests/trap",
    "tests/unbound",
    "tests/unimp",
];

fn main() {
    let guest = Path::new("guest");
    println!("cargo:rerun-if-changed=guest");
    println!("cargo:rerun-if-env-changed=NEXUS_RISCV_CC");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let cc = env::var("NEXUS_RISCV_CC").unwrap_or_else(|_| "riscv64-unknown-elf-gcc".into());
    for source in GUESTS {
        let name = source.rsplit('/').next().expect("a file name");
        let elf = out.join(format!("{name}.elf"));
        let status = Command::new(&cc)
            .args([
                "-march=rv32im",
                "-mabi=ilp32",
                "-nostdlib",
                "-ffreestanding",
                "-fno-builtin",
                "-fno-tree-loop-distribute-patterns",
                "-O2",
                "-Wall",
                "-Wextra",
                "-Werror",
                "-Wl,--no-relax",
            ])
            .arg("-I")
            .arg(guest)
            .arg("-T")
            .arg(guest.join("link.ld"))
            .arg(guest.join("crt0.S"))
            .arg(guest.join("nexus_guest.c"))
            .arg(guest.join(format!("{source}.c")))
            .arg("-o")
            .arg(&elf)
            .status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => panic!("{cc} failed on guest/{source}.c ({s})"),
            Err(e) => {
                println!(
                    "cargo:warning=example guests not built ({cc}: {e}); install gcc-riscv64-unknown-elf"
                );
                std::fs::write(&elf, b"").expect("OUT_DIR is writable");
            }
        }
    }
}
