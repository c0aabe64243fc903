//! The retrain-packaging Job (`driftwatch package`): sample the comparison window's points → archive
//! (`manifest.json`, `points.jsonl`, `vectors.npy`, `objects/`) → S3 → retraining webhook → result document.
//! Orchestration and I/O; the pieces live in the submodules.

pub mod archive;
pub mod cli;
pub mod objects;
pub mod qdrant;
pub mod reach;
pub mod s3;
pub mod source;
pub mod webhook;

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use self::archive::{ArchiveError, ArchiveFile, Entry, EntrySource, MANIFEST_SCHEMA, Spool};
use self::objects::{ObjectFetcher, ObjectLimits, ObjectRecord};
use self::source::PointSource;
use self::webhook::{WebhookBody, WebhookError, WebhookSettings, WindowBody};
use crate::api::v1alpha1::ArchiveFormat;
use crate::job::result::{ObjectCounts, PackageOutcome};

/// Points fetched from the source per request while writing.
const FETCH_BATCH: usize = 256;

/// Everything the Job was asked to do, validated.
#[derive(Clone, Debug)]
pub struct Plan {
    pub namespace: String,
    pub event: String,
    pub event_uid: Option<String>,
    pub monitor: String,
    pub reference_window: WindowBody,
    pub comparison_window: WindowBody,
    pub drift_scores: serde_json::Value,
    pub approved_by: String,
    pub reason: Option<String>,
    /// Written into the manifest; fixed per Job so retries produce the same archive.
    pub created_at: String,
    pub sample_size: u64,
    pub seed: u64,
    pub format: ArchiveFormat,
    /// Collection, vector and field names, for the manifest.
    pub source: serde_json::Value,
    pub objects: Option<ObjectsPlan>,
}

/// `includeObjects`.
#[derive(Clone, Debug)]
pub struct ObjectsPlan {
    pub payload_field: String,
    pub limits: ObjectLimits,
    /// Where http(s) objects may come from.
    pub sources: reach::SourcePolicy,
}

impl Plan {
    /// `<namespace>/<event>`.
    pub fn event_id(&self) -> String {
        format!("{}/{}", self.namespace, self.event)
    }

    /// The object key: `<prefix><namespace>/<event>/batch.<format>`.
    pub fn key(&self, prefix: &str) -> String {
        format!(
            "{prefix}{}/{}/{}",
            self.namespace,
            self.event,
            archive::archive_name(self.format)
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("reading points: {0}")]
    Source(String),
    #[error("the comparison window has no points to package")]
    NoPoints,
    #[error("{0}")]
    Archive(#[from] ArchiveError),
    #[error("work folder {path}: {message}")]
    WorkDir { path: String, message: String },
    #[error("none of the {0} referenced objects could be fetched")]
    Objects(usize),
    #[error("uploading the archive: {0}")]
    Upload(#[from] s3::S3Error),
    #[error("{0}")]
    Webhook(#[from] WebhookError),
}

/// Exit code of a packaging run whose failure another Pod cannot mend: the webhook was called (whatever it
/// answered), or the input is wrong. The packaging Job's `podFailurePolicy` fails the Job on it, so the Job
/// controller never reruns a webhook delivery that already ran its own retries.
pub const FINAL_FAILURE_EXIT_CODE: u8 = 3;

/// Whether a failure of this kind (the result document's `error.kind`) is final: a new Pod would call the
/// webhook again or fail the same way. Failures before the webhook (source, archive, upload) are not.
pub fn is_final_failure(kind: &str) -> bool {
    matches!(
        kind,
        "InvalidArgument" | "InsufficientData" | "WebhookRejected" | "WebhookFailed"
    )
}

impl PackageError {
    /// The machine-readable kind in the result document.
    pub fn kind(&self) -> &'static str {
        match self {
            PackageError::InvalidArgument(_) => "InvalidArgument",
            PackageError::Source(_) => "SourceUnavailable",
            PackageError::NoPoints => "InsufficientData",
            PackageError::Archive(_) | PackageError::WorkDir { .. } => "ArchiveFailed",
            PackageError::Objects(_) => "ObjectsUnavailable",
            PackageError::Upload(_) => "UploadFailed",
            PackageError::Webhook(WebhookError::Rejected { .. }) => "WebhookRejected",
            PackageError::Webhook(_) => "WebhookFailed",
        }
    }
}

/// `manifest.json`.
#[derive(Serialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: &'static str,
    pub event: ManifestEvent,
    pub monitor: String,
    pub windows: ManifestWindows,
    pub drift_scores: serde_json::Value,
    pub approved_by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub created_at: String,
    pub source: serde_json::Value,
    pub sampling: ManifestSampling,
    pub counts: ManifestCounts,
    pub vectors: ManifestVectors,
    pub files: Vec<ManifestFile>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<ObjectRecord>,
}

#[derive(Serialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct ManifestEvent {
    pub namespace: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
}

#[derive(Serialize, Debug, Clone)]
pub struct ManifestWindows {
    pub reference: WindowBody,
    pub comparison: WindowBody,
}

#[derive(Serialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct ManifestSampling {
    pub method: &'static str,
    pub seed: u64,
    pub sample_size: u64,
    /// Points read from the store to draw the sample.
    pub points_read: u64,
}

