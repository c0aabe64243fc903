//! Command-line surface of `driftwatch package`: flags and env (secrets) → a validated [`Plan`], the source,
//! S3 destination and webhook settings; runs the Job and writes the result document to the termination log
//! and stdout. Process I/O.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::objects::{ObjectLimits, parse_quantity};
use super::reach::{AllowedSource, SourcePolicy};
use super::s3::{S3Settings, UploadSettings};
use super::source::{MemorySource, Point};
use super::webhook::{RetryPolicy, WebhookSettings, WindowBody};
use super::{Destination, ObjectsPlan, PackageError, Plan};
use crate::api::duration::parse_duration;
use crate::api::v1alpha1::ArchiveFormat;
use crate::job::cli::ReadArgs;
use crate::job::redact::redact_urls;
use crate::job::result::{PackageReport, encode_package_report};

/// Output on stdout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// A short human summary (the result document still goes to --termination-log).
    #[default]
    Text,
    /// The result document.
    Json,
}

/// Archive format flag.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    #[default]
    #[value(name = "tar.gz")]
    TarGz,
    Zip,
}

/// `driftwatch package`: sample the comparison window, archive it, upload it to S3, call the webhook.
#[derive(Args, Debug, Clone)]
pub struct PackageArgs {
    /// Qdrant gRPC endpoint, e.g. http://qdrant.qdrant.svc:6334.
    #[arg(long, env = "QDRANT_URL")]
    pub qdrant_url: Option<String>,
    /// Qdrant API key.
    #[arg(long, env = "QDRANT_API_KEY", hide_env_values = true)]
    pub qdrant_api_key: Option<String>,
    /// Read the points from a JSONL file ({id, timestamp, payload, vector} per line) instead of Qdrant.
    #[arg(long, conflicts_with = "qdrant_url")]
    pub points_file: Option<PathBuf>,
    /// Collection to read.
    #[arg(long)]
    pub collection: Option<String>,
    /// Named vector; empty for the default vector.
    #[arg(long)]
    pub vector_name: Option<String>,
    /// Payload field holding the timestamp.
    #[arg(long, default_value = "timestamp")]
    pub timestamp_field: String,
    /// rfc3339, unixSeconds or unixMillis.
    #[arg(long, default_value = "rfc3339")]
    pub timestamp_format: String,
    /// Extra payload filter (JSON, the DriftMonitor's source.qdrant.filter).
    #[arg(long)]
    pub filter: Option<String>,
    /// Comparison window start (RFC 3339, inclusive).
    #[arg(long)]
    pub comparison_start: String,
    /// Comparison window end (RFC 3339, exclusive).
    #[arg(long)]
    pub comparison_end: String,
    /// Reference window start (RFC 3339), for the manifest and webhook.
    #[arg(long)]
    pub reference_start: Option<String>,
    /// Reference window end (RFC 3339).
    #[arg(long)]
    pub reference_end: Option<String>,
    /// Points to package.
    #[arg(long, default_value_t = 1000)]
    pub sample_size: u64,
    /// Sampling seed (with --sampling-mode sampleKey or reservoir, the same seed and window give the same
    /// sample and the same archive).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[command(flatten)]
    pub read: ReadArgs,
    /// The DriftEvent's namespace.
    #[arg(long)]
    pub namespace: String,
    /// The DriftEvent's name.
    #[arg(long)]
    pub event: String,
    /// The DriftEvent's uid (the webhook's Idempotency-Key; defaults to <namespace>/<event>).
    #[arg(long)]
    pub event_uid: Option<String>,
    /// The DriftMonitor's name.
    #[arg(long)]
    pub monitor: String,
    /// Detector scores (JSON array), passed through to the manifest and webhook.
    #[arg(long, default_value = "[]")]
    pub scores_json: String,
    /// Who approved.
    #[arg(long)]
    pub approved_by: String,
    /// Why.
    #[arg(long)]
    pub reason: Option<String>,
    /// Creation time written into the manifest (RFC 3339). Give the approval time so a retried Job
    /// rebuilds the identical archive; defaults to the comparison window's end.
    #[arg(long)]
    pub created_at: Option<String>,
    /// Destination bucket.
    #[arg(long)]
    pub bucket: String,
    /// Key prefix (e.g. batches/).
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// Region (default: from the environment, else us-east-1).
    #[arg(long, env = "AWS_REGION")]
    pub region: Option<String>,
    /// Custom S3 endpoint (S3-compatible stores; path-style addressing).
    #[arg(long, env = "DRIFTWATCH_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    /// Server-side encryption: AES256 or aws:kms.
    #[arg(long)]
    pub sse: Option<String>,
    /// Archive format.
    #[arg(long, value_enum, default_value_t = FormatArg::TarGz)]
    pub format: FormatArg,
    /// Payload field with s3:// or https:// URIs of media to include under objects/.
    #[arg(long)]
    pub include_objects_field: Option<String>,
    /// Largest object included.
    #[arg(long, default_value = "20Mi")]
    pub max_object_bytes: String,
    /// Total bytes of included objects.
    #[arg(long, default_value = "2Gi")]
    pub max_total_bytes: String,
    /// A source http(s) objects may be fetched from: a host, host:port, or URL prefix (repeatable).
    /// Without any, only s3:// objects are included.
    #[arg(long = "allow-object-source")]
    pub allow_object_sources: Vec<String>,
    /// Fetch objects from loopback, link-local, private and other special addresses too (true/false).
    #[arg(long, action = clap::ArgAction::Set, default_value_t = false)]
    pub allow_private_object_addresses: bool,
    /// Archives at least this large are uploaded in parts.
    #[arg(long, default_value = "64Mi")]
    pub multipart_threshold: String,
    /// Part size of multipart uploads (at least 5Mi).
    #[arg(long, default_value = "16Mi")]
    pub part_size: String,
    /// Retraining webhook URL (omit to skip the webhook).
    #[arg(long, env = "DRIFTWATCH_WEBHOOK_URL", hide_env_values = true)]
    pub webhook_url: Option<String>,
    /// Bearer token for the webhook.
    #[arg(long, env = "DRIFTWATCH_WEBHOOK_TOKEN", hide_env_values = true)]
    pub webhook_token: Option<String>,
    /// HMAC-SHA256 key; signs the body into X-Driftwatch-Signature.
    #[arg(long, env = "DRIFTWATCH_WEBHOOK_HMAC_KEY", hide_env_values = true)]
    pub webhook_hmac_key: Option<String>,
    /// Per-attempt webhook timeout.
    #[arg(long, default_value = "10s")]
    pub webhook_timeout: String,
    /// Retries after the first attempt.
    #[arg(long, default_value_t = 3)]
    pub webhook_retries: u32,
    /// First backoff delay (doubles per retry, ±50 % jitter).
    #[arg(long, default_value = "1s")]
    pub webhook_backoff: String,
    /// Longest backoff delay.
    #[arg(long, default_value = "30s")]
    pub webhook_max_backoff: String,
    /// Folder for the spooled points and the archive (an emptyDir in the Pod).
    #[arg(long, env = "DRIFTWATCH_WORK_DIR")]
    pub work_dir: Option<PathBuf>,
    /// Also write the result document here (e.g. /dev/termination-log).
    #[arg(long)]
    pub termination_log: Option<PathBuf>,
    /// stdout format.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

fn invalid(message: impl Into<String>) -> PackageError {
    PackageError::InvalidArgument(message.into())
}

fn timestamp(flag: &str, value: &str) -> Result<String, PackageError> {
    value
        .parse::<jiff::Timestamp>()
        .map(|t| t.to_string())
        .map_err(|e| invalid(format!("--{flag} {value:?} is not an RFC 3339 time: {e}")))
}

fn optional_timestamp(flag: &str, value: Option<&str>) -> Result<Option<String>, PackageError> {
    value.map(|v| timestamp(flag, v)).transpose()
}

fn quantity(flag: &str, value: &str) -> Result<u64, PackageError> {
    parse_quantity(value)
        .ok_or_else(|| invalid(format!("--{flag} {value:?} is not a byte quantity such as 20Mi")))
}

fn duration(flag: &str, value: &str) -> Result<Duration, PackageError> {
    parse_duration(value).map_err(|e| invalid(format!("--{flag}: {e}")))
}

/// Everything [`super::run`] needs, from the flags.
pub struct Resolved {
    pub plan: Plan,
    pub upload: UploadSettings,
    pub s3: S3Settings,
    pub webhook: Option<WebhookSettings>,
}

impl PackageArgs {
    /// Validates the flags.
    pub fn resolve(&self) -> Result<Resolved, PackageError> {
        let comparison_start = timestamp("comparison-start", &self.comparison_start)?;
        let comparison_end = timestamp("comparison-end", &self.comparison_end)?;
        if self.comparison_start.parse::<jiff::Timestamp>().ok() >= self.comparison_end.parse().ok() {
            return Err(invalid("--comparison-start must be before --comparison-end"));
        }
        let drift_scores: serde_json::Value = serde_json::from_str(&self.scores_json)
            .map_err(|e| invalid(format!("--scores-json is not JSON: {e}")))?;
        if self.sample_size == 0 {
            return Err(invalid("--sample-size must be at least 1"));
        }
        self.read.sampling().map_err(invalid)?;
        for (flag, value) in [
            ("namespace", &self.namespace),
            ("event", &self.event),
            ("monitor", &self.monitor),
        ] {
            if value.is_empty() || value.contains('/') {
                return Err(invalid(format!("--{flag} must be a non-empty Kubernetes name")));
            }
        }
        if let Some(sse) = &self.sse
            && !matches!(sse.as_str(), "AES256" | "aws:kms")
        {
            return Err(invalid("--sse must be AES256 or aws:kms"));
        }
        if !matches!(
            self.timestamp_format.as_str(),
            "rfc3339" | "unixSeconds" | "unixMillis"
        ) {
            return Err(invalid(
                "--timestamp-format must be rfc3339, unixSeconds or unixMillis",
            ));
        }
        if let Some(filter) = &self.filter {
            serde_json::from_str::<crate::api::v1alpha1::PayloadFilter>(filter)
                .map_err(|e| invalid(format!("--filter is not a payload filter: {e}")))?;
        }
        let objects = match &self.include_objects_field {
            Some(field) if !field.is_empty() => Some(ObjectsPlan {
                payload_field: field.clone(),
                limits: ObjectLimits {
                    max_object_bytes: quantity("max-object-bytes", &self.max_object_bytes)?,
                    max_total_bytes: quantity("max-total-bytes", &self.max_total_bytes)?,
                },
                sources: SourcePolicy {
                    allowed: self
                        .allow_object_sources
                        .iter()
                        .map(|s| {
                            AllowedSource::parse(s).map_err(|e| invalid(format!("--allow-object-source {e}")))
                        })
                        .collect::<Result<_, _>>()?,
                    allow_private_addresses: self.allow_private_object_addresses,
                },
            }),
            _ => None,
        };
        let format = match self.format {
            FormatArg::TarGz => ArchiveFormat::TarGz,
            FormatArg::Zip => ArchiveFormat::Zip,
        };
        let created_at = match &self.created_at {
            Some(value) => timestamp("created-at", value)?,
            None => comparison_end.clone(),
        };
        let plan = Plan {
            namespace: self.namespace.clone(),
            event: self.event.clone(),
            event_uid: self.event_uid.clone().filter(|u| !u.is_empty()),
            monitor: self.monitor.clone(),
            reference_window: WindowBody {
                start_time: optional_timestamp("reference-start", self.reference_start.as_deref())?,
                end_time: optional_timestamp("reference-end", self.reference_end.as_deref())?,
            },
            comparison_window: WindowBody {
                start_time: Some(comparison_start),
                end_time: Some(comparison_end),
            },
            drift_scores,
            approved_by: self.approved_by.clone(),
            reason: self.reason.clone(),
            created_at,
            sample_size: self.sample_size,
            seed: self.seed,
            format,
            source: serde_json::json!({
                "collection": self.collection,
                "vectorName": self.vector_name.clone().filter(|v| !v.is_empty()),
                "timestampField": self.timestamp_field,
                "timestampFormat": self.timestamp_format,
                "filter": self.filter.as_deref().and_then(|f| serde_json::from_str::<serde_json::Value>(f).ok()),
            }),
            objects,
        };
        let upload = UploadSettings {
            bucket: self.bucket.clone(),
            key: plan.key(&self.prefix),
            sse: self.sse.clone(),
            multipart_threshold: quantity("multipart-threshold", &self.multipart_threshold)?,
            part_size: quantity("part-size", &self.part_size)?,
        };
        let webhook = match self.webhook_url.as_deref().filter(|u| !u.is_empty()) {
            Some(url) => Some(WebhookSettings {
                url: url.to_string(),
                token: self.webhook_token.clone(),
                hmac_key: self.webhook_hmac_key.clone(),
                idempotency_key: plan.event_uid.clone().unwrap_or_else(|| plan.event_id()),
                timeout: duration("webhook-timeout", &self.webhook_timeout)?,
                policy: RetryPolicy {
                    retries: self.webhook_retries,
                    base: duration("webhook-backoff", &self.webhook_backoff)?,
                    max_delay: duration("webhook-max-backoff", &self.webhook_max_backoff)?,
                    ..RetryPolicy::default()
                },
            }),
            None => None,
        };
        Ok(Resolved {
            plan,
            upload,
            s3: S3Settings {
                region: self.region.clone(),
                endpoint: self.s3_endpoint.clone(),
            },
            webhook,
        })
    }
}

/// Reads a points file (`{id, timestamp, payload, vector}` per line) into memory.
fn load_points_file(path: &Path) -> Result<MemorySource, PackageError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| PackageError::Source(format!("{}: {e}", path.display())))?;
    let mut points = Vec::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let point: Point = serde_json::from_str(line)
            .map_err(|e| PackageError::Source(format!("{} line {}: {e}", path.display(), n + 1)))?;
        points.push(point);
    }
    Ok(MemorySource { points })
}

