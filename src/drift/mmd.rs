//! Maximum mean discrepancy with an RBF kernel, median-heuristic bandwidth and a permutation p-value.
//! No I/O.
//!
//! Kernel `k(x, y) = exp(-|x - y|² / (2 sigma²))`, sigma = median pairwise distance of (at most
//! [`MEDIAN_POINTS`]) pooled points. Score: the unbiased MMD² U-statistic.
//! - Up to [`EXACT_CAP`] pooled points: exact, on the full kernel matrix (at most 2000² f64 = 32 MB);
//!   each permutation re-sums the matrix.
//! - Above: random Fourier features (Rahimi–Recht) with [`FREQUENCIES`] frequencies (cos/sin pairs,
//!   so `z(x)·z(x) = k(x, x) = 1` exactly) on at most [`WINDOW_CAP`] points per window (seeded
//!   subsample). The unbiased statistic in features is
//!   `|mu_a - mu_b|² + (|mu_a|² - 1)/(n_a - 1) + (|mu_b|² - 1)/(n_b - 1)`; the permutations come from
//!   GEMMs of 0/1 relabelling matrices with the centred feature matrix, [`MASKS_PER_GEMM`] at a time.
//!   Memory: `N × 2D` f32 features (≈ 40 MB at 20k + 20k) plus 25 × N f32 relabellings (4 MB).

use ndarray::{Array1, Array2, ArrayView2, Axis};
use rayon::prelude::*;

use super::defaults::Plan;
use super::rng::{self, Rng};
use super::{Verdict, calibrate, decide, linalg};

/// Pooled points up to which the kernel matrix is exact.
pub const EXACT_CAP: usize = 2000;
/// Points per window used by the random-feature estimate.
pub const WINDOW_CAP: usize = 20_000;
/// Random Fourier frequencies (features = 2 × this).
pub const FREQUENCIES: usize = 128;
/// Relabellings per GEMM of the random-feature null (bounds the 0/1 matrix to this many rows).
const MASKS_PER_GEMM: usize = 25;
/// Points used by the median heuristic.
pub const MEDIAN_POINTS: usize = 600;

/// The MMD detector.
pub fn run(plan: &Plan, reference: ArrayView2<f32>, comparison: ArrayView2<f32>, rng: &mut Rng) -> Verdict {
    let sigma = median_heuristic(reference, comparison, rng);
    let (n, m) = (reference.nrows(), comparison.nrows());
    if n + m <= EXACT_CAP {
        let pooled = ndarray::concatenate(Axis(0), &[reference, comparison])
            .unwrap_or_else(|_| Array2::zeros((0, reference.ncols())));
        let k = kernel_matrix(pooled.view(), sigma);
        let labels: Vec<bool> = (0..n + m).map(|i| i < n).collect();
        let score = mmd2_from_kernel(&k, &labels);
        decide(plan, score, None, || {
            calibrate::permutation_masks(rng, plan.permutations, n + m, n)
                .par_iter()
                .map(|mask| mmd2_from_kernel(&k, mask))
                .collect()
        })
    } else {
        let ri = rng::subset(rng, n, WINDOW_CAP);
        let ci = rng::subset(rng, m, WINDOW_CAP);
        let rff = Rff::new(reference, &ri, comparison, &ci, sigma, rng);
        let score = rff.observed();
        decide(plan, score, None, || rff.null(plan.permutations, rng))
    }
}

