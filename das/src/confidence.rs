//! How sure random sampling makes a light client.
//!
//! Data is unrecoverable only if at least `(k0+1)·(k1+1)·…` cells are withheld (a
//! corner one larger than a quadrant on every axis). A client drawing `s` distinct cells
//! uniformly misses a withheld set of `w` out of `n` cells with probability
//! `C(n−w, s) / C(n, s) = ∏_{i<s} (n−w−i)/(n−i)`: sampling without replacement, exactly.

use crate::params::CodeParams;

/// Probability that `samples` distinct uniform draws from `total` cells all avoid a fixed
/// set of `withheld` cells.
pub fn miss_probability(total: u64, withheld: u64, samples: u64) -> f64 {
    if samples > total - withheld.min(total) {
        return 0.0;
    }
    (0..samples)
        .map(|i| (total - withheld - i) as f64 / (total - i) as f64)
        .product()
}

/// Confidence that data laid out by `params` is available after `samples` distinct
/// samples all succeeded: one minus the chance of missing a minimal unrecoverable set.
pub fn confidence(params: &CodeParams, samples: u64) -> f64 {
    1.0 - miss_probability(
        params.total_cells(),
        params.min_unrecoverable_cells(),
        samples,
    )
}

/// Fewest distinct samples giving at least `target` confidence, or `None` if even
/// sampling every cell that could be withheld-free does not (target of 1 or more).
pub fn samples_needed(params: &CodeParams, target: f64) -> Option<u64> {
    let (total, withheld) = (params.total_cells(), params.min_unrecoverable_cells());
    let allowed_miss = 1.0 - target;
    let mut miss = 1.0;
    for s in 0..=total - withheld {
        if miss <= allowed_miss {
            return Some(s);
        }
        miss *= (total - withheld - s) as f64 / (total - s) as f64;
    }
    (miss <= allowed_miss).then_some(total - withheld + 1)
}

#[cfg(test)]
mod tests {
    use rand::{rngs::StdRng, seq::index::sample, SeedableRng};

    use super::*;
    use crate::params::ROW_DATA_BYTES;

    #[test]
    fn closed_form_matches_monte_carlo() {
        // A small grid so that misses are frequent enough to count.
        let (total, withheld, samples) = (512u64, 130u64, 12u64);
        let exact = miss_probability(total, withheld, samples);
        let mut rng = StdRng::seed_from_u64(7);
        let trials = 200_000;
        let misses = (0..trials)
            .filter(|_| {
                sample(&mut rng, total as usize, samples as usize)
                    .iter()
                    .all(|c| c as u64 >= withheld)
            })
            .count();
        let estimate = misses as f64 / trials as f64;
        let sigma = (exact * (1.0 - exact) / trials as f64).sqrt();
        assert!(
            (estimate - exact).abs() < 5.0 * sigma,
            "exact {exact}, estimate {estimate}"
        );
    }

    #[test]
    fn edge_cases_and_inverse() {
        assert_eq!(miss_probability(10, 3, 0), 1.0);
        assert_eq!(miss_probability(10, 3, 8), 0.0);
        assert_eq!(miss_probability(10, 0, 10), 1.0);
        let p = CodeParams::for_data(2, 40 * ROW_DATA_BYTES as u64).expect("fits");
        let s = samples_needed(&p, 0.9999).expect("reachable");
        assert!(confidence(&p, s) >= 0.9999);
        assert!(confidence(&p, s - 1) < 0.9999);
        // One dimension: 65 of 128 cells withheld; 14 samples give 1 - 2^-14-ish.
        let one = CodeParams::for_data(1, 1).expect("fits");
        assert_eq!(one.min_unrecoverable_cells(), 65);
        assert!(confidence(&one, 14) > 0.9999);
        assert_eq!(samples_needed(&one, 2.0), None);
    }
}
