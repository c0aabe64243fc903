//! `driftwatch qdrant-load`: upserts embeddings (+ timestamps, + optional confidence scores and payload)
//! from .npy or .jsonl files into a Qdrant collection, creating it if asked. Does file and network I/O.
//!
//! Timestamps come from a file (`--timestamps`, unix seconds, .npy), from the .jsonl lines, or are spread
//! evenly over `[--from, --to)` in row order. Point ids are consecutive from `--id-offset` (default: the
//! collection's current point count), so loading a file twice appends rather than overwrites.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use ndarray::Array2;
use qdrant_client::Payload;
use qdrant_client::qdrant::vectors_config::Config as VectorsConfigKind;
use qdrant_client::qdrant::{
    CountPoints, CreateCollection, CreateFieldIndexCollection, Distance, FieldType, PointId, PointStruct,
    UpsertPoints, VectorParams, VectorParamsMap, Vectors, VectorsConfig,
};

use super::cli::TimestampFormatArg;
use crate::api::v1alpha1::TimestampFormat;
use crate::source::qdrant::{QdrantConfig, connect};
use crate::source::sampling::sample_key_of_id;

/// Flags of `driftwatch qdrant-load`.
#[derive(Args, Clone, Debug)]
pub struct LoadArgs {
    /// Qdrant gRPC endpoint.
    #[arg(long, env = "QDRANT_URL")]
    pub qdrant_url: String,
    /// Qdrant API key.
    #[arg(long, env = "QDRANT_API_KEY", hide_env_values = true)]
    pub qdrant_api_key: Option<String>,
    /// Target collection.
    #[arg(long)]
    pub collection: String,
    /// Create the collection (dimension from the data) when it does not exist.
    #[arg(long)]
    pub create: bool,
    /// Distance of a created collection. Qdrant normalizes vectors of cosine collections on upsert, so
    /// the default (euclid) keeps the vectors exactly as in the files.
    #[arg(long, value_enum, default_value_t = DistanceArg::Euclid)]
    pub distance: DistanceArg,
    /// Named vector to write; default: the unnamed vector.
    #[arg(long)]
    pub vector_name: Option<String>,
    /// Embeddings: .npy ([n, d], f32 or f64) or .jsonl (one object per line with `vector`, optional
    /// `timestamp`, `confidence`, `payload`).
    #[arg(long, required_unless_present = "example")]
    pub embeddings: Option<PathBuf>,
    /// Timestamps as unix seconds (.npy, 1-D, f64 or i64), one per row.
    #[arg(long, conflicts_with_all = ["from", "to"])]
    pub timestamps: Option<PathBuf>,
    /// Spread timestamps evenly from this time (RFC 3339, inclusive)...
    #[arg(long, requires = "to")]
    pub from: Option<String>,
    /// ...to this time (RFC 3339, exclusive). With --example: the end of the comparison day.
    #[arg(long)]
    pub to: Option<String>,
    /// Confidence scores (.npy, 1-D), one per row.
    #[arg(long)]
    pub confidence: Option<PathBuf>,
    /// Payload field for the timestamp.
    #[arg(long, default_value = "timestamp")]
    pub timestamp_field: String,
    /// How the timestamp is written.
    #[arg(long, value_enum, default_value_t)]
    pub timestamp_format: TimestampFormatArg,
    /// Payload field for the confidence score.
    #[arg(long, default_value = "confidence")]
    pub confidence_field: String,
    /// Extra payload for every point, as a JSON object, e.g. {"model_version":"v2"}.
    #[arg(long)]
    pub payload: Option<String>,
    /// Also write each point's sample key into this payload field (a number uniform in [0, 1), a fixed
    /// hash of the point id) and give it a float index, for `--sampling-mode sampleKey`.
    #[arg(long)]
    pub sample_key_field: Option<String>,
    /// First point id. Default: the number of points already in the collection.
    #[arg(long)]
    pub id_offset: Option<u64>,
    /// Points per upsert call.
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
    /// Load the bundled example data from --example-dir into the collection (created if needed):
    /// reference.npy spread over the 7 days before the last day before --to (default now), comparison.npy
    /// over that last day, with reference_scores.npy / comparison_scores.npy as confidence scores.
    #[arg(long)]
    pub example: bool,
    /// Folder of the bundled example data.
    #[arg(long, default_value = "examples/data")]
    pub example_dir: PathBuf,
}

