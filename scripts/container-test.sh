#!/usr/bin/env bash
# Builds the container image from the Dockerfile as it is and proves it, end to end:
#   1. the image builds, runs as uid 10001, is below 100 MB, reports the version of Cargo.toml;
#   2. migrate, serve --api-only, worker and scan-retries --loop run as four containers
#      (host network, read-only root filesystem, all capabilities dropped) against
#      PostgreSQL, RabbitMQ and Redis on 127.0.0.1, with a database, a queue prefix and a
#      Redis key prefix of their own; each container's HEALTHCHECK turns healthy;
#   3. 500 notifications created through the API container are all delivered to a provider
#      stand-in on the host; one that the provider rejects is dead-lettered, then replayed
#      with `dispatchctl replay` run from the image;
#   4. SIGTERM to the worker mid-load: it drains and exits 0 within SHUTDOWN_TIMEOUT, and
#      after a restart nothing is lost (every notification SENT and delivered);
#   5. the dispatchctl services of docker-compose.yml come up healthy with compose, deliver
#      one notification, and go down again.
#
# With a Docker engine (`docker info` answers) the script uses it and the stock images as
# they are (CI). Without one it uses Debian's podman, run as root with runc and the lowered
# ulimits of the containers.conf it writes into its cache, and makes the two base images
# that the Dockerfile names (debian:bookworm-slim and rust:1-bookworm) locally: the first
# by debootstrap from Debian's mirror, the second as that plus gcc, with the host's Rust
# toolchain and CA bundle mounted into the build (neither is baked into any image). The
# compose part then runs docker-compose v1 against `podman system service`, with
# docker/compose.host-services.yml in place of the stock PostgreSQL/RabbitMQ/Redis images.
# Every step is idempotent; the base images, the build layers and the cargo registry are
# cached, so a second run rebuilds nothing unless src/, migrations/ or Cargo.* changed.
#
# Usage: scripts/container-test.sh [--private-services] [--no-compose] [--keep]
#   --private-services  a PostgreSQL, RabbitMQ and Redis of this run's own on free ports
#                       (scripts/chaos/services.sh), instead of those on 127.0.0.1's
#                       standard ports; for a machine whose shared services are busy or sick
#   --no-compose        skip part 5
#   --keep              leave the containers and the database behind for a look
# Environment:
#   CONTAINER_ENGINE     docker or podman (default: docker when its engine answers)
#   CONTAINER_TEST_CACHE cache directory (default ~/.cache/dispatchctl-ctest)
#   CT_DATABASE_URL      PostgreSQL server, no database (default postgres://postgres@127.0.0.1:5432)
#   CT_RABBITMQ_URL      default amqp://guest:guest@127.0.0.1:5672/%2f (queue prefixes ctest., ctestc.)
#   CT_REDIS_URL         default redis://127.0.0.1:6379/0
#   CT_NOTIFICATIONS     how many notifications the load sends (default 500)
set -euo pipefail
cd "$(dirname "$0")/.."
readonly ROOT="$PWD"

COMPOSE_PART=1
KEEP=0
PRIVATE_SERVICES=0
for arg in "$@"; do
    case "$arg" in
    --private-services) PRIVATE_SERVICES=1 ;;
    --no-compose) COMPOSE_PART=0 ;;
    --keep) KEEP=1 ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "container-test: unknown argument '$arg' (accepted: --private-services, --no-compose, --keep, --help)" >&2
        exit 2
        ;;
    esac
done

readonly START_TS=$SECONDS
readonly CACHE="${CONTAINER_TEST_CACHE:-${HOME:-/root}/.cache/dispatchctl-ctest}"
readonly IMAGE="localhost/dispatchctl:ctest"
readonly DB_NAME="dispatchctl_ctest"
PG_URL="${CT_DATABASE_URL:-postgres://postgres@127.0.0.1:5432}"
REDIS_URL="${CT_REDIS_URL:-redis://127.0.0.1:6379/0}"
RABBITMQ_URL="${CT_RABBITMQ_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
readonly N="${CT_NOTIFICATIONS:-500}"
readonly SHUTDOWN_TIMEOUT_S=15
readonly NAME_PREFIX="dispatchctl-ctest"
readonly COMPOSE_PROJECT="dispatchctl-ctest"
log() { printf 'container-test: %s\n' "$*" >&2; }
ok() { printf 'container-test: ok   %s\n' "$*" >&2; }
fail() {
    printf 'container-test: FAIL %s\n' "$*" >&2
    exit 1
}
if ! [[ $N =~ ^[0-9]+$ ]] || [ "$N" -lt 100 ]; then fail "CT_NOTIFICATIONS=$N: a whole number of at least 100 is accepted"; fi
mkdir -p "$CACHE"
# The containers, database and compose project have fixed names: one run at a time.
exec 9>"$CACHE/lock"
flock -n 9 || fail "another scripts/container-test.sh is running on this machine (lock: $CACHE/lock)"
RUN_DIR="$(mktemp -d "${TMPDIR:-/tmp}/dispatchctl-ctest.XXXXXX")"
readonly RUN_DIR
trap 'rm -rf "$RUN_DIR"' EXIT # until cleanup() below takes over
export PGOPTIONS="-c client_min_messages=warning"
elapsed() { printf '%ss' $((SECONDS - START_TS)); }
now_s() { date +%s.%N; }
secs_since() { awk -v a="$1" -v b="$(now_s)" 'BEGIN { printf "%.1f", b - a }'; }

