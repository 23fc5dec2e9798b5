//! A threshold root held by five people, end to end (docs/COMPROMISE.md section 5), on SQLite
//! and PostgreSQL: one transaction makes the root 3-of-5; later changes need three holders;
//! holder 5 loses their file and the others remove that key without it; the threshold goes to
//! 4 of the 4 remaining, then down to 2, each signed as TUF requires (a threshold of the
//! current root's keys AND of the new root's keys); a production Wave still reaches production
//! devices. After every step a CI and a production device running the real `tuf-agent`,
//! initialised on root version 1, follow the root chain: their stored root.json has exactly
//! the version the server publishes, and they stay on (or install) the expected image.
//! Holder 4's key is generated on, and signs from, a SoftHSM2 token (PKCS#11): their file
//! holds only a reference to it.

mod support;

use std::path::{Path, PathBuf};

use support::e2e::*;
use support::softhsm::Token;
use support::*;
use tuf_core::{PrivateKey, Role, Root, Signed, Threshold};
use tuf_credentials::Credentials;

#[test]
fn threshold_root_on_sqlite() {
    threshold_root_held_by_five_people(Server::start());
}

#[test]
fn threshold_root_on_postgres() {
    on_postgres(threshold_root_held_by_five_people);
}

/// One root key holder: their own credentials file and the root key it holds.
struct Holder {
    n: usize,
    file: PathBuf,
    owner: String,
    keyid: String,
    /// The token holding this holder's key, when it is a hardware key.
    token: Option<Token>,
}

impl Holder {
    fn path(&self) -> &str {
        self.file.to_str().unwrap()
    }

    fn short(&self) -> &str {
        &self.keyid[..12]
    }

    /// `updates sign` with this holder's key; returns what tufctl printed.
    fn sign(&self, x: &Offline) -> String {
        let out = ok(&self.ctl(x, &updates_args(&["sign", "-k", self.path()])));
        assert!(
            out.contains(&format!("signed CI root with {}", self.short())),
            "holder {}: {out}",
            self.n
        );
        assert!(
            out.contains(&format!("signed production root with {}", self.short())),
            "holder {}: {out}",
            self.n
        );
        out
    }

    /// Signing is refused by tufctl's own run of the server's check `check`: nothing signed.
    fn sign_refused(&self, x: &Offline, check: &str) -> String {
        let err = fails(&self.ctl(x, &updates_args(&["sign", "-k", self.path()])));
        assert!(
            err.contains("refusing to sign root-update transaction")
                && err.contains(&format!("nothing was signed: {check}: ")),
            "holder {}: {err}",
            self.n
        );
        err
    }

    /// tufctl as the Factory's owner at this holder's desk: with their token plugged in and
    /// its PIN in a file, for a hardware key.
    fn ctl(&self, x: &Offline, args: &[&str]) -> std::process::Output {
        let Some(t) = &self.token else {
            return x.ctl(args);
        };
        let mut v: Vec<&str> = args.to_vec();
        v.extend([
            "--pkcs11",
            &t.module,
            "--pin-file",
            t.pin_file.to_str().unwrap(),
        ]);
        x.ctl_env(&v, &[("SOFTHSM2_CONF", t.conf.to_str().unwrap())])
    }

    /// The private key, read from the holder's file (the way a thief would use it).
    fn private_key(&self) -> PrivateKey {
        let c = Credentials::read(&std::fs::read(&self.file).unwrap()).unwrap();
        c.private_key(&format!("tufctl-root-{}", self.keyid))
            .unwrap()
    }
}

