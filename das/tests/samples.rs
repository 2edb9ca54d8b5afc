//! Samples verify against their own root only, and any altered bit is caught.

use nexus_das::params::CELLS_PER_ROW;
use nexus_das::{verify_samples, Coord, ExtendedData, Sample, SampleError};
use proptest::prelude::*;
use rand::{rngs::StdRng, Rng, SeedableRng};

fn encoded(seed: u64, len: usize, dims: u8) -> ExtendedData {
    let mut rng = StdRng::seed_from_u64(seed);
    let data: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
    ExtendedData::encode(&data, dims).expect("encode")
}

fn shared() -> &'static (ExtendedData, ExtendedData) {
    static BLOBS: std::sync::OnceLock<(ExtendedData, ExtendedData)> = std::sync::OnceLock::new();
    BLOBS.get_or_init(|| (encoded(10, 300_000, 2), encoded(11, 300_000, 2)))
}

/// Flips bit `bit` of the part of `sample` numbered `part`.
fn flip(sample: &mut Sample, part: usize, bit: usize) {
    let flip_in = |bytes: &mut [u8]| {
        let bit = bit % (bytes.len() * 8);
        bytes[bit / 8] ^= 1 << (bit % 8);
    };
    match part {
        0 => flip_in(&mut sample.cell.0[..]),
        1 => flip_in(&mut sample.proof.0),
        2 => flip_in(&mut sample.commitment.0),
        _ => {
            let n = sample.path.siblings.len();
            flip_in(&mut sample.path.siblings[bit % n].0);
        }
    }
}

#[test]
fn every_sample_of_a_blob_verifies_against_its_root_only() {
    let (a, b) = shared();
    let rows = a.params().extended_rows() as u32;
    let samples: Vec<Sample> = (0..rows)
        .flat_map(|row| [0u16, 63, 64, 127].map(|column| Coord { row, column }))
        .map(|c| a.sample(c).expect("in grid"))
        .collect();
    for s in &samples {
        s.verify(&a.root()).expect("honest sample");
        assert_eq!(s.verify(&b.root()), Err(SampleError::NotUnderRoot));
    }
    verify_samples(&a.root(), &samples).expect("honest batch");
    assert!(a
        .sample(Coord {
            row: rows,
            column: 0
        })
        .is_none());
    assert!(a
        .sample(Coord {
            row: 0,
            column: CELLS_PER_ROW as u16
        })
        .is_none());

    // A sample moved to another position, or claiming other parameters, fails.
    let mut moved = samples[1].clone();
    moved.coord.column += 1;
    assert_eq!(moved.verify(&a.root()), Err(SampleError::WrongProof));
    let mut other_row = samples[1].clone();
    other_row.coord.row += 1;
    assert_eq!(other_row.verify(&a.root()), Err(SampleError::NotUnderRoot));
    let mut params = samples[1].clone();
    params.params.data_len -= 1;
    assert_eq!(params.verify(&a.root()), Err(SampleError::NotUnderRoot));
    params.params.axes[0] = 3;
    assert!(matches!(
        params.verify(&a.root()),
        Err(SampleError::Params(_))
    ));
}

#[test]
fn a_batch_names_exactly_its_bad_samples() {
    let (a, b) = shared();
    let mut samples: Vec<Sample> = (0..40u16)
        .map(|i| {
            a.sample(Coord {
                row: u32::from(i % 4),
                column: i * 3,
            })
            .expect("in grid")
        })
        .collect();
    samples[7].cell = a.sample(Coord { row: 0, column: 0 }).expect("in grid").cell;
    samples[20] = b.sample(Coord { row: 1, column: 1 }).expect("in grid");
    let err = verify_samples(&a.root(), &samples).expect_err("two bad samples");
    assert_eq!(
        err.failures,
        vec![
            (7, SampleError::WrongProof),
            (20, SampleError::NotUnderRoot)
        ]
    );
}

#[test]
fn samples_survive_the_wire() {
    let (a, _) = shared();
    let sample = a.sample(Coord { row: 2, column: 99 }).expect("in grid");
    let bytes = postcard::to_stdvec(&sample).expect("encode");
    let back: Sample = postcard::from_bytes(&bytes).expect("decode");
    assert_eq!(back, sample);
    back.verify(&a.root()).expect("still valid");
    assert!(postcard::from_bytes::<Sample>(&bytes[..bytes.len() - 1]).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn any_flipped_bit_fails(row in 0u32..8, column in 0u16..128, part in 0usize..4, bit in any::<usize>()) {
        let (a, _) = shared();
        let mut sample = a.sample(Coord { row, column }).expect("in grid");
        flip(&mut sample, part, bit);
        prop_assert!(sample.verify(&a.root()).is_err());
    }
}
