"""Incremental refresh (issue 25 item 4): scoring the new day after an append, against a
full score of the same data, side by side in one run.

From a simulated company (``pqlml simulate --accounts N --out SIM``) it makes a project whose
events are daily part files (``events/part-YYYY-MM-DD.parquet``, the layout a daily export
writes), holds the last day back, trains a model on the rest, then:

1. ``pqlml score --full`` at the held day, on the data without it (a full build, which keeps
   the state);
2. the held day's file is added;
3. ``pqlml score`` at the day after (incremental: the new events plus the kept state), then
   ``pqlml score --full --no-cache`` (the whole history), the whole ``--repeats`` times;

each command in its own process, timed, with its peak RSS; the load average is recorded
beside. The two scores' files are compared (equal scores, every row).

    python benchmarks/bench_incremental.py --sim /work/data/incr100k --work /work/data/incr100k_daily
    python benchmarks/bench_incremental.py --sim ... --work ... --command features

``--command features`` times ``pqlml features --as-of`` instead (no model).
Prints one JSON object (and writes it to ``--work``/bench_incremental_<command>.json).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

PQLML = [str(Path(sys.executable).with_name("pqlml"))]   # the venv's console script


def split_daily(sim: Path, work: Path) -> Path:
    """``work``: ``sim``'s tables with the events as one Parquet file per day, the last day
    in ``held/``. Row group by row group: memory stays at one group (plus a day's rows)."""
    if (work / "pqlml.toml").exists():
        return work / "held"
    work.mkdir(parents=True, exist_ok=True)
    for f in sim.iterdir():
        if f.is_file() and f.name != "events.parquet":
            shutil.copy2(f, work / f.name)
    text = (sim / "pqlml.toml").read_text().replace('source = "events.parquet"',
                                                    'source = "events/*.parquet"')
    (work / "pqlml.toml").write_text(text)
    src = pq.ParquetFile(sim / "events.parquet")
    parts: dict[str, list[pa.Table]] = {}
    for i in range(src.num_row_groups):
        t = src.read_row_group(i)
        day = pc.strftime(t["ts"], format="%Y-%m-%d")
        for d in pc.unique(day).to_pylist():
            parts.setdefault(d, []).append(t.filter(pc.equal(day, d)))
    (work / "events").mkdir(exist_ok=True)
    (work / "held").mkdir(exist_ok=True)
    last = max(parts)
    for d, tables in sorted(parts.items()):
        t = pa.concat_tables(tables).sort_by("ts")
        folder = work / ("held" if d == last else "events")
        pq.write_table(t, folder / f"part-{d}.parquet")
    return work / "held"


def peak(args: list[str], log: Path) -> dict:
    """Run ``pqlml args`` in its own process under ``/usr/bin/time -v``: wall and CPU
    seconds, its peak RSS (GB), the stage times it printed, the build path it took and the
    load."""
    out = log.with_suffix(".time")
    t0 = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-v", "-o", str(out), *PQLML, *args],
                          capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1",
                               "MLFLOW_DISABLE_TELEMETRY": "true", "COLUMNS": "200"})
    wall = time.perf_counter() - t0
    with open(log, "a") as f:
        f.write(f"$ pqlml {' '.join(args)}\n{done.stdout}{done.stderr}\n")
    if done.returncode:
        raise SystemExit(f"pqlml {' '.join(args)} failed:\n{done.stderr}")
    text = out.read_text()
    kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
    # CPU seconds (user + system, every thread): what the work costs, which the load of a
    # shared machine inflates far less than the wall time
    cpu = sum(float(x) for x in re.findall(r"(?:User|System) time \(seconds\): ([0-9.]+)", text))
    stages = dict(re.findall(r"^(.*?): done in ([0-9.]+) s", done.stderr, re.M))
    path = re.findall(r"features at \S+: (\w+) build \(([^)]*)\)", done.stderr)
    return {"seconds": round(wall, 2), "cpu_seconds": round(cpu, 2),
            "peak_rss_gb": round(kb / 1e6, 2), "stages": stages,
            "path": path[0][0] if path else None, "why": path[0][1] if path else None,
            "load": os.getloadavg()[0]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sim", type=Path, required=True, help="a pqlml simulate folder")
    p.add_argument("--work", type=Path, required=True, help="the daily-parts copy (made once)")
    p.add_argument("--command", choices=("score", "features"), default="score",
                   help="score (with a model trained on the base) or features of the new as_of")
    p.add_argument("--model", type=Path, help="a trained model (default: train one on the base)")
    p.add_argument("--repeats", type=int, default=2)
    a = p.parse_args()
    held = split_daily(a.sim, a.work)
    config = str(a.work / "pqlml.toml")
    log = a.work / f"bench_incremental_{a.command}.log"
    results: dict = {"sim": str(a.sim), "command": a.command, "cpus": os.cpu_count()}
    base = a.work / "events"
    (last,) = [f.name for f in held.glob("*.parquet")]
    day = dt.date.fromisoformat(last[len("part-"):-len(".parquet")])
    for f in held.glob("*.parquet"):              # a rerun: start from the base again
        (base / f.name).unlink(missing_ok=True)

    def command(as_of: dt.date, out: str, *flags) -> list[str]:
        if a.command == "features":
            return ["features", "--config", config, "--as-of", str(as_of),
                    "--out", str(a.work / f"{out}.parquet"), *flags]
        return ["score", "--config", config, "--model", str(model), "--as-of", str(as_of),
                "--out", str(a.work / out), *flags]
    model = a.model or a.work / "model.skops"
    if a.command == "score" and not model.exists():
        results["train"] = peak(["train", "--config", config, "--out", str(model),
                                 "--no-track", "--no-cache", "--kind", "logistic"], log)
    rows = []
    for i in range(a.repeats):
        for f in held.glob("*.parquet"):
            (base / f.name).unlink(missing_ok=True)
        # the day before: a full build, which keeps the state
        before = peak(command(day, "base", "--full"), log)
        for f in held.glob("*.parquet"):
            shutil.copy2(f, base / f.name)
        inc = peak(command(day + dt.timedelta(days=1), "incremental"), log)
        full = peak(command(day + dt.timedelta(days=1), "full", "--full", "--no-cache"), log)
        rows.append({"base": before, "incremental": inc, "full": full,
                     "ratio": round(inc["seconds"] / full["seconds"], 3),
                     "cpu_ratio": round(inc["cpu_seconds"] / full["cpu_seconds"], 3)})
    results["runs"] = rows
    import pandas as pd
    if a.command == "features":
        x = pd.read_parquet(a.work / "incremental.parquet")
        y = pd.read_parquet(a.work / "full.parquet")
        results["equal"] = bool(x.equals(y))
    else:
        x = pd.read_csv(a.work / "incremental" / "scores.csv")
        y = pd.read_csv(a.work / "full" / "scores.csv")
        results["equal"] = bool(x.equals(y))
    print(json.dumps(results, indent=1))
    (a.work / f"bench_incremental_{a.command}.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
