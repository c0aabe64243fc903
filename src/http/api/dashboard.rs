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

/// Why a URL cannot be let into the dashboard's policy (a Grafana panel or an image origin).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OriginUrlError {
    #[error("not a URL: {0}")]
    Parse(String),
    #[error("the URL must be http:// or https://, not {0}://")]
    Scheme(String),
    #[error("the URL must not carry a user name or password (the page shows it to every visitor)")]
    Credentials,
    #[error("the URL has no host")]
    NoHost,
}

/// The origin (`scheme://host[:port]`, as browsers compare it: lower-case host, default port left out) of
/// an absolute http(s) URL without credentials — what the dashboard's policy names to let it in.
pub fn web_origin(url: &str) -> Result<String, OriginUrlError> {
    let parsed = url::Url::parse(url).map_err(|e| OriginUrlError::Parse(e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(OriginUrlError::Scheme(parsed.scheme().to_string()));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(OriginUrlError::Credentials);
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(OriginUrlError::NoHost);
    }
    Ok(parsed.origin().ascii_serialization())
}

/// The configured image origins as browsers compare them; one that is not an http(s) origin is left out.
/// The page's policy and the origins the page is told about are both this list, so they always agree.
fn allowed_image_origins(configured: &[String]) -> Vec<String> {
    configured.iter().filter_map(|url| web_origin(url).ok()).collect()
}

/// Security headers of every dashboard page: nothing loads from elsewhere, except a configured Grafana
/// panel in a frame (exactly its origin) and images of example points from the configured image origins.
fn csp(grafana: Option<&str>, image_origins: &[String]) -> String {
    let frame = grafana
        .and_then(|url| web_origin(url).ok())
        .map(|o| format!("frame-src {o}; "))
        .unwrap_or_else(|| "frame-src 'none'; ".to_string());
    let images: String = allowed_image_origins(image_origins)
        .iter()
        .map(|o| format!(" {o}"))
        .collect();
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:{images}; connect-src 'self'; {frame}\
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
        Some(csp(
            state.settings.grafana_url.as_deref(),
            &state.settings.image_origins,
        )),
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
    /// Origins whose images the page may show: a display field of an example point that is a URL on one
    /// of them is shown as a thumbnail too.
    pub image_origins: Vec<String>,
}

/// `GET /api/v1/config`.
pub async fn config(State(state): State<ApiState>) -> Json<DashboardConfig> {
    Json(DashboardConfig {
        auth: state.auth.mode() == AuthMode::Enabled,
        grafana_url: state.settings.grafana_url.clone(),
        image_origins: allowed_image_origins(&state.settings.image_origins),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(policy: &str, directive: &str) -> Vec<String> {
        policy
            .split(';')
            .map(str::trim)
            .find_map(|d| d.strip_prefix(directive)?.strip_prefix(' '))
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    }

    fn frame_sources(policy: &str) -> Vec<String> {
        sources(policy, "frame-src")
    }

    #[test]
    fn the_policy_allows_images_from_exactly_the_configured_origins() {
        assert_eq!(sources(&csp(None, &[]), "img-src"), ["'self'", "data:"]);
        let origins = [
            "https://Frames.Example.com:443/cam-7/".to_string(),
            "http://10.0.0.5:8080".to_string(),
            "javascript:alert(1)".to_string(),
        ];
        assert_eq!(
            sources(&csp(None, &origins), "img-src"),
            [
                "'self'",
                "data:",
                "https://frames.example.com",
                "http://10.0.0.5:8080"
            ]
        );
        // Images never widen the frame policy, nor the other way round.
        assert_eq!(frame_sources(&csp(None, &origins)), ["'none'"]);
        assert_eq!(
            sources(&csp(Some("https://grafana.example/d-solo/x"), &[]), "img-src"),
            ["'self'", "data:"]
        );
    }

    #[test]
    fn the_policy_allows_exactly_the_configured_grafana_origin_in_frames() {
        let policy = csp(Some("https://grafana.example:3000/d-solo/abc?panelId=2"), &[]);
        assert_eq!(frame_sources(&policy), ["https://grafana.example:3000"]);
        assert_eq!(frame_sources(&csp(None, &[])), ["'none'"]);
        // Default ports and upper case are normalised as browsers compare origins.
        assert_eq!(
            frame_sources(&csp(Some("HTTPS://Grafana.Example:443/d-solo/x"), &[])),
            ["https://grafana.example"]
        );
    }

    #[test]
    fn urls_that_cannot_be_let_in_are_refused_by_name() {
        assert_eq!(
            web_origin("javascript:alert(1)"),
            Err(OriginUrlError::Scheme("javascript".into()))
        );
        assert_eq!(
            web_origin("https://admin:secret@grafana.example/d-solo/x"),
            Err(OriginUrlError::Credentials)
        );
        assert!(matches!(web_origin("/d-solo/x"), Err(OriginUrlError::Parse(_))));
        // A URL that is refused never widens the policy.
        assert_eq!(frame_sources(&csp(Some("javascript:alert(1)"), &[])), ["'none'"]);
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
