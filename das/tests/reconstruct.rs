//! Round trips and recovery: from everything, from random subsets, from adversarial patterns.

use nexus_das::params::{CELLS_PER_ROW, ORIGINAL_CELLS_PER_ROW, ROW_DATA_BYTES};
use nexus_das::{CodeParams, Coord, ExtendedData, Goal, PartialGrid, ReconstructError};
use rand::{rngs::StdRng, seq::SliceRandom, Rng, SeedableRng};

fn random_data(rng: &mut StdRng, len: usize) -> Vec<u8> {
    (0..len).map(|_| rng.gen()).collect()
}

fn all_coords(params: &CodeParams) -> Vec<Coord> {
    (0..params.extended_rows() as u32)
        .flat_map(|row| (0..CELLS_PER_ROW as u16).map(move |column| Coord { row, column }))
        .collect()
}

/// A grid holding the cells of `encoded` at every coordinate `keep` accepts.
fn grid_with(encoded: &ExtendedData, keep: impl Fn(Coord) -> bool) -> PartialGrid {
    let mut grid = PartialGrid::new(*encoded.params()).expect("valid params");
    for c in all_coords(encoded.params()) {
        if keep(c) {
            grid.insert(c, &encoded.cell(c).expect("in grid"))
                .expect("insert");
        }
    }
    grid
}

#[test]
fn round_trips_in_one_two_and_three_dimensions() {
    let mut rng = StdRng::seed_from_u64(3);
    let row = ROW_DATA_BYTES;
    let cases: &[(u8, usize)] = &[
        (1, 0),
        (1, 1),
        (1, 31),
        (1, 32),
        (1, row),
        (2, 0),
        (2, 30),
        (2, row + 1),
        (2, 3 * row - 7),
        (3, 5),
        (3, 4 * row + 333),
    ];
    for &(dims, len) in cases {
        let data = random_data(&mut rng, len);
        let encoded = ExtendedData::encode(&data, dims).expect("encode");
        // From only the extension half of every axis-0 row.
        let grid = grid_with(&encoded, |c| {
            usize::from(c.column) >= ORIGINAL_CELLS_PER_ROW
        });
        assert_eq!(
            grid.into_data().expect("recoverable"),
            data,
            "d={dims} len={len}"
        );
    }
}

#[test]
fn recovers_from_random_erasures_below_the_threshold() {
    let mut rng = StdRng::seed_from_u64(4);
    let data = random_data(&mut rng, 2 * ROW_DATA_BYTES - 100);
    let encoded = ExtendedData::encode(&data, 2).expect("encode");
    let params = *encoded.params();
    let coords = all_coords(&params);
    let limit = params.min_unrecoverable_cells() as usize - 1;
    for erased in [limit / 3, limit] {
        let mut order = coords.clone();
        order.shuffle(&mut rng);
        let withheld: std::collections::HashSet<Coord> = order[..erased].iter().copied().collect();
        let mut grid = grid_with(&encoded, |c| !withheld.contains(&c));
        grid.fill(Goal::Everything).expect("consistent cells");
        for &c in &coords {
            assert_eq!(
                grid.elements(c).map(nexus_das::field::cell_to_bytes),
                encoded.cell(c),
                "cell {c:?} with {erased} erased"
            );
        }
        let grid = grid_with(&encoded, |c| !withheld.contains(&c));
        assert_eq!(grid.into_data().expect("recoverable"), data);
    }
}

