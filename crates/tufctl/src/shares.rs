//! Shamir share encoding for paper backups (docs/BACKUP-FORMAT.md, version 1).
//!
//! A share is a small binary record, printed as base32 in groups and as a QR code. Every
//! share carries the backup's public header (backup ID, role, threshold, count, key ID,
//! Factory name) so that shares of different backups are never mixed, and a checksum so that
//! a mistyped share is detected before any math is done. The secret bytes are split with
//! Shamir's scheme over GF(2^8) (`vsss-rs`), byte by byte, with x = the share index.

use std::fmt::Write as _;

use zeroize::Zeroizing;

pub const VERSION: u8 = 1;
pub const QR_PREFIX: &str = "TUFSHARE1:";
pub const BEGIN: &str = "-----BEGIN TUF KEY SHARE-----";
pub const END: &str = "-----END TUF KEY SHARE-----";
const CHECKSUM_LEN: usize = 4;
const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// The role a backed-up key serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyRole {
    Root,
    Targets,
}

impl KeyRole {
    fn code(self) -> u8 {
        match self {
            Self::Root => 1,
            Self::Targets => 2,
        }
    }

    fn from_code(c: u8) -> Option<Self> {
        match c {
            1 => Some(Self::Root),
            2 => Some(Self::Targets),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Root => "root",
            Self::Targets => "targets",
        }
    }
}

/// What every share of one backup has in common.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub backup_id: [u8; 8],
    pub role: KeyRole,
    pub threshold: u8,
    pub count: u8,
    pub key_id: String,
    pub factory: String,
}

impl Header {
    pub fn backup_id_hex(&self) -> String {
        hex::encode(self.backup_id)
    }
}

/// One share: the common header, its index (the x coordinate) and its y bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Share {
    pub header: Header,
    pub index: u8,
    pub y: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Share {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Share")
            .field("header", &self.header)
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

/// The secret that is split: key type, scheme and the PKCS#8 DER private key.
pub struct Secret {
    pub keytype: String,
    pub scheme: String,
    pub pkcs8: Zeroizing<Vec<u8>>,
}

impl Secret {
    pub fn encode(&self) -> Result<Zeroizing<Vec<u8>>, String> {
        let mut out = Zeroizing::new(Vec::with_capacity(
            2 + self.keytype.len() + self.scheme.len() + self.pkcs8.len(),
        ));
        push_str(&mut out, &self.keytype, "key type")?;
        push_str(&mut out, &self.scheme, "scheme")?;
        out.extend_from_slice(&self.pkcs8);
        Ok(out)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let mut r = Reader { b: bytes, at: 0 };
        let keytype = r.str("key type")?;
        let scheme = r.str("scheme")?;
        let pkcs8 = Zeroizing::new(r.rest().to_vec());
        if pkcs8.is_empty() {
            return Err("the recombined secret holds no private key".to_owned());
        }
        Ok(Self {
            keytype,
            scheme,
            pkcs8,
        })
    }
}

/// Why a share could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Not base32 at all, or nothing that looks like a share.
    Format(String),
    /// Base32, but the checksum does not match: a typing or scanning mistake.
    Checksum,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Format(m) => f.write_str(m),
            Self::Checksum => f.write_str(
                "its checksum does not match: a character was mistyped or misread; check it \
                 against the printed sheet",
            ),
        }
    }
}

/// Splits `secret` into `count` shares, any `threshold` of which give it back.
pub fn split(header: &Header, secret: &[u8]) -> Result<Vec<Share>, String> {
    if header.threshold < 2 || header.threshold > header.count {
        return Err(format!(
            "the threshold must be between 2 and the number of shares ({})",
            header.count
        ));
    }
    let mut rng = OsRng010 { failed: false };
    let raw = vsss_rs::Gf256::split_bytes(
        usize::from(header.threshold),
        usize::from(header.count),
        secret,
        &mut rng,
    )
    .map_err(|e| format!("splitting the key failed: {e:?}"))?;
    if rng.failed {
        return Err("the system random number generator failed; nothing was written".to_owned());
    }
    let mut out = Vec::with_capacity(raw.len());
    for (i, s) in raw.into_iter().enumerate() {
        let s = Zeroizing::new(s);
        // vsss-rs numbers shares 1, 2, 3, … and puts the x coordinate first.
        let index = s.first().copied().unwrap_or(0);
        if usize::from(index) != i + 1 || s.len() != secret.len() + 1 {
            return Err("unexpected share layout from the Shamir library".to_owned());
        }
        out.push(Share {
            header: header.clone(),
            index,
            y: Zeroizing::new(s[1..].to_vec()),
        });
    }
    Ok(out)
}

