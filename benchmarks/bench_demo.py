"""`pqlml demo` end to end, and the feature cache across processes, on two code trees side by side.

Each tree (a checkout, e.g. a `git worktree` of an older commit) is run with the same venv,
``PYTHONPATH=<tree>``, in turn, ``--repeats`` times, each in a fresh process with a fresh
output folder and MLflow store; medians and the process's peak RSS are reported, with the
ratio to the first tree.

The cache part (trees that have `pqlml.cache`): process 1 builds the schedule's features of a
simulated company (``Project.features()``); process 2, a later command, opens the project and
asks for the same table. Both times are printed with their ratio.

    .venv/bin/python benchmarks/bench_demo.py --trees /work/wt-base . --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_DEMO = ("import sys; from rich.console import Console; from pqlml.demo import run_demo; "
         "run_demo(sys.argv[1], console=Console(file=open('/dev/null', 'w')))")
_FEATURES = ("import json, sys, time; from pqlml.project import open_project; "
             "p = open_project(sys.argv[1]); t = time.perf_counter(); X = p.features(); "
             "print(json.dumps({'seconds': time.perf_counter() - t, 'builds': len(p.builds), "
             "'rows': len(X)}))")


def _run(tree: Path, code: str, *args, cwd: Path) -> tuple[float, float, str]:
    """Seconds, peak RSS (MB) and stdout of one fresh process."""
    env = os.environ | {"PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1",
                        "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("MLFLOW_TRACKING_URI", None)
    code += ("\nimport resource, sys\n"
             "print('peak', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)")
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=cwd, env=env,
                         capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - t
    peak = int(out.stderr.strip().splitlines()[-1].split()[1]) / 1024
    return seconds, peak, out.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trees", nargs="+", type=Path, required=True)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--accounts", type=int, default=5_000, help="company for the cache part")
    args = ap.parse_args()
    trees = [t.resolve() for t in args.trees]
    times: dict[Path, list[float]] = {t: [] for t in trees}
    peaks: dict[Path, float] = {t: 0.0 for t in trees}
    for i in range(args.repeats):
        for tree in trees:                     # in turn: the machine's drift hits both
            with tempfile.TemporaryDirectory() as tmp:
                s, peak, _ = _run(tree, _DEMO, Path(tmp) / "demo", cwd=Path(tmp))
            times[tree].append(s)
            peaks[tree] = max(peaks[tree], peak)
            print(f"run {i + 1} {tree.name}: {s:.1f} s", file=sys.stderr)
    first = statistics.median(times[trees[0]])
    print("| tree | median s | min s | max s | peak RSS MB | vs first |")
    print("|---|---|---|---|---|---|")
    for tree in trees:
        m = statistics.median(times[tree])
        print(f"| {tree.name} | {m:.1f} | {min(times[tree]):.1f} | {max(times[tree]):.1f} | "
              f"{peaks[tree]:,.0f} | {m / first:.2f} |")
    tree = trees[-1]
    with tempfile.TemporaryDirectory() as tmp:
        _run(tree, "import sys; from pqlml.simulate import simulate; "
             "simulate(int(sys.argv[1]), 0, sys.argv[2])", args.accounts, Path(tmp) / "co",
             cwd=Path(tmp))
        config = Path(tmp) / "co" / "pqlml.toml"
        rows = []
        for i in range(args.repeats):
            for cache in Path(tmp, "co", ".pqlml-cache").glob("*"):
                cache.unlink()
            built = json.loads(_run(tree, _FEATURES, config, cwd=Path(tmp))[2])
            read = json.loads(_run(tree, _FEATURES, config, cwd=Path(tmp))[2])
            assert built["builds"] == 1 and read["builds"] == 0 and built["rows"] == read["rows"]
            rows.append((built["seconds"], read["seconds"]))
        b = statistics.median(r[0] for r in rows)
        r = statistics.median(r[1] for r in rows)
        print(f"\ncache, {args.accounts:,} accounts ({built['rows']:,} rows): first build "
              f"{b:.2f} s, a later process reading it {r:.2f} s ({r / b:.1%} of the build)")


if __name__ == "__main__":
    main()
