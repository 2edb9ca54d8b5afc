//! Reed-Solomon along one further axis: `k` values extended to `2k`, over Fr and over G1.
//!
//! Positions follow EIP-7594's convention on every axis: position `p` of a line of `2k`
//! is the evaluation at `ω^brp(p)` for a `2k`-th root of unity `ω`, so the first `k`
//! positions are the original values (evaluations over the `k`-th roots, bit-reversed) and
//! the last `k` their extension (the same over the coset `ω·H_k`). Because the map is
//! linear, extending KZG commitments or proofs in G1 gives the commitments or proofs of the
//! extended data.

use ekzg_bls12_381::{batch_inversion::batch_inverse, traits::*, G1Projective, Scalar};
use ekzg_polynomial::{domain::Domain, poly_coeff::vanishing_poly, CosetFFT};

/// Why a line could not be recovered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// Fewer than half of the line's values are known.
    #[error("{known} of {len} values known; at least {needed} are needed")]
    TooFewKnown {
        /// Values present.
        known: usize,
        /// Line length.
        len: usize,
        /// Values needed.
        needed: usize,
    },
    /// The known values are not evaluations of one polynomial of degree below `k`.
    #[error("the known values are not a codeword")]
    Inconsistent,
    /// The line does not have `2k` positions, or its known positions differ in lanes.
    #[error("malformed line: {0}")]
    Malformed(&'static str),
}

/// Reverses the low `bits` bits of `i`.
pub(crate) fn reverse_bits(i: usize, bits: u32) -> usize {
    if bits == 0 {
        0
    } else {
        i.reverse_bits() >> (usize::BITS - bits)
    }
}

/// Permutes `values` (a power-of-two length) into bit-reversed order, in place.
pub(crate) fn bit_reverse<T>(values: &mut [T]) {
    let bits = values.len().trailing_zeros();
    for i in 0..values.len() {
        let j = reverse_bits(i, bits);
        if i < j {
            values.swap(i, j);
        }
    }
}

/// The code of one axis of original length `k` (a power of two).
#[derive(Debug)]
pub(crate) struct LineCode {
    k: usize,
    /// Roots of unity of order `k`: the original positions.
    half: Domain,
    /// Roots of unity of order `2k`: the whole line.
    full: Domain,
    /// The coset `ω_2k · H_k` holding the extension.
    extension: CosetFFT,
    /// A coset disjoint from the full domain, for dividing by the vanishing polynomial.
    outside: CosetFFT,
    /// `ω_2k^i / k`: interpolation's `1/k` and the shift to the extension coset, in one factor.
    g1_factors: Vec<Scalar>,
}

impl LineCode {
    /// The code for an axis of `k` original values.
    pub(crate) fn new(k: usize) -> LineCode {
        assert!(k.is_power_of_two(), "axis lengths are powers of two");
        let full = Domain::new(2 * k);
        let inv_k = Scalar::from(k as u64).invert().unwrap_or(Scalar::ONE);
        let g1_factors = std::iter::successors(Some(inv_k), |f| Some(f * full.generator))
            .take(k)
            .collect();
        LineCode {
            g1_factors,
            k,
            half: Domain::new(k),
            extension: CosetFFT::new(full.generator),
            full,
            outside: CosetFFT::new(Scalar::MULTIPLICATIVE_GENERATOR),
        }
    }

    /// Original length.
    pub(crate) fn k(&self) -> usize {
        self.k
    }

    /// The `k` extension values of `k` original values.
    pub(crate) fn extend_scalars(&self, originals: &[Scalar]) -> Vec<Scalar> {
        debug_assert_eq!(originals.len(), self.k);
        let mut values = originals.to_vec();
        bit_reverse(&mut values);
        let coeffs = self.half.ifft_scalars(values);
        let mut extension = self.half.coset_fft_scalars(coeffs, &self.extension);
        bit_reverse(&mut extension);
        extension
    }

    /// The same extension applied to group elements (commitments or proofs).
    ///
    /// Scalar multiplications dominate, so interpolation is a forward FFT read backwards
    /// (`ifft(x)_i = fft(x)_{-i} / k`) and its `1/k` is folded into the coset shift.
    pub(crate) fn extend_g1(&self, originals: &[G1Projective]) -> Vec<G1Projective> {
        debug_assert_eq!(originals.len(), self.k);
        let mut points = originals.to_vec();
        bit_reverse(&mut points);
        let transformed = self.half.fft_g1(points);
        let shifted: Vec<G1Projective> = (0..self.k)
            .map(|i| transformed[(self.k - i) % self.k] * self.g1_factors[i])
            .collect();
        let mut extension = self.half.fft_g1(shifted);
        bit_reverse(&mut extension);
        extension
    }

