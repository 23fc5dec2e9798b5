//! `tufd`, the tuf-factory server. See `docs/ARCHITECTURE.md` for the module map and flows.

mod audit;
mod auth;
mod cache;
mod curation;
mod db;
mod error;
mod factory;
mod input;
mod metrics;
mod repo;
mod rotation;
mod serve;
mod storage;
mod targets;
mod tokens;
mod ui;
mod upkeep;
mod vault;
mod waves;

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use clap::Parser;
use serde_json::json;
use zeroize::Zeroizing;

use crate::db::{Backend, Db};
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::repo::Periods;
use crate::storage::{ArtifactStore, DbStore, FileStore};
use crate::vault::Vault;

/// The tuf-factory server: Factories, online keys, TUF repositories, CI signing, root
/// updates and waves.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Address to listen on (port 0 picks a free port; the real one is printed).
    #[arg(long, env = "TUFD_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    /// Directory for the embedded SQLite store, artifacts, the server key and the admin token.
    #[arg(long, env = "TUFD_DATA_DIR", default_value = "./tufd-data")]
    data_dir: PathBuf,
    /// `postgres://...` to share one PostgreSQL between replicas (default: SQLite in --data-dir).
    #[arg(long, env = "TUFD_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Base URL clients reach this server at (default: http://<listen address>).
    #[arg(long, env = "TUFD_PUBLIC_URL")]
    public_url: Option<String>,
    /// File holding the server key (64 hex characters). Env TUFD_SERVER_KEY (hex) wins.
    #[arg(long, env = "TUFD_SERVER_KEY_FILE")]
    server_key_file: Option<PathBuf>,
    /// Validity of newly signed root metadata, in seconds.
    #[arg(long, env = "TUFD_ROOT_EXPIRY_SECS", default_value_t = 365 * DAY)]
    root_expiry_secs: i64,
    /// Validity of newly signed targets metadata, in seconds.
    #[arg(long, env = "TUFD_TARGETS_EXPIRY_SECS", default_value_t = 365 * DAY)]
    targets_expiry_secs: i64,
    /// Validity of newly signed snapshot metadata, in seconds.
    #[arg(long, env = "TUFD_SNAPSHOT_EXPIRY_SECS", default_value_t = 7 * DAY)]
    snapshot_expiry_secs: i64,
    /// Validity of newly signed timestamp metadata, in seconds.
    #[arg(long, env = "TUFD_TIMESTAMP_EXPIRY_SECS", default_value_t = DAY)]
    timestamp_expiry_secs: i64,
    /// How often to look for metadata that needs re-signing, in seconds.
    #[arg(long, env = "TUFD_RESIGN_INTERVAL_SECS", default_value_t = 60)]
    resign_interval_secs: u64,
}

const DAY: i64 = 24 * 3600;

pub struct AppState {
    pub db: Db,
    pub vault: Vault,
    pub store: Box<dyn ArtifactStore>,
    pub periods: Periods,
    pub public_url: String,
    pub tmp_dir: PathBuf,
    pub metrics: Metrics,
    pub cache: cache::Cache,
}

