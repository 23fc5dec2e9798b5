//! Offline keys on offline machines, end to end on a real `tufd` (SQLite, and PostgreSQL when
//! `TUFD_TEST_DATABASE_URL` is set): a root key rotation, an offline targets key rotation and
//! a Wave, each exported as a signing request, signed by `tufctl sign` in a network namespace
//! with no interfaces and no TUFCTL_* settings, and imported back; tampered requests refused
//! with the credentials file untouched; renewals (`keys resign-root`, `waves resign`), refused
//! when the server serves altered production targets or root versions, and a
//! root renewed 10 days before it expires checked by `tuf-agent` under `faketime` after the
//! old expiry, next to a device of a Factory that did not renew and is refused.

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use support::e2e::*;
use support::*;

#[test]
fn signing_requests_on_sqlite() {
    if !tools_present() {
        return;
    }
    signing_story(Server::start());
}

#[test]
fn signing_requests_on_postgres() {
    if !tools_present() {
        return;
    }
    on_postgres(signing_story);
}

#[test]
fn root_renewal_under_faketime_on_sqlite() {
    if !tools_present() {
        return;
    }
    renewal_story(Server::start());
}

#[test]
fn renewals_refuse_altered_server_data_on_sqlite() {
    altered_server_story(Server::start());
}

/// `unshare -n` (a network namespace without interfaces) and `faketime` are needed; without
/// them the tests say so and pass, except under `CI=true` where they fail.
fn tools_present() -> bool {
    let works = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let unshare = works("unshare", &["-n", "true"]);
    let faketime = works("faketime", &["-f", "+1d", "true"]);
    if unshare && faketime {
        return true;
    }
    let missing = format!(
        "{}{}",
        if unshare { "" } else { "`unshare -n` " },
        if faketime { "" } else { "faketime" }
    );
    skip(
        &format!("{missing} must work (scripts/test installs them)"),
        &format!("{missing} not available"),
    );
    false
}

/// `tufctl` on the "offline machine": no network interfaces at all, an empty environment.
fn offline(args: &[&str]) -> Output {
    Command::new("unshare")
        .arg("-n")
        .arg(env!("CARGO_BIN_EXE_tufctl"))
        .args(args)
        .env_clear()
        .output()
        .unwrap()
}

