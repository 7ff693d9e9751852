#!/usr/bin/env bash
# The whole test suite: unit tests and the integration binary against the real PostgreSQL,
# RabbitMQ and Redis (started here when they are down), then the broker-facing tests again with
# quorum queues. Extra arguments go to the runner (and skip the quorum pass, unless
# TEST_QUEUE_TYPE=quorum is set for the whole run).
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
# A broker that stops answering management commands must fail the run, never hang it.
rmq() { timeout "${RABBITMQCTL_TIMEOUT:-60}" rabbitmqctl -q "$@"; }
export DISPATCHCTL_TEST_RUN="$RUN_ID"
run_is_dead() { ! kill -0 "${1#r}" 2>/dev/null; }

own_vhost=""
if [ -z "${TEST_RABBITMQ_URL:-}" ] && command -v rabbitmqctl >/dev/null 2>&1; then
  rmq list_vhosts 2>/dev/null | sed -n 's/^dispatchctl-test-\(r[0-9]*\)$/\1/p' |
    while read -r run; do
      if run_is_dead "$run"; then rmq delete_vhost "dispatchctl-test-$run" >/dev/null 2>&1 || true; fi
    done
  rmq delete_vhost dispatchctl-test >/dev/null 2>&1 || true # left by older versions of this script
  own_vhost="dispatchctl-test-$RUN_ID"
  rmq add_vhost "$own_vhost" >/dev/null || { echo "test.sh: RabbitMQ did not create vhost $own_vhost" >&2; exit 1; }
  rmq set_permissions -p "$own_vhost" guest '.*' '.*' '.*' >/dev/null
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
  if [ -n "$own_vhost" ]; then rmq delete_vhost "$own_vhost" >/dev/null 2>&1 || true; fi
}
drop_test_databases
trap cleanup EXIT

# Most tests wait on I/O, so more run at once than there are cores.
run_tests() {
  if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --locked --no-fail-fast --test-threads "${TEST_THREADS:-8}" "$@"
  else
    cargo test --locked --no-fail-fast "$@" -- --test-threads "${TEST_THREADS:-8}"
  fi
}

# The whole suite with the queue type of TEST_QUEUE_TYPE (classic by default). Without extra
# arguments, the tests that talk to the broker's queues run once more with quorum queues, so
# both queue types are proven on every run.
status=0
run_tests "$@" || status=$?
if [ $# -eq 0 ] && [ -z "${TEST_QUEUE_TYPE:-}" ]; then
  echo "test.sh: the worker, scanner and operator tests again with QUEUE_TYPE=quorum" >&2
  if cargo nextest --version >/dev/null 2>&1; then
    TEST_QUEUE_TYPE=quorum run_tests -E 'test(/^(worker|scanner|operator)::/)' || status=$?
  else
    TEST_QUEUE_TYPE=quorum cargo test --locked --no-fail-fast --test it -- \
      --test-threads "${TEST_THREADS:-8}" worker:: scanner:: operator:: || status=$?
  fi
fi
exit "$status"
