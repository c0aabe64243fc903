//! `POST /api/v1/alertmanager`: the Alertmanager webhook receiver (payload version 4). Firing alerts with
//! `namespace` and `monitor` labels create or update that monitor's open DriftEvent with the controller's
//! own rules (`raise::plan`: one open event per monitor, deterministic names, the Ignore cooldown), so an
//! alert about a check the controller already raised an event for is recognised and counted once.
//! Resolved alerts are recorded on the open event (annotation). The whole payload is validated before
//! anything is written: malformed or unknown → 400 with the reason, nothing written. Parsing and planning
//! are pure; the handler does I/O.

use std::collections::BTreeMap;

use axum::{
    Json,
    body::Bytes,
    extract::{State, rejection::BytesRejection},
    http::HeaderMap,
};
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{
    Api, ResourceExt,
    api::{ListParams, Patch, PatchParams},
};
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiState, auth::Access, error::parse_json};
use crate::{
    api::{
        parse_duration,
        v1alpha1::{DataSource, DriftEvent, DriftMonitor, Method, SampleCounts, TimeWindow},
    },
    controller::drift_monitor::raise::{self, EventPlan},
    job::result::{CheckOutcome, ReportWindows, ScoreReport},
    k8s::apply,
};

/// `spec.source` of events raised from an alert.
pub const SOURCE_ALERTMANAGER: &str = "alertmanager";
/// Annotation on the open event recording the last resolved notification.
pub const RESOLVED_ANNOTATION: &str = "driftwatch.dev/alert-resolved-at";
/// Most alerts accepted in one notification.
pub const MAX_ALERTS: usize = 1000;

/// The webhook payload (Alertmanager's `version: "4"`).
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    pub version: String,
    #[serde(default)]
    pub group_key: Option<String>,
    #[serde(default)]
    pub truncated_alerts: Option<u64>,
    pub status: String,
    #[serde(default)]
    pub receiver: Option<String>,
    #[serde(default)]
    pub group_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub common_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub common_annotations: BTreeMap<String, String>,
    #[serde(default, rename = "externalURL")]
    pub external_url: Option<String>,
    pub alerts: Vec<Alert>,
}

/// One alert of a notification.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    pub status: String,
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub starts_at: Option<String>,
    #[serde(default)]
    pub ends_at: Option<String>,
    #[serde(default, rename = "generatorURL")]
    pub generator_url: Option<String>,
    #[serde(default)]
    pub fingerprint: Option<String>,
}

/// A validated alert.
#[derive(Clone, Debug, PartialEq)]
pub struct DriftAlert {
    pub name: String,
    pub firing: bool,
    pub namespace: String,
    pub monitor: String,
    pub starts_at: Timestamp,
    pub ends_at: Option<Timestamp>,
    pub fingerprint: String,
    pub method: Method,
    pub source: DataSource,
    pub score: Option<f64>,
    pub threshold: Option<f64>,
}

/// What happened to one alert.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct AlertResult {
    /// `<alertname> <namespace>/<monitor>`.
    pub alert: String,
    /// created, updated, already-counted, cooldown, resolved-recorded or resolved-without-open-event.
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ReceiveResponse {
    pub results: Vec<AlertResult>,
}

fn dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

fn number(map: &BTreeMap<String, String>, keys: &[&str]) -> Option<f64> {
    keys.iter()
        .filter_map(|k| map.get(*k))
        .find_map(|v| v.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite())
}

