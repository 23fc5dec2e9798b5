//! Property tests: canonical JSON laws, `Expires` round trips, threshold laws, and "bad input
//! never panics" for every parser that sees bytes from outside.

mod common;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use proptest::prelude::*;
use serde_json::{json, Value};
use tuf_core::{
    canonical, verify_role, Expires, KeyId, KeyType, PrivateKey, PublicKey, Role, RoleKeys, Root,
    Signature, Signed, Signer, Snapshot, TargetFile, Targets, Threshold, Timestamp,
};

use common::{json_value, tricky_string};

// --- Canonical JSON ---------------------------------------------------------------------------

/// Targets with arbitrary paths, hashes, `custom` values and unknown fields (in the role and
/// in targets), with and without delegations.
fn any_targets() -> impl Strategy<Value = Targets> {
    let extra = || proptest::collection::btree_map(tricky_string(), json_value(), 0..3);
    let file = (
        any::<u64>(),
        proptest::collection::btree_map(tricky_string(), tricky_string(), 0..3),
        proptest::option::of(json_value()),
        extra(),
    )
        .prop_map(|(length, hashes, custom, extra)| TargetFile {
            length,
            hashes,
            custom,
            extra,
        });
    (
        proptest::collection::btree_map(tricky_string(), file, 0..6),
        extra(),
        any::<u64>(),
        any::<bool>(),
    )
        .prop_map(|(targets, extra, version, delegated)| {
            let mut t = Targets::new(version, "2030-01-01T00:00:00Z".parse().unwrap());
            t.targets = targets;
            t.extra = extra;
            if delegated {
                t.delegations = serde_json::from_value(json!({"keys": {}, "roles": []})).ok();
            }
            t
        })
}

fn has_control(v: &Value) -> bool {
    match v {
        Value::String(s) => s.chars().any(|c| c < '\u{20}'),
        Value::Array(a) => a.iter().any(has_control),
        Value::Object(m) => m
            .iter()
            .any(|(k, v)| k.chars().any(|c| c < '\u{20}') || has_control(v)),
        _ => false,
    }
}

/// Whitespace bytes outside string literals, tracking escapes inside strings.
fn whitespace_outside_strings(bytes: &[u8]) -> Option<usize> {
    let (mut in_string, mut escaped) = (false, false);
    for (i, &b) in bytes.iter().enumerate() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else if b == b'"' {
            in_string = true;
        } else if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            return Some(i);
        }
    }
    None
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Signing a targets role writes its canonical bytes directly; they are the bytes of
    /// its JSON tree, or the same refusal.
    #[test]
    fn targets_are_written_as_their_json_tree_is(t in any_targets()) {
        let tree = canonical::to_vec(&serde_json::to_value(&t).unwrap());
        let direct = Signed::new(t).map(|env| env.canonical().to_vec());
        prop_assert_eq!(direct.map_err(|e| e.to_string()), tree.map_err(|e| e.to_string()));
    }

    #[test]
    fn canonicalisation_is_idempotent(v in json_value()) {
        let once = canonical::to_vec(&v).unwrap();
        let text = canonical::to_text(&v).unwrap();
        let twice = canonical::to_vec(&canonical::parse(&text).unwrap()).unwrap();
        prop_assert_eq!(&once, &twice);
        if !has_control(&v) {
            // Without control characters the canonical bytes are themselves valid JSON.
            prop_assert_eq!(&text, &once);
            let again = canonical::to_vec(&canonical::parse(&once).unwrap()).unwrap();
            prop_assert_eq!(&once, &again);
        }
    }

    #[test]
    fn parsing_the_canonical_form_gives_back_the_value(v in json_value()) {
        let text = canonical::to_text(&v).unwrap();
        prop_assert_eq!(&canonical::parse(&text).unwrap(), &v);
        // And from any other valid spelling (serde_json's, with its own escapes).
        let other = serde_json::to_vec_pretty(&v).unwrap();
        prop_assert_eq!(&canonical::parse(&other).unwrap(), &v);
        prop_assert_eq!(canonical::to_vec(&canonical::parse(&other).unwrap()).unwrap(),
            canonical::to_vec(&v).unwrap());
    }

    #[test]
    fn canonical_output_has_no_whitespace_outside_strings(v in json_value()) {
        let out = canonical::to_vec(&v).unwrap();
        prop_assert_eq!(whitespace_outside_strings(&out), None, "{}", String::from_utf8_lossy(&out));
        let text = canonical::to_text(&v).unwrap();
        prop_assert_eq!(whitespace_outside_strings(&text), None);
        prop_assert!(!text.iter().any(|&b| b < 0x20), "raw control character in text form");
    }

    #[test]
    fn object_keys_come_out_in_code_point_order(
        keys in proptest::collection::btree_set(common::tricky_string(), 0..12)
    ) {
        let obj: serde_json::Map<String, Value> =
            keys.iter().map(|k| (k.clone(), Value::Null)).collect();
        let out = canonical::to_text(&Value::Object(obj)).unwrap();
        let back = canonical::parse(&out).unwrap();
        // Re-read the key order from the bytes: serde_json's map would re-sort them.
        let order = keys_in_document_order(&out);
        let mut sorted = order.clone();
        sorted.sort_by(|a, b| a.chars().cmp(b.chars()));
        prop_assert_eq!(&order, &sorted);
        prop_assert_eq!(order.len(), back.as_object().unwrap().len());
    }
}

