//! `includeObjects`: copies the media the points refer to (`s3://` or `http(s)://` URIs in a payload field)
//! into the work folder for the archive's `objects/`, with per-object and total byte caps. `http(s)` objects
//! are fetched only from allowed sources and never from refused addresses (see [`super::reach`]). A
//! missing, refused or oversized object is recorded in the manifest, not fatal. Network and file I/O.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use tokio::io::AsyncWriteExt;

use super::archive::hash_file;
use super::reach::{GuardedResolver, SourcePolicy};
use super::s3::{self, S3Error};
use crate::job::redact::redact_urls;

/// Byte caps.
#[derive(Clone, Copy, Debug)]
pub struct ObjectLimits {
    pub max_object_bytes: u64,
    pub max_total_bytes: u64,
}

/// One referenced object, as listed in the manifest.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRecord {
    pub uri: String,
    /// Path inside the archive, when included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Why it is not included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Parses a Kubernetes byte quantity (`20Mi`, `2Gi`, `500k`, `1048576`).
pub fn parse_quantity(text: &str) -> Option<u64> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let value: u64 = text[..digits].parse().ok()?;
    let factor: u64 = match &text[digits..] {
        "" => 1,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        _ => return None,
    };
    value.checked_mul(factor)
}

#[derive(Debug, thiserror::Error)]
enum FetchError {
    #[error("{0}")]
    S3(#[from] S3Error),
    #[error("HTTP {0}")]
    Status(u16),
    #[error("{0}")]
    Http(String),
    #[error("larger than maxObjectBytes ({0} bytes)")]
    TooLarge(u64),
    #[error("unsupported URI scheme (need s3://, https:// or http://)")]
    Scheme,
    #[error("refused: {0}")]
    Refused(String),
    #[error("no S3 client configured")]
    NoS3,
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Fetches objects in the order asked (the archive's order), once per URI.
pub struct ObjectFetcher {
    s3: Option<aws_sdk_s3::Client>,
    http: reqwest::Client,
    policy: Arc<SourcePolicy>,
    dir: PathBuf,
    limits: ObjectLimits,
    total: u64,
    records: Vec<ObjectRecord>,
    by_uri: HashMap<String, usize>,
}

impl ObjectFetcher {
    pub fn new(
        dir: &Path,
        s3: Option<aws_sdk_s3::Client>,
        limits: ObjectLimits,
        policy: SourcePolicy,
    ) -> Result<Self, String> {
        std::fs::create_dir_all(dir.join("objects")).map_err(|e| e.to_string())?;
        let policy = Arc::new(policy);
        let redirects = policy.clone();
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(120))
            // Every name the client resolves, redirects included, loses its refused addresses.
            .dns_resolver(Arc::new(GuardedResolver {
                policy: policy.clone(),
            }))
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= 5 {
                    return attempt.error("more than 5 redirects");
                }
                match redirects.refusal_of(attempt.url()) {
                    None => attempt.follow(),
                    Some(why) => attempt.error(format!("redirect refused: {why}")),
                }
            }))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            s3,
            http,
            policy,
            dir: dir.to_path_buf(),
            limits,
            total: 0,
            records: Vec::new(),
            by_uri: HashMap::new(),
        })
    }

    /// Fetches `uri` (once) and returns its record.
    pub async fn fetch(&mut self, uri: &str) -> &ObjectRecord {
        if let Some(&index) = self.by_uri.get(uri) {
            return &self.records[index];
        }
        let index = self.records.len();
        let name = format!("objects/{index:06}-{}", sanitize(basename(uri)));
        let local = self.dir.join(&name);
        let remaining = self.limits.max_total_bytes.saturating_sub(self.total);
        let limit = self.limits.max_object_bytes.min(remaining);
        let record = match self.download(uri, &local, limit).await {
            Ok(size) => match hash_file(&local) {
                Ok((sha256, _)) => {
                    self.total += size;
                    ObjectRecord {
                        uri: uri.to_string(),
                        path: Some(name),
                        size_bytes: Some(size),
                        sha256: Some(sha256),
                        error: None,
                    }
                }
                Err(e) => failed(uri, e.to_string()),
            },
            Err(err) => {
                let _ = std::fs::remove_file(&local);
                let message = match err {
                    FetchError::TooLarge(_) | FetchError::S3(S3Error::TooLarge { .. })
                        if limit < self.limits.max_object_bytes =>
                    {
                        format!("maxTotalBytes ({}) reached", self.limits.max_total_bytes)
                    }
                    FetchError::S3(S3Error::TooLarge { .. }) => {
                        format!(
                            "larger than maxObjectBytes ({} bytes)",
                            self.limits.max_object_bytes
                        )
                    }
                    other => other.to_string(),
                };
                let message = redact_urls(&message);
                tracing::warn!(origin = %redact_urls(uri), error = %message, "object not included");
                failed(uri, message)
            }
        };
        self.records.push(record);
        self.by_uri.insert(uri.to_string(), index);
        &self.records[index]
    }

    async fn download(&self, uri: &str, dest: &Path, limit: u64) -> Result<u64, FetchError> {
        if uri.starts_with("s3://") {
            let client = self.s3.as_ref().ok_or(FetchError::NoS3)?;
            return Ok(s3::download(client, uri, dest, limit).await?);
        }
        if !(uri.starts_with("https://") || uri.starts_with("http://")) {
            return Err(FetchError::Scheme);
        }
        if let Some(why) = self.policy.refusal(uri) {
            return Err(FetchError::Refused(why));
        }
        // Names are judged on their addresses before the request (for a clear message); the resolver
        // judges them again on connect.
        if let Some(host) = reqwest::Url::parse(uri)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            && host.parse::<std::net::IpAddr>().is_err()
            && !host.starts_with('[')
        {
            let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| FetchError::Http(format!("resolving {host}: {e}")))?
                .collect();
            self.policy
                .filter_addresses(&host, addrs)
                .map_err(FetchError::Refused)?;
        }
        let mut response = self
            .http
            .get(uri)
            .send()
            .await
            .map_err(|e| FetchError::Http(e.without_url().to_string()))?;
        if !response.status().is_success() {
            return Err(FetchError::Status(response.status().as_u16()));
        }
        if response.content_length().is_some_and(|n| n > limit) {
            return Err(FetchError::TooLarge(limit));
        }
        let mut file = tokio::fs::File::create(dest).await?;
        let mut total = 0u64;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| FetchError::Http(e.without_url().to_string()))?
        {
            total += chunk.len() as u64;
            if total > limit {
                return Err(FetchError::TooLarge(limit));
            }
            file.write_all(&chunk).await?;
        }
        file.flush().await?;
        Ok(total)
    }

    /// Every object asked for, in order.
    pub fn records(&self) -> &[ObjectRecord] {
        &self.records
    }

    pub fn local_path(&self, archive_path: &str) -> PathBuf {
        self.dir.join(archive_path)
    }
}

