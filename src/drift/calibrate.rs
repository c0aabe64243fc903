//! Permutation nulls, empirical p-values and quantiles for `threshold: auto` and permutation tests. No I/O.
//!
//! A permutation null relabels the pooled windows at their real sizes and recomputes the statistic.
//! The p-value is `(1 + #{null >= observed}) / (B + 1)`, which is exactly valid (P(p <= a) <= a under
//! exchangeability). The reported threshold is the `1 - alpha` quantile of the null (type 7 interpolation).

use rand::Rng as _;
use rayon::prelude::*;

use super::rng::{self, Rng};

/// Empirical permutation p-value of `observed` against `null`.
pub fn permutation_p(observed: f64, null: &[f64]) -> f64 {
    if null.is_empty() {
        return 1.0;
    }
    // A tiny relative tolerance keeps ties (e.g. identical windows) on the conservative side.
    let tol = 1e-12 * observed.abs().max(1e-300);
    let exceed = null.iter().filter(|&&v| v >= observed - tol).count();
    (1 + exceed) as f64 / (null.len() + 1) as f64
}

/// The `1 - alpha` quantile of the null (linear interpolation between order statistics).
pub fn upper_quantile(null: &[f64], alpha: f64) -> f64 {
    quantile(null, 1.0 - alpha)
}

/// Quantile `q` in [0, 1] of the values (type 7, like numpy's default).
pub fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_unstable_by(f64::total_cmp);
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = pos - lo as f64;
    v[lo] + (v[hi] - v[lo]) * frac
}

/// Draws `b` permutations of `0..total` in parallel; `stat(first, second)` gets the relabelled groups
/// (the first `n_first` indices and the rest). Each permutation has its own seeded stream, so the null
/// is the same on any number of threads.
pub fn permutation_null<F>(rng: &mut Rng, b: usize, total: usize, n_first: usize, stat: F) -> Vec<f64>
where
    F: Fn(&[u32], &[u32]) -> f64 + Sync,
{
    let base: u64 = rng.random();
    let k = n_first.min(total);
    // Draw the smaller group as a uniform random subset (partial Fisher–Yates); the rest is the other.
    let small = k.min(total - k);
    (0..b)
        .into_par_iter()
        .map(|i| {
            let mut r = rng::child(base, i as u64);
            let mut idx: Vec<u32> = (0..total as u32).collect();
            for j in 0..small {
                let s = r.random_range(j..total);
                idx.swap(j, s);
            }
            if small == k {
                let (a, c) = idx.split_at(k);
                stat(a, c)
            } else {
                let (c, a) = idx.split_at(small);
                stat(a, c)
            }
        })
        .collect()
}

/// Random relabellings as boolean masks (`true` = first group), for statistics that sweep pooled data.
pub fn permutation_masks(rng: &mut Rng, b: usize, total: usize, n_first: usize) -> Vec<Vec<bool>> {
    let base: u64 = rng.random();
    let k = n_first.min(total);
    let small = k.min(total - k);
    let small_is_first = small == k;
    (0..b)
        .into_par_iter()
        .map(|i| {
            let mut r = rng::child(base, i as u64);
            let mut idx: Vec<u32> = (0..total as u32).collect();
            let mut mask = vec![!small_is_first; total];
            for j in 0..small {
                let s = r.random_range(j..total);
                idx.swap(j, s);
                mask[idx[j] as usize] = small_is_first;
            }
            mask
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_score_above_every_null_draw_gets_the_smallest_p_value() {
        let null: Vec<f64> = (0..99).map(|i| i as f64).collect();
        assert!((permutation_p(1000.0, &null) - 0.01).abs() < 1e-12);
        assert!((permutation_p(-1.0, &null) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn quantiles_interpolate_like_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert!((quantile(&v, 0.5) - 2.5).abs() < 1e-12);
        assert!((quantile(&v, 0.95) - 3.85).abs() < 1e-12);
    }

    #[test]
    fn permutations_are_the_same_for_the_same_seed() {
        let mut a = rand::SeedableRng::seed_from_u64(7);
        let mut b = rand::SeedableRng::seed_from_u64(7);
        let f = |x: &[u32], _: &[u32]| x.iter().map(|&v| v as f64).sum::<f64>();
        assert_eq!(
            permutation_null(&mut a, 16, 50, 10, f),
            permutation_null(&mut b, 16, 50, 10, f)
        );
    }
}
