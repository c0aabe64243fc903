//! The DriftMonitor kind: what to watch, when, how to decide drift, and how to hand off retraining. No I/O.
// kube's `printcolumn(...)` attributes repeat the same keys by design.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Affinity, ResourceRequirements, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{DetectorScore, DetectorSpec, SampleCounts, SecretKeyRef, TimeWindow};

/// Condition types of a DriftMonitor.
pub mod condition {
    /// The spec is valid and checks are scheduled.
    pub const READY: &str = "Ready";
    /// The last successful check found drift.
    pub const DRIFTED: &str = "Drifted";
    /// The last check failed.
    pub const DEGRADED: &str = "Degraded";
}

/// Condition reasons of a DriftMonitor.
pub mod reason {
    pub const SCHEDULED: &str = "Scheduled";
    pub const SUSPENDED: &str = "Suspended";
    pub const INVALID_SPEC: &str = "InvalidSpec";
    pub const DRIFT_DETECTED: &str = "DriftDetected";
    pub const NO_DRIFT: &str = "NoDrift";
    pub const CHECK_FAILED: &str = "CheckFailed";
    pub const CHECK_SUCCEEDED: &str = "CheckSucceeded";
    pub const AWAITING_FIRST_CHECK: &str = "AwaitingFirstCheck";
}

const DURATION_RULE: &str = "self.matches('^([0-9]+(ms|s|m|h|d|w))+$')";
const POSITIVE_DURATION_RULE: &str = "self.matches('^([0-9]+(ms|s|m|h|d|w))+$') && self.matches('[1-9]')";

/// Watches the embeddings of a Qdrant collection for drift on a cron schedule.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "driftwatch.dev",
    version = "v1alpha1",
    kind = "DriftMonitor",
    namespaced,
    status = "DriftMonitorStatus",
    shortname = "dm",
    category = "drift",
    derive = "PartialEq",
    doc = "DriftMonitor watches the embedding vectors of a Qdrant collection for data and model-output drift on a cron schedule, raises DriftEvents for human review, and configures the retraining hand-off.",
    printcolumn(name = "Schedule", type_ = "string", json_path = ".spec.schedule"),
    printcolumn(name = "Last Score", type_ = "number", json_path = ".status.lastScoreRounded"),
    printcolumn(
        name = "Drifted",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Drifted\")].status"
    ),
    printcolumn(name = "Last Check", type_ = "date", json_path = ".status.lastScheduleTime"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct DriftMonitorSpec {
    /// When to run drift checks: a 5-field cron expression (minute hour day-of-month month day-of-week),
    /// e.g. "0 2 * * *", or a macro such as @hourly or @daily.
    #[x_kube(validation = Rule::new("self.matches('^\\\\s*(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|\\\\S+(\\\\s+\\\\S+){4})\\\\s*$')")
        .message("schedule must be a 5-field cron expression (minute hour day-of-month month day-of-week) such as \"0 2 * * *\", or @hourly/@daily/@weekly/@monthly/@yearly"))]
    pub schedule: String,
    /// IANA time zone of the schedule, e.g. Europe/Berlin. Default UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.matches('^[A-Za-z][A-Za-z0-9_+\\\\-]*(/[A-Za-z0-9_+\\\\-]+)*$')").message("timeZone must be an IANA time zone name such as UTC or Europe/Berlin"))]
    pub time_zone: Option<String>,
    /// Pause scheduling; a running check finishes.
    #[serde(default)]
    pub suspend: bool,
    /// How late a missed slot may still run (seconds). A slot missed by more is skipped. Default 3600.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 10").message("startingDeadlineSeconds must be at least 10"))]
    pub starting_deadline_seconds: Option<i64>,
    /// Where the data lives.
    pub source: SourceSpec,
    /// The reference (baseline) and comparison (recent) windows.
    pub windows: WindowsSpec,
    /// How many points of each window to use, and how larger windows are sampled and read.
    #[serde(default)]
    pub sampling: SamplingSpec,
    /// Detectors to run. Omitted or empty: the recommended defaults, which always include kl_divergence on
    /// embeddings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(validation = Rule::new("size(self) <= 16").message("at most 16 detectors per monitor"))]
    pub detectors: Vec<DetectorSpec>,
    /// Family-wise false-alarm rate of a check: the probability that two windows from one distribution
    /// are reported as drift (and raise a DriftEvent), whatever the number of detectors. The check's
    /// verdict is calibrated jointly over every detector and both sources. Default 0.05.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self > 0.0 && self <= 0.5").message("alpha must be greater than 0 and at most 0.5, e.g. 0.05"))]
    pub alpha: Option<f64>,
    /// What the check explains for the reviewer: drift by slice of payload fields, regions of the
    /// embedding space whose share changed, and example points with display fields; the DriftEvent keeps
    /// it in status.explanation. Omitted: no explanation; `{}`: regions and example point ids only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explain: Option<ExplainSpec>,
    /// DriftEvent behaviour.
    #[serde(default)]
    pub events: EventsSpec,
    /// Retraining hand-off after approval. Without it, approved events are recorded but nothing is packaged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retraining: Option<RetrainingSpec>,
    /// Pod settings of the check and packaging Jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_template: Option<JobTemplateSpec>,
}

