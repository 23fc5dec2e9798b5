//! Which target a device should run: the newest one for its hardware ID (and tag).
//!
//! Targets from tufd carry `custom: {"name", "version", "hardware_ids": [..], "tags": [..]}`
//! and the path `{name}-{version}`.
//!
//! Release order (what `update` installs):
//! - Numeric versions (ASCII digits only, e.g. `9`, `10`) compare as whole numbers, of any
//!   length: `10` is newer than `9`.
//! - Semantic versions (`MAJOR.MINOR.PATCH[-PRE][+BUILD]`, semver.org 2.0.0) compare by SemVer
//!   precedence: `1.10.0` is newer than `1.9.0`, `1.0.0-rc.1` older than `1.0.0`, and build
//!   metadata does not count.
//! - Every candidate must use the same scheme. Any other version (`1.9`, `v2`, `latest`), or
//!   numeric and semantic versions mixed, is refused: no order is guessed.
//! - Ties (equal precedence, e.g. `1.0.0+a` and `1.0.0+b`, or `10` and `010`): the version
//!   string that is greater byte by byte wins, then the target path that is.

use std::cmp::Ordering;

use tuf_core::{TargetFile, Targets};

use crate::Error;

/// A target that a device may install.
#[derive(Clone, Debug)]
pub struct Release {
    /// The target path.
    pub path: String,
    /// Its version (`custom.version`).
    pub version: String,
    /// The target as the trusted metadata lists it.
    pub info: TargetFile,
}

/// A version in one of the two schemes `update` orders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Version {
    /// Decimal digits without leading zeros (`"0"` for zero).
    Number(String),
    /// A semantic version, ordered by SemVer precedence.
    SemVer(SemVer),
}

/// A semantic version; build metadata is dropped, as precedence ignores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SemVer {
    core: [String; 3],
    pre: Vec<String>,
}

impl Version {
    /// Parses `s`, or says why it is no version `update` can order.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            let trimmed = s.trim_start_matches('0');
            let digits = if trimmed.is_empty() { "0" } else { trimmed };
            return Ok(Self::Number(digits.to_owned()));
        }
        SemVer::parse(s).map(Self::SemVer)
    }

    fn scheme(&self) -> &'static str {
        match self {
            Self::Number(_) => "numeric",
            Self::SemVer(_) => "semantic",
        }
    }

    /// Precedence; `None` across schemes.
    pub fn precedence(&self, other: &Self) -> Option<Ordering> {
        match (self, other) {
            (Self::Number(a), Self::Number(b)) => Some(cmp_digits(a, b)),
            (Self::SemVer(a), Self::SemVer(b)) => Some(a.precedence(b)),
            _ => None,
        }
    }
}

impl SemVer {
    fn parse(s: &str) -> Result<Self, &'static str> {
        const NOT: &str = "neither a number nor a semantic version (MAJOR.MINOR.PATCH)";
        let (rest, build) = match s.split_once('+') {
            Some((rest, build)) => (rest, Some(build)),
            None => (s, None),
        };
        let (core, pre) = match rest.split_once('-') {
            Some((core, pre)) => (core, Some(pre)),
            None => (rest, None),
        };
        let parts: Vec<&str> = core.split('.').collect();
        let [major, minor, patch] = parts.as_slice() else {
            return Err(NOT);
        };
        for n in [major, minor, patch] {
            if !is_number(n) {
                return Err(NOT);
            }
        }
        let pre = match pre {
            Some(pre) => identifiers(pre, true)?,
            None => Vec::new(),
        };
        if let Some(build) = build {
            identifiers(build, false)?;
        }
        Ok(Self {
            core: [major.to_string(), minor.to_string(), patch.to_string()],
            pre,
        })
    }

    fn precedence(&self, other: &Self) -> Ordering {
        for (a, b) in self.core.iter().zip(&other.core) {
            match cmp_digits(a, b) {
                Ordering::Equal => {}
                unequal => return unequal,
            }
        }
        // A pre-release is older than the release itself.
        match (self.pre.is_empty(), other.pre.is_empty()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Greater,
            (false, true) => return Ordering::Less,
            (false, false) => {}
        }
        for (a, b) in self.pre.iter().zip(&other.pre) {
            let order = match (is_number(a), is_number(b)) {
                (true, true) => cmp_digits(a, b),
                (true, false) => Ordering::Less,
                (false, true) => Ordering::Greater,
                (false, false) => a.as_bytes().cmp(b.as_bytes()),
            };
            if order != Ordering::Equal {
                return order;
            }
        }
        self.pre.len().cmp(&other.pre.len())
    }
}

