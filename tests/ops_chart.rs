//! The Helm chart and the ops manifests on a real kube-apiserver 1.35: every value set in
//! charts/driftwatch/ci/ renders, and every object it renders passes a server-side apply dry run with strict
//! field validation; the controller's RBAC is exactly the calls it makes; the Pod passes the `restricted`
//! Pod Security Standard; the chart's CRDs are crds/; the approval ValidatingAdmissionPolicy admits only the
//! deciding user holding `approve`; the YAML under config/ and the Argo CD example are accepted.
//!
//! ServiceMonitor, PrometheusRule and Argo CD Application are not built into Kubernetes: minimal copies of
//! their CRDs (tests/ops_fixtures/, the fields we use, typed as upstream) are installed first.
//! Runs `helm` (hack/ops-deps.sh installs it, or set DRIFTWATCH_HELM). Does process and network I/O.

#[path = "support/control_plane.rs"]
mod control_plane;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use control_plane::ControlPlane;
use k8s_openapi::api::authorization::v1::SubjectAccessReview;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::{Discovery, Scope};
use serde::Deserialize;
use serde_json::{Value, json};

const KUBE_VERSION: &str = "1.35.4";
const FIELD_MANAGER: &str = "driftwatch-ops-test";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn chart() -> PathBuf {
    root().join("charts/driftwatch")
}

/// The helm binary: $DRIFTWATCH_HELM, else the one hack/ops-deps.sh installs (and prints).
fn helm() -> PathBuf {
    static HELM: OnceLock<PathBuf> = OnceLock::new();
    HELM.get_or_init(|| {
        if let Ok(path) = std::env::var("DRIFTWATCH_HELM") {
            return PathBuf::from(path);
        }
        let out = Command::new(root().join("hack/ops-deps.sh"))
            .stderr(Stdio::inherit())
            .output()
            .expect("run hack/ops-deps.sh");
        assert!(out.status.success(), "hack/ops-deps.sh failed: {}", out.status);
        let stdout = String::from_utf8_lossy(&out.stdout);
        PathBuf::from(
            stdout
                .lines()
                .last()
                .expect("hack/ops-deps.sh prints the helm path")
                .trim(),
        )
    })
    .clone()
}

/// The value sets CI renders: charts/driftwatch/ci/<name>-values.yaml.
fn value_sets() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(chart().join("ci"))
        .expect("read charts/driftwatch/ci")
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix("-values.yaml")
                .map(String::from)
        })
        .collect();
    names.sort();
    assert!(
        names.len() >= 4,
        "expected at least the default, ha, namespaced and full value sets: {names:?}"
    );
    names
}

fn yaml_documents(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).expect("valid YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

/// `helm template <release>` with value set `values` (a name in ci/) and extra `--set`s.
fn render(release: &str, namespace: &str, values: Option<&str>, sets: &[&str]) -> Vec<Value> {
    let mut cmd = Command::new(helm());
    cmd.args(["template", release]).arg(chart()).args([
        "--namespace",
        namespace,
        "--kube-version",
        KUBE_VERSION,
    ]);
    if let Some(values) = values {
        cmd.arg("-f")
            .arg(chart().join("ci").join(format!("{values}-values.yaml")));
    }
    for set in sets {
        cmd.args(["--set", set]);
    }
    let out = cmd.output().expect("run helm");
    assert!(
        out.status.success(),
        "helm template {values:?} {sets:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    yaml_documents(&String::from_utf8(out.stdout).expect("UTF-8 output"))
}

fn kind(object: &Value) -> &str {
    object["kind"].as_str().unwrap_or_default()
}

fn name(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or_default()
}

fn find<'a>(objects: &'a [Value], kind_: &str, name_: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| kind(o) == kind_ && name(o) == name_)
        .unwrap_or_else(|| panic!("no {kind_} {name_} rendered"))
}

fn all_of<'a>(objects: &'a [Value], kind_: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| kind(o) == kind_).collect()
}

fn controller_args(objects: &[Value]) -> Vec<String> {
    let deployment = all_of(objects, "Deployment");
    assert_eq!(deployment.len(), 1, "exactly one Deployment");
    deployment[0]["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .expect("controller args")
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

// ---- control-plane helpers ------------------------------------------------------------------------------

async fn ensure_namespace(cp: &ControlPlane, name: &str, labels: Value) {
    let api: Api<Namespace> = Api::all(cp.client().await);
    let ns: Namespace =
        serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).expect("namespace");
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 409 => {}
        Err(err) => panic!("create namespace {name}: {err}"),
    }
}

