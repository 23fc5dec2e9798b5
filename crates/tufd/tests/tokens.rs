//! Token hygiene: list (IDs, never secrets), revoke one, revoke all; a revoked token gets 401
//! on the very next request, on this replica and on another one sharing the PostgreSQL
//! database; every change is in the audit log.

mod common;

use common::*;
use serde_json::{json, Value};

fn create_token(s: &Server, f: &Factory, by: &str, scope: &str) -> (String, String) {
    let r = client()
        .post(s.url(&format!("/ota/factories/{}/tokens", f.name)))
        .bearer_auth(by)
        .json(&json!({ "scope": scope }))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().unwrap();
    (
        v["token"].as_str().unwrap().to_owned(),
        v["id"].as_str().unwrap().to_owned(),
    )
}

fn root_status(s: &Server, f: &Factory, token: &str) -> StatusCode {
    root_get(s, f, token).0
}

fn root_get(s: &Server, f: &Factory, token: &str) -> (StatusCode, Vec<u8>) {
    get(
        s,
        &format!("/ota/repo/{}/api/v1/user_repo/root.json", f.name),
        Some(token),
    )
}

/// The token is refused as unknown: revoked, or never issued.
#[track_caller]
fn is_unknown(s: &Server, f: &Factory, token: &str) {
    let (st, body) = root_get(s, f, token);
    assert_refused(
        (st, &body),
        (StatusCode::UNAUTHORIZED, "unauthorized", "unknown token"),
    );
}

fn list(s: &Server, f: &Factory, token: &str) -> Value {
    get_json(s, &format!("/ota/factories/{}/tokens", f.name), Some(token))
}

fn revoke(s: &Server, f: &Factory, token: &str, id: &str) -> StatusCode {
    revoke_answer(s, f, token, id).0
}

fn revoke_answer(s: &Server, f: &Factory, token: &str, id: &str) -> (StatusCode, Vec<u8>) {
    let r = client()
        .delete(s.url(&format!("/ota/factories/{}/tokens/{id}", f.name)))
        .bearer_auth(token)
        .send()
        .unwrap();
    (r.status(), r.bytes().unwrap().to_vec())
}

/// `other` is a second replica on the same store (or the same server on SQLite).
fn story(s: &Server, other: &Server) {
    let f = create_factory(s, "tokens");
    let (read, read_id) = create_token(s, &f, &f.owner, "read");
    assert_eq!(root_status(other, &f, &read), StatusCode::OK);

    // The list names IDs and scopes, never a secret or the full hash.
    let v = list(s, &f, &f.owner);
    let text = v.to_string();
    for secret in [&f.owner, &f.ci, &read] {
        assert!(!text.contains(secret.as_str()), "secret listed: {text}");
    }
    let tokens = v["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 3, "{text}");
    assert!(tokens
        .iter()
        .any(|t| t["id"] == read_id.as_str() && t["scope"] == "read"));
    assert_eq!(
        tokens.iter().filter(|t| t["current"] == true).count(),
        1,
        "{text}"
    );
    // Only the owner (or admin) may list or revoke; refusals change nothing.
    let ci_only = (
        StatusCode::FORBIDDEN,
        "forbidden",
        "a ci token may not do this; needs owner",
    );
    let listed = get(s, &format!("/ota/factories/{}/tokens", f.name), Some(&f.ci));
    assert_refused((listed.0, &listed.1), ci_only);
    let r = revoke_answer(s, &f, &f.ci, &read_id);
    assert_refused((r.0, &r.1), ci_only);
    let r = revoke_answer(s, &f, &f.owner, "not-an-id");
    assert_refused(
        (r.0, &r.1),
        (
            StatusCode::BAD_REQUEST,
            "invalid token id",
            "a token id is 12 lowercase hex digits",
        ),
    );
    let r = revoke_answer(s, &f, &f.owner, "0123456789ab");
    assert_refused(
        (r.0, &r.1),
        (StatusCode::NOT_FOUND, "not found", "token 0123456789ab"),
    );
    // A token of another Factory does not reach this one.
    let g = create_factory(s, "tokens-other");
    let r = revoke_answer(s, &f, &g.owner, &read_id);
    assert_refused(
        (r.0, &r.1),
        (StatusCode::NOT_FOUND, "not found", "factory \"tokens\""),
    );
    assert_eq!(root_status(other, &f, &read), StatusCode::OK);
    assert_eq!(list(s, &f, &f.owner), v);

    // Revoke one: 401 on the next request, on both replicas.
    assert_eq!(revoke(s, &f, &f.owner, &read_id), StatusCode::OK);
    is_unknown(s, &f, &read);
    is_unknown(other, &f, &read);
    let r = revoke_answer(s, &f, &f.owner, &read_id);
    assert_refused(
        (r.0, &r.1),
        (
            StatusCode::NOT_FOUND,
            "not found",
            &format!("token {read_id}"),
        ),
    );

    // Revoke all but the caller's own token.
    let (ci2, _) = create_token(s, &f, &f.owner, "ci");
    let r = client()
        .post(s.url(&format!("/ota/factories/{}/tokens/revoke-all", f.name)))
        .bearer_auth(&f.owner)
        .json(&json!({"keep_current": true}))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().unwrap();
    assert_eq!(v["revoked"].as_array().unwrap().len(), 2, "{v}");
    for t in [&f.ci, &ci2] {
        is_unknown(other, &f, t);
    }
    assert_eq!(root_status(other, &f, &f.owner), StatusCode::OK);
    // The other Factory's tokens are untouched.
    assert_eq!(root_status(other, &g, &g.ci), StatusCode::OK);

    // Revoke all, the caller's too (empty body = defaults): the owner is locked out ...
    let r = client()
        .post(s.url(&format!("/ota/factories/{}/tokens/revoke-all", f.name)))
        .bearer_auth(&f.owner)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    is_unknown(s, &f, &f.owner);
    is_unknown(other, &f, &f.owner);
    // ... and the admin recovers with a new owner token.
    let (owner2, _) = create_token(other, &f, &s.admin, "owner");
    assert_eq!(root_status(s, &f, &owner2), StatusCode::OK);
    assert_eq!(list(s, &f, &owner2)["tokens"].as_array().unwrap().len(), 1);

    // The audit log has every step, with token IDs only.
    let audit = get_json(
        s,
        &format!("/ota/factories/{}/audit", f.name),
        Some(&owner2),
    )
    .to_string();
    for action in ["token.create", "token.revoke", "token.revoke_all"] {
        assert!(audit.contains(action), "{action} missing: {audit}");
    }
    assert!(audit.contains(&read_id));
    for secret in [&f.owner, &read, &owner2] {
        assert!(!audit.contains(secret.as_str()));
    }
}

#[test]
fn tokens_on_sqlite() {
    let s = Server::sqlite();
    story(&s, &s);
}

#[test]
fn tokens_on_two_postgres_replicas() {
    let Some(url) = postgres_database() else {
        return;
    };
    let a = Server::start(Some(&url), &[]);
    let b = a.replica(&[]);
    story(&a, &b);
}
