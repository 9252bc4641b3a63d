#!/usr/bin/env bash
# The baseline of benches/README.md. Starts a release playground (1 PD and
# 3 stores, 3 replicas) in a temporary directory, then runs flotilla-ycsb
# against it, RUNS times each (default 3), DURATION seconds each (default
# 20):
#   - load of RECORDS (default 100,000) 1 KiB records at concurrency 16, 64
#     and 256 (re-inserting the same keys after the first);
#   - workloads a, b, c, e, f at concurrency 16, 64 and 256;
#   - load, a, and updates alone (--mix update=1) at 64 again with
#     --reference (one local RocksDB taking synced puts from 64 writers,
#     measured in the same run).
# Every report is one JSON line in OUT (default benches/baseline/results.jsonl);
# benches/baseline/table.py turns them into the README's table of medians.
#
# Usage: benches/baseline/run.sh    (takes about 20 minutes)
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/flotilla-target}"
RUNS="${RUNS:-3}"
DURATION="${DURATION:-20}"
RECORDS="${RECORDS:-100000}"
OUT="${OUT:-benches/baseline/results.jsonl}"
cargo build --release --quiet -p flotilla -p flotilla-benches --bin flotilla --bin flotilla-ycsb
# .cargo/config.toml builds for an explicit target triple.
release="$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release"
data="$(mktemp -d)"
"$release/flotilla" playground --data-dir "$data" > "$data/playground.out" 2>&1 &
playground=$!
trap 'kill -INT $playground; wait $playground || true; rm -rf "$data"' EXIT
for _ in $(seq 1 120); do
  grep -q "Flotilla is serving" "$data/playground.out" && break
  sleep 1
done
grep -q "Flotilla is serving" "$data/playground.out" || { cat "$data/playground.out"; exit 1; }
: > "$OUT"
ycsb() {
  echo "flotilla-ycsb $*" >&2
  "$release/flotilla-ycsb" --pd 127.0.0.1:2379 --records "$RECORDS" --json --quiet "$@" >> "$OUT"
}
for c in 16 64 256; do
  for _ in $(seq 1 "$RUNS"); do ycsb --workload load --concurrency "$c"; done
done
for w in a b c e f; do
  for c in 16 64 256; do
    for _ in $(seq 1 "$RUNS"); do ycsb --workload "$w" --concurrency "$c" --duration "$DURATION"; done
  done
done
for _ in $(seq 1 "$RUNS"); do
  ycsb --workload load --concurrency 64 --reference
  ycsb --workload a --concurrency 64 --duration "$DURATION" --reference
  ycsb --workload a --mix update=1 --concurrency 64 --duration "$DURATION" --reference
done
python3 benches/baseline/table.py "$OUT"
