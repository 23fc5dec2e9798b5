//! TLS for the listener (rustls): the server certificate and key from PEM files, read again on
//! SIGHUP so a renewed certificate takes effect without a restart, and optionally a CA whose
//! client certificates the device repositories (`/repo/...`) require.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::Context as _;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use serde_json::json;
use tokio_rustls::TlsAcceptor;

use crate::error::ApiError;
use crate::Shared;

/// Where the PEM files are; read at start and on every SIGHUP.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// CA certificates (PEM) whose client certificates `/repo/...` requires.
    pub client_ca: Option<PathBuf>,
}

/// The current TLS configuration; [`Tls::reload`] swaps it for connections accepted later.
pub struct Tls {
    files: TlsFiles,
    current: RwLock<Arc<ServerConfig>>,
}

impl Tls {
    pub fn load(files: TlsFiles) -> anyhow::Result<Self> {
        let config = build(&files)?;
        Ok(Self {
            files,
            current: RwLock::new(Arc::new(config)),
        })
    }

    /// Reads the files again. On any error the configuration in use stays.
    pub fn reload(&self) -> anyhow::Result<()> {
        let config = Arc::new(build(&self.files)?);
        // A poisoned lock only means a panic while swapping an Arc; the value is whole.
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = config;
        Ok(())
    }

    pub fn acceptor(&self) -> TlsAcceptor {
        let config = self
            .current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        TlsAcceptor::from(config)
    }

    pub fn requires_client_cert(&self) -> bool {
        self.files.client_ca.is_some()
    }
}

/// What the connection a request came on proved, inserted into every request.
#[derive(Clone, Copy, Debug, Default)]
pub struct Peer {
    /// The client presented a certificate that chains to the `--client-ca` CA (rustls has
    /// refused the handshake for any other certificate).
    pub client_cert: bool,
    /// The client's address (for the access log).
    pub remote: Option<std::net::SocketAddr>,
}

/// Middleware: with `--client-ca`, the device repositories answer only clients that
/// presented a certificate of that CA (`403 client certificate required` otherwise). The
/// operator API authenticates with tokens and needs none.
pub async fn require_client_cert(
    State(state): State<Shared>,
    req: Request,
    next: Next,
) -> Response {
    let needed = state.tls.as_ref().is_some_and(|t| t.requires_client_cert())
        && req.uri().path().starts_with("/repo/");
    let presented = req
        .extensions()
        .get::<Peer>()
        .is_some_and(|p| p.client_cert);
    if needed && !presented {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "client certificate required",
            json!("the device repositories of this server need a client certificate of its CA"),
        )
        .into_response();
    }
    next.run(req).await
}

fn build(files: &TlsFiles) -> anyhow::Result<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = read_certs(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key).with_context(|| {
        format!(
            "reading the TLS private key {} (PEM: PKCS#8, PKCS#1 or SEC1)",
            files.key.display()
        )
    })?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in read_certs(ca)? {
                roots
                    .add(cert)
                    .with_context(|| format!("a CA certificate in {}", ca.display()))?;
            }
            // Unauthenticated clients may still connect (the operator API uses tokens); a
            // certificate that is presented must verify, or the handshake fails.
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .with_context(|| format!("client CA {}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(certs, key).with_context(|| {
        format!(
            "the TLS key {} does not fit the certificate {}",
            files.key.display(),
            files.cert.display()
        )
    })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn read_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("reading certificates from {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing the PEM certificates in {}", path.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "{} holds no PEM certificate",
        path.display()
    );
    Ok(certs)
}
