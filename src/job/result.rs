//! The versioned result document a Job writes to its termination log (< 4 KiB) and the controller reads.
//! Pure data and (de)serialization; writing the file is the Job's business.

use serde::{Deserialize, Serialize};

use super::redact::redact_urls;
use crate::api::v1alpha1::{DataSource, Explanation, Method, SampleCounts, TimeWindow};

/// `apiVersion` of every result document this build writes.
pub const RESULT_API_VERSION: &str = "driftwatch.dev/result/v1";
/// Kubernetes caps a termination message at 4096 bytes.
pub const MAX_RESULT_BYTES: usize = 4096;

/// What a drift-check Job reports.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CheckReport {
    pub api_version: String,
    /// Always `CheckResult`.
    pub kind: String,
    /// The check id (Job name, or given on the command line).
    pub check_id: String,
    /// Present on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<CheckOutcome>,
    /// Present on failure; the Job also exits non-zero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<JobError>,
}

/// A successful check.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CheckOutcome {
    pub windows: ReportWindows,
    pub samples: SampleCounts,
    pub scores: Vec<ScoreReport>,
    /// The calibrated verdict: `combinedPValue < alpha` (older Jobs: any detector fired).
    pub drift_detected: bool,
    /// The p-value of the whole detector set (minP over the detectors sharing relabellings, Bonferroni
    /// across groups); absent in documents of older Jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub combined_p_value: Option<f64>,
    /// The family-wise false-alarm rate the verdict holds (`spec.alpha`); absent in older documents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
    pub duration_seconds: f64,
    /// Points skipped for a missing or garbled timestamp, per window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<SkippedCounts>,
    /// Compact picture of both windows for the dashboard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<DistributionSummary>,
    /// What changed and where (bounded; cut further to fit the termination message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explanation: Option<Explanation>,
}

/// Reference and comparison windows as read.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ReportWindows {
    pub reference: TimeWindow,
    pub comparison: TimeWindow,
}

/// One detector's outcome: the engine's result type, also the result document's.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ScoreReport {
    pub method: Method,
    pub source: DataSource,
    /// The drift score on the method's own scale (KL in nats, EMD in data units, MMD², KS D, PSI, AUC).
    pub score: f64,
    /// The threshold the score was compared with (the calibrated critical value for `autoThreshold`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// The detector's own p-value (analytic when the method has one, else its permutation p-value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_value: Option<f64>,
    /// The p-value adjusted for the whole detector set (single-step minP, Bonferroni across groups): the
    /// verdict fires exactly when one of these is below alpha. Absent in older documents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adjusted_p_value: Option<f64>,
    /// The detector's own decision (its threshold or pValue), not adjusted for the other detectors.
    pub drifted: bool,
    /// Points tested per window.
    pub n_reference: u64,
    pub n_comparison: u64,
    /// Wall time of this detector, seconds (shared setup is charged to the first detector using it).
    pub seconds: f64,
}

/// Points skipped while reading.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SkippedCounts {
    pub reference: u64,
    pub comparison: u64,
}

/// Histograms of both windows along the top principal components of the reference.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DistributionSummary {
    /// One entry per principal component (at most 2).
    pub components: Vec<ComponentHistogram>,
}

/// Histogram of one principal component: shared bin edges, counts per window.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ComponentHistogram {
    /// Lower edge of the first bin and upper edge of the last.
    pub range: [f64; 2],
    pub reference: Vec<u32>,
    pub comparison: Vec<u32>,
}

/// A named failure of a Job.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct JobError {
    /// Machine-readable kind, e.g. SourceUnavailable, CollectionNotFound, InsufficientData.
    pub kind: String,
    /// What went wrong, for a person.
    pub message: String,
}

impl CheckReport {
    pub fn success(check_id: impl Into<String>, outcome: CheckOutcome) -> Self {
        Self {
            api_version: RESULT_API_VERSION.to_string(),
            kind: CHECK_RESULT_KIND.to_string(),
            check_id: check_id.into(),
            result: Some(outcome),
            error: None,
        }
    }

