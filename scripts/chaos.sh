#!/usr/bin/env bash
# Fault injection: proves that nothing dispatchctl accepted is lost when its dependencies
# fail, its process dies or the provider misbehaves.
#
# Usage: scripts/chaos.sh [options] [scenario...]
#
# Scenarios (default: all, in this order), each on a fresh database and queue prefix:
#   rabbitmq   rabbitmqctl stop_app mid-load, start_app ~10 s later
#   redis      Redis down for 30 s mid-load (RATE_LIMIT_PER_SEC=1000 so Redis is in the path)
#   postgres   pg_ctl restart -m fast mid-load, then a 5 s stop/start outage
#   kill       SIGKILL `dispatchctl serve` mid-delivery, start it again
#   term       SIGTERM during load: must exit 0 within SHUTDOWN_TIMEOUT (10s); start it again
#   flap       provider answers 30% 503 and hangs 5% past PROVIDER_TIMEOUT (maxRetries 10)
#   purge      serve --api-only takes the load (all of it waits in the queues); the work
#              queues are purged; then serve with its worker and scanners starts
#   queue-delete  the work queues are deleted, messages and all, at t=8 s under a running
#              worker, which declares them again
#   disk-loss  the RabbitMQ node is stopped at t=8 s, its data directory deleted (queues,
#              messages, dead letters, definitions) and the node started again, empty
#   drop-head  a policy max-length=100 overflow=drop-head on the work queues during a 6 s
#              burst to a slow provider (300 ms), cleared 2 s after it
#   pg-failover  serve's DATABASE_DSN lists the private PostgreSQL and a streaming standby
#              of it (read-write); at t=10 s the primary stops, 2 s later the standby is
#              promoted; the old primary stays down (it serves again after the scenario)
#   redis-failover  serve and a second worker limit at 25/s per channel through a Redis
#              behind three sentinels; at t=8 s the master is SIGKILLed and the sentinels
#              promote its replica; the limit holds shared before and after, and within
#              2 × the limit during the gap (each process on its own, after the slots
#              it reserved in Redis, and for WORKER_CONCURRENCY slots past the return)
#   (every scenario runs serve with REQUEUE_LOST_AFTER=5s: the broker losing a confirmed
#   message is recovered by the scanner's lost-message rule)
#   quorum-leader  QUEUE_TYPE=quorum on a private 3-node cluster: SIGKILL the node leading
#              the queues at t=8 s, restart it 10 s later
#   quorum-node    the same cluster: `rabbitmqctl stop` the node serve's worker is
#              connected to at t=8 s, restart it 10 s later
#
# Options:
#   -n, --count N       notifications per scenario (default 2000, or CHAOS_COUNT)
#   --seed N            seed of the load mix (default 7)
#   --settle-timeout S  seconds to wait for every notification to end (default 180)
#   --no-build          do not run cargo build; use DISPATCHCTL_BIN or the existing binary
#   --keep              keep the private services' data directories after the run
#   --classic-only      skip the quorum-* scenarios (and the cluster: ~1.5 min less)
#   -h, --help          show this help
#
# What it does: builds the release binary (cargo build --release --locked), makes a venv
# with pika in target/chaos-venv, then starts PRIVATE PostgreSQL (initdb/pg_ctl), Redis
# and RabbitMQ instances on free ports of 127.0.0.1 inside target/chaos/run-*/ (the
# shared services on 5432/5672/6379 are never touched), a provider sink, and
# `dispatchctl serve`. Load: 2000 notifications per scenario over ~25 s (45 s for redis)
# through POST /v1/notifications and /v1/notifications/batch with idempotency keys,
# retried until answered 202; mixed SMS/EMAIL/PUSH and HIGH/NORMAL/LOW; ~10% `reject…`
# recipients (provider 400), ~10% `flaky2…` (500 twice, then 200); ~2% scheduled 3 s ahead
# and ~3% scheduled 5 s ahead and canceled at once.
#
# The quorum-* scenarios run on a private three-node RabbitMQ cluster that
# scripts/rabbitmq-cluster.sh starts in target/chaos/run-*/cluster/ (own node names, ports
# and epmd) with QUEUE_TYPE=quorum and RABBITMQ_URL listing the three nodes. Their queues
# are declared through node 2 (so node 2 leads them) and serve connects to node 1: the
# leader fault hits the queues and not serve's connections, the node fault serve's
# connections and not the queues' leader (CHAOS_CLUSTER_LEADER_NODE=1 declares them
# through node 1 instead: each fault then hits both). CHAOS_CLUSTER_QUEUE_TYPE=classic and
# CHAOS_CLUSTER_URLS=first (only node 1's URL) dry-run that plumbing with a binary that
# has neither quorum queues nor failover.
#
# After each scenario it waits until no notification is ACCEPTED, QUEUED or SENDING and
# checks: every id answered 202 exists and is SENT, FAILED with a dead letter in
# <prefix>dlq.<channel>, or CANCELED; none missing or stuck; transient-only recipients end
# SENT; duplicates (several provider 200s for one id) are explained by an attempt the
# engine never recorded (at-least-once); no panic, no crash. One line per scenario:
#   scenario=NAME accepted=N sent=N failed=N canceled=N dead_lettered=N missing=N stuck=N
#   duplicates=N settle_s=X result=PASS|FAIL
# preceded by `note:` and `FAIL:` detail lines. Logs, sink records and a report.json per
# scenario stay in target/chaos/run-*/scenarios/.
#
# Exit status: 0 when every scenario passed, 1 when one failed, 2 on a usage or set-up
# error. Needs: cargo, python3.11 (or python3 >= 3.10), initdb/pg_ctl, psql,
# redis-server, rabbitmq-server, runuser (when run as root). About 4 minutes for the six
# single-broker scenarios on 2 cores, about 1.5 more for the cluster and the two quorum-*
# scenarios, plus the build.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly ROOT
ALL_SCENARIOS=(rabbitmq redis postgres kill term flap purge queue-delete disk-loss drop-head quorum-leader quorum-node pg-failover redis-failover)
CLASSIC_SCENARIOS=(rabbitmq redis postgres kill term flap purge queue-delete disk-loss drop-head pg-failover redis-failover)

usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; }
die() { printf 'chaos: error: %s\n' "$*" >&2; exit 2; }

COUNT="${CHAOS_COUNT:-2000}"
SEED=7
SETTLE=180
BUILD=1
KEEP=0
CLASSIC_ONLY=0
SCENARIOS=()
while (($#)); do
    case "$1" in
        -h | --help) usage; exit 0 ;;
        -n | --count) COUNT="${2:?--count needs a number}"; shift ;;
        --seed) SEED="${2:?--seed needs a number}"; shift ;;
        --settle-timeout) SETTLE="${2:?--settle-timeout needs seconds}"; shift ;;
        --no-build) BUILD=0 ;;
        --keep) KEEP=1 ;;
        --classic-only) CLASSIC_ONLY=1 ;;
        -*) die "unknown option $1 (try --help)" ;;
        *)
            [[ " ${ALL_SCENARIOS[*]} " == *" $1 "* ]] || die "unknown scenario '$1'; one of: ${ALL_SCENARIOS[*]}"
            SCENARIOS+=("$1")
            ;;
    esac
    shift
done
if ((${#SCENARIOS[@]} == 0)); then
    if ((CLASSIC_ONLY)); then SCENARIOS=("${CLASSIC_SCENARIOS[@]}"); else SCENARIOS=("${ALL_SCENARIOS[@]}"); fi
elif ((CLASSIC_ONLY)); then
    die "--classic-only and a list of scenarios: give one or the other"
fi
NEED_CLUSTER=0
[[ " ${SCENARIOS[*]} " == *" quorum-"* ]] && NEED_CLUSTER=1
CLUSTER_QUEUE_TYPE="${CHAOS_CLUSTER_QUEUE_TYPE:-quorum}"
CLUSTER_URLS="${CHAOS_CLUSTER_URLS:-all}"
CLUSTER_LEADER_NODE="${CHAOS_CLUSTER_LEADER_NODE:-2}"
[[ "$CLUSTER_LEADER_NODE" =~ ^[123]$ ]] || die "CHAOS_CLUSTER_LEADER_NODE must be 1, 2 or 3"
[[ "$CLUSTER_QUEUE_TYPE" == quorum || "$CLUSTER_QUEUE_TYPE" == classic ]] \
    || die "CHAOS_CLUSTER_QUEUE_TYPE must be quorum or classic"
[[ "$CLUSTER_URLS" == all || "$CLUSTER_URLS" == first ]] || die "CHAOS_CLUSTER_URLS must be all or first"
[[ "$COUNT" =~ ^[0-9]+$ && "$COUNT" -gt 0 ]] || die "--count must be a positive number"

log() { printf 'chaos: [%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# ---- prerequisites ----------------------------------------------------------------------
for tool in psql redis-server redis-cli epmd; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found"
done
[[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]] || command -v rabbitmq-server >/dev/null 2>&1 \
    || die "rabbitmq-server not found"
if [[ "$(id -u)" -eq 0 ]]; then
    command -v runuser >/dev/null 2>&1 || die "runuser not found (PostgreSQL cannot run as root)"
    id postgres >/dev/null 2>&1 || die "no postgres user to run the private PostgreSQL as"
fi
PYTHON=""
for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 \
        && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
        PYTHON="$candidate"
        break
    fi
done
[[ -n "$PYTHON" ]] || die "python3.11 (or python3 >= 3.10) not found"

# ---- binary -----------------------------------------------------------------------------
BIN="${DISPATCHCTL_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/dispatchctl}"
if ((BUILD)); then
    log "cargo build --release --locked"
    (cd "$ROOT" && cargo build --release --locked) || die "release build failed"
fi
[[ -x "$BIN" ]] || die "no binary at $BIN (build it or set DISPATCHCTL_BIN)"

# ---- venv with pika ---------------------------------------------------------------------
VENV="$ROOT/target/chaos-venv"
if ! "$VENV/bin/python" -c 'import pika' >/dev/null 2>&1; then
    log "creating $VENV (pika from PyPI)"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV" || die "cannot create a venv with $PYTHON"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$ROOT/scripts/chaos/requirements.txt" \
        || die "cannot install scripts/chaos/requirements.txt into $VENV"
fi

# ---- run directory and cleanup ----------------------------------------------------------
RUN="$ROOT/target/chaos/run-$(date +%Y%m%d-%H%M%S)-$$"
mkdir -p "$RUN/pids" "$RUN/bin"
# A copy, so that a rebuild during the run cannot swap the binary between restarts.
cp "$BIN" "$RUN/bin/dispatchctl"
# shellcheck source=scripts/chaos/services.sh
. "$ROOT/scripts/chaos/services.sh"

RUNNER_PID=""
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
    local rc=$? f pid
    trap - EXIT INT TERM
    if [[ -n "$RUNNER_PID" ]] && kill -0 "$RUNNER_PID" 2>/dev/null; then
        kill -TERM "$RUNNER_PID" 2>/dev/null || true
        wait "$RUNNER_PID" 2>/dev/null || true
    fi
    # Processes the runner started and did not reap (it records their pids).
    for f in "$RUN"/pids/*.pid; do
        [[ -f "$f" ]] || continue
        pid="$(cat "$f")"
        if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            sleep 1
            kill -KILL "$pid" 2>/dev/null || true
        fi
        rm -f "$f"
    done
    log "stopping the private services"
    if [[ -f "$RUN/cluster/cluster.env" ]]; then
        bash "$ROOT/scripts/rabbitmq-cluster.sh" stop "$RUN/cluster" || true
    fi
    chaos_services_stop "$RUN" || true
    if ((KEEP == 0)); then
        rm -rf "${RUN:?}/pg/data" "${RUN:?}/rabbit/mnesia" "${RUN:?}/bin" "${RUN:?}"/cluster/node*/mnesia
    fi
    log "logs and reports: ${RUN#"$ROOT"/}"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "run directory ${RUN#"$ROOT"/}; scenarios: ${SCENARIOS[*]}; $COUNT notifications each"
COMMIT="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git -C "$ROOT" status --porcelain -- src Cargo.toml Cargo.lock migrations 2>/dev/null)" ]]; then
    COMMIT="$COMMIT+dirty"
fi
printf 'date=%s commit=%s cores=%s count=%s scenarios=%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    "$COMMIT" "$(nproc)" "$COUNT" "${SCENARIOS[*]}" | tee "$RUN/results.txt"

chaos_services_start "$RUN" || die "private services did not start; see ${RUN#"$ROOT"/}"
CLUSTER_ARGS=()
if ((NEED_CLUSTER)); then
    mkdir -p "$RUN/cluster"
    log "starting a private 3-node RabbitMQ cluster (scripts/rabbitmq-cluster.sh)"
    bash "$ROOT/scripts/rabbitmq-cluster.sh" start "$RUN/cluster" \
        || die "the private RabbitMQ cluster did not start; see ${RUN#"$ROOT"/}/cluster"
    CLUSTER_ARGS=(--cluster "$RUN/cluster" --cluster-queue-type "$CLUSTER_QUEUE_TYPE" --cluster-urls "$CLUSTER_URLS"
        --cluster-leader-node "$CLUSTER_LEADER_NODE")
fi

set +e
"$VENV/bin/python" "$ROOT/scripts/chaos/run.py" --run "$RUN" --bin "$RUN/bin/dispatchctl" \
    --count "$COUNT" --seed "$SEED" --settle-timeout "$SETTLE" "${CLUSTER_ARGS[@]}" "${SCENARIOS[@]}" &
RUNNER_PID=$!
wait "$RUNNER_PID"
status=$?
RUNNER_PID=""
set -e
exit "$status"