/// The holder set-up, in one place: holder 1 is the owner who did the page's first steps
/// (their file holds the current root key); every other holder enrols a new root key of
/// their own into a new file with `add-offline-key` inside the open transaction. A holder
/// using a hardware key would be enrolled here (and sign in [`Holder::sign`]) differently:
/// holder 4 suits it best, as it signs in every kind of change below (3 of 5, 4 of 4, 2 of 4)
/// and its private key is never read from a file ([`Holder::private_key`] serves only the
/// forgery, with holders 1, 2 and 5).
fn enrol_holder(x: &Offline, n: usize) -> Holder {
    let owner = format!("holder{n}@site-{n}");
    if n == 1 {
        let root = x.get("root.json");
        let ids = role_ids(&root, "root");
        assert_eq!(ids.len(), 1, "{ids:?}");
        return Holder {
            n,
            file: x.creds.clone(),
            owner: root["signed"]["x-key-owners"][&ids[0]]
                .as_str()
                .unwrap()
                .to_owned(),
            keyid: ids[0].clone(),
            token: None,
        };
    }
    let file = x.dir.path().join(format!("holder{n}.tgz"));
    // Holder 4 keeps their key on a token; without SoftHSM (outside CI) a file key stands in.
    let token = if n == 4 { Token::new("holder4") } else { None };
    let mut args = updates_args(&[
        "add-offline-key",
        "--role",
        "root",
        "-k",
        file.to_str().unwrap(),
        "--owner",
        &owner,
    ]);
    let label = token.as_ref().map(|t| t.label.clone());
    if let Some(l) = &label {
        args.extend(["--slot", l]);
    }
    let mut holder = Holder {
        n,
        file: file.clone(),
        owner: owner.clone(),
        keyid: String::new(),
        token: None,
    };
    holder.token = token;
    let out = ok(&holder.ctl(x, &args));
    holder.keyid = sole_key_id(&file, "root");
    assert!(
        out.contains(&format!("Added root key {}", holder.keyid)),
        "{out}"
    );
    if holder.token.is_some() {
        let c = Credentials::read(&std::fs::read(&file).unwrap()).unwrap();
        let k = &c.keys().unwrap()[0];
        assert!(
            matches!(k.private, tuf_credentials::PrivatePart::Token { .. }),
            "holder 4's key should be on the token: {k:?}"
        );
        assert!(!k.has_private, "holder 4's file holds a private key");
    }
    holder
}

/// The version of the root.json a device stores as trusted.
fn stored_root_version(d: &Device) -> u64 {
    let bytes = std::fs::read(d.dir.path().join("metadata/root.json")).unwrap();
    Signed::<Root>::from_slice(&bytes).unwrap().signed.version
}

/// Both roots on the server have `version`, and both devices follow to it and stay on
/// `installed`.
fn devices_follow(x: &Offline, devices: &[&Device], version: u64, installed: (&str, &[u8])) {
    for path in ["root.json", "root.json?production=1"] {
        let root = x.get(path);
        assert_eq!(root["signed"]["version"], version, "{path}");
    }
    for d in devices {
        d.stays_on(installed.0, installed.1);
        assert_eq!(stored_root_version(d), version, "{}", d.metadata_url);
    }
}

/// `apply` is refused naming `check` first, and nothing changed: the roots stay at
/// `version` and the devices with them.
fn apply_refused(
    x: &Offline,
    check: &str,
    devices: &[&Device],
    version: u64,
    installed: (&str, &[u8]),
) -> String {
    let err = fails(&x.updates(&["apply"]));
    assert!(
        err.contains("422") && err.contains("root update rejected"),
        "{err}"
    );
    assert!(
        err.contains(&format!("\"check\":\"{check}\"")),
        "refused for another reason than {check}: {err}"
    );
    devices_follow(x, devices, version, installed);
    err
}

/// The version of the root a credentials file trusts (its `roles/root.json`).
fn file_root_version(path: &str) -> u64 {
    let bytes = std::fs::read(path).unwrap();
    let creds = tuf_credentials::Credentials::read(&bytes).unwrap();
    creds.root().unwrap().unwrap().signed.version
}

fn applied(x: &Offline, version: u64) {
    let out = ok(&x.updates(&["apply"]));
    assert_eq!(
        out.trim(),
        format!("Applied: CI root version {version}, production root version {version}.")
    );
}

