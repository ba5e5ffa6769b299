"""Incremental refresh (issue 25 item 4): scoring the new day after an append, against a
full score of the same data, side by side in one run.

From a simulated company (``pqlml simulate --accounts N --out SIM``) it makes a project whose
events are daily part files (``events/part-YYYY-MM-DD.parquet``, the layout a daily export
writes), holds the last day back, trains a model on the rest, then:

1. ``pqlml score`` on the data without the last day (a full build: the state is kept);
2. the last day's file is added;
3. ``pqlml score`` (incremental: the new events plus the kept state), then
   ``pqlml score --full --no-cache`` (the whole history), alternating ``--repeats`` times;

each command in its own process, timed, with its peak RSS; the load average is recorded
beside. The two scores' files are compared (equal scores, every row).

    python benchmarks/bench_incremental.py --sim /work/data/incr100k --work /work/data/incr100k_daily

Prints one JSON object (and writes it to ``--work``/bench_incremental.json).
"""

from __future__ import annotations

import argparse
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

PQLML = [sys.executable, "-m", "pqlml"]


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
    """Run ``pqlml args`` in its own process under ``/usr/bin/time -v``: wall seconds, its
    peak RSS (GB), the stage times it printed, the build path it took and the load."""
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
    kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", out.read_text()).group(1))
    stages = dict(re.findall(r"^(.*?): done in ([0-9.]+) s", done.stderr, re.M))
    path = re.findall(r"features at \S+: (\w+) build \(([^)]*)\)", done.stderr)
    return {"seconds": round(wall, 2), "peak_rss_gb": round(kb / 1e6, 2), "stages": stages,
            "path": path[0][0] if path else None, "why": path[0][1] if path else None,
            "load": os.getloadavg()[0]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sim", type=Path, required=True, help="a pqlml simulate folder")
    p.add_argument("--work", type=Path, required=True, help="the daily-parts copy (made once)")
    p.add_argument("--model", type=Path, help="a trained model (default: train one on the base)")
    p.add_argument("--repeats", type=int, default=2)
    a = p.parse_args()
    held = split_daily(a.sim, a.work)
    config = str(a.work / "pqlml.toml")
    log = a.work / "bench_incremental.log"
    results: dict = {"sim": str(a.sim), "cpus": os.cpu_count()}
    base = a.work / "events"
    for f in held.glob("*.parquet"):              # a rerun: start from the base again
        if (base / f.name).exists():
            (base / f.name).unlink()
    model = a.model or a.work / "model.skops"
    if not model.exists():
        results["train"] = peak(["train", "--config", config, "--out", str(model),
                                 "--no-track", "--no-cache"], log)
    results["score_base"] = peak(["score", "--config", config, "--model", str(model),
                                  "--out", str(a.work / "scores_base")], log)
    for f in held.glob("*.parquet"):
        shutil.copy2(f, base / f.name)
    rows = []
    for i in range(a.repeats):
        if i:            # the next day again: restore the state by scoring the base
            for f in held.glob("*.parquet"):
                (base / f.name).unlink()
            peak(["score", "--config", config, "--model", str(model), "--full",
                  "--out", str(a.work / "scores_base")], log)
            for f in held.glob("*.parquet"):
                shutil.copy2(f, base / f.name)
        inc = peak(["score", "--config", config, "--model", str(model),
                    "--out", str(a.work / "scores_incremental")], log)
        full = peak(["score", "--config", config, "--model", str(model), "--full",
                     "--no-cache", "--out", str(a.work / "scores_full")], log)
        rows.append({"incremental": inc, "full": full,
                     "ratio": round(inc["seconds"] / full["seconds"], 3)})
    results["runs"] = rows
    import pandas as pd
    x = pd.read_csv(a.work / "scores_incremental" / "scores.csv")
    y = pd.read_csv(a.work / "scores_full" / "scores.csv")
    results["scores_equal"] = bool(x.equals(y))
    print(json.dumps(results, indent=1))
    (a.work / "bench_incremental.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
