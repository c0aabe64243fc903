//! `driftwatch compute`: run the drift engine on local .npy files (or the bundled example) and print a
//! table or the JSON result document. Reads files; the engine itself stays pure.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use ndarray::{Array1, Array2};
use serde::Serialize;

use crate::api::v1alpha1::{DataSource, DetectorSpec};
use crate::drift::{self, DetectorOutcome, EngineConfig, Sample};
use crate::job::result::ScoreReport;

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
    pub drift_detected: bool,
    pub scores: Vec<ScoreReport>,
    pub duration_seconds: f64,
}

/// Runs the command and returns what to print.
pub fn run(args: &ComputeArgs) -> Result<String, ComputeError> {
    let started = Instant::now();
    let config = EngineConfig {
        seed: args.seed,
        min_samples: args.min_samples,
    };
    let outcomes = match (&args.reference, &args.comparison) {
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
        drift_detected: outcomes.iter().any(|o| o.drifted),
        scores: outcomes.iter().map(ScoreReport::from).collect(),
        duration_seconds: started.elapsed().as_secs_f64(),
    };
    Ok(match args.output {
        OutputFormat::Json => serde_json::to_string_pretty(&report).unwrap_or_default(),
        OutputFormat::Table => table(&outcomes, &report, args.reference.is_none()),
    })
}

