//! A new version of a large targets role made from the canonical bytes of the last one.
//!
//! A server adding one target to a role of 100,000 need not hold them as a tree of maps and
//! strings (about fifteen times the bytes of the file): [`TargetsBytes`] keeps the canonical
//! bytes of `signed`, the role's members other than its target list, and where each target
//! entry lies in those bytes. A new version copies the untouched entries byte for byte, writes
//! the changed ones, and rewrites the members around the list (version, expiry), in one buffer
//! that also has room for the envelope. Memory: the old bytes, the new bytes and an index of
//! a few words per target.
//!
//! The result is byte for byte what [`Signed::new`] makes of the same role as a [`Targets`]
//! tree (property-tested below), so what a client verifies cannot depend on which way a
//! version was made.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::ops::Range;

use serde_json::Map;

use super::{
    write_target_entry, write_targets_signed, Signed, SignedRef, TargetFile, TargetsHead,
    TargetsMembers,
};
use crate::{canonical, Error, Expires};

/// Room left after the canonical bytes for the envelope around them (signature list and
/// member names), so that [`Signed::into_bytes`] does not reallocate: enough for eight RSA
/// 4096 signatures.
const ENVELOPE_ROOM: usize = 8 * 1200;

/// One target entry: the bytes of its path between the quotes (escaped as canonical JSON
/// escapes, `\"` and `\\` only) and where its `"path":{...}` member ends.
#[derive(Clone, Debug)]
struct Entry {
    key: Range<usize>,
    end: usize,
}

/// A targets role as the canonical bytes of its `signed` object, indexed by target path.
pub struct TargetsBytes<'a> {
    head: TargetsHead,
    canonical: Cow<'a, [u8]>,
    entries: Vec<Entry>,
    /// Where the canonical bytes start in the envelope they were read from, when they are a
    /// slice of it.
    base: Option<usize>,
    envelope_len: usize,
}

/// Changes to a target list by path: `Some` adds or replaces the entry, `None` removes it.
pub type TargetChanges = BTreeMap<String, Option<TargetFile>>;

impl<'a> TargetsBytes<'a> {
    /// Reads a targets envelope (`targets.json` as stored or received) under every rule of
    /// [`SignedRef::from_slice`]. Signatures are not checked: this is for the holder of the
    /// repository, re-signing what it stored.
    pub fn from_envelope(bytes: &'a [u8]) -> Result<Self, Error> {
        let env = SignedRef::<TargetsHead>::from_slice(bytes)?;
        let head = env.signed;
        let canonical = env.canonical;
        let entries = index(&canonical, head.target_count)?;
        if entries.len() != head.target_count {
            return Err(Error::field(
                "targets",
                "the target list does not have the entries its parse counted",
            ));
        }
        let base = match &canonical {
            Cow::Borrowed(slice) => {
                // Address arithmetic only: where the slice starts within `bytes`.
                let offset = (slice.as_ptr() as usize).checked_sub(bytes.as_ptr() as usize);
                offset.filter(|o| o + slice.len() <= bytes.len())
            }
            Cow::Owned(_) => None,
        };
        Ok(Self {
            head,
            canonical,
            entries,
            base,
            envelope_len: bytes.len(),
        })
    }

    /// The role's members besides its target list.
    pub fn head(&self) -> &TargetsHead {
        &self.head
    }

    /// How many targets the role lists.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the role lists no target.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry of `path`, parsed from its bytes alone.
    pub fn get(&self, path: &str) -> Result<Option<TargetFile>, Error> {
        let Ok(i) = self.find(path)? else {
            return Ok(None);
        };
        let e = &self.entries[i];
        // The value starts after `"path":`.
        let value = self
            .canonical
            .get(e.key.end + 2..e.end)
            .ok_or_else(|| Error::field("targets", "an entry ends before its value"))?;
        // Canonical bytes keep control characters raw; JSON needs them escaped.
        let text = canonical::escape_controls(value.to_vec());
        let file = serde_json::from_slice(&text)
            .map_err(|e| Error::field(format!("targets[{path:?}]"), e.to_string()))?;
        Ok(Some(file))
    }