# ---- engine -----------------------------------------------------------------------------
if [ -n "${CONTAINER_ENGINE:-}" ]; then
    ENGINE="$CONTAINER_ENGINE"
elif command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    ENGINE=docker
else
    ENGINE=podman
fi
case "$ENGINE" in docker | podman) ;; *) fail "CONTAINER_ENGINE=$ENGINE: accepted values are docker and podman" ;; esac
readonly ENGINE
# Without systemd podman cannot set up its health-check timers and says so on every run
# and rm of a container with a HEALTHCHECK; that is expected here (see start_health_ticker).
ct() {
    if [ "$ENGINE" = podman ]; then
        podman "$@" 2> >(grep -v -e 'unable to get systemd connection' -e 'Removing timer for container' >&2)
    else
        docker "$@"
    fi
}

apt_install() {
    local missing=()
    for pkg in "$@"; do
        # Not `dpkg -s`: it also succeeds for a removed package whose config files remain.
        [ "$(dpkg-query -W -f '${Status}' "$pkg" 2>/dev/null)" = "install ok installed" ] || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || fail "need root to install ${missing[*]} (apt-get)"
    log "installing ${missing[*]} (apt-get)"
    if [ ! -f "$CACHE/.apt-updated" ]; then
        apt-get update -qq >/dev/null && touch "$CACHE/.apt-updated"
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$CACHE/apt.log" 2>&1 ||
        fail "apt-get install ${missing[*]} (log: $CACHE/apt.log)"
}

# Podman as root without systemd: runc (crun's seccomp handling fails here), cgroupfs,
# events in a file, and ulimits at most what this machine's hard limits allow (podman's
# default asks for more and cannot start a container otherwise).
setup_podman() {
    apt_install podman runc debootstrap docker-compose ca-certificates curl python3
    command -v psql >/dev/null 2>&1 || apt_install postgresql-client
    local nofile nproc
    nofile=$(ulimit -Hn)
    nproc=$(ulimit -Hu)
    [ "$nofile" = unlimited ] || [ "$nofile" -gt 20000 ] && nofile=20000
    [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ] && nproc=32768
    cat >"$CACHE/containers.conf.tmp" <<EOF
# Written by scripts/container-test.sh.
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
    mv "$CACHE/containers.conf.tmp" "$CACHE/containers.conf"
    # Short names as Docker resolves them (debian -> docker.io/library/debian); nothing is
    # pulled by this script in podman mode, so this only matches the local images.
    cat >"$CACHE/registries.conf" <<'EOF'
unqualified-search-registries = ["docker.io"]
short-name-mode = "permissive"
EOF
    export CONTAINERS_CONF="$CACHE/containers.conf"
    export CONTAINERS_REGISTRIES_CONF="$CACHE/registries.conf"
}

