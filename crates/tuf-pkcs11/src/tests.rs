//! Against SoftHSM2 when `TUF_TEST_PKCS11_MODULE` names its module. A module's
//! configuration is read once per process, so every test here shares one token directory
//! with two tokens: "tuf-unit" (used for keys) and "tuf-unit-locked" (only ever given wrong
//! PINs, so no earlier successful login can mask a refusal).

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use cryptoki::object::{Attribute, AttributeType};

use super::*;

const PIN: &str = "1234";

struct Fixture {
    module: PathBuf,
    _dir: tempfile::TempDir,
}

/// One test at a time on the shared token: SoftHSM answers concurrent key generation in one
/// process with an occasional CKR_GENERAL_ERROR, which would fail a test for the module's
/// sake, not ours.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The shared token directory, or `None` after a skip (every test that needs it says so).
#[track_caller]
fn fixture() -> Option<&'static Fixture> {
    static FIXTURE: OnceLock<Option<Fixture>> = OnceLock::new();
    let module = test_skip::env(
        "TUF_TEST_PKCS11_MODULE",
        "SoftHSM2's module, e.g. /usr/lib/softhsm/libsofthsm2.so",
    )?;
    FIXTURE
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let tokens = dir.path().join("tokens");
            std::fs::create_dir(&tokens).unwrap();
            let conf = dir.path().join("softhsm2.conf");
            std::fs::write(
                &conf,
                format!(
                    "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                    tokens.display()
                ),
            )
            .unwrap();
            // Set before the module is first loaded (it reads the variable at C_Initialize),
            // inside the one-time initialiser, so no other test reads the environment then.
            std::env::set_var("SOFTHSM2_CONF", &conf);
            for label in ["tuf-unit", "tuf-unit-locked"] {
                let st = Command::new("softhsm2-util")
                    .args(["--init-token", "--free", "--label", label])
                    .args(["--pin", PIN, "--so-pin", "5678"])
                    .env("SOFTHSM2_CONF", &conf)
                    .output()
                    .unwrap();
                assert!(st.status.success(), "{st:?}");
            }
            Some(Fixture {
                module: PathBuf::from(module),
                _dir: dir,
            })
        })
        .as_ref()
}

fn pin(p: &str) -> SecretString {
    SecretString::from(p.to_owned())
}

fn sign_and_reopen(kind: KeyType, label: &str) {
    let _serial = serial();
    let Some(fx) = fixture() else { return };
    let (signer, key_ref, public) =
        Pkcs11Signer::generate(&fx.module, "tuf-unit", &pin(PIN), kind, label).unwrap();
    assert_eq!(signer.public_key(), &public);
    assert_eq!(signer.key_id(), &public.key_id());
    assert_eq!(key_ref.token_label, "tuf-unit");
    assert_eq!(key_ref.label, label);

    // The public key goes through JSON as root.json carries it, and verifies in tuf-core.
    let json = serde_json::to_vec(&public).unwrap();
    let parsed: PublicKey = serde_json::from_slice(&json).unwrap();
    let msg = b"{\"_type\":\"root\",\"version\":2}";
    let sig = signer.sign(msg).unwrap();
    parsed.verify(msg, &sig).unwrap();
    assert!(parsed
        .verify(b"{\"_type\":\"root\",\"version\":3}", &sig)
        .is_err());

    // The private half is a sensitive, non-extractable token object.
    {
        let session = signer.session.lock().unwrap();
        let attrs = session
            .get_attributes(
                signer.private,
                &[
                    AttributeType::Token,
                    AttributeType::Sensitive,
                    AttributeType::Extractable,
                ],
            )
            .unwrap();
        assert!(attrs.contains(&Attribute::Token(true)), "{attrs:?}");
        assert!(attrs.contains(&Attribute::Sensitive(true)), "{attrs:?}");
        assert!(attrs.contains(&Attribute::Extractable(false)), "{attrs:?}");
    }
    drop(signer);

    // Found again from the stored reference alone.
    let again = KeyRef::from_json(&key_ref.to_json().unwrap()).unwrap();
    assert_eq!(again, key_ref);
    let reopened = Pkcs11Signer::open(&again, &pin(PIN)).unwrap();
    assert_eq!(reopened.public_key(), &public);
    let sig2 = reopened.sign(msg).unwrap();
    parsed.verify(msg, &sig2).unwrap();
    probe(&again).unwrap();
}

