//! Which target a device should run: the newest one for its hardware ID (and tag).
//!
//! Targets from tufd carry `custom: {"name", "version", "hardware_ids": [..], "tags": [..]}`
//! and the path `{name}-{version}`.

use std::cmp::Ordering;

use tuf_core::{TargetFile, Targets};

/// A target that a device may install.
#[derive(Clone, Debug)]
pub struct Release {
    pub path: String,
    pub version: String,
    pub info: TargetFile,
}

/// The newest target of `targets` for `hardware_id` (and `tag`, when given).
pub fn newest(targets: &Targets, hardware_id: &str, tag: Option<&str>) -> Option<Release> {
    candidates(targets, hardware_id, tag)
        .into_iter()
        .max_by(newer)
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

/// Release order: version, then path (so the choice never depends on map order).
pub fn newer(a: &Release, b: &Release) -> Ordering {
    compare_versions(&a.version, &b.version).then_with(|| a.path.cmp(&b.path))
}

/// Numeric order when both versions are integers, string order otherwise.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    match (a.parse::<u128>(), b.parse::<u128>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.cmp(b),
    }
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

    #[test]
    fn numeric_versions_compare_as_numbers() {
        let t = targets(serde_json::json!({
            "foo-9": entry("9".into(), "hw", &[]),
            "foo-10": entry("10".into(), "hw", &[]),
            "foo-11": entry(11.into(), "other", &[]),
        }));
        assert_eq!(newest(&t, "hw", None).unwrap().path, "foo-10");
        assert_eq!(newest(&t, "other", None).unwrap().path, "foo-11");
        assert!(newest(&t, "none", None).is_none());
    }

    #[test]
    fn tags_filter_and_strings_compare_as_strings() {
        let t = targets(serde_json::json!({
            "foo-1.9": entry("1.9".into(), "hw", &["prod"]),
            "foo-1.10": entry("1.10".into(), "hw", &["dev"]),
        }));
        assert_eq!(newest(&t, "hw", Some("prod")).unwrap().path, "foo-1.9");
        assert_eq!(newest(&t, "hw", None).unwrap().path, "foo-1.9");
        assert_eq!(compare_versions("2", "10"), Ordering::Less);
        assert_eq!(compare_versions("a", "10"), Ordering::Greater);
    }
}
