//! The CRDs on a real kube-apiserver: they install, the examples are accepted, bad specs are rejected with
//! a message that says what to fix, DriftEvent facts and decisions are immutable, and status is written only
//! through the status subresource.

#[path = "support/control_plane.rs"]
mod control_plane;

use control_plane::ControlPlane;
use driftwatch::api::v1alpha1::{DriftEvent, DriftMonitor};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

fn valid_monitor(name: &str) -> Value {
    json!({
        "apiVersion": "driftwatch.dev/v1alpha1",
        "kind": "DriftMonitor",
        "metadata": {"name": name},
        "spec": {
            "schedule": "0 2 * * *",
            "source": {"qdrant": {"url": "http://qdrant:6334", "collection": "frames"}},
            "windows": {"reference": {"duration": "7d", "offset": "24h"}, "comparison": {"duration": "24h"}},
            "detectors": [{"method": "kl_divergence", "source": "embeddings", "threshold": 0.1}]
        }
    })
}

fn valid_event(name: &str) -> Value {
    json!({
        "apiVersion": "driftwatch.dev/v1alpha1",
        "kind": "DriftEvent",
        "metadata": {"name": name},
        "spec": {
            "monitorRef": {"name": "frames"},
            "detectedAt": "2026-11-26T02:00:00Z",
            "driftScore": 0.31,
            "scores": [{"method": "kl_divergence", "source": "embeddings", "score": 0.31, "threshold": 0.1, "drifted": true}],
            "referenceWindow": {"start": "2026-11-18T02:00:00Z", "end": "2026-11-25T02:00:00Z"},
            "comparisonWindow": {"start": "2026-11-25T02:00:00Z", "end": "2026-11-26T02:00:00Z"}
        }
    })
}

/// Applies a JSON merge patch onto `base`.
fn merged(mut base: Value, patch: Value) -> Value {
    fn merge(target: &mut Value, patch: Value) {
        match (target, patch) {
            (Value::Object(t), Value::Object(p)) => {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(&k);
                    } else {
                        merge(t.entry(k).or_insert(Value::Null), v);
                    }
                }
            }
            (t, p) => *t = p,
        }
    }
    merge(&mut base, patch);
    base
}

fn error_message(err: kube::Error) -> String {
    match err {
        kube::Error::Api(status) => status.message,
        other => panic!("expected an API rejection, got {other}"),
    }
}

