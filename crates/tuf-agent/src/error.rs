//! The one error type of the client library: each variant names the role or file and the check
//! that failed, so a device log says exactly why an update was refused.

use std::path::PathBuf;

use tuf_core::hash::HashMismatch;

/// Why a refresh, a download or an update failed. Every refusal of the client workflow has
/// its own variant, so callers (and tests) can tell a rollback from an expiry from a network
/// failure without reading the message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Parsing or signature verification of a role's metadata failed.
    #[error("{role}: {reason}")]
    Metadata {
        /// The role (or file) that was refused.
        role: String,
        /// tuf-core's reason: a parse error, a wrong `_type`, a threshold not met.
        reason: tuf_core::Error,
    },

    /// The metadata has another version than its parent role lists (or, for a root, than
    /// the trusted version + 1).
    #[error("{role}: version {got}, expected {expected}")]
    VersionMismatch {
        /// The role.
        role: String,
        /// The version listed.
        expected: u64,
        /// The version served.
        got: u64,
    },

    /// A version lower than the one the device already trusts (spec 5.4-5.6).
    #[error("{role}: rollback attack? version {got} is lower than the trusted version {trusted}")]
    Rollback {
        /// The role (or the file its parent lists).
        role: String,
        /// The version the device trusts.
        trusted: u64,
        /// The lower version served.
        got: u64,
    },

    /// What expired, where, when, and what its owner must do (see [`expiry_action`]).
    #[error(
        "{role}: the {role} metadata of {repository} expired at {expires} (this device's clock \
         reads {now}; if that is wrong, set the clock): {}",
        expiry_action(role, repository)
    )]
    Expired {
        /// The role that expired.
        role: String,
        /// Its `expires`.
        expires: String,
        /// The device clock when it was checked.
        now: String,
        /// Boxed: errors stay small on the happy path.
        repository: Box<Repository>,
    },

    /// A file of another length than its parent role lists.
    #[error("{what}: length is {got} bytes, {expected} bytes are listed")]
    Length {
        /// The file.
        what: String,
        /// The length listed.
        expected: u64,
        /// The length received.
        got: u64,
    },

    /// A file whose digest differs from the one its parent role lists.
    #[error("{what}: {reason}")]
    Hash {
        /// The file.
        what: String,
        /// Which digest did not match, or that none could be checked.
        reason: HashMismatch,
    },

    /// A download broke off; what arrived is kept and the next try resumes from there.
    #[error("{what}: the download stopped after {got} of {expected} bytes (kept: the next try resumes it)")]
    Interrupted {
        /// The file.
        what: String,
        /// Bytes received so far.
        got: u64,
        /// Bytes listed.
        expected: u64,
    },

    /// A new snapshot drops a targets role the trusted one lists (spec 5.5.5).
    #[error("snapshot: {file} is listed in the trusted snapshot but missing from the new one")]
    RoleRemoved {
        /// The file name of the role (`<role>.json`).
        file: String,
    },

    /// A targets role the trusted snapshot does not list.
    #[error("{role} is not listed in the trusted snapshot")]
    NotInSnapshot {
        /// The role.
        role: String,
    },

    /// A delegated role that no trusted role delegates to.
    #[error("{role}: no trusted role delegates it")]
    NotDelegated {
        /// The role.
        role: String,
    },

    /// A request failed before any status (DNS, connection, TLS, a broken body).
    #[error("fetching {url}: {reason}")]
    Http {
        /// The URL.
        url: String,
        /// What went wrong.
        reason: String,
    },

    /// A `Range` request for the rest of a partial download went wrong.
    #[error("fetching {url}: {reason}")]
    Range {
        /// The URL.
        url: String,
        /// What went wrong.
        reason: String,
    },

    /// The server answered with a status other than success.
    #[error("fetching {url}: HTTP status {status}{}", status_reason(said))]
    Status {
        /// The URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The server's reason (its JSON `error`), or empty.
        said: String,
    },

    /// A download over its cap (the listed length, or a fixed limit): endless data stops here.
    #[error("{what}: more than {limit} bytes")]
    TooLarge {
        /// The file.
        what: String,
        /// The cap, in bytes.
        limit: u64,
    },

    /// A local file could not be read or written.
    #[error("{path}: {reason}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        reason: std::io::Error,
    },

    /// No trusted targets role lists the target.
    #[error("target {0:?} is not listed by any trusted targets role")]
    TargetNotFound(String),

    /// A target path that would not stay inside the target directory as a file name.
    #[error("target path {0:?} cannot be stored as a local file")]
    BadTargetPath(String),

    /// A candidate for `update` whose version has no place in the release order.
    #[error("target {path}: version {version:?} is {reason}")]
    Version {
        /// The target path.
        path: String,
        /// Its version.
        version: String,
        /// Why it cannot be ordered.
        reason: String,
    },

    /// A configuration the client cannot work with (a bad URL, TLS file or option).
    #[error("{0}")]
    Config(String),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            reason: source,
        }
    }

    pub(crate) fn metadata(role: &str, source: tuf_core::Error) -> Self {
        Self::Metadata {
            role: role.to_owned(),
            reason: source,
        }
    }
}

