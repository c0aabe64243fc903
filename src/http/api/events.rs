//! `GET /drift-events` (and `/api/v1/drift-events`): DriftEvents in the original REST shape, filtered,
//! newest first, paginated with an opaque `continue` token; `GET /api/v1/drift-events/{ns}/{name}`: one
//! event in full for the dashboard. The conversions and paging are pure; handlers read the stores.

use std::sync::Arc;

use axum::{
    Json,
    extract::{Path, Query, State, rejection::QueryRejection},
    http::HeaderMap,
};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiState, auth::Access};
use crate::api::v1alpha1::{DriftEvent, Explanation, Phase, TimeWindow};

/// Events per page when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 100;
/// Most events per page.
pub const MAX_LIMIT: usize = 1000;

/// A window in the original spelling.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct WindowView {
    pub start_time: Option<String>,
    pub end_time: Option<String>,
}

/// One event as the original `GET /drift-events` returns it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct EventView {
    /// `<namespace>/<name>`.
    pub event_id: String,
    /// When the drift was detected (RFC 3339).
    pub timestamp: String,
    pub drift_score: f64,
    /// NEEDS_REVIEW, PACKAGING, ACTIONED, IGNORED or RETRAINING_FAILED.
    pub status: String,
    pub reference_window: WindowView,
    pub comparison_window: WindowView,
    pub monitor: String,
    pub namespace: String,
}

/// The list response.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct EventList {
    pub events: Vec<EventView>,
    /// Pass as `continue` to get the next page; absent on the last page.
    #[serde(rename = "continue", default, skip_serializing_if = "Option::is_none")]
    pub continue_token: Option<String>,
}

/// Query parameters of the list.
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub namespace: Option<String>,
    pub monitor: Option<String>,
    /// One status or several, comma-separated (NEEDS_REVIEW, …).
    pub status: Option<String>,
    pub limit: Option<usize>,
    #[serde(rename = "continue")]
    pub continue_token: Option<String>,
}

/// The phase shown for an event: its status phase, NeedsReview before the controller wrote one.
pub fn phase(event: &DriftEvent) -> Phase {
    event.status.as_ref().and_then(|s| s.phase).unwrap_or_default()
}

/// Parses a status in the original spelling (case-insensitive; the CR spelling is accepted too).
pub fn parse_status(text: &str) -> Option<Phase> {
    let wanted = text.trim();
    Phase::ALL
        .into_iter()
        .find(|p| p.api_status().eq_ignore_ascii_case(wanted) || p.as_str().eq_ignore_ascii_case(wanted))
}

fn window(w: &TimeWindow) -> WindowView {
    WindowView {
        start_time: w.start.as_ref().map(|t| t.0.to_string()),
        end_time: w.end.as_ref().map(|t| t.0.to_string()),
    }
}

/// The original REST view of an event.
pub fn view(event: &DriftEvent) -> EventView {
    let namespace = event.metadata.namespace.clone().unwrap_or_default();
    let name = event.metadata.name.clone().unwrap_or_default();
    EventView {
        event_id: format!("{namespace}/{name}"),
        timestamp: event.spec.detected_at.0.to_string(),
        drift_score: event.spec.drift_score,
        status: phase(event).api_status().to_string(),
        reference_window: window(&event.spec.reference_window),
        comparison_window: window(&event.spec.comparison_window),
        monitor: event.spec.monitor_ref.name.clone(),
        namespace,
    }
}

/// Splits an `event_id` (`<namespace>/<name>`).
pub fn parse_event_id(id: &str) -> Option<(&str, &str)> {
    let (ns, name) = id.split_once('/')?;
    let valid = |s: &str| {
        !s.is_empty()
            && s.len() <= 253
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    };
    (valid(ns) && valid(name)).then_some((ns, name))
}

/// The sort key: newest first, then namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    newest_first: std::cmp::Reverse<Timestamp>,
    namespace: String,
    name: String,
}

fn key(event: &DriftEvent) -> Key {
    Key {
        newest_first: std::cmp::Reverse(event.spec.detected_at.0),
        namespace: event.metadata.namespace.clone().unwrap_or_default(),
        name: event.metadata.name.clone().unwrap_or_default(),
    }
}

