//! Drift by slice: per value of a payload field, its share of each window and its own permutation test,
//! with the false-discovery rate controlled across every tested slice. Pure, no I/O.
//!
//! A slice with at least `min_points` points in both windows is tested with the engine's default `emd`
//! statistic ([`super::super::wasserstein::Sliced`], [`PROJECTIONS`] random directions) on its points in
//! the explanation's principal components, against relabellings of the slice's own points (at most
//! [`TEST_ROWS`] per window, a seeded subsample above that). The test is sequential in two stages on the
//! same directions: [`FIRST_STAGE`] relabellings for every slice; a slice whose first-stage p-value is at
//! most alpha — the only ones Benjamini–Hochberg could reject — gets more relabellings, enough in all
//! (`2 m / alpha`, at most [`MAX_PERMUTATIONS`]) for the smallest p-value to pass the strictest BH step
//! among `m` slices, and its p-value is computed over every relabelling of both stages. This is valid:
//! for `a <= alpha`, `P(p <= a) <= P(p_all <= a) <= a` (`p_all` is a permutation p-value over iid
//! relabellings); for `a > alpha`, `{p <= a}` lies inside `{p_first <= a}`.
//! Benjamini–Hochberg at level alpha over all tested slices of all fields marks the drifted ones.
use ndarray::{Array2, ArrayView2};
use rand::Rng as _;
use rayon::prelude::*;

use super::super::calibrate;
use super::super::defaults::Plan;
use super::super::detector::{Detector, Input};
use super::super::pooled::Pooled;
use super::super::relabel::Relabellings;
use super::super::rng::{self, Rng};
use super::super::wasserstein::Sliced;
use super::SliceColumn;
use crate::api::v1alpha1::{DataSource, Method};

/// Default fewest points per window for a slice to be tested.
pub const DEFAULT_MIN_POINTS: usize = 30;
/// Most values of one field considered (the most frequent); the rest are counted as omitted.
pub const MAX_VALUES: usize = 64;
/// Random directions of the sliced Wasserstein statistic (in the explanation's principal components).
pub const PROJECTIONS: usize = 16;
/// Relabellings of the first stage.
pub const FIRST_STAGE: usize = 199;
/// Most relabellings of both stages together.
pub const MAX_PERMUTATIONS: usize = 9_999;
/// Most points per window a slice is tested on.
pub const TEST_ROWS: usize = 5_000;

/// Pooled indices of a slice's points (reference, comparison).
type Members = (Vec<usize>, Vec<usize>);

/// What the explanation found for one slice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SliceStatus {
    /// Tested, and Benjamini–Hochberg rejects "same distribution in both windows".
    Drifted,
    /// Tested, not rejected.
    Unchanged,
    /// Only in the comparison window.
    Appeared,
    /// Only in the reference window.
    Vanished,
    /// In both windows, but with too few points in one of them to test.
    Untested,
}

impl SliceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SliceStatus::Drifted => "drifted",
            SliceStatus::Unchanged => "unchanged",
            SliceStatus::Appeared => "appeared",
            SliceStatus::Vanished => "vanished",
            SliceStatus::Untested => "untested",
        }
    }
}

/// One slice: a value of a slice field.
#[derive(Clone, Debug, PartialEq)]
pub struct SliceFinding {
    pub field: String,
    pub value: String,
    pub status: SliceStatus,
    /// Points of the slice among the tested points of each window (reference, comparison).
    pub counts: [usize; 2],
    /// `counts` over the tested points of each window.
    pub shares: [f64; 2],
    /// The slice's permutation p-value (tested slices).
    pub p_value: Option<f64>,
    /// Benjamini–Hochberg adjusted over every tested slice (tested slices).
    pub adjusted_p_value: Option<f64>,
    /// The slice's sliced Wasserstein-1 between its reference and comparison points (tested slices): the
    /// effect size that orders drifted slices whose p-values tie (e.g. all at the smallest possible).
    pub statistic: Option<f64>,
    /// Rows of the comparison window's sample least like the reference (filled for the top slices).
    pub examples: Vec<usize>,
    /// Pooled indices of the slice's points (reference, comparison).
    pub(crate) members: (Vec<usize>, Vec<usize>),
}

impl SliceFinding {
    /// Comparison share minus reference share.
    pub fn share_change(&self) -> f64 {
        self.shares[1] - self.shares[0]
    }
}

