#!/usr/bin/env bash
# Start (or reuse) a throwaway PostgreSQL cluster for the tests, listening on loopback only, and
# print its SQLAlchemy URL. Used by `make test`; tests that need PostgreSQL read CLINIC_TEST_PG_URL.
set -euo pipefail
# Under /tmp by default: the postgres user must be able to reach it even when the checkout sits
# below a private (0700) directory, as a fresh CI clone may.
DIR="${1:-${TMPDIR:-/tmp}/clinic-test-pg-$(id -u)}"
PORT="${CLINIC_TEST_PG_PORT:-55432}"
BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
[ -n "$BIN" ] || { echo "no PostgreSQL server installed" >&2; exit 1; }
as_pg() {  # initdb and the server refuse to run as root
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
mkdir -p "$DIR"
[ "$(id -u)" -eq 0 ] && chown postgres "$DIR"
if [ ! -f "$DIR/PG_VERSION" ]; then
  as_pg "$BIN/initdb" -D "$DIR" -A trust -U postgres -E UTF8 --locale=C.UTF-8 >/dev/null
fi
if as_pg "$BIN/pg_ctl" -D "$DIR" status >/dev/null 2>&1; then
  PORT="$(sed -n 4p "$DIR/postmaster.pid")"  # already running: reuse it where it listens
else
  # Another server may hold the port (a developer's own cluster): try the next few.
  for try in 0 1 2 3 4 5 6 7; do
    p=$((PORT + try))
    if as_pg "$BIN/pg_ctl" -D "$DIR" -l "$DIR/server.log" -w -t 60 \
        -o "-p $p -k $DIR -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null 2>&1; then
      PORT=$p; break
    fi
    [ "$try" -eq 7 ] && { echo "could not start PostgreSQL; see $DIR/server.log" >&2; exit 1; }
  done
fi
echo "postgresql+psycopg://postgres@127.0.0.1:$PORT/postgres"
