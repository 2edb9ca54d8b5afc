//! The `erasure` policy's code: Reed-Solomon over GF(2^16) (`reed-solomon-simd`), k data +
//! m parity shards, each shard identified by the BlobId of its bytes.
//!
//! The blob is laid out in stripes of `k × width` bytes (zero-padded at the end); stripe `s`
//! gives bytes `[s·k·w + i·w, s·k·w + (i+1)·w)` to data shard `i`, and parity shards get the
//! code of those k pieces. Shard `i` is the concatenation of its pieces over all stripes, so
//! encoding and decoding stream with memory of one stripe, whatever the blob's size. The
//! layout is a function of (size, k, m) alone.

use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};

use crate::blob::{BlobId, BlobIdBuilder};

/// Widest piece a shard gets per stripe.
pub const MAX_STRIPE_WIDTH: u64 = 64 * 1024;
/// Pieces are multiples of this many bytes.
const WIDTH_ALIGN: u64 = 64;

/// Why encoding or decoding failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErasureError {
    /// Shard counts the code does not support.
    #[error("unsupported erasure parameters: {data} data + {parity} parity shards")]
    BadParams {
        /// k.
        data: u16,
        /// m.
        parity: u16,
    },
    /// Fewer than k shards available.
    #[error("{have} shards available, {need} needed to decode")]
    NotEnoughShards {
        /// Shards present.
        have: usize,
        /// k.
        need: usize,
    },
    /// A piece has the wrong length.
    #[error("shard piece of {found} bytes, expected {expected}")]
    WrongLength {
        /// Expected.
        expected: usize,
        /// Found.
        found: usize,
    },
    /// The encoder was fed a different number of bytes than the layout's size.
    #[error("fed {found} bytes to an encoder laid out for {expected}")]
    WrongSize {
        /// Layout size.
        expected: u64,
        /// Bytes fed.
        found: u64,
    },
    /// The codec library failed.
    #[error("reed-solomon: {0}")]
    Codec(String),
}

fn codec(e: reed_solomon_simd::Error) -> ErasureError {
    ErasureError::Codec(e.to_string())
}

/// The shape of one blob's encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErasureLayout {
    size: u64,
    data: u16,
    parity: u16,
    width: u64,
    stripes: u64,
}

impl ErasureLayout {
    /// The layout of a blob of `size` bytes in `data` + `parity` shards.
    pub fn new(size: u64, data: u16, parity: u16) -> Result<ErasureLayout, ErasureError> {
        let (k, m) = (usize::from(data), usize::from(parity));
        if data == 0 || parity == 0 || !ReedSolomonEncoder::supports(k, m) {
            return Err(ErasureError::BadParams { data, parity });
        }
        let per_shard = size.div_ceil(u64::from(data));
        let width = per_shard
            .div_ceil(WIDTH_ALIGN)
            .saturating_mul(WIDTH_ALIGN)
            .clamp(WIDTH_ALIGN, MAX_STRIPE_WIDTH);
        let stripes = size.div_ceil(width * u64::from(data)).max(1);
        Ok(ErasureLayout {
            size,
            data,
            parity,
            width,
            stripes,
        })
    }

    /// Bytes of every shard.
    pub fn shard_size(&self) -> u64 {
        self.width * self.stripes
    }

    /// k + m.
    pub fn total_shards(&self) -> usize {
        usize::from(self.data) + usize::from(self.parity)
    }

    /// k: shards needed to decode.
    pub fn data_shards(&self) -> usize {
        usize::from(self.data)
    }

    /// Bytes of a shard per stripe.
    pub fn width(&self) -> usize {
        self.width as usize
    }

    /// Number of stripes.
    pub fn stripes(&self) -> u64 {
        self.stripes
    }

    /// Size of the blob.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Blob bytes carried by stripe `index` (the last one may be partial or empty).
    pub fn stripe_payload(&self, index: u64) -> usize {
        let stripe_bytes = self.width * u64::from(self.data);
        let start = index.saturating_mul(stripe_bytes);
        self.size.saturating_sub(start).min(stripe_bytes) as usize
    }
}

/// Streams a blob into shards: feed bytes, receive each stripe's pieces through a sink,
/// get the shard ids at the end.
pub struct ShardEncoder {
    layout: ErasureLayout,
    encoder: ReedSolomonEncoder,
    stripe: Vec<u8>,
    fed: u64,
    shard_ids: Vec<BlobIdBuilder>,
}

impl ShardEncoder {
    /// An encoder for `layout`.
    pub fn new(layout: ErasureLayout) -> Result<ShardEncoder, ErasureError> {
        let encoder = ReedSolomonEncoder::new(
            layout.data_shards(),
            usize::from(layout.parity),
            layout.width(),
        )
        .map_err(codec)?;
        Ok(ShardEncoder {
            layout,
            encoder,
            stripe: Vec::with_capacity(layout.width() * layout.data_shards()),
            fed: 0,
            shard_ids: (0..layout.total_shards())
                .map(|_| BlobIdBuilder::new())
                .collect(),
        })
    }

