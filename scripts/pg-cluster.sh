# Starts a private, throwaway PostgreSQL cluster (fsync off, own port and socket directory) and
# exports TUFD_TEST_DATABASE_URL, and TUFD_TEST_PG_DATADIR (the cluster's data directory, which
# destruction tests scan for secrets). Sourced by scripts/test; pg_cluster_stop removes it.
# Without PostgreSQL binaries it says so, and tests that need it skip (or fail under CI=true).

pg_cluster_start() {
  local bindir
  bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$bindir" ] && command -v initdb >/dev/null 2>&1; then
    bindir=$(dirname "$(readlink -f "$(command -v initdb)")")
  fi
  if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
    echo "pg-cluster: no PostgreSQL server binaries found; PostgreSQL tests will skip" >&2
    return 0
  fi
  PG_TMP=$(mktemp -d /tmp/tuf-pg.XXXXXX)
  local run=()
  if [ "$(id -u)" = 0 ]; then
    chown postgres "$PG_TMP"
    run=(runuser -u postgres --)
  fi
  "${run[@]}" "$bindir/initdb" -D "$PG_TMP/data" -A trust -U postgres --no-sync >/dev/null
  # A port below the kernel's ephemeral range (client sockets take ports from there, and
  # one may hold the port picked), not listened on; another if the start still fails.
  local first attempt started=
  first=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  for attempt in 1 2 3 4 5 6 7 8; do
    PG_PORT=$(( 20000 + RANDOM % (first > 21000 ? first - 20000 : 1000) ))
    ss -Hltn "sport = :$PG_PORT" 2>/dev/null | grep -q . && continue
    if "${run[@]}" "$bindir/pg_ctl" -D "$PG_TMP/data" -l "$PG_TMP/log" -w \
      -o "-F -p $PG_PORT -k $PG_TMP -c listen_addresses=127.0.0.1 -c max_connections=200" \
      start >/dev/null; then
      started=1
      break
    fi
    echo "pg-cluster: port $PG_PORT: could not start (attempt $attempt), trying another" >&2
  done
  if [ -z "$started" ]; then
    echo "pg-cluster: PostgreSQL did not start; its log:" >&2
    cat "$PG_TMP/log" >&2
    rm -rf "$PG_TMP"
    PG_TMP=
    return 1
  fi
  export TUFD_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
  export TUFD_TEST_PG_DATADIR="$PG_TMP/data"
  PG_BINDIR=$bindir
  PG_RUN=("${run[@]}")
  echo "pg-cluster: throwaway PostgreSQL at $TUFD_TEST_DATABASE_URL"
}

pg_cluster_stop() {
  [ -n "${PG_TMP:-}" ] || return 0
  "${PG_RUN[@]}" "$PG_BINDIR/pg_ctl" -D "$PG_TMP/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$PG_TMP"
  PG_TMP=
  unset TUFD_TEST_PG_DATADIR
}
