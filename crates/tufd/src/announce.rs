//! Telling every replica that a Factory's metadata changed, so each can drop that Factory's
//! cached heads (and only those). On SQLite this process is the only writer and the
//! announcement stays in it; on PostgreSQL it goes out on a notification channel that every
//! replica listens to (its own included).

use std::time::Duration;

use sqlx::postgres::PgListener;

use crate::db::Backend;
use crate::Shared;

/// The PostgreSQL notification channel; the payload is the Factory's name.
const CHANNEL: &str = "tufd_published";

/// Called after every commit that published metadata of `factory`.
pub async fn published(state: &Shared, factory: &str) {
    state.cache.published(factory);
    if state.db.backend() == Backend::Postgres {
        let sent = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(factory)
            .execute(state.db.pool())
            .await;
        if let Err(e) = sent {
            // Other replicas see the change when their cached head ages out anyway.
            tracing::warn!(factory, error = %e, "could not announce published metadata");
        }
    }
}

/// Listens to the other replicas' announcements until the task is aborted. Whenever the
/// channel is lost (or cannot be opened), every cached head is forgotten: what was said
/// meanwhile is unknown.
pub async fn listen(url: String, state: Shared) {
    loop {
        match PgListener::connect(&url).await {
            Ok(mut listener) => {
                if let Err(e) = listener.listen(CHANNEL).await {
                    tracing::warn!(error = %e, "cannot listen for other replicas' commits");
                } else {
                    state.cache.forget_heads();
                    relay(&mut listener, &state).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot listen for other replicas' commits"),
        }
        state.cache.forget_heads();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Relays notifications into the cache until the connection is lost.
async fn relay(listener: &mut PgListener, state: &Shared) {
    loop {
        match listener.try_recv().await {
            Ok(Some(n)) => state.cache.published(n.payload()),
            // The connection was lost; `try_recv` would reconnect, but notifications sent in
            // between are gone, so the caller forgets every head first.
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "lost the channel of other replicas' commits");
                return;
            }
        }
    }
}