/// The data source of a monitor.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourceSpec {
    /// A Qdrant collection.
    pub qdrant: QdrantSource,
}

/// How the timestamp payload field is encoded.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum TimestampFormat {
    /// RFC 3339 text, filtered with Qdrant's datetime range.
    #[default]
    Rfc3339,
    /// Seconds since the Unix epoch (number).
    UnixSeconds,
    /// Milliseconds since the Unix epoch (number).
    UnixMillis,
}

/// A Qdrant collection and the payload fields driftwatch reads.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct QdrantSource {
    /// gRPC endpoint, e.g. http://qdrant.qdrant.svc:6334 (https for TLS).
    #[x_kube(validation = Rule::new("self.matches('^https?://[^/\\\\s]+(/.*)?$')").message("url must be an http:// or https:// address of Qdrant's gRPC port, e.g. http://qdrant.qdrant.svc:6334"))]
    pub url: String,
    /// Secret key holding the Qdrant API key, passed to Jobs as an env var.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_secret_ref: Option<SecretKeyRef>,
    /// Collection name.
    #[x_kube(validation = Rule::new("size(self) > 0 && size(self) <= 255").message("collection must be a non-empty Qdrant collection name"))]
    pub collection: String,
    /// Named vector to read; empty for the collection's default vector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector_name: Option<String>,
    /// Payload field holding each point's timestamp. Default "timestamp".
    #[serde(default = "default_timestamp_field")]
    #[x_kube(validation = Rule::new("size(self) > 0").message("timestampField must name a payload field"))]
    pub timestamp_field: String,
    /// Encoding of the timestamp field: rfc3339 (default), unixSeconds or unixMillis.
    #[serde(default)]
    pub timestamp_format: TimestampFormat,
    /// Payload field holding the model's confidence score (needed by confidence_scores detectors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence_field: Option<String>,
    /// Extra payload filter applied to both windows, e.g. one model version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<PayloadFilter>,
}

fn default_timestamp_field() -> String {
    "timestamp".to_string()
}

/// A payload filter in Qdrant's terms: every `must` condition holds and no `mustNot` condition holds.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PayloadFilter {
    /// Conditions that must all match (at most 16).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub must: Vec<FieldCondition>,
    /// Conditions of which none may match (at most 16).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub must_not: Vec<FieldCondition>,
}

/// A condition on one payload field: an exact match or a numeric range.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.match) != has(self.range)").message("a filter condition needs exactly one of match or range"))]
pub struct FieldCondition {
    /// Payload key (dotted paths allowed).
    #[x_kube(validation = Rule::new("size(self) > 0").message("filter key must not be empty"))]
    pub key: String,
    /// Exact match on the field.
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub match_: Option<MatchValue>,
    /// Numeric range on the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<RangeCondition>,
}

/// Exactly one of the fields: the value the payload field must equal (or be one of).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(has(self.keyword) ? 1 : 0) + (has(self.integer) ? 1 : 0) + (has(self.boolean) ? 1 : 0) + (has(self.anyKeyword) ? 1 : 0) == 1").message("match needs exactly one of keyword, integer, boolean or anyKeyword"))]
pub struct MatchValue {
    /// Equal to this string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyword: Option<String>,
    /// Equal to this integer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integer: Option<i64>,
    /// Equal to this boolean.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boolean: Option<bool>,
    /// Equal to any of these strings (at most 256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub any_keyword: Option<Vec<String>>,
}

