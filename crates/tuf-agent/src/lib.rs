//! `tuf-agent`: the device-side TUF client of tuf-factory.
//!
//! The client workflow of the TUF specification (section 5) as a path through small modules:
//! [`store`] reads and atomically writes the trusted metadata directory, [`fetch`] downloads
//! with hard size caps, [`trusted`] holds the trusted metadata and performs every check
//! without I/O, [`updater`] drives the workflow in the specification's order, [`artifact`]
//! downloads and verifies target files, [`release`] picks what a device should install and
//! [`installed`] records what `update` wrote and installed.
//!
//! A device is set up with the root it trusts (`tuf-agent init` copies it into the metadata
//! directory); an [`Updater`] then refreshes from the repository in the specification's order
//! and finds, downloads and verifies targets:
//!
//! ```no_run
//! use tuf_agent::{Limits, TlsOptions, Updater, UpdaterConfig};
//!
//! let mut updater = Updater::new(UpdaterConfig {
//!     metadata_url: "https://tuf.example.com/repo/acme/prod/metadata/".to_owned(),
//!     metadata_dir: "/var/lib/tuf/metadata".into(), // holds root.json
//!     limits: Limits::default(),
//!     tls: TlsOptions::default(),
//! })?;
//! updater.refresh()?; // root chain, timestamp, snapshot, targets: every check or an Error
//! let target = updater.target_info("app-42")?;
//! # Ok::<(), tuf_agent::Error>(())
//! ```
//!
//! What runs without a network: a device refuses anything that is not a root it can trust,
//! orders releases, and tells its operator who must act when metadata expires.
//!
//! ```
//! use std::cmp::Ordering;
//!
//! use tuf_agent::release::Version;
//! use tuf_agent::trusted::TrustedSet;
//! use tuf_agent::{expiry_action, Error, Flavour, Repository};
//!
//! let now = time::OffsetDateTime::now_utc();
//! let refused = TrustedSet::new(br#"{"signed": {}, "signatures": []}"#, now);
//! assert!(matches!(refused, Err(Error::Metadata { .. })));
//!
//! let newer = Version::parse("1.10.0").unwrap();
//! let older = Version::parse("1.9.0").unwrap();
//! assert_eq!(newer.precedence(&older), Some(Ordering::Greater));
//! assert!(Version::parse("v2").is_err()); // no place in the release order: refused
//!
//! let repo = Repository::from_metadata_url("https://tuf.example.com/repo/acme/prod/metadata/");
//! assert_eq!(repo.factory.as_deref(), Some("acme"));
//! assert_eq!(repo.flavour, Some(Flavour::Production));
//! assert!(expiry_action("targets", &repo).contains("tufctl waves resign"));
//! ```

#![warn(missing_docs)]

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