fn threshold_root_held_by_five_people(server: Server) {
    let x = Offline::setup(&server, "five-holders", "holder1.tgz");
    let only = x.only.to_str().unwrap();
    let ci_root_v1 = root_v1(&x.ci_base);
    let prod_root_v1 = root_v1(&x.prod_base);
    let ci_device = Device::new(&ci_root_v1, &x.ci_base);
    let prod_device = Device::new(&prod_root_v1, &x.prod_base);
    let devices = [&ci_device, &prod_device];
    let v42 = add_build(&server, &x.f, x.dir.path(), "42");
    x.ship_wave(only, "wave-42", "42");
    ci_device.installs("app-42", &v42);
    prod_device.installs("app-42", &v42);
    // Bootstrap (1), rotate-root (2), rotate-targets (3).
    let app42 = ("app-42", v42.as_slice());
    devices_follow(&x, &devices, 3, app42);

    // a. One transaction makes the root 3-of-5.
    ok(&x.updates(&["init", "-m", "root held by five people, any three sign"]));
    let holders: Vec<Holder> = (1..=5).map(|n| enrol_holder(&x, n)).collect();
    let h = |n: usize| &holders[n - 1];
    let out = ok(&x.updates(&["set-threshold", "--role", "root", "3"]));
    assert!(out.contains("Staged: root threshold 3"), "{out}");
    let review = ok(&x.updates(&["review"]));
    for line in [
        "  message: root held by five people, any three sign".to_owned(),
        "CI root: version 3 -> 4".to_owned(),
        "production root: version 3 -> 4".to_owned(),
        "  root: threshold 1 -> 3".to_owned(),
        format!(
            "  signatures by the current root keys: 0 of 1 needed; not signed by {}",
            h(1).short()
        ),
        format!(
            "  signatures by the new root keys: 0 of 3 needed; not signed by {}",
            holders
                .iter()
                .map(Holder::short)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ] {
        assert!(review.contains(&line), "missing {line:?} in\n{review}");
    }
    for k in &holders[1..] {
        // Holder 4's key is on a token; the others are in files.
        let origin = if k.token.is_some() {
            "on a hardware token"
        } else {
            "in an offline file"
        };
        let line = format!(
            "  root: + key {} (ed25519 {origin}, owner {})",
            k.keyid, k.owner
        );
        assert_eq!(review.matches(&line).count(), 2, "{line:?} in\n{review}");
    }
    // Holders 2 and 3 sign: two of the three new signatures, none of the current root's.
    h(2).sign(&x);
    let out = h(3).sign(&x);
    assert!(
        out.contains(&format!(
            "still missing: CI root: 1 more signature(s) from the current root keys (have 0 of 1; missing: {})",
            h(1).short()
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "still missing: CI root: 1 more signature(s) from the new root keys (have 2 of 3; missing: {}, {}, {})",
            h(1).short(),
            h(4).short(),
            h(5).short()
        )),
        "{out}"
    );
    let review = ok(&x.updates(&["review"]));
    assert_eq!(
        review
            .matches(&format!(
                "signatures by the new root keys: 2 of 3 needed; not signed by {}, {}, {}",
                h(1).short(),
                h(4).short(),
                h(5).short()
            ))
            .count(),
        2,
        "{review}"
    );
    let err = apply_refused(&x, "current_root_signatures", &devices, 3, app42);
    assert!(
        err.contains("new_root_signatures: ci_root: 2 of 3 signatures of the new root's keys"),
        "{err}"
    );
    let out = h(1).sign(&x);
    assert!(out.contains("All root signatures are present"), "{out}");
    applied(&x, 4);
    let root = x.get("root.json");
    assert_eq!(root["signed"]["roles"]["root"]["threshold"], 3);
    assert_eq!(
        role_ids(&root, "root"),
        holders.iter().map(|k| k.keyid.clone()).collect::<Vec<_>>()
    );
    for k in &holders {
        assert_eq!(root["signed"]["x-key-owners"][&k.keyid], k.owner.as_str());
    }
    let prod_root = x.get("root.json?production=1");
    assert_eq!(
        prod_root["signed"]["roles"]["root"],
        root["signed"]["roles"]["root"]
    );
    devices_follow(&x, &devices, 4, app42);

    // `keys status` tells each holder what their file holds and who else must sign.
    let st = json(&ok(&x.ctl(&["--json", "keys", "status", h(2).path()])));
    assert_eq!(st["root_role"]["threshold"], 3);
    assert_eq!(st["root_role"]["in_file"], 1);
    assert_eq!(st["root_role"]["signatures_needed_from_others"], 2);
    let listed: Vec<(&str, bool)> = st["root_role"]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["keyid"].as_str().unwrap(),
                k["in_file"].as_bool().unwrap(),
            )
        })
        .collect();
    let want: Vec<(&str, bool)> = holders
        .iter()
        .map(|k| (k.keyid.as_str(), k.n == 2))
        .collect();
    assert_eq!(listed, want);
    let human = ok(&x.ctl(&["keys", "status", h(2).path()]));
    for line in [
        "Root keys (root version 4): any 3 of these 5 sign a root change".to_owned(),
        format!("in this file    {} (owner {})", h(2).keyid, h(2).owner),
        format!("NOT in this file {} (owner {})", h(5).keyid, h(5).owner),
        "a root change needs 2 more signature(s) from other holders".to_owned(),
    ] {
        assert!(human.contains(&line), "missing {line:?} in\n{human}");
    }

    // b. A later change (a renewal: a new version, nothing else) needs three holders; two
    // are refused, whichever two.
    ok(&x.updates(&["init", "-m", "yearly renewal"]));
    h(4).sign(&x);
    h(5).sign(&x);
    let err = apply_refused(&x, "current_root_signatures", &devices, 4, app42);
    assert!(
        err.contains("ci_root: 2 of 3 signatures of the current root's keys"),
        "{err}"
    );
    h(1).sign(&x);
    applied(&x, 5);
    let root = x.get("root.json");
    assert_eq!(root["signed"]["x-changelog"]["message"], "yearly renewal");
    devices_follow(&x, &devices, 5, app42);

    // c. Holder 5 loses their file. Someone may find it: keep the key as a finder would.
    let lost = h(5).private_key();
    let root_v5 = root_env(&x, 5);
    std::fs::remove_file(&h(5).file).unwrap();
    ok(&x.updates(&["init", "-m", "holder 5 lost their key"]));
    for (bad, why) in [
        (&h(5).keyid[..7], "at least 8 hex digits"),
        ("zzzzzzzzzz", "at least 8 hex digits"),
    ] {
        let err = fails(&x.updates(&["remove-key", bad]));
        assert!(err.contains(why), "{bad}: {err}");
    }
    let err = fails(&x.updates(&["remove-key", &h(5).keyid[..10], "--role", "targets"]));
    assert!(
        err.contains(&format!("key {} is not in the targets role", h(5).keyid)),
        "{err}"
    );
    let out = ok(&x.updates(&["remove-key", &h(5).keyid[..10]]));
    assert!(
        out.contains(&format!(
            "Staged: key {} (owner {}) removed from the root role of the CI and production roots and from their keys.",
            h(5).keyid,
            h(5).owner
        )),
        "{out}"
    );
    // Removing leaves 3 of 4: no structural check fails, only signatures are missing.
    let not_yet: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("  not yet: "))
        .collect();
    assert!(
        not_yet.iter().all(|l| l.contains("_root_signatures: ")),
        "{not_yet:?}"
    );
    let err = fails(&x.updates(&["remove-key", &h(5).keyid]));
    assert!(err.contains("no key of the staged roots"), "{err}");
    let review = ok(&x.updates(&["review"]));
    let line = format!("  root: - key {} (owner {})", h(5).keyid, h(5).owner);
    assert_eq!(review.matches(&line).count(), 2, "{line:?} in\n{review}");
    // The three remaining holders sign; the lost key's holder is not needed (and two are
    // not enough).
    // Holder 1's file trusts an older root; signing verifies the chain from it and the
    // file then remembers the newest root it verified (the next run checks only what is new).
    let before = file_root_version(h(1).path());
    assert!(
        before < 5,
        "holder 1's file already trusts version {before}"
    );
    h(1).sign(&x);
    assert_eq!(file_root_version(h(1).path()), 5);
    h(2).sign(&x);
    apply_refused(&x, "current_root_signatures", &devices, 5, app42);
    h(3).sign(&x);
    applied(&x, 6);
    let root_v6 = root_env(&x, 6);
    for r in [&root_v6.signed, &root_env_prod(&x).signed] {
        let rk = r.role(Role::Root);
        assert_eq!(rk.threshold.get(), 3);
        let ids: Vec<&str> = rk.keyids.iter().map(|k| k.as_str()).collect();
        let want: Vec<&str> = holders[..4].iter().map(|k| k.keyid.as_str()).collect();
        assert_eq!(ids, want);
        assert!(!r.keys.keys().any(|k| k.as_str() == h(5).keyid));
        assert!(r.extra["x-key-owners"].get(&h(5).keyid).is_none());
    }
    devices_follow(&x, &devices, 6, app42);
    lost_key_no_longer_counts(&x, &root_v5, &root_v6, &lost, [h(1), h(2)], &ci_root_v1);

    // The server refuses what remove-key can stage but must not be applied: below, a
    // threshold above the keys left, and production without an offline targets key.
    server_checks_refuse_bad_removals(&x, &holders[..4], &devices, app42);

    // d. Raise the threshold to 4 of the 4 remaining: the current root needs 3, the new
    // one 4, so three signatures are refused naming the new root's check.
    ok(&x.updates(&["init", "-m", "every remaining holder signs"]));
    ok(&x.updates(&["set-threshold", "--role", "root", "4"]));
    for n in 1..=3 {
        h(n).sign(&x);
    }
    let err = apply_refused(&x, "new_root_signatures", &devices, 6, app42);
    assert!(
        err.contains("ci_root: 3 of 4 signatures of the new root's keys"),
        "{err}"
    );
    h(4).sign(&x);
    applied(&x, 7);
    devices_follow(&x, &devices, 7, app42);

    // Lower it to 2: the new root needs 2, but the current one 4, so three are refused
    // naming the current root's check.
    ok(&x.updates(&["init", "-m", "any two holders"]));
    ok(&x.updates(&["set-threshold", "--role", "root", "2"]));
    for n in 1..=3 {
        h(n).sign(&x);
    }
    let err = apply_refused(&x, "current_root_signatures", &devices, 7, app42);
    assert!(
        err.contains("ci_root: 3 of 4 signatures of the current root's keys"),
        "{err}"
    );
    assert!(!err.contains("new_root_signatures"), "{err}");
    h(4).sign(&x);
    applied(&x, 8);
    let root = x.get("root.json");
    assert_eq!(root["signed"]["roles"]["root"]["threshold"], 2);
    devices_follow(&x, &devices, 8, app42);

    // Now any two holders sign a change.
    ok(&x.updates(&["init", "-m", "renewal by two"]));
    h(3).sign(&x);
    h(4).sign(&x);
    applied(&x, 9);
    devices_follow(&x, &devices, 9, app42);

    // A production Wave, signed with the targets-only file, reaches production devices.
    let v43 = add_build(&server, &x.f, x.dir.path(), "43");
    ci_device.installs("app-43", &v43);
    prod_device.stays_on("app-42", &v42);
    x.ship_wave(only, "wave-43", "43");
    prod_device.installs("app-43", &v43);
    devices_follow(&x, &devices, 9, ("app-43", &v43));
    // A device set up now, trusting root version 1, follows the whole chain.
    let late = Device::new(&prod_root_v1, &x.prod_base);
    late.installs("app-43", &v43);
    assert_eq!(stored_root_version(&late), 9);
}

