//! The attack and malformation catalogue: every directory under `tests/fixtures/` is one
//! attack, with the metadata the attacker serves (`metadata.json`), the trusted root when the
//! check needs one (`root.json`), a one-line `README.md` and the expected outcome
//! (`expect.json`), ours and python-tuf's:
//!
//! ```json
//! {"role": "targets", "outcome": "reject", "error": "ThresholdNotMet",
//!  "error_contains": "role targets: 0 valid signature(s) from distinct trusted keys, threshold is 1",
//!  "invalid": 1, "ignored": 0, "invalid_contains": "does not verify",
//!  "now": "2030-01-01T00:00:00Z", "valid": 1, "round_trip": true,
//!  "python_tuf": {"outcome": "reject", "error": "UnsignedMetadataError",
//!                 "error_contains": "signed by 0/1 keys", "reason": "..."}}
//! ```
//!
//! The check is the one every client makes: strict parse as `Signed<role>`, threshold of
//! `role` under the trusted root (the fixture's `root.json`, or the metadata itself for a
//! root), expiry against `now` when given, and byte-for-byte re-serialisation when
//! `round_trip` is set. A refusal names itself: `error` is the `tuf_core::Error` variant (or
//! `Expired`, the expiry check), `error_contains` the specific text; a threshold refusal also
//! says why each signature did not count (`invalid`, `ignored`, `invalid_contains`). An
//! acceptance states how many distinct keys signed (`valid`).
//!
//! `python_tuf` is the verdict of an independent implementation (python-tuf, driven by
//! `tests/python/fixtures.py`) on the same files, checked by
//! `python_tuf_gives_the_recorded_verdict_on_every_fixture`; where it differs from ours,
//! `reason` says why, so every difference is a reviewed fact.
//!
//! The files are made by `generate_fixtures` (run with `--ignored` to rewrite them); the
//! generator is deterministic (fixed ed25519 seeds), and `fixtures_are_reproducible` checks
//! that the committed files are exactly what it makes.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};
use time::OffsetDateTime;
use tuf_core::{
    canonical, Error, Expires, Metadata, PrivateKey, Role, Root, Signed, Signer, Snapshot, Targets,
    Timestamp, Verification,
};

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn fixture_dirs() -> Vec<PathBuf> {
    let mut names: Vec<PathBuf> = fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    names.sort();
    assert!(names.len() >= 28, "fixture catalogue shrank: {names:?}");
    names
}

// --- The data-driven check ------------------------------------------------------------------

