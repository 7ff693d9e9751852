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

# A fresh vhost per run, so queues that earlier runs declared do not pile up.
if [ -z "${TEST_RABBITMQ_URL:-}" ] && command -v rabbitmqctl >/dev/null 2>&1; then
  rabbitmqctl -q delete_vhost dispatchctl-test >/dev/null 2>&1 || true
  rabbitmqctl -q add_vhost dispatchctl-test >/dev/null
  rabbitmqctl -q set_permissions -p dispatchctl-test guest '.*' '.*' '.*' >/dev/null
  export TEST_RABBITMQ_URL="amqp://guest:guest@127.0.0.1:5672/dispatchctl-test"
fi
export TEST_RABBITMQ_URL="${TEST_RABBITMQ_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"

# Every test creates its own database named dtest_<id>; drop what earlier runs left.
drop_test_databases() {
  command -v psql >/dev/null 2>&1 || return 0
  psql "$TEST_DATABASE_URL/postgres" -Atqc "SELECT datname FROM pg_database WHERE datname LIKE 'dtest\_%'" 2>/dev/null |
    while read -r db; do
      psql "$TEST_DATABASE_URL/postgres" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
    done
}
drop_test_databases
trap drop_test_databases EXIT

# Most tests wait on I/O, so more run at once than there are cores.
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --no-fail-fast --test-threads "${TEST_THREADS:-8}" "$@"
else
  cargo test --locked --no-fail-fast "$@" -- --test-threads "${TEST_THREADS:-8}"
fi
