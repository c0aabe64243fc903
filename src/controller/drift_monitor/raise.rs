//! Which DriftEvent a firing check raises: a new event, an update of the one in review, or nothing during
//! the cooldown after an Ignore. Pure: takes the monitor's events, the check and the cooldown; no I/O.

use std::{collections::BTreeMap, time::Duration};

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::ObjectMeta;

use super::{
    desired::{event_name, labels, monitor_label},
    status::summary,
};
use crate::{
    api::v1alpha1::{
        Decision, DriftEvent, DriftEventSpec, DriftEventStatus, Explanation, MAX_DISPLAY_FIELDS, MonitorRef,
        Phase, PhaseTransition, display_score,
    },
    job::result::CheckOutcome,
};

/// Who the audit trail names for the controller's own transitions.
pub const CONTROLLER_ACTOR: &str = "driftwatch-controller";
/// `spec.source` of events the controller raises.
pub const SOURCE_CONTROLLER: &str = "controller";

/// What to do with a firing check.
#[derive(Clone, Debug, PartialEq)]
pub enum EventPlan {
    /// Create this event (spec, then status).
    Create(Box<DriftEvent>),
    /// Write this status to the open event.
    Update {
        name: String,
        status: Box<DriftEventStatus>,
    },
    /// The open event already counts this check.
    AlreadyCounted { name: String },
    /// An Ignore decision's cooldown is running until then.
    Cooldown { until: Timestamp },
}

/// Whether the event still waits for a decision.
pub fn in_review(event: &DriftEvent) -> bool {
    event.spec.approval.is_none()
        && matches!(
            event.status.as_ref().and_then(|s| s.phase),
            None | Some(Phase::NeedsReview)
        )
}

/// The monitor's event in review, newest first if several.
pub fn open_event(events: &[DriftEvent]) -> Option<&DriftEvent> {
    events
        .iter()
        .filter(|e| in_review(e))
        .max_by_key(|e| e.spec.detected_at.0)
}

/// When the monitor's most recent event was ignored: the Ignored transition, else the decision's arrival.
pub fn last_ignored(events: &[DriftEvent]) -> Option<Timestamp> {
    events
        .iter()
        .filter_map(|e| {
            let status = e.status.as_ref()?;
            status
                .transitions
                .iter()
                .filter(|t| t.phase == Phase::Ignored)
                .map(|t| t.time.0)
                .max()
        })
        .max()
}

/// A check whose result fired.
#[derive(Clone, Copy, Debug)]
pub struct Firing<'a> {
    pub check_id: &'a str,
    pub slot: Timestamp,
    pub outcome: &'a CheckOutcome,
}

/// Decides what a firing check does to the monitor's events.
pub fn plan(
    monitor: &str,
    namespace: &str,
    events: &[DriftEvent],
    cooldown: Duration,
    firing: Firing<'_>,
    now: Timestamp,
) -> EventPlan {
    let Firing {
        check_id,
        slot,
        outcome,
    } = firing;
    let score = outcome.scores.first().map_or(0.0, |s| s.score);
    if let Some(open) = open_event(events) {
        let name = open.metadata.name.clone().unwrap_or_default();
        let mut status = open.status.clone().unwrap_or_default();
        if status.latest_check_id.as_deref() == Some(check_id)
            || open.spec.check_id.as_deref() == Some(check_id)
        {
            return EventPlan::AlreadyCounted { name };
        }
        status.phase = Some(status.phase.unwrap_or(Phase::NeedsReview));
        status.occurrences = Some(status.occurrences.unwrap_or(1) + 1);
        status.last_seen = Some(Time(slot));
        status.latest_score = Some(score);
        status.latest_check_id = Some(check_id.to_string());
        status.explanation = explanation(outcome);
        return EventPlan::Update {
            name,
            status: Box::new(status),
        };
    }
    if let Some(ignored) = last_ignored(events) {
        let until = ignored
            .checked_add(SignedDuration::try_from(cooldown).unwrap_or(SignedDuration::MAX))
            .unwrap_or(Timestamp::MAX);
        if slot < until {
            return EventPlan::Cooldown { until };
        }
    }
    let facts = summary(check_id, outcome);
    let event = DriftEvent {
        metadata: ObjectMeta {
            name: Some(event_name(monitor, slot)),
            namespace: Some(namespace.to_string()),
            labels: Some(BTreeMap::from([
                (labels::NAME.to_string(), labels::APP.to_string()),
                (labels::MANAGED_BY.to_string(), labels::APP.to_string()),
                (labels::MONITOR.to_string(), monitor_label(monitor)),
            ])),
            ..ObjectMeta::default()
        },
        spec: DriftEventSpec {
            monitor_ref: MonitorRef {
                name: monitor.to_string(),
            },
            detected_at: Time(slot),
            drift_score: score,
            scores: facts.scores,
            reference_window: facts.windows.reference,
            comparison_window: facts.windows.comparison,
            check_id: Some(check_id.to_string()),
            samples: Some(facts.samples),
            source: Some(SOURCE_CONTROLLER.to_string()),
            combined_p_value: facts.combined_p_value,
            alpha: facts.alpha,
            approval: None,
        },
        status: Some(DriftEventStatus {
            phase: Some(Phase::NeedsReview),
            occurrences: Some(1),
            last_seen: Some(Time(slot)),
            latest_score: Some(score),
            drift_score_rounded: display_score(score),
            latest_check_id: Some(check_id.to_string()),
            explanation: explanation(outcome),
            transitions: vec![PhaseTransition {
                phase: Phase::NeedsReview,
                time: Time(now),
                actor: Some(CONTROLLER_ACTOR.to_string()),
                message: Some(format!("drift detected by check {check_id}")),
            }],
            ..DriftEventStatus::default()
        }),
    };
    EventPlan::Create(Box::new(event))
}

