//! Types shared by DriftMonitor and DriftEvent: detectors, scores, windows, secret references. No I/O.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Threshold;

/// A drift detection method.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum Method {
    /// PCA of the embeddings → kernel density estimates → KL(comparison ‖ reference); KL of smoothed
    /// histograms for confidence scores.
    #[serde(rename = "kl_divergence")]
    KlDivergence,
    /// Earth Mover's (Wasserstein-1) distance: sliced over random directions for embeddings, exact in 1-D.
    #[serde(rename = "emd")]
    Emd,
    /// Maximum mean discrepancy with an RBF kernel and a permutation p-value (embeddings only).
    #[serde(rename = "mmd")]
    Mmd,
    /// Population stability index over reference-quantile bins (confidence scores only).
    #[serde(rename = "psi")]
    Psi,
    /// Two-sample Kolmogorov–Smirnov test (per principal component with multiple-testing correction for
    /// embeddings).
    #[serde(rename = "ks")]
    Ks,
    /// Domain classifier telling reference from comparison; held-out ROC AUC with a permutation p-value
    /// (embeddings only).
    #[serde(rename = "classifier")]
    Classifier,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::KlDivergence => "kl_divergence",
            Method::Emd => "emd",
            Method::Mmd => "mmd",
            Method::Psi => "psi",
            Method::Ks => "ks",
            Method::Classifier => "classifier",
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a detector looks at.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum DataSource {
    /// The embedding vectors of the points.
    #[default]
    #[serde(rename = "embeddings")]
    Embeddings,
    /// A model confidence score per point, read from the payload field `source.qdrant.confidenceField`.
    #[serde(rename = "confidence_scores")]
    ConfidenceScores,
}

impl DataSource {
    pub fn as_str(self) -> &'static str {
        match self {
            DataSource::Embeddings => "embeddings",
            DataSource::ConfidenceScores => "confidence_scores",
        }
    }
}

impl std::fmt::Display for DataSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Kernel density bandwidth rule.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Bandwidth {
    #[default]
    Scott,
    Silverman,
}

/// How the KL divergence is estimated.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum KlEstimator {
    /// Both densities on one binned grid with a shared bandwidth and mixture smoothing (sound, fast).
    #[default]
    Grid,
    /// The original design's estimator: two KDEs with their own bandwidths, averaged log-ratio over the
    /// comparison points (kept for comparison; biased and can go negative).
    Resubstitution,
}

/// Multiple-testing correction used when one test runs per principal component.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Correction {
    #[default]
    Bonferroni,
    BenjaminiHochberg,
}

/// One drift detector: a method applied to a data source, with its decision rule.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.method != 'psi' || self.source == 'confidence_scores'")
        .message("method psi works on 1-D scores only: set source: confidence_scores, or use kl_divergence, emd, mmd, ks or classifier for embeddings"),
    validation = Rule::new("!(self.method in ['mmd', 'classifier']) || self.source == 'embeddings'")
        .message("methods mmd and classifier work on embeddings only: set source: embeddings, or use psi, ks, emd or kl_divergence for confidence_scores"),
    validation = Rule::new("!(has(self.threshold) && has(self.autoThreshold) && self.autoThreshold)")
        .message("set either a fixed threshold or autoThreshold: true, not both"),
    validation = Rule::new("!(has(self.threshold) && has(self.pValue))")
        .message("set either threshold or pValue, not both (pValue may accompany autoThreshold: true)"),
    validation = Rule::new("!has(self.components) || self.source == 'embeddings'")
        .message("components (PCA components) only applies to source: embeddings")
)]
pub struct DetectorSpec {
    /// Detection method: kl_divergence, emd, mmd, psi, ks or classifier.
    pub method: Method,
    /// Data source: embeddings (default) or confidence_scores.
    #[serde(default)]
    pub source: DataSource,
    /// Fire when the score exceeds this value (>= 0). For a threshold calibrated by permutations of the
    /// pooled windows set autoThreshold: true instead. Without threshold, autoThreshold and pValue the
    /// method's recommended default applies. A detector's own flag; the check's verdict (and its
    /// DriftEvent) is calibrated over all detectors at spec.alpha.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<Threshold>,
    /// Calibrate the threshold by permutations of the pooled windows at the real window sizes: the
    /// reported threshold is the critical value, so the score exceeds it exactly when the permutation
    /// p-value is below pValue (default 0.05). Replaces threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_threshold: Option<bool>,
    /// Fire when the detector's p-value is below this significance level, in (0, 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self > 0.0 && self < 1.0").message("pValue must be strictly between 0 and 1, e.g. 0.05"))]
    pub p_value: Option<f64>,
    /// Number of principal components (embeddings only), 1 to 10. Default 2 for kl_divergence, 5 for ks
    /// and classifier and for the per-component EMD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 10").message("components must be between 1 and 10"))]
    pub components: Option<i32>,
    /// Random projections for sliced Wasserstein (emd on embeddings), 8 to 4096. Default 128.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 8 && self <= 4096").message("projections must be between 8 and 4096"))]
    pub projections: Option<i32>,
    /// Permutations for permutation p-values and autoThreshold calibration, 20 to 10000. Default 200.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 20 && self <= 10000").message("permutations must be between 20 and 10000"))]
    pub permutations: Option<i32>,
    /// KDE bandwidth rule for kl_divergence: scott (default) or silverman.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<Bandwidth>,
    /// KL estimator for kl_divergence: grid (default) or resubstitution (the original design's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimator: Option<KlEstimator>,
    /// Multiple-testing correction for ks on embeddings: bonferroni (default) or benjaminiHochberg.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correction: Option<Correction>,
}

