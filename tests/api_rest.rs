//! The governance REST API on a real kube-apiserver: the original list and retrain shapes, filters and
//! pagination, every error path, decisions landing in the DriftEvent as the authenticated user, and RBAC
//! with real ServiceAccount tokens (viewer vs approver, approval scoped to one monitor).

#[path = "support/api_server.rs"]
mod api_server;
#[path = "support/control_plane.rs"]
mod control_plane;

use api_server::{
    ADMIN, event, get, post, request, roles, seed_event, seed_monitor, service_account_token, start,
};
use control_plane::ControlPlane;
use driftwatch::{
    api::v1alpha1::{Decision, DriftEvent},
    http::api::{ApiSettings, AuthMode},
};
use kube::{
    Api,
    api::{Patch, PatchParams},
};
use serde_json::{Value, json};

fn ids(body: &Value) -> Vec<String> {
    body["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["event_id"].as_str().expect("id").to_string())
        .collect()
}

#[tokio::test]
async fn drift_events_are_listed_in_the_original_shape_filtered_and_paginated_newest_first() {
    let cp = ControlPlane::shared();
    let client = cp.client().await;
    let ns = cp.namespace("api-list").await;
    seed_event(
        &client,
        &ns,
        event("frames-202611240200", "frames", "2026-11-24T02:00:00Z", 0.12),
        Some("Ignored"),
    )
    .await;
    seed_event(
        &client,
        &ns,
        event("frames-202611250200", "frames", "2026-11-25T02:00:00Z", 0.15),
        Some("Actioned"),
    )
    .await;
    seed_event(
        &client,
        &ns,
        event("frames-202611260200", "frames", "2026-11-26T02:00:00Z", 0.31),
        Some("NeedsReview"),
    )
    .await;
    seed_event(
        &client,
        &ns,
        event("audio-202611230200", "audio", "2026-11-23T02:00:00Z", 0.22),
        Some("RetrainingFailed"),
    )
    .await;
    seed_event(
        &client,
        &ns,
        event("audio-202611260100", "audio", "2026-11-26T01:00:00Z", 0.18),
        None,
    )
    .await;
    let server = start(cp, AuthMode::Enabled, ApiSettings::default()).await;
    api_server::wait_for_events(server.addr, &ns, 5).await;

    let all = get(server.addr, &format!("/drift-events?namespace={ns}"), Some(ADMIN)).await;
    assert_eq!(all.status, 200, "{}", all.body);
    let body = all.json();
    assert_eq!(
        ids(&body),
        [
            format!("{ns}/frames-202611260200"),
            format!("{ns}/audio-202611260100"),
            format!("{ns}/frames-202611250200"),
            format!("{ns}/frames-202611240200"),
            format!("{ns}/audio-202611230200"),
        ]
    );
    let first = &body["events"][0];
    let keys: Vec<&str> = first
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "comparison_window",
            "drift_score",
            "event_id",
            "monitor",
            "namespace",
            "reference_window",
            "status",
            "timestamp"
        ]
    );
    assert_eq!(first["status"], "NEEDS_REVIEW");
    assert_eq!(first["drift_score"], 0.31);
    assert_eq!(first["timestamp"], "2026-11-26T02:00:00Z");
    assert_eq!(
        first["reference_window"],
        json!({"start_time": "2026-11-18T02:00:00Z", "end_time": "2026-11-25T02:00:00Z"})
    );
    assert_eq!(
        body["events"][1]["status"], "NEEDS_REVIEW",
        "no status yet reads as in review"
    );
    assert_eq!(body["events"][4]["status"], "RETRAINING_FAILED");

    // The same under /api/v1/.
    let v1 = get(
        server.addr,
        &format!("/api/v1/drift-events?namespace={ns}"),
        Some(ADMIN),
    )
    .await;
    assert_eq!(v1.json(), body);

    let by_monitor = get(
        server.addr,
        &format!("/drift-events?namespace={ns}&monitor=audio"),
        Some(ADMIN),
    )
    .await;
    assert_eq!(
        ids(&by_monitor.json()),
        [
            format!("{ns}/audio-202611260100"),
            format!("{ns}/audio-202611230200")
        ]
    );
    let by_status = get(
        server.addr,
        &format!("/drift-events?namespace={ns}&status=IGNORED,ACTIONED"),
        Some(ADMIN),
    )
    .await;
    assert_eq!(
        ids(&by_status.json()),
        [
            format!("{ns}/frames-202611250200"),
            format!("{ns}/frames-202611240200")
        ]
    );

    // Pages of two, following the continue token, give the whole list once.
    let mut seen = Vec::new();
    let mut path = format!("/drift-events?namespace={ns}&limit=2");
    let mut pages = 0;
    loop {
        let page = get(server.addr, &path, Some(ADMIN)).await.json();
        pages += 1;
        assert!(page["events"].as_array().expect("events").len() <= 2);
        seen.extend(ids(&page));
        match page["continue"].as_str() {
            Some(token) => path = format!("/drift-events?namespace={ns}&limit=2&continue={token}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ids(&body));

    for bad in [
        "status=DONE",
        "limit=0",
        "limit=abc",
        "continue=xyz",
        "colour=blue",
    ] {
        let r = get(
            server.addr,
            &format!("/drift-events?namespace={ns}&{bad}"),
            Some(ADMIN),
        )
        .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
        assert_eq!(r.json()["error"]["reason"], "BadRequest", "{bad}");
        assert!(
            !r.json()["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .is_empty()
        );
    }
}

#[tokio::test]
async fn monitors_are_served_with_conditions_last_result_and_history() {
    let cp = ControlPlane::shared();
    let client = cp.client().await;
    let ns = cp.namespace("api-monitors").await;
    seed_monitor(
        &client,
        &ns,
        "frames",
        api_server::monitor_status(6, Some("frames-202611260200")),
    )
    .await;
    let server = start(cp, AuthMode::Enabled, ApiSettings::default()).await;
    let mut body = Value::Null;
    for _ in 0..200 {
        body = get(
            server.addr,
            &format!("/api/v1/monitors?namespace={ns}"),
            Some(ADMIN),
        )
        .await
        .json();
        if body["monitors"].as_array().is_some_and(|m| !m.is_empty()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let monitor = &body["monitors"][0];
    assert_eq!(monitor["name"], "frames");
    assert_eq!(monitor["schedule"], "0 2 * * *");
    assert_eq!(monitor["history"].as_array().map(Vec::len), Some(6));
    assert_eq!(monitor["conditions"][1]["type"], "Drifted");
    assert_eq!(monitor["open_event"], format!("{ns}/frames-202611260200"));
}

#[tokio::test]
async fn retrain_errors_have_the_documented_status_and_a_json_reason() {
    let cp = ControlPlane::shared();
    let client = cp.client().await;
    let ns = cp.namespace("api-errors").await;
    seed_event(
        &client,
        &ns,
        event("frames-202611260200", "frames", "2026-11-26T02:00:00Z", 0.31),
        Some("NeedsReview"),
    )
    .await;
    seed_event(
        &client,
        &ns,
        event("frames-202611250200", "frames", "2026-11-25T02:00:00Z", 0.2),
        Some("Actioned"),
    )
    .await;
    let server = start(cp, AuthMode::Enabled, ApiSettings::default()).await;
    let id = format!("{ns}/frames-202611260200");
    let reason = |r: &api_server::Response| {
        r.json()["error"]["reason"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };

    // 401: no token, a token the API server does not know.
    let r = post(
        server.addr,
        "/retrain",
        None,
        &json!({"event_id": id, "action": "IGNORE"}),
    )
    .await;
    assert_eq!((r.status, reason(&r)), (401, "Unauthorized".to_string()));
    let r = get(server.addr, "/drift-events", Some("not-a-real-token")).await;
    assert_eq!((r.status, reason(&r)), (401, "Unauthorized".to_string()));

    // 400: not JSON, missing fields, unknown action, malformed event id, an over-long reason.
    for body in [
        "{not json",
        r#"{"action": "IGNORE"}"#,
        &json!({"event_id": id, "action": "DELETE"}).to_string(),
        &json!({"event_id": "no-slash", "action": "IGNORE"}).to_string(),
        &json!({"event_id": id, "action": "IGNORE", "reason": "x".repeat(1025)}).to_string(),
    ] {
        let r = request(server.addr, "POST", "/retrain", Some(ADMIN), Some(body)).await;
        assert_eq!(
            (r.status, reason(&r)),
            (400, "BadRequest".to_string()),
            "{body}: {}",
            r.body
        );
    }
    // 400 naming every unknown field: a typo must not record a decision without its reason.
    let r = request(
        server.addr,
        "POST",
        "/retrain",
        Some(ADMIN),
        Some(&json!({"event_id": id, "action": "IGNORE", "reasn": "typo", "force": true}).to_string()),
    )
    .await;
    assert_eq!(
        (r.status, reason(&r)),
        (400, "BadRequest".to_string()),
        "{}",
        r.body
    );
    let message = r.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        message.contains("\"reasn\"") && message.contains("\"force\""),
        "{message}"
    );
    // 413: a body over the limit.
    let huge = json!({"event_id": id, "action": "IGNORE", "reason": "x".repeat(100_000)});
    let r = post(server.addr, "/retrain", Some(ADMIN), &huge).await;
    assert_eq!(r.status, 413, "{}", r.body);

    // 404: no such event.
    let r = post(
        server.addr,
        "/retrain",
        Some(ADMIN),
        &json!({"event_id": format!("{ns}/nope"), "action": "IGNORE"}),
    )
    .await;
    assert_eq!((r.status, reason(&r)), (404, "NotFound".to_string()));

    // 409: not in review.
    let done = format!("{ns}/frames-202611250200");
    let r = post(
        server.addr,
        "/api/v1/retrain",
        Some(ADMIN),
        &json!({"event_id": done, "action": "TRIGGER_RETRAINING"}),
    )
    .await;
    assert_eq!(
        (r.status, reason(&r)),
        (409, "Conflict".to_string()),
        "{}",
        r.body
    );

    // 409: nothing to trigger (the monitor has no spec.retraining), with the reason; the detail says so too.
    seed_event(
        &client,
        &ns,
        event("bare-202611260200", "bare", "2026-11-26T02:00:00Z", 0.5),
        Some("NeedsReview"),
    )
    .await;
    Api::<DriftEvent>::namespaced(client.clone(), &ns)
        .patch_status(
            "bare-202611260200",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"retrainingTarget": {"summary": "None",
                "reason": "DriftMonitor bare has no spec.retraining: approving would trigger nothing"}}})),
        )
        .await
        .unwrap();
    let bare = format!("{ns}/bare-202611260200");
    let detail = eventually_detail(server.addr, &bare).await;
    assert!(
        detail["nothing_to_trigger"]
            .as_str()
            .unwrap_or_default()
            .contains("has no spec.retraining"),
        "{detail}"
    );
    let r = post(
        server.addr,
        "/retrain",
        Some(ADMIN),
        &json!({"event_id": bare, "action": "TRIGGER_RETRAINING"}),
    )
    .await;
    assert_eq!(
        (r.status, reason(&r)),
        (409, "Conflict".to_string()),
        "{}",
        r.body
    );
    assert!(r.body.contains("nothing to trigger"), "{}", r.body);
    let r = post(
        server.addr,
        "/retrain",
        Some(ADMIN),
        &json!({"event_id": bare, "action": "IGNORE"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);

    // 403: a user without rights.
    let stranger = service_account_token(&client, &ns, "stranger", None).await;
    let r = get(
        server.addr,
        &format!("/drift-events?namespace={ns}"),
        Some(&stranger),
    )
    .await;
    assert_eq!((r.status, reason(&r)), (403, "Forbidden".to_string()));
    let r = post(
        server.addr,
        "/retrain",
        Some(&stranger),
        &json!({"event_id": id, "action": "IGNORE"}),
    )
    .await;
    assert_eq!((r.status, reason(&r)), (403, "Forbidden".to_string()));

    // Nothing was written by any of these.
    let stored = Api::<DriftEvent>::namespaced(client, &ns)
        .get("frames-202611260200")
        .await
        .expect("event");
    assert_eq!(stored.spec.approval, None);
}

#[tokio::test]
async fn viewers_read_and_approvers_decide_with_real_service_account_tokens() {
    let cp = ControlPlane::shared();
    let client = cp.client().await;
    let ns = cp.namespace("api-rbac").await;
    roles(&client, &ns, &["frames"]).await;
    let viewer = service_account_token(&client, &ns, "viewer", Some("driftwatch-viewer")).await;
    let approver = service_account_token(&client, &ns, "approver", Some("driftwatch-approver")).await;
    seed_event(
        &client,
        &ns,
        event("frames-202611260200", "frames", "2026-11-26T02:00:00Z", 0.31),
        Some("NeedsReview"),
    )
    .await;
    seed_event(
        &client,
        &ns,
        event("frames-202611250200", "frames", "2026-11-25T02:00:00Z", 0.21),
        Some("NeedsReview"),
    )
    .await;
    seed_event(
        &client,
        &ns,
        event("audio-202611260200", "audio", "2026-11-26T02:00:00Z", 0.4),
        Some("NeedsReview"),
    )
    .await;
    let server = start(cp, AuthMode::Enabled, ApiSettings::default()).await;
    api_server::wait_for_events(server.addr, &ns, 3).await;
    let events: Api<DriftEvent> = Api::namespaced(client.clone(), &ns);

    // The viewer reads its namespace, not the cluster, and may not decide.
    let r = get(
        server.addr,
        &format!("/drift-events?namespace={ns}"),
        Some(&viewer),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["events"].as_array().map(Vec::len), Some(3));
    let r = get(server.addr, "/drift-events", Some(&viewer)).await;
    assert_eq!(r.status, 403, "{}", r.body);
    let approve = json!({"event_id": format!("{ns}/frames-202611260200"), "action": "TRIGGER_RETRAINING", "reason": "new camera firmware"});
    let r = post(server.addr, "/retrain", Some(&viewer), &approve).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("approve")
    );

    // The approver approves: 202 with the packaging Job's name; the CR records the decision as the user.
    let r = post(server.addr, "/retrain", Some(&approver), &approve).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let body = r.json();
    assert_eq!(body["status"], "Retraining pipeline triggered successfully");
    assert_eq!(body["retraining_job_id"], "frames-202611260200-package");
    let user = format!("system:serviceaccount:{ns}:approver");
    assert_eq!(body["approved_by"], user.as_str());
    let approval = events
        .get("frames-202611260200")
        .await
        .expect("event")
        .spec
        .approval
        .expect("approval");
    assert_eq!(approval.decision, Decision::Approve);
    assert_eq!(approval.approved_by, user);
    assert_eq!(approval.reason.as_deref(), Some("new camera firmware"));

    // Deciding again is a conflict, and the decision stays.
    let again = json!({"event_id": format!("{ns}/frames-202611260200"), "action": "IGNORE"});
    let r = post(server.addr, "/retrain", Some(&approver), &again).await;
    assert_eq!(r.status, 409, "{}", r.body);
    let kept = events
        .get("frames-202611260200")
        .await
        .expect("event")
        .spec
        .approval
        .expect("approval");
    assert_eq!(kept.decision, Decision::Approve);

    // Ignore answers 200 and records Ignore.
    let ignore = json!({"event_id": format!("{ns}/frames-202611250200"), "action": "IGNORE", "reason": "known seasonal shift"});
    let r = post(server.addr, "/api/v1/retrain", Some(&approver), &ignore).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json().get("retraining_job_id").is_none());
    let ignored = events
        .get("frames-202611250200")
        .await
        .expect("event")
        .spec
        .approval
        .expect("approval");
    assert_eq!(
        (ignored.decision, ignored.approved_by.as_str()),
        (Decision::Ignore, user.as_str())
    );

    // The approval right is scoped to the monitor "frames": the audio event is out of reach.
    let audio = json!({"event_id": format!("{ns}/audio-202611260200"), "action": "TRIGGER_RETRAINING"});
    let r = post(server.addr, "/retrain", Some(&approver), &audio).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        events
            .get("audio-202611260200")
            .await
            .expect("event")
            .spec
            .approval,
        None
    );
}

