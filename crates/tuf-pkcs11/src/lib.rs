//! TUF signing keys kept on a PKCS#11 token (an HSM, a smart card, SoftHSM).
//!
//! The private key is generated on the token as a token object that is sensitive and not
//! extractable, so it never exists anywhere else. What the rest of the system keeps is a
//! [`KeyRef`]: which module, which token (label and serial), which key (CKA_ID, CKA_LABEL) and
//! its TUF keytype and scheme. A [`Pkcs11Signer`] opened from it signs like any other
//! [`tuf_core::Signer`]; every signature is checked against the public key before it is
//! returned, so a faulty token cannot slip a bad signature into metadata.
//!
//! Supported keys: ed25519 (CKM_EC_EDWARDS_KEY_PAIR_GEN, CKM_EDDSA) and ECDSA P-256
//! (CKM_EC_KEY_PAIR_GEN, CKM_ECDSA over a SHA-256 digest, converted to the DER signatures TUF
//! uses).
//!
//! Generating a key on a token and signing with it (needs a PKCS#11 module, e.g. SoftHSM2):
//!
//! ```no_run
//! use std::path::Path;
//!
//! use secrecy::SecretString;
//! use tuf_core::{KeyType, Signer as _};
//! use tuf_pkcs11::Pkcs11Signer;
//!
//! let module = Path::new("/usr/lib/softhsm/libsofthsm2.so");
//! let pin = SecretString::from("1234".to_owned());
//! let (signer, key_ref, public) =
//!     Pkcs11Signer::generate(module, "my-token", &pin, KeyType::EcdsaP256, "acme-root")?;
//! let signature = signer.sign(b"canonical bytes of a signed object")?;
//! // What is stored instead of a private key: where to find it again.
//! let stored = key_ref.to_json()?;
//! let again = Pkcs11Signer::open(&tuf_pkcs11::KeyRef::from_json(&stored)?, &pin)?;
//! assert_eq!(again.public_key(), &public);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A stored reference is checked before anything is loaded:
//!
//! ```
//! use tuf_pkcs11::{Error, KeyRef};
//!
//! let forged = br#"{"module": "/usr/lib/softhsm/libsofthsm2.so", "token_label": "t",
//!     "token_serial": "1", "id": "not hex", "label": "k",
//!     "keytype": "ed25519", "scheme": "ed25519"}"#;
//! assert!(matches!(KeyRef::from_json(forged), Err(Error::BadRef(_))));
//! ```

#![warn(missing_docs)]

mod der;
mod error;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use serde::{Deserialize, Serialize};
use tuf_core::{KeyId, KeyType, PublicKey, Signer};

pub use error::Error;
pub use secrecy::{ExposeSecret, SecretString};

/// Where a token key lives. Holds no secret: it is safe to store next to public keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRef {
    /// The PKCS#11 module (shared library) the key was created with. Modules live in
    /// different places on different machines; callers may open the key with another path.
    pub module: PathBuf,
    /// The token's label (CKA_LABEL of the token), for people and for finding it again.
    pub token_label: String,
    /// The token's serial number: how the token is found again, whatever slot it is in.
    pub token_serial: String,
    /// CKA_ID of the key pair, lowercase hex.
    pub id: String,
    /// CKA_LABEL of the key pair.
    pub label: String,
    /// TUF keytype and scheme of the key, as in `root.json`.
    pub keytype: String,
    /// The TUF signature scheme the key signs with.
    pub scheme: String,
}

impl KeyRef {
    /// Parses the JSON written by [`KeyRef::to_json`], checking every field.
    pub fn from_json(bytes: &[u8]) -> Result<Self, Error> {
        // serde_json errors quote positions, not input: safe to show.
        let r: Self = serde_json::from_slice(bytes).map_err(|e| Error::BadRef(e.to_string()))?;
        r.kind()?;
        if r.id.is_empty() || hex::decode(&r.id).is_err() {
            return Err(Error::BadRef(format!("id {:?} is not hex", r.id)));
        }
        if r.token_serial.trim().is_empty() {
            return Err(Error::BadRef("token_serial is empty".to_owned()));
        }
        if r.module.as_os_str().is_empty() {
            return Err(Error::BadRef("module is empty".to_owned()));
        }
        Ok(r)
    }

