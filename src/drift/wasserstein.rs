//! Wasserstein-1 (Earth Mover's) distances: exact 1-D, sliced over seeded random directions for
//! embeddings, and per principal component. No I/O.
//!
//! The permutation null of the sliced distance sorts each direction once and sweeps relabelled points
//! (no re-sorting per permutation). For big windows it runs on a pooled subsample of at most
//! [`NULL_CAP`] points (same reference:comparison ratio) and is rescaled by
//! `sqrt(n'm'/(n'+m')) / sqrt(nm/(n+m))`: the scaled empirical W1 has a size-free limit law under the
//! null (Donsker), so the rescaled null quantile matches the one at the real sizes asymptotically.

use ndarray::{Array2, ArrayView2, Axis};
use rayon::prelude::*;

use super::defaults::Plan;
use super::rng::{self, Rng};
use super::{Verdict, calibrate, decide, linalg};

/// Pooled points used to build the sliced null.
pub const NULL_CAP: usize = 8000;

/// Exact W1 between two empirical distributions given sorted samples: the integral of |F - G|.
pub fn w1_sorted(a: &[f64], b: &[f64]) -> f64 {
    let (n, m) = (a.len(), b.len());
    if n == 0 || m == 0 {
        return 0.0;
    }
    let (mut i, mut j) = (0, 0);
    let mut total = 0.0;
    let mut last = a[0].min(b[0]);
    while i < n || j < m {
        let x = if j >= m || (i < n && a[i] <= b[j]) {
            a[i]
        } else {
            b[j]
        };
        let diff = (i as f64 / n as f64 - j as f64 / m as f64).abs();
        total += diff * (x - last);
        last = x;
        while i < n && a[i] == x {
            i += 1;
        }
        while j < m && b[j] == x {
            j += 1;
        }
    }
    total
}

/// Exact W1 of two 1-D samples (scipy.stats.wasserstein_distance).
pub fn w1(a: &[f64], b: &[f64]) -> f64 {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort_unstable_by(f64::total_cmp);
    b.sort_unstable_by(f64::total_cmp);
    w1_sorted(&a, &b)
}

/// Random unit directions `[d, l]`.
pub fn directions(d: usize, l: usize, rng: &mut Rng) -> Array2<f32> {
    let mut w = Array2::from_shape_fn((d, l), |_| rng::normal(rng));
    for mut col in w.columns_mut() {
        let norm = col.dot(&col).sqrt().max(1e-300);
        col.mapv_inplace(|v| v / norm);
    }
    w.mapv(|v| v as f32)
}

/// Sliced W1 over `plan.projections` random directions: the mean of the exact 1-D distances.
pub fn sliced(
    plan: &Plan,
    reference: ArrayView2<f32>,
    comparison: ArrayView2<f32>,
    rng: &mut Rng,
) -> Verdict {
    let w = directions(reference.ncols(), plan.projections, rng);
    let pr = linalg::project(reference, None, w.view());
    let pc = linalg::project(comparison, None, w.view());
    let score = mean_w1(pr.view(), pc.view());
    decide(plan, score, None, || {
        null(pr.view(), pc.view(), plan.permutations, rng)
    })
}

/// Mean over columns of the exact W1 between the two windows' columns.
pub fn mean_w1(reference: ArrayView2<f32>, comparison: ArrayView2<f32>) -> f64 {
    let l = reference.ncols();
    if l == 0 {
        return 0.0;
    }
    let sum: f64 = (0..l)
        .into_par_iter()
        .map(|j| {
            let a: Vec<f64> = reference.column(j).iter().map(|&v| f64::from(v)).collect();
            let b: Vec<f64> = comparison.column(j).iter().map(|&v| f64::from(v)).collect();
            w1(&a, &b)
        })
        .sum();
    sum / l as f64
}

