//! `tuf-agent`: the device-side TUF client of tuf-factory.
//!
//! The client workflow of the TUF specification (section 5) as a path through small modules:
//! [`store`] reads and atomically writes the trusted metadata directory, [`fetch`] downloads
//! with hard size caps, [`trusted`] holds the trusted metadata and performs every check
//! without I/O, [`updater`] drives the workflow in the specification's order, [`artifact`]
//! downloads and verifies target files, [`release`] picks what a device should install and
//! [`installed`] records what `update` wrote and installed.

pub mod artifact;
mod error;
pub mod fetch;
pub mod installed;
pub mod proxy;
pub mod release;
pub mod store;
pub mod tls;
pub mod trusted;
pub mod updater;

pub use error::{expiry_action, Error, Flavour, Repository};
pub use tls::TlsOptions;
pub use updater::{Limits, Updater, UpdaterConfig};