/// A repository as its owner knows it: a tuf-factory URL (`.../repo/FACTORY/ci|prod/metadata/`)
/// names the factory and the flavour; any other URL is only itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Repository {
    /// The metadata URL.
    pub url: String,
    /// The Factory, when the URL is a tuf-factory one.
    pub factory: Option<String>,
    /// CI or production, when the URL is a tuf-factory one.
    pub flavour: Option<Flavour>,
}

/// The two repositories of a tuf-factory Factory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    /// Signed by the server alone: CI builds.
    Ci,
    /// Also signed by the owner's offline targets key: what Waves publish.
    Production,
}

impl Repository {
    /// What a metadata URL says about its repository (nothing beyond itself if it is not a
    /// tuf-factory URL).
    pub fn from_metadata_url(url: &str) -> Self {
        let path = url
            .split_once("://")
            .map_or(url, |(_, rest)| rest.split_once('/').map_or("", |(_, p)| p));
        let path = path.split(['?', '#']).next().unwrap_or_default();
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let found = segments.windows(4).rev().find_map(|w| match w {
            ["repo", factory, "ci", "metadata"] => Some((factory, Flavour::Ci)),
            ["repo", factory, "prod", "metadata"] => Some((factory, Flavour::Production)),
            _ => None,
        });
        Self {
            url: url.to_owned(),
            factory: found.map(|(f, _)| f.to_string()),
            flavour: found.map(|(_, fl)| fl),
        }
    }
}

impl std::fmt::Display for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let flavour = match self.flavour {
            Some(Flavour::Ci) => "CI ",
            Some(Flavour::Production) => "production ",
            None => "",
        };
        match (&self.factory, self.url.is_empty()) {
            (Some(factory), _) => write!(
                f,
                "the {flavour}repository of factory {factory} ({})",
                self.url
            ),
            (None, false) => write!(f, "the repository {}", self.url),
            (None, true) => f.write_str("the repository"),
        }
    }
}

/// What the owner of `repository` does about expired `role` metadata.
pub fn expiry_action(role: &str, repository: &Repository) -> String {
    let server = "the server (tufd) re-signs timestamp and snapshot with its online keys before \
                  they expire: check that it is running and re-signing; if it is, this device is \
                  being served old metadata (a freeze attack)";
    match (role, repository.flavour) {
        ("root", _) => "a new root must be signed with `tufctl keys resign-root` by the holders \
                        of the offline root keys; this device picks it up on its next update"
            .to_owned(),
        ("timestamp" | "snapshot", _) => server.to_owned(),
        ("targets", Some(Flavour::Production)) => "the production targets must be re-signed with \
                                                   `tufctl waves resign` by the holders of the \
                                                   offline targets keys"
            .to_owned(),
        ("targets", Some(Flavour::Ci)) => "the server (tufd) re-signs CI targets with its online \
                                           key: check that it is running and re-signing; if it \
                                           is, this device is being served old metadata (a \
                                           freeze attack)"
            .to_owned(),
        ("targets", None) => "the targets metadata must be re-signed by the holders of the \
                              targets keys (on tuf-factory: `tufctl waves resign` for production, \
                              the server for CI)"
            .to_owned(),
        (role, _) => format!(
            "delegated role {role} must be re-signed by the holders of its keys, and the \
             repository must publish it"
        ),
    }
}

