//! Each malformation has one generated case, named for what an attacker (or an accident)
//! tries; every one must be refused with an error naming the problem.

use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;
use tar::{EntryType, Header};
use tuf_core::{KeyType, PrivateKey, Signer};

use super::*;

fn config() -> Config {
    Config {
        api: "http://127.0.0.1:8080".to_owned(),
        factory: "acme".to_owned(),
    }
}

fn sample() -> (Credentials, PrivateKey) {
    let mut c = Credentials::new(config());
    let key = PrivateKey::generate(KeyType::Ed25519).unwrap();
    c.add_key("offline-root", &key).unwrap();
    c.set_root_json(br#"{"signatures":[],"signed":{"_type":"root"}}"#)
        .unwrap();
    (c, key)
}

/// A raw entry for hand-built archives: (name, type, data).
fn raw_tar(entries: &[(&str, EntryType, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, kind, data) in entries {
        let mut h = Header::new_ustar();
        // Write the name bytes directly: `set_path` would refuse the malicious ones.
        let field = &mut h.as_ustar_mut().unwrap().name;
        field[..name.len()].copy_from_slice(name.as_bytes());
        h.set_size(data.len() as u64);
        h.set_mode(0o600);
        h.set_entry_type(*kind);
        if *kind == EntryType::Symlink || *kind == EntryType::Link {
            h.set_link_name("/etc/passwd").unwrap();
        }
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out.extend(std::iter::repeat_n(0u8, (512 - data.len() % 512) % 512));
    }
    out.extend(std::iter::repeat_n(0u8, 1024));
    out
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

const CONFIG_JSON: &[u8] = br#"{"api":"http://x","factory":"acme"}"#;

#[test]
fn round_trip_keeps_everything() {
    let (c, key) = sample();
    let bytes = c.to_bytes().unwrap();
    let again = Credentials::read(&bytes).unwrap();
    assert_eq!(again.config(), &config());
    assert_eq!(again.root_json(), c.root_json());
    let keys = again.keys().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].name, "offline-root");
    assert!(keys[0].has_private);
    assert_eq!(&keys[0].public, key.public_key());
    let loaded = again.private_key("offline-root").unwrap();
    assert_eq!(loaded.key_id(), key.key_id());
    let found = again.find_signer(key.public_key()).unwrap().unwrap();
    assert_eq!(found.key_id(), key.key_id());
    let other = PrivateKey::generate(KeyType::Ed25519).unwrap();
    assert!(again.find_signer(other.public_key()).unwrap().is_none());
}

#[test]
fn every_key_type_round_trips() {
    let mut c = Credentials::new(config());
    let keys: Vec<PrivateKey> = [KeyType::Ed25519, KeyType::EcdsaP256, KeyType::Rsa3072]
        .into_iter()
        .map(|k| PrivateKey::generate(k).unwrap())
        .collect();
    for (i, k) in keys.iter().enumerate() {
        c.add_key(&format!("k{i}"), k).unwrap();
    }
    let again = Credentials::read(&c.to_bytes().unwrap()).unwrap();
    for k in &keys {
        let found = again.find_signer(k.public_key()).unwrap().unwrap();
        let sig = found.sign(b"m").unwrap();
        k.public_key().verify(b"m", &sig).unwrap();
    }
}

#[test]
fn pub_file_is_the_key_as_in_root_json() {
    let (c, key) = sample();
    let bytes = c.to_bytes().unwrap();
    let entries = archive::read(&bytes).unwrap();
    let pub_json: serde_json::Value =
        serde_json::from_slice(&entries["tufrepo/keys/offline-root.pub"]).unwrap();
    assert_eq!(pub_json, serde_json::to_value(key.public_key()).unwrap());
    let sec_json: serde_json::Value =
        serde_json::from_slice(&entries["tufrepo/keys/offline-root.sec"]).unwrap();
    assert!(sec_json["keyval"]["private"]
        .as_str()
        .unwrap()
        .starts_with("-----BEGIN PRIVATE KEY-----"));
    assert_eq!(sec_json["keyval"]["public"], pub_json["keyval"]["public"]);
}

#[test]
fn writing_is_deterministic() {
    let (c, _) = sample();
    let a = c.to_bytes().unwrap();
    let b = Credentials::read(&a).unwrap().to_bytes().unwrap();
    assert_eq!(*a, *b);
    assert_eq!(*a, *c.to_bytes().unwrap());
    // Headers: mode 0600, uid/gid 0, mtime 0, sorted.
    let mut tar = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&a[..]), &mut tar).unwrap();
    let mut archive = tar::Archive::new(&tar[..]);
    let mut names = Vec::new();
    for e in archive.entries().unwrap() {
        let e = e.unwrap();
        let h = e.header();
        assert_eq!(h.mode().unwrap(), 0o600);
        assert_eq!(h.uid().unwrap(), 0);
        assert_eq!(h.gid().unwrap(), 0);
        assert_eq!(h.mtime().unwrap(), 0);
        names.push(String::from_utf8(e.path_bytes().into_owned()).unwrap());
    }
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
}

