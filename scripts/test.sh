#!/usr/bin/env bash
# The whole test suite: unit tests and the integration binary against the real PostgreSQL,
# RabbitMQ and Redis (started here when they are down). Extra arguments go to the runner.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${DISPATCHCTL_SKIP_SERVICES:-0}" != 1 ]; then
  scripts/start-services.sh
fi

export TEST_DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432}"
export TEST_REDIS_URL="${TEST_REDIS_URL:-redis://127.0.0.1:6379/0}"

# Each run has its own vhost and database names (keyed by this script's pid), so two runs on
# one machine (a developer's and CI's, or two worktrees) never delete each other's state.
# What runs that died left behind is removed at the start of the next one.
readonly RUN_ID="r$$"
export DISPATCHCTL_TEST_RUN="$RUN_ID"
run_is_dead() { ! kill -0 "${1#r}" 2>/dev/null; }

own_vhost=""
if [ -z "${TEST_RABBITMQ_URL:-}" ] && command -v rabbitmqctl >/dev/null 2>&1; then
  rabbitmqctl -q list_vhosts 2>/dev/null | sed -n 's/^dispatchctl-test-\(r[0-9]*\)$/\1/p' |
    while read -r run; do
      if run_is_dead "$run"; then rabbitmqctl -q delete_vhost "dispatchctl-test-$run" >/dev/null 2>&1 || true; fi
    done
  rabbitmqctl -q delete_vhost dispatchctl-test >/dev/null 2>&1 || true # left by older versions of this script
  own_vhost="dispatchctl-test-$RUN_ID"
  rabbitmqctl -q add_vhost "$own_vhost" >/dev/null
  rabbitmqctl -q set_permissions -p "$own_vhost" guest '.*' '.*' '.*' >/dev/null
  export TEST_RABBITMQ_URL="amqp://guest:guest@127.0.0.1:5672/$own_vhost"
fi
export TEST_RABBITMQ_URL="${TEST_RABBITMQ_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"

# Every test creates its own database, named dtest_<run>_<id>; drop this run's at exit and
# those of runs that are no longer alive (or that predate run ids) at the start.
drop_test_databases() {
  command -v psql >/dev/null 2>&1 || return 0
  psql "$TEST_DATABASE_URL/postgres" -Atqc "SELECT datname FROM pg_database WHERE datname LIKE 'dtest\_%'" 2>/dev/null |
    while read -r db; do
      run=$(printf '%s' "$db" | sed -n 's/^dtest_\(r[0-9]*\)_.*$/\1/p')
      if [ "$run" = "$RUN_ID" ] || [ -z "$run" ] || run_is_dead "$run"; then
        psql "$TEST_DATABASE_URL/postgres" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
      fi
    done
}
cleanup() {
  drop_test_databases
  if [ -n "$own_vhost" ]; then rabbitmqctl -q delete_vhost "$own_vhost" >/dev/null 2>&1 || true; fi
}
drop_test_databases
trap cleanup EXIT

# Most tests wait on I/O, so more run at once than there are cores.
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --no-fail-fast --test-threads "${TEST_THREADS:-8}" "$@"
else
  cargo test --locked --no-fail-fast "$@" -- --test-threads "${TEST_THREADS:-8}"
fi
