//! The drift-check Job (`driftwatch check`): reads the reference and comparison windows from Qdrant, runs
//! the drift engine and reports one result document (terminal report, JSON on stdout, termination log).
//! Does I/O; turning the flags into a plan ([`CheckPlan::from_args`]) is pure and unit-tested.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::parse_duration;
use crate::api::v1alpha1::{DataSource, DetectorSpec, PayloadFilter, SampleCounts, TimeWindow};
use crate::api::v1alpha1::{
    ExamplePoint, Explanation, MAX_DISPLAY_FIELDS, MAX_EXAMPLES, MAX_REGIONS, MAX_SLICES, RegionSummary,
    SliceSummary,
};
use crate::drift::explain::{self, Explained, SliceColumn};
use crate::drift::{self, DriftError, EngineConfig, Sample};
use crate::job::cli::{ReadArgs, TimestampFormatArg};
use crate::job::redact::redact_urls;
use crate::job::result::{CheckOutcome, CheckReport, ReportWindows, SkippedCounts, encode_check_report};
use crate::source::qdrant::{QdrantConfig, QdrantSource};
use crate::source::{PointSchema, SourceError, TimeRange, WindowQuery, WindowSample};

/// Where Kubernetes reads a container's termination message.
pub const DEFAULT_TERMINATION_LOG: &str = "/dev/termination-log";
/// Bins per principal component in the dashboard summary.
pub const SUMMARY_BINS: usize = 20;

/// How the report is printed on stdout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// A readable report.
    #[default]
    Text,
    /// The result document (one JSON line).
    Json,
}

/// Flags of `driftwatch check`; the controller builds Jobs with exactly these. Secrets come from env only.
#[derive(Args, Clone, Debug)]
pub struct CheckArgs {
    /// Qdrant gRPC endpoint, e.g. http://qdrant.qdrant.svc:6334 (https for TLS).
    #[arg(long, env = "QDRANT_URL")]
    pub qdrant_url: String,
    /// Qdrant API key (env only in Jobs).
    #[arg(long, env = "QDRANT_API_KEY", hide_env_values = true)]
    pub qdrant_api_key: Option<String>,
    /// Collection holding the comparison window (and the reference, unless --reference-collection).
    #[arg(long)]
    pub collection: String,
    /// Named vector to read; default: the collection's unnamed vector.
    #[arg(long)]
    pub vector_name: Option<String>,
    /// Payload field with each point's timestamp.
    #[arg(long, default_value = "timestamp")]
    pub timestamp_field: String,
    /// Encoding of the timestamp field.
    #[arg(long, value_enum, default_value_t)]
    pub timestamp_format: TimestampFormatArg,
    /// Payload field with the model's confidence score (for confidence_scores detectors).
    #[arg(long)]
    pub confidence_field: Option<String>,
    /// Payload filter for both windows, as JSON: {"must":[{"key":"model_version","match":{"keyword":"v2"}}]}.
    #[arg(long)]
    pub filter: Option<String>,
    /// Relative reference window length, e.g. 7d.
    #[arg(long)]
    pub reference: Option<String>,
    /// How long before the check time the relative reference window ends, e.g. 24h.
    #[arg(long, requires = "reference")]
    pub reference_offset: Option<String>,
    /// Start of a pinned reference window (RFC 3339).
    #[arg(long, requires = "reference_end", conflicts_with = "reference")]
    pub reference_start: Option<String>,
    /// End of a pinned reference window (RFC 3339).
    #[arg(long, requires = "reference_start", conflicts_with = "reference")]
    pub reference_end: Option<String>,
    /// Read the reference from this collection (alone: the whole collection is the baseline).
    #[arg(long)]
    pub reference_collection: Option<String>,
    /// Payload filter for the reference window only (replaces --filter for it), as JSON.
    #[arg(long)]
    pub reference_filter: Option<String>,
    /// Comparison window length, e.g. 24h.
    #[arg(long)]
    pub comparison: String,
    /// How long before the check time the comparison window ends.
    #[arg(long)]
    pub comparison_offset: Option<String>,
    /// The check's slot time (RFC 3339); windows end relative to it. Default: now.
    #[arg(long)]
    pub at: Option<String>,
    /// Most reference points used (sampled reproducibly beyond).
    #[arg(long, default_value_t = 20_000)]
    pub max_reference: usize,
    /// Most comparison points used.
    #[arg(long, default_value_t = 5_000)]
    pub max_comparison: usize,
    /// Fewest points per window for a verdict.
    #[arg(long, default_value_t = 50)]
    pub min_samples: usize,
    /// Seed of sampling and of every random choice of the detectors.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Family-wise false-alarm rate of the check's verdict (the monitor's spec.alpha).
    #[arg(long, default_value_t = 0.05)]
    pub alpha: f64,
    #[command(flatten)]
    pub read: ReadArgs,
    /// Detectors as a YAML (or JSON) file with a list of detector specs. None: the engine's defaults.
    #[arg(long, conflicts_with = "detectors_json")]
    pub detectors: Option<PathBuf>,
    /// Detectors as a JSON list of detector specs.
    #[arg(long)]
    pub detectors_json: Option<String>,
    /// Explain the check for a reviewer: drift by slice, regions of the embedding space whose share
    /// changed, example points (the monitor's spec.explain).
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    pub explain: bool,
    /// Payload field to slice the explanation by, e.g. camera_id (repeat for several, at most 4).
    #[arg(long = "slice-field")]
    pub slice_fields: Vec<String>,
    /// Payload field shown with each example point, e.g. frame_url (repeat, at most 2).
    #[arg(long = "display-field")]
    pub display_fields: Vec<String>,
    /// Example points per top slice and region (0 to 3).
    #[arg(long, default_value_t = 3)]
    pub explain_examples: usize,
    /// Fewest points a slice needs in each window to be tested.
    #[arg(long, default_value_t = explain::slices::DEFAULT_MIN_POINTS)]
    pub min_slice_points: usize,
    /// Cluster the pooled points into regions.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub explain_regions: bool,
    /// Id of this check in the result (the Job name). Default: check-<at>.
    #[arg(long)]
    pub check_id: Option<String>,
    /// Where to write the result document. Default: /dev/termination-log when it exists.
    #[arg(long)]
    pub termination_log: Option<PathBuf>,
    /// Stdout format.
    #[arg(long, value_enum, default_value_t)]
    pub output: OutputFormat,
    /// Deadline of each gRPC call, e.g. 30s.
    #[arg(long, default_value = "30s")]
    pub timeout: String,
}

