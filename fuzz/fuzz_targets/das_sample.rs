//! A sample from a peer: decoding and verification against a real root never panic, and a
//! sample that verifies must carry exactly the cell the encoder produced there.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use nexus_das::{ExtendedData, PartialGrid, Sample};

fn encoded() -> &'static ExtendedData {
    static DATA: OnceLock<ExtendedData> = OnceLock::new();
    DATA.get_or_init(|| ExtendedData::encode(&[7u8; 200_000], 2).expect("encode"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(sample) = postcard::from_bytes::<Sample>(data) else {
        return;
    };
    let honest = encoded();
    if sample.verify(&honest.root()).is_ok() {
        assert_eq!(honest.cell(sample.coord), Some(sample.cell.0.clone()));
    }
    if let Ok(mut grid) = PartialGrid::new(*honest.params()) {
        let _ = grid.insert(sample.coord, &sample.cell.0);
    }
});
