//! Folds check results and scheduling facts into a DriftMonitorStatus: lastResult, history, conditions.
//! Pure: takes the previous status, the finished checks and `now`; no I/O.

use jiff::Timestamp;
use k8s_openapi::{
    api::batch::v1::Job,
    apimachinery::pkg::apis::meta::v1::{Condition, Time},
};

use super::desired::annotations;

use crate::{
    api::v1alpha1::{
        CheckResultSummary, CheckWindows, DetectorScore, DriftMonitorStatus, HistoryEntry, condition,
        display_score, reason,
    },
    job::result::{CheckOutcome, JobError},
};

/// Most entries kept in `status.history`.
pub const HISTORY_LIMIT: usize = 50;

/// How a finished check ended.
#[derive(Clone, Debug, PartialEq)]
pub enum CheckResult {
    Succeeded(Box<CheckOutcome>),
    Failed(JobError),
}

/// A finished check Job with its result read from the Pod.
#[derive(Clone, Debug, PartialEq)]
pub struct FinishedCheck {
    pub check_id: String,
    pub slot: Timestamp,
    pub finished_at: Timestamp,
    pub result: CheckResult,
}

/// Whether a check's result is already part of the status.
pub fn is_processed(status: &DriftMonitorStatus, check_id: &str) -> bool {
    status.last_processed_check_id.as_deref() == Some(check_id)
        || status.history.iter().any(|h| h.check_id == check_id)
}

/// Whether a finished Job's result is part of the status: marked on the Job (independent of how much
/// history the status keeps), or named in the status (Jobs processed before the mark existed, or a restart
/// between the status write and the mark).
pub fn job_processed(job: &Job, status: &DriftMonitorStatus) -> bool {
    let marked = job
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(annotations::PROCESSED))
        .is_some_and(|v| v == "true");
    marked || is_processed(status, job.metadata.name.as_deref().unwrap_or_default())
}

/// Upserts a condition by type; `lastTransitionTime` moves only when the status value changes.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: Timestamp,
) {
    let fresh = Condition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: reason.to_string(),
        message: message.to_string(),
        observed_generation: generation,
        last_transition_time: Time(now),
    };
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(existing) => {
            let transition = if existing.status == status {
                existing.last_transition_time.clone()
            } else {
                Time(now)
            };
            *existing = Condition {
                last_transition_time: transition,
                ..fresh
            };
        }
        None => conditions.push(fresh),
    }
}

/// The condition of `type_`, if set.
pub fn find_condition<'a>(status: &'a DriftMonitorStatus, type_: &str) -> Option<&'a Condition> {
    status.conditions.iter().find(|c| c.type_ == type_)
}

fn scores(outcome: &CheckOutcome) -> Vec<DetectorScore> {
    outcome
        .scores
        .iter()
        .map(|s| DetectorScore {
            method: s.method,
            source: s.source,
            score: s.score,
            threshold: s.threshold,
            p_value: s.p_value,
            adjusted_p_value: s.adjusted_p_value,
            drifted: s.drifted,
        })
        .collect()
}

/// The Drifted condition's message: the verdict with its combined p-value (when the Job reported one)
/// and the detectors behind it.
pub fn drift_message(check_id: &str, summary: &CheckResultSummary) -> String {
    let name = |s: &DetectorScore| format!("{} on {} scored {:.4}", s.method, s.source, s.score);
    let Some(p) = summary.combined_p_value else {
        // A result of an older Job: the verdict is "any detector fired".
        let fired: Vec<String> = summary.scores.iter().filter(|s| s.drifted).map(name).collect();
        return if summary.drift_detected {
            format!("check {check_id}: {}", fired.join("; "))
        } else {
            format!("check {check_id}: no detector fired")
        };
    };
    let alpha = summary.alpha.unwrap_or(0.05);
    if summary.drift_detected {
        let behind: Vec<String> = summary
            .scores
            .iter()
            .filter(|s| s.adjusted_p_value.is_some_and(|a| a < alpha))
            .map(|s| {
                format!(
                    "{} (adjusted p {:.4})",
                    name(s),
                    s.adjusted_p_value.unwrap_or(1.0)
                )
            })
            .collect();
        format!(
            "check {check_id}: drift, combined p-value {p:.4} < alpha {alpha}: {}",
            behind.join("; ")
        )
    } else {
        let alone: Vec<String> = summary.scores.iter().filter(|s| s.drifted).map(name).collect();
        let note = if alone.is_empty() {
            String::new()
        } else {
            format!(
                "; fired on their own, not significant for the whole set: {}",
                alone.join("; ")
            )
        };
        format!("check {check_id}: no drift, combined p-value {p:.4} >= alpha {alpha}{note}")
    }
}