/// A failed check, named by the error kinds of the result document.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("{0}")]
    InvalidSpec(String),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("the {window} window ({description}) has no points")]
    EmptyWindow {
        window: &'static str,
        description: String,
    },
    #[error("the {window} window ({description}) has {n} points; at least {min} are needed (--min-samples)")]
    InsufficientData {
        window: &'static str,
        description: String,
        n: usize,
        min: usize,
    },
    #[error("reference vectors are {reference}-d but comparison vectors are {comparison}-d")]
    DimensionMismatch { reference: usize, comparison: usize },
    #[error("drift engine: {0}")]
    Engine(#[from] DriftError),
}

impl CheckError {
    pub fn kind(&self) -> &'static str {
        match self {
            CheckError::InvalidSpec(_) => "InvalidSpec",
            CheckError::Source(e) => e.kind(),
            CheckError::EmptyWindow { .. } => "EmptyWindow",
            CheckError::InsufficientData { .. } => "InsufficientData",
            CheckError::DimensionMismatch { .. } => "DimensionMismatch",
            CheckError::Engine(e) => e.kind(),
        }
    }
}

/// Everything a check does, resolved from the flags and the check time.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckPlan {
    pub check_id: String,
    pub at: jiff::Timestamp,
    pub schema: PointSchema,
    pub reference: WindowQuery,
    pub comparison: WindowQuery,
    /// `None`: the engine's defaults (chosen once the data shows whether confidence scores exist).
    pub detectors: Option<Vec<DetectorSpec>>,
    pub min_samples: usize,
    pub seed: u64,
    /// Family-wise false-alarm rate of the verdict.
    pub alpha: f64,
    pub timeout: Duration,
    /// Strata of a window read at the same time.
    pub read_concurrency: usize,
    /// Points per scroll page (`None`: about 1 MiB of vectors).
    pub page_size: Option<u32>,
    /// What to explain; `None`: nothing.
    pub explain: Option<ExplainPlan>,
}

/// The explanation a check computes (from `--explain` and its flags).
#[derive(Clone, Debug, PartialEq)]
pub struct ExplainPlan {
    pub slice_fields: Vec<String>,
    pub display_fields: Vec<String>,
    pub examples: usize,
    pub min_slice_points: usize,
    pub regions: bool,
}

/// Most slice fields (spec.explain.sliceFields).
pub const MAX_SLICE_FIELDS: usize = 4;

