//! The web console over HTTP against the real `tufd`: every `/ui/` route authorised as the
//! API (no session, another Factory's token, read and CI tokens against the owner, admin),
//! sign-in and sign-out refusals, sessions shared and ended across replicas, cookie flags
//! with and without TLS, the security headers, and escaping of what users wrote.

mod common;

use common::*;
use reqwest::blocking::Response;
use reqwest::header::{HeaderMap, CONTENT_SECURITY_POLICY, LOCATION, SET_COOKIE};
use serde_json::{json, Value};

/// A client that shows redirects instead of following them.
fn browser() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The value of the hidden `csrf` field of a page.
fn csrf_field(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    html[at..].split('"').next().unwrap().to_owned()
}

/// `name=value` of the `Set-Cookie` header naming `name`, and the whole header.
fn set_cookie(headers: &HeaderMap, name: &str) -> Option<(String, String)> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| (v.split(';').next().unwrap().to_owned(), v))
}

/// What a browser on `origin` needs to post the sign-in form: the nonce cookie and field.
fn sign_in_form(s: &Server, cookie_name: &str) -> (String, String) {
    let r = browser().get(s.url("/ui/sign-in")).send().unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (cookie, _) = set_cookie(r.headers(), cookie_name).expect("a sign-in nonce cookie");
    let html = r.text().unwrap();
    assert!(html.contains("type=\"password\" name=\"token\""), "{html}");
    assert!(
        html.contains("method=\"post\" action=\"/ui/sign-in\""),
        "{html}"
    );
    (cookie, csrf_field(&html))
}

fn post_sign_in(
    s: &Server,
    origin: Option<&str>,
    cookie: &str,
    token: &str,
    csrf: &str,
) -> Response {
    let mut req = browser()
        .post(s.url("/ui/sign-in"))
        .header("cookie", cookie)
        .form(&[("token", token), ("csrf", csrf)]);
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    req.send().unwrap()
}

/// Signs in with `token` as a browser on the server's own origin; returns the session
/// cookie (`name=value`).
fn sign_in(s: &Server, token: &str) -> String {
    let (nonce, csrf) = sign_in_form(s, "tufd_sign_in");
    let r = post_sign_in(s, Some(&s.base), &nonce, token, &csrf);
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{}", r.text().unwrap());
    assert_eq!(r.headers()[LOCATION], "/ui/");
    let (cookie, header) = set_cookie(r.headers(), "tufd_session").expect("a session cookie");
    assert!(
        header.contains("; HttpOnly") && header.contains("; SameSite=Strict"),
        "{header}"
    );
    assert!(!header.contains("Secure"), "plain HTTP: {header}");
    cookie
}

fn page(s: &Server, path: &str, cookie: Option<&str>) -> Response {
    let mut req = browser().get(s.url(path));
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let r = req.send().unwrap();
    check_security_headers(path, r.headers());
    r
}

fn check_security_headers(path: &str, h: &HeaderMap) {
    let csp = h[CONTENT_SECURITY_POLICY].to_str().unwrap();
    for part in [
        "default-src 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ] {
        assert!(csp.contains(part), "{path}: {csp}");
    }
    assert!(
        !csp.contains("script-src"),
        "{path}: no script at all: {csp}"
    );
    assert_eq!(h["x-frame-options"], "DENY", "{path}");
    assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
    if !path.ends_with(".css") {
        assert_eq!(h["cache-control"], "no-store", "{path}");
    }
}

