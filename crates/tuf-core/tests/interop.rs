//! Differential tests against the independent Python implementation: securesystemslib's
//! canonical JSON and key IDs, python-tuf's metadata model and signature checks, and
//! PKCS#8 private keys through pyca/cryptography.
//!
//! The interpreter comes from `TUF_TEST_PYTHON` (see `scripts/test`); without it these tests
//! say "skipping" and pass, except under `CI=true`.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use proptest::prelude::*;
use serde_json::{json, Value};
use tuf_core::{
    canonical, Expires, KeyId, KeyType, PrivateKey, PublicKey, Role, RoleKeys, Root, Signed,
    Signer, TargetFile, Targets, Threshold,
};

use common::{ascii_json, json_value, python, run_peer};

/// What the Python side says about one document: canonical bytes, or an error.
fn python_canonical(python: &Path, docs: &[String]) -> Vec<Result<Vec<u8>, String>> {
    let mut input = String::new();
    for d in docs {
        input.push_str(&serde_json::to_string(d).unwrap());
        input.push('\n');
    }
    let out = run_peer(python, &["canonical"], input.as_bytes());
    let lines: Vec<&str> = std::str::from_utf8(&out).unwrap().lines().collect();
    assert_eq!(lines.len(), docs.len(), "one answer per document");
    lines
        .into_iter()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            match (&v["ok"], &v["err"]) {
                (Value::String(h), _) => Ok(hex::decode(h).unwrap()),
                (_, Value::String(e)) => Err(e.clone()),
                _ => panic!("bad answer {l}"),
            }
        })
        .collect()
}

fn ours(doc: &str) -> Result<Vec<u8>, String> {
    let slow = canonical::parse(doc.as_bytes())
        .and_then(|v| canonical::to_vec(&v))
        .map_err(|e| e.to_string());
    // The one-pass path, where it answers, must give the very same bytes.
    if let Some(fast) = canonical::canonicalize_fast(doc.as_bytes()) {
        assert_eq!(Ok(&fast), slow.as_ref(), "fast path differs on {doc:?}");
    }
    slow
}

fn show(b: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(b))
}

/// Documents both implementations must encode to the same bytes.
const AGREED: &[&str] = &[
    r#"{}"#,
    r#"[]"#,
    r#""""#,
    r#"{"":""}"#,
    r#"{"a":{},"b":[],"c":"","d":[{}],"e":[[]]}"#,
    r#"null"#,
    r#"true"#,
    r#"[false,null,true]"#,
    r#"0"#,
    r#"-1"#,
    r#"[9223372036854775807,-9223372036854775808,18446744073709551615,9223372036854775808]"#,
    r#"{"z":1,"a":2,"m":{"y":[3,{"c":4,"b":5}],"x":null}}"#,
    // Non-ASCII, raw and escaped.
    r#"{"Zoë":"ünïcödé","日本":"ファイル"}"#,
    r#"["\u00e9","\u65e5\u672c"]"#,
    // NFC "é" and NFD "e" + combining acute are different keys and stay different.
    "{\"\u{e9}\":1,\"e\u{301}\":2}",
    r#"{"\u00e9":1,"e\u0301":2}"#,
    // Quotes and backslashes in keys and values.
    r#"{"a\"b":"c\\d","\\":"\"","\"\\\"":"\\\\"}"#,
    // Control characters, DEL, and escapes the canonical form writes raw.
    r#"["\u0000\u0001\u0008\t\n\u000b\f\r\u001f\u007f","\/","\b"]"#,
    r#"{"\n":1,"\t":2,"\u0000":3," ":4}"#,
    // Code point order, not UTF-16 order: U+1F600 (surrogates D83D DE00) sorts after U+FFFF
    // and U+E000 by code point, but before them in UTF-16.
    r#"{"\uffff":1,"\ud83d\ude00":2,"\ue000":3,"\uff61":4,"a":5,"\u0080":6}"#,
    "{\"\u{ffff}\":1,\"\u{1f600}\":2,\"\u{e000}\":3,\"\u{10ffff}\":4,\"\u{10000}\":5}",
    r#"{"b":1,"a":1,"B":1,"A":1,"aa":1,"a ":1,"a\u0000":1}"#,
    // Whitespace of every kind outside strings disappears; inside strings it stays.
    " \t\r\n{ \"k\" :\t[ 1 ,\n2 ] , \"s\" : \" spaced  out \" }\n",
    r#"{"signed":{"_type":"targets","targets":{"a/b c.txt":{"length":0}}},"signatures":[]}"#,
];

