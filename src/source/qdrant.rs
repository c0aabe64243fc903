//! The Qdrant client of the source (`qdrant-client`, gRPC): collection shape, exact counts, scroll pages
//! and random-sample queries, each with a per-call deadline and retries with backoff; reading a point's
//! vector and payload numbers. Does network I/O. How a window is read from these calls is in
//! [`super::window`].

use std::future::Future;
use std::time::Duration;

use qdrant_client::qdrant::value::Kind;
use qdrant_client::qdrant::vector_output::Vector as VectorKind;
use qdrant_client::qdrant::vectors_config::Config as VectorsConfigKind;
use qdrant_client::qdrant::vectors_output::VectorsOptions;
use qdrant_client::qdrant::with_payload_selector::SelectorOptions as PayloadSelector;
use qdrant_client::qdrant::with_vectors_selector::SelectorOptions as VectorsSelectorOptions;
use qdrant_client::qdrant::{
    CountPoints, Filter, GetCollectionInfoRequest, PayloadIncludeSelector, PointId, Query, QueryPoints,
    Sample, ScoredPoint, ScrollPoints, ScrollResponse, Value, VectorOutput, VectorsOutput, VectorsSelector,
    WithPayloadSelector, WithVectorsSelector, point_id::PointIdOptions,
};
use qdrant_client::{Qdrant, QdrantError};
use tonic::Code;

use super::{PointSchema, SourceError};

/// The payload fields and vectors a read returns.
#[derive(Clone, Debug)]
pub(crate) struct Selection {
    pub payload: WithPayloadSelector,
    pub vectors: WithVectorsSelector,
}

impl Selection {
    /// These payload fields (none: no payload) and no vector.
    pub fn only(fields: &[&str]) -> Self {
        let payload = if fields.is_empty() {
            PayloadSelector::Enable(false)
        } else {
            PayloadSelector::Include(PayloadIncludeSelector {
                fields: fields.iter().map(|f| f.to_string()).collect(),
            })
        };
        Selection {
            payload: WithPayloadSelector {
                selector_options: Some(payload),
            },
            vectors: WithVectorsSelector {
                selector_options: Some(VectorsSelectorOptions::Enable(false)),
            },
        }
    }
}

/// Connection settings.
#[derive(Clone, Debug)]
pub struct QdrantConfig {
    /// gRPC endpoint, `http://…:6334` or `https://…` (TLS with the system's root certificates).
    pub url: String,
    /// Sent as the `api-key` header.
    pub api_key: Option<String>,
    /// Deadline of each gRPC call.
    pub timeout: Duration,
    /// Retries after the first attempt of a call that failed with a transient error.
    pub retries: u32,
    /// First backoff; doubles per retry (with jitter), capped at 10 s.
    pub backoff: Duration,
    /// Points per scroll page; `None`: about 1 MiB of vectors per page.
    pub page_size: Option<u32>,
    /// Time strata of a window read at the same time.
    pub concurrency: usize,
}

impl QdrantConfig {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            api_key: None,
            timeout: Duration::from_secs(30),
            retries: 3,
            backoff: Duration::from_millis(200),
            page_size: None,
            concurrency: 4,
        }
    }
}

/// The vector parameters of a collection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CollectionShape {
    pub dimension: usize,
    /// Names of the collection's named vectors (empty for a single unnamed vector).
    pub vector_names: Vec<String>,
}

/// A Qdrant collection reader.
pub struct QdrantSource {
    client: Qdrant,
    config: QdrantConfig,
    schema: PointSchema,
}

impl QdrantSource {
    /// Builds the client; connecting happens on the first call.
    pub fn new(config: QdrantConfig, schema: PointSchema) -> Result<Self, SourceError> {
        let client = connect(&config)?;
        Ok(Self {
            client,
            config,
            schema,
        })
    }

    /// The underlying client (for loading data).
    pub fn client(&self) -> &Qdrant {
        &self.client
    }