/// Installs the minimal third-party CRDs of tests/ops_fixtures/ (idempotent) and waits until served.
async fn ensure_third_party_crds(cp: &ControlPlane) {
    let client = cp.client().await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let dir = root().join("tests/ops_fixtures");
    let mut groups = BTreeMap::new();
    for entry in std::fs::read_dir(&dir)
        .expect("read tests/ops_fixtures")
        .flatten()
    {
        let text = std::fs::read_to_string(entry.path()).expect("read fixture");
        let crd: CustomResourceDefinition = serde_yaml::from_str(&text).expect("fixture CRD");
        let group_version = format!("{}/{}", crd.spec.group, crd.spec.versions[0].name);
        *groups.entry(group_version).or_insert(0usize) += 1;
        match crds.create(&PostParams::default(), &crd).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(err) => panic!("install {}: {err}", entry.path().display()),
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    for (group_version, count) in groups {
        loop {
            let served = client.list_api_group_resources(&group_version).await;
            if served
                .map(|r| r.resources.iter().filter(|r| !r.name.contains('/')).count() >= count)
                .unwrap_or(false)
            {
                break;
            }
            assert!(Instant::now() < deadline, "{group_version} not served after 60s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Server-side applies every object (dry run unless `for_real`) with strict field validation; returns the
/// errors, one line per rejected object. Namespaced objects without a namespace go to `default_ns`.
async fn apply_all(cp: &ControlPlane, objects: &[Value], default_ns: &str, for_real: bool) -> Vec<String> {
    let client = cp.client().await;
    let discovery = Discovery::new(client.clone()).run().await.expect("API discovery");
    let mut params = PatchParams::apply(FIELD_MANAGER).force().validation_strict();
    if !for_real {
        params = params.dry_run();
    }
    let mut errors = Vec::new();
    for object in objects {
        let api_version = object["apiVersion"].as_str().unwrap_or_default();
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, kind(object));
        let Some((resource, caps)) = discovery.resolve_gvk(&gvk) else {
            errors.push(format!(
                "{api_version} {} {}: kind not served",
                kind(object),
                name(object)
            ));
            continue;
        };
        let api: Api<DynamicObject> = if caps.scope == Scope::Namespaced {
            let ns = object["metadata"]["namespace"].as_str().unwrap_or(default_ns);
            Api::namespaced_with(client.clone(), ns, &resource)
        } else {
            Api::all_with(client.clone(), &resource)
        };
        if let Err(err) = api.patch(name(object), &params, &Patch::Apply(object)).await {
            errors.push(format!("{} {}: {err}", kind(object), name(object)));
        }
    }
    errors
}

/// The namespaces the objects live in, other than `release_ns` (e.g. watched namespaces, monitoring).
fn other_namespaces(objects: &[Value], release_ns: &str) -> BTreeSet<String> {
    objects
        .iter()
        .filter_map(|o| o["metadata"]["namespace"].as_str())
        .filter(|ns| *ns != release_ns)
        .map(String::from)
        .collect()
}

// ---- the tests ----------------------------------------------------------------------------------------

#[tokio::test]
async fn every_value_set_renders_objects_the_api_server_accepts() {
    let cp = ControlPlane::shared();
    ensure_third_party_crds(cp).await;
    let mut failures = Vec::new();
    for set in value_sets() {
        let ns = cp.namespace(&format!("chart-{set}")).await;
        let objects = render("driftwatch", &ns, Some(&set), &[]);
        assert!(!objects.is_empty(), "{set}: nothing rendered");
        for other in other_namespaces(&objects, &ns) {
            ensure_namespace(cp, &other, json!({})).await;
        }
        for error in apply_all(cp, &objects, &ns, false).await {
            failures.push(format!("[{set}] {error}"));
        }
    }
    assert!(
        failures.is_empty(),
        "rejected by the API server:\n{}",
        failures.join("\n")
    );
}

#[tokio::test]
async fn helm_install_dry_run_against_the_cluster_accepts_every_value_set_and_renders_notes() {
    // `helm install --dry-run=server` against the real API server: Helm's own install path (kube version
    // check, object mapping through discovery, ownership checks) accepts every value set and renders NOTES.
    // Unknown fields are not its business (Helm 3 does not check them): the strict server-side apply dry
    // runs above are.
    let cp = ControlPlane::shared();
    ensure_third_party_crds(cp).await;
    let ns = cp.namespace("chart-notes").await;
    let expected_notes: BTreeMap<&str, &str> = BTreeMap::from([
        ("full", "leader election on (Lease driftwatch-leader)"),
        ("ha", "leader election on (Lease notes-driftwatch-controller)"),
        ("namespaced", "Watching: ml-team-a, ml-team-b."),
        ("default", "Watching: all namespaces."),
    ]);
    for set in value_sets() {
        let expected = expected_notes.get(set.as_str()).copied().unwrap_or("Controller:");
        let out = Command::new(helm())
            .args(["install", "notes"])
            .arg(chart())
            // The control plane already has the CRDs, and other tests install the fixed-name user roles:
            // objects not owned by this release, which Helm refuses to adopt.
            .args([
                "--namespace",
                &ns,
                "--dry-run=server",
                "--set",
                "crds.install=false",
            ])
            .args(["--set", "rbac.userRoles=false", "-f"])
            .arg(chart().join("ci").join(format!("{set}-values.yaml")))
            .env("KUBECONFIG", cp.kubeconfig_path())
            .output()
            .expect("run helm install");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "helm install --dry-run=server ({set}) failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let notes = stdout
            .split("NOTES:")
            .nth(1)
            .unwrap_or_else(|| panic!("{set}: no NOTES in {stdout}"));
        assert!(
            notes.contains(expected),
            "{set}: NOTES lack {expected:?}:\n{notes}"
        );
    }
}

type Rule = (String, String, String);

fn rules_of(role: &Value) -> BTreeSet<Rule> {
    let mut out = BTreeSet::new();
    for rule in role["rules"].as_array().expect("rules") {
        assert!(
            rule.get("resourceNames").is_none(),
            "controller rules are not scoped by name"
        );
        for group in rule["apiGroups"].as_array().unwrap() {
            for resource in rule["resources"].as_array().unwrap() {
                for verb in rule["verbs"].as_array().unwrap() {
                    out.insert((
                        group.as_str().unwrap().to_string(),
                        resource.as_str().unwrap().to_string(),
                        verb.as_str().unwrap().to_string(),
                    ));
                }
            }
        }
    }
    out
}

fn expand(list: &[(&str, &str, &[&str])]) -> BTreeSet<Rule> {
    list.iter()
        .flat_map(|(g, r, verbs)| {
            verbs
                .iter()
                .map(move |v| (g.to_string(), r.to_string(), v.to_string()))
        })
        .collect()
}

/// Exactly the calls the controller makes (see the chart README's RBAC table).
fn controller_rules() -> BTreeSet<Rule> {
    expand(&[
        (
            "driftwatch.dev",
            "driftmonitors",
            &["get", "list", "watch", "patch"],
        ),
        ("driftwatch.dev", "driftmonitors/status", &["patch"]),
        (
            "driftwatch.dev",
            "driftevents",
            &["get", "list", "watch", "create", "patch"],
        ),
        ("driftwatch.dev", "driftevents/status", &["patch"]),
        (
            "batch",
            "jobs",
            &["get", "list", "watch", "create", "delete", "patch"],
        ),
        ("", "pods", &["get", "list", "watch"]),
        ("events.k8s.io", "events", &["create", "patch"]),
    ])
}

fn auth_rules() -> BTreeSet<Rule> {
    expand(&[
        ("authentication.k8s.io", "tokenreviews", &["create"]),
        ("authorization.k8s.io", "subjectaccessreviews", &["create"]),
    ])
}

fn impersonation_rules() -> BTreeSet<Rule> {
    expand(&[
        ("", "users", &["impersonate"]),
        ("", "groups", &["impersonate"]),
        ("", "serviceaccounts", &["impersonate"]),
    ])
}

fn union(sets: &[BTreeSet<Rule>]) -> BTreeSet<Rule> {
    sets.iter().flatten().cloned().collect()
}

fn lease_rules() -> BTreeSet<Rule> {
    expand(&[("coordination.k8s.io", "leases", &["get", "create", "update"])])
}

fn assert_binds_controller(binding: &Value, ns: &str) {
    let subjects = binding["subjects"].as_array().expect("subjects");
    assert_eq!(
        subjects,
        &vec![json!({"kind": "ServiceAccount", "name": "driftwatch", "namespace": ns})],
        "{} binds the controller's ServiceAccount only",
        name(binding)
    );
}

#[test]
fn controller_rbac_is_exactly_the_calls_the_controller_makes() {
    // Cluster-wide (default): one ClusterRole, and the Lease Role of leader election (on by default).
    let objects = render("driftwatch", "ops", Some("default"), &[]);
    let lease = find(&objects, "Role", "driftwatch-leader-election");
    assert_eq!(rules_of(lease), lease_rules());
    assert_binds_controller(find(&objects, "RoleBinding", "driftwatch-leader-election"), "ops");
    let cluster_role = find(&objects, "ClusterRole", "driftwatch-controller");
    assert_eq!(rules_of(cluster_role), union(&[controller_rules(), auth_rules()]));
    let with = render("driftwatch", "ops", Some("default"), &["rbac.impersonation=true"]);
    assert_eq!(
        rules_of(find(&with, "ClusterRole", "driftwatch-controller")),
        union(&[controller_rules(), auth_rules(), impersonation_rules()])
    );
    assert_binds_controller(
        find(&objects, "ClusterRoleBinding", "driftwatch-controller"),
        "ops",
    );
    let without_lease = render(
        "driftwatch",
        "ops",
        Some("default"),
        &["leaderElection.enabled=false"],
    );
    assert!(
        all_of(&without_lease, "Role").is_empty(),
        "no Roles with one replica and leader election off in cluster mode"
    );
    assert!(
        !controller_args(&objects)
            .iter()
            .any(|a| a.starts_with("--namespace"))
    );

    // HA: the Lease Role in the release namespace, leader election on.
    let objects = render("driftwatch", "ops", Some("ha"), &[]);
    let lease = find(&objects, "Role", "driftwatch-leader-election");
    assert_eq!(lease["metadata"]["namespace"], "ops");
    assert_eq!(rules_of(lease), lease_rules());
    assert_binds_controller(find(&objects, "RoleBinding", "driftwatch-leader-election"), "ops");
    assert!(controller_args(&objects).contains(&"--leader-elect".to_string()));

    // Namespaced: only TokenReview/SubjectAccessReview cluster-wide; the rest per watched namespace.
    let objects = render("driftwatch", "ops", Some("namespaced"), &[]);
    assert_eq!(
        rules_of(find(&objects, "ClusterRole", "driftwatch-controller")),
        auth_rules()
    );
    // Besides the Lease Role in the release namespace (leader election is on by default).
    let roles: Vec<&Value> = all_of(&objects, "Role")
        .into_iter()
        .filter(|r| name(r) != "driftwatch-leader-election")
        .collect();
    let namespaces: BTreeSet<&str> = roles
        .iter()
        .map(|r| r["metadata"]["namespace"].as_str().unwrap())
        .collect();
    assert_eq!(namespaces, BTreeSet::from(["ml-team-a", "ml-team-b"]));
    for role in roles {
        assert_eq!(
            rules_of(role),
            controller_rules(),
            "Role in {}",
            role["metadata"]["namespace"]
        );
    }
    for binding in all_of(&objects, "RoleBinding") {
        assert_binds_controller(binding, "ops");
    }
    let args = controller_args(&objects);
    assert!(
        args.contains(&"--namespace=ml-team-a".to_string())
            && args.contains(&"--namespace=ml-team-b".to_string())
    );

    // Never Secrets, never wildcards, in any value set.
    for set in value_sets() {
        for object in render("driftwatch", "ops", Some(&set), &[]) {
            if matches!(kind(&object), "ClusterRole" | "Role") && name(&object).starts_with("driftwatch-") {
                for (group, resource, verb) in rules_of(&object) {
                    assert!(
                        resource != "secrets",
                        "[{set}] {} grants {verb} on secrets",
                        name(&object)
                    );
                    assert!(
                        group != "*" && resource != "*" && verb != "*",
                        "[{set}] {} has a wildcard",
                        name(&object)
                    );
                }
            }
        }
    }
}

#[test]
fn leader_election_and_disruption_budget_follow_the_replica_count() {
    // One replica: leader election on by default, and a rollout that stops the old Pod first.
    let single = render("driftwatch", "ops", Some("default"), &[]);
    let args = controller_args(&single);
    assert!(args.contains(&"--leader-elect".to_string()));
    assert!(
        args.contains(&"--lease-name=driftwatch-controller".to_string()),
        "{args:?}"
    );
    assert_eq!(
        find(&single, "Deployment", "driftwatch")["spec"]["strategy"],
        serde_json::json!({"type": "Recreate"})
    );
    assert!(
        all_of(&single, "PodDisruptionBudget").is_empty(),
        "no PDB with one replica"
    );

    let off = render(
        "driftwatch",
        "ops",
        Some("default"),
        &["leaderElection.enabled=false"],
    );
    assert!(!controller_args(&off).contains(&"--leader-elect".to_string()));

    let ha = render("driftwatch", "ops", Some("ha"), &[]);
    assert!(controller_args(&ha).contains(&"--leader-elect".to_string()));
    assert_eq!(
        find(&ha, "Deployment", "driftwatch")["spec"]["strategy"]["type"],
        "RollingUpdate"
    );
    let pdb = find(&ha, "PodDisruptionBudget", "driftwatch");
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    let deployment = find(&ha, "Deployment", "driftwatch");
    assert_eq!(deployment["spec"]["replicas"], 3);
    assert_eq!(
        pdb["spec"]["selector"]["matchLabels"], deployment["spec"]["selector"]["matchLabels"],
        "the PDB selects the controller Pods"
    );
}

#[test]
fn deployment_wires_probes_ports_images_and_job_defaults() {
    let objects = render("driftwatch", "ops", Some("default"), &[]);
    let pod = &find(&objects, "Deployment", "driftwatch")["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(container["image"], "ghcr.io/driftwatch/driftwatch:0.1.0");
    assert_eq!(
        container["ports"],
        json!([{"name": "http", "containerPort": 8080, "protocol": "TCP"}])
    );
    assert_eq!(
        container["livenessProbe"]["httpGet"],
        json!({"path": "/healthz", "port": "http"})
    );
    assert_eq!(
        container["readinessProbe"]["httpGet"],
        json!({"path": "/readyz", "port": "http"})
    );
    let args = controller_args(&objects);
    for expected in [
        "controller",
        "--http-addr=0.0.0.0:8080",
        "--job-image=ghcr.io/driftwatch/driftwatch:0.1.0",
        "--metrics-prefix=video_ai",
    ] {
        assert!(
            args.contains(&expected.to_string()),
            "{expected} missing from {args:?}"
        );
    }
    let service = find(&objects, "Service", "driftwatch");
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "http");
    assert_eq!(
        service["spec"]["selector"],
        find(&objects, "Deployment", "driftwatch")["spec"]["selector"]["matchLabels"]
    );

    // Digest pins win over tags; the Jobs get their own image when set.
    let full = render("driftwatch", "ops", Some("full"), &[]);
    let args = controller_args(&full);
    assert!(args.contains(&"--job-image=registry.example.com/ml/driftwatch-jobs:0.1.0-jobs".to_string()));
    assert!(args.contains(&"--metrics-prefix=ml_drift".to_string()));
    assert!(
        args.contains(&"--lease-duration-seconds=20".to_string()),
        "extraArgs are passed: {args:?}"
    );
    assert!(
        args.iter()
            .any(|a| a.starts_with("--grafana-url=https://grafana.example.com/")),
        "{args:?}"
    );
    assert!(
        args.contains(&"--dashboard-image-origin=https://frames.example.com".to_string())
            && args.contains(&"--dashboard-image-origin=http://10.0.0.5:8080".to_string()),
        "one flag per image origin: {args:?}"
    );
    let default_args = controller_args(&render("driftwatch", "ops", Some("default"), &[]));
    assert!(
        !default_args
            .iter()
            .any(|a| a.starts_with("--grafana-url") || a.starts_with("--dashboard-image-origin")),
        "only when configured"
    );
    let image =
        &find(&full, "Deployment", "driftwatch")["spec"]["template"]["spec"]["containers"][0]["image"];
    assert_eq!(
        image,
        "registry.example.com/ml/driftwatch@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    );
}

/// The value of `--<flag>=…` in the controller's args.
fn arg_value(args: &[String], flag: &str) -> Option<String> {
    let prefix = format!("--{flag}=");
    args.iter()
        .find_map(|a| a.strip_prefix(&prefix).map(str::to_string))
}

#[test]
fn job_resource_defaults_reach_the_controller_and_equal_its_built_in_ones() {
    use driftwatch::controller::drift_monitor::desired::{
        default_check_resources, default_package_resources,
    };
    use k8s_openapi::api::core::v1::ResourceRequirements;
    let parse = |text: Option<String>| -> ResourceRequirements {
        serde_json::from_str(&text.expect("the flag is set")).expect("resources as JSON")
    };
    let args = controller_args(&render("driftwatch", "ops", Some("default"), &[]));
    assert_eq!(
        parse(arg_value(&args, "check-job-resources")),
        default_check_resources()
    );
    assert_eq!(
        parse(arg_value(&args, "package-job-resources")),
        default_package_resources()
    );
    let args = controller_args(&render(
        "driftwatch",
        "ops",
        Some("default"),
        &["jobs.checkResources.limits.memory=8Gi"],
    ));
    let check = parse(arg_value(&args, "check-job-resources"));
    assert_eq!(check.limits.unwrap()["memory"].0, "8Gi");
}

#[test]
fn a_tls_secret_is_mounted_and_served_over_https_without_reading_secrets() {
    let objects = render(
        "driftwatch",
        "ops",
        Some("default"),
        &[
            "http.tls.secretName=driftwatch-tls",
            "serviceMonitor.enabled=true",
        ],
    );
    let pod = &find(&objects, "Deployment", "driftwatch")["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let args = controller_args(&objects);
    assert_eq!(
        arg_value(&args, "tls-cert-file").as_deref(),
        Some("/etc/driftwatch/tls/tls.crt")
    );
    assert_eq!(
        arg_value(&args, "tls-key-file").as_deref(),
        Some("/etc/driftwatch/tls/tls.key")
    );
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "tls")
        .expect("the tls volume");
    assert_eq!(volume["secret"]["secretName"], "driftwatch-tls");
    let mount = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "tls")
        .expect("the tls mount");
    assert_eq!(mount["mountPath"], "/etc/driftwatch/tls");
    assert_eq!(mount["readOnly"], true);
    assert_eq!(container["livenessProbe"]["httpGet"]["scheme"], "HTTPS");
    assert_eq!(container["readinessProbe"]["httpGet"]["scheme"], "HTTPS");
    assert_eq!(
        find(&objects, "ServiceMonitor", "driftwatch")["spec"]["endpoints"][0]["scheme"],
        "https"
    );
    // The certificate arrives as files: the controller's exact RBAC (see
    // controller_rbac_is_exactly_the_calls_the_controller_makes) has no Secrets in it.
    // Without the value: plain HTTP, no volume.
    let plain = render("driftwatch", "ops", Some("default"), &[]);
    assert!(arg_value(&controller_args(&plain), "tls-cert-file").is_none());
    let pod = &find(&plain, "Deployment", "driftwatch")["spec"]["template"]["spec"];
    assert!(pod["containers"][0]["livenessProbe"]["httpGet"]["scheme"].is_null());
}

#[tokio::test]
async fn controller_pod_passes_the_restricted_pod_security_standard() {
    let cp = ControlPlane::shared();
    let ns = "ops-restricted";
    ensure_namespace(
        cp,
        ns,
        json!({"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest"}),
    )
    .await;
    let pods: Api<DynamicObject> = Api::namespaced_with(
        cp.client().await,
        ns,
        &kube::core::ApiResource::erase::<k8s_openapi::api::core::v1::Pod>(&()),
    );
    let params = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let pod_of = |objects: &[Value], spec_patch: Option<Value>| -> DynamicObject {
        let mut spec = find(objects, "Deployment", "driftwatch")["spec"]["template"]["spec"].clone();
        if let Some(patch) = spec_patch {
            spec["containers"][0]["securityContext"] = patch;
        }
        serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "driftwatch-controller", "namespace": ns},
            "spec": spec,
        }))
        .expect("pod")
    };
    for set in value_sets() {
        let objects = render("driftwatch", "ops", Some(&set), &[]);
        if let Err(err) = pods.create(&params, &pod_of(&objects, None)).await {
            panic!("[{set}] the controller Pod is refused by Pod Security (restricted): {err}");
        }
    }
    // The namespace does enforce: the same Pod with a container allowed to escalate is refused.
    let objects = render("driftwatch", "ops", Some("default"), &[]);
    let refused = pods
        .create(
            &params,
            &pod_of(&objects, Some(json!({"allowPrivilegeEscalation": true}))),
        )
        .await
        .expect_err("a Pod allowing privilege escalation is refused");
    assert!(refused.to_string().contains("restricted"), "{refused}");
}

