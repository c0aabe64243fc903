//! `GET /openapi.json`: the OpenAPI 3 description of the governance API (kept next to the handlers and
//! checked against the router by tests). No I/O.

use axum::{http::header, response::IntoResponse};

/// The document.
pub const OPENAPI_JSON: &str = include_str!("openapi.json");

/// `GET /openapi.json`.
pub async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_describes_every_api_route() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI_JSON).unwrap();
        assert_eq!(doc["openapi"], "3.0.3");
        for path in [
            "/drift-events",
            "/retrain",
            "/api/v1/drift-events",
            "/api/v1/retrain",
            "/api/v1/drift-events/{namespace}/{name}",
            "/api/v1/monitors",
            "/api/v1/alertmanager",
        ] {
            assert!(doc["paths"].get(path).is_some(), "{path} missing");
        }
        let statuses = &doc["components"]["schemas"]["DriftEvent"]["properties"]["status"]["enum"];
        assert_eq!(statuses.as_array().map(Vec::len), Some(5));
    }
}
