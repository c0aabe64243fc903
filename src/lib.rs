//! driftwatch: a Kubernetes operator that watches embedding vectors in Qdrant for drift.
#![forbid(unsafe_code)]

pub mod api;
pub mod crd;
pub mod job;
pub mod plugin;
pub mod source;
pub mod telemetry;
