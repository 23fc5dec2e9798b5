//! The few DER shapes PKCS#11 EC keys need: curve parameters, the OCTET STRING around
//! CKA_EC_POINT, and ECDSA signatures.

/// CKA_EC_PARAMS for ed25519: OBJECT IDENTIFIER 1.3.101.112 (PKCS#11 3.0).
pub(crate) const ED25519_OID: [u8; 5] = [0x06, 0x03, 0x2b, 0x65, 0x70];

/// CKA_EC_PARAMS for ed25519 as modules before PKCS#11 3.0 spell it: PrintableString
/// "edwards25519".
pub(crate) const ED25519_NAME: [u8; 14] = [
    0x13, 0x0c, b'e', b'd', b'w', b'a', b'r', b'd', b's', b'2', b'5', b'5', b'1', b'9',
];

/// CKA_EC_PARAMS for P-256: OBJECT IDENTIFIER 1.2.840.10045.3.1.7 (prime256v1).
pub(crate) const P256_OID: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// The public point of CKA_EC_POINT, `len` bytes long. The standard form is a DER OCTET
/// STRING; some modules return the bare point, which is accepted when its length says so.
pub(crate) fn ec_point(value: &[u8], len: usize) -> Result<&[u8], String> {
    if len < 128 && value.len() == len + 2 && value[0] == 0x04 && usize::from(value[1]) == len {
        return Ok(&value[2..]);
    }
    if value.len() == len {
        return Ok(value);
    }
    Err(format!(
        "CKA_EC_POINT is {} bytes, not a {len}-byte point (bare or in an OCTET STRING)",
        value.len()
    ))
}

/// Converts a PKCS#11 ECDSA P-256 signature (`r || s`, 32 bytes each) into the DER
/// `SEQUENCE { INTEGER r, INTEGER s }` that TUF implementations exchange.
pub(crate) fn ecdsa_raw_to_der(raw: &[u8]) -> Result<Vec<u8>, String> {
    if raw.len() != 64 {
        return Err(format!(
            "an ECDSA P-256 signature from the token is {} bytes, not 64 (r || s)",
            raw.len()
        ));
    }
    let (r, s) = raw.split_at(32);
    let (r, s) = (integer(r), integer(s));
    // At most 2 × 35 bytes: the short length form always fits.
    let mut out = Vec::with_capacity(2 + r.len() + s.len());
    out.push(0x30);
    out.push((r.len() + s.len()) as u8);
    out.extend_from_slice(&r);
    out.extend_from_slice(&s);
    Ok(out)
}

/// A DER INTEGER holding the unsigned big-endian `n` (at most 32 bytes): minimal, and with a
/// leading zero when the top bit is set so it stays positive.
fn integer(n: &[u8]) -> Vec<u8> {
    let first = n.iter().position(|&b| b != 0).unwrap_or(n.len() - 1);
    let body = &n[first..];
    let pad = body[0] & 0x80 != 0;
    let mut out = Vec::with_capacity(body.len() + 3);
    out.push(0x02);
    out.push((body.len() + usize::from(pad)) as u8);
    if pad {
        out.push(0);
    }
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_minimal_and_positive() {
        let mut raw = [0u8; 64];
        raw[31] = 1; // r = 1
        raw[32] = 0x80; // s has its top bit set
        let der = ecdsa_raw_to_der(&raw).unwrap();
        let mut want = vec![0x30, 3 + 35, 0x02, 0x01, 0x01, 0x02, 0x21, 0x00, 0x80];
        want.extend_from_slice(&[0u8; 31]);
        assert_eq!(der, want);
        assert!(ecdsa_raw_to_der(&raw[..63]).is_err());
        // An all-zero half still gives one content byte.
        let der = ecdsa_raw_to_der(&[0u8; 64]).unwrap();
        assert_eq!(der, [0x30, 6, 0x02, 1, 0, 0x02, 1, 0]);
    }

    #[test]
    fn ec_point_unwraps_octet_string_or_accepts_bare() {
        let point = [7u8; 32];
        let mut wrapped = vec![0x04, 32];
        wrapped.extend_from_slice(&point);
        assert_eq!(ec_point(&wrapped, 32).unwrap(), point);
        assert_eq!(ec_point(&point, 32).unwrap(), point);
        assert!(ec_point(&wrapped[..20], 32).is_err());
        let mut p256 = vec![0x04, 65, 0x04];
        p256.extend_from_slice(&[9u8; 64]);
        assert_eq!(ec_point(&p256, 65).unwrap(), &p256[2..]);
    }
}
