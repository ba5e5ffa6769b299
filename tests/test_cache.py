"""Feature tables are built once: kept for the run, and on disk for later commands, under a
key that changes with the definitions, the data and the dates; damaged entries are rebuilt."""

from __future__ import annotations

import json
import os
from dataclasses import replace
import subprocess
import sys

import pandas as pd
import pytest

from pqlml.cache import CACHE_FOLDER
from pqlml.cli import main
from pqlml.project import open_project
from pqlml.simulate import simulate


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    return simulate(n_accounts=120, seed=5, out=tmp_path_factory.mktemp("cache"), months=6)


def _entries(sim):
    return sorted((sim.out / CACHE_FOLDER).glob("*.parquet"))


def test_a_table_is_built_once_per_run_and_read_back_by_the_next(sim):
    first = open_project(sim.config)
    X = first.features()
    again = first.features()                        # the same run: no second build
    assert first.builds == [("account", first.dates(), "()")] and again.equals(X)
    again["events_30d"] = -1                        # a caller's change stays its own
    assert first.features().events_30d.ge(0).all()
    first.snapshots("conversion")                   # features and labels of the schedule
    assert len(first.builds) == 1
    second = open_project(sim.config)               # a later command
    pd.testing.assert_frame_equal(second.features(), X, check_exact=True)
    assert second.builds == []
    fresh = open_project(sim.config, cache=False)   # the independent computation
    pd.testing.assert_frame_equal(fresh.features(), X, check_exact=True)
    assert len(fresh.builds) == 1


def test_another_process_reads_what_a_command_wrote(sim, tmp_path):
    assert main(["features", "--config", str(sim.config), "--as-of", "2024-04-01",
                 "--out", str(tmp_path / "f.parquet")]) == 0
    code = ("from pqlml.project import open_project; import sys; "
            f"p = open_project({str(sim.config)!r}); p.features('2024-04-01'); "
            "print(len(p.builds))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=os.environ | {"OMP_NUM_THREADS": "1"})
    assert out.stdout.strip() == "0"


def test_new_data_or_new_definitions_are_a_new_key(sim, tmp_path):
    import shutil

    from pqlml.config import load_config

    copy = tmp_path / "company"
    shutil.copytree(sim.out, copy, ignore=shutil.ignore_patterns(CACHE_FOLDER))
    config = copy / "pqlml.toml"
    X = open_project(config).features("2024-04-01")
    assert len(list((copy / CACHE_FOLDER).glob("*.parquet"))) == 1
    events = pd.read_parquet(copy / "events.parquet")
    events.iloc[::2].to_parquet(copy / "events.parquet")   # the data changed
    changed = open_project(config)
    Y = changed.features("2024-04-01")
    assert len(changed.builds) == 1 and not Y.equals(X)
    # the entry of the old data is gone; the new one is the only one left
    assert len(list((copy / CACHE_FOLDER).glob("*.parquet"))) == 1
    cfg = load_config(config)
    other = replace(cfg, features=replace(cfg.features, windows=(30, 60)))
    windows = open_project(other)
    assert "events_60d" in windows.features("2024-04-01") and len(windows.builds) == 1


def test_a_damaged_entry_is_rebuilt_not_trusted(sim):
    open_project(sim.config).features("2024-03-01")
    for table in _entries(sim):
        data = bytearray(table.read_bytes())
        data[len(data) // 2] ^= 0xFF                 # one flipped byte
        table.write_bytes(bytes(data))
    project = open_project(sim.config)
    X = project.features("2024-03-01")
    assert len(project.builds) == 1 and project.cache.rebuilt
    pd.testing.assert_frame_equal(X, open_project(sim.config, cache=False)
                                  .features("2024-03-01"))
    for record in (sim.out / CACHE_FOLDER).glob("*.json"):
        record.write_text("{not json")
    project = open_project(sim.config)
    project.features("2024-03-01")
    assert len(project.builds) == 1 and project.cache.rebuilt
    rows = []
    for record in (sim.out / CACHE_FOLDER).glob("*.json"):
        if record.read_text() != "{not json":
            rows.append(json.loads(record.read_text())["rows"])
    assert rows == [len(X)]                          # written afresh


def test_no_cache_and_cache_clear(sim, tmp_path, capsys):
    open_project(sim.config).features("2024-05-01")
    assert _entries(sim)
    assert main(["cache", "clear", "--config", str(sim.config)]) == 0
    assert _entries(sim) == []
    assert main(["features", "--config", str(sim.config), "--as-of", "2024-05-01",
                 "--no-cache", "--out", str(tmp_path / "f.csv")]) == 0
    assert _entries(sim) == []                       # --no-cache neither reads nor writes
    assert main(["cache", "info", "--config", str(sim.config)]) == 0
    assert "0 cached feature table(s)" in capsys.readouterr().out


def test_a_table_for_fewer_dates_with_the_same_last_is_cut_from_the_wider_one(sim):
    project = open_project(sim.config, cache=False)
    dates = project.dates()
    X = project.features()
    last = project.features(dates[-1])
    two = project.features([dates[0], dates[-1]])
    assert len(project.builds) == 1                  # both cut from the schedule's table
    alone = open_project(sim.config, cache=False)    # the independent computation: built
    # equal up to the order of a float sum (the decayed engagement score)
    pd.testing.assert_frame_equal(last, alone.features(dates[-1]), rtol=1e-12)
    pd.testing.assert_frame_equal(two, alone.features([dates[0], dates[-1]]), rtol=1e-12)
    earlier = project.features(dates[:-1])           # another last date: its own table
    assert len(project.builds) == 2 and len(earlier) == (X.as_of < X.as_of.max()).sum()
