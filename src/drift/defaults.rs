//! Detector defaults and the resolved plan of one detector (spec + method defaults). No I/O.
//!
//! The recommended set comes from `docs/research/kl-vs-emd.md`: on embeddings `kl_divergence` (k = 2,
//! grid estimator, `threshold: auto`), sliced `emd` (128 directions, `threshold: auto`) and `mmd`
//! (permutation p-value < 0.05); on confidence scores `psi` (> 0.2) and `ks` (p < 0.05).

use crate::api::v1alpha1::{Bandwidth, Correction, DataSource, DetectorSpec, KlEstimator, Method, Threshold};

use super::DriftError;

/// Default principal components for kl_divergence.
pub const KL_COMPONENTS: usize = 2;
/// Default principal components for ks, classifier and per-component emd.
pub const PC_COMPONENTS: usize = 5;
/// Default random directions of sliced Wasserstein.
pub const PROJECTIONS: usize = 128;
/// Default permutations of permutation p-values and `threshold: auto`.
pub const PERMUTATIONS: usize = 200;
/// Default significance level.
pub const ALPHA: f64 = 0.05;
/// Default PSI threshold (the usual "significant shift" convention).
pub const PSI_THRESHOLD: f64 = 0.2;

/// The recommended detectors (see the module docs).
pub fn default_detectors(has_scores: bool) -> Vec<DetectorSpec> {
    let mut out = vec![
        spec(
            Method::KlDivergence,
            DataSource::Embeddings,
            Some(Threshold::Auto),
            None,
        ),
        spec(Method::Emd, DataSource::Embeddings, Some(Threshold::Auto), None),
        spec(Method::Mmd, DataSource::Embeddings, None, Some(ALPHA)),
    ];
    if let Some(kl) = out.first_mut() {
        kl.components = Some(KL_COMPONENTS as i32);
    }
    if has_scores {
        out.push(spec(
            Method::Psi,
            DataSource::ConfidenceScores,
            Some(Threshold::Value(PSI_THRESHOLD)),
            None,
        ));
        out.push(spec(Method::Ks, DataSource::ConfidenceScores, None, Some(ALPHA)));
    }
    out
}

/// A bare detector spec.
pub fn spec(
    method: Method,
    source: DataSource,
    threshold: Option<Threshold>,
    p_value: Option<f64>,
) -> DetectorSpec {
    // Canonical CRD form: a calibrated threshold is `autoThreshold: true`, not `threshold: auto`.
    let auto = threshold == Some(Threshold::Auto);
    DetectorSpec {
        method,
        source,
        threshold: if auto { None } else { threshold },
        auto_threshold: auto.then_some(true),
        p_value,
        components: None,
        projections: None,
        permutations: None,
        bandwidth: None,
        estimator: None,
        correction: None,
    }
}

/// How a detector decides.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Decision {
    /// Fire when score > threshold.
    Threshold(f64),
    /// Fire when p-value < alpha.
    PValue(f64),
    /// Calibrate the threshold with a permutation null; fire when its p-value < alpha.
    Auto(f64),
}

/// A detector spec with every default filled in and checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub method: Method,
    pub source: DataSource,
    pub decision: Decision,
    pub components: usize,
    pub components_set: bool,
    pub projections: usize,
    pub permutations: usize,
    pub bandwidth: Bandwidth,
    pub estimator: KlEstimator,
    pub correction: Correction,
}