/// Recombines shares (already checked to belong to one backup, distinct, and enough).
pub fn combine(shares: &[&Share]) -> Result<Zeroizing<Vec<u8>>, String> {
    let raw: Vec<Vec<u8>> = shares
        .iter()
        .map(|s| {
            let mut v = Vec::with_capacity(s.y.len() + 1);
            v.push(s.index);
            v.extend_from_slice(&s.y);
            v
        })
        .collect();
    let raw = ZeroizeVecs(raw);
    vsss_rs::Gf256::combine_bytes(&raw.0)
        .map(Zeroizing::new)
        .map_err(|e| format!("recombining the shares failed: {e:?}"))
}

struct ZeroizeVecs(Vec<Vec<u8>>);

impl Drop for ZeroizeVecs {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        for v in &mut self.0 {
            v.zeroize();
        }
    }
}

impl Share {
    /// The binary record (docs/BACKUP-FORMAT.md), checksum included.
    pub fn to_bytes(&self) -> Result<Zeroizing<Vec<u8>>, String> {
        let h = &self.header;
        let mut out = Zeroizing::new(Vec::with_capacity(96 + self.y.len()));
        out.push(VERSION);
        out.extend_from_slice(&h.backup_id);
        out.push(h.role.code());
        out.push(h.threshold);
        out.push(h.count);
        out.push(self.index);
        match hex_key_id(&h.key_id) {
            Some(raw) => {
                out.push(0);
                out.extend_from_slice(&raw);
            }
            None => push_str(&mut out, &h.key_id, "key ID")?,
        }
        push_str(&mut out, &h.factory, "Factory name")?;
        let len = u16::try_from(self.y.len()).map_err(|_| "the key is too large".to_owned())?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&self.y);
        let sum = tuf_core::hash::sha256(&out);
        out.extend_from_slice(&sum[..CHECKSUM_LEN]);
        Ok(out)
    }

    pub fn from_bytes(b: &[u8]) -> Result<Self, ParseError> {
        if b.len() < CHECKSUM_LEN + 1 {
            return Err(ParseError::Format(
                "it is too short to be a share".to_owned(),
            ));
        }
        let (body, sum) = b.split_at(b.len() - CHECKSUM_LEN);
        if tuf_core::hash::sha256(body)[..CHECKSUM_LEN] != *sum {
            return Err(ParseError::Checksum);
        }
        let f = ParseError::Format;
        let mut r = Reader { b: body, at: 0 };
        let version = r.u8().map_err(f)?;
        if version != VERSION {
            return Err(ParseError::Format(format!(
                "it is a version {version} share; this tufctl reads version {VERSION}"
            )));
        }
        let mut backup_id = [0u8; 8];
        backup_id.copy_from_slice(r.take(8).map_err(f)?);
        let role = KeyRole::from_code(r.u8().map_err(f)?)
            .ok_or_else(|| ParseError::Format("unknown key role".to_owned()))?;
        let threshold = r.u8().map_err(f)?;
        let count = r.u8().map_err(f)?;
        let index = r.u8().map_err(f)?;
        if threshold < 2 || threshold > count || index == 0 || index > count {
            return Err(ParseError::Format(
                "inconsistent threshold, count or index".to_owned(),
            ));
        }
        let key_id = if r.peek() == Some(0) {
            r.u8().map_err(f)?;
            hex::encode(r.take(32).map_err(f)?)
        } else {
            r.str("key ID").map_err(f)?
        };
        let factory = r.str("Factory name").map_err(f)?;
        let len = r.take(2).map_err(f)?;
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        let y = Zeroizing::new(r.take(len).map_err(f)?.to_vec());
        if !r.rest().is_empty() {
            return Err(ParseError::Format(
                "trailing bytes after the share".to_owned(),
            ));
        }
        Ok(Self {
            header: Header {
                backup_id,
                role,
                threshold,
                count,
                key_id,
                factory,
            },
            index,
            y,
        })
    }

    /// Base32 in groups of 4, 8 groups a line, between BEGIN/END lines.
    pub fn to_text(&self) -> Result<Zeroizing<String>, String> {
        let b32 = base32(&self.to_bytes()?);
        let mut out = Zeroizing::new(String::with_capacity(b32.len() * 2 + 80));
        out.push_str(BEGIN);
        out.push('\n');
        for (i, chunk) in b32.as_bytes().chunks(4).enumerate() {
            if i > 0 {
                out.push(if i % 8 == 0 { '\n' } else { ' ' });
            }
            // Invariant: base32 output is ASCII, so any chunk is valid UTF-8.
            out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        }
        out.push('\n');
        out.push_str(END);
        out.push('\n');
        Ok(out)
    }

    /// The QR code payload: `TUFSHARE1:` and the base32 (QR alphanumeric mode).
    pub fn qr_payload(&self) -> Result<Zeroizing<String>, String> {
        let b32 = base32(&self.to_bytes()?);
        let mut s = Zeroizing::new(String::with_capacity(b32.len() + QR_PREFIX.len()));
        s.push_str(QR_PREFIX);
        s.push_str(&b32);
        Ok(s)
    }

    /// Reads a share from what a person has: a share file we wrote (.txt or .html), a text
    /// holding the typed base32 groups, or a scanned QR payload.
    pub fn parse_text(text: &str) -> Result<Self, ParseError> {
        let body = if let (Some(a), Some(b)) = (text.find(BEGIN), text.find(END)) {
            if b < a {
                return Err(ParseError::Format("END before BEGIN".to_owned()));
            }
            &text[a + BEGIN.len()..b]
        } else if let Some(i) = text.find(QR_PREFIX) {
            let rest = &text[i + QR_PREFIX.len()..];
            let end = rest
                .find(|c: char| !c.is_ascii_alphanumeric())
                .unwrap_or(rest.len());
            &rest[..end]
        } else {
            text
        };
        let bytes = Zeroizing::new(unbase32(body)?);
        Self::from_bytes(&bytes)
    }
}

