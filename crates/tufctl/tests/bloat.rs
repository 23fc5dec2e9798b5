//! The bloat attack of a CI token: targets with the largest `custom` the server takes, added
//! until the CI targets metadata reaches the server's cap. The add that would pass the cap is
//! refused with a 413 naming it, before any device breaks: the real `tuf-agent` and python-tuf
//! refresh the Factory afterwards, and the owner's `tufctl targets prune` brings it back
//! under the cap so CI can add again.

mod support;

use std::process::Command;

use serde_json::{json, Value};
use support::e2e::*;
use support::*;

/// The smallest cap tufd accepts, so a few adds reach it.
const CAP: u64 = 65_536;

/// One CI add through the API with the CI token: (status, answer).
fn ci_add(server: &Server, f: &Factory, i: usize, custom: &Value) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let body = json!({
        "name": "bloat", "version": i.to_string(), "hardware_ids": ["board-a"],
        "length": 1000 + i,
        "hashes": {"sha256": tuf_core::hash::sha256_hex(format!("bloat/{i}").as_bytes())},
        "custom": custom,
    });
    let mut r = agent
        .post(&format!("{}/ota/factories/{}/targets", server.url, f.name))
        .header("Authorization", &format!("Bearer {}", f.ci_token))
        .header("Content-Type", "application/json")
        .send(serde_json::to_vec(&body).unwrap().as_slice())
        .unwrap();
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap();
    (status, json(&text))
}

/// python-tuf's ngclient, with its default configuration, refreshes the CI repository and
/// prints how many targets it trusts.
const PYTHON_REFRESH: &str = r#"
import sys
from tuf.ngclient import Updater
meta_dir, meta_url = sys.argv[1], sys.argv[2]
with open(meta_dir + "/root.json", "rb") as f:
    root = f.read()
u = Updater(metadata_dir=meta_dir, metadata_base_url=meta_url, bootstrap=root)
u.refresh()
print(len(u._trusted_set.targets.targets))
"#;

/// The number of targets python-tuf trusts after a refresh, or None when the peer is not
/// available (a visible skip, a failure under CI=true).
fn python_tuf_count(base: &str, root: &[u8]) -> Option<usize> {
    let python = setting("TUF_TEST_PYTHON", "python-tuf refresh after a bloat attack")?;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("root.json"), root).unwrap();
    let out = Command::new(python)
        .arg("-c")
        .arg(PYTHON_REFRESH)
        .arg(dir.path())
        .arg(format!("{base}/metadata/"))
        .output()
        .unwrap();
    assert!(out.status.success(), "python-tuf: {}", stderr(&out));
    Some(stdout(&out).trim().parse().unwrap())
}

#[test]
fn a_ci_token_cannot_bloat_targets_past_what_devices_read() {
    let cap = CAP.to_string();
    let server = Server::start_full(None, &["--max-targets-bytes", &cap]);
    let f = create_factory(&server, "bloated");
    let base = format!("{}/repo/{}/ci", server.url, f.name);
    let root = root_v1(&base);
    let device = Device::new(&root, &base);

    // A custom field over 16 KiB is refused on its own, naming the field.
    let (status, v) = ci_add(&server, &f, 0, &json!({"pad": "x".repeat(17 * 1024)}));
    assert_eq!(status, 413, "{v}");
    assert_eq!(v["error"], "custom too large", "{v}");
    assert_eq!(v["detail"]["limit"], 16_384, "{v}");

    // Adds of 15 KiB each until the cap refuses one.
    let custom = json!({"pad": "x".repeat(15 * 1024)});
    let mut accepted = 0;
    let refusal = loop {
        let (status, v) = ci_add(&server, &f, accepted + 1, &custom);
        match status {
            201 => accepted += 1,
            413 => break v,
            other => panic!("unexpected {other}: {v}"),
        }
        assert!(accepted < 10, "the cap of {CAP} bytes never refused an add");
    };
    assert_eq!(refusal["error"], "targets metadata too large", "{refusal}");
    assert_eq!(refusal["detail"]["limit"], CAP, "{refusal}");
    assert!(
        refusal["detail"]["size"].as_u64().unwrap() > CAP,
        "{refusal}"
    );
    assert!(accepted >= 2, "only {accepted} adds before the cap");

    // What devices read stayed under the cap, and every client still refreshes it.
    let (status, targets) = http_get(&format!("{base}/metadata/targets.json"));
    assert_eq!(status, 200);
    assert!(targets.len() as u64 <= CAP, "{} bytes", targets.len());
    device.refreshes();
    if let Some(count) = python_tuf_count(&base, &root) {
        assert_eq!(count, accepted);
    }

    // The owner keeps only the newest version of the build; CI adds again, and the devices follow.
    ok(&server.tufctl_as(
        &f.token,
        &f.name,
        &["targets", "prune", "--keep-last", "1", "--yes"],
        &[],
    ));
    let (status, v) = ci_add(&server, &f, 100, &custom);
    assert_eq!(status, 201, "{v}");
    device.refreshes();
    if let Some(count) = python_tuf_count(&base, &root) {
        assert_eq!(count, 2);
    }
}