impl CheckPlan {
    /// Resolves the flags against the check time `now` (used when `--at` is absent).
    pub fn from_args(args: &CheckArgs, now: jiff::Timestamp) -> Result<Self, CheckError> {
        let at = match &args.at {
            Some(text) => parse_time("--at", text)?,
            None => now,
        };
        let duration = |flag: &str, text: &str| -> Result<jiff::SignedDuration, CheckError> {
            let d = parse_duration(text).map_err(|e| CheckError::InvalidSpec(format!("{flag}: {e}")))?;
            jiff::SignedDuration::try_from(d).map_err(|e| CheckError::InvalidSpec(format!("{flag}: {e}")))
        };
        let relative =
            |length: jiff::SignedDuration, offset: jiff::SignedDuration| -> Result<TimeRange, CheckError> {
                let end = at
                    .checked_sub(offset)
                    .map_err(|e| CheckError::InvalidSpec(format!("window end out of range: {e}")))?;
                let start = end
                    .checked_sub(length)
                    .map_err(|e| CheckError::InvalidSpec(format!("window start out of range: {e}")))?;
                Ok(TimeRange {
                    start: Some(start),
                    end: Some(end),
                })
            };

        let comparison_length = duration("--comparison", &args.comparison)?;
        if comparison_length.is_zero() {
            return Err(CheckError::InvalidSpec(
                "--comparison must be a positive duration".into(),
            ));
        }
        let comparison_offset = match &args.comparison_offset {
            Some(text) => duration("--comparison-offset", text)?,
            None => jiff::SignedDuration::ZERO,
        };
        let comparison_range = relative(comparison_length, comparison_offset)?;

        let reference_range = match (&args.reference, &args.reference_start, &args.reference_end) {
            (Some(length), None, None) => {
                let length = duration("--reference", length)?;
                if length.is_zero() {
                    return Err(CheckError::InvalidSpec(
                        "--reference must be a positive duration".into(),
                    ));
                }
                let offset = match &args.reference_offset {
                    Some(text) => duration("--reference-offset", text)?,
                    None => jiff::SignedDuration::ZERO,
                };
                Some(relative(length, offset)?)
            }
            (None, Some(start), Some(end)) => {
                let (start, end) = (
                    parse_time("--reference-start", start)?,
                    parse_time("--reference-end", end)?,
                );
                if start >= end {
                    return Err(CheckError::InvalidSpec(
                        "--reference-start must be before --reference-end".into(),
                    ));
                }
                Some(TimeRange {
                    start: Some(start),
                    end: Some(end),
                })
            }
            (None, None, None) if args.reference_collection.is_some() => None,
            (None, None, None) => {
                return Err(CheckError::InvalidSpec(
                    "the reference window needs --reference (e.g. 7d), or --reference-start and \
                     --reference-end, or --reference-collection (the whole collection as baseline)"
                        .into(),
                ));
            }
            _ => {
                return Err(CheckError::InvalidSpec(
                    "the reference window is either relative (--reference) or pinned (--reference-start \
                     and --reference-end), not both"
                        .into(),
                ));
            }
        };

        let filter = parse_filter("--filter", args.filter.as_deref())?;
        let reference_filter = match parse_filter("--reference-filter", args.reference_filter.as_deref())? {
            Some(f) => Some(f),
            None => filter.clone(),
        };
        let detectors = match (&args.detectors, &args.detectors_json) {
            (Some(path), None) => Some(read_detectors_file(path)?),
            (None, Some(json)) => Some(
                serde_json::from_str::<Vec<DetectorSpec>>(json)
                    .map_err(|e| CheckError::InvalidSpec(format!("--detectors-json: {e}")))?,
            ),
            (None, None) => None,
            (Some(_), Some(_)) => {
                return Err(CheckError::InvalidSpec(
                    "give --detectors or --detectors-json, not both".into(),
                ));
            }
        };
        if detectors.as_ref().is_some_and(Vec::is_empty) {
            return Err(CheckError::InvalidSpec("the detector list is empty".into()));
        }
        let has_confidence = args.confidence_field.as_ref().is_some_and(|f| !f.is_empty());
        if let Some(d) = detectors
            .iter()
            .flatten()
            .find(|d| d.source == DataSource::ConfidenceScores)
            && !has_confidence
        {
            return Err(CheckError::InvalidSpec(format!(
                "detector {} on confidence_scores needs --confidence-field (the payload field with the score)",
                d.method
            )));
        }
        if args.max_reference == 0 || args.max_comparison == 0 {
            return Err(CheckError::InvalidSpec(
                "--max-reference and --max-comparison must be > 0".into(),
            ));
        }
        let sampling = args.read.sampling().map_err(CheckError::InvalidSpec)?;
        let explain = explain_plan(args)?;
        let timeout =
            parse_duration(&args.timeout).map_err(|e| CheckError::InvalidSpec(format!("--timeout: {e}")))?;
        if timeout.is_zero() {
            return Err(CheckError::InvalidSpec("--timeout must be positive".into()));
        }

        Ok(CheckPlan {
            check_id: args
                .check_id
                .clone()
                .unwrap_or_else(|| format!("check-{}", at.strftime("%Y%m%dT%H%M%SZ"))),
            at,
            schema: PointSchema {
                vector_name: args.vector_name.clone().filter(|n| !n.is_empty()),
                timestamp_field: args.timestamp_field.clone(),
                timestamp_format: args.timestamp_format.into(),
                confidence_field: args.confidence_field.clone().filter(|f| !f.is_empty()),
                read_points: explain.is_some(),
                payload_fields: explain
                    .iter()
                    .flat_map(|e| e.slice_fields.iter().chain(&e.display_fields))
                    .cloned()
                    .collect(),
            },
            reference: WindowQuery {
                collection: args
                    .reference_collection
                    .clone()
                    .unwrap_or_else(|| args.collection.clone()),
                filter: reference_filter,
                range: reference_range,
                max_points: args.max_reference,
                seed: args.seed,
                stream: 1,
                sampling: sampling.clone(),
                strata: args.read.strata,
            },
            comparison: WindowQuery {
                collection: args.collection.clone(),
                filter,
                range: Some(comparison_range),
                max_points: args.max_comparison,
                seed: args.seed,
                stream: 2,
                sampling,
                strata: args.read.strata,
            },
            detectors,
            min_samples: args.min_samples,
            seed: args.seed,
            alpha: args.alpha,
            timeout,
            read_concurrency: args.read.read_concurrency,
            page_size: args.read.page_size,
            explain,
        })
    }

    /// The windows as reported (collection named only where it differs from the monitor's).
    pub fn report_windows(&self) -> ReportWindows {
        let window = |q: &WindowQuery| TimeWindow {
            start: q.range.and_then(|r| r.start).map(Time),
            end: q.range.and_then(|r| r.end).map(Time),
            collection: (q.collection != self.comparison.collection).then(|| q.collection.clone()),
        };
        ReportWindows {
            reference: window(&self.reference),
            comparison: window(&self.comparison),
        }
    }
}

