#!/usr/bin/env bash
# A private three-node RabbitMQ cluster on 127.0.0.1, made of the machine's own RabbitMQ
# installation, for the chaos suite's quorum-queue scenarios (scripts/chaos.sh) and for
# trying RABBITMQ_URL failover by hand. The machine's own broker (node rabbit@localhost,
# AMQP 5672, distribution 25672, epmd 4369) is never touched: the nodes here have their own
# names, ports, data directories, Erlang cookie and epmd, and only their own pids are
# signalled.
#
# Usage: scripts/rabbitmq-cluster.sh ACTION DIR [ARGS...]
#   start DIR            start three nodes one by one, join them, wait until all three run;
#                        writes DIR/cluster.env (node names, ports, RABBITMQ_URL)
#   stop DIR             stop every node of DIR (what is running of them); never fails
#   status DIR           one line per node: index name amqp_port running|down
#   kill DIR NODE        SIGKILL the node's Erlang VM (an unclean crash)
#   stop-node DIR NODE   rabbitmqctl stop: a clean shutdown of one node
#   restart DIR NODE     start a killed or stopped node again; waits until the cluster
#                        lists it as running
#   leaders DIR [PREFIX] queues (whose name starts with PREFIX) as
#                        name<TAB>type<TAB>leader<TAB>members; a classic queue's node
#                        stands in for the leader
#   connections DIR      client connections as name<TAB>node (found by the AMQP port each
#                        node listens on)
#   ctl DIR NODE ARGS    any rabbitmqctl command against that node (`rabbitmqctl -n NODE`)
#   queues DIR NODE ARGS any rabbitmq-queues command against that node
#
# NODE is 1, 2 or 3, or the node's name. DIR must exist; it holds the nodes' data, logs
# and pid files (DIR/node1 ...). DIR/cluster.env can be sourced; besides the per-node
# CLUSTER_NODE_i and CLUSTER_AMQP_PORT_i it has
#   RABBITMQ_URL=amqp://guest:guest@127.0.0.1:P1/%2f,amqp://...:P2/%2f,amqp://...:P3/%2f
# (guest may connect over 127.0.0.1: loopback_users keeps it to loopback).
#
# Example:
#   d=$(mktemp -d); scripts/rabbitmq-cluster.sh start "$d" && . "$d/cluster.env"
#   RABBITMQ_URL="$RABBITMQ_URL" QUEUE_TYPE=quorum dispatchctl serve ...
#   scripts/rabbitmq-cluster.sh stop "$d"
#
# A start takes ~20-40 s on 2 cores; each node takes ~150 MB; each rabbitmqctl call costs
# ~1.5 s of CPU. Needs rabbitmq-server, rabbitmqctl, epmd, python3. Set a trap that runs
# `stop DIR` before `start DIR`: a script killed mid-way would leave the nodes running.
# Exit status: 0 on success, 1 when the action failed, 2 on a usage error.
set -uo pipefail

CLUSTER_SIZE=3
_CLUSTER_HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# Port picking and the path of the real RabbitMQ scripts are shared with the single
# private node of the chaos suite.
# shellcheck source=scripts/chaos/services.sh
. "$_CLUSTER_HERE/chaos/services.sh"

cluster_log() { printf 'rabbitmq-cluster: %s\n' "$*" >&2; }

cluster_load() {
    local dir="$1"
    [[ -f "$dir/cluster.env" ]] || { cluster_log "no $dir/cluster.env (was the cluster started?)"; return 1; }
    # shellcheck disable=SC1091
    . "$dir/cluster.env"
}

# Index (1..3) of a node given as an index, a full name or the part before '@'.
cluster_index() {
    local want="$1" i name
    if [[ "$want" =~ ^[1-9]$ ]] && ((want <= CLUSTER_SIZE)); then
        printf '%s\n' "$want"
        return 0
    fi
    for ((i = 1; i <= CLUSTER_SIZE; i++)); do
        name="CLUSTER_NODE_$i"
        if [[ "$want" == "${!name}" || "$want" == "${!name%@*}" ]]; then
            printf '%s\n' "$i"
            return 0
        fi
    done
    cluster_log "unknown node '$want'; one of 1..$CLUSTER_SIZE or $(cluster_names)"
    return 1
}

cluster_names() {
    local i name out=()
    for ((i = 1; i <= CLUSTER_SIZE; i++)); do
        name="CLUSTER_NODE_$i"
        out+=("${!name}")
    done
    printf '%s\n' "${out[*]}"
}