/// Runs `driftwatch package` and returns the report (also written to the termination log and stdout).
pub async fn execute(args: &PackageArgs) -> PackageReport {
    let event_id = format!("{}/{}", args.namespace, args.event);
    match execute_inner(args).await {
        Ok(outcome) => PackageReport::success(event_id, outcome),
        Err(failure) => {
            let super::Failure { error, partial } = *failure;
            let message = redact_urls(&error.to_string());
            tracing::error!(kind = error.kind(), error = %message, "packaging failed");
            PackageReport::failure(event_id, error.kind(), message, partial)
        }
    }
}

async fn execute_inner(
    args: &PackageArgs,
) -> Result<crate::job::result::PackageOutcome, Box<super::Failure>> {
    let fail = |error: PackageError| Box::new(super::Failure { error, partial: None });
    let resolved = args.resolve().map_err(fail)?;
    let work = super::work_dir(args.work_dir.as_deref()).map_err(|e| {
        fail(PackageError::WorkDir {
            path: args
                .work_dir
                .as_deref()
                .unwrap_or(Path::new("$TMPDIR"))
                .display()
                .to_string(),
            message: e.to_string(),
        })
    })?;
    let client = super::s3::client(&resolved.s3).await;
    let destination = Destination {
        client,
        upload: resolved.upload.clone(),
    };
    if let Some(path) = &args.points_file {
        let source = load_points_file(path).map_err(fail)?;
        return super::run(
            &source,
            &resolved.plan,
            work.path(),
            &destination,
            resolved.webhook.as_ref(),
        )
        .await;
    }
    let source = super::qdrant::QdrantPoints::from_args(args).map_err(fail)?;
    super::run(
        &source,
        &resolved.plan,
        work.path(),
        &destination,
        resolved.webhook.as_ref(),
    )
    .await
}

