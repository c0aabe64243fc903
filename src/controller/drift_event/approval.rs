//! What a DriftEvent's status becomes: NeedsReview on creation, Ignored after an Ignore decision, Packaging
//! after Approve, then Actioned or RetrainingFailed from the packaging Job's result; every transition is
//! appended to the audit trail. Pure: no I/O.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::naming::packaging_job_name;
use crate::{
    api::v1alpha1::{
        Decision, DriftEvent, DriftEventStatus, Phase, PhaseTransition, RetrainingStatus, event_condition,
    },
    controller::{
        drift_monitor::{raise::CONTROLLER_ACTOR, status::set_condition},
        job_status::JobState,
    },
    job::result::{PackageReport, parse_package_report},
};

/// Condition reasons of a DriftEvent.
pub mod reason {
    pub const AWAITING_DECISION: &str = "AwaitingDecision";
    pub const IGNORED: &str = "Ignored";
    pub const APPROVED: &str = "Approved";
    /// The packaging Job is running.
    pub const PACKAGING: &str = "Packaging";
    /// The batch is in S3 and the webhook accepted it.
    pub const DELIVERED: &str = "Delivered";
    /// Packaging or the webhook failed.
    pub const FAILED: &str = "RetrainingFailed";
}

/// A transition to announce with a Kubernetes Event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Announcement {
    EnteredReview,
    Ignored {
        by: String,
    },
    /// Approved: the packaging Job should exist.
    Approved {
        by: String,
        job: String,
    },
    Delivered {
        s3_uri: String,
        retraining_job_id: Option<String>,
    },
    Failed {
        error: String,
    },
}

/// The status the event should have, and what changed; `None` when the status is already right.
pub fn next_status(event: &DriftEvent, now: Timestamp) -> Option<(DriftEventStatus, Announcement)> {
    let current = event.status.clone().unwrap_or_default();
    let mut status = current.clone();
    let generation = event.metadata.generation;
    let mut announcement = None;
    if status.phase.is_none() {
        status.phase = Some(Phase::NeedsReview);
        status.occurrences = status.occurrences.or(Some(1));
        status.latest_score = status.latest_score.or(Some(event.spec.drift_score));
        status.last_seen = status.last_seen.or(Some(event.spec.detected_at.clone()));
        status.transitions.push(PhaseTransition {
            phase: Phase::NeedsReview,
            time: Time(now),
            actor: Some(CONTROLLER_ACTOR.to_string()),
            message: Some("awaiting a decision".to_string()),
        });
        announcement = Some(Announcement::EnteredReview);
    }
    let decided = status
        .conditions
        .iter()
        .any(|c| c.type_ == event_condition::DECIDED && c.status == "True");
    match (&event.spec.approval, status.phase) {
        (None, _)
            if !decided
                && !status
                    .conditions
                    .iter()
                    .any(|c| c.type_ == event_condition::DECIDED) =>
        {
            set_condition(
                &mut status.conditions,
                event_condition::DECIDED,
                "False",
                reason::AWAITING_DECISION,
                "set spec.approval.decision to Approve or Ignore",
                generation,
                now,
            );
        }
        (Some(approval), Some(Phase::NeedsReview)) if approval.decision == Decision::Ignore => {
            status.phase = Some(Phase::Ignored);
            status.transitions.push(PhaseTransition {
                phase: Phase::Ignored,
                time: Time(now),
                actor: Some(approval.approved_by.clone()),
                message: approval.reason.clone(),
            });
            set_condition(
                &mut status.conditions,
                event_condition::DECIDED,
                "True",
                reason::IGNORED,
                &format!("ignored by {}", approval.approved_by),
                generation,
                now,
            );
            announcement = Some(Announcement::Ignored {
                by: approval.approved_by.clone(),
            });
        }
        (Some(approval), Some(Phase::NeedsReview)) if approval.decision == Decision::Approve => {
            let job = packaging_job_name(event);
            status.phase = Some(Phase::Packaging);
            status.transitions.push(PhaseTransition {
                phase: Phase::Packaging,
                time: Time(now),
                actor: Some(approval.approved_by.clone()),
                message: approval.reason.clone(),
            });
            status.retraining = Some(RetrainingStatus {
                job_name: Some(job.clone()),
                started_at: Some(Time(now)),
                ..RetrainingStatus::default()
            });
            set_condition(
                &mut status.conditions,
                event_condition::DECIDED,
                "True",
                reason::APPROVED,
                &format!("approved by {}", approval.approved_by),
                generation,
                now,
            );
            set_condition(
                &mut status.conditions,
                event_condition::RETRAINING_TRIGGERED,
                "False",
                reason::PACKAGING,
                &format!("packaging Job {job} is running"),
                generation,
                now,
            );
            announcement = Some(Announcement::Approved {
                by: approval.approved_by.clone(),
                job,
            });
        }
        _ => {}
    }
    status.observed_generation = generation;
    if status == current {
        return None;
    }
    Some((status, announcement.unwrap_or(Announcement::EnteredReview)))
}