/// The rendered CRD without the chart's labels and keep annotation.
fn without_chart_metadata(mut crd: Value) -> Value {
    let meta = crd["metadata"].as_object_mut().expect("metadata");
    if let Some(Value::Object(labels)) = meta.get_mut("labels") {
        labels.retain(|k, _| !k.starts_with("app.kubernetes.io/") && k != "helm.sh/chart");
        if labels.is_empty() {
            meta.remove("labels");
        }
    }
    if let Some(Value::Object(annotations)) = meta.get_mut("annotations") {
        annotations.remove("helm.sh/resource-policy");
        if annotations.is_empty() {
            meta.remove("annotations");
        }
    }
    crd
}

#[test]
fn chart_crds_are_the_generated_crds() {
    // Byte-identical copies (hack/sync-chart-files.sh) ...
    let mut sources: Vec<PathBuf> = std::fs::read_dir(root().join("crds"))
        .expect("read crds/")
        .flatten()
        .map(|e| e.path())
        .collect();
    sources.sort();
    for source in &sources {
        let copy = chart().join("files/crds").join(source.file_name().unwrap());
        // Compared as a bool: a diff of two whole CRDs buries the message.
        assert!(
            std::fs::read(source).unwrap() == std::fs::read(&copy).unwrap_or_default(),
            "{} differs from {}: run hack/sync-chart-files.sh",
            copy.display(),
            source.display()
        );
    }
    // ... and what the chart renders from them is the same objects (plus labels and the keep policy).
    let objects = render("driftwatch", "ops", Some("default"), &[]);
    let rendered = all_of(&objects, "CustomResourceDefinition");
    assert_eq!(rendered.len(), sources.len());
    for crd in rendered {
        assert_eq!(crd["metadata"]["annotations"]["helm.sh/resource-policy"], "keep");
        let source = root().join("crds").join(format!("{}.yaml", name(crd)));
        let expected: Value = serde_yaml::from_str(&std::fs::read_to_string(&source).unwrap()).unwrap();
        assert!(
            without_chart_metadata(crd.clone()) == expected,
            "rendered {} differs from {}",
            name(crd),
            source.display()
        );
    }
    let not_kept = render("driftwatch", "ops", Some("default"), &["crds.keep=false"]);
    for crd in all_of(&not_kept, "CustomResourceDefinition") {
        assert!(crd["metadata"]["annotations"]["helm.sh/resource-policy"].is_null());
    }
    let none = render("driftwatch", "ops", Some("default"), &["crds.install=false"]);
    assert!(all_of(&none, "CustomResourceDefinition").is_empty());
}

