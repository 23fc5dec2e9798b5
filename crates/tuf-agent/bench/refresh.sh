#!/usr/bin/env bash
# Whole-process refresh (empty cache) of repositories of 1,000, 10,000 and 100,000 targets:
# tuf-agent (built with PROFILE, default release; PROFILE=release-small is what devices run;
# also the pure-Rust build with PURE_RUST=1) next to python-tuf's
# ngclient and, when TOUGH_REFRESH names one, a client built on the `tough` crate; the same
# repository served on loopback to all of them. Prints the median wall time and peak RSS of
# each, and tuf-agent's speed-up over the others. A benchmark, not a test: nothing fails on
# a slow result.
#
# Usage: crates/tuf-agent/bench/refresh.sh [SIZES] [RUNS]    (default: "1000 10000 100000" 5)
# Needs: a python with tuf (TUF_TEST_PYTHON, else .venv/bin/python), /usr/bin/time.
# TOUGH_REFRESH: a program run as `PROGRAM METADATA_DIR METADATA_URL TARGETS_URL` that loads
# the repository with tough (trusting METADATA_DIR/root.json, caching in METADATA_DIR) and
# exits 0. It is not part of this repository: build one outside it against the tough crate.
# Peak RSS includes the binary's mapped pages, which depend on the page cache (a freshly
# written binary can map several hundred KiB more): compare runs made the same way.
# tuf-agent fsyncs each file it persists and its directory (python-tuf does not): on a disk
# busy with other writes those waits can be most of its time at 10,000 targets. TMPDIR on a
# tmpfs (TMPDIR=/dev/shm) puts the metadata directories there and shows the rest.
set -euo pipefail
cd "$(dirname "$0")/../../.."
sizes=${1:-"1000 10000 100000"}
runs=${2:-5}
python=${TUF_TEST_PYTHON:-$PWD/.venv/bin/python}
target_dir=${CARGO_TARGET_DIR:-$PWD/target}

work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

profile=${PROFILE:-release}
cargo build --quiet --profile "$profile" -p tuf-agent
cp "$target_dir/$profile/tuf-agent" "$work/tuf-agent"
clients=(tuf-agent)
if [ "${PURE_RUST:-0}" = 1 ]; then
  cargo build --quiet --profile "$profile" -p tuf-agent --no-default-features --features pure-rust
  cp "$target_dir/$profile/tuf-agent" "$work/tuf-agent-pure-rust"
  clients+=(tuf-agent-pure-rust)
fi
clients+=(python-tuf)
if [ -n "${TOUGH_REFRESH:-}" ]; then clients+=(tough); fi

cat > "$work/ngclient.py" <<'PY'
import sys
from tuf.ngclient import Updater, UpdaterConfig
# The default 5 MB cap on targets.json is too small from about 25,000 targets on.
config = UpdaterConfig(targets_max_length=256 * 1024 * 1024)
Updater(metadata_dir=sys.argv[1], metadata_base_url=sys.argv[2], bootstrap=None,
        config=config).refresh()
PY

# A repository of $1 targets in $2 (python-tuf, consistent snapshots, ed25519).
make_repo() {
  "$python" - "$2" "$1" <<'PY'
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
}

# Serves $1 on a free loopback port; sets $url to its metadata URL.
serve() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
  local port
  port=$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$python" -m http.server --bind 127.0.0.1 --directory "$1" "$port" >/dev/null 2>&1 &
  server_pid=$!
  for _ in $(seq 50); do
    if "$python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/metadata/timestamp.json')" 2>/dev/null; then break; fi
    sleep 0.1
  done
  base="http://127.0.0.1:$port"
  url="$base/metadata/"
}

# Refreshes with client $1 into a fresh metadata dir holding only the trusted root; prints
# "SECONDS KIB".
measure() {
  local dir="$work/client" repo=$2
  rm -rf "$dir" && mkdir -p "$dir" && cp "$repo/metadata/1.root.json" "$dir/root.json"
  local cmd
  case $1 in
    tuf-agent*) cmd=("$work/$1" --metadata-url "$url" --metadata-dir "$dir" refresh) ;;
    python-tuf) cmd=("$python" "$work/ngclient.py" "$dir" "$url") ;;
    tough) cmd=("$TOUGH_REFRESH" "$dir" "$url" "$base/targets/") ;;
  esac
  local start end
  start=$(date +%s%N)
  /usr/bin/time -f "%M" -o "$work/time" "${cmd[@]}" >/dev/null
  end=$(date +%s%N)
  case $1 in
    tough) ;;  # tough keeps its own cache layout
    *) [ -s "$dir/targets.json" ] || { echo "no targets.json after: ${cmd[*]}" >&2; exit 1; } ;;
  esac
  # Wall time in nanoseconds (/usr/bin/time's is in hundredths: too coarse at 1,000 targets).
  echo "$(awk -v ns=$((end - start)) 'BEGIN {printf "%.4f", ns / 1e9}') $(cat "$work/time")"
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

for n in $sizes; do
  repo="$work/repo-$n"
  make_repo "$n" "$repo"
  serve "$repo"
  for c in "${clients[@]}"; do : >"$work/$c.times"; done
  for _ in $(seq "$runs"); do
    for c in "${clients[@]}"; do measure "$c" "$repo" >>"$work/$c.times"; done
  done
  printf 'refresh of %d targets (targets.json %d bytes), median of %d runs\n' \
    "$n" "$(stat -c %s "$repo/metadata/1.targets.json")" "$runs"
  agent_t=$(cut -d' ' -f1 "$work/tuf-agent.times" | median)
  for c in "${clients[@]}"; do
    t=$(cut -d' ' -f1 "$work/$c.times" | median)
    m=$(cut -d' ' -f2 "$work/$c.times" | median)
    awk -v c="$c" -v t="$t" -v m="$m" -v a="$agent_t" 'BEGIN {
      printf "  %-20s %7.3f s  %7.1f MiB peak RSS", c, t, m / 1024
      if (c != "tuf-agent") printf "   tuf-agent is %.1fx faster", (a > 0 ? t / a : 0)
      printf "\n"
    }'
  done
  rm -rf "$repo"
done
