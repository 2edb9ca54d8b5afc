//! A job's program: an RV32IM ELF executable as the zkVM runs it, checked before anything
//! is paid for or proven. The checks are the zkVM's constraints in words a submitter can act
//! on: a 32-bit little-endian RISC-V executable, no compressed (C) or floating-point
//! instructions, code in one contiguous executable segment at or above the VM's text start,
//! everything inside its memory, an entry point in the code, and no instruction that
//! OpenVM 2.0.2's transpiler turns into something else than RISC-V means ([`refusal`]).

/// Where the VM's code may start (OpenVM's `TEXT_START`; the stack grows down below it).
pub const TEXT_START: u32 = 0x0020_0800;
/// Size of the VM's memory (OpenVM's `MEM_SIZE`): every segment must fit below it.
pub const MEM_SIZE: u64 = 1 << 29;

const EM_RISCV: u16 = 243;
const ET_EXEC: u16 = 2;
const PT_LOAD: u32 = 1;
const PF_X: u32 = 1;
/// `e_flags` bit of the C (compressed) extension.
const EF_RISCV_RVC: u32 = 0x1;
/// `e_flags` bits of the floating-point ABI.
const EF_RISCV_FLOAT_ABI: u32 = 0x6;
/// `e_flags` bit of the RV32E (16 registers) base.
const EF_RISCV_RVE: u32 = 0x8;

/// Why a program cannot run in the zkVM.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProgramError {
    /// Not an ELF file at all.
    #[error("not an ELF executable (it does not start with \\x7fELF)")]
    NotElf,
    /// The file ends before a header it announces.
    #[error("truncated ELF file: {0}")]
    Truncated(&'static str),
    /// 64-bit, big-endian or another machine's code.
    #[error("an ELF for another architecture ({0}): build for RV32IM (riscv64-unknown-elf-gcc -march=rv32im -mabi=ilp32)")]
    WrongArchitecture(String),
    /// An object file or shared library rather than an executable.
    #[error("not an executable ELF (type {0}): link it (-nostdlib -T link.ld)")]
    NotExecutable(u16),
    /// Uses an extension the VM does not run.
    #[error("uses {0}, which the zkVM does not run: build with -march=rv32im -mabi=ilp32")]
    UnsupportedExtension(&'static str),
    /// No executable segment, or several apart.
    #[error("the code must be one executable segment (found {0})")]
    CodeLayout(usize),
    /// A segment outside the VM's memory or below its text start.
    #[error("segment at {vaddr:#x} ({size} bytes) is outside the VM's memory: {why}")]
    OutOfMemory {
        /// Its address.
        vaddr: u32,
        /// Its size in memory.
        size: u32,
        /// What is wrong.
        why: &'static str,
    },
    /// The entry point is not in the code.
    #[error("the entry point {0:#x} is not in the executable segment")]
    BadEntry(u32),
    /// The code holds an instruction the zkVM would not run as RISC-V means it.
    #[error("the instruction {word:#010x} at {address:#x} is refused: {reason}")]
    RefusedInstruction {
        /// Its address.
        address: u32,
        /// Its encoding.
        word: u32,
        /// What the zkVM would do with it, and why that is refused.
        reason: &'static str,
    },
}

/// A loadable segment of a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Address in the VM's memory.
    pub vaddr: u32,
    /// Bytes in memory (the tail past the file's bytes is zero).
    pub mem_size: u32,
    /// Whether it is the code.
    pub executable: bool,
}

