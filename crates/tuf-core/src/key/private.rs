//! Private keys held in memory (aws-lc-rs): generation, PKCS#8 import and export, signing.
//! Built with the `aws-lc` feature only: a device verifies, it never signs.

use std::fmt;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self as sig, KeyPair as _};
use base64::Engine as _;
use zeroize::Zeroizing;

use super::{spki_pem, KeyId, KeyType, PublicKey, Signer};
use crate::crypto::Algorithm;
use crate::Error;

const PEM_BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
const PEM_END: &str = "-----END PRIVATE KEY-----";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The DER inside a PKCS#8 PEM, never copied outside zeroizing buffers. Errors never quote
/// the body.
fn decode_private_pem(text: &str) -> Result<Zeroizing<Vec<u8>>, Error> {
    let text = text.trim();
    let not_pem = || Error::Key("private key is not PEM (-----BEGIN PRIVATE KEY-----)".into());
    let rest = text.strip_prefix("-----BEGIN ").ok_or_else(not_pem)?;
    let (label, rest) = rest.split_once("-----").ok_or_else(not_pem)?;
    if label != "PRIVATE KEY" {
        let shown =
            if label.len() <= 32 && label.bytes().all(|b| b.is_ascii_uppercase() || b == b' ') {
                label
            } else {
                "?"
            };
        return Err(Error::Key(format!(
            "PEM label is {shown:?}, expected PRIVATE KEY (PKCS#8)"
        )));
    }
    let body = rest.strip_suffix(PEM_END).ok_or_else(not_pem)?;
    let mut b64 = Zeroizing::new(String::with_capacity(body.len()));
    b64.extend(body.chars().filter(|c| !c.is_ascii_whitespace()));
    let mut der = Zeroizing::new(Vec::with_capacity(b64.len().div_ceil(4) * 3));
    B64.decode_vec(b64.as_bytes(), &mut der)
        .map_err(|_| Error::Key("private key PEM body is not valid base64".into()))?;
    Ok(der)
}

enum Pair {
    Ed25519(sig::Ed25519KeyPair),
    Ecdsa(sig::EcdsaKeyPair),
    Rsa(sig::RsaKeyPair),
}

/// A private key held in memory. Its PKCS#8 bytes are zeroized on drop and never printed.
pub struct PrivateKey {
    pair: Pair,
    pkcs8: Zeroizing<Vec<u8>>,
    public: PublicKey,
    key_id: KeyId,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("key_id", &self.key_id)
            .field("keytype", &self.public.keytype)
            .finish_non_exhaustive()
    }
}

