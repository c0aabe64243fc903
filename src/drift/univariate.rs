//! One-dimensional detectors (confidence scores, and KS per principal component): PSI, two-sample KS
//! with exact or asymptotic p-values, exact W1, smoothed-histogram KL. No I/O.
//!
//! - `psi`: 10 bins at the reference deciles (duplicates merged), proportions floored at 1e-4,
//!   `sum (q - p) ln(q / p)`.
//! - `ks`: D = sup |F - G|; p-value exact (lattice-path recursion, as scipy's `method="exact"`) when
//!   `max(n, m) <= 10000` and `n m <= 2.5e7`, else the Kolmogorov limit with Stephens' correction
//!   `lambda = (sqrt(en) + 0.12 + 0.11/sqrt(en)) D`, `en = nm/(n+m)`. On embeddings: D per principal
//!   component, the score is the largest, the p-value the corrected one of the components'.
//! - `emd`: exact W1 (scipy.stats.wasserstein_distance), see [`super::wasserstein`].
//! - `kl_divergence`: 20 equal-width bins over the pooled range, +0.5 per bin (Jeffreys), KL(q ‖ p).
//!
//! Every statistic is also computed on each relabelling of the pooled values (KS by the sorted sweep,
//! PSI and the histogram KL from the relabelled groups), for the check's joint calibration.

use ndarray::{ArrayView2, Axis};
use rayon::prelude::*;

use super::calibrate::quantile_sorted;
use super::defaults::Plan;
use super::detector::{Detector, Input};
use super::relabel::Relabellings;
use super::rng::Rng;
use super::sweep::{self, Distance, Sorted};
use crate::api::v1alpha1::Correction;

/// Proportion floor of PSI.
pub const PSI_FLOOR: f64 = 1e-4;
/// PSI bins (reference quantiles).
pub const PSI_BINS: usize = 10;
/// Histogram bins of the 1-D KL.
pub const KL_BINS: usize = 20;

/// `f(first group, second group)` of the pooled values on every labelling.
fn per_labelling(
    values: &[f64],
    labels: &Relabellings,
    f: impl Fn(&[f64], &[f64]) -> f64 + Sync,
) -> Vec<f64> {
    (0..labels.count())
        .into_par_iter()
        .map(|j| {
            let (mut a, mut b) = (
                Vec::with_capacity(labels.n_first()),
                Vec::with_capacity(labels.n_second()),
            );
            for (i, &v) in values.iter().enumerate() {
                if labels.is_first(j, i) {
                    a.push(v);
                } else {
                    b.push(v);
                }
            }
            f(&a, &b)
        })
        .collect()
}

/// KS distance (max over rows) on every labelling.
fn ks_over_rows(rows: &[Sorted], labels: &Relabellings) -> Vec<f64> {
    let mut acc = vec![0.0; labels.count()];
    sweep::accumulate(rows, labels, Distance::Ks, &mut acc);
    acc
}

/// Population stability index of the confidence scores.
pub struct Psi(pub Plan);

impl Detector for Psi {
    fn plan(&self) -> &Plan {
        &self.0
    }

    fn statistics(&self, input: &Input, labels: &Relabellings, _rng: &mut Rng) -> Vec<f64> {
        per_labelling(input.scores(), labels, psi)
    }
}

/// KL of smoothed histograms of the confidence scores (bins over the pooled range).
pub struct HistKl(pub Plan);

impl Detector for HistKl {
    fn plan(&self) -> &Plan {
        &self.0
    }

    fn statistics(&self, input: &Input, labels: &Relabellings, _rng: &mut Rng) -> Vec<f64> {
        let values = input.scores();
        let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        per_labelling(values, labels, |a, b| hist_kl(a, b, lo, hi))
    }
}

/// Two-sample KS of the confidence scores, deciding on its exact (or asymptotic) p-value.
pub struct KsScores(pub Plan);

impl Detector for KsScores {
    fn plan(&self) -> &Plan {
        &self.0
    }

    fn statistics(&self, input: &Input, labels: &Relabellings, _rng: &mut Rng) -> Vec<f64> {
        ks_over_rows(&[Sorted::from_f64(input.scores().iter().copied())], labels)
    }

    fn analytic_p(&self, input: &Input) -> Option<f64> {
        let (reference, comparison) = input.scores().split_at(input.n);
        Some(ks(reference, comparison).1)
    }
}

/// KS per principal component: the score is the largest D, the p-value the components' corrected one.
pub struct KsComponents(pub Plan);

impl Detector for KsComponents {
    fn plan(&self) -> &Plan {
        &self.0
    }

