//! Console sessions: signing in with a token through an HTML form, the session cookie, and
//! signing out.
//!
//! The token is posted once, in a form body (never a URL), and never stored in the browser:
//! the cookie holds a random session ID, the database only its SHA-256 with the hash of the
//! token it acts for ([`crate::auth::caller_of`] turns that into the same `Caller` a bearer
//! header gives). Sign-out deletes the row, which ends the session on every replica.
//!
//! Cross-site requests: cookies are `SameSite=Strict`, both form posts must come from this
//! origin (`Origin`, or `Referer` when a browser sends no `Origin`), and each carries a
//! token: sign-in a nonce that is also in a short-lived cookie (double submit), sign-out
//! one derived from the session ID, which a page of another site cannot read.

use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use sqlx::Row;
use zeroize::Zeroize as _;

use super::layout;
use super::{UiError, UiResult};
use crate::auth::{caller_of, token_hash, token_id, Caller};
use crate::db::now;
use crate::error::ApiError;
use crate::repo::random_hex;
use crate::{AppState, Shared};

/// How long a session lasts after sign-in, whatever happens in it.
pub const SESSION_SECS: i64 = 8 * 3600;

/// Sessions one token may hold at once; signing in again ends the oldest beyond this.
const SESSIONS_PER_TOKEN: i64 = 16;

/// How long the sign-in form stays usable.
const SIGN_IN_SECS: i64 = 3600;

/// The signed-in user of a page.
#[derive(Clone, Debug)]
pub struct Viewer {
    pub caller: Caller,
    /// The anti-forgery token of the sign-out form.
    pub csrf: String,
}

/// How the console's cookies are set. Under TLS (the public URL is `https://`), cookies are
/// `Secure` and take the `__Host-` prefix, which also keeps a sibling host from planting a
/// cookie of that name; over plain HTTP neither is possible.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CookiePolicy {
    pub secure: bool,
}

impl CookiePolicy {
    pub fn of(state: &AppState) -> Self {
        Self {
            secure: state.public_url.starts_with("https://"),
        }
    }

    pub fn session_name(self) -> &'static str {
        if self.secure {
            "__Host-tufd_session"
        } else {
            "tufd_session"
        }
    }

    fn sign_in_name(self) -> &'static str {
        if self.secure {
            "__Host-tufd_sign_in"
        } else {
            "tufd_sign_in"
        }
    }

    /// `__Host-` cookies must have `Path=/`; plain ones stay under the console's path.
    fn path(self, plain: &'static str) -> &'static str {
        if self.secure {
            "/"
        } else {
            plain
        }
    }

    /// A `Set-Cookie` value; `max_age` 0 deletes the cookie.
    pub fn set_cookie(self, name: &str, value: &str, path: &str, max_age: i64) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}")
    }

    fn session_cookie(self, value: &str, max_age: i64) -> String {
        self.set_cookie(self.session_name(), value, self.path("/ui/"), max_age)
    }

    fn sign_in_cookie(self, value: &str, max_age: i64) -> String {
        self.set_cookie(
            self.sign_in_name(),
            value,
            self.path("/ui/sign-in"),
            max_age,
        )
    }
}

/// The viewer of a request, from its session cookie; [`UiError::SignIn`] without a live one.
pub async fn viewer(state: &AppState, headers: &HeaderMap) -> UiResult<Viewer> {
    let policy = CookiePolicy::of(state);
    let Some(id) = cookie(headers, policy.session_name()) else {
        return Err(UiError::SignIn);
    };
    let row = sqlx::query("SELECT token_hash FROM ui_sessions WHERE hash = $1 AND expires_at > $2")
        .bind(session_hash(id))
        .bind(now())
        .fetch_optional(state.db.pool())
        .await?;
    let Some(row) = row else {
        return Err(UiError::SignIn);
    };
    // A revoked token has no row any more: its sessions end with it.
    let Some(caller) = caller_of(state, row.try_get(0)?).await? else {
        return Err(UiError::SignIn);
    };
    Ok(Viewer {
        caller,
        csrf: csrf_of(id),
    })
}

/// `GET /ui/sign-in`: the form, with a fresh anti-forgery nonce.
pub async fn sign_in_form(State(state): State<Shared>, headers: HeaderMap) -> UiResult<Response> {
    if viewer(&state, &headers).await.is_ok() {
        return Ok(Redirect::to("/ui/").into_response());
    }
    form_response(&state, StatusCode::OK, None)
}

#[derive(Deserialize)]
pub struct SignInForm {
    token: String,
    csrf: String,
}

impl Drop for SignInForm {
    fn drop(&mut self) {
        self.token.zeroize();
    }
}

