//! Progress bars for long operations (uploads, downloads, waves over many targets), on
//! standard error. Drawn only when standard error is a terminal and `--json` is off, so
//! scripts and logs never see them.

use std::io::{IsTerminal, Read};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Decides once, at start, whether bars are drawn.
pub fn init(json: bool) {
    let _ = ENABLED.set(!json && std::io::stderr().is_terminal());
}

/// A bar over `total` bytes, e.g. "uploading app-42.img".
pub fn bytes(total: u64, what: &str) -> Bar {
    Bar::start(
        ProgressBar::new(total),
        "{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
        what,
    )
}

/// A bar over `total` items, e.g. "removing CI targets".
pub fn count(total: u64, what: &str) -> Bar {
    Bar::start(
        ProgressBar::new(total),
        "{msg} [{bar:30}] {pos}/{len} ({eta})",
        what,
    )
}

/// A spinner for a step whose size is not known in advance, e.g. "signing 100000 targets".
pub fn step(what: &str) -> Bar {
    let bar = Bar::start(
        ProgressBar::new_spinner(),
        "{spinner} {msg} ({elapsed})",
        what,
    );
    bar.0.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// Runs `f` with the current bar (if any) cleared, so a line printed meanwhile is not
/// drawn over.
pub fn suspend<R>(f: impl FnOnce() -> R) -> R {
    let current = CURRENT.lock().ok().and_then(|c| c.clone());
    match current {
        Some(bar) => bar.suspend(f),
        None => f(),
    }
}

/// A progress bar; cleared when dropped.
pub struct Bar(ProgressBar);

impl Bar {
    fn start(bar: ProgressBar, template: &str, what: &str) -> Self {
        if !ENABLED.get().copied().unwrap_or(false) {
            return Self(ProgressBar::hidden());
        }
        bar.set_draw_target(ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(what.to_owned());
        if let Ok(mut c) = CURRENT.lock() {
            *c = Some(bar.clone());
        }
        Self(bar)
    }

    pub fn set_message(&self, what: &str) {
        self.0.set_message(what.to_owned());
    }

    /// `reader`, counting what is read through it on this bar.
    pub fn reader<R: Read>(&self, reader: R) -> impl Read {
        self.0.wrap_read(reader)
    }

    /// `reader`, counting on this bar, which it owns: the bar lives (and is cleared) with it.
    pub fn track<R: Read>(self, reader: R) -> Tracked<R> {
        Tracked {
            inner: reader,
            bar: self,
        }
    }

    pub fn inc(&self, n: u64) {
        self.0.inc(n);
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.0.finish_and_clear();
        if let Ok(mut c) = CURRENT.lock() {
            *c = None;
        }
    }
}

/// A reader that owns its progress bar.
pub struct Tracked<R> {
    inner: R,
    bar: Bar,
}

impl<R: Read> Read for Tracked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

static ENABLED: OnceLock<bool> = OnceLock::new();
static CURRENT: Mutex<Option<ProgressBar>> = Mutex::new(None);