/// `tufctl sign` offline; the credentials file must keep its exact bytes, whatever happens.
fn sign(request: &Path, creds: &Path, out: &Path, extra: &[&str]) -> Output {
    let before = std::fs::read(creds).unwrap();
    let mut args = vec![
        "sign",
        request.to_str().unwrap(),
        "-k",
        creds.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = offline(&args);
    assert_eq!(
        std::fs::read(creds).unwrap(),
        before,
        "`tufctl sign` changed {}",
        creds.display()
    );
    o
}

/// A tampered copy of `request`: `edit` changes the JSON, the result is written beside it.
fn tampered(request: &Path, name: &str, edit: impl FnOnce(&mut Value)) -> std::path::PathBuf {
    let mut v: Value = serde_json::from_slice(&std::fs::read(request).unwrap()).unwrap();
    edit(&mut v);
    let p = request.with_file_name(name);
    std::fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
    p
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// `tufctl sign --yes` refuses `request` by the named `check`: non-zero exit, the check and
/// `why` in the message, no response written, the credentials file unchanged.
fn refused_to_sign(request: &Path, creds: &Path, out: &Path, check: &str, why: &str) {
    let before = std::fs::read(creds).unwrap();
    let err = fails(&sign(request, creds, out, &["--yes"]));
    assert!(
        err.contains(&format!(": {check}: ")),
        "expected check {check} in: {err}"
    );
    assert!(err.contains(why), "expected {why:?} in: {err}");
    assert!(err.contains("refusing to sign"), "{err}");
    assert_eq!(
        std::fs::read(creds).unwrap(),
        before,
        "the credentials file changed"
    );
    assert!(
        !out.exists(),
        "a response was written for a refused request"
    );
}

fn signing_story(server: Server) {
    let x = Offline::setup(&server, "airgap", "creds.tgz");
    let d = x.dir.path();
    let ctl = |args: &[&str]| x.ctl(args);
    let prod_root_v1 = root_v1(&x.prod_base);
    let device = Device::new(&prod_root_v1, &x.prod_base);
    let root_now = || x.get("root.json?production=1");
    let prod_targets_now = || x.get("targets.json?production=1");
    assert_eq!(root_now()["signed"]["version"], 3);

    // --- A root key rotation, signed air-gapped: a new root key replaces the old one. -----
    let old_root_key = root_now()["signed"]["roles"]["root"]["keyids"][0]
        .as_str()
        .unwrap()
        .to_owned();
    ok(&x.updates(&["init", "-m", "second root key"]));
    let holder = d.join("holder2.tgz");
    let h = holder.to_str().unwrap();
    ok(&x.updates(&["add-offline-key", "--role", "root", "-k", h]));
    ok(&x.updates(&["remove-key", "--role", "root", &old_root_key[..12]]));
    let req = d.join("root-request.json");
    ok(&x.updates(&["export", req.to_str().unwrap()]));
    let r = read_json(&req);
    assert_eq!(r["type"], "tuf-factory/root-update-request");
    assert_eq!(r["format"], 1);
    assert_eq!(r["ci_chain"].as_array().unwrap().len(), 3);
    assert_eq!(r["prod_chain"].as_array().unwrap().len(), 3);
    let new_root_key = {
        let root_ids = r["ci_root"]["signed"]["roles"]["root"]["keyids"]
            .as_array()
            .unwrap();
        let old = root_now()["signed"]["roles"]["root"]["keyids"][0].clone();
        root_ids
            .iter()
            .find(|k| **k != old)
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned()
    };

    // Tampered: the new key swapped for another one after export (same key ID).
    let swapped = tampered(&req, "swapped.json", |v| {
        let other = tuf_core::PrivateKey::generate(tuf_core::KeyType::Ed25519).unwrap();
        let public = serde_json::to_value(tuf_core::Signer::public_key(&other)).unwrap();
        for doc in ["ci_root", "prod_root"] {
            v[doc]["signed"]["keys"][&new_root_key] = public.clone();
        }
    });
    let resp = d.join("root-response.json");
    refused_to_sign(&swapped, &x.creds, &resp, "key_ids", "the key was swapped");
    // Tampered: a chain that does not lead to the staged root.
    let skipped = tampered(&req, "skipped.json", |v| {
        for doc in ["ci_root", "prod_root"] {
            v[doc]["signed"]["version"] = 5.into();
        }
    });
    refused_to_sign(
        &skipped,
        &x.creds,
        &resp,
        "version",
        "ci_root: version is 5, must be 4 (current + 1)",
    );
    // No terminal and no --yes: nothing is signed.
    let o = sign(&req, &x.creds, &resp, &[]);
    let err = fails(&o);
    assert!(err.contains("--yes"), "{err}");
    assert!(!resp.exists());

    // The real request verifies; the review shows what is signed; QR code too.
    let qr = d.join("root-response.png");
    let o = sign(
        &req,
        &x.creds,
        &resp,
        &["--yes", "--qr", qr.to_str().unwrap()],
    );
    let review = ok(&o);
    assert!(
        review.contains(&format!("root: + key {new_root_key}")),
        "{review}"
    );
    assert!(
        review.contains(&format!("root: - key {old_root_key}")),
        "{review}"
    );
    assert!(review.contains("second root key"), "{review}");
    assert!(review.contains("version 3 -> 4"), "{review}");
    assert_eq!(&std::fs::read(&qr).unwrap()[..8], b"\x89PNG\r\n\x1a\n");
    let response = read_json(&resp);
    assert_eq!(response["type"], "tuf-factory/root-update-response");
    // Canonical JSON: the file is exactly its canonical form.
    let bytes = std::fs::read(&resp).unwrap();
    assert_eq!(
        tuf_core::canonical::to_text(&tuf_core::canonical::parse(&bytes).unwrap()).unwrap(),
        bytes
    );
    // The response is imported as the QR payload text. The new root also needs its own
    // key's signature: the new holder signs offline too (their file was anchored on the
    // root current when they joined), and that response is imported from its file.
    let payload = String::from_utf8(bytes).unwrap();
    ok(&x.updates(&["import", &payload]));
    let err = fails(&x.updates(&["apply"]));
    assert!(err.contains("new_root_signatures"), "{err}");
    let resp2 = d.join("root-response-2.json");
    ok(&sign(&req, &holder, &resp2, &["--yes"]));
    ok(&x.updates(&["import", resp2.to_str().unwrap()]));
    ok(&x.updates(&["apply"]));
    let root = root_now();
    assert_eq!(root["signed"]["version"], 4);
    assert_eq!(role_ids(&root, "root"), vec![new_root_key.clone()]);
    // A response for a transaction that is gone is refused.
    let err = fails(&x.updates(&["import", resp.to_str().unwrap()]));
    assert!(err.contains("no open root-update transaction"), "{err}");
    device.refreshes();

    // --- An offline targets key rotation, signed air-gapped. ------------------------------
    ok(&x.updates(&["init", "-m", "second targets key"]));
    let t2 = d.join("targets2.tgz");
    ok(&x.updates(&[
        "add-offline-key",
        "--role",
        "targets",
        "-k",
        t2.to_str().unwrap(),
    ]));
    let req = d.join("targets-request.json");
    ok(&x.updates(&["export", req.to_str().unwrap()]));
    let r = read_json(&req);
    assert!(
        r["prod_targets"].is_object(),
        "staged production targets travel too"
    );
    // The credentials file still trusts root version 3: the chain goes 3 -> 4 -> staged 5.
    let resp = d.join("targets-response.json");
    // Tampered: a link after the trusted root forged (changed after its key holders signed).
    let forged = tampered(&req, "forged.json", |v| {
        v["ci_chain"][3]["signed"]["expires"] = Value::String("2099-01-01T00:00:00Z".into());
    });
    refused_to_sign(
        &forged,
        &x.creds,
        &resp,
        "root_chain",
        "CI root version 4 is not signed by a threshold of previous root keys",
    );
    // Tampered: the chain does not start from the root the credentials file trusts.
    let other = tampered(&req, "other-start.json", |v| {
        v["ci_chain"][2]["signed"]["x-note"] = Value::String("not the trusted root".into());
    });
    refused_to_sign(
        &other,
        &x.creds,
        &resp,
        "root_chain",
        "does not start from a root this machine trusts",
    );
    // The first file holds the current offline targets key (production targets are signed
    // again), the new root holder's file the root key: both sign, each on its own.
    ok(&sign(&req, &x.creds, &resp, &["--yes"]));
    let response = read_json(&resp);
    assert!(
        response["documents"]["prod_targets"].is_object(),
        "{response}"
    );
    let resp2 = d.join("targets-response-2.json");
    ok(&sign(&req, &holder, &resp2, &["--yes"]));
    for r in [&resp, &resp2] {
        ok(&x.updates(&["import", r.to_str().unwrap()]));
    }
    ok(&x.updates(&["apply"]));
    let root = root_now();
    assert_eq!(root["signed"]["version"], 5);
    assert_eq!(role_ids(&root, "targets").len(), 3);
    device.refreshes();

    // --- A Wave, exported without any key, signed with the targets-only file. -------------
    let v42 = add_build(&server, &x.f, d, "42");
    let req = d.join("wave-request.json");
    ok(&ctl(&[
        "waves",
        "init",
        "wave-42",
        "42",
        "production",
        "--export",
        req.to_str().unwrap(),
    ]));
    let resp = d.join("wave-response.json");
    // Tampered: the build's hash altered after export.
    let altered = tampered(&req, "altered.json", |v| {
        v["targets"]["signed"]["targets"]["app-42"]["hashes"]["sha256"] =
            Value::String("00".repeat(32));
    });
    refused_to_sign(
        &altered,
        &x.only,
        &resp,
        "wave_source",
        "does not match the CI targets entry",
    );
    // The same alteration in the CI targets too: their online signature no longer verifies.
    let both = tampered(&req, "altered-both.json", |v| {
        for doc in ["targets", "ci_targets"] {
            v[doc]["signed"]["targets"]["app-42"]["hashes"]["sha256"] =
                Value::String("00".repeat(32));
        }
    });
    refused_to_sign(
        &both,
        &x.only,
        &resp,
        "provenance",
        "the CI targets do not verify under the CI root",
    );
    let review = ok(&sign(&req, &x.only, &resp, &["--yes"]));
    let sha = tuf_core::hash::sha256_hex(&v42);
    assert!(review.contains("+ app-42"), "{review}");
    assert!(review.contains(&sha), "{review}");
    ok(&ctl(&["waves", "import", resp.to_str().unwrap()]));
    ok(&ctl(&["waves", "complete", "wave-42"]));
    device.installs("app-42", &v42);

    // --- Renewing the wave in production: version + 1, new expiry, nothing else. ---------
    let o = x.only.to_str().unwrap();
    let resign = |args: &[&str]| ctl(&[&["waves", "resign", "-k", o][..], args].concat());
    let before = prod_targets_now();
    ok(&resign(&["wave-42", "--expires-days", "400"]));
    let after = prod_targets_now();
    assert_eq!(
        after["signed"]["version"].as_u64().unwrap(),
        before["signed"]["version"].as_u64().unwrap() + 1
    );
    assert_eq!(after["signed"]["targets"], before["signed"]["targets"]);
    assert_ne!(after["signed"]["expires"], before["signed"]["expires"]);
    device.stays_on("app-42", &v42);
    // The server re-signs nothing but version and expiry: an extra target, even signed with
    // the offline key, is refused.
    let mut more: tuf_core::Signed<tuf_core::Targets> =
        tuf_core::Signed::from_slice(&serde_json::to_vec(&after).unwrap()).unwrap();
    let mut t = more.signed.clone();
    t.version += 1;
    t.expires = tuf_core::Expires::after(time::OffsetDateTime::now_utc(), 500 * 86_400).unwrap();
    let extra = t.targets["app-42"].clone();
    t.targets.insert("app-666".to_owned(), extra);
    more = tuf_core::Signed::new(t).unwrap();
    let only = tuf_credentials::Credentials::read(&std::fs::read(&x.only).unwrap()).unwrap();
    let name = only.keys().unwrap()[0].name.clone();
    more.sign(&only.private_key(&name).unwrap()).unwrap();
    let body = serde_json::json!({
        "targets": serde_json::from_slice::<Value>(&more.to_bytes()).unwrap()
    });
    let mut answer = ureq::post(&format!(
        "{}/ota/factories/{}/waves/wave-42/resign",
        server.url, x.f.name
    ))
    .config()
    .http_status_as_error(false)
    .build()
    .header("Authorization", &format!("Bearer {}", x.f.token))
    .header("Content-Type", "application/json")
    .send(&serde_json::to_vec(&body).unwrap()[..])
    .unwrap();
    assert_eq!(answer.status().as_u16(), 422);
    let text = answer.body_mut().read_to_string().unwrap();
    assert!(text.contains("unchanged"), "{text}");
    // A shorter expiry is not a renewal.
    let err = fails(&resign(&["wave-42", "--expires-days", "30"]));
    assert!(err.contains("not later than the current one"), "{err}");
    let err = fails(&resign(&["nope", "--expires-days", "3000"]));
    assert!(
        err.contains("answered 404: not found") && err.contains("wave \"nope\""),
        "{err}"
    );
    let audit = get_json(&server, &x.f, &format!("/ota/factories/{}/audit", x.f.name));
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "wave.resign" && e["detail"]["wave"] == "wave-42"),
        "{audit}"
    );

    // --- A second wave, altered after export: refused, nothing signed. ------------------
    let v43 = add_build(&server, &x.f, d, "43");
    let req = d.join("wave-43-request.json");
    ok(&ctl(&[
        "waves",
        "init",
        "wave-43",
        "43",
        "production",
        "--export",
        req.to_str().unwrap(),
    ]));
    let r = read_json(&req);
    assert!(
        r["current_targets"]["signed"]["targets"]["app-42"].is_object(),
        "{r}"
    );
    assert_eq!(
        r["targets"]["signed"]["targets"]["app-43"]["custom"]["hardware_ids"],
        serde_json::json!(["board-a"])
    );
    let resp = d.join("wave-43-response.json");
    // Devices of another board would install the build: hardware IDs widened.
    let boards = tampered(&req, "wave-43-boards.json", |v| {
        v["targets"]["signed"]["targets"]["app-43"]["custom"]["hardware_ids"] =
            serde_json::json!(["board-a", "board-b"]);
    });
    let mismatch = "target \"app-43\" does not match the CI targets entry of the same path";
    refused_to_sign(&boards, &x.only, &resp, "wave_source", mismatch);
    // Another custom field added, one the CI entry does not have.
    let field = tampered(&req, "wave-43-field.json", |v| {
        v["targets"]["signed"]["targets"]["app-43"]["custom"]["x-install-args"] =
            Value::String("--skip-verify".into());
    });
    refused_to_sign(&field, &x.only, &resp, "wave_source", mismatch);
    // The build already in production dropped from the proposed targets.
    let dropped = tampered(&req, "wave-43-dropped.json", |v| {
        let targets = v["targets"]["signed"]["targets"].as_object_mut().unwrap();
        assert!(targets.remove("app-42").is_some());
    });
    refused_to_sign(
        &dropped,
        &x.only,
        &resp,
        "wave_keeps_targets",
        "the proposed production targets drop target \"app-42\", which the wave does not retire; a wave removes only the targets it names",
    );
    // The request as exported is signed, and the wave goes out with both builds, this time
    // carried as the QR code's payload: the signatures, naming the targets by hash.
    let qr = x.dir.path().join("wave-43.png");
    let review = ok(&sign(
        &req,
        &x.only,
        &resp,
        &["--yes", "--qr", qr.to_str().unwrap()],
    ));
    assert!(review.contains("+ app-43"), "{review}");
    assert!(review.contains("(1 target(s) unchanged)"), "{review}");
    assert!(review.contains("--request REQUEST.json"), "{review}");
    assert_eq!(&std::fs::read(&qr).unwrap()[..8], b"\x89PNG\r\n\x1a\n");
    // What the QR code holds, computed here from the full response file.
    let full: Value = serde_json::from_slice(&std::fs::read(&resp).unwrap()).unwrap();
    let signed = tuf_core::canonical::to_vec(&full["targets"]["signed"]).unwrap();
    let compact = serde_json::json!({
        "type": "tuf-factory/wave-signatures", "format": 1, "factory": full["factory"],
        "wave": "wave-43", "version": "43", "tag": "production",
        "sha256": tuf_core::hash::sha256_hex(&signed),
        "signatures": full["targets"]["signatures"],
    })
    .to_string();
    let err = fails(&ctl(&["waves", "import", &compact]));
    assert!(err.contains("--request REQUEST.json"), "{err}");
    // The signatures joined to another request (the tampered one) are refused.
    let err = fails(&ctl(&[
        "waves",
        "import",
        &compact,
        "--request",
        boards.to_str().unwrap(),
    ]));
    assert!(err.contains("answer another request"), "{err}");
    ok(&ctl(&[
        "waves",
        "import",
        &compact,
        "--request",
        req.to_str().unwrap(),
    ]));
    ok(&ctl(&["waves", "complete", "wave-43"]));
    let prod = prod_targets_now();
    assert!(prod["signed"]["targets"]["app-42"].is_object(), "{prod}");
    device.installs("app-43", &v43);
}