#[tokio::test]
async fn bad_monitors_are_rejected_with_a_message_that_says_what_to_fix() {
    let cp = ControlPlane::shared();
    let ns = cp.namespace("validation").await;
    let monitors: Api<DynamicObject> =
        Api::namespaced_with(cp.client().await, &ns, &resource("DriftMonitor"));
    let detector = |d: Value| json!({"spec": {"detectors": [d]}});
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "negative threshold",
            detector(json!({"method": "kl_divergence", "threshold": -0.5})),
            "threshold must be a number >= 0",
        ),
        (
            "threshold that is not a number",
            detector(json!({"method": "emd", "threshold": "sometimes"})),
            "must be of type number",
        ),
        (
            "fixed and calibrated threshold at once",
            detector(json!({"method": "emd", "threshold": 0.2, "autoThreshold": true})),
            "set either a fixed threshold or autoThreshold: true, not both",
        ),
        (
            "unknown method",
            detector(json!({"method": "chi_square"})),
            "Unsupported value: \"chi_square\"",
        ),
        (
            "psi on embeddings",
            detector(json!({"method": "psi", "source": "embeddings", "threshold": 0.2})),
            "method psi works on 1-D scores only",
        ),
        (
            "mmd on confidence scores",
            detector(json!({"method": "mmd", "source": "confidence_scores", "pValue": 0.05})),
            "methods mmd and classifier work on embeddings only",
        ),
        (
            "p-value outside (0, 1)",
            detector(json!({"method": "mmd", "pValue": 1.5})),
            "pValue must be strictly between 0 and 1",
        ),
        (
            "PCA components on a 1-D score",
            detector(json!({"method": "ks", "source": "confidence_scores", "components": 3})),
            "components (PCA components) only applies to source: embeddings",
        ),
        (
            "both threshold and p-value",
            detector(json!({"method": "emd", "threshold": 0.1, "pValue": 0.05})),
            "set either threshold or pValue, not both",
        ),
        (
            "a family-wise false-alarm rate of one half or more",
            json!({"spec": {"alpha": 0.6}}),
            "alpha must be greater than 0 and at most 0.5",
        ),
        (
            "eleven PCA components",
            detector(json!({"method": "kl_divergence", "components": 11})),
            "components must be between 1 and 10",
        ),
        (
            "pinned and relative reference at once",
            json!({"spec": {"windows": {"reference": {"duration": "7d", "start": "2026-01-01T00:00:00Z", "end": "2026-02-01T00:00:00Z"}}}}),
            "either relative (duration, offset) or pinned (start, end), not both",
        ),
        (
            "reference that is neither relative nor pinned",
            json!({"spec": {"windows": {"reference": {"duration": null, "offset": null}}}}),
            "reference window needs a duration",
        ),
        (
            "pinned start after end",
            json!({"spec": {"windows": {"reference": {"duration": null, "offset": null, "start": "2026-03-01T00:00:00Z", "end": "2026-02-01T00:00:00Z"}}}}),
            "reference window start must be before end",
        ),
        (
            "pinned start without end",
            json!({"spec": {"windows": {"reference": {"duration": null, "offset": null, "start": "2026-03-01T00:00:00Z"}}}}),
            "a pinned reference window needs both start and end",
        ),
        (
            "zero comparison duration",
            json!({"spec": {"windows": {"comparison": {"duration": "0h"}}}}),
            "duration must be a positive duration such as 30m, 24h or 7d",
        ),
        (
            "malformed duration",
            json!({"spec": {"windows": {"reference": {"duration": "7 days"}}}}),
            "duration must be a positive duration such as 30m, 24h or 7d",
        ),
        (
            "cron with the wrong number of fields",
            json!({"spec": {"schedule": "every night"}}),
            "schedule must be a 5-field cron expression",
        ),
        (
            "reference sample limit too small",
            json!({"spec": {"sampling": {"maxReference": 10}}}),
            "maxReference must be between 100 and 1000000",
        ),
        (
            "sample-key sampling without its field",
            json!({"spec": {"sampling": {"mode": "sampleKey"}}}),
            "mode sampleKey needs sampleKeyField",
        ),
        (
            "unknown sampling mode",
            json!({"spec": {"sampling": {"mode": "sometimes"}}}),
            "Unsupported value: \"sometimes\"",
        ),
        (
            "too many time strata",
            json!({"spec": {"sampling": {"strata": 100}}}),
            "strata must be between 1 and 64",
        ),
        (
            "invalid bucket name",
            json!({"spec": {"retraining": {"s3": {"bucket": "Not_A_Bucket"}, "webhook": {"urlSecretRef": {"name": "r", "key": "url"}}}}}),
            "bucket must be a valid S3 bucket name",
        ),
        (
            "filter condition with neither match nor range",
            json!({"spec": {"source": {"qdrant": {"filter": {"must": [{"key": "model_version"}]}}}}}),
            "a filter condition needs exactly one of match or range",
        ),
        (
            "non-http Qdrant url",
            json!({"spec": {"source": {"qdrant": {"url": "qdrant:6334"}}}}),
            "url must be an http:// or https:// address",
        ),
    ];
    let mut report = Vec::new();
    for (i, (what, patch, expected)) in cases.into_iter().enumerate() {
        let object: DynamicObject =
            serde_json::from_value(merged(valid_monitor(&format!("bad-{i}")), patch)).unwrap();
        let message = error_message(
            monitors
                .create(&PostParams::default(), &object)
                .await
                .expect_err(&format!("{what}: the API server accepted it")),
        );
        assert!(
            message.contains(expected),
            "{what}: message {message:?} does not contain {expected:?}"
        );
        report.push(format!("{what}: {message}"));
    }
    eprintln!("rejected monitors:\n{}", report.join("\n"));
}

#[tokio::test]
async fn every_example_manifest_is_accepted() {
    let cp = ControlPlane::shared();
    let ns = cp.namespace("examples").await;
    let client = cp.client().await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut applied = 0;
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    for path in files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
    {
        let text = std::fs::read_to_string(path).unwrap();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value: Value = serde::Deserialize::deserialize(doc).unwrap();
            if value.get("kind").is_none() {
                continue; // a patch, tested below
            }
            let mut object: DynamicObject = serde_json::from_value(value).unwrap();
            object.metadata.namespace = Some(ns.clone());
            let gvk = GroupVersionKind::try_from(object.types.as_ref().unwrap()).unwrap();
            let (ar, _) = kube::discovery::pinned_kind(&client, &gvk).await.unwrap();
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &ar);
            let params = PatchParams::apply("driftwatch-test").dry_run();
            let name = object.metadata.name.clone().unwrap();
            api.patch(&name, &params, &Patch::Apply(&object))
                .await
                .unwrap_or_else(|e| panic!("{} ({name}) rejected: {e}", path.display()));
            applied += 1;
        }
    }
    assert!(
        applied >= 5,
        "expected the example monitors and secrets, applied {applied}"
    );
}

