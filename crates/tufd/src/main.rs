//! `tufd`, the tuf-factory server. See `docs/ARCHITECTURE.md` for the module map and flows.

// The doc comments of the command-line options are clap's `--help` text, written for a
// terminal (`http://<listen address>`), not for rustdoc's Markdown.
#![allow(rustdoc::bare_urls, rustdoc::invalid_html_tags)]

mod admin;
mod audit;
mod auth;
mod cache;
mod curation;
mod db;
mod error;
mod factory;
mod files;
mod input;
mod keyring;
mod listener;
mod metrics;
mod repo;
mod rotation;
mod serve;
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
    pub tls: Option<Arc<tls::Tls>>,
    pub keyring: keyring::Keyring,
    pub token: Option<token::Token>,
    pub caps: input::Caps,
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
    check_periods(&args)?;
    files::restrict_umask();
    files::create_private_dir(&args.data_dir)?;
    files::tighten(&args.data_dir)?;
    let tmp_dir = args.data_dir.join("tmp");
    files::create_private_dir(&tmp_dir)?;
    let (files, bytes) = files::remove_leftover_uploads(&tmp_dir)?;
    if files > 0 {
        tracing::warn!(
            files,
            bytes,
            dir = %tmp_dir.display(),
            "removed upload temporary files an earlier run left behind"
        );
    }
    let Opened {
        db,
        vault,
        keyring,
        token,
        store,
    } = open_store(&args).await?;
    let backend = db.backend();
    let tls = load_tls(&args)?;
    let limits = limits(&args)?;
    let caps = caps(&args)?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    let public_url = args
        .public_url
        .clone()
        .unwrap_or_else(|| format!("{scheme}://{addr}"))
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
        tls: tls.clone(),
        keyring,
        token,
        caps,
    });
    repo::reseal_legacy(&state).await?;
    repo::finish_destruction(&state).await;
    let upkeep = tokio::spawn(upkeep::run(
        state.clone(),
        std::time::Duration::from_secs(args.resign_interval_secs.max(1)),
    ));

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
    if let Some(r) = reloads {
        r.abort();
    }
    tracing::info!("shut down");
    Ok(())
}

fn router(state: Shared) -> Router {
    let user_repo = "/ota/repo/{f}/api/v1/user_repo";
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
            metrics::count_requests,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .with_state(state)
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

/// The store and the secrets that open it.
struct Opened {
    db: Db,
    vault: Vault,
    keyring: keyring::Keyring,
    token: Option<token::Token>,
    store: Box<dyn ArtifactStore>,
}

/// Server key, database (migrated), keyring, token, admin token and artifact store, in that
/// order: a replica without the shared server key must not touch the database.
async fn open_store(args: &Args) -> anyhow::Result<Opened> {
    let backend = match &args.database_url {
        Some(url) => Backend::of_url(url)?,
        None => Backend::Sqlite,
    };
    let vault = load_server_key(args, backend)?;
    let db = match &args.database_url {
        Some(url) => Db::connect(url).await?,
        None => Db::open_sqlite(&args.data_dir.join("tufd.sqlite")).await?,
    };
    db.migrate().await?;
    check_server_key(&db, &vault).await?;
    let keyring = keyring::Keyring::open(&args.data_dir, &db).await?;
    let token = match (&args.pkcs11, &args.slot, &args.pin_file) {
        (Some(module), Some(slot), Some(pin_file)) => {
            Some(token::Token::open(module, slot, pin_file)?)
        }
        _ => None,
    };
    admin::ensure_admin_token(&db, &args.data_dir).await?;
    let store: Box<dyn ArtifactStore> = match db.backend() {
        Backend::Postgres => Box::new(DbStore::new(db.clone())),
        Backend::Sqlite => Box::new(
            FileStore::new(args.data_dir.join("artifacts")).context("creating artifact dir")?,
        ),
    };
    Ok(Opened {
        db,
        vault,
        keyring,
        token,
        store,
    })
}

fn check_periods(args: &Args) -> anyhow::Result<()> {
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
    Ok(())
}

fn load_tls(args: &Args) -> anyhow::Result<Option<Arc<tls::Tls>>> {
    let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) else {
        return Ok(None);
    };
    Ok(Some(Arc::new(tls::Tls::load(tls::TlsFiles {
        cert: cert.clone(),
        key: key.clone(),
        client_ca: args.client_ca.clone(),
    })?)))
}

fn caps(args: &Args) -> anyhow::Result<input::Caps> {
    let most = tuf_ceremony::limits::MAX_TARGETS_BYTES;
    anyhow::ensure!(
        (64 * 1024..=most).contains(&args.max_targets_bytes),
        "--max-targets-bytes must be between 65536 and {most} (devices refuse larger targets \
         metadata)"
    );
    anyhow::ensure!(
        args.max_artifact_bytes >= 1,
        "--max-artifact-bytes must be at least 1"
    );
    Ok(input::Caps {
        artifact_bytes: args.max_artifact_bytes,
        targets_bytes: args.max_targets_bytes,
    })
}

fn limits(args: &Args) -> anyhow::Result<listener::Limits> {
    anyhow::ensure!(
        (1..=1_000_000).contains(&args.max_connections),
        "--max-connections must be between 1 and 1000000"
    );
    for (name, v) in [
        ("header", args.header_timeout_secs),
        ("idle", args.idle_timeout_secs),
    ] {
        anyhow::ensure!(
            (1..=3600).contains(&v),
            "--{name}-timeout-secs must be between 1 and 3600"
        );
    }
    Ok(listener::Limits {
        max_connections: args.max_connections,
        header_timeout: std::time::Duration::from_secs(args.header_timeout_secs),
        idle_timeout: std::time::Duration::from_secs(args.idle_timeout_secs),
    })
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
        files::write_secret(&path, &key)?;
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

/// Unix seconds in the metadata time form `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_time(unix: i64) -> String {
    tuf_core::Expires::from_unix(unix)
        .map(|e| e.to_string())
        .unwrap_or_else(|_| unix.to_string())
}

#[cfg(test)]
mod manual;
