#!/usr/bin/env bash
# Benchmark of dispatchctl against the local PostgreSQL, RabbitMQ and Redis (issue 8).
#
#   scripts/bench.sh                 # the full default run (target: < 20 min on 2 cores)
#   BENCH_QUICK=1 scripts/bench.sh   # small sizes, for development (~4 min)
#   BENCH_SECTIONS="sink floor" scripts/bench.sh
#
# Builds release, then measures: 1 the sink's own ceiling, 2 the floor (PostgreSQL alone with
# pgbench running the real per-notification statements; RabbitMQ alone with confirms and
# acks), 3 throughput with single and batch creates, 4 create and create→delivery latency at
# fixed rates, 5 the drain rate of 1 and 2 worker processes, 6 CPU per 1,000 notifications
# and memory (peak, and a soak at a steady rate). Every figure is printed next to the command
# that produced it, as median and min–max over the repetitions, on stdout and in
# target/bench/results.md; raw JSON and logs stay in target/bench/run-<time>/.
#
# Isolation: database bench_<random> (dropped at the end), QUEUE_PREFIX=bench<random>.
# (queues deleted at the end), REDIS_KEY_PREFIX=bench<random>: (keys deleted), all on 127.0.0.1.
# The services themselves are never started, stopped or reconfigured here.
#
# Settings (environment), defaults in brackets, BENCH_QUICK=1 values after the slash:
#   BENCH_REPS [3/2]              repetitions of the fast runs: sink, floor, create→delivery at
#                                 rates up to BENCH_CREATE_RATE
#   BENCH_SLOW_REPS [1/1]         repetitions of the slow runs: throughput, drain, and
#                                 create→delivery above BENCH_CREATE_RATE (they leave a backlog);
#                                 1 by default so that the default run fits in 20 minutes with
#                                 the 10-minute soak (the report says so)
#   BENCH_N [50000/2000]          notifications per throughput run (and per sink run)
#   BENCH_RUN_CAP_SECONDS [25]    a throughput run sends for at most this long (0 = always send N)
#   BENCH_DELIVERY_WINDOW_SECONDS [30]  deliveries of a throughput run are counted until the
#                                 sink has every accepted notification or for this long after
#                                 the first request, whichever comes first (0 = until all)
#   BENCH_DRAIN_N [100000/2000]   notifications queued before each drain run
#   BENCH_DRAIN_WINDOW_SECONDS [20]  the drain rate is measured until the queue is empty or for
#                                 this long, whichever comes first (0 = until empty)
#   BENCH_AMQP_N [20000/2000]     messages per RabbitMQ floor run
#   BENCH_CONCURRENCY [64]        load generator concurrency (throughput, sink)
#   BENCH_BATCH_SIZE [100]        items per batch create
#   BENCH_PG_CLIENTS [64]         pgbench clients
#   BENCH_PG_SECONDS [5/4]        pgbench duration per run
#   BENCH_PG_BATCH [16]           notifications per statement in the set-based floor (2c)
#   BENCH_LATENCY_SECONDS [10/5]  duration of each create→delivery run, and of each window
#                                 over which the soak reports create latency
#   BENCH_CREATE_RATE [500]       req/s of the create-latency runs; when it equals
#                                 BENCH_SOAK_RATE and the soak runs, create latency is read from
#                                 the soak (per window of BENCH_LATENCY_SECONDS) instead
#   BENCH_E2E_RATES ["200 1000"]  req/s of the create→delivery runs
#   BENCH_ONE_CLIENT_N [3000/500] sequential creates of the one-client run (latency section;
#                                 0 skips it): what one client waits for a 202, and for delivery
#   BENCH_SOAK_SECONDS [600/40]   soak duration; BENCH_SOAK_RATE [500]; BENCH_SOAK_EARLY [60/10]
#   BENCH_STALL_SECONDS [45]      give up waiting for deliveries after this long without progress
#   BENCH_SECTIONS ["sink floor throughput latency drain soak"]; "prune" (section 7, retention)
#                                 runs only when named, as it writes a million rows first
#   BENCH_PRUNE_ROWS [1000000/100000]  old SENT notifications (one attempt each) prune deletes
#   BENCH_PRUNE_RATE [200]        req/s of the create-latency runs without and with prune
#                                 (PRUNE_MAX_RATE, when set, paces the first prune run)
#   BENCH_PRUNE_SECONDS [30/10]   duration of each of those two runs
#   BENCH_PERF [0]                1: perf record -e cpu-clock -a -g during the first
#                                 single-create run; top symbols per process in the report
#   BENCH_PG_WAITS [0]            1: sample pg_stat_activity (state, wait event) of the bench
#                                 database every 0.1 s during the first single-create run
#   BENCH_SKIP_BUILD [0]          1: use the binaries already in target/release
#   BENCH_BIN                     the dispatchctl binary to measure (default: the one just
#                                 built), e.g. an older build for a before/after comparison
#   BENCH_PG_BASE [postgres://postgres@127.0.0.1:5432]; BENCH_DSN_PARAMS [""], e.g.
#                                 "?sslmode=disable" (appended to the bench DSN, pgbench too)
#   BENCH_REV                     what to print as the build's revision (default: git)
# Passed through unchanged when set: WORKER_CONCURRENCY, DATABASE_MAX_CONNECTIONS, and any
# other dispatchctl setting not listed under Isolation.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

QUICK=${BENCH_QUICK:-0}
q() { if [[ $QUICK == 1 ]]; then echo "$2"; else echo "$1"; fi; }
REPS=${BENCH_REPS:-$(q 3 2)}
SLOW_REPS=${BENCH_SLOW_REPS:-1}
N=${BENCH_N:-$(q 50000 2000)}
RUN_CAP=${BENCH_RUN_CAP_SECONDS:-25}
DELIVERY_WINDOW=${BENCH_DELIVERY_WINDOW_SECONDS:-30}
DRAIN_N=${BENCH_DRAIN_N:-$(q 100000 2000)}
DRAIN_WINDOW=${BENCH_DRAIN_WINDOW_SECONDS:-20}
AMQP_N=${BENCH_AMQP_N:-$(q 20000 2000)}
CONC=${BENCH_CONCURRENCY:-64}
BATCH=${BENCH_BATCH_SIZE:-100}
PG_CLIENTS=${BENCH_PG_CLIENTS:-64}
PG_SECONDS=${BENCH_PG_SECONDS:-$(q 5 4)}
PG_BATCH=${BENCH_PG_BATCH:-16}
LAT_SECONDS=${BENCH_LATENCY_SECONDS:-$(q 10 5)}
CREATE_RATE=${BENCH_CREATE_RATE:-500}
E2E_RATES=${BENCH_E2E_RATES:-"200 1000"}
ONE_CLIENT_N=${BENCH_ONE_CLIENT_N:-$( ((QUICK)) && echo 500 || echo 3000)}
SOAK_SECONDS=${BENCH_SOAK_SECONDS:-$(q 600 40)}
SOAK_RATE=${BENCH_SOAK_RATE:-500}
SOAK_EARLY=${BENCH_SOAK_EARLY:-$(q 60 10)}
STALL=${BENCH_STALL_SECONDS:-45}
SECTIONS=" ${BENCH_SECTIONS:-sink floor throughput latency drain soak} "
PERF=${BENCH_PERF:-0}
PG_WAITS=${BENCH_PG_WAITS:-0}

PRUNE_ROWS=${BENCH_PRUNE_ROWS:-$(q 1000000 100000)}
PRUNE_RATE=${BENCH_PRUNE_RATE:-200}
PRUNE_SECONDS=${BENCH_PRUNE_SECONDS:-$(q 30 10)}

# cargo builds into CARGO_TARGET_DIR when it is set; the binaries must be read from there.
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${BENCH_BIN:-$TARGET/release/dispatchctl}
EX=$TARGET/release/examples
STAMP=$(date +%Y%m%d-%H%M%S)
OUT=$ROOT/target/bench
RUN=$OUT/run-$STAMP
mkdir -p "$RUN"
VALUES=$RUN/values.tsv
NOTES=$RUN/notes.txt
: >"$VALUES"
: >"$NOTES"

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
note() { printf '%s\n' "$*" >>"$NOTES"; log "NOTE: $*"; }
die() { log "error: $*"; exit 1; }
now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.6f\", $* }"; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }
has() { [[ $SECTIONS == *" $1 "* ]]; }

