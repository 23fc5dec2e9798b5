//! Helpers shared by the integration tests: the Python peer and JSON value generators.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use proptest::prelude::*;
use serde_json::{Map, Value};

/// The Python interpreter with securesystemslib and python-tuf, from `TUF_TEST_PYTHON`; unset,
/// the test skips (visibly, and a failure under `CI=true`: see the `test-skip` crate).
#[track_caller]
pub fn python() -> Option<PathBuf> {
    test_skip::env(
        "TUF_TEST_PYTHON",
        "a python with scripts/requirements-interop.txt, as scripts/test sets up",
    )
    .map(PathBuf::from)
}

pub fn peer_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/peer.py")
}

/// Runs `peer.py <args>` with `stdin`, returns stdout; panics with Python's output on failure.
pub fn run_peer(python: &Path, args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let mut child = Command::new(python)
        .arg(peer_script())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", python.display()));
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    // Write from a thread so a large batch cannot deadlock against a full stdout pipe.
    let writer = std::thread::spawn(move || {
        input.write_all(&data).unwrap();
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(
        out.status.success(),
        "peer.py {args:?} failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Characters that stress canonical JSON: quotes, backslashes, controls, DEL, non-ASCII,
/// combining marks, the top of the BMP and astral-plane characters (whose UTF-16 order differs
/// from their code point order).
pub fn tricky_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => proptest::char::range('a', 'e'),
        2 => Just('"'),
        2 => Just('\\'),
        2 => proptest::char::range('\u{0}', '\u{1f}'),
        1 => Just('\u{7f}'),
        1 => Just('/'),
        1 => Just('é'),
        1 => Just('\u{301}'),
        1 => Just('\u{ffff}'),
        1 => Just('\u{e000}'),
        1 => Just('\u{fffd}'),
        1 => proptest::char::range('\u{10000}', '\u{10ffff}'),
        2 => any::<char>(),
    ]
}

pub fn tricky_string() -> impl Strategy<Value = String> {
    proptest::collection::vec(tricky_char(), 0..8).prop_map(|cs| cs.into_iter().collect())
}

/// Arbitrary JSON values that canonical JSON can express (integers only).
pub fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-3i64..3).prop_map(Value::from),
        tricky_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((tricky_string(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// JSON text with every non-ASCII character written as a `\u` escape (astral characters as
/// surrogate pairs), so parsers must decode escapes to agree.
pub fn ascii_json(v: &Value) -> String {
    let plain = serde_json::to_string(v).unwrap();
    let mut out = String::with_capacity(plain.len());
    for c in plain.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut buf = [0u16; 2];
            for unit in c.encode_utf16(&mut buf) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}
