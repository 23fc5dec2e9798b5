//! The fast path of strict parsing: one pass over the raw bytes that writes canonical bytes
//! directly, for input whose canonical form can be produced without building a tree.
//!
//! It accepts exactly the documents whose object keys already appear strictly increasing by
//! code point (which also proves there are no duplicates) and whose numbers are all integers
//! that fit in 64 bits, written the way canonical JSON writes them. Whitespace between tokens
//! is dropped and string escapes are decoded, so both the file form our server writes
//! (canonical, control characters escaped) and python-tuf's pretty-printed files (sorted keys,
//! indentation, `\uXXXX` for non-ASCII) take this path.
//!
//! It never reports an error: anything it does not handle (unsorted keys, floats, malformed
//! JSON, lone surrogates, deep nesting...) returns `None`, and the caller runs the tree-based
//! strict parser, which is the reference and gives the error messages. So the fast path can
//! only change speed, never what is accepted; the tests check that both paths give identical
//! bytes wherever the fast path answers.

use std::borrow::Cow;
use std::ops::Range;

/// Nesting deeper than this goes to the slow path (which refuses past serde_json's own limit).
const MAX_DEPTH: usize = 100;

/// The key serde_json's `arbitrary_precision` feature uses for numbers; the slow path refuses
/// it, so the fast path must not accept it.
const RESERVED_KEY: &[u8] = b"$serde_json::private::Number";

/// The member names the scan acts on; every other key is [`Field::Other`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Type,
    Targets,
    Length,
    Hashes,
    Other,
}

impl Field {
    fn of(key: &[u8]) -> Self {
        match key {
            b"_type" => Self::Type,
            b"targets" => Self::Targets,
            b"length" => Self::Length,
            b"hashes" => Self::Hashes,
            _ => Self::Other,
        }
    }
}

/// What [`envelope`] found in a `{"signatures": ..., "signed": ...}` document.
pub(crate) struct Envelope<'a> {
    /// Canonical bytes of the `signed` value: borrowed from the input when its raw bytes
    /// already are canonical (our server's file form of everything but PEM keys), so a large
    /// role costs no second copy.
    pub canonical: Cow<'a, [u8]>,
    /// The raw (input) bytes of `signed`, `signatures` and every other top-level member's
    /// value, all proven strict (sorted unique keys, integers only) by the scan.
    pub signed: &'a [u8],
    pub signatures: &'a [u8],
    pub extra: Vec<(String, &'a [u8])>,
    /// `signed._type`, when it is a string.
    pub type_: Option<String>,
    /// In a `targets` role, where `signed.targets` is (a range of `signed`) and how many
    /// entries it has, every entry already checked by the scan (see `Scanner::target_entry`).
    pub targets: Option<(Range<usize>, usize)>,
}

/// Canonical bytes of the whole document `input`, or `None` for the slow path.
pub(crate) fn document(input: &[u8]) -> Option<Vec<u8>> {
    std::str::from_utf8(input).ok()?;
    let mut s = Scanner::new(input);
    s.value(0)?;
    s.ws();
    (s.pos == input.len()).then(|| s.out.into_cow().into_owned())
}