#[test]
fn remove_and_subset() {
    let (mut c, _) = sample();
    let t = PrivateKey::generate(KeyType::Ed25519).unwrap();
    c.add_key("tufctl-targets-x", &t).unwrap();
    let only = c.subset(&["tufctl-targets-x"]).unwrap();
    let names: Vec<String> = only.keys().unwrap().into_iter().map(|k| k.name).collect();
    assert_eq!(names, ["tufctl-targets-x"]);
    assert_eq!(only.config(), c.config());
    c.remove_key("offline-root").unwrap();
    assert!(
        matches!(c.remove_key("offline-root"), Err(Error::KeyNotFound(n)) if n == "offline-root")
    );
    assert_eq!(c.keys().unwrap().len(), 1);
}

#[test]
fn same_name_different_key_is_refused() {
    let (mut c, key) = sample();
    c.add_key("offline-root", &key).unwrap();
    let other = PrivateKey::generate(KeyType::Ed25519).unwrap();
    assert!(matches!(
        c.add_key("offline-root", &other),
        Err(Error::KeyExists(_))
    ));
    assert!(matches!(
        c.add_key("../evil", &other),
        Err(Error::InvalidKeyName(_))
    ));
}

#[test]
fn encrypted_round_trip_and_detection() {
    let (c, key) = sample();
    let enc = c.to_encrypted_bytes_fast("correct horse").unwrap();
    assert!(enc.starts_with(b"age-encryption.org/v1\n"));
    assert!(matches!(Credentials::read(&enc), Err(Error::Encrypted)));
    assert!(matches!(
        Credentials::read_encrypted(&enc, "wrong"),
        Err(Error::Decrypt(_))
    ));
    let again = Credentials::read_encrypted(&enc, "correct horse").unwrap();
    assert!(again.find_signer(key.public_key()).unwrap().is_some());
}

#[test]
fn debug_shows_no_secret() {
    let (c, key) = sample();
    let pem = key.to_pkcs8_pem();
    let body: String = pem.lines().nth(1).unwrap().to_owned();
    assert!(!format!("{c:?}").contains(&body));
}

// --- malformations ----------------------------------------------------------------------

fn refused(bytes: &[u8]) -> Error {
    match Credentials::read(bytes) {
        Ok(_) => panic!("accepted"),
        Err(e) => e,
    }
}

#[test]
fn not_ours_random_bytes() {
    assert!(matches!(
        refused(b"hello, this is a text file"),
        Error::NotCredentials(_)
    ));
}

#[test]
fn not_ours_tarball_without_config() {
    let t = gz(&raw_tar(&[(
        "tufrepo/roles/root.json",
        EntryType::Regular,
        b"{}",
    )]));
    assert!(matches!(refused(&t), Error::NotCredentials(_)));
}

#[test]
fn not_ours_other_files() {
    let t = gz(&raw_tar(&[("README.md", EntryType::Regular, b"hi")]));
    assert!(matches!(refused(&t), Error::UnsafeEntry { .. }));
}

