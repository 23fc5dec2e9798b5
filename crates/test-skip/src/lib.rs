//! The one way a tuf-factory test that cannot run here (a tool, a database or an interpreter is
//! missing) says so.
//!
//! A skipped test passes, which is exactly how a broken feature hides. So a skip is never
//! quiet:
//! - under `CI=true` it is a failure (the test panics, naming what was missing), and still
//!   logged (below);
//! - otherwise it writes `SKIPPED <test> (<where>): <reason>` straight to the process's
//!   stderr, which the test harness does not capture (it captures `print!`/`eprint!` only),
//!   so the line shows in a normal `cargo test` run;
//! - and it appends the same line to the file named by `TUF_TEST_SKIP_LOG`, when set:
//!   `scripts/test` sets it, then prints every skip of the run at the end and fails under
//!   `CI=true` if there was any.
//!
//! ```
//! // A test that needs the Python peer gets it, or skips visibly and returns.
//! fn interop_test() {
//!     let Some(python) = test_skip::env("TUF_TEST_PYTHON", "the python-tuf interop tests") else {
//!         return;
//!     };
//!     assert!(!python.is_empty()); // ...run the test with `python`
//! }
//! std::env::set_var("TUF_TEST_PYTHON", "/usr/bin/python3");
//! interop_test();
//! assert_eq!(test_skip::LOG_VAR, "TUF_TEST_SKIP_LOG");
//! ```

#![warn(missing_docs)]

use std::io::Write;
use std::panic::Location;

/// The environment variable naming the skip log (one line per skip, appended).
pub const LOG_VAR: &str = "TUF_TEST_SKIP_LOG";

/// Skips the calling test because `reason` (what is missing, and how to get it).
///
/// Panics under `CI=true`. Callers return right after it.
#[track_caller]
pub fn skip(reason: &str) {
    let line = notice(&test_name(), Location::caller(), reason);
    // Logged in every case, so that the run's summary lists it even when it fails the run.
    if let Some(log) = std::env::var_os(LOG_VAR).filter(|v| !v.is_empty()) {
        append(std::path::Path::new(&log), &line);
    }
    if ci() {
        panic!("{line}: tests must not skip under CI=true");
    }
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// The value of environment variable `var`, or `None` after [`skip`] saying it is unset and
/// what it is for (`needed_for`).
#[track_caller]
pub fn env(var: &str, needed_for: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            skip(&format!("{var} is not set ({needed_for})"));
            None
        }
    }
}

/// Whether this run must not skip anything.
pub fn ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

fn notice(test: &str, at: &Location<'_>, reason: &str) -> String {
    // One line per skip, whatever the reason holds: the log is read line by line.
    let reason = reason.replace(['\n', '\r'], " ");
    format!("SKIPPED {test} ({}:{}): {reason}", at.file(), at.line())
}

/// The running test's name: the harness names each test's thread after it.
fn test_name() -> String {
    std::thread::current()
        .name()
        .filter(|n| *n != "main")
        .unwrap_or("<unnamed test>")
        .to_owned()
}

fn append(log: &std::path::Path, line: &str) {
    // One write of a short line to a file opened for appending: lines from test processes
    // running side by side do not interleave.
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()));
    if let Err(e) = written {
        // The skip must not vanish with the log: say so where the notice went.
        let _ = writeln!(std::io::stderr(), "cannot append to {}: {e}", log.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_notice_names_the_test_the_place_and_the_reason() {
        let at = Location::caller();
        let line = notice("suite::story", at, "PATH lacks\nfaketime");
        assert_eq!(
            line,
            format!(
                "SKIPPED suite::story ({}:{}): PATH lacks faketime",
                at.file(),
                at.line()
            )
        );
    }

    #[test]
    fn the_test_name_is_the_harness_thread_name() {
        let name = std::thread::Builder::new()
            .name("crate_tests::a_story".into())
            .spawn(test_name)
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(name, "crate_tests::a_story");
    }

    #[test]
    fn appended_lines_accumulate() {
        let dir = std::env::temp_dir().join(format!("test-skip-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("skips.log");
        let _ = std::fs::remove_file(&log);
        append(&log, "SKIPPED a (x.rs:1): one");
        append(&log, "SKIPPED b (x.rs:2): two");
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            "SKIPPED a (x.rs:1): one\nSKIPPED b (x.rs:2): two\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
