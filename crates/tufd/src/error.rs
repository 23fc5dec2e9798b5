//! API errors: every failure a handler returns becomes a JSON body
//! `{"error": "...", "detail": ...}` with a fitting status code.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// An error answered to the client. Messages never carry secrets.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub error: String,
    pub detail: Value,
    /// For 416: the artifact's length, sent as `Content-Range: bytes */LENGTH`.
    pub content_range: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, error: impl Into<String>, detail: Value) -> Self {
        Self {
            status,
            error: error.into(),
            detail,
            content_range: None,
        }
    }

    pub fn bad_request(error: impl Into<String>, detail: impl Into<Value>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error, detail.into())
    }

    pub fn unauthorized(detail: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", json!(detail))
    }

    pub fn forbidden(detail: impl Into<Value>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail.into())
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not found", json!(what.into()))
    }

    pub fn conflict(error: impl Into<String>, detail: impl Into<Value>) -> Self {
        Self::new(StatusCode::CONFLICT, error, detail.into())
    }

    pub fn unprocessable(error: impl Into<String>, detail: impl Into<Value>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, error, detail.into())
    }

    pub fn internal(what: &str) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error",
            json!(what),
        )
    }

    pub fn factory_not_found(name: &str) -> Self {
        Self::not_found(format!("factory {name:?}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.error, "detail": self.detail});
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(length) = self.content_range {
            if let Ok(v) = axum::http::HeaderValue::from_str(&format!("bytes */{length}")) {
                resp.headers_mut()
                    .insert(axum::http::header::CONTENT_RANGE, v);
            }
        }
        resp
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        // The database error may name tables or values; log it, answer a generic message.
        tracing::error!(error = %e, "database error");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database error",
            json!("the store could not complete the request; retry later"),
        )
    }
}

impl From<tuf_core::Error> for ApiError {
    fn from(e: tuf_core::Error) -> Self {
        // tuf-core errors never contain key material (its own invariant).
        tracing::error!(error = %e, "metadata error");
        Self::internal(&e.to_string())
    }
}

impl From<crate::vault::VaultError> for ApiError {
    fn from(e: crate::vault::VaultError) -> Self {
        tracing::error!(error = %e, "server key error");
        Self::internal("a stored key could not be decrypted with this server key")
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// For start-up code (anyhow): "error (detail)".
impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.detail {
            Value::Null => write!(f, "{}", self.error),
            Value::String(s) => write!(f, "{} ({s})", self.error),
            other => write!(f, "{} ({other})", self.error),
        }
    }
}

impl std::error::Error for ApiError {}
