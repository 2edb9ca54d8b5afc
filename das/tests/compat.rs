//! Byte compatibility with EIP-7594 as `c-kzg` and `rust_eth_kzg` implement it.

use nexus_das::params::{CELLS_PER_ROW, ORIGINAL_CELLS_PER_ROW, ROW_DATA_BYTES};
use nexus_das::{CodeParams, Coord, ExtendedData, ProofStrategy};
use rand::{rngs::StdRng, Rng, SeedableRng};

const BYTES_PER_BLOB: usize = 131_072;

/// The EIP-4844 blob our packing makes of up to one row of data: each 31 bytes behind a zero byte.
fn packed_blob(data: &[u8]) -> Vec<u8> {
    let mut blob = vec![0u8; BYTES_PER_BLOB];
    for (i, chunk) in data.chunks(31).enumerate() {
        blob[32 * i + 1..32 * i + 1 + chunk.len()].copy_from_slice(chunk);
    }
    blob
}

/// The blob of extended row `row`: its first 64 cells are its data (the code is systematic).
fn row_blob(encoded: &ExtendedData, row: u32) -> Vec<u8> {
    (0..ORIGINAL_CELLS_PER_ROW as u16)
        .flat_map(|column| *encoded.cell(Coord { row, column }).expect("in grid"))
        .collect()
}

/// Checks row `row` of `encoded` against both peer libraries computing from its blob.
fn assert_row_matches_peers(encoded: &ExtendedData, row: u32, blob: &[u8]) {
    let settings = c_kzg::ethereum_kzg_settings(0);
    let c_blob = c_kzg::Blob::from_bytes(blob).expect("canonical blob");
    let commitment = settings.blob_to_kzg_commitment(&c_blob).expect("commit");
    let ours = encoded.commitment().commitments()[row as usize];
    assert_eq!(
        ours.0,
        commitment.to_bytes().into_inner(),
        "row {row} commitment"
    );
    let (cells, proofs) = settings
        .compute_cells_and_kzg_proofs(&c_blob)
        .expect("cells");

    let peer = rust_eth_kzg::DASContext::default();
    let blob_ref: &[u8; BYTES_PER_BLOB] = blob.try_into().expect("blob size");
    let (eth_cells, eth_proofs) = peer.compute_cells_and_kzg_proofs(blob_ref).expect("cells");
    assert_eq!(
        ours.0,
        peer.blob_to_kzg_commitment(blob_ref).expect("commit")
    );

    for column in 0..CELLS_PER_ROW {
        let coord = Coord {
            row,
            column: column as u16,
        };
        let cell = encoded.cell(coord).expect("in grid");
        let proof = encoded.proof(coord).expect("in grid");
        assert_eq!(
            &cell[..],
            &cells[column].to_bytes()[..],
            "row {row} cell {column}"
        );
        assert_eq!(
            proof.0,
            proofs[column].to_bytes().into_inner(),
            "row {row} proof {column}"
        );
        assert_eq!(&cell[..], &eth_cells[column][..]);
        assert_eq!(proof.0, eth_proofs[column]);
    }
}

#[test]
fn one_dimension_equals_c_kzg_on_random_blobs() {
    let mut rng = StdRng::seed_from_u64(1);
    for len in [ROW_DATA_BYTES, 1000, 0] {
        let data: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        let encoded = ExtendedData::encode(&data, 1).expect("fits one row");
        assert_row_matches_peers(&encoded, 0, &packed_blob(&data));
    }
}

#[test]
fn extended_rows_equal_direct_commitments_and_proofs() {
    // Three dimensions: rows extended along two axes, by both proof strategies.
    let mut rng = StdRng::seed_from_u64(2);
    let data: Vec<u8> = (0..3 * ROW_DATA_BYTES + 17).map(|_| rng.gen()).collect();
    let params = CodeParams::for_data(3, data.len() as u64).expect("fits");
    assert_eq!(params.axes, [2, 2]);
    let by_g1 =
        ExtendedData::encode_with(&data, params, ProofStrategy::ExtendInG1).expect("encode");
    let by_fk20 = ExtendedData::encode_with(&data, params, ProofStrategy::Fk20).expect("encode");
    assert_eq!(by_g1.root(), by_fk20.root());
    for row in 0..params.extended_rows() as u32 {
        for column in 0..CELLS_PER_ROW as u16 {
            let c = Coord { row, column };
            assert_eq!(by_g1.proof(c), by_fk20.proof(c), "proof at {c:?}");
            assert_eq!(by_g1.cell(c), by_fk20.cell(c), "cell at {c:?}");
        }
    }
    // Every extended row is a valid EIP-7594 row of its own data (a sample of rows keeps it quick).
    for row in [1u32, 5, 10, 15] {
        assert_row_matches_peers(&by_g1, row, &row_blob(&by_g1, row));
    }
}