#[derive(Serialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct ManifestCounts {
    pub points: u64,
    pub points_available: u64,
    pub dimensions: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub objects_included: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub objects_missing: Option<u64>,
}

#[derive(Serialize, Debug, Clone)]
pub struct ManifestVectors {
    pub file: &'static str,
    pub dtype: &'static str,
    pub shape: [u64; 2],
}

#[derive(Serialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct ManifestFile {
    pub path: String,
    pub size_bytes: u64,
    pub sha256: String,
}

/// A built archive and what went into it.
#[derive(Debug, Clone)]
pub struct BuiltArchive {
    pub file: ArchiveFile,
    pub points: u64,
    pub points_available: u64,
    pub dimensions: usize,
    pub objects: Option<ObjectCounts>,
}

/// Samples the window from `source` and writes the archive into `work_dir`.
pub async fn build_archive<S: PointSource>(
    source: &S,
    plan: &Plan,
    work_dir: &Path,
    s3_client: Option<aws_sdk_s3::Client>,
) -> Result<BuiltArchive, PackageError> {
    let work_err = |message: String| PackageError::WorkDir {
        path: work_dir.display().to_string(),
        message,
    };
    std::fs::create_dir_all(work_dir).map_err(|e| work_err(e.to_string()))?;
    let capacity = usize::try_from(plan.sample_size).unwrap_or(usize::MAX);
    let draw = source
        .sample(capacity, plan.seed)
        .await
        .map_err(|e| PackageError::Source(e.to_string()))?;
    let (ids, available) = (draw.ids, draw.available);
    tracing::info!(
        available,
        read = draw.read,
        method = draw.method,
        sampled = ids.len(),
        "sampled the comparison window"
    );
    if ids.is_empty() {
        return Err(PackageError::NoPoints);
    }

    let mut spool = Spool::create(work_dir)?;
    let mut fetcher = match &plan.objects {
        Some(objects) => Some(
            ObjectFetcher::new(work_dir, s3_client, objects.limits, objects.sources.clone())
                .map_err(work_err)?,
        ),
        None => None,
    };
    let mut referenced = 0usize;
    for chunk in ids.chunks(FETCH_BATCH) {
        let mut points = source
            .fetch(chunk)
            .await
            .map_err(|e| PackageError::Source(e.to_string()))?;
        points.sort_by(|a, b| a.id.cmp(&b.id));
        for point in &points {
            let object_path = match (&mut fetcher, &plan.objects) {
                (Some(fetcher), Some(objects)) => match object_uri(&point.payload, &objects.payload_field) {
                    Some(uri) => {
                        referenced += 1;
                        fetcher.fetch(&uri).await.path.clone()
                    }
                    None => None,
                },
                _ => None,
            };
            spool.push(point, object_path.as_deref())?;
        }
    }
    let files = spool.finish()?;
    if files.rows == 0 {
        return Err(PackageError::NoPoints);
    }

    let records: Vec<ObjectRecord> = fetcher.as_ref().map(|f| f.records().to_vec()).unwrap_or_default();
    let included = records.iter().filter(|r| r.path.is_some()).count() as u64;
    let missing = records.len() as u64 - included;
    if fetcher.is_some() && !records.is_empty() && included == 0 {
        return Err(PackageError::Objects(referenced));
    }
    let objects = fetcher.as_ref().map(|_| ObjectCounts {
        included,
        missing,
        bytes: records.iter().filter_map(|r| r.size_bytes).sum(),
    });

    let mut manifest_files = Vec::new();
    for (name, path) in [("points.jsonl", &files.points), ("vectors.npy", &files.vectors)] {
        let (sha256, size_bytes) = archive::hash_file(path).map_err(|e| work_err(e.to_string()))?;
        manifest_files.push(ManifestFile {
            path: name.to_string(),
            size_bytes,
            sha256,
        });
    }
    let manifest = Manifest {
        schema_version: MANIFEST_SCHEMA,
        event: ManifestEvent {
            namespace: plan.namespace.clone(),
            name: plan.event.clone(),
            uid: plan.event_uid.clone(),
        },
        monitor: plan.monitor.clone(),
        windows: ManifestWindows {
            reference: plan.reference_window.clone(),
            comparison: plan.comparison_window.clone(),
        },
        drift_scores: plan.drift_scores.clone(),
        approved_by: plan.approved_by.clone(),
        reason: plan.reason.clone(),
        created_at: plan.created_at.clone(),
        source: plan.source.clone(),
        sampling: ManifestSampling {
            method: draw.method,
            seed: plan.seed,
            sample_size: plan.sample_size,
            points_read: draw.read,
        },
        counts: ManifestCounts {
            points: files.rows,
            points_available: available,
            dimensions: files.dims,
            objects_included: objects.as_ref().map(|o| o.included),
            objects_missing: objects.as_ref().map(|o| o.missing),
        },
        vectors: ManifestVectors {
            file: "vectors.npy",
            dtype: "<f4",
            shape: [files.rows, files.dims as u64],
        },
        files: manifest_files,
        objects: records.clone(),
    };
    let manifest_bytes = serde_json::to_vec_pretty(&manifest).map_err(|e| work_err(e.to_string()))?;

    let mut entries = vec![
        Entry {
            name: "manifest.json".into(),
            source: EntrySource::Bytes(manifest_bytes),
        },
        Entry {
            name: "points.jsonl".into(),
            source: EntrySource::File(files.points.clone()),
        },
        Entry {
            name: "vectors.npy".into(),
            source: EntrySource::File(files.vectors.clone()),
        },
    ];
    if let Some(fetcher) = &fetcher {
        for record in &records {
            if let Some(path) = &record.path {
                entries.push(Entry {
                    name: path.clone(),
                    source: EntrySource::File(fetcher.local_path(path)),
                });
            }
        }
    }
    let out = work_dir.join(archive::archive_name(plan.format));
    let format = plan.format;
    let file = tokio::task::spawn_blocking(move || archive::write_archive(format, &entries, &out))
        .await
        .map_err(|e| work_err(e.to_string()))??;
    tracing::info!(path = %file.path.display(), size = file.size, sha256 = %file.sha256, "archive written");
    Ok(BuiltArchive {
        file,
        points: files.rows,
        points_available: available,
        dimensions: files.dims,
        objects,
    })
}