#[test]
fn a_corner_one_larger_than_a_quadrant_is_unrecoverable_and_one_cell_less_is_not() {
    let mut rng = StdRng::seed_from_u64(5);
    let data = random_data(&mut rng, 2 * ROW_DATA_BYTES);
    let encoded = ExtendedData::encode(&data, 2).expect("encode");
    let params = *encoded.params();
    let k1 = params.original_len(1) as u32;
    // Rows 0..=k1 and columns 0..=64: the original quadrant plus one more row and column.
    let in_block = |c: Coord| c.row <= k1 && usize::from(c.column) <= ORIGINAL_CELLS_PER_ROW;
    let block = all_coords(&params)
        .into_iter()
        .filter(|&c| in_block(c))
        .count() as u64;
    assert_eq!(block, params.min_unrecoverable_cells());

    let err = grid_with(&encoded, |c| !in_block(c))
        .into_data()
        .expect_err("withheld");
    match &err {
        ReconstructError::Unrecoverable {
            missing_original,
            worst_rows,
            ..
        } => {
            assert_eq!(
                *missing_original,
                u64::from(k1) * ORIGINAL_CELLS_PER_ROW as u64
            );
            assert_eq!(worst_rows[0], (0, ORIGINAL_CELLS_PER_ROW + 1));
        }
        other => panic!("unexpected error {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains("original cells cannot be recovered"),
        "{message}"
    );
    assert!(message.contains("row 0: 65 missing"), "{message}");

    // Hand over any single cell of the block and everything comes back.
    for given in [
        Coord { row: 0, column: 0 },
        Coord {
            row: k1,
            column: 64,
        },
    ] {
        let grid = grid_with(&encoded, |c| !in_block(c) || c == given);
        assert_eq!(
            grid.into_data().expect("recoverable"),
            data,
            "given {given:?}"
        );
    }
}

#[test]
fn three_dimensional_corner_block_is_the_minimum() {
    let mut rng = StdRng::seed_from_u64(6);
    let data = random_data(&mut rng, 3 * ROW_DATA_BYTES);
    let encoded = ExtendedData::encode(&data, 3).expect("encode");
    let params = *encoded.params();
    let (k1, k2) = (params.original_len(1), params.original_len(2));
    let in_block = |c: Coord| {
        let [a, b] = params.row_position(c.row as usize);
        a <= k1 && b <= k2 && usize::from(c.column) <= ORIGINAL_CELLS_PER_ROW
    };
    assert!(grid_with(&encoded, |c| !in_block(c)).into_data().is_err());
    let given = Coord {
        row: params.row_at([k1, k2]) as u32,
        column: 64,
    };
    let grid = grid_with(&encoded, |c| !in_block(c) || c == given);
    assert_eq!(grid.into_data().expect("recoverable"), data);
}

#[test]
fn altered_cells_are_reported_as_inconsistent() {
    let mut rng = StdRng::seed_from_u64(7);
    let data = random_data(&mut rng, 100);
    let encoded = ExtendedData::encode(&data, 1).expect("encode");
    let at = Coord { row: 0, column: 1 };
    let mut grid = grid_with(&encoded, |c| c.column % 4 != 0 && c != at);
    let mut cell = encoded.cell(at).expect("in grid");
    cell[31] ^= 1;
    grid.insert(at, &cell).expect("canonical");
    assert!(matches!(
        grid.into_data(),
        Err(ReconstructError::Inconsistent { .. })
    ));
}

#[test]
fn a_second_different_copy_of_a_cell_is_refused_and_the_first_kept() {
    let mut rng = StdRng::seed_from_u64(8);
    let data = random_data(&mut rng, 100);
    let encoded = ExtendedData::encode(&data, 1).expect("encode");
    let mut grid = grid_with(&encoded, |c| c.column % 4 != 0);
    let at = Coord { row: 0, column: 1 };
    let honest = encoded.cell(at).expect("in grid");
    grid.insert(at, &honest)
        .expect("the same copy again is fine");
    let mut altered = honest;
    altered[31] ^= 1;
    assert_eq!(
        grid.insert(at, &altered),
        Err(ReconstructError::Conflicting(at))
    );
    assert_eq!(
        grid.insert_elements(at, &[]),
        Err(ReconstructError::BadCellLength { coord: at, len: 0 })
    );
    assert_eq!(grid.into_data().expect("the honest copy was kept"), data);
}

#[test]
fn a_byte_range_is_read_from_the_rows_holding_it() {
    let mut rng = StdRng::seed_from_u64(11);
    let row = ROW_DATA_BYTES;
    let data = random_data(&mut rng, 5 * row + 1000);
    let encoded = ExtendedData::encode(&data, 2).expect("encode");
    let params = *encoded.params();
    let ranges: &[(usize, usize)] = &[
        (0, 1),
        (row - 10, 20),
        (2 * row + 5, row),
        (5 * row, 1000),
        (0, data.len()),
        (77, 0),
    ];
    for &(offset, len) in ranges {
        let rows = params
            .rows_holding(offset as u64, len as u64)
            .expect("inside");
        // Only the extension half of the rows holding the range: recovered row by row.
        let mut grid = grid_with(&encoded, |c| {
            rows.contains(&c.row) && usize::from(c.column) >= ORIGINAL_CELLS_PER_ROW
        });
        assert_eq!(
            grid.read(offset as u64, len as u64).expect("readable"),
            &data[offset..offset + len],
            "range {offset}+{len}"
        );
    }
    assert!(matches!(
        grid_with(&encoded, |_| true).read(data.len() as u64 - 5, 6),
        Err(ReconstructError::OutsideData { .. })
    ));
}

#[test]
fn a_range_in_rows_missing_more_than_half_is_read_through_the_columns() {
    let mut rng = StdRng::seed_from_u64(12);
    let data = random_data(&mut rng, 3 * ROW_DATA_BYTES);
    let encoded = ExtendedData::encode(&data, 2).expect("encode");
    let target = encoded.params().rows_holding(0, 10).expect("inside")[0];
    // The row holding the range keeps a quarter of its cells; every other row is whole.
    let mut grid = grid_with(&encoded, |c| {
        c.row != target || usize::from(c.column) < CELLS_PER_ROW / 4
    });
    assert_eq!(grid.read(0, 10).expect("via columns"), &data[..10]);
    // With nothing but that quarter row, the range is reported unrecoverable.
    let mut grid = grid_with(&encoded, |c| {
        c.row == target && usize::from(c.column) < CELLS_PER_ROW / 4
    });
    assert!(matches!(
        grid.read(0, 10),
        Err(ReconstructError::Unrecoverable { .. })
    ));
}
