#!/usr/bin/env bash
# Private PostgreSQL, Redis and RabbitMQ for scripts/chaos.sh: started inside one run
# directory, on free ports picked at start-up, listening on 127.0.0.1 only. The shared
# services of the machine (5432, 5672, 6379 and their epmd) are never touched: nothing
# here stops, signals or connects to anything it did not start itself.
#
# Usage: scripts/chaos/services.sh RUN_DIR ACTION
#   start [--tls]      pick ports, write RUN_DIR/services.env, start all three, wait for them;
#                      with --tls also make a private CA in RUN_DIR/tls and have each service
#                      speak TLS too: PostgreSQL on its port (ssl = on; the role "guest" may
#                      log in only by a client certificate), Redis on CHAOS_REDIS_TLS_PORT,
#                      RabbitMQ on CHAOS_AMQPS_PORT (client certificates optional, EXTERNAL
#                      login enabled). Server certificates name "localhost" only, so that
#                      127.0.0.1 is a wrong host name for the tests.
#   stop               stop all three (what is running of them); never fails
#   pg-restart         pg_ctl restart -m fast
#   pg-stop, pg-start  pg_ctl stop -m fast; pg_ctl start
#   pg-standby-start   start a streaming replica of the private PostgreSQL (pg_basebackup -R)
#                      on CHAOS_PG_STANDBY_PORT (added to services.env)
#   pg-promote         pg_ctl promote that replica: the fail-over
#   pg-failback        stop and delete the (promoted) replica, start the first instance again
#   redis-stop         SHUTDOWN NOSAVE the private Redis
#   redis-start        start it again on the same port
#   redis-sentinel-start  a second Redis behind Sentinel: master, replica and three
#                      sentinels naming it `chaos`, on CHAOS_SENTINEL_PORTS (added to services.env)
#   redis-sentinel-kill-master  SIGKILL that master
#   redis-sentinel-stop  stop all five and delete their data
#   rabbit-stop-app    rabbitmqctl stop_app on the private node
#   rabbit-start-app   rabbitmqctl start_app, then wait until it serves again
#   rabbit-wipe-restart  stop the private node, delete its data directory (queues, messages,
#                      definitions: a lost disk), start it again empty
#   rabbitmqctl ARGS   any rabbitmqctl command against the private node
#   rabbit-version     the version of RabbitMQ that the private node runs
#
# CHAOS_RABBITMQ=4 at `start` runs the private node on RabbitMQ 4.0 (scripts/rabbitmq4.sh);
# the default, 3, is the machine's own package. The choice is kept in services.env.
#
# The file can also be sourced (chaos.sh does): it then only defines functions.
# shellcheck disable=SC2317

chaos_log() { printf 'chaos: %s\n' "$*" >&2; }

