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
  PG_PORT=$(( 20000 + RANDOM % 20000 ))
  local run=()
  if [ "$(id -u)" = 0 ]; then
    chown postgres "$PG_TMP"
    run=(runuser -u postgres --)
  fi
  "${run[@]}" "$bindir/initdb" -D "$PG_TMP/data" -A trust -U postgres --no-sync >/dev/null
  "${run[@]}" "$bindir/pg_ctl" -D "$PG_TMP/data" -l "$PG_TMP/log" -w \
    -o "-F -p $PG_PORT -k $PG_TMP -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
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
