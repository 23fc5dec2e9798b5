//! Waves end to end on a real `tufd` (SQLite, and PostgreSQL when `TUFD_TEST_DATABASE_URL`
//! is set): a CI build reaches CI devices at targets threshold 1; a production Wave, signed
//! with the targets-only tarball and countersigned by the server, reaches production devices;
//! CI-only builds never do; production targets carrying the server's signature alone are
//! refused by the production root (threshold 2); and production devices keep updating across
//! a rotation of the offline targets key. The key-compromise scenarios of docs/COMPROMISE.md
//! (online keys, lost offline targets key, stolen root key) run on both backends too; the
//! online keys are replaced by P-256, RSA and ed25519 keys in turn.

mod support;

use support::e2e::*;
use support::kinds::*;
use support::*;
use tuf_core::{Role, Root, Signed, Snapshot, Targets, Timestamp};
use tuf_credentials::Credentials;

#[test]
fn waves_on_sqlite() {
    story(Server::start());
}

#[test]
fn waves_on_postgres() {
    on_postgres(story);
}

/// A device running the real `tuf-agent` against one metadata URL.
fn story(server: Server) {
    // Bootstrap, the offline root, the offline targets key, the targets-only tarball.
    let x = Offline::setup(&server, "acme", "creds.tgz");
    let Offline {
        f,
        dir,
        creds,
        only,
        api,
        ci_base,
        prod_base,
        offline_id,
        ..
    } = &x;
    let (c, o) = (creds.to_str().unwrap(), only.to_str().unwrap());
    let ctl = |args: &[&str]| x.ctl(args);

    // Devices trust version 1 of their root and follow the chain.
    let ci_root_v1 = root_v1(ci_base);
    let prod_root_v1 = root_v1(prod_base);
    let ci_device = Device::new(&ci_root_v1, ci_base);
    let prod_device = Device::new(&prod_root_v1, prod_base);

    // A CI build reaches CI devices (targets threshold 1, the server's signature) ...
    let v42 = add_build(&server, f, dir.path(), "42");
    ci_device.installs("app-42", &v42);
    // ... and never production devices.
    let out = prod_device.update();
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("no target for hardware id \"board-a\""),
        "{}",
        stderr(&out)
    );

    // Expiry is between a day and ten years.
    for days in ["0", "3651"] {
        let err = fails(&ctl(&[
            "waves",
            "init",
            "-k",
            o,
            "wave-x",
            "42",
            "production",
            "--expires-days",
            days,
        ]));
        assert!(err.contains("--expires-days"), "{err}");
    }

    // A Wave of version 42, signed with the targets-only tarball, default expiry.
    ok(&ctl(&[
        "waves",
        "init",
        "-k",
        o,
        "wave-42",
        "42",
        "production",
    ]));
    let list = json(&ok(&ctl(&["--json", "waves", "list"])));
    assert_eq!(list[0]["name"], "wave-42");
    assert_eq!(list[0]["status"], "active");
    // Not published before `complete`.
    let out = prod_device.update();
    assert!(!out.status.success(), "{}", stdout(&out));
    ok(&ctl(&["waves", "complete", "wave-42"]));
    let list = json(&ok(&ctl(&["--json", "waves", "list"])));
    assert_eq!(list[0]["status"], "complete");
    let err = fails(&ctl(&["waves", "complete", "wave-42"]));
    assert!(err.contains("wave-42"), "{err}");

    let prod_targets = x.get("targets.json?production=1");
    let signers = signer_ids(&prod_targets);
    assert!(signers.contains(offline_id), "{signers:?}");
    assert_eq!(signers.len(), 2, "offline and online: {signers:?}");
    assert_eq!(
        prod_targets["signed"]["targets"]["app-42"]["custom"]["tags"][0],
        "production"
    );
    // Default expiry: 365 days.
    let expires: tuf_core::Expires = prod_targets["signed"]["expires"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let days = (expires.unix() - time::OffsetDateTime::now_utc().unix_timestamp()) / 86_400;
    assert!((364..=365).contains(&days), "expires in {days} days");

    // A year ahead: `keys status` has nothing to warn about.
    let st = json(&ok(&ctl(&["--json", "keys", "status", o])));
    assert_eq!(
        st["prod_targets"]["version"],
        prod_targets["signed"]["version"]
    );
    assert_eq!(st["warnings"].as_array().unwrap().len(), 0, "{st}");

    // The production device installs the Wave's target.
    prod_device.installs("app-42", &v42);

    // A newer CI build goes to CI devices only.
    let v43 = add_build(&server, f, dir.path(), "43");
    ci_device.installs("app-43", &v43);
    prod_device.stays_on("app-42", &v42);

    forged_production_targets_are_refused(
        &server,
        f,
        api,
        prod_base,
        &prod_root_v1,
        offline_id,
        &v42,
    );

    // A Wave prepared before the targets key rotation cannot be published after it.
    let v44 = add_build(&server, f, dir.path(), "44");
    ok(&ctl(&[
        "waves",
        "init",
        "-k",
        o,
        "wave-44-early",
        "44",
        "production",
    ]));

    // Rotate the offline targets key: the server re-signs the production targets with the
    // new key, and production devices keep following.
    ok(&ctl(&["keys", "rotate-targets", c]));
    let err = fails(&ctl(&["waves", "complete", "wave-44-early"]));
    assert!(err.contains("stale") || err.contains("changed"), "{err}");
    ok(&ctl(&["waves", "cancel", "wave-44-early"]));
    let prod_root = x.get("root.json?production=1");
    let tkeys = role_ids(&prod_root, "targets");
    assert!(!tkeys.contains(offline_id), "{tkeys:?}");
    assert_eq!(prod_root["signed"]["roles"]["targets"]["threshold"], 2);
    prod_device.stays_on("app-42", &v42);

    // The old targets-only tarball can no longer sign a Wave; a fresh copy can.
    let err = fails(&ctl(&[
        "waves",
        "init",
        "-k",
        o,
        "wave-44",
        "44",
        "production",
    ]));
    assert!(err.contains("no offline targets key"), "{err}");
    let only2 = dir.path().join("targets-only-2.tgz");
    let o2 = only2.to_str().unwrap();
    ok(&ctl(&["keys", "copy-targets", c, o2]));
    let new_id = offline_targets_id(&only2);
    assert_ne!(&new_id, offline_id);
    assert!(tkeys.contains(&new_id), "{tkeys:?}");
    ok(&ctl(&[
        "waves",
        "init",
        "-k",
        o2,
        "wave-44",
        "44",
        "production",
        "--expires-days",
        "20",
    ]));
    ok(&ctl(&["waves", "complete", "wave-44"]));
    let prod_targets = x.get("targets.json?production=1");
    assert!(signer_ids(&prod_targets).contains(&new_id));
    prod_device.installs("app-44", &v44);
    // 20 days left: `keys status` warns that only the offline key holder can renew them.
    let st = json(&ok(&ctl(&["--json", "keys", "status", o2])));
    let warnings = st["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{st}");
    let w = warnings[0].as_str().unwrap();
    assert!(w.starts_with("the production targets"), "{w}");
    assert!(w.contains("offline targets key holder"), "{w}");
    let human = ctl(&["keys", "status", c]);
    ok(&human);
    assert!(
        stderr(&human).contains("warning: the production targets"),
        "{}",
        stderr(&human)
    );
    // A device set up now follows the whole production chain to the same release.
    Device::new(&prod_root_v1, prod_base).installs("app-44", &v44);
    ci_device.installs("app-44", &v44);
}

