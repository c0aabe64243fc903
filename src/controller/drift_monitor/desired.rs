//! The desired drift-check Job of a monitor for one slot, and the deterministic names of a monitor's
//! children. Pure: builds objects from the monitor, the slot and the controller settings; no I/O.

use std::collections::BTreeMap;

use jiff::{Timestamp, tz::TimeZone};
use k8s_openapi::{
    api::{
        batch::v1::{Job, JobSpec},
        core::v1::{
            Capabilities, Container, EnvVar, EnvVarSource, PodSecurityContext, PodSpec, PodTemplateSpec,
            ResourceRequirements, SeccompProfile, SecretKeySelector, SecurityContext, Volume,
        },
    },
    apimachinery::pkg::api::resource::Quantity,
};
use kube::{Resource, ResourceExt, api::ObjectMeta};

use crate::{
    api::v1alpha1::{DriftMonitor, JobTemplateSpec, QdrantSource, SamplingSpec, TimestampFormat},
    telemetry::LogFormat,
};

/// Label keys and values on every child of a monitor.
pub mod labels {
    pub const NAME: &str = "app.kubernetes.io/name";
    pub const COMPONENT: &str = "app.kubernetes.io/component";
    pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
    pub const MONITOR: &str = "driftwatch.dev/monitor";
    pub const APP: &str = "driftwatch";
    pub const CHECK_COMPONENT: &str = "drift-check";
}

/// Annotations the controller sets or reads.
pub mod annotations {
    /// On a monitor: a request to run a check now (any new value runs once).
    pub const RUN_NOW: &str = "driftwatch.dev/run-now";
    /// On a check Job: its slot time (RFC 3339).
    pub const SLOT: &str = "driftwatch.dev/slot";
    /// On a finished check Job: its result is part of the monitor's status (set once it was written), so
    /// whether a Job was processed does not depend on how much history the status keeps.
    pub const PROCESSED: &str = "driftwatch.dev/processed";
}

/// Path of the termination log the check writes its result to.
pub const TERMINATION_LOG: &str = "/dev/termination-log";
/// Env var carrying the Qdrant API key.
pub const QDRANT_API_KEY_ENV: &str = "QDRANT_API_KEY";
/// Default `activeDeadlineSeconds` of a check Job.
pub const DEFAULT_ACTIVE_DEADLINE_SECONDS: i64 = 1800;
/// Default `backoffLimit` of a check Job.
pub const DEFAULT_BACKOFF_LIMIT: i32 = 1;
/// User and group the check runs as.
pub const RUN_AS_USER: i64 = 65532;

const MAX_JOB_NAME: usize = 63;
const MAX_LABEL_VALUE: usize = 63;
const MAX_OBJECT_NAME: usize = 253;
const SLOT_SUFFIX_LEN: usize = 13; // "-yyyymmddhhmm"

/// Env var that selects the Jobs' log format (read by `driftwatch --log-format`).
pub const LOG_FORMAT_ENV: &str = "DRIFTWATCH_LOG_FORMAT";

/// Controller settings that shape the Jobs.
#[derive(Clone, Debug)]
pub struct JobSettings {
    /// Image of the check and packaging Jobs (the operator's own image).
    pub image: String,
    /// Container resources of a check Job whose monitor sets no `jobTemplate.resources`.
    pub check_resources: ResourceRequirements,
    /// Container resources of a packaging Job whose monitor sets neither `jobTemplate.packageResources`
    /// nor `jobTemplate.resources`.
    pub package_resources: ResourceRequirements,
    /// Log format of the Jobs (the controller's own).
    pub log_format: LogFormat,
}

impl JobSettings {
    /// Settings with the default resources ([`default_check_resources`], [`default_package_resources`])
    /// and text logs.
    pub fn new(image: impl Into<String>) -> Self {
        Self {
            image: image.into(),
            check_resources: default_check_resources(),
            package_resources: default_package_resources(),
            log_format: LogFormat::Text,
        }
    }
}