    /// Where `path` is in the index (`Ok`), or where it would go (`Err`).
    fn find(&self, path: &str) -> Result<Result<usize, usize>, Error> {
        let mut failed = None;
        let found = self.entries.binary_search_by(|e| {
            match compare_key(&self.canonical[e.key.clone()], path.as_bytes()) {
                Ok(order) => order,
                Err(err) => {
                    failed = Some(err);
                    Ordering::Equal
                }
            }
        });
        match failed {
            Some(err) => Err(err),
            None => Ok(found),
        }
    }

    /// The next version: `version` and `expires` set, `changes` applied, every other entry
    /// copied as it was, in a new buffer with room for the envelope. Unsigned; sign it, then
    /// write it with [`Signed::into_bytes`].
    ///
    /// Removing a path the role does not list is an error: the caller decides what a
    /// missing target means before asking.
    pub fn next(
        &self,
        version: u64,
        expires: Expires,
        changes: &TargetChanges,
    ) -> Result<Signed<TargetsHead>, Error> {
        let (head, layout) = self.layout(version, expires, changes)?;
        let mut out = Vec::with_capacity(layout.len + ENVELOPE_ROOM);
        for piece in &layout.pieces {
            match piece {
                Piece::Old(range) => out.extend_from_slice(&self.canonical[range.clone()]),
                Piece::New(bytes) => out.extend_from_slice(bytes),
            }
        }
        Ok(unsigned(head, out))
    }

    /// [`TargetsBytes::next`] to be made in the buffer this was read from, which then holds
    /// only one version at a time: `None` when the canonical bytes are not a slice of that
    /// buffer (its file form escapes control characters), and `next` must copy.
    pub fn plan(
        &self,
        version: u64,
        expires: Expires,
        changes: &TargetChanges,
    ) -> Result<Option<Splice>, Error> {
        let Some(base) = self.base else {
            return Ok(None);
        };
        let (head, mut layout) = self.layout(version, expires, changes)?;
        for piece in &mut layout.pieces {
            if let Piece::Old(range) = piece {
                *range = range.start + base..range.end + base;
            }
        }
        Ok(Some(Splice {
            head,
            layout,
            envelope_len: self.envelope_len,
        }))
    }

    /// The new head and the pieces of the new `signed` bytes.
    fn layout(
        &self,
        version: u64,
        expires: Expires,
        changes: &TargetChanges,
    ) -> Result<(TargetsHead, Layout), Error> {
        let mut head = self.head.clone();
        head.version = version;
        head.expires = expires;
        let members = TargetsMembers {
            type_: &head.type_,
            spec_version: &head.spec_version,
            version: head.version,
            expires: &head.expires,
            delegations: head.delegations.as_ref(),
            extra: &head.extra,
        };
        // The members around the list, written around an empty one.
        let mut at = 0usize;
        let skeleton = write_targets_signed(&members, 256, |out| {
            at = out.len();
            out.extend_from_slice(b"{}");
            Ok(())
        })?;
        let (Some(before), Some(after)) = (skeleton.get(..at + 1), skeleton.get(at + 1..)) else {
            return Err(Error::field("targets", "no target list was written"));
        };
        let mut layout = Layout::default();
        layout.new_bytes(before);
        self.merge(changes, &mut layout)?;
        layout.new_bytes(after);
        head.target_count = layout.count;
        Ok((head, layout))
    }

    /// The target entries of the next version, in order: runs of unchanged entries as ranges
    /// of the current bytes, changed ones written.
    fn merge(&self, changes: &TargetChanges, layout: &mut Layout) -> Result<(), Error> {
        let mut old = self.entries.iter().enumerate().peekable();
        let mut new = changes.iter().peekable();
        loop {
            let order = match (old.peek(), new.peek()) {
                (None, None) => break,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some((_, e)), Some((path, _))) => {
                    compare_key(&self.canonical[e.key.clone()], path.as_bytes())?
                }
            };
            if order != Ordering::Greater {
                // Invariant: `order` is Less or Equal only when `old` has a next entry.
                let Some((i, e)) = old.next() else { break };
                if order == Ordering::Less {
                    layout.old_entry(i, e);
                    continue;
                }
            }
            let Some((path, change)) = new.next() else {
                break;
            };
            match change {
                Some(file) => {
                    let mut entry = Vec::new();
                    write_target_entry(path, file, &mut entry)?;
                    layout.new_entry(&entry);
                }
                None if order == Ordering::Equal => {}
                None => {
                    return Err(Error::field(
                        format!("targets[{path:?}]"),
                        "cannot be removed: the role does not list it",
                    ))
                }
            }
        }
        Ok(())
    }
}

