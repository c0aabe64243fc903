//! What a DriftEvent's status becomes: NeedsReview on creation (with the retraining target an approval would
//! hand off to, kept current), Ignored after an Ignore decision, Packaging after Approve (the target is frozen
//! and the packaging start time fixed, both written before the Job exists), then Actioned or
//! RetrainingFailed from the packaging Job's result; every transition is appended to the audit trail.
//! Pure: no I/O.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::naming::packaging_job_name;
use crate::{
    api::v1alpha1::{
        Decision, DriftEvent, DriftEventStatus, Phase, PhaseTransition, RetrainingStatus, RetrainingTarget,
        display_score, event_condition,
    },
    controller::{
        drift_monitor::{raise::CONTROLLER_ACTOR, status::set_condition},
        job_status::JobState,
    },
    job::{
        redact::redact_urls,
        result::{PackageReport, parse_package_report},
    },
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
    /// Approved although the monitor has no retraining target (decided before the controller recorded
    /// that): nothing was triggered.
    pub const NOTHING_TO_TRIGGER: &str = "NothingToTrigger";
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
/// `observed` is what an approval would hand off to now (from the monitor as read).
pub fn next_status(
    event: &DriftEvent,
    observed: &RetrainingTarget,
    now: Timestamp,
) -> Option<(DriftEventStatus, Announcement)> {
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
        (None, Some(Phase::NeedsReview)) if !decided => {
            status.retraining_target = Some(observed.clone());
            let message = match &observed.reason {
                Some(reason) if !observed.configured() => {
                    format!("nothing to trigger: {reason}; set spec.approval.decision to Ignore")
                }
                _ => format!(
                    "set spec.approval.decision to Approve (packages into {}) or Ignore",
                    observed.summary
                ),
            };
            set_condition(
                &mut status.conditions,
                event_condition::DECIDED,
                "False",
                reason::AWAITING_DECISION,
                &message,
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
            set_condition(
                &mut status.conditions,
                event_condition::DECIDED,
                "True",
                reason::APPROVED,
                &format!("approved by {}", approval.approved_by),
                generation,
                now,
            );
            // What the event showed while in review, else what the monitor says now.
            let frozen = status
                .retraining_target
                .clone()
                .filter(RetrainingTarget::configured)
                .or_else(|| Some(observed.clone()).filter(RetrainingTarget::configured));
            match frozen {
                None => {
                    let why = observed
                        .reason
                        .clone()
                        .unwrap_or_else(|| "the DriftMonitor has no spec.retraining".to_string());
                    let message = format!(
                        "approved by {}, but nothing to trigger: {why}",
                        approval.approved_by
                    );
                    status.phase = Some(Phase::RetrainingFailed);
                    status.retraining_target = Some(observed.clone());
                    status.transitions.push(PhaseTransition {
                        phase: Phase::RetrainingFailed,
                        time: Time(now),
                        actor: Some(approval.approved_by.clone()),
                        message: Some(message.clone()),
                    });
                    set_condition(
                        &mut status.conditions,
                        event_condition::RETRAINING_TRIGGERED,
                        "False",
                        reason::NOTHING_TO_TRIGGER,
                        &message,
                        generation,
                        now,
                    );
                    announcement = Some(Announcement::Failed { error: message });
                }
                Some(frozen) => {
                    let by = &approval.approved_by;
                    let why = approval.reason.clone();
                    announcement = Some(approve(&mut status, event, frozen, by, why, generation, now));
                }
            }
        }
        _ => {}
    }
    // Events raised before the rounded column existed get it on their next reconcile.
    status.drift_score_rounded = display_score(event.spec.drift_score);
    status.observed_generation = generation;
    if status == current {
        return None;
    }
    Some((status, announcement.unwrap_or(Announcement::EnteredReview)))
}

/// Enters Packaging with the frozen target and the start time that every packaging Job of the event uses.
fn approve(
    status: &mut DriftEventStatus,
    event: &DriftEvent,
    mut frozen: RetrainingTarget,
    by: &str,
    why: Option<String>,
    generation: Option<i64>,
    now: Timestamp,
) -> Announcement {
    frozen.approved_at = Some(Time(now));
    let job = packaging_job_name(event);
    status.phase = Some(Phase::Packaging);
    status.retraining_target = Some(frozen);
    status.transitions.push(PhaseTransition {
        phase: Phase::Packaging,
        time: Time(now),
        actor: Some(by.to_string()),
        message: why,
    });
    status.retraining = Some(RetrainingStatus {
        job_name: Some(job.clone()),
        started_at: Some(Time(now)),
        ..RetrainingStatus::default()
    });
    set_condition(
        &mut status.conditions,
        event_condition::RETRAINING_TRIGGERED,
        "False",
        reason::PACKAGING,
        &format!("packaging Job {job} is running"),
        generation,
        now,
    );
    Announcement::Approved {
        by: by.to_string(),
        job,
    }
}

/// When the Packaging phase started, as recorded in the status before the Job was first created: the
/// packaging Job's `--created-at`, so every (re-)created Job builds the identical archive. Statuses from
/// before `startedAt` existed fall back to the approval's audit entry, then to the detection time — never
/// to the clock.
pub fn packaging_started_at(event: &DriftEvent) -> Timestamp {
    let Some(status) = event.status.as_ref() else {
        return event.spec.detected_at.0;
    };
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
        .unwrap_or(event.spec.detected_at.0)
}

/// The outcome of a finished packaging Job, from its state and the termination message of its own Pod. A
/// document that is not the packaging result of `event_id` (`<namespace>/<name>`) is ResultUnreadable.
/// URLs in errors are cut to their origin.
pub fn packaging_outcome(
    state: &JobState,
    message: Option<&str>,
    event_id: &str,
) -> Result<PackageReport, String> {
    let report = message.map(|text| {
        let report = parse_package_report(text)?;
        report.validate_for(event_id)?;
        Ok::<_, crate::job::result::ResultError>(report)
    });
    let outcome = match (state, report) {
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
    };
    outcome.map_err(|e| redact_urls(&e))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::v1alpha1::{
        Approval, DriftEventSpec, DriftMonitor, DriftMonitorSpec, MonitorRef, NO_RETRAINING_TARGET,
        TimeWindow,
    };
    use crate::controller::drift_event::target::of_monitor;

    const EVENT_ID: &str = "ml/frames-202603010200";

    fn monitor(bucket: Option<&str>) -> DriftMonitor {
        let mut spec = serde_json::json!({
            "schedule": "0 * * * *",
            "source": {"qdrant": {"url": "http://qdrant:6334", "collection": "frames"}},
            "windows": {"reference": {"duration": "7d"}, "comparison": {"duration": "1h"}}
        });
        if let Some(bucket) = bucket {
            spec["retraining"] = serde_json::json!({
                "s3": {"bucket": bucket, "prefix": "drift/"},
                "webhook": {"urlSecretRef": {"name": "hook", "key": "url"}}
            });
        }
        DriftMonitor::new(
            "frames",
            serde_json::from_value::<DriftMonitorSpec>(spec).unwrap(),
        )
    }

    fn target() -> RetrainingTarget {
        of_monitor("frames", Some(&monitor(Some("batches"))))
    }

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
                reference_window: TimeWindow::default(),
                comparison_window: TimeWindow::default(),
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
        apply_seeing(event, &target(), now)
    }

    fn apply_seeing(event: &mut DriftEvent, observed: &RetrainingTarget, now: &str) -> Option<Announcement> {
        let (status, announcement) = next_status(event, observed, ts(now))?;
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
        assert_eq!(next_status(&event, &target(), ts("2026-03-01T03:00:00Z")), None);
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
        assert_eq!(next_status(&event, &target(), ts("2026-03-01T10:00:00Z")), None);
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
        assert_eq!(packaging_started_at(&event), ts("2026-03-01T09:00:00Z"));
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
        assert_eq!(next_status(&event, &target(), ts("2026-03-01T10:00:00Z")), None);
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
        let outcome = packaging_outcome(&state, Some(&message), EVENT_ID);
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
            packaging_outcome(&failed, Some(&message), EVENT_ID),
            ts("2026-03-01T09:05:00Z"),
        )
        .unwrap();
        assert_eq!(status.phase, Some(Phase::RetrainingFailed));
        assert_eq!(
            status.retraining.as_ref().unwrap().last_error.as_deref(),
            Some("WebhookRejected: HTTP 400 after 1 attempt")
        );
        assert!(matches!(announcement, Announcement::Failed { .. }));
        let silent = packaging_outcome(&failed, None, EVENT_ID).unwrap_err();
        assert!(silent.starts_with("BackoffLimitExceeded"), "{silent}");
        let garbled = packaging_outcome(
            &JobState::Succeeded {
                at: ts("2026-03-01T09:05:00Z"),
            },
            Some("not json"),
            EVENT_ID,
        )
        .unwrap_err();
        assert!(garbled.starts_with("ResultUnreadable"), "{garbled}");
    }

    #[test]
    fn packaging_that_cannot_start_is_recorded_as_failed() {
        let event = packaging("2026-03-01T09:00:00Z");
        let (status, announcement) = finish_packaging(
            &event,
            Err("the comparison window cannot be derived".into()),
            ts("2026-03-01T09:00:00Z"),
        )
        .unwrap();
        assert_eq!(status.phase, Some(Phase::RetrainingFailed));
        assert_eq!(status.transitions.len(), 3);
        assert_eq!(
            announcement,
            Announcement::Failed {
                error: "the comparison window cannot be derived".into()
            }
        );
    }

    #[test]
    fn an_event_in_review_shows_what_approving_would_trigger_and_follows_the_monitor() {
        let mut event = event();
        apply(&mut event, "2026-03-01T02:01:00Z");
        let status = event.status.as_ref().unwrap();
        assert_eq!(
            status.retraining_target.as_ref().unwrap().summary,
            "s3://batches/drift/"
        );
        let decided = status.conditions.iter().find(|c| c.type_ == "Decided").unwrap();
        assert!(
            decided.message.contains("s3://batches/drift/"),
            "{}",
            decided.message
        );
        let elsewhere = of_monitor("frames", Some(&monitor(Some("elsewhere"))));
        apply_seeing(&mut event, &elsewhere, "2026-03-01T03:00:00Z");
        assert_eq!(
            event
                .status
                .as_ref()
                .unwrap()
                .retraining_target
                .as_ref()
                .unwrap()
                .summary,
            "s3://elsewhere/drift/"
        );
    }

    #[test]
    fn an_event_of_a_monitor_without_retraining_says_there_is_nothing_to_trigger() {
        let mut event = event();
        let nothing = of_monitor("frames", Some(&monitor(None)));
        apply_seeing(&mut event, &nothing, "2026-03-01T02:01:00Z");
        let status = event.status.as_ref().unwrap();
        let target = status.retraining_target.as_ref().unwrap();
        assert_eq!(target.summary, NO_RETRAINING_TARGET);
        assert!(target.reason.as_deref().unwrap().contains("no spec.retraining"));
        let decided = status.conditions.iter().find(|c| c.type_ == "Decided").unwrap();
        assert!(
            decided.message.starts_with("nothing to trigger"),
            "{}",
            decided.message
        );
        assert_eq!(status.phase, Some(Phase::NeedsReview));
    }

    #[test]
    fn approval_freezes_the_target_the_event_showed_even_if_the_monitor_changed_since() {
        let mut event = event();
        apply(&mut event, "2026-03-01T02:01:00Z");
        decide(&mut event, Decision::Approve);
        let elsewhere = of_monitor("frames", Some(&monitor(Some("elsewhere"))));
        apply_seeing(&mut event, &elsewhere, "2026-03-01T09:00:00Z");
        let status = event.status.as_ref().unwrap();
        assert_eq!(status.phase, Some(Phase::Packaging));
        let frozen = status.retraining_target.as_ref().unwrap();
        assert_eq!(frozen.summary, "s3://batches/drift/");
        assert_eq!(frozen.approved_at, Some(Time(ts("2026-03-01T09:00:00Z"))));
        // Later reconciles never move a frozen target.
        assert_eq!(next_status(&event, &elsewhere, ts("2026-03-01T10:00:00Z")), None);
    }

    #[test]
    fn an_approval_the_controller_could_not_refuse_with_nothing_to_trigger_is_named_as_such() {
        let mut event = event();
        decide(&mut event, Decision::Approve);
        let nothing = of_monitor("frames", Some(&monitor(None)));
        let announcement = apply_seeing(&mut event, &nothing, "2026-03-01T09:00:00Z").unwrap();
        let status = event.status.as_ref().unwrap();
        assert_eq!(status.phase, Some(Phase::RetrainingFailed));
        let triggered = status
            .conditions
            .iter()
            .find(|c| c.type_ == "RetrainingTriggered")
            .unwrap();
        assert_eq!(triggered.reason, "NothingToTrigger");
        assert!(
            matches!(announcement, Announcement::Failed { error } if error.contains("nothing to trigger"))
        );
    }

    #[test]
    fn the_packaging_start_time_comes_from_the_status_never_the_clock() {
        let mut event = event();
        assert_eq!(packaging_started_at(&event), ts("2026-03-01T02:00:00Z"));
        apply(&mut event, "2026-03-01T02:01:00Z");
        decide(&mut event, Decision::Approve);
        apply(&mut event, "2026-03-01T09:00:00Z");
        assert_eq!(packaging_started_at(&event), ts("2026-03-01T09:00:00Z"));
        let mut legacy = event.clone();
        legacy.status.as_mut().unwrap().retraining = None;
        assert_eq!(packaging_started_at(&legacy), ts("2026-03-01T09:00:00Z"));
    }

    #[test]
    fn a_result_document_about_another_event_or_of_another_kind_is_unreadable() {
        let state = JobState::Succeeded {
            at: ts("2026-03-01T09:05:00Z"),
        };
        let document = |kind: &str, event: &str| {
            report(serde_json::json!({
                "apiVersion": "driftwatch.dev/result/v1", "kind": kind, "event": event,
                "result": {"s3Uri": "s3://b/k", "points": 5, "reused": false, "attempts": 1, "durationSeconds": 1.0}
            }))
        };
        assert!(packaging_outcome(&state, Some(&document("PackageResult", EVENT_ID)), EVENT_ID).is_ok());
        let other =
            packaging_outcome(&state, Some(&document("PackageResult", "ml/other")), EVENT_ID).unwrap_err();
        assert!(other.starts_with("ResultUnreadable: "), "{other}");
        assert!(other.contains("ml/other"), "{other}");
        let kind = packaging_outcome(&state, Some(&document("CheckResult", EVENT_ID)), EVENT_ID).unwrap_err();
        assert!(kind.starts_with("ResultUnreadable: "), "{kind}");
    }

    #[test]
    fn a_token_in_a_reported_error_never_reaches_last_error() {
        let event = packaging("2026-03-01T09:00:00Z");
        let message = report(serde_json::json!({
            "apiVersion": "driftwatch.dev/result/v1", "kind": "PackageResult", "event": EVENT_ID,
            "error": {"kind": "WebhookFailed",
                "message": "connection failed: error sending request for url (http://hooks:8080/x?token=SECRET)"}
        }));
        let failed = JobState::Failed {
            at: ts("2026-03-01T09:05:00Z"),
            reason: "BackoffLimitExceeded".into(),
            message: String::new(),
        };
        let (status, _) = finish_packaging(
            &event,
            packaging_outcome(&failed, Some(&message), EVENT_ID),
            ts("2026-03-01T09:05:00Z"),
        )
        .unwrap();
        let error = status.retraining.unwrap().last_error.unwrap();
        assert!(!error.contains("SECRET"), "{error}");
        assert!(error.contains("(http://hooks:8080)"), "{error}");
    }
}
