#!/usr/bin/env bash
# The whole test suite: unit tests and the integration binary against real PostgreSQL,
# RabbitMQ and Redis, in the passes that `cargo xtask test` chooses (xtask/src/test.rs says
# which, and against which services: by default instances of each pass's own, on RabbitMQ
# 4.0, then quorum queues, then RabbitMQ 3.10). Extra arguments go to the runner and make one
# pass. This script installs what a fresh machine lacks, then hands over.
set -euo pipefail
cd "$(dirname "$0")/.."

# The services' packages (and, without TEST_*_URL, the machine's own services, which the
# private instances are built from). With private instances only the packages matter; a
# shared service that will not start (another run wedged it) must not fail this run.
if [ "${DISPATCHCTL_SKIP_SERVICES:-0}" != 1 ]; then
  private=0
  [ -z "${TEST_DATABASE_URL:-}${TEST_RABBITMQ_URL:-}${TEST_REDIS_URL:-}" ] && private=1
  scripts/start-services.sh || [ "$private" = 1 ]
fi

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

exec cargo xtask test "$@"