/// CI root version `version` as devices fetch it.
fn root_env(x: &Offline, version: u64) -> Signed<Root> {
    let (status, bytes) = http_get(&format!("{}/metadata/{version}.root.json", x.ci_base));
    assert_eq!(status, 200);
    Signed::from_slice(&bytes).unwrap()
}

fn root_env_prod(x: &Offline) -> Signed<Root> {
    let v = x.get("root.json?production=1");
    Signed::from_slice(v.to_string().as_bytes()).unwrap()
}

/// The finder of holder 5's file, even with two real holders' signatures, cannot make a
/// root the devices accept: a next root giving holder 5 the root role, signed by holder 5,
/// 1 and 2, has only 2 valid signatures under the trusted root (3 of holders 1 to 4). The
/// same three signatures would have met the threshold of root version 5 (3 of 5, holder 5
/// included): the removal is what took the lost key out of every threshold.
fn lost_key_no_longer_counts(
    x: &Offline,
    root_v5: &Signed<Root>,
    root_v6: &Signed<Root>,
    lost: &PrivateKey,
    helpers: [&Holder; 2],
    ci_root_v1: &[u8],
) {
    use tuf_core::Signer;
    let forge = |base: &Signed<Root>| -> Signed<Root> {
        let mut r = base.signed.clone();
        r.version += 1;
        r.keys
            .insert(lost.key_id().clone(), lost.public_key().clone());
        let rk = r.role_mut(Role::Root).unwrap();
        rk.keyids = vec![lost.key_id().clone()];
        rk.threshold = Threshold::new(1).unwrap();
        r.prune_keys();
        let mut env = Signed::new(r).unwrap();
        env.sign(lost).unwrap();
        for hd in helpers {
            env.sign(&hd.private_key()).unwrap();
        }
        env
    };
    let under = |env: &Signed<Root>, trusted: &Signed<Root>| {
        let t = &trusted.signed;
        env.verify_role("root", t.role(Role::Root), &t.keys)
    };
    // Control: against root version 5 the forgery would have been a valid next root.
    let v = under(&forge(root_v5), root_v5);
    assert!(v.is_met(), "{v:?}");
    assert_eq!(v.distinct_valid, 3);
    let forged = forge(root_v6);
    assert_eq!(forged.signed.version, 7);
    let v = under(&forged, root_v6);
    assert!(!v.is_met(), "{v:?}");
    assert_eq!((v.distinct_valid, v.threshold), (2, 3));
    assert_eq!(v.ignored, vec![lost.key_id().clone()]);
    // Signed by the lost key alone it has nothing at all.
    let mut alone = forged.clone();
    alone.signatures.retain(|s| s.keyid == *lost.key_id());
    assert_eq!(alone.signatures.len(), 1);
    let v = under(&alone, root_v6);
    assert_eq!((v.distinct_valid, v.threshold), (0, 3));

    // Served as version 7 of the CI root, a device refuses it, naming the root threshold,
    // and keeps root version 6.
    let base_path = x.ci_base.strip_prefix(&x.server.url).unwrap();
    let forging = proxy(
        x.server.url.clone(),
        Some((
            format!("{base_path}/metadata/7.root.json"),
            forged.to_bytes(),
        )),
    );
    let device = Device::new(ci_root_v1, &format!("{forging}{base_path}"));
    let out = device.update();
    assert!(
        !out.status.success(),
        "forged root accepted: {}",
        stdout(&out)
    );
    let err = stderr(&out);
    assert!(
        err.contains("role root: 2 valid signature(s) from distinct trusted keys, threshold is 3"),
        "refused for another reason: {err}"
    );
    assert_eq!(stored_root_version(&device), 6);
    assert!(!device.installed_path().exists());
}

