"""The fixed cost of one small feature build: CPU s of the expression, its compile and its run.

Simulates a 200-account company (6 months, every feature family on) into a temporary
folder, then three times: ``project_features`` on the spine of every scheduled date (the
expression, with the small cached queries it runs), ``ibis.to_sql`` (ibis's compile) and
``execute()`` (its own compile and DuckDB's run), in CPU seconds (``time.process_time``,
which load changes less than wall time). Used for BENCHMARKS.md's "The fixed cost of a
feature build" section.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_compile.py
"""

from __future__ import annotations

import tempfile
import time

import ibis

from pqlml.project import open_project, project_features, spine_for
from pqlml.simulate import simulate


def main(repeats: int = 3) -> None:
    with tempfile.TemporaryDirectory() as folder:
        sim = simulate(n_accounts=200, seed=3, out=folder, months=6)
        project = open_project(sim.config, cache=False)
        spine = spine_for(project, as_of=list(project.dates(None)), entity=project.entity)
        for _ in range(repeats):
            started = time.process_time()
            table = project_features(project, spine, project.entity, ())
            built = time.process_time()
            sql = ibis.to_sql(table)
            compiled = time.process_time()
            frame = table.execute()
            done = time.process_time()
            print(f"expression {built - started:.2f}  compile {compiled - built:.2f}  "
                  f"execute {done - compiled:.2f} CPU s  ({len(sql):,} SQL characters, "
                  f"{frame.shape[0]} x {frame.shape[1]})", flush=True)


if __name__ == "__main__":
    main()
