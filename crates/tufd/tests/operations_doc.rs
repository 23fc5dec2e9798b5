//! docs/OPERATIONS.md cannot rot: its blocks marked `sh test` (and files marked
//! `test file=NAME`) run in order, as one bash script with `set -euo pipefail`, against the
//! tufd this test built, in a scratch directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The guide covers what an operator needs, and every tested block of it succeeds.
#[test]
fn operations_guide_commands_work() {
    let guide = std::fs::read_to_string(repo().join("docs/OPERATIONS.md")).unwrap();
    for heading in [
        "## Install",
        "## Configuration",
        "## TLS",
        "## Replicas on PostgreSQL",
        "## Backup and restore",
        "## Upgrade",
        "## Monitoring and alerts",
        "## Rotating the server key",
        "## What tufd keeps, and where",
    ] {
        assert!(
            guide.contains(heading),
            "docs/OPERATIONS.md lacks {heading}"
        );
    }
    let blocks = tested_blocks(&guide);
    assert!(blocks.len() >= 10, "only {} tested blocks", blocks.len());
    for tool in ["curl", "jq", "openssl", "promtool", "sha256sum"] {
        if !on_path(tool) {
            test_skip::skip(&format!(
                "{tool} is missing (scripts/test installs it): docs/OPERATIONS.md unchecked"
            ));
            return;
        }
    }
    let work = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(repo().join("packaging"), work.path().join("packaging")).unwrap();
    let script = work.path().join("operations.sh");
    std::fs::write(&script, script_of(&blocks)).unwrap();
    let out = run(&script, work.path());
    let log = std::fs::read_to_string(work.path().join("tufd.log")).unwrap_or_default();
    assert!(
        out.status.success(),
        "docs/OPERATIONS.md: a tested block failed ({:?})\n--- trace\n{}\n--- stdout\n{}\n--- tufd.log\n{log}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout),
    );
}

/// A block to run: shell commands, or a file to write first.
#[derive(Debug)]
enum Block {
    Shell(String),
    File { name: String, text: String },
}

fn tested_blocks(guide: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<(Option<Option<String>>, String)> = None;
    for line in guide.lines() {
        match (&mut open, line.trim_start().strip_prefix("```")) {
            (None, Some(info)) => {
                let words: Vec<&str> = info.split_whitespace().collect();
                let tested = words.get(1) == Some(&"test");
                let file = words
                    .iter()
                    .find_map(|w| w.strip_prefix("file="))
                    .map(str::to_owned);
                let kind = tested.then_some(file);
                if tested && kind == Some(None) {
                    assert_eq!(
                        words[0], "sh",
                        "a tested block without a file is shell: {line}"
                    );
                }
                open = Some((kind, String::new()));
            }
            (Some(_), Some("")) => {
                let (kind, text) = open.take().unwrap();
                match kind {
                    Some(Some(name)) => out.push(Block::File { name, text }),
                    Some(None) => out.push(Block::Shell(text)),
                    None => {}
                }
            }
            (Some((_, text)), _) => {
                text.push_str(line);
                text.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(
        open.is_none(),
        "an unclosed code block in docs/OPERATIONS.md"
    );
    out
}

fn script_of(blocks: &[Block]) -> String {
    let mut s = String::from("set -euo pipefail\nset -x\n");
    for b in blocks {
        match b {
            Block::Shell(text) => s.push_str(text),
            Block::File { name, text } => {
                assert!(!text.contains("OPERATIONS_EOF"));
                s.push_str(&format!(
                    "cat > '{name}' <<'OPERATIONS_EOF'\n{text}OPERATIONS_EOF\n"
                ));
            }
        }
    }
    s
}

/// Runs the script in its own process group (tufd runs in the background in it), with tufd on
/// PATH and a clean TUFD_* environment; what is left running is stopped afterwards.
fn run(script: &Path, dir: &Path) -> std::process::Output {
    let tufd = PathBuf::from(env!("CARGO_BIN_EXE_tufd"));
    let path = format!(
        "{}:{}",
        tufd.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new("timeout");
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("TUFD_") {
            cmd.env_remove(k);
        }
    }
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let child = cmd
        .args(["300", "bash"])
        .arg(script)
        .current_dir(dir)
        .env("PATH", path)
        .env("TUFD_DATA_DIR", dir.join("data"))
        .env("TUFD_LISTEN", "127.0.0.1:0")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let group = format!("-{}", child.id());
    let out = child.wait_with_output().unwrap();
    let _ = Command::new("kill")
        .args(["-TERM", "--", &group])
        .stderr(Stdio::null())
        .status();
    out
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}