/// When the Packaging phase started (the approval's audit entry): the packaging Job's `--created-at`, so a
/// re-created Job builds the identical archive.
pub fn packaging_started_at(status: &DriftEventStatus) -> Option<Timestamp> {
    status
        .retraining
        .as_ref()
        .and_then(|r| r.started_at.as_ref())
        .map(|t| t.0)
        .or_else(|| {
            status
                .transitions
                .iter()
                .rev()
                .find(|t| t.phase == Phase::Packaging)
                .map(|t| t.time.0)
        })
}

/// The outcome of a finished packaging Job, from its state and termination message.
pub fn packaging_outcome(state: &JobState, message: Option<&str>) -> Result<PackageReport, String> {
    let report = message.map(parse_package_report);
    match (state, report) {
        (JobState::Active, _) => Err("the packaging Job is still running".to_string()),
        (_, Some(Ok(report))) => match (&report.result, &report.error) {
            (Some(_), None) if matches!(state, JobState::Succeeded { .. }) => Ok(report),
            (_, Some(error)) => Err(format!("{}: {}", error.kind, error.message)),
            _ => Err("the packaging Job failed after reporting a result".to_string()),
        },
        (_, Some(Err(err))) => Err(format!("ResultUnreadable: {err}")),
        (JobState::Failed { reason, message, .. }, None) => Err(if message.is_empty() {
            format!("{reason}: the packaging Job failed without a result")
        } else {
            format!("{reason}: {message}")
        }),
        (JobState::Succeeded { .. }, None) => {
            Err("ResultMissing: the packaging Job completed without a termination message".to_string())
        }
    }
}

/// Packaging is over: `Actioned` with what the Job delivered, or `RetrainingFailed` with the error (and what
/// was achieved before it). `None` when the event is not in Packaging (already recorded).
pub fn finish_packaging(
    event: &DriftEvent,
    outcome: Result<PackageReport, String>,
    now: Timestamp,
) -> Option<(DriftEventStatus, Announcement)> {
    let mut status = event.status.clone().unwrap_or_default();
    if status.phase != Some(Phase::Packaging) {
        return None;
    }
    let generation = event.metadata.generation;
    let mut retraining = status.retraining.clone().unwrap_or_default();
    retraining.finished_at = Some(Time(now));
    let (phase, condition, message, announcement) = match outcome {
        Ok(report) => {
            let result = report.result.unwrap_or_default();
            retraining.s3_uri = result.s3_uri.clone();
            retraining.sha256 = result.sha256.clone();
            retraining.retraining_job_id = result.retraining_job_id.clone();
            retraining.attempts = i32::try_from(result.attempts).ok();
            retraining.last_error = None;
            let s3_uri = result.s3_uri.unwrap_or_default();
            let message = match &result.retraining_job_id {
                Some(id) => format!("{} points in {s3_uri}; retraining job {id}", result.points),
                None => format!("{} points in {s3_uri}; webhook accepted", result.points),
            };
            (
                Phase::Actioned,
                ("True", reason::DELIVERED),
                message,
                Announcement::Delivered {
                    s3_uri,
                    retraining_job_id: result.retraining_job_id,
                },
            )
        }
        Err(error) => {
            retraining.last_error = Some(error.clone());
            (
                Phase::RetrainingFailed,
                ("False", reason::FAILED),
                error.clone(),
                Announcement::Failed { error },
            )
        }
    };
    status.retraining = Some(retraining);
    status.phase = Some(phase);
    status.transitions.push(PhaseTransition {
        phase,
        time: Time(now),
        actor: Some(CONTROLLER_ACTOR.to_string()),
        message: Some(message.clone()),
    });
    set_condition(
        &mut status.conditions,
        event_condition::RETRAINING_TRIGGERED,
        condition.0,
        condition.1,
        &message,
        generation,
        now,
    );
    status.observed_generation = generation;
    Some((status, announcement))
}