#[test]
fn monitoring_objects_come_from_the_config_files() {
    let objects = render(
        "driftwatch",
        "ops",
        Some("default"),
        &[
            "prometheusRule.enabled=true",
            "grafanaDashboard.enabled=true",
            "serviceMonitor.enabled=true",
        ],
    );
    let rules: Value = serde_yaml::from_str(
        &std::fs::read_to_string(root().join("config/prometheus/alert.rules.yml")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        find(&objects, "PrometheusRule", "driftwatch")["spec"]["groups"],
        rules["groups"]
    );
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("config/grafana/driftwatch.json")).unwrap(),
    )
    .unwrap();
    let config_map = find(&objects, "ConfigMap", "driftwatch-dashboard");
    assert_eq!(config_map["metadata"]["labels"]["grafana_dashboard"], "1");
    let rendered: Value =
        serde_json::from_str(config_map["data"]["driftwatch.json"].as_str().unwrap()).unwrap();
    assert_eq!(rendered, dashboard);
    let monitor = find(&objects, "ServiceMonitor", "driftwatch");
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "http");
    assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");
    // The metrics' own `namespace` label (the monitor's) wins over the target's (the controller's).
    assert_eq!(monitor["spec"]["endpoints"][0]["honorLabels"], true);
    assert_eq!(
        monitor["spec"]["selector"]["matchLabels"],
        find(&objects, "Service", "driftwatch")["metadata"]["labels"]
            .as_object()
            .map(|labels| {
                let selector = &find(&objects, "Deployment", "driftwatch")["spec"]["selector"]["matchLabels"];
                let mut picked = serde_json::Map::new();
                for key in selector.as_object().unwrap().keys() {
                    picked.insert(key.clone(), labels[key].clone());
                }
                Value::Object(picked)
            })
            .unwrap(),
        "the ServiceMonitor selects the Service"
    );

    // A custom metric prefix rewrites the rules and the dashboard.
    let custom = render("driftwatch", "ops", Some("full"), &[]);
    let text = serde_json::to_string(&find(&custom, "PrometheusRule", "driftwatch")["spec"]).unwrap();
    assert!(text.contains("ml_drift_drift_score") && !text.contains("video_ai_"));
    let text = find(&custom, "ConfigMap", "driftwatch-dashboard")["data"]["driftwatch.json"]
        .as_str()
        .unwrap();
    assert!(text.contains("ml_drift_drift_score") && !text.contains("video_ai_"));
}