/// Scans an envelope: validates the whole document like [`document`] and keeps the canonical
/// bytes of `signed` only. `None` also when `signed` (an object with a string `_type`) or
/// `signatures` is missing: the slow path names those errors.
pub(crate) fn envelope(input: &[u8]) -> Option<Envelope<'_>> {
    std::str::from_utf8(input).ok()?;
    let mut s = Scanner::new(input);
    s.ws();
    s.eat(b'{')?;
    let mut signed = None;
    let mut signatures = None;
    let mut extra = Vec::new();
    let mut prev: Option<String> = None;
    s.ws();
    if s.peek()? != b'}' {
        loop {
            s.ws();
            // Only `signed` is written to `s.out`; the other top-level members are validated
            // into outputs of their own and dropped.
            let key = s.top_key(&mut prev)?;
            s.ws();
            s.eat(b':')?;
            s.ws();
            let raw_start = s.pos;
            if key == "signed" {
                if s.peek()? != b'{' {
                    return None;
                }
                s.object(1, true)?;
                if let Some((range, count)) = s.targets.take() {
                    s.targets = Some((range.start - raw_start..range.end - raw_start, count));
                }
            } else {
                // Validated into an output of its own and dropped, so `s.out` holds the
                // `signed` value alone and can stay a plain range of the input.
                let kept = std::mem::replace(&mut s.out, Out::new(input));
                s.value(1)?;
                s.out = kept;
            }
            let raw = &input[raw_start..s.pos];
            match key.as_str() {
                "signed" => signed = Some(raw),
                "signatures" => signatures = Some(raw),
                _ => extra.push((key, raw)),
            }
            s.ws();
            match s.next()? {
                b',' => continue,
                b'}' => break,
                _ => return None,
            }
        }
    }
    s.ws();
    if s.pos != input.len() {
        return None;
    }
    let type_ = s.type_.take();
    let targets = s.targets.take();
    let canonical = s.out.into_cow();
    Some(Envelope {
        canonical,
        signed: signed?,
        signatures: signatures?,
        extra,
        type_,
        targets,
    })
}

/// Canonical output that stays a range of the input for as long as it equals one, and is
/// copied into a buffer of its own from the first byte where it departs (dropped whitespace,
/// a decoded escape). Compact canonical input (our files) is then never copied at all.
struct Out<'a> {
    src: &'a [u8],
    /// Without a buffer, the output is `src[start..start + len]`.
    start: usize,
    len: usize,
    buf: Option<Vec<u8>>,
}

impl<'a> Out<'a> {
    fn new(src: &'a [u8]) -> Self {
        Self {
            src,
            start: 0,
            len: 0,
            buf: None,
        }
    }

    fn len(&self) -> usize {
        match &self.buf {
            Some(buf) => buf.len(),
            None => self.len,
        }
    }

    /// Appends the input bytes `range`, in place when they follow the output so far.
    // Called for every token: inlined, the in-place case is a compare and an add.
    #[inline]
    fn copy(&mut self, range: Range<usize>) {
        if range.is_empty() {
            return;
        }
        if self.buf.is_none() {
            if self.len == 0 {
                self.start = range.start;
            }
            if self.start + self.len == range.start {
                self.len += range.len();
                return;
            }
        }
        let src = self.src;
        self.owned().extend_from_slice(&src[range]);
    }

    /// Appends bytes made by the scanner (a decoded escape). They may still equal the input
    /// that follows (`\"` stays `\"`), and then the output stays in place.
    fn emit(&mut self, bytes: &[u8]) {
        if self.buf.is_none() && self.len > 0 {
            let at = self.start + self.len;
            if self.src.get(at..at + bytes.len()) == Some(bytes) {
                self.len += bytes.len();
                return;
            }
        }
        self.owned().extend_from_slice(bytes);
    }

    fn bytes(&self, range: Range<usize>) -> &[u8] {
        match &self.buf {
            Some(buf) => &buf[range],
            None => &self.src[self.start..self.start + self.len][range],
        }
    }

    /// The buffer, made from the in-place output on first use.
    fn owned(&mut self) -> &mut Vec<u8> {
        let (src, start, len) = (self.src, self.start, self.len);
        self.buf.get_or_insert_with(|| {
            // Canonical output is never longer than the input it comes from (escapes only
            // shrink, whitespace is dropped), so this one allocation is enough.
            let mut buf = Vec::with_capacity(src.len().saturating_sub(start).max(len));
            buf.extend_from_slice(&src[start..start + len]);
            buf
        })
    }

    fn into_cow(self) -> Cow<'a, [u8]> {
        match self.buf {
            Some(mut buf) => {
                // Sized for the rest of the input; give back what a pretty-printed file's
                // whitespace and the members after this one left unused.
                if buf.capacity() - buf.len() > buf.len() / 8 {
                    buf.shrink_to_fit();
                }
                Cow::Owned(buf)
            }
            None => Cow::Borrowed(&self.src[self.start..self.start + self.len]),
        }
    }
}

