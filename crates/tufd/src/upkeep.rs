//! Online signing upkeep: re-signs timestamp and snapshot (both flavours) and CI targets
//! when less than half of their validity remains; finishes destructions (keyring epoch,
//! token objects) that a crash or another replica left to do.
//!
//! Safe with any number of replicas: candidates are found without a lock, then each Factory
//! is re-checked and re-signed inside one transaction that holds its row lock, so two
//! replicas never both publish a version.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::json;
use sqlx::Row;
use time::OffsetDateTime;
use tuf_core::Role;

use crate::audit::record;
use crate::db::lock_factory;
use crate::error::ApiResult;
use crate::repo::{current_root, require_head, Flavour, OnlineKeys, Signing, StoredMeta};
use crate::Shared;

pub async fn run(state: Shared, every: Duration) {
    let mut tick = tokio::time::interval(every);
    let mut warned = Warned::default();
    loop {
        tick.tick().await;
        // Finishes a destruction a crash interrupted, and moves this replica to the keyring
        // epoch another replica opened (its old epoch key is then overwritten here too).
        crate::repo::finish_destruction(&state).await;
        if let Err(e) = pass(&state, every, &mut warned).await {
            state.metrics.resign(false);
            tracing::warn!(error = %e.error, detail = %e.detail, "re-signing pass failed");
        }
    }
}

/// The expiry warnings this process knows are recorded (Factory and detail), so a pass
/// neither queries nor locks anything for them again.
#[derive(Default)]
pub struct Warned(HashSet<(String, String)>);

/// The pause after each Factory's renewal in a pass of `due` Factories, so that a pass over
/// thousands of Factories leaves room for the writes of CI between its transactions (on
/// SQLite there is one writer) instead of holding the store for seconds: the pass spreads
/// over at most half the interval, and never waits more than 20 ms a Factory.
pub fn spacing(every: Duration, due: usize) -> Duration {
    let share = every / 2 / u32::try_from(due.max(1)).unwrap_or(u32::MAX);
    share.min(Duration::from_millis(20))
}

/// One pass over every Factory with something due, each in a transaction of its own.
pub async fn pass(state: &Shared, every: Duration, warned: &mut Warned) -> ApiResult<()> {
    let now = crate::db::now();
    // Due: expires - now < (expires - issued) / 2, i.e. expires + issued < 2 * now.
    let rows = sqlx::query(
        "SELECT DISTINCT factory FROM heads WHERE expires + issued < $1 \
         AND (role IN ('snapshot', 'timestamp') OR (role = 'targets' AND flavour = 'ci'))",
    )
    .bind(2 * now)
    .fetch_all(state.db.pool())
    .await?;
    let pause = spacing(every, rows.len());
    for r in rows {
        let factory: String = r.try_get(0)?;
        match resign(state, &factory).await {
            Ok(()) => state.metrics.resign(true),
            Err(e) => {
                state.metrics.resign(false);
                tracing::warn!(factory = %factory, error = %e.error, detail = %e.detail, "re-signing failed");
            }
        }
        tokio::time::sleep(pause).await;
    }
    warn_expiring(state, now, warned).await
}

/// Roots and production targets are signed by keys the owner holds offline, so the server
/// cannot renew them: when less than [`EXPIRY_WARNING_SECS`] remain, each such version gets
/// one `expiry.warning` audit record and a log warning (the `/metrics` gauge shows it too).
async fn warn_expiring(state: &Shared, now: i64, warned: &mut Warned) -> ApiResult<()> {
    // The role condition is `renewed_offline`, in SQL.
    let rows = sqlx::query(
        "SELECT factory, flavour, role, version, expires FROM heads WHERE expires < $1 \
         AND (role = 'root' OR (role = 'targets' AND flavour = 'prod'))",
    )
    .bind(now + EXPIRY_WARNING_SECS)
    .fetch_all(state.db.pool())
    .await?;
    for r in rows {
        let factory: String = r.try_get(0)?;
        let (flavour, role): (String, String) = (r.try_get(1)?, r.try_get(2)?);
        let (version, expires): (i64, i64) = (r.try_get(3)?, r.try_get(4)?);
        let detail = json!({
            "flavour": flavour,
            "role": role,
            "version": version,
            "expires": crate::format_time(expires),
            "renew": if role == "root" {
                "a root update signed by the root key holders: tufctl keys resign-root"
            } else {
                "re-signed with the offline targets key: tufctl waves resign, or a new wave"
            },
        });
        let key = (factory.clone(), detail.to_string());
        if warned.0.contains(&key) || recorded(state, &key).await? {
            // Once per version and window: no write transaction for what is recorded.
            warned.0.insert(key);
            continue;
        }
        let mut tx = state.db.begin_write().await?;
        if !lock_factory(&mut tx, &factory).await? {
            continue;
        }
        // Checked under the Factory's row lock, so replicas never record a version twice.
        let seen: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM audit WHERE factory = $1 AND action = 'expiry.warning' \
             AND detail = $2",
        )
        .bind(&factory)
        .bind(detail.to_string())
        .fetch_one(&mut *tx)
        .await?;
        if seen == 0 {
            record(&mut tx, &factory, now, "tufd", "expiry.warning", detail).await?;
            tracing::warn!(
                factory = %factory, flavour = %flavour, role = %role, version,
                expires = %crate::format_time(expires),
                "metadata signed by offline keys expires soon; only its key holders can renew it"
            );
        }
        tx.commit().await?;
        warned.0.insert(key);
    }
    Ok(())
}

