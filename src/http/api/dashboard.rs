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

/// Why a Grafana panel URL cannot be embedded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GrafanaUrlError {
    #[error("not a URL: {0}")]
    Parse(String),
    #[error("the Grafana URL must be http:// or https://, not {0}://")]
    Scheme(String),
    #[error("the Grafana URL must not carry a user name or password (the page shows it to every visitor)")]
    Credentials,
    #[error("the Grafana URL has no host")]
    NoHost,
}

/// The origin (`scheme://host[:port]`, as browsers compare it: lower-case host, default port left out) of
/// an absolute http(s) Grafana panel URL — the one origin the dashboard's policy lets into a frame.
pub fn grafana_origin(url: &str) -> Result<String, GrafanaUrlError> {
    let parsed = url::Url::parse(url).map_err(|e| GrafanaUrlError::Parse(e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(GrafanaUrlError::Scheme(parsed.scheme().to_string()));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(GrafanaUrlError::Credentials);
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(GrafanaUrlError::NoHost);
    }
    Ok(parsed.origin().ascii_serialization())
}

/// Security headers of every dashboard page: nothing loads from elsewhere, except a configured Grafana
/// panel in a frame (exactly its origin).
fn csp(grafana: Option<&str>) -> String {
    let frame = grafana
        .and_then(|url| grafana_origin(url).ok())
        .map(|o| format!("frame-src {o}; "))
        .unwrap_or_else(|| "frame-src 'none'; ".to_string());
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; {frame}\
         frame-ancestors 'self'; base-uri 'none'; form-action 'self'"
    )
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

    fn frame_sources(policy: &str) -> Vec<String> {
        policy
            .split(';')
            .map(str::trim)
            .find_map(|d| d.strip_prefix("frame-src "))
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    }

    #[test]
    fn the_policy_allows_exactly_the_configured_grafana_origin_in_frames() {
        let policy = csp(Some("https://grafana.example:3000/d-solo/abc?panelId=2"));
        assert_eq!(frame_sources(&policy), ["https://grafana.example:3000"]);
        assert_eq!(frame_sources(&csp(None)), ["'none'"]);
        // Default ports and upper case are normalised as browsers compare origins.
        assert_eq!(
            frame_sources(&csp(Some("HTTPS://Grafana.Example:443/d-solo/x"))),
            ["https://grafana.example"]
        );
    }

    #[test]
    fn grafana_urls_that_cannot_be_embedded_are_refused_by_name() {
        assert_eq!(
            grafana_origin("javascript:alert(1)"),
            Err(GrafanaUrlError::Scheme("javascript".into()))
        );
        assert_eq!(
            grafana_origin("https://admin:secret@grafana.example/d-solo/x"),
            Err(GrafanaUrlError::Credentials)
        );
        assert!(matches!(
            grafana_origin("/d-solo/x"),
            Err(GrafanaUrlError::Parse(_))
        ));
        // A URL that is refused never widens the policy.
        assert_eq!(frame_sources(&csp(Some("javascript:alert(1)"))), ["'none'"]);
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
