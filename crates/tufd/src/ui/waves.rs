//! Waves and targets: which targets each wave published, and the CI targets, filtered by
//! hardware ID and tag.

use std::collections::{BTreeMap, BTreeSet};

use maud::{html, Markup};
use serde_json::Value;
use tuf_core::{TargetFile, Targets};

use super::layout::when;
use super::store::WaveRow;

/// At most this many targets are listed per wave and for CI (the counts say the rest).
pub const SHOWN_TARGETS: usize = 200;

/// The page's filter (`?hardware_id=...&tag=...`); an empty field filters nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
pub struct Filter {
    #[serde(default)]
    pub hardware_id: Option<String>,
    #[serde(default)]
    pub tag: Option<String>,
}

impl Filter {
    /// Drops empty fields; refuses values longer than any label the API accepts.
    pub fn normalised(self) -> Result<Self, &'static str> {
        let field = |v: Option<String>| -> Result<Option<String>, &'static str> {
            match v.map(|s| s.trim().to_owned()) {
                Some(s) if s.len() > 128 => Err("a filter value is longer than 128 characters"),
                Some(s) if s.is_empty() => Ok(None),
                other => Ok(other),
            }
        };
        Ok(Self {
            hardware_id: field(self.hardware_id)?,
            tag: field(self.tag)?,
        })
    }

    pub fn matches(&self, t: &TargetView) -> bool {
        let hw = self
            .hardware_id
            .as_ref()
            .is_none_or(|h| t.hardware_ids.contains(h));
        let tag = self.tag.as_ref().is_none_or(|x| t.tags.contains(x));
        hw && tag
    }

    fn is_empty(&self) -> bool {
        self.hardware_id.is_none() && self.tag.is_none()
    }
}

/// One target as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetView {
    pub path: String,
    pub version: Option<String>,
    pub hardware_ids: Vec<String>,
    pub tags: Vec<String>,
    pub length: u64,
    pub sha256: String,
    /// The other `custom` fields, as JSON text (whatever CI put there).
    pub custom: Vec<(String, String)>,
}