    /// Fills the missing positions of `lanes` parallel lines sharing one erasure pattern.
    ///
    /// `known[p]` says whether position `p` is present; `values[p]` holds that position's
    /// `lanes` values (anything where unknown) and receives the recovered ones.
    pub(crate) fn recover(
        &self,
        known: &[bool],
        values: &mut [Vec<Scalar>],
    ) -> Result<(), LineError> {
        let len = 2 * self.k;
        if known.len() != len || values.len() != len {
            return Err(LineError::Malformed("a line must have 2k positions"));
        }
        let mut lanes_known = known.iter().zip(values.iter()).filter(|(k, _)| **k);
        let lanes = lanes_known.next().map_or(0, |(_, v)| v.len());
        if lanes_known.any(|(_, v)| v.len() != lanes) {
            return Err(LineError::Malformed(
                "known positions must hold the same number of lanes",
            ));
        }
        let bits = len.trailing_zeros();
        let present = known.iter().filter(|&&k| k).count();
        if present == len {
            return Ok(());
        }
        if present < self.k {
            return Err(LineError::TooFewKnown {
                known: present,
                len,
                needed: self.k,
            });
        }
        let missing_roots: Vec<Scalar> = (0..len)
            .filter(|&p| !known[p])
            .map(|p| self.full.roots[reverse_bits(p, bits)])
            .collect();
        let z = vanishing_poly(&missing_roots);
        let z_eval = self.full.fft_scalars(z.clone());
        let mut z_outside_inv = self.full.coset_fft_scalars(z, &self.outside);
        batch_inverse(&mut z_outside_inv);

        for lane in 0..lanes {
            // E·Z in the natural order of the domain; Z zeroes the unknown positions.
            let ez: Vec<Scalar> = (0..len)
                .map(|e| {
                    let p = reverse_bits(e, bits);
                    if known[p] {
                        values[p][lane] * z_eval[e]
                    } else {
                        Scalar::ZERO
                    }
                })
                .collect();
            let ez_coeffs = self.full.ifft_scalars(ez);
            let quotient: Vec<Scalar> = self
                .full
                .coset_fft_scalars(ez_coeffs, &self.outside)
                .into_iter()
                .zip(&z_outside_inv)
                .map(|(a, b)| a * b)
                .collect();
            let coeffs = self.full.coset_ifft_scalars(quotient, &self.outside);
            if coeffs[self.k..].iter().any(|c| !bool::from(c.is_zero())) {
                return Err(LineError::Inconsistent);
            }
            let evals = self.full.fft_scalars(coeffs[..self.k].to_vec().into());
            for (p, slot) in values.iter_mut().enumerate() {
                if !known[p] {
                    slot.resize(lanes, Scalar::ZERO);
                    slot[lane] = evals[reverse_bits(p, bits)];
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use ekzg_bls12_381::traits::Curve;

    use super::*;

    fn scalars(n: usize, seed: u64) -> Vec<Scalar> {
        (0..n as u64)
            .map(|i| Scalar::from(seed * 1000 + i * i + 7))
            .collect()
    }

    #[test]
    fn extension_is_systematic_and_recoverable_from_any_half() {
        for k in [1usize, 2, 8, 32] {
            let code = LineCode::new(k);
            let originals = scalars(k, k as u64);
            let mut line = originals.clone();
            line.extend(code.extend_scalars(&originals));
            // Any k positions recover the rest; here the odd positions, then the extension.
            for pattern in [0usize, 1] {
                let known: Vec<bool> = (0..2 * k)
                    .map(|p| {
                        if pattern == 0 {
                            p % 2 == 1 || k == 1 && p == 0
                        } else {
                            p >= k
                        }
                    })
                    .collect();
                let mut values: Vec<Vec<Scalar>> = line
                    .iter()
                    .zip(&known)
                    .map(|(v, &kn)| vec![if kn { *v } else { Scalar::ZERO }; 3])
                    .collect();
                code.recover(&known, &mut values).expect("half is enough");
                for (v, want) in values.iter().zip(&line) {
                    assert_eq!(v, &vec![*want; 3]);
                }
            }
        }
    }

    #[test]
    fn too_few_or_inconsistent_values_are_refused() {
        let code = LineCode::new(4);
        let originals = scalars(4, 3);
        let mut line = originals.clone();
        line.extend(code.extend_scalars(&originals));
        let known = [true, true, true, false, false, false, false, false];
        let mut values: Vec<Vec<Scalar>> = line.iter().map(|v| vec![*v]).collect();
        assert!(matches!(
            code.recover(&known, &mut values),
            Err(LineError::TooFewKnown { known: 3, .. })
        ));
        let known = [true, true, true, true, true, false, false, false];
        values[4][0] += Scalar::ONE;
        assert_eq!(
            code.recover(&known, &mut values),
            Err(LineError::Inconsistent)
        );
    }

    #[test]
    fn malformed_lines_are_refused_not_indexed() {
        let code = LineCode::new(4);
        let mut values: Vec<Vec<Scalar>> = scalars(8, 1).into_iter().map(|v| vec![v]).collect();
        assert!(matches!(
            code.recover(&[true; 7], &mut values),
            Err(LineError::Malformed(_))
        ));
        assert!(matches!(
            code.recover(&[true; 8], &mut values[..6]),
            Err(LineError::Malformed(_))
        ));
        values[2].push(Scalar::ONE);
        let known = [true, true, true, true, true, false, false, false];
        assert!(matches!(
            code.recover(&known, &mut values),
            Err(LineError::Malformed(_))
        ));
    }

    #[test]
    fn g1_extension_matches_scalar_extension() {
        let code = LineCode::new(8);
        let originals = scalars(8, 5);
        let g = G1Projective::generator();
        let points: Vec<G1Projective> = originals.iter().map(|s| g * s).collect();
        let extended = code.extend_g1(&points);
        for (p, s) in extended.iter().zip(code.extend_scalars(&originals)) {
            assert_eq!(p.to_affine(), (g * s).to_affine());
        }
    }
}
