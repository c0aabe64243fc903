//! What changed and where, for the reviewer of a drift check: drift by slice (the values of payload fields
//! such as a camera id), regions of the embedding space whose share changed, and the comparison points
//! least like the reference. Pure computation, no I/O.
//!
//! Everything works on the check's pooled points (at most 20 000 per window, reference first, see
//! [`super::pooled`]) in the top [`COMPONENTS`] principal components of the pooled windows. Those are the
//! detectors' own axes: the randomized PCA sketches `k + 10` columns rounded up to 8, which is 16 for every
//! `k <= 6`, so fitting 6 components instead of the detectors' 2 gives the same first two axes and the
//! detectors' results do not change when a check is explained.
//! - [`slices`]: per value of each slice field, its share of each window and, with enough points in both,
//!   its own permutation test (sliced Wasserstein-1, the default `emd` statistic, on the slice's points);
//!   Benjamini–Hochberg across every tested slice of every field. Values seen in one window only are
//!   reported as appeared or vanished.
//! - [`regions`]: k-means++ on the pooled points, k from 2 to [`regions::MAX_CLUSTERS`] chosen by the
//!   silhouette; regions ranked by how much their share changed.
//! - [`nearest`]: for the top slices and regions, the comparison points farthest from their nearest
//!   reference points.

pub mod nearest;
pub mod regions;
pub mod slices;

use std::time::Instant;

use ndarray::{ArrayView2, Axis, Slice};

use super::pooled::Pooled;
use super::rng;

pub use regions::{RegionFinding, RegionKind};
pub use slices::{SliceFinding, SliceStatus};

/// Principal components the explanation works in (at most 6, so the PCA sketch is the detectors' one).
pub const COMPONENTS: usize = 6;
/// Top slices and top regions that get example points.
pub const EXAMPLE_ITEMS: usize = 3;
/// Most example points per slice or region.
pub const MAX_EXAMPLES: usize = 10;

/// One slice field: the distinct values seen and, per sampled row of each window, the index of its value
/// (`None`: the point has no usable value).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SliceColumn {
    pub field: String,
    pub values: Vec<String>,
    pub reference: Vec<Option<u32>>,
    pub comparison: Vec<Option<u32>>,
}

impl SliceColumn {
    /// Interns the values of both windows (one per sampled row, in row order).
    pub fn new<'s>(
        field: impl Into<String>,
        reference: impl IntoIterator<Item = Option<&'s str>>,
        comparison: impl IntoIterator<Item = Option<&'s str>>,
    ) -> SliceColumn {
        let mut index: std::collections::HashMap<&'s str, u32> = std::collections::HashMap::new();
        let mut values: Vec<String> = Vec::new();
        let mut code = |v: Option<&'s str>| {
            let v = v?;
            let next = values.len() as u32;
            let c = *index.entry(v).or_insert(next);
            if c == next {
                values.push(v.to_string());
            }
            Some(c)
        };
        let reference = reference.into_iter().map(&mut code).collect();
        let comparison = comparison.into_iter().map(&mut code).collect();
        SliceColumn {
            field: field.into(),
            values,
            reference,
            comparison,
        }
    }
}

/// What to explain.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// Slice fields (their row values must cover the windows' sampled rows; a column of another length
    /// is skipped).
    pub slices: Vec<SliceColumn>,
    /// Fewest points a slice needs in each window to be tested.
    pub min_slice_points: usize,
    /// Whether to cluster the pooled points into regions.
    pub regions: bool,
    /// Example points per top slice and region (at most [`MAX_EXAMPLES`]).
    pub examples: usize,
}

impl Default for Request {
    fn default() -> Self {
        Request {
            slices: Vec::new(),
            min_slice_points: slices::DEFAULT_MIN_POINTS,
            regions: true,
            examples: 3,
        }
    }
}

/// The explanation of one check. Example points are rows of the comparison window's sample.
#[derive(Clone, Debug, PartialEq)]
pub struct Explained {
    /// Every slice value seen (at most [`slices::MAX_VALUES`] per field), most telling first.
    pub slices: Vec<SliceFinding>,
    /// Slices with enough points in both windows to be tested.
    pub slices_tested: usize,
    /// Values left out because a field had more than [`slices::MAX_VALUES`].
    pub slice_values_omitted: usize,
    /// Every region, largest share change first.
    pub regions: Vec<RegionFinding>,
    /// Seconds spent explaining (the PCA is the detectors'; its share is counted only when no detector
    /// needed it).
    pub seconds: f64,
}