/// The keys of a flat JSON object of nulls, in the order the bytes list them.
fn keys_in_document_order(bytes: &[u8]) -> Vec<String> {
    struct Keys(Vec<String>);
    impl<'de> serde::Deserialize<'de> for Keys {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> serde::de::Visitor<'de> for V {
                type Value = Keys;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    mut m: A,
                ) -> Result<Keys, A::Error> {
                    let mut out = Vec::new();
                    while let Some((k, _)) = m.next_entry::<String, serde::de::IgnoredAny>()? {
                        out.push(k);
                    }
                    Ok(Keys(out))
                }
            }
            d.deserialize_map(V)
        }
    }
    serde_json::from_slice::<Keys>(bytes).unwrap().0
}

// --- Expires ----------------------------------------------------------------------------------

proptest! {
    #[test]
    fn expires_round_trips_through_its_string(secs in 0i64..=253_402_300_799) {
        let e = Expires::from_unix(secs).unwrap();
        let s = e.to_string();
        prop_assert_eq!(s.len(), 20);
        let back: Expires = s.parse().unwrap();
        prop_assert_eq!(back, e);
        prop_assert_eq!(back.unix(), secs);
        // Through serde as well, as it appears in metadata.
        let json = serde_json::to_string(&e).unwrap();
        prop_assert_eq!(serde_json::from_str::<Expires>(&json).unwrap(), e);
    }

    #[test]
    fn expires_never_accepts_a_different_spelling(secs in 0i64..=253_402_300_799, i in 0usize..20, c in any::<char>()) {
        let s = Expires::from_unix(secs).unwrap().to_string();
        let mut chars: Vec<char> = s.chars().collect();
        chars[i] = c;
        let mutated: String = chars.into_iter().collect();
        // Any accepted string formats back to itself: no second spelling of a time exists.
        if let Ok(e) = mutated.parse::<Expires>() {
            prop_assert_eq!(e.to_string(), mutated);
        }
    }

    #[test]
    fn expires_parse_never_panics(s in ".{0,40}") {
        let _ = s.parse::<Expires>();
    }
}

// --- Thresholds -------------------------------------------------------------------------------

const ROLE_KEYS: usize = 5;

/// Five ed25519 keys, made once: the properties are about counting, not key generation.
fn keys() -> &'static [PrivateKey] {
    static KEYS: OnceLock<Vec<PrivateKey>> = OnceLock::new();
    KEYS.get_or_init(|| {
        (0..ROLE_KEYS + 1)
            .map(|_| PrivateKey::generate(KeyType::Ed25519).unwrap())
            .collect()
    })
}

/// The envelope signed by all keys, so subsets of its signatures can be taken.
fn fully_signed() -> &'static Signed<Targets> {
    static ENV: OnceLock<Signed<Targets>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env =
            Signed::new(Targets::new(1, "2030-01-01T00:00:00Z".parse().unwrap())).unwrap();
        for k in keys() {
            env.sign(k).unwrap();
        }
        env
    })
}