/// Writes the report where it belongs and returns the exit code.
pub fn report(args: &PackageArgs, report: &PackageReport) -> ExitCode {
    let text = encode_package_report(report);
    if let Some(path) = &args.termination_log
        && let Err(e) = std::fs::write(path, &text)
    {
        eprintln!("error: writing {}: {e}", path.display());
    }
    match args.output {
        Output::Json => println!("{text}"),
        Output::Text => match (&report.result, &report.error) {
            (Some(r), _) => println!(
                "packaged {} points into {} ({} bytes, sha256 {}){}; webhook: {} attempt(s){}",
                r.points,
                r.s3_uri.as_deref().unwrap_or("?"),
                r.size_bytes.unwrap_or(0),
                r.sha256.as_deref().unwrap_or("?"),
                if r.reused {
                    ", reused the existing upload"
                } else {
                    ""
                },
                r.attempts,
                r.retraining_job_id
                    .as_deref()
                    .map(|id| format!(", retraining job {id}"))
                    .unwrap_or_default(),
            ),
            (_, Some(e)) => println!("packaging failed ({}): {}", e.kind, e.message),
            _ => println!("{text}"),
        },
    }
    exit_code(report)
}

/// 0 on success; on failure [`super::FINAL_FAILURE_EXIT_CODE`] when another Pod must not try again (the
/// webhook was called, or the input is wrong), else 1.
pub fn exit_code(report: &PackageReport) -> ExitCode {
    match &report.error {
        None => ExitCode::SUCCESS,
        Some(error) if super::is_final_failure(&error.kind) => ExitCode::from(super::FINAL_FAILURE_EXIT_CODE),
        Some(_) => ExitCode::FAILURE,
    }
}