/// The real production targets minus the offline signature: the server's signature alone.
/// tuf-core refuses it under the production root and accepts it under the CI root; served
/// through a proxy, tuf-agent refuses it naming the targets threshold, while the same proxy
/// passing the real file through updates a device fine.
fn forged_production_targets_are_refused(
    server: &Server,
    f: &Factory,
    api: &str,
    prod_base: &str,
    prod_root_v1: &[u8],
    offline_id: &str,
    installed: &[u8],
) {
    let real = get_json(server, f, &format!("{api}/targets.json?production=1"));
    let version = real["signed"]["version"].as_u64().unwrap();
    let mut forged = real.clone();
    forged["signatures"]
        .as_array_mut()
        .unwrap()
        .retain(|s| s["keyid"] != offline_id);
    assert_eq!(signer_ids(&forged).len(), 1, "only the online signature");
    let listed = listed_targets_length(prod_base);
    let forged_bytes = padded(serde_json::to_vec(&forged).unwrap(), listed);

    let env = Signed::<Targets>::from_slice(&forged_bytes).unwrap();
    let real_env = Signed::<Targets>::from_slice(&serde_json::to_vec(&real).unwrap()).unwrap();
    let root_of = |path: &str| -> Signed<Root> {
        let v = get_json(server, f, path);
        Signed::from_slice(&serde_json::to_vec(&v).unwrap()).unwrap()
    };
    let prod_root = root_of(&format!("{api}/root.json?production=1"));
    let ci_root = root_of(&format!("{api}/root.json"));
    let verify = |e: &Signed<Targets>, r: &Signed<Root>| {
        e.verify_role("targets", r.signed.role(Role::Targets), &r.signed.keys)
    };
    let under_prod = verify(&env, &prod_root);
    assert!(!under_prod.is_met(), "{under_prod:?}");
    assert_eq!(under_prod.threshold, 2);
    assert_eq!(under_prod.distinct_valid, 1);
    assert!(verify(&env, &ci_root).is_met());
    assert!(verify(&real_env, &prod_root).is_met());

    // Control: the proxy itself changes nothing.
    let upstream = server.url.clone();
    let passing = proxy(upstream.clone(), None);
    let base_path = prod_base.strip_prefix(&server.url).unwrap();
    Device::new(prod_root_v1, &format!("{passing}{base_path}")).installs("app-42", installed);

    let forging = proxy(
        upstream,
        Some((
            format!("{base_path}/metadata/{version}.targets.json"),
            forged_bytes,
        )),
    );
    let device = Device::new(prod_root_v1, &format!("{forging}{base_path}"));
    let out = device.update();
    let err = stderr(&out);
    assert!(
        !out.status.success(),
        "forged targets accepted: {}",
        stdout(&out)
    );
    assert!(
        err.contains("role targets") && err.contains("threshold is 2"),
        "refused for another reason: {err}"
    );
    assert!(!device.installed_path().exists());
}