# debian:bookworm-slim as the official image is made: debootstrap minbase, then docs, man
# pages and locales excluded from dpkg, and Docker's apt settings.
make_debian_image() {
    local ref=docker.io/library/debian:bookworm-slim
    podman image exists "$ref" && return 0
    local rootfs="$CACHE/debian-rootfs.tmp"
    log "making $ref with debootstrap (once; cached in podman's storage)"
    rm -rf "$rootfs"
    debootstrap --variant=minbase bookworm "$rootfs" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" \
        >"$CACHE/debootstrap.log" 2>&1 || fail "debootstrap failed; see $CACHE/debootstrap.log"
    cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/man/*
EOF
    find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
    rm -rf "$rootfs"/usr/share/{groff,info,linda,lintian/overrides,man}/*
    find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
    cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
    printf 'Acquire::Languages "none";\n' >"$rootfs/etc/apt/apt.conf.d/docker-no-languages"
    printf 'Acquire::GzipIndexes "true";\n' >"$rootfs/etc/apt/apt.conf.d/docker-gzip-indexes"
    printf 'APT::AutoRemove::SuggestsImportant "false";\n' >"$rootfs/etc/apt/apt.conf.d/docker-autoremove-suggests"
    cat >"$rootfs/etc/apt/sources.list" <<'EOF'
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log "$rootfs"/tmp/*
    tar -C "$rootfs" --numeric-owner -cf "$rootfs.tar" . || fail "tar of $rootfs"
    podman import --quiet --change 'CMD ["bash"]' \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' "$rootfs.tar" "$ref" >/dev/null ||
        fail "podman import of $ref"
    rm -rf "$rootfs" "$rootfs.tar"
}

# rust:1-bookworm stand-in: the local debian plus gcc; cargo and rustc come from the host's
# toolchain, mounted at /usr/local/rust during the build, and the proxy's CA from the
# host's bundle, mounted at /etc/ssl/host-ca.crt (see build_image).
make_rust_image() {
    local ref=docker.io/library/rust:1-bookworm rev=2
    [ "$(podman image inspect --format '{{index .Labels "org.dispatchctl.ctest.rev"}}' "$ref" 2>/dev/null)" = "$rev" ] && return 0
    log "making $ref: local debian + gcc, the host's toolchain mounted at build time (once)"
    cat >"$RUN_DIR/Containerfile.rust" <<'EOF'
FROM docker.io/library/debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
ENV RUSTUP_HOME=/usr/local/rustup \
    CARGO_HOME=/usr/local/cargo \
    CARGO_HTTP_CAINFO=/etc/ssl/host-ca.crt \
    PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
LABEL org.dispatchctl.ctest.note="local stand-in made by scripts/container-test.sh; needs the host toolchain mounted at /usr/local/rust"
EOF
    podman build --quiet --network host --pull=never --label "org.dispatchctl.ctest.rev=$rev" \
        -t "$ref" -f "$RUN_DIR/Containerfile.rust" "$RUN_DIR" >"$CACHE/rust-image.log" 2>&1 ||
        fail "building $ref (log: $CACHE/rust-image.log)"
}

# ---- image ------------------------------------------------------------------------------
# The Dockerfile as it is. Podman needs --format docker to keep HEALTHCHECK (the OCI image
# format has no such field). The build runs at a lower priority: the machine is shared.
build_image() {
    local t0
    t0=$(now_s)
    if [ "$ENGINE" = docker ]; then
        DOCKER_BUILDKIT=1 nice -n 10 docker build -t "$IMAGE" . >"$RUN_DIR/build.log" 2>&1 ||
            {
                tail -40 "$RUN_DIR/build.log" >&2
                fail "docker build (log: $RUN_DIR/build.log)"
            }
    else
        local sysroot
        sysroot=$(rustc --print sysroot 2>/dev/null) || fail "podman mode needs the host's Rust toolchain (rustc) to mount into the build"
        [ -x "$sysroot/bin/cargo" ] || fail "no cargo in $sysroot/bin"
        local ca=/etc/ssl/certs/ca-certificates.crt
        [ -s "$ca" ] || fail "no CA bundle at $ca (Debian's ca-certificates)"
        # Two passes: the builder stage with the toolchain and CA mounted, then the whole
        # Dockerfile without them (the builder's layers come from the cache), because
        # podman leaves an empty mount point behind in every stage a volume was given to.
        {
            nice -n 10 podman build --format docker --network host --pull=never --target builder \
                -v "$sysroot:/usr/local/rust:ro" -v "$ca:/etc/ssl/host-ca.crt:ro" -t "$IMAGE-builder" . &&
                nice -n 10 podman build --format docker --network host --pull=never -t "$IMAGE" .
        } >"$RUN_DIR/build.log" 2>&1 || {
            tail -40 "$RUN_DIR/build.log" >&2
            fail "podman build (log: $RUN_DIR/build.log)"
        }
    fi
    BUILD_SECS=$(secs_since "$t0")
    if grep -q 'Compiling dispatchctl' "$RUN_DIR/build.log"; then BUILD_NOTE="crate recompiled"; else BUILD_NOTE="all layers from cache"; fi
    ok "image $IMAGE built in ${BUILD_SECS}s ($BUILD_NOTE)"
}

# ---- provider stand-in and load generator -----------------------------------------------
# One small Python file (standard library only): `sink` answers after 250 ms, 200 to every
# delivery except to recipients starting with "ctest-reject", which get a permanent 400
# until the file RUN_DIR/provider-fixed exists; every answer is logged as
# "id<TAB>recipient<TAB>status".
# `load` creates notifications through the API, 8 at a time, and writes their ids.
write_helper() {
    cat >"$RUN_DIR/ctest.py" <<'EOF'
import json, os, sys, threading, time, urllib.request
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

def sink(bind, run_dir):
    log = open(os.path.join(run_dir, "sink.log"), "a", buffering=1)
    lock = threading.Lock()
    fixed = os.path.join(run_dir, "provider-fixed")

    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                to = str(json.loads(raw).get("to", ""))
            except (ValueError, AttributeError):
                to = ""
            nid = self.headers.get("X-Notification-Id", "")
            time.sleep(0.25)  # a provider's latency, so that deliveries are in flight at SIGTERM
            status = 400 if to.startswith("ctest-reject") and not os.path.exists(fixed) else 200
            with lock:
                log.write(f"{nid}\t{to}\t{status}\n")
            body = json.dumps({"id": f"prov-{nid}"} if status == 200 else {"error": "invalid recipient"}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    class S(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 256

    srv = S((bind, 0), H)
    with open(os.path.join(run_dir, "sink.port.tmp"), "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(os.path.join(run_dir, "sink.port.tmp"), os.path.join(run_dir, "sink.port"))
    srv.serve_forever(poll_interval=0.2)

def create(api, body):
    req = urllib.request.Request(api + "/v1/notifications", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=30) as r:
        if r.status != 202:
            raise SystemExit(f"create answered {r.status}, expected 202")
        return json.loads(r.read())["id"]

def load(api, n, out, tag):
    def body(i):
        ch = ("sms", "email", "push")[i % 3]
        to = {"sms": f"+9055{i:08d}", "email": f"{tag}{i}@example.com", "push": f"{tag}-device-{i}"}[ch]
        return {"channel": ch, "priority": ("high", "normal", "low")[i % 3], "recipient": to, "content": f"{tag} {i}"}
    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda i: create(api, body(i)), range(n)))
    with open(out, "w") as f:
        f.write("\n".join(ids) + "\n")

if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "sink":
        sink(sys.argv[2], sys.argv[3])
    elif cmd == "load":
        load(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5])
    elif cmd == "one":
        print(create(sys.argv[2], json.loads(sys.argv[3])))
    elif cmd == "dlq-summary":
        print("; ".join(f"{c['queue']} {c['depth']} {json.dumps(c['reasons'])}" for c in json.load(sys.stdin)))
EOF
}

# ---- helpers ----------------------------------------------------------------------------
wait_for() { # SECONDS WHAT COMMAND...: run COMMAND until it succeeds, at most SECONDS
    local limit=$1 what=$2
    shift 2
    local end=$((SECONDS + limit))
    until "$@"; do
        [ "$SECONDS" -lt "$end" ] || fail "$what: not within ${limit}s"
        sleep 0.5
    done
}
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
q() { psql "$DATABASE_DSN" -AtqXc "$1"; }
sink_count() { # STATUS [ID-FILE]: deliveries the provider answered with STATUS (distinct ids)
    if [ -n "${2:-}" ]; then
        awk -F'\t' -v st="$1" 'NR == FNR { want[$1] = 1; next } $3 == st && ($1 in want) { n[$1] = 1 } END { print length(n) }' "$2" "$RUN_DIR/sink.log"
    else
        awk -F'\t' -v st="$1" '$3 == st { n[$1] = 1 } END { print length(n) }' "$RUN_DIR/sink.log"
    fi
}
state_of() { ct inspect --format '{{.State.Status}}' "$1" 2>/dev/null || echo missing; }
health_of() { ct inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$1" 2>/dev/null || echo missing; }
exit_code_of() { ct inspect --format '{{.State.ExitCode}}' "$1"; }
has_exited() { [ "$(state_of "$1")" = exited ]; }
query_is() { [ "$(q "$1")" = "$2" ]; }
status_is() { query_is "select status from notifications where id = '$1'" "$2"; }
delivered_at_least() { [ "$(awk -F'\t' '$3 == 200' "$RUN_DIR/sink.log" | wc -l)" -ge "$1" ]; }
dlq_list() { oneshot inspect-dlq --list --id "$1" -o json 2>>"$RUN_DIR/oneshot.log"; }
dlq_has() {
    local out
    out=$(dlq_list "$1") && [[ $out == *"$1"* ]]
}

# Podman runs HEALTHCHECKs from systemd timers, and this machine has no systemd: a loop
# here runs each of this script's containers' own health check every 3 seconds instead,
# as Docker's engine would at the image's interval. Nothing of the check itself is changed.
HEALTH_TICKER_PID=""
start_health_ticker() {
    [ "$ENGINE" = podman ] || return 0
    (
        while :; do
            for c in $(podman ps --format '{{.Names}}' 2>/dev/null | grep "^$NAME_PREFIX"); do
                podman healthcheck run "$c" >/dev/null 2>&1 || true
            done
            sleep 3
        done
    ) &
    HEALTH_TICKER_PID=$!
}

wait_healthy() { # CONTAINER SECONDS
    local c=$1 end=$((SECONDS + $2)) h s
    while :; do
        h=$(health_of "$c")
        s=$(state_of "$c")
        [ "$h" = healthy ] && return 0
        if [ "$s" = exited ] || [ "$s" = missing ] || [ "$h" = unhealthy ] || [ "$h" = none ] || [ "$SECONDS" -ge "$end" ]; then
            ct logs --tail 30 "$c" >&2 2>&1 || true
            fail "$c: health '$h', state '$s' (expected healthy within $2s)"
        fi
        sleep 1
    done
}

remove_containers() {
    local names
    mapfile -t names < <(ct ps -a --format '{{.Names}}' 2>/dev/null | grep "^$NAME_PREFIX-" || true)
    [ ${#names[@]} -eq 0 ] || ct rm -f "${names[@]}" >/dev/null 2>&1 || true
}

SINK_PID=""
COMPOSE_UP=0
cleanup() {
    local rc=$?
    [ -z "$HEALTH_TICKER_PID" ] || kill "$HEALTH_TICKER_PID" 2>/dev/null || true
    [ -z "$SINK_PID" ] || kill "$SINK_PID" 2>/dev/null || true
    if [ "$COMPOSE_UP" = 1 ] && [ "$KEEP" = 0 ]; then compose down --volumes >/dev/null 2>&1 || true; fi
    [ -z "${PODMAN_SERVICE_PID:-}" ] || kill "$PODMAN_SERVICE_PID" 2>/dev/null || true
    if [ "$PRIVATE_SERVICES" = 1 ] && [ "$KEEP" = 0 ]; then scripts/chaos/services.sh "$RUN_DIR/services" stop || true; fi
    if [ "$KEEP" = 0 ]; then
        remove_containers
        if [ -n "${DATABASE_DSN:-}" ]; then
            psql "$PG_URL/postgres" -qXc "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" >/dev/null 2>&1 || true
            psql "$PG_URL/postgres" -qXc "DROP DATABASE IF EXISTS ${DB_NAME}_compose WITH (FORCE)" >/dev/null 2>&1 || true
        fi
        rm -rf "$RUN_DIR"
    else
        log "kept: containers $NAME_PREFIX-*, database $DB_NAME, run directory $RUN_DIR"
        if [ "$PRIVATE_SERVICES" = 1 ]; then log "private services still running; stop them with: scripts/chaos/services.sh $RUN_DIR/services stop"; fi
    fi
    if [ "$rc" -eq 0 ]; then log "passed in $(elapsed)"; else log "failed after $(elapsed)"; fi
}
trap cleanup EXIT

# ---- backends ---------------------------------------------------------------------------
# Databases made afresh each run, and queue and Redis key prefixes of this script's own.
# Queue prefixes rather than a private vhost: they need no broker administration (no
# rabbitmqctl, which is absent where the broker is a container, and which has been seen
# to hang on vhost changes on a busy shared broker). Each run drains its queues; they
# stay declared, empty, between runs.
fresh_database() { # NAME
    psql "$PG_URL/postgres" -qXc "DROP DATABASE IF EXISTS $1 WITH (FORCE)" >/dev/null || fail "cannot drop database $1 on $PG_URL"
    psql "$PG_URL/postgres" -qXc "CREATE DATABASE $1" >/dev/null || fail "cannot create database $1 on $PG_URL"
}
# A broker that accepts TCP but never answers the AMQP header is no use (seen on a shared
# node whose vhost changes hung): say so now rather than time out on deliveries later.
amqp_answers() { # HOST PORT
    # shellcheck disable=SC2016 # expanded by the inner bash
    timeout 5 bash -c 'exec 3<>"/dev/tcp/$1/$2" && printf "AMQP\0\0\11\1" >&3 && head -c 1 <&3 | od -An -tx1 | grep -q "[0-9a-f]"' _ "$1" "$2" 2>/dev/null
}
setup_backends() {
    command -v psql >/dev/null 2>&1 || fail "psql is needed (Debian: postgresql-client)"
    if [ "$PRIVATE_SERVICES" = 1 ]; then
        mkdir -p "$RUN_DIR/services"
        chmod 755 "$RUN_DIR" "$RUN_DIR/services" # the postgres and rabbitmq users work in there
        scripts/chaos/services.sh "$RUN_DIR/services" start || fail "starting private services (scripts/chaos/services.sh)"
        # shellcheck disable=SC1091
        . "$RUN_DIR/services/services.env"
        PG_URL="postgres://postgres@127.0.0.1:$CHAOS_PG_PORT"
        REDIS_URL="redis://127.0.0.1:$CHAOS_REDIS_PORT/0"
        RABBITMQ_URL="amqp://guest:guest@127.0.0.1:$CHAOS_AMQP_PORT/%2f"
    fi
    wait_for 60 "PostgreSQL at $PG_URL" psql "$PG_URL/postgres" -AtqXc 'select 1' >/dev/null
    local hostport="${RABBITMQ_URL#*@}"
    hostport="${hostport%%/*}"
    amqp_answers "${hostport%:*}" "${hostport##*:}" ||
        fail "RabbitMQ at $hostport does not answer the AMQP handshake (try --private-services)"
    fresh_database "$DB_NAME"
    DATABASE_DSN="$PG_URL/$DB_NAME"
    ok "backends: database $DB_NAME, broker ${RABBITMQ_URL#*@} with queue prefix ctest. (compose: ctestc.), Redis prefix $NAME_PREFIX:"
}

# ---- 1. the image -----------------------------------------------------------------------
check_image() {
    local user uid size_b size_mb bin_b base_b hc version want
    user=$(ct image inspect --format '{{.Config.User}}' "$IMAGE")
    [ "$user" = "10001:10001" ] || fail "image USER is '$user', expected 10001:10001"
    uid=$(ct run --rm --network none --entrypoint id "$IMAGE" -u)
    [ "$uid" = 10001 ] || fail "the image runs as uid '$uid', expected 10001"
    hc=$(ct image inspect --format '{{if .Config.Healthcheck}}{{join .Config.Healthcheck.Test " "}}{{end}}' "$IMAGE")
    [ -n "$hc" ] || fail "the image has no HEALTHCHECK (podman keeps it only with --format docker)"
    ok "runs as uid $uid (USER $user); HEALTHCHECK: $hc"

    want=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
    version=$(ct run --rm --network none --read-only "$IMAGE" --version)
    [ "$version" = "dispatchctl $want" ] || fail "image says '$version', Cargo.toml says version $want"
    ok "dispatchctl --version in the image: '$version' (Cargo.toml: $want)"

    size_b=$(ct image inspect --format '{{.Size}}' "$IMAGE")
    # BuildKit keeps the base it pulled to itself; the local store may not have it yet.
    ct image inspect debian:bookworm-slim >/dev/null 2>&1 || [ "$ENGINE" = podman ] || ct pull -q debian:bookworm-slim >/dev/null 2>&1 || true
    base_b=$(ct image inspect --format '{{.Size}}' debian:bookworm-slim 2>/dev/null || echo 0)
    bin_b=$(ct run --rm --network none --entrypoint stat "$IMAGE" -c %s /usr/local/bin/dispatchctl)
    size_mb=$(awk -v b="$size_b" 'BEGIN { printf "%.1f", b / 1e6 }')
    IMAGE_SIZE_MB=$size_mb
    log "image size: $size_mb MB = debian:bookworm-slim $(awk -v b="$base_b" 'BEGIN { printf "%.1f", b / 1e6 }') MB" \
        "+ dispatchctl binary $(awk -v b="$bin_b" 'BEGIN { printf "%.1f", b / 1e6 }') MB" \
        "+ ca-certificates and users $(awk -v a="$size_b" -v b="$base_b" -v c="$bin_b" 'BEGIN { printf "%.1f", (a - b - c) / 1e6 }') MB"
    [ "$size_b" -lt 100000000 ] || fail "image is $size_mb MB, the limit is 100 MB"
    ok "image is $size_mb MB (< 100 MB); the Debian base dominates"
}

# ---- 2. four containers -----------------------------------------------------------------
ENV_FLAGS=()
set_env_flags() {
    ENV_FLAGS=(
        -e "DATABASE_DSN=$DATABASE_DSN" -e "RABBITMQ_URL=$RABBITMQ_URL" -e "REDIS_URL=$REDIS_URL"
        -e QUEUE_PREFIX=ctest. -e "REDIS_KEY_PREFIX=$NAME_PREFIX:"
        -e "WEBHOOK_SITE_URL=http://127.0.0.1:$SINK_PORT/hook"
        -e RATE_LIMIT_PER_SEC=20 -e RETRY_BACKOFF_BASE=200ms -e RETRY_SCAN_INTERVAL=1s
        -e SCHEDULER_SCAN_INTERVAL=1s -e "SHUTDOWN_TIMEOUT=${SHUTDOWN_TIMEOUT_S}s"
        -e API_PORT="$API_PORT" -e LOG_LEVEL=info
    )
}
# What docker-compose.yml gives every dispatchctl container, on the host's network.
run_role() { # ROLE [run flags...] -- ARGS...
    local role=$1 flags=()
    shift
    while [ "$1" != -- ]; do
        flags+=("$1")
        shift
    done
    shift
    ct run -d --name "$NAME_PREFIX-$role" --network host --read-only --tmpfs /tmp \
        --cap-drop ALL --security-opt no-new-privileges "${ENV_FLAGS[@]}" "${flags[@]}" "$IMAGE" "$@" >/dev/null ||
        fail "cannot start the $role container"
}
oneshot() { # ARGS...: dispatchctl ARGS in a throw-away container with the same settings
    ct run --rm --network host --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges \
        "${ENV_FLAGS[@]}" "$IMAGE" "$@"
}

start_roles() {
    run_role migrate -- migrate
    wait_for 120 "migrate container to exit" has_exited "$NAME_PREFIX-migrate"
    local rc
    rc=$(exit_code_of "$NAME_PREFIX-migrate")
    [ "$rc" = 0 ] || {
        ct logs "$NAME_PREFIX-migrate" >&2
        fail "migrate exited $rc"
    }
    ok "migrate: exit 0 ($(q 'select count(*) from _sqlx_migrations') migrations applied, read-only root)"

    # The image's own HEALTHCHECK fits serve on 8080; on another port (8080 taken on this
    # host network) the check is the same command with the port changed, as compose does
    # for the worker (9091) and the scanner (9092).
    local api_hc=()
    if [ "$API_PORT" != 8080 ]; then
        api_hc=(--health-cmd "dispatchctl healthcheck --url http://127.0.0.1:$API_PORT/livez")
    fi
    run_role api "${api_hc[@]}" -- serve --api-only
    run_role worker --health-cmd "dispatchctl healthcheck --url http://127.0.0.1:$WORKER_PORT/livez" \
        -- worker --listen "127.0.0.1:$WORKER_PORT"
    run_role scanner --health-cmd "dispatchctl healthcheck --url http://127.0.0.1:$SCANNER_PORT/livez" \
        -- scan-retries --loop --listen "127.0.0.1:$SCANNER_PORT"
    local t0 role
    t0=$(now_s)
    for role in api worker scanner; do wait_healthy "$NAME_PREFIX-$role" 90; done
    ok "api, worker, scanner: HEALTHCHECK healthy after $(secs_since "$t0")s (read-only root, no capabilities)"
}

# ---- 3 and 4. load, SIGTERM mid-load, conservation, dead letter and replay --------------
run_load() {
    local api="http://127.0.0.1:$API_PORT" t0 reject_id
    t0=$(now_s)
    python3 "$RUN_DIR/ctest.py" load "$api" "$N" "$RUN_DIR/ids" ctest >"$RUN_DIR/load.log" 2>&1 &
    local load_pid=$!
    reject_id=$(python3 "$RUN_DIR/ctest.py" one "$api" \
        '{"channel":"push","priority":"high","recipient":"ctest-reject-1","content":"rejected until the provider is fixed"}') ||
        fail "creating the rejected notification"

    # SIGTERM once deliveries are well under way, with most of them still to come.
    wait_for 120 "first 50 deliveries" delivered_at_least 50
    local delivered_at_term sending_at_term in_flight t_term rc took
    delivered_at_term=$(sink_count 200)
    sending_at_term=$(q "select count(*) from notifications where status = 'SENDING'")
    t_term=$(now_s)
    ct kill --signal TERM "$NAME_PREFIX-worker" >/dev/null || fail "kill --signal TERM worker"
    wait_for $((SHUTDOWN_TIMEOUT_S + 30)) "worker to exit after SIGTERM" has_exited "$NAME_PREFIX-worker"
    took=$(secs_since "$t_term")
    rc=$(exit_code_of "$NAME_PREFIX-worker")
    in_flight=$(q "select count(*) from notifications where status = 'SENDING'")
    [ "$rc" = 0 ] || {
        ct logs --tail 30 "$NAME_PREFIX-worker" >&2 2>&1
        fail "worker exited $rc after SIGTERM (expected 0)"
    }
    awk -v t="$took" -v max="$SHUTDOWN_TIMEOUT_S" 'BEGIN { exit !(t <= max) }' ||
        fail "worker took ${took}s to exit after SIGTERM, SHUTDOWN_TIMEOUT is ${SHUTDOWN_TIMEOUT_S}s"
    [ "$in_flight" = 0 ] || fail "$in_flight notifications still SENDING after the worker drained"
    ok "SIGTERM after $delivered_at_term of $N deliveries ($sending_at_term SENDING): worker drained and exited 0 in ${took}s (SHUTDOWN_TIMEOUT ${SHUTDOWN_TIMEOUT_S}s), nothing left SENDING"

    wait "$load_pid" || {
        cat "$RUN_DIR/load.log" >&2
        fail "creating $N notifications through the API container"
    }
    [ "$(wc -l <"$RUN_DIR/ids")" -eq "$N" ] || fail "the load created $(wc -l <"$RUN_DIR/ids") notifications, expected $N"
    ok "$N notifications created through the API container (202 each) in $(secs_since "$t0")s"

    ct start "$NAME_PREFIX-worker" >/dev/null || fail "restarting the worker"
    wait_healthy "$NAME_PREFIX-worker" 90
    local sent_of_ids
    sent_of_ids="select count(*) from notifications where status = 'SENT' and id in ($(sed "s/.*/'&'/" "$RUN_DIR/ids" | paste -sd,))"
    wait_for 180 "all $N notifications SENT after the worker's restart" query_is "$sent_of_ids" "$N"
    local delivered lost dup
    delivered=$(sink_count 200 "$RUN_DIR/ids")
    [ "$delivered" = "$N" ] || fail "the provider saw $delivered of the $N notifications delivered"
    dup=$(awk -F'\t' '$3 == 200 { n[$1]++ } END { d = 0; for (k in n) if (n[k] > 1) d++; print d }' "$RUN_DIR/sink.log")
    lost=$(q "select count(*) from notifications where status not in ('SENT', 'FAILED')")
    [ "$lost" = 0 ] || fail "$lost notifications neither SENT nor FAILED"
    ok "conservation: $N created = $N SENT in PostgreSQL = $N delivered to the provider ($dup delivered twice), $(secs_since "$t0")s in all"

    # The rejected one: FAILED with its dead letter in ctest.dlq.push, then replayed from the image.
    wait_for 60 "the rejected notification to be FAILED" status_is "$reject_id" FAILED
    local dlq
    wait_for 30 "its dead letter in ctest.dlq.push" dlq_has "$reject_id"
    dlq=$(oneshot inspect-dlq -o json 2>>"$RUN_DIR/oneshot.log") || fail "inspect-dlq from the image"
    log "inspect-dlq (from the image): $(printf '%s' "$dlq" | python3 "$RUN_DIR/ctest.py" dlq-summary)"
    touch "$RUN_DIR/provider-fixed"
    oneshot replay --id "$reject_id" --yes --quiet >"$RUN_DIR/replay.out" 2>&1 || {
        cat "$RUN_DIR/replay.out" >&2
        fail "dispatchctl replay --id $reject_id (from the image)"
    }
    wait_for 60 "the replayed notification to be SENT" status_is "$reject_id" SENT
    grep -q "^$reject_id	ctest-reject-1	200" "$RUN_DIR/sink.log" || fail "the provider never got the replayed notification"
    local after
    after=$(dlq_list "$reject_id") || fail "inspect-dlq --list from the image"
    [[ $after != *"$reject_id"* ]] || fail "the replayed notification's dead letter is still in ctest.dlq.push"
    ok "rejected notification $reject_id: FAILED, dead-lettered, replayed with 'dispatchctl replay' from the image, then SENT"
}