fn create_token(s: &Server, f: &Factory, scope: &str) -> String {
    let r = client()
        .post(s.url(&format!("/ota/factories/{}/tokens", f.name)))
        .bearer_auth(&f.owner)
        .json(&json!({"scope": scope}))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json::<Value>().unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[derive(Clone, Copy, PartialEq)]
enum Needs {
    /// Metadata readers: read, ci, owner (as `GET .../user_repo/root.json`).
    Metadata,
    /// The owner (as waves, audit, root updates).
    Owner,
    /// The admin (the list of Factories).
    Admin,
}

/// Every console page and who may open it.
fn routes(f: &str) -> Vec<(String, Needs)> {
    vec![
        (format!("/ui/f/{f}/"), Needs::Metadata),
        (format!("/ui/f/{f}/roots"), Needs::Metadata),
        (format!("/ui/f/{f}/expiry"), Needs::Metadata),
        (format!("/ui/f/{f}/waves"), Needs::Owner),
        (
            format!("/ui/f/{f}/waves?hardware_id=hw-1&tag=main"),
            Needs::Owner,
        ),
        (format!("/ui/f/{f}/audit"), Needs::Owner),
        (format!("/ui/f/{f}/audit?before=3"), Needs::Owner),
        ("/ui/factories".to_owned(), Needs::Admin),
    ]
}

fn authorization(s: &Server) {
    let a = create_factory(s, "acme");
    let b = create_factory(s, "other");
    add_target(s, &a, "app", "1");
    let read = create_token(s, &a, "read");
    let sessions = [
        ("admin", sign_in(s, &s.admin)),
        ("owner", sign_in(s, &a.owner)),
        ("ci", sign_in(s, &a.ci)),
        ("read", sign_in(s, &read)),
        ("other factory's owner", sign_in(s, &b.owner)),
    ];
    for (path, needs) in routes("acme") {
        let r = page(s, &path, None);
        assert_eq!(
            r.status(),
            StatusCode::SEE_OTHER,
            "{path} without a session"
        );
        assert_eq!(r.headers()[LOCATION], "/ui/sign-in");
        let r = page(s, &path, Some(&format!("tufd_session={}", "ab".repeat(32))));
        assert_eq!(
            r.status(),
            StatusCode::SEE_OTHER,
            "{path} with an unknown session"
        );
        for (who, cookie) in &sessions {
            let expected = match (*who, needs) {
                ("admin", _) => StatusCode::OK,
                (_, Needs::Admin) => StatusCode::FORBIDDEN,
                ("other factory's owner", _) => StatusCode::NOT_FOUND,
                ("owner", _) | ("ci" | "read", Needs::Metadata) => StatusCode::OK,
                _ => StatusCode::FORBIDDEN,
            };
            let r = page(s, &path, Some(cookie));
            assert_eq!(r.status(), expected, "{path} as {who}");
            let html = r.text().unwrap();
            assert!(
                html.starts_with("<!DOCTYPE html>"),
                "{path} as {who}: {html}"
            );
            if expected == StatusCode::NOT_FOUND {
                // The same answer as for a Factory that does not exist: nothing of acme shows.
                assert!(html.contains("factory &quot;acme&quot;"), "{html}");
                assert!(
                    !html.contains("app-1") && !html.contains("Root chain"),
                    "{html}"
                );
            }
        }
    }
    // Home sends each token to its page.
    for (who, cookie, to) in [
        ("admin", &sessions[0].1, "/ui/factories"),
        ("owner", &sessions[1].1, "/ui/f/acme/"),
        ("read", &sessions[3].1, "/ui/f/acme/"),
    ] {
        let r = page(s, "/ui/", Some(cookie));
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{who}");
        assert_eq!(r.headers()[LOCATION], to, "{who}");
    }
    // The admin's view of a Factory that does not exist, and unknown console paths.
    assert_eq!(
        page(s, "/ui/f/nope/", Some(&sessions[0].1)).status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        page(s, "/ui/nope", Some(&sessions[0].1)).status(),
        StatusCode::NOT_FOUND
    );
    let admin_list = page(s, "/ui/factories", Some(&sessions[0].1))
        .text()
        .unwrap();
    assert!(admin_list.contains("/ui/f/acme/") && admin_list.contains("/ui/f/other/"));
    // A read token sees the roots but not the open root update, which is the owner's.
    let overview = page(s, "/ui/f/acme/", Some(&sessions[3].1)).text().unwrap();
    assert!(overview.contains("shown to the owner token"), "{overview}");
    // Its navigation offers only the pages it may open.
    assert!(overview.contains("/ui/f/acme/roots") && !overview.contains("/ui/f/acme/audit"));
    let owner_view = page(s, "/ui/f/acme/", Some(&sessions[1].1)).text().unwrap();
    assert!(owner_view.contains("/ui/f/acme/audit") && owner_view.contains("/ui/f/acme/waves"));
    // Bad query values are a 400 page, not a panic.
    let r = page(s, "/ui/f/acme/audit?before=x", Some(&sessions[1].1));
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let long = format!("/ui/f/acme/waves?tag={}", "t".repeat(200));
    assert_eq!(
        page(s, &long, Some(&sessions[1].1)).status(),
        StatusCode::BAD_REQUEST
    );
}

#[test]
fn every_route_is_authorised_as_the_api_on_sqlite() {
    authorization(&Server::sqlite());
}

#[test]
fn every_route_is_authorised_as_the_api_on_postgres() {
    let Some(s) = Server::postgres() else { return };
    authorization(&s);
}

/// Sign-in refuses posts from elsewhere, stale forms and unknown tokens, and opens no
/// session for any of them; a token in the URL signs nobody in.
#[test]
fn sign_in_refusals() {
    let s = Server::sqlite();
    let f = create_factory(&s, "acme");
    let (nonce, csrf) = sign_in_form(&s, "tufd_sign_in");
    for (what, origin, cookie, token, field, status) in [
        (
            "no origin",
            None,
            nonce.as_str(),
            f.owner.as_str(),
            csrf.as_str(),
            StatusCode::FORBIDDEN,
        ),
        (
            "another site",
            Some("http://evil.example"),
            &nonce,
            &f.owner,
            &csrf,
            StatusCode::FORBIDDEN,
        ),
        (
            "opaque origin",
            Some("null"),
            &nonce,
            &f.owner,
            &csrf,
            StatusCode::FORBIDDEN,
        ),
        (
            "no nonce cookie",
            Some(s.base.as_str()),
            "",
            &f.owner,
            &csrf,
            StatusCode::FORBIDDEN,
        ),
        (
            "another nonce",
            Some(&s.base),
            &nonce,
            &f.owner,
            "00ff",
            StatusCode::FORBIDDEN,
        ),
        (
            "unknown token",
            Some(&s.base),
            &nonce,
            "not-a-token",
            &csrf,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "empty token",
            Some(&s.base),
            &nonce,
            "",
            &csrf,
            StatusCode::UNAUTHORIZED,
        ),
    ] {
        let r = post_sign_in(&s, origin, cookie, token, field);
        assert_eq!(r.status(), status, "{what}");
        assert!(set_cookie(r.headers(), "tufd_session").is_none(), "{what}");
        check_security_headers(what, r.headers());
    }
    let r = page(&s, &format!("/ui/sign-in?token={}", f.owner), None);
    assert_eq!(r.status(), StatusCode::OK);
    assert!(set_cookie(r.headers(), "tufd_session").is_none());
    // A signed-in browser is sent on from the form.
    let cookie = sign_in(&s, &f.owner);
    let r = page(&s, "/ui/sign-in", Some(&cookie));
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // Signing in again from that browser ends the session it replaces.
    let (nonce, csrf) = sign_in_form(&s, "tufd_sign_in");
    let both = format!("{nonce}; {cookie}");
    let r = post_sign_in(&s, Some(&s.base), &both, &f.ci, &csrf);
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (again, _) = set_cookie(r.headers(), "tufd_session").unwrap();
    assert_ne!(again, cookie);
    assert_eq!(
        page(&s, "/ui/f/acme/", Some(&cookie)).status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        page(&s, "/ui/f/acme/", Some(&again)).status(),
        StatusCode::OK
    );
}

/// Sign-out needs the page's token and this origin, deletes the session for every replica,
/// and a revoked token ends its sessions too.
fn sign_out(a: &Server, b: &Server) {
    let f = create_factory(a, "acme");
    let cookie = sign_in(a, &f.owner);
    let html = page(b, "/ui/f/acme/", Some(&cookie)).text().unwrap();
    assert!(
        html.contains("Keys and roots"),
        "the session works on the other replica"
    );
    let csrf = csrf_field(&html);
    let post = |s: &Server, origin: &str, csrf: &str| {
        browser()
            .post(s.url("/ui/sign-out"))
            .header("cookie", &cookie)
            .header("origin", origin)
            .form(&[("csrf", csrf)])
            .send()
            .unwrap()
    };
    assert_eq!(post(b, &b.base, "00").status(), StatusCode::FORBIDDEN);
    assert_eq!(
        post(b, "http://evil.example", &csrf).status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        page(a, "/ui/f/acme/", Some(&cookie)).status(),
        StatusCode::OK,
        "still signed in"
    );
    let r = post(b, &b.base, &csrf);
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/ui/sign-in");
    let (cleared, header) = set_cookie(r.headers(), "tufd_session").unwrap();
    assert_eq!(cleared, "tufd_session=");
    assert!(header.contains("Max-Age=0"), "{header}");
    for s in [a, b] {
        let r = page(s, "/ui/f/acme/", Some(&cookie));
        assert_eq!(
            r.status(),
            StatusCode::SEE_OTHER,
            "signed out on {}",
            s.base
        );
    }
    // Revoking the token ends the sessions opened with it, on every replica.
    let read = create_token(a, &f, "read");
    let cookie = sign_in(b, &read);
    assert_eq!(
        page(a, "/ui/f/acme/", Some(&cookie)).status(),
        StatusCode::OK
    );
    let r = client()
        .post(a.url("/ota/factories/acme/tokens/revoke-all"))
        .bearer_auth(&f.owner)
        .json(&json!({}))
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().unwrap());
    for s in [a, b] {
        assert_eq!(
            page(s, "/ui/f/acme/", Some(&cookie)).status(),
            StatusCode::SEE_OTHER
        );
    }
}