/// The offline targets key is lost (every `tufctl-targets-*` entry deleted from the tarball,
/// the targets-only copy gone too): `keys rotate-targets` with the root key alone replaces
/// it; the current production targets are re-signed by the new key and production devices
/// keep updating, first with what they have, then with a Wave signed by the new key.
fn lost_offline_targets_key_is_replaced_with_the_root_key(server: Server) {
    let x = Offline::setup(&server, "lost-targets", "creds.tgz");
    let Offline {
        f,
        dir,
        creds,
        only,
        prod_base,
        offline_id: old_id,
        ..
    } = &x;
    let (c, o) = (creds.to_str().unwrap(), only.to_str().unwrap());
    let ctl = |args: &[&str]| x.ctl(args);
    let prod_root_v1 = root_v1(prod_base);
    let device = Device::new(&prod_root_v1, prod_base);
    let v42 = add_build(&server, f, dir.path(), "42");
    x.ship_wave(o, "wave-42", "42");
    device.installs("app-42", &v42);
    let before = x.get("targets.json?production=1");

    // Lose the offline targets key: only the root key is left in the tarball.
    std::fs::remove_file(only).unwrap();
    let mut cr = Credentials::read(&std::fs::read(creds).unwrap()).unwrap();
    let names: Vec<String> = cr
        .keys()
        .unwrap()
        .into_iter()
        .map(|k| k.name)
        .filter(|n| n.starts_with("tufctl-targets-"))
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    for n in &names {
        cr.remove_key(n).unwrap();
    }
    std::fs::write(creds, &*cr.to_bytes().unwrap()).unwrap();
    let st = ok(&ctl(&["keys", "status", c]));
    assert!(st.contains("NOT in this file"), "{st}");

    ok(&ctl(&["keys", "rotate-targets", c]));
    let cr = Credentials::read(&std::fs::read(creds).unwrap()).unwrap();
    let new_names: Vec<String> = cr
        .keys()
        .unwrap()
        .into_iter()
        .map(|k| k.name)
        .filter(|n| n.starts_with("tufctl-targets-"))
        .collect();
    assert_eq!(new_names.len(), 1, "{new_names:?}");
    let new_id = new_names[0]
        .trim_start_matches("tufctl-targets-")
        .to_owned();
    assert_ne!(&new_id, old_id);

    // The production root no longer lists the lost key; the current production targets
    // (same content, next version) carry the new key's signature and the online one.
    let prod_root = x.get("root.json?production=1");
    let ids = role_ids(&prod_root, "targets");
    assert!(ids.contains(&new_id) && !ids.contains(old_id), "{ids:?}");
    assert_eq!(prod_root["signed"]["roles"]["targets"]["threshold"], 2);
    let after = x.get("targets.json?production=1");
    assert_eq!(after["signed"]["targets"], before["signed"]["targets"]);
    let signers = signer_ids(&after);
    assert!(signers.contains(&new_id), "{signers:?}");
    assert!(!signers.contains(old_id), "{signers:?}");
    assert_eq!(signers.len(), 2, "{signers:?}");

    // The production device follows the new root and stays on its release ...
    device.stays_on("app-42", &v42);
    // ... and takes the next Wave, signed with the new key.
    ok(&ctl(&["keys", "copy-targets", c, o]));
    let v43 = add_build(&server, f, dir.path(), "43");
    x.ship_wave(o, "wave-43", "43");
    device.installs("app-43", &v43);
}