    pub fn failure(check_id: impl Into<String>, kind: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            api_version: RESULT_API_VERSION.to_string(),
            kind: CHECK_RESULT_KIND.to_string(),
            check_id: check_id.into(),
            result: None,
            error: Some(JobError {
                kind: kind.into(),
                message: message.into(),
            }),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ResultError {
    #[error("result document is not valid JSON: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("result document has apiVersion {0:?}, this build reads {RESULT_API_VERSION}")]
    UnknownVersion(String),
    #[error("result document has kind {found:?}, expected {expected}")]
    WrongKind { found: String, expected: &'static str },
    #[error("result document is about {field} {found:?}, but the Job that produced it is for {expected:?}")]
    WrongSubject {
        field: &'static str,
        found: String,
        expected: String,
    },
}

/// `kind` of a check Job's result document.
pub const CHECK_RESULT_KIND: &str = "CheckResult";
/// `kind` of a packaging Job's result document.
pub const PACKAGE_RESULT_KIND: &str = "PackageResult";

impl CheckReport {
    /// Refuses a document that is not the check result of the Job `check_id` (the Job's name).
    pub fn validate_for(&self, check_id: &str) -> Result<(), ResultError> {
        if self.kind != CHECK_RESULT_KIND {
            return Err(ResultError::WrongKind {
                found: self.kind.clone(),
                expected: CHECK_RESULT_KIND,
            });
        }
        if self.check_id != check_id {
            return Err(ResultError::WrongSubject {
                field: "checkId",
                found: self.check_id.clone(),
                expected: check_id.to_string(),
            });
        }
        Ok(())
    }
}

impl PackageReport {
    /// Refuses a document that is not the packaging result of the event `event_id` (`<namespace>/<name>`).
    pub fn validate_for(&self, event_id: &str) -> Result<(), ResultError> {
        if self.kind != PACKAGE_RESULT_KIND {
            return Err(ResultError::WrongKind {
                found: self.kind.clone(),
                expected: PACKAGE_RESULT_KIND,
            });
        }
        if self.event != event_id {
            return Err(ResultError::WrongSubject {
                field: "event",
                found: self.event.clone(),
                expected: event_id.to_string(),
            });
        }
        Ok(())
    }
}

/// Reads a result document from a termination message.
pub fn parse_check_report(text: &str) -> Result<CheckReport, ResultError> {
    let report: CheckReport = serde_json::from_str(text)?;
    if report.api_version != RESULT_API_VERSION {
        return Err(ResultError::UnknownVersion(report.api_version));
    }
    Ok(report)
}

/// Serializes a report compactly, dropping the summary, then cutting the explanation, then shortening
/// messages until it fits the termination-message limit. URLs in the error message are cut to their origin.
pub fn encode_check_report(report: &CheckReport) -> String {
    let mut report = report.clone();
    if let Some(error) = report.error.as_mut() {
        error.message = redact_urls(&error.message);
    }
    let mut text = serde_json::to_string(&report).unwrap_or_default();
    if text.len() > MAX_RESULT_BYTES {
        if let Some(outcome) = report.result.as_mut() {
            outcome.summary = None;
        }
        text = serde_json::to_string(&report).unwrap_or_default();
    }
    // Then the explanation, step by step down to its top slice and region, and at last without it.
    let steps = report
        .result
        .as_ref()
        .and_then(|o| o.explanation.as_ref())
        .map(Explanation::shrinking)
        .unwrap_or_default();
    for step in steps.into_iter().map(Some).chain([None]) {
        if text.len() <= MAX_RESULT_BYTES {
            break;
        }
        if let Some(outcome) = report.result.as_mut() {
            outcome.explanation = step;
        }
        text = serde_json::to_string(&report).unwrap_or_default();
    }
    if text.len() > MAX_RESULT_BYTES {
        if let Some(error) = report.error.as_mut() {
            let excess = text.len() - MAX_RESULT_BYTES + 3;
            let keep = error.message.len().saturating_sub(excess);
            let cut = (0..=keep)
                .rev()
                .find(|i| error.message.is_char_boundary(*i))
                .unwrap_or(0);
            error.message.truncate(cut);
            error.message.push_str("...");
        }
        text = serde_json::to_string(&report).unwrap_or_default();
    }
    text
}

/// What a retrain-packaging Job reports (`kind: PackageResult`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PackageReport {
    pub api_version: String,
    /// Always `PackageResult`.
    pub kind: String,
    /// The DriftEvent packaged (`<namespace>/<name>`).
    pub event: String,
    /// Present on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<PackageOutcome>,
    /// Present on failure; the Job also exits non-zero. Partial progress (e.g. the upload done before the
    /// webhook failed) stays in `result`'s absence but is kept in `partial`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<JobError>,
    /// On failure: what was achieved before it (uploaded archive, webhook attempts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial: Option<PackageOutcome>,
}

/// A packaged and delivered retraining batch.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PackageOutcome {
    /// `s3://bucket/key` of the archive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_uri: Option<String>,
    /// SHA-256 of the archive (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Archive size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    /// Points packaged.
    pub points: u64,
    /// Points in the comparison window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub points_available: Option<u64>,
    /// Objects copied into the archive / that could not be fetched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objects: Option<ObjectCounts>,
    /// True when an identical archive was already in S3 (a retried Job) and was not uploaded again.
    pub reused: bool,
    /// The retraining job id the webhook returned (`job_id` or `retraining_job_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retraining_job_id: Option<String>,
    /// Webhook attempts made (1 = first try succeeded).
    pub attempts: u32,
    pub duration_seconds: f64,
}

/// Objects referenced by the points' payload field.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ObjectCounts {
    pub included: u64,
    pub missing: u64,
    pub bytes: u64,
}

