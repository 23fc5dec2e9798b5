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
    TargetFile, Targets, TargetsHead, Threshold, Timestamp,
};
pub use verify::{verify_role, Verification};

/// The specification version written into metadata this project creates.
pub const SPEC_VERSION: &str = "1.0.34";