/// Numeric bounds; at least one is set.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.gt) || has(self.gte) || has(self.lt) || has(self.lte)").message("range needs at least one of gt, gte, lt, lte"))]
pub struct RangeCondition {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gt: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gte: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lt: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lte: Option<f64>,
}

/// The two windows compared by every check.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WindowsSpec {
    /// The baseline: relative to the check time, pinned, or another collection (e.g. the training set).
    pub reference: ReferenceWindow,
    /// The recent data, relative to the check time.
    pub comparison: ComparisonWindow,
}

/// The reference window. Either relative (duration, optional offset) or pinned (start and end); with
/// `collection` set, neither means the whole (filtered) collection.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!(has(self.duration) && (has(self.start) || has(self.end)))")
        .message("reference window is either relative (duration, offset) or pinned (start, end), not both"),
    validation = Rule::new("has(self.duration) || has(self.start) || has(self.end) || has(self.collection)")
        .message("reference window needs a duration (relative, e.g. 7d), or start and end (pinned), or a collection (the whole collection as baseline)"),
    validation = Rule::new("has(self.start) == has(self.end)")
        .message("a pinned reference window needs both start and end"),
    validation = Rule::new("!has(self.start) || !has(self.end) || timestamp(self.start) < timestamp(self.end)")
        .message("reference window start must be before end"),
    validation = Rule::new("!has(self.offset) || has(self.duration)")
        .message("offset applies only to a relative reference window (with duration)")
)]
pub struct ReferenceWindow {
    /// Length of a relative window ending `offset` before the check time, e.g. 7d.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(POSITIVE_DURATION_RULE).message("duration must be a positive duration such as 30m, 24h or 7d"))]
    pub duration: Option<String>,
    /// How long before the check time the relative window ends, e.g. 24h (so it does not overlap the
    /// comparison window). Default 0s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(DURATION_RULE).message("offset must be a duration such as 0s, 24h or 7d"))]
    pub offset: Option<String>,
    /// Start of a pinned window (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<Time>,
    /// End of a pinned window (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<Time>,
    /// Read the reference from this collection instead (e.g. the training set's embeddings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("size(self) > 0").message("reference collection must not be empty"))]
    pub collection: Option<String>,
    /// Payload filter for the reference window only (replaces source.qdrant.filter for it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<PayloadFilter>,
}

/// The comparison window: the `duration` before the check time (minus `offset`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComparisonWindow {
    /// Length of the window, e.g. 24h.
    #[x_kube(validation = Rule::new(POSITIVE_DURATION_RULE).message("duration must be a positive duration such as 30m, 24h or 7d"))]
    pub duration: String,
    /// How long before the check time the window ends. Default 0s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(DURATION_RULE).message("offset must be a duration such as 0s, 1h or 24h"))]
    pub offset: Option<String>,
}

/// Sample limits and how windows beyond them are sampled and read.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.mode) || self.mode != 'sampleKey' || has(self.sampleKeyField)").message("mode sampleKey needs sampleKeyField (the payload field with each point's sample key)"))]
pub struct SamplingSpec {
    /// Most reference points used, 100 to 1000000. Default 20000.
    #[serde(default = "default_max_reference")]
    #[x_kube(validation = Rule::new("self >= 100 && self <= 1000000").message("maxReference must be between 100 and 1000000"))]
    pub max_reference: i64,
    /// Most comparison points used, 50 to 1000000. Default 5000.
    #[serde(default = "default_max_comparison")]
    #[x_kube(validation = Rule::new("self >= 50 && self <= 1000000").message("maxComparison must be between 50 and 1000000"))]
    pub max_comparison: i64,
    /// Fewest points per window for a verdict; fewer gives InsufficientData. 10 to 100000, default 50.
    #[serde(default = "default_min_samples")]
    #[x_kube(validation = Rule::new("self >= 10 && self <= 100000").message("minSamples must be between 10 and 100000"))]
    pub min_samples: i64,
    /// Seed of every random choice (sampling, projections, permutations). Default 42.
    #[serde(default = "default_seed")]
    #[x_kube(validation = Rule::new("self >= 0").message("seed must be >= 0"))]
    pub seed: i64,
    /// How a window with more points than its limit is sampled: reservoir (default; scrolls the whole
    /// window, exactly uniform, reproducible), sampleKey (the smallest sample keys; reads about the
    /// sample, exactly uniform, reproducible; needs a key written at ingest) or random (Qdrant's
    /// random-sample query; reads about the sample, not reproducible, uniform only at the resolution of
    /// the strata). A window within its limit is always read whole.
    #[serde(default)]
    pub mode: SamplingMode,
    /// Payload field holding each point's sample key, a number uniform in [0, 1) written at ingest
    /// (e.g. by `driftwatch qdrant-load --sample-key-field`); needed by mode sampleKey. Give it a float
    /// payload index in Qdrant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("size(self) > 0").message("sampleKeyField must name a payload field"))]
    pub sample_key_field: Option<String>,
    /// Time strata per window, 1 to 64: the window is split into this many equal sub-ranges, each
    /// sampled in proportion to its exact count (and read concurrently). Default 8.
    #[serde(default = "default_strata")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 64").message("strata must be between 1 and 64"))]
    pub strata: i32,
    /// Strata of a window read at the same time, 1 to 16. Default 4.
    #[serde(default = "default_read_concurrency")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 16").message("readConcurrency must be between 1 and 16"))]
    pub read_concurrency: i32,
    /// Points per scroll page, 16 to 16384. Default: about 1 MiB of vectors per page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 16 && self <= 16384").message("pageSize must be between 16 and 16384"))]
    pub page_size: Option<i32>,
}

