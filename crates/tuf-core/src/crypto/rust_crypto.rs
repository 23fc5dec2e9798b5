//! RustCrypto: verification and SHA-2 in pure Rust, held to what aws-lc-rs accepts (see the
//! cross-checks in `crypto::tests`).

use ed25519_dalek::Verifier as _;
use rsa::pkcs1::der::Decode as _;
use rsa::pkcs8::spki::SubjectPublicKeyInfoRef;
use rsa::traits::PublicKeyParts as _;
use rsa::BigUint;
use sha2::Digest as _;

use super::{Algorithm, DigestAlgorithm};

pub(crate) fn verify(alg: Algorithm, key: &[u8], msg: &[u8], signature: &[u8]) -> bool {
    match alg {
        Algorithm::Ed25519 => ed25519(key, msg, signature),
        Algorithm::EcdsaP256 => ecdsa_p256(key, msg, signature),
        Algorithm::RsaPssSha256 => rsa_pss(key, msg, signature),
    }
}

fn ed25519(key: &[u8], msg: &[u8], signature: &[u8]) -> bool {
    let (Ok(key), Ok(sig)) = (
        <&[u8; 32]>::try_from(key),
        ed25519_dalek::Signature::from_slice(signature),
    ) else {
        return false;
    };
    let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(key) else {
        return false;
    };
    key.verify(msg, &sig).is_ok()
}

fn ecdsa_p256(key: &[u8], msg: &[u8], signature: &[u8]) -> bool {
    use p256::pkcs8::DecodePublicKey as _;
    let Ok(key) = p256::ecdsa::VerifyingKey::from_public_key_der(key) else {
        return false;
    };
    let Ok(sig) = p256::ecdsa::DerSignature::from_bytes(signature) else {
        return false;
    };
    key.verify(msg, &sig).is_ok()
}

/// `rsaEncryption`, the algorithm of an RSA SPKI.
const RSA_ENCRYPTION: rsa::pkcs8::ObjectIdentifier =
    rsa::pkcs8::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

fn rsa_pss(key: &[u8], msg: &[u8], signature: &[u8]) -> bool {
    let Some(key) = rsa_public_key(key) else {
        return false;
    };
    // A signature is exactly as long as the modulus, as aws-lc-rs requires.
    if signature.len() != key.size() {
        return false;
    }
    let Ok(sig) = rsa::pss::Signature::try_from(signature) else {
        return false;
    };
    let verifier = rsa::pss::VerifyingKey::<sha2::Sha256>::new_with_salt_len(key, 32);
    rsa::signature::Verifier::verify(&verifier, msg, &sig).is_ok()
}

/// An RSA SPKI with a modulus of 2048 to 8192 bits and an odd exponent of at least 3 (the
/// limits of aws-lc-rs's RSA_PSS_2048_8192_SHA256).
fn rsa_public_key(der: &[u8]) -> Option<rsa::RsaPublicKey> {
    let spki = SubjectPublicKeyInfoRef::from_der(der).ok()?;
    if spki.algorithm.oid != RSA_ENCRYPTION {
        return None;
    }
    let pkcs1 = rsa::pkcs1::RsaPublicKey::from_der(spki.subject_public_key.as_bytes()?).ok()?;
    let n = BigUint::from_bytes_be(pkcs1.modulus.as_bytes());
    let e_bytes = pkcs1.public_exponent.as_bytes();
    let odd = e_bytes.last().is_some_and(|b| b & 1 == 1);
    let e = BigUint::from_bytes_be(e_bytes);
    if !(2048..=8192).contains(&n.bits()) || e < BigUint::from(3u8) || !odd {
        return None;
    }
    rsa::RsaPublicKey::new_with_max_size(n, e, 8192).ok()
}

pub(crate) enum Context {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Context {
    pub(crate) fn new(alg: DigestAlgorithm) -> Self {
        match alg {
            DigestAlgorithm::Sha256 => Self::Sha256(sha2::Sha256::new()),
            DigestAlgorithm::Sha512 => Self::Sha512(sha2::Sha512::new()),
        }
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        match self {
            Self::Sha256(h) => h.update(data),
            Self::Sha512(h) => h.update(data),
        }
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        match self {
            Self::Sha256(h) => h.finalize().to_vec(),
            Self::Sha512(h) => h.finalize().to_vec(),
        }
    }
}