fmt() { # value unit
  case $2 in
    /s) awk -v v="$1" 'BEGIN { printf (v >= 100 ? "%.0f" : "%.1f"), v }' ;;
    ms) awk -v v="$1" 'BEGIN { printf (v >= 100 ? "%.0f" : (v >= 10 ? "%.1f" : "%.2f")), v }' ;;
    s) awk -v v="$1" 'BEGIN { printf "%.3f", v }' ;;
    %) awk -v v="$1" 'BEGIN { printf "%.0f", v }' ;;
    commits | rows | records) awk -v v="$1" 'BEGIN { printf "%.2f", v }' ;;
    bytes) awk -v v="$1" 'BEGIN { printf "%.0f", v }' ;;
    *) awk -v v="$1" 'BEGIN { printf "%.1f", v }' ;;
  esac
}
# record LABEL VALUE UNIT COMMAND: one measured figure of one repetition.
record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$VALUES"; }

need() {
  local cmd=$1 pkg=$2
  command -v "$cmd" >/dev/null 2>&1 && return 0
  log "$cmd missing; installing Debian package $pkg"
  if [[ $(id -u) -eq 0 ]]; then apt-get install -y -q "$pkg" >/dev/null; else sudo -n apt-get install -y -q "$pkg" >/dev/null; fi
}

# ---- machine -----------------------------------------------------------------------------
CORES=$(nproc)
load1() { cut -d' ' -f1 /proc/loadavg; }
UPTIME_START=$(uptime)
log "uptime: $UPTIME_START"
log "nproc: $CORES"
# Other work on the machine, sampled for 1 s between sections, when the benchmark itself is
# idle. (The load average cannot tell: it counts the benchmark's own processes, and it
# decays over minutes, so it still shows the previous section.)
BUSY_SAMPLES=()
BUSY=0
cpu_busy_pct() {
  local a b
  a=($(head -n1 /proc/stat))
  sleep 1
  b=($(head -n1 /proc/stat))
  awk -v u1="${a[1]}" -v n1="${a[2]}" -v s1="${a[3]}" -v i1="${a[4]}" -v w1="${a[5]}" -v q1="${a[6]}" -v sq1="${a[7]}" -v st1="${a[8]}" \
      -v u2="${b[1]}" -v n2="${b[2]}" -v s2="${b[3]}" -v i2="${b[4]}" -v w2="${b[5]}" -v q2="${b[6]}" -v sq2="${b[7]}" -v st2="${b[8]}" \
    'BEGIN { busy = (u2 - u1) + (n2 - n1) + (s2 - s1) + (q2 - q1) + (sq2 - sq1) + (st2 - st1); idle = (i2 - i1) + (w2 - w1);
             printf "%.0f", (busy + idle > 0 ? 100 * busy / (busy + idle) : 0) }'
}
busy_check() {
  local where=$1 pct
  pct=$(cpu_busy_pct)
  BUSY_SAMPLES+=("$where ${pct}%")
  if ((pct > 25)); then
    BUSY=1
    log "WARNING: CPU ${pct}% busy at $where while the benchmark was idle: other work is running"
  fi
}

need jq jq
need curl curl
need psql postgresql-client-15
if ! command -v pgbench >/dev/null 2>&1; then
  if [[ -x /usr/lib/postgresql/15/bin/pgbench ]]; then
    PGBENCH=/usr/lib/postgresql/15/bin/pgbench
  else
    need pgbench postgresql-client-15
    PGBENCH=$(command -v pgbench)
  fi
else
  PGBENCH=$(command -v pgbench)
fi
command -v rabbitmqctl >/dev/null 2>&1 || log "rabbitmqctl not found: bench queues will be left on the broker"

# ---- build -------------------------------------------------------------------------------
BUILD_T0=$(date +%s)
if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
  log "building: cargo build --release --locked --bins --examples"
  cargo build --release --locked --bins --examples 2>&1 | tail -n 3 >&2 || die "the release build failed"
fi
BUILD_SECONDS=$(($(date +%s) - BUILD_T0))
STARTED=$(date +%s)
busy_check "start"
for b in "$BIN" "$EX/sink" "$EX/loadgen" "$EX/amqp_floor"; do
  [[ -x $b ]] || die "$b is missing; run without BENCH_SKIP_BUILD"
done
# Run copies, so that a rebuild by someone else during the run cannot swap binaries under it.
mkdir -p "$RUN/bin"
cp "$BIN" "$RUN/bin/dispatchctl"
cp "$EX/sink" "$EX/loadgen" "$EX/amqp_floor" "$RUN/bin/"
BIN=$RUN/bin/dispatchctl
EX=$RUN/bin
if [[ -n ${BENCH_REV:-} ]]; then
  GIT_REV=$BENCH_REV
elif [[ -n ${BENCH_BIN:-} ]]; then
  GIT_REV="binary $BENCH_BIN"
elif git rev-parse --git-dir >/dev/null 2>&1; then
  GIT_REV="$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src migrations Cargo.toml Cargo.lock || echo ' with uncommitted changes in src/')"
else
  GIT_REV=unknown
fi

