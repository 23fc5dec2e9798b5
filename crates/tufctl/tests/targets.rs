//! `targets list|show|tag|prune` and `waves show` end to end on a real `tufd`: filters by
//! name, version, hardware ID and tag; tags changed by the owner only; a prune previewed,
//! then applied, never touching production; a CI device keeps refreshing through it; a wave
//! shows the targets it adds.

mod support;

use serde_json::Value;
use support::e2e::*;
use support::*;

#[test]
fn targets_and_waves_on_sqlite() {
    story(Server::start());
}

#[test]
fn targets_and_waves_on_postgres() {
    on_postgres(story);
}

fn story(server: Server) {
    let x = Offline::setup(&server, "acme", "creds.tgz");
    let o = x.only.to_str().unwrap().to_owned();
    let ci_device = Device::new(&root_v1(&x.ci_base), &x.ci_base);
    for (name, version, hw, tag) in [
        ("app", "40", "board-a", "ci"),
        ("app", "41", "board-a", "ci"),
        ("app", "42", "board-a", "ci"),
        ("tool", "1", "board-b", "tools"),
    ] {
        add(&x, name, version, hw, tag);
    }
    listing(&x);
    tagging(&x);
    ok(&x.ctl(&["waves", "init", "-k", &o, "wave-42", "42", "production"]));
    let w = json(&ok(&x.ctl(&["--json", "waves", "show", "wave-42"])));
    assert_eq!(
        (w["status"].as_str(), w["total"].as_u64()),
        (Some("active"), Some(1))
    );
    assert_eq!(w["new"], serde_json::json!(["app-42"]));
    assert_eq!(w["targets"]["app-42"]["custom"]["tags"][0], "production");
    let w = json(&ok(&x.ctl(&[
        "--json",
        "waves",
        "show",
        "wave-42",
        "--hardware-id",
        "board-b",
    ])));
    assert_eq!(w["targets"], serde_json::json!({}));
    ok(&x.ctl(&["waves", "complete", "wave-42"]));
    // The next wave adds app-41 and carries app-42 along: only app-41 is new.
    ok(&x.ctl(&["waves", "init", "-k", &o, "wave-41", "41", "production"]));
    let w = json(&ok(&x.ctl(&["--json", "waves", "show", "wave-41"])));
    assert_eq!(w["new"], serde_json::json!(["app-41"]));
    assert_eq!(w["total"], 2);
    ok(&x.ctl(&["waves", "complete", "wave-41"]));
    let err = fails(&x.ctl(&["waves", "show", "wave-9"]));
    assert!(err.contains("404"), "{err}");

    pruning(&x);
    ci_device.refreshes();
}

fn add(x: &Offline, name: &str, version: &str, hw: &str, tag: &str) {
    let file = x.dir.path().join(format!("{name}-{version}.img"));
    std::fs::write(&file, format!("{name} {version}")).unwrap();
    ok(&x.server.tufctl_as(
        &x.f.ci_token,
        &x.f.name,
        &[
            "targets",
            "add",
            "--name",
            name,
            "--version",
            version,
            "--hardware-id",
            hw,
            "--tag",
            tag,
            "--file",
            file.to_str().unwrap(),
        ],
        &[],
    ));
}

/// The paths a `--json targets list` printed.
fn paths(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|t| t["target"].as_str().unwrap().to_owned())
        .collect()
}

fn list(x: &Offline, filter: &[&str]) -> Vec<String> {
    let mut args = vec!["--json", "targets", "list"];
    args.extend_from_slice(filter);
    paths(&json(&ok(&x.ctl(&args))))
}

fn listing(x: &Offline) {
    assert_eq!(list(x, &[]), ["app-40", "app-41", "app-42", "tool-1"]);
    assert_eq!(list(x, &["--hardware-id", "board-b"]), ["tool-1"]);
    assert_eq!(list(x, &["--tag", "ci", "--version", "41"]), ["app-41"]);
    assert_eq!(
        list(x, &["--name", "app", "--hardware-id", "board-b"]),
        Vec::<String>::new()
    );
    assert!(list(x, &["--prod"]).is_empty());
    // A read token lists too; an entry carries what the server recorded.
    let one = json(&ok(&x.ctl(&["--json", "targets", "show", "41"])));
    let t = &one[0];
    assert_eq!(
        (t["target"].as_str(), t["in_production"].as_bool()),
        (Some("app-41"), Some(false))
    );
    assert!(
        t["created_at"].as_str().is_some_and(|c| c.ends_with('Z')),
        "{t}"
    );
    assert_eq!(t["hashes"]["sha256"].as_str().map(str::len), Some(64));
    let human = ok(&x.ctl(&["targets", "list", "--hardware-id", "board-a"]));
    assert!(human.contains("3 of 4 CI target(s)"), "{human}");
    let err = fails(&x.ctl(&["targets", "show", "app-99"]));
    assert!(err.contains("\"app-99\""), "{err}");
}