#[test]
fn sign_out_on_sqlite() {
    let s = Server::sqlite();
    sign_out(&s, &s);
}

#[test]
fn sign_out_ends_the_session_on_every_postgres_replica() {
    let Some(url) = postgres_database() else {
        return;
    };
    let a = Server::start(Some(&url), &[]);
    let b = a.replica(&[]);
    sign_out(&a, &b);
}

/// Under TLS (an https public URL) the cookies are `Secure` and `__Host-` prefixed, and
/// only the public origin may post.
#[test]
fn cookies_are_secure_under_tls() {
    let public = "https://tuf.example.test";
    let s = Server::start(None, &["--public-url", public]);
    let f = create_factory(&s, "acme");
    let (nonce, csrf) = sign_in_form(&s, "__Host-tufd_sign_in");
    let r = post_sign_in(&s, Some("http://evil.example"), &nonce, &f.owner, &csrf);
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = post_sign_in(&s, Some(public), &nonce, &f.owner, &csrf);
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (cookie, header) = set_cookie(r.headers(), "__Host-tufd_session").expect("session");
    for part in ["; Path=/;", "; HttpOnly", "; SameSite=Strict", "; Secure"] {
        assert!(header.contains(part), "{part} in {header}");
    }
    assert_eq!(
        page(&s, "/ui/f/acme/", Some(&cookie)).status(),
        StatusCode::OK
    );
    // The plain cookie name means nothing here.
    let plain = cookie.replace("__Host-", "");
    assert_eq!(
        page(&s, "/ui/f/acme/", Some(&plain)).status(),
        StatusCode::SEE_OTHER
    );
}

