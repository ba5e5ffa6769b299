"""Benchmark: `pqlml simulate` at 100,000 accounts (the issue's 2-minute budget).

Runs the simulator REPEATS times in fresh processes, each writing to its own temp
folder, and prints the median wall time, peak RSS and rows written, as a markdown
row for BENCHMARKS.md.

    .venv/bin/python benchmarks/bench_simulate.py [--accounts 100000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile

CHILD = """
import json, resource, sys, time
from pqlml.simulate import simulate
t = time.perf_counter()
r = simulate(int(sys.argv[1]), 1, sys.argv[2])
sec = time.perf_counter() - t
print(json.dumps({"seconds": sec, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "counts": r.counts}))
"""


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--accounts", type=int, default=100_000)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    runs = []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as out:
            res = subprocess.run([sys.executable, "-c", CHILD, str(args.accounts), out],
                                 check=True, capture_output=True, text=True)
            runs.append(json.loads(res.stdout.strip().splitlines()[-1]))
    secs = [r["seconds"] for r in runs]
    rss = max(r["rss_mb"] for r in runs)
    c = runs[0]["counts"]
    print(f"machine: {platform.processor() or platform.machine()}, {platform.python_version()}")
    print("| accounts | events | users | median s | min s | max s | peak RSS MB |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {c['accounts']:,} | {c['events']:,} | {c['users']:,} | {statistics.median(secs):.1f} "
          f"| {min(secs):.1f} | {max(secs):.1f} | {rss:,.0f} |")


if __name__ == "__main__":
    main()