/// `requests` of cpu and memory and a `limits` of memory (no CPU limit: throttling only slows a Job down).
pub fn resources(cpu: &str, memory: &str, memory_limit: &str) -> ResourceRequirements {
    let quantity = |q: &str| Quantity(q.to_string());
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_string(), quantity(cpu)),
            ("memory".to_string(), quantity(memory)),
        ])),
        limits: Some(BTreeMap::from([("memory".to_string(), quantity(memory_limit))])),
        ..ResourceRequirements::default()
    }
}

/// Default resources of a check Job: the drift engine peaks at about 1.25× its vectors (439 MiB for
/// 100,000 + 20,000 points of 768 dimensions, docs/research/kl-vs-emd.md); the default sampling (20,000 +
/// 5,000) is a fifth of that.
pub fn default_check_resources() -> ResourceRequirements {
    resources("250m", "512Mi", "2Gi")
}

/// Default resources of a packaging Job: it streams points to disk and uploads in parts.
pub fn default_package_resources() -> ResourceRequirements {
    resources("100m", "256Mi", "1Gi")
}

/// Why a Job cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum DesiredError {
    #[error("monitor has no {0}")]
    MissingMetadata(&'static str),
    #[error("failed to encode {what} as JSON")]
    Encode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

/// The slot as it appears in names: `yyyymmddhhmm` in UTC.
pub fn slot_stamp(slot: Timestamp) -> String {
    slot.to_zoned(TimeZone::UTC).strftime("%Y%m%d%H%M").to_string()
}

/// FNV-1a, stable across builds and platforms, for name shortening.
fn short_hash(text: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:08x}", hash & 0xffff_ffff)
}

/// `name` if it fits in `max`, else a prefix plus a hash of the whole name; dots become dashes.
pub fn fit(name: &str, max: usize) -> String {
    let clean: String = name.chars().map(|c| if c == '.' { '-' } else { c }).collect();
    if clean.len() <= max {
        return clean;
    }
    let keep = max.saturating_sub(9);
    let prefix = clean.get(..keep).unwrap_or_default().trim_end_matches('-');
    format!("{prefix}-{}", short_hash(name))
}

/// The value of the `driftwatch.dev/monitor` label: the monitor name, hash-shortened to 63 characters.
pub fn monitor_label(monitor: &str) -> String {
    fit(monitor, MAX_LABEL_VALUE)
}

/// Deterministic check Job name: `<monitor>-<yyyymmddhhmm>`, at most 63 characters.
pub fn job_name(monitor: &str, slot: Timestamp) -> String {
    format!(
        "{}-{}",
        fit(monitor, MAX_JOB_NAME - SLOT_SUFFIX_LEN),
        slot_stamp(slot)
    )
}

/// Deterministic DriftEvent name: `<monitor>-<yyyymmddhhmm>` of the detecting check's slot.
pub fn event_name(monitor: &str, slot: Timestamp) -> String {
    format!(
        "{}-{}",
        fit(monitor, MAX_OBJECT_NAME - SLOT_SUFFIX_LEN),
        slot_stamp(slot)
    )
}

/// Labels of every check Job (and its Pod) of a monitor.
pub fn check_labels(monitor: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (labels::NAME.to_string(), labels::APP.to_string()),
        (labels::COMPONENT.to_string(), labels::CHECK_COMPONENT.to_string()),
        (labels::MANAGED_BY.to_string(), labels::APP.to_string()),
        (labels::MONITOR.to_string(), monitor_label(monitor)),
    ])
}

/// Label selector matching every check Job of a monitor.
pub fn check_selector(monitor: &str) -> String {
    format!(
        "{}={},{}={}",
        labels::COMPONENT,
        labels::CHECK_COMPONENT,
        labels::MONITOR,
        monitor_label(monitor)
    )
}

pub fn rfc3339(t: Timestamp) -> String {
    t.to_string()
}

pub fn json<T: serde::Serialize>(what: &'static str, value: &T) -> Result<String, DesiredError> {
    serde_json::to_string(value).map_err(|source| DesiredError::Encode { what, source })
}

/// The `--timestamp-format` value of the Job commands.
pub fn timestamp_format_flag(format: TimestampFormat) -> &'static str {
    match format {
        TimestampFormat::Rfc3339 => "rfc3339",
        TimestampFormat::UnixSeconds => "unixSeconds",
        TimestampFormat::UnixMillis => "unixMillis",
    }
}