/// Validates a notification (pure): every alert must be firing or resolved, carry `namespace` and
/// `monitor` labels naming Kubernetes objects, and have a valid `startsAt`.
pub fn validate(notification: &Notification) -> Result<Vec<DriftAlert>, ApiError> {
    if notification.version != "4" {
        return Err(ApiError::bad_request(format!(
            "unsupported Alertmanager webhook version {:?}: this receiver reads version \"4\"",
            notification.version
        )));
    }
    if !matches!(notification.status.as_str(), "firing" | "resolved") {
        return Err(ApiError::bad_request(format!(
            "notification status must be firing or resolved, not {:?}",
            notification.status
        )));
    }
    if notification.alerts.is_empty() {
        return Err(ApiError::bad_request("the notification carries no alerts"));
    }
    if notification.alerts.len() > MAX_ALERTS {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_ALERTS} alerts per notification"
        )));
    }
    notification
        .alerts
        .iter()
        .enumerate()
        .map(|(i, alert)| {
            let name = alert.labels.get("alertname").cloned().unwrap_or_else(|| "alert".to_string());
            let bad = |why: String| ApiError::bad_request(format!("alert {i} ({name}): {why}"));
            let firing = match alert.status.as_str() {
                "firing" => true,
                "resolved" => false,
                other => return Err(bad(format!("status must be firing or resolved, not {other:?}"))),
            };
            let label = |key: &str| {
                alert
                    .labels
                    .get(key)
                    .filter(|v| dns_name(v))
                    .cloned()
                    .ok_or_else(|| {
                        bad(format!(
                            "needs a `{key}` label naming the DriftMonitor's {key} (the shipped alert rules add it)"
                        ))
                    })
            };
            let namespace = label("namespace")?;
            let monitor = label("monitor")?;
            let starts_at: Timestamp = alert
                .starts_at
                .as_deref()
                .ok_or_else(|| bad("startsAt is missing".to_string()))?
                .parse()
                .map_err(|e| bad(format!("startsAt is not an RFC 3339 time: {e}")))?;
            let ends_at = alert
                .ends_at
                .as_deref()
                .and_then(|t| t.parse::<Timestamp>().ok())
                .filter(|t| t.as_second() > 0);
            let method = match alert.labels.get("method") {
                None => Method::KlDivergence,
                Some(m) => serde_json::from_value(serde_json::Value::String(m.clone()))
                    .map_err(|_| bad(format!("unknown method label {m:?}")))?,
            };
            let source = match alert.labels.get("source") {
                None => DataSource::Embeddings,
                Some(s) => serde_json::from_value(serde_json::Value::String(s.clone()))
                    .map_err(|_| bad(format!("unknown source label {s:?}")))?,
            };
            Ok(DriftAlert {
                firing,
                fingerprint: alert
                    .fingerprint
                    .clone()
                    .filter(|f| !f.is_empty())
                    .unwrap_or_else(|| format!("{namespace}-{monitor}-{}", starts_at.as_second())),
                score: number(&alert.annotations, &["value", "score", "drift_score"])
                    .or_else(|| number(&alert.labels, &["score"])),
                threshold: number(&alert.annotations, &["threshold"]).or_else(|| number(&alert.labels, &["threshold"])),
                name,
                namespace,
                monitor,
                starts_at,
                ends_at,
                method,
                source,
            })
        })
        .collect()
}

fn minute(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second() - t.as_second().rem_euclid(60)).unwrap_or(t)
}

fn short(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(12)
        .collect::<String>()
        .to_lowercase()
}

