//! The frame every console page shares (header, navigation, sign-out form), the sign-in and
//! error pages, and the small formatting helpers the pages use.

use axum::http::StatusCode;
use axum::response::Html;
use maud::{html, Markup, DOCTYPE};

use super::session::Viewer;
use super::{METADATA_READERS, OWNER_ONLY};
use crate::auth::Scope;

/// The pages of a Factory, in navigation order: (path under `/ui/f/{f}/`, title, the
/// scopes that may open it).
pub const FACTORY_TABS: [(&str, &str, &[Scope]); 5] = [
    ("", "Keys and roots", METADATA_READERS),
    ("roots", "Root chain", METADATA_READERS),
    ("expiry", "Expiry", METADATA_READERS),
    ("waves", "Waves and targets", OWNER_ONLY),
    ("audit", "Audit log", OWNER_ONLY),
];

/// What a page is about, for its header.
pub struct Frame<'a> {
    pub title: &'a str,
    pub viewer: &'a Viewer,
    /// The Factory the page shows, and which of [`FACTORY_TABS`] it is.
    pub factory: Option<(&'a str, &'a str)>,
}

/// A whole console page around `body`.
pub fn page(frame: &Frame, body: Markup) -> Html<String> {
    let caller = &frame.viewer.caller;
    let who = match &caller.factory {
        Some(f) => format!("{} token of {f}", caller.scope.as_str()),
        None => format!("{} token", caller.scope.as_str()),
    };
    Html(
        document(
            frame.title,
            html! {
                header {
                    a.brand href="/ui/" { "tuf-factory console" }
                    span.who { "Signed in with the " (who) " (" (crate::auth::token_id(&caller.hash)) ")" }
                    form.signout method="post" action="/ui/sign-out" {
                        input type="hidden" name="csrf" value=(frame.viewer.csrf);
                        button type="submit" { "Sign out" }
                    }
                }
                @if let Some((factory, tab)) = frame.factory {
                    nav {
                        span.factory { "Factory " strong { (factory) } }
                        // Only the pages this token may open.
                        @for (path, title, _) in FACTORY_TABS.iter().filter(|t| caller.require(factory, t.2).is_ok()) {
                            @if *path == tab {
                                a.current href=(tab_href(factory, path)) aria-current="page" { (title) }
                            } @else {
                                a href=(tab_href(factory, path)) { (title) }
                            }
                        }
                    }
                }
                main {
                    h1 { (frame.title) }
                    (body)
                }
            },
        )
        .into_string(),
    )
}

/// The link to a Factory's page. Factory names are labels (letters, digits, `._+~-`), so
/// they need no percent-encoding; maud escapes the attribute anyway.
pub fn tab_href(factory: &str, path: &str) -> String {
    format!("/ui/f/{factory}/{path}")
}

/// The sign-in form: a password field for the token, posted in the body, never in a URL.
pub fn sign_in_page(nonce: &str, message: Option<&str>) -> Html<String> {
    Html(
        document(
            "Sign in",
            html! {
                main.signin {
                    h1 { "tuf-factory console" }
                    @if let Some(m) = message {
                        p.error role="alert" { (m) }
                    }
                    form method="post" action="/ui/sign-in" autocomplete="off" {
                        label for="token" { "Token" }
                        input #token type="password" name="token" required autofocus
                            autocomplete="off" spellcheck="false" maxlength="256";
                        input type="hidden" name="csrf" value=(nonce);
                        button type="submit" { "Sign in" }
                    }
                    p.hint {
                        "A Factory's owner, CI or read token shows that Factory; the admin token "
                        "lists every Factory. The token stays on the server: the browser keeps "
                        "only a session cookie, which signing out ends."
                    }
                }
            },
        )
        .into_string(),
    )
}

/// An error as a page: the status, the API's error name and its detail.
pub fn error_page(status: StatusCode, error: &str, detail: &str) -> Html<String> {
    Html(
        document(
            error,
            html! {
                main.signin {
                    h1 { (status.as_u16()) " " (error) }
                    @if !detail.is_empty() { p { (detail) } }
                    p { a href="/ui/" { "Back to the console" } }
                }
            },
        )
        .into_string(),
    )
}

fn document(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="same-origin";
                title { (title) " · tuf-factory" }
                link rel="stylesheet" href="/ui/console.css";
            }
            body { (body) }
        }
    }
}

/// The first 12 characters of a key ID, as the CLI shows them.
pub fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn when(unix: i64) -> String {
    crate::format_time(unix)
}

/// `secs` from now in words: "in 3 days", "5 hours ago".
pub fn relative(secs: i64) -> String {
    let abs = secs.unsigned_abs();
    let (n, unit) = match abs {
        0..=119 => (abs, "second"),
        120..=7199 => (abs / 60, "minute"),
        7200..=172_799 => (abs / 3600, "hour"),
        _ => (abs / 86_400, "day"),
    };
    let plural = if n == 1 { "" } else { "s" };
    if secs >= 0 {
        format!("in {n} {unit}{plural}")
    } else {
        format!("{n} {unit}{plural} ago")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times_read_naturally() {
        assert_eq!(relative(30), "in 30 seconds");
        assert_eq!(relative(-3600 * 5), "5 hours ago");
        assert_eq!(relative(86_400 * 40), "in 40 days");
        assert_eq!(relative(60 * 5), "in 5 minutes");
    }

    #[test]
    fn error_pages_escape_what_they_repeat() {
        let page = error_page(StatusCode::NOT_FOUND, "not found", "factory \"<b>x</b>\"").0;
        assert!(
            page.contains("factory &quot;&lt;b&gt;x&lt;/b&gt;&quot;"),
            "{page}"
        );
        assert!(!page.contains("<b>"));
    }
}
