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

/// Follows `next` through every page of the token list at `limit` a page.
fn every_token_page(s: &Server, f: &Factory, limit: u32) -> Vec<Vec<Value>> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/ota/factories/{}/tokens?limit={limit}", f.name);
        if let Some(c) = &cursor {
            path.push_str(&format!("&before={c}"));
        }
        let v = get_json(s, &path, Some(&f.owner));
        pages.push(v["tokens"].as_array().unwrap().clone());
        assert_eq!(v["current"]["scope"], "owner", "{v}");
        match v["next"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return pages,
        }
        assert!(pages.len() < 100, "the pages never end");
    }
}

/// The token list and the audit log page newest first with a cursor: every entry once, in
/// order, the newest events (a revocation) on the first page however long the history.
fn paging(s: &Server) {
    let f = create_factory(s, "paged");
    let mut created = Vec::new();
    for i in 0..25 {
        let scope = if i % 2 == 0 { "read" } else { "ci" };
        created.push(create_token(s, &f, &f.owner, scope).1);
    }
    // 27 tokens (owner, ci and the 25) in pages of 10: 10, 10, 7.
    let pages = every_token_page(s, &f, 10);
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [10, 10, 7]);
    let ids: Vec<&str> = pages
        .iter()
        .flatten()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    let unique: std::collections::BTreeSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), 27, "{ids:?}");
    // Newest first (by creation time, to the second), and every created token listed.
    let times: Vec<&str> = pages
        .iter()
        .flatten()
        .map(|t| t["created_at"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
    assert!(created.iter().all(|id| ids.contains(&id.as_str())));

    // The newest audit entry is a revocation, on the first page of the log.
    assert_eq!(revoke(s, &f, &f.owner, &created[0]), StatusCode::OK);
    let url = |q: &str| s.url(&format!("/ota/factories/{}/audit{q}", f.name));
    let first = client()
        .get(url("?limit=10"))
        .bearer_auth(&f.owner)
        .send()
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let link = first.headers()["link"].to_str().unwrap().to_owned();
    let entries: Vec<Value> = first.json().unwrap();
    assert_eq!(entries.len(), 10);
    assert_eq!(entries[0]["action"], "token.revoke", "{entries:?}");
    let last = entries[9]["id"].as_i64().unwrap();
    assert_eq!(
        link,
        format!(
            "</ota/factories/{}/audit?before={last}&limit=10>; rel=\"next\"",
            f.name
        )
    );
    // Following the links reaches the oldest entry once; the last page has no link.
    let mut seen: Vec<i64> = entries.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    let mut next = Some(format!("?before={last}&limit=10"));
    while let Some(q) = next.take() {
        let r = client().get(url(&q)).bearer_auth(&f.owner).send().unwrap();
        next = r.headers().get("link").map(|l| {
            let l = l.to_str().unwrap();
            l[l.find('?').unwrap()..l.find('>').unwrap()].to_owned()
        });
        let page: Vec<Value> = r.json().unwrap();
        seen.extend(page.iter().map(|e| e["id"].as_i64().unwrap()));
    }
    assert!(seen.windows(2).all(|w| w[0] > w[1]), "{seen:?}");
    let all: Vec<Value> = serde_json::from_slice(
        &get(
            s,
            &format!("/ota/factories/{}/audit?limit=1000", f.name),
            Some(&f.owner),
        )
        .1,
    )
    .unwrap();
    assert_eq!(seen.len(), all.len());
    assert_eq!(all.last().unwrap()["action"], "factory.create");

    // Bad pages are refused, naming what is wrong.
    for (query, detail) in [
        ("?limit=0", "give between 1 and 1000"),
        ("?limit=1001", "give between 1 and 1000"),
        ("?before=abc", "before is CREATED_AT.ID"),
        ("?before=12.XYZ", "before is CREATED_AT.ID"),
    ] {
        let r = get(
            s,
            &format!("/ota/factories/{}/tokens{query}", f.name),
            Some(&f.owner),
        );
        assert_refused(
            (r.0, &r.1),
            (StatusCode::BAD_REQUEST, "invalid query", detail),
        );
    }
    let r = get(
        s,
        &format!("/ota/factories/{}/audit?before=x", f.name),
        Some(&f.owner),
    );
    assert_eq!(r.0, StatusCode::BAD_REQUEST);
}

#[test]
fn paging_on_sqlite() {
    paging(&Server::sqlite());
}

#[test]
fn paging_on_postgres() {
    let Some(s) = Server::postgres() else { return };
    paging(&s);
}
