//! `POST /retrain` (and `/api/v1/retrain`): a reviewer approves (`TRIGGER_RETRAINING`) or ignores a
//! DriftEvent. The decision is written into `spec.approval` by a merge patch made *as the caller*
//! (impersonation), guarded by the event's resourceVersion, so RBAC, the CEL "decided once" rule and the
//! approval admission policy judge the real user. The controller then launches the packaging Job. Does I/O.

use axum::{
    Json,
    body::Bytes,
    extract::{State, rejection::BytesRejection},
    http::{HeaderMap, StatusCode},
};
use kube::{
    Api,
    api::{Patch, PatchParams},
};
use serde::{Deserialize, Serialize};

use super::{
    ApiError, ApiState,
    auth::Access,
    error::{KnownFields, parse_json_strict},
    events::{actionable, parse_event_id, phase},
};
use crate::{
    api::v1alpha1::{Decision, DriftEvent},
    controller::drift_event::naming::packaging_job_name,
};

/// Longest reason accepted (the CRD's limit).
pub const MAX_REASON: usize = 1024;

/// The request body.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RetrainRequest {
    /// `<namespace>/<name>` from `GET /drift-events`.
    pub event_id: String,
    /// `TRIGGER_RETRAINING` or `IGNORE`.
    pub action: String,
    /// Why (recorded in `spec.approval.reason`).
    #[serde(default)]
    pub reason: Option<String>,
}

impl KnownFields for RetrainRequest {
    const FIELDS: &'static [&'static str] = &["event_id", "action", "reason"];
}

/// The response.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct RetrainResponse {
    pub status: String,
    /// The packaging Job's name (approvals only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retraining_job_id: Option<String>,
    pub event_id: String,
    /// Who the decision is recorded for.
    pub approved_by: String,
}

/// The decision an action asks for.
pub fn decision(action: &str) -> Option<Decision> {
    match action {
        "TRIGGER_RETRAINING" => Some(Decision::Approve),
        "IGNORE" => Some(Decision::Ignore),
        _ => None,
    }
}

/// The merge patch recording a decision, conditional on the version that was checked.
pub fn approval_patch(
    decision: Decision,
    user: &str,
    reason: Option<&str>,
    resource_version: Option<&str>,
) -> serde_json::Value {
    let mut approval = serde_json::json!({"decision": decision.as_str(), "approvedBy": user});
    if let Some(reason) = reason.filter(|r| !r.trim().is_empty()) {
        approval["reason"] = serde_json::Value::String(reason.to_string());
    }
    let mut patch = serde_json::json!({"spec": {"approval": approval}});
    if let Some(rv) = resource_version {
        patch["metadata"] = serde_json::json!({"resourceVersion": rv});
    }
    patch
}

