//! Wasserstein-1 (Earth Mover's) distances: exact 1-D, sliced over seeded random directions for
//! embeddings, and per principal component. No I/O.
//!
//! The permutation null of the sliced distance sorts each direction once and sweeps relabelled points
//! (no re-sorting per permutation). For big windows it runs on a pooled subsample of at most
//! [`NULL_CAP`] points (same reference:comparison ratio) and is rescaled by
//! `sqrt(n'm'/(n'+m')) / sqrt(nm/(n+m))`: the scaled empirical W1 has a size-free limit law under the
//! null (Donsker), so the rescaled null quantile matches the one at the real sizes asymptotically.

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use super::defaults::Plan;
use super::rng::{self, Rng};
use super::{Verdict, calibrate, decide, linalg};

/// Pooled points used to build the sliced null.
pub const NULL_CAP: usize = 8000;

/// Exact W1 between two empirical distributions given sorted samples: the integral of |F - G|.
pub fn w1_sorted<T: Copy + PartialOrd + Into<f64>>(a: &[T], b: &[T]) -> f64 {
    let (n, m) = (a.len(), b.len());
    if n == 0 || m == 0 {
        return 0.0;
    }
    let (mut i, mut j) = (0, 0);
    let mut total = 0.0;
    let first = if a[0] <= b[0] { a[0] } else { b[0] };
    let mut last: f64 = first.into();
    while i < n || j < m {
        let x = if j >= m || (i < n && a[i] <= b[j]) {
            a[i]
        } else {
            b[j]
        };
        let xf: f64 = x.into();
        let diff = (i as f64 / n as f64 - j as f64 / m as f64).abs();
        total += diff * (xf - last);
        last = xf;
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
    let pr = linalg::project_rows(reference, w.view());
    let pc = linalg::project_rows(comparison, w.view());
    let score = mean_w1(pr.view(), pc.view());
    decide(plan, score, None, || {
        null(pr.view(), pc.view(), plan.permutations, rng)
    })
}

/// Mean over rows (one row per direction or component, `[l, n]`) of the exact W1 between the two
/// windows' rows. f32 radix sorts; NaN-free input (validated upstream).
pub fn mean_w1(reference: ArrayView2<f32>, comparison: ArrayView2<f32>) -> f64 {
    let l = reference.nrows();
    if l == 0 {
        return 0.0;
    }
    let sum: f64 = (0..l)
        .into_par_iter()
        .map(|j| {
            let mut a = reference.row(j).to_vec();
            let mut b = comparison.row(j).to_vec();
            radsort::sort(&mut a);
            radsort::sort(&mut b);
            w1_sorted(&a, &b)
        })
        .sum();
    sum / l as f64
}

/// Exact W1 per principal component (`[n, k]` scores); the score is their mean.
pub fn per_component(
    plan: &Plan,
    reference: ArrayView2<f64>,
    comparison: ArrayView2<f64>,
    rng: &mut Rng,
) -> Verdict {
    let by_component =
        |x: ArrayView2<f64>| Array2::from_shape_fn((x.ncols(), x.nrows()), |(j, i)| x[[i, j]] as f32);
    let (r, c) = (by_component(reference), by_component(comparison));
    let score = mean_w1(r.view(), c.view());
    decide(plan, score, None, || {
        null(r.view(), c.view(), plan.permutations, rng)
    })
}

/// Permutation null of the mean row W1 (`[l, n]` inputs; subsampled and rescaled above [`NULL_CAP`]).
pub fn null(reference: ArrayView2<f32>, comparison: ArrayView2<f32>, b: usize, rng: &mut Rng) -> Vec<f64> {
    let (n, m) = (reference.ncols(), comparison.ncols());
    let total = n + m;
    let (ns, ms) = if total <= NULL_CAP {
        (n, m)
    } else {
        let ns = ((NULL_CAP as f64 * n as f64 / total as f64).round() as usize).clamp(2, n);
        (ns, (NULL_CAP - ns).clamp(2, m))
    };
    let ri = rng::subset(rng, n, ns);
    let ci = rng::subset(rng, m, ms);
    let scale = ((ns * ms) as f64 / (ns + ms) as f64 / ((n * m) as f64 / total as f64)).sqrt();
    // Per direction: the pooled values sorted, their gaps, and which pooled point each position holds.
    let sorted: Vec<(Vec<f64>, Vec<u32>)> = (0..reference.nrows())
        .into_par_iter()
        .map(|j| {
            let (rr, cr) = (reference.row(j), comparison.row(j));
            let mut pairs: Vec<(f32, u32)> = ri
                .iter()
                .map(|&i| rr[i])
                .chain(ci.iter().map(|&i| cr[i]))
                .zip(0u32..)
                .collect();
            radsort::sort_by_key(&mut pairs, |p| p.0);
            let gaps = pairs
                .windows(2)
                .map(|w| f64::from(w[1].0) - f64::from(w[0].0))
                .collect();
            (gaps, pairs.iter().map(|p| p.1).collect())
        })
        .collect();
    let masks = calibrate::permutation_masks(rng, b, ns + ms, ns);
    let l = sorted.len().max(1) as f64;
    masks
        .par_chunks(LANES)
        .flat_map_iter(|group| {
            let bits = pack(group, ns + ms);
            let mut sums = [0.0; LANES];
            for (gaps, idx) in &sorted {
                let w = sweep(gaps, idx, &bits, ns, ms);
                sums.iter_mut().zip(w).for_each(|(s, v)| *s += v);
            }
            sums.into_iter().take(group.len()).map(move |s| s / l * scale)
        })
        .collect()
}

/// Relabellings swept together: one byte per pooled point holds their labels.
const LANES: usize = 8;

/// The labels of up to [`LANES`] relabellings, bit `p` of byte `i` = point `i` in the first group.
fn pack(group: &[Vec<bool>], total: usize) -> Vec<u8> {
    let mut bits = vec![0u8; total];
    for (p, mask) in group.iter().enumerate() {
        for (b, &on) in bits.iter_mut().zip(mask) {
            *b |= u8::from(on) << p;
        }
    }
    bits
}

/// Per lane p, the W1 between the points labelled 1 and 0 in bit p, given the gaps between consecutive
/// sorted pooled values and which point sits at each position. Branch-free and vectorisable: the labels
/// are random, so branching on them would mispredict half the time, and the eight lanes share each load.
fn sweep(gaps: &[f64], idx: &[u32], bits: &[u8], na: usize, nb: usize) -> [f64; LANES] {
    static UNPACK: std::sync::LazyLock<[[f64; LANES]; 256]> = std::sync::LazyLock::new(|| {
        std::array::from_fn(|byte| std::array::from_fn(|p| f64::from((byte >> p) as u8 & 1)))
    });
    let unpack = &*UNPACK;
    let (fa, fb) = (1.0 / na as f64, 1.0 / nb as f64);
    let mut count_a = [0.0f64; LANES];
    let mut total = [0.0f64; LANES];
    for (t, (&gap, &i)) in gaps.iter().zip(idx).enumerate() {
        let labels = &unpack[usize::from(bits[i as usize])];
        // F_a - F_b with count_b = (t + 1) - count_a.
        let seen_b = (t + 1) as f64 * fb;
        for p in 0..LANES {
            count_a[p] += labels[p];
            total[p] += (count_a[p] * (fa + fb) - seen_b).abs() * gap;
        }
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
    fn the_sweep_agrees_with_the_direct_distance_in_every_lane() {
        let values = [0.0, 1.0, 2.0, 3.0, 4.0, 7.0];
        let gaps: Vec<f64> = values.windows(2).map(|w| w[1] - w[0]).collect();
        let idx = [0u32, 1, 2, 3, 4, 5];
        let masks: Vec<Vec<bool>> = (0..LANES)
            .map(|p| {
                let mut m = vec![false; 6];
                for k in 0..3 {
                    m[(p + 2 * k) % 6] = true;
                }
                m
            })
            .collect();
        let got = sweep(&gaps, &idx, &pack(&masks, 6), 3, 3);
        for (p, mask) in masks.iter().enumerate() {
            let (a, b): (Vec<f64>, Vec<f64>) = (
                values
                    .iter()
                    .zip(mask)
                    .filter(|(_, m)| **m)
                    .map(|(v, _)| *v)
                    .collect(),
                values
                    .iter()
                    .zip(mask)
                    .filter(|(_, m)| !**m)
                    .map(|(v, _)| *v)
                    .collect(),
            );
            assert!((got[p] - w1(&a, &b)).abs() < 1e-12, "lane {p}");
        }
    }
}