/// The compact result kept in `status.lastResult` and in DriftEvents.
pub fn summary(check_id: &str, outcome: &CheckOutcome) -> CheckResultSummary {
    CheckResultSummary {
        check_id: check_id.to_string(),
        windows: CheckWindows {
            reference: outcome.windows.reference.clone(),
            comparison: outcome.windows.comparison.clone(),
        },
        samples: outcome.samples.clone(),
        scores: scores(outcome),
        drift_detected: outcome.drift_detected,
        combined_p_value: outcome.combined_p_value,
        alpha: outcome.alpha,
        duration_seconds: outcome.duration_seconds,
    }
}

fn push_history(status: &mut DriftMonitorStatus, entry: HistoryEntry) {
    status.history.retain(|h| h.check_id != entry.check_id);
    status.history.push(entry);
    status.history.sort_by_key(|h| h.time.0);
    let excess = status.history.len().saturating_sub(HISTORY_LIMIT);
    status.history.drain(..excess);
}

/// Folds one finished check into the status (call once per check, in slot order).
pub fn record_check(status: &mut DriftMonitorStatus, check: &FinishedCheck, generation: Option<i64>) {
    let now = check.finished_at;
    match &check.result {
        CheckResult::Succeeded(outcome) => {
            let summary = summary(&check.check_id, outcome);
            status.last_score = summary.scores.first().map(|s| s.score);
            status.last_score_rounded = status.last_score.and_then(display_score);
            status.last_successful_time = Some(Time(check.finished_at));
            push_history(
                status,
                HistoryEntry {
                    check_id: check.check_id.clone(),
                    time: Time(check.slot),
                    drift_detected: Some(outcome.drift_detected),
                    combined_p_value: outcome.combined_p_value,
                    scores: summary.scores.clone(),
                    error: None,
                },
            );
            let message = drift_message(&check.check_id, &summary);
            if outcome.drift_detected {
                set_condition(
                    &mut status.conditions,
                    condition::DRIFTED,
                    "True",
                    reason::DRIFT_DETECTED,
                    &message,
                    generation,
                    now,
                );
            } else {
                set_condition(
                    &mut status.conditions,
                    condition::DRIFTED,
                    "False",
                    reason::NO_DRIFT,
                    &message,
                    generation,
                    now,
                );
            }
            set_condition(
                &mut status.conditions,
                condition::DEGRADED,
                "False",
                reason::CHECK_SUCCEEDED,
                &format!("check {} succeeded", check.check_id),
                generation,
                now,
            );
            status.last_result = Some(summary);
        }
        CheckResult::Failed(error) => {
            push_history(
                status,
                HistoryEntry {
                    check_id: check.check_id.clone(),
                    time: Time(check.slot),
                    drift_detected: None,
                    combined_p_value: None,
                    scores: Vec::new(),
                    error: Some(error.kind.clone()),
                },
            );
            set_condition(
                &mut status.conditions,
                condition::DEGRADED,
                "True",
                reason::CHECK_FAILED,
                &format!(
                    "check {} failed: {}: {}",
                    check.check_id, error.kind, error.message
                ),
                generation,
                now,
            );
        }
    }
    status.last_processed_check_id = Some(check.check_id.clone());
}

/// How the monitor's schedule stands, for the Ready condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Readiness {
    Scheduled,
    Suspended,
    Invalid(String),
}