    /// Pretty JSON with a final newline; the same reference always gives the same bytes.
    /// Fails only for a module path that is not UTF-8.
    pub fn to_json(&self) -> Result<Vec<u8>, Error> {
        let mut out = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::BadRef(format!("cannot encode the reference: {e}")))?;
        out.push(b'\n');
        Ok(out)
    }

    /// The same reference with the module path replaced (the module is installed elsewhere
    /// on this machine).
    pub fn with_module(&self, module: &Path) -> Self {
        Self {
            module: module.to_owned(),
            ..self.clone()
        }
    }

    /// "LABEL (serial S)", for people.
    pub fn token_name(&self) -> String {
        format!("{:?} (serial {})", self.token_label, self.token_serial)
    }

    fn kind(&self) -> Result<Kind, Error> {
        match (self.keytype.as_str(), self.scheme.as_str()) {
            ("ed25519", "ed25519") => Ok(Kind::Ed25519),
            ("ecdsa" | "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256") => Ok(Kind::EcdsaP256),
            (kt, sc) => Err(Error::BadRef(format!(
                "unsupported keytype/scheme {kt}/{sc} (ed25519 or ecdsa P-256 only)"
            ))),
        }
    }
}

/// A key on a token, logged in and ready to sign.
pub struct Pkcs11Signer {
    key_ref: KeyRef,
    public: PublicKey,
    key_id: KeyId,
    kind: Kind,
    private: ObjectHandle,
    // A PKCS#11 session must not be used by two threads at once.
    session: Mutex<Session>,
}

impl fmt::Debug for Pkcs11Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Signer")
            .field("key_ref", &self.key_ref)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl Pkcs11Signer {
    /// Generates a new key pair on the token in `slot_or_token` (a slot ID, or a token label)
    /// of `module`: token objects, private key sensitive and never extractable. Returns the
    /// signer, the reference to store, and the key as `root.json` lists it.
    pub fn generate(
        module: &Path,
        slot_or_token: &str,
        pin: &SecretString,
        key_type: KeyType,
        label: &str,
    ) -> Result<(Self, KeyRef, PublicKey), Error> {
        let kind = match key_type {
            KeyType::Ed25519 => Kind::Ed25519,
            KeyType::EcdsaP256 => Kind::EcdsaP256,
            other => return Err(Error::UnsupportedKeyType(format!("{other:?}"))),
        };
        let ctx = load(module)?;
        let (slot, token_label, token_serial) = select_token(&ctx, module, slot_or_token)?;
        let token = format!("{token_label:?} (serial {token_serial})");
        let session = login(&ctx, module, slot, &token_label, &token_serial, pin)?;
        let id = session
            .generate_random_vec(16)
            .map_err(|e| token_error(&token, "drawing a random key ID", e))?;
        let pair = match kind {
            Kind::Ed25519 => {
                // PKCS#11 3.0 names the curve by OID; older modules want the printable string.
                generate_pair(&session, kind, &der::ED25519_OID, &id, label).or_else(|first| {
                    generate_pair(&session, kind, &der::ED25519_NAME, &id, label).map_err(|_| first)
                })
            }
            Kind::EcdsaP256 => generate_pair(&session, kind, &der::P256_OID, &id, label),
        };
        let (public_handle, private) =
            pair.map_err(|e| token_error(&token, "generating a key pair", e))?;
        let public = match public_key_of(&session, public_handle, kind, &token) {
            Ok(p) => p,
            Err(e) => {
                discard(&session, [public_handle, private]);
                return Err(e);
            }
        };
        let key_ref = KeyRef {
            module: module.to_owned(),
            token_label,
            token_serial,
            id: hex::encode(&id),
            label: label.to_owned(),
            keytype: public.keytype.clone(),
            scheme: public.scheme.clone(),
        };
        let signer = Self {
            key_id: public.key_id(),
            public: public.clone(),
            key_ref: key_ref.clone(),
            kind,
            private,
            session: Mutex::new(session),
        };
        // Prove the new key signs correctly before anyone trusts it; a key that does not is
        // removed again rather than left behind on the token.
        if let Err(e) = signer.sign_checked(b"tuf-pkcs11 self-test") {
            let session = signer.session.lock().unwrap_or_else(|p| p.into_inner());
            discard(&session, [public_handle, private]);
            return Err(match e {
                SignError::Token(e) => token_error(&token, "a test signature", e),
                SignError::Bad(reason) => Error::BadSignature { token, reason },
            });
        }
        Ok((signer, key_ref, public))
    }

    /// Finds the key `key_ref` names (token by serial, key by CKA_ID) and logs in with `pin`.
    pub fn open(key_ref: &KeyRef, pin: &SecretString) -> Result<Self, Error> {
        let kind = key_ref.kind()?;
        let ctx = load(&key_ref.module)?;
        let slot = find_token(&ctx, key_ref)?;
        let session = login(
            &ctx,
            &key_ref.module,
            slot,
            &key_ref.token_label,
            &key_ref.token_serial,
            pin,
        )?;
        let token = key_ref.token_name();
        let id = hex::decode(&key_ref.id).map_err(|_| Error::BadRef("id is not hex".into()))?;
        let public_handle = find_one(&session, key_ref, ObjectClass::PUBLIC_KEY, &id)?;
        let private = find_one(&session, key_ref, ObjectClass::PRIVATE_KEY, &id)?;
        never_left_the_token(&session, private, key_ref)?;
        let public = public_key_of(&session, public_handle, kind, &token)?;
        Ok(Self {
            key_id: public.key_id(),
            public,
            key_ref: key_ref.clone(),
            kind,
            private,
            session: Mutex::new(session),
        })
    }

    /// Where the key is: what the credentials file records instead of a private key.
    pub fn key_ref(&self) -> &KeyRef {
        &self.key_ref
    }

    fn sign_checked(&self, msg: &[u8]) -> Result<Vec<u8>, SignError> {
        // A poisoned lock only means another thread panicked while signing; the session
        // itself is still a valid handle.
        let session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let signature = match self.kind {
            Kind::Ed25519 => {
                let params = EddsaParams::new(EddsaSignatureScheme::Pure);
                session
                    .sign(&Mechanism::Eddsa(params), self.private, msg)
                    .map_err(SignError::Token)?
            }
            Kind::EcdsaP256 => {
                let digest = tuf_core::hash::sha256(msg);
                let raw = session
                    .sign(&Mechanism::Ecdsa, self.private, &digest)
                    .map_err(SignError::Token)?;
                der::ecdsa_raw_to_der(&raw).map_err(SignError::Bad)?
            }
        };
        self.public
            .verify(msg, &signature)
            .map_err(SignError::Bad)?;
        Ok(signature)
    }
}