# Environment of every command (server and CLI) of node i, in a subshell's scope
# (`rabbit_node_env`, services.sh). HOME is shared by the three nodes: it holds their
# common cookie.
cluster_env() {
    local node="CLUSTER_NODE_$1" port="CLUSTER_AMQP_PORT_$1" dist="CLUSTER_DIST_PORT_$1"
    rabbit_node_env "$CLUSTER_DIR/node$1" "$CLUSTER_DIR/home" "${!node}" "${!port}" "${!dist}" \
        "$CLUSTER_CTL_MIN" "$CLUSTER_CTL_MAX" "$CLUSTER_EPMD_PORT"
}

# rabbitmqctl (or another CLI tool) against node i, always with -n.
cluster_cli() {
    local tool="$1" i="$2" node
    shift 2
    node="CLUSTER_NODE_$i"
    (
        cluster_env "$i"
        chaos_rabbit_run "$tool" -n "${!node}" "$@"
    )
}

cluster_ctl() {
    local i="$1"
    shift
    cluster_cli rabbitmqctl "$i" "$@"
}

cluster_pid() {
    local f="$CLUSTER_DIR/node$1/rabbit.pid" pid
    pid="$(cat "$f" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    printf '%s\n' "$pid"
}

# A detached node is the child of PID 1, which may be slow to reap it: a zombie is dead.
pid_running() {
    local state
    kill -0 "$1" 2>/dev/null || return 1
    state="$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" || return 1
    [[ -n "$state" && "$state" != Z ]]
}

cluster_alive() {
    local pid
    pid="$(cluster_pid "$1")" || return 1
    pid_running "$pid"
}

cluster_boot() {
    local i="$1" d="$CLUSTER_DIR/node$1" port="CLUSTER_AMQP_PORT_$1"
    mkdir -p "$d/mnesia" "$d/log"
    # No plugins: no management or Prometheus listener to clash with the shared node's.
    printf '[].\n' >"$d/enabled_plugins"
    : >"$d/rabbitmq-env.conf"
    cat >"$d/rabbitmq.conf" <<EOF
listeners.tcp.default = 127.0.0.1:${!port}
loopback_users.guest = true
log.console = false
log.file.level = info
EOF
    chaos_rabbit_conf_deprecated >>"$d/rabbitmq.conf"
    rm -f "$d/rabbit.pid"
    (
        cluster_env "$i"
        chaos_rabbit_run rabbitmq-server -detached >>"$d/log/startup.log" 2>&1
    ) || { cluster_log "node $i: rabbitmq-server -detached failed; see $d/log"; return 1; }
    cluster_await "$i"
}

cluster_await() {
    local i="$1" n
    for ((n = 0; n < 120; n++)); do
        cluster_ctl "$i" -q await_startup --timeout 5 >/dev/null 2>&1 && return 0
        sleep 1
    done
    cluster_log "node $i did not start; see $CLUSTER_DIR/node$i/log"
    return 1
}

# Running nodes as the cluster sees them, asked of node i.
cluster_running_nodes() {
    cluster_ctl "$1" -q cluster_status --formatter json 2>/dev/null \
        | python3 -c 'import json, sys; print(" ".join(sorted(json.load(sys.stdin).get("running_nodes", []))))'
}

# Waits until node `via` lists `want` running nodes (and, when given, node `member` among them).
cluster_wait_running() {
    local via="$1" want="$2" member="${3:-}" n running name=""
    [[ -n "$member" ]] && name="CLUSTER_NODE_$member" && name="${!name}"
    for ((n = 0; n < 60; n++)); do
        running="$(cluster_running_nodes "$via" || true)"
        if [[ -n "$running" ]] && (($(wc -w <<<"$running") >= want)) \
            && { [[ -z "$name" ]] || [[ " $running " == *" $name "* ]]; }; then
            return 0
        fi
        sleep 1
    done
    cluster_log "the cluster (asked of node $via) lists running nodes '${running:-?}', expected $want${name:+ with $name}"
    return 1
}