/// Packaging that cannot start (the monitor is gone or has no `spec.retraining`): `RetrainingFailed`.
pub fn packaging_cannot_start(
    event: &DriftEvent,
    status: DriftEventStatus,
    error: String,
    now: Timestamp,
) -> (DriftEventStatus, Announcement) {
    let mut event = event.clone();
    event.status = Some(status);
    finish_packaging(&event, Err(error.clone()), now)
        .unwrap_or_else(|| (event.status.unwrap_or_default(), Announcement::Failed { error }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::v1alpha1::{Approval, DriftEventSpec, MonitorRef, TimeWindow};

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn event() -> DriftEvent {
        DriftEvent::new(
            "frames-202603010200",
            DriftEventSpec {
                monitor_ref: MonitorRef {
                    name: "frames".into(),
                },
                detected_at: Time(ts("2026-03-01T02:00:00Z")),
                drift_score: 0.4,
                scores: vec![],
                reference_window: TimeWindow {
                    start: None,
                    end: None,
                    collection: None,
                },
                comparison_window: TimeWindow {
                    start: None,
                    end: None,
                    collection: None,
                },
                check_id: None,
                samples: None,
                source: None,
                combined_p_value: None,
                alpha: None,
                approval: None,
            },
        )
    }

    fn decide(event: &mut DriftEvent, decision: Decision) {
        event.spec.approval = Some(Approval {
            decision,
            approved_by: "alice".into(),
            reason: Some("known seasonal shift".into()),
        });
    }

    fn apply(event: &mut DriftEvent, now: &str) -> Option<Announcement> {
        let (status, announcement) = next_status(event, ts(now))?;
        event.status = Some(status);
        Some(announcement)
    }

    #[test]
    fn a_new_event_enters_review_with_an_audit_entry() {
        let mut event = event();
        assert_eq!(
            apply(&mut event, "2026-03-01T02:01:00Z"),
            Some(Announcement::EnteredReview)
        );
        let status = event.status.as_ref().unwrap();
        assert_eq!(status.phase, Some(Phase::NeedsReview));
        assert_eq!(status.transitions.len(), 1);
        assert_eq!(status.occurrences, Some(1));
    }

    #[test]
    fn an_event_in_review_without_a_decision_needs_no_write() {
        let mut event = event();
        apply(&mut event, "2026-03-01T02:01:00Z");
        assert_eq!(next_status(&event, ts("2026-03-01T03:00:00Z")), None);
    }

    #[test]
    fn ignore_moves_to_ignored_and_records_who_and_why() {
        let mut event = event();
        apply(&mut event, "2026-03-01T02:01:00Z");
        decide(&mut event, Decision::Ignore);
        assert_eq!(
            apply(&mut event, "2026-03-01T09:00:00Z"),
            Some(Announcement::Ignored { by: "alice".into() })
        );
        let status = event.status.as_ref().unwrap();
        assert_eq!(status.phase, Some(Phase::Ignored));
        let last = status.transitions.last().unwrap();
        assert_eq!(last.phase, Phase::Ignored);
        assert_eq!(last.actor.as_deref(), Some("alice"));
        assert_eq!(last.message.as_deref(), Some("known seasonal shift"));
        assert_eq!(last.time, Time(ts("2026-03-01T09:00:00Z")));
        assert_eq!(next_status(&event, ts("2026-03-01T10:00:00Z")), None);
    }

    #[test]
    fn approve_moves_to_packaging_with_the_job_and_the_approver_in_the_audit_trail() {
        let mut event = event();
        apply(&mut event, "2026-03-01T02:01:00Z");
        decide(&mut event, Decision::Approve);
        assert_eq!(
            apply(&mut event, "2026-03-01T09:00:00Z"),
            Some(Announcement::Approved {
                by: "alice".into(),
                job: "frames-202603010200-package".into()
            })
        );
        let status = event.status.as_ref().unwrap();
        assert_eq!(status.phase, Some(Phase::Packaging));
        let retraining = status.retraining.as_ref().unwrap();
        assert_eq!(
            retraining.job_name.as_deref(),
            Some("frames-202603010200-package")
        );
        assert_eq!(packaging_started_at(status), Some(ts("2026-03-01T09:00:00Z")));
        let last = status.transitions.last().unwrap();
        assert_eq!(
            (last.phase, last.actor.as_deref()),
            (Phase::Packaging, Some("alice"))
        );
        assert!(
            status
                .conditions
                .iter()
                .any(|c| c.type_ == "Decided" && c.status == "True" && c.reason == "Approved")
        );
        assert_eq!(next_status(&event, ts("2026-03-01T10:00:00Z")), None);
    }

    fn packaging(now: &str) -> DriftEvent {
        let mut event = event();
        apply(&mut event, "2026-03-01T02:01:00Z");
        decide(&mut event, Decision::Approve);
        apply(&mut event, now);
        event
    }

    fn report(text: serde_json::Value) -> String {
        text.to_string()
    }

    #[test]
    fn a_delivered_batch_is_actioned_with_the_s3_uri_checksum_and_retraining_job() {
        let event = packaging("2026-03-01T09:00:00Z");
        let message = report(serde_json::json!({
            "apiVersion": "driftwatch.dev/result/v1", "kind": "PackageResult", "event": "ml/frames-202603010200",
            "result": {"s3Uri": "s3://b/ml/frames-202603010200/batch.tar.gz", "sha256": "ab12", "points": 500,
                "reused": false, "retrainingJobId": "run-7", "attempts": 3, "durationSeconds": 2.5}
        }));
        let state = JobState::Succeeded {
            at: ts("2026-03-01T09:05:00Z"),
        };
        let outcome = packaging_outcome(&state, Some(&message));
        let (status, announcement) = finish_packaging(&event, outcome, ts("2026-03-01T09:05:00Z")).unwrap();
        assert_eq!(status.phase, Some(Phase::Actioned));
        let r = status.retraining.as_ref().unwrap();
        assert_eq!(
            r.s3_uri.as_deref(),
            Some("s3://b/ml/frames-202603010200/batch.tar.gz")
        );
        assert_eq!(
            (r.sha256.as_deref(), r.retraining_job_id.as_deref(), r.attempts),
            (Some("ab12"), Some("run-7"), Some(3))
        );
        assert_eq!(r.started_at, Some(Time(ts("2026-03-01T09:00:00Z"))));
        assert_eq!(r.finished_at, Some(Time(ts("2026-03-01T09:05:00Z"))));
        assert!(
            matches!(announcement, Announcement::Delivered { retraining_job_id: Some(ref id), .. } if id == "run-7")
        );
        assert!(
            status
                .conditions
                .iter()
                .any(|c| c.type_ == "RetrainingTriggered" && c.status == "True")
        );
        let mut done = event.clone();
        done.status = Some(status);
        assert_eq!(
            finish_packaging(&done, Err("late".into()), ts("2026-03-01T10:00:00Z")),
            None
        );
    }

    #[test]
    fn a_failed_webhook_or_a_silent_failure_ends_in_retraining_failed_with_the_error() {
        let event = packaging("2026-03-01T09:00:00Z");
        let message = report(serde_json::json!({
            "apiVersion": "driftwatch.dev/result/v1", "kind": "PackageResult", "event": "ml/frames-202603010200",
            "error": {"kind": "WebhookRejected", "message": "HTTP 400 after 1 attempt"},
            "partial": {"s3Uri": "s3://b/k", "points": 10, "reused": false, "attempts": 1, "durationSeconds": 1.0}
        }));
        let failed = JobState::Failed {
            at: ts("2026-03-01T09:05:00Z"),
            reason: "BackoffLimitExceeded".into(),
            message: String::new(),
        };
        let (status, announcement) = finish_packaging(
            &event,
            packaging_outcome(&failed, Some(&message)),
            ts("2026-03-01T09:05:00Z"),
        )
        .unwrap();
        assert_eq!(status.phase, Some(Phase::RetrainingFailed));
        assert_eq!(
            status.retraining.as_ref().unwrap().last_error.as_deref(),
            Some("WebhookRejected: HTTP 400 after 1 attempt")
        );
        assert!(matches!(announcement, Announcement::Failed { .. }));
        let silent = packaging_outcome(&failed, None).unwrap_err();
        assert!(silent.starts_with("BackoffLimitExceeded"), "{silent}");
        let garbled = packaging_outcome(
            &JobState::Succeeded {
                at: ts("2026-03-01T09:05:00Z"),
            },
            Some("not json"),
        )
        .unwrap_err();
        assert!(garbled.starts_with("ResultUnreadable"), "{garbled}");
    }

    #[test]
    fn packaging_that_cannot_start_is_recorded_as_failed() {
        let mut event = event();
        apply(&mut event, "2026-03-01T02:01:00Z");
        decide(&mut event, Decision::Approve);
        let (status, _) = next_status(&event, ts("2026-03-01T09:00:00Z")).unwrap();
        let (status, announcement) = packaging_cannot_start(
            &event,
            status,
            "DriftMonitor frames has no spec.retraining".into(),
            ts("2026-03-01T09:00:00Z"),
        );
        assert_eq!(status.phase, Some(Phase::RetrainingFailed));
        assert_eq!(status.transitions.len(), 3);
        assert_eq!(
            announcement,
            Announcement::Failed {
                error: "DriftMonitor frames has no spec.retraining".into()
            }
        );
    }
}
