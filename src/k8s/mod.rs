//! Kubernetes plumbing shared by the controllers: the one place that writes (server-side apply).

pub mod apply;