// ---- the approval policy, for real ----------------------------------------------------------------------

fn event(name: &str, monitor: &str) -> Value {
    json!({
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
    })
}

fn drift_event_resource() -> kube::core::ApiResource {
    kube::core::ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("driftwatch.dev", "v1alpha1", "DriftEvent"),
        "driftevents",
    )
}

async fn decide(
    cp: &ControlPlane,
    ns: &str,
    user: &str,
    groups: &[String],
    event: &str,
    approved_by: &str,
    dry_run: bool,
) -> Result<(), String> {
    let groups: Vec<&str> = groups.iter().map(String::as_str).collect();
    let api: Api<DynamicObject> =
        Api::namespaced_with(cp.impersonate(user, &groups).await, ns, &drift_event_resource());
    let patch =
        json!({"spec": {"approval": {"decision": "Approve", "approvedBy": approved_by, "reason": "test"}}});
    let params = PatchParams {
        dry_run,
        ..PatchParams::default()
    };
    api.patch(event, &params, &Patch::Merge(&patch))
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

async fn can(cp: &ControlPlane, user: &str, attributes: Value) -> bool {
    let review: SubjectAccessReview = serde_json::from_value(json!({
        "spec": {"user": user, "groups": ["system:serviceaccounts", "system:authenticated"], "resourceAttributes": attributes}
    }))
    .unwrap();
    let api: Api<SubjectAccessReview> = Api::all(cp.client().await);
    let reviewed = api
        .create(&PostParams::default(), &review)
        .await
        .expect("SubjectAccessReview");
    reviewed.status.map(|s| s.allowed).unwrap_or(false)
}

async fn bind(cp: &ControlPlane, ns: &str, name: &str, role_kind: &str, role: &str, user: &str) {
    let binding = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]
    });
    let errors = apply_all(cp, &[binding], ns, true).await;
    assert!(errors.is_empty(), "{errors:?}");
}

