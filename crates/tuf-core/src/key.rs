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
    /// A key ID as written in metadata; refused when empty. That it is the key's own ID is
    /// checked where keys are listed, not here.
    pub fn new(s: impl Into<String>) -> Result<Self, Error> {
        let s = s.into();
        if s.is_empty() {
            return Err(Error::field("keyid", "must not be empty"));
        }
        Ok(Self(s))
    }

    /// The key ID as written.
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
    /// ed25519 (scheme `ed25519`).
    #[default]
    Ed25519,
    /// ECDSA on P-256 with SHA-256 (scheme `ecdsa-sha2-nistp256`).
    EcdsaP256,
    /// RSA-PSS with SHA-256, 3072-bit modulus (scheme `rsassa-pss-sha256`).
    Rsa3072,
    /// RSA-PSS with SHA-256, 4096-bit modulus (scheme `rsassa-pss-sha256`).
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
    /// The public key, in the encoding the key type uses (hex for ed25519, PEM otherwise).
    pub public: String,
    /// Fields we do not know, kept so that the key ID (a hash of the whole key) stays the same.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// A public key exactly as it appears in `root.json` or a delegation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKey {
    /// The `keytype` field (`ed25519`, `ecdsa`, `rsa`).
    pub keytype: String,
    /// The `scheme` field: which signature algorithm verifies with this key.
    pub scheme: String,
    /// The key material.
    pub keyval: KeyVal,
    /// Fields we do not know, kept so that the key ID stays the same.
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
    /// The public half, as listed in metadata.
    fn public_key(&self) -> &PublicKey;
    /// The key's ID (the SHA-256 of its canonical public form).
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

    /// The `Error::Key` text of `r`, or a panic naming what came instead.
    fn key_error<T: fmt::Debug>(r: Result<T, Error>) -> String {
        match r {
            Err(Error::Key(text)) => text,
            other => panic!("expected Error::Key, got {other:?}"),
        }
    }

    #[test]
    fn sign_verify_and_reload_every_type() {
        for kind in [KeyType::Ed25519, KeyType::EcdsaP256, KeyType::Rsa3072] {
            let key = PrivateKey::generate(kind).unwrap();
            let s = key.sign(b"hello").unwrap();
            key.public_key().verify(b"hello", &s).unwrap();
            assert_eq!(
                key.public_key().verify(b"hellO", &s),
                Err("signature does not verify".to_owned())
            );
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
    fn key_types_parse_by_name_and_unknown_names_are_refused() {
        for (name, kind) in [
            ("ed25519", KeyType::Ed25519),
            ("ecdsa", KeyType::EcdsaP256),
            ("ecdsa-sha2-nistp256", KeyType::EcdsaP256),
            ("rsa", KeyType::Rsa3072),
            ("rsa3072", KeyType::Rsa3072),
            ("rsa4096", KeyType::Rsa4096),
        ] {
            assert_eq!(name.parse::<KeyType>().unwrap(), kind, "{name}");
        }
        assert_eq!(
            key_error("dsa".parse::<KeyType>()),
            "unknown key type \"dsa\": use ed25519, ecdsa or rsa"
        );
    }

    #[test]
    fn malformed_keys_are_errors_not_panics() {
        let cases = [
            (
                PublicKey::new("ed25519", "ed25519", "zz".into()),
                "ed25519 public key is not hex",
            ),
            (
                PublicKey::new("ed25519", "ed25519", "ab".into()),
                "ed25519 public key is not 32 bytes",
            ),
            (
                PublicKey::new("ecdsa", "ecdsa-sha2-nistp256", "not pem".into()),
                "public key is not PEM",
            ),
            (
                PublicKey::new("rsa", "rsassa-pss-sha256", "".into()),
                "public key is not PEM",
            ),
            (
                PublicKey::new("ed25519", "rsassa-pss-sha256", "ab".repeat(32)),
                "unsupported keytype/scheme ed25519/rsassa-pss-sha256",
            ),
            (
                PublicKey::new("unknown", "unknown", "x".into()),
                "unsupported keytype/scheme unknown/unknown",
            ),
        ];
        for (pk, why) in cases {
            let err = pk.verify(b"m", &[0u8; 64]).unwrap_err();
            assert!(err.starts_with(why), "{pk:?}: {err}");
        }
        assert_eq!(
            key_error(PrivateKey::from_pkcs8_pem("ed25519", "ed25519", "garbage")),
            "private key is not PEM (-----BEGIN PRIVATE KEY-----)"
        );
        let err = key_error(PrivateKey::from_pkcs8_der(
            "ed25519",
            "ed25519",
            &[0x30, 0x00],
        ));
        assert!(
            err.starts_with("private key is not a valid ed25519 PKCS#8 key"),
            "{err}"
        );
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
        assert_eq!(
            err.to_string(),
            "key: private key PEM body is not valid base64"
        );
    }

    #[test]
    fn public_keys_from_raw_token_values_match_generated_ones() {
        let ed = PrivateKey::generate(KeyType::Ed25519).unwrap();
        let raw = hex::decode(&ed.public_key().keyval.public).unwrap();
        assert_eq!(&PublicKey::from_ed25519_raw(&raw).unwrap(), ed.public_key());
        assert_eq!(
            key_error(PublicKey::from_ed25519_raw(&raw[..31])),
            "an ed25519 public key is 32 bytes, not 31"
        );

        let ec = PrivateKey::generate(KeyType::EcdsaP256).unwrap();
        let der = spki_der(&ec.public_key().keyval.public).unwrap();
        let point = &der[der.len() - 65..];
        let rebuilt = PublicKey::from_p256_point(point).unwrap();
        assert_eq!(&rebuilt, ec.public_key());
        assert_eq!(rebuilt.key_id(), *ec.key_id());
        // Each fault alone: a wrong length (64 or 66 bytes, still starting with 04), a
        // 65-byte value that is not an uncompressed point, a compressed point.
        let mut longer = point.to_vec();
        longer.push(0);
        let mut not_04 = point.to_vec();
        not_04[0] = 0x03;
        let mut compressed = point[..33].to_vec();
        compressed[0] = 0x02;
        for bad in [&point[..64], &longer[..], &not_04[..], &compressed[..]] {
            assert_eq!(
                key_error(PublicKey::from_p256_point(bad)),
                "a P-256 public key must be an uncompressed point (65 bytes starting with 04)",
                "{}",
                hex::encode(bad)
            );
        }
    }

    #[test]
    fn wrong_type_private_key_is_rejected() {
        let ec = PrivateKey::generate(KeyType::EcdsaP256).unwrap();
        let err = key_error(PrivateKey::from_pkcs8_der(
            "ed25519",
            "ed25519",
            ec.pkcs8_der(),
        ));
        assert!(
            err.starts_with("private key is not a valid ed25519 PKCS#8 key"),
            "{err}"
        );
    }

    #[test]
    fn key_ids_display_as_their_hex() {
        let key = PrivateKey::generate(KeyType::Ed25519).unwrap();
        let id = key.key_id();
        assert_eq!(id.to_string(), id.as_str());
        assert_eq!(format!("keyid {id}"), format!("keyid {}", id.as_str()));
    }

    #[test]
    fn identity_is_the_scheme_and_the_trimmed_public_value() {
        // What matches a key file against root.json (tuf-credentials' `same_key`): two
        // spellings that differ only by surrounding whitespace are one key; another scheme
        // or another value is another key.
        let key = PrivateKey::generate(KeyType::EcdsaP256).unwrap();
        let pk = key.public_key();
        assert_eq!(
            pk.identity(),
            ("ecdsa-sha2-nistp256", pk.keyval.public.trim())
        );
        let mut padded = pk.clone();
        padded.keyval.public = format!("\n{}\n\n", pk.keyval.public);
        assert_eq!(padded.identity(), pk.identity());
        let other = PrivateKey::generate(KeyType::EcdsaP256).unwrap();
        assert_ne!(other.public_key().identity(), pk.identity());
        let ed = PrivateKey::generate(KeyType::Ed25519).unwrap();
        assert_eq!(ed.public_key().identity().0, "ed25519");
    }

    #[test]
    fn a_pem_label_is_quoted_only_when_it_is_short_and_plain() {
        let key = PrivateKey::generate(KeyType::Ed25519).unwrap();
        let pem = key.to_pkcs8_pem();
        let relabel = |label: &str| pem.replace("PRIVATE KEY", label);
        // Short upper-case labels are named; anything else (long, or with other characters,
        // which could be pasted secret text) is shown as "?".
        for (label, shown) in [
            ("RSA PRIVATE KEY", "RSA PRIVATE KEY"),
            ("secret text", "?"),
            ("A".repeat(33).as_str(), "?"),
            ("ECDSA_KEY", "?"),
        ] {
            let err = PrivateKey::from_pkcs8_pem("ed25519", "ed25519", &relabel(label));
            assert_eq!(
                key_error(err),
                format!("PEM label is {shown:?}, expected PRIVATE KEY (PKCS#8)")
            );
        }
    }

    #[test]
    fn generated_rsa_keys_have_the_size_asked_for() {
        for (kind, bytes) in [(KeyType::Rsa3072, 384), (KeyType::Rsa4096, 512)] {
            let key = PrivateKey::generate(kind).unwrap();
            assert_eq!(key.sign(b"m").unwrap().len(), bytes, "{kind:?}");
            assert_eq!(key.public_key().scheme, "rsassa-pss-sha256");
        }
    }

    /// A throwaway 1024-bit RSA key (made with `openssl genpkey`), for the size bound only.
    const RSA_1024_PEM: &str = "-----BEGIN PRIVATE KEY-----\n\
MIICeAIBADANBgkqhkiG9w0BAQEFAASCAmIwggJeAgEAAoGBAJw4tzNW6jDauDa8\n\
OIPKDJMxXdNajcBwsCSDzrkyKISJWCwuhGi4ejFAgIoXf3C55b5dDKibGzYnacyu\n\
3hchzDC+w+2YVBWH+PnKtNdCpKuI62VJxdeIJW5fStzw1s1UE/o/wPeCJBv7MTnS\n\
+DTgHBv2mMDGsfVO25WIfzMN89UnAgMBAAECgYAmmNyqko7KA0AARgCwjvsMYuYL\n\
khPzt+PNIcOxffMEy+o9AEE2nl2STZ10gNm7wDJDFjpKbggLGTHKoGm+zVrlTWo8\n\
XuCxVGJC3JUZ+nH/+q0VcCO+fgCzMfBLxzDqKfuczUciIV9i9PFIFbbM+qdDKJMR\n\
wCCcDOa1J5omy8cCAQJBAMlyTCHFLQJg+7XxzR663lhWuvdn6y2GpI+2unHem2RR\n\
qVMqOhLOa7fix/L4jlbEutFOfZDw9iTeDzkUXQJKVSUCQQDGhxq98M1f2GJF9sso\n\
yH+VDdVenfHkPuVXnkoXz/PJuRokr0lxVZ69a9XwNLsA7StETmZSTTMPo2/St4J5\n\
Ov1bAkEAvE2QJt0WdqvLfsb5c2lAYBkqigvkxVifyQsI+1oXrU28VtYZFO1JuclO\n\
GKwI+cjJzM9vBqaHn+zHFBcZ3gM31QJBAJirAPecHHNeVYR0GxtLxED9mF3gnEnn\n\
zDoq8dOKCXHRNLeNTK8pJp+IM8c65av6ttEacTlNQLz/9FhY4q8TnA0CQQCxmcF5\n\
DdXU62qkJcQ+WONC8rd9k65gySVXr4C6vxnuUZsevQ/JkoiUVITLUMpr3KbnBZwH\n\
Qdo+JmpHHw6zxaf7\n\
-----END PRIVATE KEY-----";

    #[test]
    fn rsa_keys_below_2048_bits_are_refused_and_2048_is_enough() {
        // aws-lc refuses it first; our own bound stays for a library that would not.
        let small = PrivateKey::from_pkcs8_pem("rsa", "rsassa-pss-sha256", RSA_1024_PEM);
        assert_eq!(
            key_error(small),
            "private key is not a valid rsa PKCS#8 key: TooSmall"
        );
        use aws_lc_rs::encoding::AsDer as _;
        let pair =
            aws_lc_rs::signature::RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let der: aws_lc_rs::encoding::Pkcs8V1Der = pair.as_der().unwrap();
        let key = PrivateKey::from_pkcs8_der("rsa", "rsassa-pss-sha256", der.as_ref()).unwrap();
        let s = key.sign(b"m").unwrap();
        assert_eq!(s.len(), 256);
        key.public_key().verify(b"m", &s).unwrap();
    }

    #[test]
    fn debug_shows_the_key_id_and_type_and_never_the_private_key() {
        for kind in [KeyType::Ed25519, KeyType::EcdsaP256, KeyType::Rsa3072] {
            let key = PrivateKey::generate(kind).unwrap();
            let shown = format!("{key:?}");
            assert_eq!(
                shown,
                format!(
                    "PrivateKey {{ key_id: {:?}, keytype: {:?}, .. }}",
                    key.key_id(),
                    key.public_key().keytype
                )
            );
            let pem = key.to_pkcs8_pem();
            let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
            let alternate = format!("{key:#?}");
            for secret in [hex::encode(key.pkcs8_der()), body] {
                for window in secret.as_bytes().chunks_exact(16) {
                    let w = std::str::from_utf8(window).unwrap();
                    assert!(!shown.contains(w) && !alternate.contains(w), "{shown}");
                }
            }
        }
    }
}