# ---- isolation ---------------------------------------------------------------------------
TAG=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
DB=bench_$TAG
PG_BASE=${BENCH_PG_BASE:-postgres://postgres@127.0.0.1:5432}
PG_ADMIN=$PG_BASE/postgres
export DATABASE_DSN=$PG_BASE/$DB${BENCH_DSN_PARAMS:-}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
export QUEUE_PREFIX=bench$TAG.
export REDIS_KEY_PREFIX=bench$TAG:
export RATE_LIMIT_PER_SEC=0
export LOG_LEVEL=warn
export LOG_FORMAT=text
export API_HOST=127.0.0.1
unset RATE_LIMIT_SMS_PER_SEC RATE_LIMIT_EMAIL_PER_SEC RATE_LIMIT_PUSH_PER_SEC API_TOKENS API_TOKENS_FILE

PIDS=()
VHOST=
cleanup() {
  local rc=$?
  set +e
  # Only processes this script started and that are still its children (no PID reuse).
  local mine=()
  for p in "${PIDS[@]}"; do
    [[ $(ps -o ppid= -p "$p" 2>/dev/null | tr -d ' ') == "$$" ]] && mine+=("$p")
  done
  for p in "${mine[@]}"; do kill -TERM "$p" 2>/dev/null; done
  ((${#mine[@]} == 0)) || sleep 1
  for p in "${mine[@]}"; do kill -KILL "$p" 2>/dev/null; done
  psql "$PG_ADMIN" -qAtc "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >/dev/null 2>&1 &&
    log "dropped database $DB"
  if [[ -n $VHOST ]]; then
    local n
    n=$(rabbitmqctl -q list_queues -p "$VHOST" --no-table-headers name </dev/null 2>/dev/null | grep -c "^$QUEUE_PREFIX")
    rabbitmqctl -q delete_vhost "$VHOST" </dev/null >/dev/null 2>&1 &&
      log "deleted vhost $VHOST with its $n queues named $QUEUE_PREFIX* and the dead-letter exchange"
  fi
  if command -v redis-cli >/dev/null 2>&1; then
    redis-cli -u "$REDIS_URL" --scan --pattern "$REDIS_KEY_PREFIX*" 2>/dev/null | xargs -r redis-cli -u "$REDIS_URL" del >/dev/null 2>&1
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

RABBIT_BASE=${BENCH_RABBITMQ_BASE:-amqp://guest:guest@127.0.0.1:5672}
if command -v rabbitmqctl >/dev/null 2>&1; then
  # A vhost of its own as well as the prefix, so that deleting it removes every queue and the
  # dead-letter exchange (rabbitmqctl cannot delete an exchange).
  VHOST=bench$TAG
  rabbitmqctl -q add_vhost "$VHOST" </dev/null >/dev/null
  rabbitmqctl -q set_permissions -p "$VHOST" guest '.*' '.*' '.*' </dev/null >/dev/null
  export RABBITMQ_URL=$RABBIT_BASE/$VHOST
else
  export RABBITMQ_URL=$RABBIT_BASE/%2f
fi

log "database $DB, queue prefix $QUEUE_PREFIX, Redis prefix $REDIS_KEY_PREFIX, raw output $RUN"
# The server's settings that change what the figures mean; the script never changes them.
PG_SETTINGS=$(psql "$PG_ADMIN" -qAtXc "SELECT string_agg(name || '=' || current_setting(name), ', ' ORDER BY name) FROM pg_settings
  WHERE name IN ('autovacuum', 'fsync', 'synchronous_commit', 'ssl', 'shared_buffers', 'max_connections')")
[[ $PG_SETTINGS == *autovacuum=on* ]] ||
  note "PostgreSQL runs with autovacuum=off: dead row versions stay in the tables and indexes for the whole run, so long runs (the soak) slow down as the table grows"
"$BIN" migrate >"$RUN/migrate.log" 2>&1 || { cat "$RUN/migrate.log" >&2; die "migrate failed"; }
psqlb() { psql "$DATABASE_DSN" -qAtX "$@"; }
reset_db() { psqlb -c "TRUNCATE notification_attempts, notifications, batches" >/dev/null; }

free_port() {
  local p
  while :; do
    # Below the kernel's ephemeral range (32768+ by default), so outgoing connections do not
    # take it between this check and the bind.
    p=$((20000 + RANDOM % 12000))
    [[ -z $(ss -Htln "sport = :$p" 2>/dev/null) ]] && { echo "$p"; return; }
  done
}

# ---- processes and /proc accounting ------------------------------------------------------
TCK=$(getconf CLK_TCK)
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
status_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
RABBIT_PID=$(pgrep -u rabbitmq -x beam.smp | head -n1 || true)
[[ -n $RABBIT_PID ]] || note "no beam.smp owned by user rabbitmq found: RabbitMQ CPU not measured"
pg_pids() { psql "$PG_ADMIN" -qAtXc "SELECT pid FROM pg_stat_activity WHERE datname = '$DB'" 2>/dev/null; }
APP_PIDS=()
# snapshot FILE: "group pid ticks" lines for dispatchctl, PostgreSQL backends of the bench
# database, RabbitMQ and the sink.
snapshot() {
  {
    local p
    for p in "${APP_PIDS[@]}"; do echo "app $p $(ticks "$p")"; done
    for p in $(pg_pids); do echo "pg $p $(ticks "$p")"; done
    [[ -n $RABBIT_PID ]] && echo "rabbit $RABBIT_PID $(ticks "$RABBIT_PID")"
    echo "sink $SINK_PID $(ticks "$SINK_PID")"
  } >"$1"
}
# cpu_seconds BEFORE AFTER GROUP: CPU seconds the group used between two snapshots.
cpu_seconds() {
  awk -v g="$3" -v tck="$TCK" 'NR == FNR { if ($1 == g) b[$2] = $3; next }
    $1 == g { d = $3 - ($2 in b ? b[$2] : 0); if (d > 0) s += d }
    END { printf "%.3f", s / tck }' "$1" "$2"
}

SINK_PID=
SINK_PORT=$(free_port)
SINK_URL=http://127.0.0.1:$SINK_PORT
SINK_LOG=$RUN/sink.log
"$EX/sink" --listen "127.0.0.1:$SINK_PORT" --log "$SINK_LOG" >"$RUN/sink.err" 2>&1 &
SINK_PID=$!
PIDS+=("$SINK_PID")
export WEBHOOK_SITE_URL=$SINK_URL/hook
# The sink's count, read with bash's /dev/tcp: polled often, so no curl or jq process each time.
sink_count() {
  local reply
  exec 9<>"/dev/tcp/127.0.0.1/$SINK_PORT" || return 1
  printf 'GET /stats HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&9
  reply=$(cat <&9)
  exec 9>&-
  reply=${reply##*\"received\":}
  echo "${reply%%\}*}"
}
for _ in $(seq 100); do sink_count >/dev/null 2>&1 && break; sleep 0.1; done
sink_count >/dev/null || die "the sink did not start (see $RUN/sink.err)"

# wait_sink TARGET [DEADLINE]: waits until the sink has received TARGET requests; prints the
# time it did, or returns 1 after STALL seconds without progress, or 2 at DEADLINE (epoch s).
wait_sink() {
  local target=$1 deadline=${2:-0} last=-1 last_change c
  last_change=$(date +%s)
  while :; do
    c=$(sink_count)
    if ((c >= target)); then now; return 0; fi
    if [[ $deadline != 0 ]] && ge "$(now)" "$deadline"; then now; return 2; fi
    if ((c != last)); then last=$c; last_change=$(date +%s); fi
    if (($(date +%s) - last_change > STALL)); then
      note "deliveries stalled at $c of $target for ${STALL}s"
      now
      return 1
    fi
    sleep 0.05
  done
}

API_PORT=$(free_port)
API=http://127.0.0.1:$API_PORT
SERVE_PID=
SERVE_N=0
# start_serve [--api-only]: one serve process (log in serve-<n>.log), ready when /readyz is.
start_serve() {
  local i attempt logf
  for attempt in 1 2 3; do
    SERVE_N=$((SERVE_N + 1))
    logf=$RUN/serve-$SERVE_N.log
    API_PORT=$API_PORT "$BIN" serve --no-migrate "$@" >"$logf" 2>&1 &
    SERVE_PID=$!
    PIDS+=("$SERVE_PID")
    APP_PIDS=("$SERVE_PID")
    for i in $(seq 300); do
      curl -sf "$API/readyz" >/dev/null 2>&1 && return 0
      kill -0 "$SERVE_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$SERVE_PID" 2>/dev/null && die "serve not ready after 30 s (see $logf)"
    grep -q "Address already in use" "$logf" || die "serve exited (see $logf)"
    API_PORT=$(free_port)
    API=http://127.0.0.1:$API_PORT
    log "port taken meanwhile; serve moves to $API_PORT"
  done
  die "serve could not bind a port (see $RUN/serve-*.log)"
}
SERVE_ROLE=
# stop_serve: records the peak RSS of the running serve, then stops it.
stop_serve() {
  [[ -n $SERVE_PID ]] || return 0
  [[ -n $SERVE_ROLE ]] &&
    record "6 peak RSS of one serve process ($SERVE_ROLE)" "$(hwm_mib "$SERVE_PID")" "MiB" "VmHWM of /proc/<pid>/status, read before stopping it"
  stop_pid "$SERVE_PID"
  SERVE_PID=
}
# fresh_serve ROLE [serve flags]: a new serve on an empty database and empty queues.
fresh_serve() {
  local role=$1
  shift
  stop_serve
  purge_queues
  reset_db
  SERVE_ROLE=$role
  start_serve "$@"
}
# check_rate JSON RATE WHAT: warns when an open-loop run could not offer or get its rate.
check_rate() {
  local got
  got=$(jq .notifications_per_s "$1")
  if awk "BEGIN { exit !($got < 0.95 * $2) }"; then
    note "$3: $2 req/s offered, $got accepted/s: the system (or the generator) did not keep up"
  fi
  [[ $(jq .dropped_requests "$1") == 0 ]] || note "$3: generator dropped $(jq .dropped_requests "$1") requests (in-flight cap)"
}
stop_pid() {
  local p=$1 i
  kill -TERM "$p" 2>/dev/null || return 0
  for i in $(seq 400); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
  kill -KILL "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
}
hwm_mib() { calc "$(status_kib "$1" VmHWM) / 1024"; }
rss_mib() { calc "$(status_kib "$1" VmRSS) / 1024"; }

# loadgen OUTFILE ARGS...: runs the generator, keeps its JSON and CPU use.
loadgen() {
  local out=$1
  shift
  /usr/bin/time -f '%U %S' -o "$out.time" "$EX/loadgen" run "$@" >"$out" 2>"$out.err" ||
    { cat "$out.err" >&2; die "loadgen failed: $*"; }
  local errs
  errs=$(jq -r .error_requests "$out")
  ((errs == 0)) || note "loadgen $* : $errs requests failed ($(jq -c .statuses "$out"))"
}
loadgen_cpu() { awk '{ printf "%.3f", $1 + $2 }' "$1.time"; }
rmq() { rabbitmqctl -q "$@" ${VHOST:+-p "$VHOST"} </dev/null 2>/dev/null; }
# One AMQP client for all the service's queues: rabbitmqctl costs most of a second per call.
purge_queues() {
  local qs=() ch
  for ch in sms email push; do qs+=("$QUEUE_PREFIX$ch" "${QUEUE_PREFIX}dlq.$ch"); done
  "$EX/amqp_floor" --purge "$(IFS=,; echo "${qs[*]}")" >>"$RUN/purge.log" 2>&1 || die "purging the queues failed (see $RUN/purge.log)"
}
queued_messages() {
  rmq list_queues --no-table-headers name messages |
    awk -v p="$QUEUE_PREFIX" 'index($1, p) == 1 && $1 !~ /dlq/ { s += $2 } END { print s + 0 }'
}
db_status() { psqlb -c "SELECT string_agg(status || '=' || n, ' ') FROM (SELECT status, count(*) n FROM notifications GROUP BY 1 ORDER BY 1) s"; }

CMD_LOADGEN='target/release/examples/loadgen run'
SECTION_TIMES=()
section_start() { busy_check "$1"; SECTION_T0=$(date +%s); log "=== $1 (load $(load1))"; }
section_end() { SECTION_TIMES+=("$1 $(($(date +%s) - SECTION_T0))s"); }

# ---- 1 sink ceiling ------------------------------------------------------------------------
if has sink; then
  section_start sink
  for r in $(seq "$REPS"); do
    f=$RUN/sink-$r.json
    loadgen "$f" --target sink --url "$SINK_URL/hook" --count "$N" --concurrency "$CONC"
    record "1 sink ceiling (req/s)" "$(jq .ok_per_s "$f")" "req/s" \
      "$CMD_LOADGEN --target sink --url \$SINK/hook --count $N --concurrency $CONC"
  done
  section_end sink
fi

# ---- 2 floor -------------------------------------------------------------------------------
FLOOR_PG=
FLOOR_MQ=
if has floor; then
  section_start floor
  max_conn=$(psql "$PG_ADMIN" -qAtXc "SHOW max_connections")
  used=$(psql "$PG_ADMIN" -qAtXc "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'")
  clients=$PG_CLIENTS
  if ((max_conn - used - 2 < clients)); then
    clients=$((max_conn - used - 2))
    note "PostgreSQL has $((max_conn - used)) free connections of $max_conn: pgbench ran with $clients clients instead of $PG_CLIENTS"
  fi
  # pgbench_once OUT ARGS: one pgbench run on an empty database, output in OUT; prints its tps.
  pgbench_once() {
    local out=$1
    shift
    reset_db
    "$PGBENCH" -n -M prepared -j 2 -T "$PG_SECONDS" "$@" "$DATABASE_DSN" >"$out" 2>&1 ||
      { cat "$out" >&2; die "pgbench $* failed"; }
    awk '/^tps/ { print $3; exit }' "$out"
  }
  pgcmd="pgbench -n -M prepared -j 2 -T $PG_SECONDS -c $clients -f bench/notification.pgbench.sql \$DATABASE_DSN"
  for r in $(seq "$REPS"); do
    tps=$(pgbench_once "$RUN/pgbench-$r.txt" -c "$clients" -f bench/notification.pgbench.sql)
    lat=$(awk '/^latency average/ { print $4; exit }' "$RUN/pgbench-$r.txt")
    record "2a PostgreSQL alone: notifications/s (pgbench: 7 round trips, 4 commits each; c=$clients)" "$tps" "/s" "$pgcmd"
    record "2a PostgreSQL alone: pgbench latency of one notification (7 round trips)" "$lat" "ms" "$pgcmd"
  done
  # 2c: the set-based statements that group commit runs, PG_BATCH notifications each, four
  # clients because the service keeps at most one statement of each of its four kinds of
  # write in flight (src/store/batched.rs). Not the floor the issue defines (2a); it shows
  # what PostgreSQL allows at the batch sizes of section 3 (mean batch sizes recorded there).
  plan="-c plan_cache_mode=force_custom_plan"
  bcmd="PGOPTIONS='$plan' pgbench -n -M prepared -j 2 -T $PG_SECONDS -c 4 -D batch=$PG_BATCH -f bench/notification-batched.pgbench.sql \$DATABASE_DSN"
  for r in $(seq "$REPS"); do
    tps=$(PGOPTIONS=$plan pgbench_once "$RUN/pgbench-batched-$r.txt" -c 4 -D batch="$PG_BATCH" \
      -f bench/notification-batched.pgbench.sql)
    record "2c PostgreSQL alone, set-based statements, $PG_BATCH per statement: notifications/s (c=4)" \
      "$(calc "$tps * $PG_BATCH")" "/s" "$bcmd; tps × $PG_BATCH"
  done
  reset_db
  mqcmd="target/release/examples/amqp_floor --count $AMQP_N --queue \${QUEUE_PREFIX}floor"
  for r in $(seq "$REPS"); do
    f=$RUN/amqp-$r.json
    "$EX/amqp_floor" --count "$AMQP_N" --queue "${QUEUE_PREFIX}floor" >"$f" 2>"$f.err" ||
      { cat "$f.err" >&2; die "amqp_floor failed"; }
    record "2b RabbitMQ alone: publish+confirm+consume+ack (msgs/s)" "$(jq .msgs_per_s "$f")" "/s" "$mqcmd"
  done
  section_end floor
fi

median_of() { awk -F'\t' -v l="$1" '$1 == l { print $2 }' "$VALUES" | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) exit; if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
floor_rate() {
  local pg mq
  pg=$(median_of "2a PostgreSQL alone: notifications/s (pgbench: 7 round trips, 4 commits each; c=${clients:-$PG_CLIENTS})")
  mq=$(median_of "2b RabbitMQ alone: publish+confirm+consume+ack (msgs/s)")
  if [[ -n $pg && -n $mq ]]; then awk -v a="$pg" -v b="$mq" 'BEGIN { print (a < b ? a : b) }'; fi
}

# ---- 3 throughput --------------------------------------------------------------------------
PERF_DONE=0
# throughput KIND(single|batch) REP
# pg_counters: commits and rows written in the bench database, the cluster's WAL, and the
# notifications table's updates and HOT updates (no index entries written).
pg_counters() {
  psqlb -c "SELECT d.xact_commit, d.tup_inserted + d.tup_updated + d.tup_deleted, w.wal_bytes, w.wal_records,
      t.n_tup_upd, t.n_tup_hot_upd
    FROM pg_stat_database d, pg_stat_wal w, pg_stat_user_tables t
    WHERE d.datname = current_database() AND t.relname = 'notifications'" | tr '|' ' '
}
throughput() {
  local kind=$1 r=$2 f s0 t0 t1 acc target before after secs delivered perf_pid= pg0 pg1
  f=$RUN/throughput-$kind-$r.json
  fresh_serve "throughput runs"
  s0=$(sink_count)
  pg0=$(pg_counters)
  snapshot "$RUN/cpu-$kind-$r.before"
  if [[ $PERF == 1 && $PERF_DONE == 0 && $kind == single ]] && command -v perf >/dev/null 2>&1; then
    # cpu-clock: a virtual machine often has no hardware cycle counter.
    perf record -e cpu-clock -a -g -F 499 -o "$RUN/perf.data" >"$RUN/perf-record.log" 2>&1 &
    perf_pid=$!
    PERF_SERVE_PID=$SERVE_PID
  fi
  local waits_pid=
  if [[ $PG_WAITS == 1 && $r == 1 && $kind == single ]]; then
    printf "SELECT state, coalesce(wait_event_type || ':' || wait_event, 'on CPU') FROM pg_stat_activity WHERE datname = '%s' AND pid <> pg_backend_pid()\n\\watch 0.1\n" \
      "$DB" >"$RUN/pg-waits.sql"
    psql "$PG_ADMIN" -qAtX -P pager=off -f "$RUN/pg-waits.sql" >"$RUN/pg-waits.raw" 2>/dev/null &
    waits_pid=$!
    PIDS+=("$waits_pid")
  fi
  t0=$(now)
  local args=(--target "$kind" --url "$API" --count "$N" --concurrency "$CONC" --max-seconds "$RUN_CAP")
  [[ $kind == batch ]] && args+=(--batch-size "$BATCH")
  loadgen "$f" "${args[@]}"
  acc=$(jq .notifications "$f")
  [[ $(jq .stopped_by_time_cap "$f") == true ]] &&
    note "throughput $kind run $r: the ${RUN_CAP}s sending cap (BENCH_RUN_CAP_SECONDS) stopped it at $acc of $N notifications"
  target=$((s0 + acc))
  local deadline=0 rc=0
  ((DELIVERY_WINDOW > 0)) && deadline=$(calc "$t0 + $DELIVERY_WINDOW")
  t1=$(wait_sink "$target" "$deadline") || rc=$?
  delivered=$(($(sink_count) - s0))
  case $rc in
    1) note "throughput $kind run $r: only $delivered of $acc delivered (stalled)" ;;
    2) note "throughput $kind run $r: deliveries counted over the ${DELIVERY_WINDOW}s window (BENCH_DELIVERY_WINDOW_SECONDS), $delivered of $acc delivered by then" ;;
  esac
  snapshot "$RUN/cpu-$kind-$r.after"
  if [[ -n $waits_pid ]]; then
    kill -INT "$waits_pid" 2>/dev/null
    wait "$waits_pid" 2>/dev/null || true
    # Share of samples (every 0.1 s, every backend of the bench database) per state and wait.
    awk -F'|' 'NF == 2 { n[$1 " / " $2]++; t++ } END { for (k in n) printf "%6.1f%%  %s\n", 100 * n[k] / t, k }' \
      "$RUN/pg-waits.raw" | sort -rn >"$RUN/pg-waits.txt"
  fi
  if [[ -n $perf_pid ]]; then
    kill -INT "$perf_pid"
    wait "$perf_pid" 2>/dev/null || true
    PERF_DONE=1
  fi
  secs=$(calc "$t1 - $t0")
  echo "$kind $r: $(db_status)" >>"$RUN/db-status.txt"
  # A fresh serve per run, so its histogram covers this run alone (and the start-up).
  curl -fsS "$API/metrics" >"$RUN/metrics-$kind-$r.txt" 2>/dev/null || true
  # Its backends exit and flush their statistics (an idle one keeps them for up to 10 s).
  stop_serve
  pg1=$(pg_counters)
  local c="$CMD_LOADGEN --target $kind --url \$API --count $N --concurrency $CONC --max-seconds $RUN_CAP"
  [[ $kind == batch ]] && c+=" --batch-size $BATCH"
  local what="single POST"
  [[ $kind == batch ]] && what="batch POST ($BATCH items)"
  record "3 $what c=$CONC: accepted/s" "$(jq .notifications_per_s "$f")" "/s" "$c"
  record "3 $what c=$CONC: delivered/s (at the sink)" "$(calc "$delivered / $secs")" "/s" \
    "same run; one serve process (API+worker+scanners); sink count ÷ time from the first request until the sink has every accepted notification (or the delivery window closes)"
  record "3 $what c=$CONC: create latency p99" "$(jq .latency_ms.p99 "$f")" "ms" "same run (closed loop)"
  local fl
  fl=$(floor_rate)
  [[ -n $fl ]] && record "3 $what c=$CONC: delivered/s ÷ floor" "$(calc "100 * $delivered / $secs / $fl")" "%" \
    "delivered/s above ÷ min(2a, 2b medians) = $(fmt "$fl" /s)/s"
  local w
  read -r -a w <<<"$pg0 $pg1"
  if ((${#w[@]} == 12 && delivered > 0)); then
    local pc="pg_stat_database (bench database) and pg_stat_wal (cluster) before and after run 3 ($kind), ÷ delivered"
    record "3 $what c=$CONC: commits per delivered notification" "$(calc "(${w[6]} - ${w[0]}) / $delivered")" "commits" "$pc"
    record "3 $what c=$CONC: rows written per delivered notification" "$(calc "(${w[7]} - ${w[1]}) / $delivered")" "rows" "$pc; inserted + updated + deleted"
    record "3 $what c=$CONC: WAL bytes per delivered notification" "$(calc "(${w[8]} - ${w[2]}) / $delivered")" "bytes" "$pc"
    record "3 $what c=$CONC: WAL records per delivered notification" "$(calc "(${w[9]} - ${w[3]}) / $delivered")" "records" "$pc"
    local upd=$((${w[10]} - ${w[4]}))
    ((upd > 0)) && record "3 $what c=$CONC: HOT share of notifications updates" "$(calc "100 * (${w[11]} - ${w[5]}) / $upd")" "%" \
      "pg_stat_user_tables (notifications) n_tup_hot_upd ÷ n_tup_upd, before and after run 3 ($kind)"
  fi
  local kw mean
  for kw in insert mark_queued publish claim outcome; do
    mean=$(awk -v k="{kind=\"$kw\"}" '$1 == "dispatch_engine_db_write_batch_size_sum" k { s = $2 }
      $1 == "dispatch_engine_db_write_batch_size_count" k { n = $2 } END { if (n > 0) printf "%.1f", s / n }' \
      "$RUN/metrics-$kind-$r.txt")
    [[ -n $mean ]] && record "3 $what c=$CONC: mean group-commit batch, $kw" "$mean" "items" \
      "same run; dispatch_engine_db_write_batch_size{kind=\"$kw\"} sum ÷ count from /metrics"
  done
  local per=$(calc "$delivered / 1000")
  local b=$RUN/cpu-$kind-$r.before a=$RUN/cpu-$kind-$r.after
  record "6 CPU s per 1,000 ($kind creates+delivery): dispatchctl serve" "$(calc "$(cpu_seconds "$b" "$a" app) / $per")" "s" \
    "utime+stime from /proc/<pid>/stat over run 3 ($kind)"
  record "6 CPU s per 1,000 ($kind creates+delivery): PostgreSQL (bench backends)" "$(calc "$(cpu_seconds "$b" "$a" pg) / $per")" "s" \
    "sum over pg_stat_activity pids of the bench database"
  [[ -n $RABBIT_PID ]] && record "6 CPU s per 1,000 ($kind creates+delivery): RabbitMQ (beam.smp, shared)" \
    "$(calc "$(cpu_seconds "$b" "$a" rabbit) / $per")" "s" "beam.smp pid $RABBIT_PID (also serves other users of the broker)"
  record "6 CPU s per 1,000 ($kind creates+delivery): load generator" "$(calc "$(loadgen_cpu "$f") / $per")" "s" "/usr/bin/time around loadgen"
  record "6 CPU s per 1,000 ($kind creates+delivery): sink" "$(calc "$(cpu_seconds "$b" "$a" sink) / $per")" "s" "/proc of the sink"
  return 0
}

if has throughput; then
  section_start throughput
  for r in $(seq "$SLOW_REPS"); do throughput single "$r"; done
  for r in $(seq "$SLOW_REPS"); do throughput batch "$r"; done
  stop_serve
  section_end throughput
fi

# ---- 4 latency -----------------------------------------------------------------------------
# Every run gets a fresh serve, an empty database and empty queues, so that the backlog an
# overloaded run leaves does not leak into the next one. Create latency at the soak's rate is
# read from the soak's windows, which gives many more repetitions for no extra time.
CREATE_IN_SOAK=0
has soak && [[ $CREATE_RATE == "$SOAK_RATE" ]] && CREATE_IN_SOAK=1
if has latency; then
  section_start latency
  c="$CMD_LOADGEN --target single --url \$API --rate $CREATE_RATE --duration $LAT_SECONDS"
  ((CREATE_IN_SOAK)) || for r in $(seq "$REPS"); do
    fresh_serve "latency runs"
    f=$RUN/latency-create-$r.json
    s0=$(sink_count)
    loadgen "$f" --target single --url "$API" --rate "$CREATE_RATE" --duration "$LAT_SECONDS"
    for p in p50 p95 p99; do
      record "4 create latency $p at $CREATE_RATE req/s" "$(jq ".latency_ms.$p" "$f")" "ms" "$c"
    done
    record "4 create at $CREATE_RATE req/s: achieved accepted/s" "$(jq .notifications_per_s "$f")" "/s" "$c"
    check_rate "$f" "$CREATE_RATE" "create latency run $r"
  done
  if ((ONE_CLIENT_N > 0)); then
    c="$CMD_LOADGEN --target single --url \$API --count $ONE_CLIENT_N --concurrency 1"
    for r in $(seq "$REPS"); do
      fresh_serve "latency runs"
      f=$RUN/latency-one-client-$r.json
      s0=$(sink_count)
      loadgen "$f" --target single --url "$API" --count "$ONE_CLIENT_N" --concurrency 1 --ids-out "$f.ids"
      for p in p50 p99; do
        record "4 one client: create latency $p" "$(jq ".latency_ms.$p" "$f")" "ms" "$c"
      done
      wait_sink $((s0 + $(jq .notifications "$f"))) >/dev/null || true
      sleep 0.3 # the sink flushes its log when idle
      "$EX/loadgen" e2e --ids "$f.ids" --sink-log "$SINK_LOG" >"$f.e2e"
      for p in p50 p99; do
        record "4 one client: create→delivery $p" "$(jq ".e2e_ms.$p" "$f.e2e")" "ms" "$c --ids-out ids.csv; loadgen e2e --ids ids.csv --sink-log sink.log"
      done
    done
  fi
  for rate in $E2E_RATES; do
    reps=$REPS
    ((rate > CREATE_RATE)) && reps=$SLOW_REPS
    for r in $(seq "$reps"); do
      fresh_serve "latency runs"
      f=$RUN/latency-e2e-$rate-$r.json
      s0=$(sink_count)
      loadgen "$f" --target single --url "$API" --rate "$rate" --duration "$LAT_SECONDS" --ids-out "$f.ids"
      wait_sink $((s0 + $(jq .notifications "$f"))) >/dev/null || true
      sleep 0.3 # the sink flushes its log when idle
      "$EX/loadgen" e2e --ids "$f.ids" --sink-log "$SINK_LOG" >"$f.e2e"
      c="$CMD_LOADGEN --target single --url \$API --rate $rate --duration $LAT_SECONDS --ids-out ids.csv; loadgen e2e --ids ids.csv --sink-log sink.log"
      for p in p50 p95 p99; do
        record "4 create→delivery $p at $rate/s" "$(jq ".e2e_ms.$p" "$f.e2e")" "ms" "$c"
      done
      check_rate "$f" "$rate" "create→delivery run $r"
      miss=$(jq .missing "$f.e2e")
      ((miss == 0)) || note "create→delivery at $rate/s run $r: $miss notifications not delivered when measured"
    done
  done
  stop_serve
  section_end latency
fi

# ---- 5 drain -------------------------------------------------------------------------------
if has drain; then
  section_start drain
  for workers in 1 2; do
    for r in $(seq "$SLOW_REPS"); do
      SERVE_ROLE=
      fresh_serve "" --api-only
      f=$RUN/drain-create-$workers-$r.json
      loadgen "$f" --target batch --url "$API" --count "$DRAIN_N" --concurrency 8 --batch-size "$BATCH"
      record "5 drain: batch creates with serve --api-only (accepted/s)" "$(jq .notifications_per_s "$f")" "/s" \
        "$CMD_LOADGEN --target batch --url \$API --count $DRAIN_N --concurrency 8 --batch-size $BATCH"
      stop_serve
      acc=$(jq .notifications "$f")
      depth=$(queued_messages)
      echo "drain $workers/$r before: $(db_status) queue=$depth" >>"$RUN/db-status.txt"
      s0=$(sink_count)
      APP_PIDS=()
      snapshot "$RUN/cpu-drain-$workers-$r.before"
      t0=$(now)
      for w in $(seq "$workers"); do
        "$BIN" worker --listen 127.0.0.1:0 >>"$RUN/worker.log" 2>&1 &
        PIDS+=("$!")
        APP_PIDS+=("$!")
      done
      # The rate is counted from the first delivery (start-up excluded) until the queue is
      # empty or the window closes.
      while (($(sink_count) == s0)); do
        ge "$(now)" "$(calc "$t0 + 30")" && die "no delivery 30 s after starting the worker(s) (see $RUN/worker.log)"
        sleep 0.02
      done
      t1=$(now)
      c1=$(sink_count)
      deadline=0
      ((DRAIN_WINDOW > 0)) && deadline=$(calc "$t1 + $DRAIN_WINDOW")
      while :; do
        c2=$(sink_count)
        t2=$(now)
        ((c2 >= s0 + acc)) && break
        if [[ $deadline != 0 ]] && ge "$t2" "$deadline"; then
          note "drain with $workers worker(s) run $r: measured over a ${DRAIN_WINDOW}s window (BENCH_DRAIN_WINDOW_SECONDS), $((c2 - s0)) of $acc delivered by then"
          break
        fi
        sleep 0.05
      done
      snapshot "$RUN/cpu-drain-$workers-$r.after"
      delivered=$((c2 - s0))
      startup=$(calc "($t1 - $t0) * 1000")
      record "5 drain rate, $workers worker process(es) ($acc queued)" "$(calc "($c2 - $c1) / ($t2 - $t1)")" "/s" \
        "$CMD_LOADGEN --target batch --count $DRAIN_N --batch-size $BATCH (serve --api-only; stopped), then ${workers}× dispatchctl worker --listen 127.0.0.1:0; sink count from the first delivery"
      record "5 drain: worker start to first delivery, $workers worker(s)" "$startup" "ms" "same run"
      per=$(calc "$delivered / 1000")
      b=$RUN/cpu-drain-$workers-$r.before
      a=$RUN/cpu-drain-$workers-$r.after
      record "6 CPU s per 1,000 (drain, $workers worker(s)): dispatchctl worker(s)" "$(calc "$(cpu_seconds "$b" "$a" app) / $per")" "s" "utime+stime from /proc over run 5"
      record "6 CPU s per 1,000 (drain, $workers worker(s)): PostgreSQL (bench backends)" "$(calc "$(cpu_seconds "$b" "$a" pg) / $per")" "s" "same run"
      [[ -n $RABBIT_PID ]] && record "6 CPU s per 1,000 (drain, $workers worker(s)): RabbitMQ (beam.smp, shared)" "$(calc "$(cpu_seconds "$b" "$a" rabbit) / $per")" "s" "same run"
      for p in "${APP_PIDS[@]}"; do
        record "6 peak RSS: worker (drain, $workers worker(s))" "$(hwm_mib "$p")" "MiB" "VmHWM of /proc/<pid>/status"
      done
      for p in "${APP_PIDS[@]}"; do stop_pid "$p"; done
      echo "drain $workers/$r after: $(db_status)" >>"$RUN/db-status.txt"
    done
  done
  section_end drain
fi

# ---- 6 soak --------------------------------------------------------------------------------
if has soak; then
  section_start soak
  fresh_serve "soak"
  s0=$(sink_count)
  snapshot "$RUN/cpu-soak.before"
  f=$RUN/soak.json
  /usr/bin/time -f '%U %S' -o "$f.time" "$EX/loadgen" run --target single --url "$API" --rate "$SOAK_RATE" \
    --duration "$SOAK_SECONDS" --window "$LAT_SECONDS" >"$f" 2>"$f.err" &
  lg=$!
  PIDS+=("$lg")
  t0=$(date +%s)
  early=
  most_sockets=0
  # RSS follows the most connections open at once (their buffers stay with the allocator
  # after they close), so the open sockets are sampled beside it.
  echo "elapsed_s rss_mib delivered sockets" >"$RUN/soak-rss.txt"
  while kill -0 "$lg" 2>/dev/null; do
    sleep 5
    el=$(($(date +%s) - t0))
    rss=$(rss_mib "$SERVE_PID")
    # find fails when an fd closes under it; a count that misses it is good enough.
    sockets=$( (find "/proc/$SERVE_PID/fd" -lname 'socket:*' 2>/dev/null || true) | wc -l)
    ((sockets > most_sockets)) && most_sockets=$sockets
    echo "$el $rss $(($(sink_count) - s0)) $sockets" >>"$RUN/soak-rss.txt"
    if [[ -z $early ]] && ((el >= SOAK_EARLY)); then early=$rss; fi
  done
  wait "$lg" || die "soak loadgen failed: $(cat "$f.err")"
  # Measured at the end of the offered load; a backlog, if any, is reported, not waited for.
  snapshot "$RUN/cpu-soak.after"
  delivered=$(($(sink_count) - s0))
  end_rss=$(rss_mib "$SERVE_PID")
  c="$CMD_LOADGEN --target single --url \$API --rate $SOAK_RATE --duration $SOAK_SECONDS (one serve process)"
  [[ -n $early ]] && record "6 soak at $SOAK_RATE/s: serve RSS at ${SOAK_EARLY}s" "$early" "MiB" "$c; VmRSS"
  record "6 soak at $SOAK_RATE/s: serve RSS at end (${SOAK_SECONDS}s)" "$end_rss" "MiB" "$c; VmRSS"
  record "6 soak at $SOAK_RATE/s: most open sockets of serve (5 s samples)" "$most_sockets" "sockets" "$c; /proc/<pid>/fd"
  record "6 soak at $SOAK_RATE/s: accepted/s" "$(jq .notifications_per_s "$f")" "/s" "$c"
  record "6 soak at $SOAK_RATE/s: delivered/s" "$(calc "$delivered / $(jq .duration_s "$f")")" "/s" "$c; sink count over the run"
  record "6 soak at $SOAK_RATE/s: create latency p99 over the whole soak" "$(jq .latency_ms.p99 "$f")" "ms" "$c"
  # Every window is one repetition of the create-latency measurement (section 4); the soak
  # keeps the per-window figures, so a drift or a periodic spike shows there.
  jq -r '.windows[] | [.from_s, .count, .p50, .p95, .p99, .max] | @tsv' "$f" >"$RUN/soak-windows.tsv"
  if ((CREATE_IN_SOAK)); then
    wc="$CMD_LOADGEN --target single --url \$API --rate $SOAK_RATE --duration $SOAK_SECONDS --window $LAT_SECONDS (the soak); one value per ${LAT_SECONDS}s window"
    while IFS=$'\t' read -r from n p50 p95 p99 _; do
      # A last window shorter than half the others would weigh a handful of requests.
      ((n * 2 >= SOAK_RATE * LAT_SECONDS)) || continue
      record "4 create latency p50 at $CREATE_RATE req/s" "$p50" "ms" "$wc"
      record "4 create latency p95 at $CREATE_RATE req/s" "$p95" "ms" "$wc"
      record "4 create latency p99 at $CREATE_RATE req/s" "$p99" "ms" "$wc"
    done <"$RUN/soak-windows.tsv"
  fi
  check_rate "$f" "$SOAK_RATE" "soak"
  acc=$(jq .notifications "$f")
  ((acc - delivered > SOAK_RATE)) && note "soak: $((acc - delivered)) of $acc accepted notifications were not yet delivered when the load stopped (backlog)"
  SERVE_ROLE="soak"
  stop_serve
  section_end soak
fi

# ---- 7 prune (only when named in BENCH_SECTIONS) -------------------------------------------
# Retention beside live creates, in one serve: PRUNE_ROWS old SENT rows (one attempt each),
# then three create runs at PRUNE_RATE: without prune; with `dispatchctl prune` at its default
# pace (PRUNE_MAX_RATE), stopped when the run ends; with prune unpaced (PRUNE_MAX_RATE=0), left
# to delete the rest. Prune rates count notifications and attempts over prune's own run time.
# prune_run LABEL MAX_RATE STOP(0|1): one create run beside one prune.
prune_run() {
  local label=$1 rate=$2 stop=$3 f pp t0 t1 deleted attempts with secs
  f=$RUN/prune-$label.json
  t0=$(now)
  PRUNE_MAX_RATE=$rate "$BIN" prune --older-than 30d -o json >"$RUN/prune-$label.out" 2>"$RUN/prune-$label.err" &
  pp=$!
  PIDS+=("$pp")
  loadgen "$f" --target single --url "$API" --rate "$PRUNE_RATE" --duration "$PRUNE_SECONDS"
  if ((stop)); then
    kill -INT "$pp" 2>/dev/null || true
  else
    kill -0 "$pp" 2>/dev/null || note "unpaced prune finished before the ${PRUNE_SECONDS}s create run did: they overlapped only partly (raise BENCH_PRUNE_ROWS)"
  fi
  wait "$pp" || [[ $? == 130 ]] || die "prune failed: $(cat "$RUN/prune-$label.err")"
  t1=$(now)
  check_rate "$f" "$PRUNE_RATE" "create latency with prune ($label)"
  with=$(jq .latency_ms.p99 "$f")
  record "7 create latency p99 at $PRUNE_RATE req/s, prune $label running" "$with" "ms" "$c; PRUNE_MAX_RATE=$rate dispatchctl prune --older-than 30d started with it"
  record "7 create latency p50 at $PRUNE_RATE req/s, prune $label running" "$(jq .latency_ms.p50 "$f")" "ms" "same run"
  record "7 create latency p99 with prune $label / without" "$(calc "100 * $with / $without")" "% of no-prune" "the run above and the one without prune (goal: at most 120 %)"
  deleted=$(jq '[.notifications[][]] | add // 0' "$RUN/prune-$label.out")
  attempts=$(jq '.attempts' "$RUN/prune-$label.out")
  secs=$(calc "$t1 - $t0")
  record "7 prune $label: notifications deleted/s" "$(calc "$deleted / $secs")" "/s" "PRUNE_MAX_RATE=$rate dispatchctl prune --older-than 30d (PRUNE_BATCH_SIZE ${PRUNE_BATCH_SIZE:-500}); $deleted rows in ${secs}s"
  record "7 prune $label: rows deleted/s (notifications + attempts)" "$(calc "($deleted + $attempts) / $secs")" "/s" "same run"
  PRUNED=$((PRUNED + deleted))
}
if has prune; then
  section_start prune
  fresh_serve "prune"
  t0=$(now)
  psqlb -c "INSERT INTO notifications (id, correlation_id, channel, priority, recipient, content, status, max_retries, created_at, updated_at)
    SELECT gen_random_uuid(), 'bench-old', (ARRAY['SMS','EMAIL','PUSH'])[1 + i % 3], 'NORMAL', '+905550000000', 'old', 'SENT', 3,
           now() - interval '120 days' + i * interval '1 second', now() - interval '120 days' + i * interval '1 second'
    FROM generate_series(1, $PRUNE_ROWS) i" >/dev/null
  psqlb -c "INSERT INTO notification_attempts (notification_id, attempt_number, outcome, duration_ms)
    SELECT id, 1, 'SUCCESS', 5 FROM notifications WHERE correlation_id = 'bench-old'" >/dev/null
  # What autovacuum would have done long before rows grow this old (it is off on some machines).
  psqlb -c "VACUUM ANALYZE notifications, notification_attempts" >/dev/null
  # Writing them made about a GiB of WAL; without a checkpoint now, one falls into the
  # no-prune run and makes it look slow.
  psqlb -c "CHECKPOINT" >/dev/null
  log "$PRUNE_ROWS old rows with their attempts written in $(calc "$(now) - $t0")s"
  c="$CMD_LOADGEN --target single --url \$API --rate $PRUNE_RATE --duration $PRUNE_SECONDS ($PRUNE_ROWS old rows in the table)"
  # A fresh serve's first seconds (connections, plans, cold pages of the big table) are not
  # what either run measures.
  loadgen "$RUN/prune-warmup.json" --target single --url "$API" --rate "$PRUNE_RATE" --duration 5
  f=$RUN/prune-without.json
  loadgen "$f" --target single --url "$API" --rate "$PRUNE_RATE" --duration "$PRUNE_SECONDS"
  check_rate "$f" "$PRUNE_RATE" "create latency without prune"
  without=$(jq .latency_ms.p99 "$f")
  record "7 create latency p99 at $PRUNE_RATE req/s, no prune running" "$without" "ms" "$c"
  record "7 create latency p50 at $PRUNE_RATE req/s, no prune running" "$(jq .latency_ms.p50 "$f")" "ms" "$c"
  PRUNED=0
  prune_run paced "${PRUNE_MAX_RATE:-1000}" 1
  prune_run unpaced 0 0
  ((PRUNED == PRUNE_ROWS)) || note "prune deleted $PRUNED notifications of the $PRUNE_ROWS old ones"
  stop_serve
  section_end prune
fi

# ---- perf summary ------------------------------------------------------------------------
if [[ -f $RUN/perf.data ]]; then
  perf report -i "$RUN/perf.data" --no-children --sort comm,dso --stdio -g none 2>/dev/null |
    grep -v '^#' | grep -v '^$' | sed -E 's/[[:space:]]+-[[:space:]]+-[[:space:]]*$//' | head -n 25 >"$RUN/perf-comm.txt" || true
  perf report -i "$RUN/perf.data" --no-children --dsos dispatchctl --sort symbol --stdio -g none 2>/dev/null |
    grep -v '^#' | grep -v '^$' | sed -E 's/[[:space:]]+-[[:space:]]+-[[:space:]]*$//' | head -n 40 >"$RUN/perf-dispatchctl.txt" || true
  perf report -i "$RUN/perf.data" --no-children --comm postgres --sort symbol --stdio -g none 2>/dev/null |
    grep -v '^#' | grep -v '^$' | sed -E 's/[[:space:]]+-[[:space:]]+-[[:space:]]*$//' | head -n 30 >"$RUN/perf-postgres.txt" || true
  # Per process, every DSO (its libraries and the kernel on its behalf included).
  if [[ -n ${PERF_SERVE_PID:-} ]]; then
    perf report -i "$RUN/perf.data" --no-children --pid "$PERF_SERVE_PID" --sort dso,symbol --stdio -g none 2>/dev/null |
      grep -v '^#' | grep -v '^$' | sed -E 's/[[:space:]]+-[[:space:]]+-[[:space:]]*$//' | head -n 25 >"$RUN/perf-serve.txt" || true
  fi
  if [[ -n $RABBIT_PID ]]; then
    perf report -i "$RUN/perf.data" --no-children --pid "$RABBIT_PID" --sort dso,symbol --stdio -g none 2>/dev/null |
      grep -v '^#' | grep -v '^$' | sed -E 's/[[:space:]]+-[[:space:]]+-[[:space:]]*$//' | head -n 15 >"$RUN/perf-rabbitmq.txt" || true
  fi
  log "perf summaries: $RUN/perf-comm.txt, perf-dispatchctl.txt, perf-postgres.txt, perf-serve.txt, perf-rabbitmq.txt"
fi

# ---- report --------------------------------------------------------------------------------
busy_check "end"
((BUSY == 0)) ||
  note "the machine was busy with other work: CPU busy while the benchmark was idle: $(IFS=,; echo "${BUSY_SAMPLES[*]}") on $CORES cores; figures are pessimistic and noisier than on an idle machine"
ELAPSED=$(($(date +%s) - STARTED))
TOTAL=$((ELAPSED + BUILD_SECONDS))
((TOTAL <= 1200)) || note "the run took $((TOTAL / 60)) min $((TOTAL % 60)) s with the build, more than the 20-minute target"
REPORT=$RUN/results.md
{
  echo "# dispatchctl benchmark — $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo
  echo "- Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM; PostgreSQL, RabbitMQ, Redis, sink and load generator all local on 127.0.0.1"
  echo "- Load at start: \`$UPTIME_START\`; at end: \`$(uptime)\`; CPU busy with other work, sampled 1 s before each section: $(IFS=,; echo "${BUSY_SAMPLES[*]}" | sed 's/,/, /g')"
  echo "- Build: dispatchctl $GIT_REV, \`cargo build --release --locked --bins --examples\`"
  echo "- Sizes: N=$N, drain M=$DRAIN_N, AMQP floor $AMQP_N messages, concurrency $CONC, batch $BATCH, pgbench ${clients:-$PG_CLIENTS} clients × ${PG_SECONDS}s, latency runs ${LAT_SECONDS}s, soak ${SOAK_SECONDS}s at ${SOAK_RATE}/s$( [[ $QUICK == 1 ]] && echo ' (BENCH_QUICK=1)')"
  echo "- Repetitions: $REPS for sink, floor$( ((CREATE_IN_SOAK)) || echo ", create latency") and create→delivery up to ${CREATE_RATE}/s; $( ((CREATE_IN_SOAK)) && echo "create latency at ${CREATE_RATE} req/s once per ${LAT_SECONDS}s window of the soak (same rate, one serve, its database growing); ")$SLOW_REPS for throughput, drain and create→delivery above ${CREATE_RATE}/s$( ((SLOW_REPS < REPS)) && echo " (reduced so that the default run, with its 10-minute soak, stays under 20 minutes on 2 cores; BENCH_SLOW_REPS=$REPS for more)"); soak once"
  echo "- Time caps: throughput runs send for at most ${RUN_CAP}s (BENCH_RUN_CAP_SECONDS) and count deliveries for at most ${DELIVERY_WINDOW}s (BENCH_DELIVERY_WINDOW_SECONDS), drain rates are measured over at most ${DRAIN_WINDOW}s (BENCH_DRAIN_WINDOW_SECONDS); a warning below says when a cap applied"
  echo "- PostgreSQL: $PG_SETTINGS"
  echo "- Settings: RATE_LIMIT_PER_SEC=0, LOG_LEVEL=warn, WORKER_CONCURRENCY=${WORKER_CONCURRENCY:-192 (default)}, DATABASE_MAX_CONNECTIONS=${DATABASE_MAX_CONNECTIONS:-20 (default)}; isolated database bench_…, QUEUE_PREFIX=bench….; sink = examples/sink.rs with --log"
  echo "- Placeholders: \`\$API\` = http://127.0.0.1:<port> of \`dispatchctl serve\`, \`\$SINK\` = the sink; every command ran from the repository root"
  echo "- Wall time: $((TOTAL / 60)) min $((TOTAL % 60)) s: build ${BUILD_SECONDS}s$( [[ ${BENCH_SKIP_BUILD:-0} == 1 ]] && echo " (skipped)"), run $((ELAPSED / 60)) min $((ELAPSED % 60)) s (sections: $(IFS=,; echo "${SECTION_TIMES[*]}" | sed 's/,/, /g'))"
  if [[ -s $NOTES ]]; then
    echo
    echo "Warnings:"
    sort -u "$NOTES" | sed 's/^/- /'
  fi
  echo
  echo "| Measurement | Median | Min–max | Runs | Command |"
  echo "|---|---:|---:|---:|---|"
  while IFS= read -r label; do
    mapfile -t vals < <(awk -F'\t' -v l="$label" '$1 == l { print $2 }' "$VALUES" | sort -g)
    unit=$(awk -F'\t' -v l="$label" '$1 == l { print $3; exit }' "$VALUES")
    cmd=$(awk -F'\t' -v l="$label" '$1 == l { print $4; exit }' "$VALUES" | sed 's/|/\\|/g')
    n=${#vals[@]}
    if ((n % 2)); then med=${vals[$((n / 2))]}; else med=$(calc "(${vals[$((n / 2 - 1))]} + ${vals[$((n / 2))]}) / 2"); fi
    u=$unit
    [[ $u == "%" ]] && u="% of floor"
    spread="—"
    ((n > 1)) && spread="$(fmt "${vals[0]}" "$unit")–$(fmt "${vals[$((n - 1))]}" "$unit")"
    echo "| $label | $(fmt "$med" "$unit") $u | $spread | $n | \`$cmd\` |"
  done < <(cut -f1 "$VALUES" | awk '!seen[$0]++' | sort -s -t' ' -k1,1)
  fl=$(floor_rate)
  [[ -n $fl ]] && { echo; echo "Floor = min(2a, 2b medians) = $(fmt "$fl" /s)/s."; }
  if [[ -f $RUN/soak-rss.txt ]]; then
    echo
    echo "Soak RSS samples (elapsed s, MiB): $(tail -n +2 "$RUN/soak-rss.txt" | awk 'NR % 6 == 1 { printf "%s%s: %.1f", sep, $1, $2; sep = ", " }')"
  fi
  if [[ -s $RUN/soak-windows.tsv ]]; then
    echo
    echo "Soak create latency per ${LAT_SECONDS}s window (from s: p50/p99 ms): $(awk -F'\t' '{ printf "%s%s:%s/%s", sep, $1, $3, $5; sep = ", " }' "$RUN/soak-windows.tsv")"
  fi
  if [[ -s $RUN/pg-waits.txt ]]; then
    echo
    echo "PostgreSQL backends of the bench database during the first single-create run, share of samples by state / wait event (pg_stat_activity every 0.1 s; \"idle\" = waiting for dispatchctl):"
    echo '```'
    head -n 15 "$RUN/pg-waits.txt"
    echo '```'
  fi
  if [[ -s $RUN/perf-comm.txt ]]; then
    echo
    echo "perf record -a -g during the first single-create run; share of all samples by command and DSO (the machine's other jobs included; swapper = idle):"
    echo '```'
    cat "$RUN/perf-comm.txt"
    echo '```'
  fi
  echo
  echo "Raw output: ${RUN#"$ROOT"/}"
} >"$REPORT"
cp "$REPORT" "$OUT/results.md"
echo
cat "$REPORT"
log "done in ${ELAPSED}s; table in target/bench/results.md"
