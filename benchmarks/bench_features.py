"""Benchmark: pqlml's feature build against the plain-scan floor, 1 and 12 monthly cutoffs.

    .venv/bin/python benchmarks/bench_features.py [--accounts 100000] [--repeats 3] [--data DIR]

Creates the simulated company in DIR (default data/generated/sim{N}, git-ignored) if it is
missing, then runs each measurement in a fresh process (so peak RSS is that run's own) and
prints a markdown table of medians for BENCHMARKS.md:

* plain scan: the four event columns features need, read fully into Arrow by DuckDB;
* pqlml: ``build_features(config, as_of=cutoffs)`` — the whole catalog.

Hand-written pandas / polars and featuretools comparators are not part of this script yet.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

CUTOFFS = {1: ["2025-06-01"],
           12: [f"{y}-{m:02d}-01" for y, m in [(2024, m) for m in range(7, 13)] + [(2025, m) for m in range(1, 7)]]}

SCAN = """
import duckdb, json, resource, sys, time
t = time.perf_counter()
con = duckdb.connect()
n = con.execute(f"select ts, user_id, account_id, event from read_parquet('{sys.argv[1]}')").to_arrow_table().num_rows
print(json.dumps({"seconds": time.perf_counter() - t, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "rows": n}))
"""

PQLML = """
import json, resource, sys, time
from pqlml.project import build_features
t = time.perf_counter()
X = build_features(sys.argv[1], as_of=json.loads(sys.argv[2]))
print(json.dumps({"seconds": time.perf_counter() - t, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "rows": len(X), "features": X.shape[1] - 2}))
"""


def _run(code: str, *args: str) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", MLFLOW_DISABLE_TELEMETRY="true")
    res = subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True, text=True, env=env)
    return json.loads(res.stdout.strip().splitlines()[-1])


def _ensure(data: Path, accounts: int) -> None:
    if not (data / "pqlml.toml").exists():
        subprocess.run([sys.executable, "-m", "pqlml.cli", "simulate", "--accounts", str(accounts),
                        "--seed", "1", "--out", str(data)], check=True)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--accounts", type=int, default=100_000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--data", type=Path)
    args = p.parse_args()
    data = args.data or Path("data/generated") / f"sim{args.accounts}"
    _ensure(data, args.accounts)
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, data {data}")
    print("| tool | cutoffs | rows | median s | min s | max s | peak RSS MB | x plain scan |")
    print("|---|---|---|---|---|---|---|---|")
    for n, dates in CUTOFFS.items():
        scan = [_run(SCAN, str(data / "events.parquet")) for _ in range(args.repeats)]
        runs = [_run(PQLML, str(data / "pqlml.toml"), json.dumps(dates)) for _ in range(args.repeats)]
        floor = statistics.median(r["seconds"] for r in scan)
        for tool, rs in (("plain scan", scan), ("pqlml", runs)):
            secs = [r["seconds"] for r in rs]
            med = statistics.median(secs)
            print(f"| {tool} | {n} | {rs[0]['rows']:,} | {med:.1f} | {min(secs):.1f} | {max(secs):.1f} "
                  f"| {max(r['rss_mb'] for r in rs):,.0f} | {med / floor:.1f} |", flush=True)


if __name__ == "__main__":
    main()
