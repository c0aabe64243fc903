//! The packaging pipeline against a real S3-compatible server (moto) and a real webhook receiver: the
//! archive is read back and checked against the source, a re-run reuses the upload, large archives go up in
//! parts, zip works, referenced objects are included, and webhook failures keep the upload in the report.

#[path = "support/s3_server.rs"]
mod s3_server;
#[path = "support/webhook_receiver.rs"]
mod webhook_receiver;

use std::collections::HashMap;
use std::io::Read;
use std::time::Duration;

use driftwatch::api::v1alpha1::ArchiveFormat;
use driftwatch::job::package::objects::ObjectLimits;
use driftwatch::job::package::s3::UploadSettings;
use driftwatch::job::package::source::{MemorySource, Point, PointId};
use driftwatch::job::package::webhook::{RetryPolicy, WebhookSettings, WindowBody};
use driftwatch::job::package::{self, Destination, ObjectsPlan, PackageError, Plan};
use s3_server::S3Server;
use serde_json::{Value, json};
use webhook_receiver::{Receiver, Reply};

const BUCKET: &str = "retrain-batches";

fn source(n: u64, dims: usize) -> MemorySource {
    MemorySource {
        points: (0..n)
            .map(|i| Point {
                id: PointId::Num(i),
                timestamp: Some(format!("2026-11-25T{:02}:{:02}:00Z", (i / 60) % 24, i % 60)),
                payload: json!({"camera": format!("cam-{}", i % 7), "confidence": 0.5 + (i % 50) as f64 / 100.0}),
                vector: (0..dims).map(|d| ((i * 31 + d as u64 * 17) % 1000) as f32 / 1000.0 - 0.5).collect(),
            })
            .collect(),
    }
}

fn plan(event: &str, sample: u64, format: ArchiveFormat) -> Plan {
    Plan {
        namespace: "ml".into(),
        event: event.into(),
        event_uid: Some(format!("uid-{event}")),
        monitor: "frames".into(),
        reference_window: WindowBody {
            start_time: Some("2026-11-18T00:00:00Z".into()),
            end_time: Some("2026-11-25T00:00:00Z".into()),
        },
        comparison_window: WindowBody {
            start_time: Some("2026-11-25T00:00:00Z".into()),
            end_time: Some("2026-11-26T00:00:00Z".into()),
        },
        drift_scores: json!([{"method": "kl_divergence", "source": "embeddings", "score": 0.31, "threshold": 0.1, "drifted": true}]),
        approved_by: "alice".into(),
        reason: Some("new firmware".into()),
        created_at: "2026-11-26T09:00:00Z".into(),
        sample_size: sample,
        seed: 42,
        format,
        source: json!({"collection": "frames"}),
        objects: None,
    }
}

async fn destination(plan: &Plan, threshold: u64) -> Destination {
    let server = S3Server::shared();
    server.create_bucket(BUCKET).await;
    Destination {
        client: server.client(),
        upload: UploadSettings {
            bucket: BUCKET.into(),
            key: plan.key("batches/"),
            sse: None,
            multipart_threshold: threshold,
            part_size: 5 * 1024 * 1024,
        },
    }
}

fn webhook(url: &str) -> WebhookSettings {
    WebhookSettings {
        url: url.into(),
        token: None,
        hmac_key: Some("k".into()),
        idempotency_key: "uid".into(),
        timeout: Duration::from_secs(5),
        policy: RetryPolicy {
            retries: 3,
            base: Duration::from_millis(50),
            max_delay: Duration::from_millis(200),
            ..RetryPolicy::default()
        },
    }
}

async fn download(dest: &Destination) -> Vec<u8> {
    // The tests compare the whole archive's SHA-256 themselves. The SDK's own response validation is off:
    // moto answers GET of a multipart object with a per-part checksum header that is not the object's.
    let out = dest
        .client
        .get_object()
        .bucket(&dest.upload.bucket)
        .key(&dest.upload.key)
        .customize()
        .config_override(
            aws_sdk_s3::config::Builder::new()
                .response_checksum_validation(aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired),
        )
        .send()
        .await
        .unwrap();
    out.body.collect().await.unwrap().into_bytes().to_vec()
}