impl TargetView {
    pub fn new(path: &str, t: &TargetFile) -> Self {
        let custom = t.custom.as_ref().and_then(Value::as_object);
        let strings = |field: &str| -> Vec<String> {
            custom
                .and_then(|c| c.get(field))
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        let known = ["name", "version", "hardware_ids", "tags"];
        Self {
            path: path.to_owned(),
            version: custom
                .and_then(|c| c.get("version"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            hardware_ids: strings("hardware_ids"),
            tags: strings("tags"),
            length: t.length,
            sha256: t.hashes.get("sha256").cloned().unwrap_or_default(),
            custom: custom
                .into_iter()
                .flatten()
                .filter(|(k, _)| !known.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.to_string()))
                .collect(),
        }
    }
}

/// One wave and what it published.
#[derive(Debug)]
pub struct WaveView {
    pub name: String,
    pub version: String,
    pub tag: String,
    pub status: String,
    pub targets_version: i64,
    pub created_at: i64,
    /// Targets this wave added or changed compared with the production targets of the
    /// wave completed before it, that pass the filter (at most [`SHOWN_TARGETS`]).
    pub published: Vec<TargetView>,
    pub published_matching: usize,
    pub published_total: usize,
    /// Targets in its production targets in all.
    pub total: usize,
}

/// Everything the page shows.
#[derive(Debug)]
pub struct Releases {
    pub waves: Vec<WaveView>,
    pub ci: Vec<TargetView>,
    pub ci_matching: usize,
    pub ci_total: usize,
    pub hardware_ids: BTreeSet<String>,
    pub tags: BTreeSet<String>,
}

/// Builds the page from the waves (newest first) and the current CI targets.
pub fn releases(waves: &[WaveRow], ci: &Targets, filter: &Filter) -> Releases {
    let mut hardware_ids = BTreeSet::new();
    let mut tags = BTreeSet::new();
    let mut note = |t: &TargetView| {
        hardware_ids.extend(t.hardware_ids.iter().cloned());
        tags.extend(t.tags.iter().cloned());
    };
    // Oldest first, so each wave is compared with the production targets before it.
    let mut baseline: Option<&BTreeMap<String, TargetFile>> = None;
    let mut views = Vec::with_capacity(waves.len());
    for w in waves.iter().rev() {
        let all = &w.targets.signed.targets;
        let published: Vec<TargetView> = all
            .iter()
            .filter(|(p, t)| baseline.is_none_or(|b| b.get(*p) != Some(*t)))
            .map(|(p, t)| TargetView::new(p, t))
            .collect();
        published.iter().for_each(&mut note);
        let matching: Vec<TargetView> = published
            .iter()
            .filter(|t| filter.matches(t))
            .cloned()
            .collect();
        if w.status == "complete" {
            baseline = Some(all);
        }
        if !filter.is_empty() && matching.is_empty() {
            continue;
        }
        views.push(WaveView {
            name: w.name.clone(),
            version: w.version.clone(),
            tag: w.tag.clone(),
            status: w.status.clone(),
            targets_version: w.targets_version,
            created_at: w.created_at,
            published_matching: matching.len(),
            published_total: published.len(),
            published: matching.into_iter().take(SHOWN_TARGETS).collect(),
            total: all.len(),
        });
    }
    views.reverse();
    let ci_all: Vec<TargetView> = ci
        .targets
        .iter()
        .map(|(p, t)| TargetView::new(p, t))
        .collect();
    ci_all.iter().for_each(&mut note);
    let ci_matching: Vec<TargetView> = ci_all
        .iter()
        .filter(|t| filter.matches(t))
        .cloned()
        .collect();
    Releases {
        waves: views,
        ci_matching: ci_matching.len(),
        ci_total: ci_all.len(),
        ci: ci_matching.into_iter().take(SHOWN_TARGETS).collect(),
        hardware_ids,
        tags,
    }
}

pub fn render(r: &Releases, filter: &Filter) -> Markup {
    html! {
        form.filter method="get" {
            label for="hardware_id" { "Hardware ID" }
            select #hardware_id name="hardware_id" {
                option value="" { "any" }
                @for h in &r.hardware_ids {
                    option value=(h) selected[filter.hardware_id.as_ref() == Some(h)] { (h) }
                }
            }
            label for="tag" { "Tag" }
            select #tag name="tag" {
                option value="" { "any" }
                @for t in &r.tags {
                    option value=(t) selected[filter.tag.as_ref() == Some(t)] { (t) }
                }
            }
            button type="submit" { "Filter" }
        }
        section #waves {
            h2 { "Waves" }
            @if r.waves.is_empty() { p.none { "No wave matches." } }
            @for w in &r.waves {
                article.wave id=(format!("wave-{}", w.name)) {
                    h3 { "Wave " (w.name) " " span class=(format!("status {}", w.status)) { (w.status) } }
                    p.meta {
                        "Build " (w.version) ", tag " (w.tag) ", production targets v" (w.targets_version)
                        " (" (w.total) " targets), created " (when(w.created_at))
                    }
                    p { "Published " (w.published_total) " target" @if w.published_total != 1 { "s" }
                        @if w.published_matching != w.published_total { ", " (w.published_matching) " matching the filter" } ":" }
                    (targets_table(&w.published, w.published_matching))
                }
            }
        }
        section #ci-targets {
            h2 { "CI targets" }
            p { (r.ci_total) " in the current CI targets.json"
                @if r.ci_matching != r.ci_total { ", " (r.ci_matching) " matching the filter" } "." }
            (targets_table(&r.ci, r.ci_matching))
        }
    }
}

