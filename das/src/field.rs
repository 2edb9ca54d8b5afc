//! Bytes to field elements and back: 31 data bytes per element, written as a 32-byte
//! big-endian scalar with a zero top byte, so every packed element is canonical.

use ekzg_bls12_381::{traits::Field as _, Scalar};

use crate::params::{BYTES_PER_CELL, BYTES_PER_ELEMENT, CELL_ELEMENTS};

/// A 32-byte value that is not a canonical scalar, or a cell of the wrong length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    /// Element `index` is not below the BLS12-381 scalar modulus.
    #[error("element {index} is not a canonical BLS12-381 scalar")]
    NonCanonical {
        /// Position of the offending element.
        index: usize,
    },
    /// Element `index` has a non-zero top byte, so it does not hold 31 data bytes.
    #[error("element {index} does not hold packed data (its top byte is not zero)")]
    NotPacked {
        /// Position of the offending element.
        index: usize,
    },
}

/// Packs `bytes` into `out`, 31 bytes per element; elements past the data are zero.
///
/// The caller sizes `out` to hold the data (`bytes.len() <= 31 * out.len()`).
pub(crate) fn pack_into(bytes: &[u8], out: &mut [Scalar]) {
    debug_assert!(bytes.len() <= out.len() * BYTES_PER_ELEMENT);
    let mut chunks = bytes.chunks(BYTES_PER_ELEMENT);
    for slot in out.iter_mut() {
        *slot = match chunks.next() {
            Some(chunk) => {
                let mut be = [0u8; 32];
                be[1..1 + chunk.len()].copy_from_slice(chunk);
                Scalar::from_bytes_be(&be).unwrap_or(Scalar::ZERO)
            }
            None => Scalar::ZERO,
        };
    }
}

/// Appends the 31 data bytes of each element to `out`, refusing elements that were not
/// produced by packing.
pub(crate) fn unpack_into(elements: &[Scalar], out: &mut Vec<u8>) -> Result<(), FieldError> {
    for (index, e) in elements.iter().enumerate() {
        let be = e.to_bytes_be();
        if be[0] != 0 {
            return Err(FieldError::NotPacked { index });
        }
        out.extend_from_slice(&be[1..]);
    }
    Ok(())
}

/// Parses a serialized cell (64 big-endian scalars) into field elements.
pub fn cell_from_bytes(bytes: &[u8; BYTES_PER_CELL]) -> Result<Vec<Scalar>, FieldError> {
    bytes
        .chunks_exact(32)
        .enumerate()
        .map(|(index, chunk)| {
            let mut be = [0u8; 32];
            be.copy_from_slice(chunk);
            Option::from(Scalar::from_bytes_be(&be)).ok_or(FieldError::NonCanonical { index })
        })
        .collect()
}

/// Serializes a cell's 64 field elements, byte for byte as EIP-7594 does.
pub fn cell_to_bytes(elements: &[Scalar]) -> Box<[u8; BYTES_PER_CELL]> {
    debug_assert_eq!(elements.len(), CELL_ELEMENTS);
    let mut out = Box::new([0u8; BYTES_PER_CELL]);
    for (chunk, e) in out.chunks_exact_mut(32).zip(elements) {
        chunk.copy_from_slice(&e.to_bytes_be());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_round_trips_and_pads_with_zeros() {
        let data: Vec<u8> = (0..100u8).collect();
        let mut elements = vec![Scalar::ONE; 5];
        pack_into(&data, &mut elements);
        assert_eq!(elements[4], Scalar::ZERO);
        let mut back = Vec::new();
        unpack_into(&elements, &mut back).expect("packed");
        assert_eq!(&back[..100], &data[..]);
        assert!(back[100..].iter().all(|&b| b == 0));
    }

    #[test]
    fn non_canonical_and_unpacked_elements_are_refused() {
        let mut cell = [0xffu8; BYTES_PER_CELL];
        assert_eq!(
            cell_from_bytes(&cell),
            Err(FieldError::NonCanonical { index: 0 })
        );
        cell = [0; BYTES_PER_CELL];
        cell[64] = 1;
        let elements = cell_from_bytes(&cell).expect("canonical");
        assert_eq!(
            unpack_into(&elements, &mut Vec::new()),
            Err(FieldError::NotPacked { index: 2 })
        );
        assert_eq!(*cell_to_bytes(&elements), cell);
    }
}