#[tokio::test]
async fn the_detection_facts_and_the_decision_of_an_event_cannot_be_changed() {
    let cp = ControlPlane::shared();
    let ns = cp.namespace("event-rules").await;
    let events: Api<DriftEvent> = Api::namespaced(cp.client().await, &ns);
    let event: DriftEvent = serde_json::from_value(valid_event("frames-202611260200")).unwrap();
    events.create(&PostParams::default(), &event).await.unwrap();
    let merge = |patch: Value| Patch::Merge(patch);
    let params = PatchParams::default();

    let edited = events
        .patch(
            "frames-202611260200",
            &params,
            &merge(json!({"spec": {"driftScore": 0.01}})),
        )
        .await;
    let message = error_message(edited.expect_err("editing driftScore was accepted"));
    assert!(message.contains("detection facts of a DriftEvent"), "{message}");
    // The calibrated verdict is a detection fact too: it cannot be added afterwards.
    let edited = events
        .patch(
            "frames-202611260200",
            &params,
            &merge(json!({"spec": {"combinedPValue": 0.001, "alpha": 0.05}})),
        )
        .await;
    let message = error_message(edited.expect_err("adding combinedPValue was accepted"));
    assert!(message.contains("detection facts of a DriftEvent"), "{message}");

    let unknown = json!({"spec": {"approval": {"decision": "Maybe", "approvedBy": "alice"}}});
    let message = error_message(
        events
            .patch("frames-202611260200", &params, &merge(unknown))
            .await
            .expect_err("decision Maybe accepted"),
    );
    assert!(message.contains("Unsupported value: \"Maybe\""), "{message}");

    let anonymous = json!({"spec": {"approval": {"decision": "Approve", "approvedBy": ""}}});
    let message = error_message(
        events
            .patch("frames-202611260200", &params, &merge(anonymous))
            .await
            .expect_err("empty approvedBy"),
    );
    assert!(
        message.contains("approvedBy must name the user who decided"),
        "{message}"
    );

    let approve_patch: Value =
        serde_yaml::from_str(&std::fs::read_to_string("examples/approval-patch.yaml").unwrap()).unwrap();
    events
        .patch("frames-202611260200", &params, &merge(approve_patch))
        .await
        .expect("the example approval patch");

    let flip = json!({"spec": {"approval": {"decision": "Ignore"}}});
    let message = error_message(
        events
            .patch("frames-202611260200", &params, &merge(flip))
            .await
            .expect_err("decision changed"),
    );
    assert!(
        message.contains("spec.approval has already been decided"),
        "{message}"
    );

    let removed = json!({"spec": {"approval": null}});
    let message = error_message(
        events
            .patch("frames-202611260200", &params, &merge(removed))
            .await
            .expect_err("decision removed"),
    );
    assert!(
        message.contains("spec.approval has already been decided"),
        "{message}"
    );
}

#[tokio::test]
async fn status_is_written_with_server_side_apply_only_through_the_status_subresource() {
    let cp = ControlPlane::shared();
    let ns = cp.namespace("status").await;
    let monitors: Api<DriftMonitor> = Api::namespaced(cp.client().await, &ns);
    let monitor: DriftMonitor = serde_json::from_value(valid_monitor("frames")).unwrap();
    monitors.create(&PostParams::default(), &monitor).await.unwrap();
    let status = json!({
        "apiVersion": "driftwatch.dev/v1alpha1",
        "kind": "DriftMonitor",
        "status": {"lastScore": 0.42, "observedGeneration": 1}
    });
    let params = PatchParams::apply("driftwatch-controller").force();

    // Through the main resource the status is dropped.
    monitors
        .patch("frames", &params, &Patch::Apply(&status))
        .await
        .unwrap();
    assert!(
        monitors
            .get("frames")
            .await
            .unwrap()
            .status
            .is_none_or(|s| s.last_score.is_none())
    );

    // Through the status subresource it is stored, and the spec is untouched.
    monitors
        .patch_status("frames", &params, &Patch::Apply(&status))
        .await
        .unwrap();
    let stored = monitors.get("frames").await.unwrap();
    assert_eq!(stored.status.unwrap().last_score, Some(0.42));
    assert_eq!(stored.spec.schedule, "0 2 * * *");
}

#[tokio::test]
async fn both_crds_are_established_with_short_names_and_the_drift_category() {
    let cp = ControlPlane::shared();
    let client = cp.client().await;
    let resources = client
        .list_api_group_resources("driftwatch.dev/v1alpha1")
        .await
        .unwrap();
    for (plural, short) in [("driftmonitors", "dm"), ("driftevents", "de")] {
        let resource = resources
            .resources
            .iter()
            .find(|r| r.name == plural)
            .expect(plural);
        assert!(resource.namespaced);
        assert_eq!(resource.short_names.as_deref(), Some(&[short.to_string()][..]));
        assert_eq!(resource.categories.as_deref(), Some(&["drift".to_string()][..]));
    }
    eprintln!("control plane started in {:.1}s", cp.started_in().as_secs_f64());
}

fn resource(kind: &str) -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk("driftwatch.dev", "v1alpha1", kind))
}