    fn components(&self) -> usize {
        self.0.components
    }

    fn statistics(&self, input: &Input, labels: &Relabellings, _rng: &mut Rng) -> Vec<f64> {
        let rows = Sorted::columns(input.components(self.0.components));
        ks_over_rows(&rows, labels)
    }

    fn analytic_p(&self, input: &Input) -> Option<f64> {
        Some(ks_components_p(
            input.components(self.0.components),
            input.n,
            self.0.correction,
        ))
    }
}

/// The corrected p-value of per-component KS tests of the first `n` rows against the rest.
pub fn ks_components_p(x: ArrayView2<f64>, n: usize, correction: Correction) -> f64 {
    let ps: Vec<f64> = x
        .axis_iter(Axis(1))
        .map(|c| {
            let v = c.to_vec();
            let (a, b) = v.split_at(n.min(v.len()));
            ks(a, b).1
        })
        .collect();
    combine(&ps, correction)
}

/// One p-value from per-component p-values: Bonferroni `min(1, k min p)` or Benjamini–Hochberg/Simes
/// `min_i k p_(i) / i`.
pub fn combine(ps: &[f64], correction: Correction) -> f64 {
    let k = ps.len().max(1) as f64;
    match correction {
        Correction::Bonferroni => (ps.iter().copied().fold(1.0, f64::min) * k).min(1.0),
        Correction::BenjaminiHochberg => {
            let mut s = ps.to_vec();
            s.sort_unstable_by(f64::total_cmp);
            s.iter()
                .enumerate()
                .map(|(i, p)| p * k / (i + 1) as f64)
                .fold(1.0, f64::min)
        }
    }
}

/// Population stability index with reference-decile bins.
pub fn psi(reference: &[f64], comparison: &[f64]) -> f64 {
    let mut sorted = reference.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    let mut edges: Vec<f64> = (1..PSI_BINS)
        .map(|i| quantile_sorted(&sorted, i as f64 / PSI_BINS as f64))
        .collect();
    edges.dedup();
    let counts = |x: &[f64]| {
        let mut c = vec![0usize; edges.len() + 1];
        for v in x {
            c[edges.partition_point(|e| e < v)] += 1;
        }
        c
    };
    let (p, q) = (counts(reference), counts(comparison));
    let (n, m) = (reference.len().max(1) as f64, comparison.len().max(1) as f64);
    p.iter()
        .zip(&q)
        .map(|(&a, &b)| {
            let pa = (a as f64 / n).max(PSI_FLOOR);
            let qb = (b as f64 / m).max(PSI_FLOOR);
            (qb - pa) * (qb / pa).ln()
        })
        .sum()
}

/// KL(q ‖ p) of Jeffreys-smoothed equal-width histograms on [lo, hi].
pub fn hist_kl(reference: &[f64], comparison: &[f64], lo: f64, hi: f64) -> f64 {
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
        return 0.0;
    }
    let width = (hi - lo) / KL_BINS as f64;
    let counts = |x: &[f64]| {
        let mut c = [0.5f64; KL_BINS];
        for v in x {
            let i = (((v - lo) / width).floor().max(0.0) as usize).min(KL_BINS - 1);
            c[i] += 1.0;
        }
        let total: f64 = c.iter().sum();
        c.iter().map(|v| v / total).collect::<Vec<f64>>()
    };
    let (p, q) = (counts(reference), counts(comparison));
    q.iter()
        .zip(&p)
        .map(|(qi, pi)| qi * (qi / pi).ln())
        .sum::<f64>()
        .max(0.0)
}

/// Two-sample KS statistic and two-sided p-value.
pub fn ks(reference: &[f64], comparison: &[f64]) -> (f64, f64) {
    let mut a = reference.to_vec();
    let mut b = comparison.to_vec();
    a.sort_unstable_by(f64::total_cmp);
    b.sort_unstable_by(f64::total_cmp);
    let (n, m) = (a.len(), b.len());
    if n == 0 || m == 0 {
        return (0.0, 1.0);
    }
    // D * n * m as an integer: max |i m - j n| over the merged steps.
    let (mut i, mut j) = (0usize, 0usize);
    let mut dnm: u64 = 0;
    while i < n || j < m {
        let x = if j >= m || (i < n && a[i] <= b[j]) {
            a[i]
        } else {
            b[j]
        };
        while i < n && a[i] == x {
            i += 1;
        }
        while j < m && b[j] == x {
            j += 1;
        }
        dnm = dnm.max((i as u64 * m as u64).abs_diff(j as u64 * n as u64));
    }
    let d = dnm as f64 / (n as f64 * m as f64);
    let p = if n.max(m) <= 10_000 && (n as u64) * (m as u64) <= 25_000_000 {
        ks_exact_p(n, m, dnm)
    } else {
        ks_asymptotic_p(n, m, d)
    };
    (d, p.clamp(0.0, 1.0))
}