async fn head(dest: &Destination) -> aws_sdk_s3::operation::head_object::HeadObjectOutput {
    dest.client
        .head_object()
        .bucket(&dest.upload.bucket)
        .key(&dest.upload.key)
        .send()
        .await
        .unwrap()
}

/// Entries of a tar.gz or zip, by name.
fn unpack(bytes: &[u8], format: ArchiveFormat) -> (Vec<String>, HashMap<String, Vec<u8>>) {
    let mut names = Vec::new();
    let mut files = HashMap::new();
    match format {
        ArchiveFormat::TarGz => {
            let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
            for entry in tar.entries().unwrap() {
                let mut entry = entry.unwrap();
                assert_eq!(entry.header().mtime().unwrap(), 315_532_800);
                let name = entry.path().unwrap().display().to_string();
                let mut data = Vec::new();
                entry.read_to_end(&mut data).unwrap();
                names.push(name.clone());
                files.insert(name, data);
            }
        }
        ArchiveFormat::Zip => {
            let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
            for i in 0..zip.len() {
                let mut file = zip.by_index(i).unwrap();
                let name = file.name().expect("zip entry name").to_string();
                let mut data = Vec::new();
                file.read_to_end(&mut data).unwrap();
                names.push(name.clone());
                files.insert(name, data);
            }
        }
    }
    (names, files)
}