/// The explanation asked for: `--explain true`, or any slice or display field.
fn explain_plan(args: &CheckArgs) -> Result<Option<ExplainPlan>, CheckError> {
    let asked = args.explain || !args.slice_fields.is_empty() || !args.display_fields.is_empty();
    if !asked {
        return Ok(None);
    }
    let distinct = |flag: &str, fields: &[String], most: usize| -> Result<Vec<String>, CheckError> {
        let mut out: Vec<String> = Vec::new();
        for f in fields {
            if f.trim().is_empty() {
                return Err(CheckError::InvalidSpec(format!(
                    "{flag} must name a payload field"
                )));
            }
            if !out.contains(f) {
                out.push(f.clone());
            }
        }
        if out.len() > most {
            return Err(CheckError::InvalidSpec(format!(
                "at most {most} {flag} fields, got {}",
                out.len()
            )));
        }
        Ok(out)
    };
    if args.explain_examples > MAX_EXAMPLES {
        return Err(CheckError::InvalidSpec(format!(
            "--explain-examples must be between 0 and {MAX_EXAMPLES}"
        )));
    }
    if args.min_slice_points < 2 {
        return Err(CheckError::InvalidSpec(
            "--min-slice-points must be at least 2".into(),
        ));
    }
    Ok(Some(ExplainPlan {
        slice_fields: distinct("--slice-field", &args.slice_fields, MAX_SLICE_FIELDS)?,
        display_fields: distinct("--display-field", &args.display_fields, MAX_DISPLAY_FIELDS)?,
        examples: args.explain_examples,
        min_slice_points: args.min_slice_points,
        regions: args.explain_regions,
    }))
}

/// The compact explanation of a check: the engine's findings with point ids and display fields of the
/// example rows, bounded ([`Explanation::bounded`]). Pure.
pub fn explanation(plan: &ExplainPlan, explained: &Explained, comparison: &WindowSample) -> Explanation {
    let slices = plan.slice_fields.len();
    let example = |row: usize| -> Option<ExamplePoint> {
        let meta = comparison.points.get(row)?;
        let fields = plan
            .display_fields
            .iter()
            .enumerate()
            .filter_map(|(i, name)| {
                let value = meta.fields.get(slices + i)?.as_ref()?;
                Some((name.clone(), value.clone()))
            })
            .collect();
        Some(ExamplePoint {
            id: meta.id.clone(),
            fields,
        })
    };
    let examples = |rows: &[usize]| rows.iter().filter_map(|&r| example(r)).collect();
    let round = |x: f64| (x * 1e4).round() / 1e4;
    let p = |x: Option<f64>| x.map(|v| (v * 1e6).round() / 1e6);
    Explanation {
        slices: explained
            .slices
            .iter()
            .take(MAX_SLICES)
            .map(|f| SliceSummary {
                field: f.field.clone(),
                value: f.value.clone(),
                status: f.status.as_str().to_string(),
                counts: [f.counts[0] as i64, f.counts[1] as i64],
                shares: [round(f.shares[0]), round(f.shares[1])],
                p_value: p(f.p_value),
                adjusted_p_value: p(f.adjusted_p_value),
                examples: examples(&f.examples),
            })
            .collect(),
        slices_tested: (slices > 0).then_some(explained.slices_tested as i64),
        regions: explained
            .regions
            .iter()
            .take(MAX_REGIONS)
            .map(|r| RegionSummary {
                region: r.cluster as i64,
                kind: r.kind.as_str().to_string(),
                counts: [r.counts[0] as i64, r.counts[1] as i64],
                shares: [round(r.shares[0]), round(r.shares[1])],
                examples: examples(&r.examples),
            })
            .collect(),
        seconds: Some(round3(explained.seconds)),
        truncated: false,
    }
    .bounded(plan.display_fields.len())
}

/// The slice columns of both windows' sampled rows (values of the slice fields, the first of each
/// row's payload fields).
fn slice_columns(
    plan: &ExplainPlan,
    reference: &WindowSample,
    comparison: &WindowSample,
) -> Vec<SliceColumn> {
    plan.slice_fields
        .iter()
        .enumerate()
        .map(|(i, field)| {
            let values = |w: &'_ WindowSample| -> Vec<Option<String>> {
                (0..w.sampled())
                    .map(|row| w.points.get(row).and_then(|m| m.fields.get(i).cloned().flatten()))
                    .collect()
            };
            let (r, c) = (values(reference), values(comparison));
            SliceColumn::new(
                field.clone(),
                r.iter().map(|v| v.as_deref()),
                c.iter().map(|v| v.as_deref()),
            )
        })
        .collect()
}

fn parse_time(flag: &str, text: &str) -> Result<jiff::Timestamp, CheckError> {
    text.parse::<jiff::Timestamp>()
        .map_err(|e| CheckError::InvalidSpec(format!("{flag} {text:?} is not an RFC 3339 time: {e}")))
}

fn parse_filter(flag: &str, text: Option<&str>) -> Result<Option<PayloadFilter>, CheckError> {
    let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
        return Ok(None);
    };
    let filter: PayloadFilter = serde_json::from_str(text)
        .map_err(|e| CheckError::InvalidSpec(format!("{flag} is not a payload filter: {e}")))?;
    // Validate the conditions now, so a bad filter is InvalidSpec before any I/O.
    crate::source::filter::scope_filter(Some(&filter))
        .map_err(|e| CheckError::InvalidSpec(format!("{flag}: {e}")))?;
    Ok((!filter.must.is_empty() || !filter.must_not.is_empty()).then_some(filter))
}

fn read_detectors_file(path: &Path) -> Result<Vec<DetectorSpec>, CheckError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CheckError::InvalidSpec(format!("--detectors {}: {e}", path.display())))?;
    serde_yaml::from_str::<Vec<DetectorSpec>>(&text)
        .map_err(|e| CheckError::InvalidSpec(format!("--detectors {}: {e}", path.display())))
}

fn describe(window: &WindowQuery) -> String {
    let range = match window.range {
        Some(r) => format!(
            "[{}, {})",
            r.start.map(|t| t.to_string()).unwrap_or_else(|| "-inf".into()),
            r.end.map(|t| t.to_string()).unwrap_or_else(|| "+inf".into())
        ),
        None => "whole collection".to_string(),
    };
    format!("collection {:?}, {range}", window.collection)
}

