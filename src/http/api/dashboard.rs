//! The governance dashboard: static HTML/CSS/JS embedded in the binary (no CDN, works offline), and
//! `/api/v1/config` telling it whether auth is on and where Grafana is. No I/O beyond answering.

use axum::{
    Json,
    extract::{Path, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;

use super::{ApiError, ApiState, auth::AuthMode};

const INDEX_HTML: &str = include_str!("../../../dashboard/index.html");
const APP_JS: &str = include_str!("../../../dashboard/app.js");
const STYLE_CSS: &str = include_str!("../../../dashboard/style.css");
const FAVICON_SVG: &str = include_str!("../../../dashboard/favicon.svg");

/// Security headers of every dashboard page: nothing loads from elsewhere, except a configured Grafana
/// in a frame.
fn csp(grafana: Option<&str>) -> String {
    let frame = grafana
        .and_then(origin)
        .map(|o| format!("frame-src {o}; "))
        .unwrap_or_else(|| "frame-src 'none'; ".to_string());
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; {frame}\
         frame-ancestors 'self'; base-uri 'none'; form-action 'self'"
    )
}

/// `scheme://host[:port]` of a URL.
fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split(['/', '?', '#']).next()?;
    (!host.is_empty() && (scheme == "http" || scheme == "https")).then(|| format!("{scheme}://{host}"))
}

fn asset_response(content_type: &'static str, body: &'static str, csp: Option<String>) -> Response {
    let mut response = (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response();
    if let Some(csp) = csp.and_then(|c| c.parse().ok()) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    response
}

/// `GET /`.
pub async fn index(State(state): State<ApiState>) -> Response {
    asset_response(
        "text/html; charset=utf-8",
        INDEX_HTML,
        Some(csp(state.settings.grafana_url.as_deref())),
    )
}

/// `GET /assets/{file}`.
pub async fn asset(Path(file): Path<String>) -> Response {
    match file.as_str() {
        "app.js" => asset_response("text/javascript; charset=utf-8", APP_JS, None),
        "style.css" => asset_response("text/css; charset=utf-8", STYLE_CSS, None),
        "favicon.svg" => asset_response("image/svg+xml", FAVICON_SVG, None),
        _ => ApiError::new(StatusCode::NOT_FOUND, "NotFound", format!("no asset {file:?}")).into_response(),
    }
}

/// What the dashboard needs to know about the server.
#[derive(Serialize)]
pub struct DashboardConfig {
    /// Whether API calls need a bearer token.
    pub auth: bool,
    /// Grafana panel URL to embed per monitor (`var-namespace`/`var-monitor` are appended).
    pub grafana_url: Option<String>,
}

/// `GET /api/v1/config`.
pub async fn config(State(state): State<ApiState>) -> Json<DashboardConfig> {
    Json(DashboardConfig {
        auth: state.auth.mode() == AuthMode::Enabled,
        grafana_url: state.settings.grafana_url.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_allows_only_the_configured_grafana_in_frames() {
        let policy = csp(Some("https://grafana.example:3000/d-solo/abc?panelId=2"));
        assert!(policy.contains("frame-src https://grafana.example:3000;"));
        assert!(csp(None).contains("frame-src 'none'"));
        assert_eq!(origin("javascript:alert(1)"), None);
    }

    #[test]
    fn assets_reference_nothing_outside_the_binary() {
        for text in [INDEX_HTML, APP_JS, STYLE_CSS] {
            assert!(
                !text.contains("https://"),
                "external reference in an embedded asset"
            );
            assert!(
                !text.contains("http://"),
                "external reference in an embedded asset"
            );
        }
    }
}