/// `POST /retrain`.
pub async fn retrain(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<RetrainResponse>), ApiError> {
    let user = state.auth.authenticate(&headers).await?;
    let request: RetrainRequest = parse_json_strict(body)?;
    let decision = decision(&request.action).ok_or_else(|| {
        ApiError::bad_request(format!(
            "unknown action {:?}: use TRIGGER_RETRAINING or IGNORE",
            request.action
        ))
    })?;
    if request
        .reason
        .as_ref()
        .is_some_and(|r| r.chars().count() > MAX_REASON)
    {
        return Err(ApiError::bad_request(format!(
            "reason must be at most {MAX_REASON} characters"
        )));
    }
    let (namespace, name) = parse_event_id(&request.event_id).ok_or_else(|| {
        ApiError::bad_request(format!(
            "invalid event_id {:?}: expected <namespace>/<name> as returned by GET /drift-events",
            request.event_id
        ))
    })?;
    // Existence is only revealed to callers who may read the event.
    state
        .auth
        .authorize(&user, &Access::get_event(namespace, name))
        .await?;
    // A fresh read: the store may lag a decision made a moment ago.
    let events: Api<DriftEvent> = Api::namespaced(state.client.clone(), namespace);
    let event = events
        .get_opt(name)
        .await
        .map_err(|e| ApiError::from_kube(&e, "read the DriftEvent"))?
        .ok_or_else(|| ApiError::not_found(format!("no DriftEvent {}", request.event_id)))?;
    let monitor = event.spec.monitor_ref.name.clone();
    state
        .auth
        .authorize(&user, &Access::approve(namespace, &monitor))
        .await?;
    if !actionable(&event) {
        let decided = event
            .spec
            .approval
            .as_ref()
            .map(|a| format!(" (decided {} by {})", a.decision.as_str(), a.approved_by))
            .unwrap_or_default();
        return Err(ApiError::conflict(format!(
            "DriftEvent {} is not in review: status {}{decided}",
            request.event_id,
            phase(&event).api_status()
        )));
    }
    if decision == Decision::Approve
        && let Some(why) = event.nothing_to_trigger()
    {
        return Err(ApiError::conflict(format!(
            "DriftEvent {} has nothing to trigger: {why}. Use IGNORE, or set spec.retraining on the DriftMonitor \
             first",
            request.event_id
        )));
    }
    let patch = approval_patch(
        decision,
        &user.name,
        request.reason.as_deref(),
        event.metadata.resource_version.as_deref(),
    );
    let as_user: Api<DriftEvent> = Api::namespaced(state.auth.client_as(&user)?, namespace);
    as_user
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| ApiError::from_kube(&e, "record the decision"))?;
    tracing::info!(
        event = %request.event_id,
        decision = decision.as_str(),
        user = %user.name,
        "decision recorded through the API"
    );
    Ok(match decision {
        Decision::Approve => (
            StatusCode::ACCEPTED,
            Json(RetrainResponse {
                status: "Retraining pipeline triggered successfully".to_string(),
                retraining_job_id: Some(packaging_job_name(&event)),
                event_id: request.event_id,
                approved_by: user.name,
            }),
        ),
        Decision::Ignore => (
            StatusCode::OK,
            Json(RetrainResponse {
                status: "Drift event ignored".to_string(),
                retraining_job_id: None,
                event_id: request.event_id,
                approved_by: user.name,
            }),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_map_to_decisions() {
        assert_eq!(decision("TRIGGER_RETRAINING"), Some(Decision::Approve));
        assert_eq!(decision("IGNORE"), Some(Decision::Ignore));
        assert_eq!(decision("ignore"), None);
        assert_eq!(decision("DELETE"), None);
    }

    #[test]
    fn the_patch_records_who_decided_and_why_against_the_checked_version() {
        let patch = approval_patch(
            Decision::Approve,
            "alice",
            Some("new camera firmware"),
            Some("42"),
        );
        assert_eq!(
            patch,
            serde_json::json!({
                "spec": {"approval": {"decision": "Approve", "approvedBy": "alice", "reason": "new camera firmware"}},
                "metadata": {"resourceVersion": "42"}
            })
        );
        let patch = approval_patch(Decision::Ignore, "bob", Some("  "), None);
        assert_eq!(
            patch,
            serde_json::json!({"spec": {"approval": {"decision": "Ignore", "approvedBy": "bob"}}})
        );
    }

    #[test]
    fn the_body_must_name_an_event_and_an_action() {
        let ok: RetrainRequest = serde_json::from_str(r#"{"event_id":"ml/e","action":"IGNORE"}"#).unwrap();
        assert_eq!(ok.reason, None);
        assert!(serde_json::from_str::<RetrainRequest>(r#"{"action":"IGNORE"}"#).is_err());
    }

    #[test]
    fn the_known_fields_are_exactly_the_fields_of_the_body() {
        // Every listed name is accepted by the (field-denying) type…
        let all: serde_json::Map<String, serde_json::Value> = RetrainRequest::FIELDS
            .iter()
            .map(|f| (f.to_string(), serde_json::Value::String("ml/e".into())))
            .collect();
        assert!(serde_json::from_value::<RetrainRequest>(serde_json::Value::Object(all)).is_ok());
        // …and a name outside the list is not.
        assert!(
            serde_json::from_str::<RetrainRequest>(r#"{"event_id":"ml/e","action":"IGNORE","x":1}"#).is_err()
        );
    }
}
