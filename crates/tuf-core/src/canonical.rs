//! Strict JSON parsing and canonical JSON as securesystemslib writes it.
//!
//! Canonical form: object keys sorted by code point, no whitespace, strings with only `"` and
//! `\` escaped (everything else, control characters included, written as raw UTF-8), no
//! Unicode normalisation, integers only. The parser rejects what the canonical form cannot
//! express (floats, integers beyond 64 bits) and what makes signed bytes ambiguous (duplicate
//! object keys), so that two parties can never disagree on what was signed.

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::Error;

mod scan;
pub(crate) use scan::envelope as scan_envelope;

/// The canonical bytes of the JSON text `bytes`, under every rule of [`parse`]: the same
/// result (and the same errors) as `to_vec(&parse(bytes)?)`, but for input that is already
/// in key order (our files, python-tuf's) in one pass, without building a tree.
pub fn canonicalize(bytes: &[u8]) -> Result<Vec<u8>, Error> {
    match scan::document(bytes) {
        Some(out) => Ok(out),
        None => to_vec(&parse(bytes)?),
    }
}

/// The one-pass path of [`canonicalize`] alone: `None` when it leaves the input to the
/// tree-based parser. Public for the tests and benchmarks that compare the two paths.
#[doc(hidden)]
pub fn canonicalize_fast(bytes: &[u8]) -> Option<Vec<u8>> {
    scan::document(bytes)
}

/// Parses `bytes` as JSON, rejecting duplicate object keys and non-integer numbers.
pub fn parse(bytes: &[u8]) -> Result<Value, Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictValue
        .deserialize(&mut de)
        .map_err(|e| Error::Json(e.to_string()))?;
    de.end().map_err(|e| Error::Json(e.to_string()))?;
    Ok(value)
}

/// Writes `value` in canonical form.
pub fn to_vec(value: &Value) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(256);
    write(value, &mut out)?;
    Ok(out)
}

/// The canonical form of `value`, made a valid JSON text: identical to [`to_vec`] except that
/// control characters (U+0000 to U+001F) inside strings are escaped (`\n`, `\u0001`),
/// because JSON (and so every parser, python-tuf's and ours included) refuses them raw.
///
/// Use this for files and network bodies; sign and hash [`to_vec`]. Parsing the text and
/// canonicalising it again gives back exactly [`to_vec`]'s bytes.
pub fn to_text(value: &Value) -> Result<Vec<u8>, Error> {
    Ok(escape_controls(to_vec(value)?))
}

/// Turns canonical bytes into a valid JSON text by escaping control characters. Canonical
/// JSON has no whitespace outside strings, so every byte below 0x20 is inside a string.
pub fn escape_controls(canonical: Vec<u8>) -> Vec<u8> {
    let controls = canonical.iter().filter(|&&b| b < 0x20).count();
    if controls == 0 {
        return canonical;
    }
    let mut out = Vec::with_capacity(canonical.len() + 5 * controls);
    for b in canonical {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        match b {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\r' => out.extend_from_slice(b"\\r"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            0..=0x1f => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
            _ => out.push(b),
        }
    }
    out
}

/// Appends the canonical form of `value` to `out`.
pub fn write(value: &Value, out: &mut Vec<u8>) -> Result<(), Error> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.extend_from_slice(itoa(i as i128).as_bytes());
            } else if let Some(u) = n.as_u64() {
                out.extend_from_slice(itoa(u as i128).as_bytes());
            } else {
                return Err(Error::Json(format!(
                    "number {n} is not an integer; canonical JSON allows integers only"
                )));
            }
        }
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => write_object(map, out)?,
    }
    Ok(())
}

fn write_object(map: &Map<String, Value>, out: &mut Vec<u8>) -> Result<(), Error> {
    // Sort explicitly: serde_json's map is only ordered when no crate in the build enables
    // its `preserve_order` feature, and canonical bytes must not depend on that. Byte order
    // of UTF-8 strings equals code point order, which is what securesystemslib sorts by.
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    let order = |a: &(&String, &Value), b: &(&String, &Value)| a.0.as_bytes().cmp(b.0.as_bytes());
    // Usually in order already (serde_json's default map): checking is cheaper than sorting.
    if !entries.is_sorted_by(|a, b| order(a, b).is_le()) {
        entries.sort_unstable_by(order);
    }
    out.push(b'{');
    for (i, (k, v)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(k, out);
        out.push(b':');
        write(v, out)?;
    }
    out.push(b'}');
    Ok(())
}

