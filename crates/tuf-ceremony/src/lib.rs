//! The rules of tuf-factory's key ceremonies, in one place: root-update transactions, Waves,
//! the signing-request files that carry them to air-gapped machines, every named check of
//! docs/API.md, the root-chain walk, the review text a key holder reads, and signing through
//! a keyring. The server (`tufd`) and the operator CLI (`tufctl`) both call these functions,
//! so a rule cannot drift between them; the device client walks root chains with [`chain`].
//!
//! No I/O: no files, no network, no clock (callers pass the time), no async.
//!
//! ```
//! use tuf_ceremony::{Check, Refusal};
//!
//! let r = tuf_ceremony::root_update::version("ci_root", 3, 1).unwrap_err();
//! assert_eq!(r.check, Check::Version);
//! assert_eq!(r.check.name(), "version");
//! ```

#![warn(missing_docs)]

pub mod chain;
pub mod check;
mod error;
pub mod format;
pub mod keyring;
pub mod limits;
pub mod offline;
pub mod review;
pub mod root_update;
pub mod server_keys;
pub mod signature;
pub mod tx;
pub mod wave;

pub use check::{Check, Findings, Refusal};
pub use error::Error;
pub use keyring::Keyring;
pub use server_keys::{HeldKey, ServerKeys, View};
pub use tx::{Roots, Tx};
#[cfg(test)]
mod tests;
