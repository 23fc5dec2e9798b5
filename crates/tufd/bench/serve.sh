#!/usr/bin/env bash
# Benchmark of tufd against nginx (DESIGN.md section 7):
#   1. metadata GET throughput of tufd vs nginx serving the same bytes as static files
#      (wrk on loopback), for timestamp.json and a 10,000-target N.targets.json;
#   2. latency of adding one target to a Factory that already has 10,000, vs the in-process
#      floor (canonicalise + sign targets, snapshot, timestamp: examples/signing-floor).
# Needs wrk and nginx (Debian: apt-get install -y wrk nginx). Not part of the tests.
set -euo pipefail
cd "$(dirname "$0")/../../.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
N=${N:-10000}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}

command -v wrk >/dev/null || { echo "wrk not found (apt-get install -y wrk)" >&2; exit 1; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || { echo "nginx not found (apt-get install -y nginx)" >&2; exit 1; }

cargo build --release --locked -p tufd --bin tufd --example signing-floor >&2
BIN=$CARGO_TARGET_DIR/release
WORK=$(mktemp -d /tmp/tufd-bench.XXXXXX)
# nginx workers run as an unprivileged user: they must be able to read the static copy.
chmod 755 "$WORK"
TUFD_PID=
NGINX_PID=
cleanup() {
  [ -n "$TUFD_PID" ] && kill "$TUFD_PID" 2>/dev/null || true
  [ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

ADMIN=bench-admin-token-0123456789abcdef
TUFD_ADMIN_TOKEN=$ADMIN RUST_LOG=warn "$BIN/tufd" --listen 127.0.0.1:0 --data-dir "$WORK/data" \
  >"$WORK/tufd.out" 2>"$WORK/tufd.err" &
TUFD_PID=$!
for _ in $(seq 100); do grep -q '^listening on' "$WORK/tufd.out" 2>/dev/null && break; sleep 0.1; done
BASE=$(sed -n 's/^listening on //p' "$WORK/tufd.out")
echo "tufd at $BASE"

OWNER=$(curl -sf -X POST -H "Authorization: Bearer $ADMIN" "$BASE/ota/factories" -d '{"name":"bench"}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["ci_token"])')
# 10,000 targets in batches (one targets version per batch).
python3 - "$N" "$WORK/batches" <<'PY'
import hashlib, json, os, sys
n, out = int(sys.argv[1]), sys.argv[2]
os.makedirs(out)
batch = 2000
for b in range(0, n, batch):
    items = [{"name": "pkg", "version": str(i), "hardware_ids": ["hw-1"], "tags": ["main"],
              "length": 1000 + i, "hashes": {"sha256": hashlib.sha256(f"content-{i}".encode()).hexdigest()}}
             for i in range(b, min(n, b + batch))]
    with open(f"{out}/{b:08d}.json", "w") as f:
        json.dump(items, f)
PY
for f in "$WORK"/batches/*.json; do
  curl -sf -o /dev/null -X POST -H "Authorization: Bearer $OWNER" -H 'content-type: application/json' \
    --data-binary @"$f" "$BASE/ota/factories/bench/targets"
done

# The same bytes as static files for nginx.
M=$BASE/repo/bench/ci/metadata
STATIC=$WORK/www/repo/bench/ci/metadata
mkdir -p "$STATIC"
curl -sf -o "$STATIC/timestamp.json" "$M/timestamp.json"
SV=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["signed"]["meta"]["snapshot.json"]["version"])' "$STATIC/timestamp.json")
curl -sf -o "$STATIC/$SV.snapshot.json" "$M/$SV.snapshot.json"
TV=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["signed"]["meta"]["targets.json"]["version"])' "$STATIC/$SV.snapshot.json")
curl -sf -o "$STATIC/$TV.targets.json" "$M/$TV.targets.json"
echo "targets.json: $(wc -c <"$STATIC/$TV.targets.json") bytes, $N targets"

NPORT=$((30000 + RANDOM % 20000))
cat >"$WORK/nginx.conf" <<NG
worker_processes auto;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/nginx.err;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  types { application/json json; }
  client_body_temp_path $WORK/nginx-tmp;
  proxy_temp_path $WORK/nginx-tmp;
  fastcgi_temp_path $WORK/nginx-tmp;
  uwsgi_temp_path $WORK/nginx-tmp;
  scgi_temp_path $WORK/nginx-tmp;
  server { listen 127.0.0.1:$NPORT; root $WORK/www; etag on; }
}
NG
mkdir -p "$WORK/nginx-tmp"
"$NGINX" -c "$WORK/nginx.conf" -p "$WORK" &
NGINX_PID=$!
sleep 0.5

# Requests per second; a run with any error response is refused (errors are fast and would
# make a server look better than it is).
rps() {
  local out
  out=$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" "$1")
  if grep -q 'Non-2xx' <<<"$out"; then
    echo "error responses from $1:" >&2
    echo "$out" >&2
    exit 1
  fi
  awk '/Requests\/sec/ {print $2}' <<<"$out"
}
echo
printf '%-28s %14s %14s %8s\n' file "tufd req/s" "nginx req/s" ratio
for file in timestamp.json "$SV.snapshot.json" "$TV.targets.json"; do
  T=$(rps "$M/$file")
  G=$(rps "http://127.0.0.1:$NPORT/repo/bench/ci/metadata/$file")
  printf '%-28s %14s %14s %7.0f%%\n' "$file" "$T" "$G" "$(python3 -c "print(100*$T/$G)")"
done

# Latency of adding one target to the 10,000-target Factory, vs the in-process floor.
echo
LAT=()
for i in $(seq 21); do
  SHA=$(printf 'extra-%s' "$i" | sha256sum | cut -c1-64)
  LAT+=("$(curl -sf -o /dev/null -w '%{time_total}' -X POST -H "Authorization: Bearer $OWNER" \
    -H 'content-type: application/json' \
    -d "{\"name\":\"extra\",\"version\":\"$i\",\"hardware_ids\":[\"hw-1\"],\"length\":1,\"hashes\":{\"sha256\":\"$SHA\"}}" \
    "$BASE/ota/factories/bench/targets")")
done
ADD_MS=$(printf '%s\n' "${LAT[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.2f", a[int((NR+1)/2)]*1000}')
FLOOR_MS=$("$BIN/examples/signing-floor" "$N")
echo "add one target to $N: median ${ADD_MS} ms over HTTP; in-process floor ${FLOOR_MS} ms;" \
  "ratio $(python3 -c "print(round($ADD_MS/$FLOOR_MS, 2))")x (goal <= 2x)"
