//! Wasserstein-1 (Earth Mover's) distances: exact 1-D, sliced over seeded random directions for
//! embeddings, and per principal component. No I/O.
//!
//! Every statistic is computed on every relabelling of the pooled points by the sorted sweep of
//! [`super::sweep`]: each direction (or component) is sorted once, and the W1 of each relabelling is one
//! pass over the sorted points — so the null is exact at the real window sizes, with no subsampling and
//! no rescaling. Directions are processed [`DIRECTION_BLOCK`] at a time: memory stays at
//! `DIRECTION_BLOCK × N` projected values whatever `projections` is (up to 4096).

use ndarray::{Array2, ArrayView2, Axis};
use rayon::prelude::*;

use super::defaults::Plan;
use super::detector::{Detector, Input};
use super::linalg::{self, Rows};
use super::relabel::Relabellings;
use super::rng::{self, Rng};
use super::sweep::{self, Distance, Sorted};

/// Directions projected, sorted and swept together.
pub const DIRECTION_BLOCK: usize = 32;

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

/// Mean over rows (one row per direction or component, `[l, n]`) of the exact W1 between the two
/// windows' rows (the direct computation; the detectors use the sweep, which agrees to rounding).
pub fn mean_w1(reference: ArrayView2<f32>, comparison: ArrayView2<f32>) -> f64 {
    let l = reference.nrows();
    if l == 0 {
        return 0.0;
    }
    let per_row: Vec<f64> = (0..l)
        .into_par_iter()
        .map(|j| {
            let mut a = reference.row(j).to_vec();
            let mut b = comparison.row(j).to_vec();
            radsort::sort(&mut a);
            radsort::sort(&mut b);
            w1_sorted(&a, &b)
        })
        .collect();
    per_row.iter().sum::<f64>() / l as f64
}

/// Sorts each row of `[rows, N]` values.
fn sorted_rows(values: ArrayView2<f32>) -> Vec<Sorted> {
    values
        .axis_iter(Axis(0))
        .into_par_iter()
        .map(|r| Sorted::from_f32(r.iter().copied()))
        .collect()
}

/// Mean W1 over the rows, on every labelling.
fn mean_over_rows(rows: &[Sorted], labels: &Relabellings) -> Vec<f64> {
    let mut acc = vec![0.0; labels.count()];
    sweep::accumulate(rows, labels, Distance::W1, &mut acc);
    let l = rows.len().max(1) as f64;
    acc.into_iter().map(|s| s / l).collect()
}

/// Sliced W1 on embeddings: the mean of the exact 1-D distances over `projections` random directions.
pub struct Sliced(pub Plan);

impl Detector for Sliced {
    fn plan(&self) -> &Plan {
        &self.0
    }

    fn statistics(&self, input: &Input, labels: &Relabellings, rng: &mut Rng) -> Vec<f64> {
        let x = input.embeddings();
        let l = self.0.projections;
        let mut acc = vec![0.0; labels.count()];
        let mut done = 0;
        while done < l {
            let block = DIRECTION_BLOCK.min(l - done);
            let w = directions(x.width(), block, rng);
            let rows = sorted_rows(linalg::project_rows(x, w.view()).view());
            sweep::accumulate(&rows, labels, Distance::W1, &mut acc);
            done += block;
        }
        acc.into_iter().map(|s| s / l.max(1) as f64).collect()
    }
}

/// Exact W1 per principal component (when `components` is set); the score is their mean.
pub struct PerComponent(pub Plan);

impl Detector for PerComponent {
    fn plan(&self) -> &Plan {
        &self.0
    }

    fn components(&self) -> usize {
        self.0.components
    }

    fn statistics(&self, input: &Input, labels: &Relabellings, _rng: &mut Rng) -> Vec<f64> {
        let rows = Sorted::columns(input.components(self.0.components));
        mean_over_rows(&rows, labels)
    }
}

/// Exact W1 of the confidence scores.
pub struct Scores(pub Plan);

impl Detector for Scores {
    fn plan(&self) -> &Plan {
        &self.0
    }

    fn statistics(&self, input: &Input, labels: &Relabellings, _rng: &mut Rng) -> Vec<f64> {
        mean_over_rows(&[Sorted::from_f64(input.scores().iter().copied())], labels)
    }
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
}
