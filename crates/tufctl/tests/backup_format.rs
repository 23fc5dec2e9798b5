//! docs/BACKUP-FORMAT.md is enough to rebuild a key without tufctl: a Python script written
//! from the document alone (standard library only, `tests/python/rebuild_key.py`) rebuilds
//! the root key from two of three printed shares made by `tufctl keys backup`, for each key
//! type, and the result is the key in the credentials file, bit for bit, and signs.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::*;
use tuf_core::{PrivateKey, Signer as _};
use tuf_credentials::Credentials;

/// The `.txt` share files of the root key in `dir`, by index.
fn txt_shares(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_str().unwrap();
            n.contains("-root-") && n.ends_with("-of-3.txt")
        })
        .collect();
    found.sort();
    found
}

fn rebuild_from_the_document_alone(python: &str, key_type: &str) {
    let server = Server::start();
    let f = create_factory(&server, &format!("paper-{key_type}"));
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("creds.tgz");
    let c = creds.to_str().unwrap();
    let as_owner = |args: &[&str]| ok(&server.tufctl_as(&f.token, &f.name, args, &[]));
    as_owner(&["keys", "download", &f.credentials_url, c]);
    as_owner(&["keys", "rotate-root", c, "--key-type", key_type]);
    let shares = dir.path().join("shares");
    as_owner(&[
        "keys",
        "backup",
        c,
        "--shares",
        "3",
        "--threshold",
        "2",
        "--out",
        shares.to_str().unwrap(),
    ]);
    let root = dir.path().join("root.json");
    let root_json = as_owner(&["keys", "show-root"]);
    std::fs::write(&root, root_json.trim()).unwrap();

    let files = txt_shares(&shares);
    assert_eq!(files.len(), 3, "{files:?}");
    let sec = dir.path().join("rebuilt.sec");
    let out = Command::new(python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/rebuild_key.py"))
        .arg(&root)
        .arg(&sec)
        .args([&files[2], &files[0]])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "rebuild_key.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();

    // The key in the credentials file, whose ID the shares record.
    let held = Credentials::read(&std::fs::read(&creds).unwrap()).unwrap();
    let stored = held
        .keys()
        .unwrap()
        .into_iter()
        .find(|k| k.has_private && k.key_id().as_str() == report["key_id"])
        .unwrap_or_else(|| panic!("no key {} in the credentials", report["key_id"]));
    let key = held.private_key(&stored.name).unwrap();
    assert_eq!(report["computed_key_id"], report["key_id"], "{report}");
    assert_eq!(report["der"], hex::encode(key.pkcs8_der()), "{key_type}");
    assert_eq!(report["keytype"], key.public_key().keytype);
    assert_eq!(report["scheme"], key.public_key().scheme);
    assert_eq!(report["factory"], f.name.as_str());
    assert_eq!(report["role"], 1);

    // The .sec file of step 4 loads as that key and signs.
    let sec: Value = serde_json::from_slice(&std::fs::read(&sec).unwrap()).unwrap();
    let rebuilt = PrivateKey::from_pkcs8_pem(
        sec["keytype"].as_str().unwrap(),
        sec["scheme"].as_str().unwrap(),
        sec["keyval"]["private"].as_str().unwrap(),
    )
    .unwrap();
    assert_eq!(rebuilt.key_id(), key.key_id());
    let sig = rebuilt.sign(b"rebuilt from paper").unwrap();
    key.public_key()
        .verify(b"rebuilt from paper", &sig)
        .unwrap();
}

#[test]
fn a_key_is_rebuilt_from_shares_with_the_documented_format_alone() {
    let Some(python) = setting(
        "TUF_TEST_PYTHON",
        "a python (the standard library is enough) to rebuild a key from paper shares",
    ) else {
        return;
    };
    for key_type in ["ed25519", "ecdsa", "rsa"] {
        rebuild_from_the_document_alone(&python, key_type);
    }
}
