//! Which delegated role is trusted for which target path.

use crate::hash;
use crate::metadata::{DelegatedRole, SuccinctRoles};

impl DelegatedRole {
    /// True when this role is trusted for `target_path` (spec 5.6.7.2 and TAP 15).
    pub fn is_delegated_path(&self, target_path: &str) -> bool {
        if let Some(patterns) = &self.paths {
            return patterns.iter().any(|p| path_matches(p, target_path));
        }
        if let Some(prefixes) = &self.path_hash_prefixes {
            let digest = hash::sha256_hex(target_path.as_bytes());
            return prefixes.iter().any(|p| digest.starts_with(p.as_str()));
        }
        false
    }
}

impl SuccinctRoles {
    /// Number of bins, `2^bit_length`.
    pub fn bin_count(&self) -> u64 {
        1u64 << self.bit_length
    }

    /// The name of the bin role responsible for `target_path`.
    pub fn role_for_target(&self, target_path: &str) -> String {
        let digest = hash::sha256(target_path.as_bytes());
        let first = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
        let bin = u64::from(first) >> (32 - self.bit_length);
        self.bin_name(bin)
    }

    /// `{name_prefix}-{bin}` with the bin in lowercase hex, zero-padded to the width of the
    /// largest bin number.
    pub fn bin_name(&self, bin: u64) -> String {
        let width = format!("{:x}", self.bin_count() - 1).len();
        format!("{}-{:0width$x}", self.name_prefix, bin, width = width)
    }

    /// True when `role_name` is one of this delegation's bins.
    pub fn is_bin(&self, role_name: &str) -> bool {
        let Some(suffix) = role_name
            .strip_prefix(self.name_prefix.as_str())
            .and_then(|s| s.strip_prefix('-'))
        else {
            return false;
        };
        let width = format!("{:x}", self.bin_count() - 1).len();
        suffix.len() == width
            && suffix
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            && u64::from_str_radix(suffix, 16).is_ok_and(|n| n < self.bin_count())
    }
}

/// Shell-style matching where `*` and `?` never cross `/`: the pattern and the path must
/// have the same number of `/`-separated parts, each matched on its own.
pub fn path_matches(pattern: &str, path: &str) -> bool {
    let pat: Vec<&str> = pattern.split('/').collect();
    let parts: Vec<&str> = path.split('/').collect();
    pat.len() == parts.len()
        && pat
            .iter()
            .zip(&parts)
            .all(|(p, s)| glob(p.as_bytes(), s.as_bytes()))
}

/// `fnmatch` for one path part: `*`, `?`, `[...]` (with `!` negation), everything else literal.
fn glob(pat: &[u8], s: &[u8]) -> bool {
    let (mut p, mut i) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        if p < pat.len() {
            match pat[p] {
                b'*' => {
                    star = Some((p, i));
                    p += 1;
                    continue;
                }
                b'?' => {
                    p += 1;
                    i += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, next)) = class(&pat[p..], s[i]) {
                        if matched {
                            p += next;
                            i += 1;
                            continue;
                        }
                    } else if s[i] == b'[' {
                        p += 1;
                        i += 1;
                        continue;
                    }
                }
                c if c == s[i] => {
                    p += 1;
                    i += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, si)) => {
                p = sp + 1;
                i = si + 1;
                star = Some((sp, si + 1));
            }
            None => return false,
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

/// Matches `c` against the class at the start of `pat`; returns (matched, class length), or
/// `None` when the `[` starts no complete class (then it is a literal).
fn class(pat: &[u8], c: u8) -> Option<(bool, usize)> {
    let mut j = 1;
    let negate = pat.get(j).is_some_and(|&b| b == b'!');
    if negate {
        j += 1;
    }
    let start = j;
    let mut matched = false;
    while j < pat.len() {
        if pat[j] == b']' && j > start {
            return Some((matched != negate, j + 1));
        }
        if j + 2 < pat.len() && pat[j + 1] == b'-' && pat[j + 2] != b']' {
            if pat[j] <= c && c <= pat[j + 2] {
                matched = true;
            }
            j += 3;
        } else {
            if pat[j] == c {
                matched = true;
            }
            j += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::metadata::Threshold;

    #[test]
    fn star_does_not_cross_slash() {
        assert!(path_matches("targets/*.tgz", "targets/a.tgz"));
        assert!(!path_matches("targets/*.tgz", "targets/sub/a.tgz"));
        assert!(path_matches("*", "file"));
        assert!(!path_matches("*", "dir/file"));
        assert!(path_matches("*/*", "dir/file"));
        assert!(path_matches("a?c", "abc"));
        assert!(path_matches("f[0-9].txt", "f7.txt"));
        assert!(!path_matches("f[!0-9].txt", "f7.txt"));
        assert!(path_matches("", ""));
        assert!(!path_matches("abc", "abcd"));
        assert!(path_matches("a*b*c", "aXXbYYc"));
        assert!(path_matches("[", "["));
    }

    #[test]
    fn hash_prefixes() {
        let role = DelegatedRole {
            name: "r".into(),
            keyids: vec![],
            threshold: Threshold::new(1).unwrap(),
            terminating: false,
            paths: None,
            path_hash_prefixes: Some(vec![hash::sha256_hex(b"x")[..3].to_owned()]),
            extra: BTreeMap::new(),
        };
        assert!(role.is_delegated_path("x"));
        assert!(!role.is_delegated_path("y"));
    }

    #[test]
    fn succinct_bins() {
        let s = SuccinctRoles {
            keyids: vec![],
            threshold: Threshold::new(1).unwrap(),
            bit_length: 8,
            name_prefix: "bin".into(),
            extra: BTreeMap::new(),
        };
        let d = hash::sha256(b"some/target");
        assert_eq!(
            s.role_for_target("some/target"),
            format!("bin-{:02x}", d[0])
        );
        assert!(s.is_bin("bin-ff"));
        assert!(!s.is_bin("bin-1ff"));
        assert!(!s.is_bin("bin-f"));
        let one = SuccinctRoles {
            bit_length: 1,
            ..s.clone()
        };
        assert_eq!(one.bin_name(1), "bin-1");
        let odd = SuccinctRoles { bit_length: 5, ..s };
        assert_eq!(odd.bin_name(31), "bin-1f");
        assert_eq!(odd.bin_name(3), "bin-03");
    }
}