/// Reads both windows (concurrently).
pub async fn read_windows(
    plan: &CheckPlan,
    url: &str,
    api_key: Option<String>,
) -> Result<(WindowSample, WindowSample), CheckError> {
    let mut config = QdrantConfig::new(url);
    config.api_key = api_key.filter(|k| !k.is_empty());
    config.timeout = plan.timeout;
    config.concurrency = plan.read_concurrency;
    config.page_size = plan.page_size;
    let source = QdrantSource::new(config, plan.schema.clone())?;
    let (reference, comparison) = tokio::try_join!(
        source.read_window(&plan.reference),
        source.read_window(&plan.comparison)
    )?;
    Ok((reference, comparison))
}

/// Runs the detectors on two read windows and builds the outcome (pure computation).
pub fn evaluate(
    plan: &CheckPlan,
    reference: &WindowSample,
    comparison: &WindowSample,
    started: Instant,
) -> Result<CheckOutcome, CheckError> {
    for (name, query, sample) in [
        ("reference", &plan.reference, reference),
        ("comparison", &plan.comparison, comparison),
    ] {
        if sample.sampled() == 0 {
            return Err(CheckError::EmptyWindow {
                window: name,
                description: describe(query),
            });
        }
        if sample.sampled() < plan.min_samples {
            return Err(CheckError::InsufficientData {
                window: name,
                description: describe(query),
                n: sample.sampled(),
                min: plan.min_samples,
            });
        }
    }
    if reference.dimension != comparison.dimension {
        return Err(CheckError::DimensionMismatch {
            reference: reference.dimension,
            comparison: comparison.dimension,
        });
    }
    let detectors = match &plan.detectors {
        Some(list) => list.clone(),
        None => drift::default_detectors(reference.scores.is_some() && comparison.scores.is_some()),
    };
    let reference_sample = Sample {
        embeddings: reference.embeddings.view(),
        scores: reference.scores.as_ref().map(|s| s.view()),
    };
    let comparison_sample = Sample {
        embeddings: comparison.embeddings.view(),
        scores: comparison.scores.as_ref().map(|s| s.view()),
    };
    let config = EngineConfig {
        seed: plan.seed,
        min_samples: plan.min_samples,
        alpha: plan.alpha,
    };
    let request = plan.explain.as_ref().map(|e| explain::Request {
        slices: slice_columns(e, reference, comparison),
        min_slice_points: e.min_slice_points,
        regions: e.regions,
        examples: e.examples,
    });
    let (outcome, explained) = drift::run_explained(
        &detectors,
        &reference_sample,
        &comparison_sample,
        &config,
        request.as_ref(),
    )?;
    let explanation = match (&plan.explain, &explained) {
        (Some(e), Some(explained)) => Some(explanation(e, explained, comparison)),
        _ => None,
    };
    let summary = drift::summarize(
        reference.embeddings.view(),
        comparison.embeddings.view(),
        SUMMARY_BINS,
        plan.seed,
    );
    Ok(CheckOutcome {
        windows: plan.report_windows(),
        samples: SampleCounts {
            reference: reference.sampled() as i64,
            comparison: comparison.sampled() as i64,
            reference_available: Some(reference.available as i64),
            comparison_available: Some(comparison.available as i64),
            reference_sampling: Some(reference.method),
            comparison_sampling: Some(comparison.method),
            reference_read: Some(reference.scanned as i64),
            comparison_read: Some(comparison.scanned as i64),
        },
        drift_detected: outcome.drift_detected,
        combined_p_value: Some(outcome.combined_p_value),
        alpha: Some(outcome.alpha),
        scores: outcome.scores,
        duration_seconds: round3(started.elapsed().as_secs_f64()),
        skipped: Some(SkippedCounts {
            reference: reference.skipped,
            comparison: comparison.skipped,
        }),
        summary: (!summary.components.is_empty()).then_some(summary),
        explanation,
    })
}

fn round3(x: f64) -> f64 {
    (x * 1_000.0).round() / 1_000.0
}

