//! What a DriftEvent's status becomes from its spec: NeedsReview on creation, Ignored after an Ignore
//! decision (with the audit trail), the recorded decision after Approve. Pure: no I/O.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::{
    api::v1alpha1::{Decision, DriftEvent, DriftEventStatus, Phase, PhaseTransition, event_condition},
    controller::drift_monitor::{raise::CONTROLLER_ACTOR, status::set_condition},
};

/// Condition reasons of a DriftEvent.
pub mod reason {
    pub const AWAITING_DECISION: &str = "AwaitingDecision";
    pub const IGNORED: &str = "Ignored";
    pub const APPROVED: &str = "Approved";
    /// Approved, but this build cannot package yet: the seam for the retrain-packaging Job.
    pub const PACKAGING_UNAVAILABLE: &str = "PackagingUnavailable";
}

/// A transition to announce with a Kubernetes Event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Announcement {
    EnteredReview,
    Ignored { by: String },
    Approved { by: String },
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
        (Some(approval), Some(Phase::NeedsReview)) if approval.decision == Decision::Approve && !decided => {
            // Seam: the retrain-packaging Job (and the Packaging phase) arrives with the packaging feature.
            // Until then the decision is recorded and the event stays in NeedsReview, visibly waiting.
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
                reason::PACKAGING_UNAVAILABLE,
                "retrain packaging is not available in this controller version",
                generation,
                now,
            );
            announcement = Some(Announcement::Approved {
                by: approval.approved_by.clone(),
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
    fn approve_is_recorded_once_and_the_event_waits_for_packaging() {
        let mut event = event();
        apply(&mut event, "2026-03-01T02:01:00Z");
        decide(&mut event, Decision::Approve);
        assert_eq!(
            apply(&mut event, "2026-03-01T09:00:00Z"),
            Some(Announcement::Approved { by: "alice".into() })
        );
        let status = event.status.as_ref().unwrap();
        assert_eq!(status.phase, Some(Phase::NeedsReview));
        assert!(
            status
                .conditions
                .iter()
                .any(|c| c.type_ == "Decided" && c.status == "True" && c.reason == "Approved")
        );
        assert_eq!(next_status(&event, ts("2026-03-01T10:00:00Z")), None);
    }
}
