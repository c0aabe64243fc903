//! The drift engine: every detector on a reference and a comparison window, and one calibrated verdict.
//! Pure computation, no I/O.
//!
//! Inputs are ndarray views (`[n, d]` f32 embeddings, `[n]` f32 confidence scores, one per row). Each
//! window is tested on at most [`pooled::MAX_TEST_ROWS`] rows (a seeded subsample above that). The
//! windows are pooled (reference first); principal axes, bandwidths and grids are fitted on the pooled
//! points, so they are the same for every relabelling. Every detector computes its statistic on the
//! observed split and on one shared set of random relabellings ([`relabel::Relabellings`]), which gives
//! - each detector's own decision (see [`calibrate::decide`]): score > `threshold`, p-value < `pValue`,
//!   or `threshold: auto` (permutation p-value < alpha, with the matching critical value reported as the
//!   threshold, so `score > threshold` ⇔ drifted);
//! - the check's verdict: the minimum p-value over the detectors, calibrated against the permutation
//!   distribution of that minimum (Westfall–Young minP, [`calibrate::min_p`]), across both sources when
//!   the confidence scores belong to the same points; groups that cannot share relabellings (scores of
//!   other points, a classifier with its own split) are combined by Bonferroni. `driftDetected` is
//!   `combined p < alpha` (`EngineConfig::alpha`, the monitor's `spec.alpha`): the family-wise
//!   false-alarm rate of the whole detector set is at most alpha.
//!
//! Randomness (subsamples, PCA sketches, directions, relabellings) comes from ChaCha streams derived
//! from [`EngineConfig::seed`], and every parallel reduction has a fixed order, so the same inputs and
//! seed give bit-identical results on any number of threads.

pub mod calibrate;
pub mod classifier;
pub mod defaults;
pub mod detector;
mod error;
pub mod explain;
pub mod kl;
pub mod linalg;
pub mod mmd;
pub mod pca;
pub mod pooled;
pub mod relabel;
pub mod rng;
pub mod summary;
pub mod sweep;
pub mod univariate;
pub mod validate;
pub mod wasserstein;

use std::time::Instant;

use ndarray::{ArrayView1, ArrayView2};
use serde::Serialize;

use crate::api::v1alpha1::{DataSource, DetectorSpec};
use crate::job::result::{DistributionSummary, ScoreReport};
use detector::{Detector, Input, Null};
use pooled::{MAX_TEST_ROWS, Pooled};
use relabel::Relabellings;

pub use error::DriftError;

/// One window of data: embeddings `[n, d]` and, when the source has them, one confidence score per row.
#[derive(Clone, Copy, Debug)]
pub struct Sample<'a> {
    pub embeddings: ArrayView2<'a, f32>,
    pub scores: Option<ArrayView1<'a, f32>>,
}

/// Engine settings that are not part of a detector spec.
#[derive(Clone, Debug, PartialEq)]
pub struct EngineConfig {
    /// Seed of every random choice the engine makes.
    pub seed: u64,
    /// Smallest window (rows) that yields a verdict; smaller windows are `InsufficientData`.
    pub min_samples: usize,
    /// Family-wise false-alarm rate of the check's verdict (`spec.alpha`).
    pub alpha: f64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            min_samples: 50,
            alpha: defaults::ALPHA,
        }
    }
}

/// What the engine reports for one check.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// One report per detector, in spec order.
    pub scores: Vec<ScoreReport>,
    /// The family's p-value: minP over the detectors sharing relabellings, Bonferroni across groups.
    pub combined_p_value: f64,
    /// The family-wise level the verdict holds.
    pub alpha: f64,
    /// `combined_p_value < alpha`.
    pub drift_detected: bool,
}

/// The recommended detectors: always `kl_divergence` on embeddings (the original alert rule watches it),
/// plus the detectors the study recommends; confidence-score detectors when the source has scores.
pub fn default_detectors(has_scores: bool) -> Vec<DetectorSpec> {
    defaults::default_detectors(has_scores)
}

