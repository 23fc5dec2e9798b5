//! TLS for the device: which certificate authorities it trusts, the client certificate it
//! shows (mTLS), and the rustls crypto provider of the build (aws-lc-rs, or RustCrypto with
//! the `pure-rust` feature).

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};

use crate::Error;

/// What a device's TLS trusts and shows.
#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
    /// PEM certificates of the CAs to trust instead of the bundled web PKI roots.
    pub ca_file: Option<PathBuf>,
    /// PEM certificate chain (leaf first) shown to servers that ask for one.
    pub client_cert: Option<PathBuf>,
    /// PEM private key of `client_cert` (PKCS#8, PKCS#1 RSA or SEC1 EC).
    pub client_key: Option<PathBuf>,
}

/// PEM files larger than this are no certificates or keys of ours.
const PEM_MAX: u64 = 1024 * 1024;

/// The crypto provider rustls runs on in this build.
pub fn provider() -> Arc<CryptoProvider> {
    #[cfg(feature = "pure-rust")]
    return Arc::new(rustls_rustcrypto::provider());
    #[cfg(not(feature = "pure-rust"))]
    return Arc::new(rustls::crypto::aws_lc_rs::default_provider());
}

/// The TLS configuration for `options`: every file read and checked now, so a wrong path,
/// an empty CA file or a key that does not match its certificate is an error before any
/// connection (never a failure deep inside a handshake).
pub fn config(options: &TlsOptions) -> Result<TlsConfig, Error> {
    let provider = provider();
    let roots = match &options.ca_file {
        Some(path) => {
            let certs = certificates(path)?;
            RootCerts::Specific(Arc::new(certs))
        }
        None => RootCerts::WebPki,
    };
    let client_cert = match (&options.client_cert, &options.client_key) {
        (Some(cert), Some(key)) => Some(client_cert(cert, key, &provider)?),
        (None, None) => None,
        _ => {
            return Err(Error::Config(
                "--client-cert and --client-key go together".to_owned(),
            ))
        }
    };
    Ok(TlsConfig::builder()
        .root_certs(roots)
        .client_cert(client_cert)
        .unversioned_rustls_crypto_provider(provider)
        .build())
}

/// Every certificate in PEM file `path`; none is an error.
fn certificates(path: &Path) -> Result<Vec<Certificate<'static>>, Error> {
    let pem = read_pem(path)?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => {
                return Err(Error::Config(format!(
                    "{}: not a PEM file of certificates: {e}",
                    path.display()
                )))
            }
        }
    }
    if certs.is_empty() {
        return Err(Error::Config(format!(
            "{}: no certificate (-----BEGIN CERTIFICATE-----) in it",
            path.display()
        )));
    }
    Ok(certs)
}

fn client_cert(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<ClientCert, Error> {
    let chain = certificates(cert)?;
    let pem = read_pem(key)?;
    let key_err = |why: String| Error::Config(format!("{}: {why}", key.display()));
    let private =
        PrivateKey::from_pem(&pem).map_err(|e| key_err(format!("no private key: {e}")))?;
    // The same key as rustls sees it: it checks that the key loads and matches the leaf.
    let der =
        PrivateKeyDer::from_pem_slice(&pem).map_err(|e| key_err(format!("no private key: {e}")))?;
    let certs: Vec<CertificateDer<'static>> = chain
        .iter()
        .map(|c| CertificateDer::from(c.der().to_vec()))
        .collect();
    rustls::sign::CertifiedKey::from_der(certs, der, provider).map_err(|e| {
        key_err(format!(
            "cannot be used with the certificate in {}: {e}",
            cert.display()
        ))
    })?;
    Ok(ClientCert::new_with_certs(&chain, private))
}

fn read_pem(path: &Path) -> Result<Vec<u8>, Error> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut bytes = Vec::new();
    file.take(PEM_MAX + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 > PEM_MAX {
        return Err(Error::TooLarge {
            what: path.display().to_string(),
            limit: PEM_MAX,
        });
    }
    Ok(bytes)
}