#[tokio::test]
async fn approval_policy_admits_only_the_deciding_user_holding_approve() {
    let cp = ControlPlane::shared();
    let ns = cp.namespace("approval").await;
    // Install the release for real (the CRDs are already there), watching only this namespace so the
    // policy binding does not reach other tests' namespaces.
    install(
        cp,
        "driftwatch",
        &ns,
        &[&format!("controller.watchNamespaces={{{ns}}}")],
    )
    .await;
    let controller_user = format!("system:serviceaccount:{ns}:driftwatch");

    // The controller's ServiceAccount holds what it needs and nothing of Secrets.
    let ns_attr = |verb: &str, group: &str, resource: &str| json!({"namespace": ns, "verb": verb, "group": group, "resource": resource});
    assert!(can(cp, &controller_user, ns_attr("create", "batch", "jobs")).await);
    assert!(
        can(
            cp,
            &controller_user,
            ns_attr("patch", "driftwatch.dev", "driftevents")
        )
        .await
    );
    assert!(
        can(
            cp,
            &controller_user,
            json!({"verb": "create", "group": "authorization.k8s.io", "resource": "subjectaccessreviews"})
        )
        .await
    );
    assert!(
        !can(cp, &controller_user, ns_attr("get", "", "secrets")).await,
        "the controller never reads Secrets"
    );
    assert!(
        !can(
            cp,
            &controller_user,
            ns_attr("update", "driftwatch.dev", "driftevents")
        )
        .await
    );
    // It impersonates nobody (default: it writes decisions as itself, exempt from the policy).
    assert!(
        !can(
            cp,
            &controller_user,
            json!({"verb": "impersonate", "resource": "users", "name": "alice"})
        )
        .await
    );

    // Who is who: alice approves anything in the namespace, carol only monitor "frames", mallory may patch
    // events but holds no approve.
    bind(
        cp,
        &ns,
        "alice-approver",
        "ClusterRole",
        "driftwatch-approver",
        "alice",
    )
    .await;
    let carol_role = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "approve-frames", "namespace": ns},
        "rules": [
            {"apiGroups": ["driftwatch.dev"], "resources": ["driftmonitors"], "resourceNames": ["frames"], "verbs": ["approve"]},
            {"apiGroups": ["driftwatch.dev"], "resources": ["driftevents"], "verbs": ["get", "patch"]}
        ]
    });
    let mallory_role = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "patch-events", "namespace": ns},
        "rules": [{"apiGroups": ["driftwatch.dev"], "resources": ["driftevents"], "verbs": ["get", "patch"]}]
    });
    assert!(
        apply_all(cp, &[carol_role, mallory_role], &ns, true)
            .await
            .is_empty()
    );
    bind(cp, &ns, "carol-frames", "Role", "approve-frames", "carol").await;
    bind(cp, &ns, "mallory-patch", "Role", "patch-events", "mallory").await;
    let default_sa = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "default-sa-patch", "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "patch-events"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": ns}]
    });
    assert!(apply_all(cp, &[default_sa], &ns, true).await.is_empty());

    let events: Api<DynamicObject> = Api::namespaced_with(cp.client().await, &ns, &drift_event_resource());
    for (name, monitor) in [
        ("e-alice", "frames"),
        ("e-alice-other", "frames"),
        ("e-mallory", "frames"),
        ("e-carol", "frames"),
        ("e-carol-other", "audio"),
        ("e-controller", "frames"),
    ] {
        let object: DynamicObject = serde_json::from_value(event(name, monitor)).unwrap();
        events
            .create(&PostParams::default(), &object)
            .await
            .expect("create DriftEvent (no decision: admitted)");
    }

    // The policy is enforced asynchronously after creation: probe with dry runs until mallory is refused.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match decide(cp, &ns, "mallory", &[], "e-mallory", "mallory", true).await {
            Err(err) if err.contains("may not decide events") => break,
            other => {
                assert!(
                    Instant::now() < deadline,
                    "the admission policy never took effect: {other:?}"
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }

    decide(cp, &ns, "alice", &[], "e-alice", "alice", false)
        .await
        .expect("alice approves as herself");
    let decided = events.get("e-alice").await.unwrap();
    assert_eq!(decided.data["spec"]["approval"]["approvedBy"], "alice");

    let err = decide(cp, &ns, "alice", &[], "e-alice-other", "bob", false)
        .await
        .expect_err("not as someone else");
    assert!(err.contains("approvedBy must be the requesting user"), "{err}");

    let err = decide(cp, &ns, "mallory", &[], "e-mallory", "mallory", false)
        .await
        .expect_err("no approve verb");
    assert!(
        err.contains("may not decide events of DriftMonitor") && err.contains("driftwatch-approver"),
        "{err}"
    );

    decide(cp, &ns, "carol", &[], "e-carol", "carol", false)
        .await
        .expect("carol approves events of frames");
    let err = decide(cp, &ns, "carol", &[], "e-carol-other", "carol", false)
        .await
        .expect_err("but not of audio");
    assert!(err.contains(&format!("{ns}/audio")), "{err}");

    // The controller's HTTP API authenticated and authorized the caller itself and records them.
    decide(
        cp,
        &ns,
        &controller_user,
        &sa_groups(&ns),
        "e-controller",
        "alice",
        false,
    )
    .await
    .expect("the controller records the decision of the caller it authenticated");
    // Another ServiceAccount of the same namespace (allowed to patch events) is not exempt.
    let err = decide(
        cp,
        &ns,
        &format!("system:serviceaccount:{ns}:default"),
        &sa_groups(&ns),
        "e-alice-other",
        "alice",
        false,
    )
    .await
    .expect_err("only the controller's ServiceAccount is exempt");
    assert!(err.contains("approvedBy must be the requesting user"), "{err}");

    // Edits that do not touch the decision are not the policy's business.
    let api: Api<DynamicObject> =
        Api::namespaced_with(cp.impersonate("mallory", &[]).await, &ns, &drift_event_resource());
    api.patch(
        "e-alice",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"seen": "yes"}}})),
    )
    .await
    .expect("a label edit on a decided event is admitted");
}