/// How a window with more points than its sample limit is sampled.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum SamplingMode {
    /// Every point of the window scrolled into a seeded reservoir per time stratum: reads the whole
    /// window; exactly uniform; reproducible.
    #[default]
    Reservoir,
    /// The points with the smallest sample keys (rotated by the seed) per time stratum: reads about the
    /// sample; exactly uniform; reproducible.
    SampleKey,
    /// Qdrant's random-sample query per time stratum: reads about the sample; not reproducible; Qdrant
    /// draws from its segments by their size, not by their points in the window, so the sample is
    /// uniform across strata but may favour some segments within one.
    Random,
}

impl SamplingMode {
    /// The flag value of the Job commands.
    pub fn as_str(self) -> &'static str {
        match self {
            SamplingMode::Random => "random",
            SamplingMode::SampleKey => "sampleKey",
            SamplingMode::Reservoir => "reservoir",
        }
    }
}

fn default_max_reference() -> i64 {
    20_000
}
fn default_max_comparison() -> i64 {
    5_000
}
fn default_min_samples() -> i64 {
    50
}
fn default_seed() -> i64 {
    42
}
fn default_strata() -> i32 {
    8
}
fn default_read_concurrency() -> i32 {
    4
}

impl Default for SamplingSpec {
    fn default() -> Self {
        Self {
            max_reference: default_max_reference(),
            max_comparison: default_max_comparison(),
            min_samples: default_min_samples(),
            seed: default_seed(),
            mode: SamplingMode::default(),
            sample_key_field: None,
            strata: default_strata(),
            read_concurrency: default_read_concurrency(),
            page_size: None,
        }
    }
}

/// Payload field names (slice and display fields): 1 to 64 characters (maxLength), no spaces.
const FIELD_NAMES_RULE: &str = "self.all(f, f.matches('^[A-Za-z0-9_][A-Za-z0-9_.-]*$'))";

/// What a check explains (see spec.explain).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExplainSpec {
    /// Payload fields to slice by (keyword, integer or boolean values), e.g. camera_id, model_version,
    /// site. Each value with enough points in both windows gets its own drift test; the event lists the
    /// top slices. At most 4 distinct fields.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 4), inner(length(max = 64)))]
    #[x_kube(validation = Rule::new(FIELD_NAMES_RULE).message("sliceFields must be payload field names of 1 to 64 letters, digits, '_', '.' or '-'"))]
    #[x_kube(validation = Rule::new("self.all(f, self.exists_one(g, g == f))").message("sliceFields must not repeat a field"))]
    pub slice_fields: Vec<String>,
    /// Payload fields shown with each example point, e.g. frame_url (http(s) values are shown as links).
    /// At most 2 distinct fields.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 2), inner(length(max = 64)))]
    #[x_kube(validation = Rule::new(FIELD_NAMES_RULE).message("displayFields must be payload field names of 1 to 64 letters, digits, '_', '.' or '-'"))]
    #[x_kube(validation = Rule::new("self.all(f, self.exists_one(g, g == f))").message("displayFields must not repeat a field"))]
    pub display_fields: Vec<String>,
    /// Example points per top slice and region, 0 to 3. Default 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 0 && self <= 3").message("examples must be between 0 and 3"))]
    pub examples: Option<i32>,
    /// Fewest points a slice needs in each window to be tested, 10 to 100000. Default 30.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 10 && self <= 100000").message("minSlicePoints must be between 10 and 100000"))]
    pub min_slice_points: Option<i32>,
    /// Cluster the pooled points into regions and report those whose share changed. Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regions: Option<bool>,
}