/// Dot-separated identifiers of `[0-9A-Za-z-]`, none empty; numeric ones of a pre-release
/// have no leading zero.
fn identifiers(s: &str, pre: bool) -> Result<Vec<String>, &'static str> {
    let mut out = Vec::new();
    for id in s.split('.') {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err("a semantic version with a malformed pre-release or build part");
        }
        if pre && id.bytes().all(|b| b.is_ascii_digit()) && !is_number(id) {
            return Err("a semantic version with a leading zero in its pre-release");
        }
        out.push(id.to_owned());
    }
    Ok(out)
}

/// Digits without a leading zero (or `0`).
fn is_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
}

/// Compares digit strings without leading zeros as numbers, whatever their length.
fn cmp_digits(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Every target of `targets` for `hardware_id` (and `tag`, when given), in no order.
pub fn candidates(targets: &Targets, hardware_id: &str, tag: Option<&str>) -> Vec<Release> {
    targets
        .targets
        .iter()
        .filter_map(|(path, info)| {
            let custom = info.custom.as_ref()?;
            let listed = |key: &str, want: &str| {
                custom
                    .get(key)
                    .and_then(|v| v.as_array())
                    .is_some_and(|a| a.iter().any(|v| v.as_str() == Some(want)))
            };
            if !listed("hardware_ids", hardware_id) {
                return None;
            }
            if let Some(tag) = tag {
                if !listed("tags", tag) {
                    return None;
                }
            }
            let version = match custom.get("version")? {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                _ => return None,
            };
            Some(Release {
                path: path.clone(),
                version,
                info: info.clone(),
            })
        })
        .collect()
}

/// Sorts `releases` newest first in release order (see the module documentation), or refuses
/// when a version has no place in it.
pub fn sort_newest_first(releases: &mut [Release]) -> Result<(), Error> {
    let mut parsed = Vec::with_capacity(releases.len());
    for r in releases.iter() {
        let version = Version::parse(&r.version).map_err(|reason| Error::Version {
            path: r.path.clone(),
            version: r.version.clone(),
            reason: reason.to_owned(),
        })?;
        parsed.push(version);
    }
    if let (Some(first), Some(i)) = (
        parsed.first(),
        parsed.iter().position(|v| v.scheme() != parsed[0].scheme()),
    ) {
        return Err(Error::Version {
            path: releases[i].path.clone(),
            version: releases[i].version.clone(),
            reason: format!(
                "a {} version, while {} has the {} version {:?}: one scheme must be used",
                parsed[i].scheme(),
                releases[0].path,
                first.scheme(),
                releases[0].version
            ),
        });
    }
    let mut order: Vec<usize> = (0..releases.len()).collect();
    order.sort_by(|&a, &b| newer(&releases[b], &parsed[b], &releases[a], &parsed[a]));
    let sorted: Vec<Release> = order.iter().map(|&i| releases[i].clone()).collect();
    releases.clone_from_slice(&sorted);
    Ok(())
}

/// Release order between two releases of one scheme, ties included.
fn newer(a: &Release, va: &Version, b: &Release, vb: &Version) -> Ordering {
    va.precedence(vb)
        .unwrap_or(Ordering::Equal)
        .then_with(|| a.version.as_bytes().cmp(b.version.as_bytes()))
        .then_with(|| a.path.as_bytes().cmp(b.path.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(entries: serde_json::Value) -> Targets {
        serde_json::from_value(serde_json::json!({
            "_type": "targets", "spec_version": "1.0.34", "version": 1,
            "expires": "2030-01-01T00:00:00Z", "targets": entries,
        }))
        .unwrap()
    }

    fn entry(version: serde_json::Value, hw: &str, tags: &[&str]) -> serde_json::Value {
        serde_json::json!({"length": 1, "hashes": {"sha256": "00"},
            "custom": {"name": "foo", "version": version, "hardware_ids": [hw], "tags": tags}})
    }

    fn newest(t: &Targets, hw: &str, tag: Option<&str>) -> Result<Option<String>, Error> {
        let mut c = candidates(t, hw, tag);
        sort_newest_first(&mut c)?;
        Ok(c.first().map(|r| r.path.clone()))
    }

    fn order(versions: &[&str]) -> Vec<String> {
        let mut releases: Vec<Release> = versions
            .iter()
            .enumerate()
            .map(|(i, v)| Release {
                path: format!("p{i}"),
                version: v.to_string(),
                info: serde_json::from_value(
                    serde_json::json!({"length": 1, "hashes": {"sha256": "00"}}),
                )
                .unwrap(),
            })
            .collect();
        sort_newest_first(&mut releases).unwrap();
        releases.into_iter().map(|r| r.version).collect()
    }

    #[test]
    fn numeric_versions_compare_as_numbers() {
        let t = targets(serde_json::json!({
            "foo-9": entry("9".into(), "hw", &[]),
            "foo-10": entry("10".into(), "hw", &[]),
            "foo-11": entry(11.into(), "other", &[]),
        }));
        assert_eq!(newest(&t, "hw", None).unwrap().unwrap(), "foo-10");
        assert_eq!(newest(&t, "other", None).unwrap().unwrap(), "foo-11");
        assert!(newest(&t, "none", None).unwrap().is_none());
        let big = "123456789012345678901234567890123456789012";
        assert_eq!(order(&["9", big, "10"]), [big, "10", "9"]);
    }

    #[test]
    fn semantic_versions_compare_by_precedence() {
        // The example chain of semver.org 2.0.0, item 11, newest first.
        let chain = [
            "1.0.0",
            "1.0.0-rc.1",
            "1.0.0-beta.11",
            "1.0.0-beta.2",
            "1.0.0-beta",
            "1.0.0-alpha.beta",
            "1.0.0-alpha.1",
            "1.0.0-alpha",
        ];
        let mut shuffled = chain.to_vec();
        shuffled.reverse();
        shuffled.swap(1, 5);
        assert_eq!(order(&shuffled), chain);
        assert_eq!(
            order(&["1.9.0", "1.10.0", "0.99.99", "2.0.0-rc.1"]),
            ["2.0.0-rc.1", "1.10.0", "1.9.0", "0.99.99"]
        );
    }

    #[test]
    fn ties_break_by_version_string_then_path() {
        assert_eq!(order(&["1.0.0+a", "1.0.0+b"]), ["1.0.0+b", "1.0.0+a"]);
        assert_eq!(order(&["10", "010"]), ["10", "010"]);
        // Same version string: the greater path wins.
        let t = targets(serde_json::json!({
            "a-1": entry("1".into(), "hw", &[]),
            "b-1": entry("1".into(), "hw", &[]),
        }));
        assert_eq!(newest(&t, "hw", None).unwrap().unwrap(), "b-1");
    }

    #[test]
    fn other_versions_and_mixed_schemes_are_refused() {
        for bad in [
            "1.9", "v1.0.0", "latest", "", "1.0", "01.0.0", "1.0.0-", "1.0.0-01", "1.0.0+",
            "1.5e3", "-1", " 1",
        ] {
            assert!(Version::parse(bad).is_err(), "{bad:?}");
        }
        let t = targets(serde_json::json!({
            "foo-1.9": entry("1.9".into(), "hw", &["prod"]),
            "foo-1.10.0": entry("1.10.0".into(), "hw", &["dev"]),
            "foo-2": entry("2".into(), "mixed", &[]),
            "foo-2.0.0": entry("2.0.0".into(), "mixed", &[]),
        }));
        let err = newest(&t, "hw", None).unwrap_err().to_string();
        assert!(err.contains("foo-1.9") && err.contains("neither"), "{err}");
        assert_eq!(
            newest(&t, "hw", Some("dev")).unwrap().unwrap(),
            "foo-1.10.0"
        );
        let err = newest(&t, "mixed", None).unwrap_err().to_string();
        assert!(err.contains("one scheme"), "{err}");
    }
}
