#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/ one after another, each for a bounded time (issue 7;
# see docs/SECURITY.md).
#
# Usage: scripts/fuzz.sh [seconds] [target...]
#   seconds   time per target (libFuzzer -max_total_time), default 60
#   target    api_request and/or broker_message (default: both)
# Environment:
#   FUZZ_MAX_LEN   libFuzzer -max_len (default 8192)
#
# Only a stable toolchain is needed: cargo-fuzz's nightly flags (-Zsanitizer=address, ...)
# are enabled with RUSTC_BOOTSTRAP=1. cargo-fuzz is installed into ~/.cargo/bin when missing.
# Seeds come from fuzz/corpus/<target>/ (committed, read-only for the run); what libFuzzer
# finds goes to fuzz/corpus-run/<target>/ (git-ignored, kept between runs). A crash leaves
# its reproducer in fuzz/artifacts/<target>/; replay it with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz <target> fuzz/artifacts/<target>/<file>
# Exits 1 when any target found a crash (the remaining targets still run).
set -euo pipefail

cd "$(dirname "$0")/.."
readonly SECONDS_PER_TARGET="${1:-60}"
shift || true
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(api_request broker_message)
readonly MAX_LEN="${FUZZ_MAX_LEN:-8192}"
readonly CARGO_FUZZ_VERSION="0.13.2"

log() { printf 'fuzz.sh: %s\n' "$*" >&2; }
[[ "$SECONDS_PER_TARGET" =~ ^[1-9][0-9]*$ ]] || { log "seconds must be a positive integer"; exit 2; }

export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    log "installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

log "building the fuzz targets ($(cargo fuzz --version))"
for target in "${targets[@]}"; do
    cargo fuzz build --fuzz-dir fuzz "$target"
done

mkdir -p fuzz/logs
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
crashed=()
for target in "${targets[@]}"; do
    [[ -d "fuzz/corpus/$target" ]] || { log "unknown target $target (no fuzz/corpus/$target)"; exit 2; }
    mkdir -p "fuzz/corpus-run/$target" "fuzz/artifacts/$target"
    logfile="fuzz/logs/$target-$stamp.log"
    log "running $target for ${SECONDS_PER_TARGET}s (log: $logfile)"
    started=$SECONDS
    set +e
    cargo fuzz run --fuzz-dir fuzz "$target" "fuzz/corpus-run/$target" "fuzz/corpus/$target" -- \
        -max_total_time="$SECONDS_PER_TARGET" \
        -max_len="$MAX_LEN" \
        -timeout=10 \
        -rss_limit_mb=2048 \
        -dict="fuzz/dict/$target.dict" \
        -print_final_stats=1 >"$logfile" 2>&1
    status=$?
    set -e
    elapsed=$((SECONDS - started))
    runs="$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$logfile" | grep -Eo '[0-9]+$' | tail -n 1 || true)"
    cov="$(grep -Eo '^#[0-9]+.*cov: [0-9]+ ft: [0-9]+' "$logfile" | tail -n 1 | grep -Eo 'cov: [0-9]+ ft: [0-9]+' || true)"
    corpus="$(find "fuzz/corpus-run/$target" -type f | wc -l)"
    if [[ $status -eq 0 ]]; then
        log "$target: ok, ${elapsed}s, ${runs:-?} executions, ${cov:-cov ?}, $corpus inputs in corpus-run, no crash"
    else
        crashed+=("$target")
        log "$target: FAILED (exit $status) after ${elapsed}s, ${runs:-?} executions; see $logfile"
        grep -E "panicked at|SUMMARY|Test unit written to|ERROR: libFuzzer" "$logfile" >&2 || tail -n 20 "$logfile" >&2
    fi
done

if [[ ${#crashed[@]} -gt 0 ]]; then
    log "crashes in: ${crashed[*]} (reproducers in fuzz/artifacts/)"
    exit 1
fi
log "no crash in: ${targets[*]}"