fn targets_table(ts: &[TargetView], matching: usize) -> Markup {
    html! {
        table.targets {
            thead { tr { th { "Target" } th { "Hardware IDs" } th { "Tags" } th { "Length" } th { "SHA-256" } th { "Custom" } } }
            tbody {
                @for t in ts {
                    tr {
                        td.path { (t.path) }
                        td { (t.hardware_ids.join(", ")) }
                        td { (t.tags.join(", ")) }
                        td.num { (t.length) }
                        td { code title=(t.sha256) { (t.sha256.get(..12).unwrap_or(&t.sha256)) } }
                        td.custom { @for (k, v) in &t.custom { span.field { (k) "=" (v) } " " } }
                    }
                }
            }
        }
        @if matching > ts.len() { p.none { "… and " (matching - ts.len()) " more not shown." } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tuf_core::{Expires, Signed};

    fn target(name: &str, version: &str, hw: &str, tag: &str) -> (String, TargetFile) {
        let custom = json!({"name": name, "version": version, "hardware_ids": [hw], "tags": [tag],
                            "note": "<script>x</script>"});
        let file = TargetFile {
            length: 3,
            hashes: [("sha256".to_owned(), "ab".repeat(32))].into(),
            custom: Some(custom),
            extra: Default::default(),
        };
        (format!("{name}-{version}"), file)
    }

    fn targets(v: u64, ts: &[(String, TargetFile)]) -> Signed<Targets> {
        let mut t = Targets::new(v, Expires::from_unix(2_000_000_000).unwrap());
        t.targets = ts.iter().cloned().collect();
        Signed::new(t).unwrap()
    }

    fn wave(name: &str, status: &str, at: i64, t: Signed<Targets>) -> WaveRow {
        WaveRow {
            name: name.into(),
            version: "1".into(),
            tag: "production".into(),
            status: status.into(),
            targets_version: t.signed.version as i64,
            created_at: at,
            targets: t,
        }
    }

    #[test]
    fn each_wave_shows_what_it_added_and_filters_apply() {
        let a1 = target("app", "1", "board-a", "production");
        let b1 = target("app-b", "1", "board-b", "production");
        let a2 = target("app", "2", "board-a", "production");
        let w1 = wave("w1", "complete", 10, targets(2, &[a1.clone(), b1.clone()]));
        let w2 = wave(
            "w2",
            "active",
            20,
            targets(3, &[a1.clone(), b1.clone(), a2.clone()]),
        );
        let ci = targets(
            5,
            &[
                a1.clone(),
                a2.clone(),
                target("app", "3", "board-a", "main"),
            ],
        )
        .signed;
        let all = releases(&[w2, w1], &ci, &Filter::default());
        assert_eq!(
            all.waves
                .iter()
                .map(|w| w.name.as_str())
                .collect::<Vec<_>>(),
            ["w2", "w1"]
        );
        let paths = |w: &WaveView| {
            w.published
                .iter()
                .map(|t| t.path.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(paths(&all.waves[0]), ["app-2"]);
        assert_eq!(paths(&all.waves[1]), ["app-1", "app-b-1"]);
        assert_eq!(all.waves[0].total, 3);
        assert_eq!(all.ci_total, 3);
        assert_eq!(
            all.hardware_ids.iter().collect::<Vec<_>>(),
            ["board-a", "board-b"]
        );
        assert_eq!(all.tags.iter().collect::<Vec<_>>(), ["main", "production"]);

        let f = Filter {
            hardware_id: Some("board-b".into()),
            tag: None,
        };
        let only_b = releases(
            &[
                wave(
                    "w2",
                    "active",
                    20,
                    targets(3, &[a1.clone(), b1.clone(), a2.clone()]),
                ),
                wave("w1", "complete", 10, targets(2, &[a1, b1])),
            ],
            &ci,
            &f,
        );
        assert_eq!(only_b.waves.len(), 1, "w2 added nothing for board-b");
        assert_eq!(paths(&only_b.waves[0]), ["app-b-1"]);
        assert_eq!(only_b.ci_matching, 0);
        let by_tag = releases(
            &[],
            &ci,
            &Filter {
                hardware_id: None,
                tag: Some("main".into()),
            },
        );
        assert_eq!(
            by_tag
                .ci
                .iter()
                .map(|t| t.path.as_str())
                .collect::<Vec<_>>(),
            ["app-3"]
        );
        let html = render(&by_tag, &Filter::default()).into_string();
        assert!(
            html.contains("note=&quot;&lt;script&gt;x&lt;/script&gt;&quot;"),
            "{html}"
        );
        assert!(!html.contains("<script"));
    }

    #[test]
    fn filters_are_trimmed_and_bounded() {
        let f = Filter {
            hardware_id: Some("  ".into()),
            tag: Some(" t ".into()),
        }
        .normalised()
        .unwrap();
        assert_eq!(
            f,
            Filter {
                hardware_id: None,
                tag: Some("t".into())
            }
        );
        assert!(Filter {
            hardware_id: Some("x".repeat(129)),
            tag: None
        }
        .normalised()
        .is_err());
    }
}
