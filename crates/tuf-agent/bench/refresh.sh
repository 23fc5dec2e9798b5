#!/usr/bin/env bash
# Whole-process refresh of a repository of TARGETS targets (default 10,000): tuf-agent
# (release build) next to python-tuf's ngclient, same repository served on loopback, empty
# cache each run.
# Prints median wall time and peak RSS of each, and the ratios.
#
# Usage: crates/tuf-agent/bench/refresh.sh [TARGETS] [RUNS]
# Needs: a python with tuf (TUF_TEST_PYTHON, else .venv/bin/python), /usr/bin/time.
set -euo pipefail
cd "$(dirname "$0")/../../.."
targets=${1:-10000}
runs=${2:-10}
python=${TUF_TEST_PYTHON:-$PWD/.venv/bin/python}
target_dir=${CARGO_TARGET_DIR:-$PWD/target}

cargo build --quiet --release -p tuf-agent
agent="$target_dir/release/tuf-agent"

work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# --- repository ----------------------------------------------------------------------------
"$python" - "$work/repo" "$targets" <<'PY'
import hashlib, os, sys
from datetime import datetime, timedelta, timezone
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import Metadata, MetaFile, Root, Snapshot, TargetFile, Targets, Timestamp

out, count = sys.argv[1], int(sys.argv[2])
meta = os.path.join(out, "metadata")
os.makedirs(meta)
exp = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=30)
signers = {r: CryptoSigner.generate_ed25519() for r in ("root", "targets", "snapshot", "timestamp")}
root = Root(expires=exp, consistent_snapshot=True)
for role, s in signers.items():
    root.add_key(s.public_key, role)
targets = Targets(expires=exp)
for i in range(count):
    path = f"firmware-{i}"
    digest = hashlib.sha256(path.encode()).hexdigest()
    targets.targets[path] = TargetFile(
        1024 + i, {"sha256": digest}, path,
        {"custom": {"name": "firmware", "version": str(i), "hardware_ids": ["board-a"], "tags": ["ci"]}})
snapshot = Snapshot(expires=exp)
timestamp = Timestamp(expires=exp)

def write(md, role, name):
    md.sign(signers[role])
    data = md.to_bytes()
    with open(os.path.join(meta, name), "wb") as f:
        f.write(data)
    return data

write(Metadata(root), "root", "1.root.json")
data = write(Metadata(targets), "targets", "1.targets.json")
print(f"targets.json: {len(data)} bytes, {count} targets", file=sys.stderr)
snapshot.meta["targets.json"] = MetaFile(1)
write(Metadata(snapshot), "snapshot", "1.snapshot.json")
timestamp.snapshot_meta = MetaFile(1)
write(Metadata(timestamp), "timestamp", "timestamp.json")
PY

port=$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$python" -m http.server --bind 127.0.0.1 --directory "$work/repo" "$port" >/dev/null 2>&1 &
server_pid=$!
for _ in $(seq 50); do
  if "$python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/metadata/timestamp.json')" 2>/dev/null; then break; fi
  sleep 0.1
done
url="http://127.0.0.1:$port/metadata/"

cat > "$work/ngclient.py" <<'PY'
import sys
from tuf.ngclient import Updater, UpdaterConfig
# The default 5 MB cap on targets.json is too small from about 25,000 targets on.
config = UpdaterConfig(targets_max_length=256 * 1024 * 1024)
Updater(metadata_dir=sys.argv[1], metadata_base_url=sys.argv[2], bootstrap=None,
        config=config).refresh()
PY

# Runs "$@" with a fresh metadata dir holding only the trusted root; prints "SECONDS KIB".
measure() {
  local dir="$work/client"
  rm -rf "$dir" && mkdir -p "$dir" && cp "$work/repo/metadata/1.root.json" "$dir/root.json"
  local cmd=("${@//@DIR@/$dir}")
  /usr/bin/time -f "%e %M" -o "$work/time" "${cmd[@]}" >/dev/null
  [ -s "$dir/targets.json" ] || { echo "no targets.json after: ${cmd[*]}" >&2; exit 1; }
  cat "$work/time"
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

: >"$work/agent" && : >"$work/python"
for _ in $(seq "$runs"); do
  measure "$agent" --metadata-url "$url" --metadata-dir @DIR@ refresh >>"$work/agent"
  measure "$python" "$work/ngclient.py" @DIR@ "$url" >>"$work/python"
done

a_t=$(cut -d' ' -f1 "$work/agent" | median); a_m=$(cut -d' ' -f2 "$work/agent" | median)
p_t=$(cut -d' ' -f1 "$work/python" | median); p_m=$(cut -d' ' -f2 "$work/python" | median)
awk -v at="$a_t" -v am="$a_m" -v pt="$p_t" -v pm="$p_m" -v n="$targets" -v r="$runs" 'BEGIN {
  printf "refresh of %d targets, median of %d runs (wall time, peak RSS)\n", n, r
  printf "  tuf-agent : %7.3f s  %7.1f MiB\n", at, am / 1024
  printf "  python-tuf: %7.3f s  %7.1f MiB\n", pt, pm / 1024
  printf "  speed-up %.1fx, memory ratio %.1fx\n", (at > 0 ? pt / at : 0), pm / am
}'