/// `destroy` removes both halves from the token (C_DestroyObject); the key can no longer be
/// opened or found, and destroying again is no error.
#[test]
fn destroyed_keys_are_gone_from_the_token() {
    let _serial = serial();
    let Some(fx) = fixture() else { return };
    assert!(login_check(&fx.module, "tuf-unit", &pin(PIN)).is_ok());
    for kind in [KeyType::Ed25519, KeyType::EcdsaP256] {
        let (signer, key_ref, _) =
            Pkcs11Signer::generate(&fx.module, "tuf-unit", &pin(PIN), kind, "unit-destroy")
                .unwrap();
        drop(signer);
        destroy(&key_ref, &pin(PIN)).unwrap();
        let err = Pkcs11Signer::open(&key_ref, &pin(PIN)).unwrap_err();
        assert!(matches!(err, Error::KeyNotFound { .. }), "{err:?}");
        assert!(matches!(probe(&key_ref), Err(Error::KeyNotFound { .. })));
        destroy(&key_ref, &pin(PIN)).unwrap();
    }
}

#[test]
fn ed25519_token_signatures_verify_with_tuf_core() {
    sign_and_reopen(KeyType::Ed25519, "unit-ed25519");
}

#[test]
fn ecdsa_p256_token_signatures_verify_with_tuf_core() {
    sign_and_reopen(KeyType::EcdsaP256, "unit-ecdsa");
    let _serial = serial();
    let Some(fx) = fixture() else { return };
    let (_, _, public) = Pkcs11Signer::generate(
        &fx.module,
        "tuf-unit",
        &pin(PIN),
        KeyType::EcdsaP256,
        "unit-ecdsa-format",
    )
    .unwrap();
    assert_eq!(public.keytype, "ecdsa");
    assert_eq!(public.scheme, "ecdsa-sha2-nistp256");
    assert!(public
        .keyval
        .public
        .starts_with("-----BEGIN PUBLIC KEY-----\n"));
}

