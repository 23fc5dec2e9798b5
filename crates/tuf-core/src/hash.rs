//! SHA-2 digests and the `hashes` objects of TUF metadata.

use std::collections::BTreeMap;

use crate::crypto::{self, Digest, DigestAlgorithm};

/// Lowercase hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(crypto::sha256(data))
}

/// SHA-256 of `data` as raw bytes.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    crypto::sha256(data)
}

/// Why a `hashes` object did not match some bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashMismatch {
    /// No algorithm we implement is listed, so nothing could be checked.
    NoKnownAlgorithm(Vec<String>),
    /// An algorithm we implement is listed and the digest differs.
    Mismatch {
        /// The algorithm whose digest did not match (`sha256` or `sha512`).
        algorithm: String,
    },
}

impl std::fmt::Display for HashMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoKnownAlgorithm(algs) => {
                write!(
                    f,
                    "no supported hash algorithm among {algs:?} (sha256, sha512 known)"
                )
            }
            Self::Mismatch { algorithm } => write!(f, "{algorithm} hash does not match"),
        }
    }
}

/// Incremental hasher for every supported algorithm listed in a `hashes` object.
pub struct MultiHasher {
    contexts: Vec<(String, String, Digest)>,
    unknown: Vec<String>,
}

impl MultiHasher {
    /// Starts a hasher for every algorithm of `hashes` that we implement; the others are
    /// remembered, so that a `hashes` object of unknown algorithms only is refused, not passed.
    pub fn new(hashes: &BTreeMap<String, String>) -> Self {
        let mut contexts = Vec::new();
        let mut unknown = Vec::new();
        for (alg, want) in hashes {
            let algorithm = match alg.as_str() {
                "sha256" => DigestAlgorithm::Sha256,
                "sha512" => DigestAlgorithm::Sha512,
                _ => {
                    unknown.push(alg.clone());
                    continue;
                }
            };
            contexts.push((alg.clone(), want.clone(), Digest::new(algorithm)));
        }
        Self { contexts, unknown }
    }

    /// Feeds the next chunk of the data.
    pub fn update(&mut self, data: &[u8]) {
        for (_, _, ctx) in &mut self.contexts {
            ctx.update(data);
        }
    }

    /// Every known algorithm must match; unknown ones are ignored unless they are all there is.
    pub fn finish(self) -> Result<(), HashMismatch> {
        if self.contexts.is_empty() {
            return Err(HashMismatch::NoKnownAlgorithm(self.unknown));
        }
        for (alg, want, ctx) in self.contexts {
            let got = hex::encode(ctx.finish());
            if !got.eq_ignore_ascii_case(&want) {
                return Err(HashMismatch::Mismatch { algorithm: alg });
            }
        }
        Ok(())
    }
}

/// Checks `data` against every supported algorithm of `hashes`.
pub fn check(hashes: &BTreeMap<String, String>, data: &[u8]) -> Result<(), HashMismatch> {
    let mut h = MultiHasher::new(hashes);
    h.update(data);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        // FIPS 180-2 examples: "abc" and the empty message.
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(sha256_hex(b"abc"), abc);
        assert_eq!(sha256_hex(b""), empty);
        assert_eq!(hex::encode(sha256(b"abc")), abc);
        assert_eq!(hex::encode(sha256(b"")), empty);
    }

    #[test]
    fn every_listed_hash_must_match() {
        let mut hashes = BTreeMap::new();
        hashes.insert("sha256".to_owned(), sha256_hex(b"abc"));
        assert!(check(&hashes, b"abc").is_ok());
        hashes.insert("sha512".to_owned(), "00".repeat(64));
        assert_eq!(
            check(&hashes, b"abc"),
            Err(HashMismatch::Mismatch {
                algorithm: "sha512".into()
            })
        );
    }

    #[test]
    fn mismatches_say_which_algorithm_or_that_none_is_known() {
        let m = HashMismatch::Mismatch {
            algorithm: "sha512".into(),
        };
        assert_eq!(m.to_string(), "sha512 hash does not match");
        let n = HashMismatch::NoKnownAlgorithm(vec!["md5".into(), "blake2".into()]);
        assert_eq!(
            n.to_string(),
            "no supported hash algorithm among [\"md5\", \"blake2\"] (sha256, sha512 known)"
        );
    }

    #[test]
    fn unknown_algorithms_alone_fail() {
        let mut hashes = BTreeMap::new();
        hashes.insert("md5".to_owned(), "00".into());
        assert!(matches!(
            check(&hashes, b"x"),
            Err(HashMismatch::NoKnownAlgorithm(_))
        ));
        hashes.insert("sha256".to_owned(), sha256_hex(b"x"));
        assert!(check(&hashes, b"x").is_ok());
    }
}