struct Scanner<'a> {
    src: &'a [u8],
    pos: usize,
    out: Out<'a>,
    /// Set by the object scanned with `capture_type`.
    type_: Option<String>,
    /// Set by the object scanned with `capture_type` when it is a targets role: the input
    /// range of its `targets` member's value and the number of entries.
    targets: Option<(Range<usize>, usize)>,
}

impl<'a> Scanner<'a> {
    fn new(src: &'a [u8]) -> Self {
        Self {
            src,
            pos: 0,
            out: Out::new(src),
            type_: None,
            targets: None,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    fn eat(&mut self, b: u8) -> Option<()> {
        (self.next()? == b).then_some(())
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        if self.src.get(self.pos..self.pos + word.len())? != word {
            return None;
        }
        self.out.copy(self.pos..self.pos + word.len());
        self.pos += word.len();
        Some(())
    }

    fn value(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'{' => self.object(depth + 1, false),
            b'[' => self.array(depth + 1),
            b'"' => self.string().map(drop),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    /// An integer in canonical spelling that fits in i64 or u64, copied as is.
    fn number(&mut self) -> Option<()> {
        let start = self.pos;
        let negative = self.peek()? == b'-';
        if negative {
            self.pos += 1;
        }
        let digits_start = self.pos;
        let mut magnitude: u64 = 0;
        while let Some(d @ b'0'..=b'9') = self.peek() {
            magnitude = magnitude
                .checked_mul(10)?
                .checked_add(u64::from(d - b'0'))?;
            self.pos += 1;
        }
        let digits = &self.src[digits_start..self.pos];
        // No digits, a leading zero (invalid JSON) or "-0" (canonicalises to "0"): slow path.
        if digits.is_empty() || (digits[0] == b'0' && (digits.len() > 1 || negative)) {
            return None;
        }
        // A fraction or exponent makes it a float, which the slow path refuses.
        if let Some(b'.' | b'e' | b'E') = self.peek() {
            return None;
        }
        if negative && magnitude > i64::MIN.unsigned_abs() {
            return None;
        }
        self.out.copy(start..self.pos);
        Some(())
    }

    fn array(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.eat(b'[')?;
        self.copy_last();
        self.ws();
        if self.peek()? == b']' {
            self.pos += 1;
            self.copy_last();
            return Some(());
        }
        loop {
            self.ws();
            self.value(depth)?;
            self.ws();
            match self.next()? {
                b',' => self.copy_last(),
                b']' => break,
                _ => return None,
            }
        }
        self.copy_last();
        Some(())
    }

    /// An object whose keys strictly increase. With `capture_type` (the `signed` object), a
    /// string `_type` member's value is recorded, and a targets role's `targets` member is
    /// scanned entry by entry ([`Scanner::target_map`]).
    fn object(&mut self, depth: usize, capture_type: bool) -> Option<()> {
        self.members(depth, |s, key| {
            if capture_type && key == Field::Targets && s.type_.as_deref() == Some("targets") {
                // `_type` sorts before `targets`, so the role's type is known here.
                let start = s.pos;
                let count = s.target_map(depth + 1)?;
                s.targets = Some((start..s.pos, count));
                return Some(());
            }
            let value_start = s.out.len();
            s.value(depth)?;
            if capture_type && key == Field::Type {
                s.capture_type(value_start);
            }
            Some(())
        })
        .map(drop)
    }

    /// The members of an object whose keys strictly increase, each value scanned by
    /// `member`, which is told which [`Field`] the key names. Returns how many there were.
    fn members(
        &mut self,
        depth: usize,
        mut member: impl FnMut(&mut Self, Field) -> Option<()>,
    ) -> Option<usize> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.eat(b'{')?;
        self.copy_last();
        self.ws();
        if self.peek()? == b'}' {
            self.pos += 1;
            self.copy_last();
            return Some(0);
        }
        let mut prev: Option<Range<usize>> = None;
        let mut count = 0;
        loop {
            self.ws();
            let key_start = self.out.len();
            let escaped = self.string()?;
            let key = key_start + 1..self.out.len() - 1;
            self.check_key(&mut prev, key.clone(), escaped)?;
            self.ws();
            self.eat(b':')?;
            self.copy_last();
            self.ws();
            let field = Field::of(self.out.bytes(key));
            member(self, field)?;
            count += 1;
            self.ws();
            match self.next()? {
                b',' => self.copy_last(),
                b'}' => break,
                _ => return None,
            }
        }
        self.copy_last();
        Some(count)
    }

    /// A targets role's `targets`: an object of target entries, each checked by
    /// [`Scanner::target_entry`]. Returns the number of entries.
    fn target_map(&mut self, depth: usize) -> Option<usize> {
        if self.peek()? != b'{' {
            return None;
        }
        self.members(depth, |s, _| s.target_entry(depth + 1))
    }

    /// One target entry, held to what the typed parse requires of it (`TargetFile`, and the
    /// entry check of `TargetsHead`): an object with a non-negative integer `length` and a
    /// non-empty `hashes` object of strings; `custom` and unknown members may be any JSON.
    /// Anything else is left to the slow path, which names the error.
    fn target_entry(&mut self, depth: usize) -> Option<()> {
        if self.peek()? != b'{' {
            return None;
        }
        let (mut length, mut hashes) = (false, false);
        self.members(depth, |s, field| match field {
            Field::Length => {
                // A u64: an integer (floats go to the slow path) without a sign.
                if !s.peek()?.is_ascii_digit() {
                    return None;
                }
                s.number()?;
                length = true;
                Some(())
            }
            Field::Hashes => {
                if s.peek()? != b'{' {
                    return None;
                }
                let n = s.members(depth + 1, |s, _| {
                    if s.peek()? != b'"' {
                        return None;
                    }
                    s.string().map(drop)
                })?;
                hashes = n > 0;
                hashes.then_some(())
            }
            _ => s.value(depth),
        })?;
        (length && hashes).then_some(())
    }

    fn capture_type(&mut self, value_start: usize) {
        let v = self.out.bytes(value_start..self.out.len());
        if v.len() >= 2 && v[0] == b'"' {
            // Escaped content would differ from the decoded string; such a `_type` is no
            // role name anyway and simply is not captured (the slow path then decides).
            let inner = &v[1..v.len() - 1];
            if !inner.contains(&b'\\') {
                self.type_ = std::str::from_utf8(inner).ok().map(str::to_owned);
            }
        }
    }

    /// A top-level key, decoded, checked against the previous one, returned owned. (Not
    /// compared in place like nested keys: it is scanned into an output of its own, so that
    /// `out` holds the `signed` value alone.)
    fn top_key(&mut self, prev: &mut Option<String>) -> Option<String> {
        let kept = std::mem::replace(&mut self.out, Out::new(self.src));
        let scanned = self.string();
        let out = std::mem::replace(&mut self.out, kept);
        scanned?;
        // A scanned string holds at least its two quotes.
        let bytes = out.bytes(1..out.len().saturating_sub(1).max(1)).to_vec();
        if bytes.contains(&b'\\') || bytes == RESERVED_KEY {
            return None;
        }
        let key = String::from_utf8(bytes).ok()?;
        if prev
            .as_deref()
            .is_some_and(|p| p.as_bytes() >= key.as_bytes())
        {
            return None;
        }
        *prev = Some(key.clone());
        Some(key)
    }

    /// Keys must strictly increase by code point, which for UTF-8 is byte order. A key with
    /// an escape in its canonical form (`"` or `\`) would compare differently escaped than
    /// decoded, and one is reserved by serde_json: slow path for those.
    fn check_key(
        &self,
        prev: &mut Option<Range<usize>>,
        key: Range<usize>,
        escaped: bool,
    ) -> Option<()> {
        let k = self.out.bytes(key.clone());
        // Only a decoded escape can put `\` into the canonical form of a key.
        if (escaped && k.contains(&b'\\')) || k == RESERVED_KEY {
            return None;
        }
        if let Some(p) = prev {
            if self.out.bytes(p.clone()) >= k {
                return None;
            }
        }
        *prev = Some(key);
        Some(())
    }

    /// A string, decoded and written in canonical form (only `"` and `\` escaped). Returns
    /// whether it held an escape.
    fn string(&mut self) -> Option<bool> {
        let start = self.pos;
        self.eat(b'"')?;
        // The common case, no escape: the quotes and what is between them in one copy.
        let n = plain_run(&self.src[self.pos..])?;
        if self.src.get(self.pos + n) == Some(&b'"') {
            self.pos += n + 1;
            self.out.copy(start..self.pos);
            return Some(false);
        }
        self.copy_last();
        let mut escaped = false;
        loop {
            let n = plain_run(&self.src[self.pos..])?;
            self.out.copy(self.pos..self.pos + n);
            self.pos += n;
            match self.next()? {
                b'"' => {
                    self.copy_last();
                    return Some(escaped);
                }
                b'\\' => {
                    escaped = true;
                    self.escape()?;
                }
                // A raw control character: invalid JSON, the slow path says so.
                _ => return None,
            }
        }
    }

    fn escape(&mut self) -> Option<()> {
        let c = match self.next()? {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hi = self.hex4()?;
                let cp = match hi {
                    0xD800..=0xDBFF => {
                        self.eat(b'\\')?;
                        self.eat(b'u')?;
                        let lo = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&lo) {
                            return None;
                        }
                        0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                    }
                    0xDC00..=0xDFFF => return None,
                    _ => hi,
                };
                char::from_u32(cp)?
            }
            _ => return None,
        };
        if c == '"' || c == '\\' {
            self.out.emit(&[b'\\', c as u8]);
        } else {
            let mut buf = [0u8; 4];
            self.out.emit(c.encode_utf8(&mut buf).as_bytes());
        }
        Some(())
    }

