//! docs/THREAT-MODEL.md names, for every defence, the test or fixture that proves it. This
//! test keeps those names true: every backticked repository path in the document must exist,
//! and a path followed by `::name` must be a file that still defines `fn name(`. A renamed or
//! deleted proof fails here until the threat model follows.
//!
//! A backticked span is taken as a repository path when it starts with one of the top-level
//! directories below; anything else in backticks (commands, flags, API routes, placeholders
//! like `<data-dir>/keyring`) is prose.

use std::path::{Path, PathBuf};

const ROOTS: [&str; 4] = ["crates/", "docs/", "scripts/", ".ci/"];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every backticked span of `doc` that names a repository path, with its `::function` if any.
fn references(doc: &str) -> Vec<(String, Option<String>)> {
    doc.split('`')
        .skip(1)
        .step_by(2)
        .filter(|span| ROOTS.iter().any(|r| span.starts_with(r)))
        .map(|span| match span.split_once("::") {
            Some((path, function)) => (path.to_owned(), Some(function.to_owned())),
            None => (span.to_owned(), None),
        })
        .collect()
}

/// What in `doc` does not exist under `root`, one line each.
fn broken(root: &Path, doc: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (path, function) in references(doc) {
        let full = root.join(&path);
        if path.contains(char::is_whitespace) || !full.exists() {
            out.push(format!("`{path}` does not exist"));
            continue;
        }
        if path.ends_with('/') != full.is_dir() {
            out.push(format!(
                "`{path}`: a trailing / must name a directory, and only then"
            ));
        }
        let Some(function) = function else { continue };
        let text = std::fs::read_to_string(&full).unwrap_or_default();
        if !text.contains(&format!("fn {function}(")) {
            out.push(format!("`{path}` has no `fn {function}(`"));
        }
    }
    out
}

#[test]
fn every_proof_named_in_the_threat_model_exists() {
    let doc = std::fs::read_to_string(workspace().join("docs/THREAT-MODEL.md")).unwrap();
    let refs = references(&doc);
    // The document proves its defences by path; a parsing slip must not make this vacuous.
    assert!(refs.len() >= 80, "only {} paths found", refs.len());
    assert!(
        refs.iter().filter(|(_, f)| f.is_some()).count() >= 50,
        "most proofs name their test function"
    );
    let broken = broken(&workspace(), &doc);
    assert!(
        broken.is_empty(),
        "docs/THREAT-MODEL.md names proofs that are gone (update the document):\n{}",
        broken.join("\n")
    );
}

#[test]
fn the_check_notices_a_missing_file_a_missing_function_and_a_file_posing_as_a_directory() {
    let doc = "`crates/tufctl/tests/threat_model.rs::references`, \
               `crates/tufctl/tests/no_such_test.rs`, \
               `crates/tufctl/tests/supply_chain.rs::no_such_function`, \
               `crates/tufctl/tests/threat_model.rs/`, \
               `crates/tuf-agent/tests/fixtures/rollback-timestamp/`, \
               `tufctl keys status`, `/ota/tokens`, `<data-dir>/keyring`";
    assert_eq!(references(doc).len(), 5);
    assert_eq!(
        broken(&workspace(), doc),
        [
            "`crates/tufctl/tests/no_such_test.rs` does not exist",
            "`crates/tufctl/tests/supply_chain.rs` has no `fn no_such_function(`",
            "`crates/tufctl/tests/threat_model.rs/` does not exist",
        ]
    );
}
