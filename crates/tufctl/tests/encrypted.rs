//! Encrypted credentials files: `keys encrypt` / `keys decrypt` in place, `keys download
//! --encrypt`, and commands reading (and writing) the encrypted form.

mod support;

use std::io::Read;

use support::*;
use tuf_credentials::Credentials;

const PASS: &str = "correct horse battery staple";

fn with_pass<'a>(
    server: &'a Server,
    pass: &'a str,
) -> impl Fn(&[&str]) -> std::process::Output + 'a {
    move |args: &[&str]| {
        tufctl_env(
            args,
            &[("TUFCTL_API", &server.url), ("TUFCTL_PASSPHRASE", pass)],
        )
    }
}

/// Decrypts with the `age` crate itself (what `age -d` / `rage -d` do), not through our code.
fn age_decrypt(bytes: &[u8], pass: &str) -> Vec<u8> {
    let d = age::Decryptor::new_buffered(bytes).unwrap();
    let id = age::scrypt::Identity::new(age::secrecy::SecretString::from(pass.to_owned()));
    let mut r = d
        .decrypt(std::iter::once(&id as &dyn age::Identity))
        .unwrap();
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    out
}

#[test]
fn encrypt_then_decrypt_gives_back_the_same_bytes_and_a_wrong_passphrase_changes_nothing() {
    let server = Server::start();
    let f = create_factory(&server, "crypt");
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("creds.tgz");
    let c = creds.to_str().unwrap();
    ok(&server.tufctl(&["keys", "download", &f.credentials_url, c]));
    let plain = std::fs::read(&creds).unwrap();

    // Decrypting a plain file is refused.
    let err = fails(&with_pass(&server, PASS)(&["keys", "decrypt", c]));
    assert!(err.contains("not encrypted"), "{err}");

    // No passphrase source and no terminal: a clear error, nothing changed.
    let err = fails(&server.tufctl(&["keys", "encrypt", c]));
    assert!(
        err.contains("not a terminal") && err.contains("TUFCTL_PASSPHRASE"),
        "{err}"
    );
    assert_eq!(std::fs::read(&creds).unwrap(), plain);

    // Encrypt, with the passphrase from a file.
    let pass_file = dir.path().join("pass.txt");
    std::fs::write(&pass_file, format!("{PASS}\n")).unwrap();
    ok(&server.tufctl(&[
        "keys",
        "encrypt",
        c,
        "--passphrase-file",
        pass_file.to_str().unwrap(),
    ]));
    let enc = std::fs::read(&creds).unwrap();
    assert!(enc.starts_with(b"age-encryption.org/v1\n"));
    assert_eq!(
        age_decrypt(&enc, PASS),
        plain,
        "age itself opens it, byte for byte"
    );
    let err = fails(&with_pass(&server, PASS)(&["keys", "encrypt", c]));
    assert!(err.contains("already encrypted"), "{err}");
    assert_eq!(std::fs::read(&creds).unwrap(), enc);

    // Reading commands work on it.
    let out = ok(&with_pass(&server, PASS)(&[
        "keys", "status", c, "--token", &f.token,
    ]));
    assert!(out.contains("offline-root"), "{out}");

    // Wrong passphrase: clear error, file unchanged.
    let err = fails(&with_pass(&server, "wrong")(&["keys", "decrypt", c]));
    assert!(err.contains("wrong passphrase"), "{err}");
    assert!(!err.contains(PASS));
    assert_eq!(std::fs::read(&creds).unwrap(), enc);

    ok(&with_pass(&server, PASS)(&["keys", "decrypt", c]));
    assert_eq!(std::fs::read(&creds).unwrap(), plain);
}

#[test]
fn download_encrypt_never_writes_plain_text_and_copy_targets_stays_encrypted() {
    let server = Server::start();
    let f = create_factory(&server, "crypt-dl");
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("creds.tgz");
    let c = creds.to_str().unwrap();
    let run = with_pass(&server, PASS);
    ok(&run(&[
        "keys",
        "download",
        &f.credentials_url,
        c,
        "--encrypt",
    ]));
    let enc = std::fs::read(&creds).unwrap();
    assert!(
        enc.starts_with(b"age-encryption.org/v1\n"),
        "written encrypted"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&creds).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Nothing else (no plain temporary file) was left beside it.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    let inner = Credentials::read(&age_decrypt(&enc, PASS)).unwrap();
    assert!(inner.root_json().is_some());

    // rotate-targets then copy-targets: the source stays encrypted, and so does the copy.
    ok(&run(&["keys", "rotate-targets", c, "--token", &f.token]));
    assert!(Credentials::is_encrypted(&std::fs::read(&creds).unwrap()));
    let copy = dir.path().join("targets-only.tgz");
    let out = ok(&run(&[
        "keys",
        "copy-targets",
        c,
        copy.to_str().unwrap(),
        "--token",
        &f.token,
    ]));
    assert!(out.contains("encrypted"), "{out}");
    let copy_bytes = std::fs::read(&copy).unwrap();
    assert!(Credentials::is_encrypted(&copy_bytes));
    let copied = Credentials::read_encrypted(&copy_bytes, PASS).unwrap();
    let names: Vec<String> = copied.keys().unwrap().into_iter().map(|k| k.name).collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names[0].starts_with("tufctl-targets-"), "{names:?}");
}