/// After a server compromise: `keys rotate-online --key-type K` replaces the online targets,
/// snapshot and timestamp keys (refused while a wave is in progress), three times in turn:
/// with P-256 keys, RSA keys, then ed25519 keys again, so old online keys of every type are
/// replaced. Each time the new roots list only the new online keys, of type K, and none of
/// the old ones, so metadata signed with them does not count: a device that trusted root
/// version 1 refuses the old timestamp and the old production targets when a server replays
/// them. Production targets keep their content, version and offline signature with the new
/// online signature; what the server publishes verifies with tuf-core under the new root, and
/// CI and production devices follow the root chain and keep updating.
fn rotate_online_keys_after_a_server_compromise(server: Server) {
    let x = Offline::setup(&server, "online", "creds.tgz");
    let Offline {
        f,
        dir,
        creds,
        only,
        ci_base,
        prod_base,
        ..
    } = &x;
    let (c, o) = (creds.to_str().unwrap(), only.to_str().unwrap());
    let ctl = |args: &[&str]| x.ctl(args);
    let ci_device = Device::new(&root_v1(ci_base), ci_base);
    let prod_root_v1 = root_v1(prod_base);
    let prod_device = Device::new(&prod_root_v1, prod_base);
    let v42 = add_build(&server, f, dir.path(), "42");
    x.ship_wave(o, "wave-42", "42");
    prod_device.installs("app-42", &v42);
    ci_device.installs("app-42", &v42);
    let old_root = x.get("root.json");

    // Refused while a wave is in progress, and nothing changes.
    add_build(&server, f, dir.path(), "43");
    ok(&ctl(&[
        "waves",
        "init",
        "-k",
        o,
        "wave-x",
        "43",
        "production",
    ]));
    let err = fails(&ctl(&["keys", "rotate-online", c]));
    assert!(err.contains("in progress"), "{err}");
    assert_eq!(x.get("root.json"), old_root);
    // The transaction it opened was closed again.
    fails(&ctl(&["keys", "tuf", "updates", "review"]));
    ok(&ctl(&["waves", "cancel", "wave-x"]));

    let mut installed = ("app-42".to_owned(), v42);
    for (n, kind) in (44..).zip([ECDSA, RSA, ED25519]) {
        rotate_online_keys_to(&x, kind, &prod_root_v1);
        // Devices follow the root chain and keep updating.
        prod_device.stays_on(&installed.0, &installed.1);
        let version = n.to_string();
        let build = add_build(&server, f, dir.path(), &version);
        installed.0 = format!("app-{version}");
        ci_device.installs(&installed.0, &build);
        x.ship_wave(o, &format!("wave-{version}"), &version);
        prod_device.installs(&installed.0, &build);
        installed.1 = build;
    }
    let audit = ok(&ctl(&["get", &format!("/ota/factories/{}/audit", f.name)]));
    for action in ["root.update.online_keys", "key.activate", "key.destroy"] {
        assert!(audit.contains(action), "{action}: {audit}");
    }
}

