//! The seed page's workflow, end to end, against a real `tufd`: create a Factory, download
//! its credentials once, rotate the root key, create the offline targets key, inspect both
//! roots, copy a targets-only tarball, check status, and let python-tuf follow the root chain.

mod support;

use std::os::unix::fs::PermissionsExt;

use serde_json::Value;
use support::*;
use tuf_credentials::Credentials;

#[test]
fn the_whole_page() {
    let server = Server::start();
    let f = create_factory(&server, "acme");
    assert!(f
        .credentials_url
        .contains("/ota/factories/acme/credentials/"));
    assert!(!f.ci_token.is_empty());
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("example.tgz");
    let creds_s = creds.to_str().unwrap();

    // Download once (0600); a second download is refused with 410 and writes nothing.
    ok(&server.tufctl(&["keys", "download", &f.credentials_url, creds_s]));
    let mode = std::fs::metadata(&creds).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let again = dir.path().join("again.tgz");
    let err = fails(&server.tufctl(&[
        "keys",
        "download",
        &f.credentials_url,
        again.to_str().unwrap(),
    ]));
    assert!(err.contains("410"), "{err}");
    assert!(err.contains("already downloaded"), "{err}");
    assert!(!again.exists());
    // Downloading onto an existing file is refused before anything is fetched.
    let err = fails(&server.tufctl(&["keys", "download", &f.credentials_url, creds_s]));
    assert!(err.contains("already exists"), "{err}");

    let repo = format!("/ota/repo/{}/api/v1/user_repo", f.name);
    let root_v1 = get_json(&server, &f, &format!("{repo}/root.json"));
    let bootstrap_root_id = root_v1["signed"]["roles"]["root"]["keyids"][0].clone();

    // rotate-root: API and Factory come from the tarball's config.json, only the token is given.
    let out = ok(&tufctl_env(
        &["keys", "rotate-root", creds_s],
        &[("TUFCTL_TOKEN", &f.token)],
    ));
    assert!(out.contains("Rotated the root key"), "{out}");
    let ci = get_json(&server, &f, &format!("{repo}/root.json"));
    assert_eq!(ci["signed"]["version"], 2);
    let root_id = ci["signed"]["roles"]["root"]["keyids"][0]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(Value::String(root_id.clone()), bootstrap_root_id);
    assert_eq!(
        ci["signed"]["roles"]["root"]["keyids"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(
        ci["signed"]["keys"]
            .get(bootstrap_root_id.as_str().unwrap())
            .is_none(),
        "the bootstrap root key is still listed"
    );
    assert!(ci["signed"]["x-key-owners"][&root_id].is_string());
    let c = read(&creds);
    let names = entry_names(&c);
    assert!(
        names.contains(&format!("tufrepo/keys/tufctl-root-{root_id}.sec")),
        "{names:?}"
    );
    assert!(names.contains(&format!("tufrepo/keys/tufctl-root-{root_id}.pub")));
    assert!(names.contains(&"tufrepo/keys/offline-root.sec".to_owned()));

    // rotate-targets.
    ok(&server.tufctl(&["keys", "rotate-targets", creds_s, "--token", &f.token]));
    let ci = get_json(&server, &f, &format!("{repo}/root.json"));
    let prod = get_json(&server, &f, &format!("{repo}/root.json?production=1"));
    assert_eq!(ci["signed"]["version"], 3);
    assert_eq!(prod["signed"]["version"], 3);
    assert_eq!(ci["signed"]["roles"]["targets"]["threshold"], 1);
    assert_eq!(prod["signed"]["roles"]["targets"]["threshold"], 2);
    let tkeys = ci["signed"]["roles"]["targets"]["keyids"]
        .as_array()
        .unwrap();
    assert_eq!(tkeys.len(), 2);
    assert_eq!(
        prod["signed"]["roles"]["targets"]["keyids"],
        ci["signed"]["roles"]["targets"]["keyids"]
    );
    let targets_id = tkeys[1].as_str().unwrap().to_owned();
    let names = entry_names(&read(&creds));
    assert!(
        names.contains(&format!("tufrepo/keys/tufctl-targets-{targets_id}.sec")),
        "{names:?}"
    );
    // The root did not change hands.
    assert_eq!(ci["signed"]["roles"]["root"]["keyids"][0], root_id.as_str());
    // The production targets now carry the offline signature.
    let prod_targets = get_json(&server, &f, &format!("{repo}/targets.json?production=1"));
    let signers: Vec<&str> = prod_targets["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["keyid"].as_str().unwrap())
        .collect();
    assert!(signers.contains(&targets_id.as_str()), "{signers:?}");

    // The stored copy of the root follows the server.
    let stored: Value = serde_json::from_slice(read(&creds).root_json().unwrap()).unwrap();
    assert_eq!(stored["signed"]["version"], 3);

    // show-root prints the same roots.
    let shown = json(&ok(&server.tufctl(&[
        "--json",
        "keys",
        "show-root",
        "--prod",
        "--factory",
        &f.name,
        "--token",
        &f.token,
    ])));
    assert_eq!(shown["signed"]["roles"]["targets"]["threshold"], 2);

    // copy-targets: the targets key and config.json, never a root key; never overwrites.
    let only = dir.path().join("target-only.tgz");
    let only_s = only.to_str().unwrap();
    ok(&server.tufctl(&["keys", "copy-targets", creds_s, only_s, "--token", &f.token]));
    let t = read(&only);
    let keys: Vec<String> = t.keys().unwrap().into_iter().map(|k| k.name).collect();
    assert_eq!(keys, [format!("tufctl-targets-{targets_id}")]);
    assert_eq!(t.config().factory, "acme");
    let err = fails(&server.tufctl(&["keys", "copy-targets", creds_s, only_s]));
    assert!(err.contains("already exists"), "{err}");

    // status: every key with its state; the targets-only file holds no root key by design and
    // gets no warning about it.
    let st =
        json(&ok(&server.tufctl(&[
            "--json", "keys", "status", creds_s, "--token", &f.token,
        ])));
    assert_eq!(st["holds_active_root_key"], true);
    assert_eq!(st["missing"].as_array().unwrap().len(), 0);
    let active: Vec<&str> = st["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["active"] == true)
        .map(|k| k["keyid"].as_str().unwrap())
        .collect();
    assert!(active.contains(&root_id.as_str()));
    assert!(active.contains(&targets_id.as_str()));
    let human = server.tufctl(&["keys", "status", only_s, "--token", &f.token]);
    let said = ok(&human);
    let warn = String::from_utf8_lossy(&human.stderr);
    assert!(!warn.contains("holds no active root key"), "{warn}");
    assert!(said.contains("This is a targets-only file"), "{said}");
    let st =
        json(&ok(&server.tufctl(&[
            "--json", "keys", "status", only_s, "--token", &f.token,
        ])));
    assert_eq!(st["targets_only"], true);
    assert_eq!(st["holds_active_root_key"], false);

    // Nobody can download the credentials now, and rotation twice is fine.
    ok(&server.tufctl(&["keys", "rotate-root", creds_s, "--token", &f.token]));
    let ci = get_json(&server, &f, &format!("{repo}/root.json"));
    assert_eq!(ci["signed"]["version"], 4);
    let new_root = ci["signed"]["roles"]["root"]["keyids"][0].as_str().unwrap();
    assert_ne!(new_root, root_id);
    // The production threshold survives a root rotation.
    let prod = get_json(&server, &f, &format!("{repo}/root.json?production=1"));
    assert_eq!(prod["signed"]["roles"]["targets"]["threshold"], 2);

    python_follows_root_chain(&server, &f.name, 4);
}

fn read(path: &std::path::Path) -> Credentials {
    Credentials::read(&std::fs::read(path).unwrap()).unwrap()
}

fn entry_names(c: &Credentials) -> Vec<String> {
    c.entry_names().map(str::to_owned).collect()
}

/// python-tuf's ngclient, trusting root version 1, updates through the whole root chain of
/// the CI repository.
fn python_follows_root_chain(server: &Server, factory: &str, expect_version: u64) {
    let Some(python) = setting("TUF_TEST_PYTHON", "a python with python-tuf") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let base = format!("{}/repo/{factory}/ci", server.url);
    let v1 = ureq_get(&format!("{base}/metadata/1.root.json"));
    std::fs::write(dir.path().join("root.json"), v1).unwrap();
    let script = r#"
import inspect, os, sys
from tuf.ngclient import Updater
kw = dict(metadata_dir=sys.argv[1], metadata_base_url=sys.argv[2] + "/metadata/",
          target_base_url=sys.argv[2] + "/targets/")
if "bootstrap" in inspect.signature(Updater.__init__).parameters:
    with open(os.path.join(sys.argv[1], "root.json"), "rb") as f:
        kw["bootstrap"] = f.read()
u = Updater(**kw)
u.refresh()
print(u._trusted_set.root.version)
"#;
    let out = std::process::Command::new(python)
        .args(["-c", script, dir.path().to_str().unwrap(), &base])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python-tuf failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert_eq!(v, expect_version);
}

fn ureq_get(url: &str) -> Vec<u8> {
    ureq::get(url)
        .call()
        .unwrap()
        .body_mut()
        .read_to_vec()
        .unwrap()
}
