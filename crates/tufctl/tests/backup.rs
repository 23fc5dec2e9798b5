//! Key backups: `keys export-root` (plain text .sec) and `keys backup` / `keys restore`
//! (Shamir paper shares), against a real tufd; with root and offline targets keys of every
//! type (ed25519, P-256, RSA), `copy-targets` too.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use support::e2e::*;
use support::kinds::*;
use support::*;
use tuf_core::{Role, Root, Signed, Signer};
use tuf_credentials::Credentials;

fn server_root(server: &Server, f: &Factory) -> Signed<Root> {
    let out = ok(&server.tufctl(&[
        "get",
        &format!("/ota/repo/{}/api/v1/user_repo/root.json", f.name),
        "--token",
        &f.token,
    ]));
    Signed::from_slice(out.trim().as_bytes()).unwrap()
}

/// Files `<dir>/*-share-<i>-of-5.<ext>` for the root key, by index.
fn share_file(dir: &Path, i: u32, ext: &str) -> PathBuf {
    let suffix = format!("-share-{i}-of-5.{ext}");
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let n = p.file_name().unwrap().to_str().unwrap();
            n.contains("-root-") && n.ends_with(&suffix)
        })
        .unwrap_or_else(|| panic!("no share {i} .{ext} in {}", dir.display()))
}

/// Three distinct share indices out of 1..=5, chosen at random.
fn three_random() -> Vec<u32> {
    let mut b = [0u8; 8];
    let f = std::fs::File::open("/dev/urandom").unwrap();
    std::io::Read::read_exact(&mut &f, &mut b).unwrap();
    let mut idx: Vec<u32> = (1..=5).collect();
    for i in (1..idx.len()).rev() {
        idx.swap(i, usize::from(b[i]) % (i + 1));
    }
    idx.truncate(3);
    idx
}