fn encode_token(key: &Key) -> String {
    let text = format!(
        "{}|{}|{}",
        key.newest_first.0.as_nanosecond(),
        key.namespace,
        key.name
    );
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_token(token: &str) -> Option<Key> {
    if !token.len().is_multiple_of(2) || token.len() > 2048 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..token.len())
        .step_by(2)
        .map(|i| token.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect();
    let text = String::from_utf8(bytes?).ok()?;
    let mut parts = text.splitn(3, '|');
    let nanos: i128 = parts.next()?.parse().ok()?;
    let namespace = parts.next()?.to_string();
    let name = parts.next()?.to_string();
    Some(Key {
        newest_first: std::cmp::Reverse(Timestamp::from_nanosecond(nanos).ok()?),
        namespace,
        name,
    })
}

/// Filters, sorts and pages events (pure).
pub fn page(events: &[Arc<DriftEvent>], query: &ListQuery) -> Result<EventList, ApiError> {
    let statuses: Option<Vec<Phase>> = match query.status.as_deref().filter(|s| !s.trim().is_empty()) {
        None => None,
        Some(text) => Some(
            text.split(',')
                .map(|s| {
                    parse_status(s).ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "unknown status {:?}: use NEEDS_REVIEW, PACKAGING, ACTIONED, IGNORED or RETRAINING_FAILED",
                            s.trim()
                        ))
                    })
                })
                .collect::<Result<_, _>>()?,
        ),
    };
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::bad_request(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    let after = match query.continue_token.as_deref().filter(|t| !t.is_empty()) {
        None => None,
        Some(token) => Some(decode_token(token).ok_or_else(|| {
            ApiError::bad_request("invalid continue token: pass the value of a previous response")
        })?),
    };
    let nonempty = |s: &Option<String>| s.as_deref().filter(|v| !v.is_empty()).map(str::to_string);
    let (namespace, monitor) = (nonempty(&query.namespace), nonempty(&query.monitor));
    let mut selected: Vec<(Key, &DriftEvent)> = events
        .iter()
        .map(|e| e.as_ref())
        .filter(|e| namespace.is_none() || e.metadata.namespace == namespace)
        .filter(|e| monitor.as_deref().is_none_or(|m| e.spec.monitor_ref.name == m))
        .filter(|e| statuses.as_ref().is_none_or(|s| s.contains(&phase(e))))
        .map(|e| (key(e), e))
        .filter(|(k, _)| after.as_ref().is_none_or(|a| k > a))
        .collect();
    selected.sort_by(|a, b| a.0.cmp(&b.0));
    let more = selected.len() > limit;
    selected.truncate(limit);
    let continue_token = if more {
        selected.last().map(|(k, _)| encode_token(k))
    } else {
        None
    };
    Ok(EventList {
        events: selected.iter().map(|(_, e)| view(e)).collect(),
        continue_token,
    })
}

fn ensure_ready(state: &ApiState) -> Result<(), ApiError> {
    if state.stores.is_ready() {
        Ok(())
    } else {
        Err(ApiError::unavailable(
            "the event cache is still syncing; try again shortly",
        ))
    }
}

