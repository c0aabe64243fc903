//! `driftwatch.dev/v1alpha1`: the DriftMonitor and DriftEvent kinds and the types they share.

mod common;
mod drift_event;
mod drift_monitor;
mod explanation;
mod threshold;

pub use common::*;
pub use drift_event::*;
pub use drift_monitor::*;
pub use explanation::*;
pub use threshold::Threshold;