/// The facts of a program that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramInfo {
    /// Where execution starts.
    pub entry: u32,
    /// Its loadable segments, in file order.
    pub segments: Vec<Segment>,
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, ProgramError> {
    b.get(at..at + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .ok_or(ProgramError::Truncated("header"))
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, ProgramError> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or(ProgramError::Truncated("header"))
}

/// Checks that `elf` is a program the zkVM can run, and returns its layout.
pub fn inspect(elf: &[u8]) -> Result<ProgramInfo, ProgramError> {
    if !elf.starts_with(b"\x7fELF") {
        return Err(ProgramError::NotElf);
    }
    let (class, data) = (
        *elf.get(4).ok_or(ProgramError::Truncated("ident"))?,
        *elf.get(5).ok_or(ProgramError::Truncated("ident"))?,
    );
    if class != 1 {
        return Err(ProgramError::WrongArchitecture("64-bit".into()));
    }
    if data != 1 {
        return Err(ProgramError::WrongArchitecture("big-endian".into()));
    }
    let machine = u16_at(elf, 18)?;
    if machine != EM_RISCV {
        return Err(ProgramError::WrongArchitecture(format!(
            "machine {machine}, {}",
            machine_name(machine)
        )));
    }
    let kind = u16_at(elf, 16)?;
    if kind != ET_EXEC {
        return Err(ProgramError::NotExecutable(kind));
    }
    let flags = u32_at(elf, 36)?;
    if flags & EF_RISCV_RVC != 0 {
        return Err(ProgramError::UnsupportedExtension(
            "compressed instructions (C)",
        ));
    }
    if flags & EF_RISCV_FLOAT_ABI != 0 {
        return Err(ProgramError::UnsupportedExtension("a floating-point ABI"));
    }
    if flags & EF_RISCV_RVE != 0 {
        return Err(ProgramError::UnsupportedExtension("the RV32E base"));
    }
    let entry = u32_at(elf, 24)?;
    let (phoff, phentsize, phnum) = (
        u32_at(elf, 28)? as usize,
        usize::from(u16_at(elf, 42)?),
        usize::from(u16_at(elf, 44)?),
    );
    if phentsize < 32 {
        return Err(ProgramError::Truncated("program header size"));
    }
    let mut segments = Vec::new();
    for i in 0..phnum {
        let at = phoff
            .checked_add(i * phentsize)
            .ok_or(ProgramError::Truncated("program headers"))?;
        let header = elf
            .get(at..at + 32)
            .ok_or(ProgramError::Truncated("program headers"))?;
        if u32_at(header, 0)? != PT_LOAD {
            continue;
        }
        let (offset, vaddr, file_size, mem_size, seg_flags) = (
            u32_at(header, 4)?,
            u32_at(header, 8)?,
            u32_at(header, 16)?,
            u32_at(header, 20)?,
            u32_at(header, 24)?,
        );
        if elf.len() < offset as usize + file_size as usize {
            return Err(ProgramError::Truncated("segment data"));
        }
        let out = |why| ProgramError::OutOfMemory {
            vaddr,
            size: mem_size,
            why,
        };
        if u64::from(vaddr) + u64::from(mem_size) > MEM_SIZE {
            return Err(out("it ends past the VM's memory"));
        }
        if file_size > mem_size {
            return Err(out("it holds more file bytes than memory"));
        }
        let executable = seg_flags & PF_X != 0;
        if executable && vaddr < TEXT_START {
            return Err(out(
                "code must start at or above 0x200800 (the stack is below)",
            ));
        }
        if executable {
            let code = &elf[offset as usize..offset as usize + file_size as usize];
            check_code(vaddr, code)?;
        }
        segments.push(Segment {
            vaddr,
            mem_size,
            executable,
        });
    }
    let code: Vec<&Segment> = segments.iter().filter(|s| s.executable).collect();
    let [text] = code[..] else {
        return Err(ProgramError::CodeLayout(code.len()));
    };
    if entry < text.vaddr || u64::from(entry) >= u64::from(text.vaddr) + u64::from(text.mem_size) {
        return Err(ProgramError::BadEntry(entry));
    }
    Ok(ProgramInfo { entry, segments })
}

/// Refuses the first instruction of `code` (loaded at `vaddr`) that [`refusal`] names.
fn check_code(vaddr: u32, code: &[u8]) -> Result<(), ProgramError> {
    for (i, bytes) in code.chunks_exact(4).enumerate() {
        let word = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        if let Some(reason) = refusal(word) {
            return Err(ProgramError::RefusedInstruction {
                address: vaddr.wrapping_add(4 * i as u32),
                word,
                reason,
            });
        }
    }
    Ok(())
}

const OPCODE_SYSTEM: u32 = 0x73;
const OPCODE_OP_IMM: u32 = 0x13;
const OPCODE_JALR: u32 = 0x67;
/// RISC-V's custom-0 opcode, which OpenVM uses for its own instructions.
const OPCODE_CUSTOM_0: u32 = 0x0b;

/// Why OpenVM 2.0.2's transpiler (`openvm-rv32im-transpiler`, on `rrs-lib`) would turn
/// `word` into something other than what RISC-V means, or `None` if it does not. Words
/// it cannot decode at all are left to the transpiler, which refuses them with an error.
///
/// - `csrrw x0, csr, x0` (`unimp` is `csrrw x0, cycle, x0`) becomes a no-op, where RISC-V
///   traps (GHSA-6p9w-9j7q-867r, fixed in OpenVM 2.1): a program that aborts with `unimp`
///   would run on past the abort. Every other CSR instruction, `ecall` and `ebreak`
///   become a trap (exit code 2), as on a machine without them.
/// - `slli` with a non-zero `funct7` (a reserved encoding in RV32I) runs as `slli`.
/// - `jalr` with a non-zero `funct3` (reserved) runs as `jalr`.
/// - OpenVM's `terminate` with an exit code above 255 makes the transpiler panic.
pub fn refusal(word: u32) -> Option<&'static str> {
    let opcode = word & 0x7f;
    let rd = (word >> 7) & 0x1f;
    let funct3 = (word >> 12) & 0x7;
    let rs1 = (word >> 15) & 0x1f;
    let funct7 = word >> 25;
    let imm = (word as i32) >> 20;
    match opcode {
        OPCODE_SYSTEM if funct3 == 1 && rd == 0 && rs1 == 0 => Some(
            "`csrrw x0, csr, x0` (such as `unimp`) runs as a no-op in OpenVM 2.0.2 where \
             RISC-V traps (GHSA-6p9w-9j7q-867r): abort with nexus_fail() instead",
        ),
        OPCODE_OP_IMM if funct3 == 1 && funct7 != 0 => {
            Some("a reserved `slli` encoding (funct7 not zero) that OpenVM runs as `slli`")
        }
        OPCODE_JALR if funct3 != 0 => {
            Some("a reserved `jalr` encoding (funct3 not zero) that OpenVM runs as `jalr`")
        }
        OPCODE_CUSTOM_0 if funct3 == 0 && !(0..=255).contains(&imm) => {
            Some("OpenVM's `terminate` with an exit code outside 0 to 255")
        }
        _ => None,
    }
}