/// The URI in `payload[field]` (dotted path), if it is a string.
fn object_uri(payload: &serde_json::Value, field: &str) -> Option<String> {
    let mut value = payload;
    for part in field.split('.') {
        value = value.get(part)?;
    }
    value.as_str().filter(|s| !s.is_empty()).map(str::to_string)
}

/// A failed run: the error and what was achieved before it (e.g. the upload, when the webhook failed).
#[derive(Debug)]
pub struct Failure {
    pub error: PackageError,
    pub partial: Option<PackageOutcome>,
}

/// Where the archive goes.
#[derive(Clone, Debug)]
pub struct Destination {
    pub client: aws_sdk_s3::Client,
    pub upload: s3::UploadSettings,
}

/// Runs the whole Job. On failure the error comes with what was achieved (for `partial`).
pub async fn run<S: PointSource>(
    source: &S,
    plan: &Plan,
    work_dir: &Path,
    destination: &Destination,
    webhook: Option<&WebhookSettings>,
) -> Result<PackageOutcome, Box<Failure>> {
    let started = Instant::now();
    let fail = |error: PackageError, partial: Option<PackageOutcome>| Box::new(Failure { error, partial });
    let built = build_archive(source, plan, work_dir, Some(destination.client.clone()))
        .await
        .map_err(|e| fail(e, None))?;
    let upload = s3::upload_or_reuse(
        &destination.client,
        &destination.upload,
        &built.file.path,
        &built.file.sha256,
        built.file.size,
    )
    .await
    .map_err(|e| fail(e.into(), None))?;
    let s3_uri = format!("s3://{}/{}", destination.upload.bucket, destination.upload.key);
    tracing::info!(%s3_uri, reused = upload.reused, parts = upload.parts, "archive in S3");
    let mut outcome = PackageOutcome {
        s3_uri: Some(s3_uri.clone()),
        sha256: Some(built.file.sha256.clone()),
        size_bytes: Some(built.file.size),
        points: built.points,
        points_available: Some(built.points_available),
        objects: built.objects.clone(),
        reused: upload.reused,
        retraining_job_id: None,
        attempts: 0,
        duration_seconds: 0.0,
    };
    if let Some(settings) = webhook {
        let body = WebhookBody {
            event_id: plan.event_id(),
            monitor: plan.monitor.clone(),
            s3_uri,
            sha256: built.file.sha256.clone(),
            sample_size: built.points,
            reference_window: plan.reference_window.clone(),
            comparison_window: plan.comparison_window.clone(),
            drift_scores: plan.drift_scores.clone(),
            approved_by: plan.approved_by.clone(),
            reason: plan.reason.clone(),
            event_uid: plan.event_uid.clone(),
            size_bytes: built.file.size,
        };
        match webhook::deliver(settings, &body).await {
            Ok(delivery) => {
                outcome.attempts = delivery.attempts.len() as u32;
                outcome.retraining_job_id = delivery.job_id;
            }
            Err(err) => {
                outcome.attempts = err.attempts();
                outcome.duration_seconds = started.elapsed().as_secs_f64();
                return Err(fail(err.into(), Some(outcome)));
            }
        }
    }
    outcome.duration_seconds = started.elapsed().as_secs_f64();
    Ok(outcome)
}