/// Median of pairwise Euclidean distances on a pooled subsample; 1 when all points coincide.
pub fn median_heuristic(reference: ArrayView2<f32>, comparison: ArrayView2<f32>, rng: &mut Rng) -> f64 {
    let (n, m) = (reference.nrows(), comparison.nrows());
    let total = n + m;
    let pick = rng::subset(rng, total, MEDIAN_POINTS);
    let rows: Vec<Vec<f64>> = pick
        .iter()
        .map(|&i| {
            let row = if i < n {
                reference.row(i)
            } else {
                comparison.row(i - n)
            };
            row.iter().map(|&v| f64::from(v)).collect()
        })
        .collect();
    let mut d: Vec<f64> = (0..rows.len())
        .into_par_iter()
        .flat_map_iter(|i| {
            let rows = &rows;
            (i + 1..rows.len()).map(move |j| linalg::squared_distance(&rows[i], &rows[j]).sqrt())
        })
        .collect();
    if d.is_empty() {
        return 1.0;
    }
    let mid = d.len() / 2;
    let median = if d.len() % 2 == 1 {
        *d.select_nth_unstable_by(mid, f64::total_cmp).1
    } else {
        let hi = *d.select_nth_unstable_by(mid, f64::total_cmp).1;
        let lo = d[..mid].iter().copied().fold(f64::NEG_INFINITY, f64::max);
        0.5 * (lo + hi)
    };
    if median > 0.0 && median.is_finite() {
        median
    } else {
        1.0
    }
}

/// Full RBF kernel matrix of the pooled points (f64 distances).
pub fn kernel_matrix(x: ArrayView2<f32>, sigma: f64) -> Array2<f64> {
    let (n, d) = x.dim();
    let xs: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    let g = 1.0 / (2.0 * sigma * sigma);
    let rows: Vec<Vec<f64>> = (0..n)
        .into_par_iter()
        .map(|i| {
            let a = &xs[i * d..(i + 1) * d];
            xs.chunks_exact(d.max(1))
                .take(n)
                .map(|b| (-g * linalg::squared_distance(a, b)).exp())
                .collect()
        })
        .collect();
    Array2::from_shape_vec((n, n), rows.concat()).unwrap_or_else(|_| Array2::zeros((n, n)))
}

/// Unbiased MMD² of the `true` vs `false` rows of a kernel matrix.
pub fn mmd2_from_kernel(k: &Array2<f64>, first: &[bool]) -> f64 {
    let n = first.len();
    let na = first.iter().filter(|&&b| b).count();
    let nb = n - na;
    if na < 2 || nb < 2 || k.nrows() != n {
        return 0.0;
    }
    let flat: std::borrow::Cow<[f64]> = match k.as_slice() {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(k.iter().copied().collect()),
    };
    let (mut saa, mut sbb, mut sab) = (0.0, 0.0, 0.0);
    for (i, row) in flat.chunks_exact(n).enumerate() {
        let (mut ra, mut rb) = (0.0, 0.0);
        for (&v, &f) in row.iter().zip(first) {
            if f {
                ra += v;
            } else {
                rb += v;
            }
        }
        if first[i] {
            saa += ra - row[i];
            sab += rb;
        } else {
            sbb += rb - row[i];
        }
    }
    let (na, nb) = (na as f64, nb as f64);
    saa / (na * (na - 1.0)) + sbb / (nb * (nb - 1.0)) - 2.0 * sab / (na * nb)
}

/// Random Fourier features of both windows, centred on their pooled mean.
struct Rff {
    features: Array2<f32>,
    mean: Array1<f64>,
    n: usize,
    m: usize,
}

impl Rff {
    /// Features of the listed rows of each window (subsamples are gathered, never copied out whole).
    fn new(
        reference: ArrayView2<f32>,
        reference_rows: &[usize],
        comparison: ArrayView2<f32>,
        comparison_rows: &[usize],
        sigma: f64,
        rng: &mut Rng,
    ) -> Rff {
        let d = reference.ncols();
        let omega = Array2::from_shape_fn((d, FREQUENCIES), |_| (rng::normal(rng) / sigma) as f32);
        let center = linalg::col_means(reference);
        let scale = (1.0 / FREQUENCIES as f64).sqrt() as f32;
        let (n, m) = (reference_rows.len(), comparison_rows.len());
        let mut features = Array2::<f32>::zeros((n + m, 2 * FREQUENCIES));
        for (offset, x, rows) in [(0, reference, reference_rows), (n, comparison, comparison_rows)] {
            let all = rows.len() == x.nrows();
            let proj = linalg::project_selected(x, (!all).then_some(rows), Some(center.view()), omega.view());
            features
                .slice_axis_mut(Axis(0), ndarray::Slice::from(offset..offset + rows.len()))
                .axis_iter_mut(Axis(0))
                .into_par_iter()
                .zip(proj.axis_iter(Axis(0)).into_par_iter())
                .for_each(|(mut out, p)| {
                    for (f, &t) in p.iter().enumerate() {
                        let (sin, cos) = t.sin_cos();
                        out[f] = cos * scale;
                        out[f + FREQUENCIES] = sin * scale;
                    }
                });
        }
        let mean = linalg::col_means(features.view());
        let mean32 = mean.mapv(|v| v as f32);
        features
            .axis_iter_mut(Axis(0))
            .into_par_iter()
            .for_each(|mut row| row -= &mean32);
        Rff { features, mean, n, m }
    }