/// Whether the expiry warning `(factory, detail)` is in the audit log (read without a lock;
/// the writer checks again under the Factory's lock).
async fn recorded(state: &Shared, (factory, detail): &(String, String)) -> ApiResult<bool> {
    let seen: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit WHERE factory = $1 AND action = 'expiry.warning' \
         AND detail = $2",
    )
    .bind(factory)
    .bind(detail)
    .fetch_one(state.db.pool())
    .await?;
    Ok(seen > 0)
}

/// How far ahead of expiry offline-signed metadata is reported (the console marks the same
/// window).
pub const EXPIRY_WARNING_SECS: i64 = 30 * 24 * 3600;

/// Whether only keys held offline can renew `role` of `flavour`: the roles the query of
/// [`warn_expiring`] selects (roots, production targets). The server re-signs the others.
pub fn renewed_offline(flavour: Flavour, role: Role) -> bool {
    role == Role::Root || (role == Role::Targets && flavour == Flavour::Prod)
}

fn due(m: &StoredMeta, now: i64) -> bool {
    m.expires + m.issued < 2 * now
}

async fn resign(state: &Shared, factory: &str) -> ApiResult<()> {
    let now = OffsetDateTime::now_utc();
    let now_unix = now.unix_timestamp();
    let mut tx = state.db.begin_write().await?;
    if !lock_factory(&mut tx, factory).await? {
        return Ok(());
    }
    let keys = OnlineKeys::load(&mut tx, state, factory).await?;
    let signing = Signing {
        factory,
        keys: &keys,
        periods: &state.periods,
        now,
    };
    let mut changed = Vec::new();
    for flavour in Flavour::BOTH {
        let root = current_root(&mut tx, factory, flavour).await?;
        let mut snapshot_due = false;
        if flavour == Flavour::Ci {
            let targets = require_head(&mut tx, factory, flavour, Role::Targets).await?;
            if due(&targets, now_unix) {
                let mut t: tuf_core::Signed<tuf_core::Targets> = targets.parse()?;
                t.signed.version += 1;
                t.signed.expires = signing.expires(Role::Targets)?;
                signing
                    .publish_targets(&mut tx, flavour, &root.signed, t.signed)
                    .await?;
                snapshot_due = true;
                changed.push(format!("{}/targets", flavour.as_str()));
            }
        }
        let snapshot = require_head(&mut tx, factory, flavour, Role::Snapshot).await?;
        if snapshot_due || due(&snapshot, now_unix) {
            signing
                .refresh_snapshot(&mut tx, flavour, &root.signed)
                .await?;
            changed.push(format!("{}/snapshot", flavour.as_str()));
            continue;
        }
        let timestamp = require_head(&mut tx, factory, flavour, Role::Timestamp).await?;
        if due(&timestamp, now_unix) {
            signing
                .refresh_timestamp(&mut tx, flavour, &root.signed)
                .await?;
            changed.push(format!("{}/timestamp", flavour.as_str()));
        }
    }
    tx.commit().await?;
    crate::announce::published(state, factory).await;
    if !changed.is_empty() {
        tracing::info!(factory = %factory, roles = ?changed, "re-signed expiring metadata");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pass_spreads_over_half_the_interval_and_at_most_20_ms_a_factory() {
        let minute = Duration::from_secs(60);
        assert_eq!(spacing(minute, 10_000), Duration::from_millis(3));
        assert_eq!(spacing(minute, 100), Duration::from_millis(20));
        assert_eq!(spacing(minute, 0), Duration::from_millis(20));
        assert_eq!(
            spacing(Duration::from_secs(1), 1_000),
            Duration::from_micros(500)
        );
    }
}
