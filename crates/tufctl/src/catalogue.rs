//! The targets of a `targets.json` as a list people read and select from: one entry per
//! target with the fields tufd records in `custom` (name, version, hardware IDs, tags, when
//! it was added), filters, the order "newest last", and what a prune takes. No I/O.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde_json::{json, Value};
use tuf_core::{Expires, TargetFile, Targets};

use crate::cli::TargetFilter;

/// One target, as `targets list` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub path: String,
    pub name: String,
    pub version: String,
    pub hardware_ids: Vec<String>,
    pub tags: Vec<String>,
    pub length: u64,
    pub sha256: String,
    /// When the server signed it first (`custom.created_at`), as Unix seconds.
    pub created_at: Option<i64>,
    pub file: TargetFile,
}

impl Entry {
    pub fn new(path: &str, t: &TargetFile) -> Self {
        let custom = t.custom.as_ref();
        let text = |k: &str| custom.and_then(|c| c.get(k)).and_then(Value::as_str);
        let list = |k: &str| -> Vec<String> {
            custom
                .and_then(|c| c.get(k))
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        Self {
            path: path.to_owned(),
            name: text("name").unwrap_or(path).to_owned(),
            version: text("version").unwrap_or("").to_owned(),
            hardware_ids: list("hardware_ids"),
            tags: list("tags"),
            length: t.length,
            sha256: t.hashes.get("sha256").cloned().unwrap_or_default(),
            created_at: text("created_at")
                .and_then(|s| s.parse::<Expires>().ok())
                .map(|e| e.unix()),
            file: t.clone(),
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "target": self.path, "name": self.name, "version": self.version,
            "hardware_ids": self.hardware_ids, "tags": self.tags, "length": self.length,
            "hashes": self.file.hashes, "created_at": self.created_at.map(time_text),
            "custom": self.file.custom,
        })
    }
}

/// Every target of `targets`, by name, then oldest version first.
pub fn entries(targets: &Targets) -> Vec<Entry> {
    let mut out: Vec<Entry> = targets
        .targets
        .iter()
        .map(|(p, t)| Entry::new(p, t))
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| newer(b, a)));
    out
}

/// Whether `e` passes every filter given.
pub fn matches(f: &TargetFilter, e: &Entry) -> bool {
    f.name.as_ref().is_none_or(|n| *n == e.name)
        && f.version.as_ref().is_none_or(|v| *v == e.version)
        && f.hardware_id
            .as_ref()
            .is_none_or(|h| e.hardware_ids.contains(h))
        && f.tag.as_ref().is_none_or(|t| e.tags.contains(t))
}

