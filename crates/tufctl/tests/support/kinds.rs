//! The key types every key flow runs with, as `--key-type` names them and as root.json spells
//! them, and the checks that a served root lists keys of a type and verifies with tuf-core.

use serde_json::Value;
use tuf_core::{Role, Root, Signed};

/// A key type as `--key-type` names it and as root.json spells it.
#[derive(Clone, Copy, Debug)]
pub struct Kind {
    pub arg: &'static str,
    pub keytype: &'static str,
    pub scheme: &'static str,
}

pub const ED25519: Kind = Kind {
    arg: "ed25519",
    keytype: "ed25519",
    scheme: "ed25519",
};
pub const ECDSA: Kind = Kind {
    arg: "ecdsa",
    keytype: "ecdsa",
    scheme: "ecdsa-sha2-nistp256",
};
pub const RSA: Kind = Kind {
    arg: "rsa",
    keytype: "rsa",
    scheme: "rsassa-pss-sha256",
};

/// Every key type, in the order the flows run them.
pub const KINDS: [Kind; 3] = [ED25519, ECDSA, RSA];

/// `root` lists `id` as a key of `kind`: its type and scheme, and for ECDSA and RSA a PEM
/// public key, line breaks included.
pub fn key_is(root: &Value, id: &str, kind: Kind) {
    let key = &root["signed"]["keys"][id];
    assert_eq!(key["keytype"], kind.keytype, "key {id}: {key}");
    assert_eq!(key["scheme"], kind.scheme, "key {id}: {key}");
    let public = key["keyval"]["public"].as_str().unwrap();
    if kind.keytype != "ed25519" {
        assert!(
            public.starts_with("-----BEGIN PUBLIC KEY-----\n") && public.contains('\n'),
            "key {id} is not a PEM public key: {public:?}"
        );
    }
}

/// `root` (a root.json envelope) is signed by a threshold of its own root keys, as tuf-core
/// verifies it; returns it parsed.
pub fn root_verifies(root: &Value) -> Signed<Root> {
    let env = Signed::<Root>::from_slice(&serde_json::to_vec(root).unwrap()).unwrap();
    let v = env.verify_role("root", env.signed.role(Role::Root), &env.signed.keys);
    assert!(
        v.is_met(),
        "root version {} does not verify: {v:?}",
        env.signed.version
    );
    env
}

/// The credentials file at `path` holds `keyid` alone, as a private key of `kind`.
pub fn sole_private_key_is(path: &std::path::Path, keyid: &str, kind: Kind) {
    let c = tuf_credentials::Credentials::read(&std::fs::read(path).unwrap()).unwrap();
    let keys = c.keys().unwrap();
    assert_eq!(keys.len(), 1, "{}: {keys:?}", path.display());
    let k = &keys[0];
    assert_eq!(k.key_id().as_str(), keyid, "{}", path.display());
    assert!(k.has_private, "{} holds no private key", path.display());
    assert_eq!(k.public.keytype, kind.keytype, "{}", path.display());
    assert_eq!(k.public.scheme, kind.scheme, "{}", path.display());
}
