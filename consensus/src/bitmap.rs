//! Which validators signed a certificate: one bit per committee index.

use serde::{Deserialize, Serialize};

/// A set of committee indices, one bit each (index i is bit `i % 8` of byte `i / 8`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct SignerBitmap(Vec<u8>);

impl SignerBitmap {
    /// The bitmap of `indices` in a committee of `size`; out-of-range indices are dropped.
    pub fn from_indices(size: usize, indices: impl IntoIterator<Item = usize>) -> SignerBitmap {
        let mut bytes = vec![0u8; size.div_ceil(8)];
        for i in indices.into_iter().filter(|i| *i < size) {
            bytes[i / 8] |= 1 << (i % 8);
        }
        SignerBitmap(bytes)
    }

    /// True when the bitmap fits a committee of `size` exactly (right length, no bit past
    /// the last validator).
    pub fn fits(&self, size: usize) -> bool {
        self.0.len() == size.div_ceil(8) && self.indices().all(|i| i < size)
    }

    /// The indices set, ascending.
    pub fn indices(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().enumerate().flat_map(|(byte, bits)| {
            (0..8)
                .filter(move |b| bits & (1 << b) != 0)
                .map(move |b| byte * 8 + b)
        })
    }

    /// Number of indices set.
    pub fn count(&self) -> usize {
        self.0.iter().map(|b| b.count_ones() as usize).sum()
    }

    /// Whether `index` is set.
    pub fn contains(&self, index: usize) -> bool {
        self.0
            .get(index / 8)
            .is_some_and(|b| b & (1 << (index % 8)) != 0)
    }

    /// Size of the encoding in bytes.
    pub fn byte_len(&self) -> usize {
        self.0.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_fit() {
        let b = SignerBitmap::from_indices(10, [0, 3, 9, 12]);
        assert_eq!(b.indices().collect::<Vec<_>>(), vec![0, 3, 9]);
        assert_eq!(b.count(), 3);
        assert!(b.fits(10) && b.fits(16) && !b.fits(17) && !b.fits(8));
        assert!(!SignerBitmap::from_indices(16, [15]).fits(10));
        let bin = postcard::to_stdvec(&b).expect("encode");
        assert_eq!(
            postcard::from_bytes::<SignerBitmap>(&bin).expect("decode"),
            b
        );
    }
}
