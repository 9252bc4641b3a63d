#!/usr/bin/env python3
"""Turns flotilla-ycsb's JSON reports (one per line) into the Markdown
tables of benches/README.md: per workload and concurrency, the median over
runs of throughput, each operation's p50/p99, errors, the stores' log
entries per fsync and CPU per operation; then the runs measured with the
RocksDB reference, as ratios.

Usage: benches/baseline/table.py benches/baseline/results.jsonl
"""

import json
import statistics
import sys
from collections import defaultdict


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def main(path):
    with open(path) as f:
        reports = [json.loads(line) for line in f if line.strip()]
    plain = defaultdict(list)
    referenced = defaultdict(list)
    for r in reports:
        name = r["mix"] if r["workload"] == "custom" else r["workload"]
        key = (name, r["concurrency"])
        (referenced if r.get("reference") else plain)[key].append(r)

    print("| workload | clients | ops/s | p50 / p99 ms (per op) | errors "
          "| entries per fsync | store CPU µs/op | runs |")
    print("|---|---:|---:|---|---:|---:|---:|---:|")
    for (workload, clients), runs in sorted(plain.items()):
        ops = median(r["ops_per_sec"] for r in runs)
        kinds = sorted({k for r in runs for k in r["operations"]})
        latency = ", ".join(
            "{} {} / {}".format(
                k,
                fmt(median(r["operations"].get(k, {}).get("p50_ms") for r in runs), ".1f"),
                fmt(median(r["operations"].get(k, {}).get("p99_ms") for r in runs), ".1f"),
            )
            for k in kinds
        )
        errors = sum(r["errors"] for r in runs)
        stores = [r["stores"] for r in runs if r.get("stores")]
        entries = median(s["entries_per_fsync"] for s in stores)
        cpu = median(s["cpu_us_per_op"] for s in stores)
        print(f"| {workload} | {clients} | {fmt(ops, ',.0f')} | {latency} | {errors} "
              f"| {fmt(entries, '.1f')} | {fmt(cpu, '.0f')} | {len(runs)} |")

    if referenced:
        print()
        print("| workload | clients | cluster writes/s | RocksDB synced puts/s "
              "| ratio | runs |")
        print("|---|---:|---:|---:|---:|---:|")
        for (workload, clients), runs in sorted(referenced.items()):
            writes = median(
                sum(v["ops_per_sec"] for k, v in r["operations"].items()
                    if k in ("insert", "update", "rmw"))
                for r in runs)
            reference = median(r["reference"]["ops_per_sec"] for r in runs)
            ratio = median(r["reference"]["write_ratio"] for r in runs)
            print(f"| {workload} | {clients} | {fmt(writes, ',.0f')} "
                  f"| {fmt(reference, ',.0f')} | {fmt(ratio, '.0%')} | {len(runs)} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "benches/baseline/results.jsonl")
