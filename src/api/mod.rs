//! The custom resources of driftwatch (no I/O): DriftMonitor and DriftEvent, group `driftwatch.dev`.

pub mod duration;
pub mod v1alpha1;

pub use duration::{DurationError, parse_duration};

/// The API group of every driftwatch resource.
pub const GROUP: &str = "driftwatch.dev";