/// `POST /ui/sign-in`: checks the token like a bearer header, opens a session.
pub async fn sign_in(
    State(state): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    form: Result<Form<SignInForm>, FormRejection>,
) -> UiResult<Response> {
    let policy = CookiePolicy::of(&state);
    require_same_origin(&headers, &uri, &state.public_url)?;
    let Ok(Form(form)) = form else {
        return Err(
            ApiError::bad_request("invalid form", "expected the fields token and csrf").into(),
        );
    };
    let nonce = cookie(&headers, policy.sign_in_name()).unwrap_or_default();
    if nonce.is_empty() || !same_secret(nonce, &form.csrf) {
        // Most often an expired or reopened form: show a fresh one.
        return form_response(
            &state,
            StatusCode::FORBIDDEN,
            Some("The sign-in form expired or came from another site; sign in again."),
        );
    }
    let token = form.token.trim();
    let known = if token.is_empty() || token.len() > 256 {
        None
    } else {
        caller_of(&state, token_hash(token)).await?
    };
    let Some(caller) = known else {
        return form_response(&state, StatusCode::UNAUTHORIZED, Some("Unknown token."));
    };
    if let Some(old) = cookie(&headers, policy.session_name()) {
        // Signing in again (perhaps with another token) ends the session it replaces.
        end_session(&state, old).await?;
    }
    let id = open_session(&state, &caller).await?;
    tracing::info!(token = %token_id(&caller.hash), scope = caller.scope.as_str(), "console sign-in");
    let mut resp = Redirect::to("/ui/").into_response();
    append_cookie(&mut resp, &policy.session_cookie(&id, SESSION_SECS))?;
    append_cookie(&mut resp, &policy.sign_in_cookie("", 0))?;
    Ok(resp)
}

#[derive(Deserialize)]
pub struct SignOutForm {
    csrf: String,
}

/// `POST /ui/sign-out`: deletes the session row (every replica sees it gone at once).
pub async fn sign_out(
    State(state): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    form: Result<Form<SignOutForm>, FormRejection>,
) -> UiResult<Response> {
    let policy = CookiePolicy::of(&state);
    require_same_origin(&headers, &uri, &state.public_url)?;
    let viewer = viewer(&state, &headers).await?;
    let csrf = form.map(|Form(f)| f.csrf).unwrap_or_default();
    if !same_secret(&viewer.csrf, &csrf) {
        return Err(ApiError::forbidden("the sign-out form did not come from this console").into());
    }
    if let Some(id) = cookie(&headers, policy.session_name()) {
        end_session(&state, id).await?;
    }
    let mut resp = Redirect::to("/ui/sign-in").into_response();
    append_cookie(&mut resp, &policy.session_cookie("", 0))?;
    Ok(resp)
}

async fn end_session(state: &AppState, id: &str) -> UiResult<()> {
    sqlx::query("DELETE FROM ui_sessions WHERE hash = $1")
        .bind(session_hash(id))
        .execute(state.db.pool())
        .await?;
    Ok(())
}

/// Stores a new session for `caller` and returns its ID (the cookie value). Expired
/// sessions, and this token's sessions beyond [`SESSIONS_PER_TOKEN`], go in the same
/// transaction, so the table stays bounded.
async fn open_session(state: &AppState, caller: &Caller) -> UiResult<String> {
    let id = random_hex(32)?;
    let at = now();
    let mut tx = state.db.begin_write().await?;
    sqlx::query("DELETE FROM ui_sessions WHERE expires_at <= $1")
        .bind(at)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO ui_sessions (hash, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(session_hash(&id))
    .bind(&caller.hash)
    .bind(at)
    .bind(at + SESSION_SECS)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "DELETE FROM ui_sessions WHERE token_hash = $1 AND hash NOT IN \
         (SELECT hash FROM ui_sessions WHERE token_hash = $1 \
          ORDER BY created_at DESC, hash LIMIT $2)",
    )
    .bind(&caller.hash)
    .bind(SESSIONS_PER_TOKEN)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(id.to_string())
}

fn form_response(
    state: &AppState,
    status: StatusCode,
    message: Option<&str>,
) -> UiResult<Response> {
    let policy = CookiePolicy::of(state);
    let nonce = random_hex(16)?;
    let mut resp = (status, layout::sign_in_page(&nonce, message)).into_response();
    append_cookie(&mut resp, &policy.sign_in_cookie(&nonce, SIGN_IN_SECS))?;
    Ok(resp)
}

fn append_cookie(resp: &mut Response, value: &str) -> UiResult<()> {
    let v = HeaderValue::from_str(value).map_err(|_| ApiError::internal("cookie value"))?;
    resp.headers_mut().append(header::SET_COOKIE, v);
    Ok(())
}

/// Refuses a form post that a page of another origin sent.
fn require_same_origin(headers: &HeaderMap, uri: &Uri, public_url: &str) -> UiResult<()> {
    // HTTP/2 carries the addressed host in the request target, HTTP/1.1 in `Host`.
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()));
    if same_origin(headers, host, public_url) {
        return Ok(());
    }
    Err(
        ApiError::forbidden("cross-site form posts are refused; use the console's own pages")
            .into(),
    )
}

