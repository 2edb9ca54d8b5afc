//! The example guests shipped with Nexus (sources in `guest/examples`, compiled by this
//! crate's build script), with the input encodings they read and a reference of what each
//! computes, so that tests and `nexus compute examples` can check a run against the host.

use sha2::{Digest, Sha256};

/// One of the shipped guest programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Example {
    /// Output = SHA-256 of the input.
    Sha256,
    /// Int8 MLP inference; input from [`MlpModel::encode`].
    Mlp,
    /// A long loop for multi-segment runs; input from [`loop_input`].
    Loop,
}

/// The example guests were not compiled (the RISC-V compiler was missing at build time).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the example guest {0} was not built: install gcc-riscv64-unknown-elf (Debian) and rebuild"
)]
pub struct NotBuilt(pub &'static str);

impl Example {
    /// Every example, in a fixed order.
    pub const ALL: [Example; 3] = [Example::Sha256, Example::Mlp, Example::Loop];

    /// The example's short name (also its file name without `.elf`).
    pub fn name(self) -> &'static str {
        match self {
            Example::Sha256 => "sha256",
            Example::Mlp => "mlp",
            Example::Loop => "loop",
        }
    }

    /// The compiled RV32IM ELF file.
    pub fn elf(self) -> Result<&'static [u8], NotBuilt> {
        let bytes: &'static [u8] = match self {
            Example::Sha256 => include_bytes!(concat!(env!("OUT_DIR"), "/sha256.elf")),
            Example::Mlp => include_bytes!(concat!(env!("OUT_DIR"), "/mlp.elf")),
            Example::Loop => include_bytes!(concat!(env!("OUT_DIR"), "/loop.elf")),
        };
        if bytes.is_empty() {
            return Err(NotBuilt(self.name()));
        }
        Ok(bytes)
    }

    /// What the guest outputs for `input`, computed on the host; `None` where the guest
    /// fails the run (a malformed input).
    pub fn reference_output(self, input: &[u8]) -> Option<Vec<u8>> {
        match self {
            Example::Sha256 => Some(Sha256::digest(input).to_vec()),
            Example::Loop => {
                let iterations = u32::from_le_bytes(input.get(0..4)?.try_into().ok()?);
                let seed = u32::from_le_bytes(input.get(4..8)?.try_into().ok()?);
                (input.len() == 8 && seed != 0)
                    .then(|| xorshift32(seed, iterations).to_le_bytes().to_vec())
            }
            Example::Mlp => MlpModel::decode(input).map(|(model, samples)| model.infer(&samples)),
        }
    }
}

/// The input of [`Example::Loop`]: run `iterations` xorshift32 steps from `seed` (≠ 0).
pub fn loop_input(iterations: u32, seed: u32) -> Vec<u8> {
    [iterations.to_le_bytes(), seed.to_le_bytes()].concat()
}

fn xorshift32(mut x: u32, iterations: u32) -> u32 {
    for _ in 0..iterations {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
    }
    x
}

/// An int8 MLP with one hidden layer (ReLU, requantized by an arithmetic shift), the model
/// [`Example::Mlp`] runs. Weights are row-major: `w1[j * n_in + i]`, `w2[k * n_hidden + j]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MlpModel {
    /// Inputs per sample.
    pub n_in: u32,
    /// Hidden units.
    pub n_hidden: u32,
    /// Outputs (classes).
    pub n_out: u32,
    /// Right shift applied to hidden pre-activations before clamping to 0..=127.
    pub shift: u32,
    /// Hidden weights, `n_hidden × n_in`.
    pub w1: Vec<i8>,
    /// Hidden biases.
    pub b1: Vec<i32>,
    /// Output weights, `n_out × n_hidden`.
    pub w2: Vec<i8>,
    /// Output biases.
    pub b2: Vec<i32>,
}

impl MlpModel {
    /// A deterministic model of the given size with pseudo-random weights (for demos,
    /// tests and benchmarks).
    pub fn demo(n_in: u32, n_hidden: u32, n_out: u32, seed: u32) -> MlpModel {
        let mut x = seed.max(1);
        let mut next = || {
            x = xorshift32(x, 1);
            x
        };
        let w1 = (0..n_in * n_hidden).map(|_| next() as i8).collect();
        let b1 = (0..n_hidden)
            .map(|_| (next() % 2048) as i32 - 1024)
            .collect();
        let w2 = (0..n_hidden * n_out).map(|_| next() as i8).collect();
        let b2 = (0..n_out).map(|_| (next() % 2048) as i32 - 1024).collect();
        MlpModel {
            n_in,
            n_hidden,
            n_out,
            shift: 7,
            w1,
            b1,
            w2,
            b2,
        }
    }

    /// `count` deterministic pseudo-random samples for this model.
    pub fn demo_samples(&self, count: u32, seed: u32) -> Vec<i8> {
        let mut x = seed.max(1);
        (0..count * self.n_in)
            .map(|_| {
                x = xorshift32(x, 1);
                x as i8
            })
            .collect()
    }