    /// The collection's dimension for the configured vector.
    pub async fn shape(&self, collection: &str) -> Result<CollectionShape, SourceError> {
        let request = GetCollectionInfoRequest {
            collection_name: collection.to_string(),
        };
        let response = self
            .call("collection info", collection, || {
                self.client.collection_info(request.clone())
            })
            .await?;
        let config = response
            .result
            .and_then(|info| info.config)
            .and_then(|config| config.params)
            .and_then(|params| params.vectors_config)
            .and_then(|vectors| vectors.config);
        let wanted = self.schema.vector_name.as_deref().unwrap_or("");
        match config {
            Some(VectorsConfigKind::Params(params)) if wanted.is_empty() => Ok(CollectionShape {
                dimension: usize::try_from(params.size).unwrap_or(usize::MAX),
                vector_names: Vec::new(),
            }),
            Some(VectorsConfigKind::ParamsMap(map)) => {
                let mut names: Vec<String> = map.map.keys().cloned().collect();
                names.sort();
                match map.map.get(wanted) {
                    Some(params) => Ok(CollectionShape {
                        dimension: usize::try_from(params.size).unwrap_or(usize::MAX),
                        vector_names: names,
                    }),
                    None => Err(SourceError::UnknownVector {
                        collection: collection.to_string(),
                        name: wanted.to_string(),
                        available: if names.is_empty() {
                            "none".to_string()
                        } else {
                            names.join(", ")
                        },
                    }),
                }
            }
            Some(VectorsConfigKind::Params(_)) => Err(SourceError::UnknownVector {
                collection: collection.to_string(),
                name: wanted.to_string(),
                available: "one unnamed vector (leave the vector name empty)".to_string(),
            }),
            None => Err(SourceError::UnknownVector {
                collection: collection.to_string(),
                name: wanted.to_string(),
                available: "none".to_string(),
            }),
        }
    }

    /// Exact number of points matching `filter`.
    pub async fn count(&self, collection: &str, filter: Filter) -> Result<u64, SourceError> {
        let request = CountPoints {
            collection_name: collection.to_string(),
            filter: Some(filter),
            exact: Some(true),
            ..Default::default()
        };
        let response = self
            .call("count", collection, || self.client.count(request.clone()))
            .await?;
        Ok(response.result.map(|r| r.count).unwrap_or(0))
    }

    /// One page of a scroll: points matching `filter` from `offset` (inclusive, ascending id).
    pub(crate) async fn scroll_page(
        &self,
        collection: &str,
        filter: &Filter,
        offset: Option<PointId>,
        limit: u32,
        selection: &Selection,
    ) -> Result<ScrollResponse, SourceError> {
        let request = ScrollPoints {
            collection_name: collection.to_string(),
            filter: Some(filter.clone()),
            offset,
            limit: Some(limit.max(1)),
            with_payload: Some(selection.payload.clone()),
            with_vectors: Some(selection.vectors.clone()),
            ..Default::default()
        };
        self.call("scroll", collection, || self.client.scroll(request.clone()))
            .await
    }

    /// Qdrant's random sample: up to `limit` points drawn from those matching `filter` (the filter is
    /// applied before sampling), in no particular order.
    pub(crate) async fn sample_random(
        &self,
        collection: &str,
        filter: &Filter,
        limit: u64,
        selection: &Selection,
    ) -> Result<Vec<ScoredPoint>, SourceError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let request = QueryPoints {
            collection_name: collection.to_string(),
            query: Some(Query::new_sample(Sample::Random)),
            filter: Some(filter.clone()),
            limit: Some(limit),
            with_payload: Some(selection.payload.clone()),
            with_vectors: Some(selection.vectors.clone()),
            ..Default::default()
        };
        let response = self
            .call("random sample", collection, || self.client.query(request.clone()))
            .await?;
        Ok(response.result)
    }

    /// What a read of the sample asks for: the configured vector, the confidence field (when read),
    /// `extra_fields` and the explained payload fields (when the schema reads points); no other payload.
    pub(crate) fn selection(&self, extra_fields: &[&str]) -> Selection {
        let schema = &self.schema;
        let mut fields: Vec<&str> = schema.confidence_field.as_deref().into_iter().collect();
        fields.extend_from_slice(extra_fields);
        if schema.read_points {
            fields.extend(schema.payload_fields.iter().map(String::as_str));
        }
        let mut selection = Selection::only(&fields);
        selection.vectors.selector_options = Some(match &schema.vector_name {
            Some(name) if !name.is_empty() => VectorsSelectorOptions::Include(VectorsSelector {
                names: vec![name.clone()],
            }),
            _ => VectorsSelectorOptions::Enable(true),
        });
        selection
    }

    /// The schema of the points read.
    pub fn schema(&self) -> &PointSchema {
        &self.schema
    }

    /// The connection settings.
    pub fn config(&self) -> &QdrantConfig {
        &self.config
    }

    /// Runs one gRPC call with the per-call deadline, retrying transient failures with backoff.
    async fn call<T, F, Fut>(&self, operation: &str, collection: &str, mut f: F) -> Result<T, SourceError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, QdrantError>>,
    {
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            // The channel enforces the deadline too; this outer bound also covers connecting.
            let outcome = tokio::time::timeout(self.config.timeout + Duration::from_millis(250), f()).await;
            let error = match outcome {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(err)) => classify(err, &self.config.url, collection),
                Err(_) => Failure::Timeout,
            };
            let transient = matches!(error, Failure::Timeout | Failure::Transient(_));
            if !transient || attempt > self.config.retries {
                return Err(match error {
                    Failure::Timeout => SourceError::Timeout {
                        url: self.config.url.clone(),
                        operation: operation.to_string(),
                        seconds: self.config.timeout.as_secs_f64(),
                        attempts: attempt,
                    },
                    Failure::Transient(message) => SourceError::Unavailable {
                        url: self.config.url.clone(),
                        message: format!("{message} (after {attempt} attempts)"),
                    },
                    Failure::Final(err) => err,
                });
            }
            let delay = backoff(self.config.backoff, attempt);
            tracing::warn!(
                operation,
                collection,
                attempt,
                ?delay,
                "transient Qdrant error, retrying"
            );
            tokio::time::sleep(delay).await;
        }
    }
}