/// The check's explanation as the event keeps it: within the bounds of [`Explanation::bounded`] whatever
/// the result document carried.
fn explanation(outcome: &CheckOutcome) -> Option<Explanation> {
    let e = outcome.explanation.clone()?;
    Some(e.bounded(MAX_DISPLAY_FIELDS))
}

/// Whether an event was decided with Ignore.
pub fn ignored(event: &DriftEvent) -> bool {
    event.spec.approval.as_ref().map(|a| a.decision) == Some(Decision::Ignore)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        api::v1alpha1::{Approval, DataSource, Method, SampleCounts},
        job::result::{ReportWindows, ScoreReport},
    };

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn outcome(score: f64) -> CheckOutcome {
        CheckOutcome {
            windows: ReportWindows::default(),
            samples: SampleCounts::default(),
            scores: vec![ScoreReport {
                method: Method::KlDivergence,
                source: DataSource::Embeddings,
                score,
                threshold: Some(0.1),
                p_value: None,
                adjusted_p_value: None,
                drifted: true,
                n_reference: 10,
                n_comparison: 10,
                seconds: 0.1,
            }],
            drift_detected: true,
            combined_p_value: None,
            alpha: None,
            duration_seconds: 1.0,
            skipped: None,
            summary: None,
            explanation: None,
        }
    }

    fn day() -> Duration {
        Duration::from_secs(86_400)
    }

    fn plan_at(events: &[DriftEvent], id: &str, slot: &str, score: f64) -> EventPlan {
        let outcome = outcome(score);
        let firing = Firing {
            check_id: id,
            slot: ts(slot),
            outcome: &outcome,
        };
        plan("frames", "ml", events, day(), firing, ts(slot))
    }

    fn created(plan: EventPlan) -> DriftEvent {
        match plan {
            EventPlan::Create(event) => *event,
            other => panic!("expected Create, got {other:?}"),
        }
    }

    #[test]
    fn the_first_firing_check_creates_an_event_in_review_named_after_the_slot() {
        let event = created(plan_at(&[], "frames-202603010200", "2026-03-01T02:00:00Z", 0.4));
        assert_eq!(event.metadata.name.as_deref(), Some("frames-202603010200"));
        assert_eq!(event.spec.monitor_ref.name, "frames");
        assert_eq!(event.spec.drift_score, 0.4);
        assert_eq!(event.spec.detected_at, Time(ts("2026-03-01T02:00:00Z")));
        let status = event.status.unwrap();
        assert_eq!(status.phase, Some(Phase::NeedsReview));
        assert_eq!(status.occurrences, Some(1));
        assert_eq!(status.transitions.len(), 1);
        assert!(
            event.metadata.owner_references.is_none(),
            "events outlive their monitor"
        );
    }

    #[test]
    fn a_repeated_firing_check_updates_the_open_event() {
        let open = created(plan_at(&[], "frames-202603010200", "2026-03-01T02:00:00Z", 0.4));
        match plan_at(&[open], "frames-202603020200", "2026-03-02T02:00:00Z", 0.7) {
            EventPlan::Update { name, status } => {
                assert_eq!(name, "frames-202603010200");
                assert_eq!(status.occurrences, Some(2));
                assert_eq!(status.latest_score, Some(0.7));
                assert_eq!(status.last_seen, Some(Time(ts("2026-03-02T02:00:00Z"))));
                assert_eq!(status.latest_check_id.as_deref(), Some("frames-202603020200"));
            }
            other => panic!("expected Update, got {other:?}"),
        }
    }

    #[test]
    fn the_event_keeps_the_latest_check_s_explanation_within_its_bounds() {
        use crate::api::v1alpha1::{ExamplePoint, MAX_SLICES, SliceSummary};
        let explained = |value: &str| {
            let mut outcome = outcome(0.4);
            outcome.explanation = Some(Explanation {
                slices: (0..9)
                    .map(|i| SliceSummary {
                        field: "camera_id".into(),
                        value: format!("{value}-{i}"),
                        status: "drifted".into(),
                        examples: vec![ExamplePoint {
                            id: "7".into(),
                            fields: (0..4).map(|f| (format!("f{f}"), "x".into())).collect(),
                        }],
                        ..SliceSummary::default()
                    })
                    .collect(),
                ..Explanation::default()
            });
            outcome
        };
        let first = explained("cam");
        let firing = |id, slot, outcome| Firing {
            check_id: id,
            slot: ts(slot),
            outcome,
        };
        let slot = "2026-03-01T02:00:00Z";
        let open = created(plan(
            "frames",
            "ml",
            &[],
            day(),
            firing("frames-1", slot, &first),
            ts(slot),
        ));
        let kept = open.status.as_ref().unwrap().explanation.clone().unwrap();
        assert_eq!(kept.slices.len(), MAX_SLICES);
        assert_eq!(kept.slices[0].examples[0].fields.len(), MAX_DISPLAY_FIELDS);
        assert!(kept.truncated);
        let later = explained("site");
        let slot = "2026-03-02T02:00:00Z";
        match plan(
            "frames",
            "ml",
            &[open],
            day(),
            firing("frames-2", slot, &later),
            ts(slot),
        ) {
            EventPlan::Update { status, .. } => {
                assert_eq!(status.explanation.unwrap().slices[0].value, "site-0");
            }
            other => panic!("expected Update, got {other:?}"),
        }
    }

    #[test]
    fn the_same_check_is_never_counted_twice() {
        let open = created(plan_at(&[], "frames-202603010200", "2026-03-01T02:00:00Z", 0.4));
        assert!(matches!(
            plan_at(&[open], "frames-202603010200", "2026-03-01T02:00:00Z", 0.4),
            EventPlan::AlreadyCounted { .. }
        ));
    }

    fn ignored_event(at: &str) -> DriftEvent {
        let mut event = created(plan_at(&[], "frames-202603010200", "2026-03-01T02:00:00Z", 0.4));
        event.spec.approval = Some(Approval {
            decision: Decision::Ignore,
            approved_by: "alice".into(),
            reason: None,
        });
        let status = event.status.as_mut().unwrap();
        status.phase = Some(Phase::Ignored);
        status.transitions.push(PhaseTransition {
            phase: Phase::Ignored,
            time: Time(ts(at)),
            actor: Some("alice".into()),
            message: None,
        });
        event
    }

    #[test]
    fn no_new_event_within_the_cooldown_after_an_ignore() {
        let events = [ignored_event("2026-03-01T08:00:00Z")];
        assert_eq!(
            plan_at(&events, "frames-202603020200", "2026-03-02T02:00:00Z", 0.5),
            EventPlan::Cooldown {
                until: ts("2026-03-02T08:00:00Z")
            }
        );
    }

    #[test]
    fn a_new_event_after_the_cooldown_ends() {
        let events = [ignored_event("2026-03-01T08:00:00Z")];
        let event = created(plan_at(
            &events,
            "frames-202603030200",
            "2026-03-03T02:00:00Z",
            0.5,
        ));
        assert_eq!(event.metadata.name.as_deref(), Some("frames-202603030200"));
    }

    #[test]
    fn a_decided_event_is_not_in_review() {
        let event = ignored_event("2026-03-01T08:00:00Z");
        assert!(!in_review(&event));
        assert!(ignored(&event));
        assert!(open_event(&[event]).is_none());
    }
}
