//! `driftwatch compute`: run the drift engine on local .npy files (or the bundled example) and print a
//! table or the JSON result document. Reads files; the engine itself stays pure.

use std::path::{Path, PathBuf};
use std::time::Instant;

use ndarray::Array2;
use serde::Serialize;

use crate::api::v1alpha1::{DataSource, DetectorSpec};
use crate::drift::{self, EngineConfig, Outcome, Sample};
use crate::job::result::ScoreReport;
pub use crate::npy::NpyArray;

/// Bundled example data (seeded, see `examples/data/README.md`): 2000×64 reference, 500×64 comparison
/// with a known drift, and one confidence score per row.
const EXAMPLE_REFERENCE: &[u8] = include_bytes!("../examples/data/reference.npy");
const EXAMPLE_COMPARISON: &[u8] = include_bytes!("../examples/data/comparison.npy");
const EXAMPLE_REFERENCE_SCORES: &[u8] = include_bytes!("../examples/data/reference_scores.npy");
const EXAMPLE_COMPARISON_SCORES: &[u8] = include_bytes!("../examples/data/comparison_scores.npy");

/// How to print the result.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    #[default]
    Table,
    Json,
}

/// Which source the .npy files hold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum SourceArg {
    #[default]
    Embeddings,
    #[value(name = "confidence_scores", alias = "confidence-scores")]
    ConfidenceScores,
}

/// Arguments of `driftwatch compute`.
#[derive(Clone, Debug, clap::Args)]
pub struct ComputeArgs {
    /// Reference window: .npy, float32/float64, C order; [n, d] embeddings or [n] / [n, 1] scores.
    /// Without --reference and --comparison the bundled example data is used.
    #[arg(long, requires = "comparison")]
    pub reference: Option<PathBuf>,
    /// Comparison window, same format as --reference.
    #[arg(long, requires = "reference")]
    pub comparison: Option<PathBuf>,
    /// What the files hold.
    #[arg(long, value_enum, default_value_t = SourceArg::Embeddings)]
    pub source: SourceArg,
    /// YAML file with a `detectors:` list (as in a DriftMonitor spec), or the bare list. Default: the
    /// recommended detectors for the source.
    #[arg(long)]
    pub detectors: Option<PathBuf>,
    /// Family-wise false-alarm rate of the verdict: the probability that two windows from one
    /// distribution are reported as drift, whatever the number of detectors.
    #[arg(long, default_value_t = 0.05)]
    pub alpha: f64,
    /// Seed of every random choice (same data + seed = same result).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Smallest window that yields a verdict.
    #[arg(long, default_value_t = 50)]
    pub min_samples: usize,
    /// table (default) or json (the result document's scores and driftDetected).
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

/// Why `compute` failed.
#[derive(Debug, thiserror::Error)]
pub enum ComputeError {
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    #[error("{0}")]
    Engine(#[from] drift::DriftError),
    #[error("{path}: not a detectors list: {reason}")]
    Detectors { path: String, reason: String },
}

impl ComputeError {
    pub fn kind(&self) -> &'static str {
        match self {
            ComputeError::File { .. } => "InvalidInput",
            ComputeError::Engine(e) => e.kind(),
            ComputeError::Detectors { .. } => "InvalidSpec",
        }
    }
}

/// The JSON document printed by `--output json`.
#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct ComputeReport {
    /// The calibrated verdict: `combinedPValue < alpha`.
    pub drift_detected: bool,
    pub combined_p_value: f64,
    pub alpha: f64,
    pub scores: Vec<ScoreReport>,
    pub duration_seconds: f64,
}

/// Runs the command and returns what to print.
pub fn run(args: &ComputeArgs) -> Result<String, ComputeError> {
    let started = Instant::now();
    let config = EngineConfig {
        seed: args.seed,
        min_samples: args.min_samples,
        alpha: args.alpha,
    };
    let outcome = match (&args.reference, &args.comparison) {
        (Some(r), Some(c)) => {
            let reference = NpyArray::read_file(r)?;
            let comparison = NpyArray::read_file(c)?;
            let source = match args.source {
                SourceArg::Embeddings => DataSource::Embeddings,
                SourceArg::ConfidenceScores => DataSource::ConfidenceScores,
            };
            let detectors = load_detectors(args.detectors.as_deref(), source)?;
            run_files(&detectors, source, (r, reference), (c, comparison), &config)?
        }
        _ => {
            let parse =
                |name: &str, bytes: &[u8]| NpyArray::parse(bytes).map_err(|reason| file_error(name, reason));
            let reference =
                parse("examples/data/reference.npy", EXAMPLE_REFERENCE)?.into_matrix("reference")?;
            let comparison =
                parse("examples/data/comparison.npy", EXAMPLE_COMPARISON)?.into_matrix("comparison")?;
            let rs = parse("examples/data/reference_scores.npy", EXAMPLE_REFERENCE_SCORES)?
                .into_vector("scores")?;
            let cs = parse("examples/data/comparison_scores.npy", EXAMPLE_COMPARISON_SCORES)?
                .into_vector("scores")?;
            let detectors = match args.detectors.as_deref() {
                Some(p) => read_detectors(p)?,
                None => drift::default_detectors(true),
            };
            drift::run(
                &detectors,
                &Sample {
                    embeddings: reference.view(),
                    scores: Some(rs.view()),
                },
                &Sample {
                    embeddings: comparison.view(),
                    scores: Some(cs.view()),
                },
                &config,
            )?
        }
    };
    let report = ComputeReport {
        drift_detected: outcome.drift_detected,
        combined_p_value: outcome.combined_p_value,
        alpha: outcome.alpha,
        scores: outcome.scores,
        duration_seconds: started.elapsed().as_secs_f64(),
    };
    Ok(match args.output {
        OutputFormat::Json => serde_json::to_string_pretty(&report).unwrap_or_default(),
        OutputFormat::Table => table(&report, args.reference.is_none()),
    })
}