/// The role: the first five keys. The sixth key is trusted (in `keys`) but not in the role.
fn role(threshold: u64) -> (RoleKeys, BTreeMap<KeyId, PublicKey>) {
    let ids = keys()[..ROLE_KEYS]
        .iter()
        .map(|k| k.key_id().clone())
        .collect();
    let map = keys()
        .iter()
        .map(|k| (k.key_id().clone(), k.public_key().clone()))
        .collect();
    (RoleKeys::new(ids, Threshold::new(threshold).unwrap()), map)
}

fn signatures(signers: &[usize]) -> Vec<Signature> {
    signers
        .iter()
        .map(|&i| fully_signed().signatures[i].clone())
        .collect()
}

fn bogus(i: usize) -> Signature {
    Signature {
        keyid: keys()[i].key_id().clone(),
        sig: "ab".repeat(64),
        extra: BTreeMap::new(),
    }
}

fn signer_subset() -> impl Strategy<Value = Vec<usize>> {
    proptest::sample::subsequence((0..=ROLE_KEYS).collect::<Vec<_>>(), 0..=ROLE_KEYS + 1)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn result_does_not_depend_on_signature_order(
        signers in signer_subset().prop_shuffle(),
        threshold in 1u64..=ROLE_KEYS as u64,
        seed in any::<u64>(),
    ) {
        let (role, map) = role(threshold);
        let canon = fully_signed().canonical();
        let a = verify_role("targets", &role, &map, canon, &signatures(&signers));
        let mut reordered = signers.clone();
        reordered.sort_unstable();
        if seed % 2 == 0 {
            reordered.reverse();
        }
        let b = verify_role("targets", &role, &map, canon, &signatures(&reordered));
        prop_assert_eq!(a.is_met(), b.is_met());
        prop_assert_eq!(a.distinct_valid, b.distinct_valid);
        let expected = signers.iter().filter(|&&i| i < ROLE_KEYS).count() as u32;
        prop_assert_eq!(a.distinct_valid, expected);
        prop_assert_eq!(a.is_met(), expected >= threshold as u32);
    }

    #[test]
    fn an_invalid_signature_never_changes_a_met_threshold(
        signers in signer_subset(),
        threshold in 1u64..=ROLE_KEYS as u64,
        bad in 0..=ROLE_KEYS,
        position in any::<prop::sample::Index>(),
    ) {
        let (role, map) = role(threshold);
        let canon = fully_signed().canonical();
        let sigs = signatures(&signers);
        let before = verify_role("targets", &role, &map, canon, &sigs);
        // A bogus signature for a key that has not signed (key IDs are unique in a list).
        prop_assume!(!signers.contains(&bad));
        let mut with_bad = sigs.clone();
        with_bad.insert(position.index(sigs.len() + 1), bogus(bad));
        let after = verify_role("targets", &role, &map, canon, &with_bad);
        prop_assert_eq!(before.is_met(), after.is_met());
        prop_assert_eq!(before.distinct_valid, after.distinct_valid);
    }

    #[test]
    fn removing_a_valid_signature_at_the_threshold_fails(
        threshold in 1usize..=ROLE_KEYS,
        which in any::<prop::sample::Index>(),
        extra_outside in any::<bool>(),
    ) {
        let (role, map) = role(threshold as u64);
        let canon = fully_signed().canonical();
        let mut signers: Vec<usize> = (0..threshold).collect();
        if extra_outside {
            signers.push(ROLE_KEYS); // a trusted key outside the role: never counts
        }
        let met = verify_role("targets", &role, &map, canon, &signatures(&signers));
        prop_assert!(met.is_met());
        signers.remove(which.index(threshold));
        let not_met = verify_role("targets", &role, &map, canon, &signatures(&signers));
        prop_assert!(!not_met.is_met());
        let needed = threshold as u32;
        let refused = not_met.require();
        prop_assert!(
            matches!(
                refused,
                Err(tuf_core::Error::ThresholdNotMet { ref role, needed: n, valid })
                    if role == "targets" && n == needed && valid == needed - 1
            ),
            "{:?}",
            refused
        );
    }
}

// --- Bad input never panics -------------------------------------------------------------------