fn failed(uri: &str, message: String) -> ObjectRecord {
    ObjectRecord {
        uri: uri.to_string(),
        path: None,
        size_bytes: None,
        sha256: None,
        error: Some(message),
    }
}

fn basename(uri: &str) -> &str {
    let no_query = uri.split(['?', '#']).next().unwrap_or(uri);
    no_query.rsplit('/').find(|s| !s.is_empty()).unwrap_or("object")
}

fn sanitize(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    if cleaned.is_empty() || cleaned.chars().all(|c| c == '.') {
        "object".to_string()
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_read_like_kubernetes_ones() {
        assert_eq!(parse_quantity("20Mi"), Some(20 << 20));
        assert_eq!(parse_quantity("2Gi"), Some(2 << 30));
        assert_eq!(parse_quantity("500k"), Some(500_000));
        assert_eq!(parse_quantity("42"), Some(42));
        assert_eq!(parse_quantity("5 MB"), None);
    }

    #[test]
    fn object_names_keep_the_basename_and_nothing_dangerous() {
        assert_eq!(basename("s3://b/frames/cam1/0001.jpg"), "0001.jpg");
        assert_eq!(basename("https://cdn/x/y.png?sig=1"), "y.png");
        assert_eq!(sanitize("../../etc/passwd"), ".._.._etc_passwd");
        assert_eq!(sanitize(".."), "object");
    }
}