pub type Shared = Arc<AppState>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    for (name, v) in [
        ("root", args.root_expiry_secs),
        ("targets", args.targets_expiry_secs),
        ("snapshot", args.snapshot_expiry_secs),
        ("timestamp", args.timestamp_expiry_secs),
    ] {
        anyhow::ensure!(
            (1..=10 * 365 * DAY).contains(&v),
            "--{name}-expiry-secs must be between 1 second and 10 years"
        );
    }
    create_private_dir(&args.data_dir)?;
    let tmp_dir = args.data_dir.join("tmp");
    create_private_dir(&tmp_dir)?;

    // The server key first: a replica without the shared key must not touch the database.
    let backend = match &args.database_url {
        Some(url) => Backend::of_url(url)?,
        None => Backend::Sqlite,
    };
    let vault = load_server_key(&args, backend)?;
    let db = match &args.database_url {
        Some(url) => Db::connect(url).await?,
        None => Db::open_sqlite(&args.data_dir.join("tufd.sqlite")).await?,
    };
    db.migrate().await?;
    check_server_key(&db, &vault).await?;
    ensure_admin_token(&db, &args.data_dir).await?;

    let store: Box<dyn ArtifactStore> = match db.backend() {
        Backend::Postgres => Box::new(DbStore::new(db.clone())),
        Backend::Sqlite => Box::new(
            FileStore::new(args.data_dir.join("artifacts")).context("creating artifact dir")?,
        ),
    };

    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    let public_url = args
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"))
        .trim_end_matches('/')
        .to_owned();
    let state: Shared = Arc::new(AppState {
        db,
        vault,
        store,
        periods: Periods {
            root: args.root_expiry_secs,
            targets: args.targets_expiry_secs,
            snapshot: args.snapshot_expiry_secs,
            timestamp: args.timestamp_expiry_secs,
        },
        public_url,
        tmp_dir,
        metrics: Metrics::default(),
        cache: cache::Cache::new(backend == Backend::Sqlite),
    });
    let upkeep = tokio::spawn(upkeep::run(
        state.clone(),
        std::time::Duration::from_secs(args.resign_interval_secs.max(1)),
    ));

    let app = router(state);
    // Handlers are installed before the `listening on` line: a supervisor (or a test) that
    // sends SIGTERM as soon as it reads that line must get a graceful shutdown, never the
    // default action of the signal.
    let shutdown = shutdown_signal()?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{addr}")?;
        out.flush()?;
    }
    tracing::info!(%addr, "serving");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .context("serving HTTP")?;
    upkeep.abort();
    tracing::info!("shut down");
    Ok(())
}

fn router(state: Shared) -> Router {
    let user_repo = "/ota/repo/{f}/api/v1/user_repo";
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/metrics", get(metrics::render))
        .route(
            "/openapi.json",
            get(|| async {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    include_str!("openapi.json"),
                )
            }),
        )
        .route("/ota/factories", post(factory::create))
        .route(
            "/ota/factories/{f}/credentials/{once}",
            get(factory::download),
        )
        .route(
            "/ota/factories/{f}/targets",
            post(targets::add).layer(DefaultBodyLimit::max(targets::UPLOAD_LIMIT)),
        )
        .route("/ota/factories/{f}/targets/prune", post(curation::prune))
        .route("/ota/factories/{f}/targets/{t}", delete(curation::remove))
        .route(
            "/ota/factories/{f}/targets/{t}/tags",
            put(curation::set_tags),
        )
        .route(
            "/ota/factories/{f}/tokens",
            get(tokens::list).post(tokens::create),
        )
        .route("/ota/factories/{f}/tokens/{id}", delete(tokens::revoke))
        .route(
            "/ota/factories/{f}/tokens/revoke-all",
            post(tokens::revoke_all),
        )
        .route(
            "/ota/factories/{f}/waves",
            get(waves::list).post(waves::create),
        )
        .route("/ota/factories/{f}/waves/{w}", get(waves::show))
        .route(
            "/ota/factories/{f}/waves/{w}/complete",
            post(waves::complete),
        )
        .route("/ota/factories/{f}/waves/{w}/cancel", post(waves::cancel))
        .route("/ota/factories/{f}/waves/{w}/resign", post(waves::resign))
        .route("/ota/factories/{f}/audit", get(audit::list))
        .route(&format!("{user_repo}/{{file}}"), get(serve::user_repo))
        .route(
            &format!("{user_repo}/root/updates"),
            get(rotation::show)
                .post(rotation::open)
                .put(rotation::stage),
        )
        .route(
            &format!("{user_repo}/root/updates/apply"),
            post(rotation::apply),
        )
        .route(
            &format!("{user_repo}/root/updates/cancel"),
            post(rotation::cancel),
        )
        .route(
            &format!("{user_repo}/root/updates/online-keys"),
            post(rotation::online_keys),
        )
        .route(
            "/repo/{f}/{flavour}/metadata/{file}",
            get(serve::device_metadata),
        )
        .route("/repo/{f}/{flavour}/targets/{file}", get(serve::artifact))
        .merge(ui::routes())
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed",
                serde_json::Value::Null,
            )
        })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::count_requests,
        ))
        .with_state(state)
}

/// Registers SIGINT and SIGTERM now and returns the future that resolves on either.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {},
            _ = term.recv() => {},
        }
        tracing::info!("shutdown requested");
    })
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    Ok(())
}

