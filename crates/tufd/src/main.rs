//! `tufd`, the tuf-factory server. See `docs/ARCHITECTURE.md` for the module map and flows.

// The doc comments of the command-line options are clap's `--help` text, written for a
// terminal (`http://<listen address>`), not for rustdoc's Markdown.
#![allow(rustdoc::bare_urls, rustdoc::invalid_html_tags)]

mod access;
mod admin;
mod announce;
mod audit;
mod auth;
mod backup;
mod cache;
mod config;
mod curation;
mod db;
mod error;
mod factory;
mod files;
mod group;
mod input;
mod keyring;
mod listener;
mod memory;
mod metrics;
mod repo;
mod restore;
mod rotation;
mod serve;
mod server_key;
mod startup;
mod storage;
mod targets;
mod tls;
mod token;
mod tokens;
mod ui;
mod upkeep;
mod vault;
mod waves;

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use clap::Parser;
use serde_json::json;

use crate::db::{Backend, Db};
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::repo::Periods;
use crate::storage::ArtifactStore;
use crate::vault::Vault;

/// The tuf-factory server: Factories, online keys, TUF repositories, CI signing, root
/// updates and waves.
///
/// Settings come from the command line, then the TUFD_* environment, then the --config file,
/// then the defaults shown (the first that sets one wins).
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// TOML file of settings, keys named like the long options with `_` (`listen`,
    /// `data_dir`, `tls_cert`, ...); unknown keys are refused.
    #[arg(long, env = "TUFD_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log lines on stderr as text (coloured only on a terminal, and not with NO_COLOR set) or
    /// one JSON object each; each request is one `tufd::access` event.
    #[arg(long, env = "TUFD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
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
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key. Read again on SIGHUP.
    #[arg(long, env = "TUFD_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert. Read again on SIGHUP.
    #[arg(long, env = "TUFD_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// CA certificates (PEM): the device repositories (/repo/...) then answer only clients
    /// with a certificate of this CA (mutual TLS). Needs --tls-cert. Read again on SIGHUP.
    #[arg(long, env = "TUFD_CLIENT_CA", requires = "tls_cert")]
    client_ca: Option<PathBuf>,
    /// Connections served at once; more wait in the kernel's backlog.
    #[arg(long, env = "TUFD_MAX_CONNECTIONS", default_value_t = 1024)]
    max_connections: usize,
    /// Seconds a client has for the TLS handshake and for each request's headers (also the
    /// longest a kept-alive connection waits for its next request).
    #[arg(long, env = "TUFD_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    header_timeout_secs: u64,
    /// Seconds a connection may move no byte at all (mid-request or mid-response) before it
    /// is closed.
    #[arg(long, env = "TUFD_IDLE_TIMEOUT_SECS", default_value_t = 60)]
    idle_timeout_secs: u64,
    /// Largest artifact a `targets` upload may carry, in bytes; a larger one is refused with
    /// 413 before its bytes are read (clients that send `Expect: 100-continue`, as tufctl
    /// does, never send them). Uploads are streamed to <data-dir>/tmp first: keep that much
    /// free disk per concurrent upload.
    #[arg(long, env = "TUFD_MAX_ARTIFACT_BYTES", default_value_t = 1 << 30)]
    max_artifact_bytes: u64,
    /// On PostgreSQL: cache each Factory's current metadata (timestamp.json, ...) for at
    /// most this many milliseconds, dropping it as soon as another replica announces a
    /// commit to that Factory (LISTEN/NOTIFY). 0 (the default): no such cache, every read
    /// sees every replica's last commit. The embedded SQLite store always caches (it has one
    /// writer).
    #[arg(long, env = "TUFD_REPLICA_HEAD_CACHE_MS", default_value_t = 0)]
    replica_head_cache_ms: u64,
    /// Largest targets metadata (a signed targets.json, CI or production) a Factory may
    /// publish, in bytes: an add or a wave past it is refused with 413. At most (and by
    /// default) 31457280 (30 MiB), below what devices read.
    #[arg(long, env = "TUFD_MAX_TARGETS_BYTES", default_value_t = tuf_ceremony::limits::MAX_TARGETS_BYTES)]
    max_targets_bytes: u64,
    /// PKCS#11 module (shared library): the online keys (targets, snapshot, timestamp) are
    /// generated and used on its token, never extractable. Needs --slot and --pin-file.
    #[arg(long = "pkcs11", value_name = "MODULE", env = "TUFD_PKCS11_MODULE",
          requires_all = ["slot", "pin_file"])]
    pkcs11: Option<PathBuf>,
    /// The token's slot ID, or its label.
    #[arg(long, env = "TUFD_PKCS11_SLOT", requires = "pkcs11")]
    slot: Option<String>,
    /// File holding the token's user PIN (one line).
    #[arg(long, env = "TUFD_PKCS11_PIN_FILE", requires = "pkcs11")]
    pin_file: Option<PathBuf>,
}

/// Maintenance commands, run beside (backup) or instead of (restore, rotate-server-key) the
/// server.
#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Writes a consistent snapshot of a running or stopped SQLite store (database,
    /// artifacts, server key, keyring, admin token) to one file, mode 0600.
    Backup(backup::BackupArgs),
    /// Restores a backup into a data directory (tufd stopped), checking it first.
    Restore(restore::RestoreArgs),
    /// Replaces the server key (every tufd of the store stopped): re-wraps every data key.
    RotateServerKey(server_key::RotateArgs),
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum LogFormat {
    Text,
    Json,
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
    /// Concurrent CI target adds, committed together per Factory.
    pub groups: group::Groups<targets::Job, axum::response::Response>,
    pub tls: Option<Arc<tls::Tls>>,
    pub keyring: keyring::Keyring,
    pub token: Option<token::Token>,
    pub caps: input::Caps,
}

