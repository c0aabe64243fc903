//! JSON errors of the API: `{"error": {"reason", "message"}}` with the matching HTTP status. No I/O.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Serialize;

/// An error answered to an API client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    /// Machine-readable, e.g. `NotFound`, `Conflict`, `Forbidden`.
    pub reason: &'static str,
    /// For a person.
    pub message: String,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    reason: &'a str,
    message: &'a str,
}

impl ApiError {
    pub fn new(status: StatusCode, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            reason,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "Unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "Forbidden", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NotFound", message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "Conflict", message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "Unavailable", message)
    }

    pub fn timeout() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Timeout",
            "the request took too long; try again",
        )
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", message)
    }

    /// An API server error while acting for a client: its status carried over where it means the same.
    pub fn from_kube(err: &kube::Error, what: &str) -> Self {
        match err {
            kube::Error::Api(status) => match status.code {
                401 => Self::unauthorized(format!("{what}: {}", status.message)),
                403 => Self::forbidden(format!("{what}: {}", status.message)),
                404 => Self::not_found(format!("{what}: {}", status.message)),
                // A concurrent decision (resourceVersion precondition) or the CEL rule that keeps a
                // decision from changing.
                409 | 422 => Self::conflict(format!("{what}: {}", status.message)),
                _ => Self::unavailable(format!("{what}: {}", status.message)),
            },
            other => Self::unavailable(format!("{what}: the API server cannot be reached: {other}")),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: Inner {
                reason: self.reason,
                message: &self.message,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.reason, self.message)
    }
}

type RequestBody = Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>;

fn read_body(body: RequestBody) -> Result<axum::body::Bytes, ApiError> {
    body.map_err(|rejection| {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(status, "PayloadTooLarge", "the request body is too large")
        } else {
            ApiError::bad_request(format!("cannot read the request body: {rejection}"))
        }
    })
}

/// Reads a JSON body, answering 400 (or 413) with a reason instead of axum's plain-text rejections.
/// Fields the type does not know are ignored (for documents defined elsewhere, e.g. Alertmanager's).
pub fn parse_json<T: serde::de::DeserializeOwned>(body: RequestBody) -> Result<T, ApiError> {
    let bytes = read_body(body)?;
    serde_json::from_slice(&bytes).map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

/// A request body of this API: the top-level fields it accepts.
pub trait KnownFields {
    const FIELDS: &'static [&'static str];
}

/// The top-level fields of a JSON object that are not in `known`, sorted.
pub fn unknown_fields<'a>(body: &'a serde_json::Value, known: &[&str]) -> Vec<&'a str> {
    body.as_object()
        .map(|object| {
            object
                .keys()
                .map(String::as_str)
                .filter(|k| !known.contains(k))
                .collect()
        })
        .unwrap_or_default()
}

/// [`parse_json`] for this API's own bodies: a field it does not know (a typo such as `reasn` would
/// otherwise record a decision without its reason) is refused with a 400 that names every such field.
pub fn parse_json_strict<T: serde::de::DeserializeOwned + KnownFields>(
    body: RequestBody,
) -> Result<T, ApiError> {
    let bytes = read_body(body)?;
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
    let unknown = unknown_fields(&value, T::FIELDS);
    if !unknown.is_empty() {
        let quote = |names: &[&str]| {
            names
                .iter()
                .map(|n| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(ApiError::bad_request(format!(
            "unknown field{} {} in the request body; it takes {}",
            if unknown.len() == 1 { "" } else { "s" },
            quote(&unknown),
            quote(T::FIELDS)
        )));
    }
    serde_json::from_value(value).map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unknown_field_is_found() {
        let body =
            serde_json::json!({"event_id": "ml/e", "reasn": "typo", "action": "IGNORE", "force": true});
        assert_eq!(
            unknown_fields(&body, &["event_id", "action", "reason"]),
            ["force", "reasn"]
        );
        assert!(unknown_fields(&serde_json::json!([1, 2]), &["a"]).is_empty());
    }
}
