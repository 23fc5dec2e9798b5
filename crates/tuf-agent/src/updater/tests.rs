//! The update cycle against a repository on a loopback port (an in-process HTTP server, no
//! external tools): byte caps, the versions that parent roles list, rollback against the
//! stored copies, fast-forward recovery and the root-rotation cap. Every refusal is checked
//! by its variant, and the metadata directory is checked to be unchanged.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tuf_core::{MetaFile, Snapshot};

use super::*;
use crate::trusted::tests::{at, key, sign, Fleet, FAR};

/// A repository served over HTTP from memory: path (under `/metadata/`) to bytes. It records
/// every path asked for.
struct Served {
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    asked: Arc<Mutex<Vec<String>>>,
    url: String,
}

impl Served {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/metadata/", listener.local_addr().unwrap());
        let files: Arc<Mutex<HashMap<String, Vec<u8>>>> = Arc::default();
        let asked: Arc<Mutex<Vec<String>>> = Arc::default();
        let (f, a) = (files.clone(), asked.clone());
        // Serves until the test process ends; one request per connection.
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut line = String::new();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                // Drain the headers.
                let mut header = String::new();
                while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                    header.clear();
                }
                let path = line.split(' ').nth(1).unwrap_or("").to_owned();
                let name = path.trim_start_matches("/metadata/").to_owned();
                a.lock().unwrap().push(name.clone());
                let body = f.lock().unwrap().get(&name).cloned();
                let head = match &body {
                    Some(b) => format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n", b.len()),
                    None => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n".to_owned(),
                };
                let _ = stream.write_all(format!("{head}Connection: close\r\n\r\n").as_bytes());
                let _ = stream.write_all(&body.unwrap_or_default());
            }
        });
        Self { files, asked, url }
    }

    fn put(&self, name: &str, bytes: Vec<u8>) {
        self.files.lock().unwrap().insert(name.to_owned(), bytes);
    }

    fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }
}

/// A device trusting root version 1 of `fleet`, its metadata directory, and the repository.
struct Device {
    dir: tempfile::TempDir,
    repo: Served,
}

impl Device {
    fn new(fleet: &Fleet) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("root.json"), fleet.root_bytes(1)).unwrap();
        Self {
            dir,
            repo: Served::start(),
        }
    }

    fn updater(&self, limits: Limits) -> Result<Updater, Error> {
        Updater::new(UpdaterConfig {
            metadata_url: self.repo.url.clone(),
            metadata_dir: self.dir.path().to_owned(),
            limits,
            tls: Default::default(),
        })
    }

    fn stored(&self, role: &str) -> Option<Vec<u8>> {
        std::fs::read(self.dir.path().join(format!("{role}.json"))).ok()
    }

    fn store(&self, role: &str, bytes: &[u8]) {
        std::fs::write(self.dir.path().join(format!("{role}.json")), bytes).unwrap();
    }

    /// Serves timestamp `ts` listing snapshot `snap` (which lists targets `targets`, given).
    fn publish(&self, fleet: &Fleet, ts: u64, snap: u64, targets: &[u8], targets_version: u64) {
        let snapshot = fleet.snapshot_bytes(
            snap,
            &[("targets.json", MetaFile::new(targets_version))],
            FAR,
        );
        self.repo.put(
            "timestamp.json",
            fleet.timestamp_bytes(ts, MetaFile::new(snap), FAR),
        );
        self.repo.put(&format!("{snap}.snapshot.json"), snapshot);
        self.repo
            .put(&format!("{targets_version}.targets.json"), targets.to_vec());
    }
}

/// `md` with an unknown field of `n` bytes: still valid metadata, just large.
fn padded<T: serde::Serialize + serde::de::DeserializeOwned>(md: T, n: usize) -> T {
    let mut v = serde_json::to_value(md).unwrap();
    v["x-padding"] = Value::String("x".repeat(n));
    serde_json::from_value(v).unwrap()
}

#[test]
fn a_refresh_trusts_what_the_repository_signed_and_stores_it() {
    let fleet = Fleet::new();
    let device = Device::new(&fleet);
    let targets = sign(
        fleet.targets_md(3, &[("fw.bin", b"image")]),
        &[&fleet.targets],
    );
    device.publish(&fleet, 1, 2, &targets, 3);
    let mut u = device.updater(Limits::default()).unwrap();
    let info = u.target_info("fw.bin").unwrap().unwrap();
    assert_eq!(info.length, 5);
    assert_eq!(u.trusted().snapshot().unwrap().version, 2);
    assert_eq!(device.stored("targets"), Some(targets));
    assert_eq!(
        device.repo.asked(),
        [
            "2.root.json",
            "timestamp.json",
            "2.snapshot.json",
            "3.targets.json"
        ]
    );
}

