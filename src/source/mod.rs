//! Windows of embedding points read from a vector store: what to read, what a read returns and the errors
//! it names. [`qdrant`] and [`window`] do the I/O (gRPC); [`filter`], [`reservoir`] and [`sampling`] are
//! pure.
//!
//! Sampling: a window with no more points than its limit is read whole (its time strata scrolled
//! concurrently) and every point is kept. A larger window is split into time strata, each sampled in
//! proportion to its exact count by the window's [`Sampling`] mode: Qdrant's random-sample query (reads
//! about the sample, not reproducible), the smallest sample keys (reads about the sample, reproducible),
//! or a seeded reservoir over a scroll of the whole stratum (reads everything, reproducible).

pub mod filter;
pub mod qdrant;
pub mod reservoir;
pub mod sampling;
pub mod window;

pub use reservoir::PointMeta;

use ndarray::{Array1, Array2};

use crate::api::v1alpha1::{PayloadFilter, SamplingMethod, TimestampFormat};

/// A half-open interval of time `[start, end)`; an open side is unbounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeRange {
    pub start: Option<jiff::Timestamp>,
    pub end: Option<jiff::Timestamp>,
}

/// How a collection stores the data driftwatch reads.
#[derive(Clone, Debug, PartialEq)]
pub struct PointSchema {
    /// Named vector to read; `None` for the collection's default (unnamed) vector.
    pub vector_name: Option<String>,
    /// Payload field with each point's timestamp.
    pub timestamp_field: String,
    pub timestamp_format: TimestampFormat,
    /// Payload field with the model's confidence score, when detectors need it.
    pub confidence_field: Option<String>,
    /// Keep each sampled point's id and [`PointSchema::payload_fields`] (for the explanation).
    pub read_points: bool,
    /// Payload fields read per sampled point (slice and display fields of the explanation).
    pub payload_fields: Vec<String>,
}

/// One window to read.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowQuery {
    pub collection: String,
    /// Extra payload filter (all `must`, no `mustNot`).
    pub filter: Option<PayloadFilter>,
    /// Time range on the timestamp field; `None` reads the whole (filtered) collection.
    pub range: Option<TimeRange>,
    /// Most points kept; a larger window is sampled down by `sampling`.
    pub max_points: usize,
    /// Seed of the sample (reservoir streams, the sample-key offset).
    pub seed: u64,
    /// Separates the random streams of windows read with the same seed (e.g. 1 reference, 2 comparison).
    pub stream: u64,
    /// How a window with more than `max_points` points is sampled.
    pub sampling: Sampling,
    /// Time strata of a bounded window (1: none).
    pub strata: usize,
}

/// How a window with more points than its limit is sampled (each time stratum on its own).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sampling {
    /// Qdrant's random-sample query with the stratum's filter and its quota as the limit.
    Random,
    /// The stratum's points with the smallest sample keys (payload `field`, uniform in `[0, 1)`) after
    /// the seed's offset; read with a range filter on the key.
    SampleKey { field: String },
    /// A scroll of the whole stratum into a seeded reservoir.
    Reservoir,
}

impl Sampling {
    /// The method recorded for a window this mode samples.
    pub fn method(&self) -> SamplingMethod {
        match self {
            Sampling::Random => SamplingMethod::Random,
            Sampling::SampleKey { .. } => SamplingMethod::SampleKey,
            Sampling::Reservoir => SamplingMethod::Reservoir,
        }
    }
}

/// What a window read returns.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowSample {
    /// Sampled vectors, `[sampled, dimension]`, stratum after stratum (within a stratum: id order when read
    /// whole, else the sampler's order).
    pub embeddings: Array2<f32>,
    /// Confidence scores of the sampled points that have one; `None` when no confidence field is read or
    /// no sampled point carries it.
    pub scores: Option<Array1<f32>>,
    /// Points in the window (exact count).
    pub available: u64,
    /// Points of the collection (after the filter) left out because their timestamp is missing or cannot
    /// be read in the configured format: they belong to no window.
    pub skipped: u64,
    /// Sampled points without a numeric confidence value.
    pub missing_confidence: u64,
    /// Vector dimension of the collection.
    pub dimension: usize,
    /// Points read from Qdrant to build the sample.
    pub scanned: u64,
    /// How the sample was drawn.
    pub method: SamplingMethod,
    /// Id and [`PointSchema::payload_fields`] of every sampled row, in row order (empty unless
    /// [`PointSchema::read_points`]).
    pub points: Vec<PointMeta>,
}

impl WindowSample {
    pub fn sampled(&self) -> usize {
        self.embeddings.nrows()
    }
}

/// A failed read, sorted into the named error kinds of the result document.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SourceError {
    #[error("invalid Qdrant url {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("Qdrant at {url} is unavailable: {message}")]
    Unavailable { url: String, message: String },
    #[error("Qdrant at {url} did not answer {operation} within {seconds}s (after {attempts} attempts)")]
    Timeout {
        url: String,
        operation: String,
        seconds: f64,
        attempts: u32,
    },
    #[error("Qdrant refused the credentials: {message} (check the API key in QDRANT_API_KEY)")]
    Unauthorized { message: String },
    #[error("collection {collection:?} does not exist")]
    CollectionNotFound { collection: String },
    #[error("collection {collection:?} has no dense vector {name:?}; its vectors: {available}")]
    UnknownVector {
        collection: String,
        name: String,
        available: String,
    },
    #[error("point {point} of collection {collection:?} has a {found}-d vector, expected {expected}-d")]
    DimensionMismatch {
        collection: String,
        point: String,
        expected: usize,
        found: usize,
    },
    #[error("point {point} of collection {collection:?} has a NaN or infinite vector component")]
    InvalidVector { collection: String, point: String },
    #[error(
        "none of the {points} points of collection {collection:?} has a readable {format} timestamp in payload field {field:?}; check --timestamp-field and --timestamp-format"
    )]
    MissingTimestamp {
        collection: String,
        field: String,
        format: String,
        points: u64,
    },
    #[error("invalid filter: {0}")]
    InvalidFilter(String),
    #[error("Qdrant rejected the request: {message}")]
    Rejected { message: String },
}

impl SourceError {
    /// The error kind of the result document.
    pub fn kind(&self) -> &'static str {
        match self {
            SourceError::InvalidUrl { .. }
            | SourceError::UnknownVector { .. }
            | SourceError::InvalidFilter(_)
            | SourceError::Rejected { .. } => "InvalidSpec",
            SourceError::Unavailable { .. } | SourceError::Timeout { .. } => "SourceUnavailable",
            SourceError::Unauthorized { .. } => "Unauthorized",
            SourceError::CollectionNotFound { .. } => "CollectionNotFound",
            SourceError::DimensionMismatch { .. } => "DimensionMismatch",
            SourceError::InvalidVector { .. } => "InvalidVector",
            SourceError::MissingTimestamp { .. } => "MissingTimestamp",
        }
    }
}

pub(crate) fn format_name(format: TimestampFormat) -> &'static str {
    match format {
        TimestampFormat::Rfc3339 => "rfc3339",
        TimestampFormat::UnixSeconds => "unixSeconds",
        TimestampFormat::UnixMillis => "unixMillis",
    }
}