/// What users wrote (a root-update message, custom target fields) is text on the pages.
#[test]
fn pages_escape_what_users_wrote() {
    let s = Server::sqlite();
    let f = create_factory(&s, "acme");
    let evil = "<img src=x onerror=alert(1)>";
    let mut target = target_json("app", "1", b"1");
    target["custom"] = json!({"note": evil});
    let r = client()
        .post(s.url("/ota/factories/acme/targets"))
        .bearer_auth(&f.ci)
        .json(&target)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = client()
        .post(s.url("/ota/repo/acme/api/v1/user_repo/root/updates"))
        .bearer_auth(&f.owner)
        .json(&json!({"message": evil}))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let cookie = sign_in(&s, &f.owner);
    for path in ["/ui/f/acme/", "/ui/f/acme/waves", "/ui/f/acme/audit"] {
        let html = page(&s, path, Some(&cookie)).text().unwrap();
        assert!(!html.contains("<img"), "{path}: {html}");
        assert!(
            html.contains("&lt;img src=x onerror=alert(1)&gt;"),
            "{path}: {html}"
        );
    }
    // The open transaction lists the signatures it lacks: the current root key's.
    let html = page(&s, "/ui/f/acme/", Some(&cookie)).text().unwrap();
    assert!(
        html.contains("root keys of the current root (v1)"),
        "{html}"
    );
    assert!(html.contains("missing: "), "{html}");
}