/// A next version as [`Piece`]s of its canonical `signed` bytes.
#[derive(Default)]
struct Layout {
    pieces: Vec<Piece>,
    /// The length of the bytes the pieces make.
    len: usize,
    /// Target entries so far.
    count: usize,
    /// The index of the old entry last added, when it was the last thing added.
    last_old: Option<usize>,
}

/// Bytes of a next version: a range of the current bytes, or written anew.
enum Piece {
    Old(Range<usize>),
    New(Vec<u8>),
}

impl Layout {
    fn new_bytes(&mut self, bytes: &[u8]) {
        self.len += bytes.len();
        self.last_old = None;
        if let Some(Piece::New(last)) = self.pieces.last_mut() {
            last.extend_from_slice(bytes);
        } else {
            self.pieces.push(Piece::New(bytes.to_vec()));
        }
    }

    /// Old entry `i`: joined to the run of the entry before it when that came just before
    /// (the comma between them is part of the run), else a run of its own.
    fn old_entry(&mut self, i: usize, e: &Entry) {
        let follows = i
            .checked_sub(1)
            .is_some_and(|prev| self.last_old == Some(prev));
        match self.pieces.last_mut() {
            Some(Piece::Old(run)) if follows => {
                self.len += e.end - run.end;
                run.end = e.end;
            }
            _ => {
                if self.count > 0 {
                    self.new_bytes(b",");
                }
                // The member from its opening quote to its closing brace.
                let member = e.key.start - 1..e.end;
                self.len += member.len();
                self.pieces.push(Piece::Old(member));
            }
        }
        self.count += 1;
        self.last_old = Some(i);
    }

    fn new_entry(&mut self, member: &[u8]) {
        if self.count > 0 {
            self.new_bytes(b",");
        }
        self.new_bytes(member);
        self.count += 1;
    }
}

/// A next version planned by [`TargetsBytes::plan`], to be made in the buffer the current
/// one was read from.
pub struct Splice {
    head: TargetsHead,
    layout: Layout,
    envelope_len: usize,
}

impl Splice {
    /// Makes the next version in `buffer`, the envelope [`TargetsBytes::plan`] read (same
    /// bytes; a buffer of another length is refused). The unchanged entries are moved within
    /// it, never copied elsewhere: peak memory is the larger of the two versions, not both.
    pub fn apply(self, mut buffer: Vec<u8>) -> Result<Signed<TargetsHead>, Error> {
        if buffer.len() != self.envelope_len {
            return Err(Error::field(
                "targets",
                "the buffer is not the one the splice was planned on",
            ));
        }
        let total = self.layout.len;
        let mut dests = Vec::with_capacity(self.layout.pieces.len());
        let mut at = 0usize;
        for piece in &self.layout.pieces {
            dests.push(at);
            at += match piece {
                Piece::Old(range) => range.len(),
                Piece::New(bytes) => bytes.len(),
            };
        }
        buffer.reserve((total + ENVELOPE_ROOM).saturating_sub(buffer.len()));
        if buffer.len() < total {
            buffer.resize(total, 0);
        }
        let moves = || {
            self.layout
                .pieces
                .iter()
                .zip(&dests)
                .filter_map(|(piece, &dest)| match piece {
                    Piece::Old(range) => Some((range.clone(), dest)),
                    Piece::New(_) => None,
                })
        };
        // Sources and destinations both run in order without overlapping their own kind.
        // A run moving left cannot reach the source of any run after it, nor one moving
        // right the source of any run before it: so the left-moving runs go first to last,
        // then the right-moving ones last to first, and the written pieces, which have no
        // source, after both.
        for (src, dest) in moves().filter(|(src, dest)| *dest <= src.start) {
            buffer.copy_within(src, dest);
        }
        let right: Vec<_> = moves().filter(|(src, dest)| *dest > src.start).collect();
        for (src, dest) in right.into_iter().rev() {
            buffer.copy_within(src, dest);
        }
        for (piece, &dest) in self.layout.pieces.iter().zip(&dests) {
            if let Piece::New(bytes) = piece {
                buffer[dest..dest + bytes.len()].copy_from_slice(bytes);
            }
        }
        buffer.truncate(total);
        Ok(unsigned(self.head, buffer))
    }
}

