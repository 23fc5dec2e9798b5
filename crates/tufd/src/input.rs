//! Parsing request input once, at the edge: strict JSON bodies and the names that end up in
//! paths and metadata (Factory names, target names and versions, wave names).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::error::ApiError;

/// Largest JSON request body.
pub const JSON_LIMIT: usize = 1024 * 1024;

/// A JSON body of at most [`JSON_LIMIT`] bytes, parsed by the handler with
/// [`JsonBody::parse`] only after the caller is authorised, so an unauthorised caller learns
/// nothing from validation errors.
pub struct JsonBody(Bytes);

impl JsonBody {
    /// Parses strictly (duplicate keys, floats and trailing bytes refused, as for metadata)
    /// into `T`. Every failure is a 4xx JSON error.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        parse_json(&self.0)
    }

    /// Like [`JsonBody::parse`], but an empty body is `T::default()`.
    pub fn parse_or_default<T: DeserializeOwned + Default>(&self) -> Result<T, ApiError> {
        if self.0.iter().all(u8::is_ascii_whitespace) {
            return Ok(T::default());
        }
        parse_json(&self.0)
    }
}

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(read_limited(req, JSON_LIMIT).await?))
    }
}

/// Reads a whole body, refusing more than `limit` bytes with 413.
pub async fn read_limited(req: Request, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large",
                json!(format!("the limit is {limit} bytes")),
            )
        })
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value = tuf_core::canonical::parse(bytes)
        .map_err(|e| ApiError::bad_request("malformed JSON", e.to_string()))?;
    from_value(value)
}

pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    serde_json::from_value(value)
        .map_err(|e| ApiError::bad_request("invalid request", e.to_string()))
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
