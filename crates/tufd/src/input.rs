//! Parsing request input once, at the edge: strict JSON bodies and the names that end up in
//! paths and metadata (Factory names, target names and versions, wave names).

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use futures_util::StreamExt as _;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::error::ApiError;

/// Largest JSON request body.
pub const JSON_LIMIT: usize = 1024 * 1024;

/// Largest JSON body of a request that carries signed production targets (a wave, its
/// renewal, a staged root update): the largest targets metadata a Factory may publish, and
/// room for two roots beside it.
pub const SIGNED_TARGETS_LIMIT: usize =
    tuf_ceremony::limits::MAX_TARGETS_BYTES as usize + 2 * 1024 * 1024;

/// Caps the operator sets (flags). Defaults are what devices and python-tuf accept.
#[derive(Clone, Copy, Debug)]
pub struct Caps {
    /// Largest artifact an upload may carry (`--max-artifact-bytes`).
    pub artifact_bytes: u64,
    /// Largest targets metadata of either flavour the server publishes
    /// (`--max-targets-bytes`, at most `tuf_ceremony::limits::MAX_TARGETS_BYTES`).
    pub targets_bytes: u64,
}

/// A JSON object body of at most `LIMIT` bytes ([`JSON_LIMIT`] unless a route that carries
/// signed metadata says otherwise), parsed by the handler with [`JsonBody::parse`] only after
/// the caller is authorised, so an unauthorised caller learns nothing from validation errors.
pub struct JsonBody<const LIMIT: usize = JSON_LIMIT>(Bytes);

impl<const LIMIT: usize> JsonBody<LIMIT> {
    /// Parses strictly (duplicate keys, floats and trailing bytes refused, as for metadata)
    /// into `T`, which must come from a JSON object: serde would otherwise fill a struct from
    /// an array by position (`["owner"]` as `{"scope": "owner"}`). Every failure is a 4xx
    /// JSON error.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        from_object(parse_json(&self.0)?)
    }

    /// Like [`JsonBody::parse`] for a request that carries signed metadata: `T` borrows from
    /// the body (`&RawValue` members hold an envelope's bytes, which `Signed::from_slice`
    /// then parses under the metadata rules), so no JSON tree of a 30 MB document is built.
    /// The object itself is still strict: an object, known members once each (serde refuses
    /// duplicate and, with `deny_unknown_fields`, unknown ones), nothing after it.
    pub fn parse_borrowed<'a, T: serde::Deserialize<'a>>(&'a self) -> Result<T, ApiError> {
        let first = self.0.iter().find(|b| !b.is_ascii_whitespace());
        if first != Some(&b'{') {
            // The tree parser says what is wrong (malformed, or not an object).
            return self.parse::<Value>().and_then(|_| {
                Err(ApiError::bad_request(
                    "invalid request",
                    "expected a JSON object",
                ))
            });
        }
        serde_json::from_slice(&self.0).map_err(|e| {
            let error = if e.is_syntax() || e.is_eof() {
                "malformed JSON"
            } else {
                "invalid request"
            };
            ApiError::bad_request(error, e.to_string())
        })
    }

    /// Like [`JsonBody::parse`], but an empty body is `T::default()`.
    pub fn parse_or_default<T: DeserializeOwned + Default>(&self) -> Result<T, ApiError> {
        if self.0.iter().all(u8::is_ascii_whitespace) {
            return Ok(T::default());
        }
        self.parse()
    }
}

impl<S: Send + Sync, const LIMIT: usize> FromRequest<S> for JsonBody<LIMIT> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(read_limited(req, LIMIT).await?))
    }
}

/// axum's `Path`, refusing with our JSON error (a path segment that is not UTF-8 once
/// percent-decoded, such as `%ff` or `%c0%ae`, is `400 invalid path`).
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Self(p.0))
            .map_err(|e| ApiError::new(e.status(), "invalid path", json!(e.body_text())))
    }
}

/// axum's `Query`, refusing with our JSON error (a repeated or malformed parameter is
/// `400 invalid query`).
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Self(q.0))
            .map_err(|e| ApiError::new(e.status(), "invalid query", json!(e.body_text())))
    }
}

/// Reads a whole body, refusing more than `limit` bytes with 413. The refusal is sent so
/// that the client reads it: see [`refuse_body`].
pub async fn read_limited(req: Request, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large",
            json!({"limit": limit, "reason": format!("the limit is {limit} bytes")}),
        )
    };
    let (parts, body) = req.into_parts();
    if declared_length(&parts.headers).is_some_and(|n| n > limit as u64) {
        return Err(refuse_body(&parts.headers, body, too_large()).await);
    }
    let mut stream = body.into_data_stream();
    let mut buf = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request("incomplete body", e.to_string()))?;
        if buf.len() + chunk.len() > limit {
            drain(stream).await;
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buf))
}