fn unsigned(head: TargetsHead, canonical: Vec<u8>) -> Signed<TargetsHead> {
    Signed {
        signed: head,
        signatures: Vec::new(),
        canonical,
        extra: Map::new(),
    }
}

/// Orders the escaped bytes of a canonical key against a path, by code point (byte order
/// of UTF-8), as canonical JSON sorts keys.
fn compare_key(escaped: &[u8], path: &[u8]) -> Result<Ordering, Error> {
    if !escaped.contains(&b'\\') {
        return Ok(escaped.cmp(path));
    }
    Ok(unescape(escaped)?.as_slice().cmp(path))
}

/// Orders two escaped canonical keys by what they decode to.
fn order(a: &[u8], b: &[u8]) -> Result<Ordering, Error> {
    if !b.contains(&b'\\') {
        return compare_key(a, b);
    }
    compare_key(a, &unescape(b)?)
}

/// A canonical key's bytes without their escapes (only `\"` and `\\` exist in canonical
/// JSON).
fn unescape(escaped: &[u8]) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(escaped.len());
    let mut bytes = escaped.iter();
    while let Some(&b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match bytes.next() {
            Some(&c @ (b'"' | b'\\')) => out.push(c),
            _ => return Err(not_canonical("an escape other than \\\" or \\\\ in a path")),
        }
    }
    Ok(out)
}

fn not_canonical(what: &str) -> Error {
    Error::field("targets", format!("not canonical JSON: {what}"))
}

/// The target entries of the canonical `signed` object of a targets role, checked to be in
/// strictly increasing order of path.
fn index(signed: &[u8], expected: usize) -> Result<Vec<Entry>, Error> {
    let mut list = None;
    for (key, value) in Members::of(signed, 0..signed.len())? {
        let (key, value) = (key?, value);
        if &signed[key] == b"targets" {
            list = Some(value);
        }
    }
    let list = list.ok_or_else(|| Error::field("targets", "missing"))?;
    // Sized once from the count the parse found: growing it would copy it and leave it up
    // to twice its size.
    let mut entries: Vec<Entry> = Vec::with_capacity(expected);
    for (key, value) in Members::of(signed, list)? {
        let key = key?;
        if signed.get(value.start) != Some(&b'{') {
            return Err(Error::field("targets", "an entry is not an object"));
        }
        if let Some(prev) = entries.last() {
            if order(&signed[prev.key.clone()], &signed[key.clone()])? != Ordering::Less {
                return Err(not_canonical("target paths out of order"));
            }
        }
        entries.push(Entry {
            key,
            end: value.end,
        });
    }
    Ok(entries)
}

/// The members of the canonical object at `range` of `bytes`: each key's bytes between its
/// quotes, and its value's range.
struct Members<'b> {
    bytes: &'b [u8],
    pos: usize,
    end: usize,
    done: bool,
}

impl<'b> Members<'b> {
    fn of(bytes: &'b [u8], range: Range<usize>) -> Result<Self, Error> {
        let ok = range.end >= range.start + 2
            && bytes.get(range.start) == Some(&b'{')
            && bytes.get(range.end - 1) == Some(&b'}');
        if !ok {
            return Err(not_canonical("an object expected"));
        }
        Ok(Self {
            bytes,
            pos: range.start + 1,
            end: range.end - 1,
            done: range.end == range.start + 2,
        })
    }