    /// Copies the byte just consumed to the output.
    #[inline]
    fn copy_last(&mut self) {
        self.out.copy(self.pos - 1..self.pos);
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.src.get(self.pos..self.pos + 4)?;
        let mut v = 0u32;
        for &d in digits {
            v = v * 16 + char::from(d).to_digit(16)?;
        }
        self.pos += 4;
        Some(v)
    }
}

/// Where the first byte that ends a run of plain string content is (`"`, `\\` or a control
/// character), `None` when there is none. Eight bytes per step: the hashes and key ids that make
/// up most of a large targets role are long plain runs.
fn plain_run(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut chunks = bytes.chunks_exact(8);
    let mut at = 0;
    for chunk in chunks.by_ref() {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        // A byte's high bit is set below where it is `"`, `\\` or under 0x20 (each test is
        // exact for the first such byte, which is all that is used).
        let quote = w ^ (ONES * u64::from(b'"'));
        let backslash = w ^ (ONES * u64::from(b'\\'));
        let found = (quote.wrapping_sub(ONES) & !quote
            | backslash.wrapping_sub(ONES) & !backslash
            | w.wrapping_sub(ONES * 0x20) & !w)
            & HIGH;
        if found != 0 {
            return Some(at + (found.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    let tail = chunks.remainder();
    tail.iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .map(|n| at + n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::{parse, to_text, to_vec};
    use proptest::prelude::*;
    use serde_json::{Map, Value};

    /// Both paths on `text`: the fast one, when it answers, must agree with the slow one.
    fn agree(text: &[u8]) -> Option<Vec<u8>> {
        let fast = document(text);
        if let Some(fast) = &fast {
            let slow = to_vec(&parse(text).expect("fast path accepted what the slow one refuses"))
                .unwrap();
            assert_eq!(
                String::from_utf8_lossy(fast),
                String::from_utf8_lossy(&slow),
                "input {:?}",
                String::from_utf8_lossy(text)
            );
        }
        fast
    }

    /// JSON text with every non-ASCII character written as `\uXXXX` (surrogate pairs above
    /// the BMP), the way Python's json module writes by default.
    fn ascii_only(text: &str) -> String {
        let mut out = String::new();
        for c in text.chars() {
            if c.is_ascii() {
                out.push(c);
            } else {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
        }
        out
    }

    fn string() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z_]{0,6}",
            "[\\x00-\\x1f\"\\\\/a-z]{0,6}",
            "\\PC{0,6}",
            proptest::collection::vec(any::<char>(), 0..6).prop_map(|v| v.into_iter().collect()),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            string().prop_map(Value::String),
        ];
        leaf.prop_recursive(5, 64, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::vec((string(), inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
            ]
        })
    }

    /// Whether some key, at any depth, holds `"` or `\` (left to the slow path on purpose).
    fn escaped_key(v: &Value) -> bool {
        match v {
            Value::Array(a) => a.iter().any(escaped_key),
            Value::Object(m) => m
                .iter()
                .any(|(k, v)| k.contains(['"', '\\']) || escaped_key(v)),
            _ => false,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn fast_and_slow_paths_give_identical_bytes(v in value()) {
            let canonical = to_vec(&v).unwrap();
            let text = to_text(&v).unwrap();
            let pretty = serde_json::to_string_pretty(&v).unwrap();
            let compact = serde_json::to_string(&v).unwrap();
            let ascii = ascii_only(&pretty);
            // Raw control characters are not valid JSON: the canonical bytes themselves only
            // go through when they hold none.
            let forms: [&[u8]; 5] = [&canonical, &text, pretty.as_bytes(), compact.as_bytes(),
                ascii.as_bytes()];
            for (i, form) in forms.into_iter().enumerate() {
                let fast = agree(form);
                let expect_fast = !escaped_key(&v) && (i > 0 || !canonical.iter().any(|&b| b < 0x20));
                if expect_fast {
                    prop_assert_eq!(fast.as_deref(), Some(&canonical[..]));
                }
            }
        }

        #[test]
        fn fast_path_never_disagrees_on_arbitrary_bytes(bytes in proptest::collection::vec(
            prop_oneof![Just(b'{'), Just(b'}'), Just(b'['), Just(b']'), Just(b'"'), Just(b':'),
                Just(b','), Just(b'\\'), Just(b'u'), Just(b'0'), Just(b'1'), Just(b'-'),
                Just(b'.'), Just(b'e'), Just(b' '), Just(b'a'), Just(b'n'), any::<u8>()], 0..40)) {
            agree(&bytes);
        }
    }

    #[test]
    fn strictness_is_kept_on_both_paths() {
        for bad in [
            &br#"{"a":1,"a":2}"#[..],
            br#"{"b":1,"a":2,"a":3}"#,
            br#"{"x":{"a":1,"a":1}}"#,
            br#"[{"k":1,"k":1}]"#,
            br#"{"a\u0062":1,"ab":2}"#,
            b"1.0",
            b"[1e3]",
            br#"{"a":-1.5}"#,
            b"123456789012345678901234567890",
            b"-9223372036854775809",
            b"18446744073709551616",
            br#"{"$serde_json::private::Number":"1"}"#,
            br#"["\ud800"]"#,
            b"[01]",
            b"{} x",
            b"[1,]",
            b"{\"a\":1,}",
            b"\"a\nb\"",
        ] {
            assert_eq!(document(bad), None, "{}", String::from_utf8_lossy(bad));
            // Refused by the strict parser the slow path uses, as JSON it will not accept.
            let refused = crate::canonical::canonicalize(bad);
            assert!(
                matches!(refused, Err(crate::Error::Json(_))),
                "{}: {refused:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn unsorted_input_goes_to_the_slow_path_and_still_canonicalises() {
        let text = br#"{"b":1,"a":{"d":[1,2],"c":null}}"#;
        assert_eq!(document(text), None);
        assert_eq!(
            crate::canonical::canonicalize(text).unwrap(),
            br#"{"a":{"c":null,"d":[1,2]},"b":1}"#
        );
    }

    #[test]
    fn plain_runs_end_at_the_first_special_byte() {
        let reference = |b: &[u8]| b.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20);
        let specials = [b'"', b'\\', 0x00, 0x1f, b'\n'];
        let plain = [
            b'a', b' ', 0x7f, 0x80, 0xff, b'!', b'#', b'[', b']', 0x20, 0x21, 0x5b,
        ];
        for len in 0..20 {
            for at in 0..=len {
                for &special in &specials {
                    for &filler in &plain {
                        let mut bytes = vec![filler; len];
                        if at < len {
                            bytes[at] = special;
                            // A second special byte after the first never hides it.
                            if at + 1 < len {
                                bytes[at + 1] = b'"';
                            }
                        }
                        assert_eq!(plain_run(&bytes), reference(&bytes), "{bytes:?}");
                    }
                }
            }
        }
    }

    proptest! {
        #[test]
        fn plain_run_matches_a_byte_by_byte_search(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let reference = bytes.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20);
            prop_assert_eq!(plain_run(&bytes), reference);
        }
    }

    #[test]
    fn escapes_are_decoded() {
        let text = br#"["\u00e9\/\n\u0022\\\ud83d\ude00\u0001", -0, 0, -9223372036854775808]"#;
        assert_eq!(document(text), None, "-0 is left to the slow path");
        let text = br#"["\u00e9\/\n\u0022\\\ud83d\ude00\u0001", 0, -9223372036854775808, 18446744073709551615]"#;
        assert_eq!(
            agree(text).unwrap(),
            "[\"é/\n\\\"\\\\😀\u{1}\",0,-9223372036854775808,18446744073709551615]".as_bytes()
        );
    }

    #[test]
    fn envelope_keeps_signed_only_and_its_type() {
        let text = br#"{ "signatures": [{"keyid": "a", "sig": "b"}], "signed": {"_type": "tar\u0067ets", "x": "\n"}, "z": 1 }"#;
        let e = envelope(text).unwrap();
        assert_eq!(&e.canonical[..], b"{\"_type\":\"targets\",\"x\":\"\n\"}");
        assert_eq!(e.type_.as_deref(), Some("targets"));
        assert_eq!(e.signatures, br#"[{"keyid": "a", "sig": "b"}]"#);
        assert_eq!(e.extra.len(), 1);
        assert_eq!(e.extra[0].0, "z");
        assert!(matches!(e.canonical, Cow::Owned(_)));
        // Unsorted or duplicated top-level keys, a missing member: slow path.
        assert!(envelope(br#"{"signed":{"_type":"t"},"signatures":[]}"#).is_none());
        assert!(envelope(br#"{"signatures":[],"signatures":[],"signed":{"_type":"t"}}"#).is_none());
        assert!(envelope(br#"{"signed":{"_type":"t"}}"#).is_none());
        assert!(envelope(br#"{"signatures":[],"signed":{"_type":"t","a":1.5}}"#).is_none());
        assert!(envelope(br#"{"signatures":[{"a":1,"a":1}],"signed":{"_type":"t"}}"#).is_none());
    }

    #[test]
    fn canonical_signed_is_borrowed_in_place() {
        // Members before and after `signed`, escapes that canonical form keeps (`\"`, `\\`):
        // the canonical bytes are the input's own.
        let text = br#"{"a":[1,{"k":" "}],"signatures":[{"keyid":"a","sig":"b"}],"signed":{"_type":"t","q":"\"\\","v":[true,null,-1,{}]},"z":{"y":"\u00e9"}}"#;
        let e = envelope(text).unwrap();
        let Cow::Borrowed(canonical) = e.canonical else {
            panic!("copied")
        };
        assert_eq!(canonical, e.signed);
        assert_eq!(
            canonical,
            br#"{"_type":"t","q":"\"\\","v":[true,null,-1,{}]}"#
        );
        // Anything that changes a byte makes a copy, identical to what the tree path gives.
        for text in [
            &br#"{"signatures":[],"signed":{"_type":"t","x":"\n"}}"#[..],
            br#"{"signatures":[],"signed":{"_type":"t","x":"\u00e9"}}"#,
            br#"{"signatures":[],"signed":{"_type":"t","x":"\/"}}"#,
            br#"{"signatures":[],"signed":{"_type":"t", "x":1}}"#,
            br#"{"signatures":[],"signed":{"_type":"t","x":[1, 2]}}"#,
        ] {
            let e = envelope(text).unwrap();
            assert!(matches!(e.canonical, Cow::Owned(_)), "{text:?}");
            let tree = parse(text).unwrap();
            assert_eq!(&e.canonical[..], &to_vec(&tree["signed"]).unwrap()[..]);
        }
        // Whitespace around `signed` is not part of it.
        let e = envelope(br#"{ "signatures" : [ ] , "signed" : {"_type":"t"} }"#).unwrap();
        assert!(matches!(e.canonical, Cow::Borrowed(b"{\"_type\":\"t\"}")));
    }
}