/// The flags that select a monitor's points in Qdrant, shared by `driftwatch check` and `driftwatch package`:
/// endpoint, `collection`, named vector, timestamp field and format, payload filter.
pub fn qdrant_source_args(q: &QdrantSource, collection: &str) -> Result<Vec<String>, DesiredError> {
    let mut args = vec![
        "--qdrant-url".to_string(),
        q.url.clone(),
        "--collection".to_string(),
        collection.to_string(),
    ];
    if let Some(vector) = q.vector_name.as_ref().filter(|v| !v.is_empty()) {
        args.extend(["--vector-name".to_string(), vector.clone()]);
    }
    args.extend([
        "--timestamp-field".to_string(),
        q.timestamp_field.clone(),
        "--timestamp-format".to_string(),
        timestamp_format_flag(q.timestamp_format).to_string(),
    ]);
    if let Some(filter) = &q.filter {
        args.extend(["--filter".to_string(), json("source.qdrant.filter", filter)?]);
    }
    Ok(args)
}

/// The flags that say how windows are sampled and read, shared by `driftwatch check` and
/// `driftwatch package`: mode, sample-key field, strata, read concurrency, page size.
pub fn sampling_args(sampling: &SamplingSpec) -> Vec<String> {
    let mut args = vec!["--sampling-mode".to_string(), sampling.mode.as_str().to_string()];
    if let Some(field) = sampling.sample_key_field.as_ref().filter(|f| !f.is_empty()) {
        args.extend(["--sample-key-field".to_string(), field.clone()]);
    }
    args.extend([
        "--strata".to_string(),
        sampling.strata.to_string(),
        "--read-concurrency".to_string(),
        sampling.read_concurrency.to_string(),
    ]);
    if let Some(size) = sampling.page_size {
        args.extend(["--page-size".to_string(), size.to_string()]);
    }
    args
}

/// The `driftwatch check` arguments for a monitor and slot.
pub fn check_args(
    monitor: &DriftMonitor,
    slot: Timestamp,
    check_id: &str,
) -> Result<Vec<String>, DesiredError> {
    let spec = &monitor.spec;
    let q = &spec.source.qdrant;
    let mut args: Vec<String> = vec!["check".into()];
    args.extend(qdrant_source_args(q, &q.collection)?);
    let mut flag = |name: &str, value: String| {
        args.push(format!("--{name}"));
        args.push(value);
    };
    if let Some(field) = q.confidence_field.as_ref().filter(|f| !f.is_empty()) {
        flag("confidence-field", field.clone());
    }
    let reference = &spec.windows.reference;
    if let Some(duration) = &reference.duration {
        flag("reference", duration.clone());
    }
    if let Some(offset) = &reference.offset {
        flag("reference-offset", offset.clone());
    }
    if let Some(start) = &reference.start {
        flag("reference-start", rfc3339(start.0));
    }
    if let Some(end) = &reference.end {
        flag("reference-end", rfc3339(end.0));
    }
    if let Some(collection) = &reference.collection {
        flag("reference-collection", collection.clone());
    }
    if let Some(filter) = &reference.filter {
        flag("reference-filter", json("windows.reference.filter", filter)?);
    }
    let comparison = &spec.windows.comparison;
    flag("comparison", comparison.duration.clone());
    if let Some(offset) = &comparison.offset {
        flag("comparison-offset", offset.clone());
    }
    flag("at", rfc3339(slot));
    flag("max-reference", spec.sampling.max_reference.to_string());
    flag("max-comparison", spec.sampling.max_comparison.to_string());
    flag("min-samples", spec.sampling.min_samples.to_string());
    flag("seed", spec.sampling.seed.to_string());
    if let Some(alpha) = spec.alpha {
        flag("alpha", alpha.to_string());
    }
    args.extend(sampling_args(&spec.sampling));
    let mut flag = |name: &str, value: String| {
        args.push(format!("--{name}"));
        args.push(value);
    };
    if !spec.detectors.is_empty() {
        flag("detectors-json", json("detectors", &spec.detectors)?);
    }
    if let Some(explain) = &spec.explain {
        flag("explain", "true".to_string());
        for field in &explain.slice_fields {
            flag("slice-field", field.clone());
        }
        for field in &explain.display_fields {
            flag("display-field", field.clone());
        }
        if let Some(examples) = explain.examples {
            flag("explain-examples", examples.to_string());
        }
        if let Some(min) = explain.min_slice_points {
            flag("min-slice-points", min.to_string());
        }
        if explain.regions == Some(false) {
            flag("explain-regions", "false".to_string());
        }
    }
    flag("check-id", check_id.to_string());
    flag("termination-log", TERMINATION_LOG.to_string());
    flag("output", "json".to_string());
    Ok(args)
}