/// `keys rotate-online --key-type K`, then what holds of the new roots, the old online keys
/// and the production targets (see [`rotate_online_keys_after_a_server_compromise`]); a
/// production device set up on `prod_root_v1` refuses what the old keys signed.
fn rotate_online_keys_to(x: &Offline, kind: Kind, prod_root_v1: &[u8]) {
    let old_root = x.get("root.json");
    let old_prod_targets = x.get("targets.json?production=1");
    let (status, old_timestamp) = http_get(&format!("{}/metadata/timestamp.json", x.prod_base));
    assert_eq!(status, 200);
    let out = json(&ok(&x.ctl(&[
        "--json",
        "keys",
        "rotate-online",
        "--key-type",
        kind.arg,
        x.creds.to_str().unwrap(),
    ])));
    let new_root = x.get("root.json");
    let new_prod_root = x.get("root.json?production=1");
    for role in ["targets", "snapshot", "timestamp"] {
        let new_id = out["new_online_keys"][role].as_str().unwrap().to_owned();
        let old_ids = role_ids(&old_root, role);
        for root in [&new_root, &new_prod_root] {
            let ids = role_ids(root, role);
            assert_eq!(ids[0], new_id, "{role}: {ids:?}");
            key_is(root, &new_id, kind);
            for old in &old_ids {
                if role != "targets" || *old != x.offline_id {
                    assert!(!ids.contains(old), "{role}: old key {old} still listed");
                    assert!(root["signed"]["keys"].get(old).is_none());
                }
            }
        }
    }
    assert_eq!(role_ids(&new_prod_root, "targets").len(), 2);
    assert_eq!(new_prod_root["signed"]["roles"]["targets"]["threshold"], 2);
    assert_eq!(new_root["signed"]["roles"]["targets"]["threshold"], 1);
    assert!(role_ids(&new_prod_root, "targets").contains(&x.offline_id));
    let parsed = root_verifies(&new_prod_root);
    root_verifies(&new_root);
    let new_targets_id = out["new_online_keys"]["targets"].as_str().unwrap();
    old_online_signatures_do_not_count(x, &parsed, &old_prod_targets, new_targets_id);
    published_metadata_verifies(x, &parsed);
    replays_are_refused(x, prod_root_v1, old_timestamp, &old_prod_targets);
}