/// Sets Ready and fills in Drifted/Degraded as Unknown before the first check.
pub fn set_readiness(
    status: &mut DriftMonitorStatus,
    readiness: &Readiness,
    generation: Option<i64>,
    now: Timestamp,
) {
    let (value, why, message) = match readiness {
        Readiness::Scheduled => ("True", reason::SCHEDULED, "checks are scheduled".to_string()),
        Readiness::Suspended => ("True", reason::SUSPENDED, "scheduling is suspended".to_string()),
        Readiness::Invalid(message) => ("False", reason::INVALID_SPEC, message.clone()),
    };
    set_condition(
        &mut status.conditions,
        condition::READY,
        value,
        why,
        &message,
        generation,
        now,
    );
    for type_ in [condition::DRIFTED, condition::DEGRADED] {
        if find_condition(status, type_).is_none() {
            set_condition(
                &mut status.conditions,
                type_,
                "Unknown",
                reason::AWAITING_FIRST_CHECK,
                "no check has finished yet",
                generation,
                now,
            );
        }
    }
    status.observed_generation = generation;
    // Monitors whose last check predates the rounded column get it without waiting for the next check.
    status.last_score_rounded = status.last_score.and_then(display_score);
}

/// True when the two statuses differ in anything but condition timestamps.
pub fn changed(old: &DriftMonitorStatus, new: &DriftMonitorStatus) -> bool {
    old != new
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        api::v1alpha1::{DataSource, Method, SampleCounts},
        job::result::{ReportWindows, ScoreReport},
    };

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn outcome(score: f64, drifted: bool) -> CheckOutcome {
        CheckOutcome {
            windows: ReportWindows::default(),
            samples: SampleCounts {
                reference: 1000,
                comparison: 500,
                ..SampleCounts::default()
            },
            scores: vec![ScoreReport {
                method: Method::KlDivergence,
                source: DataSource::Embeddings,
                score,
                threshold: Some(0.1),
                p_value: None,
                adjusted_p_value: None,
                drifted,
                n_reference: 1000,
                n_comparison: 500,
                seconds: 0.5,
            }],
            drift_detected: drifted,
            combined_p_value: None,
            alpha: None,
            duration_seconds: 2.5,
            skipped: None,
            summary: None,
            explanation: None,
        }
    }

    fn success(id: &str, slot: &str, score: f64, drifted: bool) -> FinishedCheck {
        FinishedCheck {
            check_id: id.into(),
            slot: ts(slot),
            finished_at: ts(slot) + jiff::SignedDuration::from_secs(30),
            result: CheckResult::Succeeded(Box::new(outcome(score, drifted))),
        }
    }

    fn condition<'a>(status: &'a DriftMonitorStatus, type_: &str) -> &'a Condition {
        find_condition(status, type_).unwrap()
    }

    #[test]
    fn a_clean_check_sets_last_result_history_and_no_drift() {
        let mut status = DriftMonitorStatus::default();
        record_check(
            &mut status,
            &success("m-1", "2026-03-01T02:00:00Z", 0.02, false),
            Some(1),
        );
        assert_eq!(status.last_score, Some(0.02));
        assert_eq!(status.last_score_rounded, Some(0.02));
        assert_eq!(status.last_result.as_ref().unwrap().check_id, "m-1");
        assert_eq!(status.history.len(), 1);
        assert_eq!(status.last_processed_check_id.as_deref(), Some("m-1"));
        assert_eq!(
            status.last_successful_time,
            Some(Time(ts("2026-03-01T02:00:30Z")))
        );
        assert_eq!(condition(&status, "Drifted").status, "False");
        assert_eq!(condition(&status, "Degraded").status, "False");
        assert!(is_processed(&status, "m-1"));
    }

    #[test]
    fn a_drifting_check_sets_drifted_true_with_the_firing_detector() {
        let mut status = DriftMonitorStatus::default();
        record_check(
            &mut status,
            &success("m-1", "2026-03-01T02:00:00Z", 0.4, true),
            Some(1),
        );
        let drifted = condition(&status, "Drifted");
        assert_eq!(drifted.status, "True");
        assert_eq!(drifted.reason, "DriftDetected");
        assert!(drifted.message.contains("kl_divergence on embeddings"));
    }

    #[test]
    fn a_calibrated_verdict_names_the_detectors_that_carry_it_and_a_calm_one_the_lone_firings() {
        let score = |method, p: f64, adjusted: f64| DetectorScore {
            method,
            source: DataSource::Embeddings,
            score: 0.2,
            threshold: None,
            p_value: Some(p),
            adjusted_p_value: Some(adjusted),
            drifted: p < 0.05,
        };
        let mut outcome = outcome(0.2, true);
        outcome.combined_p_value = Some(0.01);
        outcome.alpha = Some(0.05);
        let mut summary = summary("m-1", &outcome);
        summary.scores = vec![
            score(Method::Emd, 0.004, 0.01),
            score(Method::Mmd, 0.03, 0.08),
            score(Method::KlDivergence, 0.4, 0.7),
        ];
        let message = drift_message("m-1", &summary);
        assert!(
            message.contains("combined p-value 0.0100 < alpha 0.05"),
            "{message}"
        );
        assert!(
            message.contains("emd on embeddings") && !message.contains("mmd"),
            "{message}"
        );
        summary.drift_detected = false;
        summary.combined_p_value = Some(0.08);
        summary.scores = vec![score(Method::Mmd, 0.03, 0.08), score(Method::Emd, 0.2, 0.4)];
        let message = drift_message("m-1", &summary);
        assert!(
            message.contains("no drift, combined p-value 0.0800 >= alpha 0.05"),
            "{message}"
        );
        assert!(message.contains("fired on their own") && message.contains("mmd on embeddings"));
        let mut record = DriftMonitorStatus::default();
        record_check(
            &mut record,
            &success("m-2", "2026-03-01T02:00:00Z", 0.2, true),
            Some(1),
        );
        assert_eq!(record.history[0].combined_p_value, None);
    }

    #[test]
    fn a_failed_check_sets_degraded_and_keeps_the_last_good_result() {
        let mut status = DriftMonitorStatus::default();
        record_check(
            &mut status,
            &success("m-1", "2026-03-01T02:00:00Z", 0.02, false),
            Some(1),
        );
        let failed = FinishedCheck {
            check_id: "m-2".into(),
            slot: ts("2026-03-02T02:00:00Z"),
            finished_at: ts("2026-03-02T02:01:00Z"),
            result: CheckResult::Failed(JobError {
                kind: "SourceUnavailable".into(),
                message: "connection refused".into(),
            }),
        };
        record_check(&mut status, &failed, Some(1));
        let degraded = condition(&status, "Degraded");
        assert_eq!(
            (degraded.status.as_str(), degraded.reason.as_str()),
            ("True", "CheckFailed")
        );
        assert!(degraded.message.contains("SourceUnavailable"));
        assert_eq!(status.last_result.as_ref().unwrap().check_id, "m-1");
        assert_eq!(
            status.history.last().unwrap().error.as_deref(),
            Some("SourceUnavailable")
        );
        assert_eq!(status.last_processed_check_id.as_deref(), Some("m-2"));
    }

    #[test]
    fn history_keeps_the_newest_fifty_oldest_first() {
        let mut status = DriftMonitorStatus::default();
        let start = ts("2026-01-01T00:00:00Z");
        for i in 0..60 {
            let slot = start + jiff::SignedDuration::from_hours(i);
            record_check(
                &mut status,
                &success(&format!("m-{i}"), &slot.to_string(), 0.0, false),
                None,
            );
        }
        assert_eq!(status.history.len(), HISTORY_LIMIT);
        assert_eq!(status.history[0].check_id, "m-10");
        assert_eq!(status.history[49].check_id, "m-59");
    }

    #[test]
    fn a_marked_job_counts_as_processed_after_its_entry_left_the_history() {
        let mut status = DriftMonitorStatus::default();
        let start = ts("2026-01-01T00:00:00Z");
        for i in 0..60 {
            let slot = start + jiff::SignedDuration::from_hours(i);
            record_check(
                &mut status,
                &success(&format!("m-{i}"), &slot.to_string(), 0.0, false),
                None,
            );
        }
        let job = |name: &str, marked: bool| {
            let mut job = Job::default();
            job.metadata.name = Some(name.to_string());
            if marked {
                job.metadata.annotations = Some(
                    [(annotations::PROCESSED.to_string(), "true".to_string())]
                        .into_iter()
                        .collect(),
                );
            }
            job
        };
        assert!(!is_processed(&status, "m-3"), "m-3 left the 50-entry history");
        assert!(job_processed(&job("m-3", true), &status));
        assert!(!job_processed(&job("m-3", false), &status));
        assert!(job_processed(&job("m-59", false), &status));
    }

    #[test]
    fn recording_the_same_check_twice_keeps_one_history_entry() {
        let mut status = DriftMonitorStatus::default();
        let check = success("m-1", "2026-03-01T02:00:00Z", 0.02, false);
        record_check(&mut status, &check, None);
        record_check(&mut status, &check, None);
        assert_eq!(status.history.len(), 1);
    }

    #[test]
    fn the_score_column_shows_four_significant_digits_while_last_score_keeps_all() {
        let mut status = DriftMonitorStatus::default();
        record_check(
            &mut status,
            &success("m-1", "2026-03-01T02:00:00Z", 0.111_588_532_403_535_96, true),
            Some(1),
        );
        assert_eq!(status.last_score, Some(0.111_588_532_403_535_96));
        assert_eq!(status.last_score_rounded, Some(0.1116));
        let mut upgraded = DriftMonitorStatus {
            last_score: Some(0.042_424_242),
            ..DriftMonitorStatus::default()
        };
        set_readiness(
            &mut upgraded,
            &Readiness::Scheduled,
            Some(1),
            ts("2026-03-01T03:00:00Z"),
        );
        assert_eq!(upgraded.last_score_rounded, Some(0.042_42));
    }

    #[test]
    fn transition_time_moves_only_when_the_condition_status_changes() {
        let mut conditions = Vec::new();
        set_condition(
            &mut conditions,
            "Ready",
            "True",
            "Scheduled",
            "a",
            None,
            ts("2026-03-01T00:00:00Z"),
        );
        set_condition(
            &mut conditions,
            "Ready",
            "True",
            "Scheduled",
            "b",
            None,
            ts("2026-03-01T01:00:00Z"),
        );
        assert_eq!(
            conditions[0].last_transition_time,
            Time(ts("2026-03-01T00:00:00Z"))
        );
        assert_eq!(conditions[0].message, "b");
        set_condition(
            &mut conditions,
            "Ready",
            "False",
            "InvalidSpec",
            "c",
            None,
            ts("2026-03-01T02:00:00Z"),
        );
        assert_eq!(
            conditions[0].last_transition_time,
            Time(ts("2026-03-01T02:00:00Z"))
        );
        assert_eq!(conditions.len(), 1);
    }

    #[test]
    fn an_invalid_spec_sets_ready_false_and_unknown_check_conditions() {
        let mut status = DriftMonitorStatus::default();
        set_readiness(
            &mut status,
            &Readiness::Invalid("bad cron".into()),
            Some(3),
            ts("2026-03-01T00:00:00Z"),
        );
        let ready = condition(&status, "Ready");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "InvalidSpec")
        );
        assert_eq!(ready.message, "bad cron");
        assert_eq!(condition(&status, "Drifted").status, "Unknown");
        assert_eq!(condition(&status, "Degraded").status, "Unknown");
        assert_eq!(status.observed_generation, Some(3));
    }

    #[test]
    fn readiness_does_not_overwrite_check_conditions() {
        let mut status = DriftMonitorStatus::default();
        record_check(
            &mut status,
            &success("m-1", "2026-03-01T02:00:00Z", 0.4, true),
            Some(1),
        );
        set_readiness(
            &mut status,
            &Readiness::Scheduled,
            Some(1),
            ts("2026-03-01T03:00:00Z"),
        );
        assert_eq!(condition(&status, "Drifted").status, "True");
        assert_eq!(condition(&status, "Ready").reason, "Scheduled");
    }
}
