//! The crypto backend: signature verification and SHA-2, from aws-lc-rs (feature `aws-lc`,
//! the default, which also signs and generates keys; needs a C compiler) or from RustCrypto
//! (feature `pure-rust`: verification and hashing only, no C compiler). When both are on,
//! RustCrypto verifies and hashes and aws-lc-rs only signs, so a build with both runs every
//! test of this crate against the pure-Rust code.
//!
//! Both backends accept exactly the same inputs: ed25519 (32-byte public key), ECDSA P-256
//! with SHA-256 (SPKI public key, DER signature) and RSA-PSS with SHA-256, MGF1-SHA-256 and
//! a 32-byte salt (SPKI public key, modulus of 2048 to 8192 bits).

#[cfg(not(any(feature = "aws-lc", feature = "pure-rust")))]
compile_error!("tuf-core needs a crypto backend: feature `aws-lc` (default) or `pure-rust`");

#[cfg(feature = "aws-lc")]
#[cfg_attr(feature = "pure-rust", allow(dead_code))]
mod aws_lc;
#[cfg(feature = "pure-rust")]
mod rust_crypto;

#[cfg(all(feature = "aws-lc", not(feature = "pure-rust")))]
use aws_lc as backend;
#[cfg(feature = "pure-rust")]
use rust_crypto as backend;

/// Which code verifies signatures and computes hashes in this build.
#[cfg(feature = "pure-rust")]
pub const BACKEND: &str = "RustCrypto";
/// Which code verifies signatures and computes hashes in this build.
#[cfg(all(feature = "aws-lc", not(feature = "pure-rust")))]
pub const BACKEND: &str = "aws-lc-rs";

/// A signature algorithm of TUF keys, as a public key's (keytype, scheme) resolves it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Algorithm {
    Ed25519,
    EcdsaP256,
    RsaPssSha256,
}

/// The digests `hashes` objects use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DigestAlgorithm {
    Sha256,
    Sha512,
}

/// Whether `signature` over `msg` verifies with `key` (raw ed25519 key or SPKI DER). Never
/// panics on malformed input: it simply does not verify.
pub(crate) fn verify(alg: Algorithm, key: &[u8], msg: &[u8], signature: &[u8]) -> bool {
    backend::verify(alg, key, msg, signature)
}

/// An incremental digest.
pub(crate) struct Digest(backend::Context);

impl Digest {
    pub(crate) fn new(alg: DigestAlgorithm) -> Self {
        Self(backend::Context::new(alg))
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.0.finish()
    }
}

pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    let mut d = Digest::new(DigestAlgorithm::Sha256);
    d.update(data);
    let mut out = [0u8; 32];
    out.copy_from_slice(&d.finish());
    out
}

/// Both backends side by side (`cargo test -p tuf-core --features pure-rust`): every
/// signature aws-lc-rs makes, and every alteration of it, gets the same verdict from both.
#[cfg(test)]
#[cfg(all(feature = "aws-lc", feature = "pure-rust"))]
mod tests {
    use super::*;
    use crate::key::{KeyType, PrivateKey, Signer};

    fn both(alg: Algorithm, key: &[u8], msg: &[u8], sig: &[u8]) -> bool {
        let a = aws_lc::verify(alg, key, msg, sig);
        let r = rust_crypto::verify(alg, key, msg, sig);
        assert_eq!(a, r, "aws-lc-rs says {a}, RustCrypto says {r} for {alg:?}");
        a
    }

    #[test]
    fn backends_agree_on_signatures_and_alterations() {
        for (kind, alg) in [
            (KeyType::Ed25519, Algorithm::Ed25519),
            (KeyType::EcdsaP256, Algorithm::EcdsaP256),
            (KeyType::Rsa3072, Algorithm::RsaPssSha256),
            (KeyType::Rsa4096, Algorithm::RsaPssSha256),
        ] {
            let key = PrivateKey::generate(kind).unwrap();
            let (_, material) = key.public_key().material().unwrap();
            let msg = b"canonical bytes of a signed object";
            let sig = key.sign(msg).unwrap();
            assert!(both(alg, &material, msg, &sig), "{kind:?}");
            assert!(!both(alg, &material, b"other bytes", &sig), "{kind:?}");
            for i in [0, sig.len() / 2, sig.len() - 1] {
                let mut bad = sig.clone();
                bad[i] ^= 0x01;
                assert!(!both(alg, &material, msg, &bad), "{kind:?} byte {i}");
            }
            assert!(!both(alg, &material, msg, &sig[..sig.len() - 1]));
            assert!(!both(alg, &material, msg, &[]));
            let mut bad_key = material.clone();
            let last = bad_key.len() - 1;
            bad_key[last] ^= 0x01;
            assert!(!both(alg, &bad_key, msg, &sig), "{kind:?} altered key");
            assert!(!both(alg, &material[..material.len() / 2], msg, &sig));
            // The right signature under another algorithm never verifies.
            for other in [
                Algorithm::Ed25519,
                Algorithm::EcdsaP256,
                Algorithm::RsaPssSha256,
            ] {
                if other != alg {
                    assert!(!both(other, &material, msg, &sig));
                }
            }
        }
    }

    #[test]
    fn backends_agree_on_rsa_pss_salt_lengths() {
        use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};
        use rsa::signature::{RandomizedSigner, SignatureEncoding};
        let key = PrivateKey::generate(KeyType::Rsa3072).unwrap();
        let private = rsa::RsaPrivateKey::from_pkcs8_der(key.pkcs8_der()).unwrap();
        let spki = private.to_public_key().to_public_key_der().unwrap();
        let msg = b"m";
        for salt in [0usize, 20, 32, 64] {
            let signer =
                rsa::pss::SigningKey::<sha2::Sha256>::new_with_salt_len(private.clone(), salt);
            let sig = signer.sign_with_rng(&mut rand_core::OsRng, msg).to_vec();
            assert_eq!(
                both(Algorithm::RsaPssSha256, spki.as_bytes(), msg, &sig),
                salt == 32,
                "salt {salt}"
            );
        }
    }

    #[test]
    fn backends_agree_on_digests() {
        for alg in [DigestAlgorithm::Sha256, DigestAlgorithm::Sha512] {
            for data in [&b""[..], b"abc", &[7u8; 100_000]] {
                let mut a = aws_lc::Context::new(alg);
                let mut r = rust_crypto::Context::new(alg);
                for chunk in data.chunks(999) {
                    a.update(chunk);
                    r.update(chunk);
                }
                assert_eq!(a.finish(), r.finish(), "{alg:?}");
            }
        }
    }
}