/// Metadata the old online keys signed does not count under the new production root
/// `parsed`: the old production targets lose their online signature. The current production
/// targets have the same version and content, the offline signature kept and the online one
/// replaced by the new key `new_targets_id`'s, and verify.
fn old_online_signatures_do_not_count(
    x: &Offline,
    parsed: &Signed<Root>,
    old_prod_targets: &serde_json::Value,
    new_targets_id: &str,
) {
    let verify = |env: &serde_json::Value| {
        let env: Signed<Targets> = Signed::from_slice(env.to_string().as_bytes()).unwrap();
        env.verify_role(
            "targets",
            parsed.signed.role(Role::Targets),
            &parsed.signed.keys,
        )
    };
    let v = verify(old_prod_targets);
    assert!(!v.is_met());
    assert_eq!(v.distinct_valid, 1, "only the offline signature counts");
    let prod_targets = x.get("targets.json?production=1");
    assert_eq!(prod_targets["signed"], old_prod_targets["signed"]);
    let signers = signer_ids(&prod_targets);
    assert!(signers.contains(&x.offline_id), "{signers:?}");
    assert!(signers.contains(&new_targets_id.to_owned()), "{signers:?}");
    assert_eq!(signers.len(), 2, "{signers:?}");
    assert!(verify(&prod_targets).is_met());
}

/// The timestamp and snapshot the server publishes for production now are signed by the new
/// online keys alone and verify under the new production root `parsed`.
fn published_metadata_verifies(x: &Offline, parsed: &Signed<Root>) {
    let r = &parsed.signed;
    let fetch = |name: &str| {
        let (status, bytes) = http_get(&format!("{}/metadata/{name}", x.prod_base));
        assert_eq!(status, 200, "{name}");
        bytes
    };
    let ts = Signed::<Timestamp>::from_slice(&fetch("timestamp.json")).unwrap();
    let v = ts.verify_role("timestamp", r.role(Role::Timestamp), &r.keys);
    assert!(v.is_met(), "{v:?}");
    let snapshot_version = ts.signed.meta["snapshot.json"].version;
    let snap = fetch(&format!("{snapshot_version}.snapshot.json"));
    let snap = Signed::<Snapshot>::from_slice(&snap).unwrap();
    let v = snap.verify_role("snapshot", r.role(Role::Snapshot), &r.keys);
    assert!(v.is_met(), "{v:?}");
    for (env, role) in [
        (&ts.signatures, Role::Timestamp),
        (&snap.signatures, Role::Snapshot),
    ] {
        let ids: Vec<_> = env.iter().map(|s| &s.keyid).collect();
        assert_eq!(
            ids,
            r.role(role).keyids.iter().collect::<Vec<_>>(),
            "{role}"
        );
    }
}

/// A server replaying what the old online keys signed: a production device set up on
/// `prod_root_v1` follows the root chain to the new root, then refuses the old timestamp
/// (no valid signature), and with the timestamp served honestly, the old production targets
/// (only the offline signature counts, threshold 2); it installs nothing.
fn replays_are_refused(
    x: &Offline,
    prod_root_v1: &[u8],
    old_timestamp: Vec<u8>,
    old_prod_targets: &serde_json::Value,
) {
    let base_path = x.prod_base.strip_prefix(&x.server.url).unwrap();
    let version = old_prod_targets["signed"]["version"].as_u64().unwrap();
    // The old targets at the length the snapshot lists, so their signatures decide; when
    // the old online signature is longer than the new one (an RSA key replaced), they cannot
    // be, and the device refuses them for their length before reading them.
    let listed = listed_targets_length(&x.prod_base);
    let old_targets = serde_json::to_vec(old_prod_targets).unwrap();
    let (old_targets, targets_refusal) = if old_targets.len() as u64 <= listed {
        (
            padded(old_targets, listed),
            "role targets: 1 valid signature(s) from distinct trusted keys, threshold is 2"
                .to_owned(),
        )
    } else {
        (
            old_targets,
            format!("{version}.targets.json: more than {listed} bytes"),
        )
    };
    for (path, bytes, refusal) in [
        (
            "timestamp.json".to_owned(),
            old_timestamp,
            "role timestamp: 0 valid signature(s) from distinct trusted keys, threshold is 1"
                .to_owned(),
        ),
        (
            format!("{version}.targets.json"),
            old_targets,
            targets_refusal,
        ),
    ] {
        let replaying = proxy(
            x.server.url.clone(),
            Some((format!("{base_path}/metadata/{path}"), bytes)),
        );
        let device = Device::new(prod_root_v1, &format!("{replaying}{base_path}"));
        let out = device.update();
        assert!(!out.status.success(), "{path} accepted: {}", stdout(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&refusal),
            "{path} refused for another reason: {err}"
        );
        assert!(!device.installed_path().exists());
        let stored = std::fs::read(device.dir.path().join("metadata/root.json")).unwrap();
        let stored = Signed::<Root>::from_slice(&stored).unwrap();
        assert_eq!(
            stored.signed.version,
            x.get("root.json")["signed"]["version"]
        );
    }
}

