"""Issue 25, 1M accounts under a memory limit: the feature query run by groups of entities
(pqlml.grouped) writes the table one query gives, whatever the number of groups."""

from __future__ import annotations

import pandas as pd
import pytest

from pqlml.grouped import EVENTS_PER_GB, group_count, memory_limit_bytes
from pqlml.project import open_project
from pqlml.streamed import write_features
from simulated import moving_company

MOVE = pd.Timestamp("2024-03-01", tz="UTC")


@pytest.fixture(scope="module")
def company(tmp_path_factory):
    """40 accounts, users moving between accounts, an order total summed per window."""
    out = tmp_path_factory.mktemp("grouped")
    text = moving_company(out, seed=11, draws=3, every=3, move=MOVE)
    (out / "grouped.toml").write_text(text)
    project = open_project(out / "grouped.toml", cache=False)
    return project, project.features()


def _sorted(frame):
    return frame.sort_values(["account_id", "as_of"]).reset_index(drop=True)


@pytest.mark.parametrize("groups", [2, pytest.param(5, marks=pytest.mark.slow)])
def test_groups_write_the_one_query_table_on_every_column(company, tmp_path, groups):
    project, memory = company
    done = write_features(project, tmp_path / "f.parquet", groups=groups)
    grouped = _sorted(pd.read_parquet(tmp_path / "f.parquet"))
    assert done.rows == len(memory) and list(grouped.columns) == list(memory.columns)
    assert memory.as_of.nunique() > 3 and "task_orders_30d" in memory.columns
    assert memory.task_orders_30d.gt(0).any() and memory.users_total.gt(0).any()
    # every column, exactly (64-bit integers are stored as 32-bit, as one query's file)
    pd.testing.assert_frame_equal(grouped, memory, check_dtype=False, check_exact=True)
    assert not list(tmp_path.iterdir())[1:]               # the groups' events are gone


def test_the_group_count_follows_events_and_limit_only():
    gb = 10**9
    assert group_count(EVENTS_PER_GB * 4, 4 * gb) == 1
    assert group_count(EVENTS_PER_GB * 4 + 1, 4 * gb) == 2
    assert group_count(221_433_916, memory_limit_bytes("3.7 GiB")) == 6
    assert group_count(22_078_595, memory_limit_bytes("3.7 GiB")) == 1
    assert group_count(22_078_595, memory_limit_bytes("400MB")) == 6
    assert group_count(10**9, None) == group_count(0, gb) == 1
    assert memory_limit_bytes("1.0 GiB") == 1024**3 and memory_limit_bytes("512KB") == 512_000
    assert memory_limit_bytes("") is None and memory_limit_bytes("-1") is None


def test_the_default_count_reads_the_session_limit(company, tmp_path):
    """One group here (a small log under DuckDB's default limit): no events are written."""
    from pqlml.grouped import _default_groups
    project, _ = company
    assert _default_groups(project) == 1


@pytest.mark.slow
def test_the_training_sample_is_the_same_by_groups(company, monkeypatch):
    """``training_snapshots`` reads the features a group after another when the events
    exceed the limit's share: the same sample, row for row, as one query."""
    import dataclasses

    from pqlml import grouped

    project, memory = company
    cfg = project.config
    small = dataclasses.replace(project, _frames={}, config=dataclasses.replace(
        cfg, model=dataclasses.replace(cfg.model, max_training_rows=len(memory) // 3)))
    one, record = small.training_snapshots(whole=1)
    events = int(project.tables["events"].count().execute())
    limit = grouped.memory_limit_bytes(project.con.con.execute(
        "select current_setting('memory_limit')").fetchall()[0][0])
    monkeypatch.setattr(grouped, "EVENTS_PER_GB", events / (3.5 * limit / 1e9))
    assert grouped._default_groups(project) == 4
    by_groups, again = small.training_snapshots(whole=1)
    assert record is not None and again == record
    pd.testing.assert_frame_equal(by_groups, one, check_exact=True)


def test_the_in_memory_table_is_the_same_by_groups(company, monkeypatch):
    """``Project.features`` concatenates the groups' tables when the events exceed the
    limit's share: equal to one query on every column and dtype."""
    import dataclasses

    from pqlml import grouped

    project, memory = company
    monkeypatch.setattr(grouped, "_default_groups", lambda project: 3)
    by_groups = dataclasses.replace(project, _frames={}).features()
    pd.testing.assert_frame_equal(by_groups, memory, check_exact=True)
