//! The approver authorisation on a real kube-apiserver: the ClusterRoles and the ValidatingAdmissionPolicy
//! from config/rbac admit a decision only from the user named in approvedBy who holds `approve` on the
//! event's monitor; the controller's ServiceAccount is the one documented exemption. Also the Secret
//! references policy: a DriftMonitor may name only Secrets its writer may read.

#[path = "support/control_plane.rs"]
mod control_plane;

use control_plane::ControlPlane;
use driftwatch::api::v1alpha1::DriftEvent;
use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::api::rbac::v1::{ClusterRole, Role, RoleBinding};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

const CONTROLLER_SA: &str = "system:serviceaccount:driftwatch-system:driftwatch-controller";

fn docs(path: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| <Value as serde::Deserialize>::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

async fn apply_cluster<K>(client: &Client, doc: &Value)
where
    K: Resource<Scope = k8s_openapi::ClusterResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + serde::Serialize,
    K::DynamicType: Default,
{
    let name = doc["metadata"]["name"].as_str().unwrap();
    Api::<K>::all(client.clone())
        .patch(
            name,
            &PatchParams::apply("driftwatch-test").force(),
            &Patch::Apply(doc),
        )
        .await
        .unwrap_or_else(|e| panic!("apply {name}: {e}"));
}

/// Installs config/rbac once per test binary (cluster-scoped objects).
async fn install_policy(client: &Client) {
    for doc in docs("config/rbac/roles.yaml")
        .iter()
        .chain(docs("config/rbac/approval-policy.yaml").iter())
        .chain(docs("config/rbac/secret-references-policy.yaml").iter())
    {
        match doc["kind"].as_str().unwrap() {
            "ClusterRole" => apply_cluster::<ClusterRole>(client, doc).await,
            "ValidatingAdmissionPolicy" => apply_cluster::<ValidatingAdmissionPolicy>(client, doc).await,
            "ValidatingAdmissionPolicyBinding" => {
                apply_cluster::<ValidatingAdmissionPolicyBinding>(client, doc).await
            }
            other => panic!("unexpected kind {other}"),
        }
    }
}

fn event(name: &str, monitor: &str) -> DriftEvent {
    serde_json::from_value(json!({
        "apiVersion": "driftwatch.dev/v1alpha1",
        "kind": "DriftEvent",
        "metadata": {"name": name},
        "spec": {
            "monitorRef": {"name": monitor},
            "detectedAt": "2026-11-26T02:00:00Z",
            "driftScore": 0.31,
            "scores": [{"method": "kl_divergence", "source": "embeddings", "score": 0.31, "threshold": 0.1, "drifted": true}],
            "referenceWindow": {"start": "2026-11-18T02:00:00Z", "end": "2026-11-25T02:00:00Z"},
            "comparisonWindow": {"start": "2026-11-25T02:00:00Z", "end": "2026-11-26T02:00:00Z"}
        }
    }))
    .unwrap()
}

async fn bind(client: &Client, ns: &str, name: &str, role_kind: &str, role: &str, subject: Value) {
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": name},
        "subjects": [subject],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role}
    }))
    .unwrap();
    Api::<RoleBinding>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
}

fn user(name: &str) -> Value {
    json!({"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": name})
}

/// One namespace with: alice and bob approvers (all monitors), carol approver of monitor-a only (Role with
/// resourceNames), vic a viewer, dave who may patch events but holds no approve, and the controller's
/// ServiceAccount with patch on events. Waits until the policy is enforced.
async fn setup() -> &'static str {
    static NS: OnceCell<String> = OnceCell::const_new();
    NS.get_or_init(|| async {
        let cp = ControlPlane::shared();
        let admin = cp.client().await;
        install_policy(&admin).await;
        let ns = cp.namespace("approval").await;
        for who in ["alice", "bob"] {
            bind(&admin, &ns, &format!("{who}-approver"), "ClusterRole", "driftwatch-approver", user(who)).await;
        }
        bind(&admin, &ns, "vic-viewer", "ClusterRole", "driftwatch-viewer", user("vic")).await;
        let example = docs("config/rbac/examples/approver-for-one-monitor.yaml");
        let mut role: Role = serde_json::from_value(example[0].clone()).unwrap();
        role.metadata.namespace = None;
        role.rules.as_mut().unwrap()[2].resource_names = Some(vec!["monitor-a".into()]);
        Api::<Role>::namespaced(admin.clone(), &ns).create(&PostParams::default(), &role).await.unwrap();
        bind(&admin, &ns, "carol-monitor-a", "Role", "approve-frames", user("carol")).await;
        let patcher: Role = serde_json::from_value(json!({
            "metadata": {"name": "event-patcher"},
            "rules": [{"apiGroups": ["driftwatch.dev"], "resources": ["driftevents"], "verbs": ["get", "patch"]}]
        }))
        .unwrap();
        Api::<Role>::namespaced(admin.clone(), &ns).create(&PostParams::default(), &patcher).await.unwrap();
        bind(&admin, &ns, "dave-patcher", "Role", "event-patcher", user("dave")).await;
        bind(&admin, &ns, "controller-patcher", "Role", "event-patcher", user(CONTROLLER_SA)).await;

        // The policy is compiled asynchronously: wait until a dry-run forgery is denied by it.
        let events: Api<DriftEvent> = Api::namespaced(admin.clone(), &ns);
        events.create(&PostParams::default(), &event("probe", "monitor-a")).await.unwrap();
        let bob: Api<DriftEvent> = Api::namespaced(cp.impersonate("bob", &[]).await, &ns);
        let dry = PatchParams {
            dry_run: true,
            ..PatchParams::default()
        };
        for _ in 0..300 {
            match bob.patch("probe", &dry, &approval("Approve", "alice")).await {
                Err(kube::Error::Api(e)) if e.message.contains("driftwatch-approval") => return ns,
                _ => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            }
        }
        panic!("the ValidatingAdmissionPolicy never took effect");
    })
    .await
}