    /// The guest's input: this model followed by `samples` (a multiple of `n_in` values).
    pub fn encode(&self, samples: &[i8]) -> Vec<u8> {
        let n_samples = samples.len() as u32 / self.n_in;
        let mut out = Vec::new();
        for v in [self.n_in, self.n_hidden, self.n_out, n_samples, self.shift] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend(self.w1.iter().map(|&w| w as u8));
        self.b1
            .iter()
            .for_each(|b| out.extend_from_slice(&b.to_le_bytes()));
        out.extend(self.w2.iter().map(|&w| w as u8));
        self.b2
            .iter()
            .for_each(|b| out.extend_from_slice(&b.to_le_bytes()));
        out.extend(samples.iter().map(|&s| s as u8));
        out
    }

    /// Parses a guest input back into the model and its samples; `None` if the guest would
    /// refuse it.
    pub fn decode(input: &[u8]) -> Option<(MlpModel, Vec<i8>)> {
        let word = |i: usize| -> Option<u32> {
            Some(u32::from_le_bytes(
                input.get(4 * i..4 * i + 4)?.try_into().ok()?,
            ))
        };
        let (n_in, n_hidden, n_out, n_samples, shift) =
            (word(0)?, word(1)?, word(2)?, word(3)?, word(4)?);
        let dims_ok = [n_in, n_hidden, n_out]
            .iter()
            .all(|&d| (1..=4096).contains(&d))
            && n_samples <= 65536
            && shift <= 31;
        if !dims_ok {
            return None;
        }
        let (i, h, o, s) = (
            n_in as usize,
            n_hidden as usize,
            n_out as usize,
            n_samples as usize,
        );
        if input.len() != 20 + h * i + 4 * h + o * h + 4 * o + s * i {
            return None;
        }
        let mut at = 20;
        let mut take = |n: usize| {
            let part = &input[at..at + n];
            at += n;
            part
        };
        let bytes_i8 = |b: &[u8]| b.iter().map(|&x| x as i8).collect::<Vec<_>>();
        let words_i32 = |b: &[u8]| {
            b.chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect::<Vec<_>>()
        };
        let w1 = bytes_i8(take(h * i));
        let b1 = words_i32(take(4 * h));
        let w2 = bytes_i8(take(o * h));
        let b2 = words_i32(take(4 * o));
        let samples = bytes_i8(take(s * i));
        Some((
            MlpModel {
                n_in,
                n_hidden,
                n_out,
                shift,
                w1,
                b1,
                w2,
                b2,
            },
            samples,
        ))
    }

    /// The guest's output for `samples`: one class byte per sample (argmax, first on
    /// ties), then every sample's logits as little-endian i32.
    pub fn infer(&self, samples: &[i8]) -> Vec<u8> {
        let (n_in, n_hidden, n_out) = (
            self.n_in as usize,
            self.n_hidden as usize,
            self.n_out as usize,
        );
        let mut classes = Vec::new();
        let mut logits = Vec::new();
        for x in samples.chunks_exact(n_in) {
            let hidden: Vec<i32> = (0..n_hidden)
                .map(|j| {
                    let row = &self.w1[j * n_in..(j + 1) * n_in];
                    let acc = row.iter().zip(x).fold(self.b1[j], |acc, (&w, &v)| {
                        acc.wrapping_add(i32::from(w) * i32::from(v))
                    });
                    (acc >> self.shift).clamp(0, 127)
                })
                .collect();
            let mut best = (0usize, i32::MIN);
            for k in 0..n_out {
                let row = &self.w2[k * n_hidden..(k + 1) * n_hidden];
                let acc = row.iter().zip(&hidden).fold(self.b2[k], |acc, (&w, &h)| {
                    acc.wrapping_add(i32::from(w) * h)
                });
                if k == 0 || acc > best.1 {
                    best = (k, acc);
                }
                logits.extend_from_slice(&acc.to_le_bytes());
            }
            classes.push(best.0 as u8);
        }
        classes.extend(logits);
        classes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_mlp_input_decodes_to_what_was_encoded_and_truncation_is_refused() {
        let model = MlpModel::demo(16, 8, 4, 7);
        let samples = model.demo_samples(3, 9);
        let input = model.encode(&samples);
        assert_eq!(
            MlpModel::decode(&input),
            Some((model.clone(), samples.clone()))
        );
        assert_eq!(MlpModel::decode(&input[..input.len() - 1]), None);
        let output = model.infer(&samples);
        assert_eq!(output.len(), 3 + 3 * 4 * 4);
        assert!(output[..3].iter().all(|&c| c < 4));
    }

    #[test]
    fn the_loop_reference_matches_known_xorshift_values() {
        // xorshift32 from 1: 270369, 67634689, 2647435461 (Marsaglia 2003).
        assert_eq!(
            Example::Loop.reference_output(&loop_input(1, 1)),
            Some(270369u32.to_le_bytes().to_vec())
        );
        assert_eq!(
            Example::Loop.reference_output(&loop_input(3, 1)),
            Some(2647435461u32.to_le_bytes().to_vec())
        );
        assert_eq!(Example::Loop.reference_output(&loop_input(3, 0)), None);
    }
}
