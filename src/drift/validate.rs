//! Input checks run once per window before any detector: shape, size, finiteness. No I/O.

use ndarray::{ArrayView1, ArrayView2, Axis};
use rayon::prelude::*;

use super::DriftError;

/// Which window a problem is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    Reference,
    Comparison,
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Window::Reference => "reference",
            Window::Comparison => "comparison",
        })
    }
}

/// Checks two embedding windows: non-empty, at least `min` rows, same non-zero width, all values finite.
pub fn embeddings(
    reference: ArrayView2<f32>,
    comparison: ArrayView2<f32>,
    min: usize,
) -> Result<(), DriftError> {
    for (window, x) in [(Window::Reference, reference), (Window::Comparison, comparison)] {
        if x.nrows() == 0 || x.ncols() == 0 {
            return Err(DriftError::EmptyWindow { window });
        }
    }
    if reference.ncols() != comparison.ncols() {
        return Err(DriftError::DimensionMismatch {
            reference: reference.ncols(),
            comparison: comparison.ncols(),
        });
    }
    for (window, x) in [(Window::Reference, reference), (Window::Comparison, comparison)] {
        if let Some(index) = first_non_finite_row(x) {
            return Err(DriftError::InvalidVector { window, index });
        }
    }
    for (window, x) in [(Window::Reference, reference), (Window::Comparison, comparison)] {
        if x.nrows() < min {
            return Err(DriftError::InsufficientData {
                window,
                n: x.nrows(),
                min,
            });
        }
    }
    Ok(())
}

/// The index of the first row holding NaN or ±inf.
pub fn first_non_finite_row(x: ArrayView2<f32>) -> Option<usize> {
    x.axis_iter(Axis(0))
        .into_par_iter()
        .enumerate()
        .filter(|(_, row)| row.iter().any(|v| !v.is_finite()))
        .map(|(i, _)| i)
        .min()
}

/// Checks two score windows and returns them as f64 vectors.
pub fn scores(
    reference: Option<ArrayView1<f32>>,
    comparison: Option<ArrayView1<f32>>,
    min: usize,
) -> Result<(Vec<f64>, Vec<f64>), DriftError> {
    let reference = reference.ok_or(DriftError::MissingScores {
        window: Window::Reference,
    })?;
    let comparison = comparison.ok_or(DriftError::MissingScores {
        window: Window::Comparison,
    })?;
    let mut out = Vec::with_capacity(2);
    for (window, s) in [(Window::Reference, reference), (Window::Comparison, comparison)] {
        if s.is_empty() {
            return Err(DriftError::EmptyWindow { window });
        }
        if let Some(index) = s.iter().position(|v| !v.is_finite()) {
            return Err(DriftError::InvalidVector { window, index });
        }
        if s.len() < min {
            return Err(DriftError::InsufficientData {
                window,
                n: s.len(),
                min,
            });
        }
        out.push(s.iter().map(|&v| f64::from(v)).collect::<Vec<f64>>());
    }
    let comparison = out.pop().unwrap_or_default();
    let reference = out.pop().unwrap_or_default();
    Ok((reference, comparison))
}

/// Checks that a sample's scores, when present, match its rows.
pub fn score_count(window: Window, rows: usize, scores: Option<ArrayView1<f32>>) -> Result<(), DriftError> {
    match scores {
        Some(s) if s.len() != rows && rows > 0 => Err(DriftError::ScoreCountMismatch {
            window,
            rows,
            scores: s.len(),
        }),
        _ => Ok(()),
    }
}
