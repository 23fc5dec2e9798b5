//! One signature on one document, and how documents are named: the pieces both the rules
//! (is every signature intact?) and the file formats (which document does a response sign?)
//! stand on.

use std::collections::BTreeMap;

use tuf_core::{hash, KeyId, Metadata, PublicKey, RoleKeys, Signature, Signed, Threshold};

/// SHA-256 (hex) of the canonical `signed` bytes: what a response names a document by.
pub fn document_sha256<T: Metadata>(env: &Signed<T>) -> String {
    hash::sha256_hex(env.canonical())
}

/// Whether `sig` is a valid signature over `env` by the key `keys` lists under its key ID.
pub fn signature_valid<T: Metadata>(
    env: &Signed<T>,
    sig: &Signature,
    keys: &BTreeMap<KeyId, PublicKey>,
) -> bool {
    let Some(key) = keys.get(&sig.keyid) else {
        return false;
    };
    let Ok(one) = Threshold::new(1) else {
        return false;
    };
    let only: BTreeMap<KeyId, PublicKey> = [(sig.keyid.clone(), key.clone())].into();
    let role = RoleKeys::new(vec![sig.keyid.clone()], one);
    tuf_core::verify_role(
        "signature",
        &role,
        &only,
        env.canonical(),
        std::slice::from_ref(sig),
    )
    .is_met()
}