impl PrivateKey {
    /// Generates a new key of `kind`.
    pub fn generate(kind: KeyType) -> Result<Self, Error> {
        let rng = SystemRandom::new();
        let fail = |what: &str| Error::Key(format!("could not generate {what} key"));
        let pkcs8: Vec<u8> = match kind {
            KeyType::Ed25519 => {
                let pair = sig::Ed25519KeyPair::generate().map_err(|_| fail("ed25519"))?;
                pair.to_pkcs8v1()
                    .map_err(|_| fail("ed25519"))?
                    .as_ref()
                    .to_vec()
            }
            KeyType::EcdsaP256 => {
                sig::EcdsaKeyPair::generate_pkcs8(&sig::ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
                    .map_err(|_| fail("ecdsa"))?
                    .as_ref()
                    .to_vec()
            }
            KeyType::Rsa3072 | KeyType::Rsa4096 => {
                let size = if kind == KeyType::Rsa3072 {
                    aws_lc_rs::rsa::KeySize::Rsa3072
                } else {
                    aws_lc_rs::rsa::KeySize::Rsa4096
                };
                let pair = sig::RsaKeyPair::generate(size).map_err(|_| fail("rsa"))?;
                let der: aws_lc_rs::encoding::Pkcs8V1Der =
                    pair.as_der().map_err(|_| fail("rsa"))?;
                der.as_ref().to_vec()
            }
        };
        let pkcs8 = Zeroizing::new(pkcs8);
        let (keytype, scheme) = match kind {
            KeyType::Ed25519 => ("ed25519", "ed25519"),
            KeyType::EcdsaP256 => ("ecdsa", "ecdsa-sha2-nistp256"),
            KeyType::Rsa3072 | KeyType::Rsa4096 => ("rsa", "rsassa-pss-sha256"),
        };
        Self::from_pkcs8_der(keytype, scheme, &pkcs8)
    }

    /// Loads a PKCS#8 private key in DER form for the given TUF keytype and scheme.
    pub fn from_pkcs8_der(keytype: &str, scheme: &str, der: &[u8]) -> Result<Self, Error> {
        let probe = PublicKey::new(keytype, scheme, String::new());
        let alg = probe.algorithm().map_err(Error::Key)?;
        let reject = |e: aws_lc_rs::error::KeyRejected| {
            Error::Key(format!(
                "private key is not a valid {keytype} PKCS#8 key: {e}"
            ))
        };
        let (pair, public) = match alg {
            Algorithm::Ed25519 => {
                let pair = sig::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(reject)?;
                let public = hex::encode(pair.public_key().as_ref());
                (Pair::Ed25519(pair), public)
            }
            Algorithm::EcdsaP256 => {
                let pair = sig::EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P256_SHA256_ASN1_SIGNING, der)
                    .map_err(reject)?;
                let spki = pair
                    .public_key()
                    .as_der()
                    .map_err(|_| Error::Key("cannot encode ecdsa public key".into()))?;
                let public = spki_pem(spki.as_ref());
                (Pair::Ecdsa(pair), public)
            }
            Algorithm::RsaPssSha256 => {
                let pair = sig::RsaKeyPair::from_pkcs8(der).map_err(reject)?;
                let bits = pair.public_modulus_len() * 8;
                if bits < 2048 {
                    return Err(Error::Key(format!("rsa key of {bits} bits is too small")));
                }
                let spki = pair
                    .public_key()
                    .as_der()
                    .map_err(|_| Error::Key("cannot encode rsa public key".into()))?;
                let public = spki_pem(spki.as_ref());
                (Pair::Rsa(pair), public)
            }
        };
        let public = PublicKey::new(keytype, scheme, public);
        let key_id = public.key_id();
        Ok(Self {
            pair,
            pkcs8: Zeroizing::new(der.to_vec()),
            public,
            key_id,
        })
    }

    /// Loads a `-----BEGIN PRIVATE KEY-----` PKCS#8 PEM.
    ///
    /// Decoded by hand into zeroizing buffers sized up front: a PEM library would leave the
    /// base64 text and the DER in ordinary heap buffers once it is done with them.
    pub fn from_pkcs8_pem(keytype: &str, scheme: &str, pem_text: &str) -> Result<Self, Error> {
        let der = decode_private_pem(pem_text)?;
        Self::from_pkcs8_der(keytype, scheme, &der)
    }

    /// The PKCS#8 PEM of this key (LF line endings, 64 columns). Every intermediate buffer
    /// is zeroized; the caller must keep the result in zeroizing storage too.
    pub fn to_pkcs8_pem(&self) -> Zeroizing<String> {
        let b64_len = self.pkcs8.len().div_ceil(3) * 4;
        let mut b64 = Zeroizing::new(String::with_capacity(b64_len));
        B64.encode_string(&*self.pkcs8, &mut b64);
        let mut out = Zeroizing::new(String::with_capacity(
            PEM_BEGIN.len() + PEM_END.len() + b64_len * 65 / 64 + 2,
        ));
        out.push_str(PEM_BEGIN);
        out.push('\n');
        // Invariant: base64 output is ASCII, so every 64-byte chunk is a char boundary.
        for line in b64.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(line).unwrap_or_default());
            out.push('\n');
        }
        out.push_str(PEM_END);
        out.push('\n');
        out
    }

    /// The private key as PKCS#8 DER. Secret: for writing key files and backups only.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }
}

impl Signer for PrivateKey {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn key_id(&self) -> &KeyId {
        &self.key_id
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, Error> {
        match &self.pair {
            Pair::Ed25519(p) => Ok(p.sign(msg).as_ref().to_vec()),
            Pair::Ecdsa(p) => p
                .sign(&SystemRandom::new(), msg)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| Error::Signing("ecdsa signing failed".into())),
            Pair::Rsa(p) => {
                let mut out = vec![0u8; p.public_modulus_len()];
                p.sign(&sig::RSA_PSS_SHA256, &SystemRandom::new(), msg, &mut out)
                    .map_err(|_| Error::Signing("rsa signing failed".into()))?;
                Ok(out)
            }
        }
    }
}
