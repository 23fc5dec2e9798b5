//! What `packaging/` ships, checked by the tools that read it: the systemd unit by
//! `systemd-analyze` (and its command line by tufd itself), the alerting rules by `promtool`
//! against the metrics tufd really exports.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;

/// `systemd-analyze verify` finds nothing to say about the unit (a misspelt directive is only
/// a warning there, so any output fails), and its offline security review rates the exposure
/// at most 2.0 of 10.
#[test]
fn systemd_unit_verifies_and_is_hardened() {
    let Some(analyze) = tool("systemd-analyze", "systemd") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let unit = installed_unit(dir.path());
    let out = Command::new(&analyze)
        .arg("verify")
        .arg(&unit)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "systemd-analyze verify: {said}");
    assert_eq!(said.trim(), "", "systemd-analyze verify has remarks");
    let out = Command::new(&analyze)
        .args(["security", "--offline=yes", "--threshold=20", "--no-pager"])
        .arg(&unit)
        .output()
        .unwrap();
    let review = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "exposure above 2.0:\n{review}");
    assert!(
        review.contains("Overall exposure level for tufd.service"),
        "{review}"
    );
}

/// The unit's ExecStart command line is one tufd accepts: run with the configuration and data
/// directories moved into a temporary directory, it serves.
#[test]
fn systemd_unit_command_line_starts_tufd() {
    let text = std::fs::read_to_string(repo().join("packaging/tufd.service")).unwrap();
    let exec = text
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tufd.toml");
    std::fs::write(&config, "listen = \"127.0.0.1:0\"\n").unwrap();
    let data = dir.path().join("state");
    let exec = exec
        .replace("/etc/tufd/tufd.toml", config.to_str().unwrap())
        .replace("/var/lib/tufd", data.to_str().unwrap());
    let mut words = exec.split_whitespace();
    assert_eq!(words.next(), Some("/usr/local/bin/tufd"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_tufd"))
        .args(words)
        .env("TUFD_ADMIN_TOKEN", "test-admin-token-0123456789abcdef")
        .env_remove("TUFD_CONFIG")
        .env_remove("TUFD_DATA_DIR")
        .env_remove("TUFD_LISTEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        line.starts_with("listening on http://127.0.0.1:"),
        "{line:?}"
    );
    assert!(data.join("tufd.sqlite").exists());
}

/// `promtool check rules` accepts the rules and `promtool test rules` passes their unit tests.
#[test]
fn alert_rules_check_and_pass_their_unit_tests() {
    let Some(promtool) = tool("promtool", "prometheus") else {
        return;
    };
    let dir = repo().join("packaging/prometheus");
    for (what, file) in [
        ("check", "tufd-alerts.yml"),
        ("test", "tufd-alerts.test.yml"),
    ] {
        let out = Command::new(&promtool)
            .args([what, "rules", file])
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool {what} rules {file}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Every metric and every label value the rules select on is one a running tufd exports
/// (a renamed metric would otherwise leave an alert that can never fire). The Factory's roots
/// and timestamps need attention here, which is when tufd exports them per Factory.
#[test]
fn alert_rules_name_metrics_tufd_exports() {
    let s = Server::start(None, common::suite::LAPSING);
    create_factory(&s, "acme");
    std::thread::sleep(std::time::Duration::from_millis(3000));
    let (status, body) = get(&s, "/metrics", Some(&s.admin));
    assert_eq!(status, StatusCode::OK);
    let scraped = String::from_utf8(body).unwrap();
    let rules =
        std::fs::read_to_string(repo().join("packaging/prometheus/tufd-alerts.yml")).unwrap();
    let names = words(&rules, "tufd_");
    assert!(names.len() >= 3, "{names:?}");
    for name in &names {
        assert!(
            scraped
                .lines()
                .any(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} "))),
            "the rules use {name}, which tufd does not export:\n{scraped}"
        );
    }
    for (label, value) in matchers(&rules) {
        if label == "job" {
            continue; // Prometheus's label, set by the scrape configuration.
        }
        for v in value.split('|') {
            assert!(
                scraped.contains(&format!("{label}=\"{v}\"")),
                "the rules select {label}=\"{v}\", which tufd never exports:\n{scraped}"
            );
        }
    }
}

/// The unit with ExecStart pointing at the tufd this test built (verify checks that the
/// program exists), written into `dir`.
fn installed_unit(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(repo().join("packaging/tufd.service")).unwrap();
    assert!(text.contains("ExecStart=/usr/local/bin/tufd "));
    let unit = dir.join("tufd.service");
    std::fs::write(
        &unit,
        text.replace("/usr/local/bin/tufd", env!("CARGO_BIN_EXE_tufd")),
    )
    .unwrap();
    unit
}

/// `program` on PATH, or None after a visible skip naming the Debian `package`.
#[track_caller]
fn tool(program: &str, package: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        test_skip::skip(&format!(
            "{program} is missing (Debian package `{package}`; scripts/test installs it)"
        ));
    }
    found
}

/// Identifiers starting with `prefix` in `text`.
fn words(text: &str, prefix: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with(prefix))
        .map(str::to_owned)
        .collect()
}

/// The `label="value"` and `label=~"a|b"` matchers of the rules' expressions.
fn matchers(rules: &str) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for selector in rules.split('{').skip(1) {
        let Some((inside, _)) = selector.split_once('}') else {
            continue;
        };
        if inside.contains("$labels") || inside.contains('{') {
            continue; // an annotation template, not a selector
        }
        for m in inside.split(',') {
            let m = m.trim();
            let Some((label, value)) = m.split_once('=') else {
                continue;
            };
            let value = value.trim_start_matches('~').trim_matches('"');
            out.insert((label.trim().to_owned(), value.to_owned()));
        }
    }
    out
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The counters the re-signing alerts read move: `tufd_resigned_total` as upkeep re-signs,
/// `tufd_resign_failures_total` once the online keys no longer open (their sealed bytes
/// damaged in the database behind tufd's back).
#[test]
fn resigning_outcomes_are_counted() {
    let Some(sqlite3) = tool("sqlite3", "sqlite3") else {
        return;
    };
    let s = Server::start(None, SHORT_PERIODS);
    create_factory(&s, "acme");
    let resigned = wait_for(&s, "tufd_resigned_total", 1);
    assert_eq!(counter(&s, "tufd_resign_failures_total"), 0);
    let out = Command::new(sqlite3)
        .arg(s.dir.path().join("tufd.sqlite"))
        .arg(".timeout 5000")
        .arg("UPDATE online_keys SET sealed = X'00', data_key = NULL")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for(&s, "tufd_resign_failures_total", 1);
    assert!(counter(&s, "tufd_resigned_total") >= resigned);
}

/// The value of the unlabelled counter `name` on /metrics.
fn counter(s: &Server, name: &str) -> u64 {
    let (status, body) = get(s, "/metrics", Some(&s.admin));
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8(body).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("{name} is not exported:\n{text}"))
        .parse()
        .unwrap()
}

/// Waits (up to 30 s: upkeep runs every second here) until `name` is at least `at_least`.
fn wait_for(s: &Server, name: &str, at_least: u64) -> u64 {
    for _ in 0..300 {
        let n = counter(s, name);
        if n >= at_least {
            return n;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("{name} stayed below {at_least}");
}