    /// Feeds blob bytes; `sink(shard, piece)` receives each completed stripe's pieces.
    pub fn update<E>(
        &mut self,
        mut data: &[u8],
        sink: &mut impl FnMut(usize, &[u8]) -> Result<(), E>,
    ) -> Result<(), EncodeError<E>> {
        let stripe_bytes = self.layout.width() * self.layout.data_shards();
        self.fed += data.len() as u64;
        if self.fed > self.layout.size {
            return Err(EncodeError::Erasure(ErasureError::WrongSize {
                expected: self.layout.size,
                found: self.fed,
            }));
        }
        while !data.is_empty() {
            let take = (stripe_bytes - self.stripe.len()).min(data.len());
            self.stripe.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.stripe.len() == stripe_bytes {
                self.flush_stripe(sink)?;
            }
        }
        Ok(())
    }

    fn flush_stripe<E>(
        &mut self,
        sink: &mut impl FnMut(usize, &[u8]) -> Result<(), E>,
    ) -> Result<(), EncodeError<E>> {
        let w = self.layout.width();
        self.stripe.resize(w * self.layout.data_shards(), 0);
        for (i, piece) in self.stripe.chunks(w).enumerate() {
            self.encoder
                .add_original_shard(piece)
                .map_err(|e| EncodeError::Erasure(codec(e)))?;
            self.shard_ids[i].update(piece);
            sink(i, piece).map_err(EncodeError::Sink)?;
        }
        let result = self
            .encoder
            .encode()
            .map_err(|e| EncodeError::Erasure(codec(e)))?;
        let k = self.layout.data_shards();
        for (j, piece) in result.recovery_iter().enumerate() {
            self.shard_ids[k + j].update(piece);
            sink(k + j, piece).map_err(EncodeError::Sink)?;
        }
        self.stripe.clear();
        Ok(())
    }

    /// Pads and encodes the last stripe; returns the ids of the data then parity shards.
    pub fn finish<E>(
        mut self,
        sink: &mut impl FnMut(usize, &[u8]) -> Result<(), E>,
    ) -> Result<Vec<BlobId>, EncodeError<E>> {
        if self.fed != self.layout.size {
            return Err(EncodeError::Erasure(ErasureError::WrongSize {
                expected: self.layout.size,
                found: self.fed,
            }));
        }
        let stripe_bytes = (self.layout.width() * self.layout.data_shards()) as u64;
        let done = self.fed / stripe_bytes;
        if done < self.layout.stripes {
            self.flush_stripe(sink)?;
        }
        Ok(self.shard_ids.into_iter().map(|b| b.finish().0).collect())
    }
}

/// An encoding failure: the code's, or the sink's.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError<E> {
    /// The code failed.
    #[error(transparent)]
    Erasure(ErasureError),
    /// The sink (usually storage) failed.
    #[error("shard sink failed: {0}")]
    Sink(E),
}

/// Rebuilds blob bytes stripe by stripe from any k shards' pieces.
pub struct ShardDecoder {
    layout: ErasureLayout,
    decoder: ReedSolomonDecoder,
}

impl ShardDecoder {
    /// A decoder for `layout`.
    pub fn new(layout: ErasureLayout) -> Result<ShardDecoder, ErasureError> {
        let decoder = ReedSolomonDecoder::new(
            layout.data_shards(),
            usize::from(layout.parity),
            layout.width(),
        )
        .map_err(codec)?;
        Ok(ShardDecoder { layout, decoder })
    }

    /// The blob bytes of stripe `index`, from `pieces[shard]` (`None` for missing shards).
    pub fn stripe(
        &mut self,
        index: u64,
        pieces: &[Option<&[u8]>],
    ) -> Result<Vec<u8>, ErasureError> {
        let (k, w) = (self.layout.data_shards(), self.layout.width());
        let have = pieces.iter().flatten().count();
        if have < k {
            return Err(ErasureError::NotEnoughShards { have, need: k });
        }
        if let Some(bad) = pieces.iter().flatten().find(|p| p.len() != w) {
            return Err(ErasureError::WrongLength {
                expected: w,
                found: bad.len(),
            });
        }
        let mut out = Vec::with_capacity(k * w);
        if pieces[..k].iter().all(Option::is_some) {
            // Every data piece is here: no decoding needed.
            pieces[..k]
                .iter()
                .flatten()
                .for_each(|p| out.extend_from_slice(p));
        } else {
            self.decoder
                .reset(k, usize::from(self.layout.parity), w)
                .map_err(codec)?;
            for (i, piece) in pieces.iter().enumerate() {
                match piece {
                    Some(p) if i < k => self.decoder.add_original_shard(i, p).map_err(codec)?,
                    Some(p) => self.decoder.add_recovery_shard(i - k, p).map_err(codec)?,
                    None => {}
                }
            }
            let restored = self.decoder.decode().map_err(codec)?;
            for (i, piece) in pieces[..k].iter().enumerate() {
                match piece.or_else(|| restored.restored_original(i)) {
                    Some(p) => out.extend_from_slice(p),
                    None => return Err(ErasureError::NotEnoughShards { have, need: k }),
                }
            }
        }
        out.truncate(self.layout.stripe_payload(index));
        Ok(out)
    }
}

