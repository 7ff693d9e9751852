#!/usr/bin/env bash
# RabbitMQ 4.0 on this Debian 12 machine: Debian 13's own rabbitmq-server (4.0.5, Erlang 27)
# in a Debian 13 root file system that this script builds once with debootstrap and keeps in
# ~/.cache/dispatchctl (about 1 min 40 s and 370 MB; a warm run only checks it is there).
# Each command runs in a mount namespace of its own, chrooted there, with the directories it
# is given bound at their own paths, so a node's data, logs and certificates stay in the run
# directory of whoever started it, and it listens on the host's network like any other node.
#
# Usage: scripts/rabbitmq4.sh root           build if needed, print the root's path
#        scripts/rabbitmq4.sh version        print the RabbitMQ version in the root
#        scripts/rabbitmq4.sh exec DIR[:DIR…] SCRIPT ARGS…
#                                            run /usr/lib/rabbitmq/bin/SCRIPT inside, with each
#                                            DIR bound (a node started -detached keeps it)
set -euo pipefail

readonly SUITE=trixie
readonly MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# Callers that set HOME for a node (services.sh does) pass the cache's place on.
readonly ROOT="${DISPATCHCTL_CACHE:-$HOME/.cache/dispatchctl}/rabbitmq4-$SUITE"

log() { printf 'rabbitmq4: %s\n' "$*" >&2; }

build() {
    [[ -f "$ROOT/.complete" ]] && return 0
    if ! command -v debootstrap >/dev/null 2>&1; then
        log "installing debootstrap"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null
    fi
    local tmp="$ROOT.partial.$$"
    mkdir -p "$(dirname "$ROOT")"
    rm -rf "$ROOT".partial.*
    log "building a Debian $SUITE root with rabbitmq-server in $ROOT (once; about 2 min)"
    if ! debootstrap --variant=minbase --include=rabbitmq-server "$SUITE" "$tmp" "$MIRROR" >"$tmp.log" 2>&1; then
        log "debootstrap failed; its log: $tmp.log"
        tail -n 20 "$tmp.log" >&2
        return 1
    fi
    rm -f "$tmp.log"
    # The package's own service is never started inside: each run starts its own nodes.
    rm -rf "$ROOT"
    touch "$tmp/.complete"
    mv "$tmp" "$ROOT"
}

version() {
    local app
    app="$(find "$ROOT/usr/lib/rabbitmq/lib" -maxdepth 1 -name 'rabbitmq_server-*' | sort -V | tail -n 1)"
    [[ -n "$app" ]] || { log "no rabbitmq_server in $ROOT"; return 1; }
    printf '%s\n' "${app##*rabbitmq_server-}"
}

# In a new mount namespace: /proc, /dev and a private /tmp inside the root, each bound
# directory at its own path, then the script. The namespace lives as long as its processes.
run_inside() {
    local binds="$1" script="$2"
    shift 2
    exec unshare --mount --propagation private -- bash -euo pipefail -c '
        root=$1 binds=$2 script=$3
        shift 3
        mount -t proc proc "$root/proc"
        mount --rbind /dev "$root/dev"
        mount -t tmpfs tmpfs "$root/tmp"
        # The host name resolves as on the host (Erlang looks it up for every CLI call:
        # 23 s of DNS time-outs per rabbitmqctl without it).
        mount --bind /etc/hosts "$root/etc/hosts"
        mount --bind /etc/resolv.conf "$root/etc/resolv.conf"
        IFS=: read -r -a dirs <<<"$binds"
        for d in "${dirs[@]}"; do
            [[ -n "$d" ]] || continue
            mkdir -p "$root$d"
            mount --bind "$d" "$root$d"
        done
        exec chroot "$root" "/usr/lib/rabbitmq/bin/$script" "$@"
    ' _ "$ROOT" "$binds" "$script" "$@"
}

case "${1:-}" in
    root) build && printf '%s\n' "$ROOT" ;;
    version) build && version ;;
    exec)
        [[ $# -ge 3 ]] || { log "usage: $0 exec DIR[:DIR…] SCRIPT ARGS…"; exit 2; }
        build
        run_inside "${@:2}"
        ;;
    *)
        log "usage: $0 root | version | exec DIR[:DIR…] SCRIPT ARGS…"
        exit 2
        ;;
esac
