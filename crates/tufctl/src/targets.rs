//! `targets list|show|tag|prune`: the CI (or production) targets as a catalogue
//! (`catalogue`); `tag` and `prune` change the CI targets through the owner's endpoints
//! (docs/API.md, "Curating CI targets"). Production targets change only through Waves.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use time::OffsetDateTime;
use tuf_core::{Signed, Targets};

use crate::catalogue::{self, Entry};
use crate::cli::{PruneArgs, TargetFilter};
use crate::server::Factory;
use crate::settings::Settings;

/// `targets list`: every target passing `filter`, by name, newest version last.
pub fn list(s: &Settings, filter: &TargetFilter, prod: bool) -> Result<()> {
    let f = Factory::reader(s, None)?;
    let t = f.targets(prod)?;
    let all = catalogue::entries(&t.signed);
    let shown: Vec<&Entry> = all
        .iter()
        .filter(|e| catalogue::matches(filter, e))
        .collect();
    if s.json() {
        crate::output::json(&Value::Array(shown.iter().map(|e| e.to_json()).collect()));
        return Ok(());
    }
    let which = flavour(prod);
    if shown.is_empty() {
        outln!(
            "No {which} target matches (the {which} targets, version {}, list {}).",
            t.signed.version,
            all.len()
        );
        return Ok(());
    }
    out!("{}", catalogue::table(&shown));
    outln!(
        "{} of {} {which} target(s); {which} targets version {}, expires {}.",
        shown.len(),
        all.len(),
        t.signed.version,
        t.signed.expires
    );
    Ok(())
}

/// `targets show TARGET...`: each target in full (a version shows every target of it), and
/// whether the other flavour lists it.
pub fn show(s: &Settings, wanted: &[String], prod: bool) -> Result<()> {
    let f = Factory::reader(s, None)?;
    let t = f.targets(prod)?;
    // Best effort: the other flavour only adds a note.
    let other = f.targets(!prod).ok();
    let all = catalogue::entries(&t.signed);
    let mut found: Vec<&Entry> = Vec::new();
    for w in wanted {
        let hits: Vec<&Entry> = match all.iter().find(|e| e.path == *w) {
            Some(e) => vec![e],
            None => all.iter().filter(|e| e.version == *w).collect(),
        };
        if hits.is_empty() {
            bail!(
                "the {} targets (version {}) list no target {w:?} and no target of version \
                 {w:?}; `tufctl targets list{}` shows what they list",
                flavour(prod),
                t.signed.version,
                if prod { " --prod" } else { "" }
            );
        }
        found.extend(hits);
    }
    let listed_in_other = |e: &Entry| {
        other
            .as_ref()
            .map(|o| o.signed.targets.contains_key(&e.path))
    };
    if s.json() {
        let v: Vec<Value> = found
            .iter()
            .map(|e| {
                let mut j = e.to_json();
                j[if prod { "in_ci" } else { "in_production" }] = json!(listed_in_other(e));
                j
            })
            .collect();
        crate::output::json(&Value::Array(v));
        return Ok(());
    }
    for e in found {
        out!("{}", describe(e, prod, listed_in_other(e)));
    }
    Ok(())
}

/// One target in full, for people.
fn describe(e: &Entry, prod: bool, in_other: Option<bool>) -> String {
    let mut out = format!("{}\n", e.path);
    let mut line = |k: &str, v: String| out.push_str(&format!("  {k:<14} {v}\n"));
    line("name", e.name.clone());
    line("version", e.version.clone());
    line("hardware IDs", e.hardware_ids.join(", "));
    line("tags", shown_tags(&e.tags));
    line(
        "size",
        format!("{} ({} bytes)", catalogue::size(e.length), e.length),
    );
    for (alg, h) in &e.file.hashes {
        line(alg, h.clone());
    }
    line(
        "added",
        e.created_at
            .map(catalogue::time_text)
            .unwrap_or_else(|| "not recorded".to_owned()),
    );
    let known = ["name", "version", "hardware_ids", "tags", "created_at"];
    if let Some(Value::Object(c)) = &e.file.custom {
        let rest: serde_json::Map<String, Value> = c
            .iter()
            .filter(|(k, _)| !known.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !rest.is_empty() {
            line("custom", Value::Object(rest).to_string());
        }
    }
    let (label, other) = if prod {
        ("in CI", "the CI targets")
    } else {
        ("in production", "the production targets")
    };
    line(
        label,
        match in_other {
            Some(true) => format!("yes ({other} list it)"),
            Some(false) => format!("no ({other} do not list it)"),
            None => format!("unknown ({other} could not be read)"),
        },
    );
    out
}

/// How `targets tag` changes a target's tags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagMode {
    Set,
    Append,
    Remove,
}

impl TagMode {
    pub fn of(append: bool, remove: bool) -> Self {
        match (append, remove) {
            (true, _) => TagMode::Append,
            (_, true) => TagMode::Remove,
            _ => TagMode::Set,
        }
    }

    /// The tags a target has after the change.
    fn apply(self, current: &[String], given: &[String]) -> Vec<String> {
        let mut out: Vec<String> = match self {
            TagMode::Set => given.to_vec(),
            TagMode::Append => current.iter().chain(given).cloned().collect(),
            TagMode::Remove => current
                .iter()
                .filter(|t| !given.contains(t))
                .cloned()
                .collect(),
        };
        out.sort();
        out.dedup();
        out
    }
}

