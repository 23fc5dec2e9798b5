//! Online signing upkeep: re-signs timestamp and snapshot (both flavours) and CI targets
//! when less than half of their validity remains; finishes destructions (keyring epoch,
//! token objects) that a crash or another replica left to do.
//!
//! Safe with any number of replicas: candidates are found without a lock, then each Factory
//! is re-checked and re-signed inside one transaction that holds its row lock, so two
//! replicas never both publish a version.

use std::collections::{BTreeSet, HashSet};
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
    let mut due = BTreeSet::new();
    for (flavour, role) in heads_renewed(false) {
        let (sql, bound) = attention("SELECT factory", flavour, role, now);
        let rows: Vec<String> = sqlx::query_scalar(&sql)
            .bind(role.as_str())
            .bind(flavour.as_str())
            .bind(bound)
            .fetch_all(state.db.pool())
            .await?;
        due.extend(rows);
    }
    let pause = spacing(every, due.len());
    for factory in due {
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

/// The heads of every Factory renewed offline (`true`: roots, production targets) or by
/// this server (`false`), as (flavour, role) pairs.
pub fn heads_renewed(offline: bool) -> impl Iterator<Item = (Flavour, Role)> {
    Flavour::BOTH
        .into_iter()
        .flat_map(|f| Role::ALL.into_iter().map(move |r| (f, r)))
        .filter(move |&(f, r)| renewed_offline(f, r) == offline)
}

/// The soonest expiry of one (flavour, role) over all Factories (`$1` role, `$2` flavour):
/// one lookup in the index `heads_by_expiry`.
pub const SOONEST: &str = "SELECT MIN(expires) FROM heads WHERE role = $1 AND flavour = $2";

/// The query `select ... FROM heads WHERE <needs attention at now>` for one (flavour, role),
/// with its bound (parameters: `$1` role, `$2` flavour, `$3` the bound): a head renewed
/// offline needs attention inside the warning window ([`EXPIRY_WARNING_SECS`]), one this
/// server renews once it is due (less than half its validity left; upkeep re-signs it within
/// a pass). Each form is answered by an index of migration 0006, so its cost follows the
/// heads found, not the number of Factories.
pub fn attention(select: &str, flavour: Flavour, role: Role, now: i64) -> (String, i64) {
    if renewed_offline(flavour, role) {
        (
            format!("{select} FROM heads WHERE role = $1 AND flavour = $2 AND expires < $3"),
            now + EXPIRY_WARNING_SECS,
        )
    } else {
        // Due: expires - now < (expires - issued) / 2, i.e. expires + issued < 2 * now.
        (
            format!(
                "{select} FROM heads WHERE role = $1 AND flavour = $2 AND expires + issued < $3"
            ),
            2 * now,
        )
    }
}

/// Roots and production targets are signed by keys the owner holds offline, so the server
/// cannot renew them: when less than [`EXPIRY_WARNING_SECS`] remain, each such version gets
/// one `expiry.warning` audit record and a log warning (the `/metrics` gauge shows it too).
async fn warn_expiring(state: &Shared, now: i64, warned: &mut Warned) -> ApiResult<()> {
    let mut rows = Vec::new();
    for (flavour, role) in heads_renewed(true) {
        let (sql, bound) = attention("SELECT factory, version, expires", flavour, role, now);
        for r in sqlx::query(&sql)
            .bind(role.as_str())
            .bind(flavour.as_str())
            .bind(bound)
            .fetch_all(state.db.pool())
            .await?
        {
            let factory: String = r.try_get(0)?;
            rows.push((
                factory,
                flavour.as_str(),
                role.as_str(),
                r.try_get(1)?,
                r.try_get(2)?,
            ));
        }
    }
    for (factory, flavour, role, version, expires) in rows {
        let (version, expires): (i64, i64) = (version, expires);
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
        if flavour == Flavour::Ci {
            let targets = require_head(&mut tx, factory, flavour, Role::Targets).await?;
            if due(&targets, now_unix) {
                // From the stored bytes, as an add does: no tree of a large role.
                signing
                    .renew_targets(&mut tx, flavour, &root.signed, targets.body)
                    .await?;
                changed.push(format!("{}/targets", flavour.as_str()));
                changed.push(format!("{}/snapshot", flavour.as_str()));
                continue;
            }
        }
        let snapshot = require_head(&mut tx, factory, flavour, Role::Snapshot).await?;
        if due(&snapshot, now_unix) {
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

    /// Every query over all Factories' heads is a search of an index of migration 0006, not
    /// a scan of the table: its cost follows what it finds (SQLite's plan; PostgreSQL has the
    /// same indexes).
    #[tokio::test]
    async fn head_queries_search_an_index() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::Db::open_sqlite(&dir.path().join("t.sqlite"))
            .await
            .unwrap();
        db.migrate().await.unwrap();
        let mut checked = 0;
        for offline in [true, false] {
            for (flavour, role) in heads_renewed(offline) {
                let index = if offline {
                    "heads_by_expiry"
                } else {
                    "heads_by_renewal"
                };
                for select in ["SELECT factory", "SELECT COUNT(*)"] {
                    let (sql, bound) = attention(select, flavour, role, 1_000);
                    let plan = plan(&db, &sql, role, flavour, Some(bound)).await;
                    assert!(
                        plan.contains(&format!("SEARCH heads USING COVERING INDEX {index} "))
                            || plan.contains(&format!("SEARCH heads USING INDEX {index} ")),
                        "{sql}: {plan}"
                    );
                    checked += 1;
                }
                let plan = plan(&db, SOONEST, role, flavour, None).await;
                assert!(plan.contains("INDEX heads_by_expiry"), "{plan}");
            }
        }
        assert_eq!(checked, 16);
    }

    async fn plan(
        db: &crate::db::Db,
        sql: &str,
        role: Role,
        flavour: Flavour,
        bound: Option<i64>,
    ) -> String {
        let explain = format!("EXPLAIN QUERY PLAN {sql}");
        let mut q = sqlx::query(&explain)
            .bind(role.as_str())
            .bind(flavour.as_str());
        if let Some(bound) = bound {
            q = q.bind(bound);
        }
        let rows = q.fetch_all(db.pool()).await.unwrap();
        let details: Vec<String> = rows.iter().map(|r| r.try_get(3).unwrap()).collect();
        assert!(!details.is_empty(), "no plan for {sql}");
        details.join("; ")
    }

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
