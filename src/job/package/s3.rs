//! S3 (or S3-compatible) I/O of the packaging Job: client set-up (env or default credential chain, custom
//! endpoint with path-style addressing), upload of the archive (single PUT or multipart, SHA-256 checked by
//! the store) that reuses an identical object already in place, and object download for `includeObjects`.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{BehaviorVersion, Region};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, ServerSideEncryption};
use base64::Engine as _;
use futures::{StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

/// Object metadata key holding the archive's hex SHA-256 (`x-amz-meta-sha256`).
pub const SHA256_METADATA: &str = "sha256";
/// Smallest part S3 accepts (except the last).
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// Parts uploaded at once (memory: this many parts in flight).
const PART_CONCURRENCY: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    #[error("S3 {op} s3://{bucket}/{key}: {message}")]
    Request {
        op: &'static str,
        bucket: String,
        key: String,
        message: String,
    },
    #[error("reading {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{0} is not an s3://bucket/key URI")]
    BadUri(String),
    #[error("object is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
}

/// Where and how to connect.
#[derive(Clone, Debug, Default)]
pub struct S3Settings {
    pub region: Option<String>,
    /// Custom endpoint (S3-compatible stores); switches to path-style addressing.
    pub endpoint: Option<String>,
}

/// Builds a client. Credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY from the environment, else the
/// default chain (profile, web identity / IRSA, container and instance metadata).
pub async fn client(settings: &S3Settings) -> Client {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http);
    if let Some(region) = &settings.region {
        loader = loader.region(Region::new(region.clone()));
    }
    let shared = loader.load().await;
    let mut config = aws_sdk_s3::config::Builder::from(&shared);
    if shared.region().is_none() {
        config = config.region(Region::new("us-east-1"));
    }
    if let Some(endpoint) = settings.endpoint.as_deref().filter(|e| !e.is_empty()) {
        config = config.endpoint_url(endpoint).force_path_style(true);
    }
    Client::from_conf(config.build())
}

/// An `s3://bucket/key` URI split in two.
pub fn parse_s3_uri(uri: &str) -> Result<(String, String), S3Error> {
    let rest = uri
        .strip_prefix("s3://")
        .ok_or_else(|| S3Error::BadUri(uri.to_string()))?;
    match rest.split_once('/') {
        Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => {
            Ok((bucket.to_string(), key.to_string()))
        }
        _ => Err(S3Error::BadUri(uri.to_string())),
    }
}

/// How the archive is uploaded.
#[derive(Clone, Debug)]
pub struct UploadSettings {
    pub bucket: String,
    pub key: String,
    /// `AES256` or `aws:kms`.
    pub sse: Option<String>,
    /// Files at least this large go up in parts.
    pub multipart_threshold: u64,
    pub part_size: u64,
}

/// What the upload did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadOutcome {
    /// An object with the same size and SHA-256 was already there; nothing was sent.
    pub reused: bool,
    /// Parts sent (1 for a single PUT, 0 when reused).
    pub parts: u32,
}