/// Documents both implementations must refuse (no canonical form exists).
const BOTH_REJECT: &[&str] = &["1.5", "[1e2]", "-0.0", "1E400", "{\"a\":0.1}"];

#[test]
fn canonical_bytes_match_securesystemslib_on_tricky_inputs() {
    let Some(py) = python() else { return };
    let mut docs: Vec<String> = AGREED
        .iter()
        .chain(BOTH_REJECT)
        .map(|s| s.to_string())
        .collect();
    // Nesting as deep as our parser allows (serde_json's limit is 128 levels).
    docs.push(format!("{}\"deep\"{}", "[".repeat(127), "]".repeat(127)));
    docs.push(format!("{}1{}", "{\"k\":".repeat(127), "}".repeat(127)));
    let theirs = python_canonical(&py, &docs);
    for (doc, theirs) in docs.iter().zip(theirs) {
        let mine = ours(doc);
        if BOTH_REJECT.contains(&doc.as_str()) {
            assert!(theirs.is_err(), "python accepted {doc}");
            assert!(mine.is_err(), "we accepted {doc}");
            continue;
        }
        let theirs = theirs.unwrap_or_else(|e| panic!("python rejected {doc}: {e}"));
        let mine = mine.unwrap_or_else(|e| panic!("we rejected {doc}: {e}"));
        assert_eq!(
            mine,
            theirs,
            "canonical form of {doc}\nours:   {}\ntheirs: {}",
            show(&mine),
            show(&theirs)
        );
    }
}

