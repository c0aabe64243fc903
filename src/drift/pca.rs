//! PCA: exact covariance eigendecomposition for narrow data, randomized subspace iteration
//! (Halko–Martinsson–Tropp) for wide data. No I/O.
//!
//! The detectors' axes are fitted on the pooled windows ([`Projected::fit`]): a symmetric function of
//! the pooled points, the same for every relabelling, so the permutation tests on the projected scores
//! are exact (axes fitted on the reference alone would treat the observed split differently from its
//! relabellings). The randomized solver applies the covariance operator `Xc^T Xc` to a `[d, l]` block
//! (l = k + [`OVERSAMPLE`] rounded up to a multiple of 8) in one fused pass per iteration, never forming
//! the d × d covariance, and ends with a Rayleigh–Ritz step. Above [`FIT_ROWS`] rows it fits the centre
//! and axes on a seeded uniform subsample of that many rows, chosen by position (not by window).

use ndarray::{Array1, Array2, ArrayView2, Axis, Slice};

use super::linalg::{self, Rows, Subset};
use super::rng::{self, Rng};

/// Widths up to this use the exact covariance; wider data uses the randomized solver.
pub const EXACT_MAX_DIM: usize = 64;
/// Oversampling of the randomized sketch.
pub const OVERSAMPLE: usize = 10;
/// Power (subspace) iterations of the randomized solver after the first application.
pub const POWER_ITERATIONS: usize = 3;
/// Reference rows the randomized solver fits the axes on (a seeded subsample above this).
pub const FIT_ROWS: usize = 20_000;

/// Principal axes of the reference.
#[derive(Clone, Debug)]
pub struct Pca {
    pub mean: Array1<f64>,
    /// `[d, k]`, orthonormal columns, sign fixed so each column's largest-magnitude entry is positive.
    pub components: Array2<f64>,
    /// Variance of the reference along each component (divisor n - 1).
    pub variances: Vec<f64>,
}

impl Pca {
    /// Fits the top `k` components (k is clamped to the width) of the rows of `x`.
    pub fn fit<R: Rows + ?Sized>(x: &R, k: usize, rng: &mut Rng) -> Pca {
        let (n, d) = (x.count(), x.width());
        let k = k.clamp(1, d.max(1));
        let exact = d <= EXACT_MAX_DIM || k + OVERSAMPLE >= d;
        let (variances, mut components, mean) = if exact {
            let mean = linalg::col_means(x);
            let cov = linalg::covariance(x, mean.view());
            let (vals, vecs) = linalg::symmetric_eigen(&cov);
            (
                vals[..k].to_vec(),
                vecs.slice_axis(Axis(1), Slice::from(..k)).to_owned(),
                mean,
            )
        } else if n > FIT_ROWS {
            let rows = rng::subset(rng, n, FIT_ROWS);
            let sub = Subset {
                rows: x,
                index: &rows,
            };
            let mean = linalg::col_means(&sub);
            let (v, c) = randomized(&sub, &mean, k, rng);
            (v, c, mean)
        } else {
            let mean = linalg::col_means(x);
            let (v, c) = randomized(x, &mean, k, rng);
            (v, c, mean)
        };
        for mut col in components.columns_mut() {
            let pivot = col
                .iter()
                .copied()
                .fold(0.0_f64, |m, v| if v.abs() > m.abs() { v } else { m });
            if pivot < 0.0 {
                col.mapv_inplace(|v| -v);
            }
        }
        Pca {
            mean,
            components,
            variances: variances.into_iter().map(|v| v.max(0.0)).collect(),
        }
    }

    /// Scores `[n, k]` of rows on the fitted axes, in f64.
    pub fn transform<R: Rows + ?Sized>(&self, x: &R) -> Array2<f64> {
        let w = self.components.mapv(|v| v as f32);
        linalg::project(x, Some(self.mean.view()), w.view()).mapv(f64::from)
    }
}

fn randomized<R: Rows + ?Sized>(
    x: &R,
    mean: &Array1<f64>,
    k: usize,
    rng: &mut Rng,
) -> (Vec<f64>, Array2<f64>) {
    let d = x.width();
    // GEMM kernels work on 8-column panels: padding the sketch to a multiple of 8 is free accuracy.
    let l = (k + OVERSAMPLE).next_multiple_of(8).min(d);
    let fitted = x.count();
    let mut v = Array2::from_shape_fn((d, l), |_| rng::normal(rng));
    linalg::orthonormalize(&mut v, rng);
    let mut cv = linalg::covariance_apply(x, mean.view(), v.view());
    for _ in 0..POWER_ITERATIONS {
        v = cv;
        linalg::orthonormalize(&mut v, rng);
        cv = linalg::covariance_apply(x, mean.view(), v.view());
    }
    // Rayleigh–Ritz on the subspace: V^T C V = U diag(s) U^T, axes V U, variances s / (n - 1).
    let ritz = v.t().dot(&cv);
    let ritz = (&ritz + &ritz.t()) * 0.5;
    let (vals, u) = linalg::symmetric_eigen(&ritz);
    let mut axes = v.dot(&u);
    linalg::orthonormalize(&mut axes, rng);
    let denom = fitted.saturating_sub(1).max(1) as f64;
    let variances = vals[..k].iter().map(|s| s / denom).collect();
    (variances, axes.slice_axis(Axis(1), Slice::from(..k)).to_owned())
}

