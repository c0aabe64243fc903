//! The governance surface served by the controller: the original REST API (`/drift-events`, `/retrain`,
//! also under `/api/v1/`), `/api/v1/monitors`, the Alertmanager receiver, `/openapi.json` and the dashboard
//! at `/`. Reads come from reflector stores, writes go through the API server as the authenticated user.
//! Does I/O when served.

pub mod alertmanager;
pub mod auth;
pub mod dashboard;
pub mod error;
pub mod events;
pub mod monitors;
pub mod openapi;
pub mod retrain;
pub mod stores;

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    extract::{DefaultBodyLimit, Request},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use kube::Client;

pub use self::{
    auth::{AuthMode, Authenticator},
    error::ApiError,
    stores::ApiStores,
};

/// Largest request body the API accepts (JSON documents are small).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Largest Alertmanager notification accepted (many grouped alerts).
pub const MAX_ALERTMANAGER_BODY_BYTES: usize = 1024 * 1024;
/// Longest a request may take before it is answered with 503.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Settings of the governance surface.
#[derive(Clone, Debug, Default)]
pub struct ApiSettings {
    /// A Grafana URL (dashboard or panel, e.g. `https://grafana/d-solo/driftwatch/...`): the dashboard embeds
    /// it per monitor instead of drawing the history chart itself.
    pub grafana_url: Option<String>,
    /// Origins (`scheme://host[:port]`) the dashboard may load images from: display fields of example
    /// points on them are shown as thumbnails. Empty: links only, and the page loads no outside image.
    pub image_origins: Vec<String>,
}

/// How the controller serves the governance surface.
#[derive(Clone)]
pub struct ApiConfig {
    pub auth: AuthMode,
    /// With a configuration, decisions are written as the caller (impersonation, built from it); without,
    /// the controller writes them itself after authorizing the caller (trusted writer).
    pub client_config: Option<kube::Config>,
    pub settings: ApiSettings,
}

/// Starts the API's watches and returns its routes; the watches stop when the tasks are dropped.
pub fn start(client: Client, namespaces: &[String], config: ApiConfig) -> (Router, stores::StoreTasks) {
    let (stores, tasks) = ApiStores::start(&client, namespaces);
    let state = ApiState {
        auth: Arc::new(Authenticator::new(
            config.auth,
            client.clone(),
            config.client_config,
        )),
        client,
        stores,
        settings: Arc::new(config.settings),
    };
    (router(state), tasks)
}

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// The controller's own client: TokenReview, SubjectAccessReview, fresh reads.
    pub client: Client,
    /// Monitors and events, as watched.
    pub stores: ApiStores,
    /// Authentication and authorization.
    pub auth: Arc<Authenticator>,
    pub settings: Arc<ApiSettings>,
}

/// The governance routes, ready to merge into the controller's router.
pub fn router(state: ApiState) -> Router {
    let api = Router::new()
        .route("/drift-events", get(events::list))
        .route("/drift-events/{namespace}/{name}", get(events::detail))
        .route("/retrain", post(retrain::retrain))
        .route("/monitors", get(monitors::list));
    let alertmanager = Router::new()
        .route("/api/v1/alertmanager", post(alertmanager::receive))
        .layer(DefaultBodyLimit::max(MAX_ALERTMANAGER_BODY_BYTES));
    Router::new()
        .route("/drift-events", get(events::list))
        .route("/retrain", post(retrain::retrain))
        .nest("/api/v1", api)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .merge(alertmanager)
        .route("/api/v1/config", get(dashboard::config))
        .route("/openapi.json", get(openapi::document))
        .route("/", get(dashboard::index))
        .route("/assets/{file}", get(dashboard::asset))
        .layer(middleware::from_fn(timeout))
        .with_state(state)
}

async fn timeout(request: Request, next: Next) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::timeout().into_response(),
    }
}