fn hex_key_id(id: &str) -> Option<Vec<u8>> {
    if id.len() == 64
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        hex::decode(id).ok()
    } else {
        None
    }
}

fn push_str(out: &mut Vec<u8>, s: &str, what: &str) -> Result<(), String> {
    let len = u8::try_from(s.len())
        .ok()
        .filter(|l| *l > 0 && s.is_ascii())
        .ok_or_else(|| format!("the {what} must be 1 to 255 ASCII characters"))?;
    out.push(len);
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.b.len())
            .ok_or_else(|| "it is truncated".to_owned())?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn peek(&self) -> Option<u8> {
        self.b.get(self.at).copied()
    }
    fn str(&mut self, what: &str) -> Result<String, String> {
        let n = usize::from(self.u8()?);
        let s = self.take(n)?;
        if n == 0 || !s.is_ascii() {
            return Err(format!("invalid {what}"));
        }
        Ok(String::from_utf8_lossy(s).into_owned())
    }
    fn rest(&mut self) -> &'a [u8] {
        let s = &self.b[self.at..];
        self.at = self.b.len();
        s
    }
}

/// RFC 4648 base32, upper case, no padding.
pub fn base32(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &b in data {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((acc >> bits) & 31) as usize]));
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(BASE32[((acc << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Decodes base32, ignoring case, white space and '-'; any other character is an error
/// naming its position.
pub fn unbase32(text: &str) -> Result<Vec<u8>, ParseError> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    let mut n = 0usize;
    for c in text.chars() {
        if c.is_whitespace() || c == '-' {
            continue;
        }
        n += 1;
        let u = c.to_ascii_uppercase();
        let v = BASE32
            .iter()
            .position(|&x| char::from(x) == u)
            .ok_or_else(|| {
                let mut m = String::new();
                let _ = write!(
                    m,
                    "character {n} ({c:?}) is not a share character (A-Z, 2-7)"
                );
                ParseError::Format(m)
            })?;
        acc = (acc << 5) | v as u32;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
        acc &= (1 << bits) - 1;
    }
    if n == 0 {
        return Err(ParseError::Format("it holds no share".to_owned()));
    }
    // The encoder leaves fewer than 5 unused bits, all zero. Anything else is a mistyped
    // last character (or one too many), which the checksum alone would not always see.
    if bits >= 5 || acc != 0 {
        return Err(ParseError::Format(format!(
            "character {n} cannot be the last character of a share: check the end of it for a typo"
        )));
    }
    Ok(out)
}

/// The operating system's random generator for vsss-rs (rand_core 0.10 traits). A failure
/// is remembered (and the output refused) instead of panicking.
struct OsRng010 {
    failed: bool,
}

impl rand_core_010::TryRng for OsRng010 {
    type Error = std::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        use rand::RngCore as _;
        if rand::rngs::OsRng.try_fill_bytes(dst).is_err() {
            self.failed = true;
        }
        Ok(())
    }
}

impl rand_core_010::TryCryptoRng for OsRng010 {}

/// Random bytes from the operating system.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], String> {
    use rand::RngCore as _;
    let mut b = [0u8; N];
    rand::rngs::OsRng
        .try_fill_bytes(&mut b)
        .map_err(|e| format!("the system random number generator failed: {e}"))?;
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            backup_id: [1, 2, 3, 4, 5, 6, 7, 8],
            role: KeyRole::Root,
            threshold: 3,
            count: 5,
            key_id: "ab".repeat(32),
            factory: "acme".to_owned(),
        }
    }

    #[test]
    fn base32_round_trip_and_known_vector() {
        // RFC 4648 test vector (without padding).
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        for n in 1..40u8 {
            let data: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37)).collect();
            assert_eq!(unbase32(&base32(&data)).unwrap(), data);
        }
        assert_eq!(unbase32("mzxw-6ytb oi").unwrap(), b"foobar");
        assert!(
            matches!(unbase32("MZX0"), Err(ParseError::Format(m)) if m.contains("character 4"))
        );
        // "MZXW6YTBOI" ends in 'I' (8 = 0b01000, two unused zero bits); 'J' sets one of them.
        assert!(
            matches!(unbase32("MZXW6YTBOJ"), Err(ParseError::Format(m)) if m.contains("character 10"))
        );
        // One character too many adds no byte: refused too.
        assert!(unbase32("MZXW6YTBOIA").is_err());
    }

    #[test]
    fn shares_round_trip_through_text_and_qr_and_any_three_recombine() {
        let secret = b"\x07ed25519\x07ed25519 some pkcs8 bytes".to_vec();
        let shares = split(&header(), &secret).unwrap();
        assert_eq!(shares.len(), 5);
        let parsed: Vec<Share> = shares
            .iter()
            .map(|s| {
                let t = Share::parse_text(&s.to_text().unwrap()).unwrap();
                let q = Share::parse_text(&s.qr_payload().unwrap()).unwrap();
                assert_eq!(&t, s);
                assert_eq!(&q, s);
                t
            })
            .collect();
        for (a, b, c) in [(0, 1, 2), (4, 2, 0), (1, 3, 4)] {
            let got = combine(&[&parsed[a], &parsed[b], &parsed[c]]).unwrap();
            assert_eq!(&*got, &secret);
        }
        // Two shares give something else (and the CLI refuses before combining anyway).
        let two = combine(&[&parsed[0], &parsed[1]]).unwrap();
        assert_ne!(&*two, &secret);
    }

    #[test]
    fn any_single_changed_character_is_caught_by_the_checksum() {
        let s = &split(&header(), b"0123456789abcdef").unwrap()[0];
        let b32 = base32(&s.to_bytes().unwrap());
        for i in 0..b32.len() {
            let mut chars: Vec<char> = b32.chars().collect();
            chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
            let typo: String = chars.into_iter().collect();
            let r = Share::parse_text(&typo);
            assert!(r.is_err(), "change at {i} not caught");
        }
        let mut bytes = s.to_bytes().unwrap().to_vec();
        bytes[20] ^= 1;
        assert_eq!(Share::from_bytes(&bytes), Err(ParseError::Checksum));
    }

    #[test]
    fn secret_encoding_round_trip_and_odd_key_ids() {
        let s = Secret {
            keytype: "ecdsa".to_owned(),
            scheme: "ecdsa-sha2-nistp256".to_owned(),
            pkcs8: Zeroizing::new(vec![0x30, 1, 2, 3]),
        };
        let d = Secret::decode(&s.encode().unwrap()).unwrap();
        assert_eq!(
            (d.keytype.as_str(), d.scheme.as_str()),
            ("ecdsa", "ecdsa-sha2-nistp256")
        );
        assert_eq!(*d.pkcs8, vec![0x30, 1, 2, 3]);
        assert!(Secret::decode(b"\x05ab").is_err());

        let mut h = header();
        h.key_id = "offline-root-key".to_owned();
        let sh = &split(&h, b"xy").unwrap()[2];
        let back = Share::parse_text(&sh.to_text().unwrap()).unwrap();
        assert_eq!(back.header.key_id, "offline-root-key");
        assert_eq!(back.index, 3);
    }

    #[test]
    fn bad_parameters_are_refused() {
        let mut h = header();
        h.threshold = 6;
        assert!(split(&h, b"x").is_err());
        h.threshold = 1;
        assert!(split(&h, b"x").is_err());
    }
}
