//! A throwaway PKI for TLS tests: a CA, a server certificate for the loopback names, a client
//! certificate of the same CA, and a second CA with its own server and client certificates
//! (what a wrong CA, a swapped certificate or a foreign client looks like). PEM files in a
//! directory; nothing but `rcgen` and std, so any crate's tests can include this file with
//! `#[path = ".../tufd/tests/common/pki.rs"] mod pki;` (and `rcgen` as a dev-dependency).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

/// One CA and what it issued, as PEM files.
pub struct Authority {
    /// The CA certificate: what a client (`--ca-file`) or tufd (`--client-ca`) trusts.
    pub ca: PathBuf,
    /// A server certificate for `localhost`, `127.0.0.1` and `::1`, and its key.
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// A client certificate (extended key usage clientAuth), and its key.
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

/// Two independent CAs: `main` is the one the test trusts, `other` is a stranger.
pub struct Pki {
    pub main: Authority,
    pub other: Authority,
}

impl Pki {
    /// Writes both authorities under `dir` (`dir/main/...`, `dir/other/...`).
    pub fn new(dir: &Path) -> Self {
        Self {
            main: Authority::new(&dir.join("main"), "tuf-factory test CA"),
            other: Authority::new(&dir.join("other"), "some other CA"),
        }
    }
}

impl Authority {
    pub fn new(dir: &Path, name: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = params.self_signed(&ca_key).unwrap();
        let write = |file: &str, pem: String| {
            let path = dir.join(file);
            std::fs::write(&path, pem).unwrap();
            path
        };
        let ca = write("ca.pem", ca_cert.pem());
        let issue = |names: Vec<String>, usage: ExtendedKeyUsagePurpose, cn: &str| {
            let key = KeyPair::generate().unwrap();
            let mut p = CertificateParams::new(names).unwrap();
            p.distinguished_name.push(DnType::CommonName, cn);
            p.extended_key_usages = vec![usage];
            p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            p.use_authority_key_identifier_extension = true;
            let cert = p.signed_by(&key, &ca_cert, &ca_key).unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let names = ["localhost", "127.0.0.1", "::1"]
            .map(str::to_owned)
            .to_vec();
        let (cert, key) = issue(names, ExtendedKeyUsagePurpose::ServerAuth, "tufd");
        let server_cert = write("server.pem", cert);
        let server_key = write("server-key.pem", key);
        let (cert, key) = issue(vec![], ExtendedKeyUsagePurpose::ClientAuth, "device-1");
        let client_cert = write("client.pem", cert);
        let client_key = write("client-key.pem", key);
        Self {
            ca,
            server_cert,
            server_key,
            client_cert,
            client_key,
        }
    }
}
