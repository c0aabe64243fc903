//! Errors of the drift engine: unusable input or configuration, each with a stable kind. No I/O.

use super::validate::Window;

/// Why the engine could not give a verdict.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum DriftError {
    #[error("the {window} window is empty")]
    EmptyWindow { window: Window },
    #[error("the {window} window has {n} points, fewer than the {min} needed for a verdict")]
    InsufficientData { window: Window, n: usize, min: usize },
    #[error("the windows have different dimensions: reference {reference}, comparison {comparison}")]
    DimensionMismatch { reference: usize, comparison: usize },
    #[error("the {window} window has {rows} vectors but {scores} confidence scores")]
    ScoreCountMismatch {
        window: Window,
        rows: usize,
        scores: usize,
    },
    #[error("the {window} window has a non-finite value (NaN or infinity) in row {index}")]
    InvalidVector { window: Window, index: usize },
    #[error("the {window} window has no confidence scores, but a confidence_scores detector is configured")]
    MissingScores { window: Window },
    #[error("invalid detector configuration: {reason}")]
    InvalidConfig { reason: String },
}

impl DriftError {
    /// Machine-readable kind, used in the Job's error document and metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            DriftError::EmptyWindow { .. } => "EmptyWindow",
            DriftError::InsufficientData { .. } => "InsufficientData",
            DriftError::DimensionMismatch { .. } | DriftError::ScoreCountMismatch { .. } => {
                "DimensionMismatch"
            }
            DriftError::InvalidVector { .. } => "InvalidVector",
            DriftError::MissingScores { .. } => "MissingScores",
            DriftError::InvalidConfig { .. } => "InvalidSpec",
        }
    }
}
