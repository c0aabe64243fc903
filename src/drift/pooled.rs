//! The points one check tests: both windows pooled (reference first), each cut to at most
//! [`MAX_TEST_ROWS`] rows by a seeded uniform subsample. No I/O.
//!
//! The subsample is drawn per window from the seed alone, never from the values, so the tested points of
//! each window are still independent draws of that window's distribution and every permutation test on
//! them is exact. The cap bounds the engine's memory and time for every allowed spec (see
//! `docs/research/kl-vs-emd.md` §7); the default sampling (20 000 reference, 5 000 comparison points)
//! is within it.

use ndarray::{ArrayView1, ArrayView2};

use super::linalg::Rows;
use super::rng::{self, Rng};

/// Most rows of one window a check tests.
pub const MAX_TEST_ROWS: usize = 20_000;

/// Rows of both windows read as one pooled set: `0..n` the reference, `n..n + m` the comparison.
pub struct Pooled<'a> {
    reference: ArrayView2<'a, f32>,
    comparison: ArrayView2<'a, f32>,
    reference_rows: Vec<usize>,
    comparison_rows: Vec<usize>,
}

impl<'a> Pooled<'a> {
    /// Pools the windows, keeping at most `cap` rows of each (a seeded uniform subsample, in row order).
    pub fn new(
        reference: ArrayView2<'a, f32>,
        comparison: ArrayView2<'a, f32>,
        cap: usize,
        rng: &mut Rng,
    ) -> Self {
        let pick = |rows: usize, rng: &mut Rng| {
            if rows > cap {
                rng::subset(rng, rows, cap)
            } else {
                (0..rows).collect()
            }
        };
        let reference_rows = pick(reference.nrows(), rng);
        let comparison_rows = pick(comparison.nrows(), rng);
        Pooled {
            reference,
            comparison,
            reference_rows,
            comparison_rows,
        }
    }

    /// Pools the given rows of each window as they are (no cap, no sampling): e.g. the points of one slice.
    pub fn from_rows(
        reference: ArrayView2<'a, f32>,
        comparison: ArrayView2<'a, f32>,
        reference_rows: Vec<usize>,
        comparison_rows: Vec<usize>,
    ) -> Self {
        Pooled {
            reference,
            comparison,
            reference_rows,
            comparison_rows,
        }
    }

    /// Reference rows tested.
    pub fn n(&self) -> usize {
        self.reference_rows.len()
    }

    /// Comparison rows tested.
    pub fn m(&self) -> usize {
        self.comparison_rows.len()
    }

    /// Which rows of each window are tested (to select per-row values such as confidence scores).
    pub fn window_rows(&self) -> (&[usize], &[usize]) {
        (&self.reference_rows, &self.comparison_rows)
    }

    /// Per-row values of both windows (e.g. confidence scores) in pooled order.
    pub fn select(&self, reference: ArrayView1<f32>, comparison: ArrayView1<f32>) -> Vec<f64> {
        self.reference_rows
            .iter()
            .map(|&i| f64::from(reference[i]))
            .chain(self.comparison_rows.iter().map(|&i| f64::from(comparison[i])))
            .collect()
    }
}

impl Rows for Pooled<'_> {
    fn count(&self) -> usize {
        self.reference_rows.len() + self.comparison_rows.len()
    }

    fn width(&self) -> usize {
        self.reference.ncols()
    }

    fn row(&self, i: usize) -> ArrayView1<'_, f32> {
        let n = self.reference_rows.len();
        if i < n {
            self.reference.row(self.reference_rows[i])
        } else {
            self.comparison.row(self.comparison_rows[i - n])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;
    use rand::SeedableRng;

    #[test]
    fn pooled_rows_put_the_reference_first_and_cap_each_window() {
        let r = Array2::from_shape_fn((10, 2), |(i, _)| i as f32);
        let c = Array2::from_shape_fn((4, 2), |(i, _)| 100.0 + i as f32);
        let p = Pooled::new(r.view(), c.view(), 6, &mut Rng::seed_from_u64(1));
        assert_eq!((p.n(), p.m(), p.count()), (6, 4, 10));
        assert!(p.window_rows().0.windows(2).all(|w| w[0] < w[1]));
        assert!((0..6).all(|i| p.row(i)[0] < 10.0));
        assert_eq!(p.row(6)[0], 100.0);
        assert_eq!(p.row(9)[0], 103.0);
        let other = Pooled::new(r.view(), c.view(), 6, &mut Rng::seed_from_u64(2));
        assert_ne!(p.window_rows().0, other.window_rows().0);
    }
}
