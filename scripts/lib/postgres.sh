# Starts a throwaway PostgreSQL server for the tests and stops it on exit. Source it, then call
# `pg_start`; it sets PG_URL. Uses the installed server binaries (Debian's postgresql-15 or any
# /usr/lib/postgresql/*/bin), installing the package if none is there.

pg_bindir() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  return 1
}

pg_start() {
  local bindir
  bindir=$(pg_bindir) || { apt_install postgresql; bindir=$(pg_bindir); }
  PG_DIR=$(mktemp -d /tmp/ih-pg.XXXXXX)
  PG_PORT=$(free_port)
  local as=()
  if [ "$(id -u)" -eq 0 ]; then
    # initdb refuses to run as root: run the server as the postgres system user.
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    chown postgres "$PG_DIR"
    as=(runuser -u postgres --)
  fi
  say "starting PostgreSQL ($bindir) on port $PG_PORT in $PG_DIR"
  "${as[@]}" "$bindir/initdb" -D "$PG_DIR/data" -A trust -U postgres -E UTF8 >"$PG_DIR/initdb.log" 2>&1 \
    || { cat "$PG_DIR/initdb.log" >&2; return 1; }
  "${as[@]}" "$bindir/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
    -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=500 -c fsync=off -c shared_buffers=128MB" \
    start >/dev/null || { cat "$PG_DIR/server.log" >&2; return 1; }
  PG_BINDIR=$bindir
  PG_AS=("${as[@]}")
  PG_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
  trap pg_stop EXIT
}

pg_stop() {
  if [ -n "${PG_DIR:-}" ] && [ -d "$PG_DIR/data" ]; then
    "${PG_AS[@]}" "$PG_BINDIR/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
  fi
}