cluster_start() {
    local dir ports ctl i url="" started
    dir="$(cd "$1" && pwd)" || { cluster_log "no directory $1"; return 2; }
    if [[ -f "$dir/cluster.env" ]]; then
        cluster_load "$dir" || return 1
        for ((i = 1; i <= CLUSTER_SIZE; i++)); do
            if cluster_alive "$i"; then
                cluster_log "a cluster already runs in $dir (node $i); stop it first"
                return 1
            fi
        done
    fi
    started=$SECONDS
    read -r -a ports <<<"$(chaos_free_ports $((2 * CLUSTER_SIZE)) 10)"
    ctl="${ports[$((2 * CLUSTER_SIZE))]}"
    {
        printf "CLUSTER_DIR='%s'\n" "$dir"
        for ((i = 1; i <= CLUSTER_SIZE; i++)); do
            printf "CLUSTER_NODE_%d='rq%d-%s@localhost'\n" "$i" "$i" "$$"
            printf 'CLUSTER_AMQP_PORT_%d=%s\n' "$i" "${ports[$((i - 1))]}"
            printf 'CLUSTER_DIST_PORT_%d=%s\n' "$i" "${ports[$((CLUSTER_SIZE + i - 1))]}"
            url+="${url:+,}amqp://guest:guest@127.0.0.1:${ports[$((i - 1))]}/%2f"
        done
        printf 'CLUSTER_CTL_MIN=%s\nCLUSTER_CTL_MAX=%s\nCLUSTER_EPMD_PORT=%s\n' \
            "$ctl" "$((ctl + 9))" "$((ctl + 10))"
        printf "RABBITMQ_URL='%s'\n" "$url"
    } >"$dir/cluster.env"
    cluster_load "$dir" || return 1
    mkdir -p "$dir/home"
    chmod 700 "$dir/home"
    # One cookie for the three nodes and their CLI, unrelated to the shared node's.
    if [[ ! -s "$dir/home/.erlang.cookie" ]]; then
        python3 -c 'import secrets; print(secrets.token_hex(20).upper(), end="")' >"$dir/home/.erlang.cookie"
        chmod 400 "$dir/home/.erlang.cookie"
    fi
    # One by one: three nodes booting and joining each other at once can deadlock.
    cluster_log "starting node 1 ($CLUSTER_NODE_1, amqp 127.0.0.1:$CLUSTER_AMQP_PORT_1)"
    cluster_boot 1 || return 1
    for ((i = 2; i <= CLUSTER_SIZE; i++)); do
        local node="CLUSTER_NODE_$i" port="CLUSTER_AMQP_PORT_$i"
        cluster_log "starting node $i (${!node}, amqp 127.0.0.1:${!port}) and joining it to $CLUSTER_NODE_1"
        cluster_boot "$i" || return 1
        cluster_ctl "$i" -q stop_app >/dev/null || { cluster_log "node $i: stop_app failed"; return 1; }
        # The CLI logs harmless "tracked connection table" errors while the node joins.
        cluster_ctl "$i" -q join_cluster "$CLUSTER_NODE_1" >>"$CLUSTER_DIR/node$i/log/startup.log" 2>&1 \
            || { cluster_log "node $i: join_cluster $CLUSTER_NODE_1 failed"; return 1; }
        cluster_ctl "$i" -q start_app >/dev/null || { cluster_log "node $i: start_app failed"; return 1; }
        cluster_await "$i" || return 1
    done
    cluster_wait_running 1 "$CLUSTER_SIZE" || return 1
    cluster_log "cluster of $CLUSTER_SIZE running in $((SECONDS - started)) s; env in $dir/cluster.env"
}

cluster_stop() {
    local dir="$1" i pid n pids=()
    cluster_load "$dir" 2>/dev/null || return 0
    # Nodes 3..1: the last node to stop is the one the others joined.
    for ((i = CLUSTER_SIZE; i >= 1; i--)); do
        pid="$(cluster_pid "$i")" || continue
        pid_running "$pid" || continue
        cluster_ctl "$i" -q stop >/dev/null 2>&1 &
        pids+=("$pid")
    done
    wait
    for pid in "${pids[@]}"; do
        for ((n = 0; n < 40; n++)); do
            pid_running "$pid" || break
            sleep 0.25
        done
        pid_running "$pid" && kill -KILL "$pid" 2>/dev/null
    done
    # The private epmd that the first node started on its own port.
    ERL_EPMD_PORT="$CLUSTER_EPMD_PORT" epmd -port "$CLUSTER_EPMD_PORT" -kill >/dev/null 2>&1 || true
    return 0
}

cluster_status() {
    local i node port state
    for ((i = 1; i <= CLUSTER_SIZE; i++)); do
        node="CLUSTER_NODE_$i" port="CLUSTER_AMQP_PORT_$i"
        state=down
        cluster_alive "$i" && state=running
        printf '%s\t%s\t%s\t%s\n' "$i" "${!node}" "${!port}" "$state"
    done
}

# A live node to ask cluster-wide questions of (other than `except`).
cluster_any_live() {
    local except="${1:-0}" i
    for ((i = 1; i <= CLUSTER_SIZE; i++)); do
        ((i == except)) && continue
        cluster_alive "$i" && { printf '%s\n' "$i"; return 0; }
    done
    cluster_log "no node of $CLUSTER_DIR is running"
    return 1
}

# Waits up to SECONDS for PID to end.
wait_gone() {
    local pid="$1" seconds="$2" n
    for ((n = 0; n < seconds * 20; n++)); do
        pid_running "$pid" || return 0
        sleep 0.05
    done
    return 1
}