/// `GET /drift-events`.
pub async fn list(
    State(state): State<ApiState>,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<EventList>, ApiError> {
    let user = state.auth.authenticate(&headers).await?;
    let Query(query) =
        query.map_err(|e| ApiError::bad_request(format!("invalid query: {}", e.body_text())))?;
    let namespace = query.namespace.as_deref().filter(|n| !n.is_empty());
    state
        .auth
        .authorize(&user, &Access::list_events(namespace))
        .await
        .map_err(|e| {
            if namespace.is_none() {
                ApiError::forbidden(format!("{}; to list one namespace pass ?namespace=", e.message))
            } else {
                e
            }
        })?;
    ensure_ready(&state)?;
    Ok(Json(page(&state.stores.events(), &query)?))
}

/// One event in full.
#[derive(Serialize)]
pub struct EventDetail {
    /// The list view.
    pub event: EventView,
    /// Whether a decision may still be made (status NEEDS_REVIEW and no decision recorded).
    pub actionable: bool,
    /// Why approving would trigger nothing (the monitor has no spec.retraining): only Ignore applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nothing_to_trigger: Option<String>,
    /// What changed and where (the latest firing check's `status.explanation`): top slices, regions whose
    /// share changed, example points with display fields.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<Explanation>,
    /// The DriftEvent resource as stored.
    pub object: DriftEvent,
}

/// Whether an event still waits for a decision.
pub fn actionable(event: &DriftEvent) -> bool {
    event.spec.approval.is_none() && phase(event) == Phase::NeedsReview
}

/// `GET /api/v1/drift-events/{namespace}/{name}`.
pub async fn detail(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path((namespace, name)): Path<(String, String)>,
) -> Result<Json<EventDetail>, ApiError> {
    let user = state.auth.authenticate(&headers).await?;
    state
        .auth
        .authorize(&user, &Access::get_event(&namespace, &name))
        .await?;
    ensure_ready(&state)?;
    let event = state
        .stores
        .event(&namespace, &name)
        .ok_or_else(|| ApiError::not_found(format!("no DriftEvent {namespace}/{name}")))?;
    Ok(Json(EventDetail {
        event: view(&event),
        actionable: actionable(&event),
        nothing_to_trigger: event.nothing_to_trigger(),
        explanation: event.status.as_ref().and_then(|s| s.explanation.clone()),
        object: (*event).clone(),
    }))
}

#[cfg(test)]
pub(crate) mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use kube::api::ObjectMeta;

    use super::*;
    use crate::api::v1alpha1::{DriftEventSpec, DriftEventStatus, MonitorRef};

    pub(crate) fn event(
        ns: &str,
        name: &str,
        monitor: &str,
        at: &str,
        phase: Option<Phase>,
    ) -> Arc<DriftEvent> {
        let t: Timestamp = at.parse().unwrap();
        Arc::new(DriftEvent {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(ns.into()),
                ..ObjectMeta::default()
            },
            spec: DriftEventSpec {
                monitor_ref: MonitorRef { name: monitor.into() },
                detected_at: Time(t),
                drift_score: 0.25,
                scores: vec![],
                reference_window: TimeWindow {
                    start: Some(Time(t - jiff::SignedDuration::from_hours(192))),
                    end: Some(Time(t - jiff::SignedDuration::from_hours(24))),
                    collection: None,
                },
                comparison_window: TimeWindow {
                    start: Some(Time(t - jiff::SignedDuration::from_hours(24))),
                    end: Some(Time(t)),
                    collection: None,
                },
                check_id: None,
                samples: None,
                source: None,
                combined_p_value: None,
                alpha: None,
                approval: None,
            },
            status: phase.map(|p| DriftEventStatus {
                phase: Some(p),
                ..DriftEventStatus::default()
            }),
        })
    }

    fn fixture() -> Vec<Arc<DriftEvent>> {
        vec![
            event(
                "ml",
                "frames-202611250200",
                "frames",
                "2026-11-25T02:00:00Z",
                Some(Phase::Ignored),
            ),
            event(
                "ml",
                "frames-202611260200",
                "frames",
                "2026-11-26T02:00:00Z",
                None,
            ),
            event(
                "ml",
                "audio-202611260200",
                "audio",
                "2026-11-26T02:00:00Z",
                Some(Phase::Actioned),
            ),
            event(
                "ops",
                "frames-202611240200",
                "frames",
                "2026-11-24T02:00:00Z",
                Some(Phase::NeedsReview),
            ),
        ]
    }

    fn ids(list: &EventList) -> Vec<&str> {
        list.events.iter().map(|e| e.event_id.as_str()).collect()
    }

    #[test]
    fn events_are_listed_newest_first_in_the_original_shape() {
        let list = page(&fixture(), &ListQuery::default()).unwrap();
        assert_eq!(
            ids(&list),
            [
                "ml/audio-202611260200",
                "ml/frames-202611260200",
                "ml/frames-202611250200",
                "ops/frames-202611240200"
            ]
        );
        let json = serde_json::to_value(&list.events[1]).unwrap();
        assert_eq!(json["status"], "NEEDS_REVIEW");
        assert_eq!(json["timestamp"], "2026-11-26T02:00:00Z");
        assert_eq!(json["comparison_window"]["start_time"], "2026-11-25T02:00:00Z");
        assert_eq!(json["comparison_window"]["end_time"], "2026-11-26T02:00:00Z");
        assert_eq!(json["monitor"], "frames");
        assert_eq!(json["namespace"], "ml");
        assert!(list.continue_token.is_none());
    }

    #[test]
    fn filters_combine_namespace_monitor_and_status() {
        let query = ListQuery {
            namespace: Some("ml".into()),
            monitor: Some("frames".into()),
            status: Some("needs_review,IGNORED".into()),
            ..ListQuery::default()
        };
        let list = page(&fixture(), &query).unwrap();
        assert_eq!(ids(&list), ["ml/frames-202611260200", "ml/frames-202611250200"]);
    }

    #[test]
    fn pages_follow_each_other_without_gaps_or_repeats() {
        let events = fixture();
        let mut seen = Vec::new();
        let mut query = ListQuery {
            limit: Some(3),
            ..ListQuery::default()
        };
        loop {
            let list = page(&events, &query).unwrap();
            seen.extend(list.events.iter().map(|e| e.event_id.clone()));
            match list.continue_token {
                Some(token) => query.continue_token = Some(token),
                None => break,
            }
        }
        let all: Vec<String> = ids(&page(&events, &ListQuery::default()).unwrap())
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(seen, all);
    }

    #[test]
    fn bad_filters_and_tokens_are_refused_with_a_reason() {
        let bad = |q: ListQuery| page(&fixture(), &q).unwrap_err().status.as_u16();
        assert_eq!(
            bad(ListQuery {
                status: Some("DONE".into()),
                ..ListQuery::default()
            }),
            400
        );
        assert_eq!(
            bad(ListQuery {
                limit: Some(0),
                ..ListQuery::default()
            }),
            400
        );
        assert_eq!(
            bad(ListQuery {
                continue_token: Some("zz".into()),
                ..ListQuery::default()
            }),
            400
        );
    }

    #[test]
    fn event_ids_are_namespace_slash_name() {
        assert_eq!(parse_event_id("ml/frames-1"), Some(("ml", "frames-1")));
        assert_eq!(parse_event_id("frames-1"), None);
        assert_eq!(parse_event_id("ml/a/b"), None);
        assert_eq!(parse_event_id("/x"), None);
    }
}
