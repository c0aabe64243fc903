//! The drift engine: every detector on a reference and a comparison window. Pure computation, no I/O.
//!
//! Inputs are ndarray views (`[n, d]` f32 embeddings, `[n]` f32 confidence scores); the output is one
//! [`DetectorOutcome`] per configured [`DetectorSpec`]. Randomness (PCA sketches, projections,
//! permutations, subsamples) comes from ChaCha streams derived from [`EngineConfig::seed`] and the
//! detector's method and source, so the same inputs and seed give the same result on any thread count.
//!
//! Decisions: a detector fires when its score exceeds `threshold`, or when its p-value is below
//! `pValue`; `threshold: auto` builds a permutation null from the pooled windows at the real window
//! sizes, reports its `1 - alpha` quantile as the threshold and the empirical p-value of the observed
//! score, and fires when that p-value is below `alpha` (`pValue`, default 0.05). Without either, the
//! method's recommended default applies (see [`defaults`] and `docs/research/kl-vs-emd.md`).

pub mod calibrate;
pub mod classifier;
pub mod defaults;
mod error;
pub mod kl;
pub mod linalg;
pub mod mmd;
pub mod pca;
pub mod rng;
pub mod summary;
pub mod univariate;
pub mod validate;
pub mod wasserstein;

use std::time::Instant;

use ndarray::{ArrayView1, ArrayView2};
use serde::Serialize;

use crate::api::v1alpha1::{DataSource, DetectorSpec, Method, Threshold};
use crate::job::result::{DistributionSummary, ScoreReport};

pub use error::DriftError;

/// One window of data: embeddings `[n, d]` and, when the source has them, one confidence score per row.
#[derive(Clone, Copy, Debug)]
pub struct Sample<'a> {
    pub embeddings: ArrayView2<'a, f32>,
    pub scores: Option<ArrayView1<'a, f32>>,
}

/// Engine settings that are not part of a detector spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineConfig {
    /// Seed of every random choice the engine makes.
    pub seed: u64,
    /// Smallest window (rows) that yields a verdict; smaller windows are `InsufficientData`.
    pub min_samples: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            min_samples: 50,
        }
    }
}

/// The outcome of one detector on one pair of windows.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DetectorOutcome {
    pub method: Method,
    pub source: DataSource,
    /// The drift score on the method's own scale (KL in nats, EMD in data units, MMD², KS D, PSI, AUC).
    pub score: f64,
    /// The threshold the score was compared with (the calibrated one for `threshold: auto`).
    pub threshold: Option<f64>,
    /// The p-value, when the method or the calibration computed one.
    pub p_value: Option<f64>,
    pub drifted: bool,
    pub n_reference: usize,
    pub n_comparison: usize,
    /// Wall time of this detector, seconds (shared PCA work is charged to the first detector using it).
    pub seconds: f64,
}

impl From<&DetectorOutcome> for ScoreReport {
    fn from(o: &DetectorOutcome) -> Self {
        ScoreReport {
            method: o.method,
            source: o.source,
            score: o.score,
            threshold: o.threshold,
            p_value: o.p_value,
            drifted: o.drifted,
            n_reference: o.n_reference as u64,
            n_comparison: o.n_comparison as u64,
            seconds: o.seconds,
        }
    }
}

/// The recommended detectors: always `kl_divergence` on embeddings (the original alert rule watches it),
/// plus the detectors the study recommends; confidence-score detectors when the source has scores.
pub fn default_detectors(has_scores: bool) -> Vec<DetectorSpec> {
    defaults::default_detectors(has_scores)
}

/// Runs every detector on the two windows. Fails as a whole on unusable input (the error names the
/// window and, for bad values, the row), so a check never reports a partial verdict.
pub fn run(
    detectors: &[DetectorSpec],
    reference: &Sample,
    comparison: &Sample,
    config: &EngineConfig,
) -> Result<Vec<DetectorOutcome>, DriftError> {
    if detectors.is_empty() {
        return Err(DriftError::InvalidConfig {
            reason: "no detectors configured".to_string(),
        });
    }
    let plans = detectors
        .iter()
        .map(defaults::Plan::resolve)
        .collect::<Result<Vec<_>, _>>()?;
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

    // One PCA of the reference serves every embedding detector that needs components.
    let pca_k = plans
        .iter()
        .filter(|p| p.source == DataSource::Embeddings && p.needs_pca())
        .map(|p| p.components)
        .max();
    let mut projected: Option<pca::Projected> = None;

    let mut outcomes = Vec::with_capacity(plans.len());
    for plan in &plans {
        let started = Instant::now();
        let mut rng = rng::stream(config.seed, plan.method, plan.source);
        let result = match plan.source {
            DataSource::Embeddings => {
                let proj = match (plan.needs_pca(), pca_k) {
                    (true, Some(k)) => {
                        if projected.is_none() {
                            let mut pca_rng = rng::pca_stream(config.seed);
                            projected = Some(pca::Projected::fit(
                                reference.embeddings,
                                comparison.embeddings,
                                k,
                                &mut pca_rng,
                            ));
                        }
                        projected.as_ref()
                    }
                    _ => None,
                };
                run_embeddings(plan, reference.embeddings, comparison.embeddings, proj, &mut rng)?
            }
            DataSource::ConfidenceScores => {
                let (r, c) = scores.as_ref().ok_or(DriftError::MissingScores {
                    window: validate::Window::Reference,
                })?;
                univariate::run(plan, r, c, &mut rng)
            }
        };
        let (n_reference, n_comparison) = match plan.source {
            DataSource::Embeddings => (reference.embeddings.nrows(), comparison.embeddings.nrows()),
            DataSource::ConfidenceScores => {
                scores.as_ref().map(|(r, c)| (r.len(), c.len())).unwrap_or((0, 0))
            }
        };
        outcomes.push(DetectorOutcome {
            method: plan.method,
            source: plan.source,
            score: result.score,
            threshold: result.threshold,
            p_value: result.p_value,
            drifted: result.drifted,
            n_reference,
            n_comparison,
            seconds: started.elapsed().as_secs_f64(),
        });
    }
    Ok(outcomes)
}