# ---- ports ------------------------------------------------------------------------------
# Prints N free TCP ports of 127.0.0.1, below the ephemeral range so that outgoing
# connections do not take them while a service is down; then, when K is given, the first
# of K+1 contiguous free ports (rabbitmqctl's distribution range and the private epmd).
chaos_free_ports() {
    python3 - "$1" "${2:-0}" <<'PY'
import random, socket, sys
count, contiguous = int(sys.argv[1]), int(sys.argv[2])
held, ports = [], []
def grab(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        s.close()
        return False
    held.append(s)
    return True
rng = random.SystemRandom()
while len(ports) < count:
    p = rng.randrange(20000, 32000)
    if p not in ports and grab(p):
        ports.append(p)
if contiguous:
    while True:
        base = rng.randrange(20000, 32000 - contiguous)
        if all(grab(base + i) for i in range(contiguous + 1)):
            ports.append(base)
            break
print(" ".join(map(str, ports)))
PY
}

# ---- binaries ---------------------------------------------------------------------------
chaos_pg_bindir() {
    local d
    if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
        d="$(dirname "$(readlink -f "$(command -v pg_ctl)")")"
        [[ -x "$d/initdb" ]] && { printf '%s\n' "$d"; return 0; }
    fi
    d="$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -type d -name bin 2>/dev/null | sort -V | tail -n 1)"
    [[ -n "$d" && -x "$d/pg_ctl" ]] || return 1
    printf '%s\n' "$d"
}

# Which RabbitMQ a node of ours runs: CHAOS_RABBITMQ=4 is Debian 13's 4.0 in the root file
# system that scripts/rabbitmq4.sh keeps; otherwise (3) the machine's own package.
CHAOS_SCRIPTS="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Before chaos_rabbit_env points HOME at a node's own directory.
export DISPATCHCTL_CACHE="${DISPATCHCTL_CACHE:-$HOME/.cache/dispatchctl}"

# Runs one of RabbitMQ's scripts (rabbitmq-server, rabbitmqctl, …). For 3: the real scripts,
# not Debian's wrapper (which switches to the rabbitmq user and its home, where the shared
# node's cookie lives). For 4: inside the Debian 13 root, with the run directories bound.
chaos_rabbit_run() {
    local name="$1"
    shift
    if [[ "${CHAOS_RABBITMQ:-3}" == 4 ]]; then
        "$CHAOS_SCRIPTS/rabbitmq4.sh" exec "${CHAOS_RUN:-}:${CLUSTER_DIR:-}" "$name" "$@"
    elif [[ -x "/usr/lib/rabbitmq/bin/$name" ]]; then
        "/usr/lib/rabbitmq/bin/$name" "$@"
    else
        "$(command -v "$name")" "$@"
    fi
}

# rabbitmq.conf lines that make RabbitMQ 4 refuse what it deprecates, as later versions do
# by default, instead of permitting it with a warning: a test that relies on one fails.
chaos_rabbit_conf_deprecated() {
    [[ "${CHAOS_RABBITMQ:-3}" == 4 ]] || return 0
    local feature
    for feature in global_qos transient_nonexcl_queues queue_master_locator ram_node_type management_metrics_collection; do
        printf 'deprecated_features.permit.%s = false\n' "$feature"
    done
}

# The version of the RabbitMQ that chaos_rabbit_run runs.
chaos_rabbit_version() {
    if [[ "${CHAOS_RABBITMQ:-3}" == 4 ]]; then
        "$CHAOS_SCRIPTS/rabbitmq4.sh" version
    else
        dpkg-query -W -f '${Version}\n' rabbitmq-server 2>/dev/null | sed 's/-.*//'
    fi
}

# PostgreSQL refuses to run as root: run its tools as the postgres user.
chaos_as_pg() {
    if [[ "$(id -u)" -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

chaos_load_env() {
    local run="$1"
    [[ -f "$run/services.env" ]] || { chaos_log "no $run/services.env"; return 1; }
    # shellcheck disable=SC1091
    . "$run/services.env"
}

# Environment of every command (server and CLI) of one RabbitMQ node, in the caller's
# (subshell's) scope: a clean set of RABBITMQ_* variables and config files of its own in DIR,
# so that neither the system's rabbitmq-env.conf / rabbitmq.conf (node rabbit@localhost on
# 5672) nor the caller's environment leak in. rabbitmq-cluster.sh uses it for each node.
# Usage: rabbit_node_env DIR HOME NODE AMQP_PORT DIST_PORT CTL_MIN CTL_MAX EPMD_PORT
rabbit_node_env() {
    local d="$1"
    unset RABBITMQ_NODENAME RABBITMQ_NODE_IP_ADDRESS RABBITMQ_NODE_PORT RABBITMQ_DIST_PORT \
        RABBITMQ_MNESIA_BASE RABBITMQ_MNESIA_DIR RABBITMQ_LOG_BASE RABBITMQ_LOGS RABBITMQ_PID_FILE \
        RABBITMQ_CONFIG_FILE RABBITMQ_CONFIG_FILES RABBITMQ_ADVANCED_CONFIG_FILE \
        RABBITMQ_ENABLED_PLUGINS_FILE RABBITMQ_PLUGINS_DIR RABBITMQ_CONF_ENV_FILE \
        RABBITMQ_USE_LONGNAME RABBITMQ_SERVER_START_ARGS RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS
    export HOME="$2"
    export RABBITMQ_NODENAME="$3"
    export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
    export RABBITMQ_NODE_PORT="$4"
    export RABBITMQ_DIST_PORT="$5"
    export RABBITMQ_CTL_DIST_PORT_MIN="$6"
    export RABBITMQ_CTL_DIST_PORT_MAX="$7"
    export RABBITMQ_MNESIA_BASE="$d/mnesia"
    export RABBITMQ_LOG_BASE="$d/log"
    export RABBITMQ_PID_FILE="$d/rabbit.pid"
    export RABBITMQ_ENABLED_PLUGINS_FILE="$d/enabled_plugins"
    export RABBITMQ_CONFIG_FILE="$d/rabbitmq.conf"
    export RABBITMQ_ADVANCED_CONFIG_FILE="$d/advanced.config"
    export RABBITMQ_CONF_ENV_FILE="$d/rabbitmq-env.conf"
    export ERL_EPMD_PORT="$8"
    export ERL_EPMD_ADDRESS=127.0.0.1
    export ERL_FLAGS="-kernel inet_dist_use_interface {127,0,0,1}"
}

# The private node's.
chaos_rabbit_env() {
    rabbit_node_env "$CHAOS_RUN/rabbit" "$CHAOS_RUN/rabbit/home" "$CHAOS_RABBIT_NODE" "$CHAOS_AMQP_PORT" \
        "$CHAOS_RABBIT_DIST_PORT" "$CHAOS_RABBIT_CTL_MIN" "$CHAOS_RABBIT_CTL_MAX" "$CHAOS_EPMD_PORT"
}

chaos_rabbitmqctl() {
    (
        chaos_rabbit_env
        chaos_rabbit_run rabbitmqctl -n "$CHAOS_RABBIT_NODE" "$@"
    )
}

# ---- TLS --------------------------------------------------------------------------------
# A private CA (ca.pem), a server certificate for "localhost" (server.pem, server-key.pem) and
# a client certificate with CN=guest (client.pem, client-key.pem), P-256 keys, valid 30 days.
chaos_tls_make() {
    local t="$1" who cn ext
    mkdir -p "$t"
    (
        cd "$t" || exit 1
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
            -keyout ca-key.pem -out ca.pem -subj "/CN=dispatchctl private test CA" \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" || exit 1
        for who in server client; do
            if [[ "$who" == server ]]; then
                ext="subjectAltName=DNS:localhost"$'\n'"extendedKeyUsage=serverAuth"
                cn=localhost
            else
                ext="extendedKeyUsage=clientAuth"
                cn=guest
            fi
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
                -keyout "$who-key.pem" -out "$who.csr" -subj "/CN=$cn" || exit 1
            printf '%s\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n' "$ext" >"$who.ext"
            openssl x509 -req -in "$who.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 30 \
                -extfile "$who.ext" -out "$who.pem" || exit 1
        done
        chmod 644 ./*.pem && chmod 600 ./*-key.pem # libpq refuses a key others can read
    ) >"$t/openssl.log" 2>&1 || { chaos_log "openssl failed:"; tail -n 20 "$t/openssl.log" >&2; return 1; }
}

# ---- PostgreSQL -------------------------------------------------------------------------
chaos_pg_start() {
    local bin d="$CHAOS_RUN/pg" make_guest=""
    bin="$(chaos_pg_bindir)" || { chaos_log "no PostgreSQL binaries (initdb, pg_ctl) found"; return 1; }
    mkdir -p "$d"
    if [[ "$(id -u)" -eq 0 ]]; then chown postgres: "$d"; fi
    if [[ ! -f "$d/data/PG_VERSION" ]]; then
        chaos_as_pg "$bin/initdb" -D "$d/data" -U postgres --auth=trust -E UTF8 >"$d/initdb.log" 2>&1 \
            || { chaos_log "initdb failed:"; tail -n 20 "$d/initdb.log" >&2; return 1; }
        cat >>"$d/data/postgresql.conf" <<EOF
# chaos.sh: private instance
port = $CHAOS_PG_PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$d'
max_connections = 100
shared_buffers = 64MB
EOF
        if [[ -n "${CHAOS_TLS_DIR:-}" ]]; then
            # PostgreSQL wants its key private to its own user.
            install -m 600 "$CHAOS_TLS_DIR/server.pem" "$d/data/server.crt"
            install -m 600 "$CHAOS_TLS_DIR/server-key.pem" "$d/data/server.key"
            install -m 644 "$CHAOS_TLS_DIR/ca.pem" "$d/data/root.crt"
            if [[ "$(id -u)" -eq 0 ]]; then chown postgres: "$d/data/server.crt" "$d/data/server.key" "$d/data/root.crt"; fi
            cat >>"$d/data/postgresql.conf" <<EOF
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
ssl_ca_file = 'root.crt'
EOF
            # First match wins: "guest" only over TLS with a certificate the CA signed.
            { printf 'hostssl all guest 127.0.0.1/32 cert\nhost all guest 127.0.0.1/32 reject\n'; cat "$d/data/pg_hba.conf"; } >"$d/data/pg_hba.new"
            mv "$d/data/pg_hba.new" "$d/data/pg_hba.conf"
            if [[ "$(id -u)" -eq 0 ]]; then chown postgres: "$d/data/pg_hba.conf"; fi
            make_guest=1
        fi
    fi
    chaos_as_pg "$bin/pg_ctl" -D "$d/data" -l "$d/postgres.log" -w -t 60 start >/dev/null \
        || { chaos_log "PostgreSQL did not start:"; tail -n 20 "$d/postgres.log" >&2; return 1; }
    if [[ -n "$make_guest" ]]; then
        chaos_as_pg "$bin/psql" -h "$d" -p "$CHAOS_PG_PORT" -U postgres -qAtc "CREATE ROLE guest LOGIN CREATEDB" postgres >/dev/null \
            || { chaos_log "could not create the role guest"; return 1; }
    fi
}

chaos_pg_restart() {
    local bin d="$CHAOS_RUN/pg"
    bin="$(chaos_pg_bindir)"
    chaos_as_pg "$bin/pg_ctl" -D "$d/data" -l "$d/postgres.log" -m fast -w -t 60 restart >/dev/null
}

# A plain outage: stop now, start again later with chaos_pg_start.
chaos_pg_down() {
    local bin d="$CHAOS_RUN/pg"
    bin="$(chaos_pg_bindir)"
    chaos_as_pg "$bin/pg_ctl" -D "$d/data" -m fast -w -t 60 stop >/dev/null
}

# Stops the instance in ${1:-$CHAOS_RUN/pg} if it runs (fast, else immediate); never fails.
chaos_pg_stop() {
    local bin d="${1:-$CHAOS_RUN/pg}"
    [[ -f "$d/data/postmaster.pid" ]] || return 0
    bin="$(chaos_pg_bindir)" || return 0
    chaos_as_pg "$bin/pg_ctl" -D "$d/data" -m fast -w -t 30 stop >/dev/null 2>&1 \
        || chaos_as_pg "$bin/pg_ctl" -D "$d/data" -m immediate -w -t 30 stop >/dev/null 2>&1 \
        || true
}

# A streaming replica of the private PostgreSQL (pg_basebackup -R) on CHAOS_PG_STANDBY_PORT,
# for the multi-host DSN tests and the pg-failover scenario. The port is picked the first
# time and kept in services.env.
chaos_pg_standby_start() {
    local bin d="$CHAOS_RUN/pg-standby"
    bin="$(chaos_pg_bindir)" || return 1
    if [[ -z "${CHAOS_PG_STANDBY_PORT:-}" ]]; then
        CHAOS_PG_STANDBY_PORT="$(chaos_free_ports 1)"
        echo "CHAOS_PG_STANDBY_PORT=$CHAOS_PG_STANDBY_PORT" >>"$CHAOS_RUN/services.env"
    fi
    mkdir -p "$d"
    if [[ "$(id -u)" -eq 0 ]]; then chown postgres: "$d"; fi
    if [[ ! -f "$d/data/PG_VERSION" ]]; then
        # --checkpoint=fast: the default spread checkpoint waits out most of
        # checkpoint_timeout when one is in progress, past the harness's 120 s for an action.
        chaos_as_pg "$bin/pg_basebackup" -h "$CHAOS_RUN/pg" -p "$CHAOS_PG_PORT" -U postgres -D "$d/data" -R -X stream \
            --checkpoint=fast \
            >"$d/basebackup.log" 2>&1 \
            || { chaos_log "pg_basebackup failed:"; tail -n 20 "$d/basebackup.log" >&2; return 1; }
        cat >>"$d/data/postgresql.conf" <<EOF
# chaos.sh: the private instance's standby
port = $CHAOS_PG_STANDBY_PORT
unix_socket_directories = '$d'
EOF
    fi
    chaos_as_pg "$bin/pg_ctl" -D "$d/data" -l "$d/postgres.log" -w -t 60 start >/dev/null \
        || { chaos_log "the PostgreSQL standby did not start:"; tail -n 20 "$d/postgres.log" >&2; return 1; }
}

# The standby becomes a primary (the fail-over); pg_ctl waits until it accepts writes.
chaos_pg_promote() {
    local bin
    bin="$(chaos_pg_bindir)" || return 1
    chaos_as_pg "$bin/pg_ctl" -D "$CHAOS_RUN/pg-standby/data" -w -t 60 promote >/dev/null
}

# After a fail-over: the promoted standby goes, and the old primary serves again.
chaos_pg_failback() {
    local bin
    chaos_pg_standby_stop
    rm -rf "$CHAOS_RUN/pg-standby"
    bin="$(chaos_pg_bindir)" || return 1
    # A scenario that failed before the fail-over leaves the primary running.
    chaos_as_pg "$bin/pg_ctl" -D "$CHAOS_RUN/pg/data" status >/dev/null 2>&1 || chaos_pg_start
}

chaos_pg_standby_stop() { chaos_pg_stop "$CHAOS_RUN/pg-standby"; }

# ---- Redis ------------------------------------------------------------------------------
chaos_redis_start() {
    local d="$CHAOS_RUN/redis" i
    mkdir -p "$d"
    local tls=()
    if [[ -n "${CHAOS_TLS_DIR:-}" ]]; then
        tls=(--tls-port "$CHAOS_REDIS_TLS_PORT" --tls-cert-file "$CHAOS_TLS_DIR/server.pem"
            --tls-key-file "$CHAOS_TLS_DIR/server-key.pem" --tls-ca-cert-file "$CHAOS_TLS_DIR/ca.pem"
            --tls-auth-clients optional)
    fi
    redis-server --port "$CHAOS_REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
        --daemonize yes --dir "$d" --pidfile "$d/redis.pid" --logfile "$d/redis.log" "${tls[@]}" || return 1
    for ((i = 0; i < 100; i++)); do
        [[ "$(redis-cli -h 127.0.0.1 -p "$CHAOS_REDIS_PORT" ping 2>/dev/null)" == PONG ]] && return 0
        sleep 0.1
    done
    chaos_log "Redis did not answer on $CHAOS_REDIS_PORT"
    return 1
}

chaos_redis_stop() {
    local d="$CHAOS_RUN/redis" pid i
    [[ -f "$d/redis.pid" ]] || return 0
    pid="$(cat "$d/redis.pid" 2>/dev/null)"
    redis-cli -h 127.0.0.1 -p "$CHAOS_REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
    for ((i = 0; i < 50; i++)); do
        if [[ -z "$pid" ]] || ! kill -0 "$pid" 2>/dev/null; then break; fi
        sleep 0.1
    done
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    rm -f "$d/redis.pid"
}

# A Redis of its own behind Sentinel: a master, a replica of it and three sentinels
# (quorum 2, a master is down after 1 s) that call it `chaos`, on CHAOS_SENTINEL_PORTS
# ("master replica sentinel1 sentinel2 sentinel3", added to services.env). Apart from the
# private Redis above, so that a fail-over here never turns another test's Redis read-only.
chaos_redis_sentinel_start() {
    local d="$CHAOS_RUN/sentinel" ports i n
    if [[ -z "${CHAOS_SENTINEL_PORTS:-}" ]]; then
        CHAOS_SENTINEL_PORTS="$(chaos_free_ports 5)"
        echo "CHAOS_SENTINEL_PORTS='$CHAOS_SENTINEL_PORTS'" >>"$CHAOS_RUN/services.env"
    fi
    read -r -a ports <<<"$CHAOS_SENTINEL_PORTS"
    mkdir -p "$d"
    redis-server --port "${ports[0]}" --bind 127.0.0.1 --save "" --appendonly no \
        --daemonize yes --dir "$d" --pidfile "$d/master.pid" --logfile "$d/master.log" || return 1
    redis-server --port "${ports[1]}" --bind 127.0.0.1 --save "" --appendonly no --replicaof 127.0.0.1 "${ports[0]}" \
        --daemonize yes --dir "$d" --pidfile "$d/replica.pid" --logfile "$d/replica.log" || return 1
    for i in 2 3 4; do
        cat >"$d/sentinel-$i.conf" <<EOF
port ${ports[$i]}
bind 127.0.0.1
daemonize yes
dir $d
pidfile $d/sentinel-$i.pid
logfile $d/sentinel-$i.log
sentinel monitor chaos 127.0.0.1 ${ports[0]} 2
sentinel down-after-milliseconds chaos 1000
sentinel failover-timeout chaos 5000
EOF
        redis-server "$d/sentinel-$i.conf" --sentinel || return 1
    done
    # Ready once every sentinel sees the replica (a fail-over needs one to promote).
    for ((n = 0; n < 150; n++)); do
        local ready=1
        for i in 2 3 4; do
            [[ "$(redis-cli -h 127.0.0.1 -p "${ports[$i]}" sentinel replicas chaos 2>/dev/null | grep -c "^ip$")" -ge 1 ]] || ready=0
        done
        ((ready)) && return 0
        sleep 0.2
    done
    chaos_log "Redis Sentinel did not see the replica; see $d"
    return 1
}

chaos_redis_sentinel_stop() {
    local d="$CHAOS_RUN/sentinel" f pid
    for f in "$d"/sentinel-*.pid "$d"/replica.pid "$d"/master.pid; do
        [[ -f "$f" ]] || continue
        pid="$(cat "$f" 2>/dev/null)"
        [[ -n "$pid" ]] && kill -KILL "$pid" 2>/dev/null
        rm -f "$f"
    done
    return 0
}

# ---- RabbitMQ ---------------------------------------------------------------------------
chaos_rabbit_wait() {
    local i
    for ((i = 0; i < 90; i++)); do
        chaos_rabbitmqctl -q await_startup >/dev/null 2>&1 && return 0
        sleep 1
    done
    chaos_log "RabbitMQ node $CHAOS_RABBIT_NODE did not start; see $CHAOS_RUN/rabbit/log"
    return 1
}

chaos_rabbit_start() {
    local r="$CHAOS_RUN/rabbit"
    mkdir -p "$r/home" "$r/mnesia" "$r/log"
    : >"$r/enabled_plugins"
    : >"$r/rabbitmq-env.conf"
    cat >"$r/rabbitmq.conf" <<EOF
listeners.tcp.default = 127.0.0.1:$CHAOS_AMQP_PORT
loopback_users.guest = true
log.console = false
log.file.level = info
EOF
    chaos_rabbit_conf_deprecated >>"$r/rabbitmq.conf"
    if [[ -n "${CHAOS_TLS_DIR:-}" ]]; then
        # EXTERNAL logs in as the client certificate's CN (guest).
        echo '[rabbitmq_auth_mechanism_ssl].' >"$r/enabled_plugins"
        cat >>"$r/rabbitmq.conf" <<EOF
listeners.ssl.default = 127.0.0.1:$CHAOS_AMQPS_PORT
ssl_options.cacertfile = $CHAOS_TLS_DIR/ca.pem
ssl_options.certfile = $CHAOS_TLS_DIR/server.pem
ssl_options.keyfile = $CHAOS_TLS_DIR/server-key.pem
ssl_options.verify = verify_peer
ssl_options.fail_if_no_peer_cert = false
auth_mechanisms.1 = PLAIN
auth_mechanisms.2 = AMQPLAIN
auth_mechanisms.3 = EXTERNAL
ssl_cert_login_from = common_name
EOF
    fi
    (
        chaos_rabbit_env
        chaos_rabbit_run rabbitmq-server -detached >"$r/log/startup.log" 2>&1
    ) || { chaos_log "rabbitmq-server -detached failed"; return 1; }
    chaos_rabbit_wait
}

chaos_rabbit_stop() {
    local r="$CHAOS_RUN/rabbit" pid i
    [[ -d "$r/home" ]] || return 0
    pid="$(cat "$r/rabbit.pid" 2>/dev/null || true)"
    chaos_rabbitmqctl -q stop >/dev/null 2>&1 || true
    for ((i = 0; i < 20; i++)); do
        if [[ -z "$pid" ]] || ! kill -0 "$pid" 2>/dev/null; then break; fi
        sleep 0.25
    done
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    # The private epmd that the node started on its own port.
    ERL_EPMD_PORT="$CHAOS_EPMD_PORT" epmd -port "$CHAOS_EPMD_PORT" -kill >/dev/null 2>&1 || true
}

# ---- all --------------------------------------------------------------------------------
chaos_services_start() {
    local run="$1" tls="${2:-}" ports ctl
    read -r -a ports <<<"$(chaos_free_ports 6 10)"
    ctl="${ports[6]}"
    cat >"$run/services.env" <<EOF
CHAOS_RUN='$run'
CHAOS_PG_PORT=${ports[0]}
CHAOS_REDIS_PORT=${ports[1]}
CHAOS_AMQP_PORT=${ports[2]}
CHAOS_RABBIT_DIST_PORT=${ports[3]}
CHAOS_RABBIT_CTL_MIN=$ctl
CHAOS_RABBIT_CTL_MAX=$((ctl + 9))
CHAOS_EPMD_PORT=$((ctl + 10))
CHAOS_RABBIT_NODE='chaos-$$@localhost'
CHAOS_RABBITMQ=${CHAOS_RABBITMQ:-3}
EOF
    if [[ "$tls" == --tls ]]; then
        chaos_tls_make "$run/tls" || return 1
        cat >>"$run/services.env" <<EOF
CHAOS_TLS_DIR='$run/tls'
CHAOS_REDIS_TLS_PORT=${ports[4]}
CHAOS_AMQPS_PORT=${ports[5]}
EOF
    fi
    chaos_load_env "$run" || return 1
    chaos_log "private services: postgres 127.0.0.1:$CHAOS_PG_PORT, redis 127.0.0.1:$CHAOS_REDIS_PORT, rabbitmq $(chaos_rabbit_version) 127.0.0.1:$CHAOS_AMQP_PORT ($CHAOS_RABBIT_NODE)"
    chaos_pg_start || return 1
    chaos_redis_start || return 1
    chaos_rabbit_start || return 1
}

chaos_services_stop() {
    local run="$1"
    chaos_load_env "$run" 2>/dev/null || return 0
    chaos_rabbit_stop
    chaos_redis_stop
    chaos_redis_sentinel_stop
    chaos_pg_standby_stop
    chaos_pg_stop
}

chaos_services_main() {
    local run="${1:?usage: services.sh RUN_DIR ACTION}" action="${2:?usage: services.sh RUN_DIR ACTION}"
    shift 2
    case "$action" in
        start) chaos_services_start "$run" "${1:-}" ;;
        stop) chaos_services_stop "$run" ;;
        *)
            chaos_load_env "$run" || return 1
            case "$action" in
                pg-restart) chaos_pg_restart ;;
                pg-stop) chaos_pg_down ;;
                pg-start) chaos_pg_start ;;
                pg-standby-start) chaos_pg_standby_start ;;
                pg-promote) chaos_pg_promote ;;
                pg-failback) chaos_pg_failback ;;
                redis-stop) chaos_redis_stop ;;
                redis-start) chaos_redis_start ;;
                redis-sentinel-start) chaos_redis_sentinel_start ;;
                redis-sentinel-kill-master) kill -KILL "$(cat "$CHAOS_RUN/sentinel/master.pid")" ;;
                redis-sentinel-stop) chaos_redis_sentinel_stop && rm -rf "$CHAOS_RUN/sentinel" ;;
                rabbit-stop-app) chaos_rabbitmqctl -q stop_app ;;
                rabbit-start-app) chaos_rabbitmqctl -q start_app && chaos_rabbit_wait ;;
                rabbit-wipe-restart) chaos_rabbit_stop && rm -rf "$CHAOS_RUN/rabbit/mnesia" && chaos_rabbit_start ;;
                rabbitmqctl) chaos_rabbitmqctl "$@" ;;
                rabbit-version) chaos_rabbit_version ;;
                *) chaos_log "unknown action: $action"; return 2 ;;
            esac
            ;;
    esac
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    set -uo pipefail
    chaos_services_main "$@"
fi
