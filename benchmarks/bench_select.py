"""What ``model.kind = "auto"`` costs: one model fit on a company's labelled snapshots, auto
(the forward choice among pqlml's candidates) against a fixed kind, side by side.

The snapshots are built once (a simulated company, ``--accounts``, 18 months) and written to
a parquet file; each fit then runs in a fresh process (imports before the clock), the kinds in
turn, ``--repeats`` times. Prints the median, min and max seconds, the process's peak RSS and
the ratio to the first kind, as a markdown table.

    .venv/bin/python benchmarks/bench_select.py --accounts 2000 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

_FIT = ("import json, resource, sys, time; import pandas as pd; from pqlml.model import Model\n"
        "frame = pd.read_parquet(sys.argv[1]); t = time.perf_counter()\n"
        "m = Model.fit(frame, 'conversion', kind=sys.argv[2], gap_days=28)\n"
        "print(json.dumps({'seconds': time.perf_counter() - t, 'kind': m.kind, 'rss_mb': "
        "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=2_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--kinds", nargs="+", default=["logistic", "gradient_boosting", "auto"])
    args = ap.parse_args()
    from pqlml.project import open_project
    from pqlml.simulate import simulate

    out = Path(tempfile.mkdtemp())
    project = open_project(simulate(args.accounts, 0, out / "company").config)
    frame = project.snapshots("conversion")
    frame.to_parquet(out / "snapshots.parquet")
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    runs: dict[str, list[dict]] = {k: [] for k in args.kinds}
    for _ in range(args.repeats):
        for kind in args.kinds:                 # in turn: the machine's drift hits every kind
            done = subprocess.run([sys.executable, "-c", _FIT, str(out / "snapshots.parquet"),
                                   kind], env=env, capture_output=True, text=True, check=True)
            runs[kind].append(json.loads(done.stdout.strip().splitlines()[-1]))
    first = statistics.median(r["seconds"] for r in runs[args.kinds[0]])
    print(f"{len(frame):,} snapshots x {frame.shape[1] - 3} columns, {args.repeats} runs each\n")
    print("| kind (fitted) | median s | min s | max s | peak RSS MB | / first |")
    print("|---|---|---|---|---|---|")
    for kind, rs in runs.items():
        s = [r["seconds"] for r in rs]
        fitted = sorted({r["kind"] for r in rs})
        print(f"| {kind} ({', '.join(fitted)}) | {statistics.median(s):.2f} | {min(s):.2f} | "
              f"{max(s):.2f} | {max(r['rss_mb'] for r in rs):.0f} | "
              f"{statistics.median(s) / first:.2f} |")


if __name__ == "__main__":
    main()
