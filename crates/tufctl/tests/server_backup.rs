//! `tufd backup` of a live server and `tufd restore` on a new machine (a new data directory
//! and port): devices that followed the lost server, CI and production, keep verifying and
//! updating from the restored one.

mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;

use support::e2e::*;
use support::*;

#[test]
fn a_restored_server_keeps_its_devices_verifying() {
    let old = Server::start();
    let work = tempfile::tempdir().unwrap();
    let backup = work.path().join("tufd.backup");
    let x = Offline::setup(&old, "acme", "acme.tgz");
    let only = x.only.to_str().unwrap().to_owned();
    let mut ci = Device::new(&root_v1(&x.ci_base), &x.ci_base);
    let mut prod = Device::new(&root_v1(&x.prod_base), &x.prod_base);
    let b1 = add_build(&old, &x.f, x.dir.path(), "1");
    x.ship_wave(&only, "wave-1", "1");
    ci.installs("app-1", &b1);
    prod.installs("app-1", &b1);

    // Online, while the server runs.
    let said = tufd_ok(&[
        "backup",
        "--data-dir",
        old.data_dir().to_str().unwrap(),
        "--out",
        backup.to_str().unwrap(),
    ]);
    assert!(said.contains("server key included"), "{said}");
    let mode = std::fs::metadata(&backup).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    // The lost server publishes more after the backup, and the devices see it.
    let b2 = add_build(&old, &x.f, x.dir.path(), "2");
    ci.installs("app-2", &b2);
    prod.refreshes();
    let Offline {
        f,
        dir,
        creds,
        only: only_path,
        offline_id,
        api,
        ..
    } = x;
    let (admin, mut old) = (old.admin.clone(), old);
    old.stop();
    std::fs::remove_dir_all(old.data_dir()).unwrap();

    // Restored without moving versions on, the devices see a rollback and refuse it.
    let naive = restored(&backup, &admin, &["--version-gap", "0"]);
    follow(&mut ci, &naive, &f.name, "ci");
    let out = ci.agent(&["refresh"]);
    assert!(!out.status.success(), "a rollback was accepted");
    assert!(stderr(&out).contains("rollback"), "{}", stderr(&out));
    drop(naive);

    let new = restored(&backup, &admin, &[]);
    follow(&mut ci, &new, &f.name, "ci");
    follow(&mut prod, &new, &f.name, "prod");
    ci.refreshes();
    prod.refreshes();
    // The restored artifacts are served: a new device installs the build of the backup.
    let new_ci = format!("{}/repo/{}/ci", new.url, f.name);
    Device::new(&root_v1(&new_ci), &new_ci).installs("app-1", &b1);
    // CI still signs online with the restored keys; production with the offline key.
    let x = Offline {
        server: &new,
        prod_base: format!("{}/repo/{}/prod", new.url, f.name),
        ci_base: new_ci,
        f,
        dir,
        creds,
        only: only_path,
        api,
        offline_id,
    };
    let b3 = add_build(&new, &x.f, x.dir.path(), "3");
    ci.installs("app-3", &b3);
    x.ship_wave(&only, "wave-3", "3");
    prod.installs("app-3", &b3);
}

/// A refused restore changes nothing: a data directory that is not empty is left as it was.
#[test]
fn restore_refuses_a_directory_in_use() {
    let server = Server::start();
    let work = tempfile::tempdir().unwrap();
    let backup = work.path().join("tufd.backup");
    let data = server.data_dir();
    tufd_ok(&[
        "backup",
        "--data-dir",
        data.to_str().unwrap(),
        "--out",
        backup.to_str().unwrap(),
    ]);
    let before = listing(&data);
    let out = tufd(&[
        "restore",
        "--data-dir",
        data.to_str().unwrap(),
        "--from",
        backup.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("is not empty"), "{}", stderr(&out));
    assert_eq!(listing(&data), before);
    // A damaged backup is refused before anything is written.
    let damaged = work.path().join("damaged.backup");
    let mut bytes = std::fs::read(&backup).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0xff;
    std::fs::write(&damaged, bytes).unwrap();
    let target = work.path().join("new");
    let out = tufd(&[
        "restore",
        "--data-dir",
        target.to_str().unwrap(),
        "--from",
        damaged.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is not a usable tufd backup"),
        "{}",
        stderr(&out)
    );
    assert!(
        !target.exists() || listing(&target).is_empty(),
        "{:?}",
        listing(&target)
    );
}

/// Restores `backup` into a new data directory (with `args` added) and starts tufd on it.
fn restored(backup: &Path, admin: &str, args: &[&str]) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut all = vec![
        "restore",
        "--data-dir",
        data.to_str().unwrap(),
        "--from",
        backup.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    let said = tufd_ok(&all);
    assert!(said.contains("restored"), "{said}");
    Server::start_on(dir, admin)
}

/// Points `device` at `server`'s repository of Factory `f`, flavour `flavour`.
fn follow(device: &mut Device, server: &Server, f: &str, flavour: &str) {
    let base = format!("{}/repo/{f}/{flavour}", server.url);
    device.metadata_url = format!("{base}/metadata/");
    device.target_base_url = format!("{base}/targets/");
}

fn tufd(args: &[&str]) -> std::process::Output {
    Command::new(tufd_path())
        .args(args)
        .env_remove("TUFD_DATA_DIR")
        .env_remove("TUFD_SERVER_KEY")
        .env_remove("TUFD_SERVER_KEY_FILE")
        .env_remove("TUFD_CONFIG")
        .output()
        .unwrap()
}

fn tufd_ok(args: &[&str]) -> String {
    let out = tufd(args);
    assert!(out.status.success(), "tufd {args:?}: {}", stderr(&out));
    stdout(&out)
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
