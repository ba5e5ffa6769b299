"""Incremental refresh, step by step in one process (issue 25 item 4): where a new day's
score spends its time, against a full score of the same data.

:mod:`bench_incremental` times whole commands, each in its own process; on a shared machine
their wall times move by ±50% between runs. This runs the steps of both paths in one
process, alternated, and records each step's wall **and CPU seconds** (every thread's, which
the load inflates far less) with the load average:

1. the project without its last day: ``open_project``, the full build of the held day and
   :func:`pqlml.refresh.keep_state` (what a daily ``pqlml score`` does after a full build);
2. the held day's file added; then ``--rounds`` times: ``open_project``, the incremental
   build of the day after (:func:`pqlml.refresh.incremental_features`), the full build of
   the same day (the whole history), the two tables compared (every column), and the
   scoring of the table with ``--model`` (:meth:`pqlml.score.Scorer.score`).

The summary adds the steps up: a full score is open + full build + scoring, an incremental
one open + incremental build + scoring, and ``floor`` is open + scoring, what an incremental
score costs even if its features cost nothing.

    python benchmarks/bench_incremental_steps.py --work /work/data/incr100k_daily_s \\
        --model /work/data/incr100k_daily_s/model.skops --rounds 2

``--work``: a folder :func:`bench_incremental.split_daily` made (``events/`` daily part
files, the last day in ``held/``). Its feature cache is deleted first. Prints one JSON
object and writes it to ``--work``/bench_incremental_steps.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import time
from pathlib import Path


def main() -> None:
    from pqlml import refresh
    from pqlml.cache import cache_folder
    from pqlml.outputs import landing
    from pqlml.project import open_project, spine_for
    from pqlml.score import Scorer

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, required=True, help="a split_daily folder")
    p.add_argument("--model", type=Path, required=True, help="a model trained on the base")
    p.add_argument("--rounds", type=int, default=2)
    a = p.parse_args()
    config = str(a.work / "pqlml.toml")
    (held,) = (a.work / "held").glob("part-*.parquet")
    day = dt.date.fromisoformat(held.stem[len("part-"):])
    new = day + dt.timedelta(days=1)
    (a.work / "events" / held.name).unlink(missing_ok=True)
    steps: list[dict] = []

    def timed(name: str, compute):
        wall, cpu = time.perf_counter(), time.process_time()
        out = compute()
        steps.append({"step": name, "wall": round(time.perf_counter() - wall, 2),
                      "cpu": round(time.process_time() - cpu, 2),
                      "load": round(os.getloadavg()[0], 1)})
        print(json.dumps(steps[-1]), flush=True)
        return out

    scorer = Scorer.load(str(a.model))
    project = timed("open, without the last day", lambda: open_project(config))
    shutil.rmtree(cache_folder(project.config), ignore_errors=True)
    spine = spine_for(project, as_of=[day], entity="account")
    timed("full build of the held day", lambda: project._build(spine, "account", (), (day,)))
    timed("keep_state", lambda: refresh.keep_state(project, "account", (), day))
    shutil.copy2(held, a.work / "events" / held.name)
    rounds = []
    for r in range(a.rounds):
        q = timed(f"open, after the append (round {r})", lambda: open_project(config))
        inc = timed(f"incremental build (round {r})",
                    lambda: refresh.incremental_features(q, "account", (), new))
        s = spine_for(q, as_of=[new], entity="account")
        full = timed(f"full build (round {r})", lambda: q._build(s, "account", (), (new,)))
        timed(f"score (round {r})", lambda: scorer.score(full, project=q, as_of=str(new)))
        cpu = {k: steps[i]["cpu"] for i, k in zip(range(-4, 0), ("open", "inc", "full", "score"))}
        rounds.append({"equal": inc is not None and inc.equals(full),
                       "path": q.refreshes[-1].line(),
                       "full_score_cpu": round(cpu["open"] + cpu["full"] + cpu["score"], 2),
                       "incremental_score_cpu": round(cpu["open"] + cpu["inc"] + cpu["score"], 2),
                       "floor_cpu": round(cpu["open"] + cpu["score"], 2)})
        rounds[-1]["cpu_ratio"] = round(rounds[-1]["incremental_score_cpu"]
                                        / rounds[-1]["full_score_cpu"], 3)
        rounds[-1]["floor_ratio"] = round(rounds[-1]["floor_cpu"]
                                          / rounds[-1]["full_score_cpu"], 3)
    results = {"work": str(a.work), "cpus": os.cpu_count(), "steps": steps, "rounds": rounds}
    print(json.dumps(results, indent=1))
    with landing(a.work / "bench_incremental_steps.json") as (tmp,):
        tmp.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