/// Exact W1 per principal component; the score is their mean.
pub fn per_component(
    plan: &Plan,
    reference: ArrayView2<f64>,
    comparison: ArrayView2<f64>,
    rng: &mut Rng,
) -> Verdict {
    let r = reference.mapv(|v| v as f32);
    let c = comparison.mapv(|v| v as f32);
    let score = mean_w1(r.view(), c.view());
    decide(plan, score, None, || {
        null(r.view(), c.view(), plan.permutations, rng)
    })
}

/// Permutation null of the mean column W1 (subsampled and rescaled above [`NULL_CAP`]).
pub fn null(reference: ArrayView2<f32>, comparison: ArrayView2<f32>, b: usize, rng: &mut Rng) -> Vec<f64> {
    let (n, m) = (reference.nrows(), comparison.nrows());
    let total = n + m;
    let (ns, ms) = if total <= NULL_CAP {
        (n, m)
    } else {
        let ns = ((NULL_CAP as f64 * n as f64 / total as f64).round() as usize).clamp(2, n);
        (ns, (NULL_CAP - ns).clamp(2, m))
    };
    let ri = rng::subset(rng, n, ns);
    let ci = rng::subset(rng, m, ms);
    let pooled = ndarray::concatenate(
        Axis(0),
        &[
            reference.select(Axis(0), &ri).view(),
            comparison.select(Axis(0), &ci).view(),
        ],
    )
    .unwrap_or_else(|_| Array2::zeros((0, reference.ncols())));
    let scale = ((ns * ms) as f64 / (ns + ms) as f64 / ((n * m) as f64 / total as f64)).sqrt();
    let sorted: Vec<(Vec<f64>, Vec<u32>)> = (0..pooled.ncols())
        .into_par_iter()
        .map(|j| {
            let mut pairs: Vec<(f64, u32)> = pooled
                .column(j)
                .iter()
                .enumerate()
                .map(|(i, &v)| (f64::from(v), i as u32))
                .collect();
            pairs.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
            pairs.into_iter().unzip()
        })
        .collect();
    let masks = calibrate::permutation_masks(rng, b, ns + ms, ns);
    let l = sorted.len().max(1) as f64;
    masks
        .par_iter()
        .map(|mask| {
            let s: f64 = sorted.iter().map(|(v, idx)| sweep(v, idx, mask, ns, ms)).sum();
            s / l * scale
        })
        .collect()
}

/// W1 between the `true` and `false` points of sorted pooled values.
fn sweep(values: &[f64], idx: &[u32], mask: &[bool], na: usize, nb: usize) -> f64 {
    let (mut ca, mut cb) = (0usize, 0usize);
    let mut total = 0.0;
    let (fa, fb) = (1.0 / na as f64, 1.0 / nb as f64);
    for t in 0..values.len().saturating_sub(1) {
        if mask[idx[t] as usize] {
            ca += 1;
        } else {
            cb += 1;
        }
        total += (ca as f64 * fa - cb as f64 * fb).abs() * (values[t + 1] - values[t]);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn w1_of_shifted_samples_is_the_shift() {
        let a: Vec<f64> = (0..100).map(f64::from).collect();
        let b: Vec<f64> = a.iter().map(|v| v + 2.5).collect();
        assert!((w1(&a, &b) - 2.5).abs() < 1e-12);
    }

    #[test]
    fn w1_handles_unequal_sizes_and_ties() {
        // scipy.stats.wasserstein_distance([0, 1, 3], [5, 6, 8, 8]) = 65 / 12
        assert!((w1(&[0.0, 1.0, 3.0], &[5.0, 6.0, 8.0, 8.0]) - 65.0 / 12.0).abs() < 1e-12);
        assert_eq!(w1(&[1.0, 1.0], &[1.0]), 0.0);
    }

    #[test]
    fn the_sweep_agrees_with_the_direct_distance() {
        let values = [0.0, 1.0, 2.0, 3.0, 4.0, 7.0];
        let idx = [0u32, 1, 2, 3, 4, 5];
        let mask = [true, false, true, true, false, false];
        let direct = w1(&[0.0, 2.0, 3.0], &[1.0, 4.0, 7.0]);
        assert!((sweep(&values, &idx, &mask, 3, 3) - direct).abs() < 1e-12);
    }
}