/// Builds a client for `config` (no connection yet).
pub fn connect(config: &QdrantConfig) -> Result<Qdrant, SourceError> {
    let url = config.url.trim_end_matches('/');
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(SourceError::InvalidUrl {
            url: config.url.clone(),
            reason: "use http://host:6334 or https://host:6334 (Qdrant's gRPC port)".to_string(),
        });
    }
    Qdrant::from_url(url)
        .api_key(config.api_key.clone())
        .timeout(config.timeout)
        .connect_timeout(config.timeout)
        .skip_compatibility_check()
        .build()
        .map_err(|err| SourceError::InvalidUrl {
            url: config.url.clone(),
            reason: err.to_string(),
        })
}

enum Failure {
    Timeout,
    Transient(String),
    Final(SourceError),
}

/// Sorts a client error: transient (retry), timeout (retry), or final.
fn classify(err: QdrantError, url: &str, collection: &str) -> Failure {
    let status = match err {
        QdrantError::ResponseError { status } => status,
        QdrantError::ResourceExhaustedError { status, .. } => {
            return Failure::Transient(format!("resource exhausted: {}", status.message()));
        }
        QdrantError::InvalidUri(e) => {
            return Failure::Final(SourceError::InvalidUrl {
                url: url.to_string(),
                reason: e.to_string(),
            });
        }
        other => return Failure::Transient(other.to_string()),
    };
    let message = status.message().to_string();
    match status.code() {
        Code::DeadlineExceeded => Failure::Timeout,
        Code::Cancelled if message.to_ascii_lowercase().contains("timeout") => Failure::Timeout,
        Code::Unavailable | Code::Cancelled | Code::Aborted | Code::Unknown => Failure::Transient(message),
        // qdrant-client reports connection failures as Internal("Failed to connect to …").
        Code::Internal if message.contains("Failed to connect") || message.contains("transport") => {
            Failure::Transient(message)
        }
        Code::ResourceExhausted => Failure::Transient(message),
        Code::Unauthenticated | Code::PermissionDenied => {
            Failure::Final(SourceError::Unauthorized { message })
        }
        Code::NotFound if message.contains("ollection") || message.contains("doesn't exist") => {
            Failure::Final(SourceError::CollectionNotFound {
                collection: collection.to_string(),
            })
        }
        _ => Failure::Final(SourceError::Rejected {
            message: format!("{:?}: {message}", status.code()),
        }),
    }
}

fn backoff(base: Duration, attempt: u32) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(10));
    let capped = exp.min(Duration::from_secs(10));
    // Jitter in [50 %, 100 %] so retrying Jobs do not synchronize.
    capped.mul_f64(0.5 + rand::random::<f64>() * 0.5)
}

/// The dense vector of a point: the named one, or the default (unnamed) one.
pub(crate) fn point_vector<'a>(vectors: Option<&'a VectorsOutput>, name: Option<&str>) -> Option<&'a [f32]> {
    let output: &VectorOutput = match vectors?.vectors_options.as_ref()? {
        VectorsOptions::Vector(v) if name.is_none_or(str::is_empty) => v,
        VectorsOptions::Vector(_) => return None,
        VectorsOptions::Vectors(named) => named.vectors.get(name.unwrap_or(""))?,
    };
    match &output.vector {
        Some(VectorKind::Dense(dense)) => Some(dense.data.as_slice()),
        Some(_) => None,
        #[allow(deprecated)]
        None => Some(output.data.as_slice()),
    }
}