/// `targets tag TARGET... --tag T [--append|--remove]` (owner): one request per target.
/// Every target is looked up first, so an unknown one changes nothing.
pub fn tag(s: &Settings, wanted: &[String], tags: &[String], mode: TagMode) -> Result<()> {
    let f = Factory::owner(s, None)?;
    let ci = f.targets(false)?;
    let all = catalogue::entries(&ci.signed);
    let mut plan = Vec::new();
    for w in wanted {
        let Some(e) = all.iter().find(|e| e.path == *w) else {
            bail!(
                "the CI targets (version {}) list no target {w:?}; nothing was changed",
                ci.signed.version
            );
        };
        plan.push((e, mode.apply(&e.tags, tags)));
    }
    let mut answers = Vec::new();
    for (e, new) in plan {
        let answer = f
            .api
            .put_json(
                &format!("/ota/factories/{}/targets/{}/tags", f.name, e.path),
                &json!({ "tags": new }),
            )
            .with_context(|| format!("changing the tags of {}", e.path))?;
        if !s.json() {
            outln!(
                "{}: tags {} -> {} (CI targets version {}).",
                e.path,
                shown_tags(&e.tags),
                shown_tags(&new),
                answer["targets_version"]
            );
        }
        answers.push(answer);
    }
    if s.json() {
        crate::output::json(&Value::Array(answers));
    }
    Ok(())
}

fn shown_tags(tags: &[String]) -> String {
    if tags.is_empty() {
        "(none)".to_owned()
    } else {
        tags.join(",")
    }
}

/// `targets prune` (owner): shows what goes, asks (or `--yes`), removes in batches of at
/// most [`BATCH`] per request, each batch one new CI targets version.
pub fn prune(s: &Settings, a: &PruneArgs) -> Result<()> {
    let f = Factory::owner(s, None)?;
    let ci = f.targets(false)?;
    let prod = f.targets(true).ok();
    let all = catalogue::entries(&ci.signed);
    if let Some(missing) = a
        .targets
        .iter()
        .find(|p| !all.iter().any(|e| e.path == **p))
    {
        bail!(
            "the CI targets (version {}) list no target {missing:?}; nothing was removed",
            ci.signed.version
        );
    }
    let cut = a
        .older_than
        .map(|d| OffsetDateTime::now_utc().unix_timestamp() - i64::from(d) * 86_400);
    let victims = catalogue::to_prune(&all, &a.targets, &a.filter, cut, a.keep_last);
    preview(s, &victims, all.len(), prod.as_ref(), a.dry_run);
    if victims.is_empty() || a.dry_run {
        if s.json() {
            crate::output::json(&json!({
                "dry_run": a.dry_run, "removed": [], "selected": names(&victims),
                "targets_version": ci.signed.version,
            }));
        }
        return Ok(());
    }
    if !a.yes {
        let answer = crate::output::ask(
            &format!("Remove these {} CI target(s)? Type yes: ", victims.len()),
            "nothing was removed: confirmation is needed and standard input is not a terminal; \
             check the list with --dry-run, then pass --yes",
        )?;
        if answer != "yes" {
            bail!("not confirmed; nothing was removed");
        }
    }
    let (removed, version) = remove(&f, &victims)?;
    if s.json() {
        crate::output::json(&json!({
            "dry_run": false, "removed": removed, "targets_version": version,
        }));
    } else {
        outln!(
            "Removed {} CI target(s); CI targets version {version}.",
            removed.len()
        );
    }
    Ok(())
}

/// What a prune takes, for people (on standard error with `--json`).
fn preview(
    s: &Settings,
    victims: &[&Entry],
    total: usize,
    prod: Option<&Signed<Targets>>,
    dry: bool,
) {
    if s.json() {
        return;
    }
    if victims.is_empty() {
        outln!("Nothing to prune: no CI target is selected ({total} listed).");
        return;
    }
    out!("{}", catalogue::table(victims));
    let in_prod = victims
        .iter()
        .filter(|e| prod.is_some_and(|p| p.signed.targets.contains_key(&e.path)))
        .count();
    outln!(
        "{} {} of {total} CI target(s).{}",
        if dry {
            "Dry run, nothing removed: would remove"
        } else {
            "Selected for removal:"
        },
        victims.len(),
        if in_prod > 0 {
            format!(
                " {in_prod} of them are also production targets; production keeps them (it \
                 changes only through Waves)."
            )
        } else {
            String::new()
        }
    );
}

/// Removes `victims` in batches; the names removed and the last CI targets version.
fn remove(f: &Factory, victims: &[&Entry]) -> Result<(Vec<String>, Value)> {
    let bar = crate::progress::count(victims.len() as u64, "removing CI targets");
    let mut removed = Vec::new();
    let mut version = Value::Null;
    for batch in victims.chunks(BATCH) {
        let body = json!({ "targets": names(batch) });
        let answer = f
            .api
            .post_json(&format!("/ota/factories/{}/targets/prune", f.name), &body)
            .with_context(|| {
                format!(
                    "removing CI targets ({} removed before this batch)",
                    removed.len()
                )
            })?;
        removed.extend(names(batch));
        version = answer["targets_version"].clone();
        bar.inc(batch.len() as u64);
    }
    Ok((removed, version))
}

fn names(entries: &[&Entry]) -> Vec<String> {
    entries.iter().map(|e| e.path.clone()).collect()
}

fn flavour(prod: bool) -> &'static str {
    if prod {
        "production"
    } else {
        "CI"
    }
}

/// Targets per prune request (the server takes at most 1000).
const BATCH: usize = 1000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_modes() {
        let cur = ["ci".to_owned(), "main".to_owned()];
        let given = ["production".to_owned(), "ci".to_owned()];
        assert_eq!(TagMode::Set.apply(&cur, &given), ["ci", "production"]);
        assert_eq!(
            TagMode::Append.apply(&cur, &given),
            ["ci", "main", "production"]
        );
        assert_eq!(TagMode::Remove.apply(&cur, &given), ["main"]);
    }
}