# ---- 5. the compose stack ---------------------------------------------------------------
# Docker: `docker compose` with the stock images; the worker reaches the provider stand-in
# on the host through host.docker.internal. Podman: docker-compose v1 against a private
# `podman system service`, with docker/compose.host-services.yml. Compose v1 predates the
# top-level `name:` key and refuses port mappings on the host network (v2 ignores them),
# so it reads a copy of docker-compose.yml without `name:` and without the services'
# `ports:` (the project name is given with -p either way; paths stay relative to the
# repository).
COMPOSE_ARGS=()
compose() { "${COMPOSE_ARGS[@]}" "$@"; }
PODMAN_SERVICE_PID=""
setup_compose() {
    export DISPATCHCTL_IMAGE="$IMAGE" QUEUE_PREFIX=ctestc. REDIS_KEY_PREFIX="$NAME_PREFIX-compose:" LOG_LEVEL=info
    export RETRY_SCAN_INTERVAL=1s SCHEDULER_SCAN_INTERVAL=1s
    if [ "$ENGINE" = docker ]; then
        docker compose version >/dev/null 2>&1 || fail "docker compose (v2) is needed"
        cat >"$RUN_DIR/compose.ctest.yml" <<'YML'
services:
  worker:
    extra_hosts: ["host.docker.internal:host-gateway"]
YML
        # Host ports of the stock services away from those this script's checks use.
        read -r POSTGRES_PORT RABBITMQ_PORT RABBITMQ_MANAGEMENT_PORT REDIS_PORT API_HOST_PORT < <(
            for _ in 1 2 3 4 5; do free_port; done | paste -sd' '
        )
        export POSTGRES_PORT RABBITMQ_PORT RABBITMQ_MANAGEMENT_PORT REDIS_PORT API_HOST_PORT
        export WEBHOOK_SITE_URL="http://host.docker.internal:$SINK_PORT/hook"
        COMPOSE_API="http://127.0.0.1:$API_HOST_PORT"
        COMPOSE_ARGS=(docker compose -p "$COMPOSE_PROJECT" -f docker-compose.yml -f "$RUN_DIR/compose.ctest.yml")
    else
        awk '/^name:/ { next } /^    ports:$/ { skip = 1; next } skip && /^      - / { next } { skip = 0; print }' \
            docker-compose.yml >"$RUN_DIR/docker-compose.yml"
        podman system service --time=0 "unix://$RUN_DIR/podman.sock" >"$RUN_DIR/podman-service.log" 2>&1 &
        PODMAN_SERVICE_PID=$!
        wait_for 30 "podman system service" test -S "$RUN_DIR/podman.sock"
        export DOCKER_HOST="unix://$RUN_DIR/podman.sock"
        fresh_database "${DB_NAME}_compose"
        read -r API_PORT WORKER_PORT SCANNER_PORT < <(for _ in 1 2 3; do free_port; done | paste -sd' ')
        export API_PORT WORKER_PORT SCANNER_PORT
        export HOST_DATABASE_DSN="$PG_URL/${DB_NAME}_compose" HOST_RABBITMQ_URL="$RABBITMQ_URL" HOST_REDIS_URL="$REDIS_URL"
        export WEBHOOK_SITE_URL="http://127.0.0.1:$SINK_PORT/hook"
        COMPOSE_API="http://127.0.0.1:$API_PORT"
        COMPOSE_ARGS=(docker-compose --no-ansi -p "$COMPOSE_PROJECT" --project-directory "$ROOT"
            -f "$RUN_DIR/docker-compose.yml" -f docker/compose.host-services.yml)
    fi
}