pub type Shared = Arc<AppState>;

fn main() -> anyhow::Result<()> {
    memory::map_large_buffers();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let args: Args = config::parse()?;
    match args.command {
        Some(Command::Backup(b)) => backup::run(&b).await,
        Some(Command::Restore(r)) => restore::run(&r).await,
        Some(Command::RotateServerKey(r)) => server_key::rotate(&r).await,
        None => serve(args).await,
    }
}

/// Runs the server: every check that can fail first (startup::check), then what writes.
async fn serve(args: Args) -> anyhow::Result<()> {
    init_logging(args.log_format);
    files::restrict_umask();
    let checked = startup::check(&args).await?;
    let (state, listener) = startup::start(&args, checked).await?;
    let addr = listener.local_addr()?;
    let tls = state.tls.clone();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let limits = startup::limits(&args)?;
    // Other replicas' commits, heard so that this one's cached heads follow them.
    let announcements = match &args.database_url {
        Some(url) if state.db.backend() == Backend::Postgres && args.replica_head_cache_ms > 0 => {
            Some(tokio::spawn(announce::listen(url.clone(), state.clone())))
        }
        _ => None,
    };
    let upkeep = tokio::spawn(upkeep::run(
        state.clone(),
        std::time::Duration::from_secs(args.resign_interval_secs.max(1)),
    ));
    let db = state.db.clone();
    let app = router(state);
    // Handlers are installed before the `listening on` line: a supervisor (or a test) that
    // sends SIGTERM as soon as it reads that line must get a graceful shutdown, never the
    // default action of the signal.
    let shutdown = shutdown_signal()?;
    let reloads = tls.clone().map(reload_on_hangup).transpose()?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {scheme}://{addr}")?;
        out.flush()?;
    }
    tracing::info!(%addr, scheme, "serving");
    listener::serve(listener, app, tls, limits, shutdown).await;
    upkeep.abort();
    if let Some(a) = announcements {
        a.abort();
    }
    if let Some(r) = reloads {
        r.abort();
    }
    // Before exit, SQLite's write-ahead log goes into the database file: a stopped server
    // leaves one consistent file (what a copy of it reads).
    if db.backend() == Backend::Sqlite {
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(db.pool())
            .await
        {
            tracing::warn!(error = %e, "could not checkpoint the write-ahead log");
        }
    }
    db.pool().close().await;
    tracing::info!("shut down");
    Ok(())
}

/// Logs go to stderr, as text (colour only on a terminal) or as one JSON object a line.
fn init_logging(format: LogFormat) {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    match format {
        LogFormat::Text => {
            let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            builder.with_ansi(colour).init();
        }
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .init(),
    }
}

fn router(state: Shared) -> Router {
    let routes = Router::new()
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
        .route("/ota/tokens", get(admin::list).post(admin::create))
        .route("/ota/tokens/{id}", delete(admin::retire))
        .route(
            "/ota/factories/{f}/credentials/{once}",
            get(factory::download).head(factory::probe),
        )
        .route(
            "/ota/factories/{f}/targets",
            post(targets::add).layer(DefaultBodyLimit::max(upload_limit(&state))),
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
        .merge(user_repo_routes())
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
        });
    // Only with --client-ca: no request pays for a check that cannot fail.
    let routes = if state.tls.as_ref().is_some_and(|t| t.requires_client_cert()) {
        routes.layer(axum::middleware::from_fn_with_state(
            state.clone(),
            tls::require_client_cert,
        ))
    } else {
        routes
    };
    routes
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            access::log_request,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .with_state(state)
}

/// The owner's repository API: metadata to sign against, and root updates.
fn user_repo_routes() -> Router<Shared> {
    let user_repo = "/ota/repo/{f}/api/v1/user_repo";
    Router::new()
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
}

/// A handler that panicked (a bug: none should) still answers with our JSON error.
fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    tracing::error!("a request handler panicked");
    ApiError::internal("the server failed while handling this request").into_response()
}

/// The most bytes a multipart upload may carry: the artifact and its metadata part.
fn upload_limit(state: &AppState) -> usize {
    let most = state
        .caps
        .artifact_bytes
        .saturating_add(targets::MULTIPART_ALLOWANCE);
    usize::try_from(most).unwrap_or(usize::MAX)
}

/// On SIGHUP, reads the TLS certificate, key and client CA again; connections accepted
/// afterwards use them. A file that does not load leaves the running configuration.
fn reload_on_hangup(tls: Arc<tls::Tls>) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    Ok(tokio::spawn(async move {
        while hup.recv().await.is_some() {
            match tls.reload() {
                Ok(()) => tracing::info!("SIGHUP: reloaded the TLS certificate and key"),
                Err(e) => tracing::error!(
                    error = format!("{e:#}"),
                    "SIGHUP: the TLS files did not load; still serving the previous certificate"
                ),
            }
        }
    }))
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

/// Unix seconds in the metadata time form `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_time(unix: i64) -> String {
    tuf_core::Expires::from_unix(unix)
        .map(|e| e.to_string())
        .unwrap_or_else(|_| unix.to_string())
}

#[cfg(test)]
mod manual;
