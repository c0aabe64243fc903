//! driftwatch: a Kubernetes operator that watches embedding vectors in Qdrant for drift.
#![forbid(unsafe_code)]

pub mod api;
pub mod compute;
pub mod crd;
pub mod drift;
pub mod job;
pub mod telemetry;