/// The outcome of one detector in one check.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DetectorScore {
    /// Detection method.
    pub method: Method,
    /// Data source.
    pub source: DataSource,
    /// The drift score (method-specific scale).
    pub score: f64,
    /// The threshold the score was compared with, when the decision used one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// The p-value, when the method computes one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_value: Option<f64>,
    /// The p-value adjusted for the whole detector set; the check reports drift exactly when one of
    /// these is below the monitor's alpha.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adjusted_p_value: Option<f64>,
    /// Whether this detector fired on its own (its threshold or pValue, not adjusted for the others).
    pub drifted: bool,
}

/// A closed time interval of data.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TimeWindow {
    /// Inclusive start (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<Time>,
    /// Exclusive end (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<Time>,
    /// Collection the window was read from, when it differs from the monitor's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
}

/// A key of a Secret in the monitor's namespace. Only Jobs read the value (as an env var).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Secret name.
    #[x_kube(validation = Rule::new("size(self) > 0 && size(self) <= 253").message("secret name must be 1 to 253 characters"))]
    pub name: String,
    /// Key within the Secret.
    #[x_kube(validation = Rule::new("size(self) > 0").message("secret key must not be empty"))]
    pub key: String,
}

/// Sample sizes of a check.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SampleCounts {
    /// Reference points used.
    pub reference: i64,
    /// Comparison points used.
    pub comparison: i64,
    /// Reference points available in the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_available: Option<i64>,
    /// Comparison points available in the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison_available: Option<i64>,
    /// How the reference sample was drawn: all (the window fit the limit), random, sampleKey or reservoir.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_sampling: Option<SamplingMethod>,
    /// How the comparison sample was drawn: all, random, sampleKey or reservoir.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison_sampling: Option<SamplingMethod>,
    /// Points read from Qdrant to draw the reference sample (about the sample for random and sampleKey,
    /// the whole window for all and reservoir).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_read: Option<i64>,
    /// Points read from Qdrant to draw the comparison sample.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison_read: Option<i64>,
}

/// How a window's sample was drawn.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum SamplingMethod {
    /// The window had no more points than its limit: every point was read and used.
    All,
    /// Qdrant's random-sample query, per time stratum.
    Random,
    /// The points with the smallest sample keys, per time stratum.
    SampleKey,
    /// Every point scrolled into a seeded reservoir, per time stratum.
    Reservoir,
}

impl SamplingMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            SamplingMethod::All => "all",
            SamplingMethod::Random => "random",
            SamplingMethod::SampleKey => "sampleKey",
            SamplingMethod::Reservoir => "reservoir",
        }
    }
}

impl DetectorSpec {
    /// The threshold rule in effect: `autoThreshold: true` and `threshold: auto` both mean calibration.
    pub fn effective_threshold(&self) -> Option<Threshold> {
        if self.auto_threshold == Some(true) {
            Some(Threshold::Auto)
        } else {
            self.threshold
        }
    }
}

/// Significant digits of the scores shown in `kubectl get` columns.
pub const DISPLAY_DIGITS: usize = 4;

/// `score` rounded to [`DISPLAY_DIGITS`] significant digits, for printer columns (status keeps the full
/// value alongside). `None` for NaN and infinities, which JSON cannot hold.
pub fn display_score(score: f64) -> Option<f64> {
    if !score.is_finite() {
        return None;
    }
    // Formatting rounds to nearest, ties to even on the decimal digits, exactly as a reader would.
    format!("{:.*e}", DISPLAY_DIGITS - 1, score).parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_scores_keep_four_significant_digits() {
        assert_eq!(display_score(0.111_588_532_403_535_96), Some(0.1116));
        assert_eq!(
            serde_json::to_string(&display_score(0.111_588_532_403_535_96)).unwrap(),
            "0.1116"
        );
        assert_eq!(display_score(0.000_123_456), Some(0.000_123_5));
        assert_eq!(display_score(12_345.678), Some(12_350.0));
        assert_eq!(display_score(0.5), Some(0.5));
        assert_eq!(display_score(0.0), Some(0.0));
        assert_eq!(display_score(-0.042_424_2), Some(-0.042_42));
        assert_eq!(display_score(f64::NAN), None);
        assert_eq!(display_score(f64::INFINITY), None);
    }
}
