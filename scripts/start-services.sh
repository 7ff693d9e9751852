#!/usr/bin/env bash
# Starts PostgreSQL, RabbitMQ and Redis on a Debian host without Docker, for
# development and CI. Idempotent: checks each service first, starts only those
# that are down, installs (apt-get) only what is missing, then waits until each
# answers or the deadline passes.
#
# Usage: scripts/start-services.sh [--check]
#   --check   only report; exit 1 if any service is down
# Environment:
#   SERVICES_TIMEOUT   seconds to wait for the services to answer (default 120)

# The service functions are called by name ("${name}_up", "start_${name}").
# shellcheck disable=SC2317
set -euo pipefail

readonly TIMEOUT="${SERVICES_TIMEOUT:-120}"
readonly REDIS_PORT=6379

log() { printf 'start-services: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

as_root() {
    if [[ "$(id -u)" -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n "$@"
    else
        die "need root (or passwordless sudo) to run: $*"
    fi
}

# Runs a read-only probe as root when that is possible without a prompt.
try_root() {
    if [[ "$(id -u)" -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        "$@"
    fi
}

# ---- checks -------------------------------------------------------------------
postgres_up() { command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p 5432; }
# rabbitmq-diagnostics needs the node's Erlang cookie, readable by root.
rabbitmq_up() { command -v rabbitmq-diagnostics >/dev/null 2>&1 && try_root rabbitmq-diagnostics -q ping >/dev/null 2>&1; }
redis_up() { command -v redis-cli >/dev/null 2>&1 && [[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]; }

# ---- installation (only of what is missing) -------------------------------------
installed_postgres=0
# Arguments: the services that are down.
install_missing() {
    local -a packages=()
    local name
    for name in "$@"; do
        case "$name" in
            postgres)
                if ! command -v pg_ctlcluster >/dev/null 2>&1 \
                    || ! compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; then
                    packages+=(postgresql)
                    installed_postgres=1
                fi
                ;;
            rabbitmq) command -v rabbitmq-server >/dev/null 2>&1 || packages+=(rabbitmq-server) ;;
            redis) command -v redis-server >/dev/null 2>&1 || packages+=(redis-server) ;;
        esac
    done
    ((${#packages[@]})) || return 0
    command -v apt-get >/dev/null 2>&1 || die "missing ${packages[*]} and no apt-get to install them"
    log "installing ${packages[*]}"
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${packages[@]}"
}

# ---- start --------------------------------------------------------------------
postgres_version() {
    local version
    version="$(find /etc/postgresql -mindepth 1 -maxdepth 1 -type d -printf '%f\n' 2>/dev/null | sort -V | tail -n 1)"
    [[ -n "$version" ]] || version="$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort -V | tail -n 1)"
    [[ -n "$version" ]] || die "no PostgreSQL version found under /etc/postgresql or /usr/lib/postgresql"
    printf '%s\n' "$version"
}

start_postgres() {
    local version
    version="$(postgres_version)"
    if [[ ! -d "/etc/postgresql/$version/main" ]]; then
        log "creating PostgreSQL $version cluster main"
        as_root pg_createcluster "$version" main
    fi
    if ((installed_postgres)); then
        # A fresh install: let local TCP clients in without a password, as on the
        # CI machines (postgres://postgres@localhost/...). Development hosts only.
        log "allowing trust authentication from 127.0.0.1 and ::1 (fresh install)"
        as_root sed -i -E 's/^(host[[:space:]]+all[[:space:]]+all[[:space:]]+(127\.0\.0\.1\/32|::1\/128)[[:space:]]+)[a-z0-9-]+/\1trust/' \
            "/etc/postgresql/$version/main/pg_hba.conf"
    fi
    log "starting PostgreSQL $version/main"
    # Fails harmlessly when the cluster is already running but not yet accepting.
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start \
        || log "pg_ctlcluster start returned non-zero; waiting for the server anyway"
    if ((installed_postgres)); then
        as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload || true
    fi
}

start_rabbitmq() {
    log "starting RabbitMQ"
    as_root rabbitmq-server -detached
}

start_redis() {
    log "starting Redis"
    as_root mkdir -p /var/lib/redis /var/log/redis
    as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" \
        --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
}

# ---- wait ---------------------------------------------------------------------
wait_for() {
    local name="$1" check="$2" deadline="$3"
    until "$check"; do
        if ((SECONDS >= deadline)); then
            log "error: $name did not answer within ${TIMEOUT}s"
            return 1
        fi
        sleep 1
    done
    log "$name is up"
}

show_logs() {
    local name="$1" file
    case "$name" in
        postgres) file="$(find /var/log/postgresql -name 'postgresql-*-main.log' 2>/dev/null | sort | tail -n 1)" ;;
        rabbitmq) file="$(find /var/log/rabbitmq -name 'rabbit@*.log' ! -name '*_upgrade.log' 2>/dev/null | sort | tail -n 1)" ;;
        redis) file=/var/log/redis/ci.log ;;
    esac
    if [[ -n "${file:-}" && -r "$file" ]]; then
        log "last lines of $file:"
        tail -n 20 "$file" >&2 || true
    fi
}

main() {
    local check_only=0
    case "${1:-}" in
        "") ;;
        --check) check_only=1 ;;
        -h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
        *) die "unknown argument: $1 (try --help)" ;;
    esac

    local -a down=()
    local name
    for name in postgres rabbitmq redis; do
        if "${name}_up"; then
            log "$name is up"
        else
            down+=("$name")
        fi
    done
    ((${#down[@]})) || exit 0
    if ((check_only)); then
        log "down: ${down[*]}"
        exit 1
    fi

    install_missing "${down[@]}"
    for name in "${down[@]}"; do
        # A package's install scripts may have started it already.
        "${name}_up" && continue
        "start_${name}" || log "starting $name returned non-zero; waiting for it anyway"
    done

    local deadline=$((SECONDS + TIMEOUT)) failed=0
    for name in "${down[@]}"; do
        wait_for "$name" "${name}_up" "$deadline" || { show_logs "$name"; failed=1; }
    done
    exit "$failed"
}

main "$@"
