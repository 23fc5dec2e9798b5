//! `keys/<name>.pub` and `keys/<name>.sec`: a key exactly as `root.json` lists it, and the
//! same object with `keyval.private` (a PKCS#8 PEM). `keys/<name>.pkcs11`: where on a
//! hardware token the private key of `<name>.pub` is.

use serde::{Deserialize, Serialize};
use tuf_core::{PrivateKey, PublicKey, Signer};
use zeroize::Zeroizing;

use crate::{same_key, Error};

/// The `.pub` and `.sec` bytes of `key`.
pub(crate) fn encode(key: &PrivateKey) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>), Error> {
    let public = key.public_key();
    let pub_bytes = encode_public(public)?;
    let pem = key.to_pkcs8_pem();
    let sec = SecFile {
        keytype: &public.keytype,
        scheme: &public.scheme,
        keyval: SecKeyVal {
            public: &public.keyval.public,
            private: pem.as_str(),
        },
    };
    // Reserve enough up front so the buffer holding the secret is never reallocated (a
    // reallocation would leave an unzeroized copy behind).
    let mut out = Zeroizing::new(Vec::with_capacity(
        2 * (pem.len() + public.keyval.public.len()) + 256,
    ));
    serde_json::to_writer_pretty(&mut *out, &sec)
        .map_err(|e| Error::Encrypt(format!("cannot encode key: {e}")))?;
    out.push(b'\n');
    Ok((pub_bytes, out))
}

pub(crate) fn encode_public(public: &PublicKey) -> Result<Vec<u8>, Error> {
    let v = serde_json::json!({
        "keytype": public.keytype,
        "scheme": public.scheme,
        "keyval": {"public": public.keyval.public},
    });
    let mut out = serde_json::to_vec_pretty(&v)
        .map_err(|e| Error::Encrypt(format!("cannot encode key: {e}")))?;
    out.push(b'\n');
    Ok(out)
}

pub(crate) fn decode_public(path: &str, bytes: &[u8]) -> Result<PublicKey, Error> {
    let v = tuf_core::canonical::parse(bytes).map_err(|e| bad(path, e.to_string()))?;
    let pk: PublicKey = serde_json::from_value(v).map_err(|e| bad(path, e.to_string()))?;
    Ok(strip_private(pk))
}

/// The public part of a `.sec` file, checking its structure (the private PEM is parsed only
/// when the key is used).
pub(crate) fn decode_sec_public(path: &str, bytes: &[u8]) -> Result<PublicKey, Error> {
    let parsed: SecFileOwned = serde_json::from_slice(bytes).map_err(|e| {
        // serde_json errors quote no input, only positions: safe to show.
        bad(path, format!("not a key file: {e}"))
    })?;
    let private = Zeroizing::new(parsed.keyval.private);
    if !private.contains("-----BEGIN PRIVATE KEY-----") {
        return Err(bad(path, "keyval.private is not a PKCS#8 PEM".to_owned()));
    }
    Ok(public_of(
        &parsed.keytype,
        &parsed.scheme,
        &parsed.keyval.public,
    ))
}

pub(crate) fn decode_private(path: &str, bytes: &[u8]) -> Result<PrivateKey, Error> {
    let parsed: SecFileOwned =
        serde_json::from_slice(bytes).map_err(|e| bad(path, format!("not a key file: {e}")))?;
    let private = Zeroizing::new(parsed.keyval.private);
    let key = PrivateKey::from_pkcs8_pem(&parsed.keytype, &parsed.scheme, &private)
        .map_err(|e| bad(path, e.to_string()))?;
    let stated = public_of(&parsed.keytype, &parsed.scheme, &parsed.keyval.public);
    if !same_key(key.public_key(), &stated) {
        return Err(bad(
            path,
            "keyval.public does not belong to keyval.private".to_owned(),
        ));
    }
    Ok(key)
}

/// Checks a `.pkcs11` token reference against the key it is for; returns the token's label
/// and serial. The full reference is parsed by whoever opens the token.
pub(crate) fn decode_token_ref(
    path: &str,
    bytes: &[u8],
    public: &PublicKey,
) -> Result<(String, String), Error> {
    let r: TokenRef = serde_json::from_slice(bytes)
        .map_err(|e| bad(path, format!("not a token reference: {e}")))?;
    if r.token_serial.trim().is_empty() {
        return Err(bad(path, "token_serial is empty".to_owned()));
    }
    if r.keytype != public.keytype || r.scheme != public.scheme {
        return Err(bad(
            path,
            format!(
                "it is for a {}/{} key but the public key is {}/{}",
                r.keytype, r.scheme, public.keytype, public.scheme
            ),
        ));
    }
    Ok((r.token_label, r.token_serial))
}

fn public_of(keytype: &str, scheme: &str, public: &str) -> PublicKey {
    PublicKey {
        keytype: keytype.to_owned(),
        scheme: scheme.to_owned(),
        keyval: tuf_core::key::KeyVal {
            public: public.to_owned(),
            extra: Default::default(),
        },
        extra: Default::default(),
    }
}

/// A `.pub` must never carry private material; drop any extra keyval fields.
fn strip_private(mut pk: PublicKey) -> PublicKey {
    pk.keyval.extra.clear();
    pk.extra.clear();
    pk
}

fn bad(path: &str, reason: String) -> Error {
    Error::BadEntry {
        name: path.to_owned(),
        reason,
    }
}

#[derive(Serialize)]
struct SecFile<'a> {
    keytype: &'a str,
    scheme: &'a str,
    keyval: SecKeyVal<'a>,
}

#[derive(Serialize)]
struct SecKeyVal<'a> {
    public: &'a str,
    private: &'a str,
}

#[derive(Deserialize)]
struct SecFileOwned {
    keytype: String,
    scheme: String,
    keyval: SecKeyValOwned,
}

#[derive(Deserialize)]
struct SecKeyValOwned {
    public: String,
    private: String,
}

/// The fields of a token reference this crate relies on (others are kept as they are).
#[derive(Deserialize)]
struct TokenRef {
    token_label: String,
    token_serial: String,
    keytype: String,
    scheme: String,
}