fn run_files(
    detectors: &[DetectorSpec],
    source: DataSource,
    (rp, reference): (&Path, NpyArray),
    (cp, comparison): (&Path, NpyArray),
    config: &EngineConfig,
) -> Result<Vec<DetectorOutcome>, ComputeError> {
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

fn file_error(path: &str, reason: impl Into<String>) -> ComputeError {
    ComputeError::File {
        path: path.to_string(),
        reason: reason.into(),
    }
}

fn table(outcomes: &[DetectorOutcome], report: &ComputeReport, example: bool) -> String {
    let mut out = String::new();
    if example {
        out.push_str(
            "Bundled example (examples/data): 2000×64 reference vs 500×64 comparison with a known drift,\n\
             plus one confidence score per row. Run with --reference A.npy --comparison B.npy for your data.\n\n",
        );
    }
    let fmt = |v: Option<f64>| v.map(|x| format!("{x:.4}")).unwrap_or_else(|| "-".to_string());
    out.push_str(&format!(
        "{:<14} {:<18} {:>10} {:>10} {:>8} {:<9} {:>8}\n",
        "DETECTOR", "SOURCE", "SCORE", "THRESHOLD", "P-VALUE", "VERDICT", "TIME"
    ));
    for o in outcomes {
        out.push_str(&format!(
            "{:<14} {:<18} {:>10.4} {:>10} {:>8} {:<9} {:>7.3}s\n",
            o.method.as_str(),
            o.source.as_str(),
            o.score,
            fmt(o.threshold),
            fmt(o.p_value),
            if o.drifted { "DRIFT" } else { "ok" },
            o.seconds
        ));
    }
    let n = outcomes
        .first()
        .map(|o| (o.n_reference, o.n_comparison))
        .unwrap_or((0, 0));
    out.push_str(&format!(
        "\n{}: {} of {} detectors fired ({} reference, {} comparison points, {:.3}s)\n",
        if report.drift_detected {
            "DRIFT DETECTED"
        } else {
            "no drift"
        },
        outcomes.iter().filter(|o| o.drifted).count(),
        outcomes.len(),
        n.0,
        n.1,
        report.duration_seconds
    ));
    out
}

/// A numeric .npy array read as f32 (float64 is narrowed), C order.
#[derive(Clone, Debug, PartialEq)]
pub struct NpyArray {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl NpyArray {
    pub fn read_file(path: &Path) -> Result<NpyArray, ComputeError> {
        let name = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|e| file_error(&name, e.to_string()))?;
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        Self::read(std::io::BufReader::with_capacity(1 << 20, file), Some(len))
            .map_err(|r| file_error(&name, r))
    }

    pub fn parse(bytes: &[u8]) -> Result<NpyArray, String> {
        Self::read(bytes, Some(bytes.len() as u64))
    }

    /// Parses the .npy format (versions 1–3): little-endian float32/float64, C order, 1-D or 2-D.
    pub fn read(mut r: impl Read, file_len: Option<u64>) -> Result<NpyArray, String> {
        let mut magic = [0u8; 8];
        r.read_exact(&mut magic)
            .map_err(|_| "not a .npy file (too short)".to_string())?;
        if &magic[..6] != b"\x93NUMPY" {
            return Err("not a .npy file (bad magic; save with numpy.save)".into());
        }
        let header_len = match magic[6] {
            1 => {
                let mut b = [0u8; 2];
                r.read_exact(&mut b).map_err(|e| e.to_string())?;
                u16::from_le_bytes(b) as usize
            }
            2 | 3 => {
                let mut b = [0u8; 4];
                r.read_exact(&mut b).map_err(|e| e.to_string())?;
                u32::from_le_bytes(b) as usize
            }
            v => return Err(format!("unsupported .npy version {v}")),
        };
        if header_len > 1 << 20 {
            return Err("corrupt .npy header (too long)".into());
        }
        let mut header = vec![0u8; header_len];
        r.read_exact(&mut header)
            .map_err(|_| "truncated .npy header".to_string())?;
        let header = String::from_utf8_lossy(&header).to_string();
        let descr = header_value(&header, "descr").ok_or("the .npy header has no descr")?;
        let descr = descr.trim_matches(|c| c == '\'' || c == '"').to_string();
        let fortran = header_value(&header, "fortran_order").ok_or("the .npy header has no fortran_order")?;
        if fortran.trim() != "False" {
            return Err("array is in Fortran (column-major) order; save a C-order array, e.g. numpy.save(path, numpy.ascontiguousarray(a))".into());
        }
        let shape_text = header_value(&header, "shape").ok_or("the .npy header has no shape")?;
        let shape: Vec<usize> = shape_text
            .trim_matches(|c| c == '(' || c == ')')
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<usize>().map_err(|_| format!("bad shape {shape_text}")))
            .collect::<Result<_, _>>()?;
        let width = match descr.as_str() {
            "<f4" | "=f4" => 4,
            "<f8" | "=f8" => 8,
            ">f4" | ">f8" => return Err(format!("big-endian dtype {descr}; convert with a.astype('<f4')")),
            "|O" | "O" => {
                return Err("dtype object (a ragged array of rows with different lengths?); save a rectangular float32 array".into());
            }
            other => return Err(format!("dtype {other}; expected float32 (<f4) or float64 (<f8)")),
        };
        if shape.is_empty() || shape.len() > 2 {
            return Err(format!(
                "array has {} dimensions; expected [n, d] or [n]",
                shape.len()
            ));
        }
        let count = shape
            .iter()
            .try_fold(1usize, |a, &b| a.checked_mul(b))
            .ok_or("shape too large")?;
        let bytes = count.checked_mul(width).ok_or("shape too large")?;
        if let Some(len) = file_len {
            let have =
                len.saturating_sub((magic.len() + header_len + if magic[6] == 1 { 2 } else { 4 }) as u64);
            if have < bytes as u64 {
                return Err(format!(
                    "file is truncated: the header promises {bytes} data bytes, found {have}"
                ));
            }
        }
        let mut data = Vec::with_capacity(count);
        let mut buf = vec![0u8; (1 << 16) * width];
        let mut left = count;
        while left > 0 {
            let take = left.min(1 << 16);
            let chunk = &mut buf[..take * width];
            r.read_exact(chunk).map_err(|_| "file is truncated".to_string())?;
            if width == 4 {
                data.extend(
                    chunk
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                );
            } else {
                data.extend(
                    chunk
                        .chunks_exact(8)
                        .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32),
                );
            }
            left -= take;
        }
        Ok(NpyArray { shape, data })
    }

    /// As `[n, d]` embeddings.
    pub fn into_matrix(self, what: &str) -> Result<Array2<f32>, ComputeError> {
        if self.shape.len() != 2 {
            return Err(file_error(
                "",
                format!(
                    "{what} need a 2-D [n, d] array, this one has shape {:?}",
                    self.shape
                ),
            ));
        }
        Array2::from_shape_vec((self.shape[0], self.shape[1]), self.data)
            .map_err(|e| file_error("", e.to_string()))
    }

    /// As `[n]` scores (from `[n]` or `[n, 1]`).
    pub fn into_vector(self, what: &str) -> Result<Array1<f32>, ComputeError> {
        match self.shape.as_slice() {
            [_] | [_, 1] => Ok(Array1::from(self.data)),
            other => Err(file_error(
                "",
                format!("{what} need a 1-D [n] or [n, 1] array, this one has shape {other:?}"),
            )),
        }
    }
}

/// The text of `'key': value` in a .npy header dict.
fn header_value(header: &str, key: &str) -> Option<String> {
    let start = header.find(&format!("'{key}'"))? + key.len() + 2;
    let rest = header[start..].trim_start().strip_prefix(':')?.trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')')? + 1
    } else {
        rest.find([',', '}']).unwrap_or(rest.len())
    };
    Some(rest[..end].trim().to_string())
}
