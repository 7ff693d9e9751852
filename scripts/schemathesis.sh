#!/usr/bin/env bash
# Contract fuzzing of `dispatchctl serve` with schemathesis (issue 7; see docs/SECURITY.md).
#
# Builds the release binary, starts `serve --api-only` on a free loopback port against the
# local PostgreSQL, RabbitMQ and Redis with an isolated database, queue prefix and Redis
# key prefix, runs schemathesis against the HTTP contract, then stops the server and removes
# what the run created (database, queues, exchange, keys). Exits with schemathesis's status.
#
# Usage: scripts/schemathesis.sh [extra schemathesis arguments...]
# Environment:
#   SCHEMATHESIS_MAX_EXAMPLES  test cases per operation and phase (default 300)
#   SCHEMATHESIS_SEED          hypothesis seed (default 7; "random" for a fresh one)
#   SCHEMATHESIS_WORKERS       concurrent workers (default 1; 2 hit a race inside hypothesis 6.170)
#   SCHEMATHESIS_TIMEOUT       hard limit of the schemathesis run in seconds (default 900)
#   SCHEMATHESIS_SPEC          contract location (default ../shared/contract/openapi.yaml)
#   SCHEMATHESIS_SKIP_BUILD=1  reuse the release binary as it is
#   SCHEMATHESIS_BIN           run this binary instead (no build), e.g. a debug build
#   SCHEMATHESIS_BASELINE      accepted failures (default scripts/schemathesis-baseline.json,
#                              "none" to report every failure); see docs/SECURITY.md
# Needs: python3 (venv), cargo, psql, redis-cli, and the services on 127.0.0.1 (see
# scripts/start-services.sh).
set -euo pipefail

cd "$(dirname "$0")/.."
readonly ROOT="$PWD"
readonly SCHEMATHESIS_VERSION="4.32.5"
readonly PIKA_VERSION="1.3.2"
readonly VENV="$ROOT/target/schemathesis-venv"
spec="$(realpath -m "${SCHEMATHESIS_SPEC:-$ROOT/../shared/contract/openapi.yaml}")"
readonly SPEC="$spec"
readonly MAX_EXAMPLES="${SCHEMATHESIS_MAX_EXAMPLES:-300}"
readonly SEED="${SCHEMATHESIS_SEED:-7}"
readonly WORKERS="${SCHEMATHESIS_WORKERS:-1}"
readonly RUN_TIMEOUT="${SCHEMATHESIS_TIMEOUT:-900}"
# cargo puts the binary under CARGO_TARGET_DIR when that is set (a shared target dir).
# Absolute, since the server starts from its run directory.
bin="$(realpath -m "${SCHEMATHESIS_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/dispatchctl}")"
readonly BIN="$bin"
baseline="${SCHEMATHESIS_BASELINE:-$ROOT/scripts/schemathesis-baseline.json}"
[[ "$baseline" == none ]] || baseline="$(realpath -m "$baseline")"
readonly BASELINE="$baseline"
readonly CHECKS="not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance"