/// The check an alert stands for (pure). When the monitor's last check found drift, the alert is about that
/// check (the metric it fires on comes from it): same check id, slot and facts, so the controller's event
/// for it and the alert's are one. Otherwise the alert's own facts, under an id of its own.
pub fn alert_check(alert: &DriftAlert, monitor: &DriftMonitor) -> (String, Timestamp, CheckOutcome) {
    if let Some(status) = &monitor.status
        && let Some(last) = status.last_result.as_ref().filter(|r| r.drift_detected)
    {
        let slot = status
            .history
            .iter()
            .find(|h| h.check_id == last.check_id)
            .map(|h| h.time.0)
            .or_else(|| status.last_schedule_time.as_ref().map(|t| t.0));
        if let Some(slot) = slot.filter(|s| *s <= alert.starts_at) {
            let outcome = CheckOutcome {
                windows: ReportWindows {
                    reference: last.windows.reference.clone(),
                    comparison: last.windows.comparison.clone(),
                },
                samples: last.samples.clone(),
                scores: last
                    .scores
                    .iter()
                    .map(|s| ScoreReport {
                        method: s.method,
                        source: s.source,
                        score: s.score,
                        threshold: s.threshold,
                        p_value: s.p_value,
                        adjusted_p_value: s.adjusted_p_value,
                        drifted: s.drifted,
                        n_reference: u64::try_from(last.samples.reference).unwrap_or(0),
                        n_comparison: u64::try_from(last.samples.comparison).unwrap_or(0),
                        seconds: 0.0,
                    })
                    .collect(),
                drift_detected: true,
                combined_p_value: last.combined_p_value,
                alpha: last.alpha,
                duration_seconds: last.duration_seconds,
                skipped: None,
                summary: None,
                explanation: None,
            };
            return (last.check_id.clone(), slot, outcome);
        }
    }
    let slot = minute(alert.starts_at);
    let check_id = format!(
        "alert-{}-{}",
        short(&alert.fingerprint),
        crate::controller::drift_monitor::desired::slot_stamp(slot)
    );
    let outcome = CheckOutcome {
        windows: ReportWindows {
            reference: TimeWindow::default(),
            comparison: TimeWindow {
                end: Some(Time(alert.starts_at)),
                ..TimeWindow::default()
            },
        },
        samples: SampleCounts::default(),
        scores: vec![ScoreReport {
            method: alert.method,
            source: alert.source,
            score: alert.score.unwrap_or(0.0),
            threshold: alert.threshold,
            p_value: None,
            adjusted_p_value: None,
            drifted: true,
            n_reference: 0,
            n_comparison: 0,
            seconds: 0.0,
        }],
        drift_detected: true,
        combined_p_value: None,
        alpha: None,
        duration_seconds: 0.0,
        skipped: None,
        summary: None,
        explanation: None,
    };
    (check_id, slot, outcome)
}

/// What a firing alert does to the monitor's events (pure): the controller's plan, with events raised
/// from an alert marked as such.
pub fn plan(alert: &DriftAlert, monitor: &DriftMonitor, events: &[DriftEvent], now: Timestamp) -> EventPlan {
    let cooldown =
        parse_duration(&monitor.spec.events.cooldown).unwrap_or(std::time::Duration::from_secs(86_400));
    let (check_id, slot, outcome) = alert_check(alert, monitor);
    let mut plan = raise::plan(
        &alert.monitor,
        &alert.namespace,
        events,
        cooldown,
        raise::Firing {
            check_id: &check_id,
            slot,
            outcome: &outcome,
        },
        now,
    );
    if let EventPlan::Create(event) = &mut plan {
        event.spec.source = Some(SOURCE_ALERTMANAGER.to_string());
        if let Some(status) = event.status.as_mut()
            && let Some(first) = status.transitions.first_mut()
        {
            first.message = Some(format!(
                "raised by Alertmanager alert {} ({check_id})",
                alert.name
            ));
        }
    }
    plan
}

/// `POST /api/v1/alertmanager`.
pub async fn receive(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ReceiveResponse>, ApiError> {
    let user = state.auth.authenticate(&headers).await?;
    let notification: Notification = parse_json(body)?;
    let alerts = validate(&notification)?;
    // Every check before any write.
    let mut namespaces: Vec<&str> = alerts.iter().map(|a| a.namespace.as_str()).collect();
    namespaces.sort_unstable();
    namespaces.dedup();
    for ns in &namespaces {
        state.auth.authorize(&user, &Access::create_events(ns)).await?;
    }
    let mut monitors = BTreeMap::new();
    for alert in &alerts {
        let key = (alert.namespace.clone(), alert.monitor.clone());
        if monitors.contains_key(&key) {
            continue;
        }
        let monitor = Api::<DriftMonitor>::namespaced(state.client.clone(), &alert.namespace)
            .get_opt(&alert.monitor)
            .await
            .map_err(|e| ApiError::from_kube(&e, "read the DriftMonitor"))?
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "alert {} names DriftMonitor {}/{}, which does not exist",
                    alert.name, alert.namespace, alert.monitor
                ))
            })?;
        monitors.insert(key, monitor);
    }
    let mut results = Vec::new();
    for alert in &alerts {
        let Some(monitor) = monitors.get(&(alert.namespace.clone(), alert.monitor.clone())) else {
            continue;
        };
        results.push(handle(&state, alert, monitor).await?);
    }
    tracing::info!(
        receiver = notification.receiver.as_deref().unwrap_or_default(),
        alerts = results.len(),
        "Alertmanager notification processed"
    );
    Ok(Json(ReceiveResponse { results }))
}