/// What a prune removes from `all`: the targets named in `paths` and those the filters
/// select (older than `older_than` Unix seconds, when given), minus the newest `keep_last`
/// of each name. With no filter given, only the named targets are selected.
pub fn to_prune<'a>(
    all: &'a [Entry],
    paths: &[String],
    filter: &TargetFilter,
    older_than: Option<i64>,
    keep_last: Option<usize>,
) -> Vec<&'a Entry> {
    let filtering = filter.name.is_some()
        || filter.version.is_some()
        || filter.hardware_id.is_some()
        || filter.tag.is_some()
        || older_than.is_some()
        || (paths.is_empty() && keep_last.is_some());
    let selected = |e: &Entry| {
        let by_filter = filtering
            && matches(filter, e)
            && older_than.is_none_or(|cut| e.created_at.is_some_and(|t| t < cut));
        paths.contains(&e.path) || by_filter
    };
    let mut by_name: BTreeMap<&str, Vec<&Entry>> = BTreeMap::new();
    for e in all.iter().filter(|e| selected(e)) {
        by_name.entry(&e.name).or_default().push(e);
    }
    let mut out = Vec::new();
    for (_, mut group) in by_name {
        group.sort_by(|a, b| newer(a, b));
        let keep = keep_last.unwrap_or(0).min(group.len());
        out.extend(group.into_iter().skip(keep));
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// Newest first: the higher version (numbers compared as numbers), then the later added.
fn newer(a: &Entry, b: &Entry) -> Ordering {
    let num = |e: &Entry| e.version.parse::<u64>().ok();
    match (num(a), num(b)) {
        (Some(x), Some(y)) if x != y => return y.cmp(&x),
        _ => {}
    }
    b.created_at
        .cmp(&a.created_at)
        .then_with(|| b.version.cmp(&a.version))
        .then_with(|| b.path.cmp(&a.path))
}

/// A table of `entries` for people: one line per target.
pub fn table(entries: &[&Entry]) -> String {
    let mut out = format!(
        "{:<28} {:<12} {:<20} {:<20} {:>10}  {}\n",
        "TARGET", "VERSION", "HARDWARE IDS", "TAGS", "SIZE", "ADDED"
    );
    for e in entries {
        out.push_str(&format!(
            "{:<28} {:<12} {:<20} {:<20} {:>10}  {}\n",
            e.path,
            e.version,
            dash(&e.hardware_ids.join(",")),
            dash(&e.tags.join(",")),
            size(e.length),
            e.created_at
                .map(time_text)
                .unwrap_or_else(|| "-".to_owned())
        ));
    }
    out
}

/// A size for people: bytes, KiB, MiB or GiB.
pub fn size(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

pub fn time_text(unix: i64) -> String {
    Expires::from_unix(unix)
        .map(|e| e.to_string())
        .unwrap_or_else(|_| unix.to_string())
}

fn dash(s: &str) -> &str {
    if s.is_empty() {
        "-"
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, version: &str, tag: &str, at: Option<i64>) -> Entry {
        let mut custom = json!({"name": name, "version": version, "hardware_ids": ["board-a"],
            "tags": [tag]});
        if let Some(t) = at {
            custom["created_at"] = json!(time_text(t));
        }
        let file: TargetFile = serde_json::from_value(
            json!({"length": 2048, "hashes": {"sha256": "ab".repeat(32)}, "custom": custom}),
        )
        .unwrap();
        Entry::new(&format!("{name}-{version}"), &file)
    }

    fn paths(v: &[&Entry]) -> Vec<String> {
        v.iter().map(|e| e.path.clone()).collect()
    }

    fn fleet() -> Vec<Entry> {
        let mut all = vec![
            entry("app", "9", "ci", Some(900)),
            entry("app", "10", "ci", Some(1000)),
            entry("app", "11", "production", Some(1100)),
            entry("app", "12", "ci", None),
            entry("tool", "1", "ci", Some(50)),
        ];
        all.sort_by(|a, b| a.path.cmp(&b.path));
        all
    }

    #[test]
    fn entries_read_custom_and_order_versions_as_numbers() {
        let e = entry("app", "10", "ci", Some(1000));
        assert_eq!(e.created_at, Some(1000));
        assert_eq!(e.hardware_ids, ["board-a"]);
        let mut t = Targets::new(1, Expires::from_unix(4_000_000_000).unwrap());
        for e in fleet() {
            t.targets.insert(e.path.clone(), e.file.clone());
        }
        let listed: Vec<String> = entries(&t).into_iter().map(|e| e.path).collect();
        assert_eq!(listed, ["app-9", "app-10", "app-11", "app-12", "tool-1"]);
    }

    #[test]
    fn prune_by_name_version_age_tag_and_keep_last() {
        let all = fleet();
        let none = TargetFilter::default();
        let named = to_prune(&all, &["app-9".into()], &none, None, None);
        assert_eq!(paths(&named), ["app-9"]);
        let app = TargetFilter {
            name: Some("app".into()),
            ..Default::default()
        };
        // Keep the newest two versions of app: 12 and 11 stay.
        assert_eq!(
            paths(&to_prune(&all, &[], &app, None, Some(2))),
            ["app-10", "app-9"]
        );
        // keep-last alone: per name, over every target.
        assert_eq!(
            paths(&to_prune(&all, &[], &none, None, Some(1))),
            ["app-10", "app-11", "app-9"]
        );
        // Older than 1000: targets without a recorded time are kept.
        assert_eq!(
            paths(&to_prune(&all, &[], &none, Some(1000), None)),
            ["app-9", "tool-1"]
        );
        let ci = TargetFilter {
            tag: Some("ci".into()),
            version: Some("10".into()),
            ..Default::default()
        };
        assert_eq!(paths(&to_prune(&all, &[], &ci, None, None)), ["app-10"]);
        // Nothing selected, nothing removed.
        assert!(to_prune(&all, &[], &none, None, None).is_empty());
    }

    #[test]
    fn sizes_for_people() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(2048), "2.0 KiB");
        assert_eq!(size(5 << 30), "5.0 GiB");
    }
}