cluster_kill() {
    local i="$1" pid
    pid="$(cluster_pid "$i")" || { cluster_log "node $i has no pid file"; return 1; }
    pid_running "$pid" || { cluster_log "node $i (pid $pid) is not running"; return 1; }
    kill -KILL "$pid"
    wait_gone "$pid" 10 || { cluster_log "node $i (pid $pid) still runs 10 s after SIGKILL"; return 1; }
}

cluster_stop_node() {
    local i="$1" pid
    pid="$(cluster_pid "$i")" || { cluster_log "node $i has no pid file"; return 1; }
    cluster_ctl "$i" -q stop >/dev/null || { cluster_log "node $i: rabbitmqctl stop failed"; return 1; }
    wait_gone "$pid" 30 || { cluster_log "node $i (pid $pid) still runs 30 s after rabbitmqctl stop"; return 1; }
}

cluster_restart() {
    local i="$1" via
    if cluster_alive "$i"; then
        cluster_log "node $i is already running"
        return 1
    fi
    # The pid file stays behind after a SIGKILL.
    rm -f "$CLUSTER_DIR/node$i/rabbit.pid"
    (
        cluster_env "$i"
        chaos_rabbit_run rabbitmq-server -detached >>"$CLUSTER_DIR/node$i/log/startup.log" 2>&1
    ) || { cluster_log "node $i: rabbitmq-server -detached failed"; return 1; }
    cluster_await "$i" || return 1
    via="$(cluster_any_live "$i")" || via="$i"
    cluster_wait_running "$via" "$CLUSTER_SIZE" "$i"
}

cluster_leaders() {
    local prefix="${1:-}" via
    via="$(cluster_any_live)" || return 1
    # A classic queue has no leader: its node (from its process id) stands in for one.
    cluster_ctl "$via" -q list_queues name type leader pid members --no-table-headers \
        | python3 -c '
import re, sys
prefix = sys.argv[1]
for line in sys.stdin:
    f = line.rstrip("\n").split("\t")
    if len(f) < 4 or not f[0].startswith(prefix):
        continue
    name, qtype, leader, pid = f[:4]
    if not leader:
        m = re.match(r"<([^.]+@[^.]+)\.", pid)
        leader = m.group(1) if m else ""
    members = re.sub(r"[\[\] ]", "", f[4]) if len(f) > 4 else ""
    print("\t".join([name, qtype, leader, members]))
' "$prefix"
}

cluster_connections() {
    local via i node port map=""
    via="$(cluster_any_live)" || return 1
    for ((i = 1; i <= CLUSTER_SIZE; i++)); do
        node="CLUSTER_NODE_$i" port="CLUSTER_AMQP_PORT_$i"
        map+="${!port}=${!node} "
    done
    cluster_ctl "$via" -q list_connections name port client_properties --formatter json \
        | python3 -c '
import json, sys
nodes = dict(p.split("=", 1) for p in sys.argv[1].split())
for c in json.load(sys.stdin):
    # The name the client gave (connection_name), else the broker-made "peer -> local".
    given = [v for k, _, v in c.get("client_properties") or [] if k == "connection_name"]
    port = str(c.get("port"))
    print((given[0] if given else c.get("name", "")) + "\t" + nodes.get(port, "port " + port))
' "$map"
}

cluster_main() {
    local action="${1:-}" dir="${2:-}" i
    if [[ "$action" == -h || "$action" == --help ]]; then
        awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"
        return 0
    fi
    [[ -n "$action" && -n "$dir" ]] || { cluster_log "usage: rabbitmq-cluster.sh ACTION DIR [ARGS] (try --help)"; return 2; }
    shift 2
    case "$action" in
        start) cluster_start "$dir"; return ;;
        stop) cluster_stop "$dir"; return ;;
    esac
    cluster_load "$dir" || return 1
    case "$action" in
        status) cluster_status ;;
        leaders) cluster_leaders "${1:-}" ;;
        connections) cluster_connections ;;
        kill | stop-node | restart | ctl | queues)
            [[ -n "${1:-}" ]] || { cluster_log "$action needs a NODE (1..$CLUSTER_SIZE or a name)"; return 2; }
            i="$(cluster_index "$1")" || return 2
            shift
            case "$action" in
                kill) cluster_kill "$i" ;;
                stop-node) cluster_stop_node "$i" ;;
                restart) cluster_restart "$i" ;;
                ctl) cluster_ctl "$i" "$@" ;;
                queues) cluster_cli rabbitmq-queues "$i" "$@" ;;
            esac
            ;;
        *) cluster_log "unknown action '$action' (try --help)"; return 2 ;;
    esac
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    cluster_main "$@"
fi
