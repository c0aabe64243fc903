//! The DriftEvent kind: detected drift awaiting a human decision, and the retraining hand-off. No I/O.
// kube's `printcolumn(...)` attributes repeat the same keys by design.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    DetectorScore, Explanation, QdrantSource, RetrainingSpec, SampleCounts, SamplingSpec, TimeWindow,
};

/// Condition types of a DriftEvent.
pub mod event_condition {
    /// Approval has been given or refused.
    pub const DECIDED: &str = "Decided";
    /// The retraining batch was delivered and the pipeline triggered.
    pub const RETRAINING_TRIGGERED: &str = "RetrainingTriggered";
}

/// Detected drift for review. `spec` holds the detection facts (immutable) and the human decision
/// (`spec.approval`, settable once).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "driftwatch.dev",
    version = "v1alpha1",
    kind = "DriftEvent",
    namespaced,
    status = "DriftEventStatus",
    shortname = "de",
    category = "drift",
    derive = "PartialEq",
    doc = "DriftEvent records drift found by a DriftMonitor. A human reviews it and sets spec.approval.decision to Approve (package the drifted data and trigger retraining) or Ignore.",
    printcolumn(name = "Monitor", type_ = "string", json_path = ".spec.monitorRef.name"),
    printcolumn(name = "Score", type_ = "number", json_path = ".status.driftScoreRounded"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Decision", type_ = "string", json_path = ".spec.approval.decision"),
    printcolumn(name = "Target", type_ = "string", json_path = ".status.retrainingTarget.summary"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("!has(self.spec.approval) || self.spec.approval.decision != 'Approve' || has(oldSelf.spec.approval) || !has(self.status) || !has(self.status.retrainingTarget) || self.status.retrainingTarget.summary != 'None'")
        .message("this DriftEvent has nothing to trigger: its DriftMonitor has no spec.retraining (status.retrainingTarget.reason says why). Ignore the event, or set spec.retraining on the DriftMonitor and approve once status.retrainingTarget.summary names the destination")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.monitorRef == oldSelf.monitorRef && self.detectedAt == oldSelf.detectedAt && self.driftScore == oldSelf.driftScore && self.scores == oldSelf.scores && self.referenceWindow == oldSelf.referenceWindow && self.comparisonWindow == oldSelf.comparisonWindow && has(self.checkId) == has(oldSelf.checkId) && (!has(self.checkId) || self.checkId == oldSelf.checkId) && has(self.samples) == has(oldSelf.samples) && (!has(self.samples) || self.samples == oldSelf.samples) && has(self.source) == has(oldSelf.source) && (!has(self.source) || self.source == oldSelf.source) && has(self.combinedPValue) == has(oldSelf.combinedPValue) && (!has(self.combinedPValue) || self.combinedPValue == oldSelf.combinedPValue) && has(self.alpha) == has(oldSelf.alpha) && (!has(self.alpha) || self.alpha == oldSelf.alpha)")
        .message("the detection facts of a DriftEvent (monitorRef, detectedAt, driftScore, scores, windows, checkId, samples, source, combinedPValue, alpha) are recorded by the controller and cannot be edited; only spec.approval may be set"),
    validation = Rule::new("!has(oldSelf.approval) || (has(self.approval) && self.approval == oldSelf.approval)")
        .message("spec.approval has already been decided and cannot be changed or removed")
)]
pub struct DriftEventSpec {
    /// The DriftMonitor (same namespace) that found the drift.
    pub monitor_ref: MonitorRef,
    /// When the drift was detected (the check's slot time).
    pub detected_at: Time,
    /// The first detector's score, the headline number.
    pub drift_score: f64,
    /// Every detector's outcome in the detecting check.
    pub scores: Vec<DetectorScore>,
    /// The reference window of the detecting check.
    pub reference_window: TimeWindow,
    /// The comparison window of the detecting check.
    pub comparison_window: TimeWindow,
    /// The detecting check's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_id: Option<String>,
    /// Sample sizes of the detecting check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<SampleCounts>,
    /// What raised the event: controller (a check) or alertmanager (an alert).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The detecting check's p-value for the whole detector set (below alpha).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub combined_p_value: Option<f64>,
    /// The family-wise false-alarm rate of the detecting check's verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
    /// The human decision; set once, never changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
}

/// Reference to the DriftMonitor in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct MonitorRef {
    /// Monitor name.
    #[x_kube(validation = Rule::new("size(self) > 0").message("monitorRef.name must not be empty"))]
    pub name: String,
}

/// A reviewer's decision.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Decision {
    /// Package the drifted data and trigger retraining.
    Approve,
    /// Close the event without action.
    Ignore,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approve => "Approve",
            Decision::Ignore => "Ignore",
        }
    }
}

/// The decision on a DriftEvent, with who made it and why.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    /// Approve or Ignore.
    pub decision: Decision,
    /// The Kubernetes user who decided (must be the requesting user when the admission policy is on).
    #[x_kube(validation = Rule::new("size(self) > 0").message("approvedBy must name the user who decided"))]
    pub approved_by: String,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("size(self) <= 1024").message("reason must be at most 1024 characters"))]
    pub reason: Option<String>,
}

