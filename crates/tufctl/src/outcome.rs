//! How a run ends: the exit code, and the error as one paragraph (each cause once, then what
//! to do next) or, with `--json`, as `{"error": ..., "detail": ...}` on standard error.
//!
//! Exit codes (also in `tufctl --help` and docs/CLI.md):
//! 0 success; 1 error; 2 usage (arguments clap refused); 3 verification refused (a named
//! check of tuf-ceremony failed, here or on the server); 4 expiring (`keys status --check`
//! found metadata that expires within `--within DAYS`).

use std::ffi::OsString;
use std::fmt;
use std::process::ExitCode;

use serde_json::json;

use crate::client::ApiError;

/// What kind of failure ended the run; each has its own exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Error,
    Usage,
    Refused,
    Expiring,
}

impl Kind {
    pub const fn code(self) -> u8 {
        match self {
            Kind::Error => 1,
            Kind::Usage => 2,
            Kind::Refused => 3,
            Kind::Expiring => 4,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Kind::Error => "error",
            Kind::Usage => "usage",
            Kind::Refused => "refused",
            Kind::Expiring => "expiring",
        }
    }
}

/// `keys status --check`: metadata expires within the window (exit code 4).
#[derive(Debug)]
pub struct Expiring {
    pub within_days: u32,
    pub items: Vec<String>,
}

impl fmt::Display for Expiring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} expire(s) within {} day(s) (see the warnings above for who renews what)",
            self.items.join(", "),
            self.within_days,
        )
    }
}

impl std::error::Error for Expiring {}

/// The kind of `e`, from the typed errors in its chain (never from its text).
pub fn kind(e: &anyhow::Error) -> Kind {
    let mut kind = Kind::Error;
    for c in e.chain() {
        if c.downcast_ref::<Expiring>().is_some() {
            return Kind::Expiring;
        }
        let refused = c.downcast_ref::<tuf_ceremony::Refusal>().is_some()
            || c.downcast_ref::<tuf_ceremony::Error>()
                .is_some_and(|e| e.refusal().is_some())
            || c.downcast_ref::<ApiError>()
                .is_some_and(|a| a.status == 422);
        if refused {
            kind = Kind::Refused;
        }
    }
    kind
}

/// The causes of `e`, outermost first, each said once: a cause whose text an earlier one
/// already carries (an I/O error inside "cannot open X: ...") is left out.
pub fn causes(e: &anyhow::Error) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in e.chain() {
        let text = c.to_string().replace('\n', " ");
        let text = text.trim();
        if text.is_empty() || out.iter().any(|prev| prev.contains(text)) {
            continue;
        }
        out.push(text.to_owned());
    }
    out
}

/// One paragraph: "what we were doing: why: the root cause".
pub fn paragraph(e: &anyhow::Error) -> String {
    causes(e).join(": ")
}

/// Prints `e` (human or JSON) and gives the exit code of its kind.
pub fn report(e: &anyhow::Error, json: bool) -> ExitCode {
    let kind = kind(e);
    let message = paragraph(e);
    let next = next_step(e, &message);
    if json {
        let mut detail = json!({
            "kind": kind.name(), "exit_code": kind.code(), "causes": causes(e), "next": next,
        });
        if let Some(a) = e.chain().find_map(|c| c.downcast_ref::<ApiError>()) {
            detail["server"] =
                json!({"status": a.status, "error": a.error, "detail": a.detail, "url": a.url});
        }
        if let Some(r) = refusal(e) {
            detail["check"] = json!(r.check.name());
        }
        if let Some(x) = e.chain().find_map(|c| c.downcast_ref::<Expiring>()) {
            detail["expiring"] = json!(x.items);
        }
        crate::output::write_err(format_args!(
            "{}\n",
            json!({"error": message, "detail": detail})
        ));
    } else {
        match next {
            Some(n) => crate::output::write_err(format_args!("error: {message}\n  next: {n}\n")),
            None => crate::output::write_err(format_args!("error: {message}\n")),
        }
    }
    ExitCode::from(kind.code())
}

/// A usage error from clap: as clap prints it (exit 2), or as JSON with `--json`. Help and
/// version requests are not errors (exit 0).
pub fn usage(e: clap::Error, json: bool) -> ExitCode {
    use clap::error::ErrorKind;
    let code = e.exit_code();
    let is_help = matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    );
    if !json || is_help {
        // Colour only for a person at a terminal: never in logs, pipes or files.
        let colour = !is_help
            && std::io::IsTerminal::is_terminal(&std::io::stderr())
            && std::env::var_os("NO_COLOR").is_none();
        let rendered = if colour {
            e.render().ansi().to_string()
        } else {
            e.render().to_string()
        };
        if code == 0 {
            out!("{rendered}");
        } else {
            crate::output::write_err(format_args!("{rendered}"));
        }
        return ExitCode::from(u8::try_from(code).unwrap_or(Kind::Usage.code()));
    }
    let text = e.render().to_string();
    let first = text
        .lines()
        .next()
        .unwrap_or("")
        .trim_start_matches("error: ");
    let detail = json!({
        "kind": Kind::Usage.name(), "exit_code": Kind::Usage.code(), "usage": text.trim_end(),
    });
    crate::output::write_err(format_args!(
        "{}\n",
        json!({"error": first, "detail": detail})
    ));
    ExitCode::from(Kind::Usage.code())
}