/// Histograms of both windows along the top two principal components of the reference, for the dashboard.
/// Degenerate input (empty, NaN, mismatched widths) yields an empty summary rather than an error.
pub fn summarize(
    reference: ArrayView2<f32>,
    comparison: ArrayView2<f32>,
    bins: usize,
    seed: u64,
) -> DistributionSummary {
    summary::summarize(reference, comparison, bins, seed)
}

/// One set of points tested together with one set of relabellings.
struct Group<'a> {
    input: Input<'a>,
    labels: Relabellings,
    /// Seconds spent building the group (pooling, PCA, relabelling), charged to its first detector.
    setup: f64,
}

/// Runs every detector on the two windows and decides the check. Fails as a whole on unusable input (the
/// error names the window and, for bad values, the row), so a check never reports a partial verdict.
pub fn run(
    detectors: &[DetectorSpec],
    reference: &Sample,
    comparison: &Sample,
    config: &EngineConfig,
) -> Result<Outcome, DriftError> {
    run_explained(detectors, reference, comparison, config, None).map(|(outcome, _)| outcome)
}

/// [`run`], and with a request also the explanation of the check ([`explain`]): on the same pooled points
/// and principal axes, after the detectors, without changing their results.
pub fn run_explained(
    detectors: &[DetectorSpec],
    reference: &Sample,
    comparison: &Sample,
    config: &EngineConfig,
    request: Option<&explain::Request>,
) -> Result<(Outcome, Option<explain::Explained>), DriftError> {
    if detectors.is_empty() {
        return Err(DriftError::InvalidConfig {
            reason: "no detectors configured".to_string(),
        });
    }
    if !(config.alpha > 0.0 && config.alpha < 1.0) {
        return Err(DriftError::InvalidConfig {
            reason: format!("alpha must be strictly between 0 and 1, not {}", config.alpha),
        });
    }
    let plans = detectors
        .iter()
        .map(defaults::Plan::resolve)
        .collect::<Result<Vec<_>, _>>()?;
    let built: Vec<Box<dyn Detector>> = plans
        .iter()
        .map(|p| {
            detector::build(p).ok_or_else(|| DriftError::InvalidConfig {
                reason: format!("method {} does not apply to source {}", p.method, p.source),
            })
        })
        .collect::<Result<_, _>>()?;
    let min_samples = config.min_samples.max(2);

    let uses_embeddings = plans.iter().any(|p| p.source == DataSource::Embeddings);
    let uses_scores = plans.iter().any(|p| p.source == DataSource::ConfidenceScores);
    if uses_embeddings {
        validate::embeddings(reference.embeddings, comparison.embeddings, min_samples)?;
    }
    let scores = if uses_scores {
        Some(validate::scores(
            reference.scores,
            comparison.scores,
            min_samples,
        )?)
    } else {
        None
    };
    // Scores of the same points as the embeddings share the embeddings' relabellings (one family across
    // both sources); otherwise they form a group of their own.
    let aligned = uses_embeddings
        && scores.as_ref().is_some_and(|(r, c)| {
            r.len() == reference.embeddings.nrows() && c.len() == comparison.embeddings.nrows()
        });
    let in_score_group = |d: &dyn Detector| d.plan().source == DataSource::ConfidenceScores && !aligned;
    check_reachable(&built, config.alpha, in_score_group)?;

    let started = Instant::now();
    let mut subsample = rng::named(config.seed, "subsample");
    let pooled = uses_embeddings.then(|| {
        Pooled::new(
            reference.embeddings,
            comparison.embeddings,
            MAX_TEST_ROWS,
            &mut subsample,
        )
    });
    let k = built
        .iter()
        .filter(|d| d.plan().source == DataSource::Embeddings)
        .map(|d| d.components())
        .max()
        .unwrap_or(0);
    // Explaining reads COMPONENTS axes; up to 6 the PCA sketch is the same, so the detectors' axes are too.
    let fitted = if request.is_some() {
        k.max(explain::COMPONENTS)
    } else {
        k
    };
    let pca_started = Instant::now();
    let projected = match (&pooled, fitted) {
        (Some(p), k) if k > 0 => Some(pca::Projected::fit(p, k, &mut rng::named(config.seed, "pca"))),
        _ => None,
    };
    // The PCA counts as explaining when no detector needed it.
    let pca_for_explaining = if k == 0 {
        pca_started.elapsed().as_secs_f64()
    } else {
        0.0
    };
    let pooled_scores: Option<(Vec<f64>, usize)> = match (&scores, &pooled) {
        (Some(_), Some(p)) if aligned => {
            let (r, c) = (reference.scores, comparison.scores);
            r.zip(c).map(|(r, c)| (p.select(r, c), p.n()))
        }
        (Some((r, c)), _) => Some(cap_scores(r, c, &mut subsample)),
        (None, _) => None,
    };
    let permutations = |score_group: bool| {
        built
            .iter()
            .filter(|d| d.null() == Null::Shared && in_score_group(d.as_ref()) == score_group)
            .map(|d| d.plan().permutations)
            .max()
            .unwrap_or(0)
    };
    let mut groups: Vec<Group> = Vec::new();
    let main_n = pooled
        .as_ref()
        .map(Pooled::n)
        .or(pooled_scores.as_ref().map(|s| s.1));
    if let Some(n) = main_n.filter(|_| uses_embeddings || aligned) {
        let total = pooled.as_ref().map_or(0, linalg::Rows::count);
        let labels = Relabellings::draw(
            total,
            n,
            permutations(false),
            &mut rng::named(config.seed, "relabel"),
        );
        groups.push(Group {
            input: Input {
                n,
                embeddings: pooled.as_ref(),
                components: projected.as_ref().map(pca::Projected::view),
                scores: pooled_scores.as_ref().filter(|_| aligned).map(|s| s.0.as_slice()),
            },
            labels,
            setup: started.elapsed().as_secs_f64(),
        });
    }
    if let Some((values, n)) = pooled_scores.as_ref().filter(|_| !aligned) {
        let started = Instant::now();
        let labels = Relabellings::draw(
            values.len(),
            *n,
            permutations(true),
            &mut rng::named(config.seed, "relabel-scores"),
        );
        groups.push(Group {
            input: Input {
                n: *n,
                embeddings: None,
                components: None,
                scores: Some(values),
            },
            labels,
            setup: started.elapsed().as_secs_f64(),
        });
    }
    let group_of = |d: &dyn Detector| if in_score_group(d) { groups.len() - 1 } else { 0 };

    let mut charged = vec![false; groups.len()];
    let mut statistics = Vec::with_capacity(built.len());
    let mut scores_out = Vec::with_capacity(built.len());
    for d in &built {
        let g = group_of(d.as_ref());
        let group = &groups[g];
        let started = Instant::now();
        let mut stream = rng::stream(config.seed, d.plan().method, d.plan().source);
        let stats = d.statistics(&group.input, &group.labels, &mut stream);
        let marginal = calibrate::decide(d.plan(), &stats, d.analytic_p(&group.input));
        let mut seconds = started.elapsed().as_secs_f64();
        if !charged[g] {
            seconds += group.setup;
            charged[g] = true;
        }
        scores_out.push(ScoreReport {
            method: d.plan().method,
            source: d.plan().source,
            score: marginal.score,
            threshold: marginal.threshold,
            p_value: marginal.p_value,
            adjusted_p_value: None,
            drifted: marginal.drifted,
            n_reference: group.labels.n_first() as u64,
            n_comparison: group.labels.n_second() as u64,
            seconds,
        });
        statistics.push((g, stats));
    }

    // The family: minP within each group of shared nulls, each own-null detector alone, Bonferroni across.
    let mut families: Vec<(f64, Vec<usize>)> = Vec::new();
    let mut adjusted = vec![1.0; built.len()];
    for g in 0..groups.len() {
        let members: Vec<usize> = (0..built.len())
            .filter(|&i| statistics[i].0 == g && built[i].null() == Null::Shared)
            .collect();
        if members.is_empty() {
            continue;
        }
        let columns: Vec<Vec<f64>> = members.iter().map(|&i| statistics[i].1.clone()).collect();
        let (p, adj) = calibrate::min_p(&columns);
        for (&i, a) in members.iter().zip(adj) {
            adjusted[i] = a;
        }
        families.push((p, members));
    }
    for (i, d) in built.iter().enumerate() {
        if d.null() == Null::Own {
            let p = calibrate::permutation_p(&statistics[i].1);
            adjusted[i] = p;
            families.push((p, vec![i]));
        }
    }
    let combined = calibrate::bonferroni(families.iter().map(|f| f.0).fold(1.0, f64::min), families.len());
    for (report, a) in scores_out.iter_mut().zip(adjusted) {
        report.adjusted_p_value = Some(calibrate::bonferroni(a, families.len()));
    }
    let outcome = Outcome {
        scores: scores_out,
        combined_p_value: combined,
        alpha: config.alpha,
        drift_detected: combined < config.alpha,
    };
    let explained = match (request, &pooled, &projected) {
        (Some(request), Some(p), Some(projected)) => {
            let mut e = explain::explain(p, projected.view(), request, config.seed, config.alpha);
            e.seconds += pca_for_explaining;
            Some(e)
        }
        (Some(request), None, _) => explain_alone(reference, comparison, config, request),
        _ => None,
    };
    Ok((outcome, explained))
}

