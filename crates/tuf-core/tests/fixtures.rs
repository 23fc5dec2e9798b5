//! The attack and malformation catalogue: every directory under `tests/fixtures/` is one
//! attack, with the metadata the attacker serves (`metadata.json`), the trusted root when the
//! check needs one (`root.json`), a one-line `README.md` and the expected outcome
//! (`expect.json`):
//!
//! ```json
//! {"role": "targets", "outcome": "reject", "error_contains": "duplicate",
//!  "now": "2030-01-01T00:00:00Z", "valid": 1, "invalid": 1, "invalid_contains": "not hex",
//!  "round_trip": true}
//! ```
//!
//! Only `role` and `outcome` are required. The check is the one every client makes: strict
//! parse as `Signed<role>`, threshold of `role` under the trusted root (the fixture's
//! `root.json`, or the metadata itself for a root), expiry against `now` when given, and
//! byte-for-byte re-serialisation when `round_trip` is set.
//!
//! The files are made by `generate_fixtures` (run with `--ignored` to rewrite them); the
//! generator is deterministic (fixed ed25519 seeds), and `fixtures_are_reproducible` checks
//! that the committed files are exactly what it makes.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use time::OffsetDateTime;
use tuf_core::{
    canonical, Expires, Metadata, PrivateKey, Role, Root, Signed, Signer, Snapshot, Targets,
    Timestamp,
};

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

// --- The data-driven check ------------------------------------------------------------------