/// A fresh work folder under `base` (removed when dropped).
pub fn work_dir(base: Option<&Path>) -> std::io::Result<tempfile::TempDir> {
    let base: PathBuf = base.map(Path::to_path_buf).unwrap_or_else(std::env::temp_dir);
    tempfile::Builder::new()
        .prefix("driftwatch-package-")
        .tempdir_in(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_and_input_failures_are_final_and_infrastructure_failures_are_not() {
        let rejected = PackageError::Webhook(WebhookError::Rejected {
            status: 400,
            body: "bad".into(),
            attempts: vec![],
        });
        let exhausted = PackageError::Webhook(WebhookError::Exhausted {
            last: "HTTP 503".into(),
            attempts: vec![],
        });
        for final_error in [
            rejected,
            exhausted,
            PackageError::InvalidArgument("x".into()),
            PackageError::NoPoints,
        ] {
            assert!(is_final_failure(final_error.kind()), "{}", final_error.kind());
        }
        for retryable in [
            PackageError::Source("down".into()),
            PackageError::Objects(3),
            PackageError::WorkDir {
                path: "/work".into(),
                message: "full".into(),
            },
        ] {
            assert!(!is_final_failure(retryable.kind()), "{}", retryable.kind());
        }
    }

    #[test]
    fn the_key_follows_prefix_namespace_event_and_format() {
        let plan = test_plan(ArchiveFormat::Zip);
        assert_eq!(plan.key("batches/"), "batches/ml/frames-20261126/batch.zip");
        assert_eq!(plan.event_id(), "ml/frames-20261126");
    }

    #[test]
    fn object_uris_are_read_from_dotted_payload_paths() {
        let payload = serde_json::json!({"media": {"uri": "s3://b/k.jpg"}, "n": 1});
        assert_eq!(object_uri(&payload, "media.uri").as_deref(), Some("s3://b/k.jpg"));
        assert_eq!(object_uri(&payload, "n"), None);
        assert_eq!(object_uri(&payload, "missing"), None);
    }

    fn test_plan(format: ArchiveFormat) -> Plan {
        Plan {
            namespace: "ml".into(),
            event: "frames-20261126".into(),
            event_uid: Some("uid-1".into()),
            monitor: "frames".into(),
            reference_window: WindowBody::default(),
            comparison_window: WindowBody::default(),
            drift_scores: serde_json::json!([]),
            approved_by: "alice".into(),
            reason: None,
            created_at: "2026-11-26T00:00:00Z".into(),
            sample_size: 10,
            seed: 42,
            format,
            source: serde_json::json!({}),
            objects: None,
        }
    }
}