#[test]
fn lost_offline_targets_key_on_sqlite() {
    lost_offline_targets_key_is_replaced_with_the_root_key(Server::start());
}

#[test]
fn lost_offline_targets_key_on_postgres() {
    on_postgres(lost_offline_targets_key_is_replaced_with_the_root_key);
}

#[test]
fn rotate_online_keys_on_sqlite() {
    rotate_online_keys_after_a_server_compromise(Server::start());
}

#[test]
fn rotate_online_keys_on_postgres() {
    on_postgres(rotate_online_keys_after_a_server_compromise);
}

/// A root key is stolen (COMPROMISE.md section 5): every token is revoked, the server admin
/// issues a new owner token, and `keys rotate-root` replaces the stolen key. The new roots
/// list none of it, the stolen copy can no longer change the root, and devices trusting
/// version 1 of the root follow the chain and keep updating.
fn stolen_root_key_is_replaced(server: Server) {
    let f = create_factory(&server, "stolen-root");
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("creds.tgz");
    let stolen = dir.path().join("stolen.tgz");
    let (c, s) = (creds.to_str().unwrap(), stolen.to_str().unwrap());
    let as_token = |token: &str, args: &[&str]| server.tufctl_as(token, &f.name, args, &[]);
    let api = format!("/ota/repo/{}/api/v1/user_repo", f.name);
    let ci_base = format!("{}/repo/{}/ci", server.url, f.name);
    let prod_base = format!("{}/repo/{}/prod", server.url, f.name);
    ok(&as_token(
        &f.token,
        &["keys", "download", &f.credentials_url, c],
    ));
    ok(&as_token(&f.token, &["keys", "rotate-root", c]));
    std::fs::copy(&creds, &stolen).unwrap();
    let old_root = get_json(&server, &f, &format!("{api}/root.json"));
    let stolen_ids = role_ids(&old_root, "root");
    let ci_root_v1 = root_v1(&ci_base);
    let prod_root_v1 = root_v1(&prod_base);
    let ci_device = Device::new(&ci_root_v1, &ci_base);
    let v42 = add_build(&server, &f, dir.path(), "42");
    ci_device.installs("app-42", &v42);

    // Step 1: revoke every token; the admin issues a new owner token, the owner a CI token.
    ok(&as_token(&f.token, &["tokens", "revoke", "--all"]));
    let owner = json(&ok(&as_token(
        &server.admin,
        &["--json", "tokens", "create", "owner"],
    )))["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let ci = json(&ok(&as_token(
        &owner,
        &["--json", "tokens", "create", "ci"],
    )))["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let f2 = Factory {
        name: f.name.clone(),
        token: owner.clone(),
        ci_token: ci,
        credentials_url: f.credentials_url.clone(),
    };

    // Step 2: a new root key replaces the stolen one in both roots.
    ok(&as_token(&owner, &["keys", "rotate-root", c]));
    for path in [
        format!("{api}/root.json"),
        format!("{api}/root.json?production=1"),
    ] {
        let root = get_json(&server, &f2, &path);
        let ids = role_ids(&root, "root");
        assert_eq!(ids.len(), 1, "{ids:?}");
        for old in &stolen_ids {
            assert!(!ids.contains(old), "stolen key {old} still listed: {ids:?}");
            assert!(root["signed"]["keys"].get(old).is_none());
        }
    }
    let new_root = get_json(&server, &f2, &format!("{api}/root.json"));
    // The stolen copy cannot change the root any more, even with a valid owner token.
    let err = fails(&as_token(&owner, &["keys", "rotate-root", s]));
    assert!(err.contains("none of the current root keys"), "{err}");
    assert_eq!(
        get_json(&server, &f2, &format!("{api}/root.json")),
        new_root
    );

    // Devices follow the root chain: the CI device takes the next build, a new one trusting
    // version 1 does too, and a production device verifies the chain (no release there yet).
    let v43 = add_build(&server, &f2, dir.path(), "43");
    ci_device.installs("app-43", &v43);
    Device::new(&ci_root_v1, &ci_base).installs("app-43", &v43);
    let out = Device::new(&prod_root_v1, &prod_base).update();
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("no target for hardware id \"board-a\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn stolen_root_key_on_sqlite() {
    stolen_root_key_is_replaced(Server::start());
}