    fn member(&mut self) -> Result<(Range<usize>, Range<usize>), Error> {
        if self.bytes.get(self.pos) != Some(&b'"') {
            return Err(not_canonical("a key expected"));
        }
        let key_end = string_end(self.bytes, self.pos)?;
        let key = self.pos + 1..key_end - 1;
        if self.bytes.get(key_end) != Some(&b':') {
            return Err(not_canonical("':' expected"));
        }
        let start = key_end + 1;
        let end = value_end(self.bytes, start)?;
        if end > self.end {
            return Err(not_canonical("a value runs past its object"));
        }
        match self.bytes.get(end) {
            Some(b',') if end < self.end => self.pos = end + 1,
            _ if end == self.end => self.done = true,
            _ => return Err(not_canonical("',' or '}' expected")),
        }
        Ok((key, start..end))
    }
}

impl Iterator for Members<'_> {
    type Item = (Result<Range<usize>, Error>, Range<usize>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.member() {
            Ok((key, value)) => Some((Ok(key), value)),
            Err(e) => {
                self.done = true;
                Some((Err(e), 0..0))
            }
        }
    }
}

/// The index just past the string starting at `start` (its opening quote).
fn string_end(bytes: &[u8], start: usize) -> Result<usize, Error> {
    let mut i = start + 1;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'"' => return Ok(i + 1),
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
    Err(not_canonical("a string does not end"))
}