impl Signer for Pkcs11Signer {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn key_id(&self) -> &KeyId {
        &self.key_id
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, tuf_core::Error> {
        let token = self.key_ref.token_name();
        self.sign_checked(msg).map_err(|e| {
            let err = match e {
                SignError::Token(e) => classify(e, &self.key_ref, "signing"),
                SignError::Bad(reason) => Error::BadSignature {
                    token: token.clone(),
                    reason,
                },
            };
            tuf_core::Error::Signing(err.to_string())
        })
    }
}

/// Destroys the key pair `key_ref` names (C_DestroyObject on every object with its CKA_ID:
/// private and public key). A key already gone is no error, so a destruction can be repeated
/// until it is known to have happened.
pub fn destroy(key_ref: &KeyRef, pin: &SecretString) -> Result<(), Error> {
    key_ref.kind()?;
    let ctx = load(&key_ref.module)?;
    let slot = find_token(&ctx, key_ref)?;
    let session = login(
        &ctx,
        &key_ref.module,
        slot,
        &key_ref.token_label,
        &key_ref.token_serial,
        pin,
    )?;
    let id = hex::decode(&key_ref.id).map_err(|_| Error::BadRef("id is not hex".into()))?;
    let found = session
        .find_objects(&[Attribute::Id(id)])
        .map_err(|e| classify(e, key_ref, "looking up the key"))?;
    for object in found {
        session
            .destroy_object(object)
            .map_err(|e| classify(e, key_ref, "destroying the key"))?;
    }
    Ok(())
}

/// Logs in to the token in `slot_or_token` (a slot ID or a token label) of `module` with
/// `pin`: a wrong PIN or a missing token is found at start, not at the first signature.
/// Returns the token's label and serial.
pub fn login_check(
    module: &Path,
    slot_or_token: &str,
    pin: &SecretString,
) -> Result<(String, String), Error> {
    let ctx = load(module)?;
    let (slot, label, serial) = select_token(&ctx, module, slot_or_token)?;
    login(&ctx, module, slot, &label, &serial, pin)?;
    Ok((label, serial))
}

/// Checks, without a PIN, that the token `key_ref` names is present and holds the key's
/// public half. For status reports.
pub fn probe(key_ref: &KeyRef) -> Result<(), Error> {
    key_ref.kind()?;
    let ctx = load(&key_ref.module)?;
    let slot = find_token(&ctx, key_ref)?;
    let session = ctx
        .open_ro_session(slot)
        .map_err(|e| classify(e, key_ref, "opening a session"))?;
    let id = hex::decode(&key_ref.id).map_err(|_| Error::BadRef("id is not hex".into()))?;
    find_one(&session, key_ref, ObjectClass::PUBLIC_KEY, &id)?;
    Ok(())
}

/// `path` as a module that may be loaded without the user naming it: loading a module runs
/// its code, and a module path read from a file (a key reference in a credentials tarball)
/// is only as trustworthy as that file. Accepted: an absolute path to a regular file which,
/// with every directory above it, is owned by root and writable by nobody else — a module
/// installed by the system's package manager. Returns the resolved path, which is what must
/// be loaded (a symbolic link could be changed after the check).
pub fn system_module(path: &Path) -> Result<PathBuf, Error> {
    let refuse = |reason: String| Error::ModuleLoad {
        path: path.to_owned(),
        reason: format!(
            "{reason}; a module recorded in a credentials file is loaded only from a system \
             location (owned by root and writable by nobody else): pass --pkcs11 MODULE to \
             name the module to use on this machine"
        ),
    };
    if !path.is_absolute() {
        return Err(refuse("the path is not absolute".to_owned()));
    }
    let resolved = path.canonicalize().map_err(|e| refuse(e.to_string()))?;
    let meta = std::fs::metadata(&resolved).map_err(|e| refuse(e.to_string()))?;
    if !meta.is_file() {
        return Err(refuse(format!("{} is not a file", resolved.display())));
    }
    for p in resolved.ancestors() {
        let meta = std::fs::metadata(p).map_err(|e| refuse(e.to_string()))?;
        if let Some(reason) = not_system_owned(&meta) {
            return Err(refuse(format!("{} {reason}", p.display())));
        }
    }
    Ok(resolved)
}

#[cfg(unix)]
fn not_system_owned(meta: &std::fs::Metadata) -> Option<&'static str> {
    use std::os::unix::fs::MetadataExt;
    if meta.uid() != 0 {
        Some("is not owned by root")
    } else if meta.mode() & 0o022 != 0 {
        Some("is writable by other users")
    } else {
        None
    }
}