    /// Statistic from the centred feature sum of the first group.
    fn stat(&self, sum_a: ndarray::ArrayView1<f64>, na: usize, nb: usize) -> f64 {
        let (fa, fb) = (na as f64, nb as f64);
        // centred sums: S_b = -S_a
        let diff2 = sum_a.dot(&sum_a) * (1.0 / fa + 1.0 / fb).powi(2);
        let mu_a = &self.mean + &(&sum_a / fa);
        let mu_b = &self.mean - &(&sum_a / fb);
        diff2 + (mu_a.dot(&mu_a) - 1.0) / (fa - 1.0) + (mu_b.dot(&mu_b) - 1.0) / (fb - 1.0)
    }

    fn observed(&self) -> f64 {
        let first = self.features.slice_axis(Axis(0), ndarray::Slice::from(..self.n));
        let sum_a = linalg::col_means(first) * self.n as f64;
        self.stat(sum_a.view(), self.n, self.m)
    }

    /// Permutation null: each relabelling's first-group feature sum is one row of `A F` (A the 0/1
    /// relabelling matrix), computed [`MASKS_PER_GEMM`] relabellings at a time so A never exists whole.
    fn null(&self, b: usize, rng: &mut Rng) -> Vec<f64> {
        let total = self.n + self.m;
        let masks = calibrate::permutation_masks(rng, b, total, self.n);
        masks
            .par_chunks(MASKS_PER_GEMM)
            .flat_map_iter(|group| {
                let a = Array2::from_shape_fn(
                    (group.len(), total),
                    |(r, i)| {
                        if group[r][i] { 1.0f32 } else { 0.0 }
                    },
                );
                let sums = a.dot(&self.features).mapv(f64::from);
                sums.rows()
                    .into_iter()
                    .map(|s| self.stat(s, self.n, self.m))
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn gauss(n: usize, d: usize, shift: f32, seed: u64) -> Array2<f32> {
        let mut r = Rng::seed_from_u64(seed);
        Array2::from_shape_fn((n, d), |_| rng::normal(&mut r) as f32 + shift)
    }

    #[test]
    fn random_features_approximate_the_exact_statistic() {
        let r = gauss(600, 8, 0.0, 1);
        let c = gauss(600, 8, 0.5, 2);
        let mut g = Rng::seed_from_u64(3);
        let sigma = median_heuristic(r.view(), c.view(), &mut g);
        let pooled = ndarray::concatenate(Axis(0), &[r.view(), c.view()]).unwrap();
        let labels: Vec<bool> = (0..1200).map(|i| i < 600).collect();
        let exact = mmd2_from_kernel(&kernel_matrix(pooled.view(), sigma), &labels);
        let all: Vec<usize> = (0..600).collect();
        let approx = Rff::new(r.view(), &all, c.view(), &all, sigma, &mut g).observed();
        assert!(exact > 0.02, "{exact}");
        assert!((approx - exact).abs() < 0.25 * exact, "{approx} vs {exact}");
    }

    #[test]
    fn identical_points_give_zero_mmd_and_a_unit_bandwidth() {
        let x = Array2::<f32>::ones((100, 4));
        let mut g = Rng::seed_from_u64(4);
        assert_eq!(median_heuristic(x.view(), x.view(), &mut g), 1.0);
    }
}
