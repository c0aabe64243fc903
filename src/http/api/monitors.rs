//! `GET /api/v1/monitors`: DriftMonitors with their conditions, last result and history, for the
//! dashboard. The view is pure; the handler reads the stores.

use std::sync::Arc;

use axum::{
    Json,
    extract::{Query, State, rejection::QueryRejection},
    http::HeaderMap,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiState, auth::Access};
use crate::api::v1alpha1::{CheckResultSummary, DetectorSpec, DriftMonitor, HistoryEntry};

/// One monitor for the dashboard.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct MonitorView {
    pub namespace: String,
    pub name: String,
    pub schedule: String,
    pub time_zone: Option<String>,
    pub suspend: bool,
    pub collection: String,
    /// Detectors as configured (empty: the recommended defaults).
    pub detectors: Vec<DetectorSpec>,
    pub conditions: Vec<Condition>,
    pub last_schedule_time: Option<String>,
    pub last_successful_time: Option<String>,
    pub next_schedule_time: Option<String>,
    pub last_score: Option<f64>,
    pub last_result: Option<CheckResultSummary>,
    /// Recent checks, oldest first.
    pub history: Vec<HistoryEntry>,
    /// The event in review, as an `event_id`.
    pub open_event: Option<String>,
}

#[derive(Serialize)]
pub struct MonitorList {
    pub monitors: Vec<MonitorView>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct MonitorQuery {
    pub namespace: Option<String>,
}

/// The dashboard's view of a monitor.
pub fn view(monitor: &DriftMonitor) -> MonitorView {
    let namespace = monitor.metadata.namespace.clone().unwrap_or_default();
    let status = monitor.status.clone().unwrap_or_default();
    let time = |t: &Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>| {
        t.as_ref().map(|t| t.0.to_string())
    };
    MonitorView {
        name: monitor.metadata.name.clone().unwrap_or_default(),
        schedule: monitor.spec.schedule.clone(),
        time_zone: monitor.spec.time_zone.clone(),
        suspend: monitor.spec.suspend,
        collection: monitor.spec.source.qdrant.collection.clone(),
        detectors: monitor.spec.detectors.clone(),
        last_schedule_time: time(&status.last_schedule_time),
        last_successful_time: time(&status.last_successful_time),
        next_schedule_time: time(&status.next_schedule_time),
        last_score: status.last_score,
        open_event: status.open_event.as_ref().map(|e| format!("{namespace}/{e}")),
        conditions: status.conditions,
        last_result: status.last_result,
        history: status.history,
        namespace,
    }
}

/// Monitors of a namespace (or all), sorted by namespace and name.
pub fn list_views(monitors: &[Arc<DriftMonitor>], namespace: Option<&str>) -> Vec<MonitorView> {
    let mut views: Vec<MonitorView> = monitors
        .iter()
        .filter(|m| namespace.is_none_or(|ns| m.metadata.namespace.as_deref() == Some(ns)))
        .map(|m| view(m))
        .collect();
    views.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    views
}

/// `GET /api/v1/monitors`.
pub async fn list(
    State(state): State<ApiState>,
    headers: HeaderMap,
    query: Result<Query<MonitorQuery>, QueryRejection>,
) -> Result<Json<MonitorList>, ApiError> {
    let user = state.auth.authenticate(&headers).await?;
    let Query(query) =
        query.map_err(|e| ApiError::bad_request(format!("invalid query: {}", e.body_text())))?;
    let namespace = query.namespace.as_deref().filter(|n| !n.is_empty());
    state
        .auth
        .authorize(&user, &Access::list_monitors(namespace))
        .await?;
    if !state.stores.is_ready() {
        return Err(ApiError::unavailable(
            "the monitor cache is still syncing; try again shortly",
        ));
    }
    Ok(Json(MonitorList {
        monitors: list_views(&state.stores.monitors(), namespace),
    }))
}