fn tags_of(x: &Offline, target: &str) -> Vec<String> {
    let v = json(&ok(&x.ctl(&["--json", "targets", "show", target])));
    v[0]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect()
}

fn tagging(x: &Offline) {
    ok(&x.ctl(&[
        "targets",
        "tag",
        "app-42",
        "--tag",
        "production",
        "--append",
    ]));
    assert_eq!(tags_of(x, "app-42"), ["ci", "production"]);
    ok(&x.ctl(&["targets", "tag", "app-42", "--tag", "ci", "--remove"]));
    assert_eq!(tags_of(x, "app-42"), ["production"]);
    ok(&x.ctl(&["targets", "tag", "tool-1", "--tag", "b,a"]));
    assert_eq!(tags_of(x, "tool-1"), ["a", "b"]);
    // The CI token may add targets, not retag them; an unknown target changes nothing.
    let before = list(x, &["--tag", "a"]);
    let err = fails(&x.server.tufctl_as(
        &x.f.ci_token,
        &x.f.name,
        &["targets", "tag", "tool-1", "--tag", "x"],
        &[],
    ));
    assert!(err.contains("403"), "{err}");
    let err = fails(&x.ctl(&["targets", "tag", "tool-1", "app-99", "--tag", "x"]));
    assert!(err.contains("nothing was changed"), "{err}");
    assert_eq!(list(x, &["--tag", "a"]), before);
    assert!(list(x, &["--tag", "x"]).is_empty());
}

fn pruning(x: &Offline) {
    let ci_version = |x: &Offline| x.get("targets.json")["signed"]["version"].clone();
    let prod_before = x.get("targets.json?production=1");
    let v0 = ci_version(x);
    // A preview removes nothing.
    let dry = json(&ok(&x.ctl(&[
        "--json",
        "targets",
        "prune",
        "--name",
        "app",
        "--keep-last",
        "1",
        "--dry-run",
    ])));
    assert_eq!(dry["selected"], serde_json::json!(["app-40", "app-41"]));
    assert_eq!(ci_version(x), v0);
    // Without --yes and without a terminal: refused, nothing removed.
    let err = fails(&x.ctl(&["targets", "prune", "--name", "app", "--keep-last", "1"]));
    assert!(err.contains("--yes"), "{err}");
    // Nothing is older than a day; an unknown name is refused; the CI token may not prune.
    let none = json(&ok(&x.ctl(&[
        "--json",
        "targets",
        "prune",
        "--older-than",
        "1",
        "--yes",
    ])));
    assert_eq!(none["removed"], serde_json::json!([]));
    let err = fails(&x.ctl(&["targets", "prune", "app-40", "app-99", "--yes"]));
    assert!(
        err.contains("\"app-99\"") && err.contains("nothing was removed"),
        "{err}"
    );
    let err = fails(&x.server.tufctl_as(
        &x.f.ci_token,
        &x.f.name,
        &["targets", "prune", "app-40", "--yes"],
        &[],
    ));
    assert!(err.contains("403"), "{err}");
    assert_eq!(ci_version(x), v0);
    // A prune with no selection at all is a usage error.
    let out = x.ctl(&["targets", "prune", "--yes"]);
    assert_eq!(out.status.code(), Some(2));

    let done = json(&ok(&x.ctl(&[
        "--json",
        "targets",
        "prune",
        "--name",
        "app",
        "--keep-last",
        "1",
        "--yes",
    ])));
    assert_eq!(done["removed"], serde_json::json!(["app-40", "app-41"]));
    assert_eq!(list(x, &[]), ["app-42", "tool-1"]);
    assert_eq!(done["targets_version"], ci_version(x));
    // Production targets are untouched: app-41 is still published there.
    let prod = x.get("targets.json?production=1");
    assert_eq!(prod, prod_before);
    assert!(prod["signed"]["targets"]["app-41"].is_object());
    // By name, one at a time.
    ok(&x.ctl(&["targets", "prune", "tool-1", "--yes"]));
    assert_eq!(list(x, &[]), ["app-42"]);
}