/// Encodes a whole in-memory blob: the shards and their ids (tests, small blobs).
pub fn encode_all(
    data: &[u8],
    layout: ErasureLayout,
) -> Result<(Vec<Vec<u8>>, Vec<BlobId>), ErasureError> {
    let mut shards = vec![Vec::with_capacity(layout.shard_size() as usize); layout.total_shards()];
    let mut enc = ShardEncoder::new(layout)?;
    let mut sink = |i: usize, piece: &[u8]| -> Result<(), std::convert::Infallible> {
        shards[i].extend_from_slice(piece);
        Ok(())
    };
    let unwrap = |e: EncodeError<std::convert::Infallible>| match e {
        EncodeError::Erasure(e) => e,
        EncodeError::Sink(never) => match never {},
    };
    enc.update(data, &mut sink).map_err(unwrap)?;
    let ids = enc.finish(&mut sink).map_err(unwrap)?;
    Ok((shards, ids))
}

/// Decodes a whole blob from whole shards (`None` for missing ones).
pub fn decode_all(
    layout: ErasureLayout,
    shards: &[Option<Vec<u8>>],
) -> Result<Vec<u8>, ErasureError> {
    let mut dec = ShardDecoder::new(layout)?;
    let w = layout.width();
    let mut out = Vec::with_capacity(layout.size() as usize);
    for s in 0..layout.stripes() {
        let range = s as usize * w..(s as usize + 1) * w;
        let pieces: Vec<Option<&[u8]>> = shards
            .iter()
            .map(|sh| sh.as_ref().and_then(|v| v.get(range.clone())))
            .collect();
        out.extend(dec.stripe(s, &pieces)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn data(len: usize, seed: u8) -> Vec<u8> {
        (0..len as u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8 ^ seed)
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// Any k of k+m shards rebuild the blob; shard ids are the BlobIds of shard bytes.
        #[test]
        fn any_k_shards_decode(
            size in prop_oneof![Just(0usize), Just(1), 0usize..2_000_000],
            k in 1u16..6, m in 1u16..4, seed in any::<u8>(), drop_seed in any::<u64>()
        ) {
            let blob = data(size, seed);
            let layout = ErasureLayout::new(size as u64, k, m).expect("layout");
            let (shards, ids) = encode_all(&blob, layout).expect("encode");
            prop_assert_eq!(shards.len(), usize::from(k + m));
            for (s, id) in shards.iter().zip(&ids) {
                prop_assert_eq!(s.len() as u64, layout.shard_size());
                prop_assert_eq!(BlobId::of(s), *id);
            }
            // Drop m shards chosen by the seed.
            let mut present: Vec<Option<Vec<u8>>> = shards.into_iter().map(Some).collect();
            let mut x = drop_seed | 1;
            for _ in 0..m {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                let alive: Vec<usize> = (0..present.len()).filter(|i| present[*i].is_some()).collect();
                present[alive[(x % alive.len() as u64) as usize]] = None;
            }
            prop_assert_eq!(decode_all(layout, &present).expect("decode"), blob);
        }
    }

    #[test]
    fn too_few_shards_is_a_clear_error() {
        let layout = ErasureLayout::new(10_000, 4, 2).expect("layout");
        let (shards, _) = encode_all(&data(10_000, 1), layout).expect("encode");
        let mut present: Vec<Option<Vec<u8>>> = shards.into_iter().map(Some).collect();
        for slot in present.iter_mut().take(3) {
            *slot = None;
        }
        assert_eq!(
            decode_all(layout, &present),
            Err(ErasureError::NotEnoughShards { have: 3, need: 4 })
        );
    }

    #[test]
    fn layout_is_small_for_small_blobs_and_bounded_for_large() {
        let small = ErasureLayout::new(1000, 4, 2).expect("layout");
        assert_eq!(small.shard_size(), 256);
        let large = ErasureLayout::new(1 << 30, 4, 2).expect("layout");
        assert_eq!(large.width() as u64, MAX_STRIPE_WIDTH);
        assert_eq!(large.shard_size(), 1 << 28);
        assert!(ErasureLayout::new(1, 0, 2).is_err());
    }

    #[test]
    fn encoder_refuses_the_wrong_number_of_bytes() {
        let layout = ErasureLayout::new(100, 2, 1).expect("layout");
        let mut enc = ShardEncoder::new(layout).expect("encoder");
        let mut sink = |_: usize, _: &[u8]| Ok::<(), ()>(());
        assert!(enc.update(&[0; 101], &mut sink).is_err());
        let enc = ShardEncoder::new(layout).expect("encoder");
        assert!(enc.finish(&mut sink).is_err());
    }
}