/// Runs a whole check and returns its result document (success or named failure).
pub fn run(args: &CheckArgs) -> CheckReport {
    let started = Instant::now();
    let plan = match CheckPlan::from_args(args, jiff::Timestamp::now()) {
        Ok(plan) => plan,
        Err(err) => {
            let id = args.check_id.clone().unwrap_or_else(|| "check".to_string());
            return CheckReport::failure(id, err.kind(), err.to_string());
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(err) => {
            return CheckReport::failure(&plan.check_id, "SourceUnavailable", format!("runtime: {err}"));
        }
    };
    let read = runtime.block_on(read_windows(&plan, &args.qdrant_url, args.qdrant_api_key.clone()));
    drop(runtime);
    let outcome = read.and_then(|(reference, comparison)| {
        tracing::info!(
            reference = reference.sampled(),
            reference_available = reference.available,
            reference_read = reference.scanned,
            reference_sampling = reference.method.as_str(),
            comparison = comparison.sampled(),
            comparison_available = comparison.available,
            comparison_read = comparison.scanned,
            comparison_sampling = comparison.method.as_str(),
            "windows read"
        );
        evaluate(&plan, &reference, &comparison, started)
    });
    match outcome {
        Ok(outcome) => CheckReport::success(&plan.check_id, outcome),
        Err(err) => CheckReport::failure(&plan.check_id, err.kind(), redact_urls(&err.to_string())),
    }
}

/// `driftwatch check`: runs, prints, writes the termination log; exit code 0 on success, 1 on failure.
pub fn main(args: &CheckArgs) -> std::process::ExitCode {
    let report = run(args);
    let document = encode_check_report(&report);
    match args.output {
        OutputFormat::Json => println!("{document}"),
        OutputFormat::Text => print!("{}", render_text(&report, std::io::stdout().is_terminal())),
    }
    let path = args.termination_log.clone().or_else(|| {
        Path::new(DEFAULT_TERMINATION_LOG)
            .exists()
            .then(|| PathBuf::from(DEFAULT_TERMINATION_LOG))
    });
    if let Some(path) = path
        && let Err(err) = std::fs::write(&path, &document)
    {
        eprintln!("error: cannot write the result to {}: {err}", path.display());
    }
    if report.error.is_some() {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    }
}

/// A readable report of a result document.
pub fn render_text(report: &CheckReport, color: bool) -> String {
    use std::fmt::Write;
    let paint = |text: &str, code: &str| {
        if color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    };
    let mut out = String::new();
    if let Some(error) = &report.error {
        let _ = writeln!(
            out,
            "check {}: {} {}",
            report.check_id,
            paint("FAILED", "1;31"),
            error.kind
        );
        let _ = writeln!(out, "  {}", error.message);
        return out;
    }
    let Some(result) = &report.result else {
        return out;
    };
    let fired = result.scores.iter().filter(|s| s.drifted).count();
    let verdict = if result.drift_detected {
        paint("DRIFT DETECTED", "1;31")
    } else {
        paint("no drift", "1;32")
    };
    let calibrated = match (result.combined_p_value, result.alpha) {
        (Some(p), Some(alpha)) => format!("combined p-value {p:.4}, alpha {alpha}; "),
        _ => String::new(),
    };
    let _ = writeln!(
        out,
        "check {}: {verdict} ({calibrated}{fired} of {} detectors fired on their own) in {:.2}s",
        report.check_id,
        result.scores.len(),
        result.duration_seconds
    );
    let skipped = result.skipped.clone().unwrap_or_default();
    let samples = &result.samples;
    for (name, window, used, available, skipped, method, read) in [
        (
            "reference",
            &result.windows.reference,
            samples.reference,
            samples.reference_available,
            skipped.reference,
            samples.reference_sampling,
            samples.reference_read,
        ),
        (
            "comparison",
            &result.windows.comparison,
            samples.comparison,
            samples.comparison_available,
            skipped.comparison,
            samples.comparison_sampling,
            samples.comparison_read,
        ),
    ] {
        let span = match (&window.start, &window.end) {
            (Some(s), Some(e)) => format!("{} .. {}", s.0, e.0),
            _ => "whole collection".to_string(),
        };
        let collection = window
            .collection
            .as_ref()
            .map(|c| format!(" [{c}]"))
            .unwrap_or_default();
        let available = available.map(|a| format!(" of {a}")).unwrap_or_default();
        let skipped = if skipped > 0 {
            format!(", {skipped} skipped (no readable timestamp)")
        } else {
            String::new()
        };
        let how = match (method, read) {
            (Some(method), Some(read)) => format!(" ({}, {read} read)", method.as_str()),
            (Some(method), None) => format!(" ({})", method.as_str()),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "  {name:<11}{span}{collection}: {used} points used{available}{how}{skipped}"
        );
    }
    let _ = writeln!(
        out,
        "\n  {:<14} {:<18} {:>10} {:>10} {:>9}  verdict",
        "method", "source", "score", "threshold", "p-value"
    );
    for s in &result.scores {
        let threshold = s
            .threshold
            .map(|t| format!("{t:.4}"))
            .unwrap_or_else(|| "-".into());
        let p = s.p_value.map(|p| format!("{p:.4}")).unwrap_or_else(|| "-".into());
        let verdict = if s.drifted {
            paint("DRIFT", "31")
        } else {
            paint("ok", "32")
        };
        let _ = writeln!(
            out,
            "  {:<14} {:<18} {:>10.4} {:>10} {:>9}  {verdict}",
            s.method.as_str(),
            s.source.as_str(),
            s.score,
            threshold,
            p
        );
    }
    if let Some(explanation) = &result.explanation {
        let _ = writeln!(out, "\nWhat changed and where:");
        for line in crate::plugin::render::explanation(explanation).lines() {
            let _ = writeln!(out, "  {line}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::api::v1alpha1::SamplingMethod;
    use crate::source::Sampling;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: CheckArgs,
    }

    fn args(extra: &[&str]) -> CheckArgs {
        let mut argv = vec![
            "check",
            "--qdrant-url",
            "http://q:6334",
            "--collection",
            "frames",
            "--comparison",
            "24h",
        ];
        argv.extend_from_slice(extra);
        Cli::try_parse_from(argv).unwrap().args
    }

    fn now() -> jiff::Timestamp {
        "2026-03-10T02:00:00Z".parse().unwrap()
    }

    fn ts(text: &str) -> jiff::Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn a_relative_reference_ends_offset_before_the_check_time() {
        let plan =
            CheckPlan::from_args(&args(&["--reference", "7d", "--reference-offset", "24h"]), now()).unwrap();
        let r = plan.reference.range.unwrap();
        assert_eq!(r.start, Some(ts("2026-03-02T02:00:00Z")));
        assert_eq!(r.end, Some(ts("2026-03-09T02:00:00Z")));
        let c = plan.comparison.range.unwrap();
        assert_eq!((c.start, c.end), (Some(ts("2026-03-09T02:00:00Z")), Some(now())));
        assert_eq!(plan.reference.collection, "frames");
        assert_eq!(plan.check_id, "check-20260310T020000Z");
    }

    #[test]
    fn the_slot_time_replaces_now() {
        let plan = CheckPlan::from_args(
            &args(&[
                "--reference",
                "7d",
                "--at",
                "2026-01-01T00:00:00Z",
                "--comparison-offset",
                "1h",
            ]),
            now(),
        )
        .unwrap();
        assert_eq!(
            plan.comparison.range.unwrap().end,
            Some(ts("2025-12-31T23:00:00Z"))
        );
    }

    #[test]
    fn a_pinned_reference_uses_its_start_and_end() {
        let plan = CheckPlan::from_args(
            &args(&[
                "--reference-start",
                "2026-01-01T00:00:00Z",
                "--reference-end",
                "2026-02-01T00:00:00Z",
            ]),
            now(),
        )
        .unwrap();
        let r = plan.reference.range.unwrap();
        assert_eq!(
            (r.start, r.end),
            (Some(ts("2026-01-01T00:00:00Z")), Some(ts("2026-02-01T00:00:00Z")))
        );
    }

    #[test]
    fn another_collection_alone_is_the_whole_collection_with_its_own_filter() {
        let plan = CheckPlan::from_args(
            &args(&[
                "--reference-collection",
                "training",
                "--filter",
                r#"{"must":[{"key":"model","match":{"keyword":"v2"}}]}"#,
                "--reference-filter",
                r#"{"must":[{"key":"split","match":{"keyword":"train"}}]}"#,
            ]),
            now(),
        )
        .unwrap();
        assert_eq!(plan.reference.collection, "training");
        assert_eq!(plan.reference.range, None);
        assert_eq!(plan.reference.filter.as_ref().unwrap().must[0].key, "split");
        assert_eq!(plan.comparison.filter.as_ref().unwrap().must[0].key, "model");
        let windows = plan.report_windows();
        assert_eq!(windows.reference.collection.as_deref(), Some("training"));
        assert_eq!(windows.comparison.collection, None);
    }

    #[test]
    fn a_missing_reference_or_bad_input_is_invalid_spec() {
        for extra in [
            &[][..],
            &["--reference", "7x"][..],
            &["--reference", "7d", "--at", "yesterday"][..],
            &["--reference", "7d", "--filter", "{\"must\":[{\"key\":\"k\"}]}"][..],
            &["--reference", "7d", "--detectors-json", "[{\"method\":\"nope\"}]"][..],
            &["--reference", "7d", "--detectors-json", "[]"][..],
            &[
                "--reference",
                "7d",
                "--detectors-json",
                r#"[{"method":"psi","source":"confidence_scores"}]"#,
            ][..],
            &["--reference", "0s"][..],
            &[
                "--reference-start",
                "2026-02-01T00:00:00Z",
                "--reference-end",
                "2026-01-01T00:00:00Z",
            ][..],
        ] {
            let err = CheckPlan::from_args(&args(extra), now()).unwrap_err();
            assert_eq!(err.kind(), "InvalidSpec", "{extra:?}: {err}");
        }
    }

    #[test]
    fn detectors_come_from_json() {
        let plan = CheckPlan::from_args(
            &args(&[
                "--reference",
                "7d",
                "--detectors-json",
                r#"[{"method":"emd","threshold":0.05}]"#,
            ]),
            now(),
        )
        .unwrap();
        assert_eq!(plan.detectors.unwrap().len(), 1);
    }

    #[test]
    fn reservoir_sampling_in_eight_strata_is_the_default() {
        let plan = CheckPlan::from_args(&args(&["--reference", "7d"]), now()).unwrap();
        assert_eq!(plan.reference.sampling, Sampling::Reservoir);
        assert_eq!(plan.comparison.sampling, Sampling::Reservoir);
        assert_eq!((plan.reference.strata, plan.read_concurrency), (8, 4));
        assert_eq!(plan.page_size, None);
    }

    #[test]
    fn sample_key_sampling_reads_its_field_for_both_windows() {
        let plan = CheckPlan::from_args(
            &args(&[
                "--reference",
                "7d",
                "--sampling-mode",
                "sampleKey",
                "--sample-key-field",
                "sample_key",
                "--strata",
                "16",
                "--read-concurrency",
                "2",
                "--page-size",
                "1024",
            ]),
            now(),
        )
        .unwrap();
        let keyed = Sampling::SampleKey {
            field: "sample_key".into(),
        };
        assert_eq!(plan.reference.sampling, keyed);
        assert_eq!(plan.comparison.sampling, keyed);
        assert_eq!(plan.comparison.strata, 16);
        assert_eq!((plan.read_concurrency, plan.page_size), (2, Some(1024)));
    }

    #[test]
    fn bad_sampling_settings_are_invalid_spec() {
        for extra in [
            &["--sampling-mode", "sampleKey"][..],
            &["--strata", "0"][..],
            &["--read-concurrency", "99"][..],
            &["--page-size", "1"][..],
        ] {
            let mut argv = vec!["--reference", "7d"];
            argv.extend_from_slice(extra);
            let err = CheckPlan::from_args(&args(&argv), now()).unwrap_err();
            assert_eq!(err.kind(), "InvalidSpec", "{extra:?}: {err}");
        }
    }

    #[test]
    fn the_text_report_says_how_each_window_was_sampled() {
        let outcome = CheckOutcome {
            windows: ReportWindows::default(),
            samples: SampleCounts {
                reference: 20_000,
                comparison: 300,
                reference_available: Some(1_000_000),
                comparison_available: Some(300),
                reference_sampling: Some(SamplingMethod::Random),
                comparison_sampling: Some(SamplingMethod::All),
                reference_read: Some(20_000),
                comparison_read: Some(300),
            },
            scores: vec![],
            drift_detected: false,
            combined_p_value: None,
            alpha: None,
            duration_seconds: 1.0,
            skipped: None,
            summary: None,
            explanation: None,
        };
        let text = render_text(&CheckReport::success("c", outcome), false);
        assert!(
            text.contains("20000 points used of 1000000 (random, 20000 read)"),
            "{text}"
        );
        assert!(text.contains("300 points used of 300 (all, 300 read)"), "{text}");
    }

    #[test]
    fn a_failure_report_names_its_kind() {
        let text = render_text(&CheckReport::failure("c", "EmptyWindow", "no points"), false);
        assert!(text.contains("FAILED EmptyWindow"));
        assert!(text.contains("no points"));
    }

    /// A window of `rows` points in 16-d; camera `cam-1` moved by `shift` along one axis. Every point
    /// carries its id, camera and frame URL.
    fn window(rows: usize, seed: u64, shift: f32) -> WindowSample {
        use rand::SeedableRng;
        let mut r = drift::rng::Rng::seed_from_u64(seed);
        let camera = |i: usize| format!("cam-{}", i % 3);
        let mut embeddings =
            ndarray::Array2::from_shape_fn((rows, 16), |_| drift::rng::normal(&mut r) as f32);
        for i in (1..rows).step_by(3) {
            embeddings[[i, 2]] += shift;
        }
        WindowSample {
            embeddings,
            scores: None,
            available: rows as u64,
            skipped: 0,
            missing_confidence: 0,
            dimension: 16,
            scanned: rows as u64,
            method: SamplingMethod::All,
            points: (0..rows)
                .map(|i| crate::source::PointMeta {
                    id: format!("{}", seed * 100_000 + i as u64),
                    fields: vec![
                        Some(camera(i)),
                        Some(format!("https://frames.example.com/{seed}/{i}.jpg")),
                    ],
                })
                .collect(),
        }
    }

    #[test]
    fn a_check_explains_the_drifting_camera_with_point_ids_and_display_fields_and_still_fits() {
        let plan = CheckPlan::from_args(
            &args(&[
                "--reference",
                "7d",
                "--slice-field",
                "camera_id",
                "--display-field",
                "frame_url",
            ]),
            now(),
        )
        .unwrap();
        assert_eq!(plan.schema.payload_fields, ["camera_id", "frame_url"]);
        assert!(plan.schema.read_points);
        let (reference, comparison) = (window(900, 1, 0.0), window(900, 2, 1.5));
        let outcome = evaluate(&plan, &reference, &comparison, Instant::now()).unwrap();
        let explanation = outcome.explanation.clone().unwrap();
        let top = &explanation.slices[0];
        assert_eq!(
            (top.field.as_str(), top.value.as_str(), top.status.as_str()),
            ("camera_id", "cam-1", "drifted")
        );
        assert_eq!(explanation.slices_tested, Some(3));
        assert_eq!(top.examples.len(), 3);
        for example in &top.examples {
            // Comparison point ids (seed 2) of camera 1, with their frame URL.
            let row: usize = example.id.parse::<usize>().unwrap() - 200_000;
            assert_eq!(row % 3, 1, "{example:?}");
            assert_eq!(
                example.fields.get("frame_url").map(String::as_str),
                Some(format!("https://frames.example.com/2/{row}.jpg").as_str())
            );
        }
        assert!(!explanation.regions.is_empty());
        let report = CheckReport::success("c", outcome);
        let text = render_text(&report, false);
        assert!(text.contains("What changed and where:"), "{text}");
        assert!(
            text.lines()
                .any(|l| l.contains("camera_id") && l.contains("cam-1") && l.contains("drifted")),
            "the drifted slice in the text report: {text}"
        );
        assert!(text.contains(&format!("point {}", top.examples[0].id)), "{text}");
        let document = encode_check_report(&report);
        assert!(document.len() <= crate::job::result::MAX_RESULT_BYTES);
        let back = crate::job::result::parse_check_report(&document).unwrap();
        assert!(back.result.unwrap().explanation.is_some());
    }

    #[test]
    fn without_explain_flags_nothing_is_explained_and_bad_explain_flags_are_invalid_spec() {
        let plan = CheckPlan::from_args(&args(&["--reference", "7d"]), now()).unwrap();
        assert_eq!(plan.explain, None);
        assert!(!plan.schema.read_points);
        let plan = CheckPlan::from_args(&args(&["--reference", "7d", "--explain", "true"]), now()).unwrap();
        assert_eq!(plan.explain.unwrap().examples, 3);
        for bad in [
            &["--explain-examples", "4", "--explain", "true"][..],
            &[
                "--slice-field",
                "a",
                "--slice-field",
                "b",
                "--slice-field",
                "c",
                "--slice-field",
                "d",
                "--slice-field",
                "e",
            ],
            &[
                "--display-field",
                "a",
                "--display-field",
                "b",
                "--display-field",
                "c",
            ],
            &["--slice-field", " "],
        ] {
            let mut all = vec!["--reference", "7d"];
            all.extend_from_slice(bad);
            let err = CheckPlan::from_args(&args(&all), now()).unwrap_err();
            assert_eq!(err.kind(), "InvalidSpec", "{bad:?}");
        }
    }
}
