//! The storage test-suite: every function runs against SQLite and against PostgreSQL.

use std::collections::BTreeSet;

use serde_json::{json, Value};
use tuf_core::{Role, Root, Signed, Snapshot, Targets, Timestamp};

use super::*;

fn root_of(s: &Server, f: &str, flavour: &str) -> Signed<Root> {
    let (st, body) = get(s, &format!("/repo/{f}/{flavour}/metadata/root.json"), None);
    assert_eq!(st, StatusCode::OK);
    Signed::from_slice(&body).unwrap()
}

/// Walks timestamp -> snapshot -> targets of one flavour like a client and checks every
/// signature against the flavour's root. Returns the targets.
pub fn verified_targets(s: &Server, f: &str, flavour: &str) -> Signed<Targets> {
    let root = root_of(s, f, flavour);
    let r = &root.signed;
    let (_, body) = get(
        s,
        &format!("/repo/{f}/{flavour}/metadata/timestamp.json"),
        None,
    );
    let ts: Signed<Timestamp> = Signed::from_slice(&body).unwrap();
    ts.verify_role("timestamp", r.role(Role::Timestamp), &r.keys)
        .require()
        .unwrap();
    let sv = ts.signed.snapshot_meta().version;
    let (st, body) = get(
        s,
        &format!("/repo/{f}/{flavour}/metadata/{sv}.snapshot.json"),
        None,
    );
    assert_eq!(st, StatusCode::OK);
    tuf_core::hash::check(ts.signed.snapshot_meta().hashes.as_ref().unwrap(), &body).unwrap();
    let snap: Signed<Snapshot> = Signed::from_slice(&body).unwrap();
    snap.verify_role("snapshot", r.role(Role::Snapshot), &r.keys)
        .require()
        .unwrap();
    let tv = snap.signed.meta["targets.json"].version;
    let (st, body) = get(
        s,
        &format!("/repo/{f}/{flavour}/metadata/{tv}.targets.json"),
        None,
    );
    assert_eq!(st, StatusCode::OK);
    let targets: Signed<Targets> = Signed::from_slice(&body).unwrap();
    targets
        .verify_role("targets", r.role(Role::Targets), &r.keys)
        .require()
        .unwrap();
    assert_eq!(targets.signed.version, tv);
    targets
}

pub fn bootstrap_and_metadata(s: &Server) {
    assert_eq!(get_json(s, "/healthz", None), json!({"status": "ok"}));
    let api = get_json(s, "/openapi.json", None);
    assert_eq!(api["openapi"], "3.0.3");
    assert!(api["paths"]["/ota/factories/{f}/targets"]["post"].is_object());
    let f = create_factory(s, "acme");
    assert!(f
        .credentials_url
        .starts_with(&format!("{}/ota/factories/acme/credentials/", s.base)));
    // Root v1, identical for CI and production, self-signed by the bootstrap root key.
    let ci = get_json(
        s,
        "/ota/repo/acme/api/v1/user_repo/root.json",
        Some(&f.owner),
    );
    let prod = get_json(
        s,
        "/ota/repo/acme/api/v1/user_repo/root.json?production=1",
        Some(&f.owner),
    );
    assert_eq!(ci, prod);
    assert_eq!(ci["signed"]["version"], 1);
    assert_eq!(ci["signed"]["consistent_snapshot"], true);
    assert_eq!(ci["signed"]["x-changelog"]["message"], "factory created");
    let root = root_of(s, "acme", "ci");
    assert_eq!(root.signed.keys.len(), 4);
    for role in Role::ALL {
        assert_eq!(root.signed.role(role).threshold.get(), 1);
        assert_eq!(
            ci["signed"]["x-key-owners"][root.signed.role(role).keyids[0].as_str()],
            "tufd"
        );
    }
    root.verify_role("root", root.signed.role(Role::Root), &root.signed.keys)
        .require()
        .unwrap();
    let (st, _) = get(
        s,
        "/ota/repo/acme/api/v1/user_repo/1.root.json",
        Some(&f.ci),
    );
    assert_eq!(st, StatusCode::OK);
    let (st, body) = get(
        s,
        "/ota/repo/acme/api/v1/user_repo/2.root.json",
        Some(&f.ci),
    );
    assert_refused(
        (st, &body),
        (
            StatusCode::NOT_FOUND,
            "not found",
            "ci metadata 2.root.json of factory \"acme\"",
        ),
    );
    for flavour in ["ci", "prod"] {
        let t = verified_targets(s, "acme", flavour);
        assert_eq!(t.signed.version, 1);
        assert!(t.signed.targets.is_empty());
    }

    // The credentials: once, then 410 on any later request.
    let r = client().get(&f.credentials_url).send().unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/gzip");
    let creds = tuf_credentials::Credentials::read(&r.bytes().unwrap()).unwrap();
    assert_eq!(creds.config().factory, "acme");
    assert_eq!(creds.config().api, s.base);
    let key = creds.private_key("offline-root").unwrap();
    assert_eq!(
        tuf_core::Signer::key_id(&key),
        &root.signed.role(Role::Root).keyids[0]
    );
    assert_eq!(
        creds.root_json().unwrap(),
        get(s, "/repo/acme/ci/metadata/1.root.json", None).1
    );
    for _ in 0..2 {
        let r = client().get(&f.credentials_url).send().unwrap();
        assert_response_refused(
            r,
            (
                StatusCode::GONE,
                "gone",
                "these credentials were already downloaded and deleted from the server",
            ),
        );
    }
    let (st, body) = get(s, "/ota/factories/acme/credentials/00", None);
    assert_refused(
        (st, &body),
        (StatusCode::NOT_FOUND, "not found", "credentials"),
    );

    // ETag and 304, Cache-Control.
    let r = client()
        .get(s.url("/repo/acme/ci/metadata/timestamp.json"))
        .send()
        .unwrap();
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    assert!(r.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("no-cache"));
    let r = client()
        .get(s.url("/repo/acme/ci/metadata/timestamp.json"))
        .header("If-None-Match", &etag)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    etags_are_the_sha256_of_the_bytes(s, "acme");
    let r = client()
        .get(s.url("/repo/acme/ci/metadata/1.snapshot.json"))
        .send()
        .unwrap();
    assert!(r.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));

    // A second Factory of the same name is refused.
    let r = client()
        .post(s.url("/ota/factories"))
        .bearer_auth(&s.admin)
        .json(&json!({"name": "acme"}))
        .send()
        .unwrap();
    assert_response_refused(
        r,
        (
            StatusCode::CONFLICT,
            "factory exists",
            "a factory named \"acme\" already exists",
        ),
    );
}

/// Every metadata file's ETag is the SHA-256 of the bytes served, first from the store and
/// then again (from the cache, where there is one).
fn etags_are_the_sha256_of_the_bytes(s: &Server, factory: &str) {
    for flavour in ["ci", "prod"] {
        for file in [
            "root.json",
            "1.root.json",
            "timestamp.json",
            "snapshot.json",
            "1.snapshot.json",
            "targets.json",
            "1.targets.json",
        ] {
            for _ in 0..2 {
                let r = client()
                    .get(s.url(&format!("/repo/{factory}/{flavour}/metadata/{file}")))
                    .send()
                    .unwrap();
                assert_eq!(r.status(), StatusCode::OK, "{flavour}/{file}");
                let etag = r.headers()["etag"].to_str().unwrap().to_owned();
                let body = r.bytes().unwrap();
                let sha = tuf_core::hash::sha256_hex(&body);
                assert_eq!(etag, format!("\"{sha}\""), "{flavour}/{file}");
            }
        }
    }
}