/// A finite number from a payload value (numbers, or numeric strings).
pub(crate) fn number(value: &Value) -> Option<f32> {
    let v = match value.kind.as_ref()? {
        Kind::DoubleValue(d) => *d,
        Kind::IntegerValue(i) => *i as f64,
        Kind::StringValue(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    v.is_finite().then_some(v as f32)
}

/// Most characters of a payload value kept for slicing or display.
pub const MAX_LABEL_CHARS: usize = 512;

/// A payload value as a slice or display label: keywords, integers and booleans (a one-element list as
/// its element); `None` for anything else. Longer than [`MAX_LABEL_CHARS`] is cut.
pub(crate) fn label(value: &Value) -> Option<String> {
    let text = match value.kind.as_ref()? {
        Kind::StringValue(s) => s.clone(),
        Kind::IntegerValue(i) => i.to_string(),
        Kind::BoolValue(b) => b.to_string(),
        Kind::ListValue(list) if list.values.len() == 1 => return label(&list.values[0]),
        _ => return None,
    };
    Some(text.chars().take(MAX_LABEL_CHARS).collect())
}

pub(crate) fn point_label(id: Option<&PointId>) -> String {
    match id.and_then(|id| id.point_id_options.as_ref()) {
        Some(PointIdOptions::Num(n)) => n.to_string(),
        Some(PointIdOptions::Uuid(u)) => u.clone(),
        None => "?".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let base = Duration::from_millis(100);
        assert!(backoff(base, 1) <= Duration::from_millis(100));
        assert!(backoff(base, 3) >= Duration::from_millis(200));
        assert!(backoff(base, 30) <= Duration::from_secs(10));
    }

    #[test]
    fn auth_and_missing_collection_errors_are_final() {
        let denied = QdrantError::ResponseError {
            status: tonic::Status::permission_denied("Invalid api-key"),
        };
        assert!(matches!(
            classify(denied, "http://q", "c"),
            Failure::Final(SourceError::Unauthorized { .. })
        ));
        let missing = QdrantError::ResponseError {
            status: tonic::Status::not_found("Not found: Collection `c` doesn't exist!"),
        };
        assert!(matches!(
            classify(missing, "http://q", "c"),
            Failure::Final(SourceError::CollectionNotFound { .. })
        ));
        let down = QdrantError::ResponseError {
            status: tonic::Status::unavailable("connection refused"),
        };
        assert!(matches!(classify(down, "http://q", "c"), Failure::Transient(_)));
    }

    #[test]
    fn a_non_grpc_url_is_refused() {
        assert!(matches!(
            connect(&QdrantConfig::new("qdrant:6334")),
            Err(SourceError::InvalidUrl { .. })
        ));
    }

    #[test]
    fn numbers_are_read_from_doubles_integers_and_numeric_strings() {
        let v = |kind| Value { kind: Some(kind) };
        assert_eq!(number(&v(Kind::DoubleValue(0.25))), Some(0.25));
        assert_eq!(number(&v(Kind::IntegerValue(1))), Some(1.0));
        assert_eq!(number(&v(Kind::StringValue("0.5".into()))), Some(0.5));
        assert_eq!(number(&v(Kind::StringValue("high".into()))), None);
        assert_eq!(number(&v(Kind::DoubleValue(f64::NAN))), None);
    }

    #[test]
    fn payload_labels_are_keywords_integers_and_booleans_and_long_ones_are_cut() {
        let v = |kind| Value { kind: Some(kind) };
        assert_eq!(label(&v(Kind::StringValue("cam-7".into()))), Some("cam-7".into()));
        assert_eq!(label(&v(Kind::IntegerValue(12))), Some("12".into()));
        assert_eq!(label(&v(Kind::BoolValue(true))), Some("true".into()));
        assert_eq!(label(&v(Kind::DoubleValue(0.5))), None);
        let long = "x".repeat(MAX_LABEL_CHARS + 10);
        assert_eq!(
            label(&v(Kind::StringValue(long))).map(|s| s.len()),
            Some(MAX_LABEL_CHARS)
        );
    }
}
