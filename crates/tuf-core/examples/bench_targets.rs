//! Times tuf-core on one targets file, for `bench/compare.py`:
//!
//! `cargo run --release -p tuf-core --example bench_targets -- TARGETS_JSON KEY_JSON [RUNS]`
//!
//! KEY_JSON is `{"keyid": ..., "key": {public key object}}`, the key that signed the file.
//! Prints one JSON line of median milliseconds: parse (strict parse, canonicalise, typed
//! model: `Signed::<Targets>::from_slice`), canonicalise (the `signed` value alone), sha256
//! (of the file), verify (one signature over the canonical bytes) and total (parse + verify:
//! what a client does with the file); also parse_tree (the tree-based parse path alone) and
//! canonicalise_file (`canonical::canonicalize` of the whole file).

use std::collections::BTreeMap;
use std::time::Instant;

use tuf_core::{canonical, hash, KeyId, PublicKey, RoleKeys, Signed, Targets, Threshold};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: bench_targets TARGETS_JSON KEY_JSON [RUNS]");
        std::process::exit(2);
    }
    let file = std::fs::read(&args[1]).expect("read targets file");
    let key_file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&args[2]).expect("read key file")).expect("key");
    let runs: usize = args.get(3).map_or(5, |r| r.parse().expect("RUNS"));
    let keyid = KeyId::new(key_file["keyid"].as_str().expect("keyid")).expect("keyid");
    let public: PublicKey = serde_json::from_value(key_file["key"].clone()).expect("key");
    let keys: BTreeMap<KeyId, PublicKey> = [(keyid.clone(), public)].into();
    let role = RoleKeys::new(vec![keyid], Threshold::new(1).expect("1"));

    let parsed = Signed::<Targets>::from_slice(&file).expect("parse");
    let signed_value = canonical::parse(&file).expect("json")["signed"].clone();
    let out = serde_json::json!({
        "parse": median(runs, || drop(Signed::<Targets>::from_slice(&file).expect("parse"))),
        "canonicalise": median(runs, || drop(canonical::to_vec(&signed_value).expect("c14n"))),
        // The two halves of `parse` for comparison: the tree-based path alone (what every
        // file went through before the one-pass path) and the one-pass canonicalisation.
        "parse_tree": median(runs, || {
            let v = canonical::parse(&file).expect("json");
            drop(Signed::<Targets>::from_value(v).expect("parse"));
        }),
        "canonicalise_file": median(runs, || drop(canonical::canonicalize(&file).expect("c14n"))),
        "sha256": median(runs, || {
            let _ = hash::sha256(&file);
        }),
        "verify": median(runs, || assert!(parsed.verify_role("targets", &role, &keys).is_met())),
        "total": median(runs, || {
            let p = Signed::<Targets>::from_slice(&file).expect("parse");
            assert!(p.verify_role("targets", &role, &keys).is_met());
        }),
    });
    println!("{out}");
}

/// Median wall time of `runs` calls, in milliseconds.
fn median(runs: usize, mut f: impl FnMut()) -> f64 {
    let mut times: Vec<f64> = (0..runs.max(1))
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}