/// Explains two pooled windows given their principal-component scores (`[N, >= 1]`, pooled order).
pub fn explain(
    pooled: &Pooled,
    components: ArrayView2<f64>,
    request: &Request,
    seed: u64,
    alpha: f64,
) -> Explained {
    let started = Instant::now();
    let k = components.ncols().clamp(1, COMPONENTS);
    let z = components.slice_axis(Axis(1), Slice::from(..k));
    let n = pooled.n();
    let (reference_rows, comparison_rows) = pooled.window_rows();
    let columns: Vec<&SliceColumn> = request
        .slices
        .iter()
        .filter(|c| {
            reference_rows.iter().all(|&r| r < c.reference.len())
                && comparison_rows.iter().all(|&r| r < c.comparison.len())
        })
        .collect();
    let sliced = slices::findings(
        &columns,
        reference_rows,
        comparison_rows,
        z,
        request.min_slice_points.max(2),
        seed,
        alpha,
    );
    let mut regions = if request.regions {
        regions::findings(z, n, seed)
    } else {
        Vec::new()
    };
    let mut slice_findings = sliced.findings;

    let examples = request.examples.min(MAX_EXAMPLES);
    if examples > 0 {
        let mut rng = rng::named(seed, "explain-examples");
        let all_reference: Vec<usize> = (0..n).collect();
        let to_rows = |pooled: Vec<usize>| -> Vec<usize> {
            pooled
                .into_iter()
                .filter_map(|i| comparison_rows.get(i.checked_sub(n)?).copied())
                .collect()
        };
        for finding in slice_findings
            .iter_mut()
            .filter(|f| !f.members.1.is_empty())
            .take(EXAMPLE_ITEMS)
        {
            let reference = if finding.members.0.is_empty() {
                &all_reference
            } else {
                &finding.members.0
            };
            let picked = nearest::most_unlike(z, &finding.members.1, reference, examples, &mut rng);
            finding.examples = to_rows(picked);
        }
        for region in regions
            .iter_mut()
            .filter(|r| !r.members.is_empty())
            .take(EXAMPLE_ITEMS)
        {
            let picked = nearest::most_unlike(z, &region.members, &all_reference, examples, &mut rng);
            region.examples = to_rows(picked);
        }
    }
    Explained {
        slices: slice_findings,
        slices_tested: sliced.tested,
        slice_values_omitted: sliced.omitted,
        regions,
        seconds: started.elapsed().as_secs_f64(),
    }
}

#[cfg(test)]
mod tests {
    use ndarray::Array2;
    use rand::SeedableRng;

    use super::super::rng::{self, Rng};
    use super::super::{EngineConfig, Sample, default_detectors, run, run_explained};
    use super::*;

    /// `rows` standard normal points in `d` dimensions; `moved(row)` adds `shift` to dimension 0.
    fn normal(
        rows: usize,
        d: usize,
        seed: u64,
        shift: impl Fn(usize) -> Option<(usize, f32)>,
    ) -> Array2<f32> {
        let mut r = Rng::seed_from_u64(seed);
        let mut x = Array2::from_shape_fn((rows, d), |_| rng::normal(&mut r) as f32);
        for i in 0..rows {
            if let Some((dim, by)) = shift(i) {
                x[[i, dim]] += by;
            }
        }
        x
    }

