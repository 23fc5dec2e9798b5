"""tuf-core against python-tuf on the same targets files, side by side.

    .venv/bin/python crates/tuf-core/bench/compare.py [--sizes 1000,10000,100000] [--runs 5]

Generates targets.json files with python-tuf (signed by one ed25519 key), times python-tuf's
Metadata.from_bytes, canonicalisation, SHA-256 and signature check on them, then runs
`cargo run --release -p tuf-core --example bench_targets` on the same files and prints the
median times and the ratios (python / tuf-core). Run it from the repository root.
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import Metadata, TargetFile, Targets
from tuf.api.serialization.json import CanonicalJSONSerializer, JSONSerializer

OPS = ["parse", "canonicalise", "sha256", "verify", "total"]


def make_file(n: int, signer: CryptoSigner, path: Path) -> None:
    targets = Targets(expires=datetime(2030, 1, 1, tzinfo=timezone.utc))
    for i in range(n):
        board = f"board-{i % 7}"
        tf = TargetFile(
            length=1_000_000 + i,
            hashes={"sha256": hashlib.sha256(f"image {i}".encode()).hexdigest()},
            path=f"{board}-lmp-{i}",
            unrecognized_fields={
                "custom": {
                    "hardwareIds": [board],
                    "name": f"{board}-lmp",
                    "version": str(i),
                    "tags": ["main"],
                    "createdAt": "2030-01-01T00:00:00Z",
                }
            },
        )
        targets.targets[tf.path] = tf
    md = Metadata(targets)
    md.sign(signer)
    path.write_bytes(md.to_bytes(JSONSerializer(compact=True)))


def median(runs: int, f) -> float:
    times = []
    for _ in range(max(runs, 1)):
        t = time.perf_counter()
        f()
        times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    return times[len(times) // 2]


def time_python(path: Path, signer: CryptoSigner, runs: int) -> dict:
    data = path.read_bytes()
    key = signer.public_key
    ser = CanonicalJSONSerializer()
    md = Metadata.from_bytes(data)
    payload = ser.serialize(md.signed)
    sig = md.signatures[key.keyid]

    def total() -> None:
        m = Metadata.from_bytes(data)
        key.verify_signature(m.signatures[key.keyid], ser.serialize(m.signed))

    return {
        "parse": median(runs, lambda: Metadata.from_bytes(data)),
        "canonicalise": median(runs, lambda: ser.serialize(md.signed)),
        "sha256": median(runs, lambda: hashlib.sha256(data).digest()),
        "verify": median(runs, lambda: key.verify_signature(sig, payload)),
        "total": median(runs, total),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    subprocess.run(
        ["cargo", "build", "--quiet", "--release", "-p", "tuf-core", "--example", "bench_targets"],
        check=True,
    )
    target_dir = Path(os.environ.get("CARGO_TARGET_DIR", "target"))
    binary = target_dir / "release" / "examples" / "bench_targets"

    signer = CryptoSigner.generate_ed25519()
    print(f"{'entries':>8} {'size':>9} {'operation':>13} {'python-tuf':>11} {'tuf-core':>10} {'ratio':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        key_file = Path(tmp) / "key.json"
        key_file.write_text(
            json.dumps({"keyid": signer.public_key.keyid, "key": signer.public_key.to_dict()})
        )
        for n in sizes:
            path = Path(tmp) / f"targets-{n}.json"
            make_file(n, signer, path)
            py = time_python(path, signer, args.runs)
            out = subprocess.run(
                [str(binary), str(path), str(key_file), str(args.runs)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            rs = json.loads(out)
            size = f"{path.stat().st_size / 1e6:.1f} MB"
            for op in OPS:
                ratio = py[op] / rs[op] if rs[op] > 0 else float("inf")
                print(f"{n:>8} {size:>9} {op:>13} {py[op]:>9.2f}ms {rs[op]:>8.2f}ms {ratio:>7.1f}x")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
