//! The packaging Job's view of Qdrant: the sample's ids — Qdrant's random-sample query or the smallest
//! sample keys per time stratum (through the check's window reader), or one id-only scroll of the whole
//! window for the seeded hash — then the sampled points with payload and vector (scrolls filtered by
//! `has_id`, in batches). Network I/O (gRPC).

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use qdrant_client::qdrant::point_id::PointIdOptions;
use qdrant_client::qdrant::vector_output::Vector as VectorKind;
use qdrant_client::qdrant::vectors_output::VectorsOptions;
use qdrant_client::qdrant::with_payload_selector::SelectorOptions as PayloadSelector;
use qdrant_client::qdrant::with_vectors_selector::SelectorOptions as VectorsSelectorOptions;
use qdrant_client::qdrant::{
    Condition, Filter, RetrievedPoint, ScrollPoints, VectorsSelector, WithPayloadSelector,
    WithVectorsSelector,
};
use qdrant_client::{Payload, Qdrant, QdrantError};

use super::PackageError;
use super::cli::PackageArgs;
use super::source::{IdDraw, Point, PointId, PointSource, hash_bottom_k};
use crate::api::v1alpha1::{PayloadFilter, SamplingMethod, TimestampFormat};
use crate::source::filter::window_filter;
use crate::source::qdrant::{QdrantConfig, QdrantSource};
use crate::source::{PointSchema, Sampling, SourceError, TimeRange, WindowQuery};

/// Ids per page of the id-only scroll.
const ID_PAGE: u32 = 2048;

