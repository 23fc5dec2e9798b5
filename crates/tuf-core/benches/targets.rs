//! Targets metadata at 1k, 10k and 100k entries: parse, canonicalise, hash, verify.
//!
//! `cargo bench -p tuf-core`. For the side-by-side with python-tuf, see `bench/compare.py`.

use std::collections::BTreeMap;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tuf_core::{
    canonical, hash, KeyId, KeyType, PrivateKey, PublicKey, RoleKeys, Signed, Signer, TargetFile,
    Targets, Threshold,
};

const SIZES: [usize; 3] = [1_000, 10_000, 100_000];

/// A targets file of `n` entries shaped like a Factory's CI targets, signed by `key`.
fn targets_file(n: usize, key: &PrivateKey) -> Vec<u8> {
    let mut t = Targets::new(1, "2030-01-01T00:00:00Z".parse().unwrap());
    for i in 0..n {
        let mut hashes = BTreeMap::new();
        hashes.insert(
            "sha256".to_owned(),
            hash::sha256_hex(format!("image {i}").as_bytes()),
        );
        t.targets.insert(
            format!("board-{}-lmp-{i}", i % 7),
            TargetFile {
                length: 1_000_000 + i as u64,
                hashes,
                custom: Some(serde_json::json!({
                    "hardwareIds": [format!("board-{}", i % 7)],
                    "name": format!("board-{}-lmp", i % 7),
                    "version": i.to_string(),
                    "tags": ["main"],
                    "createdAt": "2030-01-01T00:00:00Z",
                })),
                extra: BTreeMap::new(),
            },
        );
    }
    let mut env = Signed::new(t).unwrap();
    env.sign(key).unwrap();
    env.to_bytes()
}

fn bench(c: &mut Criterion) {
    let key = PrivateKey::generate(KeyType::Ed25519).unwrap();
    let keys: BTreeMap<KeyId, PublicKey> =
        [(key.key_id().clone(), key.public_key().clone())].into();
    let role = RoleKeys::new(vec![key.key_id().clone()], Threshold::new(1).unwrap());
    let mut g = c.benchmark_group("targets");
    g.sample_size(10)
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    for n in SIZES {
        let file = targets_file(n, &key);
        let parsed = Signed::<Targets>::from_slice(&file).unwrap();
        let value = canonical::parse(&file).unwrap();
        g.throughput(Throughput::Bytes(file.len() as u64));
        g.bench_with_input(BenchmarkId::new("parse", n), &file, |b, f| {
            b.iter(|| Signed::<Targets>::from_slice(f).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("canonicalise", n), &value, |b, v| {
            b.iter(|| canonical::to_vec(v).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("sha256", n), &file, |b, f| {
            b.iter(|| hash::sha256(f))
        });
        g.bench_with_input(BenchmarkId::new("verify", n), &parsed, |b, p| {
            b.iter(|| assert!(p.verify_role("targets", &role, &keys).is_met()))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