/// The pooled windows projected on the top components of the pooled windows (shared by every
/// detector that reads components).
#[derive(Clone, Debug)]
pub struct Projected {
    pub pca: Pca,
    /// `[N, k]` scores of the pooled points, in pooled order.
    pub scores: Array2<f64>,
}

impl Projected {
    pub fn fit<R: Rows + ?Sized>(pooled: &R, k: usize, rng: &mut Rng) -> Projected {
        let pca = Pca::fit(pooled, k, rng);
        let scores = pca.transform(pooled);
        Projected { pca, scores }
    }

    /// All scores.
    pub fn view(&self) -> ArrayView2<'_, f64> {
        self.scores.view()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn anisotropic(n: usize, d: usize, seed: u64) -> Array2<f32> {
        let mut r = Rng::seed_from_u64(seed);
        Array2::from_shape_fn((n, d), |(_, j)| {
            (rng::normal(&mut r) * 10.0 / (1.0 + j as f64)) as f32 + 3.0
        })
    }

    #[test]
    fn randomized_pca_finds_the_same_axes_as_the_exact_one() {
        let x = anisotropic(3000, 100, 1);
        let mut r = Rng::seed_from_u64(2);
        let mean = linalg::col_means(&x.view());
        let (vals, vecs) = randomized(&x.view(), &mean, 3, &mut r);
        let cov = linalg::covariance(&x.view(), mean.view());
        let (evals, evecs) = linalg::symmetric_eigen(&cov);
        for j in 0..3 {
            assert!(
                (vals[j] - evals[j]).abs() / evals[j] < 1e-3,
                "{} vs {}",
                vals[j],
                evals[j]
            );
            let cos = vecs.column(j).dot(&evecs.column(j)).abs();
            assert!(cos > 0.999, "component {j}: |cos| = {cos}");
        }
    }

    #[test]
    fn axes_fitted_on_a_subsample_of_a_big_window_match_the_full_exact_axes() {
        let n = 3 * FIT_ROWS;
        let x = anisotropic(n, 96, 6);
        let p = Pca::fit(&x.view(), 3, &mut Rng::seed_from_u64(7));
        let full_mean = linalg::col_means(&x.view());
        let (evals, evecs) = linalg::symmetric_eigen(&linalg::covariance(&x.view(), full_mean.view()));
        for (j, &eval) in evals.iter().take(3).enumerate() {
            assert!((p.variances[j] - eval).abs() / eval < 0.05, "variance {j}");
            let cos = p.components.column(j).dot(&evecs.column(j)).abs();
            assert!(cos > 0.99, "component {j}: |cos| = {cos}");
        }
    }

    #[test]
    fn pca_of_identical_points_has_zero_variance_and_does_not_panic() {
        let x = Array2::<f32>::ones((100, 80));
        let p = Pca::fit(&x.view(), 2, &mut Rng::seed_from_u64(3));
        assert!(p.variances.iter().all(|v| v.abs() < 1e-9));
        assert_eq!(p.components.dim(), (80, 2));
        assert!(p.transform(&x.view()).iter().all(|v| v.abs() < 1e-6));
    }

    #[test]
    fn the_randomized_solver_handles_fewer_rows_than_components() {
        // 3 rows in 200 dimensions (the randomized path: d > EXACT_MAX_DIM): the centred data has rank 2,
        // so 3 of the 5 requested axes span nothing and must still come back orthonormal, with zero
        // variance, while the first two match the exact decomposition.
        let x = anisotropic(3, 200, 4);
        let p = Pca::fit(&x.view(), 5, &mut Rng::seed_from_u64(5));
        const { assert!(200 > EXACT_MAX_DIM && 5 + OVERSAMPLE < 200) };
        let g = p.components.t().dot(&p.components);
        assert!((g - Array2::<f64>::eye(5)).iter().all(|v| v.abs() < 1e-8));
        let mean = linalg::col_means(&x.view());
        let (evals, evecs) = linalg::symmetric_eigen(&linalg::covariance(&x.view(), mean.view()));
        for j in 0..2 {
            assert!(
                (p.variances[j] - evals[j]).abs() < 1e-6 * evals[0],
                "variance {j}"
            );
            assert!(
                p.components.column(j).dot(&evecs.column(j)).abs() > 0.999,
                "axis {j}"
            );
        }
        assert!(
            p.variances[2..].iter().all(|v| v.abs() < 1e-6 * evals[0]),
            "{:?}",
            p.variances
        );
    }

    #[test]
    fn pooled_axes_do_not_depend_on_which_window_is_the_reference() {
        use crate::drift::pooled::Pooled;
        let (a, b) = (anisotropic(300, 20, 8), anisotropic(200, 20, 9).mapv(|v| v * 1.5));
        let fit = |r: &Array2<f32>, c: &Array2<f32>| {
            let pooled = Pooled::new(r.view(), c.view(), usize::MAX, &mut Rng::seed_from_u64(1));
            Pca::fit(&pooled, 2, &mut Rng::seed_from_u64(2))
        };
        let (p, q) = (fit(&a, &b), fit(&b, &a));
        assert!((&p.mean - &q.mean).iter().all(|v| v.abs() < 1e-9));
        assert!((&p.components - &q.components).iter().all(|v| v.abs() < 1e-9));
    }
}