/// Distance of a created collection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DistanceArg {
    Euclid,
    Cosine,
    Dot,
    Manhattan,
}

impl From<DistanceArg> for Distance {
    fn from(value: DistanceArg) -> Self {
        match value {
            DistanceArg::Euclid => Distance::Euclid,
            DistanceArg::Cosine => Distance::Cosine,
            DistanceArg::Dot => Distance::Dot,
            DistanceArg::Manhattan => Distance::Manhattan,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: {message}")]
    Input { path: String, message: String },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Source(#[from] crate::source::SourceError),
    #[error("Qdrant: {0}")]
    Qdrant(#[from] qdrant_client::QdrantError),
    #[error("runtime: {0}")]
    Runtime(#[from] std::io::Error),
}

/// Rows to load.
#[derive(Debug, Default)]
pub struct Rows {
    pub vectors: Array2<f32>,
    /// Unix seconds (fractional), one per row, when known.
    pub timestamps: Option<Vec<f64>>,
    pub confidence: Option<Vec<f64>>,
    pub payloads: Option<Vec<serde_json::Map<String, serde_json::Value>>>,
}

fn input_error(path: &Path, message: impl ToString) -> LoadError {
    LoadError::Input {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

/// Reads a 2-D .npy of f32 or f64 (the crate's one .npy reader).
pub fn read_matrix(path: &Path) -> Result<Array2<f32>, LoadError> {
    let reason = |e: crate::compute::ComputeError| match e {
        crate::compute::ComputeError::File { reason, .. } => reason,
        other => other.to_string(),
    };
    crate::npy::NpyArray::read_file(path)
        .and_then(|a| a.into_matrix("embeddings"))
        .map_err(|e| input_error(path, format!("not a 2-D f32/f64 .npy: {}", reason(e))))
}

/// Reads a 1-D .npy of f64, f32 or i64.
pub fn read_vector(path: &Path) -> Result<Vec<f64>, LoadError> {
    crate::npy::read_values_f64(path).map_err(|e| {
        let reason = match e {
            crate::compute::ComputeError::File { reason, .. } => reason,
            other => other.to_string(),
        };
        input_error(path, format!("not a 1-D f64/f32/i64 .npy: {reason}"))
    })
}

/// Reads a .jsonl file: `{"vector": [...], "timestamp": "..."|number, "confidence": x, "payload": {...}}`.
pub fn read_jsonl(path: &Path) -> Result<Rows, LoadError> {
    let file = std::fs::File::open(path).map_err(|e| input_error(path, e))?;
    let mut data = Vec::new();
    let mut dim = None;
    let mut timestamps = Vec::new();
    let mut confidence = Vec::new();
    let mut payloads = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| input_error(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let at = |m: &str| input_error(path, format!("line {}: {m}", i + 1));
        let value: serde_json::Value = serde_json::from_str(&line).map_err(|e| at(&e.to_string()))?;
        let vector: Vec<f32> = value
            .get("vector")
            .or_else(|| value.get("embedding"))
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .ok_or_else(|| at("needs a numeric array `vector`"))?;
        if *dim.get_or_insert(vector.len()) != vector.len() {
            return Err(at("vectors differ in length"));
        }
        data.extend(vector);
        timestamps.push(match value.get("timestamp") {
            Some(serde_json::Value::String(s)) => Some(
                s.parse::<jiff::Timestamp>()
                    .map_err(|e| at(&format!("timestamp: {e}")))?
                    .as_millisecond() as f64
                    / 1_000.0,
            ),
            Some(serde_json::Value::Number(n)) => n.as_f64(),
            _ => None,
        });
        confidence.push(value.get("confidence").and_then(serde_json::Value::as_f64));
        payloads.push(
            value
                .get("payload")
                .and_then(serde_json::Value::as_object)
                .cloned()
                .unwrap_or_default(),
        );
    }
    let rows = payloads.len();
    let vectors = Array2::from_shape_vec((rows, dim.unwrap_or(0)), data).map_err(|e| input_error(path, e))?;
    let all = |v: Vec<Option<f64>>| {
        v.iter()
            .all(Option::is_some)
            .then(|| v.into_iter().flatten().collect())
    };
    Ok(Rows {
        vectors,
        timestamps: all(timestamps),
        confidence: all(confidence),
        payloads: Some(payloads),
    })
}

/// Timestamps spread evenly over `[from, to)`, in unix seconds.
pub fn spread(from: jiff::Timestamp, to: jiff::Timestamp, n: usize) -> Vec<f64> {
    let (a, b) = (from.as_millisecond() as f64, to.as_millisecond() as f64);
    (0..n)
        .map(|i| ((a + (b - a) * i as f64 / n.max(1) as f64).floor()) / 1_000.0)
        .collect()
}

/// A timestamp payload value in the collection's format.
pub fn timestamp_value(seconds: f64, format: TimestampFormat) -> serde_json::Value {
    match format {
        TimestampFormat::Rfc3339 => {
            let t = jiff::Timestamp::from_millisecond((seconds * 1_000.0).round() as i64)
                .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
            serde_json::Value::String(t.to_string())
        }
        TimestampFormat::UnixSeconds => {
            if seconds.fract() == 0.0 {
                serde_json::Value::from(seconds as i64)
            } else {
                serde_json::Value::from(seconds)
            }
        }
        TimestampFormat::UnixMillis => serde_json::Value::from((seconds * 1_000.0).round() as i64),
    }
}

fn parse_time(flag: &str, text: &str) -> Result<jiff::Timestamp, LoadError> {
    text.parse()
        .map_err(|e| LoadError::Invalid(format!("{flag} {text:?} is not an RFC 3339 time: {e}")))
}

/// Reads the input files of one load (not the example).
pub fn read_rows(args: &LoadArgs, embeddings: &Path) -> Result<Rows, LoadError> {
    let is_jsonl = embeddings
        .extension()
        .is_some_and(|e| e == "jsonl" || e == "ndjson");
    let mut rows = if is_jsonl {
        read_jsonl(embeddings)?
    } else {
        Rows {
            vectors: read_matrix(embeddings)?,
            ..Default::default()
        }
    };
    let n = rows.vectors.nrows();
    if let Some(path) = &args.timestamps {
        rows.timestamps = Some(read_vector(path)?);
    }
    if args.from.is_none() && args.to.is_some() {
        return Err(LoadError::Invalid(
            "--to needs --from (except with --example)".into(),
        ));
    }
    if let (Some(from), Some(to)) = (&args.from, &args.to) {
        let (from, to) = (parse_time("--from", from)?, parse_time("--to", to)?);
        if from >= to {
            return Err(LoadError::Invalid("--from must be before --to".into()));
        }
        rows.timestamps = Some(spread(from, to, n));
    }
    if let Some(path) = &args.confidence {
        rows.confidence = Some(read_vector(path)?);
    }
    for (name, len) in [
        ("timestamps", rows.timestamps.as_ref().map(Vec::len)),
        ("confidence scores", rows.confidence.as_ref().map(Vec::len)),
    ] {
        if let Some(len) = len
            && len != n
        {
            return Err(LoadError::Invalid(format!("{n} embeddings but {len} {name}")));
        }
    }
    Ok(rows)
}

/// Upserts rows; returns the number of points written.
pub async fn upsert_rows(args: &LoadArgs, rows: &Rows) -> Result<u64, LoadError> {
    let mut config = QdrantConfig::new(&args.qdrant_url);
    config.api_key = args.qdrant_api_key.clone().filter(|k| !k.is_empty());
    let client = connect(&config)?;
    let n = rows.vectors.nrows();
    let dim = rows.vectors.ncols() as u64;
    let vector_name = args.vector_name.clone().filter(|v| !v.is_empty());
    let format: TimestampFormat = args.timestamp_format.into();
    let extra: serde_json::Map<String, serde_json::Value> = match &args.payload {
        Some(text) => serde_json::from_str(text)
            .map_err(|e| LoadError::Invalid(format!("--payload must be a JSON object: {e}")))?,
        None => serde_json::Map::new(),
    };

    let exists = client.collection_exists(&args.collection).await?;
    if !exists {
        if !args.create {
            return Err(LoadError::Invalid(format!(
                "collection {:?} does not exist; add --create to create it",
                args.collection
            )));
        }
        let params = VectorParams {
            size: dim,
            distance: Distance::from(args.distance) as i32,
            ..Default::default()
        };
        let config = match &vector_name {
            Some(name) => VectorsConfigKind::ParamsMap(VectorParamsMap {
                map: HashMap::from([(name.clone(), params)]),
            }),
            None => VectorsConfigKind::Params(params),
        };
        client
            .create_collection(CreateCollection {
                collection_name: args.collection.clone(),
                vectors_config: Some(VectorsConfig { config: Some(config) }),
                ..Default::default()
            })
            .await?;
        // A payload index on the timestamp makes window filters fast on a real Qdrant.
        let field_type = match format {
            TimestampFormat::Rfc3339 => FieldType::Datetime,
            _ => FieldType::Float,
        };
        let index = CreateFieldIndexCollection {
            collection_name: args.collection.clone(),
            wait: Some(true),
            field_name: args.timestamp_field.clone(),
            field_type: Some(field_type as i32),
            ..Default::default()
        };
        if let Err(err) = client.create_field_index(index).await {
            tracing::warn!(%err, "could not create the timestamp payload index; loading without it");
        }
    }

    let sample_key_field = args.sample_key_field.clone().filter(|f| !f.is_empty());
    if let Some(field) = &sample_key_field {
        // The sample-key mode reads key ranges: a float index keeps them from scanning the collection.
        let index = CreateFieldIndexCollection {
            collection_name: args.collection.clone(),
            wait: Some(true),
            field_name: field.clone(),
            field_type: Some(FieldType::Float as i32),
            ..Default::default()
        };
        if let Err(err) = client.create_field_index(index).await {
            tracing::warn!(%err, "could not create the sample-key payload index; loading without it");
        }
    }

    let first_id = match args.id_offset {
        Some(id) => id,
        None => client
            .count(CountPoints {
                collection_name: args.collection.clone(),
                exact: Some(true),
                ..Default::default()
            })
            .await?
            .result
            .map(|r| r.count)
            .unwrap_or(0),
    };

    let batch = args.batch_size.max(1);
    let mut written = 0u64;
    for start in (0..n).step_by(batch) {
        let end = (start + batch).min(n);
        let mut points = Vec::with_capacity(end - start);
        for i in start..end {
            let mut payload = extra.clone();
            if let Some(rows_payload) = rows.payloads.as_ref().and_then(|p| p.get(i)) {
                payload.extend(rows_payload.clone());
            }
            if let Some(ts) = rows.timestamps.as_ref().and_then(|t| t.get(i)) {
                payload.insert(args.timestamp_field.clone(), timestamp_value(*ts, format));
            }
            if let Some(c) = rows.confidence.as_ref().and_then(|c| c.get(i)) {
                payload.insert(args.confidence_field.clone(), serde_json::Value::from(*c));
            }
            let id = first_id + i as u64;
            if let Some(field) = &sample_key_field {
                payload.insert(field.clone(), serde_json::Value::from(sample_key_of_id(id)));
            }
            let vector: Vec<f32> = rows.vectors.row(i).to_vec();
            let vectors: Vectors = match &vector_name {
                Some(name) => HashMap::from([(name.clone(), vector)]).into(),
                None => vector.into(),
            };
            points.push(PointStruct {
                id: Some(PointId::from(id)),
                payload: Payload::from(payload).into(),
                vectors: Some(vectors),
            });
        }
        client
            .upsert_points(UpsertPoints {
                collection_name: args.collection.clone(),
                wait: Some(true),
                points,
                ..Default::default()
            })
            .await?;
        written += (end - start) as u64;
    }
    Ok(written)
}

/// The files of the bundled example and the time span of each.
fn example_plan(args: &LoadArgs) -> Result<Vec<LoadArgs>, LoadError> {
    let dir = &args.example_dir;
    let to = match &args.to {
        Some(text) => parse_time("--to", text)?,
        None => jiff::Timestamp::now(),
    };
    let day = jiff::SignedDuration::from_hours(24);
    let comparison_start = to - day;
    let reference_start = comparison_start - day * 7;
    let mut plans = Vec::new();
    for (name, from, until) in [
        ("reference", reference_start, comparison_start),
        ("comparison", comparison_start, to),
    ] {
        let embeddings = dir.join(format!("{name}.npy"));
        if !embeddings.exists() {
            return Err(input_error(
                &embeddings,
                "bundled example data not found (see --example-dir)",
            ));
        }
        let confidence = [format!("{name}_scores.npy"), format!("{name}_confidence.npy")]
            .into_iter()
            .map(|file| dir.join(file))
            .find(|path| path.exists());
        let mut one = args.clone();
        one.example = false;
        one.embeddings = Some(embeddings);
        one.timestamps = None;
        one.from = Some(from.to_string());
        one.to = Some(until.to_string());
        one.confidence = confidence;
        plans.push(one);
    }
    Ok(plans)
}

/// Runs a load; prints what was written.
pub fn run(args: &LoadArgs) -> Result<(), LoadError> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let loads = if args.example {
        let mut plans = example_plan(args)?;
        for p in &mut plans {
            p.create = true;
        }
        plans
    } else {
        vec![args.clone()]
    };
    for load in loads {
        let Some(path) = load.embeddings.clone() else {
            return Err(LoadError::Invalid("--embeddings is required".into()));
        };
        let rows = read_rows(&load, &path)?;
        let started = Instant::now();
        let written = runtime.block_on(upsert_rows(&load, &rows))?;
        let span = match (&load.from, &load.to) {
            (Some(f), Some(t)) => format!(" timestamped {f} .. {t}"),
            _ => String::new(),
        };
        println!(
            "loaded {written} points ({}-d) from {} into {}{span} in {:.1}s",
            rows.vectors.ncols(),
            path.display(),
            load.collection,
            started.elapsed().max(Duration::from_millis(1)).as_secs_f64()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_timestamps_stay_inside_the_half_open_span() {
        let from: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let to: jiff::Timestamp = "2026-01-02T00:00:00Z".parse().unwrap();
        let t = spread(from, to, 4);
        assert_eq!(t[0], from.as_second() as f64);
        assert_eq!(t[1] - t[0], 21_600.0);
        assert!(*t.last().unwrap() < to.as_second() as f64);
    }

    #[test]
    fn timestamps_are_written_in_the_collection_format() {
        assert_eq!(
            timestamp_value(1_767_225_600.0, TimestampFormat::Rfc3339),
            serde_json::json!("2026-01-01T00:00:00Z")
        );
        assert_eq!(
            timestamp_value(1_767_225_600.0, TimestampFormat::UnixSeconds),
            serde_json::json!(1_767_225_600)
        );
        assert_eq!(
            timestamp_value(1.5, TimestampFormat::UnixMillis),
            serde_json::json!(1_500)
        );
    }

    #[test]
    fn jsonl_lines_carry_vectors_timestamps_and_payload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("points.jsonl");
        std::fs::write(
            &path,
            "{\"vector\":[1,2],\"timestamp\":\"2026-01-01T00:00:00Z\",\"confidence\":0.5,\"payload\":{\"m\":\"v2\"}}\n\
             {\"vector\":[3,4],\"timestamp\":1767225600,\"confidence\":0.25}\n",
        )
        .unwrap();
        let rows = read_jsonl(&path).unwrap();
        assert_eq!(rows.vectors.dim(), (2, 2));
        assert_eq!(rows.timestamps.unwrap(), vec![1_767_225_600.0, 1_767_225_600.0]);
        assert_eq!(rows.confidence.unwrap(), vec![0.5, 0.25]);
        assert_eq!(rows.payloads.unwrap()[0]["m"], "v2");
    }
}
