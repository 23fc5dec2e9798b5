//! Key backups: `keys export-root` (plain text .sec) and `keys backup` / `keys restore`
//! (Shamir paper shares), against a real tufd.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

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