fn machine_name(machine: u16) -> &'static str {
    match machine {
        3 => "x86",
        40 => "ARM",
        62 => "x86-64",
        183 => "AArch64",
        _ => "not RISC-V",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal RV32 executable: one code segment (and a data one) at the VM's addresses.
    fn elf(machine: u16, flags: u32, entry: u32, code_at: u32) -> Vec<u8> {
        elf_with_code(machine, flags, entry, code_at, 0x0000_000b)
    }

    /// [`elf`] whose one instruction is `word` (the default is OpenVM's `terminate`).
    fn elf_with_code(machine: u16, flags: u32, entry: u32, code_at: u32, word: u32) -> Vec<u8> {
        let mut b = vec![0u8; 52 + 2 * 32];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 1; // 32-bit
        b[5] = 1; // little-endian
        b[6] = 1; // version
        b[16..18].copy_from_slice(&ET_EXEC.to_le_bytes());
        b[18..20].copy_from_slice(&machine.to_le_bytes());
        b[20..24].copy_from_slice(&1u32.to_le_bytes());
        b[24..28].copy_from_slice(&entry.to_le_bytes());
        b[28..32].copy_from_slice(&52u32.to_le_bytes()); // program headers right after
        b[36..40].copy_from_slice(&flags.to_le_bytes());
        b[40..42].copy_from_slice(&52u16.to_le_bytes());
        b[42..44].copy_from_slice(&32u16.to_le_bytes());
        b[44..46].copy_from_slice(&2u16.to_le_bytes());
        let code = word.to_le_bytes();
        let segments = [(code_at, PF_X | 4), (0x0020_1000, 4 | 2)];
        for (i, (vaddr, seg_flags)) in segments.into_iter().enumerate() {
            let h = 52 + i * 32;
            b[h..h + 4].copy_from_slice(&PT_LOAD.to_le_bytes());
            b[h + 4..h + 8].copy_from_slice(&116u32.to_le_bytes());
            b[h + 8..h + 12].copy_from_slice(&vaddr.to_le_bytes());
            b[h + 16..h + 20].copy_from_slice(&4u32.to_le_bytes());
            b[h + 20..h + 24].copy_from_slice(&4u32.to_le_bytes());
            b[h + 24..h + 28].copy_from_slice(&seg_flags.to_le_bytes());
        }
        b.extend_from_slice(&code);
        b
    }

    #[test]
    fn an_rv32im_executable_at_the_vm_s_addresses_is_accepted() {
        let info = inspect(&elf(EM_RISCV, 0, TEXT_START, TEXT_START)).expect("accepted");
        assert_eq!(info.entry, TEXT_START);
        assert_eq!(info.segments.len(), 2);
        assert!(info.segments[0].executable && !info.segments[1].executable);
    }

    #[test]
    fn every_refusal_says_why() {
        assert_eq!(inspect(b"#!/bin/sh\necho hi\n"), Err(ProgramError::NotElf));
        assert_eq!(inspect(b"\x7fELF"), Err(ProgramError::Truncated("ident")));
        let x86 = inspect(&elf(62, 0, TEXT_START, TEXT_START));
        assert!(matches!(&x86, Err(ProgramError::WrongArchitecture(m)) if m.contains("x86-64")));
        let mut wide = elf(EM_RISCV, 0, TEXT_START, TEXT_START);
        wide[4] = 2;
        assert_eq!(
            inspect(&wide),
            Err(ProgramError::WrongArchitecture("64-bit".into()))
        );
        assert_eq!(
            inspect(&elf(EM_RISCV, EF_RISCV_RVC, TEXT_START, TEXT_START)),
            Err(ProgramError::UnsupportedExtension(
                "compressed instructions (C)"
            ))
        );
        assert_eq!(
            inspect(&elf(EM_RISCV, 0x2, TEXT_START, TEXT_START)),
            Err(ProgramError::UnsupportedExtension("a floating-point ABI"))
        );
        assert!(matches!(
            inspect(&elf(EM_RISCV, 0, 0x1000, 0x1000)),
            Err(ProgramError::OutOfMemory { .. })
        ));
        assert_eq!(
            inspect(&elf(EM_RISCV, 0, 0x0030_0000, TEXT_START)),
            Err(ProgramError::BadEntry(0x0030_0000))
        );
        let mut object = elf(EM_RISCV, 0, TEXT_START, TEXT_START);
        object[16] = 1;
        assert_eq!(inspect(&object), Err(ProgramError::NotExecutable(1)));
        let cut = elf(EM_RISCV, 0, TEXT_START, TEXT_START);
        assert!(matches!(
            inspect(&cut[..60]),
            Err(ProgramError::Truncated(_))
        ));
    }

    #[test]
    fn instructions_the_zkvm_would_mis_run_are_refused_with_address_and_reason() {
        let refused =
            |word: u32| inspect(&elf_with_code(EM_RISCV, 0, TEXT_START, TEXT_START, word));
        // `unimp` (csrrw x0, cycle, x0) and any `csrw csr, x0` become no-ops in OpenVM 2.0.2.
        for word in [0xc000_1073u32, 0x3400_1073] {
            match refused(word) {
                Err(ProgramError::RefusedInstruction {
                    address,
                    word: w,
                    reason,
                }) => {
                    assert_eq!((address, w), (TEXT_START, word));
                    assert!(reason.contains("GHSA-6p9w-9j7q-867r"), "{reason}");
                }
                other => panic!("{word:#x} not refused: {other:?}"),
            }
        }
        let reason = |word: u32| match refused(word) {
            Err(ProgramError::RefusedInstruction { reason, .. }) => reason,
            other => panic!("{word:#x} not refused: {other:?}"),
        };
        assert!(reason(0x0200_9093).contains("slli")); // slli x1, x1, 32 (funct7 = 1)
        assert!(reason(0x0000_10e7).contains("jalr")); // jalr with funct3 = 1
        assert!(reason(0x12c0_000b).contains("terminate")); // exit code 300
        assert!(reason(0xfff0_000b).contains("terminate")); // exit code -1
                                                            // What RISC-V and OpenVM agree on passes: terminate(0), nexus_fail's terminate(1),
                                                            // csrrs (traps in both), ecall (traps), slli x1, x1, 31, jalr x0, 0(x1), fence.
        for word in [
            0x0000_000b,
            0x0010_000b,
            0xc000_2073,
            0x0000_0073,
            0x01f0_9093,
            0x0000_8067,
            0x0ff0_000f,
        ] {
            assert_eq!(refusal(word), None, "{word:#x}");
            assert!(refused(word).is_ok(), "{word:#x}");
        }
    }

    #[test]
    fn this_test_binary_is_refused_as_another_architecture() {
        let me = std::fs::read(std::env::current_exe().expect("exe")).expect("read");
        assert!(matches!(
            inspect(&me),
            Err(ProgramError::WrongArchitecture(_))
        ));
    }
}