/// ": <reason>", and what to do when the reason is one a device owner can act on.
fn status_reason(said: &str) -> String {
    if said.is_empty() {
        return String::new();
    }
    let hint = if said.contains("client certificate") {
        " (this repository requires mTLS: give the device its certificate and key with \
         --client-cert and --client-key)"
    } else {
        ""
    };
    format!(": {said}{hint}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tuf_factory_urls_name_factory_and_flavour() {
        let prod = Repository::from_metadata_url("https://h:8443/repo/acme/prod/metadata/");
        assert_eq!(prod.factory.as_deref(), Some("acme"));
        assert_eq!(prod.flavour, Some(Flavour::Production));
        assert_eq!(
            prod.to_string(),
            "the production repository of factory acme (https://h:8443/repo/acme/prod/metadata/)"
        );
        let ci = Repository::from_metadata_url("http://h/base/repo/x-1/ci/metadata");
        assert_eq!(
            (ci.factory.as_deref(), ci.flavour),
            (Some("x-1"), Some(Flavour::Ci))
        );
        for other in [
            "http://h/metadata/",
            "http://h/repo/acme/beta/metadata/",
            "http://repo/acme/prod/metadata.example/",
            "not a url",
        ] {
            let r = Repository::from_metadata_url(other);
            assert_eq!((r.factory.as_deref(), r.flavour), (None, None), "{other}");
            assert_eq!(r.to_string(), format!("the repository {other}"));
        }
    }

    #[test]
    fn expiry_says_what_to_do_per_role_and_flavour() {
        let expired = |role: &str, url: &str| {
            Error::Expired {
                role: role.to_owned(),
                expires: "2024-01-01T00:00:00Z".to_owned(),
                now: "2024-02-01T00:00:00Z".to_owned(),
                repository: Box::new(Repository::from_metadata_url(url)),
            }
            .to_string()
        };
        let prod = "https://h/repo/acme/prod/metadata/";
        let ci = "https://h/repo/acme/ci/metadata/";
        let root = expired("root", prod);
        assert!(
            root.starts_with(
                "root: the root metadata of the production repository of factory acme \
                 (https://h/repo/acme/prod/metadata/) expired at 2024-01-01T00:00:00Z \
                 (this device's clock reads 2024-02-01T00:00:00Z"
            ),
            "{root}"
        );
        assert!(root.contains("`tufctl keys resign-root`"), "{root}");
        assert!(expired("targets", prod).contains("`tufctl waves resign`"));
        let ci_targets = expired("targets", ci);
        assert!(ci_targets.contains("re-signs CI targets"), "{ci_targets}");
        assert!(!ci_targets.contains("waves resign"), "{ci_targets}");
        for role in ["timestamp", "snapshot"] {
            let m = expired(role, ci);
            assert!(m.contains("the CI repository of factory acme"), "{m}");
            assert!(m.contains("re-signs timestamp and snapshot"), "{m}");
        }
        let team = expired("team", "http://h/metadata/");
        assert!(
            team.contains("delegated role team must be re-signed"),
            "{team}"
        );
        assert!(!team.contains("freeze attack?"), "{team}");
    }

    #[test]
    fn a_refusal_names_the_servers_reason_and_what_to_do() {
        let e = Error::Status {
            url: "https://tuf/repo/acme/ci/metadata/timestamp.json".into(),
            status: 403,
            said: "client certificate required".into(),
        };
        let text = e.to_string();
        assert!(text.ends_with("HTTP status 403: client certificate required (this repository requires mTLS: give the device its certificate and key with --client-cert and --client-key)"), "{text}");
        let bare = Error::Status {
            url: "u".into(),
            status: 500,
            said: String::new(),
        };
        assert_eq!(bare.to_string(), "fetching u: HTTP status 500");
    }
}