/// Points of one collection's comparison window in Qdrant.
pub struct QdrantPoints {
    client: Qdrant,
    /// The window reader (random and sample-key draws) and the window it reads.
    reader: QdrantSource,
    window: WindowQuery,
    url: String,
    collection: String,
    vector_name: Option<String>,
    timestamp_field: String,
    timestamp_format: TimestampFormat,
    filter: Filter,
    timeout: Duration,
    retries: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum QdrantPointsError {
    #[error("Qdrant at {url}: {operation} failed after {attempts} attempt(s): {message}")]
    Call {
        url: String,
        operation: &'static str,
        attempts: u32,
        message: String,
    },
    #[error("Qdrant at {url}: {operation} did not answer within {seconds}s")]
    Timeout {
        url: String,
        operation: &'static str,
        seconds: f64,
    },
    #[error("sampling the comparison window: {0}")]
    Sample(#[from] SourceError),
}

fn timestamp_format(text: &str) -> Result<TimestampFormat, PackageError> {
    match text {
        "rfc3339" => Ok(TimestampFormat::Rfc3339),
        "unixSeconds" => Ok(TimestampFormat::UnixSeconds),
        "unixMillis" => Ok(TimestampFormat::UnixMillis),
        other => Err(PackageError::InvalidArgument(format!(
            "--timestamp-format {other:?}: use rfc3339, unixSeconds or unixMillis"
        ))),
    }
}

impl QdrantPoints {
    pub fn from_args(args: &PackageArgs) -> Result<Self, PackageError> {
        let url = args.qdrant_url.clone().filter(|u| !u.is_empty()).ok_or_else(|| {
            PackageError::InvalidArgument("--qdrant-url (or --points-file) is required".into())
        })?;
        let collection = args.collection.clone().filter(|c| !c.is_empty()).ok_or_else(|| {
            PackageError::InvalidArgument("--collection is required with --qdrant-url".into())
        })?;
        let parse_time = |flag: &str, value: &str| {
            value
                .parse::<jiff::Timestamp>()
                .map_err(|e| PackageError::InvalidArgument(format!("--{flag}: {e}")))
        };
        let range = TimeRange {
            start: Some(parse_time("comparison-start", &args.comparison_start)?),
            end: Some(parse_time("comparison-end", &args.comparison_end)?),
        };
        let payload_filter: Option<PayloadFilter> = args
            .filter
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| PackageError::InvalidArgument(format!("--filter: {e}")))?;
        let format = timestamp_format(&args.timestamp_format)?;
        let filter = window_filter(
            payload_filter.as_ref(),
            Some((args.timestamp_field.as_str(), format, range)),
        )
        .map_err(|e| PackageError::InvalidArgument(e.to_string()))?;
        let mut config = QdrantConfig::new(url.clone());
        config.api_key = args.qdrant_api_key.clone().filter(|k| !k.is_empty());
        config.concurrency = args.read.read_concurrency;
        config.page_size = args.read.page_size;
        let sampling = args.read.sampling().map_err(PackageError::InvalidArgument)?;
        let schema = PointSchema {
            vector_name: args.vector_name.clone().filter(|v| !v.is_empty()),
            timestamp_field: args.timestamp_field.clone(),
            timestamp_format: format,
            confidence_field: None,
            read_points: false,
            payload_fields: Vec::new(),
        };
        let reader =
            QdrantSource::new(config.clone(), schema).map_err(|e| PackageError::Source(e.to_string()))?;
        let window = WindowQuery {
            collection: collection.clone(),
            filter: payload_filter,
            range: Some(range),
            max_points: usize::try_from(args.sample_size).unwrap_or(usize::MAX),
            seed: args.seed,
            stream: 3,
            sampling,
            strata: args.read.strata,
        };
        Ok(Self {
            client: reader.client().clone(),
            reader,
            window,
            url,
            collection,
            vector_name: args.vector_name.clone().filter(|v| !v.is_empty()),
            timestamp_field: args.timestamp_field.clone(),
            timestamp_format: format,
            filter,
            timeout: config.timeout,
            retries: config.retries,
        })
    }

    async fn call<T, F, Fut>(&self, operation: &'static str, mut f: F) -> Result<T, QdrantPointsError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, QdrantError>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let message = match tokio::time::timeout(self.timeout, f()).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(err)) => err.to_string(),
                Err(_) if attempt > self.retries => {
                    return Err(QdrantPointsError::Timeout {
                        url: self.url.clone(),
                        operation,
                        seconds: self.timeout.as_secs_f64(),
                    });
                }
                Err(_) => "timed out".to_string(),
            };
            let permanent = [
                "NotFound",
                "InvalidArgument",
                "PermissionDenied",
                "Unauthenticated",
            ]
            .iter()
            .any(|code| message.contains(code));
            if permanent || attempt > self.retries {
                return Err(QdrantPointsError::Call {
                    url: self.url.clone(),
                    operation,
                    attempts: attempt,
                    message,
                });
            }
            tracing::warn!(operation, attempt, %message, "Qdrant call failed; retrying");
            tokio::time::sleep(Duration::from_millis(200) * 2u32.pow(attempt - 1)).await;
        }
    }

    fn with_vectors(&self) -> WithVectorsSelector {
        match &self.vector_name {
            Some(name) => WithVectorsSelector {
                selector_options: Some(VectorsSelectorOptions::Include(VectorsSelector {
                    names: vec![name.clone()],
                })),
            },
            None => WithVectorsSelector {
                selector_options: Some(VectorsSelectorOptions::Enable(true)),
            },
        }
    }

    fn convert(&self, point: RetrievedPoint) -> Option<Point> {
        let id = from_proto(point.id.as_ref()?)?;
        let vector = point_vector(&point, self.vector_name.as_deref()).unwrap_or_default();
        let timestamp = point.payload.get(&self.timestamp_field).and_then(|v| {
            let json = serde_json::Value::from(v.clone());
            timestamp_text(&json, self.timestamp_format)
        });
        let payload = serde_json::Value::from(Payload::from(point.payload));
        Some(Point {
            id,
            timestamp,
            payload,
            vector,
        })
    }
}

fn from_proto(id: &qdrant_client::qdrant::PointId) -> Option<PointId> {
    match id.point_id_options.as_ref()? {
        PointIdOptions::Num(n) => Some(PointId::Num(*n)),
        PointIdOptions::Uuid(u) => Some(PointId::Uuid(u.clone())),
    }
}

fn to_proto(id: &PointId) -> qdrant_client::qdrant::PointId {
    match id {
        PointId::Num(n) => (*n).into(),
        PointId::Uuid(u) => u.clone().into(),
    }
}

/// The point's timestamp as RFC 3339 text.
fn timestamp_text(value: &serde_json::Value, format: TimestampFormat) -> Option<String> {
    match format {
        TimestampFormat::Rfc3339 => value.as_str().map(str::to_string),
        TimestampFormat::UnixSeconds => jiff::Timestamp::from_second(value.as_f64()? as i64)
            .ok()
            .map(|t| t.to_string()),
        TimestampFormat::UnixMillis => jiff::Timestamp::from_millisecond(value.as_f64()? as i64)
            .ok()
            .map(|t| t.to_string()),
    }
}

