//! Curating CI targets over the API, on SQLite and (with TUFD_TEST_DATABASE_URL) PostgreSQL:
//! only the owner removes targets and changes tags; each change is one new CI targets version
//! that a client verifies through timestamp and snapshot; production and audit as expected;
//! refusals change nothing. And `GET .../waves/{w}` for a wave that does not exist.

mod common;

use common::suite::verified_targets;
use common::*;
use serde_json::{json, Value};

#[test]
fn curation_on_sqlite() {
    curation(&Server::sqlite());
}

#[test]
fn curation_on_postgres() {
    let Some(s) = Server::postgres() else { return };
    curation(&s);
}

fn curation(s: &Server) {
    let f = create_factory(s, "curated");
    for v in ["1", "2", "3", "4"] {
        assert_eq!(add_target(s, &f, "app", v).0, StatusCode::CREATED);
    }
    let ci = verified_targets(s, &f.name, "ci");
    assert_eq!(ci.signed.version, 5);
    // The server records when it first signed each target.
    let created = &ci.signed.targets["app-1"].custom.as_ref().unwrap()["created_at"];
    assert!(
        created.as_str().is_some_and(|t| t.ends_with('Z')),
        "{created}"
    );

    refusals_change_nothing(s, &f);
    removal(s, &f);
    prune(s, &f);
    retag(s, &f);
    wave_lookups(s, &f);

    // The log lists newest first; read it in the order things happened.
    let audit = get_json(s, "/ota/factories/curated/audit", Some(&f.owner));
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|a| a["action"].as_str().unwrap())
        .filter(|a| a.starts_with("target."))
        .collect();
    assert_eq!(
        actions,
        [
            "target.add",
            "target.add",
            "target.add",
            "target.add",
            "target.delete",
            "target.delete",
            "target.tags"
        ]
    );
}

/// (method, path, token, body) → (status, JSON answer).
fn call(
    s: &Server,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let url = s.url(path);
    let c = client();
    let req = match method {
        "DELETE" => c.delete(url),
        "PUT" => c.put(url),
        _ => c.post(url),
    }
    .bearer_auth(token);
    let req = match body {
        Some(b) => req.json(&b),
        None => req,
    };
    let r = req.send().unwrap();
    let status = r.status();
    let v: Value = r.json().unwrap();
    (status, v)
}

/// (method, path, token, body, expected status, expected `error` prefix).
type Case<'a> = (
    &'a str,
    &'a str,
    &'a str,
    Option<Value>,
    StatusCode,
    &'a str,
);