fn sa_groups(ns: &str) -> Vec<String> {
    vec![
        "system:serviceaccounts".to_string(),
        format!("system:serviceaccounts:{ns}"),
    ]
}

/// Installs a release for real (no CRDs: the control plane has them); returns nothing, panics on errors.
async fn install(cp: &ControlPlane, release: &str, ns: &str, sets: &[&str]) {
    let objects: Vec<Value> = render(release, ns, Some("default"), sets)
        .into_iter()
        .filter(|o| kind(o) != "CustomResourceDefinition")
        .collect();
    let errors = apply_all(cp, &objects, ns, true).await;
    assert!(errors.is_empty(), "install {release}: {errors:?}");
}

#[tokio::test]
async fn with_impersonation_the_controller_is_not_exempt() {
    let cp = ControlPlane::shared();
    let ns = cp.namespace("impersonation").await;
    install(
        cp,
        "imp",
        &ns,
        &[
            &format!("controller.watchNamespaces={{{ns}}}"),
            "rbac.impersonation=true",
            "rbac.userRoles=false",
        ],
    )
    .await;
    let controller_user = format!("system:serviceaccount:{ns}:imp-driftwatch");
    // It may write as the caller ...
    assert!(
        can(
            cp,
            &controller_user,
            json!({"verb": "impersonate", "resource": "users", "name": "alice"})
        )
        .await
    );
    assert!(
        can(
            cp,
            &controller_user,
            json!({"verb": "impersonate", "resource": "groups", "name": "ml-reviewers"})
        )
        .await
    );
    let events: Api<DynamicObject> = Api::namespaced_with(cp.client().await, &ns, &drift_event_resource());
    let object: DynamicObject = serde_json::from_value(event("e-controller", "frames")).unwrap();
    events
        .create(&PostParams::default(), &object)
        .await
        .expect("create DriftEvent");
    // ... so as itself it is checked like anyone: it cannot decide in alice's name.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match decide(
            cp,
            &ns,
            &controller_user,
            &sa_groups(&ns),
            "e-controller",
            "alice",
            true,
        )
        .await
        {
            Err(err) if err.contains("approvedBy must be the requesting user") => break,
            other => {
                assert!(
                    Instant::now() < deadline,
                    "the admission policy never refused the controller: {other:?}"
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}

// ---- config/ and the Argo CD example --------------------------------------------------------------------

/// Files under config/ that are not Kubernetes objects (checked by hack/ops-test.sh instead).
const NOT_KUBERNETES: &[&str] = &[
    "config/prometheus/alert.rules.yml",
    "config/prometheus/alert.rules.test.yml",
    "config/alertmanager/alertmanager.yml",
];

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
            out.push(path);
        }
    }
}