#[test]
fn stolen_root_key_on_postgres() {
    on_postgres(stolen_root_key_is_replaced);
}

/// With a threshold root, `keys rotate-online` only stages the new roots. A wave created
/// after that but before `apply` makes `apply` refuse (409, naming the wave) and nothing
/// changes; once the wave is cancelled, `apply` goes through.
fn wave_created_after_online_keys_staged_blocks_apply(server: Server) {
    let x = Offline::setup(&server, "staged-online", "alice.tgz");
    let bob = x.dir.path().join("bob.tgz");
    let (a, b, o) = (
        x.creds.to_str().unwrap(),
        bob.to_str().unwrap(),
        x.only.to_str().unwrap(),
    );
    let ctl = |args: &[&str]| x.ctl(args);
    let up = |args: &[&str]| x.updates(args);
    ok(&up(&["init", "-m", "add bob"]));
    ok(&up(&["set-threshold", "--role", "root", "2"]));
    ok(&up(&["add-offline-key", "--role", "root", "-k", b]));
    ok(&up(&["sign", "-k", a]));
    ok(&up(&["apply"]));

    let out = ok(&ctl(&["keys", "rotate-online", a]));
    assert!(out.contains("needs more signatures"), "{out}");
    let before = x.get("root.json");

    add_build(&server, &x.f, x.dir.path(), "42");
    ok(&ctl(&[
        "waves",
        "init",
        "-k",
        o,
        "wave-42",
        "42",
        "production",
    ]));
    ok(&up(&["sign", "-k", b]));
    let err = fails(&up(&["apply"]));
    assert!(err.contains("409"), "{err}");
    assert!(
        err.contains("wave \"wave-42\" is in progress"),
        "refused for another reason: {err}"
    );
    assert_eq!(x.get("root.json"), before);

    ok(&ctl(&["waves", "cancel", "wave-42"]));
    ok(&up(&["apply"]));
    let after = x.get("root.json");
    for role in ["snapshot", "timestamp"] {
        assert_ne!(role_ids(&after, role), role_ids(&before, role), "{role}");
    }
}

#[test]
fn wave_after_online_keys_staged_on_sqlite() {
    wave_created_after_online_keys_staged_blocks_apply(Server::start());
}

#[test]
fn wave_after_online_keys_staged_on_postgres() {
    on_postgres(wave_created_after_online_keys_staged_blocks_apply);
}

/// The length the current snapshot under `base` (`.../prod`) lists for targets.json.
fn listed_targets_length(base: &str) -> u64 {
    let (status, body) = http_get(&format!("{base}/metadata/snapshot.json"));
    assert_eq!(status, 200);
    let snapshot: Signed<tuf_core::Snapshot> = Signed::from_slice(&body).unwrap();
    snapshot.signed.meta["targets.json"].length.unwrap()
}