/// Writes a secret file readable by its owner only, replacing any old one atomically.
fn write_secret_file(path: &Path, contents: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(contents.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// The server key: env `TUFD_SERVER_KEY` (hex), else `--server-key-file`, else (embedded
/// store only) `<data-dir>/server-key`, created on first start. Replicas sharing PostgreSQL
/// must share the key, so a per-replica generated file is refused there.
fn load_server_key(args: &Args, backend: Backend) -> anyhow::Result<Vault> {
    if let Ok(hex_key) = std::env::var("TUFD_SERVER_KEY") {
        let hex_key = Zeroizing::new(hex_key);
        return Vault::from_hex(&hex_key).context("TUFD_SERVER_KEY");
    }
    if let Some(path) = &args.server_key_file {
        return Vault::from_file(path).with_context(|| format!("reading {}", path.display()));
    }
    anyhow::ensure!(
        backend == Backend::Sqlite,
        "with --database-url, give the server key shared by all replicas in TUFD_SERVER_KEY \
         (64 hex characters) or --server-key-file"
    );
    let path = args.data_dir.join("server-key");
    if !path.exists() {
        let key = Vault::generate_hex()?;
        write_secret_file(&path, &key)?;
        tracing::info!(path = %path.display(), "created a new server key; back it up");
    }
    Vault::from_file(&path).with_context(|| format!("reading {}", path.display()))
}

/// Refuses to start with a server key other than the one the store was created with: it
/// could not open any stored key.
async fn check_server_key(db: &Db, vault: &Vault) -> anyhow::Result<()> {
    const NAME: &str = "server_key_check";
    const AAD: &str = "tufd server key check";
    let fresh = hex::encode(vault.seal(AAD, b"tufd")?);
    let stored = db.setting_or_insert(NAME, &fresh).await?;
    let sealed = hex::decode(stored).context("stored server key check is not hex")?;
    vault.open(AAD, &sealed).map_err(|_| {
        anyhow::anyhow!("the server key does not match the one this store was created with")
    })?;
    Ok(())
}

/// On first start, creates the admin token (or takes `TUFD_ADMIN_TOKEN`).
async fn ensure_admin_token(db: &Db, data_dir: &Path) -> anyhow::Result<()> {
    if let Ok(token) = std::env::var("TUFD_ADMIN_TOKEN") {
        let token = Zeroizing::new(token);
        anyhow::ensure!(
            token.len() >= 16 && token.len() <= 256 && !token.contains(char::is_whitespace),
            "TUFD_ADMIN_TOKEN must be 16 to 256 characters without spaces"
        );
        sqlx::query(
            "INSERT INTO tokens (hash, factory, scope, created_at) VALUES ($1, NULL, 'admin', $2) \
             ON CONFLICT (hash) DO NOTHING",
        )
        .bind(auth::token_hash(&token))
        .bind(db::now())
        .execute(db.pool())
        .await?;
        return Ok(());
    }
    let existing = sqlx::query("SELECT 1 FROM tokens WHERE scope = 'admin'")
        .fetch_optional(db.pool())
        .await?;
    if existing.is_some() {
        return Ok(());
    }
    // Replicas starting together on an empty PostgreSQL race here. The claim row makes the
    // first one the only creator: a second INSERT waits for its commit, then does nothing.
    let mut tx = db.pool().begin().await?;
    let claimed = sqlx::query(
        "INSERT INTO settings (name, value) VALUES ('admin-token-created', $1) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(db::now().to_string())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if claimed == 0 {
        tx.rollback().await?;
        tracing::info!(
            "another replica created the admin token; it is in that replica's data directory"
        );
        return Ok(());
    }
    let token = repo::random_hex(32).map_err(|e| anyhow::anyhow!(e.error))?;
    sqlx::query(
        "INSERT INTO tokens (hash, factory, scope, created_at) VALUES ($1, NULL, 'admin', $2)",
    )
    .bind(auth::token_hash(&token))
    .bind(db::now())
    .execute(&mut *tx)
    .await?;
    // The file first: a committed token always has its file. A failed commit leaves a file
    // naming a token that does not exist, which the next start replaces.
    let path = data_dir.join("admin-token");
    write_secret_file(&path, &token)?;
    tx.commit().await?;
    tracing::info!(path = %path.display(), "created the admin token; it is in this file");
    Ok(())
}

/// Unix seconds in the metadata time form `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_time(unix: i64) -> String {
    tuf_core::Expires::from_unix(unix)
        .map(|e| e.to_string())
        .unwrap_or_else(|_| unix.to_string())
}

#[cfg(test)]
mod manual;