#[test]
fn export_root_backup_and_restore() {
    let server = Server::start();
    let f = create_factory(&server, "backup");
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("creds.tgz");
    let c = creds.to_str().unwrap();
    ok(&server.tufctl(&["keys", "download", &f.credentials_url, c]));
    ok(&server.tufctl(&["keys", "rotate-root", c, "--token", &f.token]));
    let root = server_root(&server, &f);
    let root_keys = root.signed.role_keys(Role::Root);
    assert_eq!(root_keys.len(), 1);
    let (root_id, root_pub) = root_keys.into_iter().next().unwrap();

    // export-root: the active key's .sec, 0600, never overwritten, with a warning.
    let sec = dir.path().join("root.sec");
    let out = server.tufctl(&[
        "keys",
        "export-root",
        c,
        "--out",
        sec.to_str().unwrap(),
        "--token",
        &f.token,
    ]);
    ok(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("PRIVATE key"));
    assert_eq!(
        std::fs::metadata(&sec).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let tarball = Credentials::read(&std::fs::read(&creds).unwrap()).unwrap();
    let name = tarball.key_name_of(&root_pub).unwrap().unwrap();
    let exported = std::fs::read(&sec).unwrap();
    assert_eq!(exported, *tarball.secret_key_file(&name).unwrap());
    let v: serde_json::Value = serde_json::from_slice(&exported).unwrap();
    assert_eq!(v["keyval"]["public"], root_pub.keyval.public.as_str());
    assert!(v["keyval"]["private"]
        .as_str()
        .unwrap()
        .contains("PRIVATE KEY"));
    let err = fails(&server.tufctl(&[
        "keys",
        "export-root",
        c,
        "--out",
        sec.to_str().unwrap(),
        "--token",
        &f.token,
    ]));
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(std::fs::read(&sec).unwrap(), exported);

    // backup 3-of-5, twice (two independent backups of the same key).
    let b1 = dir.path().join("b1");
    let b2 = dir.path().join("b2");
    for b in [&b1, &b2] {
        ok(&server.tufctl(&[
            "keys",
            "backup",
            c,
            "--shares",
            "5",
            "--threshold",
            "3",
            "--out",
            b.to_str().unwrap(),
            "--token",
            &f.token,
        ]));
    }
    let html = std::fs::read_to_string(share_file(&b1, 2, "html")).unwrap();
    assert!(
        html.contains(root_id.as_str()) && html.contains("share 2 of 5, 3 needed"),
        "{html}"
    );
    assert!(html.contains("data:image/png;base64,"));
    let png = std::fs::read(share_file(&b1, 2, "png")).unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    // The PNG is the whole sheet (text above the QR code), not the QR code alone, which is
    // square: IHDR holds width and height at bytes 16..24.
    let dim = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    let (w, h) = (dim(16), dim(20));
    assert!(w != h && w > 1000, "a {w}x{h} PNG is not the whole sheet");

    // Restore from three random shares, in three forms: .txt, .html, scanned QR payload.
    let pick = three_random();
    let txt = share_file(&b1, pick[0], "txt");
    let htm = share_file(&b1, pick[1], "html");
    let third = std::fs::read_to_string(share_file(&b1, pick[2], "txt")).unwrap();
    let (begin, end) = (
        third.find("-----BEGIN").unwrap(),
        third.find("-----END").unwrap(),
    );
    let body: String = third[begin..end]
        .lines()
        .skip(1)
        .collect::<Vec<_>>()
        .join("")
        .replace(' ', "");
    let payload = format!("TUFSHARE1:{body}");
    let restored = dir.path().join("restored.tgz");
    let out = ok(&server.tufctl(&[
        "keys",
        "restore",
        txt.to_str().unwrap(),
        htm.to_str().unwrap(),
        &payload,
        "--out",
        restored.to_str().unwrap(),
        "--factory-check",
        "--token",
        &f.token,
    ]));
    assert!(out.contains(root_id.as_str()), "{out}");
    let r = Credentials::read(&std::fs::read(&restored).unwrap()).unwrap();
    assert_eq!(r.config().factory, f.name);
    let key = r.find_signer(&root_pub).unwrap().expect("the restored key");
    assert_eq!(key.public_key().key_id(), root_id);
    let sig = key.sign(b"a message").unwrap();
    root_pub.verify(b"a message", &sig).unwrap();
    // The restored tarball works as a credentials file: status finds the active root key.
    let status = ok(&server.tufctl(&[
        "keys",
        "status",
        restored.to_str().unwrap(),
        "--token",
        &f.token,
    ]));
    assert!(status.contains(root_id.as_str()), "{status}");

    // Restored straight into an encrypted file: never on disk in plain text.
    let pass = dir.path().join("pass");
    std::fs::write(&pass, "correct horse battery\n").unwrap();
    let sealed = dir.path().join("sealed.tgz");
    let said = ok(&server.tufctl(&[
        "keys",
        "restore",
        txt.to_str().unwrap(),
        htm.to_str().unwrap(),
        &payload,
        "--out",
        sealed.to_str().unwrap(),
        "--encrypt",
        "--passphrase-file",
        pass.to_str().unwrap(),
    ]));
    assert!(said.contains("encrypted with the passphrase"), "{said}");
    let bytes = std::fs::read(&sealed).unwrap();
    assert!(bytes.starts_with(b"age-encryption.org/v1"), "not age");
    assert!(
        Credentials::read(&bytes).is_err(),
        "readable without the passphrase"
    );
    let status = ok(&server.tufctl(&[
        "keys",
        "status",
        sealed.to_str().unwrap(),
        "--passphrase-file",
        pass.to_str().unwrap(),
        "--token",
        &f.token,
    ]));
    assert!(status.contains(root_id.as_str()), "{status}");
    // --encrypt into an existing plain file: refused, the file untouched.
    let before = std::fs::read(&restored).unwrap();
    let err = fails(&server.tufctl(&[
        "keys",
        "restore",
        txt.to_str().unwrap(),
        htm.to_str().unwrap(),
        &payload,
        "--out",
        restored.to_str().unwrap(),
        "--encrypt",
    ]));
    assert!(err.contains("--encrypt only makes a new file"), "{err}");
    assert_eq!(std::fs::read(&restored).unwrap(), before);

    let fresh = dir.path().join("fresh.tgz");
    let fr = fresh.to_str().unwrap();
    // Two shares: refused.
    let err = fails(&server.tufctl(&[
        "keys",
        "restore",
        txt.to_str().unwrap(),
        htm.to_str().unwrap(),
        "--out",
        fr,
    ]));
    assert!(err.contains("2 shares given, 3 needed"), "{err}");
    // One changed character: refused, naming the share.
    let typo = dir.path().join("typed.txt");
    let mut chars: Vec<char> = body.chars().collect();
    chars[10] = if chars[10] == 'Q' { 'R' } else { 'Q' };
    std::fs::write(&typo, chars.into_iter().collect::<String>()).unwrap();
    let err = fails(&server.tufctl(&[
        "keys",
        "restore",
        txt.to_str().unwrap(),
        typo.to_str().unwrap(),
        htm.to_str().unwrap(),
        "--out",
        fr,
    ]));
    assert!(
        err.contains("share 2") && err.contains("typed.txt") && err.contains("checksum"),
        "{err}"
    );
    // Shares of two backups: refused.
    let other = share_file(&b2, pick[2], "txt");
    let err = fails(&server.tufctl(&[
        "keys",
        "restore",
        txt.to_str().unwrap(),
        htm.to_str().unwrap(),
        other.to_str().unwrap(),
        "--out",
        fr,
    ]));
    assert!(err.contains("different backups"), "{err}");
    assert!(!fresh.exists());
    // An unrelated tarball at --out is refused and left alone.
    let foreign = dir.path().join("foreign.tgz");
    let fc = Credentials::new(tuf_credentials::Config {
        api: server.url.clone(),
        factory: "someone-else".into(),
    });
    std::fs::write(&foreign, &*fc.to_bytes().unwrap()).unwrap();
    let before = std::fs::read(&foreign).unwrap();
    let err = fails(&server.tufctl(&[
        "keys",
        "restore",
        txt.to_str().unwrap(),
        htm.to_str().unwrap(),
        &payload,
        "--out",
        foreign.to_str().unwrap(),
    ]));
    assert!(err.contains("unrelated"), "{err}");
    assert_eq!(std::fs::read(&foreign).unwrap(), before);
}

/// Root and offline targets keys of every type (ed25519, P-256, RSA; one Factory each on one
/// server), made by `rotate-root` / `rotate-targets --key-type K`: `copy-targets` writes a
/// file holding the targets key alone (never over an existing file); `export-root` writes the
/// root key's .sec (0600, never overwritten), which parses back to the same key and signs;
/// `backup --include-targets` writes share sheets of both keys, naming their type; `restore`
/// rebuilds the root key into a new file and the targets key into that existing file; the
/// restored file signs a root renewal (`resign-root`) that is applied and verifies, and a
/// `copy-targets` of it signs a Wave a production device installs.
#[test]
fn keys_of_every_type_backed_up_and_restored() {
    let server = Server::start();
    for kind in KINDS {
        back_up_and_restore(&server, kind);
    }
}

fn back_up_and_restore(server: &Server, kind: Kind) {
    let x = factory_with_keys_of(server, kind);
    let (c, d) = (x.creds.to_str().unwrap(), x.dir.path());
    let prod = Device::new(&root_v1(&x.prod_base), &x.prod_base);
    let root_id = role_ids(&x.get("root.json"), "root")[0].clone();
    copy_targets_of(&x, &x.creds, &x.offline_id, kind);
    export_root_of(&x, &root_id, kind);

    let shares = d.join("shares");
    let out = json(&ok(&x.ctl(&[
        "--json",
        "keys",
        "backup",
        c,
        "--shares",
        "3",
        "--threshold",
        "2",
        "--include-targets",
        "--out",
        shares.to_str().unwrap(),
    ])));
    let backed_up = out["keys"].as_array().unwrap();
    assert_eq!(backed_up.len(), 2, "{out}");
    // Each key's files: share 1's .html, .png and .txt, then share 2's, then share 3's.
    let files = |role: &str, id: &str| -> Vec<String> {
        let k = backed_up.iter().find(|k| k["role"] == role).unwrap();
        assert_eq!(k["keyid"], id, "{out}");
        let files: Vec<String> = k["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(files.len(), 9, "3 shares, 3 files each: {files:?}");
        let txt = std::fs::read_to_string(&files[2]).unwrap();
        assert!(
            txt.contains(&format!("Key type:   {}", kind.keytype)),
            "{txt}"
        );
        assert!(txt.contains(&format!("Key ID:     {id}")), "{txt}");
        assert!(std::fs::read(&files[1]).unwrap().starts_with(b"\x89PNG"));
        files
    };
    let root_files = files("root", &root_id);
    let targets_files = files("targets", &x.offline_id);

    // The root key into a new file (checked against the Factory's root), the targets key into
    // that file, now existing: each from two shares, a .txt file and an .html sheet or the
    // payload its QR code holds (the largest for RSA keys).
    let restored = d.join("restored.tgz");
    let r = restored.to_str().unwrap();
    let said = ok(&x.ctl(&[
        "keys",
        "restore",
        &root_files[2],
        &root_files[6],
        "--out",
        r,
        "--factory-check",
    ]));
    assert!(
        said.contains(&format!("Restored root key {root_id}")),
        "{said}"
    );
    assert!(said.contains("written to the new file"), "{said}");
    sole_private_key_is(&restored, &root_id, kind);
    let said = ok(&x.ctl(&[
        "keys",
        "restore",
        &targets_files[5],
        &scanned(&targets_files[8]),
        "--out",
        r,
        "--factory-check",
    ]));
    assert!(said.contains(&format!("added to {r}")), "{said}");
    restored_keys_sign(&x, &prod, &restored, &root_id, kind);
}

/// The payload a scanner reads from the QR code of the share whose .txt file is `txt`.
fn scanned(txt: &str) -> String {
    let text = std::fs::read_to_string(txt).unwrap();
    let (begin, end) = (
        text.find("-----BEGIN").unwrap(),
        text.find("-----END").unwrap(),
    );
    let body: String = text[begin..end]
        .lines()
        .skip(1)
        .collect::<String>()
        .replace(' ', "");
    format!("TUFSHARE1:{body}")
}

/// A Factory whose owner has downloaded the credentials and made root and offline targets
/// keys of `kind`; the served roots list them with the type and scheme of `kind`.
fn factory_with_keys_of(server: &Server, kind: Kind) -> Offline<'_> {
    let f = create_factory(server, &format!("backup-{}", kind.arg));
    let dir = tempfile::tempdir().unwrap();
    let mut x = Offline {
        server,
        api: format!("/ota/repo/{}/api/v1/user_repo", f.name),
        ci_base: format!("{}/repo/{}/ci", server.url, f.name),
        prod_base: format!("{}/repo/{}/prod", server.url, f.name),
        creds: dir.path().join("creds.tgz"),
        only: dir.path().join("targets-only.tgz"),
        f,
        dir,
        offline_id: String::new(),
    };
    let c = x.creds.to_str().unwrap();
    ok(&x.ctl(&["keys", "download", &x.f.credentials_url, c]));
    let root = json(&ok(&x.ctl(&[
        "--json",
        "keys",
        "rotate-root",
        "--key-type",
        kind.arg,
        c,
    ])));
    let targets = json(&ok(&x.ctl(&[
        "--json",
        "keys",
        "rotate-targets",
        "--key-type",
        kind.arg,
        c,
    ])));
    x.offline_id = targets["targets_keyid"].as_str().unwrap().to_owned();
    for served in [x.get("root.json"), x.get("root.json?production=1")] {
        key_is(&served, root["root_keyid"].as_str().unwrap(), kind);
        key_is(&served, &x.offline_id, kind);
    }
    x
}

/// `copy-targets FROM` writes a new file holding the targets key `id` (of `kind`) alone; a
/// second run does not overwrite it. Returns the file.
fn copy_targets_of(x: &Offline, from: &Path, id: &str, kind: Kind) -> PathBuf {
    let n = std::fs::read_dir(x.dir.path()).unwrap().count();
    let only = x.dir.path().join(format!("targets-only-{n}.tgz"));
    let (f, o) = (from.to_str().unwrap(), only.to_str().unwrap());
    ok(&x.ctl(&["keys", "copy-targets", f, o]));
    sole_private_key_is(&only, id, kind);
    let before = std::fs::read(&only).unwrap();
    let err = fails(&x.ctl(&["keys", "copy-targets", f, o]));
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(std::fs::read(&only).unwrap(), before);
    only
}

/// `export-root`: the root key `root_id`'s .sec, 0600, a warning; the file parses back (type,
/// scheme, PKCS#8 PEM) to the same key of `kind`, which signs what the served root's key
/// verifies; a second run does not overwrite it.
fn export_root_of(x: &Offline, root_id: &str, kind: Kind) {
    let sec = x.dir.path().join("root.sec");
    let args = [
        "keys",
        "export-root",
        x.creds.to_str().unwrap(),
        "--out",
        sec.to_str().unwrap(),
    ];
    let out = x.ctl(&args);
    ok(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("PRIVATE key"));
    let mode = std::fs::metadata(&sec).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let exported = std::fs::read(&sec).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&exported).unwrap();
    assert_eq!(
        (v["keytype"].as_str(), v["scheme"].as_str()),
        (Some(kind.keytype), Some(kind.scheme))
    );
    let key = tuf_core::PrivateKey::from_pkcs8_pem(
        kind.keytype,
        kind.scheme,
        v["keyval"]["private"].as_str().unwrap(),
    )
    .unwrap();
    assert_eq!(key.public_key().key_id().as_str(), root_id);
    let served = server_root(x.server, &x.f);
    let public = &served.signed.keys[&tuf_core::KeyId::new(root_id).unwrap()];
    assert_eq!(v["keyval"]["public"], public.keyval.public.as_str());
    public
        .verify(b"a message", &key.sign(b"a message").unwrap())
        .unwrap();
    let err = fails(&x.ctl(&args));
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(std::fs::read(&sec).unwrap(), exported);
}

