#!/usr/bin/env bash
# Before and after on one machine in one window: scripts/bench.sh runs once per entry of
# BENCH_COMPARE_ORDER with binary A or B and otherwise the same settings; the table puts each
# measurement's median for A and for B side by side. The default order, A B B A, spreads the
# machine's drift within the window (about 20 % within an hour here) over both alike.
#
#   scripts/bench-compare.sh OLD_BINARY NEW_BINARY
#   BENCH_SECTIONS="floor throughput latency" BENCH_CONCURRENCY=32 scripts/bench-compare.sh old new
#
# Every BENCH_* setting of scripts/bench.sh passes through (BENCH_BIN and BENCH_SKIP_BUILD are
# set here: build the load generator and sink first, cargo build --release --examples).
# Output: target/bench/compare-<time>/results.md, and each run's own report beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
(($# == 2)) || { echo "usage: $0 BINARY_A BINARY_B" >&2; exit 2; }
A=$(realpath "$1")
B=$(realpath "$2")
for bin in "$A" "$B"; do
  [[ -x $bin ]] || { echo "not an executable: $bin" >&2; exit 2; }
done
ORDER=${BENCH_COMPARE_ORDER:-"A B B A"}
OUT=target/bench/compare-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
n=0
for who in $ORDER; do
  n=$((n + 1))
  bin=$A
  [[ $who == B ]] && bin=$B
  echo "== run $n: $who ($bin)" >&2
  before=$(ls -d target/bench/run-* 2>/dev/null | sort | tail -n1 || true)
  BENCH_BIN=$bin BENCH_SKIP_BUILD=1 BENCH_REV="$who: $("$bin" --version 2>/dev/null | head -n1)" \
    scripts/bench.sh >"$OUT/run-$n-$who.log" 2>&1 ||
    { echo "bench.sh failed for run $n ($who); see $OUT/run-$n-$who.log" >&2; exit 1; }
  run=$(ls -d target/bench/run-* | sort | tail -n1)
  [[ $run != "$before" ]] || { echo "bench.sh left no run directory" >&2; exit 1; }
  cp "$run/values.tsv" "$OUT/values-$n-$who.tsv"
  cp "$run/results.md" "$OUT/results-$n-$who.md"
  echo "   $run" >&2
done
python3 - "$OUT" "$A" "$B" "$ORDER" <<'PY' >"$OUT/results.md"
import glob, os, statistics, sys
out, a, b, order = sys.argv[1:5]
vals, units, cmds, labels = {"A": {}, "B": {}}, {}, {}, []
for path in sorted(glob.glob(os.path.join(out, "values-*.tsv"))):
    who = path.rsplit("-", 1)[1].split(".")[0]
    for line in open(path):
        parts = line.rstrip("\n").split("\t")
        if len(parts) < 4:
            continue
        label, value, unit, cmd = parts[:4]
        try:
            v = float(value)
        except ValueError:
            continue
        if label not in units:
            labels.append(label)
        units[label], cmds[label] = unit, cmd
        vals[who].setdefault(label, []).append(v)
def show(xs, unit):
    if not xs:
        return "—"
    m = statistics.median(xs)
    text = f"{m:,.0f}" if abs(m) >= 100 else f"{m:,.2f}" if abs(m) < 10 else f"{m:,.1f}"
    spread = f" ({min(xs):,.4g}–{max(xs):,.4g})" if len(xs) > 1 else ""
    return f"{text} {unit}{spread}"
print(f"# Before/after: A = `{a}`, B = `{b}`, runs in the order {order}\n")
print("Each cell: median over the runs of that binary (min–max when more than one).\n")
print("| Measurement | A | B | B ÷ A |")
print("|---|---:|---:|---:|")
for label in sorted(labels, key=lambda l: l.split(" ")[0]):
    xa, xb = vals["A"].get(label, []), vals["B"].get(label, [])
    ratio = "—"
    if xa and xb and statistics.median(xa) != 0:
        ratio = f"{100 * statistics.median(xb) / statistics.median(xa):.0f} %"
    print(f"| {label} | {show(xa, units[label])} | {show(xb, units[label])} | {ratio} |")
print("\nCommands: as in each run's own report (results-*.md beside this file).")
PY
cat "$OUT/results.md"
echo "table: $OUT/results.md" >&2
