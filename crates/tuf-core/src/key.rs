//! Public keys as TUF writes them, key IDs, private keys (feature `aws-lc`) and the
//! [`Signer`] trait.
//!
//! Supported (keytype, scheme) pairs:
//! - `ed25519` / `ed25519`: public key is 64 lowercase hex characters.
//! - `ecdsa` (or legacy `ecdsa-sha2-nistp256`) / `ecdsa-sha2-nistp256`: PEM SPKI public key,
//!   DER signatures.
//! - `rsa` / `rsassa-pss-sha256`: PEM SPKI public key, PSS with a 32-byte salt.
//!
//! Every key is parsed leniently (unknown types are kept, as the spec requires) and checked
//! at use: a signature by a key we cannot use simply does not count.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::crypto::{self, Algorithm};
use crate::{canonical, hash, Error};

/// A key ID. When verifying, key IDs are opaque labels that metadata uses to name keys;
/// the ones we create are the SHA-256 of the key's canonical form ([`PublicKey::key_id`]).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct KeyId(String);

impl KeyId {
    pub fn new(s: impl Into<String>) -> Result<Self, Error> {
        let s = s.into();
        if s.is_empty() {
            return Err(Error::field("keyid", "must not be empty"));
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for KeyId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::new(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// The key types this project can generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum KeyType {
    #[default]
    Ed25519,
    EcdsaP256,
    Rsa3072,
    Rsa4096,
}

impl std::str::FromStr for KeyType {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "ed25519" => Ok(Self::Ed25519),
            "ecdsa" | "ecdsa-sha2-nistp256" => Ok(Self::EcdsaP256),
            "rsa" | "rsa3072" => Ok(Self::Rsa3072),
            "rsa4096" => Ok(Self::Rsa4096),
            other => Err(Error::Key(format!(
                "unknown key type {other:?}: use ed25519, ecdsa or rsa"
            ))),
        }
    }
}

/// The `keyval` object of a key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyVal {
    pub public: String,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// A public key exactly as it appears in `root.json` or a delegation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKey {
    pub keytype: String,
    pub scheme: String,
    pub keyval: KeyVal,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl PublicKey {
    pub(crate) fn new(keytype: &str, scheme: &str, public: String) -> Self {
        Self {
            keytype: keytype.to_owned(),
            scheme: scheme.to_owned(),
            keyval: KeyVal {
                public,
                extra: BTreeMap::new(),
            },
            extra: BTreeMap::new(),
        }
    }

    /// The TUF form of a raw 32-byte ed25519 public key (as a hardware token reports it),
    /// spelled exactly as [`PrivateKey`] writes it: 64 lowercase hex characters.
    pub fn from_ed25519_raw(raw: &[u8]) -> Result<Self, Error> {
        if raw.len() != 32 {
            return Err(Error::Key(format!(
                "an ed25519 public key is 32 bytes, not {}",
                raw.len()
            )));
        }
        Ok(Self::new("ed25519", "ed25519", hex::encode(raw)))
    }

    /// The TUF form of an uncompressed P-256 point (`04 || X || Y`, as a hardware token
    /// reports it): the PEM SPKI that [`PrivateKey`] writes for the same key, byte for byte,
    /// so both give the same key ID.
    pub fn from_p256_point(point: &[u8]) -> Result<Self, Error> {
        if point.len() != 65 || point[0] != 0x04 {
            return Err(Error::Key(
                "a P-256 public key must be an uncompressed point (65 bytes starting with 04)"
                    .into(),
            ));
        }
        let mut der = Vec::with_capacity(P256_SPKI_PREFIX.len() + point.len());
        der.extend_from_slice(&P256_SPKI_PREFIX);
        der.extend_from_slice(point);
        Ok(Self::new("ecdsa", "ecdsa-sha2-nistp256", spki_pem(&der)))
    }

    /// SHA-256 of the canonical JSON of `{"keytype", "scheme", "keyval": {"public"}}`.
    pub fn key_id(&self) -> KeyId {
        let v = serde_json::json!({
            "keytype": self.keytype,
            "scheme": self.scheme,
            "keyval": {"public": self.keyval.public},
        });
        // Invariant: the object above holds strings only, which always canonicalise.
        let bytes = canonical::to_vec(&v).unwrap_or_default();
        KeyId(hash::sha256_hex(&bytes))
    }

    /// A textual identity of the key, whatever key IDs metadata uses for it: the scheme and
    /// the public value. Good for matching a key file against `root.json`; thresholds go
    /// further and count distinct decoded key material (see [`crate::verify_role`]).
    pub fn identity(&self) -> (&str, &str) {
        (self.scheme.as_str(), self.keyval.public.trim())
    }

    /// The algorithm the (keytype, scheme) pair resolves to.
    pub(crate) fn algorithm(&self) -> Result<Algorithm, String> {
        match (self.keytype.as_str(), self.scheme.as_str()) {
            ("ed25519", "ed25519") => Ok(Algorithm::Ed25519),
            ("ecdsa" | "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256") => Ok(Algorithm::EcdsaP256),
            ("rsa", "rsassa-pss-sha256") => Ok(Algorithm::RsaPssSha256),
            (kt, sc) => Err(format!("unsupported keytype/scheme {kt}/{sc}")),
        }
    }

    /// A short human label: `ed25519`, `ecdsa`, `rsa`.
    pub fn kind(&self) -> &str {
        match self.algorithm() {
            Ok(Algorithm::Ed25519) => "ed25519",
            Ok(Algorithm::EcdsaP256) => "ecdsa",
            Ok(Algorithm::RsaPssSha256) => "rsa",
            Err(_) => self.keytype.as_str(),
        }
    }

    /// Checks `signature` over `msg`. The error says why, for reports; it never panics on
    /// malformed keys or signatures.
    pub fn verify(&self, msg: &[u8], signature: &[u8]) -> Result<(), String> {
        self.verify_material(msg, signature).map(|_| ())
    }

    /// Like [`PublicKey::verify`], and on success returns what identifies the key material
    /// whatever its spelling in JSON: the algorithm and the decoded key bytes (raw ed25519
    /// key, or SPKI DER). Thresholds count distinct values of this, so one key listed under
    /// two IDs, or written twice with different hex case or PEM line breaks, counts once.
    pub(crate) fn verify_material(
        &self,
        msg: &[u8],
        signature: &[u8],
    ) -> Result<(&'static str, Vec<u8>), String> {
        let alg = self.algorithm()?;
        let (name, key_bytes) = self.material()?;
        if !crypto::verify(alg, &key_bytes, msg, signature) {
            return Err("signature does not verify".to_owned());
        }
        Ok((name, key_bytes))
    }

    /// What identifies the key material whatever its spelling in JSON: the algorithm and the
    /// decoded key bytes, as thresholds count them. An error means no signature by this key
    /// can ever verify (unsupported type, malformed public value), so it counts for nothing.
    pub fn material(&self) -> Result<(&'static str, Vec<u8>), String> {
        Ok(match self.algorithm()? {
            Algorithm::Ed25519 => {
                let raw = hex::decode(&self.keyval.public)
                    .map_err(|_| "ed25519 public key is not hex".to_owned())?;
                if raw.len() != 32 {
                    return Err("ed25519 public key is not 32 bytes".to_owned());
                }
                ("ed25519", raw)
            }
            Algorithm::EcdsaP256 => {
                let der = spki_der(&self.keyval.public)?;
                // Only the uncompressed point form (what every TUF implementation writes):
                // a compressed spelling of the same key would be a second identity.
                if !ends_with_uncompressed_p256_point(&der) {
                    return Err("ecdsa public key is not an uncompressed P-256 point".to_owned());
                }
                ("ecdsa-p256", der)
            }
            Algorithm::RsaPssSha256 => ("rsa", spki_der(&self.keyval.public)?),
        })
    }
}

/// True when `der` ends with the SPKI bit string of an uncompressed P-256 point:
/// `03 42 00 04 || X (32 bytes) || Y (32 bytes)`.
fn ends_with_uncompressed_p256_point(der: &[u8]) -> bool {
    der.len() >= 68 && der[der.len() - 68..der.len() - 64] == [0x03, 0x42, 0x00, 0x04]
}

fn spki_der(pem_text: &str) -> Result<Vec<u8>, String> {
    let p = pem::parse(pem_text.trim()).map_err(|e| format!("public key is not PEM: {e}"))?;
    if p.tag() != "PUBLIC KEY" {
        return Err(format!("PEM label is {:?}, expected PUBLIC KEY", p.tag()));
    }
    Ok(p.into_contents())
}

pub(crate) fn spki_pem(der: &[u8]) -> String {
    let p = pem::Pem::new("PUBLIC KEY", der.to_vec());
    pem::encode_config(
        &p,
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

/// SPKI DER up to the point: SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 },
/// BIT STRING (66 bytes, no unused bits) }.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// Something that signs with one key: a private key in memory here, a hardware token later.
pub trait Signer: Send + Sync {
    fn public_key(&self) -> &PublicKey;
    fn key_id(&self) -> &KeyId;
    /// Signs `msg` (the canonical bytes of a `signed` object).
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, Error>;
}

#[cfg(feature = "aws-lc")]
mod private;
#[cfg(feature = "aws-lc")]
pub use private::PrivateKey;

#[cfg(test)]
#[cfg(feature = "aws-lc")]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_reload_every_type() {
        for kind in [KeyType::Ed25519, KeyType::EcdsaP256, KeyType::Rsa3072] {
            let key = PrivateKey::generate(kind).unwrap();
            let s = key.sign(b"hello").unwrap();
            key.public_key().verify(b"hello", &s).unwrap();
            assert!(key.public_key().verify(b"hellO", &s).is_err());
            let pem = key.to_pkcs8_pem();
            let pk = key.public_key();
            let again = PrivateKey::from_pkcs8_pem(&pk.keytype, &pk.scheme, &pem).unwrap();
            assert_eq!(again.key_id(), key.key_id());
            assert_eq!(again.public_key(), key.public_key());
        }
    }

    #[test]
    fn ed25519_public_is_64_hex() {
        let key = PrivateKey::generate(KeyType::Ed25519).unwrap();
        let p = &key.public_key().keyval.public;
        assert_eq!(p.len(), 64);
        assert!(p
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(key.key_id().as_str().len(), 64);
    }

    #[test]
    fn key_id_matches_canonical_form() {
        let pk = PublicKey::new("ed25519", "ed25519", "ab".repeat(32));
        let canon = format!(
            r#"{{"keytype":"ed25519","keyval":{{"public":"{}"}},"scheme":"ed25519"}}"#,
            "ab".repeat(32)
        );
        assert_eq!(pk.key_id().as_str(), hash::sha256_hex(canon.as_bytes()));
    }

    #[test]
    fn malformed_keys_are_errors_not_panics() {
        let cases = [
            PublicKey::new("ed25519", "ed25519", "zz".into()),
            PublicKey::new("ed25519", "ed25519", "ab".into()),
            PublicKey::new("ecdsa", "ecdsa-sha2-nistp256", "not pem".into()),
            PublicKey::new("rsa", "rsassa-pss-sha256", "".into()),
            PublicKey::new("ed25519", "rsassa-pss-sha256", "ab".repeat(32)),
            PublicKey::new("unknown", "unknown", "x".into()),
        ];
        for pk in cases {
            assert!(pk.verify(b"m", &[0u8; 64]).is_err(), "{pk:?}");
        }
        assert!(PrivateKey::from_pkcs8_pem("ed25519", "ed25519", "garbage").is_err());
        assert!(PrivateKey::from_pkcs8_der("ed25519", "ed25519", &[0x30, 0x00]).is_err());
    }

    #[test]
    fn pkcs8_pem_matches_the_pem_crate_and_rejects_other_labels() {
        for kind in [KeyType::Ed25519, KeyType::EcdsaP256] {
            let key = PrivateKey::generate(kind).unwrap();
            let ours = key.to_pkcs8_pem();
            let p = pem::Pem::new("PRIVATE KEY", key.pkcs8_der().to_vec());
            let lf = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
            assert_eq!(ours.as_str(), pem::encode_config(&p, lf));
            // CRLF and surrounding blank lines are fine.
            let crlf = format!("\n{}\n", ours.replace('\n', "\r\n"));
            let pk = key.public_key();
            let again = PrivateKey::from_pkcs8_pem(&pk.keytype, &pk.scheme, &crlf).unwrap();
            assert_eq!(again.key_id(), key.key_id());
        }
        let key = PrivateKey::generate(KeyType::Ed25519).unwrap();
        let sec = key.to_pkcs8_pem().replace("PRIVATE KEY", "EC PRIVATE KEY");
        let err = PrivateKey::from_pkcs8_pem("ed25519", "ed25519", &sec).unwrap_err();
        assert!(err.to_string().contains("\"EC PRIVATE KEY\""), "{err}");
        let body: String = key.to_pkcs8_pem().lines().nth(1).unwrap().to_owned();
        let broken = key.to_pkcs8_pem().replace(&body, &format!("{body}!"));
        let err = PrivateKey::from_pkcs8_pem("ed25519", "ed25519", &broken).unwrap_err();
        assert!(
            !err.to_string().contains(&body[..16]),
            "error quotes key material: {err}"
        );
    }

    #[test]
    fn public_keys_from_raw_token_values_match_generated_ones() {
        let ed = PrivateKey::generate(KeyType::Ed25519).unwrap();
        let raw = hex::decode(&ed.public_key().keyval.public).unwrap();
        assert_eq!(&PublicKey::from_ed25519_raw(&raw).unwrap(), ed.public_key());
        assert!(PublicKey::from_ed25519_raw(&raw[..31]).is_err());

        let ec = PrivateKey::generate(KeyType::EcdsaP256).unwrap();
        let der = spki_der(&ec.public_key().keyval.public).unwrap();
        let point = &der[der.len() - 65..];
        let rebuilt = PublicKey::from_p256_point(point).unwrap();
        assert_eq!(&rebuilt, ec.public_key());
        assert_eq!(rebuilt.key_id(), *ec.key_id());
        assert!(PublicKey::from_p256_point(&point[1..]).is_err());
        let mut compressed = point[..33].to_vec();
        compressed[0] = 0x02;
        assert!(PublicKey::from_p256_point(&compressed).is_err());
    }

    #[test]
    fn wrong_type_private_key_is_rejected() {
        let ec = PrivateKey::generate(KeyType::EcdsaP256).unwrap();
        assert!(PrivateKey::from_pkcs8_der("ed25519", "ed25519", ec.pkcs8_der()).is_err());
    }
}
