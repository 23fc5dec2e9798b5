//! A skip survives the test harness: this file runs its own test binary again, with one test
//! that skips, and reads what came out.

use std::process::{Command, Output};

/// The test the others run in a child process (with `TEST_SKIP_DEMO` set).
#[test]
fn a_story_that_skips() {
    if std::env::var_os("TEST_SKIP_DEMO").is_none() {
        // Not run as the demo: nothing to show, and nothing may be logged as skipped.
        return;
    }
    test_skip::skip("the demo tool is missing (install demo-tool)");
}

fn run_demo(ci: bool, log: &std::path::Path) -> Output {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "a_story_that_skips"])
        .env("TEST_SKIP_DEMO", "1")
        .env(test_skip::LOG_VAR, log);
    if ci {
        cmd.env("CI", "true");
    } else {
        cmd.env_remove("CI");
    }
    cmd.output().unwrap()
}

#[test]
fn a_skip_shows_in_the_output_of_a_passing_test_and_in_the_log() {
    let dir = tempfile_dir("visible");
    let log = dir.join("skips.log");
    let out = run_demo(false, &log);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let line = format!(
        "SKIPPED a_story_that_skips (crates/test-skip/tests/visible.rs:{}): \
         the demo tool is missing (install demo-tool)",
        line_of("test_skip::skip(\"the demo")
    );
    assert!(stderr.contains(&line), "stderr: {stderr}");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), format!("{line}\n"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_skip_fails_under_ci() {
    let dir = tempfile_dir("ci");
    let log = dir.join("skips.log");
    let out = run_demo(true, &log);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{all}");
    assert!(
        all.contains(
            "the demo tool is missing (install demo-tool): tests must not skip under CI=true"
        ),
        "{all}"
    );
    // A failure, and still in the log, so that the run's summary names it.
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.starts_with("SKIPPED a_story_that_skips (crates/test-skip/tests/visible.rs:"),
        "{logged}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn tempfile_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("test-skip-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The line of this file where `needle` first occurs.
fn line_of(needle: &str) -> usize {
    let me = include_str!("visible.rs");
    1 + me
        .lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle} is not in visible.rs"))
}