/// How DriftEvents are raised.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventsSpec {
    /// After an event is ignored, no new event for this monitor within this time. Default 24h.
    #[serde(default = "default_cooldown")]
    #[x_kube(validation = Rule::new(DURATION_RULE).message("cooldown must be a duration such as 0s, 12h or 24h"))]
    pub cooldown: String,
}

fn default_cooldown() -> String {
    "24h".to_string()
}

impl Default for EventsSpec {
    fn default() -> Self {
        Self {
            cooldown: default_cooldown(),
        }
    }
}

/// Archive format of a retraining batch.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ArchiveFormat {
    #[default]
    #[serde(rename = "tar.gz")]
    TarGz,
    #[serde(rename = "zip")]
    Zip,
}

/// What happens after a human approves a DriftEvent.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetrainingSpec {
    /// Where the batch archive is uploaded.
    pub s3: S3Spec,
    /// The retraining pipeline's webhook.
    pub webhook: WebhookSpec,
    /// Points of the comparison window to package, 1 to 1000000. Default 1000.
    #[serde(default = "default_sample_size")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 1000000").message("sampleSize must be between 1 and 1000000"))]
    pub sample_size: i64,
    /// Archive format: tar.gz (default) or zip.
    #[serde(default)]
    pub format: ArchiveFormat,
    /// Also fetch the media the points refer to (e.g. video frames) into the archive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_objects: Option<IncludeObjectsSpec>,
}

fn default_sample_size() -> i64 {
    1_000
}

/// S3 (or S3-compatible) destination.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct S3Spec {
    /// Bucket name.
    #[x_kube(validation = Rule::new("self.matches('^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$')").message("bucket must be a valid S3 bucket name (3-63 lowercase letters, digits, dots, hyphens)"))]
    pub bucket: String,
    /// Key prefix, e.g. batches/. The archive goes to <prefix><namespace>/<event>/batch.<format>.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prefix: String,
    /// Region. Default from the environment, else us-east-1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Custom endpoint for S3-compatible stores (uses path-style addressing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Secret with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY keys; omit to use the default chain (IRSA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<SecretNameRef>,
    /// Server-side encryption: AES256 or aws:kms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self in ['AES256', 'aws:kms']").message("serverSideEncryption must be AES256 or aws:kms"))]
    pub server_side_encryption: Option<String>,
}

/// A whole Secret in the monitor's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretNameRef {
    /// Secret name.
    pub name: String,
}

/// The retraining webhook; every value comes from a Secret.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookSpec {
    /// Secret key holding the webhook URL.
    pub url_secret_ref: SecretKeyRef,
    /// Secret key holding a bearer token (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_secret_ref: Option<SecretKeyRef>,
    /// Secret key holding an HMAC-SHA256 key; the body signature goes in X-Driftwatch-Signature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hmac_secret_ref: Option<SecretKeyRef>,
    /// Per-attempt timeout. Default 10s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(POSITIVE_DURATION_RULE).message("timeout must be a positive duration such as 10s"))]
    pub timeout: Option<String>,
}