#[test]
fn truncated_file() {
    let (c, _) = sample();
    let bytes = c.to_bytes().unwrap();
    for cut in [10, bytes.len() / 2, bytes.len() - 4] {
        let e = refused(&bytes[..cut]);
        assert!(matches!(e, Error::Corrupt(_)), "cut {cut}: {e}");
    }
}

#[test]
fn truncated_tar_inside_valid_gzip() {
    let (c, _) = sample();
    let mut tar = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(&c.to_bytes().unwrap()[..]),
        &mut tar,
    )
    .unwrap();
    tar.truncate(512 * 3);
    assert!(matches!(refused(&gz(&tar)), Error::Corrupt(_)));
}

#[test]
fn path_traversal() {
    for name in [
        "tufrepo/keys/../../etc.sec",
        "../tufrepo/config.json",
        "tufrepo/./config.json",
    ] {
        let t = gz(&raw_tar(&[
            ("tufrepo/config.json", EntryType::Regular, CONFIG_JSON),
            (name, EntryType::Regular, b"{}"),
        ]));
        assert!(
            matches!(refused(&t), Error::UnsafeEntry { .. }),
            "{name} accepted"
        );
    }
}

#[test]
fn absolute_path() {
    let t = gz(&raw_tar(&[(
        "/tufrepo/config.json",
        EntryType::Regular,
        CONFIG_JSON,
    )]));
    assert!(matches!(refused(&t), Error::UnsafeEntry { .. }));
}

#[test]
fn symlink_and_hardlink_entries() {
    for kind in [EntryType::Symlink, EntryType::Link, EntryType::Char] {
        let t = gz(&raw_tar(&[
            ("tufrepo/config.json", EntryType::Regular, CONFIG_JSON),
            ("tufrepo/keys/a.sec", kind, b""),
        ]));
        let e = refused(&t);
        assert!(matches!(e, Error::UnsafeEntry { .. }), "{kind:?}: {e}");
    }
}

#[test]
fn oversized_entry() {
    let big = vec![b' '; archive::MAX_ENTRY as usize + 1];
    let t = gz(&raw_tar(&[
        ("tufrepo/config.json", EntryType::Regular, CONFIG_JSON),
        ("tufrepo/roles/targets.json", EntryType::Regular, &big),
    ]));
    assert!(matches!(refused(&t), Error::EntryTooLarge { .. }));
}