fn request_error<E>(op: &'static str, bucket: &str, key: &str, err: E) -> S3Error
where
    E: std::error::Error,
{
    S3Error::Request {
        op,
        bucket: bucket.to_string(),
        key: key.to_string(),
        message: DisplayErrorContext(err).to_string(),
    }
}

/// The SHA-256 and size recorded on an existing object, or None when there is none.
pub async fn existing_checksum(
    client: &Client,
    bucket: &str,
    key: &str,
) -> Result<Option<(Option<String>, u64)>, S3Error> {
    match client.head_object().bucket(bucket).key(key).send().await {
        Ok(head) => {
            let sha = head
                .metadata()
                .and_then(|m| m.get(SHA256_METADATA))
                .map(|s| s.to_ascii_lowercase());
            let size = head.content_length().unwrap_or(0).max(0) as u64;
            Ok(Some((sha, size)))
        }
        Err(err) => {
            let not_found = err.as_service_error().is_some_and(|e| e.is_not_found())
                || err.raw_response().is_some_and(|r| r.status().as_u16() == 404);
            if not_found {
                Ok(None)
            } else {
                Err(request_error("HeadObject", bucket, key, err))
            }
        }
    }
}

/// Uploads `path` (whose hex SHA-256 and size are known) unless the same object is already there.
pub async fn upload_or_reuse(
    client: &Client,
    settings: &UploadSettings,
    path: &Path,
    sha256: &str,
    size: u64,
) -> Result<UploadOutcome, S3Error> {
    let (bucket, key) = (settings.bucket.as_str(), settings.key.as_str());
    if let Some((existing_sha, existing_size)) = existing_checksum(client, bucket, key).await? {
        if existing_sha.as_deref() == Some(sha256) && existing_size == size {
            tracing::info!(
                bucket,
                key,
                sha256,
                "identical archive already uploaded; reusing it"
            );
            return Ok(UploadOutcome {
                reused: true,
                parts: 0,
            });
        }
        tracing::warn!(
            bucket,
            key,
            ?existing_sha,
            "a different object is at the key; replacing it"
        );
    }
    let sse = settings.sse.as_deref().map(ServerSideEncryption::from);
    if size < settings.multipart_threshold.max(MIN_PART_SIZE) {
        let body = ByteStream::from_path(path).await.map_err(|e| S3Error::Io {
            path: path.display().to_string(),
            source: std::io::Error::other(e),
        })?;
        client
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(body)
            .content_length(size as i64)
            .content_type(content_type(key))
            .metadata(SHA256_METADATA, sha256)
            .checksum_sha256(hex_to_base64(sha256))
            .set_server_side_encryption(sse)
            .send()
            .await
            .map_err(|e| request_error("PutObject", bucket, key, e))?;
        return Ok(UploadOutcome {
            reused: false,
            parts: 1,
        });
    }
    let created = client
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .content_type(content_type(key))
        .metadata(SHA256_METADATA, sha256)
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .set_server_side_encryption(sse)
        .send()
        .await
        .map_err(|e| request_error("CreateMultipartUpload", bucket, key, e))?;
    let upload_id = created.upload_id().unwrap_or_default().to_string();
    match upload_parts(client, settings, path, size, &upload_id).await {
        Ok(parts) => {
            let count = parts.len() as u32;
            client
                .complete_multipart_upload()
                .bucket(bucket)
                .key(key)
                .upload_id(&upload_id)
                .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
                .send()
                .await
                .map_err(|e| request_error("CompleteMultipartUpload", bucket, key, e))?;
            Ok(UploadOutcome {
                reused: false,
                parts: count,
            })
        }
        Err(err) => {
            if let Err(abort) = client
                .abort_multipart_upload()
                .bucket(bucket)
                .key(key)
                .upload_id(&upload_id)
                .send()
                .await
            {
                tracing::warn!(error = %DisplayErrorContext(abort), "aborting the multipart upload failed");
            }
            Err(err)
        }
    }
}

async fn upload_parts(
    client: &Client,
    settings: &UploadSettings,
    path: &Path,
    size: u64,
    upload_id: &str,
) -> Result<Vec<CompletedPart>, S3Error> {
    let part_size = settings.part_size.max(MIN_PART_SIZE);
    let count = size.div_ceil(part_size);
    let file = std::sync::Arc::new(File::open(path).map_err(|source| S3Error::Io {
        path: path.display().to_string(),
        source,
    })?);
    let (bucket, key) = (settings.bucket.as_str(), settings.key.as_str());
    futures::stream::iter(0..count)
        .map(|index| {
            let file = file.clone();
            async move {
                let offset = index * part_size;
                let len = part_size.min(size - offset) as usize;
                let bytes = tokio::task::spawn_blocking(move || {
                    let mut buf = vec![0u8; len];
                    file.read_exact_at(&mut buf, offset).map(|()| buf)
                })
                .await
                .map_err(|e| S3Error::Io {
                    path: path.display().to_string(),
                    source: std::io::Error::other(e),
                })?
                .map_err(|source| S3Error::Io {
                    path: path.display().to_string(),
                    source,
                })?;
                let checksum = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&bytes));
                let number = (index + 1) as i32;
                let part = client
                    .upload_part()
                    .bucket(bucket)
                    .key(key)
                    .upload_id(upload_id)
                    .part_number(number)
                    .content_length(len as i64)
                    .checksum_sha256(&checksum)
                    .body(ByteStream::from(bytes))
                    .send()
                    .await
                    .map_err(|e| request_error("UploadPart", bucket, key, e))?;
                Ok::<CompletedPart, S3Error>(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(part.e_tag().map(str::to_string))
                        .checksum_sha256(checksum)
                        .build(),
                )
            }
        })
        .buffered(PART_CONCURRENCY)
        .try_collect()
        .await
}

fn content_type(key: &str) -> &'static str {
    if key.ends_with(".zip") {
        "application/zip"
    } else {
        "application/gzip"
    }
}

fn hex_to_base64(hex_digest: &str) -> String {
    let bytes = hex::decode(hex_digest).unwrap_or_default();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Downloads `s3://bucket/key` into `dest`, refusing objects larger than `limit`; returns the size.
pub async fn download(client: &Client, uri: &str, dest: &Path, limit: u64) -> Result<u64, S3Error> {
    let (bucket, key) = parse_s3_uri(uri)?;
    let out = client
        .get_object()
        .bucket(&bucket)
        .key(&key)
        .send()
        .await
        .map_err(|e| request_error("GetObject", &bucket, &key, e))?;
    if out.content_length().unwrap_or(0).max(0) as u64 > limit {
        return Err(S3Error::TooLarge { limit });
    }
    let io = |source| S3Error::Io {
        path: dest.display().to_string(),
        source,
    };
    let mut file = tokio::fs::File::create(dest).await.map_err(io)?;
    let mut body = out.body;
    let mut total = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| request_error("GetObject", &bucket, &key, e))?;
        total += chunk.len() as u64;
        if total > limit {
            return Err(S3Error::TooLarge { limit });
        }
        file.write_all(&chunk).await.map_err(|source| S3Error::Io {
            path: dest.display().to_string(),
            source,
        })?;
    }
    file.flush().await.map_err(|source| S3Error::Io {
        path: dest.display().to_string(),
        source,
    })?;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_uris_split_into_bucket_and_key() {
        assert_eq!(
            parse_s3_uri("s3://frames/2026/a.jpg").unwrap(),
            ("frames".to_string(), "2026/a.jpg".to_string())
        );
        assert!(parse_s3_uri("https://x/y").is_err());
        assert!(parse_s3_uri("s3://bucket-only").is_err());
    }

    #[test]
    fn a_hex_digest_becomes_the_base64_s3_expects() {
        let hex_digest = hex::encode(Sha256::digest(b"abc"));
        assert_eq!(
            hex_to_base64(&hex_digest),
            "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
        );
    }
}