fn approval(decision: &str, by: &str) -> Patch<Value> {
    Patch::Merge(json!({"spec": {"approval": {"decision": decision, "approvedBy": by, "reason": "test"}}}))
}

async fn try_decide(as_user: &str, event_name: &str, monitor: &str, by: &str) -> Result<DriftEvent, String> {
    let ns = setup().await;
    let cp = ControlPlane::shared();
    Api::<DriftEvent>::namespaced(cp.client().await, ns)
        .create(&PostParams::default(), &event(event_name, monitor))
        .await
        .unwrap();
    Api::<DriftEvent>::namespaced(cp.impersonate(as_user, &[]).await, ns)
        .patch(event_name, &PatchParams::default(), &approval("Approve", by))
        .await
        .map_err(|e| match e {
            kube::Error::Api(status) => format!("{} {}", status.code, status.message),
            other => other.to_string(),
        })
}

#[tokio::test]
async fn an_approver_can_approve_in_their_own_name() {
    let decided = try_decide("alice", "ok-alice", "monitor-a", "alice")
        .await
        .unwrap();
    let approval = decided.spec.approval.unwrap();
    assert_eq!(approval.approved_by, "alice");
}

#[tokio::test]
async fn bob_cannot_approve_as_alice() {
    let err = try_decide("bob", "forged", "monitor-a", "alice")
        .await
        .unwrap_err();
    assert!(err.starts_with("403"), "{err}");
    assert!(
        err.contains(r#"you are "bob" but approvedBy says "alice""#),
        "{err}"
    );
}

#[tokio::test]
async fn a_viewer_cannot_approve() {
    let err = try_decide("vic", "viewer-tries", "monitor-a", "vic")
        .await
        .unwrap_err();
    assert!(err.starts_with("403"), "{err}");
    assert!(err.contains("cannot patch resource \"driftevents\""), "{err}");
}

#[tokio::test]
async fn patch_rights_without_the_approve_verb_are_not_enough() {
    let err = try_decide("dave", "patcher-tries", "monitor-a", "dave")
        .await
        .unwrap_err();
    assert!(err.starts_with("403"), "{err}");
    assert!(err.contains("needs the verb approve on driftmonitors"), "{err}");
}

#[tokio::test]
async fn an_approver_scoped_to_monitor_a_cannot_approve_monitor_b() {
    let err = try_decide("carol", "carol-b", "monitor-b", "carol")
        .await
        .unwrap_err();
    assert!(err.contains("may not decide events of DriftMonitor"), "{err}");
    assert!(err.contains("/monitor-b"), "{err}");
    try_decide("carol", "carol-a", "monitor-a", "carol")
        .await
        .unwrap();
}

#[tokio::test]
async fn the_controller_service_account_records_the_user_it_authenticated() {
    let decided = try_decide(CONTROLLER_SA, "via-rest-api", "monitor-a", "alice")
        .await
        .unwrap();
    assert_eq!(decided.spec.approval.unwrap().approved_by, "alice");
}

#[tokio::test]
async fn writes_that_leave_the_approval_alone_are_not_checked() {
    let ns = setup().await;
    let cp = ControlPlane::shared();
    let admin: Api<DriftEvent> = Api::namespaced(cp.client().await, ns);
    admin
        .create(&PostParams::default(), &event("labelled", "monitor-b"))
        .await
        .unwrap();
    // dave may patch events; a label change does not set spec.approval, so no approve right is needed.
    Api::<DriftEvent>::namespaced(cp.impersonate("dave", &[]).await, ns)
        .patch(
            "labelled",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"triage": "later"}}})),
        )
        .await
        .unwrap();
}

// ---- Secret references ------------------------------------------------------------------------------------

