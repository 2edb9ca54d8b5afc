//! `nexus bench erasure`: our erasure path (striping, Reed-Solomon, SHA-256 shard ids; and
//! for decoding, shard verification, reconstruction and the BlobId check) against raw
//! `reed-solomon-simd` encoding and decoding the same stripes, in the same run.

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use nexus_storage::erasure::{ErasureLayout, ShardDecoder, ShardEncoder};
use nexus_storage::BlobId;
use rand::{RngCore, SeedableRng};
use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};

use crate::units::ByteSize;

/// Options of `nexus bench erasure`.
#[derive(Debug, clap::Args)]
pub(crate) struct ErasureArgs {
    /// Bytes of data encoded per run.
    #[arg(long, default_value = "256MiB")]
    size: ByteSize,
    /// Data shards.
    #[arg(long, default_value_t = 4)]
    data: u16,
    /// Parity shards.
    #[arg(long, default_value_t = 2)]
    parity: u16,
    /// Runs of each measurement (the best is kept).
    #[arg(long, default_value_t = 3)]
    runs: u32,
}

fn best(runs: u32, mut f: impl FnMut() -> Result<()>) -> Result<Duration> {
    let mut best = Duration::MAX;
    for _ in 0..runs {
        let start = Instant::now();
        f()?;
        best = best.min(start.elapsed());
    }
    Ok(best)
}

/// Runs the benchmark and prints a Markdown table.
pub(crate) fn run(args: ErasureArgs) -> Result<()> {
    let mut data = vec![0u8; args.size.0 as usize];
    rand::rngs::StdRng::seed_from_u64(7).fill_bytes(&mut data);
    let layout = ErasureLayout::new(data.len() as u64, args.data, args.parity)?;
    let (k, m, w) = (
        layout.data_shards(),
        layout.total_shards() - layout.data_shards(),
        layout.width(),
    );
    let stripe = k * w;

    // Shards, kept for the decode measurements.
    let mut shards = vec![Vec::with_capacity(layout.shard_size() as usize); k + m];
    let mut keep = |i: usize, p: &[u8]| -> Result<(), ()> {
        shards[i].extend_from_slice(p);
        Ok(())
    };
    let mut enc = ShardEncoder::new(layout)?;
    enc.update(&data, &mut keep)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let ids = enc
        .finish(&mut keep)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;

    let raw_encode = best(args.runs, || {
        let mut rs = ReedSolomonEncoder::new(k, m, w)?;
        let mut padded = vec![0u8; stripe];
        for piece in data.chunks(stripe) {
            padded[..piece.len()].copy_from_slice(piece);
            padded[piece.len()..].fill(0);
            for p in padded.chunks(w) {
                rs.add_original_shard(p)?;
            }
            std::hint::black_box(rs.encode()?.recovery(0));
        }
        Ok(())
    })?;
    let our_encode = best(args.runs, || {
        let mut enc = ShardEncoder::new(layout)?;
        let mut sink = |_: usize, p: &[u8]| -> Result<(), ()> {
            std::hint::black_box(p);
            Ok(())
        };
        enc.update(&data, &mut sink)
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let got = enc
            .finish(&mut sink)
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        ensure!(got == ids, "shard ids differ between runs");
        Ok(())
    })?;

    // Decoding from the worst case: the first m data shards lost.
    let lost = |i: usize| i < m.min(k);
    let raw_decode = best(args.runs, || {
        let mut rs = ReedSolomonDecoder::new(k, m, w)?;
        for s in 0..layout.stripes() as usize {
            let range = s * w..(s + 1) * w;
            for (i, shard) in shards.iter().enumerate().filter(|(i, _)| !lost(*i)) {
                if i < k {
                    rs.add_original_shard(i, &shard[range.clone()])?;
                } else {
                    rs.add_recovery_shard(i - k, &shard[range.clone()])?;
                }
            }
            std::hint::black_box(rs.decode()?.restored_original(0));
        }
        Ok(())
    })?;
    let our_decode = best(args.runs, || {
        // What `get` does: check each fetched shard against its id, rebuild, check the blob.
        for (i, shard) in shards.iter().enumerate().filter(|(i, _)| !lost(*i)).take(k) {
            ensure!(
                BlobId::of(shard) == ids[i],
                "shard {i} does not match its id"
            );
        }
        let mut dec = ShardDecoder::new(layout)?;
        let mut check = nexus_storage::BlobIdBuilder::new();
        for s in 0..layout.stripes() {
            let range = s as usize * w..(s as usize + 1) * w;
            let pieces: Vec<Option<&[u8]>> = shards
                .iter()
                .enumerate()
                .map(|(i, sh)| (!lost(i)).then(|| &sh[range.clone()]))
                .collect();
            check.update(&dec.stripe(s, &pieces)?);
        }
        ensure!(
            check.finish().0 == BlobId::of(&data),
            "decoded blob differs"
        );
        Ok(())
    })?;

    let mbps = |d: Duration| data.len() as f64 / d.as_secs_f64() / 1e6;
    out!(
        "| {} in {k}+{m} shards, best of {} | MB/s | ratio ours/raw |",
        ByteSize(data.len() as u64),
        args.runs
    );
    out!("|---|---|---|");
    out!(
        "| raw reed-solomon-simd encode | {:.0} | |",
        mbps(raw_encode)
    );
    out!(
        "| our encode (stripes, RS, SHA-256 shard ids) | {:.0} | {:.2} |",
        mbps(our_encode),
        raw_encode.as_secs_f64() / our_encode.as_secs_f64()
    );
    out!(
        "| raw reed-solomon-simd decode ({m} data shards lost) | {:.0} | |",
        mbps(raw_decode)
    );
    out!(
        "| our decode (verify k shards, RS, BlobId check) | {:.0} | {:.2} |",
        mbps(our_decode),
        raw_decode.as_secs_f64() / our_decode.as_secs_f64()
    );
    Ok(())
}
