//! `POST /api/v1/alertmanager`: placeholder until the controller's event rules are merged.

use axum::{
    body::Bytes,
    extract::{State, rejection::BytesRejection},
    http::HeaderMap,
};

use super::{ApiError, ApiState};

pub async fn receive(
    State(_state): State<ApiState>,
    _headers: HeaderMap,
    _body: Result<Bytes, BytesRejection>,
) -> Result<(), ApiError> {
    Err(ApiError::unavailable("not yet"))
}