# -a: compose v2 lists only running containers without it, and migrate has exited.
compose_container() { compose ps -a -q "$1" 2>/dev/null | head -1; }
check_compose() {
    local t0 svc c id
    t0=$(now_s)
    setup_compose
    compose down --volumes --remove-orphans >/dev/null 2>&1 || true
    COMPOSE_UP=1
    compose up -d --no-build migrate api worker scanner >"$RUN_DIR/compose-up.log" 2>&1 || {
        tail -30 "$RUN_DIR/compose-up.log" >&2
        fail "compose up (log: $RUN_DIR/compose-up.log)"
    }
    c=$(compose_container migrate)
    [ -n "$c" ] || fail "compose started no migrate container"
    wait_for 120 "compose migrate to exit" has_exited "$c"
    [ "$(exit_code_of "$c")" = 0 ] || fail "compose migrate exited $(exit_code_of "$c")"
    for svc in api worker scanner; do
        c=$(compose_container "$svc")
        [ -n "$c" ] || fail "compose started no $svc container"
        wait_healthy "$c" 120
    done
    ok "compose: migrate exited 0; api, worker, scanner healthy after $(secs_since "$t0")s"

    id=$(python3 "$RUN_DIR/ctest.py" one "$COMPOSE_API" \
        '{"channel":"email","priority":"normal","recipient":"compose@example.com","content":"through compose"}') ||
        fail "creating a notification through the compose API"
    wait_for 60 "the compose stack to deliver $id" grep -q "^$id	compose@example.com	200" "$RUN_DIR/sink.log"
    wait_for 30 "$id to read SENT through the compose API" api_status_is "$COMPOSE_API" "$id" SENT
    ok "compose: notification $id created through the API, delivered, SENT"

    compose down --volumes --remove-orphans >"$RUN_DIR/compose-down.log" 2>&1 || {
        tail -20 "$RUN_DIR/compose-down.log" >&2
        fail "compose down"
    }
    COMPOSE_UP=0
    [ -z "$(compose ps -a -q 2>/dev/null)" ] || fail "containers left after compose down"
    ok "compose: down removed every container ($(secs_since "$t0")s for the compose part)"
}
api_status_is() { curl -fsS "$1/v1/notifications/$2" 2>/dev/null | grep -q "\"status\":\"$3\""; }