impl Plan {
    /// Resolves defaults and rejects what the API server's CEL rules would have rejected (specs can
    /// also come from a file on the command line).
    pub fn resolve(spec: &DetectorSpec) -> Result<Plan, DriftError> {
        let invalid = |reason: String| Err(DriftError::InvalidConfig { reason });
        if !super::detector::supports(spec.method, spec.source) {
            return invalid(format!(
                "method {} does not apply to source {}",
                spec.method, spec.source
            ));
        }
        if let Some(Threshold::Value(t)) = spec.effective_threshold() {
            if !t.is_finite() || t < 0.0 {
                return invalid(format!("threshold must be a number >= 0 or auto, not {t}"));
            }
            if spec.p_value.is_some() {
                return invalid(
                    "set either threshold or pValue, not both (pValue may accompany autoThreshold: true)"
                        .into(),
                );
            }
        }
        if let Some(p) = spec.p_value
            && !(p > 0.0 && p < 1.0)
        {
            return invalid(format!("pValue must be strictly between 0 and 1, not {p}"));
        }
        if let Some(k) = spec.components {
            if !(1..=10).contains(&k) {
                return invalid(format!("components must be between 1 and 10, not {k}"));
            }
            if spec.source != DataSource::Embeddings {
                return invalid("components only applies to source: embeddings".into());
            }
        }
        if let Some(l) = spec.projections
            && !(8..=4096).contains(&l)
        {
            return invalid(format!("projections must be between 8 and 4096, not {l}"));
        }
        if let Some(b) = spec.permutations
            && !(20..=10000).contains(&b)
        {
            return invalid(format!("permutations must be between 20 and 10000, not {b}"));
        }
        let decision = threshold_decision(spec.effective_threshold(), spec.p_value)
            .unwrap_or_else(|| default_decision(spec.method, spec.source));
        let permutations = spec.permutations.map(|b| b as usize).unwrap_or(PERMUTATIONS);
        if let Decision::PValue(alpha) | Decision::Auto(alpha) = decision
            && super::calibrate::allowed_exceedances(permutations, alpha).is_none()
            && !has_analytic_p(spec.method)
        {
            return invalid(format!(
                "pValue {alpha} cannot be reached with {permutations} permutations (the smallest permutation \
                 p-value is 1/(permutations + 1)); use at least {} permutations",
                (1.0 / alpha).ceil() as usize
            ));
        }
        let bare = Plan::bare(spec.method, spec.source);
        Ok(Plan {
            decision,
            components: spec.components.map(|k| k as usize).unwrap_or(bare.components),
            components_set: spec.components.is_some(),
            projections: spec.projections.map(|l| l as usize).unwrap_or(PROJECTIONS),
            permutations,
            bandwidth: spec.bandwidth.unwrap_or_default(),
            estimator: spec.estimator.unwrap_or_default(),
            correction: spec.correction.unwrap_or_default(),
            ..bare
        })
    }

    /// The method's defaults on the source, unchecked.
    pub fn bare(method: Method, source: DataSource) -> Plan {
        Plan {
            method,
            source,
            decision: default_decision(method, source),
            components: match method {
                Method::KlDivergence => KL_COMPONENTS,
                _ => PC_COMPONENTS,
            },
            components_set: false,
            projections: PROJECTIONS,
            permutations: PERMUTATIONS,
            bandwidth: Bandwidth::default(),
            estimator: KlEstimator::default(),
            correction: Correction::default(),
        }
    }
}

/// The decision a method uses when the spec sets neither threshold nor pValue.
pub fn default_decision(method: Method, source: DataSource) -> Decision {
    match (method, source) {
        (Method::Psi, _) => Decision::Threshold(PSI_THRESHOLD),
        (Method::KlDivergence | Method::Emd, _) => Decision::Auto(ALPHA),
        (Method::Mmd | Method::Ks | Method::Classifier, _) => Decision::PValue(ALPHA),
    }
}

/// Methods whose own decision uses an analytic p-value (their `pValue` needs no permutations).
fn has_analytic_p(method: Method) -> bool {
    matches!(method, Method::Ks)
}

/// Maps the spec's threshold to the plan's decision (`auto` keeps the spec's pValue as alpha).
pub fn threshold_decision(threshold: Option<Threshold>, p_value: Option<f64>) -> Option<Decision> {
    match (threshold, p_value) {
        (Some(Threshold::Auto), p) => Some(Decision::Auto(p.unwrap_or(ALPHA))),
        (Some(Threshold::Value(t)), _) => Some(Decision::Threshold(t)),
        (None, Some(p)) => Some(Decision::PValue(p)),
        (None, None) => None,
    }
}
