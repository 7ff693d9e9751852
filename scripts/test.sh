#!/usr/bin/env bash
# The whole test suite: unit tests and the integration binary against real PostgreSQL,
# RabbitMQ and Redis, then the broker-facing tests again with quorum queues. Extra arguments go
# to the runner (and skip the quorum pass, unless TEST_QUEUE_TYPE=quorum is set for the run).
#
# Where does it find the services? TEST_DATABASE_URL, TEST_RABBITMQ_URL and TEST_REDIS_URL
# when given (with DISPATCHCTL_SKIP_SERVICES=1, as the GitHub workflow does with its service
# containers). Otherwise it installs and starts the machine's services when they are missing
# (scripts/start-services.sh, for their packages) and runs each pass against PostgreSQL, Redis
# and RabbitMQ instances of its own (scripts/chaos/services.sh, ~5 s to start, stopped at the
# end): a broker that other runs on the machine share, and that today's RabbitMQ 3.10 can wedge
# under quorum-queue churn, then never decides whether a run passes.
#
# Which RabbitMQ? The private passes run on RabbitMQ 4.0 (Debian 13's, in a root file system
# that scripts/rabbitmq4.sh builds once and caches; TEST_RABBITMQ=3 for the machine's 3.10),
# with the features 4.x deprecates refused; then the worker and broker tests run once more on
# 3.10 (TEST_RABBITMQ_ALSO=3; empty skips it). Each pass prints the version it ran against.
set -euo pipefail
cd "$(dirname "$0")/.."

private=0
if [ "${DISPATCHCTL_SKIP_SERVICES:-0}" != 1 ] && [ -z "${TEST_DATABASE_URL:-}${TEST_RABBITMQ_URL:-}${TEST_REDIS_URL:-}" ]; then
  private=1
fi
if [ "${DISPATCHCTL_SKIP_SERVICES:-0}" != 1 ]; then
  # With private instances only the packages matter; a shared service that will not start
  # (another run wedged it) must not fail this run.
  scripts/start-services.sh || [ "$private" = 1 ]
fi
export TEST_DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432}"
export TEST_REDIS_URL="${TEST_REDIS_URL:-redis://127.0.0.1:6379/0}"

# Some tests talk to real servers written in Python: an SMTP server, aiosmtpd (the e-mail
# provider's tests, tests/support/smtp_server.py) and an OTLP trace receiver built on the
# official opentelemetry-proto definitions (tests/support/otlp_receiver.py). Each test starts
# its own. Their packages (tests/support/requirements.txt, PyPI) live in a venv cached beside
# the RabbitMQ 4.0 root (about 6 s to make, once); TEST_PYTHON names its interpreter.
if [ -z "${TEST_PYTHON:-}" ]; then
  test_venv="${XDG_CACHE_HOME:-$HOME/.cache}/dispatchctl/test-venv"
  if ! "$test_venv/bin/python" -c 'import aiosmtpd, opentelemetry.proto' 2>/dev/null ||
    ! cmp -s tests/support/requirements.txt "$test_venv/requirements.txt"; then
    python3 -m venv --clear "$test_venv" &&
      "$test_venv/bin/pip" install --quiet --disable-pip-version-check -r tests/support/requirements.txt &&
      cp tests/support/requirements.txt "$test_venv/requirements.txt"
  fi
  export TEST_PYTHON="$test_venv/bin/python"
fi

# Each run has its own vhost and database names (keyed by this script's pid), so two runs on
# one machine (a developer's and CI's, or two worktrees) never delete each other's state.
# What runs that died left behind is removed at the start of the next one.
readonly RUN_ID="r$$"
# A broker that stops answering management commands must fail the run, never hang it.
rmq() { timeout "${RABBITMQCTL_TIMEOUT:-60}" rabbitmqctl -q "$@"; }
export DISPATCHCTL_TEST_RUN="$RUN_ID"
run_is_dead() { ! kill -0 "${1#r}" 2>/dev/null; }

own_vhost=""
if [ "$private" != 1 ] && [ -z "${TEST_RABBITMQ_URL:-}" ] && command -v rabbitmqctl >/dev/null 2>&1; then
  rmq list_vhosts 2>/dev/null | sed -n 's/^dispatchctl-test-\(r[0-9]*\)$/\1/p' |
    while read -r run; do
      if run_is_dead "$run"; then rmq delete_vhost "dispatchctl-test-$run" >/dev/null 2>&1 || true; fi
    done
  rmq delete_vhost dispatchctl-test >/dev/null 2>&1 || true # left by older versions of this script
  own_vhost="dispatchctl-test-$RUN_ID"
  if rmq add_vhost "$own_vhost" >/dev/null && rmq set_permissions -p "$own_vhost" guest '.*' '.*' '.*' >/dev/null; then
    export TEST_RABBITMQ_URL="amqp://guest:guest@127.0.0.1:5672/$own_vhost"
  else
    echo "test.sh: the shared RabbitMQ did not create vhost $own_vhost in time; this run uses private services" >&2
    own_vhost=""
    shared_broker_sick=1
  fi
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

# Most tests wait on I/O, so more run at once than there are cores.
run_tests() {
  if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --locked --no-fail-fast --test-threads "${TEST_THREADS:-8}" "$@"
  else
    cargo test --workspace --locked --no-fail-fast "$@" -- --test-threads "${TEST_THREADS:-8}"
  fi
}