#[tokio::test]
async fn without_auth_the_decision_is_recorded_for_the_insecure_user() {
    let cp = ControlPlane::shared();
    let client = cp.client().await;
    let ns = cp.namespace("api-noauth").await;
    seed_event(
        &client,
        &ns,
        event("frames-202611260200", "frames", "2026-11-26T02:00:00Z", 0.31),
        None,
    )
    .await;
    let server = start(cp, AuthMode::InsecureNoAuth, ApiSettings::default()).await;
    api_server::wait_for_events(server.addr, &ns, 1).await;
    let r = get(server.addr, &format!("/drift-events?namespace={ns}"), None).await;
    assert_eq!(r.status, 200);
    let r = post(
        server.addr,
        "/retrain",
        None,
        &json!({"event_id": format!("{ns}/frames-202611260200"), "action": "IGNORE"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let approval = Api::<DriftEvent>::namespaced(client, &ns)
        .get("frames-202611260200")
        .await
        .expect("event")
        .spec
        .approval
        .expect("approval");
    assert_eq!(approval.approved_by, "driftwatch:insecure-no-auth");
}

#[tokio::test]
async fn the_openapi_document_and_the_dashboard_are_served() {
    let cp = ControlPlane::shared();
    let server = start(cp, AuthMode::Enabled, ApiSettings::default()).await;
    let doc = get(server.addr, "/openapi.json", None).await;
    assert_eq!(doc.status, 200);
    assert!(doc.json()["paths"]["/drift-events"]["get"].is_object());
    let page = get(server.addr, "/", None).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Drift events"));
    assert!(
        page.header("content-security-policy")
            .unwrap_or_default()
            .contains("default-src 'self'")
    );
    assert_eq!(get(server.addr, "/assets/app.js", None).await.status, 200);
    assert_eq!(get(server.addr, "/assets/nope.js", None).await.status, 404);
}

#[tokio::test]
async fn the_detail_of_an_event_carries_the_explanation_of_its_check() {
    let cp = ControlPlane::shared();
    let client = cp.client().await;
    let ns = cp.namespace("api-explain").await;
    let name = "frames-202611260200";
    seed_event(
        &client,
        &ns,
        event(name, "frames", "2026-11-26T02:00:00Z", 0.31),
        Some("NeedsReview"),
    )
    .await;
    let explanation = json!({
        "slices": [{"field": "camera_id", "value": "cam-7", "status": "drifted", "counts": [310, 290],
                    "shares": [0.0155, 0.058], "pValue": 0.0005, "adjustedPValue": 0.004,
                    "examples": [{"id": "123", "fields": {"frame_url": "https://frames.example.com/123.jpg"}}]}],
        "slicesTested": 8,
        "regions": [{"region": 2, "kind": "new", "counts": [0, 250], "shares": [0.0, 0.05],
                     "examples": [{"id": "456"}]}],
        "seconds": 0.8
    });
    let events: Api<DriftEvent> = Api::namespaced(client.clone(), &ns);
    events
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": {"explanation": explanation}})),
        )
        .await
        .expect("explanation in the status");
    let server = start(cp, AuthMode::Enabled, ApiSettings::default()).await;
    let id = format!("{ns}/{name}");
    let mut detail = Value::Null;
    for _ in 0..400 {
        let r = get(server.addr, &format!("/api/v1/drift-events/{id}"), Some(ADMIN)).await;
        if r.status == 200 && !r.json()["explanation"].is_null() {
            detail = r.json();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(detail["explanation"], explanation, "{detail}");
    assert_eq!(detail["object"]["status"]["explanation"], explanation);
}

/// The dashboard's detail of an event, once the API's cache has its status.
async fn eventually_detail(addr: std::net::SocketAddr, id: &str) -> Value {
    for _ in 0..400 {
        let r = get(addr, &format!("/api/v1/drift-events/{id}"), Some(ADMIN)).await;
        if r.status == 200 && !r.json()["object"]["status"]["retrainingTarget"].is_null() {
            return r.json();
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("the API never served {id} with its target");
}