#[test]
fn a_next_root_over_the_root_cap_is_refused_and_nothing_is_stored() {
    let mut fleet = Fleet::new();
    let device = Device::new(&fleet);
    let before = device.stored("root");
    let old = fleet.root.remove(0);
    fleet.root.push(key());
    let big = sign(padded(fleet.root(2, FAR), 4096), &[&old, &fleet.root[0]]);
    let limits = Limits {
        root_max: 4096,
        ..Limits::default()
    };
    assert!(big.len() as u64 > limits.root_max);
    device.repo.put("2.root.json", big.clone());
    let mut u = device.updater(limits).unwrap();
    let err = u.refresh().unwrap_err();
    assert!(
        matches!(&err, Error::TooLarge { what, limit: 4096 } if what.ends_with("/2.root.json")),
        "{err:?}"
    );
    assert_eq!(device.stored("root"), before);
    assert_eq!(u.trusted().root().version, 1);

    // Within the cap, the same root is followed.
    let limits = Limits {
        root_max: big.len() as u64,
        ..Limits::default()
    };
    let mut u = device.updater(limits).unwrap();
    let err = u.refresh().unwrap_err();
    assert!(matches!(&err, Error::Status { status: 404, .. }), "{err:?}");
    assert_eq!(u.trusted().root().version, 2);
    assert_eq!(device.stored("root"), Some(big));
}

#[test]
fn targets_over_the_targets_cap_are_refused_and_nothing_is_stored() {
    let fleet = Fleet::new();
    let device = Device::new(&fleet);
    let md = padded(fleet.targets_md(1, &[("fw.bin", b"image")]), 8192);
    let targets = sign(md, &[&fleet.targets]);
    device.publish(&fleet, 1, 1, &targets, 1);
    let limits = Limits {
        targets_max: 8192,
        ..Limits::default()
    };
    let mut u = device.updater(limits.clone()).unwrap();
    let err = u.refresh().unwrap_err();
    assert!(
        matches!(&err, Error::TooLarge { what, limit: 8192 } if what.ends_with("/1.targets.json")),
        "{err:?}"
    );
    assert!(u.trusted().targets("targets").is_none());
    assert_eq!(device.stored("targets"), None);

    // A length listed by the snapshot is the cap when smaller than targets_max.
    let snapshot = fleet.snapshot_bytes(
        2,
        &[("targets.json", MetaFile::describing(1, &targets[..100]))],
        FAR,
    );
    device.repo.put(
        "timestamp.json",
        fleet.timestamp_bytes(2, MetaFile::new(2), FAR),
    );
    device.repo.put("2.snapshot.json", snapshot);
    let mut u = device.updater(Limits::default()).unwrap();
    let err = u.refresh().unwrap_err();
    assert!(
        matches!(&err, Error::TooLarge { limit: 100, .. }),
        "{err:?}"
    );
    assert_eq!(device.stored("targets"), None);
}

#[test]
fn the_snapshot_accepted_is_the_version_the_timestamp_lists() {
    let fleet = Fleet::new();
    let device = Device::new(&fleet);
    let targets = sign(fleet.targets_md(1, &[]), &[&fleet.targets]);
    device.publish(&fleet, 1, 2, &targets, 1);
    // The file at 2.snapshot.json holds version 3.
    let wrong = fleet.snapshot_bytes(3, &[("targets.json", MetaFile::new(1))], FAR);
    device.repo.put("2.snapshot.json", wrong);
    let mut u = device.updater(Limits::default()).unwrap();
    let err = u.refresh().unwrap_err();
    assert!(
        matches!(&err, Error::VersionMismatch { role, expected: 2, got: 3 }
            if role == "snapshot (as listed by timestamp)"),
        "{err:?}"
    );
    assert_eq!(device.stored("snapshot"), None);
    assert!(device.repo.asked().contains(&"2.snapshot.json".to_owned()));
}

#[test]
fn the_targets_accepted_are_the_version_the_snapshot_lists() {
    let fleet = Fleet::new();
    let device = Device::new(&fleet);
    // The snapshot lists targets 5; the file at 5.targets.json holds version 4.
    let stale = sign(fleet.targets_md(4, &[]), &[&fleet.targets]);
    device.publish(&fleet, 1, 1, &stale, 5);
    let mut u = device.updater(Limits::default()).unwrap();
    let err = u.refresh().unwrap_err();
    assert!(
        matches!(&err, Error::VersionMismatch { role, expected: 5, got: 4 }
            if role == "targets (as listed by snapshot)"),
        "{err:?}"
    );
    assert_eq!(device.stored("targets"), None);
}