/// The index just past the value starting at `start`.
fn value_end(bytes: &[u8], start: usize) -> Result<usize, Error> {
    match bytes.get(start) {
        Some(b'"') => string_end(bytes, start),
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            let mut i = start;
            while let Some(&b) = bytes.get(i) {
                match b {
                    b'"' => {
                        i = string_end(bytes, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Ok(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            Err(not_canonical("an object or array does not end"))
        }
        Some(_) => {
            let len = bytes[start..]
                .iter()
                .position(|b| matches!(b, b',' | b'}' | b']'))
                .ok_or_else(|| not_canonical("a value does not end"))?;
            Ok(start + len)
        }
        None => Err(not_canonical("a value expected")),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::super::{Metadata, Targets};
    use super::*;

    /// The canonical bytes of a tree: the reference [`TargetsBytes::next`] matches.
    fn reference(t: &Targets) -> Vec<u8> {
        t.to_canonical().expect("canonical")
    }

    fn file(n: u64, custom: Option<serde_json::Value>) -> TargetFile {
        TargetFile {
            length: n,
            hashes: BTreeMap::from([("sha256".to_owned(), format!("{n:064x}"))]),
            custom,
            extra: BTreeMap::new(),
        }
    }

    fn role(paths: &[&str]) -> Targets {
        role_with(paths, true)
    }

    /// A role of `paths`; with `controls`, every other entry has a control character.
    fn role_with(paths: &[&str], controls: bool) -> Targets {
        let mut t = Targets::new(7, Expires::from_unix(4_000_000_000).expect("expires"));
        for (i, p) in paths.iter().enumerate() {
            let mut custom = json!({"name": p, "tags": ["ci"]});
            if controls && i % 2 == 1 {
                // A control character: the stored file escapes it, canonical bytes do not.
                custom["note"] = json!("line\nbreak");
            }
            t.targets
                .insert((*p).to_owned(), file(i as u64, Some(custom)));
        }
        t
    }

    fn file_bytes(t: &Targets) -> Vec<u8> {
        Signed::new(t.clone()).expect("signed").to_bytes()
    }

    /// What `next` must equal: the same changes applied to the tree.
    fn applied(t: &Targets, version: u64, expires: &Expires, changes: &TargetChanges) -> Targets {
        let mut t = t.clone();
        t.version = version;
        t.expires = *expires;
        for (p, c) in changes {
            match c {
                Some(f) => {
                    t.targets.insert(p.clone(), f.clone());
                }
                None => {
                    t.targets.remove(p);
                }
            }
        }
        t
    }

    #[test]
    fn adding_replacing_and_removing_give_the_bytes_of_the_tree() {
        let t = role(&["a-1", "b\"q-1", "b\\s-1", "c-1", "é-1"]);
        let bytes = file_bytes(&t);
        let tb = TargetsBytes::from_envelope(&bytes).expect("read");
        assert_eq!(tb.len(), 5);
        assert_eq!(
            tb.get("b\"q-1").expect("get"),
            t.targets.get("b\"q-1").cloned()
        );
        assert_eq!(tb.get("c-1").expect("get"), t.targets.get("c-1").cloned());
        assert_eq!(tb.get("zz").expect("get"), None);
        let expires = Expires::from_unix(4_100_000_000).expect("expires");
        let changes = TargetChanges::from([
            ("0-first".to_owned(), Some(file(9, None))),
            ("b\\s-1".to_owned(), None),
            ("c-1".to_owned(), Some(file(10, Some(json!({"tags": []}))))),
            ("d-1".to_owned(), Some(file(11, None))),
            ("ü-last".to_owned(), Some(file(12, None))),
        ]);
        let next = tb.next(8, expires, &changes).expect("next");
        let want = applied(&t, 8, &expires, &changes);
        assert_eq!(next.canonical(), reference(&want).as_slice());
        assert_eq!(next.signed.target_count, want.targets.len());
        assert_eq!(next.signed.version, 8);
        // The file bytes too, written in place.
        assert_eq!(next.clone().into_bytes(), next.to_bytes());
        assert_eq!(next.into_bytes(), file_bytes(&want));
    }

    #[test]
    fn removing_what_is_not_listed_is_refused() {
        let bytes = file_bytes(&role(&["a-1", "c-1"]));
        let tb = TargetsBytes::from_envelope(&bytes).expect("read");
        let expires = Expires::from_unix(4_100_000_000).expect("expires");
        for missing in ["0", "b-1", "z"] {
            let changes = TargetChanges::from([(missing.to_owned(), None)]);
            let e = tb.next(8, expires, &changes).unwrap_err();
            assert!(e.to_string().contains("does not list it"), "{missing}: {e}");
        }
    }

    #[test]
    fn an_empty_role_and_no_changes() {
        let empty = role(&[]);
        let bytes = file_bytes(&empty);
        let tb = TargetsBytes::from_envelope(&bytes).expect("read");
        assert!(tb.is_empty());
        let expires = Expires::from_unix(4_100_000_000).expect("expires");
        let same = tb.next(1, expires, &TargetChanges::new()).expect("next");
        assert_eq!(
            same.canonical(),
            reference(&applied(&empty, 1, &expires, &TargetChanges::new())).as_slice()
        );
        let one = TargetChanges::from([("x".to_owned(), Some(file(1, None)))]);
        let next = tb.next(2, expires, &one).expect("next");
        assert_eq!(
            next.canonical(),
            reference(&applied(&empty, 2, &expires, &one)).as_slice()
        );
    }

    #[test]
    fn bytes_that_are_not_a_canonical_target_list_are_refused() {
        // Out of order: a file no strict parse accepts is refused before indexing; an index
        // over such bytes must refuse too.
        for bad in [
            &br#"{"_type":"targets","targets":{"b":{},"a":{}}}"#[..],
            br#"{"_type":"targets","targets":{"a":{},"a":{}}}"#,
            br#"{"_type":"targets","targets":{"a":1}}"#,
            br#"{"_type":"targets","targets":{"a":{}"#,
            br#"{"_type":"targets","targets":[]}"#,
            br#"{"_type":"targets"}"#,
            br#""#,
        ] {
            assert!(index(bad, 2).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        let good = br#"{"_type":"targets","targets":{"a":{},"a\\":{},"b":{"x":[1,{"}":"]"}]}}}"#;
        let entries = index(good, 3).expect("index");
        assert_eq!(entries.len(), 3);
    }

    fn path() -> impl Strategy<Value = String> {
        // Escapes, multi-byte characters and shared prefixes, where ordering goes wrong.
        proptest::string::string_regex("[ab\"\\\\é\u{10000}-]{0,5}").expect("regex")
    }

    fn plain_path() -> impl Strategy<Value = String> {
        proptest::string::string_regex("[abé\u{10000}-]{0,5}").expect("regex")
    }

    #[test]
    fn bytes_with_escapes_are_spliced_by_copying() {
        let bytes = file_bytes(&role_with(&["a\"q", "b"], false));
        let tb = TargetsBytes::from_envelope(&bytes).expect("read");
        let expires = Expires::from_unix(4_100_000_000).expect("expires");
        assert!(tb
            .plan(8, expires, &TargetChanges::new())
            .expect("plan")
            .is_none());
        assert_eq!(
            tb.next(8, expires, &TargetChanges::new())
                .expect("next")
                .signed
                .target_count,
            2
        );
    }

    proptest! {
        #[test]
        fn next_equals_the_tree_for_any_changes(
            start in proptest::collection::btree_set(path(), 0..12),
            adds in proptest::collection::btree_set(path(), 0..6),
            removals in proptest::collection::vec(any::<prop::sample::Index>(), 0..4),
        ) {
            let paths: Vec<&str> = start.iter().map(String::as_str).collect();
            let t = role(&paths);
            let bytes = file_bytes(&t);
            let tb = TargetsBytes::from_envelope(&bytes).expect("read");
            for p in &start {
                prop_assert_eq!(tb.get(p).expect("get"), t.targets.get(p).cloned());
            }
            let mut changes = TargetChanges::new();
            for (i, p) in adds.iter().enumerate() {
                changes.insert(p.clone(), Some(file(100 + i as u64, None)));
            }
            if !paths.is_empty() {
                for r in &removals {
                    changes.insert(r.get(&paths).to_string(), None);
                }
            }
            let expires = Expires::from_unix(4_100_000_000).expect("expires");
            let next = tb.next(9, expires, &changes).expect("next");
            let want = applied(&t, 9, &expires, &changes);
            let reference = reference(&want);
            prop_assert_eq!(next.canonical(), reference.as_slice());
            prop_assert_eq!(next.into_bytes(), file_bytes(&want));
        }

        #[test]
        fn splicing_in_place_gives_the_bytes_of_copying(
            start in proptest::collection::btree_set(plain_path(), 0..12),
            adds in proptest::collection::btree_map(plain_path(), 0usize..400, 0..6),
            removals in proptest::collection::vec(any::<prop::sample::Index>(), 0..4),
            version in prop::sample::select(vec![8u64, 10, 123_456]),
            controls in any::<bool>(),
        ) {
            // Entries of every size, removals, and a version of another length: runs of
            // unchanged entries move both ways.
            let paths: Vec<&str> = start.iter().map(String::as_str).collect();
            let t = role_with(&paths, controls);
            let bytes = file_bytes(&t);
            let tb = TargetsBytes::from_envelope(&bytes).expect("read");
            let mut changes = TargetChanges::new();
            for (i, (p, pad)) in adds.iter().enumerate() {
                let custom = json!({"pad": "x".repeat(*pad)});
                changes.insert(p.clone(), Some(file(100 + i as u64, Some(custom))));
            }
            if !paths.is_empty() {
                for r in &removals {
                    changes.insert(r.get(&paths).to_string(), None);
                }
            }
            let expires = Expires::from_unix(4_100_000_000).expect("expires");
            let copied = tb.next(version, expires, &changes).expect("next");
            let plan = tb.plan(version, expires, &changes).expect("plan");
            // In place whenever the file's bytes are the canonical ones; not when the file
            // escapes control characters (nor quotes or backslashes, which the scan rewrites:
            // `bytes_with_escapes_are_spliced_by_copying`).
            prop_assert_eq!(plan.is_some(), !(controls && paths.len() > 1));
            if let Some(plan) = plan {
                drop(tb);
                let spliced = plan.apply(bytes.clone()).expect("apply");
                prop_assert_eq!(spliced.canonical(), copied.canonical());
                prop_assert_eq!(&spliced.signed, &copied.signed);
                prop_assert_eq!(spliced.into_bytes(), copied.into_bytes());
            }
        }
    }

    #[test]
    fn a_splice_refuses_another_buffer() {
        let bytes = file_bytes(&role_with(&["a", "b"], false));
        let tb = TargetsBytes::from_envelope(&bytes).expect("read");
        let expires = Expires::from_unix(4_100_000_000).expect("expires");
        let plan = tb.plan(8, expires, &TargetChanges::new()).expect("plan");
        let plan = plan.expect("in place");
        let e = plan.apply(bytes[1..].to_vec()).unwrap_err();
        assert!(e.to_string().contains("not the one"), "{e}");
    }
}