fn run_files(
    detectors: &[DetectorSpec],
    source: DataSource,
    (rp, reference): (&Path, NpyArray),
    (cp, comparison): (&Path, NpyArray),
    config: &EngineConfig,
) -> Result<Outcome, ComputeError> {
    let named = |p: &Path, e: ComputeError| match e {
        ComputeError::File { reason, .. } => file_error(&p.display().to_string(), reason),
        other => other,
    };
    match source {
        DataSource::Embeddings => {
            let r = reference.into_matrix("embeddings").map_err(|e| named(rp, e))?;
            let c = comparison.into_matrix("embeddings").map_err(|e| named(cp, e))?;
            Ok(drift::run(
                detectors,
                &Sample {
                    embeddings: r.view(),
                    scores: None,
                },
                &Sample {
                    embeddings: c.view(),
                    scores: None,
                },
                config,
            )?)
        }
        DataSource::ConfidenceScores => {
            let r = reference.into_vector("scores").map_err(|e| named(rp, e))?;
            let c = comparison.into_vector("scores").map_err(|e| named(cp, e))?;
            let (er, ec) = (
                Array2::<f32>::zeros((r.len(), 0)),
                Array2::<f32>::zeros((c.len(), 0)),
            );
            Ok(drift::run(
                detectors,
                &Sample {
                    embeddings: er.view(),
                    scores: Some(r.view()),
                },
                &Sample {
                    embeddings: ec.view(),
                    scores: Some(c.view()),
                },
                config,
            )?)
        }
    }
}

fn load_detectors(path: Option<&Path>, source: DataSource) -> Result<Vec<DetectorSpec>, ComputeError> {
    match path {
        Some(p) => read_detectors(p),
        None => Ok(drift::default_detectors(source == DataSource::ConfidenceScores)
            .into_iter()
            .filter(|d| d.source == source)
            .collect()),
    }
}

/// Reads a `detectors:` list (or a bare list) from YAML.
pub fn read_detectors(path: &Path) -> Result<Vec<DetectorSpec>, ComputeError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| file_error(&path.display().to_string(), e.to_string()))?;
    parse_detectors(&text).map_err(|reason| ComputeError::Detectors {
        path: path.display().to_string(),
        reason,
    })
}

/// Parses a `detectors:` list (or a bare list) from YAML text.
pub fn parse_detectors(text: &str) -> Result<Vec<DetectorSpec>, String> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Doc {
        Wrapped { detectors: Vec<DetectorSpec> },
        Bare(Vec<DetectorSpec>),
    }
    match serde_yaml::from_str::<Doc>(text) {
        Ok(Doc::Wrapped { detectors } | Doc::Bare(detectors)) => Ok(detectors),
        Err(_) => {
            // Re-parse the most likely shape for a precise message.
            let wrapped = serde_yaml::from_str::<serde_yaml::Value>(text)
                .map(|v| v.get("detectors").is_some())
                .unwrap_or(false);
            let err = if wrapped {
                #[derive(serde::Deserialize)]
                struct W {
                    #[allow(dead_code)]
                    detectors: Vec<DetectorSpec>,
                }
                serde_yaml::from_str::<W>(text).err().map(|e| e.to_string())
            } else {
                serde_yaml::from_str::<Vec<DetectorSpec>>(text)
                    .err()
                    .map(|e| e.to_string())
            };
            Err(err.unwrap_or_else(|| "expected a list of detectors".to_string()))
        }
    }
}

pub(crate) fn file_error(path: &str, reason: impl Into<String>) -> ComputeError {
    ComputeError::File {
        path: path.to_string(),
        reason: reason.into(),
    }
}

fn table(report: &ComputeReport, example: bool) -> String {
    let mut out = String::new();
    if example {
        out.push_str(
            "Bundled example (examples/data): 2000×64 reference vs 500×64 comparison with a known drift,\n\
             plus one confidence score per row. Run with --reference A.npy --comparison B.npy for your data.\n\n",
        );
    }
    let fmt = |v: Option<f64>| v.map(|x| format!("{x:.4}")).unwrap_or_else(|| "-".to_string());
    out.push_str(&format!(
        "{:<14} {:<18} {:>10} {:>10} {:>8} {:>8} {:<9} {:>8}\n",
        "DETECTOR", "SOURCE", "SCORE", "THRESHOLD", "P-VALUE", "ADJ. P", "FIRED", "TIME"
    ));
    for o in &report.scores {
        out.push_str(&format!(
            "{:<14} {:<18} {:>10.4} {:>10} {:>8} {:>8} {:<9} {:>7.3}s\n",
            o.method.as_str(),
            o.source.as_str(),
            o.score,
            fmt(o.threshold),
            fmt(o.p_value),
            fmt(o.adjusted_p_value),
            if o.drifted { "yes" } else { "no" },
            o.seconds
        ));
    }
    let n = report
        .scores
        .first()
        .map(|o| (o.n_reference, o.n_comparison))
        .unwrap_or((0, 0));
    out.push_str(&format!(
        "\n{}: combined p-value {:.4} {} alpha {} ({} of {} detectors fired on their own; {} reference, {} \
         comparison points, {:.3}s)\n",
        if report.drift_detected {
            "DRIFT DETECTED"
        } else {
            "no drift"
        },
        report.combined_p_value,
        if report.drift_detected { "<" } else { ">=" },
        report.alpha,
        report.scores.iter().filter(|o| o.drifted).count(),
        report.scores.len(),
        n.0,
        n.1,
        report.duration_seconds
    ));
    out
}