/// The restored file holds both keys; its root key signs a renewal of the roots (applied:
/// version 4, signed by that key, verifying), and a targets-only copy of it signs a Wave that
/// `prod` (on root version 1) installs.
fn restored_keys_sign(x: &Offline, prod: &Device, restored: &Path, root_id: &str, kind: Kind) {
    let c = Credentials::read(&std::fs::read(restored).unwrap()).unwrap();
    let mut held: Vec<String> = c
        .keys()
        .unwrap()
        .iter()
        .filter(|k| k.has_private && k.public.keytype == kind.keytype)
        .map(|k| k.key_id().as_str().to_owned())
        .collect();
    held.sort();
    let mut want = vec![root_id.to_owned(), x.offline_id.clone()];
    want.sort();
    assert_eq!(held, want);

    let out = json(&ok(&x.ctl(&[
        "--json",
        "keys",
        "resign-root",
        restored.to_str().unwrap(),
    ])));
    assert_eq!(out["version"], 4, "{out}");
    for served in [x.get("root.json"), x.get("root.json?production=1")] {
        assert_eq!(served["signed"]["version"], 4, "{served}");
        assert_eq!(signer_ids(&served), [root_id], "{served}");
        root_verifies(&served);
    }
    let only = copy_targets_of(x, restored, &x.offline_id, kind);
    let build = add_build(x.server, &x.f, x.dir.path(), "42");
    x.ship_wave(only.to_str().unwrap(), "wave-42", "42");
    let targets = x.get("targets.json?production=1");
    assert!(signer_ids(&targets).contains(&x.offline_id), "{targets}");
    prod.installs("app-42", &build);
}