#[test]
fn an_older_timestamp_than_the_stored_one_is_refused_and_the_stored_one_kept() {
    let fleet = Fleet::new();
    let device = Device::new(&fleet);
    let stored = fleet.timestamp_bytes(5, MetaFile::new(5), FAR);
    device.store("timestamp", &stored);
    let targets = sign(fleet.targets_md(1, &[]), &[&fleet.targets]);
    device.publish(&fleet, 4, 5, &targets, 1);
    let mut u = device.updater(Limits::default()).unwrap();
    let err = u.refresh().unwrap_err();
    assert!(
        matches!(&err, Error::Rollback { role, trusted: 5, got: 4 } if role == "timestamp"),
        "{err:?}"
    );
    assert_eq!(device.stored("timestamp"), Some(stored));
}

#[test]
fn a_rotated_timestamp_key_sets_the_old_stored_timestamp_aside() {
    let mut fleet = Fleet::new();
    let device = Device::new(&fleet);
    // Stored under the old key, at a version the new key's repository has not reached.
    device.store(
        "timestamp",
        &fleet.timestamp_bytes(10, MetaFile::new(10), FAR),
    );
    fleet.timestamp = key();
    device.repo.put("2.root.json", fleet.root_bytes(2));
    let targets = sign(fleet.targets_md(1, &[]), &[&fleet.targets]);
    device.publish(&fleet, 1, 1, &targets, 1);
    let mut u = device.updater(Limits::default()).unwrap();
    u.refresh().unwrap();
    assert_eq!(u.trusted().timestamp().unwrap().version, 1);
    assert_eq!(
        device.stored("timestamp"),
        Some(fleet.timestamp_bytes(1, MetaFile::new(1), FAR))
    );
}

#[test]
fn the_same_stored_timestamp_with_unchanged_keys_stays_a_rollback_reference() {
    // The counterpart of the test above: without a key change, version 10 still binds.
    let fleet = Fleet::new();
    let device = Device::new(&fleet);
    device.store(
        "timestamp",
        &fleet.timestamp_bytes(10, MetaFile::new(10), FAR),
    );
    device.repo.put("2.root.json", fleet.root_bytes(2));
    let targets = sign(fleet.targets_md(1, &[]), &[&fleet.targets]);
    device.publish(&fleet, 1, 1, &targets, 1);
    let mut u = device.updater(Limits::default()).unwrap();
    let err = u.refresh().unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Rollback {
                trusted: 10,
                got: 1,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn no_more_root_versions_than_the_cap_are_followed_in_one_cycle() {
    let fleet = Fleet::new();
    let device = Device::new(&fleet);
    for v in 2..=5 {
        device
            .repo
            .put(&format!("{v}.root.json"), fleet.root_bytes(v));
    }
    let targets = sign(fleet.targets_md(1, &[]), &[&fleet.targets]);
    device.publish(&fleet, 1, 1, &targets, 1);
    let limits = Limits {
        max_root_rotations: 2,
        ..Limits::default()
    };
    let mut u = device.updater(limits).unwrap();
    u.refresh().unwrap();
    assert_eq!(u.trusted().root().version, 3);
    assert_eq!(device.stored("root"), Some(fleet.root_bytes(3)));
    assert!(!device.repo.asked().contains(&"4.root.json".to_owned()));
}

#[test]
fn a_stored_snapshot_listed_by_the_timestamp_is_not_downloaded_again() {
    let fleet = Fleet::new();
    let device = Device::new(&fleet);
    let targets = sign(fleet.targets_md(1, &[]), &[&fleet.targets]);
    device.publish(&fleet, 1, 1, &targets, 1);
    device
        .updater(Limits::default())
        .unwrap()
        .refresh()
        .unwrap();
    // Next cycle: a new timestamp, the same snapshot.
    device.repo.put(
        "timestamp.json",
        fleet.timestamp_bytes(2, MetaFile::new(1), FAR),
    );
    device.repo.asked.lock().unwrap().clear();
    let mut u = device.updater(Limits::default()).unwrap();
    u.refresh().unwrap();
    assert_eq!(u.trusted().timestamp().unwrap().version, 2);
    assert_eq!(device.repo.asked(), ["2.root.json", "timestamp.json"]);
    // Whereas a stored snapshot that has expired is fetched anew.
    let expired = sign(
        Snapshot::new(
            1,
            at("2000-01-01T00:00:00Z"),
            [("targets.json".to_owned(), MetaFile::new(1))].into(),
        ),
        &[&fleet.snapshot],
    );
    device.store("snapshot", &expired);
    device.repo.asked.lock().unwrap().clear();
    let mut u = device.updater(Limits::default()).unwrap();
    u.refresh().unwrap();
    assert!(device.repo.asked().contains(&"1.snapshot.json".to_owned()));
}