#[test]
fn every_fixture_has_the_expected_outcome() {
    let mut names: Vec<PathBuf> = fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    names.sort();
    assert!(names.len() >= 18, "fixture catalogue shrank: {names:?}");
    let mut failures = Vec::new();
    for dir in &names {
        if let Err(e) = check_fixture(dir) {
            failures.push(format!(
                "{}: {e}",
                dir.file_name().unwrap().to_string_lossy()
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn a_fixture_without_expectation_fails_the_check() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("README.md"), "An attack.\n").unwrap();
    fs::write(dir.path().join("metadata.json"), "{}").unwrap();
    let err = check_fixture(dir.path()).unwrap_err();
    assert!(err.contains("expect.json"), "{err}");
}

#[test]
fn the_check_notices_a_wrong_expectation() {
    // Copy a fixture that must be rejected and claim it is accepted: the check must fail.
    let src = fixtures_dir().join("bad-signature");
    let dir = tempfile::tempdir().unwrap();
    for f in ["README.md", "metadata.json", "root.json"] {
        fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    fs::write(
        dir.path().join("expect.json"),
        r#"{"role": "targets", "outcome": "accept"}"#,
    )
    .unwrap();
    assert!(check_fixture(dir.path()).is_err());
}

/// What the client check produced: an error, or the verification counts.
struct Outcome {
    valid: u32,
    invalid: Vec<String>,
}

fn check_fixture(dir: &Path) -> Result<(), String> {
    let expect_path = dir.join("expect.json");
    let expect: Value = serde_json::from_slice(
        &fs::read(&expect_path).map_err(|e| format!("no expect.json: {e}"))?,
    )
    .map_err(|e| format!("expect.json: {e}"))?;
    let readme =
        fs::read_to_string(dir.join("README.md")).map_err(|e| format!("README.md: {e}"))?;
    if readme.trim().is_empty() || readme.trim().lines().count() != 1 {
        return Err("README.md must be one line: what the attacker tries, what must happen".into());
    }
    let known = [
        "role",
        "outcome",
        "error_contains",
        "now",
        "valid",
        "invalid",
        "invalid_contains",
        "round_trip",
    ];
    for k in expect
        .as_object()
        .ok_or("expect.json is not an object")?
        .keys()
    {
        if !known.contains(&k.as_str()) {
            return Err(format!("expect.json: unknown field {k:?}"));
        }
    }
    let role = expect["role"].as_str().ok_or("expect.json: role missing")?;
    let outcome = expect["outcome"]
        .as_str()
        .ok_or("expect.json: outcome missing")?;
    let now = match expect.get("now") {
        Some(v) => Some(
            v.as_str()
                .ok_or("now is not a string")?
                .parse::<Expires>()
                .map_err(|e| e.to_string())?
                .datetime(),
        ),
        None => None,
    };
    let bytes = fs::read(dir.join("metadata.json")).map_err(|e| format!("metadata.json: {e}"))?;
    let root_bytes = fs::read(dir.join("root.json")).ok();
    let round_trip = expect["round_trip"].as_bool().unwrap_or(false);
    let result = match role {
        "root" => run::<Root>(&bytes, root_bytes.as_deref(), now, round_trip),
        "targets" => run::<Targets>(&bytes, root_bytes.as_deref(), now, round_trip),
        "snapshot" => run::<Snapshot>(&bytes, root_bytes.as_deref(), now, round_trip),
        "timestamp" => run::<Timestamp>(&bytes, root_bytes.as_deref(), now, round_trip),
        other => return Err(format!("expect.json: unknown role {other:?}")),
    };
    match (outcome, result) {
        ("reject", Ok(_)) => Err("accepted, expected a rejection".into()),
        ("reject", Err(e)) => {
            let want = expect["error_contains"]
                .as_str()
                .ok_or("a rejection needs error_contains")?;
            if e.contains(want) {
                Ok(())
            } else {
                Err(format!(
                    "rejected with {e:?}, expected it to contain {want:?}"
                ))
            }
        }
        ("accept", Err(e)) => Err(format!("rejected: {e}")),
        ("accept", Ok(o)) => {
            if let Some(n) = expect["valid"].as_u64() {
                if u64::from(o.valid) != n {
                    return Err(format!("{} distinct valid keys, expected {n}", o.valid));
                }
            }
            if let Some(n) = expect["invalid"].as_u64() {
                if o.invalid.len() as u64 != n {
                    return Err(format!("invalid signatures {:?}, expected {n}", o.invalid));
                }
            }
            if let Some(want) = expect["invalid_contains"].as_str() {
                if !o.invalid.iter().any(|r| r.contains(want)) {
                    return Err(format!(
                        "no invalid signature says {want:?}: {:?}",
                        o.invalid
                    ));
                }
            }
            Ok(())
        }
        (other, _) => Err(format!("expect.json: unknown outcome {other:?}")),
    }
}

fn run<T: Metadata>(
    bytes: &[u8],
    root_bytes: Option<&[u8]>,
    now: Option<OffsetDateTime>,
    round_trip: bool,
) -> Result<Outcome, String> {
    let md = Signed::<T>::from_slice(bytes).map_err(|e| e.to_string())?;
    let root = match root_bytes {
        Some(b) => Signed::<Root>::from_slice(b).map_err(|e| format!("trusted root: {e}"))?,
        None if T::TYPE == "root" => {
            Signed::<Root>::from_slice(bytes).map_err(|e| format!("as root: {e}"))?
        }
        None => return Err("fixture needs a root.json".into()),
    };
    let role = Role::ALL
        .into_iter()
        .find(|r| r.as_str() == T::TYPE)
        .ok_or("not a top-level role")?;
    let v = md
        .verify_role(T::TYPE, root.signed.role(role), &root.signed.keys)
        .require()
        .map_err(|e| e.to_string())?;
    if let Some(now) = now {
        if md.signed.expires().is_expired_at(now) {
            return Err(format!("expired at {}", md.signed.expires()));
        }
    }
    if round_trip && md.to_bytes() != bytes {
        return Err("re-serialised bytes differ from the file".into());
    }
    Ok(Outcome {
        valid: v.distinct_valid,
        invalid: v.invalid.iter().map(|(_, r)| r.clone()).collect(),
    })
}

// --- The generator --------------------------------------------------------------------------

#[test]
#[ignore = "rewrites tests/fixtures; run after changing the generator"]
fn generate_fixtures() {
    let out = fixtures_dir();
    for f in catalogue() {
        f.write(&out);
    }
}

#[test]
fn fixtures_are_reproducible() {
    let tmp = tempfile::tempdir().unwrap();
    let made = catalogue();
    for f in &made {
        f.write(tmp.path());
    }
    for f in &made {
        for (name, _) in f.files() {
            let committed = fixtures_dir().join(f.name).join(&name);
            let fresh = tmp.path().join(f.name).join(&name);
            assert_eq!(
                fs::read(&committed).unwrap_or_default(),
                fs::read(&fresh).unwrap(),
                "{} differs from the generator: run `cargo test -p tuf-core --test fixtures -- \
                 --ignored generate_fixtures`",
                committed.display()
            );
        }
    }
    // Every committed directory comes from the generator (hand-made ones would drift).
    for e in fs::read_dir(fixtures_dir()).unwrap() {
        let name = e.unwrap().file_name();
        assert!(
            made.iter().any(|f| name.to_str() == Some(f.name)),
            "{name:?} is not made by the generator"
        );
    }
}

struct Fixture {
    name: &'static str,
    readme: &'static str,
    expect: Value,
    metadata: Vec<u8>,
    root: Option<Vec<u8>>,
}

impl Fixture {
    fn files(&self) -> Vec<(String, Vec<u8>)> {
        let mut files = vec![
            (
                "README.md".to_owned(),
                format!("{}\n", self.readme).into_bytes(),
            ),
            ("expect.json".to_owned(), pretty(&self.expect)),
            ("metadata.json".to_owned(), self.metadata.clone()),
        ];
        if let Some(root) = &self.root {
            files.push(("root.json".to_owned(), root.clone()));
        }
        files
    }

    fn write(&self, base: &Path) {
        let dir = base.join(self.name);
        fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in self.files() {
            fs::write(dir.join(name), bytes).unwrap();
        }
    }
}

fn pretty(v: &Value) -> Vec<u8> {
    let mut b = serde_json::to_vec_pretty(v).unwrap();
    b.push(b'\n');
    b
}

/// A fixed ed25519 key: the PKCS#8 v1 encoding of a constant seed.
fn key(n: u8) -> PrivateKey {
    let mut der = hex::decode("302e020100300506032b657004220420").unwrap();
    der.extend_from_slice(&[n; 32]);
    PrivateKey::from_pkcs8_der("ed25519", "ed25519", &der).unwrap()
}

fn kid(k: &PrivateKey) -> String {
    k.key_id().as_str().to_owned()
}

const EXPIRES: &str = "2030-01-01T00:00:00Z";

/// A root's `signed` object giving each role the listed keys and threshold.
fn root_signed(keys: &[&PrivateKey], roles: [(&[&PrivateKey], u64); 4]) -> Value {
    let mut key_map = serde_json::Map::new();
    for k in keys {
        key_map.insert(kid(k), serde_json::to_value(k.public_key()).unwrap());
    }
    let mut role_map = serde_json::Map::new();
    for (role, (ks, threshold)) in Role::ALL.into_iter().zip(roles) {
        let ids: Vec<String> = ks.iter().map(|k| kid(k)).collect();
        role_map.insert(
            role.as_str().into(),
            json!({"keyids": ids, "threshold": threshold}),
        );
    }
    json!({
        "_type": "root",
        "spec_version": "1.0.34",
        "consistent_snapshot": true,
        "version": 1,
        "expires": EXPIRES,
        "keys": key_map,
        "roles": role_map,
    })
}

/// Root with `k1` for every role, threshold 1.
fn simple_root() -> Value {
    let k1 = key(1);
    let one: &[&PrivateKey] = &[&k1];
    root_signed(&[&k1], [(one, 1), (one, 1), (one, 1), (one, 1)])
}

fn targets_signed() -> Value {
    json!({
        "_type": "targets",
        "spec_version": "1.0.34",
        "version": 3,
        "expires": EXPIRES,
        "targets": {
            "firmware/board-a/image-1.2.3.bin": {
                "length": 1048576,
                "hashes": {"sha256": tuf_core::hash::sha256_hex(b"image-1.2.3")},
                "custom": {"hwid": "board-a", "version": "1.2.3"}
            }
        }
    })
}

fn sig(k: &PrivateKey, signed: &Value) -> Value {
    let msg = canonical::to_vec(signed).unwrap();
    json!({"keyid": kid(k), "sig": hex::encode(k.sign(&msg).unwrap())})
}

fn envelope(signed: Value, sigs: Vec<Value>) -> Value {
    json!({"signatures": sigs, "signed": signed})
}

fn signed_by(signed: Value, keys: &[&PrivateKey]) -> Value {
    let sigs = keys.iter().map(|k| sig(k, &signed)).collect();
    envelope(signed, sigs)
}

fn expect_reject(role: &str, error: &str) -> Value {
    json!({"role": role, "outcome": "reject", "error_contains": error})
}

fn catalogue() -> Vec<Fixture> {
    let k1 = key(1);
    let k2 = key(2);
    let root = pretty(&signed_by(simple_root(), &[&k1]));
    let good_targets = signed_by(targets_signed(), &[&k1]);
    let mut out = Vec::new();
    let mut add = |name, readme, expect, metadata: Vec<u8>, root: Option<&Vec<u8>>| {
        out.push(Fixture {
            name,
            readme,
            expect,
            metadata,
            root: root.cloned(),
        })
    };

    add(
        "valid-targets",
        "Control case: correctly signed, unexpired targets metadata must be accepted.",
        json!({"role": "targets", "outcome": "accept", "now": "2029-12-31T23:59:59Z", "valid": 1, "invalid": 0}),
        pretty(&good_targets),
        Some(&root),
    );

    let mut v = good_targets.clone();
    let s = v["signatures"][0]["sig"].as_str().unwrap().to_owned();
    let flipped = format!("{}{}", if &s[..1] == "0" { "1" } else { "0" }, &s[1..]);
    v["signatures"][0]["sig"] = json!(flipped);
    add(
        "bad-signature",
        "The attacker serves targets with a corrupted signature: it must not count, so the threshold is not met.",
        expect_reject("targets", "threshold is 1"),
        pretty(&v),
        Some(&root),
    );

    let mut v = good_targets.clone();
    let first = v["signatures"][0].clone();
    v["signatures"].as_array_mut().unwrap().push(first);
    add(
        "duplicate-signature-keyids",
        "The attacker repeats one key's signature to count it twice: a signatures list naming a keyid twice is rejected.",
        expect_reject("targets", "more than once"),
        pretty(&v),
        Some(&root),
    );

    let two: &[&PrivateKey] = &[&k1, &k2];
    let one: &[&PrivateKey] = &[&k1];
    let root_t2 = pretty(&signed_by(
        root_signed(&[&k1, &k2], [(one, 1), (two, 2), (one, 1), (one, 1)]),
        &[&k1],
    ));
    add(
        "threshold-not-met",
        "The attacker holds one of two targets keys and signs alone: with threshold 2, one valid signature is rejected.",
        expect_reject("targets", "1 valid signature(s) from distinct trusted keys, threshold is 2"),
        pretty(&good_targets),
        Some(&root_t2),
    );

    let snapshot = json!({"_type": "snapshot", "spec_version": "1.0.34", "version": 1,
        "expires": EXPIRES, "meta": {"targets.json": {"version": 3}}});
    add(
        "wrong-type",
        "The attacker serves validly signed snapshot metadata where targets is expected: the _type mismatch is rejected.",
        expect_reject("targets", "_type \"snapshot\", expected \"targets\""),
        pretty(&signed_by(snapshot, &[&k1])),
        Some(&root),
    );

    let mut t = targets_signed();
    t["expires"] = json!("2024-06-01T12:00:00Z");
    add(
        "expired",
        "The attacker replays correctly signed targets whose expiry is exactly now (freeze attack): metadata with expires <= now is rejected.",
        json!({"role": "targets", "outcome": "reject", "error_contains": "expired", "now": "2024-06-01T12:00:00Z"}),
        pretty(&signed_by(t, &[&k1])),
        Some(&root),
    );

    let text = String::from_utf8(pretty(&good_targets)).unwrap();
    let floated = text.replacen("\"length\": 1048576", "\"length\": 1048576.0", 1);
    assert_ne!(text, floated);
    add(
        "float-in-json",
        "The attacker writes a number as a float (1048576.0), which canonical JSON cannot express: the parse is rejected.",
        expect_reject("targets", "integer"),
        floated.into_bytes(),
        Some(&root),
    );

    // Duplicate keys: the signature covers `"version": 1`; a last-wins parser would see 2.
    let text = String::from_utf8(pretty(&signed_by(simple_root(), &[&k1]))).unwrap();
    let dup = text.replacen("\"version\": 1", "\"version\": 1,\n    \"version\": 2", 1);
    assert_ne!(text, dup);
    add(
        "duplicate-json-key",
        "The attacker repeats a key (\"version\") so parsers disagree on its value: duplicate object keys are rejected.",
        expect_reject("root", "duplicate object key \"version\""),
        dup.into_bytes(),
        None,
    );

    let full = pretty(&good_targets);
    add(
        "truncated-file",
        "The attacker (or a broken transfer) serves half a file: it is rejected as invalid JSON, never partially used.",
        expect_reject("targets", "invalid JSON"),
        full[..full.len() / 2].to_vec(),
        Some(&root),
    );

    let text = String::from_utf8(pretty(&good_targets)).unwrap();
    let huge = text.replacen(
        "\"version\": 3",
        "\"version\": 340282366920938463463374607431768211457",
        1,
    );
    assert_ne!(text, huge);
    add(
        "huge-integer",
        "The attacker sets a version beyond 64 bits to overflow or wrap a rollback check: integers that do not fit are rejected.",
        expect_reject("targets", "integer"),
        huge.into_bytes(),
        Some(&root),
    );

    // The root lists k1's ed25519 key material under keytype rsa: no signature by it counts.
    let mut r = simple_root();
    let id = kid(&k1);
    r["keys"][&id]["keytype"] = json!("rsa");
    r["keys"][&id]["scheme"] = json!("rsassa-pss-sha256");
    add(
        "wrong-key-type-for-scheme",
        "The root declares an ed25519 key as rsa/rsassa-pss-sha256: an ed25519 signature must not verify under a mismatched type.",
        expect_reject("targets", "threshold is 1"),
        pretty(&good_targets),
        Some(&pretty(&signed_by(r, &[&k1]))),
    );

    let root_k12 = pretty(&signed_by(
        root_signed(&[&k1, &k2], [(one, 1), (two, 1), (one, 1), (one, 1)]),
        &[&k1],
    ));
    let mut v = good_targets.clone();
    v["signatures"]
        .as_array_mut()
        .unwrap()
        .push(json!({"keyid": kid(&k2), "sig": "ab".repeat(64)}));
    add(
        "invalid-extra-signature",
        "The attacker appends a bogus signature by a second role key: it is reported but ignored, and the met threshold still verifies.",
        json!({"role": "targets", "outcome": "accept", "valid": 1, "invalid": 1, "invalid_contains": "does not verify"}),
        pretty(&v),
        Some(&root_k12),
    );

    // One key under two key IDs; the second ID is the SHA-256 of the key with its hex public
    // value upper-cased: a different string, the same key.
    let mut r = root_signed(&[&k1], [(one, 1), (one, 2), (one, 1), (one, 1)]);
    let mut alias_key = serde_json::to_value(k1.public_key()).unwrap();
    let upper = k1.public_key().keyval.public.to_uppercase();
    alias_key["keyval"]["public"] = json!(upper);
    let alias_id = tuf_core::hash::sha256_hex(&canonical::to_vec(&alias_key).unwrap());
    r["keys"][&alias_id] = alias_key;
    r["roles"]["targets"]["keyids"] = json!([kid(&k1), alias_id]);
    let t = targets_signed();
    let mut alias_sig = sig(&k1, &t);
    alias_sig["keyid"] = json!(alias_id);
    let v = envelope(t.clone(), vec![sig(&k1, &t), alias_sig]);
    add(
        "same-key-two-keyids",
        "The root lists one key twice (second ID with the hex upper-cased) and the attacker signs under both IDs: the key counts once, so threshold 2 fails.",
        expect_reject("targets", "1 valid signature(s) from distinct trusted keys, threshold is 2"),
        pretty(&v),
        Some(&pretty(&signed_by(r, &[&k1]))),
    );

    let mut t = targets_signed();
    let mut deep = json!("bottom");
    for _ in 0..200 {
        deep = json!([deep]);
    }
    t["targets"]["firmware/board-a/image-1.2.3.bin"]["custom"] = deep;
    add(
        "nested-too-deep",
        "The attacker nests arrays 200 deep to exhaust the parser's stack: the document is rejected with an error, not a crash.",
        expect_reject("targets", "recursion limit"),
        serde_json::to_vec(&signed_by(t, &[&k1])).unwrap(),
        Some(&root),
    );

    let mut r = simple_root();
    r["roles"].as_object_mut().unwrap().remove("timestamp");
    add(
        "missing-role-in-root",
        "The attacker's root omits the timestamp role so later checks find no keys: a root without all four roles is rejected.",
        expect_reject("root", "timestamp is missing"),
        pretty(&signed_by(r, &[&k1])),
        None,
    );

    let mut r = simple_root();
    r["roles"]["targets"]["threshold"] = json!(0);
    add(
        "zero-threshold",
        "The attacker's root sets the targets threshold to 0 so that no signature is needed: thresholds below 1 are rejected.",
        expect_reject("root", "threshold"),
        pretty(&signed_by(r, &[&k1])),
        None,
    );

    let mut t = targets_signed();
    t["expires"] = json!("2030-01-01T00:00:00+00:00");
    add(
        "bad-expires-format",
        "The attacker writes expires with an offset instead of Z, which parsers read differently: anything but YYYY-MM-DDTHH:MM:SSZ is rejected.",
        expect_reject("targets", "YYYY-MM-DDTHH:MM:SSZ"),
        pretty(&signed_by(t, &[&k1])),
        Some(&root),
    );

    let mut v = good_targets.clone();
    v["signatures"][0]["sig"] = json!("zz".repeat(64));
    add(
        "non-hex-signature",
        "The attacker's only signature is not hex: it never counts and the threshold is not met.",
        expect_reject("targets", "threshold is 1"),
        pretty(&v),
        Some(&root),
    );

    // Unknown fields at every level, signed: they must survive parsing and re-serialisation.
    let mut r = simple_root();
    let id = kid(&k1);
    r["x-changelog"] = json!([{"who": "owner@example.com", "why": "rotate \"root\"\nkey", "when": "2029-01-01T00:00:00Z"}]);
    r["x-key-owners"] = json!({&id: "Zoë \u{1f600}"});
    r["roles"]["root"]["x-role-note"] = json!(["a", {"b": null}]);
    r["keys"][&id]["x-key-origin"] = json!("hsm");
    r["keys"][&id]["keyval"]["x-keyval-extra"] = json!(7);
    let mut v = signed_by(r, &[&k1]);
    v["signatures"][0]["x-sig-note"] = json!(true);
    v["x-envelope"] = json!({"z": -1, "a": ""});
    let env = Signed::<Root>::from_value(v).unwrap();
    add(
        "unknown-fields",
        "A newer peer adds fields at every level: they are kept, covered by the signature, and the file re-serialises byte for byte.",
        json!({"role": "root", "outcome": "accept", "round_trip": true, "valid": 1}),
        env.to_bytes(),
        None,
    );

    let t = targets_signed();
    let pretty_bytes = serde_json::to_vec_pretty(&t).unwrap();
    let v = envelope(
        t,
        vec![json!({"keyid": kid(&k1), "sig": hex::encode(k1.sign(&pretty_bytes).unwrap())})],
    );
    add(
        "signature-over-non-canonical-bytes",
        "The attacker's signature covers the pretty-printed bytes, not the canonical form: it does not verify.",
        expect_reject("targets", "threshold is 1"),
        pretty(&v),
        Some(&root),
    );

    // k2 is a trusted key of the root role only.
    let root_k2_root_only = pretty(&signed_by(
        root_signed(&[&k1, &k2], [(two, 1), (one, 1), (one, 1), (one, 1)]),
        &[&k1],
    ));
    add(
        "signature-by-key-outside-role",
        "The attacker signs targets with the root's other key, trusted for no targets: signatures outside the role never count.",
        expect_reject("targets", "threshold is 1"),
        pretty(&signed_by(targets_signed(), &[&k2])),
        Some(&root_k2_root_only),
    );

    let mut t = targets_signed();
    t["spec_version"] = json!("2.0.0");
    add(
        "unsupported-spec-version",
        "Metadata claims spec_version 2.0.0, whose rules we do not know: it is rejected rather than guessed at.",
        expect_reject("targets", "spec_version"),
        pretty(&signed_by(t, &[&k1])),
        Some(&root),
    );

    let mut text = pretty(&good_targets);
    text.extend_from_slice(b"{\"signed\": {}}\n");
    add(
        "trailing-data",
        "The attacker appends a second document after a valid one so parsers disagree on which counts: trailing data is rejected.",
        expect_reject("targets", "trailing characters"),
        text,
        Some(&root),
    );

    let text = String::from_utf8(pretty(&good_targets)).unwrap();
    let lone = text.replacen("\"hwid\": \"board-a\"", "\"hwid\": \"board-\\ud800\"", 1);
    assert_ne!(text, lone);
    add(
        "lone-surrogate",
        "A string holds an unpaired UTF-16 surrogate escape, which has no UTF-8 (and so no canonical) form: it is rejected.",
        expect_reject("targets", "invalid JSON"),
        lone.into_bytes(),
        Some(&root),
    );

    // A delegation that claims a top-level role name.
    let mut t = targets_signed();
    t["delegations"] = json!({"keys": {}, "roles": [{"name": "timestamp", "keyids": [kid(&k2)],
        "threshold": 1, "terminating": true, "paths": ["*"]}]});
    add(
        "delegation-to-top-level-role-name",
        "Targets delegates to a role named \"timestamp\" to confuse role lookup: delegating a top-level role name is rejected.",
        expect_reject("targets", "top-level role"),
        pretty(&signed_by(t, &[&k1])),
        Some(&root),
    );

    let mut t = targets_signed();
    t["targets"]["../../../etc/shadow"] = t["targets"]["firmware/board-a/image-1.2.3.bin"].clone();
    add(
        "target-path-traversal",
        "Validly signed targets name a file ../../../etc/shadow to escape the download directory: the spec allows any path, so it parses; clients must never use it as a file name unencoded (tuf-agent percent-encodes it).",
        json!({"role": "targets", "outcome": "accept", "valid": 1, "invalid": 0}),
        pretty(&signed_by(t, &[&k1])),
        Some(&root),
    );

    let mut t = targets_signed();
    t["delegations"] = json!({"keys": {}, "roles": [{"name": "../root", "keyids": [kid(&k2)],
        "threshold": 1, "terminating": true, "paths": ["*"]}]});
    add(
        "delegated-role-name-traversal",
        "Targets delegates to a role named ../root so its metadata file would land outside the cache: the name parses (names are free-form), and clients percent-encode it for URLs and file names.",
        json!({"role": "targets", "outcome": "accept", "valid": 1, "invalid": 0}),
        pretty(&signed_by(t, &[&k1])),
        Some(&root),
    );

    let mut r = simple_root();
    r["keys"]["sphincs-key"] = json!({"keytype": "sphincs+", "scheme": "sphincs-shake-256f",
        "keyval": {"public": "00ff"}});
    r["roles"]["targets"]["keyids"] = json!([kid(&k1), "sphincs-key"]);
    let t = targets_signed();
    let v = envelope(
        t.clone(),
        vec![sig(&k1, &t), json!({"keyid": "sphincs-key", "sig": "00ff"})],
    );
    add(
        "unknown-keytype",
        "The root lists a key of a type we do not implement: the root still parses, that key's signature simply never counts.",
        json!({"role": "targets", "outcome": "accept", "valid": 1, "invalid": 1, "invalid_contains": "unsupported keytype"}),
        pretty(&v),
        Some(&pretty(&signed_by(r, &[&k1]))),
    );

    out
}

#[test]
fn fixture_keys_are_deterministic() {
    assert_eq!(kid(&key(1)), kid(&key(1)));
    assert_ne!(kid(&key(1)), kid(&key(2)));
    let sig_a = key(1).sign(b"m").unwrap();
    assert_eq!(sig_a, key(1).sign(b"m").unwrap());
}