/// Where we are deliberately stricter than Python's `json` module: ambiguous documents that
/// Python reads one way and another parser could read another.
#[test]
fn we_refuse_what_python_json_accepts_ambiguously() {
    for doc in [
        r#"{"a":1,"a":2}"#,
        r#"123456789012345678901234567890"#,
        r#"-9223372036854775809"#,
        r#"NaN"#,
        r#""\ud800""#,
        r#"{"a":1} {}"#,
        // Python reads `-0` as the integer 0; serde_json as the float -0.0. Not a form any
        // canonical writer produces, so refusing it loses nothing.
        r#"-0"#,
    ] {
        assert!(ours(doc).is_err(), "accepted {doc}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, max_shrink_iters: 64, ..ProptestConfig::default() })]

    /// Random documents, in batches of 150 per Python process, written both with raw UTF-8 and
    /// with every non-ASCII character escaped (surrogate pairs for astral characters).
    #[test]
    fn canonical_bytes_match_securesystemslib_on_random_values(
        values in proptest::collection::vec(json_value(), 150)
    ) {
        let Some(py) = python() else { return Ok(()) };
        let mut docs = Vec::with_capacity(values.len() * 2);
        for v in &values {
            docs.push(serde_json::to_string(v).unwrap());
            docs.push(ascii_json(v));
        }
        let theirs = python_canonical(&py, &docs);
        for (doc, theirs) in docs.iter().zip(theirs) {
            let theirs = theirs.map_err(|e| TestCaseError::fail(format!("python: {e} on {doc}")))?;
            let mine = ours(doc).map_err(|e| TestCaseError::fail(format!("ours: {e} on {doc}")))?;
            prop_assert_eq!(&mine, &theirs, "document {}", doc);
        }
    }
}

/// python-tuf signs root and targets with ed25519, ecdsa and rsa keys; we parse, verify every
/// threshold, agree on every key ID, re-encode to the same canonical bytes, and load the
/// Python-made PKCS#8 private keys.
#[test]
fn python_tuf_metadata_verifies_in_tuf_core() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run_peer(&py, &["sign", d.to_str().unwrap()], b"");

    let root = Signed::<Root>::from_slice(&std::fs::read(d.join("root.json")).unwrap()).unwrap();
    let targets =
        Signed::<Targets>::from_slice(&std::fs::read(d.join("targets.json")).unwrap()).unwrap();
    for role in Role::ALL {
        assert_eq!(root.signed.role(role).threshold.get(), 3);
    }
    let v = root.verify_role("root", root.signed.role(Role::Root), &root.signed.keys);
    assert!(v.is_met() && v.invalid.is_empty(), "{v:?}");
    let v = targets.verify_role(
        "targets",
        root.signed.role(Role::Targets),
        &root.signed.keys,
    );
    assert!(v.is_met() && v.invalid.is_empty(), "{v:?}");
    assert_eq!(v.distinct_valid, 3);

    // Python's canonical encoding of the envelope equals ours of its pretty-printed file (up to
    // the escaped line breaks of PEM keys, which a JSON file cannot hold raw).
    for (ours, file) in [
        (root.to_bytes(), "root.canonical.json"),
        (targets.to_bytes(), "targets.canonical.json"),
    ] {
        let theirs = std::fs::read(d.join(file)).unwrap();
        assert_eq!(
            show(&ours),
            show(&canonical::escape_controls(theirs)),
            "{file}"
        );
    }
    assert!(root.signed.extra.contains_key("x-changelog"));
    assert_eq!(targets.signed.targets.len(), 3);
    assert!(targets.signed.targets.contains_key("emoji/\u{1f600}.tar"));

    // A flipped byte in what was signed breaks every signature.
    let mut tampered: Value = serde_json::from_slice(&targets.to_bytes()).unwrap();
    tampered["signed"]["version"] = json!(2);
    let tampered = Signed::<Targets>::from_value(tampered).unwrap();
    let v = tampered.verify_role(
        "targets",
        root.signed.role(Role::Targets),
        &root.signed.keys,
    );
    assert_eq!((v.distinct_valid, v.invalid.len()), (0, 3), "{v:?}");

    let keys: Vec<Value> =
        serde_json::from_slice(&std::fs::read(d.join("keys.json")).unwrap()).unwrap();
    let mut kinds = Vec::new();
    for entry in keys {
        let public: PublicKey = serde_json::from_value(entry["key"].clone()).unwrap();
        let keyid = entry["keyid"].as_str().unwrap();
        assert_eq!(public.key_id().as_str(), keyid, "key ID of {public:?}");
        assert_eq!(root.signed.keys[&KeyId::new(keyid).unwrap()], public);
        let private = PrivateKey::from_pkcs8_pem(
            &public.keytype,
            &public.scheme,
            entry["private_pem"].as_str().unwrap(),
        )
        .unwrap_or_else(|e| panic!("python's {} PKCS#8 key: {e}", public.keytype));
        assert_eq!(private.public_key(), &public, "derived public key");
        assert_eq!(private.key_id().as_str(), keyid);
        let sig = private.sign(b"msg").unwrap();
        public.verify(b"msg", &sig).unwrap();
        kinds.push(public.kind().to_owned());
    }
    assert_eq!(kinds, ["ed25519", "ecdsa", "rsa"]);
}

/// We sign root and targets with all three key types; python-tuf parses and verifies them,
/// securesystemslib computes the same key IDs, pyca/cryptography loads our PKCS#8 keys, and
/// the signatures Python makes with them verify here.
#[test]
fn tuf_core_metadata_verifies_in_python_tuf() {
    let Some(py) = python() else { return };
    let keys = [
        PrivateKey::generate(KeyType::Ed25519).unwrap(),
        PrivateKey::generate(KeyType::EcdsaP256).unwrap(),
        PrivateKey::generate(KeyType::Rsa3072).unwrap(),
    ];
    let ids: Vec<KeyId> = keys.iter().map(|k| k.key_id().clone()).collect();
    let key_map: BTreeMap<KeyId, PublicKey> = keys
        .iter()
        .map(|k| (k.key_id().clone(), k.public_key().clone()))
        .collect();
    let roles = Role::ALL
        .into_iter()
        .map(|r| (r, RoleKeys::new(ids.clone(), Threshold::new(3).unwrap())))
        .collect();
    let expires: Expires = "2031-02-03T04:05:06Z".parse().unwrap();
    let mut root = Root::new(1, expires, key_map, roles);
    root.extra.insert(
        "x-changelog".into(),
        json!([{"who": "Zoë \u{1f600}", "why": "quote \" and \\", "when": "2030-01-01T00:00:00Z"}]),
    );
    root.extra.insert(
        "x-key-owners".into(),
        json!({ids[0].as_str(): "owner@example.com"}),
    );
    let mut root = Signed::new(root).unwrap();
    let mut targets = Targets::new(7, expires);
    for path in ["fw/image.bin", "ünïcödé/ファイル.txt", "e\u{301}/nfd"] {
        let mut hashes = BTreeMap::new();
        hashes.insert("sha256".into(), tuf_core::hash::sha256_hex(path.as_bytes()));
        targets.targets.insert(
            path.into(),
            TargetFile {
                length: path.len() as u64,
                hashes,
                custom: Some(json!({"hwid": "board-a", "x": [1, -2, "\u{0}"]})),
                extra: BTreeMap::new(),
            },
        );
    }
    let mut targets = Signed::new(targets).unwrap();
    for k in &keys {
        root.sign(k).unwrap();
        targets.sign(k).unwrap();
    }

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("root.json"), root.to_bytes()).unwrap();
    std::fs::write(d.join("targets.json"), targets.to_bytes()).unwrap();
    let payload = b"payload signed by python with our keys";
    std::fs::write(d.join("payload"), payload).unwrap();
    let entries: Vec<Value> = keys
        .iter()
        .map(|k| {
            json!({
                "keyid": k.key_id().as_str(),
                "key": k.public_key(),
                "private_pem": k.to_pkcs8_pem().as_str(),
            })
        })
        .collect();
    std::fs::write(d.join("keys.json"), serde_json::to_vec(&entries).unwrap()).unwrap();

    let out = run_peer(&py, &["verify", d.to_str().unwrap()], b"");
    let report: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(report["root_verified"], json!(true), "{report}");
    assert_eq!(report["targets_verified"], json!(true), "{report}");
    // python-tuf's model keeps every field we wrote, unknown ones included: its canonical
    // re-encoding is ours (whose file form escapes the PEM line breaks).
    for (ours, field) in [
        (root.to_bytes(), "root_reserialised"),
        (targets.to_bytes(), "targets_reserialised"),
    ] {
        let theirs = hex::decode(report[field].as_str().unwrap()).unwrap();
        assert_eq!(
            show(&ours),
            show(&canonical::escape_controls(theirs)),
            "{field}"
        );
    }
    let sigs = report["signatures"].as_array().unwrap();
    assert_eq!(sigs.len(), keys.len());
    for (k, s) in keys.iter().zip(sigs) {
        assert_eq!(s["keyid"].as_str(), Some(k.key_id().as_str()));
        assert_eq!(
            s["computed"].as_str(),
            Some(k.key_id().as_str()),
            "securesystemslib's key ID for our {} key",
            k.public_key().kind()
        );
        let sig = hex::decode(s["sig"].as_str().unwrap()).unwrap();
        k.public_key()
            .verify(payload, &sig)
            .unwrap_or_else(|e| panic!("python's signature with our {:?}: {e}", k));
    }
}