/// A detector's statistic before the decision rule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Verdict {
    pub score: f64,
    pub threshold: Option<f64>,
    pub p_value: Option<f64>,
    pub drifted: bool,
}

fn run_embeddings(
    plan: &defaults::Plan,
    reference: ArrayView2<f32>,
    comparison: ArrayView2<f32>,
    projected: Option<&pca::Projected>,
    rng: &mut rng::Rng,
) -> Result<Verdict, DriftError> {
    let need = || {
        projected.ok_or_else(|| DriftError::InvalidConfig {
            reason: format!("{} needs principal components", plan.method),
        })
    };
    Ok(match plan.method {
        Method::KlDivergence => {
            let p = need()?;
            kl::embeddings(
                plan,
                p.reference(plan.components),
                p.comparison(plan.components),
                rng,
            )
        }
        Method::Emd => match plan.emd_mode() {
            defaults::EmdMode::Sliced => wasserstein::sliced(plan, reference, comparison, rng),
            defaults::EmdMode::PerComponent => {
                let p = need()?;
                wasserstein::per_component(
                    plan,
                    p.reference(plan.components),
                    p.comparison(plan.components),
                    rng,
                )
            }
        },
        Method::Mmd => mmd::run(plan, reference, comparison, rng),
        Method::Ks => {
            let p = need()?;
            univariate::ks_components(plan, p.reference(plan.components), p.comparison(plan.components))
        }
        Method::Classifier => {
            let p = need()?;
            classifier::run(
                plan,
                p.reference(plan.components),
                p.comparison(plan.components),
                rng,
            )
        }
        Method::Psi => {
            return Err(DriftError::InvalidConfig {
                reason: "method psi works on 1-D confidence scores only".to_string(),
            });
        }
    })
}

/// Histograms of both windows along the top two principal components of the reference, for the dashboard.
/// Degenerate input (empty, NaN, mismatched widths) yields an empty summary rather than an error.
pub fn summarize(
    reference: ArrayView2<f32>,
    comparison: ArrayView2<f32>,
    bins: usize,
) -> DistributionSummary {
    summary::summarize(reference, comparison, bins)
}

/// The decision rule shared by every method, given the method's observed score and, when it has one,
/// its analytic p-value. `null` draws the permutation null (only called for `auto` or for p-value
/// decisions of methods without an analytic p-value).
pub(crate) fn decide(
    plan: &defaults::Plan,
    score: f64,
    analytic_p: Option<f64>,
    null: impl FnOnce() -> Vec<f64>,
) -> Verdict {
    match plan.decision {
        defaults::Decision::Threshold(t) => Verdict {
            score,
            threshold: Some(t),
            p_value: analytic_p,
            drifted: score > t,
        },
        defaults::Decision::PValue(alpha) | defaults::Decision::Auto(alpha) if analytic_p.is_some() => {
            // Methods with an analytic p-value decide on it, also under `auto`.
            let p = analytic_p.unwrap_or(1.0);
            Verdict {
                score,
                threshold: None,
                p_value: Some(p),
                drifted: p < alpha,
            }
        }
        defaults::Decision::PValue(alpha) => {
            let p = calibrate::permutation_p(score, &null());
            Verdict {
                score,
                threshold: None,
                p_value: Some(p),
                drifted: p < alpha,
            }
        }
        defaults::Decision::Auto(alpha) => {
            let null = null();
            let p = calibrate::permutation_p(score, &null);
            Verdict {
                score,
                threshold: Some(calibrate::upper_quantile(&null, alpha)),
                p_value: Some(p),
                drifted: p < alpha,
            }
        }
    }
}

/// Maps the spec's threshold to the plan's decision (`auto` keeps the spec's pValue as alpha).
pub(crate) fn threshold_decision(
    threshold: Option<Threshold>,
    p_value: Option<f64>,
) -> Option<defaults::Decision> {
    match (threshold, p_value) {
        (Some(Threshold::Auto), p) => Some(defaults::Decision::Auto(p.unwrap_or(0.05))),
        (Some(Threshold::Value(t)), _) => Some(defaults::Decision::Threshold(t)),
        (None, Some(p)) => Some(defaults::Decision::PValue(p)),
        (None, None) => None,
    }
}