#[test]
fn every_fixture_has_the_expected_outcome() {
    let mut failures = Vec::new();
    for dir in &fixture_dirs() {
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
fn python_tuf_gives_the_recorded_verdict_on_every_fixture() {
    let Some(python) = common::python() else {
        return;
    };
    let dirs = fixture_dirs();
    let verdicts = python_verdicts(&python, &dirs);
    let mut failures = Vec::new();
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let expect = read_expect(dir).unwrap();
        if let Err(e) = check_python_verdict(&expect, &verdicts[&name]) {
            failures.push(format!("{name}: {e}"));
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
    assert!(err.starts_with("no expect.json: "), "{err}");
}

/// A copy of fixture `name` whose expect.json is changed by `edit`, checked.
fn check_edited(name: &str, edit: impl FnOnce(&mut Value)) -> Result<(), String> {
    let src = fixtures_dir().join(name);
    let dir = tempfile::tempdir().unwrap();
    for e in fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
    }
    let mut expect = read_expect(&src).unwrap();
    edit(&mut expect);
    fs::write(dir.path().join("expect.json"), pretty(&expect)).unwrap();
    check_fixture(dir.path())
}

#[test]
fn the_check_notices_a_wrong_expectation() {
    check_edited("bad-signature", |_| ()).unwrap();
    let accepted = check_edited("bad-signature", |e| {
        *e = json!({"role": "targets", "outcome": "accept", "valid": 1, "invalid": 0,
            "python_tuf": e["python_tuf"].clone()});
    });
    assert_eq!(accepted.unwrap_err(), "rejected: ThresholdNotMet: role targets: 0 valid signature(s) from distinct trusted keys, threshold is 1");
    let variant = check_edited("bad-signature", |e| e["error"] = json!("Json"));
    assert_eq!(
        variant.unwrap_err(),
        "refused with ThresholdNotMet, expected Json"
    );
    // The right refusal for the wrong reason: a signature that "does not verify" is not one
    // that is "not hex".
    let why = check_edited("bad-signature", |e| {
        e["invalid_contains"] = json!("not hex")
    })
    .unwrap_err();
    assert!(
        why.starts_with("no invalid signature says \"not hex\""),
        "{why}"
    );
    let ignored = check_edited("signature-by-key-outside-role", |e| e["ignored"] = json!(0));
    assert_eq!(
        ignored.unwrap_err(),
        "1 signature(s) by keys outside the role, expected 0"
    );
    let unnamed = check_edited("truncated-file", |e| {
        e.as_object_mut().unwrap().remove("error");
    });
    assert_eq!(
        unnamed.unwrap_err(),
        "a rejection names its error variant (error) and text (error_contains)"
    );
}

#[test]
fn the_python_check_notices_a_wrong_expectation() {
    let verdict = |v: Value| serde_json::from_value::<Value>(v).unwrap();
    let expect = json!({"outcome": "reject",
        "python_tuf": {"outcome": "reject", "error": "UnsignedMetadataError",
                       "error_contains": "signed by 0/1 keys"}});
    check_python_verdict(
        &expect,
        &verdict(
            json!({"outcome": "reject", "error": "UnsignedMetadataError",
            "message": "targets was signed by 0/1 keys"}),
        ),
    )
    .unwrap();
    let other = check_python_verdict(
        &expect,
        &verdict(json!({"outcome": "reject", "error": "DeserializationError",
            "message": "Failed to deserialize JSON"})),
    );
    assert_eq!(
        other.unwrap_err(),
        "python-tuf refused with DeserializationError (Failed to deserialize JSON), expected \
         UnsignedMetadataError"
    );
    let accepted = check_python_verdict(
        &expect,
        &verdict(json!({"outcome": "accept", "valid": 1, "invalid": 0})),
    );
    assert_eq!(
        accepted.unwrap_err(),
        "python-tuf accepted, expected it to reject"
    );
    // A difference from our outcome must say why.
    let unexplained = json!({"outcome": "reject",
        "python_tuf": {"outcome": "accept", "valid": 1}});
    assert_eq!(
        check_python_verdict(
            &unexplained,
            &verdict(json!({"outcome": "accept", "valid": 1, "invalid": 0}))
        )
        .unwrap_err(),
        "python_tuf differs from our outcome without a reason"
    );
}

/// What the client check produced: the verification of an accepted file.
struct Outcome {
    verification: Verification,
}

/// Why the client check refused a file: the error variant, its text, and the verification
/// when the refusal is a threshold not met.
#[derive(Debug)]
struct Refusal {
    variant: &'static str,
    message: String,
    verification: Option<Box<Verification>>,
}

impl Refusal {
    fn new(e: Error, verification: Option<Verification>) -> Self {
        Self {
            variant: variant(&e),
            message: e.to_string(),
            verification: verification.map(Box::new),
        }
    }
}

/// The name of `e`'s variant, as expect.json's `error` spells it.
fn variant(e: &Error) -> &'static str {
    match e {
        Error::Json(_) => "Json",
        Error::Field { .. } => "Field",
        Error::WrongType { .. } => "WrongType",
        Error::DuplicateSignature(_) => "DuplicateSignature",
        Error::ThresholdNotMet { .. } => "ThresholdNotMet",
        Error::BadExpires(_) => "BadExpires",
        Error::Key(_) => "Key",
        Error::Signing(_) => "Signing",
        _ => "unknown variant (add it to fixtures.rs)",
    }
}

const KNOWN_FIELDS: [&str; 11] = [
    "role",
    "outcome",
    "error",
    "error_contains",
    "now",
    "valid",
    "invalid",
    "ignored",
    "invalid_contains",
    "round_trip",
    "python_tuf",
];

fn read_expect(dir: &Path) -> Result<Value, String> {
    let bytes = fs::read(dir.join("expect.json")).map_err(|e| format!("no expect.json: {e}"))?;
    let expect: Value = serde_json::from_slice(&bytes).map_err(|e| format!("expect.json: {e}"))?;
    for k in expect
        .as_object()
        .ok_or("expect.json is not an object")?
        .keys()
    {
        if !KNOWN_FIELDS.contains(&k.as_str()) {
            return Err(format!("expect.json: unknown field {k:?}"));
        }
    }
    Ok(expect)
}

fn check_fixture(dir: &Path) -> Result<(), String> {
    let expect = read_expect(dir)?;
    let readme =
        fs::read_to_string(dir.join("README.md")).map_err(|e| format!("README.md: {e}"))?;
    if readme.trim().is_empty() || readme.trim().lines().count() != 1 {
        return Err("README.md must be one line: what the attacker tries, what must happen".into());
    }
    if !expect["python_tuf"].is_object() {
        return Err("expect.json: python_tuf (python-tuf's verdict) missing".into());
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
        ("reject", Err(refusal)) => check_refusal(&expect, &refusal),
        ("accept", Err(r)) => Err(format!("rejected: {}: {}", r.variant, r.message)),
        ("accept", Ok(o)) => {
            if expect["valid"].as_u64().is_none() {
                return Err("an acceptance states how many distinct keys signed (valid)".into());
            }
            check_signatures(&expect, &o.verification)
        }
        (other, _) => Err(format!("expect.json: unknown outcome {other:?}")),
    }
}

/// The refusal is the expected one: same variant, the expected text, and for a threshold not
/// met, the expected reasons why signatures did not count.
fn check_refusal(expect: &Value, refusal: &Refusal) -> Result<(), String> {
    let (Some(want_variant), Some(want_text)) =
        (expect["error"].as_str(), expect["error_contains"].as_str())
    else {
        return Err("a rejection names its error variant (error) and text (error_contains)".into());
    };
    if refusal.variant != want_variant {
        return Err(format!(
            "refused with {}, expected {want_variant}",
            refusal.variant
        ));
    }
    if !refusal.message.contains(want_text) {
        return Err(format!(
            "refused with {:?}, expected it to contain {want_text:?}",
            refusal.message
        ));
    }
    match &refusal.verification {
        Some(v) => {
            if expect["invalid"].as_u64().is_none() || expect["ignored"].as_u64().is_none() {
                return Err(
                    "a threshold refusal says which signatures did not count (invalid, ignored)"
                        .into(),
                );
            }
            check_signatures(expect, v)
        }
        None => Ok(()),
    }
}

/// The counts and reasons expect.json states match the verification.
fn check_signatures(expect: &Value, v: &Verification) -> Result<(), String> {
    if let Some(n) = expect["valid"].as_u64() {
        if u64::from(v.distinct_valid) != n {
            return Err(format!(
                "{} distinct valid keys, expected {n}",
                v.distinct_valid
            ));
        }
    }
    if let Some(n) = expect["invalid"].as_u64() {
        if v.invalid.len() as u64 != n {
            return Err(format!("invalid signatures {:?}, expected {n}", v.invalid));
        }
    }
    if let Some(n) = expect["ignored"].as_u64() {
        if v.ignored.len() as u64 != n {
            return Err(format!(
                "{} signature(s) by keys outside the role, expected {n}",
                v.ignored.len()
            ));
        }
    }
    if let Some(want) = expect["invalid_contains"].as_str() {
        if !v.invalid.iter().all(|(_, r)| r.contains(want)) || v.invalid.is_empty() {
            return Err(format!(
                "no invalid signature says {want:?}, or not all do: {:?}",
                v.invalid
            ));
        }
    }
    Ok(())
}

fn run<T: Metadata>(
    bytes: &[u8],
    root_bytes: Option<&[u8]>,
    now: Option<OffsetDateTime>,
    round_trip: bool,
) -> Result<Outcome, Refusal> {
    let md = Signed::<T>::from_slice(bytes).map_err(|e| Refusal::new(e, None))?;
    let root = match root_bytes {
        Some(b) => Signed::<Root>::from_slice(b).map_err(|e| trusted_root(e, "root.json"))?,
        None if T::TYPE == "root" => {
            Signed::<Root>::from_slice(bytes).map_err(|e| trusted_root(e, "as root"))?
        }
        None => return Err(harness("fixture needs a root.json")),
    };
    let role = Role::ALL
        .into_iter()
        .find(|r| r.as_str() == T::TYPE)
        .ok_or_else(|| harness("not a top-level role"))?;
    let verification = md.verify_role(T::TYPE, root.signed.role(role), &root.signed.keys);
    if let Err(e) = verification.clone().require() {
        return Err(Refusal::new(e, Some(verification)));
    }
    if let Some(now) = now {
        if md.signed.expires().is_expired_at(now) {
            return Err(Refusal {
                variant: "Expired",
                message: format!("expired at {}", md.signed.expires()),
                verification: None,
            });
        }
    }
    if round_trip && md.to_bytes() != bytes {
        return Err(harness("re-serialised bytes differ from the file"));
    }
    Ok(Outcome { verification })
}

/// A refusal of the fixture itself (a broken root.json, a missing file): never what a
/// fixture expects.
fn harness(message: &str) -> Refusal {
    Refusal {
        variant: "fixture",
        message: message.to_owned(),
        verification: None,
    }
}

fn trusted_root(e: Error, what: &str) -> Refusal {
    harness(&format!("trusted root ({what}): {e}"))
}

// --- python-tuf's verdict -------------------------------------------------------------------

/// python-tuf's verdict on each fixture directory, by name.
fn python_verdicts(python: &Path, dirs: &[PathBuf]) -> BTreeMap<String, Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/fixtures.py");
    let out = Command::new(python)
        .arg(script)
        .args(dirs)
        .output()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", python.display()));
    assert!(
        out.status.success(),
        "fixtures.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verdicts: BTreeMap<String, Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(verdicts.len(), dirs.len(), "{verdicts:?}");
    verdicts
}

/// python-tuf's `verdict` is the one expect.json records under `python_tuf`.
fn check_python_verdict(expect: &Value, verdict: &Value) -> Result<(), String> {
    let want = &expect["python_tuf"];
    let want_outcome = want["outcome"]
        .as_str()
        .ok_or("expect.json: python_tuf.outcome missing")?;
    if want_outcome != expect["outcome"] && want["reason"].as_str().is_none() {
        return Err("python_tuf differs from our outcome without a reason".into());
    }
    let message = verdict["message"].as_str().unwrap_or("");
    match (want_outcome, verdict["outcome"].as_str()) {
        ("reject", Some("reject")) => {
            let (Some(error), Some(text)) =
                (want["error"].as_str(), want["error_contains"].as_str())
            else {
                return Err("python_tuf: a rejection names its error and error_contains".into());
            };
            if verdict["error"] != error {
                return Err(format!(
                    "python-tuf refused with {} ({message}), expected {error}",
                    verdict["error"].as_str().unwrap_or("?")
                ));
            }
            if !message.contains(text) {
                return Err(format!(
                    "python-tuf refused with {message:?}, expected it to contain {text:?}"
                ));
            }
            Ok(())
        }
        ("accept", Some("accept")) => {
            let Some(valid) = want["valid"].as_u64() else {
                return Err("python_tuf: an acceptance states valid".into());
            };
            if verdict["valid"] != valid {
                return Err(format!(
                    "python-tuf counted {} valid signatures, expected {valid}",
                    verdict["valid"]
                ));
            }
            Ok(())
        }
        ("reject", _) => Err("python-tuf accepted, expected it to reject".into()),
        (_, _) => Err(format!(
            "python-tuf rejected ({} {message}), expected it to accept",
            verdict["error"].as_str().unwrap_or("?")
        )),
    }
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

/// Our refusal: the error variant and its text.
fn reject(role: &str, variant: &str, text: &str, python: Value) -> Value {
    json!({"role": role, "outcome": "reject", "error": variant, "error_contains": text,
        "python_tuf": python})
}

/// Our refusal because the threshold was not met (`valid` distinct keys), with how many
/// role signatures did not verify (`invalid`, all saying `why`) and how many came from keys
/// outside the role (`ignored`).
fn below_threshold(
    valid: u32,
    needed: u32,
    invalid: u32,
    why: Option<&str>,
    ignored: u32,
) -> Value {
    let mut v = reject(
        "targets",
        "ThresholdNotMet",
        &format!(
            "role targets: {valid} valid signature(s) from distinct trusted keys, threshold is \
             {needed}"
        ),
        py_reject(
            "UnsignedMetadataError",
            &format!("targets was signed by {valid}/{needed} keys"),
        ),
    );
    v["valid"] = json!(valid);
    v["invalid"] = json!(invalid);
    v["ignored"] = json!(ignored);
    if let Some(why) = why {
        v["invalid_contains"] = json!(why);
    }
    v
}

/// python-tuf refuses, with this exception class and text.
fn py_reject(error: &str, text: &str) -> Value {
    json!({"outcome": "reject", "error": error, "error_contains": text})
}

/// python-tuf accepts, counting `valid` signatures.
fn py_accept(valid: u32) -> Value {
    json!({"outcome": "accept", "valid": valid})
}

/// `v` with the reason python-tuf's verdict differs from ours (in outcome or in why).
fn because(mut v: Value, reason: &str) -> Value {
    v["reason"] = json!(reason);
    v
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
        json!({"role": "targets", "outcome": "accept", "now": "2029-12-31T23:59:59Z", "valid": 1,
            "invalid": 0, "ignored": 0, "python_tuf": py_accept(1)}),
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
        below_threshold(0, 1, 1, Some("signature does not verify"), 0),
        pretty(&v),
        Some(&root),
    );

    let mut v = good_targets.clone();
    let first = v["signatures"][0].clone();
    v["signatures"].as_array_mut().unwrap().push(first);
    add(
        "duplicate-signature-keyids",
        "The attacker repeats one key's signature to count it twice: a signatures list naming a keyid twice is rejected.",
        reject(
            "targets",
            "DuplicateSignature",
            &format!("signatures list names keyid {} more than once", kid(&k1)),
            py_reject("DeserializationError", "Multiple signatures found for keyid"),
        ),
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
        below_threshold(1, 2, 0, None, 0),
        pretty(&good_targets),
        Some(&root_t2),
    );

    let snapshot = json!({"_type": "snapshot", "spec_version": "1.0.34", "version": 1,
        "expires": EXPIRES, "meta": {"targets.json": {"version": 3}}});
    add(
        "wrong-type",
        "The attacker serves validly signed snapshot metadata where targets is expected: the _type mismatch is rejected.",
        reject(
            "targets",
            "WrongType",
            "metadata has _type \"snapshot\", expected \"targets\"",
            py_reject("RepositoryError", "Expected 'targets', got 'snapshot'"),
        ),
        pretty(&signed_by(snapshot, &[&k1])),
        Some(&root),
    );

    let mut t = targets_signed();
    t["expires"] = json!("2024-06-01T12:00:00Z");
    add(
        "expired",
        "The attacker replays correctly signed targets whose expiry is exactly now (freeze attack): metadata with expires <= now is rejected.",
        json!({"role": "targets", "outcome": "reject", "error": "Expired",
            "error_contains": "expired at 2024-06-01T12:00:00Z", "now": "2024-06-01T12:00:00Z",
            "python_tuf": py_reject("ExpiredMetadataError", "targets expired at 2024-06-01 12:00:00")}),
        pretty(&signed_by(t, &[&k1])),
        Some(&root),
    );

    let text = String::from_utf8(pretty(&good_targets)).unwrap();
    let floated = text.replacen("\"length\": 1048576", "\"length\": 1048576.0", 1);
    assert_ne!(text, floated);
    add(
        "float-in-json",
        "The attacker writes a number as a float (1048576.0), which canonical JSON cannot express: the parse is rejected.",
        reject(
            "targets",
            "Json",
            "invalid JSON: number 1048576 is not an integer that fits in 64 bits; TUF metadata \
             allows integers only",
            because(
                py_reject("SerializationError", "I cannot encode 1048576.0"),
                "python-tuf parses the float and then cannot write the canonical bytes to verify",
            ),
        ),
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
        reject(
            "root",
            "Json",
            "duplicate object key \"version\"",
            because(
                py_reject("UnsignedMetadataError", "root was signed by 0/1 keys"),
                "Python's json keeps the last value (2), which the signature does not cover; \
                 with the signed value last, python-tuf would accept the file",
            ),
        ),
        dup.into_bytes(),
        None,
    );

    let full = pretty(&good_targets);
    add(
        "truncated-file",
        "The attacker (or a broken transfer) serves half a file: it is rejected as invalid JSON, never partially used.",
        reject(
            "targets",
            "Json",
            "invalid JSON: EOF while parsing",
            py_reject("DeserializationError", "JSONDecodeError"),
        ),
        full[..full.len() / 2].to_vec(),
        Some(&root),
    );

    // The version is beyond 64 bits and the signature covers exactly that: the only fault.
    let huge_version = "340282366920938463463374607431768211457";
    let t = targets_signed();
    let msg = String::from_utf8(canonical::to_vec(&t).unwrap()).unwrap();
    let huge_msg = msg.replacen("\"version\":3", &format!("\"version\":{huge_version}"), 1);
    assert_ne!(msg, huge_msg);
    let huge_sig = hex::encode(k1.sign(huge_msg.as_bytes()).unwrap());
    let text = String::from_utf8(pretty(&envelope(
        t,
        vec![json!({"keyid": kid(&k1), "sig": huge_sig})],
    )))
    .unwrap();
    let huge = text.replacen("\"version\": 3", &format!("\"version\": {huge_version}"), 1);
    assert_ne!(text, huge);
    add(
        "huge-integer",
        "The attacker sets a version beyond 64 bits to overflow or wrap a rollback check: integers that do not fit are rejected.",
        reject(
            "targets",
            "Json",
            "is not an integer that fits in 64 bits; TUF metadata allows integers only",
            because(
                py_accept(1),
                "Python integers are unbounded and python-tuf sets no bound on versions; we \
                 refuse integers beyond 64 bits, the width of our version comparisons",
            ),
        ),
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
        below_threshold(0, 1, 1, Some("public key is not PEM"), 0),
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
        json!({"role": "targets", "outcome": "accept", "valid": 1, "invalid": 1, "ignored": 0,
            "invalid_contains": "signature does not verify", "python_tuf": py_accept(1)}),
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
    let mut expect = below_threshold(1, 2, 0, None, 0);
    expect["python_tuf"] = because(
        py_accept(2),
        "python-tuf 7.0.1 counts distinct key IDs, not distinct keys: one key listed under two \
         IDs (hex case differs) meets threshold 2 there",
    );
    add(
        "same-key-two-keyids",
        "The root lists one key twice (second ID with the hex upper-cased) and the attacker signs under both IDs: the key counts once, so threshold 2 fails.",
        expect,
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
        reject(
            "targets",
            "Json",
            "invalid JSON: recursion limit exceeded",
            because(
                py_accept(1),
                "Python's json nests up to the interpreter's recursion limit (about 1000); we \
                 stop at 128 levels so a hostile file cannot exhaust a device's stack",
            ),
        ),
        serde_json::to_vec(&signed_by(t, &[&k1])).unwrap(),
        Some(&root),
    );

    let mut r = simple_root();
    r["roles"].as_object_mut().unwrap().remove("timestamp");
    add(
        "missing-role-in-root",
        "The attacker's root omits the timestamp role so later checks find no keys: a root without all four roles is rejected.",
        reject(
            "root",
            "Field",
            "signed (root): roles: timestamp is missing",
            py_reject("DeserializationError", "Role names must be the top-level metadata roles"),
        ),
        pretty(&signed_by(r, &[&k1])),
        None,
    );

    let mut r = simple_root();
    r["roles"]["targets"]["threshold"] = json!(0);
    add(
        "zero-threshold",
        "The attacker's root sets the targets threshold to 0 so that no signature is needed: thresholds below 1 are rejected.",
        reject(
            "root",
            "Field",
            "signed (root): threshold: 0 is not between 1 and 2^32-1",
            py_reject("DeserializationError", "threshold should be at least 1"),
        ),
        pretty(&signed_by(r, &[&k1])),
        None,
    );

    let mut t = targets_signed();
    t["expires"] = json!("2030-01-01T00:00:00+00:00");
    add(
        "bad-expires-format",
        "The attacker writes expires with an offset instead of Z, which parsers read differently: anything but YYYY-MM-DDTHH:MM:SSZ is rejected.",
        reject(
            "targets",
            "Field",
            "expires \"2030-01-01T00:00:00+00:00\" is not a UTC time of the form YYYY-MM-DDTHH:MM:SSZ",
            py_reject(
                "DeserializationError",
                "time data '2030-01-01T00:00:00+00:00' does not match format",
            ),
        ),
        pretty(&signed_by(t, &[&k1])),
        Some(&root),
    );

    let mut v = good_targets.clone();
    v["signatures"][0]["sig"] = json!("zz".repeat(64));
    add(
        "non-hex-signature",
        "The attacker's only signature is not hex: it never counts and the threshold is not met.",
        below_threshold(0, 1, 1, Some("signature is not hex"), 0),
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
        json!({"role": "root", "outcome": "accept", "round_trip": true, "valid": 1, "invalid": 0,
            "ignored": 0, "python_tuf": py_accept(1)}),
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
        below_threshold(0, 1, 1, Some("signature does not verify"), 0),
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
        below_threshold(0, 1, 0, None, 1),
        pretty(&signed_by(targets_signed(), &[&k2])),
        Some(&root_k2_root_only),
    );

    let mut t = targets_signed();
    t["spec_version"] = json!("2.0.0");
    add(
        "unsupported-spec-version",
        "Metadata claims spec_version 2.0.0, whose rules we do not know: it is rejected rather than guessed at.",
        reject(
            "targets",
            "Field",
            "signed (targets): spec_version \"2.0.0\" is not a supported 1.x version",
            py_reject("DeserializationError", "Unsupported spec_version 2.0.0"),
        ),
        pretty(&signed_by(t, &[&k1])),
        Some(&root),
    );

    let mut text = pretty(&good_targets);
    text.extend_from_slice(b"{\"signed\": {}}\n");
    add(
        "trailing-data",
        "The attacker appends a second document after a valid one so parsers disagree on which counts: trailing data is rejected.",
        reject(
            "targets",
            "Json",
            "invalid JSON: trailing characters",
            py_reject("DeserializationError", "Extra data"),
        ),
        text,
        Some(&root),
    );

    let text = String::from_utf8(pretty(&good_targets)).unwrap();
    let lone = text.replacen("\"hwid\": \"board-a\"", "\"hwid\": \"board-\\ud800\"", 1);
    assert_ne!(text, lone);
    add(
        "lone-surrogate",
        "A string holds an unpaired UTF-16 surrogate escape, which has no UTF-8 (and so no canonical) form: it is rejected.",
        reject(
            "targets",
            "Json",
            "invalid JSON: unexpected end of hex escape",
            because(
                py_reject("SerializationError", "surrogates not allowed"),
                "Python's json decodes the escape; python-tuf then cannot encode the canonical \
                 bytes to verify",
            ),
        ),
        lone.into_bytes(),
        Some(&root),
    );

    // Delegations to k2, whose key is listed: the role name is the only fault.
    let k2_keys = json!({kid(&k2): serde_json::to_value(k2.public_key()).unwrap()});
    let mut t = targets_signed();
    t["delegations"] = json!({"keys": k2_keys.clone(), "roles": [{"name": "timestamp",
        "keyids": [kid(&k2)], "threshold": 1, "terminating": true, "paths": ["*"]}]});
    add(
        "delegation-to-top-level-role-name",
        "Targets delegates to a role named \"timestamp\" to confuse role lookup: delegating a top-level role name is rejected.",
        reject(
            "targets",
            "Field",
            "signed (targets): delegations: role name \"timestamp\" is a top-level role",
            py_reject(
                "DeserializationError",
                "Delegated roles cannot be empty or use top-level role names",
            ),
        ),
        pretty(&signed_by(t, &[&k1])),
        Some(&root),
    );

    let mut t = targets_signed();
    t["targets"]["../../../etc/shadow"] = t["targets"]["firmware/board-a/image-1.2.3.bin"].clone();
    add(
        "target-path-traversal",
        "Validly signed targets name a file ../../../etc/shadow to escape the download directory: the spec allows any path, so it parses; clients must never use it as a file name unencoded (tuf-agent percent-encodes it).",
        json!({"role": "targets", "outcome": "accept", "valid": 1, "invalid": 0, "ignored": 0,
            "python_tuf": py_accept(1)}),
        pretty(&signed_by(t, &[&k1])),
        Some(&root),
    );

    let mut t = targets_signed();
    t["delegations"] = json!({"keys": k2_keys, "roles": [{"name": "../root",
        "keyids": [kid(&k2)], "threshold": 1, "terminating": true, "paths": ["*"]}]});
    add(
        "delegated-role-name-traversal",
        "Targets delegates to a role named ../root so its metadata file would land outside the cache: the name parses (names are free-form), and clients percent-encode it for URLs and file names.",
        json!({"role": "targets", "outcome": "accept", "valid": 1, "invalid": 0, "ignored": 0,
            "python_tuf": py_accept(1)}),
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
        json!({"role": "targets", "outcome": "accept", "valid": 1, "invalid": 1, "ignored": 0,
            "invalid_contains": "unsupported keytype/scheme sphincs+/sphincs-shake-256f",
            "python_tuf": because(
                py_reject("DeserializationError", "Unsupported public key sphincs+/sphincs-shake-256f"),
                "securesystemslib refuses a root that lists a key type it does not implement; \
                 the specification lets adopters define key types, so we keep the root and \
                 never count that key's signatures",
            )}),
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