/// Every slice of every field, ranked.
pub struct SliceOutcome {
    pub findings: Vec<SliceFinding>,
    pub tested: usize,
    pub omitted: usize,
}

/// Slices of the pooled points: `reference_rows` / `comparison_rows` are the window rows of the pooled
/// points (as [`Pooled::window_rows`]), `z` their principal-component scores in pooled order.
pub fn findings(
    columns: &[&SliceColumn],
    reference_rows: &[usize],
    comparison_rows: &[usize],
    z: ArrayView2<f64>,
    min_points: usize,
    seed: u64,
    alpha: f64,
) -> SliceOutcome {
    let (n, m) = (reference_rows.len(), comparison_rows.len());
    let mut findings = Vec::new();
    let mut omitted = 0;
    for column in columns {
        let mut members: Vec<Members> = vec![(Vec::new(), Vec::new()); column.values.len()];
        for (i, &row) in reference_rows.iter().enumerate() {
            if let Some(Some(code)) = column.reference.get(row)
                && let Some(slot) = members.get_mut(*code as usize)
            {
                slot.0.push(i);
            }
        }
        for (j, &row) in comparison_rows.iter().enumerate() {
            if let Some(Some(code)) = column.comparison.get(row)
                && let Some(slot) = members.get_mut(*code as usize)
            {
                slot.1.push(n + j);
            }
        }
        let mut present: Vec<(usize, Members)> = members
            .into_iter()
            .enumerate()
            .filter(|(_, (r, c))| !r.is_empty() || !c.is_empty())
            .collect();
        // The most frequent values, ties by value.
        present.sort_by(|a, b| {
            (b.1.0.len() + b.1.1.len())
                .cmp(&(a.1.0.len() + a.1.1.len()))
                .then_with(|| column.values[a.0].cmp(&column.values[b.0]))
        });
        omitted += present.len().saturating_sub(MAX_VALUES);
        present.truncate(MAX_VALUES);
        for (code, (r, c)) in present {
            let counts = [r.len(), c.len()];
            let status = match counts {
                [0, _] => SliceStatus::Appeared,
                [_, 0] => SliceStatus::Vanished,
                [a, b] if a >= min_points && b >= min_points => SliceStatus::Unchanged,
                _ => SliceStatus::Untested,
            };
            findings.push(SliceFinding {
                field: column.field.clone(),
                value: column.values[code].clone(),
                status,
                counts,
                shares: [share(counts[0], n), share(counts[1], m)],
                p_value: None,
                adjusted_p_value: None,
                statistic: None,
                examples: Vec::new(),
                members: (r, c),
            });
        }
    }

    let tested: Vec<usize> = (0..findings.len())
        .filter(|&i| findings[i].status == SliceStatus::Unchanged)
        .collect();
    if !tested.is_empty() {
        // The PCA scores as f32 rows, so the slices can be pooled and tested like windows.
        let z32: Array2<f32> = z.mapv(|v| v as f32);
        let base: u64 = rng::named(seed, "explain-slices").random();
        let total = total_permutations(tested.len(), alpha);
        let (p, statistics): (Vec<f64>, Vec<f64>) = tested
            .par_iter()
            .enumerate()
            .map(|(s, &i)| {
                let (r, c) = &findings[i].members;
                let mut rng = rng::child(base, s as u64);
                sequential_p(z32.view(), r, c, total, alpha, &mut rng)
            })
            .unzip();
        let adjusted = calibrate::benjamini_hochberg(&p);
        for (((&i, p), q), statistic) in tested.iter().zip(p).zip(adjusted).zip(statistics) {
            let finding = &mut findings[i];
            finding.statistic = Some(statistic);
            finding.p_value = Some(p);
            finding.adjusted_p_value = Some(q);
            if q <= alpha {
                finding.status = SliceStatus::Drifted;
            }
        }
    }
    findings.sort_by(rank);
    SliceOutcome {
        findings,
        tested: tested.len(),
        omitted,
    }
}

/// Relabellings of both stages together for `m` tested slices: enough that `1 / (B + 1) <= alpha / (2 m)`.
pub fn total_permutations(m: usize, alpha: f64) -> usize {
    let wanted = (2.0 * m as f64 / alpha.max(1e-9)).ceil() as usize;
    wanted.saturating_sub(1).clamp(FIRST_STAGE, MAX_PERMUTATIONS)
}

fn share(count: usize, total: usize) -> f64 {
    if total == 0 {
        0.0
    } else {
        count as f64 / total as f64
    }
}