#[cfg(not(unix))]
fn not_system_owned(_meta: &std::fs::Metadata) -> Option<&'static str> {
    Some("cannot be checked for its owner on this system")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Ed25519,
    EcdsaP256,
}

enum SignError {
    Token(CkError),
    Bad(String),
}

/// Loads and initialises `path` once per process: a second C_Initialize of the same
/// library is refused, and every context shares the library's state anyway.
fn load(path: &Path) -> Result<Pkcs11, Error> {
    static MODULES: Mutex<BTreeMap<PathBuf, Pkcs11>> = Mutex::new(BTreeMap::new());
    let mut modules = MODULES.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(ctx) = modules.get(path) {
        return Ok(ctx.clone());
    }
    if !path.exists() {
        return Err(Error::ModuleLoad {
            path: path.to_owned(),
            reason: "no such file; pass the module's path on this machine".to_owned(),
        });
    }
    let ctx = Pkcs11::new(path).map_err(|e| Error::ModuleLoad {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => {
            return Err(Error::ModuleInit {
                path: path.to_owned(),
                reason: e.to_string(),
            })
        }
    }
    modules.insert(path.to_owned(), ctx.clone());
    Ok(ctx)
}

/// The slot of `wanted`: a slot ID with a token in it, else the token labelled so.
fn select_token(
    ctx: &Pkcs11,
    module: &Path,
    wanted: &str,
) -> Result<(Slot, String, String), Error> {
    let tokens = tokens(ctx, module)?;
    let by_id = wanted
        .parse::<u64>()
        .ok()
        .and_then(|n| tokens.iter().find(|(s, _, _)| s.id() == n));
    let by_label = || tokens.iter().find(|(_, label, _)| label == wanted.trim());
    if let Some(found) = by_id.or_else(by_label) {
        return Ok(found.clone());
    }
    let available = if tokens.is_empty() {
        "none".to_owned()
    } else {
        tokens
            .iter()
            .map(|(s, l, n)| format!("slot {} {l:?} (serial {n})", s.id()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Err(Error::NoSuchToken {
        module: module.to_owned(),
        wanted: wanted.to_owned(),
        available,
    })
}

/// The slot holding the token `key_ref` names. Found by serial (slot numbers change between
/// machines and, for some modules, between runs).
fn find_token(ctx: &Pkcs11, key_ref: &KeyRef) -> Result<Slot, Error> {
    tokens(ctx, &key_ref.module)?
        .into_iter()
        .find(|(_, _, serial)| serial == key_ref.token_serial.trim())
        .map(|(slot, _, _)| slot)
        .ok_or_else(|| not_present(key_ref))
}

/// (slot, label, serial) of every initialised token present.
fn tokens(ctx: &Pkcs11, module: &Path) -> Result<Vec<(Slot, String, String)>, Error> {
    let slots = ctx.get_slots_with_token().map_err(|e| Error::ModuleInit {
        path: module.to_owned(),
        reason: format!("listing slots: {e}"),
    })?;
    let mut out = Vec::new();
    for slot in slots {
        // A slot whose token vanished between the listing and this call is simply skipped.
        let Ok(info) = ctx.get_token_info(slot) else {
            continue;
        };
        if !info.token_initialized() {
            continue;
        }
        out.push((
            slot,
            info.label().trim().to_owned(),
            info.serial_number().trim().to_owned(),
        ));
    }
    Ok(out)
}

fn login(
    ctx: &Pkcs11,
    module: &Path,
    slot: Slot,
    label: &str,
    serial: &str,
    pin: &SecretString,
) -> Result<Session, Error> {
    let key_ref_like = |e: CkError, action| {
        let r = KeyRef {
            module: module.to_owned(),
            token_label: label.to_owned(),
            token_serial: serial.to_owned(),
            id: String::new(),
            label: String::new(),
            keytype: String::new(),
            scheme: String::new(),
        };
        classify(e, &r, action)
    };
    let session = ctx
        .open_rw_session(slot)
        .map_err(|e| key_ref_like(e, "opening a session"))?;
    let auth = cryptoki::types::AuthPin::new(pin.expose_secret().into());
    match session.login(UserType::User, Some(&auth)) {
        // Login state is per process and token: another open signer already logged in.
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(session),
        Err(CkError::Pkcs11(RvError::PinIncorrect | RvError::PinLenRange, _)) => {
            Err(Error::PinIncorrect {
                label: label.to_owned(),
                serial: serial.to_owned(),
            })
        }
        Err(CkError::Pkcs11(RvError::PinLocked, _)) => Err(Error::PinLocked {
            label: label.to_owned(),
            serial: serial.to_owned(),
        }),
        Err(e) => Err(key_ref_like(e, "logging in")),
    }
}

fn generate_pair(
    session: &Session,
    kind: Kind,
    params: &[u8],
    id: &[u8],
    label: &str,
) -> Result<(ObjectHandle, ObjectHandle), CkError> {
    let mechanism = match kind {
        Kind::Ed25519 => Mechanism::EccEdwardsKeyPairGen,
        Kind::EcdsaP256 => Mechanism::EccKeyPairGen,
    };
    let public = [
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Verify(true),
        Attribute::EcParams(params.to_vec()),
        Attribute::Id(id.to_vec()),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    let private = [
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Id(id.to_vec()),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    session.generate_key_pair(&mechanism, &public, &private)
}

/// The one object of `class` with CKA_ID `id`.
fn find_one(
    session: &Session,
    key_ref: &KeyRef,
    class: ObjectClass,
    id: &[u8],
) -> Result<ObjectHandle, Error> {
    let found = session
        .find_objects(&[Attribute::Class(class), Attribute::Id(id.to_vec())])
        .map_err(|e| classify(e, key_ref, "looking up the key"))?;
    let what = if class == ObjectClass::PUBLIC_KEY {
        "public key"
    } else {
        "private key"
    };
    match found.as_slice() {
        [one] => Ok(*one),
        [] => Err(Error::KeyNotFound {
            token_label: key_ref.token_label.clone(),
            token_serial: key_ref.token_serial.clone(),
            what,
            id: key_ref.id.clone(),
            label: key_ref.label.clone(),
        }),
        _ => Err(Error::BadRef(format!(
            "the token {} holds {} objects of kind {what} with ID {}; the reference is ambiguous",
            key_ref.token_name(),
            found.len(),
            key_ref.id
        ))),
    }
}

/// Refuses a private key that exists, or may have existed, outside the token: not a token
/// object, not sensitive, extractable, or not so since it was made (imported, or exportable
/// once). Such a key may have copies nobody knows of.
fn never_left_the_token(
    session: &Session,
    private: ObjectHandle,
    key_ref: &KeyRef,
) -> Result<(), Error> {
    let attrs = session
        .get_attributes(
            private,
            &[
                AttributeType::Token,
                AttributeType::Sensitive,
                AttributeType::Extractable,
                AttributeType::AlwaysSensitive,
                AttributeType::NeverExtractable,
            ],
        )
        .map_err(|e| classify(e, key_ref, "reading the private key's attributes"))?;
    let has = |want: &Attribute| attrs.contains(want);
    let reason = if !has(&Attribute::Token(true)) {
        "it is not a token object"
    } else if !has(&Attribute::Sensitive(true)) || !has(&Attribute::AlwaysSensitive(true)) {
        "it is not, or was not always, sensitive"
    } else if !has(&Attribute::Extractable(false)) || !has(&Attribute::NeverExtractable(true)) {
        "it is, or was once, extractable"
    } else {
        return Ok(());
    };
    Err(Error::KeyNotProtected {
        token: key_ref.token_name(),
        id: key_ref.id.clone(),
        label: key_ref.label.clone(),
        reason,
    })
}

/// The TUF public key of the key pair whose public object is `handle`.
fn public_key_of(
    session: &Session,
    handle: ObjectHandle,
    kind: Kind,
    token: &str,
) -> Result<PublicKey, Error> {
    let bad = |reason: String| Error::BadPublicKey {
        token: token.to_owned(),
        reason,
    };
    let attrs = session
        .get_attributes(handle, &[AttributeType::EcPoint])
        .map_err(|e| token_error(token, "reading the public key", e))?;
    let point = attrs
        .into_iter()
        .find_map(|a| match a {
            Attribute::EcPoint(p) => Some(p),
            _ => None,
        })
        .ok_or_else(|| bad("it has no CKA_EC_POINT".to_owned()))?;
    let built = match kind {
        Kind::Ed25519 => PublicKey::from_ed25519_raw(der::ec_point(&point, 32).map_err(bad)?),
        Kind::EcdsaP256 => PublicKey::from_p256_point(der::ec_point(&point, 65).map_err(bad)?),
    };
    built.map_err(|e| bad(e.to_string()))
}

/// Best effort removal of a just-generated key pair that turned out unusable; the error
/// already being reported matters more than a failure here.
fn discard(session: &Session, objects: [ObjectHandle; 2]) {
    for o in objects {
        let _ = session.destroy_object(o);
    }
}

fn not_present(key_ref: &KeyRef) -> Error {
    Error::TokenNotPresent {
        module: key_ref.module.clone(),
        label: key_ref.token_label.clone(),
        serial: key_ref.token_serial.clone(),
    }
}

/// A token failure, named for the token; a vanished token says which one to insert.
fn classify(e: CkError, key_ref: &KeyRef, action: &'static str) -> Error {
    match e {
        CkError::Pkcs11(
            RvError::TokenNotPresent
            | RvError::DeviceRemoved
            | RvError::SessionHandleInvalid
            | RvError::SessionClosed
            | RvError::SlotIdInvalid,
            _,
        ) => not_present(key_ref),
        e => token_error(&key_ref.token_name(), action, e),
    }
}

fn token_error(token: &str, action: &'static str, source: CkError) -> Error {
    Error::Token {
        token: token.to_owned(),
        action,
        source,
    }
}

#[cfg(test)]
mod tests;
