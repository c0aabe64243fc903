//! Maximum mean discrepancy with an RBF kernel, median-heuristic bandwidth and a permutation p-value.
//! No I/O.
//!
//! Kernel `k(x, y) = exp(-|x - y|² / (2 sigma²))`, sigma = median pairwise distance of (at most
//! [`MEDIAN_POINTS`]) pooled points, chosen by position, not by window, so sigma is the same for every
//! relabelling. Score: the unbiased MMD² U-statistic.
//! - Up to [`EXACT_CAP`] pooled points: exact, on the full kernel matrix (at most 2000² f64 = 32 MB);
//!   each relabelling re-sums the matrix.
//! - Above: random Fourier features (Rahimi–Recht) with [`FREQUENCIES`] frequencies (cos/sin pairs,
//!   so `z(x)·z(x) = k(x, x) = 1` exactly) on every pooled point (at most 2 × 20 000, see
//!   [`super::pooled`]). The unbiased statistic in features is
//!   `|mu_a - mu_b|² + (|mu_a|² - 1)/(n_a - 1) + (|mu_b|² - 1)/(n_b - 1)`; the relabellings come from
//!   GEMMs of 0/1 relabelling matrices with the centred feature matrix, [`LABELLINGS_PER_GEMM`] at a
//!   time. Memory: `N × 2D` f32 features (≈ 41 MB at 40 000 points) plus 32 × N f32 per GEMM.

use ndarray::{Array1, Array2, ArrayView1, Axis};
use rayon::prelude::*;

use super::defaults::Plan;
use super::detector::{Detector, Input};
use super::linalg::{self, Rows};
use super::relabel::{LANES, Relabellings};
use super::rng::{self, Rng};

/// Pooled points up to which the kernel matrix is exact.
pub const EXACT_CAP: usize = 2000;
/// Random Fourier frequencies (features = 2 × this).
pub const FREQUENCIES: usize = 128;
/// Relabellings per GEMM of the random-feature statistic (bounds the 0/1 matrix to this many rows).
pub const LABELLINGS_PER_GEMM: usize = 4 * LANES;
/// Points used by the median heuristic.
pub const MEDIAN_POINTS: usize = 600;

/// The MMD detector.
pub struct Mmd(pub Plan);

impl Detector for Mmd {
    fn plan(&self) -> &Plan {
        &self.0
    }

    fn statistics(&self, input: &Input, labels: &Relabellings, rng: &mut Rng) -> Vec<f64> {
        let x = input.embeddings();
        let sigma = median_heuristic(x, rng);
        if x.count() <= EXACT_CAP {
            let k = kernel_matrix(x, sigma);
            (0..labels.count())
                .into_par_iter()
                .map(|j| mmd2_from_kernel(&k, &labels.mask(j)))
                .collect()
        } else {
            Rff::new(x, sigma, rng).statistics(labels)
        }
    }
}