/// Appends `s` as a canonical JSON string.
pub fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    if !s.bytes().any(|b| b == b'"' || b == b'\\') {
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        return;
    }
    for b in s.bytes() {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

fn itoa(i: i128) -> String {
    i.to_string()
}

/// Builds a `serde_json::Value` while refusing duplicate keys and floats.
struct StrictValue;

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Err(E::custom(format!(
            "number {v} is not an integer that fits in 64 bits; TUF metadata allows integers only"
        )))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element_seed(StrictValue)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            // serde_json spells numbers as a map with this one key when any crate in the
            // build enables its `arbitrary_precision` feature. Refuse it, so such a build
            // fails loudly (every number rejected) instead of letting floats through.
            if key == "$serde_json::private::Number" {
                return Err(de::Error::custom(
                    "reserved object key (serde_json arbitrary_precision is not supported)",
                ));
            }
            if map.contains_key(&key) {
                return Err(de::Error::custom(format!("duplicate object key {key:?}")));
            }
            let value = access.next_value_seed(StrictValue)?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        String::from_utf8(to_vec(&parse(s.as_bytes()).unwrap()).unwrap()).unwrap()
    }

    #[test]
    fn sorts_keys_by_code_point_and_drops_whitespace() {
        assert_eq!(
            canon(r#"{ "b": 1, "a": [true, null], "B": {"é": 1, "z": 2} }"#),
            r#"{"B":{"z":2,"é":1},"a":[true,null],"b":1}"#
        );
    }

    #[test]
    fn escapes_only_quote_and_backslash() {
        assert_eq!(
            canon(r#"["a\"b\\c\n\u0001é"]"#),
            "[\"a\\\"b\\\\c\n\u{1}é\"]"
        );
    }

    #[test]
    fn does_not_normalise_unicode() {
        // NFD "e" + combining acute stays two code points.
        assert_eq!(canon("[\"e\u{301}\"]"), "[\"e\u{301}\"]");
    }

    #[test]
    fn rejects_floats_and_huge_integers() {
        for bad in [
            "1.0",
            "1e3",
            "[0.5]",
            "123456789012345678901234567890",
            "-1.5",
        ] {
            let err = parse(bad.as_bytes()).unwrap_err().to_string();
            assert!(
                err.starts_with("invalid JSON: number ")
                    && err.contains(
                        "is not an integer that fits in 64 bits; TUF metadata allows integers only"
                    ),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn keeps_negative_and_large_integers() {
        assert_eq!(
            canon("[-9223372036854775808, 18446744073709551615]"),
            "[-9223372036854775808,18446744073709551615]"
        );
    }

    #[test]
    fn rejects_duplicate_keys_at_any_depth() {
        let err = parse(br#"{"a": {"x": 1, "x": 2}}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("duplicate object key \"x\""), "{err}");
    }

    #[test]
    fn rejects_trailing_garbage_and_truncation() {
        for (bad, why) in [
            (&b"{} x"[..], "trailing characters at line 1 column 4"),
            (
                br#"{"a": [1, 2"#,
                "EOF while parsing a list at line 1 column 11",
            ),
            (b"", "EOF while parsing a value at line 1 column 0"),
        ] {
            assert_eq!(
                parse(bad).unwrap_err().to_string(),
                format!("invalid JSON: {why}")
            );
        }
    }

    #[test]
    fn text_form_escapes_controls_and_parses_back_to_the_same_canonical_bytes() {
        let v = Value::from("a\nb\t\r\u{8}\u{c}\u{0}\u{1f}\u{7f}\"\\é");
        let text = to_text(&v).unwrap();
        assert_eq!(
            text,
            b"\"a\\nb\\t\\r\\b\\f\\u0000\\u001f\x7f\\\"\\\\\xc3\xa9\""
        );
        assert_eq!(to_vec(&parse(&text).unwrap()).unwrap(), to_vec(&v).unwrap());
        let plain = Value::from("no controls");
        assert_eq!(to_text(&plain).unwrap(), to_vec(&plain).unwrap());
    }

    #[test]
    fn canonical_input_takes_the_one_pass_path() {
        // Our own files and python-tuf's are already in key order: the fast path must take
        // them (benchmarks measure it), and leave anything else to the tree-based parser.
        let compact = br#"{"a":[1,"x\u0001"],"b":{"c":null,"d":true}}"#;
        let want = to_vec(&parse(compact).unwrap()).unwrap();
        assert_eq!(canonicalize_fast(compact), Some(want.clone()));
        assert_eq!(canonicalize(compact).unwrap(), want);
        let unsorted = br#"{"b":1,"a":2}"#;
        assert_eq!(canonicalize_fast(unsorted), None);
        assert_eq!(canonicalize(unsorted).unwrap(), br#"{"a":2,"b":1}"#);
    }

    #[test]
    fn deep_but_complete_nesting_is_refused_by_both_paths() {
        // Well-formed and in key order, so the one-pass path would take it but for its
        // depth limit: past it, the document goes to the tree-based parser, which refuses it.
        let deep = format!("{}{}", "[".repeat(1000), "]".repeat(1000));
        assert_eq!(canonicalize_fast(deep.as_bytes()), None);
        assert_eq!(
            canonicalize(deep.as_bytes()).unwrap_err().to_string(),
            "invalid JSON: recursion limit exceeded at line 1 column 128"
        );
        // The one-pass limit is exactly 100 levels, arrays and objects alike.
        let arrays = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        let objects = |n: usize| format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n));
        for at_limit in [arrays(100), objects(100)] {
            assert_eq!(
                canonicalize_fast(at_limit.as_bytes()).as_deref(),
                Some(at_limit.as_bytes())
            );
        }
        for past in [arrays(101), objects(101)] {
            assert_eq!(canonicalize_fast(past.as_bytes()), None);
            assert_eq!(canonicalize(past.as_bytes()).unwrap(), past.as_bytes());
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = "[".repeat(100_000);
        assert_eq!(
            parse(deep.as_bytes()).unwrap_err().to_string(),
            "invalid JSON: recursion limit exceeded at line 1 column 128"
        );
    }
}
