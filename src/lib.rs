//! driftwatch: a Kubernetes operator that watches embedding vectors in Qdrant for drift.
#![forbid(unsafe_code)]

pub mod api;
pub mod compute;
pub mod controller;
pub mod crd;
pub mod drift;
pub mod error;
pub mod http;
pub mod job;
pub mod k8s;
pub mod metrics;
pub mod npy;
pub mod plugin;
pub mod source;
pub mod telemetry;