/// Median of pairwise Euclidean distances on a subsample of the pooled points; 1 when all coincide.
pub fn median_heuristic<R: Rows + ?Sized>(x: &R, rng: &mut Rng) -> f64 {
    let pick = rng::subset(rng, x.count(), MEDIAN_POINTS);
    let mut d: Vec<f64> = (0..pick.len())
        .into_par_iter()
        .flat_map_iter(|i| {
            let pick = &pick;
            (i + 1..pick.len())
                .map(move |j| linalg::squared_distance_f32(x.row(pick[i]), x.row(pick[j])).sqrt())
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
pub fn kernel_matrix<R: Rows + ?Sized>(x: &R, sigma: f64) -> Array2<f64> {
    let n = x.count();
    let g = 1.0 / (2.0 * sigma * sigma);
    let rows: Vec<Vec<f64>> = (0..n)
        .into_par_iter()
        .map(|i| {
            let a = x.row(i);
            (0..n)
                .map(|j| (-g * linalg::squared_distance_f32(a, x.row(j))).exp())
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

/// Random Fourier features of the pooled points, centred on their mean.
pub struct Rff {
    features: Array2<f32>,
    mean: Array1<f64>,
}

impl Rff {
    /// Features of every pooled point.
    pub fn new<R: Rows + ?Sized>(x: &R, sigma: f64, rng: &mut Rng) -> Rff {
        let d = x.width();
        let omega = Array2::from_shape_fn((d, FREQUENCIES), |_| (rng::normal(rng) / sigma) as f32);
        let center = linalg::col_means(x);
        let scale = (1.0 / FREQUENCIES as f64).sqrt() as f32;
        let proj = linalg::project(x, Some(center.view()), omega.view());
        let mut features = Array2::<f32>::zeros((x.count(), 2 * FREQUENCIES));
        features
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
        drop(proj);
        let mean = linalg::col_means(&features);
        let mean32 = mean.mapv(|v| v as f32);
        features
            .axis_iter_mut(Axis(0))
            .into_par_iter()
            .for_each(|mut row| row -= &mean32);
        Rff { features, mean }
    }

    /// Statistic from the centred feature sum of the first group (the second's is its negative).
    fn stat(&self, sum_a: ArrayView1<f64>, na: usize, nb: usize) -> f64 {
        if na < 2 || nb < 2 {
            return 0.0;
        }
        let (fa, fb) = (na as f64, nb as f64);
        let diff2 = sum_a.dot(&sum_a) * (1.0 / fa + 1.0 / fb).powi(2);
        let mu_a = &self.mean + &(&sum_a / fa);
        let mu_b = &self.mean - &(&sum_a / fb);
        diff2 + (mu_a.dot(&mu_a) - 1.0) / (fa - 1.0) + (mu_b.dot(&mu_b) - 1.0) / (fb - 1.0)
    }

    /// The statistic on every labelling: each labelling's first-group feature sum is one row of `A F`
    /// (A the 0/1 labelling matrix), [`LABELLINGS_PER_GEMM`] labellings at a time.
    pub fn statistics(&self, labels: &Relabellings) -> Vec<f64> {
        let total = labels.total();
        let (na, nb) = (labels.n_first(), labels.n_second());
        let chunks: Vec<usize> = (0..labels.count()).step_by(LABELLINGS_PER_GEMM).collect();
        chunks
            .into_par_iter()
            .flat_map_iter(|from| {
                let to = (from + LABELLINGS_PER_GEMM).min(labels.count());
                let mut a = Array2::<f32>::zeros((to - from, total));
                for (r, mut row) in a.axis_iter_mut(Axis(0)).enumerate() {
                    let j = from + r;
                    let bytes = labels.group(j / LANES);
                    let bit = 1u8 << (j % LANES);
                    for (o, &b) in row.iter_mut().zip(bytes) {
                        *o = f32::from(u8::from(b & bit != 0));
                    }
                }
                let sums = a.dot(&self.features).mapv(f64::from);
                sums.rows()
                    .into_iter()
                    .map(|s| self.stat(s, na, nb))
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drift::pooled::Pooled;
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
        let pooled = Pooled::new(r.view(), c.view(), usize::MAX, &mut g);
        let sigma = median_heuristic(&pooled, &mut g);
        let labels = Relabellings::draw(1200, 600, 0, &mut g);
        let exact = mmd2_from_kernel(&kernel_matrix(&pooled, sigma), &labels.mask(0));
        let approx = Rff::new(&pooled, sigma, &mut g).statistics(&labels)[0];
        assert!(exact > 0.02, "{exact}");
        assert!((approx - exact).abs() < 0.25 * exact, "{approx} vs {exact}");
    }

    #[test]
    fn identical_points_give_zero_mmd_a_unit_bandwidth_and_no_drift() {
        let x = Array2::<f32>::ones((100, 4));
        let mut g = Rng::seed_from_u64(4);
        let pooled = Pooled::new(x.view(), x.view(), usize::MAX, &mut g);
        assert_eq!(median_heuristic(&pooled, &mut g), 1.0);
        let k = kernel_matrix(&pooled, 1.0);
        let labels = Relabellings::draw(200, 100, 49, &mut g);
        let stats: Vec<f64> = (0..labels.count())
            .map(|j| mmd2_from_kernel(&k, &labels.mask(j)))
            .collect();
        assert!(stats.iter().all(|v| v.abs() < 1e-12), "{stats:?}");
        // Every relabelling ties with the observed split: the permutation p-value is 1.
        assert_eq!(crate::drift::calibrate::permutation_p(&stats), 1.0);
        let rff = Rff::new(&pooled, 1.0, &mut g).statistics(&labels);
        assert!(rff.iter().all(|v| v.abs() < 1e-6), "{rff:?}");
    }

    #[test]
    fn a_shift_gives_a_clearly_positive_exact_mmd() {
        let (r, c) = (gauss(200, 4, 0.0, 5), gauss(200, 4, 1.0, 6));
        let mut g = Rng::seed_from_u64(7);
        let pooled = Pooled::new(r.view(), c.view(), usize::MAX, &mut g);
        let sigma = median_heuristic(&pooled, &mut g);
        let labels = Relabellings::draw(400, 200, 0, &mut g);
        let v = mmd2_from_kernel(&kernel_matrix(&pooled, sigma), &labels.mask(0));
        assert!(v > 0.1, "{v}");
    }
}