/// `err` for a body that will not be read: a client that waits for `100 Continue` is
/// answered at once and never sends it; another one is already sending, and the server reads
/// what it sends (discarding it, up to [`DRAIN_LIMIT`]) before answering, or the client
/// would meet a closed connection ("broken pipe") instead of the answer.
pub async fn refuse_body(headers: &HeaderMap, body: Body, err: ApiError) -> ApiError {
    let waits = headers
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let drainable = declared_length(headers).is_none_or(|n| n <= DRAIN_LIMIT);
    if !waits && drainable {
        drain(body.into_data_stream()).await;
    }
    err
}

/// Reads and discards what a client still sends, up to [`DRAIN_LIMIT`] bytes.
pub async fn drain(mut stream: axum::body::BodyDataStream) {
    let mut seen: u64 = 0;
    while let Some(Ok(chunk)) = stream.next().await {
        seen += chunk.len() as u64;
        if seen > DRAIN_LIMIT {
            return;
        }
    }
}

/// The body length a request declares (`Content-Length`), if any.
pub fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// How much of a refused body the server reads (and discards) so the client can read the
/// refusal. Past it the connection is closed.
const DRAIN_LIMIT: u64 = 64 * 1024 * 1024;

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value = tuf_core::canonical::parse(bytes)
        .map_err(|e| ApiError::bad_request("malformed JSON", e.to_string()))?;
    from_value(value)
}

pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    serde_json::from_value(value)
        .map_err(|e| ApiError::bad_request("invalid request", e.to_string()))
}

/// [`from_value`] for a request object: anything but a JSON object is refused.
pub fn from_object<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "invalid request",
            format!("expected a JSON object, got {}", kind(&value)),
        ));
    }
    from_value(value)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A Factory name: `^[a-z0-9][a-z0-9-]{0,62}$`.
pub fn check_factory_name(name: &str) -> Result<(), ApiError> {
    let b = name.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 63
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid factory name",
            "a factory name matches ^[a-z0-9][a-z0-9-]{0,62}$",
        ))
    }
}

/// A label that becomes part of a TUF target path or a URL: 1 to `max` characters of
/// `[A-Za-z0-9._+~-]`, starting with a letter or digit and without `..`. That excludes `/`,
/// `\`, NUL, spaces and any path trick by construction.
pub fn check_label(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    let b = value.as_bytes();
    let reason = if b.is_empty() {
        Some("must not be empty".to_owned())
    } else if b.len() > max {
        Some(format!("is longer than {max} characters"))
    } else if !b[0].is_ascii_alphanumeric() {
        Some("must start with a letter or digit".to_owned())
    } else if value.contains("..") {
        Some("must not contain \"..\"".to_owned())
    } else {
        value
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '~' | '-')))
            .map(|c| format!("contains {c:?}; allowed are letters, digits and . _ + ~ -"))
    };
    match reason {
        None => Ok(()),
        Some(r) => Err(ApiError::bad_request(
            format!("invalid {field}"),
            json!({"field": field, "reason": r}),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `(error, detail.reason)` of a refused label.
    fn refusal(r: Result<(), ApiError>) -> (String, String) {
        let e = r.unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST);
        (
            e.error,
            e.detail["reason"].as_str().unwrap_or("").to_owned(),
        )
    }

    #[test]
    fn labels() {
        for ok in ["app", "1.0.2", "a_b+c~d-e", "X"] {
            check_label("name", ok, 64).unwrap();
        }
        let start = "must start with a letter or digit";
        let long = "a".repeat(65);
        for (bad, why) in [
            ("", "must not be empty"),
            ("../x", start),
            (
                "a/b",
                "contains '/'; allowed are letters, digits and . _ + ~ -",
            ),
            ("/abs", start),
            (".hidden", start),
            ("a..b", "must not contain \"..\""),
            (
                "a\0b",
                "contains '\\0'; allowed are letters, digits and . _ + ~ -",
            ),
            (
                "a b",
                "contains ' '; allowed are letters, digits and . _ + ~ -",
            ),
            ("é", start),
            ("-x", start),
            (
                "a\\b",
                "contains '\\\\'; allowed are letters, digits and . _ + ~ -",
            ),
            (&long, "is longer than 64 characters"),
        ] {
            let got = refusal(check_label("name", bad, 64));
            assert_eq!(got, ("invalid name".to_owned(), why.to_owned()), "{bad:?}");
        }
    }

    #[test]
    fn factory_names() {
        check_factory_name("acme-1").unwrap();
        for bad in ["", "-a", "Acme", "a_b", &"a".repeat(64)] {
            let e = check_factory_name(bad).unwrap_err();
            assert_eq!(e.error, "invalid factory name", "{bad:?}");
            assert_eq!(
                e.detail, "a factory name matches ^[a-z0-9][a-z0-9-]{0,62}$",
                "{bad:?}"
            );
        }
    }
}
