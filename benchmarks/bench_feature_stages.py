"""Benchmark: where a 12-cutoff feature build spends its time, beside the engine's own time
for the two aggregations of the events that the build rests on, written by hand in SQL.

    .venv/bin/python benchmarks/bench_feature_stages.py [--accounts 100000] [--repeats 3]

Runs on the data of ``bench_features.py`` (make it first). Each repeat is a fresh process
(imports before the clock) that times, in order:

* the stages of ``build_features(config, as_of=12 monthly cutoffs)``: opening the project
  (load, validate, resolve identities), the spine, ``project_features`` (builds the lazy
  table and runs its cached parts: the (account, segment) grain among them), compiling the
  final query to SQL, running it to Arrow (compiling again included) and sorting it into a
  DataFrame (DuckDB's freed memory handed back first);
* then, on a fresh DuckDB connection with the same settings, by hand in SQL: the plain
  scan of the four event columns into Arrow (the floor of ``bench_features.py``), the
  grain (one row per account and segment: day range, packed count words) and the
  distinct-active-user bits (one row per account and user), as temp tables.

The hand-written queries are the build's two largest pieces of work with nothing around
them: their sum with the scan says how much of the build is the engine's, on this machine.
Output: medians, min and max per stage as a markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MONTHS = [(2024, m) for m in range(7, 13)] + [(2025, m) for m in range(1, 7)]
CUTOFFS = [f"{y}-{m:02d}-01" for y, m in MONTHS]


def _one(data: Path) -> dict[str, float]:
    import ibis
    import pandas as pd
    import pyarrow as pa  # noqa: F401 - imported before the clock

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _run_one import catalog_config
    from pqlml.project import _sorted_frame, open_project, project_features, spine_for

    ibis.duckdb  # noqa: B018 - ibis imports the backend at its first use
    config = catalog_config(data)
    out, t = {}, time.perf_counter()

    def lap(name):
        nonlocal t
        now = time.perf_counter()
        out[name], t = now - t, now

    start = t
    project = open_project(config)
    lap("open the project (load, validate, identities)")
    spine = spine_for(project, as_of=CUTOFFS, entity="account")
    lap("spine")
    table = project_features(project, spine, "account")
    lap("project_features: lazy table and cached parts (the grain)")
    project.con.compile(table)
    lap("compile the final query")
    rows = [table.to_pyarrow()]
    lap("run the final query to Arrow (compiling again)")
    frame = _sorted_frame(rows.pop(), "account_id")   # its only reference, as in build_features
    lap("sort into a DataFrame")
    out["build_features, all stages"] = time.perf_counter() - start
    assert len(frame) > 0

    con = ibis.duckdb.connect()
    from pqlml.config import DataConfig
    from pqlml.features._activity import PREV, offsets
    from pqlml.features._segments import Segments
    from pqlml.sources import _session
    _session(con, DataConfig())
    events = (data / "events.parquet").as_posix()
    days = [(pd.Timestamp(c) - pd.Timestamp("1970-01-01")).days for c in CUTOFFS]
    # The calendars pqlml cuts: every window edge for the grain, the user windows' for users.
    windows = project.config.features.windows
    edges = list(Segments.build(days, offsets(windows, ())).edges)
    au_edges = list(Segments.build(days, (0, *windows, *PREV)).edges)
    names = [r[0] for r in con.con.execute(
        f"SELECT DISTINCT event FROM read_parquet('{events}') ORDER BY 1").fetchall()]
    base = (f"SELECT account_id AS a, user_id AS u, event AS e, epoch_us(ts) // 86400000000 AS day "
            f"FROM read_parquet('{events}') WHERE account_id IS NOT NULL AND ts < '{CUTOFFS[-1]}'")
    # What each event adds to each word: 2^(17 * slot) in its own word (pqlml's _word_table).
    n_words = -(-len(names) // 3)
    word_cols = ", ".join(f"CASE WHEN code // 3 = {k} THEN (1::BIGINT << (17 * (code % 3)))::DOUBLE "
                          f"ELSE 0 END AS w{k}" for k in range(n_words))
    con.con.execute(f"CREATE TEMP TABLE _words AS SELECT e, {word_cols} FROM (SELECT unnest(?::VARCHAR[]) "
                    f"AS e, (generate_subscripts(?::VARCHAR[], 1) - 1)::INT AS code)", [names, names])
    word_sums = ", ".join(f"sum(w{k}) AS w{k}" for k in range(n_words))
    t = time.perf_counter()
    con.con.execute(f"SELECT ts, user_id, account_id, event FROM read_parquet('{events}')"
                    ).to_arrow_table()
    lap("by hand: plain scan of the four columns into Arrow")
    con.con.execute(
        f"CREATE TEMP TABLE _grain AS SELECT a, seg, count(*)::INT n, max(day)::INT mx, "
        f"min(day)::INT mn, sum(day::DOUBLE)::BIGINT sd, {word_sums} FROM (SELECT b.*, "
        f"{_segment(edges)} AS seg, w.* EXCLUDE (e) FROM ({base}) b LEFT JOIN _words w USING (e)) "
        f"GROUP BY a, seg")
    lap("by hand: the grain (account, segment; packed count words)")
    con.con.execute(
        f"CREATE TEMP TABLE _users AS SELECT a, u, bit_or(1::BIGINT << seg) AS m FROM "
        f"(SELECT a, u, {_segment(au_edges)} AS seg FROM ({base}) WHERE u IS NOT NULL "
        f"AND day >= {au_edges[0]}) GROUP BY a, u")
    lap("by hand: active-user bits (account, user)")
    return out


def _segment(edges: list[int]) -> str:
    """The segment of ``day``: a tree of comparisons, as pqlml's Segments writes it."""
    def tree(lo, hi):
        if hi - lo == 1:
            return str(lo)
        mid = (lo + hi) // 2
        return f"CASE WHEN day < {edges[mid]} THEN {tree(lo, mid)} ELSE {tree(mid, hi)} END"
    return f"CASE WHEN day < {edges[0]} THEN -1 ELSE {tree(0, len(edges) - 1)} END"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--accounts", type=int, default=100_000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--data", type=Path, help="default: data/generated/sim{ACCOUNTS}")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    data = args.data or ROOT / "data" / "generated" / f"sim{args.accounts}"
    if args.child:
        print("@@STAGES " + json.dumps(_one(data)), flush=True)
        return
    if not (data / "events.parquet").exists():
        sys.exit(f"No simulated data in {data}: run benchmarks/bench_features.py first.")
    from rich.progress import Progress
    runs = []
    with Progress() as progress:
        task = progress.add_task("fresh-process runs", total=args.repeats)
        for _ in range(args.repeats):
            done = subprocess.run([sys.executable, __file__, "--child", "--data", str(data)],
                                  capture_output=True, text=True, check=True)
            line = next(x for x in done.stdout.splitlines() if x.startswith("@@STAGES "))
            runs.append(json.loads(line.removeprefix("@@STAGES ")))
            progress.advance(task)
    print(f"\n12 monthly cutoffs, {data.name}; medians of {args.repeats} fresh-process runs\n")
    print("| stage | median s | min s | max s |\n|---|---|---|---|")
    for name in runs[0]:
        values = [r[name] for r in runs]
        print(f"| {name} | {statistics.median(values):.2f} | {min(values):.2f} | {max(values):.2f} |")


if __name__ == "__main__":
    main()
