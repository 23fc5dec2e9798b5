//! SoftHSM2 tokens for the hardware-key tests: each in a directory of its own, reached
//! through its own configuration file (`SOFTHSM2_CONF`).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::e2e::{stderr, stdout};
use super::setting;

pub const PIN: &str = "1234";

/// A SoftHSM2 token in a directory of its own, reached through its own configuration file.
pub struct Token {
    pub dir: tempfile::TempDir,
    pub module: String,
    pub label: String,
    pub conf: PathBuf,
    pub pin_file: PathBuf,
    pub wrong_pin_file: PathBuf,
}

impl Token {
    #[track_caller]
    pub fn new(label: &str) -> Option<Self> {
        let module = setting(
            "TUF_TEST_PKCS11_MODULE",
            "SoftHSM2's module, e.g. /usr/lib/softhsm/libsofthsm2.so",
        )?;
        let dir = tempfile::tempdir().unwrap();
        let conf = write_conf(dir.path(), "tokens");
        let out = Command::new("softhsm2-util")
            .args(["--init-token", "--free", "--label", label])
            .args(["--pin", PIN, "--so-pin", "5678"])
            .env("SOFTHSM2_CONF", &conf)
            .output()
            .unwrap_or_else(|e| panic!("cannot run softhsm2-util: {e}"));
        assert!(out.status.success(), "init-token: {}", stderr(&out));
        let pin_file = dir.path().join("pin");
        std::fs::write(&pin_file, format!("{PIN}\n")).unwrap();
        let wrong_pin_file = dir.path().join("wrong-pin");
        std::fs::write(&wrong_pin_file, "9999\n").unwrap();
        Some(Self {
            dir,
            module,
            label: label.to_owned(),
            conf,
            pin_file,
            wrong_pin_file,
        })
    }

    /// A configuration whose token directory is empty: to the module, the token is gone.
    pub fn removed_conf(&self) -> PathBuf {
        write_conf(self.dir.path(), "no-tokens")
    }

    /// The slot ID SoftHSM gave the token (random at init, hence looked up by label).
    pub fn slot_id(&self) -> String {
        let out = Command::new("softhsm2-util")
            .arg("--show-slots")
            .env("SOFTHSM2_CONF", &self.conf)
            .output()
            .unwrap();
        let text = stdout(&out);
        let mut slot = None;
        for line in text.lines() {
            if let Some(n) = line.strip_prefix("Slot ") {
                slot = Some(n.trim().to_owned());
            }
            let t = line.trim();
            if t.strip_prefix("Label:").map(str::trim) == Some(self.label.as_str()) {
                return slot.unwrap();
            }
        }
        panic!("no slot with token {} in:\n{text}", self.label);
    }
}

pub fn write_conf(dir: &Path, tokens: &str) -> PathBuf {
    let tokendir = dir.join(tokens);
    std::fs::create_dir_all(&tokendir).unwrap();
    let conf = dir.join(format!("softhsm2-{tokens}.conf"));
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokendir.display()
        ),
    )
    .unwrap();
    conf
}