/// With the root 3-of-4: `remove-key` stages what the server then refuses, naming the
/// check; nothing changes. Removing a holder's key would leave 3 keys under threshold 3
/// (fine), so the threshold is raised first in the same transaction to show the check;
/// removing the offline targets key leaves production without one. Online keys are refused
/// by tufctl itself.
fn server_checks_refuse_bad_removals(
    x: &Offline,
    holders: &[Holder],
    devices: &[&Device],
    installed: (&str, &[u8]),
) {
    let version = 6;
    // Threshold above the keys left.
    ok(&x.updates(&["init", "-m", "too few keys"]));
    ok(&x.updates(&["set-threshold", "--role", "root", "4"]));
    let out = ok(&x.updates(&["remove-key", &holders[3].keyid[..8]]));
    for label in ["ci_root", "prod_root"] {
        let want = format!(
            "  not yet: threshold_range: {label}: root threshold 4 is more than its 3 key(s); \
             lower the threshold or add keys"
        );
        assert!(out.contains(&want), "missing {want:?} in\n{out}");
    }
    // The key holders' tufctl runs the server's checks before signing: it refuses by the
    // same name, and so does the server.
    for hd in &holders[..3] {
        hd.sign_refused(x, "threshold_range");
    }
    apply_refused(x, "threshold_range", devices, version, installed);
    ok(&x.updates(&["cancel"]));

    // The offline targets key: production would be left without one.
    let root = x.get("root.json");
    let online: Vec<String> = role_ids(&root, "targets")
        .into_iter()
        .filter(|id| *id != x.offline_id)
        .collect();
    assert_eq!(online.len(), 1, "{online:?}");
    ok(&x.updates(&["init", "-m", "no offline targets key"]));
    let err = fails(&x.updates(&["remove-key", &online[0]]));
    assert!(err.contains("one of the server's online keys"), "{err}");
    let err = fails(&x.updates(&["remove-key", &x.offline_id, "--role", "root"]));
    assert!(err.contains("is not in the root role"), "{err}");
    let v = json(&ok(&x.ctl(&[
        "--json",
        "keys",
        "tuf",
        "updates",
        "remove-key",
        &x.offline_id[..16],
    ])));
    assert_eq!(v["keyid"], x.offline_id.as_str());
    assert_eq!(v["roles"], serde_json::json!(["targets"]));
    assert_eq!(v["dropped_from_keys"], true);
    let errors: Vec<&str> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    for want in [
        "threshold_range: prod_root: targets threshold 2 is more than its 1 key(s)",
        "offline_targets_key: prod_root: the production targets role would keep no offline \
         targets key",
    ] {
        assert!(
            errors.iter().any(|e| e.starts_with(want)),
            "{want:?} in {errors:?}"
        );
    }
    // Lowering the production targets threshold to 1 does not get around it.
    let out = ok(&x.updates(&["set-threshold", "--role", "targets", "1"]));
    assert!(!out.contains("threshold_range"), "{out}");
    assert!(out.contains("  not yet: offline_targets_key: "), "{out}");
    for hd in &holders[..3] {
        hd.sign_refused(x, "offline_targets_key");
    }
    let err = apply_refused(x, "offline_targets_key", devices, version, installed);
    assert!(
        err.contains("the server alone would sign production releases"),
        "{err}"
    );
    ok(&x.updates(&["cancel"]));
    let prod = x.get("root.json?production=1");
    assert!(role_ids(&prod, "targets").contains(&x.offline_id));
    assert_eq!(prod["signed"]["roles"]["targets"]["threshold"], 2);
}