# ---- main -------------------------------------------------------------------------------
log "engine: $ENGINE; cache: $CACHE; run directory: $RUN_DIR"
if [ "$ENGINE" = podman ]; then
    setup_podman
    make_debian_image
    make_rust_image
    ok "podman $(podman version --format '{{.Client.Version}}') with runc; local base images ready"
else
    command -v curl >/dev/null 2>&1 || fail "curl is needed"
fi
remove_containers
build_image
check_image

write_helper
if [ "$ENGINE" = docker ]; then SINK_BIND=0.0.0.0; else SINK_BIND=127.0.0.1; fi
: >"$RUN_DIR/sink.log"
python3 "$RUN_DIR/ctest.py" sink "$SINK_BIND" "$RUN_DIR" 2>"$RUN_DIR/sink.err" &
SINK_PID=$!
wait_for 20 "provider stand-in" test -s "$RUN_DIR/sink.port"
SINK_PORT=$(cat "$RUN_DIR/sink.port")
start_health_ticker

setup_backends
if port_free 8080; then API_PORT=8080; else API_PORT=$(free_port); fi
WORKER_PORT=$(free_port)
SCANNER_PORT=$(free_port)
set_env_flags
start_roles
run_load
ok "read-only root filesystem: migrate, serve --api-only, worker, scan-retries --loop, inspect-dlq, replay and --version all ran with --read-only (only /tmp is a tmpfs)"
[ "$KEEP" = 1 ] || remove_containers

if [ "$COMPOSE_PART" = 1 ]; then check_compose; fi
log "summary: image $IMAGE_SIZE_MB MB, build ${BUILD_SECS}s ($BUILD_NOTE), whole run $(elapsed)"
