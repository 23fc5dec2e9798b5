//! The web console under `/ui/`: read-only pages over a Factory's keys, roots, expiry, waves
//! and audit log, rendered on the server (maud templates compiled into the binary; no
//! script at all).
//!
//! Who may see what is decided exactly as for the API: a session acts with the token it was
//! opened with ([`session`]), and every page calls [`crate::auth::Caller::require`] with the
//! scopes of the API endpoint that reads the same data. Everything a user wrote reaches the
//! page through maud's escaping; the only unescaped text is the templates themselves.

mod audit;
mod chain;
mod expiry;
mod factories;
mod keys;
mod layout;
mod pages;
mod session;
mod store;
mod waves;

use axum::extract::{DefaultBodyLimit, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::auth::Scope;
use crate::error::ApiError;
use crate::Shared;

/// The console's routes, with its security headers on every answer.
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(pages::home))
        .route(
            "/ui/sign-in",
            get(session::sign_in_form).post(session::sign_in),
        )
        .route("/ui/sign-out", post(session::sign_out))
        .route("/ui/console.css", get(stylesheet))
        .route("/ui/factories", get(pages::factories))
        .route("/ui/f/{f}/", get(pages::overview))
        .route("/ui/f/{f}/roots", get(pages::chain))
        .route("/ui/f/{f}/expiry", get(pages::expiry))
        .route("/ui/f/{f}/waves", get(pages::waves))
        .route("/ui/f/{f}/audit", get(pages::audit))
        .route("/ui/{*rest}", get(not_found).post(not_found))
        .layer(DefaultBodyLimit::max(FORM_LIMIT))
        .layer(axum::middleware::map_response(security_headers))
}

/// Largest form body (sign-in, sign-out).
const FORM_LIMIT: usize = 8 * 1024;

/// A page that failed: an HTML answer with the status the API would give.
#[derive(Debug)]
pub enum UiError {
    /// No (valid) session: the browser is sent to the sign-in form.
    SignIn,
    Api(ApiError),
}

impl From<ApiError> for UiError {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}

impl From<sqlx::Error> for UiError {
    fn from(e: sqlx::Error) -> Self {
        Self::Api(e.into())
    }
}

impl From<tuf_core::Error> for UiError {
    fn from(e: tuf_core::Error) -> Self {
        Self::Api(e.into())
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        match self {
            UiError::SignIn => Redirect::to("/ui/sign-in").into_response(),
            UiError::Api(e) => {
                let detail = match &e.detail {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Null => String::new(),
                    other => other.to_string(),
                };
                (e.status, layout::error_page(e.status, &e.error, &detail)).into_response()
            }
        }
    }
}

pub type UiResult<T> = Result<T, UiError>;

/// Who reads a Factory's metadata through the API (`GET .../user_repo/root.json`), and so
/// its roots, root chain and expiry here.
pub const METADATA_READERS: &[Scope] = &[Scope::Owner, Scope::Ci, Scope::Read];
/// Who reads waves, the audit log and root-update transactions through the API.
pub const OWNER_ONLY: &[Scope] = &[Scope::Owner];

/// A console path, refused as an HTML page with the API's status (a segment that is not
/// UTF-8, such as `%ff`, is `400`).
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, UiError> {
        let crate::input::Path(p) = crate::input::Path::from_request_parts(parts, state).await?;
        Ok(Self(p))
    }
}

async fn not_found() -> UiError {
    UiError::Api(ApiError::not_found("no such console page"))
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("console.css"),
    )
        .into_response()
}

/// The headers every console answer carries: a CSP that allows no script, no inline style,
/// no framing and forms only to this origin; no caching of pages (they show a session's
/// view); a referrer policy that keeps the `Origin` header on same-origin form posts.
async fn security_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        h.insert(name, HeaderValue::from_static(value));
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if resp.status() == StatusCode::OK && !resp.headers().contains_key(header::CONTENT_TYPE) {
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
    }
    resp
}

pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const SECURITY_HEADERS: [(HeaderName, &str); 6] = [
    (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, "same-origin"),
    (
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    ),
    (
        HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    ),
];
