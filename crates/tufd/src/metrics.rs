//! `/metrics` (Prometheus text format): request counters by route family and status class
//! (counted by `access`), online re-signing outcomes (counted by `upkeep`), and the seconds
//! until each Factory's current metadata expires.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use sqlx::Row;

use crate::auth::{authenticate, Scope};
use crate::error::{ApiError, ApiResult};
use crate::Shared;

const FAMILIES: [&str; 6] = [
    "device_metadata",
    "device_targets",
    "user_repo",
    "factories",
    "operations",
    "other",
];
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Counters live in process memory: they are per-replica by nature, like any Prometheus
/// counter, and nothing else depends on them.
#[derive(Default)]
pub struct Metrics {
    requests: [[AtomicU64; 5]; 6],
    resigned: AtomicU64,
    resign_failures: AtomicU64,
}

impl Metrics {
    pub fn count(&self, family: usize, status: u16) {
        let class = usize::from(status / 100).saturating_sub(1).min(4);
        self.requests[family][class].fetch_add(1, Ordering::Relaxed);
    }

    /// One Factory re-signed by upkeep (`ok`), or one attempt (a Factory, or a whole pass)
    /// that failed.
    pub fn resign(&self, ok: bool) {
        let counter = if ok {
            &self.resigned
        } else {
            &self.resign_failures
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

pub fn family(path: &str) -> usize {
    if path.starts_with("/repo/") {
        if path.contains("/metadata/") {
            0
        } else {
            1
        }
    } else if path.starts_with("/ota/repo/") {
        2
    } else if path.starts_with("/ota/factories") {
        3
    } else if matches!(path, "/healthz" | "/metrics" | "/openapi.json") {
        4
    } else {
        5
    }
}

/// `GET /metrics` (a `metrics` or `admin` token): the gauges name every Factory, which is
/// not for the public.
pub async fn render(State(state): State<Shared>, headers: HeaderMap) -> ApiResult<Response> {
    let caller = authenticate(&state, &headers).await?;
    if !matches!(caller.scope, Scope::Metrics | Scope::Admin) {
        return Err(ApiError::forbidden(
            "/metrics needs a metrics token (POST /ota/tokens {\"scope\": \"metrics\"}) or the admin token",
        ));
    }
    let mut out = String::new();
    out.push_str(
        "# HELP tufd_requests_total HTTP requests answered, by route family and status class.\n",
    );
    out.push_str("# TYPE tufd_requests_total counter\n");
    for (fi, fam) in FAMILIES.iter().enumerate() {
        for (ci, class) in CLASSES.iter().enumerate() {
            let n = state.metrics.requests[fi][ci].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "tufd_requests_total{{route=\"{fam}\",status=\"{class}\"}} {n}"
            );
        }
    }
    for (name, help, counter) in [
        (
            "tufd_resigned_total",
            "Factories whose online metadata (timestamp, snapshot, CI targets) upkeep re-signed.",
            &state.metrics.resigned,
        ),
        (
            "tufd_resign_failures_total",
            "Upkeep re-signing attempts that failed (one per Factory, or a whole pass).",
            &state.metrics.resign_failures,
        ),
    ] {
        let n = counter.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {n}"
        );
    }
    let rows = sqlx::query("SELECT factory, flavour, role, version, expires FROM heads ORDER BY factory, flavour, role")
        .fetch_all(state.db.pool())
        .await?;
    let now = crate::db::now();
    out.push_str("# HELP tufd_metadata_expires_in_seconds Seconds until the current metadata of a role expires (negative: expired).\n");
    out.push_str("# TYPE tufd_metadata_expires_in_seconds gauge\n");
    let mut versions = String::new();
    versions.push_str("# HELP tufd_metadata_version Current version of a role's metadata.\n");
    versions.push_str("# TYPE tufd_metadata_version gauge\n");
    for r in rows {
        let factory: String = r.try_get(0)?;
        let flavour: String = r.try_get(1)?;
        let role: String = r.try_get(2)?;
        let version: i64 = r.try_get(3)?;
        let expires: i64 = r.try_get(4)?;
        let labels = format!("factory=\"{factory}\",flavour=\"{flavour}\",role=\"{role}\"");
        let _ = writeln!(
            out,
            "tufd_metadata_expires_in_seconds{{{labels}}} {}",
            expires - now
        );
        let _ = writeln!(versions, "tufd_metadata_version{{{labels}}} {version}");
    }
    out.push_str(&versions);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response())
}