fn point_vector(point: &RetrievedPoint, name: Option<&str>) -> Option<Vec<f32>> {
    let output = match point.vectors.as_ref()?.vectors_options.as_ref()? {
        VectorsOptions::Vector(v) if name.is_none_or(str::is_empty) => v,
        VectorsOptions::Vector(_) => return None,
        VectorsOptions::Vectors(named) => named.vectors.get(name.unwrap_or(""))?,
    };
    match &output.vector {
        Some(VectorKind::Dense(dense)) => Some(dense.data.clone()),
        Some(_) => None,
        #[allow(deprecated)]
        None => Some(output.data.clone()),
    }
}

/// `manifest.json`'s `sampling.method` of a draw by the window reader.
fn method_name(method: SamplingMethod) -> &'static str {
    match method {
        SamplingMethod::Random => "qdrant-random-stratified",
        SamplingMethod::SampleKey => "sample-key-bottom-k-stratified",
        SamplingMethod::All | SamplingMethod::Reservoir => super::source::HASH_BOTTOM_K,
    }
}

impl PointSource for QdrantPoints {
    type Error = QdrantPointsError;

    async fn sample(&self, k: usize, seed: u64) -> Result<IdDraw, Self::Error> {
        if self.window.sampling == Sampling::Reservoir {
            return hash_bottom_k(self, k, seed).await;
        }
        let mut window = self.window.clone();
        window.max_points = k;
        window.seed = seed;
        // A window within the sample size: the seeded hash over every id.
        let Some(draw) = self.reader.sample_ids(&window).await? else {
            return hash_bottom_k(self, k, seed).await;
        };
        let mut ids: Vec<PointId> = draw.ids.iter().filter_map(from_proto).collect();
        ids.sort();
        ids.dedup();
        Ok(IdDraw {
            ids,
            available: draw.available,
            read: draw.read,
            method: method_name(draw.method),
        })
    }

    async fn scan_ids(&self, visit: &mut (dyn FnMut(PointId) + Send)) -> Result<u64, Self::Error> {
        let mut offset = None;
        let mut seen = 0u64;
        loop {
            let request = ScrollPoints {
                collection_name: self.collection.clone(),
                filter: Some(self.filter.clone()),
                offset: offset.clone(),
                limit: Some(ID_PAGE),
                with_payload: Some(WithPayloadSelector {
                    selector_options: Some(PayloadSelector::Enable(false)),
                }),
                with_vectors: Some(WithVectorsSelector {
                    selector_options: Some(VectorsSelectorOptions::Enable(false)),
                }),
                ..Default::default()
            };
            let page = self
                .call("scroll ids", || self.client.scroll(request.clone()))
                .await?;
            for point in &page.result {
                if let Some(id) = point.id.as_ref().and_then(from_proto) {
                    seen += 1;
                    visit(id);
                }
            }
            match page.next_page_offset {
                Some(next) if !page.result.is_empty() => offset = Some(next),
                _ => return Ok(seen),
            }
        }
    }

    async fn fetch(&self, ids: &[PointId]) -> Result<Vec<Point>, Self::Error> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut filter = self.filter.clone();
        filter.must.push(Condition::has_id(ids.iter().map(to_proto)));
        let request = ScrollPoints {
            collection_name: self.collection.clone(),
            filter: Some(filter),
            limit: Some(ids.len() as u32),
            with_payload: Some(WithPayloadSelector {
                selector_options: Some(PayloadSelector::Enable(true)),
            }),
            with_vectors: Some(self.with_vectors()),
            ..Default::default()
        };
        let page = self
            .call("scroll points", || self.client.scroll(request.clone()))
            .await?;
        let mut by_id: HashMap<PointId, Point> = HashMap::with_capacity(page.result.len());
        for point in page.result {
            if let Some(point) = self.convert(point) {
                by_id.insert(point.id.clone(), point);
            }
        }
        Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_timestamps_become_rfc3339() {
        let v = serde_json::json!(1_764_115_200);
        assert_eq!(
            timestamp_text(&v, TimestampFormat::UnixSeconds).as_deref(),
            Some("2025-11-26T00:00:00Z")
        );
        let ms = serde_json::json!(1_764_115_200_000i64);
        assert_eq!(
            timestamp_text(&ms, TimestampFormat::UnixMillis).as_deref(),
            Some("2025-11-26T00:00:00Z")
        );
        assert_eq!(
            timestamp_text(
                &serde_json::json!("2026-01-01T00:00:00Z"),
                TimestampFormat::Rfc3339
            )
            .as_deref(),
            Some("2026-01-01T00:00:00Z")
        );
    }
}
