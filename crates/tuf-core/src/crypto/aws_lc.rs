//! aws-lc-rs: verification and SHA-2.

use aws_lc_rs::digest;
use aws_lc_rs::signature as sig;

use super::{Algorithm, DigestAlgorithm};

pub(crate) fn verify(alg: Algorithm, key: &[u8], msg: &[u8], signature: &[u8]) -> bool {
    let algorithm: &dyn sig::VerificationAlgorithm = match alg {
        Algorithm::Ed25519 => &sig::ED25519,
        Algorithm::EcdsaP256 => &sig::ECDSA_P256_SHA256_ASN1,
        Algorithm::RsaPssSha256 => &sig::RSA_PSS_2048_8192_SHA256,
    };
    sig::UnparsedPublicKey::new(algorithm, key)
        .verify(msg, signature)
        .is_ok()
}

pub(crate) struct Context(digest::Context);

impl Context {
    pub(crate) fn new(alg: DigestAlgorithm) -> Self {
        Self(digest::Context::new(match alg {
            DigestAlgorithm::Sha256 => &digest::SHA256,
            DigestAlgorithm::Sha512 => &digest::SHA512,
        }))
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.0.finish().as_ref().to_vec()
    }
}
