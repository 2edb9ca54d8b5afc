//! nexus-das against rust_eth_kzg and c-kzg doing the same per-blob work, in one run.
//!
//! `cargo bench -p nexus-das --bench peers` (size in MiB from `NEXUS_BENCH_MIB`, default 32).
//! The peers get the same bytes as EIP-4844 blobs (131,072 bytes of canonical scalars each)
//! and are looped over them, as a user of either library would; "rust_eth_kzg ×2" runs that
//! loop on both cores with rayon. Ratios are nexus-das throughput over the peer's.

use std::time::{Duration, Instant};

use nexus_das::params::{CELLS_PER_ROW, ORIGINAL_CELLS_PER_ROW};
use nexus_das::{
    verify_samples, CodeParams, Coord, DataCommitment, ExtendedData, PartialGrid, ProofStrategy,
    Sample,
};
use rand::{rngs::StdRng, Rng, SeedableRng};
use rayon::prelude::*;

const BLOB: usize = 131_072;

/// Median wall time of `runs` runs of `f`.
fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(f());
            start.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

fn mbps(bytes: usize, t: Duration) -> f64 {
    bytes as f64 / 1e6 / t.as_secs_f64()
}

struct Row {
    task: String,
    ours: f64,
    peers: Vec<(&'static str, f64)>,
    unit: &'static str,
}

fn print(rows: &[Row]) {
    println!("| task | nexus-das | rust_eth_kzg | c-kzg | rust_eth_kzg ×2 | unit |");
    println!("|---|---|---|---|---|---|");
    for r in rows {
        let peer = |name: &str| {
            r.peers
                .iter()
                .find(|(n, _)| *n == name)
                .map_or("–".to_string(), |(_, v)| {
                    format!("{v:.1} ({:.2}×)", r.ours / v)
                })
        };
        println!(
            "| {} | {:.1} | {} | {} | {} | {} |",
            r.task,
            r.ours,
            peer("rust_eth_kzg"),
            peer("c-kzg"),
            peer("rust_eth_kzg x2"),
            r.unit
        );
    }
}

fn main() {
    let mib: usize = std::env::var("NEXUS_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32);
    let size = mib << 20;
    let mut rng = StdRng::seed_from_u64(42);
    let data: Vec<u8> = (0..size).map(|_| rng.gen()).collect();
    // The peers' blobs: the same bytes, each 32-byte word's top byte cleared to stay canonical.
    let blobs: Vec<Box<[u8; BLOB]>> = data
        .chunks(BLOB)
        .map(|chunk| {
            let mut blob = Box::new([0u8; BLOB]);
            blob[..chunk.len()].copy_from_slice(chunk);
            blob.iter_mut().step_by(32).for_each(|b| *b = 0);
            blob
        })
        .collect();
    // Every library with the same 8-bit FK20 precomputation nexus-das uses.
    let eth = rust_eth_kzg::DASContext::new(
        &rust_eth_kzg::TrustedSetup::default(),
        rust_eth_kzg::UsePrecomp::Yes { width: 8 },
    );
    let ckzg = c_kzg::ethereum_kzg_settings(8);
    let c_blobs: Vec<c_kzg::Blob> = blobs
        .iter()
        .map(|b| c_kzg::Blob::from_bytes(&b[..]).expect("canonical"))
        .collect();
    // Our contexts are built outside the timings, as the peers' are above.
    nexus_das::kzg::RowCommitter::get();
    nexus_das::kzg::RowProver::get();
    nexus_das::kzg::CellVerifier::get();
    let mut rows = Vec::new();
    eprintln!("{mib} MiB: {} blobs for the peers", blobs.len());

    for dims in [2u8, 3] {
        let params = CodeParams::for_data(dims, size as u64).expect("fits");
        eprintln!(
            "d={dims}: axes {:?}, {} extended rows",
            params.axes,
            params.extended_rows()
        );
        let ours = time(3, || {
            DataCommitment::compute(&data, params).expect("commit")
        });
        let mut peers = Vec::new();
        if dims == 2 {
            let t = time(3, || {
                blobs
                    .iter()
                    .map(|b| eth.blob_to_kzg_commitment(b).expect("commit"))
                    .collect::<Vec<_>>()
            });
            peers.push(("rust_eth_kzg", mbps(size, t)));
            let t = time(3, || {
                c_blobs
                    .iter()
                    .map(|b| ckzg.blob_to_kzg_commitment(b).expect("commit"))
                    .collect::<Vec<_>>()
            });
            peers.push(("c-kzg", mbps(size, t)));
            let t = time(3, || {
                blobs
                    .par_iter()
                    .map(|b| eth.blob_to_kzg_commitment(b).expect("commit"))
                    .collect::<Vec<_>>()
            });
            peers.push(("rust_eth_kzg x2", mbps(size, t)));
        }
        rows.push(Row {
            task: format!("commit only, d={dims}"),
            ours: mbps(size, ours),
            peers,
            unit: "MB/s of data",
        });
        eprintln!("commit d={dims} done");
    }

    // One blob's commitment, cells and proofs, as each peer computes them.
    #[allow(clippy::borrowed_box)] // iterated over a Vec<Box<[u8; BLOB]>>
    let eth_prove = |b: &Box<[u8; BLOB]>| {
        let b: &[u8; BLOB] = b;
        eth.blob_to_kzg_commitment(b).expect("commit");
        eth.compute_cells_and_kzg_proofs(b).expect("cells")
    };
    let c_prove = |b: &c_kzg::Blob| {
        ckzg.blob_to_kzg_commitment(b).expect("commit");
        ckzg.compute_cells_and_kzg_proofs(b).expect("cells")
    };
    let params = CodeParams::for_data(2, size as u64).expect("fits");
    let mut encoded = None;
    for strategy in [ProofStrategy::ExtendInG1, ProofStrategy::Fk20] {
        let start = Instant::now();
        let e = ExtendedData::encode_with(&data, params, strategy).expect("encode");
        let t = start.elapsed();
        eprintln!("encode {strategy:?}: {t:?}");
        let mut peers = Vec::new();
        if strategy == ProofStrategy::ExtendInG1 {
            let tp = time(1, || blobs.iter().map(eth_prove).collect::<Vec<_>>());
            peers.push(("rust_eth_kzg", mbps(size, tp)));
            let tp = time(1, || c_blobs.iter().map(c_prove).collect::<Vec<_>>());
            peers.push(("c-kzg", mbps(size, tp)));
            let tp = time(1, || blobs.par_iter().map(eth_prove).collect::<Vec<_>>());
            peers.push(("rust_eth_kzg x2", mbps(size, tp)));
            encoded = Some(e);
        }
        rows.push(Row {
            task: format!("commit + all cell proofs, d=2, {strategy:?}"),
            ours: mbps(size, t),
            peers,
            unit: "MB/s of data",
        });
    }
    let encoded = encoded.expect("encoded above");

    // Verification: 256 samples over 32 rows for everyone (the peers' rows are 32 blobs).
    let (n, spread) = (256usize, blobs.len().min(32));
    let row_of = |i: usize| i % spread;
    let index = |i: usize| (i * 31 % CELLS_PER_ROW) as u64;
    let samples: Vec<Sample> = (0..n)
        .map(|i| {
            let coord = Coord {
                row: (row_of(i) * params.extended_rows() / spread) as u32,
                column: index(i) as u16,
            };
            encoded.sample(coord).expect("in grid")
        })
        .collect();
    let root = encoded.root();
    let peer_rows: Vec<_> = blobs[..spread]
        .iter()
        .map(|b| {
            let (cells, proofs) = eth.compute_cells_and_kzg_proofs(b).expect("cells");
            (
                eth.blob_to_kzg_commitment(b).expect("commit"),
                cells,
                proofs,
            )
        })
        .collect();
    let c_rows: Vec<_> = c_blobs[..spread]
        .iter()
        .map(|b| {
            let (cells, proofs) = ckzg.compute_cells_and_kzg_proofs(b).expect("cells");
            let proofs: Vec<c_kzg::Bytes48> = proofs.iter().map(|p| p.to_bytes()).collect();
            (
                ckzg.blob_to_kzg_commitment(b).expect("commit").to_bytes(),
                cells,
                proofs,
            )
        })
        .collect();
    for batched in [false, true] {
        let ours = time(3, || {
            if batched {
                verify_samples(&root, &samples).expect("valid");
            } else {
                samples.iter().for_each(|s| s.verify(&root).expect("valid"));
            }
        });
        let eth_t = time(3, || {
            let one = |range: std::ops::Range<usize>| {
                eth.verify_cell_kzg_proof_batch(
                    range.clone().map(|i| &peer_rows[row_of(i)].0).collect(),
                    &range.clone().map(index).collect::<Vec<_>>(),
                    range
                        .clone()
                        .map(|i| &*peer_rows[row_of(i)].1[index(i) as usize])
                        .collect(),
                    range
                        .map(|i| &peer_rows[row_of(i)].2[index(i) as usize])
                        .collect(),
                )
                .expect("valid")
            };
            if batched {
                one(0..n)
            } else {
                (0..n).for_each(|i| one(i..i + 1))
            }
        });
        let c_t = time(3, || {
            let one = |range: std::ops::Range<usize>| {
                let ok = ckzg
                    .verify_cell_kzg_proof_batch(
                        &range
                            .clone()
                            .map(|i| c_rows[row_of(i)].0)
                            .collect::<Vec<_>>(),
                        &range.clone().map(index).collect::<Vec<_>>(),
                        &range
                            .clone()
                            .map(|i| c_rows[row_of(i)].1[index(i) as usize])
                            .collect::<Vec<_>>(),
                        &range
                            .map(|i| c_rows[row_of(i)].2[index(i) as usize])
                            .collect::<Vec<_>>(),
                    )
                    .expect("well-formed");
                assert!(ok);
            };
            if batched {
                one(0..n)
            } else {
                (0..n).for_each(|i| one(i..i + 1))
            }
        });
        let per_sec = |t: Duration| n as f64 / t.as_secs_f64();
        rows.push(Row {
            task: format!(
                "verify {n} samples over {spread} rows, {}",
                if batched { "batched" } else { "one by one" }
            ),
            ours: per_sec(ours),
            peers: vec![("rust_eth_kzg", per_sec(eth_t)), ("c-kzg", per_sec(c_t))],
            unit: "samples/s",
        });
    }

    // Reconstruction from the minimum: only the parity quadrant (extension rows, extension
    // columns) for us; 64 of 128 cells of each blob for the peers.
    let ours = time(1, || {
        let mut grid = PartialGrid::new(params).expect("params");
        for row in 0..params.extended_rows() as u32 {
            if params.is_original_row(row as usize) {
                continue;
            }
            for column in ORIGINAL_CELLS_PER_ROW as u16..CELLS_PER_ROW as u16 {
                let coord = Coord { row, column };
                grid.insert_elements(coord, encoded.cell_elements(coord))
                    .expect("insert");
            }
        }
        assert_eq!(grid.into_data().expect("recoverable"), data);
    });
    let all_cells: Vec<_> = blobs
        .iter()
        .map(|b| eth.compute_cells(b).expect("cells"))
        .collect();
    let half: Vec<u64> = (ORIGINAL_CELLS_PER_ROW as u64..CELLS_PER_ROW as u64).collect();
    let eth_t = time(1, || {
        for cells in &all_cells {
            eth.recover_cells_and_kzg_proofs(
                half.clone(),
                half.iter().map(|&i| &*cells[i as usize]).collect(),
            )
            .expect("recover");
        }
    });
    let c_cells: Vec<Vec<c_kzg::Cell>> = all_cells
        .iter()
        .map(|cells| {
            half.iter()
                .map(|&i| c_kzg::Cell::from_bytes(&cells[i as usize][..]).expect("cell"))
                .collect()
        })
        .collect();
    let c_t = time(1, || {
        for cells in &c_cells {
            ckzg.recover_cells_and_kzg_proofs(&half, cells)
                .expect("recover");
        }
    });
    rows.push(Row {
        task: "reconstruct from the minimum (peers also recompute proofs)".into(),
        ours: mbps(size, ours),
        peers: vec![
            ("rust_eth_kzg", mbps(size, eth_t)),
            ("c-kzg", mbps(size, c_t)),
        ],
        unit: "MB/s of data",
    });
    print(&rows);
}
