"""Benchmark: how the pipeline's cost grows with the company (issue 25): each stage at 10k,
100k and 1M simulated accounts, in a fresh process, with wall time and peak RSS.

    .venv/bin/python benchmarks/bench_scale.py [--sizes 10000 100000 1000000]
        [--root /work/data] [--stages simulate scan open features labels]
        [--memory-limit 4GB] [--repeats 1] [--json scale.json]

The company of N accounts is ``ROOT/sim<N>`` (``sim10k``, ``sim100k``, ``sim1m``); the
``simulate`` stage writes it (``pqlml simulate --accounts N --seed 0``) unless it is already
there, when the stage is reported as skipped. Every other stage reads the config
``pqlml.bench.toml`` written beside the simulated one: the same project with 12 monthly
cutoffs (2024-07-01 .. 2025-06-01) and ``[data] memory_limit``. The stages:

* ``scan``: DuckDB reads the event log's four columns into Arrow (the reference);
* ``open``: ``open_project`` (tables read and validated, identities resolved) and a count
  of the resolved events;
* ``features``: ``pqlml features --stream`` to Parquet, the 12 cutoffs, every family on;
* ``features-memory``: the same build in memory, returning the pandas table
  (``Project.features()``, what ``build_features`` and the model stages run), written nowhere;
* ``labels``: the labels of the 12 cutoffs in memory (``Project.labels``);
* ``backtest``, ``train``, ``score``: the CLI commands, run only when named in
  ``--stages`` (at 1M accounts they need the sampled training and batched scoring of issue
  25's model side) and skipped, with a note, when ``pqlml`` has no such command.

A stage is a command line (:class:`Stage`): add one to :data:`STAGES`. Each runs in its own
process (the feature cache off: every build is a build); wall time is measured around it, CPU time (user + system) and peak RSS are the
process's (with its children) from ``wait4``. Each row has the growth exponent of its stage
from the size before: the slope of log time against log events (1 = linear in events), of
wall time and of CPU time (the steadier one on a shared, loaded machine).

``--repeats N`` runs the named stages of a size in turn, N rounds (scan, features, scan,
features, ...: each stage sees the same machine state as its neighbours), and reports each
stage's median wall time, CPU time and peak RSS with their ranges, then every stage's median
against the scan's (``x scan``): the side-by-side comparison of issue 25 (the 12-cutoff build
within 5x a plain scan of the events).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

PQLML = [str(Path(sys.executable).parent / "pqlml")]
CUTOFFS = ("2024-07-01", "2025-06-01")          # 12 month starts of the simulated schedule

SCAN = """
import duckdb, sys
con = duckdb.connect()
con.execute("set memory_limit = '{limit}'")
t = con.execute("select ts, user_id, account_id, event from read_parquet(?)",
                [sys.argv[1]]).to_arrow_table()