/// The explanation of a check whose detectors read no embeddings: its own pooled points and PCA (other
/// random streams than the detectors'); `None` when the embeddings are unusable.
fn explain_alone(
    reference: &Sample,
    comparison: &Sample,
    config: &EngineConfig,
    request: &explain::Request,
) -> Option<explain::Explained> {
    let started = Instant::now();
    validate::embeddings(reference.embeddings, comparison.embeddings, 2).ok()?;
    let pooled = Pooled::new(
        reference.embeddings,
        comparison.embeddings,
        MAX_TEST_ROWS,
        &mut rng::named(config.seed, "explain-subsample"),
    );
    let projected = pca::Projected::fit(
        &pooled,
        explain::COMPONENTS,
        &mut rng::named(config.seed, "explain-pca"),
    );
    let mut e = explain::explain(&pooled, projected.view(), request, config.seed, config.alpha);
    e.seconds = started.elapsed().as_secs_f64();
    Some(e)
}

/// Fails when the verdict could never reach `alpha`: the smallest combined p-value is
/// `families / (B + 1)`, B the most permutations of any family.
fn check_reachable(
    detectors: &[Box<dyn Detector>],
    alpha: f64,
    in_score_group: impl Fn(&dyn Detector) -> bool,
) -> Result<(), DriftError> {
    let shared_groups: Vec<bool> = [false, true]
        .into_iter()
        .filter(|&s| {
            detectors
                .iter()
                .any(|d| d.null() == Null::Shared && in_score_group(d.as_ref()) == s)
        })
        .collect();
    let own = detectors.iter().filter(|d| d.null() == Null::Own).count();
    let families = shared_groups.len() + own;
    let most = detectors
        .iter()
        .map(|d| d.plan().permutations)
        .max()
        .unwrap_or(defaults::PERMUTATIONS);
    let smallest = calibrate::bonferroni(1.0 / (most + 1) as f64, families);
    if smallest >= alpha {
        return Err(DriftError::InvalidConfig {
            reason: format!(
                "alpha {alpha} cannot be reached: with {families} independent group(s) of detectors and \
                 {most} permutations the smallest combined p-value is {smallest:.4}; raise permutations \
                 or alpha"
            ),
        });
    }
    Ok(())
}

/// Both score windows, each cut to at most [`MAX_TEST_ROWS`] values by a seeded subsample, pooled
/// (reference first), with the reference's size.
fn cap_scores(reference: &[f64], comparison: &[f64], rng: &mut rng::Rng) -> (Vec<f64>, usize) {
    let pick = |v: &[f64], rng: &mut rng::Rng| -> Vec<f64> {
        if v.len() > MAX_TEST_ROWS {
            rng::subset(rng, v.len(), MAX_TEST_ROWS)
                .into_iter()
                .map(|i| v[i])
                .collect()
        } else {
            v.to_vec()
        }
    };
    let r = pick(reference, rng);
    let n = r.len();
    let mut pooled = r;
    pooled.extend(pick(comparison, rng));
    (pooled, n)
}
