//! A standard TUF client (python-tuf's ngclient) refreshes the CI repository and downloads a
//! target, trusting only root v1.

mod common;

use std::process::Command;

use common::*;
use serde_json::json;

const CLIENT: &str = r#"
import sys
from tuf.ngclient import Updater
meta_dir, meta_url, target_url, target_dir, name = sys.argv[1:6]
with open(meta_dir + "/root.json", "rb") as f:
    trusted_root = f.read()
u = Updater(metadata_dir=meta_dir, metadata_base_url=meta_url,
            target_base_url=target_url, target_dir=target_dir, bootstrap=trusted_root)
u.refresh()
info = u.get_targetinfo(name)
assert info is not None, "target not found"
path = u.download_target(info)
print(path)
print(u._trusted_set.targets.version)
"#;

#[test]
fn python_tuf_ngclient_refreshes_ci_repository() {
    let Some(python) = test_skip::env(
        "TUF_TEST_PYTHON",
        "a python with python-tuf, as scripts/test sets up",
    ) else {
        return;
    };
    let s = Server::sqlite();
    let f = create_factory(&s, "fleet");
    for v in ["1", "2"] {
        let (st, _) = add_target(&s, &f, "tool", v);
        assert_eq!(st, StatusCode::CREATED);
    }
    let content = b"firmware image".to_vec();
    let form = reqwest::blocking::multipart::Form::new()
        .text(
            "metadata",
            json!({"name": "fw", "version": "3", "hardware_ids": ["hw-1"]}).to_string(),
        )
        .part(
            "file",
            reqwest::blocking::multipart::Part::bytes(content.clone()),
        );
    let r = client()
        .post(s.url("/ota/factories/fleet/targets"))
        .bearer_auth(&f.ci)
        .multipart(form)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);

    let work = tempfile::tempdir().unwrap();
    let meta_dir = work.path().join("meta");
    let target_dir = work.path().join("targets");
    std::fs::create_dir_all(&meta_dir).unwrap();
    std::fs::create_dir_all(&target_dir).unwrap();
    let (st, root) = get(&s, "/repo/fleet/ci/metadata/1.root.json", None);
    assert_eq!(st, StatusCode::OK);
    std::fs::write(meta_dir.join("root.json"), root).unwrap();
    let out = Command::new(python)
        .arg("-c")
        .arg(CLIENT)
        .arg(&meta_dir)
        .arg(s.url("/repo/fleet/ci/metadata/"))
        .arg(s.url("/repo/fleet/ci/targets/"))
        .arg(&target_dir)
        .arg("fw-3")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ngclient failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut lines = stdout.lines();
    let path = lines.next().unwrap();
    assert_eq!(std::fs::read(path).unwrap(), content);
    assert_eq!(lines.next(), Some("4"));
}