/// Media referenced by a payload field, copied into the archive under objects/.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct IncludeObjectsSpec {
    /// Payload field holding an s3:// or https:// URI.
    #[x_kube(validation = Rule::new("size(self) > 0").message("payloadField must name a payload field"))]
    pub payload_field: String,
    /// Largest object fetched (quantity, e.g. 20Mi). Default 20Mi.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.matches('^[0-9]+(Ki|Mi|Gi|Ti|k|M|G|T)?$')").message("maxObjectBytes must be a byte quantity such as 20Mi"))]
    pub max_object_bytes: Option<String>,
    /// Total bytes of objects fetched (quantity). Default 2Gi.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.matches('^[0-9]+(Ki|Mi|Gi|Ti|k|M|G|T)?$')").message("maxTotalBytes must be a byte quantity such as 2Gi"))]
    pub max_total_bytes: Option<String>,
    /// Where http(s) objects may be fetched from: hosts (`cdn.example.com`, `cdn.example.com:8443`) or URL
    /// prefixes (`https://cdn.example.com/frames/`). s3:// objects are always read through
    /// spec.retraining.s3's endpoint and credentials. Default none: no http(s) object is fetched.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 32),
        inner(length(min = 1, max = 512), regex(pattern = r"^\S+$"))
    )]
    pub allowed_sources: Vec<String>,
    /// Also fetch from loopback, link-local (169.254.0.0/16, cloud metadata), private and other special
    /// addresses, for media servers inside the cluster network. Default false: such addresses are refused
    /// even for allowed sources.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_private_addresses: bool,
}

/// Pod settings for the Jobs a monitor runs.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobTemplateSpec {
    /// Container resources of the check Job (and of the packaging Job unless packageResources is set).
    /// Default: the controller's (chart values jobs.checkResources and jobs.packageResources).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Container resources of the packaging Job. Default: resources, else the controller's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_resources: Option<ResourceRequirements>,
    /// Node selector.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Tolerations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// Affinity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// Service account (for cloud identity such as IRSA; no Kubernetes token is mounted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// Priority class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
    /// Job deadline in seconds. Default 1800.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 30").message("activeDeadlineSeconds must be at least 30"))]
    pub active_deadline_seconds: Option<i64>,
    /// Retries of a failed Job pod, 0 to 6. Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 0 && self <= 6").message("backoffLimit must be between 0 and 6"))]
    pub backoff_limit: Option<i32>,
    /// Finished check Jobs kept per monitor. Default 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 0 && self <= 100").message("historyLimit must be between 0 and 100"))]
    pub history_limit: Option<i32>,
}

/// Observed state of a DriftMonitor, written only by the controller.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DriftMonitorStatus {
    /// Ready, Drifted and Degraded conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The spec generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Slot time of the most recent check Job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_schedule_time: Option<Time>,
    /// When the last successful check finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_successful_time: Option<Time>,
    /// The next slot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_schedule_time: Option<Time>,
    /// Name of the running check Job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_job: Option<String>,
    /// The first detector's score in the last result, full precision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_score: Option<f64>,
    /// `lastScore` rounded to 4 significant digits (the LAST SCORE column of `kubectl get`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_score_rounded: Option<f64>,
    /// The last successful check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_result: Option<CheckResultSummary>,
    /// Recent checks, oldest first (at most 50).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<HistoryEntry>,
    /// The DriftEvent in review for this monitor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_event: Option<String>,
    /// When the last event of this monitor was ignored (starts the cooldown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_ignored_time: Option<Time>,
    /// Check ids already folded into this status; a result is processed once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_processed_check_id: Option<String>,
    /// The `driftwatch.dev/run-now` annotation value last acted on; a new value runs one check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_now: Option<String>,
}

/// The result of one check as kept in status.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckResultSummary {
    /// Deterministic id of the check (the Job name).
    pub check_id: String,
    /// The windows that were compared.
    pub windows: CheckWindows,
    /// Sample sizes.
    pub samples: SampleCounts,
    /// Every detector's outcome.
    pub scores: Vec<DetectorScore>,
    /// The check's verdict: combinedPValue < alpha (results of older Jobs: whether any detector fired).
    pub drift_detected: bool,
    /// The p-value of the whole detector set (absent for results of older Jobs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub combined_p_value: Option<f64>,
    /// The family-wise false-alarm rate the verdict holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
    /// Wall time of the check.
    pub duration_seconds: f64,
}

/// Reference and comparison windows of a check.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckWindows {
    pub reference: TimeWindow,
    pub comparison: TimeWindow,
}

/// One past check, compact, for the dashboard's history chart.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    /// Check id.
    pub check_id: String,
    /// Slot time of the check.
    pub time: Time,
    /// The check's verdict; absent when the check failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift_detected: Option<bool>,
    /// The p-value of the whole detector set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub combined_p_value: Option<f64>,
    /// Scores (method, source, score, threshold, pValue, drifted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scores: Vec<DetectorScore>,
    /// Error kind when the check failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