print("@@ROWS", t.num_rows)
"""

OPEN = """
import sys
from pqlml.project import open_project
p = open_project(sys.argv[1], cache=False)
print("@@ROWS", p.events.count().execute())
"""

FEATURES = """
import sys
from pqlml.project import open_project
print("@@ROWS", len(open_project(sys.argv[1], cache=False).features()))
"""

LABELS = """
import sys
from pqlml.project import open_project
p = open_project(sys.argv[1], cache=False)
print("@@ROWS", len(p.labels()))
"""


@dataclass(frozen=True)
class Stage:
    """One stage: ``argv(data, config, work)`` is its command line; ``needs`` a pqlml
    subcommand that must exist; ``default``: run without being named in ``--stages``."""

    name: str
    argv: Callable
    needs: str | None = None
    default: bool = True


STAGES = (
    Stage("simulate", lambda d, c, w: [*PQLML, "simulate", "--accounts", str(_size(d)),
                                       "--seed", "0", "--out", str(d)]),
    Stage("scan", lambda d, c, w: [sys.executable, "-c", SCAN.format(limit=w["limit"]),
                                   str(d / "events.parquet")]),
    Stage("open", lambda d, c, w: [sys.executable, "-c", OPEN, str(c)]),
    Stage("features", lambda d, c, w: [*PQLML, "features", "--config", str(c), "--stream",
                                       "--no-cache", "--out", str(w["dir"] / "features.parquet")]),
    Stage("features-memory", lambda d, c, w: [sys.executable, "-c", FEATURES, str(c)],
          default=False),
    Stage("labels", lambda d, c, w: [sys.executable, "-c", LABELS, str(c)]),
    Stage("backtest", lambda d, c, w: [*PQLML, "backtest", "--config", str(c), "--no-track",
                                       "--out", str(w["dir"] / "backtest")],
          needs="backtest", default=False),
    Stage("train", lambda d, c, w: [*PQLML, "train", "--config", str(c), "--no-track",
                                    "--out", str(w["dir"] / "model.skops")],
          needs="train", default=False),
    Stage("score", lambda d, c, w: [*PQLML, "score", "--config", str(c), "--model",
                                    str(w["dir"] / "model.skops"), "--format", "parquet",
                                    "--out", str(w["dir"] / "scores")],
          needs="score", default=False),
)


def _size(data: Path) -> int:
    n = data.name.removeprefix("sim")
    return int(n[:-1]) * 1000 if n.endswith("k") else int(n[:-1]) * 1_000_000 \
        if n.endswith("m") else int(n)


def folder(root: Path, n: int) -> Path:
    """``sim10k``, ``sim100k``, ``sim1m``."""
    name = f"{n // 1_000_000}m" if n % 1_000_000 == 0 else f"{n // 1000}k" if n % 1000 == 0 \
        else str(n)
    return root / f"sim{name}"


def bench_config(data: Path, memory_limit: str) -> Path:
    """``pqlml.bench.toml`` beside the simulated config: 12 monthly cutoffs, memory limit."""
    text = (data / "pqlml.toml").read_text()
    text = re.sub(r"(?m)^start = .*$", f"start = {CUTOFFS[0]}", text, count=1)
    text = re.sub(r"(?m)^end = .*$", f"end = {CUTOFFS[1]}", text, count=1)
    text = text.replace('root = "."', f'root = "."\nmemory_limit = "{memory_limit}"', 1)
    out = data / "pqlml.bench.toml"
    if not out.exists() or out.read_text() != text:
        out.write_text(text)
    return out


def commands() -> set[str]:
    """pqlml's subcommands."""
    from pqlml.cli import _parser

    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return set(sub.choices)


def run(argv: list[str], log: Path) -> dict:
    """``argv`` in a fresh process: seconds, peak RSS (MB) and the ``@@ROWS`` it printed."""
    env = os.environ | {"OMP_NUM_THREADS": "1", "MLFLOW_DISABLE_TELEMETRY": "true"}
    t = time.perf_counter()
    with open(log, "w") as f:
        proc = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t
    code = os.waitstatus_to_exitcode(status)
    text = log.read_text()
    rows = re.findall(r"@@ROWS (\d+)|wrote ([\d,]+) rows", text)
    n = next((int((a or b).replace(",", "")) for a, b in rows), None)
    return {"seconds": seconds, "cpu_s": usage.ru_utime + usage.ru_stime,
            "rss_mb": usage.ru_maxrss / 1024, "exit": code, "rows": n}