/// The restricted Pod Security Standard for a Job's container: no privilege escalation, read-only root
/// filesystem, non-root, all capabilities dropped, the runtime's default seccomp profile.
pub fn restricted_container_security() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_string()]),
            add: None,
        }),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".to_string(),
            localhost_profile: None,
        }),
        ..SecurityContext::default()
    }
}

/// The Pod-level half of [`restricted_container_security`]: a fixed non-root user and group.
pub fn restricted_pod_security() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(RUN_AS_USER),
        run_as_group: Some(RUN_AS_USER),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".to_string(),
            localhost_profile: None,
        }),
        ..PodSecurityContext::default()
    }
}

/// An env var filled by the kubelet from a Secret key (the controller never reads the value).
pub fn secret_env(name: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.to_string(),
                key: key.to_string(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

/// The Pod of a controller Job: one container, never restarted, no Kubernetes token, the restricted
/// security context, scheduling fields from `spec.jobTemplate`.
pub fn job_pod_spec(container: Container, template: &JobTemplateSpec, volumes: Vec<Volume>) -> PodSpec {
    PodSpec {
        containers: vec![container],
        restart_policy: Some("Never".to_string()),
        automount_service_account_token: Some(false),
        service_account_name: template.service_account_name.clone(),
        node_selector: (!template.node_selector.is_empty()).then(|| template.node_selector.clone()),
        tolerations: (!template.tolerations.is_empty()).then(|| template.tolerations.clone()),
        affinity: template.affinity.clone(),
        priority_class_name: template.priority_class_name.clone(),
        security_context: Some(restricted_pod_security()),
        volumes: (!volumes.is_empty()).then_some(volumes),
        ..PodSpec::default()
    }
}

/// The check Job for `slot`, owned by the monitor.
pub fn check_job(
    monitor: &DriftMonitor,
    slot: Timestamp,
    run_now: Option<&str>,
    settings: &JobSettings,
) -> Result<Job, DesiredError> {
    let name = monitor
        .metadata
        .name
        .as_deref()
        .ok_or(DesiredError::MissingMetadata("name"))?;
    let namespace = monitor
        .metadata
        .namespace
        .as_deref()
        .ok_or(DesiredError::MissingMetadata("namespace"))?;
    let owner = monitor
        .controller_owner_ref(&())
        .ok_or(DesiredError::MissingMetadata("uid"))?;
    let job_name = job_name(name, slot);
    let template = monitor.spec.job_template.clone().unwrap_or_default();
    let labels = check_labels(name);
    let mut annotations = BTreeMap::from([(annotations::SLOT.to_string(), rfc3339(slot))]);
    if let Some(request) = run_now {
        annotations.insert(annotations::RUN_NOW.to_string(), request.to_string());
    }
    let env = monitor
        .spec
        .source
        .qdrant
        .api_key_secret_ref
        .as_ref()
        .map(|secret| secret_env(QDRANT_API_KEY_ENV, &secret.name, &secret.key))
        .into_iter()
        .collect::<Vec<_>>();
    let resources = template
        .resources
        .clone()
        .unwrap_or_else(|| settings.check_resources.clone());
    let container = driftwatch_container(
        "check",
        settings,
        check_args(monitor, slot, &job_name)?,
        env,
        resources,
    );
    let pod = job_pod_spec(container, &template, Vec::new());
    Ok(controller_job(
        ObjectMeta {
            name: Some(job_name),
            namespace: Some(namespace.to_string()),
            annotations: Some(annotations),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        labels,
        template.backoff_limit.unwrap_or(DEFAULT_BACKOFF_LIMIT),
        template
            .active_deadline_seconds
            .unwrap_or(DEFAULT_ACTIVE_DEADLINE_SECONDS),
        pod,
    ))
}

/// The container of a controller Job: the `driftwatch` binary with `args`, the restricted security
/// context, `resources`, the controller's log format, and the result document written to the termination
/// message.
pub fn driftwatch_container(
    name: &str,
    settings: &JobSettings,
    args: Vec<String>,
    mut env: Vec<EnvVar>,
    resources: ResourceRequirements,
) -> Container {
    env.push(EnvVar {
        name: LOG_FORMAT_ENV.to_string(),
        value: Some(settings.log_format.as_str().to_string()),
        ..EnvVar::default()
    });
    Container {
        name: name.to_string(),
        image: Some(settings.image.clone()),
        image_pull_policy: Some("IfNotPresent".to_string()),
        command: Some(vec!["driftwatch".to_string()]),
        args: Some(args),
        env: Some(env),
        resources: Some(resources),
        termination_message_path: Some(TERMINATION_LOG.to_string()),
        termination_message_policy: Some("File".to_string()),
        security_context: Some(restricted_container_security()),
        ..Container::default()
    }
}

/// A controller Job running `pod`, with `labels` on the Job and on its Pod.
pub fn controller_job(
    metadata: ObjectMeta,
    labels: BTreeMap<String, String>,
    backoff_limit: i32,
    active_deadline_seconds: i64,
    pod: PodSpec,
) -> Job {
    Job {
        metadata: ObjectMeta {
            labels: Some(labels.clone()),
            ..metadata
        },
        spec: Some(JobSpec {
            backoff_limit: Some(backoff_limit),
            active_deadline_seconds: Some(active_deadline_seconds),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod),
            },
            ..JobSpec::default()
        }),
        status: None,
    }
}

/// Name of the monitor that owns a Job, from its owner references.
pub fn owning_monitor(job: &Job) -> Option<String> {
    job.owner_references()
        .iter()
        .find(|o| o.kind == "DriftMonitor" && o.controller == Some(true))
        .map(|o| o.name.clone())
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ResourceRequirements;

    use super::*;
    use crate::api::v1alpha1::{DriftMonitorSpec, JobTemplateSpec};

    fn monitor(name: &str) -> DriftMonitor {
        let spec: DriftMonitorSpec = serde_json::from_value(serde_json::json!({
            "schedule": "0 2 * * *",
            "source": {"qdrant": {
                "url": "http://qdrant:6334",
                "collection": "video_frames",
                "apiKeySecretRef": {"name": "qdrant", "key": "api-key"},
                "confidenceField": "confidence",
                "filter": {"must": [{"key": "model_version", "match": {"keyword": "v3"}}]}
            }},
            "windows": {"reference": {"duration": "7d", "offset": "24h"}, "comparison": {"duration": "24h"}},
            "detectors": [{"method": "kl_divergence", "source": "embeddings", "threshold": 0.1}]
        }))
        .unwrap();
        let mut monitor = DriftMonitor::new(name, spec);
        monitor.metadata.namespace = Some("ml".into());
        monitor.metadata.uid = Some("uid-1".into());
        monitor
    }

    fn slot() -> Timestamp {
        "2026-03-01T02:00:00Z".parse().unwrap()
    }

    fn settings() -> JobSettings {
        JobSettings {
            check_resources: default_check_resources(),
            package_resources: default_package_resources(),
            log_format: LogFormat::Text,
            image: "ghcr.io/driftwatch/driftwatch:1".into(),
        }
    }

    fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
        args.iter()
            .position(|a| a == &format!("--{name}"))
            .map(|i| args[i + 1].as_str())
    }

    #[test]
    fn job_name_is_monitor_and_slot_minute() {
        assert_eq!(job_name("frames", slot()), "frames-202603010200");
    }

    #[test]
    fn long_monitor_names_are_hash_shortened_to_a_valid_job_name() {
        let long = "a".repeat(70);
        let other = format!("{}b", "a".repeat(69));
        let name = job_name(&long, slot());
        assert!(name.len() <= 63, "{name}");
        assert!(name.ends_with("-202603010200"));
        assert_ne!(name, job_name(&other, slot()));
        assert_eq!(name, job_name(&long, slot()));
        assert!(monitor_label(&long).len() <= 63);
    }

    #[test]
    fn shortened_names_never_end_a_segment_with_a_dash() {
        let name = job_name(&format!("{}-{}", "a".repeat(40), "b".repeat(30)), slot());
        assert!(!name.contains("--"), "{name}");
    }

    #[test]
    fn event_names_keep_long_monitor_names_up_to_the_object_limit() {
        assert_eq!(event_name("frames", slot()), "frames-202603010200");
        assert!(event_name(&"x".repeat(253), slot()).len() <= 253);
    }

    #[test]
    fn job_runs_the_check_with_the_contract_flags() {
        let job = check_job(&monitor("frames"), slot(), None, &settings()).unwrap();
        let pod = job.spec.unwrap().template.spec.unwrap();
        let container = &pod.containers[0];
        assert_eq!(
            container.command.as_deref(),
            Some(&["driftwatch".to_string()][..])
        );
        let args = container.args.clone().unwrap();
        assert_eq!(args[0], "check");
        assert_eq!(flag(&args, "qdrant-url"), Some("http://qdrant:6334"));
        assert_eq!(flag(&args, "collection"), Some("video_frames"));
        assert_eq!(flag(&args, "timestamp-field"), Some("timestamp"));
        assert_eq!(flag(&args, "timestamp-format"), Some("rfc3339"));
        assert_eq!(flag(&args, "confidence-field"), Some("confidence"));
        assert_eq!(
            flag(&args, "filter"),
            Some(r#"{"must":[{"key":"model_version","match":{"keyword":"v3"}}]}"#)
        );
        assert_eq!(flag(&args, "reference"), Some("7d"));
        assert_eq!(flag(&args, "reference-offset"), Some("24h"));
        assert_eq!(flag(&args, "comparison"), Some("24h"));
        assert_eq!(flag(&args, "at"), Some("2026-03-01T02:00:00Z"));
        assert_eq!(flag(&args, "max-reference"), Some("20000"));
        assert_eq!(flag(&args, "max-comparison"), Some("5000"));
        assert_eq!(flag(&args, "min-samples"), Some("50"));
        assert_eq!(flag(&args, "seed"), Some("42"));
        assert_eq!(
            flag(&args, "detectors-json"),
            Some(r#"[{"method":"kl_divergence","source":"embeddings","threshold":0.1}]"#)
        );
        assert_eq!(flag(&args, "check-id"), Some("frames-202603010200"));
        assert_eq!(flag(&args, "termination-log"), Some("/dev/termination-log"));
        assert_eq!(flag(&args, "output"), Some("json"));
        assert_eq!(flag(&args, "vector-name"), None);
        assert_eq!(flag(&args, "reference-start"), None);
        assert_eq!(flag(&args, "sampling-mode"), Some("reservoir"));
        assert_eq!(flag(&args, "strata"), Some("8"));
        assert_eq!(flag(&args, "read-concurrency"), Some("4"));
        assert_eq!(flag(&args, "sample-key-field"), None);
        assert_eq!(flag(&args, "page-size"), None);
    }

    #[test]
    fn sample_key_sampling_passes_its_field_and_read_settings() {
        let mut monitor = monitor("frames");
        monitor.spec.sampling.mode = crate::api::v1alpha1::SamplingMode::SampleKey;
        monitor.spec.sampling.sample_key_field = Some("sample_key".into());
        monitor.spec.sampling.strata = 16;
        monitor.spec.sampling.page_size = Some(2048);
        let args = check_args(&monitor, slot(), "frames-1").unwrap();
        assert_eq!(flag(&args, "sampling-mode"), Some("sampleKey"));
        assert_eq!(flag(&args, "sample-key-field"), Some("sample_key"));
        assert_eq!(flag(&args, "strata"), Some("16"));
        assert_eq!(flag(&args, "page-size"), Some("2048"));
    }

    #[test]
    fn the_monitor_s_alpha_reaches_the_check_only_when_set() {
        let mut monitor = monitor("frames");
        assert_eq!(flag(&check_args(&monitor, slot(), "id").unwrap(), "alpha"), None);
        monitor.spec.alpha = Some(0.01);
        assert_eq!(
            flag(&check_args(&monitor, slot(), "id").unwrap(), "alpha"),
            Some("0.01")
        );
    }

    #[test]
    fn the_explain_spec_reaches_the_check_as_repeated_flags() {
        let mut monitor = monitor("frames");
        let args = check_args(&monitor, slot(), "id").unwrap();
        assert_eq!(flag(&args, "explain"), None);
        monitor.spec.explain = Some(crate::api::v1alpha1::ExplainSpec {
            slice_fields: vec!["camera_id".into(), "site".into()],
            display_fields: vec!["frame_url".into()],
            examples: Some(2),
            min_slice_points: Some(50),
            regions: Some(false),
        });
        let args = check_args(&monitor, slot(), "id").unwrap();
        let all = |name: &str| -> Vec<&str> {
            args.windows(2)
                .filter(|w| w[0] == format!("--{name}"))
                .map(|w| w[1].as_str())
                .collect()
        };
        assert_eq!(flag(&args, "explain"), Some("true"));
        assert_eq!(all("slice-field"), ["camera_id", "site"]);
        assert_eq!(all("display-field"), ["frame_url"]);
        assert_eq!(flag(&args, "explain-examples"), Some("2"));
        assert_eq!(flag(&args, "min-slice-points"), Some("50"));
        assert_eq!(flag(&args, "explain-regions"), Some("false"));
    }

    #[test]
    fn pinned_reference_windows_pass_start_and_end() {
        let mut monitor = monitor("frames");
        monitor.spec.windows.reference.duration = None;
        monitor.spec.windows.reference.offset = None;
        monitor.spec.windows.reference.start = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            "2026-01-01T00:00:00Z".parse().unwrap(),
        ));
        monitor.spec.windows.reference.end = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            "2026-01-08T00:00:00Z".parse().unwrap(),
        ));
        monitor.spec.windows.reference.collection = Some("training".into());
        let args = check_args(&monitor, slot(), "id").unwrap();
        assert_eq!(flag(&args, "reference-start"), Some("2026-01-01T00:00:00Z"));
        assert_eq!(flag(&args, "reference-end"), Some("2026-01-08T00:00:00Z"));
        assert_eq!(flag(&args, "reference-collection"), Some("training"));
        assert_eq!(flag(&args, "reference"), None);
    }

    #[test]
    fn the_api_key_comes_only_from_a_secret_key_ref() {
        let job = check_job(&monitor("frames"), slot(), None, &settings()).unwrap();
        let container = &job.spec.unwrap().template.spec.unwrap().containers[0];
        let env = container.env.clone().unwrap();
        let secrets: Vec<_> = env.iter().filter(|e| e.value_from.is_some()).collect();
        assert_eq!(secrets.len(), 1);
        assert_eq!(secrets[0].name, "QDRANT_API_KEY");
        assert_eq!(secrets[0].value, None);
        let secret = secrets[0].value_from.clone().unwrap().secret_key_ref.unwrap();
        assert_eq!((secret.name.as_str(), secret.key.as_str()), ("qdrant", "api-key"));
    }

    #[test]
    fn the_pod_is_locked_down_and_holds_no_kubernetes_credentials() {
        let job = check_job(&monitor("frames"), slot(), None, &settings()).unwrap();
        let pod = job.spec.unwrap().template.spec.unwrap();
        assert_eq!(pod.automount_service_account_token, Some(false));
        assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
        let psc = pod.security_context.unwrap();
        assert_eq!(psc.run_as_non_root, Some(true));
        assert_eq!(psc.seccomp_profile.unwrap().type_, "RuntimeDefault");
        let sc = pod.containers[0].security_context.clone().unwrap();
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        assert_eq!(sc.capabilities.unwrap().drop, Some(vec!["ALL".to_string()]));
        assert_eq!(
            pod.containers[0].termination_message_policy.as_deref(),
            Some("File")
        );
    }

    #[test]
    fn the_job_is_owned_by_the_monitor_and_labelled() {
        let job = check_job(&monitor("frames"), slot(), Some("now-1"), &settings()).unwrap();
        let owner = &job.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str()),
            ("DriftMonitor", "frames")
        );
        assert_eq!(owner.controller, Some(true));
        let labels = job.metadata.labels.clone().unwrap();
        assert_eq!(labels["app.kubernetes.io/name"], "driftwatch");
        assert_eq!(labels["app.kubernetes.io/component"], "drift-check");
        assert_eq!(labels["app.kubernetes.io/managed-by"], "driftwatch");
        assert_eq!(labels["driftwatch.dev/monitor"], "frames");
        let annotations = job.metadata.annotations.clone().unwrap();
        assert_eq!(annotations["driftwatch.dev/slot"], "2026-03-01T02:00:00Z");
        assert_eq!(annotations["driftwatch.dev/run-now"], "now-1");
        assert_eq!(owning_monitor(&job).as_deref(), Some("frames"));
    }

    #[test]
    fn job_template_settings_reach_the_pod() {
        let mut monitor = monitor("frames");
        monitor.spec.job_template = Some(JobTemplateSpec {
            resources: Some(ResourceRequirements::default()),
            node_selector: BTreeMap::from([("pool".into(), "cpu".into())]),
            service_account_name: Some("irsa".into()),
            active_deadline_seconds: Some(600),
            backoff_limit: Some(0),
            ..JobTemplateSpec::default()
        });
        let job = check_job(&monitor, slot(), None, &settings()).unwrap();
        let spec = job.spec.unwrap();
        assert_eq!(spec.active_deadline_seconds, Some(600));
        assert_eq!(spec.backoff_limit, Some(0));
        let pod = spec.template.spec.unwrap();
        assert_eq!(pod.service_account_name.as_deref(), Some("irsa"));
        assert_eq!(pod.node_selector.unwrap()["pool"], "cpu");
        assert_eq!(pod.containers[0].resources, Some(ResourceRequirements::default()));
    }

    #[test]
    fn a_check_job_without_resources_in_its_template_gets_the_controller_defaults() {
        let mut settings = settings();
        settings.check_resources = resources("1", "3Gi", "6Gi");
        let job = check_job(&monitor("frames"), slot(), None, &settings).unwrap();
        let container = &job.spec.unwrap().template.spec.unwrap().containers[0];
        let resources = container.resources.clone().unwrap();
        assert_eq!(resources.requests.unwrap()["memory"], Quantity("3Gi".into()));
        assert_eq!(resources.limits.unwrap()["memory"], Quantity("6Gi".into()));
    }

    #[test]
    fn the_built_in_defaults_request_cpu_and_memory_and_limit_memory() {
        let job = check_job(&monitor("frames"), slot(), None, &settings()).unwrap();
        let resources = job.spec.unwrap().template.spec.unwrap().containers[0]
            .resources
            .clone()
            .unwrap();
        let requests = resources.requests.unwrap();
        assert!(requests.contains_key("cpu") && requests.contains_key("memory"));
        assert!(resources.limits.unwrap().contains_key("memory"));
    }

    #[test]
    fn jobs_log_in_the_controllers_format() {
        let mut settings = settings();
        settings.log_format = LogFormat::Json;
        let job = check_job(&monitor("frames"), slot(), None, &settings).unwrap();
        let env = job.spec.unwrap().template.spec.unwrap().containers[0]
            .env
            .clone()
            .unwrap();
        let format = env.iter().find(|e| e.name == LOG_FORMAT_ENV).unwrap();
        assert_eq!(format.value.as_deref(), Some("json"));
    }

    #[test]
    fn defaults_apply_without_a_job_template() {
        let job = check_job(&monitor("frames"), slot(), None, &settings()).unwrap();
        let spec = job.spec.unwrap();
        assert_eq!(spec.active_deadline_seconds, Some(1800));
        assert_eq!(spec.backoff_limit, Some(1));
    }
}