#[tokio::test]
async fn config_manifests_and_the_argocd_example_are_accepted() {
    let cp = ControlPlane::shared();
    ensure_third_party_crds(cp).await;
    let ns = cp.namespace("config").await;
    let mut files = Vec::new();
    yaml_files(&root().join("config"), &mut files);
    files.push(root().join("examples/argocd/application.yaml"));
    files.sort();
    let mut failures = Vec::new();
    let mut applied = 0;
    for file in files {
        let relative = file.strip_prefix(root()).unwrap().to_string_lossy().to_string();
        if NOT_KUBERNETES.contains(&relative.as_str()) {
            continue;
        }
        let objects = yaml_documents(&std::fs::read_to_string(&file).unwrap());
        if objects.is_empty()
            || objects
                .iter()
                .any(|o| o["apiVersion"].is_null() || o["kind"].is_null())
        {
            failures.push(format!(
                "{relative}: not a Kubernetes manifest (list it in NOT_KUBERNETES if intended)"
            ));
            continue;
        }
        for other in other_namespaces(&objects, &ns) {
            ensure_namespace(cp, &other, json!({})).await;
        }
        for error in apply_all(cp, &objects, &ns, false).await {
            failures.push(format!("{relative}: {error}"));
        }
        applied += objects.len();
    }
    assert!(failures.is_empty(), "rejected:\n{}", failures.join("\n"));
    assert!(
        applied >= 2,
        "expected at least argocd-cm and the Application, applied {applied}"
    );
}