/// Whether the raw arguments ask for JSON, for errors found before they are parsed.
pub fn wants_json(args: &[OsString]) -> bool {
    args.iter()
        .skip(1)
        .take_while(|a| *a != "--")
        .any(|a| a == "--json")
}

fn refusal(e: &anyhow::Error) -> Option<&tuf_ceremony::Refusal> {
    e.chain().find_map(|c| {
        c.downcast_ref::<tuf_ceremony::Refusal>().or_else(|| {
            c.downcast_ref::<tuf_ceremony::Error>()
                .and_then(tuf_ceremony::Error::refusal)
        })
    })
}

/// What to do next, for failures whose message does not say it already.
fn next_step(e: &anyhow::Error, message: &str) -> Option<&'static str> {
    let api = e.chain().find_map(|c| c.downcast_ref::<ApiError>());
    let io = e.chain().find_map(|c| c.downcast_ref::<std::io::Error>());
    let text = match (api.map(|a| a.status), io.map(std::io::Error::kind)) {
        (Some(401), _) => NEXT_UNAUTHORIZED,
        (Some(403), _) => NEXT_FORBIDDEN,
        (Some(404), _) if message.contains("factory \"") => NEXT_NO_FACTORY,
        (_, Some(std::io::ErrorKind::NotFound)) => NEXT_NOT_FOUND,
        (_, Some(std::io::ErrorKind::PermissionDenied)) => NEXT_PERMISSION,
        _ => return None,
    };
    Some(text)
}

const NEXT_UNAUTHORIZED: &str = "the server does not know this token (revoked, or for another \
     server): give the right one with --token-file FILE, or store it with `tufctl login`";
const NEXT_FORBIDDEN: &str = "this token's scope may not do this: use the Factory owner's token \
     (--token-file FILE, or `tufctl login`); `tufctl tokens list` shows the scopes";
const NEXT_NO_FACTORY: &str = "check the Factory name (--factory, TUFCTL_FACTORY, the config \
     file, or the credentials file's config.json) and that the token belongs to it";
const NEXT_NOT_FOUND: &str = "check the path; relative paths are taken from the current directory";
const NEXT_PERMISSION: &str = "check the file's owner and mode (`ls -l`); tufctl writes secret \
     files 0600 for the user running it";

#[cfg(test)]
mod tests {
    use anyhow::Context;

    use super::*;

    #[test]
    fn a_cause_is_said_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory");
        let inner = anyhow::Error::new(io).context("cannot open /x.tgz: No such file or directory");
        let e = inner.context("cannot read the credentials file /x.tgz");
        assert_eq!(
            paragraph(&e),
            "cannot read the credentials file /x.tgz: cannot open /x.tgz: No such file or directory"
        );
        assert_eq!(kind(&e), Kind::Error);
        assert!(next_step(&e, &paragraph(&e)).is_some());
    }

    #[test]
    fn kinds_come_from_types() {
        let refusal = tuf_ceremony::Refusal::new(tuf_ceremony::Check::Version, "not next");
        let e = anyhow::Error::new(tuf_ceremony::Error::from(refusal.clone())).context("signing");
        assert_eq!(kind(&e), Kind::Refused);
        let e: anyhow::Result<()> = Err(refusal).context("checking");
        assert_eq!(kind(&e.unwrap_err()), Kind::Refused);
        let x = Expiring {
            within_days: 30,
            items: vec!["the CI root".into()],
        };
        assert_eq!(kind(&anyhow::Error::new(x)), Kind::Expiring);
        let text = anyhow::anyhow!("version: refused");
        assert_eq!(kind(&text), Kind::Error, "text never decides");
        // Distinct codes, none of them 0, and usage stays clap's 2.
        let codes = [Kind::Error, Kind::Usage, Kind::Refused, Kind::Expiring].map(Kind::code);
        assert_eq!(codes, [1, 2, 3, 4]);
    }

    #[test]
    fn json_is_asked_before_the_separator_only() {
        let args = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
        assert!(wants_json(&args(&["tufctl", "keys", "--json", "x"])));
        assert!(!wants_json(&args(&["tufctl", "get", "--", "--json"])));
        assert!(!wants_json(&args(&["--json"])), "argv[0] is the program");
    }
}