log() { printf 'schemathesis.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 2; }

[[ -f "$SPEC" ]] || die "contract not found at $SPEC"
for tool in python3 psql redis-cli; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is required"
done

# ---- tools ------------------------------------------------------------------------------
if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating $VENV"
    python3 -m venv "$VENV"
fi
if [[ "$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null)" != "$SCHEMATHESIS_VERSION" ]] \
    || ! "$VENV/bin/python" -c 'import pika' 2>/dev/null; then
    log "installing schemathesis==$SCHEMATHESIS_VERSION pika==$PIKA_VERSION"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
        "schemathesis==$SCHEMATHESIS_VERSION" "pika==$PIKA_VERSION"
fi

if [[ "${SCHEMATHESIS_SKIP_BUILD:-0}" != 1 && -z "${SCHEMATHESIS_BIN:-}" ]]; then
    log "cargo build --release --locked"
    cargo build --release --locked
fi
[[ -x "$BIN" ]] || die "$BIN is missing (build it, or unset SCHEMATHESIS_SKIP_BUILD / SCHEMATHESIS_BIN)"

# ---- isolated environment -------------------------------------------------------------
suffix="$(od -An -N5 -tx1 /dev/urandom | tr -d ' \n')"
readonly SUFFIX="$suffix"
readonly DB="schemathesis_$SUFFIX"
readonly QUEUE_PREFIX="st$SUFFIX."
readonly REDIS_KEY_PREFIX="st$SUFFIX:"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
readonly RUN_DIR="$ROOT/target/schemathesis/run-$stamp-$SUFFIX"
mkdir -p "$RUN_DIR"
port="$("$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
readonly PORT="$port"
readonly BASE_URL="http://127.0.0.1:$PORT"

server_pid=""
# Called by the EXIT trap.
# shellcheck disable=SC2317
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        log "stopping the server (pid $server_pid)"
        kill -TERM "$server_pid" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    log "dropping database $DB, queues $QUEUE_PREFIX*, keys $REDIS_KEY_PREFIX*"
    psql -h 127.0.0.1 -p 5432 -U postgres -d postgres -qAtc "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >/dev/null 2>&1 \
        || log "warning: could not drop database $DB"
    redis-cli -h 127.0.0.1 -p 6379 --scan --pattern "${REDIS_KEY_PREFIX}*" 2>/dev/null \
        | xargs -r -n 100 redis-cli -h 127.0.0.1 -p 6379 DEL >/dev/null 2>&1 || true
    "$VENV/bin/python" - "$QUEUE_PREFIX" <<'PY' 2>/dev/null || log "warning: could not delete the run's queues"
import sys
import pika
prefix = sys.argv[1]
conn = pika.BlockingConnection(pika.URLParameters("amqp://guest:guest@127.0.0.1:5672/%2f"))
ch = conn.channel()
for channel in ("sms", "email", "push"):
    ch.queue_delete(queue=f"{prefix}{channel}")
    ch.queue_delete(queue=f"{prefix}dlq.{channel}")
ch.exchange_delete(exchange=f"{prefix}dispatch.dlx")
conn.close()
PY
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

psql -h 127.0.0.1 -p 5432 -U postgres -d postgres -qAtc "CREATE DATABASE \"$DB\"" >/dev/null

# ---- server -----------------------------------------------------------------------------
# Started from the run directory so no .env of the work tree is read; settings that would
# change the contract's behaviour (tokens, CORS) are removed from the environment.
log "starting dispatchctl serve --api-only on $BASE_URL (log: $RUN_DIR/server.log)"
(
    cd "$RUN_DIR"
    exec env -u API_TOKENS -u API_TOKENS_FILE -u CORS_ALLOWED_ORIGINS -u WEBHOOK_SITE_URL \
        DATABASE_DSN="postgres://postgres@127.0.0.1:5432/$DB" \
        RABBITMQ_URL="amqp://guest:guest@127.0.0.1:5672/%2f" \
        REDIS_URL="redis://127.0.0.1:6379/0" \
        QUEUE_PREFIX="$QUEUE_PREFIX" \
        REDIS_KEY_PREFIX="$REDIS_KEY_PREFIX" \
        LOG_FORMAT=json LOG_LEVEL=info \
        "$BIN" serve --api-only --port "$PORT" --host 127.0.0.1
) >"$RUN_DIR/server.log" 2>&1 &
server_pid=$!

ready=0
for _ in $(seq 1 300); do
    if ! kill -0 "$server_pid" 2>/dev/null; then
        tail -n 30 "$RUN_DIR/server.log" >&2
        die "the server exited during start-up"
    fi
    if "$VENV/bin/python" -c "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('$BASE_URL/readyz', timeout=2).status == 200 else 1)" 2>/dev/null; then
        ready=1
        break
    fi
    sleep 0.2
done
[[ "$ready" == 1 ]] || { tail -n 30 "$RUN_DIR/server.log" >&2; die "the server was not ready within 60 s"; }

# ---- schemathesis -----------------------------------------------------------------------
seed_args=()
[[ "$SEED" == random ]] || seed_args=(--seed "$SEED")
baseline_args=()
[[ "$BASELINE" == none ]] || baseline_args=(--baseline "$BASELINE")
log "schemathesis $SCHEMATHESIS_VERSION: max-examples=$MAX_EXAMPLES workers=$WORKERS seed=$SEED (report: $RUN_DIR)"
started=$SECONDS
set +e
# Run from the run directory: schemathesis keeps its replay cache in ./.schemathesis.
cd "$RUN_DIR"
timeout --signal=INT --kill-after=30 "$RUN_TIMEOUT" \
    "$VENV/bin/schemathesis" run "$SPEC" \
    --url "$BASE_URL" \
    --checks "$CHECKS" \
    --max-examples "$MAX_EXAMPLES" \
    --workers "$WORKERS" \
    "${seed_args[@]}" \
    "${baseline_args[@]}" \
    --generation-database none \
    --request-timeout 10 \
    --report junit \
    --report-dir "$RUN_DIR" \
    --no-color \
    --output-sanitize false \
    "$@" 2>&1 | tee "$RUN_DIR/schemathesis.log"
status=${PIPESTATUS[0]}
set -e
cd "$ROOT"
log "schemathesis exited with $status after $((SECONDS - started)) s"

if grep -q '"panicked\|panicked at' "$RUN_DIR/server.log"; then
    log "warning: the server log records a panic:"
    grep -m 5 'panicked' "$RUN_DIR/server.log" >&2 || true
fi
exit "$status"
