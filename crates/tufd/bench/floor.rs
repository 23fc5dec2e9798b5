//! The in-process floor of adding one target to a Factory of N targets: canonicalise and
//! sign targets, snapshot and timestamp, with no store and no HTTP. `bench/serve.sh` compares
//! the server's add-target latency with this.
//!
//! Usage: `signing-floor [N]` (default 10000). Prints the median of 21 runs in milliseconds.

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::json;
use time::OffsetDateTime;
use tuf_core::{
    Expires, KeyType, MetaFile, PrivateKey, Signed, Snapshot, TargetFile, Targets, Timestamp,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(10_000);
    let now = OffsetDateTime::now_utc();
    let expires = Expires::after(now, 86400)?;
    let targets_key = PrivateKey::generate(KeyType::Ed25519)?;
    let snapshot_key = PrivateKey::generate(KeyType::Ed25519)?;
    let timestamp_key = PrivateKey::generate(KeyType::Ed25519)?;
    let mut targets = Targets::new(1, expires);
    for i in 0..n {
        targets.targets.insert(format!("pkg-{i}"), target(i));
    }
    let mut runs = Vec::new();
    for round in 0..21 {
        let start = Instant::now();
        targets.version += 1;
        targets
            .targets
            .insert(format!("new-{round}"), target(n + round));
        let mut t = Signed::new(targets)?;
        t.sign(&targets_key)?;
        let t_bytes = t.to_bytes();
        let mut meta = BTreeMap::new();
        meta.insert("targets.json".to_owned(), MetaFile::new(t.signed.version));
        let mut s = Signed::new(Snapshot::new(t.signed.version, expires, meta))?;
        s.sign(&snapshot_key)?;
        let s_bytes = s.to_bytes();
        let mut ts = Signed::new(Timestamp::new(
            t.signed.version,
            expires,
            MetaFile::describing(s.signed.version, &s_bytes),
        ))?;
        ts.sign(&timestamp_key)?;
        let ts_bytes = ts.to_bytes();
        runs.push(start.elapsed().as_secs_f64() * 1000.0);
        std::hint::black_box((t_bytes.len(), ts_bytes.len()));
        targets = t.signed;
    }
    runs.sort_by(f64::total_cmp);
    println!("{:.2}", runs[runs.len() / 2]);
    Ok(())
}

/// A target shaped like the ones `bench/serve.sh` adds.
fn target(i: usize) -> TargetFile {
    let mut hashes = BTreeMap::new();
    hashes.insert(
        "sha256".to_owned(),
        tuf_core::hash::sha256_hex(format!("content-{i}").as_bytes()),
    );
    TargetFile {
        length: 1000 + i as u64,
        hashes,
        custom: Some(json!({"name": "pkg", "version": i.to_string(),
                            "hardware_ids": ["hw-1"], "tags": ["main"]})),
        extra: BTreeMap::new(),
    }
}