/// Parses our `.npy` (v1.0, `<f4`, C order) into (shape, values) independently of the writer.
fn read_npy(bytes: &[u8]) -> ((usize, usize), Vec<f32>) {
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
    assert!(
        header.contains("'descr': '<f4'") && header.contains("'fortran_order': False"),
        "{header}"
    );
    let shape = header
        .split("'shape': (")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap();
    let dims: Vec<usize> = shape.split(',').map(|s| s.trim().parse().unwrap()).collect();
    assert_eq!((10 + header_len) % 64, 0);
    let values = bytes[10 + header_len..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    ((dims[0], dims[1]), values)
}

fn check_archive(bytes: &[u8], format: ArchiveFormat, src: &MemorySource, sample: usize) -> Value {
    let (names, files) = unpack(bytes, format);
    assert_eq!(&names[..3], ["manifest.json", "points.jsonl", "vectors.npy"]);
    let manifest: Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    assert_eq!(manifest["schemaVersion"], "driftwatch.dev/batch/v1");
    assert_eq!(manifest["event"]["namespace"], "ml");
    assert_eq!(manifest["counts"]["points"], sample as u64);
    assert_eq!(manifest["counts"]["pointsAvailable"], src.points.len() as u64);
    let lines: Vec<Value> = std::str::from_utf8(&files["points.jsonl"])
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), sample);
    let ((rows, dims), values) = read_npy(&files["vectors.npy"]);
    assert_eq!(rows, sample);
    assert_eq!(dims, src.points[0].vector.len());
    let by_id: HashMap<u64, &Point> = src
        .points
        .iter()
        .map(|p| match p.id {
            PointId::Num(n) => (n, p),
            PointId::Uuid(_) => unreachable!(),
        })
        .collect();
    for (row, line) in lines.iter().enumerate() {
        assert_eq!(line["row"], row as u64);
        let original = by_id[&line["id"].as_u64().unwrap()];
        assert_eq!(line["payload"], original.payload);
        assert_eq!(line["timestamp"], original.timestamp.clone().unwrap().as_str());
        assert_eq!(
            &values[row * dims..(row + 1) * dims],
            original.vector.as_slice(),
            "row {row}"
        );
    }
    // Sorted by id, no duplicates.
    let ids: Vec<u64> = lines.iter().map(|l| l["id"].as_u64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    // The manifest's per-file checksums match the files.
    for file in manifest["files"].as_array().unwrap() {
        use sha2::Digest;
        let name = file["path"].as_str().unwrap();
        assert_eq!(file["sha256"], hex::encode(sha2::Sha256::digest(&files[name])));
    }
    manifest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_batch_lands_in_s3_and_reads_back_equal_to_the_source() {
    let src = source(3000, 32);
    let plan = plan("batch-read-back", 500, ArchiveFormat::TarGz);
    let dest = destination(&plan, 64 << 20).await;
    let receiver = Receiver::start(vec![Reply::Ok(json!({"job_id": "retrain-1"}))]).await;
    let work = tempfile::tempdir().unwrap();
    let outcome = package::run(&src, &plan, work.path(), &dest, Some(&webhook(&receiver.url)))
        .await
        .unwrap();
    assert_eq!(outcome.points, 500);
    assert!(!outcome.reused);
    assert_eq!(outcome.attempts, 1);
    assert_eq!(outcome.retraining_job_id.as_deref(), Some("retrain-1"));
    assert_eq!(
        outcome.s3_uri.as_deref(),
        Some("s3://retrain-batches/batches/ml/batch-read-back/batch.tar.gz")
    );
    let bytes = download(&dest).await;
    {
        use sha2::Digest;
        assert_eq!(
            outcome.sha256.as_deref(),
            Some(hex::encode(sha2::Sha256::digest(&bytes)).as_str())
        );
        assert_eq!(outcome.size_bytes, Some(bytes.len() as u64));
    }
    let manifest = check_archive(&bytes, ArchiveFormat::TarGz, &src, 500);
    assert_eq!(manifest["approvedBy"], "alice");
    assert_eq!(manifest["monitor"], "frames");
    assert_eq!(manifest["event"]["uid"], "uid-batch-read-back");
    assert_eq!(
        manifest["windows"]["comparison"]["start_time"],
        "2026-11-25T00:00:00Z"
    );
    assert_eq!(manifest["driftScores"][0]["score"], 0.31);
    let body: Value = serde_json::from_slice(&receiver.received()[0].body).unwrap();
    assert_eq!(body["s3_uri"], outcome.s3_uri.unwrap());
    assert_eq!(body["sha256"], outcome.sha256.unwrap());
    assert_eq!(body["sample_size"], 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_finds_the_identical_archive_and_does_not_upload_again() {
    let src = source(1000, 16);
    let plan = plan("batch-rerun", 200, ArchiveFormat::TarGz);
    let dest = destination(&plan, 64 << 20).await;
    let work = tempfile::tempdir().unwrap();
    let first = package::run(&src, &plan, &work.path().join("1"), &dest, None)
        .await
        .unwrap();
    let before = head(&dest).await;
    // A retried Pod reads the window in another order: the sample and the archive are the same.
    let mut shuffled = src.clone();
    shuffled.points.reverse();
    let second = package::run(&shuffled, &plan, &work.path().join("2"), &dest, None)
        .await
        .unwrap();
    assert!(!first.reused);
    assert!(second.reused);
    assert_eq!(first.sha256, second.sha256);
    let after = head(&dest).await;
    assert_eq!(before.e_tag(), after.e_tag());
    assert_eq!(before.last_modified(), after.last_modified());
    assert_eq!(
        after.metadata().unwrap().get("sha256").map(String::as_str),
        first.sha256.as_deref()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_archive_goes_up_in_parts_and_arrives_intact() {
    // 3000 × 768 f32 ≈ 9 MiB of vectors: two 5 MiB parts.
    let src = source(3000, 768);
    let plan = plan("batch-multipart", 3000, ArchiveFormat::TarGz);
    let dest = destination(&plan, 5 << 20).await;
    let work = tempfile::tempdir().unwrap();
    let outcome = package::run(&src, &plan, work.path(), &dest, None).await.unwrap();
    assert!(outcome.size_bytes.unwrap() > 5 << 20, "{outcome:?}");
    let bytes = download(&dest).await;
    use sha2::Digest;
    assert_eq!(
        outcome.sha256.as_deref(),
        Some(hex::encode(sha2::Sha256::digest(&bytes)).as_str())
    );
    check_archive(&bytes, ArchiveFormat::TarGz, &src, 3000);
    // The multipart ETag has the "-<parts>" suffix.
    let head = dest
        .client
        .head_object()
        .bucket(&dest.upload.bucket)
        .key(&dest.upload.key)
        .send()
        .await
        .unwrap();
    assert!(
        head.e_tag().unwrap_or_default().trim_matches('"').ends_with("-2"),
        "{:?}",
        head.e_tag()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_zip_format_holds_the_same_content() {
    let src = source(400, 8);
    let plan = plan("batch-zip", 100, ArchiveFormat::Zip);
    let dest = destination(&plan, 64 << 20).await;
    let work = tempfile::tempdir().unwrap();
    let outcome = package::run(&src, &plan, work.path(), &dest, None).await.unwrap();
    assert!(outcome.s3_uri.unwrap().ends_with("/batch-zip/batch.zip"));
    check_archive(&download(&dest).await, ArchiveFormat::Zip, &src, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn referenced_objects_are_included_and_a_missing_one_is_recorded() {
    let server = S3Server::shared();
    server.create_bucket("frames-media").await;
    let client = server.client();
    for i in 0..3 {
        client
            .put_object()
            .bucket("frames-media")
            .key(format!("cam/{i}.jpg"))
            .body(aws_sdk_s3::primitives::ByteStream::from(vec![i as u8; 1000 + i]))
            .send()
            .await
            .unwrap();
    }
    let mut src = source(4, 4);
    for (i, point) in src.points.iter_mut().enumerate() {
        point.payload["frame_uri"] = json!(format!("s3://frames-media/cam/{i}.jpg"));
    }
    let mut plan = plan("batch-objects", 10, ArchiveFormat::TarGz);
    plan.objects = Some(ObjectsPlan {
        payload_field: "frame_uri".into(),
        limits: ObjectLimits {
            max_object_bytes: 1 << 20,
            max_total_bytes: 1 << 20,
        },
        sources: Default::default(),
    });
    let dest = destination(&plan, 64 << 20).await;
    let work = tempfile::tempdir().unwrap();
    let outcome = package::run(&src, &plan, work.path(), &dest, None).await.unwrap();
    let objects = outcome.objects.unwrap();
    assert_eq!((objects.included, objects.missing, objects.bytes), (3, 1, 3003));
    let (names, files) = unpack(&download(&dest).await, ArchiveFormat::TarGz);
    assert!(names.contains(&"objects/000000-0.jpg".to_string()), "{names:?}");
    assert_eq!(files["objects/000002-2.jpg"], vec![2u8; 1002]);
    let manifest: Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    let listed = manifest["objects"].as_array().unwrap();
    assert_eq!(listed.len(), 4);
    assert_eq!(listed[1]["sizeBytes"], 1001);
    assert!(
        listed[3]["error"].as_str().unwrap().contains("GetObject"),
        "{}",
        listed[3]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_webhook_reports_the_upload_and_every_attempt() {
    let src = source(100, 4);
    let plan = plan("batch-webhook-down", 10, ArchiveFormat::TarGz);
    let dest = destination(&plan, 64 << 20).await;
    let receiver = Receiver::start(vec![Reply::Status(503)]).await;
    let work = tempfile::tempdir().unwrap();
    let failure = package::run(&src, &plan, work.path(), &dest, Some(&webhook(&receiver.url)))
        .await
        .unwrap_err();
    let (err, partial) = (failure.error, failure.partial);
    assert_eq!(err.kind(), "WebhookFailed");
    let partial = partial.unwrap();
    assert_eq!(partial.attempts, 4);
    assert!(partial.s3_uri.is_some() && partial.sha256.is_some());
    assert_eq!(receiver.received().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_window_is_insufficient_data_and_uploads_nothing() {
    let plan = plan("batch-empty", 10, ArchiveFormat::TarGz);
    let dest = destination(&plan, 64 << 20).await;
    let work = tempfile::tempdir().unwrap();
    let err = package::run(&MemorySource::default(), &plan, work.path(), &dest, None)
        .await
        .unwrap_err()
        .error;
    assert!(matches!(err, PackageError::NoPoints));
    assert_eq!(err.kind(), "InsufficientData");
}

/// A media server on loopback: `/frames/{name}` answers 64 bytes, `/moved` redirects to `?to=`; counts
/// requests.
async fn media_server() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use axum::extract::{Query, State};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let hits = std::sync::Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new()
        .route(
            "/frames/{name}",
            axum::routing::get(|State(hits): State<std::sync::Arc<AtomicUsize>>| async move {
                hits.fetch_add(1, Ordering::SeqCst);
                vec![7u8; 64]
            }),
        )
        .route(
            "/moved",
            axum::routing::get(
                |State(hits): State<std::sync::Arc<AtomicUsize>>,
                 Query(q): Query<HashMap<String, String>>| async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    axum::response::Redirect::temporary(&q["to"])
                },
            ),
        )
        .with_state(hits.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, hits)
}

fn fetcher(dir: &std::path::Path, allowed: &[String], private: bool) -> package::objects::ObjectFetcher {
    use package::reach::{AllowedSource, SourcePolicy};
    package::objects::ObjectFetcher::new(
        dir,
        None,
        ObjectLimits {
            max_object_bytes: 1 << 20,
            max_total_bytes: 1 << 20,
        },
        SourcePolicy {
            allowed: allowed.iter().map(|a| AllowedSource::parse(a).unwrap()).collect(),
            allow_private_addresses: private,
        },
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_are_fetched_only_from_allowed_sources_and_never_from_refused_addresses() {
    use std::sync::atomic::Ordering;
    let (addr, hits) = media_server().await;
    let port = addr.port();
    let work = tempfile::tempdir().unwrap();
    let uri = format!("http://127.0.0.1:{port}/frames/1.jpg?sig=SECRET");

    // No allow-list: only s3:// objects.
    let mut none = fetcher(work.path(), &[], false);
    let refused = none.fetch(&uri).await.clone();
    assert!(refused.path.is_none());
    let error = refused.error.unwrap();
    assert!(error.contains("not in includeObjects.allowedSources"), "{error}");
    assert!(!error.contains("SECRET"), "{error}");

    // Allowed host, but a loopback address (written out, or behind a name).
    let allowed = [format!("127.0.0.1:{port}"), format!("localhost:{port}")];
    let mut loopback = fetcher(work.path(), &allowed, false);
    let error = loopback.fetch(&uri).await.error.clone().unwrap();
    assert!(error.contains("loopback"), "{error}");
    let error = loopback
        .fetch(&format!("http://localhost:{port}/frames/2.jpg"))
        .await
        .error
        .clone()
        .unwrap();
    assert!(error.contains("resolves only to refused addresses"), "{error}");

    // Cloud metadata (link-local) and private addresses, even when listed.
    let listed = ["169.254.169.254".to_string(), "10.1.2.3".to_string()];
    let mut special = fetcher(work.path(), &listed, false);
    for (uri, class) in [
        (
            "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
            "link-local",
        ),
        ("http://10.1.2.3/frames/1.jpg", "private"),
    ] {
        let error = special.fetch(uri).await.error.clone().unwrap();
        assert!(error.contains(class), "{uri}: {error}");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0, "nothing refused was requested");

    // Allowed explicitly: fetched; a redirect to a source not on the list is not followed.
    let mut explicit = fetcher(work.path(), &allowed, true);
    let fetched = explicit.fetch(&uri).await.clone();
    assert_eq!(fetched.size_bytes, Some(64), "{fetched:?}");
    let moved = format!("http://127.0.0.1:{port}/moved?to=http://169.254.169.254/latest/meta-data/");
    let error = explicit.fetch(&moved).await.error.clone().unwrap();
    assert!(
        error.contains("error following redirect") || error.contains("redirect"),
        "{error}"
    );
    assert_eq!(
        hits.load(Ordering::SeqCst),
        2,
        "the object and the redirect, nothing after it"
    );
}
