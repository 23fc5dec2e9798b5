//! What tufctl prints. Standard output and standard error are written without ever
//! panicking: a reader that went away (`tufctl keys show-root | head`) ends the output, never
//! the command, so a command that changes something finishes what it started. `main` reports
//! a write failure other than a closed pipe (a full disk) at the end.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Like `println!`, on standard output, never panicking.
macro_rules! outln {
    () => { $crate::output::write_out(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::output::write_out(format_args!("{}\n", format_args!($($arg)*))) };
}

/// Like `print!`, on standard output, never panicking.
macro_rules! out {
    ($($arg:tt)*) => { $crate::output::write_out(format_args!($($arg)*)) };
}

/// A note or warning for people, on standard error, never panicking. With `--json` each is
/// a JSON line `{"diagnostic": "warning: ..."}`, so standard error stays machine-readable.
macro_rules! errln {
    ($($arg:tt)*) => { $crate::output::diagnostic(&format!($($arg)*)) };
}

/// Sets, once at start, whether diagnostics are JSON lines.
pub fn init(json: bool) {
    JSON.store(json, Ordering::Relaxed);
}

/// Writes one diagnostic: as it is, or with `--json` as a JSON line.
pub fn diagnostic(text: &str) {
    if JSON.load(Ordering::Relaxed) {
        let line = serde_json::json!({ "diagnostic": text });
        write_err(format_args!("{line}\n"));
    } else {
        write_err(format_args!("{text}\n"));
    }
}

/// Writes to standard output. After the reader closed the pipe nothing more is written.
pub fn write_out(args: std::fmt::Arguments) {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        note_failure(&STDOUT_CLOSED, e);
    }
}

/// Writes to standard error as it is, the same way (errors and prompts).
pub fn write_err(args: std::fmt::Arguments) {
    if STDERR_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    crate::progress::suspend(|| {
        if let Err(e) = io::stderr().lock().write_fmt(args) {
            note_failure(&STDERR_CLOSED, e);
        }
    });
}

/// Writes raw bytes (a response body, a generated page) to standard output.
pub fn write_bytes(bytes: &[u8]) {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_all(bytes).and_then(|()| out.flush()) {
        note_failure(&STDOUT_CLOSED, e);
    }
}

/// Prints one JSON document on a line of its own.
pub fn json(v: &serde_json::Value) {
    outln!("{v}");
}

/// A failure to write other than a closed pipe (which is the reader's choice, not an
/// error), for `main` to report once the command is done.
pub fn write_failure() -> Option<String> {
    FAILURE.lock().ok().and_then(|f| f.clone())
}

fn note_failure(closed: &AtomicBool, e: io::Error) {
    closed.store(true, Ordering::Relaxed);
    if e.kind() == io::ErrorKind::BrokenPipe {
        return;
    }
    if let Ok(mut f) = FAILURE.lock() {
        f.get_or_insert_with(|| format!("cannot write the output: {e}"));
    }
}

static JSON: AtomicBool = AtomicBool::new(false);
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);
static STDERR_CLOSED: AtomicBool = AtomicBool::new(false);
static FAILURE: Mutex<Option<String>> = Mutex::new(None);

/// Asks `question` on the terminal (standard error) and reads one line of answer from
/// standard input. Refuses when standard input is not a terminal: `script_hint` says what a
/// script passes instead (e.g. `--yes`).
pub fn ask(question: &str, script_hint: &str) -> anyhow::Result<String> {
    use std::io::{BufRead, IsTerminal};
    if !io::stdin().is_terminal() {
        anyhow::bail!("{script_hint}");
    }
    write_err(format_args!("{question}"));
    let mut answer = String::new();
    io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| anyhow::anyhow!("reading the answer: {e}"))?;
    Ok(answer.trim().to_owned())
}

/// With `--json`, the JSON document `v`; otherwise what `human` prints.
pub fn either(json: bool, v: serde_json::Value, human: impl FnOnce()) {
    if json {
        self::json(&v);
    } else {
        human();
    }
}
