# shellcheck shell=bash
# A real PostgreSQL 15 for the tests that need one (tests/Holdfast.Storage.Postgres.Tests and the PostgreSQL runs of
# the end-to-end tests). Sourced by scripts/test.sh; it can also be run on its own around any command:
#
#   bash scripts/test-deps/postgres.sh dotnet test tests/Holdfast.Storage.Postgres.Tests -c Release
#
# What it does, idempotently and without a prompt:
#   - when HOLDFAST_TEST_POSTGRES is already set (a connection string such as
#     postgres://user:password@127.0.0.1:5432/postgres of a role that may create databases), it uses that server and
#     starts nothing;
#   - otherwise it takes the PostgreSQL 15 binaries from /usr/lib/postgresql/15/bin (apt-get installs postgresql-15
#     when they are missing), initialises a private cluster in a new temporary folder as a non-root user (initdb
#     refuses root: the `postgres` user, created when there is none), starts it on a free loopback port with fsync on
#     and password (SCRAM) authentication over TCP, and exports HOLDFAST_TEST_POSTGRES;
#   - holdfast_test_deps_stop_postgres stops that server and removes its folder (scripts/test.sh calls it on exit).
#
# The tests never skip: without HOLDFAST_TEST_POSTGRES, or with a server that does not answer, they fail and say
# how to run them.

holdfast_test_deps_postgres_bin=/usr/lib/postgresql/15/bin

holdfast_test_deps_postgres_as_owner() {
  # Runs a command as the cluster's owner: the postgres user when we are root, else ourselves.
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

holdfast_test_deps_postgres_install() {
  [[ -x "$holdfast_test_deps_postgres_bin/initdb" && -x "$holdfast_test_deps_postgres_bin/pg_ctl" ]] && return 0
  if [[ $(id -u) -ne 0 ]]; then
    echo "postgres.sh: PostgreSQL 15 is not installed in $holdfast_test_deps_postgres_bin and this user cannot install it (run as root, or set HOLDFAST_TEST_POSTGRES)" >&2
    return 1
  fi
  echo "postgres.sh: installing postgresql-15 with apt-get" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15 postgresql-client-15 >&2
}

holdfast_test_deps_postgres_free_port() {
  # A port nothing listens on, from a random start in the unprivileged range.
  local port tries=0
  while ((tries < 200)); do
    port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
    if ! ss -Hltn "sport = :$port" 2>/dev/null | grep -q .; then
      echo "$port"
      return 0
    fi
    tries=$((tries + 1))
  done
  return 1
}

holdfast_test_deps_start_postgres() {
  if [[ -n "${HOLDFAST_TEST_POSTGRES:-}" ]]; then
    return 0 # an existing server, or one this script started before
  fi
  holdfast_test_deps_postgres_install || return 1

  if [[ $(id -u) -eq 0 ]] && ! id postgres >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/postgresql --shell /usr/sbin/nologin postgres || return 1
  fi

  local dir password port attempt
  dir="$(mktemp -d "${TMPDIR:-/tmp}/holdfast-pg.XXXXXX")" || return 1
  chmod 700 "$dir"
  [[ $(id -u) -eq 0 ]] && chown postgres: "$dir"
  password="$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"
  printf '%s\n' "$password" >"$dir/pwfile"
  [[ $(id -u) -eq 0 ]] && chown postgres: "$dir/pwfile"

  if ! holdfast_test_deps_postgres_as_owner "$holdfast_test_deps_postgres_bin/initdb" \
    --pgdata="$dir/data" --username=postgres --pwfile="$dir/pwfile" \
    --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1; then
    echo "postgres.sh: initdb failed:" >&2
    cat "$dir/initdb.log" >&2
    rm -rf "$dir"
    return 1
  fi
  rm -f "$dir/pwfile"

  for attempt in 1 2 3 4 5; do
    port="$(holdfast_test_deps_postgres_free_port)" || break
    # fsync and synchronous_commit stay on (the defaults): the tests measure and rely on real durability.
    if holdfast_test_deps_postgres_as_owner "$holdfast_test_deps_postgres_bin/pg_ctl" \
      --pgdata="$dir/data" --log="$dir/server.log" --wait --timeout=60 \
      -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir -c fsync=on -c synchronous_commit=on -c max_connections=400 -c shared_buffers=128MB" \
      start >/dev/null 2>&1; then
      export HOLDFAST_TEST_POSTGRES="postgres://postgres:${password}@127.0.0.1:${port}/postgres"
      export HOLDFAST_TEST_POSTGRES_DIR="$dir"
      echo "postgres.sh: PostgreSQL 15 on 127.0.0.1:$port (data in $dir)" >&2
      return 0
    fi
    echo "postgres.sh: start on port $port failed (attempt $attempt):" >&2
    tail -n 5 "$dir/server.log" >&2 2>/dev/null || true
  done
  rm -rf "$dir"
  return 1
}

holdfast_test_deps_stop_postgres() {
  # Stops only the server this script started (never one given through HOLDFAST_TEST_POSTGRES).
  local dir="${HOLDFAST_TEST_POSTGRES_DIR:-}"
  [[ -n "$dir" && -d "$dir/data" ]] || return 0
  holdfast_test_deps_postgres_as_owner "$holdfast_test_deps_postgres_bin/pg_ctl" --pgdata="$dir/data" --mode=fast --wait stop >/dev/null 2>&1 || true
  rm -rf "$dir"
  unset HOLDFAST_TEST_POSTGRES HOLDFAST_TEST_POSTGRES_DIR
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  # Run on its own: start the server, run the given command with HOLDFAST_TEST_POSTGRES set, stop the server.
  set -euo pipefail
  trap holdfast_test_deps_stop_postgres EXIT
  holdfast_test_deps_start_postgres
  if [[ $# -eq 0 ]]; then
    echo "HOLDFAST_TEST_POSTGRES=$HOLDFAST_TEST_POSTGRES"
    echo "postgres.sh: no command given; stopping again (pass a command, e.g. dotnet test tests/Holdfast.Storage.Postgres.Tests -c Release)" >&2
    exit 0
  fi
  "$@"
else
  # Sourced (scripts/test.sh): a failure to start is reported and the tests that need PostgreSQL then fail.
  holdfast_test_deps_start_postgres || echo "postgres.sh: PostgreSQL could not be started; the PostgreSQL tests will fail" >&2
fi