/// Factory `renewed` renews its root 10 days before expiry through an exported request;
/// Factory `lapsed` does not. Twelve days later (tufd and tuf-agent under faketime), the
/// first Factory's device updates its metadata and the second's is refused.
fn renewal_story(server: Server) {
    let a = Offline::setup(&server, "renewed", "a.tgz");
    let b = Offline::setup(&server, "lapsed", "b.tgz");
    let mut devices = Vec::new();
    for x in [&a, &b] {
        ok(&x.ctl(&[
            "keys",
            "resign-root",
            x.creds.to_str().unwrap(),
            "--expires-days",
            "10",
        ]));
        let root = x.get("root.json?production=1");
        assert_eq!(root["signed"]["version"], 4);
        let v1 = root_v1(&x.prod_base);
        let device = Device::new(&v1, &x.prod_base);
        device.refreshes();
        devices.push(device);
        // `keys status` and /metrics say it expires soon.
        let st = json(&ok(&x.ctl(&[
            "--json",
            "keys",
            "status",
            x.creds.to_str().unwrap(),
        ])));
        let warnings = st["warnings"].to_string();
        assert!(
            warnings.contains("the CI root (version 4) will expire"),
            "{st}"
        );
        assert!(warnings.contains("resign-root"), "{st}");
    }
    let metrics = ureq::get(&format!("{}/metrics", server.url))
        .header("Authorization", &format!("Bearer {}", server.admin))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let line = metrics
        .lines()
        .find(|l| {
            l.starts_with(
                "tufd_metadata_expires_in_seconds{factory=\"lapsed\",flavour=\"prod\",role=\"root\"}",
            )
        })
        .unwrap_or_else(|| panic!("no root expiry gauge: {metrics}"));
    let secs: i64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!((9 * 86_400..=10 * 86_400).contains(&secs), "{line}");

    // Renewed 10 days before expiry, signed air-gapped.
    let req = a.dir.path().join("renew-request.json");
    let resp = a.dir.path().join("renew-response.json");
    ok(&a.ctl(&[
        "keys",
        "resign-root",
        a.creds.to_str().unwrap(),
        "--expires-days",
        "365",
        "--export",
        req.to_str().unwrap(),
    ]));
    let review = ok(&sign(&req, &a.creds, &resp, &["--yes"]));
    // Nothing but version and expiry changes: no key or threshold line in the review.
    assert!(
        !review.contains("+ key") && !review.contains("- key"),
        "{review}"
    );
    assert!(!review.contains("threshold"), "{review}");
    ok(&a.updates(&["import", resp.to_str().unwrap()]));
    ok(&a.updates(&["apply"]));
    let root = a.get("root.json?production=1");
    assert_eq!(root["signed"]["version"], 5);
    let expires: tuf_core::Expires = root["signed"]["expires"].as_str().unwrap().parse().unwrap();
    let days = (expires.unix() - time::OffsetDateTime::now_utc().unix_timestamp()) / 86_400;
    assert!((364..=365).contains(&days), "{days}");

    // Twelve days later: tufd re-signs timestamp and snapshot at that time.
    let (a_prod, b_prod) = (a.prod_base.clone(), b.prod_base.clone());
    drop((a, b));
    let server = server.restart(
        &["faketime", "-f", "+12d"],
        &["--resign-interval-secs", "1"],
    );
    let later = time::OffsetDateTime::now_utc().unix_timestamp() + 12 * 86_400;
    for base in [&a_prod, &b_prod] {
        let mut fresh = false;
        for _ in 0..300 {
            let (status, body) = http_get(&format!("{base}/metadata/timestamp.json"));
            assert_eq!(status, 200);
            let v: Value = serde_json::from_slice(&body).unwrap();
            let e: tuf_core::Expires = v["signed"]["expires"].as_str().unwrap().parse().unwrap();
            if e.unix() > later {
                fresh = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert!(
            fresh,
            "tufd under faketime did not re-sign the timestamp of {base}"
        );
    }
    let faked_refresh = |device: &Device| {
        Command::new("faketime")
            .args(["-f", "+12d"])
            .arg(tuf_agent_path())
            .arg("--metadata-dir")
            .arg(device.dir.path().join("metadata"))
            .args(["--metadata-url", &device.metadata_url, "refresh"])
            .output()
            .unwrap()
    };
    let out = faked_refresh(&devices[0]);
    assert!(
        out.status.success(),
        "the renewed root should verify after the old expiry: {}",
        stderr(&out)
    );
    let out = faked_refresh(&devices[1]);
    assert!(!out.status.success(), "an expired root was accepted");
    let err = stderr(&out);
    assert!(
        err.contains("root: the root metadata of the ") && err.contains(" expired at "),
        "{err}"
    );
    assert!(err.contains("`tufctl keys resign-root`"), "{err}");
    drop(server);
}

/// The online renewals sign only what verifies from the root the credentials file trusts:
/// behind a proxy that alters one document the server serves, `waves resign` and `keys
/// resign-root` refuse, naming the reason; nothing changes on the server or in the files.
/// Then the wave renewal works through a proxy that alters nothing, and the root renewal
/// through one that alters only the current root.json, which is never trusted as served.
fn altered_server_story(server: Server) {
    let x = Offline::setup(&server, "altered", "creds.tgz");
    let d = x.dir.path();
    let (c, o) = (x.creds.to_str().unwrap(), x.only.to_str().unwrap());
    add_build(&server, &x.f, d, "42");
    x.ship_wave(o, "wave-42", "42");
    let audit_path = format!("/ota/factories/{}/audit", x.f.name);
    let state = || {
        (
            x.get("root.json"),
            x.get("root.json?production=1"),
            x.get("targets.json?production=1"),
            get_json(&server, &x.f, &audit_path),
            std::fs::read(&x.creds).unwrap(),
            std::fs::read(&x.only).unwrap(),
        )
    };
    let prod_root = x.get("root.json?production=1");
    let version = prod_root["signed"]["version"].as_u64().unwrap();
    let prod_targets = x.get("targets.json?production=1");
    let snapshot_id = role_ids(&prod_root, "snapshot")[0].clone();
    // tufctl as the owner, against `api` instead of the server.
    let via = |api: &str, args: &[&str]| {
        tufctl_env(
            args,
            &[
                ("TUFCTL_API", api),
                ("TUFCTL_TOKEN", &x.f.token),
                ("TUFCTL_FACTORY", &x.f.name),
            ],
        )
    };
    let forged = |path: String, doc: &Value| {
        proxy(
            server.url.clone(),
            Some((
                format!("{}/{path}", x.api),
                serde_json::to_vec(doc).unwrap(),
            )),
        )
    };
    let resign_wave = [
        "waves",
        "resign",
        "-k",
        o,
        "wave-42",
        "--expires-days",
        "400",
    ];
    let resign_root = ["keys", "resign-root", c, "--expires-days", "300"];
    let before = state();

    // Production targets with a target the offline key never signed, its signatures kept.
    let mut more = prod_targets.clone();
    let entry = more["signed"]["targets"]["app-42"].clone();
    more["signed"]["targets"]["app-666"] = entry;
    let api = forged("targets.json?production=1".into(), &more);
    let err = fails(&via(&api, &resign_wave));
    assert!(
        err.contains("do not verify under the production root")
            && err.contains("Nothing was signed"),
        "{err}"
    );
    assert!(
        state() == before,
        "a refused wave renewal changed something"
    );

    // The current production root with the server's snapshot key slipped into the root and
    // targets roles (threshold 1 / 2 met by server keys alone), its signatures kept.
    let mut grab = prod_root.clone();
    for role in ["root", "targets"] {
        let ids = grab["signed"]["roles"][role]["keyids"]
            .as_array_mut()
            .unwrap();
        ids.push(Value::String(snapshot_id.clone()));
    }
    let ci_grab = {
        let mut r = x.get("root.json");
        let ids = r["signed"]["roles"]["root"]["keyids"]
            .as_array_mut()
            .unwrap();
        ids.push(Value::String(snapshot_id.clone()));
        r
    };
    let links = [
        (
            format!("{version}.root.json?production=1"),
            &grab,
            format!(
                "production root version {version} is not signed by a threshold of the trusted \
                 root's keys"
            ),
        ),
        (
            format!("{version}.root.json"),
            &ci_grab,
            "the chain does not start from a root this machine trusts".to_owned(),
        ),
    ];
    for (what, args) in [("wave", &resign_wave[..]), ("root", &resign_root[..])] {
        for (path, doc, reason) in &links {
            let err = fails(&via(&forged(path.clone(), doc), args));
            assert!(err.contains(reason.as_str()), "{what}, {path}: {err}");
            assert!(
                err.contains("the server's roots do not verify from the root stored in")
                    && err.contains("nothing was signed"),
                "{what}, {path}: {err}"
            );
            assert!(
                state() == before,
                "a refused {what} renewal changed something"
            );
        }
    }

    // Through a proxy that alters nothing, the wave renewal goes through.
    let api = proxy(server.url.clone(), None);
    ok(&via(&api, &resign_wave));
    let targets = x.get("targets.json?production=1");
    assert_eq!(
        targets["signed"]["version"].as_u64().unwrap(),
        prod_targets["signed"]["version"].as_u64().unwrap() + 1
    );
    assert_eq!(
        targets["signed"]["targets"],
        prod_targets["signed"]["targets"]
    );
    // The served current root only says which version to fetch: the chain is fetched by
    // version and verified, so an altered current root.json is never what gets renewed.
    let api = forged("root.json?production=1".into(), &grab);
    ok(&via(&api, &resign_root));
    let root = x.get("root.json?production=1");
    assert_eq!(root["signed"]["version"].as_u64().unwrap(), version + 1);
    assert_eq!(root["signed"]["roles"], prod_root["signed"]["roles"]);
}
