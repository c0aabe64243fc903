//! The controller's HTTP server. The governance surface (REST API, Alertmanager receiver, dashboard) lives
//! in [`api`].

pub mod api;