/// Scopes, unknown targets, malformed bodies: each refused by name, the store unchanged.
fn refusals_change_nothing(s: &Server, f: &Factory) {
    let before = snapshot_of_store(s, &f.name);
    let read = {
        let (st, v) = call(
            s,
            "POST",
            "/ota/factories/curated/tokens",
            &f.owner,
            Some(json!({"scope": "read"})),
        );
        assert_eq!(st, StatusCode::CREATED);
        v["token"].as_str().unwrap().to_owned()
    };
    let prune = "/ota/factories/curated/targets/prune";
    let tags = "/ota/factories/curated/targets/app-1/tags";
    let cases: Vec<Case> = vec![
        (
            "DELETE",
            "/ota/factories/curated/targets/app-1",
            &f.ci,
            None,
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            "DELETE",
            "/ota/factories/curated/targets/app-1",
            &read,
            None,
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            "POST",
            prune,
            &f.ci,
            Some(json!({"targets": ["app-1"]})),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            "PUT",
            tags,
            &f.ci,
            Some(json!({"tags": ["x"]})),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            "DELETE",
            "/ota/factories/curated/targets/app-9",
            &f.owner,
            None,
            StatusCode::NOT_FOUND,
            "not found",
        ),
        (
            "DELETE",
            "/ota/factories/curated/targets/..x",
            &f.owner,
            None,
            StatusCode::BAD_REQUEST,
            "invalid target",
        ),
        (
            "POST",
            prune,
            &f.owner,
            Some(json!({"targets": ["app-1", "app-9"]})),
            StatusCode::NOT_FOUND,
            "not found",
        ),
        (
            "POST",
            prune,
            &f.owner,
            Some(json!({"targets": ["app-1", "app-1"]})),
            StatusCode::BAD_REQUEST,
            "invalid targets",
        ),
        (
            "POST",
            prune,
            &f.owner,
            Some(json!({"targets": []})),
            StatusCode::BAD_REQUEST,
            "invalid targets",
        ),
        (
            "POST",
            prune,
            &f.owner,
            Some(json!(["app-1"])),
            StatusCode::BAD_REQUEST,
            "invalid request",
        ),
        (
            "POST",
            prune,
            &f.owner,
            Some(json!({"targets": ["app-1"], "all": true})),
            StatusCode::BAD_REQUEST,
            "invalid request",
        ),
        (
            "PUT",
            tags,
            &f.owner,
            Some(json!({"tags": ["a b"]})),
            StatusCode::BAD_REQUEST,
            "invalid tags",
        ),
        (
            "PUT",
            "/ota/factories/curated/targets/app-9/tags",
            &f.owner,
            Some(json!({"tags": ["x"]})),
            StatusCode::NOT_FOUND,
            "not found",
        ),
    ];
    let many: Vec<String> = (0..1001).map(|i| format!("app-{i}")).collect();
    let (st, v) = call(s, "POST", prune, &f.owner, Some(json!({"targets": many})));
    assert_eq!(
        (st, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid targets")),
        "{v}"
    );
    for (method, path, token, body, status, error) in cases {
        let (st, v) = call(s, method, path, token, body);
        assert_eq!(st, status, "{method} {path}: {v}");
        assert!(
            v["error"].as_str().is_some_and(|e| e.starts_with(error)),
            "{method} {path}: {v}"
        );
    }
    assert_eq!(
        snapshot_of_store(s, &f.name),
        before,
        "a refusal changed the store"
    );
}

fn removal(s: &Server, f: &Factory) {
    let prod_before = verified_targets(s, &f.name, "prod");
    let (st, v) = call(
        s,
        "DELETE",
        "/ota/factories/curated/targets/app-1",
        &f.owner,
        None,
    );
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v, json!({"removed": ["app-1"], "targets_version": 6}));
    let ci = verified_targets(s, &f.name, "ci");
    assert_eq!(ci.signed.version, 6);
    assert!(!ci.signed.targets.contains_key("app-1"));
    assert_eq!(ci.signed.targets.len(), 3);
    // Production targets change only through Waves.
    assert_eq!(
        verified_targets(s, &f.name, "prod").to_bytes(),
        prod_before.to_bytes()
    );
}

fn prune(s: &Server, f: &Factory) {
    let (st, v) = call(
        s,
        "POST",
        "/ota/factories/curated/targets/prune",
        &f.owner,
        Some(json!({"targets": ["app-2", "app-3"]})),
    );
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["targets_version"], 7);
    let ci = verified_targets(s, &f.name, "ci");
    assert_eq!(ci.signed.targets.keys().collect::<Vec<_>>(), ["app-4"]);
}

fn retag(s: &Server, f: &Factory) {
    let path = "/ota/factories/curated/targets/app-4/tags";
    // The tags it has already: nothing changes.
    let (st, v) = call(s, "PUT", path, &f.owner, Some(json!({"tags": ["main"]})));
    assert_eq!(
        (st, v["targets_version"].as_u64()),
        (StatusCode::OK, Some(7)),
        "{v}"
    );
    let (st, v) = call(
        s,
        "PUT",
        path,
        &f.owner,
        Some(json!({"tags": ["production", "main", "main"]})),
    );
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        v,
        json!({"target": "app-4", "tags": ["main", "production"], "targets_version": 8})
    );
    let ci = verified_targets(s, &f.name, "ci");
    let custom = ci.signed.targets["app-4"].custom.clone().unwrap();
    assert_eq!(custom["tags"], json!(["main", "production"]));
    assert_eq!(custom["hardware_ids"], json!(["hw-1"]));
}

fn wave_lookups(s: &Server, f: &Factory) {
    let (st, body) = get(s, "/ota/factories/curated/waves/none", Some(&f.owner));
    assert_eq!(
        st,
        StatusCode::NOT_FOUND,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let (st, _) = get(s, "/ota/factories/curated/waves/none", Some(&f.ci));
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, body) = get(
        s,
        "/ota/factories/curated/waves/none?tag=a%20b",
        Some(&f.owner),
    );
    assert_eq!(
        st,
        StatusCode::BAD_REQUEST,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let (st, body) = get(
        s,
        "/ota/factories/curated/waves/none?colour=red",
        Some(&f.owner),
    );
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["error"], "invalid query");
}