    fn sample(x: &Array2<f32>) -> Sample<'_> {
        Sample {
            embeddings: x.view(),
            scores: None,
        }
    }

    fn camera(i: usize) -> &'static str {
        ["cam-a", "cam-b", "cam-c", "cam-d"][i % 4]
    }

    #[test]
    fn one_slice_that_alone_drifts_is_named_first_and_the_others_are_not_drifted() {
        // cam-c of the comparison moved by 1.5 along one axis; everything else is the same distribution.
        let reference = normal(1200, 24, 1, |_| None);
        let comparison = normal(1200, 24, 2, |i| (camera(i) == "cam-c").then_some((3, 1.5)));
        let request = Request {
            slices: vec![SliceColumn::new(
                "camera_id",
                (0..1200).map(|i| Some(camera(i))),
                (0..1200).map(|i| Some(camera(i))),
            )],
            ..Request::default()
        };
        let config = EngineConfig::default();
        let (_, explained) = run_explained(
            &default_detectors(false),
            &sample(&reference),
            &sample(&comparison),
            &config,
            Some(&request),
        )
        .unwrap();
        let explained = explained.unwrap();
        assert_eq!(explained.slices_tested, 4);
        let top = &explained.slices[0];
        assert_eq!((top.field.as_str(), top.value.as_str()), ("camera_id", "cam-c"));
        assert_eq!(top.status, SliceStatus::Drifted);
        // The smallest p-value 200 relabellings give, times the 4 slices tested.
        assert_eq!(top.p_value, Some(1.0 / 200.0));
        assert_eq!(top.adjusted_p_value, Some(4.0 / 200.0));
        for other in &explained.slices[1..] {
            assert_eq!(other.status, SliceStatus::Unchanged, "{other:?}");
        }
        // Examples of the top slice are comparison rows of that slice.
        assert_eq!(top.examples.len(), 3);
        assert!(
            top.examples.iter().all(|&row| camera(row) == "cam-c"),
            "{:?}",
            top.examples
        );
    }

    #[test]
    fn a_new_cluster_of_five_percent_is_found_and_its_examples_come_from_it() {
        // The last 100 of 2000 comparison points form a cluster 9 units away along two axes.
        let reference = normal(2000, 32, 3, |_| None);
        let mut comparison = normal(2000, 32, 4, |i| (i >= 1900).then_some((5, 9.0)));
        for i in 1900..2000 {
            comparison[[i, 11]] += 9.0;
        }
        let request = Request {
            examples: 5,
            ..Request::default()
        };
        let (_, explained) = run_explained(
            &default_detectors(false),
            &sample(&reference),
            &sample(&comparison),
            &EngineConfig::default(),
            Some(&request),
        )
        .unwrap();
        let regions = explained.unwrap().regions;
        let top = &regions[0];
        assert_eq!(top.kind, RegionKind::New, "{regions:?}");
        assert_eq!(top.counts, [0, 100], "{regions:?}");
        assert!((top.shares[1] - 0.05).abs() < 1e-9);
        assert_eq!(top.examples.len(), 5);
        assert!(top.examples.iter().all(|&row| row >= 1900), "{:?}", top.examples);
        // The rest of the space only lost the new region's share.
        assert!(
            regions[1..]
                .iter()
                .all(|r| r.kind == RegionKind::Shrunk || r.share_change().abs() < 0.02)
        );
    }

    #[test]
    fn the_false_discovery_rate_across_slices_under_no_drift_is_the_nominal_level() {
        // 10 slices of 60 points per window, no drift at all: every rejection is false, so the FDR is the
        // chance of any rejection, which Benjamini–Hochberg holds at alpha for independent slices (Simes).
        let (runs, slices, per, alpha) = (400, 10, 60, 0.05);
        let mut any = 0;
        for seed in 0..runs {
            let mut r = Rng::seed_from_u64(1000 + seed);
            let rows = slices * per;
            let z = Array2::from_shape_fn((2 * rows, 3), |_| rng::normal(&mut r));
            let value = |i: usize| format!("s{}", i % slices);
            let values: Vec<String> = (0..rows).map(value).collect();
            let column = SliceColumn::new(
                "site",
                values.iter().map(|v| Some(v.as_str())),
                values.iter().map(|v| Some(v.as_str())),
            );
            let all: Vec<usize> = (0..rows).collect();
            let out = slices::findings(&[&column], &all, &all, z.view(), 30, seed, alpha);
            assert_eq!(out.tested, slices);
            if out.findings.iter().any(|f| f.status == SliceStatus::Drifted) {
                any += 1;
            }
        }
        let rate = any as f64 / runs as f64;
        let noise = 3.0 * (alpha * (1.0 - alpha) / runs as f64).sqrt();
        eprintln!(
            "false-discovery rate across {slices} slices under no drift: {rate:.4} (alpha {alpha}, {runs} runs)"
        );
        assert!(
            (rate - alpha).abs() <= noise,
            "false-discovery rate {rate} (alpha {alpha}, ±{noise})"
        );
    }

    #[test]
    fn explaining_a_check_leaves_its_detector_results_unchanged_and_is_deterministic() {
        // 80 dimensions: the randomized PCA sketch, whose first axes must not depend on the explanation.
        let reference = normal(400, 80, 5, |_| None);
        let comparison = normal(400, 80, 6, |i| (i % 2 == 0).then_some((0, 0.8)));
        let config = EngineConfig::default();
        let detectors = default_detectors(false);
        let request = Request::default();
        let plain = run(&detectors, &sample(&reference), &sample(&comparison), &config).unwrap();
        let explain_once = || {
            run_explained(
                &detectors,
                &sample(&reference),
                &sample(&comparison),
                &config,
                Some(&request),
            )
            .unwrap()
        };
        let (first, a) = explain_once();
        let (_, b) = explain_once();
        let strip = |o: &super::super::Outcome| {
            o.scores
                .iter()
                .map(|s| (s.score, s.p_value, s.adjusted_p_value, s.drifted))
                .collect::<Vec<_>>()
        };
        assert_eq!(strip(&plain), strip(&first));
        assert_eq!(plain.combined_p_value, first.combined_p_value);
        let (mut a, mut b) = (a.unwrap(), b.unwrap());
        a.seconds = 0.0;
        b.seconds = 0.0;
        assert_eq!(a, b);
        assert!(!a.regions.is_empty());
    }
}