async fn handle(
    state: &ApiState,
    alert: &DriftAlert,
    monitor: &DriftMonitor,
) -> Result<AlertResult, ApiError> {
    let api: Api<DriftEvent> = Api::namespaced(state.client.clone(), &alert.namespace);
    let events: Vec<DriftEvent> = api
        .list(&ListParams::default())
        .await
        .map_err(|e| ApiError::from_kube(&e, "list DriftEvents"))?
        .items
        .into_iter()
        .filter(|e| e.spec.monitor_ref.name == alert.monitor)
        .collect();
    let label = format!("{} {}/{}", alert.name, alert.namespace, alert.monitor);
    let id = |name: &str| Some(format!("{}/{name}", alert.namespace));
    let write_error = |e: kube::Error| ApiError::from_kube(&e, "write the DriftEvent");
    if !alert.firing {
        let Some(open) = raise::open_event(&events) else {
            return Ok(AlertResult {
                alert: label,
                outcome: "resolved-without-open-event".into(),
                event_id: None,
            });
        };
        let name = open.name_any();
        let at = alert.ends_at.unwrap_or(alert.starts_at).to_string();
        let patch = serde_json::json!({"metadata": {"annotations": {RESOLVED_ANNOTATION: at}}});
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(write_error)?;
        return Ok(AlertResult {
            alert: label,
            outcome: "resolved-recorded".into(),
            event_id: id(&name),
        });
    }
    Ok(match plan(alert, monitor, &events, Timestamp::now()) {
        EventPlan::Create(event) => {
            let name = event.name_any();
            if events.iter().any(|e| e.name_any() == name) {
                // The controller's event for the same check, already decided: nothing new to raise.
                return Ok(AlertResult {
                    alert: label,
                    outcome: "already-counted".into(),
                    event_id: id(&name),
                });
            }
            let mut spec_only = (*event).clone();
            let status = spec_only.status.take();
            apply::apply(&api, &spec_only).await.map_err(write_error)?;
            if let Some(status) = status {
                apply::apply_status(&api, &name, &status, None)
                    .await
                    .map_err(write_error)?;
            }
            AlertResult {
                alert: label,
                outcome: "created".into(),
                event_id: id(&name),
            }
        }
        EventPlan::Update { name, status } => {
            let version = events
                .iter()
                .find(|e| e.name_any() == name)
                .and_then(|e| e.resource_version());
            apply::apply_status(&api, &name, &status, version.as_deref())
                .await
                .map_err(write_error)?;
            AlertResult {
                alert: label,
                outcome: "updated".into(),
                event_id: id(&name),
            }
        }
        EventPlan::AlreadyCounted { name } => AlertResult {
            alert: label,
            outcome: "already-counted".into(),
            event_id: id(&name),
        },
        EventPlan::Cooldown { until } => AlertResult {
            alert: format!("{label} (cooldown until {until})"),
            outcome: "cooldown".into(),
            event_id: None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::api::events::tests::event;

    fn notification(alerts: serde_json::Value) -> Notification {
        serde_json::from_value(serde_json::json!({
            "version": "4", "groupKey": "{}:{alertname=\"HighDriftDetected\"}", "truncatedAlerts": 0,
            "status": "firing", "receiver": "driftwatch", "groupLabels": {"alertname": "HighDriftDetected"},
            "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://alertmanager:9093",
            "alerts": alerts
        }))
        .unwrap()
    }

    fn firing(ns: &str, monitor: &str) -> serde_json::Value {
        serde_json::json!({
            "status": "firing",
            "labels": {"alertname": "HighDriftDetected", "namespace": ns, "monitor": monitor,
                       "method": "kl_divergence", "source": "embeddings", "severity": "warning"},
            "annotations": {"value": "0.27", "summary": "drift"},
            "startsAt": "2026-11-26T03:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus/graph", "fingerprint": "4a9b1c2d3e4f5a6b"
        })
    }

    fn monitor() -> DriftMonitor {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "driftwatch.dev/v1alpha1", "kind": "DriftMonitor",
            "metadata": {"name": "frames", "namespace": "ml"},
            "spec": {"schedule": "0 2 * * *",
                     "source": {"qdrant": {"url": "http://q:6334", "collection": "c"}},
                     "windows": {"reference": {"duration": "7d"}, "comparison": {"duration": "24h"}}}
        }))
        .unwrap()
    }

    #[test]
    fn a_firing_alert_with_namespace_and_monitor_labels_is_read() {
        let alerts = validate(&notification(serde_json::json!([firing("ml", "frames")]))).unwrap();
        assert_eq!(alerts.len(), 1);
        assert_eq!(
            (alerts[0].namespace.as_str(), alerts[0].monitor.as_str()),
            ("ml", "frames")
        );
        assert_eq!(alerts[0].score, Some(0.27));
        assert_eq!(
            alerts[0].ends_at, None,
            "Alertmanager's zero time means still firing"
        );
    }

    #[test]
    fn malformed_notifications_are_refused_with_the_reason() {
        let mut wrong_version = notification(serde_json::json!([firing("ml", "frames")]));
        wrong_version.version = "3".into();
        assert!(validate(&wrong_version).unwrap_err().message.contains("version"));
        let mut no_monitor = firing("ml", "frames");
        no_monitor["labels"].as_object_mut().unwrap().remove("monitor");
        let err = validate(&notification(serde_json::json!([no_monitor]))).unwrap_err();
        assert!(err.message.contains("`monitor` label"), "{}", err.message);
        let mut bad_time = firing("ml", "frames");
        bad_time["startsAt"] = "yesterday".into();
        assert!(validate(&notification(serde_json::json!([bad_time]))).is_err());
        assert!(validate(&notification(serde_json::json!([]))).is_err());
    }

    #[test]
    fn an_alert_without_a_drifted_check_raises_its_own_event() {
        let alert = &validate(&notification(serde_json::json!([firing("ml", "frames")]))).unwrap()[0];
        let now: Timestamp = "2026-11-26T03:00:30Z".parse().unwrap();
        match plan(alert, &monitor(), &[], now) {
            EventPlan::Create(e) => {
                assert_eq!(e.metadata.name.as_deref(), Some("frames-202611260300"));
                assert_eq!(e.spec.source.as_deref(), Some(SOURCE_ALERTMANAGER));
                assert_eq!(e.spec.drift_score, 0.27);
            }
            other => panic!("expected a new event, got {other:?}"),
        }
    }

    #[test]
    fn an_alert_joins_the_monitors_open_event_and_counts_once() {
        let alert = &validate(&notification(serde_json::json!([firing("ml", "frames")]))).unwrap()[0];
        let now: Timestamp = "2026-11-26T03:00:30Z".parse().unwrap();
        let open = (*event(
            "ml",
            "frames-202611260200",
            "frames",
            "2026-11-26T02:00:00Z",
            None,
        ))
        .clone();
        let EventPlan::Update { name, status } = plan(alert, &monitor(), std::slice::from_ref(&open), now)
        else {
            panic!("expected an update of the open event");
        };
        assert_eq!(name, "frames-202611260200");
        let mut counted = open.clone();
        counted.status = Some(*status);
        assert!(matches!(
            plan(alert, &monitor(), &[counted], now),
            EventPlan::AlreadyCounted { .. }
        ));
    }
}