fn monitor(name: &str, api_key_secret: Option<&str>) -> driftwatch::api::v1alpha1::DriftMonitor {
    let mut qdrant = json!({"url": "http://qdrant:6334", "collection": "frames"});
    if let Some(secret) = api_key_secret {
        qdrant["apiKeySecretRef"] = json!({"name": secret, "key": "api-key"});
    }
    serde_json::from_value(json!({
        "apiVersion": "driftwatch.dev/v1alpha1",
        "kind": "DriftMonitor",
        "metadata": {"name": name},
        "spec": {
            "schedule": "0 2 * * *",
            "source": {"qdrant": qdrant},
            "windows": {"reference": {"duration": "7d"}, "comparison": {"duration": "24h"}}
        }
    }))
    .unwrap()
}

/// A namespace where eve and sam edit monitors and only sam may read the Secret "qdrant-key"; waits until
/// the Secret references policy is enforced.
async fn secrets_setup() -> &'static str {
    static NS: OnceCell<String> = OnceCell::const_new();
    NS.get_or_init(|| async {
        let cp = ControlPlane::shared();
        let admin = cp.client().await;
        install_policy(&admin).await;
        let ns = cp.namespace("secret-refs").await;
        for who in ["eve", "sam"] {
            bind(&admin, &ns, &format!("{who}-editor"), "ClusterRole", "driftwatch-editor", user(who)).await;
        }
        let reader: Role = serde_json::from_value(json!({
            "metadata": {"name": "read-qdrant-key"},
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["qdrant-key"], "verbs": ["get"]}]
        }))
        .unwrap();
        Api::<Role>::namespaced(admin.clone(), &ns).create(&PostParams::default(), &reader).await.unwrap();
        bind(&admin, &ns, "sam-reads-key", "Role", "read-qdrant-key", user("sam")).await;
        let eve = Api::<driftwatch::api::v1alpha1::DriftMonitor>::namespaced(cp.impersonate("eve", &[]).await, &ns);
        let dry = PostParams {
            dry_run: true,
            ..PostParams::default()
        };
        for _ in 0..300 {
            match eve.create(&dry, &monitor("probe", Some("qdrant-key"))).await {
                Err(kube::Error::Api(e)) if e.message.contains("driftwatch-secret-references") => return ns,
                _ => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            }
        }
        panic!("the Secret references policy never took effect");
    })
    .await
}

async fn monitors_as(who: &str, ns: &str) -> Api<driftwatch::api::v1alpha1::DriftMonitor> {
    Api::namespaced(ControlPlane::shared().impersonate(who, &[]).await, ns)
}

fn refused(result: Result<driftwatch::api::v1alpha1::DriftMonitor, kube::Error>) -> String {
    match result {
        Err(kube::Error::Api(status)) => format!("{} {}", status.code, status.message),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_monitor_editor_cannot_reference_a_secret_they_cannot_read() {
    let ns = secrets_setup().await;
    let eve = monitors_as("eve", ns).await;
    let err = refused(
        eve.create(&PostParams::default(), &monitor("eve-key", Some("qdrant-key")))
            .await,
    );
    assert!(err.starts_with("403"), "{err}");
    assert!(err.contains(r#"user "eve" may not make DriftMonitor"#), "{err}");
    assert!(
        err.contains("use Secret qdrant-key (spec.source.qdrant.apiKeySecretRef)"),
        "{err}"
    );
    // Without a Secret reference eve edits monitors as before.
    eve.create(&PostParams::default(), &monitor("eve-plain", None))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_user_who_may_read_the_secret_can_reference_it_and_others_may_edit_everything_else() {
    let ns = secrets_setup().await;
    monitors_as("sam", ns)
        .await
        .create(&PostParams::default(), &monitor("sam-key", Some("qdrant-key")))
        .await
        .unwrap();
    let eve = monitors_as("eve", ns).await;
    // A schedule change leaves where the key goes alone: admitted.
    eve.patch(
        "sam-key",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"schedule": "0 3 * * *"}})),
    )
    .await
    .unwrap();
    // Sending the key somewhere else needs the right to read it.
    let err = refused(
        eve.patch(
            "sam-key",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"source": {"qdrant": {"url": "http://attacker.example:6334"}}}})),
        )
        .await,
    );
    assert!(err.contains("use Secret qdrant-key"), "{err}");
    // So does naming a Secret in a new retraining section, on a monitor of eve's own.
    eve.create(&PostParams::default(), &monitor("eve-own", None))
        .await
        .unwrap();
    let err = refused(
        eve.patch(
            "eve-own",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"retraining": {
                "s3": {"bucket": "batches"},
                "webhook": {"urlSecretRef": {"name": "other-secret", "key": "url"}}
            }}})),
        )
        .await,
    );
    assert!(
        err.contains("use Secret other-secret (spec.retraining.webhook.urlSecretRef)"),
        "{err}"
    );
}
