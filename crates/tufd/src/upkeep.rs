//! Online signing upkeep: re-signs timestamp and snapshot (both flavours) and CI targets
//! when less than half of their validity remains.
//!
//! Safe with any number of replicas: candidates are found without a lock, then each Factory
//! is re-checked and re-signed inside one transaction that holds its row lock, so two
//! replicas never both publish a version.

use std::time::Duration;

use sqlx::Row;
use time::OffsetDateTime;
use tuf_core::Role;

use crate::db::lock_factory;
use crate::error::ApiResult;
use crate::repo::{current_root, require_head, Flavour, OnlineKeys, Signing, StoredMeta};
use crate::Shared;

pub async fn run(state: Shared, every: Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        if let Err(e) = pass(&state).await {
            tracing::warn!(error = %e.error, detail = %e.detail, "re-signing pass failed");
        }
    }
}

/// One pass over every Factory with something due.
pub async fn pass(state: &Shared) -> ApiResult<()> {
    let now = crate::db::now();
    // Due: expires - now < (expires - issued) / 2, i.e. expires + issued < 2 * now.
    let rows = sqlx::query(
        "SELECT DISTINCT factory FROM heads WHERE expires + issued < $1 \
         AND (role IN ('snapshot', 'timestamp') OR (role = 'targets' AND flavour = 'ci'))",
    )
    .bind(2 * now)
    .fetch_all(state.db.pool())
    .await?;
    for r in rows {
        let factory: String = r.try_get(0)?;
        if let Err(e) = resign(state, &factory).await {
            tracing::warn!(factory = %factory, error = %e.error, detail = %e.detail, "re-signing failed");
        }
    }
    Ok(())
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
    let keys = OnlineKeys::load(&mut tx, &state.vault, factory).await?;
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
    state.cache.published();
    if !changed.is_empty() {
        tracing::info!(factory = %factory, roles = ?changed, "re-signed expiring metadata");
    }
    Ok(())
}