fn parse_everything(bytes: &[u8]) {
    let _ = canonical::parse(bytes);
    let _ = Signed::<Root>::from_slice(bytes);
    let _ = Signed::<Targets>::from_slice(bytes);
    let _ = Signed::<Snapshot>::from_slice(bytes);
    let _ = Signed::<Timestamp>::from_slice(bytes);
    let _ = serde_json::from_slice::<PublicKey>(bytes);
    if let Ok(text) = std::str::from_utf8(bytes) {
        for (kt, sc) in [
            ("ed25519", "ed25519"),
            ("ecdsa", "ecdsa-sha2-nistp256"),
            ("rsa", "rsassa-pss-sha256"),
        ] {
            let _ = PrivateKey::from_pkcs8_pem(kt, sc, text);
        }
    }
    for (kt, sc) in [
        ("ed25519", "ed25519"),
        ("ecdsa", "ecdsa-sha2-nistp256"),
        ("rsa", "rsassa-pss-sha256"),
        ("bogus", "bogus"),
    ] {
        let _ = PrivateKey::from_pkcs8_der(kt, sc, bytes);
    }
}

/// Valid metadata of every role and a root with every key type, as files.
fn samples() -> &'static Vec<Vec<u8>> {
    static SAMPLES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    SAMPLES.get_or_init(|| {
        let ks = [
            PrivateKey::generate(KeyType::Ed25519).unwrap(),
            PrivateKey::generate(KeyType::EcdsaP256).unwrap(),
        ];
        let ids: Vec<KeyId> = ks.iter().map(|k| k.key_id().clone()).collect();
        let keys = ks
            .iter()
            .map(|k| (k.key_id().clone(), k.public_key().clone()))
            .collect();
        let roles = Role::ALL
            .into_iter()
            .map(|r| (r, RoleKeys::new(ids.clone(), Threshold::new(2).unwrap())))
            .collect();
        let exp: Expires = "2030-01-01T00:00:00Z".parse().unwrap();
        let mut root = Signed::new(Root::new(1, exp, keys, roles)).unwrap();
        let mut targets = Targets::new(1, exp);
        targets.targets.insert(
            "a/b.bin".into(),
            serde_json::from_value(json!({"length": 3, "hashes": {"sha256": "00"},
                "custom": {"k": [1, "x"]}}))
            .unwrap(),
        );
        targets.delegations = Some(
            serde_json::from_value(json!({"keys": {}, "roles": [{"name": "d", "keyids": [],
                "threshold": 1, "terminating": false, "paths": ["a/*"]}]}))
            .unwrap(),
        );
        let mut targets = Signed::new(targets).unwrap();
        let mut snapshot = Signed::new(Snapshot::new(
            1,
            exp,
            [("targets.json".to_owned(), tuf_core::MetaFile::new(1))].into(),
        ))
        .unwrap();
        let mut timestamp = Signed::new(Timestamp::new(
            1,
            exp,
            tuf_core::MetaFile::describing(1, b"snapshot"),
        ))
        .unwrap();
        for k in &ks {
            root.sign(k).unwrap();
            targets.sign(k).unwrap();
            snapshot.sign(k).unwrap();
            timestamp.sign(k).unwrap();
        }
        vec![
            root.to_bytes(),
            targets.to_bytes(),
            snapshot.to_bytes(),
            timestamp.to_bytes(),
            serde_json::to_vec_pretty(&serde_json::from_slice::<Value>(&root.to_bytes()).unwrap())
                .unwrap(),
            ks[1].to_pkcs8_pem().as_bytes().to_vec(),
            ks[0].pkcs8_der().to_vec(),
        ]
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(prop::sample::Index, u8),
    Insert(prop::sample::Index, u8),
    Delete(prop::sample::Index),
    Truncate(prop::sample::Index),
    Duplicate(prop::sample::Index, prop::sample::Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let interesting = prop_oneof![
        any::<u8>(),
        prop::sample::select(b"{}[]\",:0-1.eE\\ntf9\x00\xff".to_vec()),
    ];
    prop_oneof![
        (any::<prop::sample::Index>(), interesting.clone()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<prop::sample::Index>(), interesting).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<prop::sample::Index>().prop_map(Mutation::Delete),
        any::<prop::sample::Index>().prop_map(Mutation::Truncate),
        (any::<prop::sample::Index>(), any::<prop::sample::Index>())
            .prop_map(|(a, b)| Mutation::Duplicate(a, b)),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    match m {
        Mutation::Flip(i, b) => {
            let i = i.index(bytes.len());
            bytes[i] = *b;
        }
        Mutation::Insert(i, b) => {
            let i = i.index(bytes.len() + 1);
            bytes.insert(i, *b);
        }
        Mutation::Delete(i) => {
            bytes.remove(i.index(bytes.len()));
        }
        Mutation::Truncate(i) => bytes.truncate(i.index(bytes.len())),
        Mutation::Duplicate(a, b) => {
            let (a, b) = (a.index(bytes.len()), b.index(bytes.len()));
            let (lo, hi) = (a.min(b), a.max(b).min(a.min(b) + 64));
            let chunk = bytes[lo..hi].to_vec();
            let at = hi;
            bytes.splice(at..at, chunk);
        }
    }
}

/// Replaces one value somewhere in `v` (chosen by `path`) with `new`.
fn replace_somewhere(v: &mut Value, path: &[prop::sample::Index], new: Value) {
    let Some((first, rest)) = path.split_first() else {
        *v = new;
        return;
    };
    match v {
        Value::Object(m) if !m.is_empty() => {
            let key = m.keys().nth(first.index(m.len())).cloned().unwrap();
            replace_somewhere(m.get_mut(&key).unwrap(), rest, new);
        }
        Value::Array(a) if !a.is_empty() => {
            let i = first.index(a.len());
            replace_somewhere(&mut a[i], rest, new);
        }
        _ => *v = new,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        parse_everything(&bytes);
    }

    #[test]
    fn mutated_metadata_never_panics(
        which in any::<prop::sample::Index>(),
        mutations in proptest::collection::vec(mutation(), 1..6),
    ) {
        let mut bytes = samples()[which.index(samples().len())].clone();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        parse_everything(&bytes);
    }

    #[test]
    fn metadata_with_a_value_replaced_never_panics(
        which in 0usize..4,
        path in proptest::collection::vec(any::<prop::sample::Index>(), 0..7),
        new in json_value(),
    ) {
        let mut v: Value = serde_json::from_slice(&samples()[which]).unwrap();
        replace_somewhere(&mut v, &path, new);
        let bytes = serde_json::to_vec(&v).unwrap();
        parse_everything(&bytes);
        // Whatever parses also verifies or fails cleanly.
        if let Ok(root) = Signed::<Root>::from_slice(&bytes) {
            for r in Role::ALL {
                let _ = root.verify_role(r.as_str(), root.signed.role(r), &root.signed.keys);
            }
        }
    }

    #[test]
    fn arbitrary_public_keys_never_panic(
        keytype in prop::sample::select(vec!["ed25519", "ecdsa", "ecdsa-sha2-nistp256", "rsa", "x"]),
        scheme in prop::sample::select(vec!["ed25519", "ecdsa-sha2-nistp256", "rsassa-pss-sha256", "y"]),
        public in prop_oneof![
            "[0-9a-fA-F]{0,70}",
            ".{0,100}",
            Just("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n".to_owned()),
            Just("-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----".to_owned()),
        ],
        sig in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let key: PublicKey = serde_json::from_value(json!({"keytype": keytype, "scheme": scheme,
            "keyval": {"public": public}})).unwrap();
        let _ = key.key_id();
        let _ = key.kind();
        prop_assert!(key.verify(b"message", &sig).is_err());
    }
}

#[test]
fn samples_are_valid_to_begin_with() {
    // The mutation tests start from metadata that parses; otherwise they test little.
    let s = samples();
    Signed::<Root>::from_slice(&s[0]).unwrap();
    Signed::<Targets>::from_slice(&s[1]).unwrap();
    Signed::<Snapshot>::from_slice(&s[2]).unwrap();
    Signed::<Timestamp>::from_slice(&s[3]).unwrap();
    Signed::<Root>::from_slice(&s[4]).unwrap();
    let pem = std::str::from_utf8(&s[5]).unwrap();
    PrivateKey::from_pkcs8_pem("ecdsa", "ecdsa-sha2-nistp256", pem).unwrap();
    PrivateKey::from_pkcs8_der("ed25519", "ed25519", &s[6]).unwrap();
    let _: &dyn Signer = &PrivateKey::generate(KeyType::Ed25519).unwrap();
}