impl PackageReport {
    pub fn success(event: impl Into<String>, outcome: PackageOutcome) -> Self {
        Self {
            api_version: RESULT_API_VERSION.to_string(),
            kind: PACKAGE_RESULT_KIND.to_string(),
            event: event.into(),
            result: Some(outcome),
            error: None,
            partial: None,
        }
    }

    pub fn failure(
        event: impl Into<String>,
        kind: impl Into<String>,
        message: impl Into<String>,
        partial: Option<PackageOutcome>,
    ) -> Self {
        Self {
            api_version: RESULT_API_VERSION.to_string(),
            kind: PACKAGE_RESULT_KIND.to_string(),
            event: event.into(),
            result: None,
            error: Some(JobError {
                kind: kind.into(),
                message: message.into(),
            }),
            partial,
        }
    }
}

/// Reads a packaging result document from a termination message.
pub fn parse_package_report(text: &str) -> Result<PackageReport, ResultError> {
    let report: PackageReport = serde_json::from_str(text)?;
    if report.api_version != RESULT_API_VERSION {
        return Err(ResultError::UnknownVersion(report.api_version));
    }
    Ok(report)
}

/// Serializes a packaging report compactly, shortening the error message until it fits the
/// termination-message limit. URLs in the error message are cut to their origin.
pub fn encode_package_report(report: &PackageReport) -> String {
    let mut report = report.clone();
    if let Some(error) = report.error.as_mut() {
        error.message = redact_urls(&error.message);
    }
    let mut text = serde_json::to_string(&report).unwrap_or_default();
    if text.len() > MAX_RESULT_BYTES {
        if let Some(error) = report.error.as_mut() {
            let excess = text.len() - MAX_RESULT_BYTES + 3;
            let keep = error.message.len().saturating_sub(excess);
            let cut = (0..=keep)
                .rev()
                .find(|i| error.message.is_char_boundary(*i))
                .unwrap_or(0);
            error.message.truncate(cut);
            error.message.push_str("...");
        }
        text = serde_json::to_string(&report).unwrap_or_default();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_round_trips_through_the_termination_message() {
        let report = CheckReport::failure("m-1", "SourceUnavailable", "connection refused");
        let parsed = parse_check_report(&encode_check_report(&report)).unwrap();
        assert_eq!(parsed, report);
    }

    #[test]
    fn an_oversized_error_message_is_cut_to_fit() {
        let report = CheckReport::failure("m-1", "InvalidSpec", "x".repeat(10_000));
        let text = encode_check_report(&report);
        assert!(text.len() <= MAX_RESULT_BYTES);
        assert_eq!(
            parse_check_report(&text).unwrap().error.unwrap().kind,
            "InvalidSpec"
        );
    }

    #[test]
    fn a_document_of_an_older_job_without_the_verdict_fields_still_parses() {
        let text = r#"{"apiVersion":"driftwatch.dev/result/v1","kind":"CheckResult","checkId":"m-1",
            "result":{"windows":{"reference":{},"comparison":{}},"samples":{"reference":10,"comparison":5},
            "scores":[{"method":"kl_divergence","source":"embeddings","score":0.2,"threshold":0.1,
            "drifted":true,"nReference":10,"nComparison":5,"seconds":0.1}],
            "driftDetected":true,"durationSeconds":1.0}}"#;
        let result = parse_check_report(text).unwrap().result.unwrap();
        assert_eq!((result.combined_p_value, result.alpha), (None, None));
        assert_eq!(result.scores[0].adjusted_p_value, None);
        assert!(result.drift_detected);
    }

    #[test]
    fn the_verdict_fields_round_trip() {
        let text = r#"{"apiVersion":"driftwatch.dev/result/v1","kind":"CheckResult","checkId":"m-1",
            "result":{"windows":{"reference":{},"comparison":{}},"samples":{"reference":10,"comparison":5},
            "scores":[{"method":"emd","source":"embeddings","score":0.2,"pValue":0.01,"adjustedPValue":0.02,
            "drifted":true,"nReference":10,"nComparison":5,"seconds":0.1}],
            "driftDetected":true,"combinedPValue":0.02,"alpha":0.05,"durationSeconds":1.0}}"#;
        let report = parse_check_report(text).unwrap();
        let result = report.result.clone().unwrap();
        assert_eq!((result.combined_p_value, result.alpha), (Some(0.02), Some(0.05)));
        assert_eq!(result.scores[0].adjusted_p_value, Some(0.02));
        assert_eq!(parse_check_report(&encode_check_report(&report)).unwrap(), report);
    }

    #[test]
    fn an_unknown_version_is_refused() {
        let text = r#"{"apiVersion":"driftwatch.dev/result/v9","kind":"CheckResult","checkId":"x"}"#;
        assert!(matches!(
            parse_check_report(text),
            Err(ResultError::UnknownVersion(_))
        ));
    }

    #[test]
    fn a_document_of_another_kind_or_subject_is_refused() {
        let check = CheckReport::failure("frames-202603010200", "SourceUnavailable", "down");
        assert!(check.validate_for("frames-202603010200").is_ok());
        assert!(matches!(
            check.validate_for("frames-202603010300"),
            Err(ResultError::WrongSubject { field: "checkId", .. })
        ));
        let mut wrong_kind = check.clone();
        wrong_kind.kind = PACKAGE_RESULT_KIND.into();
        let err = wrong_kind.validate_for("frames-202603010200").unwrap_err();
        assert_eq!(
            err.to_string(),
            "result document has kind \"PackageResult\", expected CheckResult"
        );

        let package = PackageReport::success("ml/frames-1", PackageOutcome::default());
        assert!(package.validate_for("ml/frames-1").is_ok());
        let err = package.validate_for("ml/frames-2").unwrap_err();
        assert_eq!(
            err.to_string(),
            "result document is about event \"ml/frames-1\", but the Job that produced it is for \"ml/frames-2\""
        );
        let mut wrong_kind = package.clone();
        wrong_kind.kind = CHECK_RESULT_KIND.into();
        assert!(matches!(
            wrong_kind.validate_for("ml/frames-1"),
            Err(ResultError::WrongKind { .. })
        ));
    }

    #[test]
    fn a_package_report_round_trips_and_stays_small() {
        let outcome = PackageOutcome {
            s3_uri: Some("s3://b/batches/ns/e/batch.tar.gz".into()),
            sha256: Some("ab".repeat(32)),
            size_bytes: Some(1234),
            points: 1000,
            reused: true,
            retraining_job_id: Some("job-7".into()),
            attempts: 2,
            ..PackageOutcome::default()
        };
        let report = PackageReport::success("ns/e", outcome);
        let text = encode_package_report(&report);
        assert!(text.contains(r#""kind":"PackageResult""#));
        assert!(text.contains(r#""s3Uri":"s3://b/batches/ns/e/batch.tar.gz""#));
        assert_eq!(parse_package_report(&text).unwrap(), report);
    }

    #[test]
    fn urls_in_error_messages_keep_only_their_origin() {
        let message = "connection failed: error sending request for url (http://hooks:8080/x?token=SECRET)";
        let text = encode_package_report(&PackageReport::failure("ns/e", "WebhookFailed", message, None));
        assert!(!text.contains("SECRET"), "{text}");
        assert!(text.contains("(http://hooks:8080)"), "{text}");
        let text = encode_check_report(&CheckReport::failure(
            "m-1",
            "SourceUnavailable",
            "http://user:SECRET@qdrant:6334/ unreachable",
        ));
        assert!(!text.contains("SECRET"), "{text}");
    }

    #[test]
    fn the_largest_successful_package_report_fits_the_termination_message() {
        let outcome = PackageOutcome {
            s3_uri: Some(format!("s3://{}/{}", "b".repeat(63), "k".repeat(1024))),
            sha256: Some("ab".repeat(32)),
            size_bytes: Some(u64::MAX),
            points: u64::MAX,
            points_available: Some(u64::MAX),
            objects: Some(ObjectCounts {
                included: u64::MAX,
                missing: u64::MAX,
                bytes: u64::MAX,
            }),
            reused: true,
            // The webhook's job id is capped; the worst case escapes every byte as \u00XX.
            retraining_job_id: Some("\u{1}".repeat(crate::job::package::webhook::MAX_JOB_ID_LEN)),
            attempts: u32::MAX,
            duration_seconds: f64::MAX,
        };
        let name = "e".repeat(253);
        let report = PackageReport::success(format!("{name}/{name}"), outcome);
        let text = encode_package_report(&report);
        assert!(text.len() <= MAX_RESULT_BYTES, "{} bytes", text.len());
        assert_eq!(parse_package_report(&text).unwrap(), report);
    }

    #[test]
    fn an_oversized_package_error_is_cut_to_fit() {
        let report = PackageReport::failure("ns/e", "WebhookFailed", "y".repeat(9000), None);
        let text = encode_package_report(&report);
        assert!(text.len() <= MAX_RESULT_BYTES);
        assert_eq!(
            parse_package_report(&text).unwrap().error.unwrap().kind,
            "WebhookFailed"
        );
    }

    /// A successful outcome of three detectors with a two-component summary (about 1.3 KB).
    fn outcome_with_summary() -> CheckOutcome {
        let text = r#"{"windows":{"reference":{"start":"2026-03-01T00:00:00Z","end":"2026-03-08T00:00:00Z"},
            "comparison":{"start":"2026-03-08T00:00:00Z","end":"2026-03-09T00:00:00Z"}},
            "samples":{"reference":20000,"comparison":5000},
            "scores":[{"method":"kl_divergence","source":"embeddings","score":0.2,"threshold":0.1,"pValue":0.01,
            "adjustedPValue":0.02,"drifted":true,"nReference":20000,"nComparison":5000,"seconds":0.1},
            {"method":"emd","source":"embeddings","score":0.2,"threshold":0.1,"pValue":0.01,
            "adjustedPValue":0.02,"drifted":true,"nReference":20000,"nComparison":5000,"seconds":0.1},
            {"method":"mmd","source":"embeddings","score":0.2,"pValue":0.01,
            "adjustedPValue":0.02,"drifted":true,"nReference":20000,"nComparison":5000,"seconds":0.1}],
            "driftDetected":true,"combinedPValue":0.02,"alpha":0.05,"durationSeconds":1.0}"#;
        let mut outcome: CheckOutcome = serde_json::from_str(text).unwrap();
        let histogram = ComponentHistogram {
            range: [-3.0, 3.0],
            reference: vec![1000; 20],
            comparison: vec![250; 20],
        };
        outcome.summary = Some(DistributionSummary {
            components: vec![histogram.clone(), histogram],
        });
        outcome
    }

    #[test]
    fn a_large_explanation_is_cut_step_by_step_until_the_report_fits() {
        use crate::api::v1alpha1::{ExamplePoint, Explanation, RegionSummary, SliceSummary};
        let example = |i: usize| ExamplePoint {
            id: format!("00000000-0000-0000-0000-{i:012}"),
            fields: [(
                "frame_url".to_string(),
                format!("https://frames.example.com/{}", "x".repeat(200)),
            )]
            .into(),
        };
        let explanation = Explanation {
            slices: (0..5)
                .map(|i| SliceSummary {
                    field: "camera_id".into(),
                    value: format!("camera-{i}"),
                    status: "drifted".into(),
                    counts: [1000, 1000],
                    shares: [0.2, 0.2],
                    p_value: Some(0.001),
                    adjusted_p_value: Some(0.005),
                    examples: (0..3).map(example).collect(),
                })
                .collect(),
            slices_tested: Some(5),
            regions: (0..3)
                .map(|i| RegionSummary {
                    region: i,
                    kind: "grown".into(),
                    counts: [10, 10],
                    shares: [0.1, 0.1],
                    examples: (0..3).map(|j| example(j as usize)).collect(),
                })
                .collect(),
            seconds: Some(1.0),
            truncated: false,
        };
        let mut report = CheckReport::success("c", outcome_with_summary());
        report.result.as_mut().unwrap().explanation = Some(explanation);
        let text = encode_check_report(&report);
        assert!(text.len() <= MAX_RESULT_BYTES, "{}", text.len());
        let kept = parse_check_report(&text)
            .unwrap()
            .result
            .unwrap()
            .explanation
            .unwrap();
        assert!(kept.truncated);
        assert!(!kept.slices.is_empty() && !kept.regions.is_empty());
        assert_eq!(kept.slices[0].value, "camera-0");
    }
}