/// Whether the request's `Origin` (or, without one, its `Referer`) is this server: the
/// public URL's origin, or `host`, the host the browser addressed, which a page of another
/// site cannot choose. No origin at all is refused: browsers send one with every form post.
pub fn same_origin(headers: &HeaderMap, host: Option<&str>, public_url: &str) -> bool {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    // `Origin: null` (an opaque origin) is no origin, and so refused.
    let Some(origin) = text(header::ORIGIN)
        .or_else(|| text(header::REFERER))
        .and_then(origin_of)
    else {
        return false;
    };
    if origin_of(public_url).as_deref() == Some(origin.as_str()) {
        return true;
    }
    let authority = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    matches!((authority, host), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h))
}

/// `scheme://authority` of a URL, lower case.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.is_empty() || !matches!(scheme, "http" | "https") {
        return None;
    }
    Some(format!("{scheme}://{}", authority.to_ascii_lowercase()))
}

/// The value of cookie `name`, when it has the form of a console secret (hex, at most 64
/// characters); anything else is ignored.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// What the database keeps of a session ID.
fn session_hash(id: &str) -> String {
    tuf_core::hash::sha256_hex(id.as_bytes())
}

/// The sign-out form's token: derived from the session ID, so only a page that could read
/// the (HttpOnly) cookie's value could compute it, and the stored hash does not give it.
fn csrf_of(id: &str) -> String {
    tuf_core::hash::sha256_hex(format!("tufd console csrf\0{id}").as_bytes())
}

fn same_secret(a: &str, b: &str) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a.as_bytes(), b.as_bytes()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn cookies_are_http_only_strict_and_secure_only_under_tls() {
        let plain = CookiePolicy { secure: false };
        assert_eq!(
            plain.session_cookie("ab", SESSION_SECS),
            "tufd_session=ab; Path=/ui/; Max-Age=28800; HttpOnly; SameSite=Strict"
        );
        let tls = CookiePolicy { secure: true };
        assert_eq!(
            tls.session_cookie("ab", SESSION_SECS),
            "__Host-tufd_session=ab; Path=/; Max-Age=28800; HttpOnly; SameSite=Strict; Secure"
        );
        assert_eq!(
            tls.sign_in_cookie("", 0),
            "__Host-tufd_sign_in=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict; Secure"
        );
    }

    #[test]
    fn only_this_origin_may_post() {
        let public = "https://tuf.example.com/";
        for (h, ok) in [
            (vec![("origin", "https://tuf.example.com")], true),
            (vec![("origin", "https://TUF.example.com")], true),
            (
                vec![
                    ("origin", "http://127.0.0.1:8080"),
                    ("host", "127.0.0.1:8080"),
                ],
                true,
            ),
            (
                vec![("referer", "https://tuf.example.com/ui/sign-in")],
                true,
            ),
            (
                vec![
                    ("origin", "https://evil.example"),
                    ("host", "tuf.example.com"),
                ],
                false,
            ),
            (vec![("origin", "null"), ("host", "tuf.example.com")], false),
            (vec![("host", "tuf.example.com")], false),
            (
                vec![("referer", "https://evil.example/tuf.example.com")],
                false,
            ),
            (
                vec![("origin", "https://tuf.example.com.evil.example")],
                false,
            ),
        ] {
            let h = headers(&h);
            let host = h.get("host").map(|v| v.to_str().unwrap());
            assert_eq!(same_origin(&h, host, public), ok, "{h:?}");
        }
    }

    #[test]
    fn an_http2_authority_counts_as_the_host() {
        let h = headers(&[("origin", "https://10.0.0.5:8443")]);
        let uri: Uri = "https://10.0.0.5:8443/ui/sign-in".parse().unwrap();
        assert!(require_same_origin(&h, &uri, "https://tuf.example.com").is_ok());
        let other: Uri = "https://10.0.0.6:8443/ui/sign-in".parse().unwrap();
        assert!(require_same_origin(&h, &other, "https://tuf.example.com").is_err());
    }

    #[test]
    fn cookie_values_are_hex_secrets_or_nothing() {
        let h = headers(&[("cookie", "a=1; tufd_session=00ff; b=2"), ("cookie", "c=3")]);
        assert_eq!(cookie(&h, "tufd_session"), Some("00ff"));
        assert_eq!(cookie(&h, "c"), Some("3"));
        let bad = headers(&[("cookie", "tufd_session=<script>")]);
        assert_eq!(cookie(&bad, "tufd_session"), None);
        let long = headers(&[("cookie", &format!("tufd_session={}", "a".repeat(65)))]);
        assert_eq!(cookie(&long, "tufd_session"), None);
    }

    #[test]
    fn the_stored_hash_does_not_give_the_csrf_token() {
        let id = "00".repeat(32);
        assert_ne!(csrf_of(&id), session_hash(&id));
        assert_eq!(csrf_of(&id).len(), 64);
        assert!(same_secret("abc", "abc") && !same_secret("abc", "abd") && !same_secret("a", ""));
    }
}