pub fn targets_and_signing(s: &Server) {
    let f = create_factory(s, "builds");
    let (st, v) = add_target(s, &f, "app", "1.0");
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v, json!({"target": "app-1.0", "targets_version": 2}));
    // Retry of the same build: unchanged.
    let (st, v) = add_target(s, &f, "app", "1.0");
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["targets_version"], 2);
    // Same name and version, different content: conflict.
    let r = client()
        .post(s.url("/ota/factories/builds/targets"))
        .bearer_auth(&f.owner)
        .json(&target_json("app", "1.0", b"other"))
        .send()
        .unwrap();
    assert_response_refused(
        r,
        (
            StatusCode::CONFLICT,
            "target exists",
            "app-1.0 already exists with different content",
        ),
    );

    // Multipart upload: the artifact is served content-addressed.
    let content = b"artifact bytes \x00\x01\x02".to_vec();
    let form = reqwest::blocking::multipart::Form::new()
        .text(
            "metadata",
            json!({"name": "app", "version": "2.0", "hardware_ids": ["hw-1"],
                   "custom": {"origUri": "x", "name": "spoof"}})
            .to_string(),
        )
        .part(
            "file",
            reqwest::blocking::multipart::Part::bytes(content.clone()).file_name("a.bin"),
        );
    let r = client()
        .post(s.url("/ota/factories/builds/targets"))
        .bearer_auth(&f.ci)
        .multipart(form)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let sha = tuf_core::hash::sha256_hex(&content);
    let (st, body) = get(s, &format!("/repo/builds/ci/targets/{sha}.app-2.0"), None);
    assert_eq!(st, StatusCode::OK);
    assert_eq!(body, content);
    // A device resuming a download asks for the rest: artifacts are served in ranges
    // (streamed) from files and from PostgreSQL alike.
    let r = client()
        .get(s.url(&format!("/repo/builds/ci/targets/{sha}.app-2.0")))
        .header("Range", "bytes=6-")
        .send()
        .unwrap();
    let headers = r.headers().clone();
    let (st, body) = (r.status(), r.bytes().unwrap().to_vec());
    assert_eq!(
        headers["content-type"], "application/octet-stream",
        "{headers:?}"
    );
    assert!(headers["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    assert_eq!(st, StatusCode::PARTIAL_CONTENT);
    assert_eq!(body, content[6..]);
    assert_eq!(
        headers["content-range"],
        format!("bytes 6-{}/{}", content.len() - 1, content.len())
    );
    // Another Factory's artifact, or an unknown hash: 404 either way.
    let (st, body) = get(s, &format!("/repo/other/ci/targets/{sha}.app-2.0"), None);
    assert_refused(
        (st, &body),
        (StatusCode::NOT_FOUND, "not found", ".app-2.0"),
    );

    let t = verified_targets(s, "builds", "ci");
    assert_eq!(t.signed.version, 3);
    let app2 = &t.signed.targets["app-2.0"];
    assert_eq!(app2.length, content.len() as u64);
    let custom = app2.custom.as_ref().unwrap();
    assert_eq!(custom["name"], "app");
    assert_eq!(custom["version"], "2.0");
    assert_eq!(custom["origUri"], "x");
    assert_eq!(custom["hardware_ids"], json!(["hw-1"]));
    // Production is untouched by CI builds.
    assert_eq!(verified_targets(s, "builds", "prod").signed.version, 1);
    // Every version of the CI chain stays available.
    for v in 1..=3 {
        let (st, _) = get(
            s,
            &format!("/repo/builds/ci/metadata/{v}.targets.json"),
            None,
        );
        assert_eq!(st, StatusCode::OK);
    }
}

/// Each bad request is a 4xx JSON error and changes nothing.
pub fn bad_input(s: &Server) {
    let f = create_factory(s, "strict");
    let other = create_factory(s, "other");
    let before = snapshot_of_store(s, "strict");
    let path = "/ota/factories/strict/targets";
    let sha = "a".repeat(64);
    let cases: Vec<(&str, Option<&str>, Vec<u8>, Refusal)> = vec![
        ("malformed JSON", Some(&f.ci), b"{\"name\": ".to_vec(), (StatusCode::BAD_REQUEST, "malformed JSON", "invalid JSON: EOF while parsing a value")),
        ("duplicate keys", Some(&f.ci), br#"{"name":"a","name":"b"}"#.to_vec(), (StatusCode::BAD_REQUEST, "malformed JSON", "invalid JSON: duplicate object key \"name\"")),
        ("wrong type", Some(&f.ci),
            json!({"name": 5, "version": "1", "hardware_ids": ["h"], "length": 1, "hashes": {"sha256": sha}}).to_string().into_bytes(),
            (StatusCode::BAD_REQUEST, "invalid request", "invalid type: integer `5`, expected a string")),
        ("float length", Some(&f.ci),
            br#"{"name":"a","version":"1","hardware_ids":["h"],"length":1.5,"hashes":{"sha256":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}}"#.to_vec(),
            (StatusCode::BAD_REQUEST, "malformed JSON", "invalid JSON: number 1.5 is not an integer")),
        ("unknown field", Some(&f.ci),
            json!({"name": "a", "version": "1", "hardware_ids": ["h"], "length": 1, "hashes": {"sha256": sha}, "evil": 1}).to_string().into_bytes(),
            (StatusCode::BAD_REQUEST, "invalid request", "unknown field `evil`")),
        ("missing hashes", Some(&f.ci),
            json!({"name": "a", "version": "1", "hardware_ids": ["h"], "length": 1}).to_string().into_bytes(),
            (StatusCode::BAD_REQUEST, "invalid request", "hashes.sha256 is required")),
        ("bad sha256", Some(&f.ci),
            json!({"name": "a", "version": "1", "hardware_ids": ["h"], "length": 1, "hashes": {"sha256": "xyz"}}).to_string().into_bytes(),
            (StatusCode::BAD_REQUEST, "invalid hashes", "must be 64 lowercase hex characters")),
        ("no hardware ids", Some(&f.ci),
            json!({"name": "a", "version": "1", "hardware_ids": [], "length": 1, "hashes": {"sha256": sha}}).to_string().into_bytes(),
            (StatusCode::BAD_REQUEST, "invalid hardware_ids", "give between 1 and 64 hardware IDs")),
        ("no token", None, target_json("a", "1", b"x").to_string().into_bytes(), (StatusCode::UNAUTHORIZED, "unauthorized", "missing Authorization: Bearer <token>")),
        ("bad token", Some("nope"), target_json("a", "1", b"x").to_string().into_bytes(), (StatusCode::UNAUTHORIZED, "unauthorized", "unknown token")),
        ("cross-factory owner token", Some(&other.owner), target_json("a", "1", b"x").to_string().into_bytes(), (StatusCode::NOT_FOUND, "not found", "factory \"strict\"")),
        ("cross-factory ci token", Some(&other.ci), target_json("a", "1", b"x").to_string().into_bytes(), (StatusCode::NOT_FOUND, "not found", "factory \"strict\"")),
        ("oversized JSON", Some(&f.ci), vec![b' '; 2 * 1024 * 1024], (StatusCode::PAYLOAD_TOO_LARGE, "request body too large", "the limit is 1048576 bytes")),
    ];
    let mut all = cases;
    for (name, version, error, reason) in [
        (
            "../etc",
            "1",
            "invalid name",
            "must start with a letter or digit",
        ),
        ("a/b", "1", "invalid name", "contains '/'; allowed are"),
        (
            "/abs",
            "1",
            "invalid name",
            "must start with a letter or digit",
        ),
        ("a\0b", "1", "invalid name", "contains '\\0'; allowed are"),
        (
            ".hidden",
            "1",
            "invalid name",
            "must start with a letter or digit",
        ),
        ("a..b", "1", "invalid name", "must not contain \"..\""),
        (
            "ok",
            "../1",
            "invalid version",
            "must start with a letter or digit",
        ),
        ("ok", "1/2", "invalid version", "contains '/'; allowed are"),
        ("ok", "", "invalid version", "must not be empty"),
        ("", "1", "invalid name", "must not be empty"),
        ("sp ace", "1", "invalid name", "contains ' '; allowed are"),
        (
            "back\\slash",
            "1",
            "invalid name",
            "contains '\\\\'; allowed are",
        ),
    ] {
        all.push((
            "path trick",
            Some(&f.ci),
            target_json(name, version, b"x").to_string().into_bytes(),
            (StatusCode::BAD_REQUEST, error, reason),
        ));
    }
    let long = "a".repeat(200);
    all.push((
        "too long",
        Some(&f.ci),
        target_json(&long, "1", b"x").to_string().into_bytes(),
        (
            StatusCode::BAD_REQUEST,
            "invalid name",
            "is longer than 128 characters",
        ),
    ));
    for (what, token, body, want) in all {
        let mut req = client()
            .post(s.url(path))
            .header("content-type", "application/json")
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().unwrap();
        let (status, body) = (r.status(), r.bytes().unwrap());
        eprintln!("case: {what}");
        assert_refused((status, &body), want);
    }
    // Multipart without a file part, and with an unexpected part.
    let form = reqwest::blocking::multipart::Form::new().text(
        "metadata",
        json!({"name": "a", "version": "1", "hardware_ids": ["h"]}).to_string(),
    );
    let r = client()
        .post(s.url(path))
        .bearer_auth(&f.ci)
        .multipart(form)
        .send()
        .unwrap();
    assert_response_refused(
        r,
        (
            StatusCode::BAD_REQUEST,
            "invalid multipart body",
            "both a `metadata` and a `file` part are required",
        ),
    );
    let form = reqwest::blocking::multipart::Form::new().text("other", "x");
    let r = client()
        .post(s.url(path))
        .bearer_auth(&f.ci)
        .multipart(form)
        .send()
        .unwrap();
    assert_response_refused(
        r,
        (
            StatusCode::BAD_REQUEST,
            "invalid multipart body",
            "unexpected part \"other\": send `metadata` and `file`",
        ),
    );

    // Unknown Factory, unknown metadata, tokens on other endpoints.
    let r = client()
        .post(s.url("/ota/factories/nope/targets"))
        .bearer_auth(&s.admin)
        .json(&target_json("a", "1", b"x"))
        .send()
        .unwrap();
    assert_response_refused(r, (StatusCode::NOT_FOUND, "not found", "factory \"nope\""));
    for (p, tok, want) in [
        (
            "/repo/nope/ci/metadata/root.json",
            None,
            (
                StatusCode::NOT_FOUND,
                "not found",
                "ci metadata root.json of factory \"nope\"",
            ),
        ),
        (
            "/repo/strict/qa/metadata/root.json",
            None,
            (StatusCode::NOT_FOUND, "not found", "qa"),
        ),
        (
            "/repo/strict/ci/metadata/9.targets.json",
            None,
            (
                StatusCode::NOT_FOUND,
                "not found",
                "ci metadata 9.targets.json of factory \"strict\"",
            ),
        ),
        (
            "/repo/strict/ci/metadata/..%2Froot.json",
            None,
            (StatusCode::NOT_FOUND, "not found", "../root.json"),
        ),
        (
            "/repo/strict/ci/targets/abc.x",
            None,
            (StatusCode::NOT_FOUND, "not found", "abc.x"),
        ),
        (
            "/ota/repo/strict/api/v1/user_repo/root.json",
            None,
            (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing Authorization: Bearer <token>",
            ),
        ),
        (
            "/ota/repo/strict/api/v1/user_repo/root.json",
            Some(other.owner.as_str()),
            (StatusCode::NOT_FOUND, "not found", "factory \"strict\""),
        ),
        (
            "/ota/factories/strict/audit",
            Some(f.ci.as_str()),
            (
                StatusCode::FORBIDDEN,
                "forbidden",
                "a ci token may not do this; needs owner",
            ),
        ),
        (
            "/ota/factories/strict/audit",
            Some(other.owner.as_str()),
            (StatusCode::NOT_FOUND, "not found", "factory \"strict\""),
        ),
        (
            "/no/such/endpoint",
            None,
            (StatusCode::NOT_FOUND, "not found", "no such endpoint"),
        ),
    ] {
        let (st, body) = get(s, p, tok);
        eprintln!("path: {p}");
        assert_refused((st, &body), want);
    }
    // A CI token may not create Factories; a malformed Factory name is refused.
    let r = client()
        .post(s.url("/ota/factories"))
        .bearer_auth(&f.ci)
        .json(&json!({"name": "x"}))
        .send()
        .unwrap();
    assert_response_refused(
        r,
        (
            StatusCode::FORBIDDEN,
            "forbidden",
            "creating a factory needs an admin token",
        ),
    );
    for name in ["Bad", "-x", "a/b", "../x", ""] {
        let r = client()
            .post(s.url("/ota/factories"))
            .bearer_auth(&s.admin)
            .json(&json!({"name": name}))
            .send()
            .unwrap();
        eprintln!("factory name: {name:?}");
        assert_response_refused(
            r,
            (
                StatusCode::BAD_REQUEST,
                "invalid factory name",
                "a factory name matches ^[a-z0-9][a-z0-9-]{0,62}$",
            ),
        );
    }
    assert_eq!(snapshot_of_store(s, "strict"), before, "the store changed");
}

/// Scopes: a read token reads; a CI token adds targets but cannot touch roots or waves.
pub fn token_scopes(s: &Server) {
    let f = create_factory(s, "scoped");
    let r = client()
        .post(s.url("/ota/factories/scoped/tokens"))
        .bearer_auth(&f.owner)
        .json(&json!({"scope": "read"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let read = r.json::<Value>().unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    get_json(
        s,
        "/ota/repo/scoped/api/v1/user_repo/targets.json",
        Some(&read),
    );
    let r = client()
        .post(s.url("/ota/factories/scoped/targets"))
        .bearer_auth(&read)
        .json(&target_json("a", "1", b"x"))
        .send()
        .unwrap();
    assert_response_refused(
        r,
        (
            StatusCode::FORBIDDEN,
            "forbidden",
            "a read token may not do this; needs owner or ci",
        ),
    );
    for path in [
        "/ota/repo/scoped/api/v1/user_repo/root/updates",
        "/ota/factories/scoped/waves",
    ] {
        let r = client()
            .post(s.url(path))
            .bearer_auth(&f.ci)
            .json(&json!({"message": "x"}))
            .send()
            .unwrap();
        eprintln!("path: {path}");
        assert_response_refused(
            r,
            (
                StatusCode::FORBIDDEN,
                "forbidden",
                "a ci token may not do this; needs owner",
            ),
        );
    }
    let r = client()
        .post(s.url("/ota/factories/scoped/tokens"))
        .bearer_auth(&f.ci)
        .json(&json!({"scope": "owner"}))
        .send()
        .unwrap();
    assert_response_refused(
        r,
        (
            StatusCode::FORBIDDEN,
            "forbidden",
            "a ci token may not do this; needs owner",
        ),
    );
}

/// Concurrent additions through `servers` (one or more replicas): none lost, each thread's
/// adds answered with growing versions (adds that met may share one: they were committed
/// together), and every published version is a consistent chain.
pub fn concurrent_targets(servers: &[&Server], factory: &Factory, threads: usize, each: usize) {
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let base = servers[t % servers.len()].base.clone();
            let token = factory.ci.clone();
            let name = factory.name.clone();
            std::thread::spawn(move || {
                let c = client();
                let mut versions = Vec::new();
                for i in 0..each {
                    let version = format!("{t}.{i}");
                    let r = c
                        .post(format!("{base}/ota/factories/{name}/targets"))
                        .bearer_auth(&token)
                        .json(&target_json("app", &version, version.as_bytes()))
                        .send()
                        .unwrap();
                    assert_eq!(r.status(), StatusCode::CREATED);
                    let v: Value = r.json().unwrap();
                    versions.push(v["targets_version"].as_u64().unwrap());
                }
                versions
            })
        })
        .collect();
    let mut versions = BTreeSet::new();
    for h in handles {
        let mine = h.join().unwrap();
        assert!(mine.windows(2).all(|w| w[0] < w[1]), "{mine:?}");
        versions.extend(mine);
    }
    let n = threads * each;
    let t = verified_targets(servers[0], &factory.name, "ci");
    assert_eq!(t.signed.targets.len(), n, "a target was lost");
    assert!(t.signed.version <= 1 + n as u64, "{}", t.signed.version);
    assert_eq!(versions.last(), Some(&t.signed.version));
    for th in 0..threads {
        for i in 0..each {
            assert!(t.signed.targets.contains_key(&format!("app-{th}.{i}")));
        }
    }
}

// ---- root updates and waves ---------------------------------------------------------------

const UPDATES: &str = "/api/v1/user_repo/root/updates";

fn updates_url(s: &Server, f: &str, tail: &str) -> String {
    s.url(&format!("/ota/repo/{f}{UPDATES}{tail}"))
}

fn open_update(s: &Server, f: &Factory, message: &str) -> Value {
    let r = client()
        .post(updates_url(s, &f.name, ""))
        .bearer_auth(&f.owner)
        .json(&json!({"message": message}))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json().unwrap()
}

fn root_env(v: &Value) -> Signed<Root> {
    Signed::from_value(v.clone()).unwrap()
}

fn envelope<T: tuf_core::Metadata>(env: &Signed<T>) -> Value {
    serde_json::from_slice(&env.to_bytes()).unwrap()
}

/// Re-wraps edited roots and signs them with `keys`.
fn signed_root(root: Root, keys: &[&tuf_core::PrivateKey]) -> Value {
    let mut env = Signed::new(root).unwrap();
    for k in keys {
        env.sign(*k).unwrap();
    }
    envelope(&env)
}

fn stage(
    s: &Server,
    f: &Factory,
    txid: &str,
    ci: Value,
    prod: Value,
    targets: Option<Value>,
) -> Value {
    let mut body = json!({"txid": txid, "ci_root": ci, "prod_root": prod});
    if let Some(t) = targets {
        body["prod_targets"] = t;
    }
    let r = client()
        .put(updates_url(s, &f.name, ""))
        .bearer_auth(&f.owner)
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().unwrap()
}

fn apply(s: &Server, f: &Factory, txid: &str) -> (StatusCode, Value) {
    let r = client()
        .post(updates_url(s, &f.name, "/apply"))
        .bearer_auth(&f.owner)
        .json(&json!({"txid": txid}))
        .send()
        .unwrap();
    (r.status(), r.json().unwrap())
}

fn cancel(s: &Server, f: &Factory, txid: &str) {
    let r = client()
        .post(updates_url(s, &f.name, "/cancel"))
        .bearer_auth(&f.owner)
        .json(&json!({"txid": txid}))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

fn bootstrap_key(f: &Factory) -> tuf_core::PrivateKey {
    let bytes = client()
        .get(&f.credentials_url)
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    tuf_credentials::Credentials::read(&bytes)
        .unwrap()
        .private_key("offline-root")
        .unwrap()
}

fn new_key() -> tuf_core::PrivateKey {
    tuf_core::PrivateKey::generate(tuf_core::KeyType::Ed25519).unwrap()
}

fn set_role_keys(root: &mut Root, role: Role, keys: &[&tuf_core::PrivateKey], threshold: u64) {
    use tuf_core::Signer;
    for k in keys {
        root.keys.insert(k.key_id().clone(), k.public_key().clone());
    }
    let rk = root.role_mut(role).unwrap();
    rk.keyids = keys.iter().map(|k| k.key_id().clone()).collect();
    rk.threshold = tuf_core::Threshold::new(threshold).unwrap();
    root.prune_keys();
}

fn online_targets_key(root: &Root) -> tuf_core::KeyId {
    root.role(Role::Targets).keyids[0].clone()
}

fn audit_actions(s: &Server, f: &Factory) -> Vec<String> {
    get_json(
        s,
        &format!("/ota/factories/{}/audit", f.name),
        Some(&f.owner),
    )
    .as_array()
    .unwrap()
    .iter()
    .map(|e| e["action"].as_str().unwrap().to_owned())
    .collect()
}

/// Root rotation, then an offline targets key, then a wave — all over the API with tuf-core.
pub fn root_rotation_and_waves(s: &Server) {
    use tuf_core::Signer;
    let f = create_factory(s, "owned");
    add_target(s, &f, "app", "1");
    let k1 = bootstrap_key(&f);

    // 1. Rotate the root key: signed by the old and the new key.
    let tx = open_update(s, &f, "take root offline");
    assert_eq!(tx["ci_root"]["signed"]["version"], 2);
    assert_eq!(
        tx["ci_root"]["signed"]["x-changelog"]["message"],
        "take root offline"
    );
    let again = client()
        .post(updates_url(s, &f.name, ""))
        .bearer_auth(&f.owner)
        .json(&json!({"message": "second"}))
        .send()
        .unwrap();
    assert_response_refused(
        again,
        (
            StatusCode::CONFLICT,
            "root update open",
            "a root-update transaction is already open for this factory; apply or cancel it",
        ),
    );
    let txid = tx["txid"].as_str().unwrap();
    let k2 = new_key();
    let mut ci = root_env(&tx["ci_root"]).signed;
    set_role_keys(&mut ci, Role::Root, &[&k2], 1);
    let mut prod = root_env(&tx["prod_root"]).signed;
    set_role_keys(&mut prod, Role::Root, &[&k2], 1);
    // Staged without signatures: the report lists what is missing.
    let staged = stage(
        s,
        &f,
        txid,
        signed_root(ci.clone(), &[]),
        signed_root(prod.clone(), &[]),
        None,
    );
    let errors = staged["errors"].to_string();
    assert!(
        errors.contains("current_root_signatures") && errors.contains("new_root_signatures"),
        "{errors}"
    );
    let staged = stage(
        s,
        &f,
        txid,
        signed_root(ci, &[&k1, &k2]),
        signed_root(prod, &[&k1, &k2]),
        None,
    );
    assert_eq!(staged["errors"], json!([]), "{staged}");
    let (st, v) = apply(s, &f, txid);
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        v,
        json!({"applied": true, "ci_version": 2, "prod_version": 2})
    );
    assert!(audit_actions(s, &f).contains(&"key.destroy".to_owned()));
    let (st, _) = get(s, "/repo/owned/ci/metadata/2.root.json", None);
    assert_eq!(st, StatusCode::OK);
    let t = verified_targets(s, "owned", "ci");
    assert!(t.signed.targets.contains_key("app-1"));
    // CI keeps working after the rotation.
    assert_eq!(add_target(s, &f, "app", "2").0, StatusCode::CREATED);

    // 2. An offline targets key: CI threshold 1, production 2, production targets re-signed.
    let tx = open_update(s, &f, "offline targets key");
    let txid = tx["txid"].as_str().unwrap();
    let offline = new_key();
    let mut ci = root_env(&tx["ci_root"]).signed;
    let online_id = online_targets_key(&ci);
    let online_pub = ci.keys[&online_id].clone();
    ci.keys
        .insert(offline.key_id().clone(), offline.public_key().clone());
    ci.role_mut(Role::Targets).unwrap().keyids = vec![online_id.clone(), offline.key_id().clone()];
    let mut prod = ci.clone();
    prod.role_mut(Role::Targets).unwrap().threshold = tuf_core::Threshold::new(2).unwrap();
    assert_eq!(ci.keys[&online_id], online_pub);
    // Without re-signed production targets the update is refused...
    stage(
        s,
        &f,
        txid,
        signed_root(ci.clone(), &[&k2]),
        signed_root(prod.clone(), &[&k2]),
        None,
    );
    let (st, v) = apply(s, &f, txid);
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"], "root update rejected");
    assert_eq!(v["detail"]["check"], "prod_targets_signatures", "{v}");
    // ...and accepted once the offline key signs them.
    let mut pt: Signed<Targets> = Signed::from_value(tx["prod_targets"].clone()).unwrap();
    pt.sign(&offline).unwrap();
    stage(
        s,
        &f,
        txid,
        signed_root(ci, &[&k2]),
        signed_root(prod, &[&k2]),
        Some(envelope(&pt)),
    );
    let (st, v) = apply(s, &f, txid);
    assert_eq!(st, StatusCode::OK, "{v}");
    let prod_root = get_json(
        s,
        "/ota/repo/owned/api/v1/user_repo/root.json?production=1",
        Some(&f.owner),
    );
    assert_eq!(prod_root["signed"]["roles"]["targets"]["threshold"], 2);
    let ci_root = get_json(
        s,
        "/ota/repo/owned/api/v1/user_repo/root.json",
        Some(&f.owner),
    );
    assert_eq!(ci_root["signed"]["roles"]["targets"]["threshold"], 1);
    let prod_targets = verified_targets(s, "owned", "prod");
    assert_eq!(prod_targets.signed.version, 2);
    assert_eq!(add_target(s, &f, "app", "3").0, StatusCode::CREATED);

    // 3. A wave: production targets v3 with app-1, signed offline, countersigned online.
    let ci_targets = verified_targets(s, "owned", "ci");
    let mut next = prod_targets.signed.clone();
    next.version += 1;
    next.targets
        .insert("app-1".into(), ci_targets.signed.targets["app-1"].clone());
    let mut wave_env = Signed::new(next.clone()).unwrap();
    // Signed by the online key alone it is refused: production needs the offline key.
    let r = client()
        .post(s.url("/ota/factories/owned/waves"))
        .bearer_auth(&f.owner)
        .json(&json!({"name": "w1", "version": "1", "tag": "main", "targets": envelope(&wave_env)}))
        .send()
        .unwrap();
    let detail = assert_response_refused(
        r,
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "wave rejected",
            "no valid signature of an offline targets key of the production root",
        ),
    );
    assert_eq!(detail["check"], "signatures");
    assert_eq!(verified_targets(s, "owned", "prod").signed.version, 2);
    assert_eq!(
        get_json(s, "/ota/factories/owned/waves", Some(&f.owner)),
        json!([])
    );
    wave_env.sign(&offline).unwrap();
    let r = client()
        .post(s.url("/ota/factories/owned/waves"))
        .bearer_auth(&f.owner)
        .json(&json!({"name": "w1", "version": "1", "tag": "main", "targets": envelope(&wave_env)}))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "{}", r.text().unwrap());
    let waves = get_json(s, "/ota/factories/owned/waves", Some(&f.owner));
    assert_eq!(waves[0]["status"], "active");
    assert_eq!(waves[0]["targets_version"], 3);
    // Not yet published.
    assert_eq!(verified_targets(s, "owned", "prod").signed.version, 2);
    let r = client()
        .post(s.url("/ota/factories/owned/waves/w1/complete"))
        .bearer_auth(&f.owner)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let published = verified_targets(s, "owned", "prod");
    assert_eq!(published.signed.version, 3);
    assert!(published.signed.targets.contains_key("app-1"));
    let r = client()
        .post(s.url("/ota/factories/owned/waves/w1/cancel"))
        .bearer_auth(&f.owner)
        .send()
        .unwrap();
    assert_response_refused(
        r,
        (
            StatusCode::CONFLICT,
            "wave not active",
            "wave \"w1\" is complete",
        ),
    );
    assert_eq!(verified_targets(s, "owned", "prod").signed.version, 3);
    let actions = audit_actions(s, &f);
    for a in [
        "root.update.apply",
        "wave.create",
        "wave.complete",
        "target.add",
    ] {
        assert!(
            actions.contains(&a.to_owned()),
            "{a} missing from {actions:?}"
        );
    }

    // 4. Production requires an offline targets key now: dropping it is refused, whether
    // the production threshold stays 2 (more than the one key left) or is lowered to 1.
    let before = get_json(
        s,
        "/ota/repo/owned/api/v1/user_repo/root.json?production=1",
        Some(&f.owner),
    );
    for (threshold, checks) in [
        (
            2,
            vec![
                "threshold_range",
                "offline_targets_key",
                "prod_targets_signatures",
            ],
        ),
        (1, vec!["offline_targets_key"]),
    ] {
        let tx = open_update(s, &f, "drop the offline targets key");
        let txid = tx["txid"].as_str().unwrap();
        let mut ci = root_env(&tx["ci_root"]).signed;
        ci.role_mut(Role::Targets).unwrap().keyids = vec![online_id.clone()];
        ci.prune_keys();
        let mut prod = ci.clone();
        prod.role_mut(Role::Targets).unwrap().threshold =
            tuf_core::Threshold::new(threshold).unwrap();
        let staged = stage(
            s,
            &f,
            txid,
            signed_root(ci, &[&k2]),
            signed_root(prod, &[&k2]),
            None,
        );
        let errors: Vec<&str> = staged["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap())
            .collect();
        let names: Vec<&str> = errors.iter().filter_map(|e| e.split(':').next()).collect();
        assert_eq!(names, checks, "{errors:?}");
        assert!(
            errors.contains(
                &"offline_targets_key: prod_root: the production targets role would keep no \
                  offline targets key, so the server alone would sign production releases; \
                  keep one, or replace it in the same update (`tufctl keys rotate-targets`)"
            ),
            "{errors:?}"
        );
        let (st, v) = apply(s, &f, txid);
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(v["error"], "root update rejected");
        assert_eq!(v["detail"]["check"], checks[0], "{v}");
        cancel(s, &f, txid);
        assert_eq!(
            get_json(
                s,
                "/ota/repo/owned/api/v1/user_repo/root.json?production=1",
                Some(&f.owner),
            ),
            before
        );
    }
}

/// Each broken root update is rejected with the check it fails, and changes nothing.
pub fn root_update_rejections(s: &Server) {
    use tuf_core::Signer;
    let f = create_factory(s, "careful");
    let k1 = bootstrap_key(&f);
    let before = snapshot_of_store(s, "careful");
    let now = time::OffsetDateTime::now_utc();
    type Edit = Box<dyn Fn(&mut Root, &mut Root)>;
    let k2 = new_key();
    let offline = new_key();
    let k2_pub = (k2.key_id().clone(), k2.public_key().clone());
    let off_pub = (offline.key_id().clone(), offline.public_key().clone());
    let rotate = {
        let k2_pub = k2_pub.clone();
        move |r: &mut Root| {
            r.keys.insert(k2_pub.0.clone(), k2_pub.1.clone());
            r.role_mut(Role::Root).unwrap().keyids = vec![k2_pub.0.clone()];
            r.prune_keys();
        }
    };
    let add_offline = {
        let off_pub = off_pub.clone();
        move |r: &mut Root, threshold: u64| {
            let online = online_targets_key(r);
            r.keys.insert(off_pub.0.clone(), off_pub.1.clone());
            let t = r.role_mut(Role::Targets).unwrap();
            t.keyids = vec![online, off_pub.0.clone()];
            t.threshold = tuf_core::Threshold::new(threshold).unwrap();
        }
    };
    let cases: Vec<(&str, Edit, Vec<&tuf_core::PrivateKey>)> = vec![
        (
            "version",
            Box::new(|c, p| {
                c.version += 1;
                p.version += 1;
            }),
            vec![&k1],
        ),
        (
            "current_root_signatures",
            Box::new({
                let r = rotate.clone();
                move |c, p| {
                    r(c);
                    r(p);
                }
            }),
            vec![&k2],
        ),
        (
            "new_root_signatures",
            Box::new({
                let r = rotate.clone();
                move |c, p| {
                    r(c);
                    r(p);
                }
            }),
            vec![&k1],
        ),
        (
            "threshold_range",
            Box::new(|c, p| {
                for r in [c, p] {
                    r.role_mut(Role::Snapshot).unwrap().threshold =
                        tuf_core::Threshold::new(2).unwrap();
                }
            }),
            vec![&k1],
        ),
        (
            "threshold_range",
            Box::new(|c, p| {
                for r in [c, p] {
                    r.role_mut(Role::Root).unwrap().threshold =
                        tuf_core::Threshold::new(2).unwrap();
                }
            }),
            vec![&k1],
        ),
        (
            // One key listed under a second key ID counts once: threshold 2 can never be met.
            "threshold_range",
            Box::new({
                let id = k1.key_id().clone();
                let public = k1.public_key().clone();
                move |c, p| {
                    for r in [c, p] {
                        let alias = tuf_core::KeyId::new("alias-of-the-root-key").unwrap();
                        r.keys.insert(alias.clone(), public.clone());
                        let rk = r.role_mut(Role::Root).unwrap();
                        rk.keyids = vec![id.clone(), alias];
                        rk.threshold = tuf_core::Threshold::new(2).unwrap();
                    }
                }
            }),
            vec![&k1],
        ),
        (
            "online_targets_key",
            Box::new({
                let o = off_pub.clone();
                move |c, p| {
                    for r in [c, p] {
                        r.keys.insert(o.0.clone(), o.1.clone());
                        r.role_mut(Role::Targets).unwrap().keyids = vec![o.0.clone()];
                        r.prune_keys();
                    }
                }
            }),
            vec![&k1],
        ),
        (
            "prod_matches_ci",
            Box::new(|_c, p| {
                p.expires = tuf_core::Expires::from_unix(p.expires.unix() + 3600).unwrap();
            }),
            vec![&k1],
        ),
        (
            "prod_targets_threshold",
            Box::new({
                let a = add_offline.clone();
                move |c, p| {
                    a(c, 1);
                    a(p, 1);
                }
            }),
            vec![&k1],
        ),
        (
            "expires",
            Box::new(move |c, p| {
                let past = tuf_core::Expires::after(now, -86400).unwrap();
                c.expires = past;
                p.expires = past;
            }),
            vec![&k1],
        ),
        (
            "expires",
            Box::new(move |c, p| {
                let far = tuf_core::Expires::after(now, 20 * 366 * 86400).unwrap();
                c.expires = far;
                p.expires = far;
            }),
            vec![&k1],
        ),
        (
            "prod_targets_signatures",
            Box::new({
                let a = add_offline.clone();
                move |c, p| {
                    a(c, 1);
                    a(p, 2);
                }
            }),
            vec![&k1],
        ),
    ];
    for (want, edit, keys) in cases {
        let tx = open_update(s, &f, want);
        let txid = tx["txid"].as_str().unwrap();
        let mut ci = root_env(&tx["ci_root"]).signed;
        let mut prod = root_env(&tx["prod_root"]).signed;
        edit(&mut ci, &mut prod);
        stage(
            s,
            &f,
            txid,
            signed_root(ci, &keys),
            signed_root(prod, &keys),
            None,
        );
        let (st, v) = apply(s, &f, txid);
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{want}: {v}");
        assert_eq!(v["error"], "root update rejected");
        assert_eq!(v["detail"]["check"], want, "{v}");
        cancel(s, &f, txid);
        assert_eq!(
            snapshot_of_store(s, "careful"),
            before,
            "{want} changed the store"
        );
    }
    // Threshold 0 cannot even be built with tuf-core: edit the JSON.
    let tx = open_update(s, &f, "zero");
    let txid = tx["txid"].as_str().unwrap();
    let mut ci = tx["ci_root"].clone();
    ci["signed"]["roles"]["timestamp"]["threshold"] = json!(0);
    let staged = stage(s, &f, txid, ci.clone(), ci, None);
    assert!(staged["errors"].to_string().contains("threshold_range"));
    let (st, v) = apply(s, &f, txid);
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"], "root update rejected");
    assert_eq!(v["detail"]["check"], "threshold_range", "{v}");
    // A wrong txid is refused; cancel works once.
    let r = client()
        .post(updates_url(s, &f.name, "/apply"))
        .bearer_auth(&f.owner)
        .json(&json!({"txid": "nope"}))
        .send()
        .unwrap();
    assert_response_refused(
        r,
        (
            StatusCode::CONFLICT,
            "wrong txid",
            "the open root-update transaction has another txid",
        ),
    );
    cancel(s, &f, txid);
    let r = client()
        .get(updates_url(s, &f.name, ""))
        .bearer_auth(&f.owner)
        .send()
        .unwrap();
    assert_response_refused(
        r,
        (
            StatusCode::NOT_FOUND,
            "not found",
            "open root-update transaction",
        ),
    );
    assert_eq!(snapshot_of_store(s, "careful"), before);
}

/// The upkeep task re-signs timestamp and snapshot (both flavours) before they expire; with
/// several replicas every version is still published once. `servers` run with short
/// periods.
pub fn upkeep(servers: &[&Server]) {
    let s = servers[0];
    let f = create_factory(s, "ticking");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let mut done = true;
        for flavour in ["ci", "prod"] {
            let ts = get_json(
                s,
                &format!("/repo/ticking/{flavour}/metadata/timestamp.json"),
                None,
            );
            let sv = ts["signed"]["meta"]["snapshot.json"]["version"]
                .as_u64()
                .unwrap();
            done &= ts["signed"]["version"].as_u64().unwrap() >= 3 && sv >= 2;
        }
        if done {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "metadata was not re-signed"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // Every published version verifies and the chain has no gap.
    for flavour in ["ci", "prod"] {
        verified_targets(s, "ticking", flavour);
        let snap = get_json(
            s,
            &format!("/repo/ticking/{flavour}/metadata/snapshot.json"),
            None,
        );
        let latest = snap["signed"]["version"].as_u64().unwrap();
        for v in 1..=latest {
            let (st, _) = get(
                s,
                &format!("/repo/ticking/{flavour}/metadata/{v}.snapshot.json"),
                None,
            );
            assert_eq!(st, StatusCode::OK);
        }
    }
    // Adding targets meanwhile still works.
    assert_eq!(add_target(s, &f, "app", "1").0, StatusCode::CREATED);
    let text = client()
        .get(s.url("/metrics"))
        .bearer_auth(&s.admin)
        .send()
        .unwrap()
        .text()
        .unwrap();
    // The only Factory's timestamp lasts 4 s: the soonest over all Factories is at most that.
    let soonest = gauge(
        &text,
        "tufd_metadata_min_expires_in_seconds{flavour=\"ci\",role=\"timestamp\"}",
    );
    assert!(soonest.is_some_and(|s| s <= 4), "{soonest:?}\n{text}");
    assert!(text.contains("tufd_requests_total{route=\"device_metadata\",status=\"2xx\"}"));
}

/// Concurrent CI adds to one Factory (committed together when they meet): every add is
/// answered with a targets version that lists its target, none is lost, a conflicting add
/// among them is refused alone, and versions only grow.
pub fn concurrent_adds(s: &Server) {
    let f = create_factory(s, "crowded");
    assert_eq!(add_target(s, &f, "taken", "1").0, StatusCode::CREATED);
    let answers: Vec<(String, StatusCode, Value)> =
        std::thread::scope(|scope| {
            let handles: Vec<_> =
                (0..16)
                    .map(|i| {
                        let f = &f;
                        scope.spawn(move || {
                    // One of them reuses a path with other content: a conflict.
                    let (name, version, length) = match i {
                        7 => ("taken".to_owned(), "1".to_owned(), 999),
                        _ => (format!("app{i}"), "1".to_owned(), 100 + i),
                    };
                    let body = json!({"name": name, "version": version, "hardware_ids": ["h"],
                        "length": length, "hashes": {"sha256": format!("{i:064x}")}});
                    let r = client()
                        .post(s.url(&format!("/ota/factories/{}/targets", f.name)))
                        .bearer_auth(&f.ci)
                        .json(&body)
                        .send()
                        .unwrap();
                    (format!("{name}-{version}"), r.status(), r.json::<Value>().unwrap())
                })
                    })
                    .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
    let t = verified_targets(s, "crowded", "ci");
    for (path, status, v) in &answers {
        if path == "taken-1" {
            assert_eq!(*status, StatusCode::CONFLICT, "{v}");
            continue;
        }
        assert_eq!(*status, StatusCode::CREATED, "{path}: {v}");
        assert_eq!(v["target"], path.as_str(), "{v}");
        let version = v["targets_version"].as_u64().unwrap();
        assert!((3..=t.signed.version).contains(&version), "{v}");
        assert!(t.signed.targets.contains_key(path), "{path} lost");
    }
    assert_eq!(t.signed.targets.len(), 16, "taken-1 and 15 apps");
    assert_eq!(t.signed.targets["taken-1"].length, 1, "the first one stays");
    eprintln!(
        "16 concurrent adds in {} targets versions",
        t.signed.version - 2
    );
}

/// A batch of targets is one targets version; a conflicting batch changes nothing.
pub fn batch_targets(s: &Server) {
    let f = create_factory(s, "batch");
    let items: Vec<Value> = (0..50)
        .map(|i| target_json("pkg", &format!("1.{i}"), format!("c{i}").as_bytes()))
        .collect();
    let r = client()
        .post(s.url("/ota/factories/batch/targets"))
        .bearer_auth(&f.ci)
        .json(&items)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().unwrap();
    assert_eq!(v["targets_version"], 2);
    assert_eq!(v["targets"].as_array().unwrap().len(), 50);
    let before = snapshot_of_store(s, "batch");
    let bad = vec![
        target_json("pkg", "2.0", b"new"),
        target_json("pkg", "1.0", b"different"),
    ];
    let r = client()
        .post(s.url("/ota/factories/batch/targets"))
        .bearer_auth(&f.ci)
        .json(&bad)
        .send()
        .unwrap();
    assert_response_refused(
        r,
        (
            StatusCode::CONFLICT,
            "target exists",
            "pkg-1.0 already exists with different content",
        ),
    );
    assert_eq!(snapshot_of_store(s, "batch"), before);
    assert_eq!(verified_targets(s, "batch", "ci").signed.targets.len(), 50);
}

/// Old versions of the online roles are pruned past the newest 64; roots never are, and the
/// newest versions stay downloadable.
pub fn old_versions_pruned(s: &Server) {
    let f = create_factory(s, "pruned");
    for i in 0..70 {
        let (st, v) = add_target(s, &f, "app", &format!("1.{i}"));
        assert_eq!(st, StatusCode::CREATED, "{v}");
    }
    let t = verified_targets(s, "pruned", "ci");
    assert_eq!(t.signed.version, 71);
    let fetch = |path: &str| get(s, &format!("/repo/pruned/ci/metadata/{path}"), None);
    // The newest and the previous version are always served; the oldest are gone.
    for v in [70, 71] {
        for role in ["targets", "snapshot"] {
            assert_eq!(
                fetch(&format!("{v}.{role}.json")).0,
                StatusCode::OK,
                "{v}.{role}"
            );
        }
    }
    for v in [1, 7] {
        assert_eq!(fetch(&format!("{v}.targets.json")).0, StatusCode::NOT_FOUND);
        assert_eq!(
            fetch(&format!("{v}.snapshot.json")).0,
            StatusCode::NOT_FOUND
        );
    }
    // What is kept of old targets: contiguous below the newest, together within four times
    // the newest's size (the previous version alone may pass it).
    let newest = fetch("71.targets.json").1.len();
    let mut kept = Vec::new();
    for v in (1..71).rev() {
        let (st, body) = fetch(&format!("{v}.targets.json"));
        if st != StatusCode::OK {
            break;
        }
        kept.push(body.len());
    }
    assert!(kept.len() >= 2, "{kept:?}");
    assert!(
        kept.iter().sum::<usize>() <= 4 * newest,
        "{kept:?} vs {newest}"
    );
    for v in 1..(71 - kept.len()) {
        assert_eq!(
            fetch(&format!("{v}.targets.json")).0,
            StatusCode::NOT_FOUND,
            "v{v}"
        );
    }
    assert_eq!(fetch("1.root.json").0, StatusCode::OK);
    assert_eq!(fetch("timestamp.json").0, StatusCode::OK);
    // Production was never written to: all its versions stay.
    let (st, _) = get(s, "/repo/pruned/prod/metadata/1.targets.json", None);
    assert_eq!(st, StatusCode::OK);
}

/// A targets.json larger than the store's chunk (1 MiB) is stored in chunks and served
/// whole: as the head and by version, after adds and after a removal, each version verifying
/// like any other, and an older version still intact beside the newest.
pub fn large_targets_are_stored_in_chunks(s: &Server) {
    let f = create_factory(s, "large");
    // About 12 KB of custom data each: 100 targets pass 1 MiB (in two requests, each
    // within the request body limit).
    let filler = "x".repeat(12 * 1024);
    for half in 0..2 {
        let items: Vec<Value> = (0..50)
            .map(|i| {
                let v = format!("1.{}", half * 50 + i);
                let mut t = target_json("big", &v, v.as_bytes());
                t["custom"] = json!({"notes": filler});
                t
            })
            .collect();
        let r = client()
            .post(s.url("/ota/factories/large/targets"))
            .bearer_auth(&f.ci)
            .json(&items)
            .send()
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let fetch = |path: &str| get(s, &format!("/repo/large/ci/metadata/{path}"), None);
    let t = verified_targets(s, "large", "ci");
    assert_eq!(t.signed.targets.len(), 100);
    assert_eq!(
        t.signed.targets["big-1.99"].custom.as_ref().unwrap()["notes"],
        filler
    );
    let v = t.signed.version;
    let (st, head) = fetch("targets.json");
    assert_eq!(st, StatusCode::OK);
    assert!(
        head.len() > 1024 * 1024,
        "{} bytes: not past a chunk",
        head.len()
    );
    assert_eq!(fetch(&format!("{v}.targets.json")).1, head);

    let r = client()
        .delete(s.url("/ota/factories/large/targets/big-1.0"))
        .bearer_auth(&f.owner)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let after = verified_targets(s, "large", "ci");
    assert_eq!(after.signed.version, v + 1);
    assert_eq!(after.signed.targets.len(), 99);
    assert!(!after.signed.targets.contains_key("big-1.0"));
    // The version before is still served as it was published.
    let (st, before) = fetch(&format!("{v}.targets.json"));
    assert_eq!(st, StatusCode::OK);
    assert_eq!(before, head);
}

/// Keys the server holds never count as offline: once the root went offline and production
/// needs an offline targets signature, a staged root listing a server-held key (here the
/// snapshot key) so that the server alone meets the production targets threshold, or the
/// root threshold, is refused by `offline_targets_key` / `offline_root_keys`, changing
/// nothing.
pub fn server_held_keys_are_not_offline(s: &Server) {
    use tuf_core::Signer;
    let f = create_factory(s, "guarded");
    let k1 = bootstrap_key(&f);
    // The root goes offline (the bootstrap key is destroyed), then production gets an
    // offline targets key with threshold 2.
    let k2 = new_key();
    let tx = open_update(s, &f, "take root offline");
    let txid = tx["txid"].as_str().unwrap();
    let mut ci = root_env(&tx["ci_root"]).signed;
    set_role_keys(&mut ci, Role::Root, &[&k2], 1);
    let mut prod = root_env(&tx["prod_root"]).signed;
    set_role_keys(&mut prod, Role::Root, &[&k2], 1);
    stage(
        s,
        &f,
        txid,
        signed_root(ci, &[&k1, &k2]),
        signed_root(prod, &[&k1, &k2]),
        None,
    );
    let (st, v) = apply(s, &f, txid);
    assert_eq!(st, StatusCode::OK, "{v}");
    let offline = new_key();
    let tx = open_update(s, &f, "offline targets key");
    let txid = tx["txid"].as_str().unwrap();
    let mut ci = root_env(&tx["ci_root"]).signed;
    let online_id = online_targets_key(&ci);
    ci.keys
        .insert(offline.key_id().clone(), offline.public_key().clone());
    ci.role_mut(Role::Targets).unwrap().keyids = vec![online_id.clone(), offline.key_id().clone()];
    let mut prod = ci.clone();
    prod.role_mut(Role::Targets).unwrap().threshold = tuf_core::Threshold::new(2).unwrap();
    let mut pt: Signed<Targets> = Signed::from_value(tx["prod_targets"].clone()).unwrap();
    pt.sign(&offline).unwrap();
    stage(
        s,
        &f,
        txid,
        signed_root(ci, &[&k2]),
        signed_root(prod, &[&k2]),
        Some(envelope(&pt)),
    );
    let (st, v) = apply(s, &f, txid);
    assert_eq!(st, StatusCode::OK, "{v}");

    let before = snapshot_of_store(s, "guarded");
    let prod_root_url = "/ota/repo/guarded/api/v1/user_repo/root.json?production=1";
    let root_before = get_json(s, prod_root_url, Some(&f.owner));
    let snapshot_id = root_env(&root_before).signed.role(Role::Snapshot).keyids[0].clone();
    type Edit = Box<dyn Fn(&mut Root, &mut Root)>;
    let cases: Vec<(&str, &str, Edit)> = vec![
        (
            // The offline key stays listed, but online + snapshot key meet the threshold 2.
            "offline_targets_key",
            "offline_targets_key: prod_root: the server holds 2 of the production targets \
             keys, which meets the threshold 2: the server alone would sign production releases",
            Box::new({
                let ids = vec![
                    online_id.clone(),
                    offline.key_id().clone(),
                    snapshot_id.clone(),
                ];
                move |c, p| {
                    for r in [c, p] {
                        r.role_mut(Role::Targets).unwrap().keyids = ids.clone();
                    }
                }
            }),
        ),
        (
            // The snapshot key as a second root key, with the root threshold still 1.
            "offline_root_keys",
            "offline_root_keys: ci_root: the server holds 1 of the root keys, which meets the \
             root threshold 1: the server alone could sign new roots",
            Box::new({
                let ids = vec![k2.key_id().clone(), snapshot_id.clone()];
                move |c, p| {
                    for r in [c, p] {
                        r.role_mut(Role::Root).unwrap().keyids = ids.clone();
                    }
                }
            }),
        ),
    ];
    for (want, reason, edit) in cases {
        let tx = open_update(s, &f, want);
        let txid = tx["txid"].as_str().unwrap();
        let mut ci = root_env(&tx["ci_root"]).signed;
        let mut prod = root_env(&tx["prod_root"]).signed;
        edit(&mut ci, &mut prod);
        // Signed by the offline root key, and production targets signed offline too: only
        // the server-held key makes the update wrong.
        let mut pt: Signed<Targets> = Signed::from_value(tx["prod_targets"].clone()).unwrap();
        pt.sign(&offline).unwrap();
        let staged = stage(
            s,
            &f,
            txid,
            signed_root(ci, &[&k2]),
            signed_root(prod, &[&k2]),
            Some(envelope(&pt)),
        );
        let errors: Vec<&str> = staged["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap())
            .collect();
        let names: Vec<&str> = errors.iter().filter_map(|e| e.split(':').next()).collect();
        assert!(names.iter().all(|n| *n == want), "{want}: {errors:?}");
        assert!(
            errors.iter().any(|e| e.starts_with(reason)),
            "{want}: {errors:?}"
        );
        let (st, v) = apply(s, &f, txid);
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{want}: {v}");
        assert_eq!(v["error"], "root update rejected");
        assert_eq!(v["detail"]["check"], want, "{v}");
        assert!(v.to_string().contains("the server alone"), "{v}");
        cancel(s, &f, txid);
        assert_eq!(
            snapshot_of_store(s, "guarded"),
            before,
            "{want} changed the store"
        );
        assert_eq!(get_json(s, prod_root_url, Some(&f.owner)), root_before);
    }
}

/// Expiry periods under which a new Factory's metadata soon needs attention: roots inside
/// the 30-day warning window from the start, the timestamp due for re-signing after two
/// seconds, and no upkeep pass after the first (so it stays due).
pub const LAPSING: &[&str] = &[
    "--root-expiry-secs",
    "864000",
    "--timestamp-expiry-secs",
    "4",
    "--resign-interval-secs",
    "3600",
];

/// `/metrics` names a Factory only for metadata that needs attention (a root inside the
/// warning window, a timestamp due and not re-signed), so a healthy fleet of any size
/// exports a fixed number of series; the soonest expiry and the count per flavour and role
/// cover all Factories. `lapsing` runs with [`LAPSING`].
pub fn metrics_follow_attention(healthy: &Server, lapsing: &Server) {
    for name in ["quiet-a", "quiet-b", "quiet-c"] {
        create_factory(healthy, name);
    }
    let text = metrics_text(healthy);
    assert!(
        !text.contains("factory=\""),
        "a healthy fleet exports no per-Factory series:\n{text}"
    );
    for flavour in ["ci", "prod"] {
        for role in ["root", "targets", "snapshot", "timestamp"] {
            let pair = format!("{{flavour=\"{flavour}\",role=\"{role}\"}}");
            assert_eq!(
                gauge(&text, &format!("tufd_metadata_attention{pair}")),
                Some(0),
                "{flavour} {role}:\n{text}"
            );
            let soonest = gauge(
                &text,
                &format!("tufd_metadata_min_expires_in_seconds{pair}"),
            )
            .unwrap_or_else(|| panic!("no soonest expiry of {flavour} {role}:\n{text}"));
            // Timestamps last a day by default, everything else longer.
            assert!(
                (80_000..=366 * 86_400).contains(&soonest),
                "{pair} {soonest}"
            );
        }
    }

    create_factory(lapsing, "lapsing");
    std::thread::sleep(std::time::Duration::from_millis(3000));
    let text = metrics_text(lapsing);
    for (flavour, role, listed) in [
        ("ci", "root", true),
        ("prod", "root", true),
        ("ci", "timestamp", true),
        ("prod", "timestamp", true),
        ("ci", "targets", false),
        ("prod", "targets", false),
        ("ci", "snapshot", false),
        ("prod", "snapshot", false),
    ] {
        let labels = format!("{{factory=\"lapsing\",flavour=\"{flavour}\",role=\"{role}\"}}");
        let left = gauge(&text, &format!("tufd_metadata_expires_in_seconds{labels}"));
        let count = gauge(
            &text,
            &format!("tufd_metadata_attention{{flavour=\"{flavour}\",role=\"{role}\"}}"),
        );
        assert_eq!(left.is_some(), listed, "{labels}:\n{text}");
        assert_eq!(count, Some(i64::from(listed)), "{labels}:\n{text}");
        assert_eq!(
            gauge(&text, &format!("tufd_metadata_version{labels}")).is_some(),
            listed
        );
        if let Some(left) = left {
            let expected = if role == "root" { 864_000 } else { 4 };
            assert!(left <= expected && left > -5, "{labels} {left}");
        }
    }
}

fn metrics_text(s: &Server) -> String {
    let (status, body) = get(s, "/metrics", Some(&s.admin));
    assert_eq!(status, StatusCode::OK);
    String::from_utf8(body).unwrap()
}

/// The value of the series `name` (with its labels) in a scrape.
fn gauge(text: &str, name: &str) -> Option<i64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}