/// The slice's sliced-W1 permutation p-value between its reference and comparison points, and the observed
/// statistic: over [`FIRST_STAGE`] relabellings, and when that is at most `alpha`, over `total`
/// relabellings (the first stage's and fresh ones, on the same directions).
fn sequential_p(
    z: ArrayView2<f32>,
    reference: &[usize],
    comparison: &[usize],
    total: usize,
    alpha: f64,
    rng: &mut Rng,
) -> (f64, f64) {
    let pick = |rows: &[usize], rng: &mut Rng| -> Vec<usize> {
        if rows.len() > TEST_ROWS {
            rng::subset(rng, rows.len(), TEST_ROWS)
                .into_iter()
                .map(|p| rows[p])
                .collect()
        } else {
            rows.to_vec()
        }
    };
    let (r, c) = (pick(reference, rng), pick(comparison, rng));
    let n = r.len();
    let pooled = Pooled::from_rows(z, z, r, c);
    let directions: u64 = rng.random();
    let statistics = |b: usize, rng: &mut Rng| -> Vec<f64> {
        let labels = Relabellings::draw(n + pooled.m(), n, b, rng);
        let plan = Plan {
            projections: PROJECTIONS,
            permutations: b,
            ..Plan::bare(Method::Emd, DataSource::Embeddings)
        };
        let input = Input {
            n,
            embeddings: Some(&pooled),
            components: None,
            scores: None,
        };
        // The same directions in both stages, so their statistics are draws of one null.
        Sliced(plan).statistics(&input, &labels, &mut rng::child(directions, 0))
    };
    let first = statistics(FIRST_STAGE, rng);
    let p_first = calibrate::permutation_p(&first);
    let observed = calibrate::sanitize(first[0]);
    if p_first > alpha || total <= FIRST_STAGE {
        return (p_first, observed);
    }
    let second = statistics(total - FIRST_STAGE, rng);
    let exceed = first
        .iter()
        .chain(&second[1..])
        .filter(|&&v| calibrate::sanitize(v) >= observed)
        .count();
    (exceed as f64 / (total + 1) as f64, observed)
}