/// Lifecycle phase of a DriftEvent.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum Phase {
    #[default]
    NeedsReview,
    Packaging,
    Actioned,
    RetrainingFailed,
    Ignored,
}

impl Phase {
    pub const ALL: [Phase; 5] = [
        Phase::NeedsReview,
        Phase::Packaging,
        Phase::Actioned,
        Phase::RetrainingFailed,
        Phase::Ignored,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::NeedsReview => "NeedsReview",
            Phase::Packaging => "Packaging",
            Phase::Actioned => "Actioned",
            Phase::RetrainingFailed => "RetrainingFailed",
            Phase::Ignored => "Ignored",
        }
    }

    /// The original REST API's spelling (`NEEDS_REVIEW`, …).
    pub fn api_status(self) -> &'static str {
        match self {
            Phase::NeedsReview => "NEEDS_REVIEW",
            Phase::Packaging => "PACKAGING",
            Phase::Actioned => "ACTIONED",
            Phase::RetrainingFailed => "RETRAINING_FAILED",
            Phase::Ignored => "IGNORED",
        }
    }
}

/// Observed state of a DriftEvent, written only by the controller.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DriftEventStatus {
    /// NeedsReview → Packaging → Actioned | RetrainingFailed, or NeedsReview → Ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// Decided and RetrainingTriggered conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The spec generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// How many firing checks this event stands for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurrences: Option<i64>,
    /// When drift was last seen for this event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<Time>,
    /// The latest firing check's first score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_score: Option<f64>,
    /// `spec.driftScore` rounded to 4 significant digits (the SCORE column of `kubectl get`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift_score_rounded: Option<f64>,
    /// The latest firing check's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_check_id: Option<String>,
    /// What changed and where, from the latest firing check: top slices, regions whose share changed,
    /// example points (bounded; see spec.explain of the DriftMonitor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explanation: Option<Explanation>,
    /// What approving this event hands off to: kept current from the DriftMonitor while the event is in
    /// review, frozen when the approval is recorded. The packaging Job is built from it, never from the
    /// monitor's later spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retraining_target: Option<RetrainingTarget>,
    /// The retraining hand-off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retraining: Option<RetrainingStatus>,
    /// Audit trail: every phase transition, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transitions: Vec<PhaseTransition>,
}

/// `summary` of a [`RetrainingTarget`] when approving would trigger nothing.
pub const NO_RETRAINING_TARGET: &str = "None";

/// The retraining settings an approval hands off to, copied from the DriftMonitor.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetrainingTarget {
    /// Where approving packages to, `s3://<bucket>/<prefix>`, or `None` when approving would trigger
    /// nothing (the TARGET column).
    pub summary: String,
    /// Why there is nothing to trigger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The monitor's `spec.retraining`: bucket, prefix, webhook Secret references, sample size, format,
    /// includeObjects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retraining: Option<RetrainingSpec>,
    /// The monitor's `spec.source.qdrant`: where the points are read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<QdrantSource>,
    /// The monitor's sampling seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    /// The monitor's `spec.sampling`: how the packaging Job samples and reads the comparison window
    /// (mode, sample-key field, strata, read concurrency, page size). Absent on targets frozen by
    /// releases without it: those package with the defaults (mode reservoir).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling: Option<SamplingSpec>,
    /// The monitor's comparison duration (events raised from alerts carry only the detection time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison_duration: Option<String>,
    /// The monitor generation the settings were copied from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor_generation: Option<i64>,
    /// When the approval froze these settings; absent while the event is in review.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_at: Option<Time>,
}

impl RetrainingTarget {
    /// Whether approving hands off anything.
    pub fn configured(&self) -> bool {
        self.retraining.is_some() && self.source.is_some()
    }
}

impl DriftEvent {
    /// Why approving this event would trigger nothing, when the controller recorded so (the monitor has no
    /// `spec.retraining`, or is gone). `None` when there is a target or none was recorded yet.
    pub fn nothing_to_trigger(&self) -> Option<String> {
        let target = self.status.as_ref()?.retraining_target.as_ref()?;
        (target.summary == NO_RETRAINING_TARGET).then(|| {
            target
                .reason
                .clone()
                .unwrap_or_else(|| "the DriftMonitor has no spec.retraining".to_string())
        })
    }
}

/// Progress and outcome of the retrain-packaging Job.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetrainingStatus {
    /// The packaging Job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_name: Option<String>,
    /// Where the batch archive was uploaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_uri: Option<String>,
    /// SHA-256 of the archive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The retraining job id returned by the webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retraining_job_id: Option<String>,
    /// Webhook attempts made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<i32>,
    /// The last error, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When packaging started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// When packaging finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Time>,
}

/// One entry of the audit trail.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PhaseTransition {
    /// The phase entered.
    pub phase: Phase,
    /// When.
    pub time: Time,
    /// Who caused it (a user for decisions, the controller otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Why, or what happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