# Runs its arguments with a private PostgreSQL, Redis and RabbitMQ node of this run
# (scripts/chaos/services.sh, about 5 s to start), stopped afterwards. They speak TLS too,
# with a CA of this run (TEST_TLS_*), for the tls:: tests.
private_runs=()
with_private_services() {
  local dir
  dir=$(mktemp -d "${TMPDIR:-/tmp}/dispatchctl-test.XXXXXX")
  chmod 755 "$dir" # the private PostgreSQL runs as its own user
  private_runs+=("$dir")
  if ! CHAOS_RABBITMQ="${TEST_RABBITMQ:-4}" scripts/chaos/services.sh "$dir" start --tls; then
    echo "test.sh: could not start private services in $dir" >&2
    return 1
  fi
  # The multi-host DSN tests need a standby of the private PostgreSQL, the Sentinel test a
  # Redis behind Sentinel.
  if ! scripts/chaos/services.sh "$dir" pg-standby-start || ! scripts/chaos/services.sh "$dir" redis-sentinel-start; then
    echo "test.sh: could not start the PostgreSQL standby or Redis Sentinel in $dir" >&2
    return 1
  fi
  # shellcheck disable=SC1091
  . "$dir/services.env"
  echo "test.sh: this pass runs against RabbitMQ $(scripts/chaos/services.sh "$dir" rabbit-version) (private node)" >&2
  local rc=0
  TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$CHAOS_PG_PORT" \
    TEST_RABBITMQ_URL="amqp://guest:guest@127.0.0.1:$CHAOS_AMQP_PORT/%2f" \
    TEST_REDIS_URL="redis://127.0.0.1:$CHAOS_REDIS_PORT/0" \
    TEST_RABBITMQCTL="$PWD/scripts/chaos/services.sh $dir rabbitmqctl" \
    TEST_TLS_DIR="$CHAOS_TLS_DIR" \
    TEST_TLS_PG_PORT="$CHAOS_PG_PORT" \
    TEST_PG_STANDBY_PORT="$CHAOS_PG_STANDBY_PORT" \
    TEST_REDIS_SENTINEL_PORTS="$CHAOS_SENTINEL_PORTS" \
    TEST_TLS_REDIS_PORT="$CHAOS_REDIS_TLS_PORT" \
    TEST_TLS_AMQPS_PORT="$CHAOS_AMQPS_PORT" \
    "$@" || rc=$?
  # A deprecated feature that the node still permits is one that the next version refuses.
  if grep -h -i "deprecated feature" "$dir"/rabbit/log/*.log 2>/dev/null | grep -v "permit\.\|is denied by configuration" | head -n 5 | grep . >&2; then
    echo "test.sh: the tests used a feature that RabbitMQ deprecates (above)" >&2
    rc=1
  fi
  return "$rc"
}
stop_private_services() {
  local dir
  for dir in "${private_runs[@]}"; do
    scripts/chaos/services.sh "$dir" stop >/dev/null 2>&1 || true
    rm -rf "$dir"
  done
}
trap 'stop_private_services; cleanup' EXIT

# The whole suite with the queue type of TEST_QUEUE_TYPE (classic by default), then, without
# extra arguments, the tests that talk to the broker's queues once more with quorum queues,
# so both queue types are proven on every run. Quorum queues (that pass, and the tests named
# `quorum_…`) go to a private RabbitMQ node: on this machine's RabbitMQ 3.10, many quorum
# queues coming and going with their vhosts have wedged every vhost operation of the broker
# (seen three times), and a fresh node per run keeps that from reaching the shared broker and
# the runs after this one. A shared broker that does not answer moves the whole run there.
run_suite() {
  if [ $# -gt 0 ]; then
    run_tests "$@"
  elif [ "${TEST_QUEUE_TYPE:-classic}" = quorum ] || [ "${DISPATCHCTL_SKIP_SERVICES:-0}" = 1 ]; then
    run_tests
  elif cargo nextest --version >/dev/null 2>&1; then
    run_tests -E 'not test(/::quorum_/)'
  else
    run_tests # without nextest the quorum_ tests run here too
  fi
}
status=0
if [ "$private" = 1 ] || [ "${shared_broker_sick:-0}" = 1 ]; then
  with_private_services run_suite "$@" || status=$?
else
  echo "test.sh: this pass runs against the RabbitMQ at ${TEST_RABBITMQ_URL#*@} ($(rmq version 2>/dev/null || echo "version unknown"))" >&2
  run_suite "$@" || status=$?
fi
if [ $# -eq 0 ] && [ -z "${TEST_QUEUE_TYPE:-}" ]; then
  echo "test.sh: the worker, scanner, operator and broker tests again with QUEUE_TYPE=quorum" >&2
  quorum_filter='test(/^(worker|scanner|operator|broker)::/)'
  if [ "${DISPATCHCTL_SKIP_SERVICES:-0}" != 1 ]; then
    TEST_QUEUE_TYPE=quorum with_private_services run_tests -E "$quorum_filter" || status=$?
  elif cargo nextest --version >/dev/null 2>&1; then
    TEST_QUEUE_TYPE=quorum run_tests -E "$quorum_filter" || status=$?
  else
    TEST_QUEUE_TYPE=quorum cargo test --locked --no-fail-fast --test it -- \
      --test-threads "${TEST_THREADS:-8}" worker:: scanner:: operator:: broker:: || status=$?
  fi
fi
# The broker-facing tests once more on the other RabbitMQ (3.10, the machine's own, by default
# while the passes above ran on 4.0): what users still run. TEST_RABBITMQ_ALSO= skips it.
also="${TEST_RABBITMQ_ALSO-3}"
if [ $# -eq 0 ] && [ -n "$also" ] && [ "$also" != "${TEST_RABBITMQ:-4}" ] && [ "${DISPATCHCTL_SKIP_SERVICES:-0}" != 1 ] &&
  cargo nextest --version >/dev/null 2>&1; then
  echo "test.sh: the worker and broker tests again on RabbitMQ $also" >&2
  TEST_RABBITMQ="$also" with_private_services run_tests -E 'test(/^(worker|broker)::/)' || status=$?
fi
exit "$status"