def events_of(data: Path) -> int:
    import pyarrow.parquet as pq
    return pq.ParquetFile(data / "events.parquet").metadata.num_rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    p.add_argument("--root", type=Path, default=Path("/work/data"))
    p.add_argument("--stages", nargs="+", default=[s.name for s in STAGES if s.default],
                   choices=[s.name for s in STAGES])
    p.add_argument("--memory-limit", default="4GB")
    p.add_argument("--work", type=Path, default=Path("bench-scale-work"),
                   help="scratch folder for the stages' outputs and logs (emptied per size)")
    p.add_argument("--repeats", type=int, default=1,
                   help="rounds of the stages per size, run in turn; medians are reported")
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args()
    have = commands()
    results = []
    for n in args.sizes:
        data = folder(args.root, n)
        work = args.work / data.name
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        for round_ in range(args.repeats):
            for stage in STAGES:
                if stage.name not in args.stages:
                    continue
                if stage.needs and stage.needs not in have:
                    if round_ == 0:
                        print(f"note: {stage.name} skipped: pqlml has no `{stage.needs}` "
                              f"command yet")
                    continue
                if stage.name == "simulate" and (round_ > 0 or (data / "pqlml.toml").exists()):
                    if round_ == 0:
                        print(f"note: simulate {n:,} skipped: {data} exists (delete it to "
                              f"measure)")
                    continue
                results.append(_measure(stage, data, work, args.memory_limit) | {
                    "accounts": n, "round": round_ + 1})
    print(f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, memory_limit {args.memory_limit}")
    print(table(medians(results)))
    if args.repeats > 1:
        print("\n" + side_by_side(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


def _measure(stage: Stage, data: Path, work: Path, memory_limit: str) -> dict:
    """One run of ``stage`` on the company in ``data``, printed as it ends."""
    config = bench_config(data, memory_limit) if stage.name != "simulate" else None
    argv = stage.argv(data, config, {"dir": work, "limit": memory_limit})
    load = os.getloadavg()[0]
    r = run(argv, work / f"{stage.name}.log")
    r |= {"events": events_of(data), "stage": stage.name, "load": load}
    print(f"{_size(data):>9,} {stage.name:<15} {r['seconds']:8.1f} s {r['cpu_s']:8.1f} cpu s "
          f"{r['rss_mb']:8,.0f} MB exit {r['exit']} (load {load:.1f})", flush=True)
    if r["exit"] != 0:
        print(f"   failed: see {work / (stage.name + '.log')}")
    return r


def medians(results: list[dict]) -> list[dict]:
    """One row per (size, stage) of its successful runs: the median of each measure (a
    single run is its own median), with ``runs``, the number of runs.

    Examples
    --------
    >>> rows = [{"accounts": 1, "stage": "scan", "exit": 0, "seconds": s, "cpu_s": s,
    ...          "rss_mb": 10, "load": 1.0, "events": 5} for s in (3.0, 1.0, 2.0)]
    >>> [(r["seconds"], r["runs"]) for r in medians(rows)]
    [(2.0, 3)]
    """
    groups: dict = {}
    for r in results:
        if r["exit"] == 0:
            groups.setdefault((r["accounts"], r["stage"]), []).append(r)
    return [runs[0] | {v: statistics.median(r[v] for r in runs)
                       for v in ("seconds", "cpu_s", "rss_mb", "load")} | {"runs": len(runs)}
            for runs in groups.values()]


def side_by_side(results: list[dict]) -> str:
    """Markdown: per size and stage, the median, min and max of wall time, CPU time and peak
    RSS over the rounds, the median load, and the medians against the scan's of the same
    size (``x scan``, wall and CPU)."""
    lines = ["| accounts | stage | runs | wall s (min-max) | CPU s (min-max) | peak RSS MB "
             "(min-max) | load | x scan (wall) | x scan (CPU) |", "|---|---|---|---|---|---|---|---|---|"]
    rows = medians(results)
    for m in rows:
        runs = [r for r in results if r["exit"] == 0 and (r["accounts"], r["stage"]) ==
                (m["accounts"], m["stage"])]
        scan = next((s for s in rows if (s["accounts"], s["stage"]) == (m["accounts"], "scan")),
                    None)
        ratio = ["" if scan is None else f"{m[v] / scan[v]:.1f}x" for v in ("seconds", "cpu_s")]
        spread = {v: f"{m[v]:,.1f} ({min(r[v] for r in runs):,.1f}-{max(r[v] for r in runs):,.1f})"
                  for v in ("seconds", "cpu_s")}
        spread["rss_mb"] = (f"{m['rss_mb']:,.0f} ({min(r['rss_mb'] for r in runs):,.0f}-"
                            f"{max(r['rss_mb'] for r in runs):,.0f})")
        lines.append(f"| {m['accounts']:,} | {m['stage']} | {m['runs']} | {spread['seconds']} "
                     f"| {spread['cpu_s']} | {spread['rss_mb']} | {m['load']:.1f} | {ratio[0]} "
                     f"| {ratio[1]} |")
    return "\n".join(lines)


def table(results: list[dict]) -> str:
    """Markdown: one row per (stage, size), with the growth exponent from the size before."""
    lines = ["| stage | accounts | events | wall s | CPU s | peak RSS MB | load | exponent "
             "(wall) | exponent (CPU) |", "|---|---|---|---|---|---|---|---|---|"]
    for stage in dict.fromkeys(r["stage"] for r in results):
        rows = sorted((r for r in results if r["stage"] == stage and r["exit"] == 0),
                      key=lambda r: r["events"])
        for before, r in zip([None, *rows], rows):
            k = ["" if before is None else f"{_slope(before, r, v):.2f}"
                 for v in ("seconds", "cpu_s")]
            lines.append(f"| {stage} | {r['accounts']:,} | {r['events']:,} | {r['seconds']:.1f} "
                         f"| {r['cpu_s']:.1f} | {r['rss_mb']:,.0f} | {r['load']:.1f} "
                         f"| {k[0]} | {k[1]} |")
    return "\n".join(lines)


def _slope(before: dict, after: dict, value: str) -> float:
    """d log(value) / d log(events) between two sizes."""
    return math.log(after[value] / before[value]) / math.log(after["events"] / before["events"])


if __name__ == "__main__":
    main()
