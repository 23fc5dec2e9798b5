//! The access log and the request counters: one layer around every route and the fallback,
//! so each request is counted and logged exactly once.
//!
//! An event (target `tufd::access`, level info) is written when the response body has been
//! sent or dropped: method, route template (`/ota/factories/{f}/credentials/{once}`, never the
//! path itself, so no one-time URL and no query string is logged), status, body bytes sent,
//! duration, Factory and client address. Request headers are never read here, so no token
//! can reach the log.

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use hyper::body::{Frame, SizeHint};

use crate::tls::Peer;
use crate::Shared;

/// Middleware: counts the request by route family and status class, and logs it once its
/// response body is done.
pub async fn log_request(State(state): State<Shared>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let factory = route
        .as_deref()
        .and_then(|r| factory_of(r, req.uri().path()));
    let family = crate::metrics::family(req.uri().path());
    let entry = Entry {
        method: req.method().clone(),
        route,
        factory,
        client: req.extensions().get::<Peer>().and_then(|p| p.remote),
        status: StatusCode::OK,
        start,
    };
    let resp = next.run(req).await;
    state.metrics.count(family, resp.status().as_u16());
    let (parts, body) = resp.into_parts();
    let entry = Entry {
        status: parts.status,
        ..entry
    };
    let body = Logged {
        inner: body,
        bytes: 0,
        entry: Some(entry),
    };
    Response::from_parts(parts, Body::new(body))
}

/// The `{f}` segment of `path` when the route template has one: the Factory of the request.
fn factory_of(route: &str, path: &str) -> Option<String> {
    let at = route.split('/').position(|s| s == "{f}")?;
    let segment = path.split('/').nth(at)?;
    // Factory names are short labels; anything longer is not one and is cut, not logged whole.
    Some(segment.chars().take(MAX_FACTORY_CHARS).collect())
}

/// What is known of a request before its body is sent.
struct Entry {
    method: Method,
    route: Option<String>,
    factory: Option<String>,
    client: Option<SocketAddr>,
    status: StatusCode,
    start: Instant,
}

impl Entry {
    fn emit(self, bytes: u64, complete: bool) {
        // Microsecond resolution: finer digits are noise in a log line.
        let duration_ms = self.start.elapsed().as_micros() as f64 / 1000.0;
        tracing::info!(
            target: "tufd::access",
            method = %self.method,
            route = self.route.as_deref().unwrap_or(UNMATCHED),
            status = self.status.as_u16(),
            bytes,
            duration_ms,
            factory = self.factory.as_deref(),
            client = self.client.map(tracing::field::display),
            complete,
            "request"
        );
    }
}

/// The response body, counting what is sent; logs the request when it ends or is dropped
/// (a client that went away mid-body: `complete=false`).
struct Logged {
    inner: Body,
    bytes: u64,
    entry: Option<Entry>,
}

impl HttpBody for Logged {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.bytes += data.len() as u64;
                }
            }
            Poll::Ready(None) => self.finish(true),
            Poll::Ready(Some(Err(_))) => self.finish(false),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Logged {
    fn finish(&mut self, complete: bool) {
        if let Some(entry) = self.entry.take() {
            entry.emit(self.bytes, complete);
        }
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        // HEAD answers and empty bodies are never polled to their end: nothing was left unsent.
        let nothing_left = self.inner.is_end_stream()
            || self
                .entry
                .as_ref()
                .is_some_and(|e| e.method == Method::HEAD);
        self.finish(nothing_left);
    }
}

/// The route logged for a request no route matched (the 404 fallback).
const UNMATCHED: &str = "(none)";

const MAX_FACTORY_CHARS: usize = 128;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_factory_comes_from_the_template_position() {
        assert_eq!(
            factory_of(
                "/ota/factories/{f}/credentials/{once}",
                "/ota/factories/acme/credentials/s3cret"
            )
            .as_deref(),
            Some("acme")
        );
        assert_eq!(
            factory_of(
                "/repo/{f}/{flavour}/metadata/{file}",
                "/repo/a-b/ci/metadata/1.root.json"
            )
            .as_deref(),
            Some("a-b")
        );
        assert_eq!(factory_of("/healthz", "/healthz"), None);
        let long = format!("/ui/f/{}/", "x".repeat(500));
        assert_eq!(
            factory_of("/ui/f/{f}/", &long).unwrap().len(),
            MAX_FACTORY_CHARS
        );
    }
}