/// Drifted slices first (smallest adjusted p-value, then largest statistic: at the same p-value the
/// larger effect), then appeared and vanished ones (largest share), then the rest (largest share change);
/// ties by field and value.
fn rank(a: &SliceFinding, b: &SliceFinding) -> std::cmp::Ordering {
    let group = |f: &SliceFinding| match f.status {
        SliceStatus::Drifted => 0,
        SliceStatus::Appeared | SliceStatus::Vanished => 1,
        SliceStatus::Unchanged | SliceStatus::Untested => 2,
    };
    let key = |f: &SliceFinding| match f.status {
        SliceStatus::Drifted => f.adjusted_p_value.unwrap_or(1.0),
        SliceStatus::Appeared | SliceStatus::Vanished => -f.shares[0].max(f.shares[1]),
        _ => -f.share_change().abs(),
    };
    let effect = |f: &SliceFinding| match f.status {
        SliceStatus::Drifted => f.statistic.unwrap_or(0.0),
        _ => 0.0,
    };
    group(a)
        .cmp(&group(b))
        .then(key(a).total_cmp(&key(b)))
        .then(effect(b).total_cmp(&effect(a)))
        .then(b.share_change().abs().total_cmp(&a.share_change().abs()))
        .then_with(|| a.field.cmp(&b.field))
        .then_with(|| a.value.cmp(&b.value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// `n` reference and `m` comparison points in 3 components; slice "b" of the comparison is shifted.
    fn fixture(n: usize, m: usize, shift: f64) -> (SliceColumn, Vec<usize>, Vec<usize>, Array2<f64>) {
        let mut r = Rng::seed_from_u64(3);
        let value = |i: usize| ["a", "b", "c"][i % 3];
        let reference: Vec<Option<&str>> = (0..n).map(|i| Some(value(i))).collect();
        let comparison: Vec<Option<&str>> = (0..m).map(|i| Some(value(i))).collect();
        let column = SliceColumn::new("camera", reference, comparison);
        let z = Array2::from_shape_fn((n + m, 3), |(i, j)| {
            let moved = i >= n && value(i - n) == "b" && j == 0;
            rng::normal(&mut r) + if moved { shift } else { 0.0 }
        });
        ((column), (0..n).collect(), (0..m).collect(), z)
    }

    #[test]
    fn the_shifted_slice_is_drifted_and_ranked_first_and_the_others_are_unchanged() {
        let (column, r, c, z) = fixture(600, 600, 1.0);
        let out = findings(&[&column], &r, &c, z.view(), 30, 1, 0.05);
        assert_eq!(out.tested, 3);
        assert_eq!(out.findings[0].value, "b");
        assert_eq!(out.findings[0].status, SliceStatus::Drifted);
        assert!(out.findings[0].p_value.unwrap() <= 1.0 / 200.0);
        for f in &out.findings[1..] {
            assert_eq!(f.status, SliceStatus::Unchanged, "{f:?}");
        }
        assert!((out.findings[0].shares[0] - 1.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn of_two_slices_drifted_at_the_same_p_value_the_larger_shift_comes_first() {
        // "b" moves by 3, "c" by 1.5: both at the smallest p-value, "b" is the larger effect.
        let (n, m) = (600, 600);
        let mut r = Rng::seed_from_u64(4);
        let value = |i: usize| ["a", "b", "c"][i % 3];
        let rows: Vec<Option<&str>> = (0..n).map(|i| Some(value(i))).collect();
        let column = SliceColumn::new("camera", rows.clone(), rows);
        let z = Array2::from_shape_fn((n + m, 3), |(i, j)| {
            let shift = match (i >= n, value(i % n), j) {
                (true, "b", 0) => 3.0,
                (true, "c", 0) => 1.5,
                _ => 0.0,
            };
            rng::normal(&mut r) + shift
        });
        let all: Vec<usize> = (0..n).collect();
        let out = findings(&[&column], &all, &all, z.view(), 30, 1, 0.05);
        assert_eq!(out.findings[0].p_value, out.findings[1].p_value);
        let order: Vec<&str> = out.findings.iter().map(|f| f.value.as_str()).collect();
        assert_eq!(order, ["b", "c", "a"]);
        assert!(out.findings[0].statistic > out.findings[1].statistic);
    }

    #[test]
    fn values_of_one_window_only_appear_or_vanish_and_small_slices_are_not_tested() {
        let reference = [Some("old"), Some("both"), Some("both"), Some("few")];
        let comparison = [Some("new"), Some("both"), Some("both"), None];
        let column = SliceColumn::new("site", reference, comparison);
        let z = Array2::<f64>::zeros((8, 2));
        let out = findings(&[&column], &[0, 1, 2, 3], &[0, 1, 2, 3], z.view(), 2, 1, 0.05);
        let status = |v: &str| out.findings.iter().find(|f| f.value == v).unwrap().status;
        assert_eq!(status("old"), SliceStatus::Vanished);
        assert_eq!(status("new"), SliceStatus::Appeared);
        assert_eq!(status("few"), SliceStatus::Vanished);
        assert_eq!(status("both"), SliceStatus::Unchanged);
        assert_eq!(out.tested, 1);
        let both = out.findings.iter().find(|f| f.value == "both").unwrap();
        // Identical points: every relabelling ties, p = 1.
        assert_eq!(both.p_value, Some(1.0));
        assert_eq!(both.counts, [2, 2]);
    }

    #[test]
    fn the_relabellings_are_enough_for_the_strictest_step_and_bounded() {
        assert_eq!(total_permutations(1, 0.05), FIRST_STAGE);
        assert_eq!(total_permutations(20, 0.05), 799);
        assert!(1.0 / (total_permutations(64, 0.05) + 1) as f64 <= 0.05 / 64.0);
        assert_eq!(total_permutations(10_000, 0.001), MAX_PERMUTATIONS);
    }

    #[test]
    fn only_the_most_frequent_values_of_a_field_are_kept() {
        let values: Vec<String> = (0..MAX_VALUES + 5).map(|i| format!("v{i}")).collect();
        let reference: Vec<Option<&str>> = values.iter().map(|v| Some(v.as_str())).collect();
        let column = SliceColumn::new("id", reference.clone(), reference);
        let n = values.len();
        let z = Array2::<f64>::zeros((2 * n, 1));
        let rows: Vec<usize> = (0..n).collect();
        let out = findings(&[&column], &rows, &rows, z.view(), 30, 1, 0.05);
        assert_eq!(out.findings.len(), MAX_VALUES);
        assert_eq!(out.omitted, 5);
        assert!(out.findings.iter().all(|f| f.status == SliceStatus::Untested));
    }
}