#[test]
fn gzip_bomb() {
    // 64 MiB of zeros compresses to ~64 KiB; decompression must stop at the cap.
    let mut e = GzEncoder::new(Vec::new(), Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..64 {
        e.write_all(&zeros).unwrap();
    }
    let bomb = e.finish().unwrap();
    assert!(bomb.len() < archive::MAX_COMPRESSED as usize);
    assert!(matches!(refused(&bomb), Error::TooLarge { .. }));
}

#[test]
fn duplicate_entry() {
    let t = gz(&raw_tar(&[
        ("tufrepo/config.json", EntryType::Regular, CONFIG_JSON),
        ("tufrepo/config.json", EntryType::Regular, CONFIG_JSON),
    ]));
    assert!(matches!(refused(&t), Error::DuplicateEntry(_)));
}

#[test]
fn bad_json_in_sec() {
    let t = gz(&raw_tar(&[
        ("tufrepo/config.json", EntryType::Regular, CONFIG_JSON),
        (
            "tufrepo/keys/offline-root.sec",
            EntryType::Regular,
            b"{\"keytype\": \"ed25519\", ",
        ),
    ]));
    let e = refused(&t);
    assert!(matches!(e, Error::BadEntry { .. }), "{e}");
    assert!(e.to_string().contains("offline-root.sec"));
}

#[test]
fn sec_whose_public_part_differs_from_pub() {
    let (c, _) = sample();
    let other = PrivateKey::generate(KeyType::Ed25519).unwrap();
    let mut entries = archive::read(&c.to_bytes().unwrap()).unwrap();
    let (p, _) = keyfile::encode(&other).unwrap();
    entries.insert(
        "tufrepo/keys/offline-root.pub".to_owned(),
        Zeroizing::new(p),
    );
    let bytes = archive::write(&entries).unwrap();
    assert!(matches!(refused(&bytes), Error::BadEntry { .. }));
}

#[test]
fn bad_config() {
    let t = gz(&raw_tar(&[(
        "tufrepo/config.json",
        EntryType::Regular,
        b"{\"auth\": {}}",
    )]));
    assert!(matches!(refused(&t), Error::BadConfig(_)));
}

#[test]
fn directories_and_fioctl_extras_are_accepted() {
    let t = gz(&raw_tar(&[
        ("tufrepo/", EntryType::Directory, b""),
        ("tufrepo/config.json", EntryType::Regular, CONFIG_JSON),
        ("tufrepo/roles/", EntryType::Directory, b""),
        ("tufrepo/roles/targets.json", EntryType::Regular, b"{}"),
        (
            "tufrepo/roles/targets.json.checksum",
            EntryType::Regular,
            b"abc",
        ),
        (
            "tufrepo/roles/unsigned/targets.json",
            EntryType::Regular,
            b"{}",
        ),
    ]));
    let c = Credentials::read(&t).unwrap();
    assert!(c
        .entry_names()
        .any(|n| n == "tufrepo/roles/unsigned/targets.json"));
}

// --- hardware keys ----------------------------------------------------------------------

/// A token reference as tuf-pkcs11 writes it, for a key like `public`.
fn token_ref(public: &PublicKey, serial: &str) -> Vec<u8> {
    let mut v = serde_json::to_vec_pretty(&serde_json::json!({
        "module": "/usr/lib/softhsm/libsofthsm2.so",
        "token_label": "tuf",
        "token_serial": serial,
        "id": "a1b2c3",
        "label": "root",
        "keytype": public.keytype,
        "scheme": public.scheme,
    }))
    .unwrap();
    v.push(b'\n');
    v
}

#[test]
fn token_key_is_stored_as_a_reference_only() {
    let (mut c, _) = sample();
    let hw = PrivateKey::generate(KeyType::EcdsaP256).unwrap();
    let public = hw.public_key().clone();
    let reference = token_ref(&public, "5e1f00d");
    c.add_token_key("tufctl-root-hw", &public, &reference)
        .unwrap();
    // Adding the same reference again is a no-op; another one under the name is refused.
    c.add_token_key("tufctl-root-hw", &public, &reference)
        .unwrap();
    assert!(matches!(
        c.add_token_key("tufctl-root-hw", &public, &token_ref(&public, "other")),
        Err(Error::KeyExists(_))
    ));

    let bytes = c.to_bytes().unwrap();
    let again = Credentials::read(&bytes).unwrap();
    let names: Vec<&str> = again.entry_names().collect();
    assert!(names.contains(&"tufrepo/keys/tufctl-root-hw.pub"));
    assert!(names.contains(&"tufrepo/keys/tufctl-root-hw.pkcs11"));
    assert!(!names.contains(&"tufrepo/keys/tufctl-root-hw.sec"));
    let k = again.find_key(&public).unwrap().unwrap();
    assert_eq!(k.name, "tufctl-root-hw");
    assert!(!k.has_private);
    assert!(k.can_sign());
    assert_eq!(
        k.private,
        PrivatePart::Token {
            label: "tuf".to_owned(),
            serial: "5e1f00d".to_owned()
        }
    );
    assert_eq!(again.token_key_ref("tufctl-root-hw").unwrap(), reference);
    // No private key comes out of a reference.
    assert!(again.find_signer(&public).unwrap().is_none());
    for err in [
        again.private_key("tufctl-root-hw").unwrap_err(),
        again
            .secret_key_file("tufctl-root-hw")
            .map(drop)
            .unwrap_err(),
    ] {
        assert!(
            matches!(&err, Error::KeyNotFound(n) if n == "tufctl-root-hw (no .sec file)"),
            "{err}"
        );
    }
    let file_key = again.find_key(sample().1.public_key()).unwrap();
    assert!(file_key.is_none(), "a different key must not match");
    let root = again
        .keys()
        .unwrap()
        .into_iter()
        .find(|k| k.name == "offline-root");
    assert_eq!(root.unwrap().private, PrivatePart::File);

    // Deterministic, carried by subset, removed with the key.
    assert_eq!(*again.to_bytes().unwrap(), *bytes);
    let only = again.subset(&["tufctl-root-hw"]).unwrap();
    assert_eq!(only.token_key_ref("tufctl-root-hw").unwrap(), reference);
    let mut c = again;
    c.remove_key("tufctl-root-hw").unwrap();
    assert!(c.entry_names().all(|n| !n.contains("tufctl-root-hw")));
}

#[test]
fn bad_token_references_are_refused() {
    let key = PrivateKey::generate(KeyType::Ed25519).unwrap();
    let public = key.public_key().clone();
    let pub_json = keyfile::encode_public(&public).unwrap();
    let good = token_ref(&public, "5e1f00d");
    let sec = keyfile::encode(&key).unwrap().1;
    let ecdsa = PrivateKey::generate(KeyType::EcdsaP256).unwrap();
    type Files<'a> = Vec<(&'a str, &'a [u8])>;
    let cases: Vec<(&str, Files)> = vec![
        (
            "reference without its public key",
            vec![("tufrepo/keys/k.pkcs11", &good)],
        ),
        (
            "a key both in the file and on a token",
            vec![
                ("tufrepo/keys/k.pub", &pub_json),
                ("tufrepo/keys/k.sec", &sec),
                ("tufrepo/keys/k.pkcs11", &good),
            ],
        ),
        (
            "reference that is not JSON",
            vec![
                ("tufrepo/keys/k.pub", &pub_json),
                ("tufrepo/keys/k.pkcs11", b"nope"),
            ],
        ),
    ];
    let wrong_type = token_ref(ecdsa.public_key(), "5e1f00d");
    let mut cases = cases;
    cases.push((
        "reference for another key type",
        vec![
            ("tufrepo/keys/k.pub", &pub_json),
            ("tufrepo/keys/k.pkcs11", &wrong_type),
        ],
    ));
    for (what, files) in cases {
        let mut entries = vec![("tufrepo/config.json", EntryType::Regular, CONFIG_JSON)];
        entries.extend(files.iter().map(|(n, d)| (*n, EntryType::Regular, *d)));
        let err = refused(&gz(&raw_tar(&entries)));
        assert!(
            matches!(&err, Error::BadEntry { name, .. } if name == "tufrepo/keys/k.pkcs11"),
            "{what}: {err}"
        );
    }
    let mut c = Credentials::new(config());
    for reference in [&b"{}"[..], &wrong_type] {
        let err = c.add_token_key("k", &public, reference).unwrap_err();
        assert!(
            matches!(&err, Error::BadEntry { name, .. } if name == "tufrepo/keys/k.pkcs11"),
            "{err}"
        );
    }
    let err = c.add_token_key("../k", &public, &good).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidKeyName(n) if n == "../k"),
        "{err}"
    );
    assert_eq!(c.keys().unwrap().len(), 0);
}

// --- files --------------------------------------------------------------------------------

#[test]
fn save_atomic_and_save_new() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("creds.tgz");
    let (c, _) = sample();
    let bytes = c.to_bytes().unwrap();
    assert!(save_new(&path, &bytes).unwrap().is_empty());
    assert!(matches!(save_new(&path, &bytes), Err(Error::Exists { .. })));
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    save_atomic(&path, b"new").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"new");
    // Only the target file remains: no temporary files.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn leftover_temp_is_reported_not_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("creds.tgz");
    let (c, _) = sample();
    save_atomic(&path, &c.to_bytes().unwrap()).unwrap();
    let stray = dir.path().join(".creds.tgz.tmp-123-0-0");
    std::fs::write(&stray, b"partial").unwrap();
    let loaded = load(&path).unwrap();
    assert_eq!(loaded.leftovers, vec![stray.clone()]);
    Credentials::read(&loaded.bytes).unwrap();
    let left = save_atomic(&path, &c.to_bytes().unwrap()).unwrap();
    assert_eq!(left, vec![stray]);
}
