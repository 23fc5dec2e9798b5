//! `/metrics` (Prometheus text format): request counters by route family and status class
//! (counted by `access`), online re-signing outcomes (counted by `upkeep`), and metadata
//! expiry gauges whose cost does not grow with the number of Factories.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use sqlx::Row;

use crate::auth::{authenticate, Scope};
use crate::error::{ApiError, ApiResult};
use crate::repo::Flavour;
use crate::upkeep;
use crate::Shared;
use tuf_core::Role;

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
    heads(&state, &mut out).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response())
}

/// The most per-Factory series one (flavour, role) contributes to a scrape.
pub const ATTENTION_SERIES_CAP: i64 = 500;

/// The metadata gauges, at a cost independent of the number of Factories: per (flavour,
/// role) the soonest expiry over all Factories (one index lookup) and how many heads need
/// attention (`upkeep::attention`: offline-renewed ones inside the warning window, online ones
/// due and not yet re-signed); per Factory only those heads, soonest first, at most
/// [`ATTENTION_SERIES_CAP`] of each (flavour, role). A healthy fleet exports no per-Factory
/// series at all.
async fn heads(state: &Shared, out: &mut String) -> ApiResult<()> {
    let now = crate::db::now();
    let mut soonest = String::new();
    let mut counts = String::new();
    let mut expiring = String::new();
    let mut versions = String::new();
    for flavour in Flavour::BOTH {
        for role in Role::ALL {
            let pair = format!("flavour=\"{}\",role=\"{role}\"", flavour.as_str());
            let min: Option<i64> = sqlx::query_scalar(upkeep::SOONEST)
                .bind(role.as_str())
                .bind(flavour.as_str())
                .fetch_one(state.db.pool())
                .await?;
            if let Some(min) = min {
                let _ = writeln!(
                    soonest,
                    "tufd_metadata_min_expires_in_seconds{{{pair}}} {}",
                    min - now
                );
            }
            let (sql, bound) = upkeep::attention("SELECT COUNT(*)", flavour, role, now);
            let n: i64 = sqlx::query_scalar(&sql)
                .bind(role.as_str())
                .bind(flavour.as_str())
                .bind(bound)
                .fetch_one(state.db.pool())
                .await?;
            let _ = writeln!(counts, "tufd_metadata_attention{{{pair}}} {n}");
            if n == 0 {
                continue;
            }
            let (sql, bound) =
                upkeep::attention("SELECT factory, version, expires", flavour, role, now);
            let rows = sqlx::query(&format!("{sql} ORDER BY expires, factory LIMIT $4"))
                .bind(role.as_str())
                .bind(flavour.as_str())
                .bind(bound)
                .bind(ATTENTION_SERIES_CAP)
                .fetch_all(state.db.pool())
                .await?;
            for r in rows {
                let factory: String = r.try_get(0)?;
                let version: i64 = r.try_get(1)?;
                let expires: i64 = r.try_get(2)?;
                let labels = format!("factory=\"{factory}\",{pair}");
                let _ = writeln!(
                    expiring,
                    "tufd_metadata_expires_in_seconds{{{labels}}} {}",
                    expires - now
                );
                let _ = writeln!(versions, "tufd_metadata_version{{{labels}}} {version}");
            }
        }
    }
    let listed = format!(
        "only metadata that needs attention, soonest first, at most {ATTENTION_SERIES_CAP} per flavour and role"
    );
    for (name, help, series) in [
        (
            "tufd_metadata_min_expires_in_seconds",
            "Seconds until the soonest expiry of a role's current metadata over all Factories (negative: expired).".to_owned(),
            soonest,
        ),
        (
            "tufd_metadata_attention",
            "Factories whose current metadata of a role needs attention: signed offline and inside the 30-day warning window, or renewed online and due but not yet re-signed.".to_owned(),
            counts,
        ),
        (
            "tufd_metadata_expires_in_seconds",
            format!("Seconds until a Factory's current metadata of a role expires (negative: expired); {listed}."),
            expiring,
        ),
        (
            "tufd_metadata_version",
            format!("Current version of a Factory's metadata of a role; {listed}."),
            versions,
        ),
    ] {
        let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{series}");
    }
    Ok(())
}
