"""Where one example of tests/test_refresh.py's property test spends its time.

Runs the property test's own helpers on a fixed log of 60 events (the kept build, one
appended day, then twice an incremental build and the full rebuild it is compared with),
once to warm up and once under cProfile, and prints the CPU seconds of the example and the
most expensive calls. Used for BENCHMARKS.md's "Shared simulated companies" section.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/profile_refresh_example.py
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import test_refresh as T  # noqa: E402 - the test's helpers, from its folder


def example(rows) -> None:
    """One example as the property test runs it (no newcomers, a three-day append)."""
    root, users = T._project_folder(rows)
    project, _ = T._kept(root)
    users = users.head(6)
    new = [(min(s, 3 * 86_400 - 1), u, e, a) for s, u, e, a in T._one_day(rows[:10])]
    T._append(root, new, users, project.data_end)
    for step in range(2):
        project = T.open_project(root / "pqlml.toml")
        as_of = T._day_after(project.data_end)
        pd.testing.assert_frame_equal(project.features([as_of]), T._full(root, as_of))
        T._append(root, new[:3], users, project.data_end, name=f"part-{step + 2:03d}.parquet")


def main() -> None:
    rng = np.random.default_rng(5)
    n = 60
    rows = [(int(s), int(u), int(e), float(a) if a > 500 else None) for s, u, e, a in
            zip(rng.integers(0, 200 * 86_400, n), rng.integers(0, 6, n),
                rng.integers(0, 6, n), rng.uniform(0, 1000, n))]
    example(rows)                                       # imports and first compiles
    profile, started = cProfile.Profile(), time.process_time()
    profile.enable()
    example(rows)
    profile.disable()
    print(f"CPU s per example: {time.process_time() - started:.1f}")
    pstats.Stats(profile).sort_stats("cumulative").print_stats(30)


if __name__ == "__main__":
    main()