/// P(D >= d) under H0 by the lattice-path recursion: probability that a uniformly random path from
/// (0, 0) to (n, m) leaves the band |i m - j n| < dnm.
pub fn ks_exact_p(n: usize, m: usize, dnm: u64) -> f64 {
    if dnm == 0 {
        return 1.0;
    }
    let inside = |i: usize, j: usize| (i as u64 * m as u64).abs_diff(j as u64 * n as u64) < dnm;
    let mut row = vec![0.0f64; m + 1];
    row[0] = 1.0;
    for j in 1..=m {
        row[j] = if inside(0, j) { row[j - 1] } else { 0.0 };
    }
    for i in 1..=n {
        row[0] = if inside(i, 0) { row[0] } else { 0.0 };
        for j in 1..=m {
            row[j] = if inside(i, j) {
                let s = (i + j) as f64;
                (i as f64 / s) * row[j] + (j as f64 / s) * row[j - 1]
            } else {
                0.0
            };
        }
    }
    1.0 - row[m]
}

/// Kolmogorov limit with Stephens' small-sample correction.
pub fn ks_asymptotic_p(n: usize, m: usize, d: f64) -> f64 {
    let en = (n as f64 * m as f64 / (n + m) as f64).sqrt();
    kolmogorov_sf((en + 0.12 + 0.11 / en) * d)
}

/// Survival function of the Kolmogorov distribution.
pub fn kolmogorov_sf(lambda: f64) -> f64 {
    if lambda <= 0.0 {
        return 1.0;
    }
    if lambda < 1.0 {
        // 1 - CDF with the theta-function form that converges fast for small lambda
        let c = (2.0 * std::f64::consts::PI).sqrt() / lambda;
        let s: f64 = (1..=20)
            .map(|k| {
                let t = (2 * k - 1) as f64;
                (-(t * t) * std::f64::consts::PI.powi(2) / (8.0 * lambda * lambda)).exp()
            })
            .sum();
        return (1.0 - c * s).clamp(0.0, 1.0);
    }
    let s: f64 = (1..=100)
        .map(|k| {
            let sign = if k % 2 == 1 { 1.0 } else { -1.0 };
            sign * (-2.0 * (k * k) as f64 * lambda * lambda).exp()
        })
        .sum();
    (2.0 * s).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ks_of_disjoint_small_samples_matches_the_exact_combinatorial_value() {
        // all 3 reference below all 3 comparison: D = 1, P = 2 / C(6, 3) = 0.1
        let (d, p) = ks(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]);
        assert_eq!(d, 1.0);
        assert!((p - 0.1).abs() < 1e-12, "{p}");
    }

    #[test]
    fn identical_samples_have_ks_zero_and_p_one() {
        let x: Vec<f64> = (0..100).map(f64::from).collect();
        assert_eq!(ks(&x, &x), (0.0, 1.0));
    }

    #[test]
    fn the_kolmogorov_tail_is_continuous_across_the_series_switch() {
        let a = kolmogorov_sf(0.999_999);
        let b = kolmogorov_sf(1.000_001);
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        assert!((kolmogorov_sf(1.36) - 0.0494).abs() < 1e-3);
    }

    #[test]
    fn psi_of_a_window_against_itself_is_zero_and_grows_with_a_shift() {
        let x: Vec<f64> = (0..1000).map(|i| f64::from(i) / 1000.0).collect();
        assert!(psi(&x, &x).abs() < 1e-12);
        let y: Vec<f64> = x.iter().map(|v| v + 0.2).collect();
        assert!(psi(&x, &y) > 0.2);
    }

    #[test]
    fn constant_scores_do_not_break_psi_or_kl() {
        let x = vec![0.5; 100];
        assert!(psi(&x, &x).abs() < 1e-12);
        assert_eq!(hist_kl(&x, &x, 0.5, 0.5), 0.0);
    }

    #[test]
    fn bonferroni_and_bh_combine_as_documented() {
        let ps = [0.01, 0.04, 0.5];
        assert!((combine(&ps, Correction::Bonferroni) - 0.03).abs() < 1e-12);
        assert!((combine(&ps, Correction::BenjaminiHochberg) - 0.03).abs() < 1e-12);
    }
}