#[test]
fn wrong_pin_is_refused_naming_the_token() {
    let _serial = serial();
    let Some(fx) = fixture() else { return };
    let err = Pkcs11Signer::generate(
        &fx.module,
        "tuf-unit-locked",
        &pin("0000"),
        KeyType::Ed25519,
        "never",
    )
    .unwrap_err();
    assert!(matches!(err, Error::PinIncorrect { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("the PIN for token \"tuf-unit-locked\"") && msg.contains("was refused"),
        "{msg}"
    );
    assert!(!msg.contains("0000"), "{msg}");
}

#[test]
fn missing_token_and_missing_key_are_named() {
    let _serial = serial();
    let Some(fx) = fixture() else { return };
    let (_, key_ref, _) = Pkcs11Signer::generate(
        &fx.module,
        "tuf-unit",
        &pin(PIN),
        KeyType::Ed25519,
        "unit-missing",
    )
    .unwrap();
    let gone = KeyRef {
        token_serial: "0123456789abcdef".to_owned(),
        ..key_ref.clone()
    };
    let err = Pkcs11Signer::open(&gone, &pin(PIN)).unwrap_err();
    assert!(matches!(err, Error::TokenNotPresent { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("\"tuf-unit\"") && msg.contains("0123456789abcdef") && msg.contains("insert"),
        "{msg}"
    );
    let probed = probe(&gone).unwrap_err();
    assert!(
        matches!(probed, Error::TokenNotPresent { .. }),
        "{probed:?}"
    );

    let no_key = KeyRef {
        id: "00ff".to_owned(),
        ..key_ref
    };
    let err = Pkcs11Signer::open(&no_key, &pin(PIN)).unwrap_err();
    assert!(matches!(err, Error::KeyNotFound { .. }), "{err:?}");

    let err = Pkcs11Signer::generate(
        &fx.module,
        "no-such-token",
        &pin(PIN),
        KeyType::Ed25519,
        "x",
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("no-such-token") && err.to_string().contains("tuf-unit"),
        "{err}"
    );
}

#[test]
fn unloadable_module_names_the_path() {
    let key_ref = KeyRef {
        module: PathBuf::from("/nonexistent/libpkcs11-module.so"),
        token_label: "t".to_owned(),
        token_serial: "1".to_owned(),
        id: "01".to_owned(),
        label: "k".to_owned(),
        keytype: "ed25519".to_owned(),
        scheme: "ed25519".to_owned(),
    };
    let err = Pkcs11Signer::open(&key_ref, &pin(PIN)).unwrap_err();
    assert!(matches!(err, Error::ModuleLoad { .. }), "{err:?}");
    assert!(
        err.to_string().contains("/nonexistent/libpkcs11-module.so"),
        "{err}"
    );
    // A file that is not a shared library.
    let not_lib = tempfile::NamedTempFile::new().unwrap();
    let err = Pkcs11Signer::open(&key_ref.with_module(not_lib.path()), &pin(PIN)).unwrap_err();
    assert!(matches!(err, Error::ModuleLoad { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains(&not_lib.path().display().to_string()),
        "{err}"
    );
}

#[test]
fn rsa_is_not_generated_on_tokens() {
    let err = Pkcs11Signer::generate(
        Path::new("/nonexistent.so"),
        "t",
        &pin(PIN),
        KeyType::Rsa3072,
        "k",
    )
    .unwrap_err();
    assert!(matches!(err, Error::UnsupportedKeyType(_)), "{err:?}");
}

#[test]
fn key_ref_json_is_checked() {
    let good = KeyRef {
        module: PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"),
        token_label: "tuf".to_owned(),
        token_serial: "2c5f0c1e8a1b".to_owned(),
        id: "a1b2".to_owned(),
        label: "root".to_owned(),
        keytype: "ecdsa".to_owned(),
        scheme: "ecdsa-sha2-nistp256".to_owned(),
    };
    let json = good.to_json().unwrap();
    assert_eq!(KeyRef::from_json(&json).unwrap(), good);
    assert_eq!(json, good.clone().to_json().unwrap(), "deterministic");
    for (bad, why) in [
        (
            KeyRef {
                id: "zz".to_owned(),
                ..good.clone()
            },
            "id \"zz\" is not hex",
        ),
        (
            KeyRef {
                token_serial: " ".to_owned(),
                ..good.clone()
            },
            "token_serial is empty",
        ),
    ] {
        let err = KeyRef::from_json(&bad.to_json().unwrap()).unwrap_err();
        assert!(matches!(&err, Error::BadRef(r) if r == why), "{err:?}");
    }
    let rsa = KeyRef {
        keytype: "rsa".to_owned(),
        scheme: "rsassa-pss-sha256".to_owned(),
        ..good.clone()
    };
    let err = KeyRef::from_json(&rsa.to_json().unwrap()).unwrap_err();
    let why = "unsupported keytype/scheme rsa/rsassa-pss-sha256 (ed25519 or ecdsa P-256 only)";
    assert!(matches!(&err, Error::BadRef(r) if r == why), "{err:?}");
    for (text, why) in [
        (&b"{}"[..], "missing field `module`"),
        (b"not json", "expected ident"),
    ] {
        let err = KeyRef::from_json(text).unwrap_err();
        assert!(
            matches!(&err, Error::BadRef(r) if r.starts_with(why)),
            "{err:?}"
        );
    }
}

#[test]
fn a_signature_that_does_not_verify_is_never_returned() {
    let _serial = serial();
    let Some(fx) = fixture() else { return };
    let (mut signer, _, _) = Pkcs11Signer::generate(
        &fx.module,
        "tuf-unit",
        &pin(PIN),
        KeyType::Ed25519,
        "unit-faulty",
    )
    .unwrap();
    // As if the token signed with some other key than the one it reported.
    let other = tuf_core::PrivateKey::generate(KeyType::Ed25519).unwrap();
    signer.public = other.public_key().clone();
    let err = signer.sign(b"metadata").unwrap_err().to_string();
    assert!(
        err.contains("does not verify") && err.contains("tuf-unit"),
        "{err}"
    );
}

/// A key pair on the token "tuf-unit" whose private half has `private` attributes (besides
/// token, private, sign and its ID), then `changed` set on it; its reference.
fn key_pair_with(
    fx: &Fixture,
    label: &str,
    private: &[Attribute],
    changed: &[Attribute],
) -> KeyRef {
    let ctx = load(&fx.module).unwrap();
    let (slot, token_label, serial) = select_token(&ctx, &fx.module, "tuf-unit").unwrap();
    let session = login(&ctx, &fx.module, slot, &token_label, &serial, &pin(PIN)).unwrap();
    let id = session.generate_random_vec(16).unwrap();
    let public = [
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Verify(true),
        Attribute::EcParams(der::ED25519_OID.to_vec()),
        Attribute::Id(id.clone()),
    ];
    let mut attrs = vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sign(true),
        Attribute::Id(id.clone()),
    ];
    attrs.extend_from_slice(private);
    let (_, handle) = session
        .generate_key_pair(&Mechanism::EccEdwardsKeyPairGen, &public, &attrs)
        .unwrap();
    if !changed.is_empty() {
        session.update_attributes(handle, changed).unwrap();
    }
    KeyRef {
        module: fx.module.clone(),
        token_label,
        token_serial: serial,
        id: hex::encode(&id),
        label: label.to_owned(),
        keytype: "ed25519".to_owned(),
        scheme: "ed25519".to_owned(),
    }
}

/// A key pair that could be (or was) exported is not a hardware key, whatever the reference
/// says: opening it is refused, naming why. Each case has one fault: made non-sensitive and
/// exportable; sensitive but exportable; sensitive now but not from the start (it was
/// readable once); not exportable now but exportable once.
#[test]
fn a_key_that_is_or_was_exportable_is_refused() {
    let _serial = serial();
    let Some(fx) = fixture() else { return };
    let not_always_sensitive = "it is not, or was not always, sensitive";
    let once_extractable = "it is, or was once, extractable";
    let cases: [(&str, &[Attribute], &[Attribute], &str); 4] = [
        (
            "exportable",
            &[Attribute::Sensitive(false), Attribute::Extractable(true)],
            &[],
            not_always_sensitive,
        ),
        (
            "sensitive-but-extractable",
            &[Attribute::Sensitive(true), Attribute::Extractable(true)],
            &[],
            once_extractable,
        ),
        (
            "sensitive-later",
            &[Attribute::Sensitive(false), Attribute::Extractable(false)],
            &[Attribute::Sensitive(true)],
            not_always_sensitive,
        ),
        (
            "extractable-once",
            &[Attribute::Sensitive(true), Attribute::Extractable(true)],
            &[Attribute::Extractable(false)],
            once_extractable,
        ),
    ];
    for (label, private, changed, reason) in cases {
        let key_ref = key_pair_with(fx, label, private, changed);
        let err = Pkcs11Signer::open(&key_ref, &pin(PIN)).unwrap_err();
        match &err {
            Error::KeyNotProtected {
                reason: r,
                label: l,
                ..
            } => {
                assert_eq!((*r, l.as_str()), (reason, label), "{err}");
            }
            other => panic!("{label}: expected KeyNotProtected, got {other:?}"),
        }
        let msg = err.to_string();
        assert!(msg.contains(reason) && !msg.contains(PIN), "{msg}");
    }
    // The control: the same steps with every protection set from the start open fine.
    let protected = key_pair_with(
        fx,
        "protected",
        &[Attribute::Sensitive(true), Attribute::Extractable(false)],
        &[],
    );
    Pkcs11Signer::open(&protected, &pin(PIN)).unwrap();
}