/// docs/COMPROMISE.md shows the commands this test runs, and names it.
#[test]
fn compromise_doc_names_this_test_and_its_commands() {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/COMPROMISE.md"),
    )
    .unwrap();
    let start = doc
        .find("### A threshold root: one holder's key is lost or stolen")
        .expect("the threshold-root section of docs/COMPROMISE.md");
    let section = &doc[start..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    for needle in [
        "crates/tufctl/tests/threshold.rs",
        "threshold_root_held_by_five_people",
        "tufctl keys tuf updates init -m \"root held by five people, any three sign\"",
        "tufctl keys tuf updates add-offline-key --role root -k HOLDER2.tgz --owner holder2@site-2",
        "tufctl keys tuf updates set-threshold --role root 3",
        "tufctl keys tuf updates sign -k HOLDER1.tgz",
        "tufctl keys tuf updates init -m \"holder 5 lost their key\"",
        "tufctl keys tuf updates remove-key ",
        "tufctl keys tuf updates set-threshold --role root 4",
        "tufctl keys tuf updates apply",
        "current_root_signatures",
        "new_root_signatures",
        "threshold_range",
        "offline_targets_key",
    ] {
        assert!(
            section.contains(needle),
            "docs/COMPROMISE.md no longer shows {needle:?}"
        );
    }
}
