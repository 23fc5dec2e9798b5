//! The sans-I/O heart of tuf-factory: TUF metadata, canonical JSON, keys, signatures and
//! thresholds.
//!
//! Nothing here touches files, sockets, clocks or async runtimes. Callers hand in bytes and
//! the current time; they get back parsed values that cannot hold an invalid state, or an
//! [`Error`] that names the field and the problem.
//!
//! The crypto backend is a feature: `aws-lc` (default: signing, key generation and
//! verification) or `pure-rust` (verification and hashing only, no C compiler needed); see
//! [`crypto`].
//!
//! A 2-of-2 role, signed, sent as bytes and verified the way a client does:
//!
//! ```
//! use std::collections::BTreeMap;
//!
//! use tuf_core::{KeyType, PrivateKey, RoleKeys, Signed, Signer as _, Targets, Threshold};
//!
//! let a = PrivateKey::generate(KeyType::Ed25519)?;
//! let b = PrivateKey::generate(KeyType::EcdsaP256)?;
//! let keys: BTreeMap<_, _> = [&a, &b]
//!     .iter()
//!     .map(|k| (k.key_id().clone(), k.public_key().clone()))
//!     .collect();
//! let role = RoleKeys::new(vec![a.key_id().clone(), b.key_id().clone()], Threshold::new(2)?);
//!
//! let mut targets = Signed::new(Targets::new(1, "2030-01-01T00:00:00Z".parse()?))?;
//! targets.sign(&a)?;
//! assert!(!targets.verify_role("targets", &role, &keys).is_met()); // one of two
//! targets.sign(&b)?;
//!
//! // What a client receives is bytes: parsed strictly, verified over the canonical form of
//! // exactly what arrived.
//! let received: Signed<Targets> = Signed::from_slice(&targets.to_bytes())?;
//! let check = received.verify_role("targets", &role, &keys);
//! assert!(check.is_met());
//! assert_eq!(check.distinct_valid, 2);
//!
//! // Ambiguous JSON (here a duplicate key) is refused before anything is verified.
//! assert!(tuf_core::canonical::parse(br#"{"version": 1, "version": 2}"#).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

pub mod canonical;
pub mod crypto;
pub mod delegation;
mod error;
pub mod expires;
pub mod hash;
pub mod key;
pub mod metadata;
pub mod verify;

pub use error::Error;
pub use expires::Expires;
#[cfg(feature = "aws-lc")]
pub use key::PrivateKey;
pub use key::{KeyId, KeyType, PublicKey, Signer};
pub use metadata::{
    check_role_name, check_target_path, find_target, DelegatedRole, Delegations, MetaFile,
    Metadata, Role, RoleKeys, Root, Signature, Signed, SignedRef, Snapshot, SuccinctRoles,
    TargetChanges, TargetFile, Targets, TargetsBytes, TargetsHead, Threshold, Timestamp,
};
pub use verify::{verify_role, Verification};

/// The specification version written into metadata this project creates.
pub const SPEC_VERSION: &str = "1.0.34";
