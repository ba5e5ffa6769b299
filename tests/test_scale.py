"""Issue 25, one machine: the simulator written in chunks of accounts, and features streamed
to Parquet instead of held in memory."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from pqlml.cli import main
from pqlml.errors import DataError
from pqlml.project import open_project
from pqlml.simulate import _params as P
from pqlml.simulate import _write as simulate_write
from pqlml.simulate import chunk_sizes, simulate
from pqlml.streamed import _cast, _compact_schema, write_features

TABLES = ("events", "users", "accounts", "outcomes", "dispositions", "touches", "holdouts")


@pytest.fixture(scope="module")
def chunked(tmp_path_factory):
    """600 accounts in three chunks of 200."""
    return simulate(600, seed=9, out=tmp_path_factory.mktemp("chunked"), months=8,
                    chunk_accounts=200)


def _read(out, name):
    return pd.read_parquet(out / f"{name}.parquet")


def test_chunk_sizes_cover_the_company_in_nearly_equal_parts():
    for n, k in ((1, 1), (600, 200), (601, 200), (1_000_000, 100_000), (99, 100)):
        sizes = chunk_sizes(n, k)
        assert sum(sizes) == n and max(sizes) <= k and max(sizes) - min(sizes) <= 1
        assert len(sizes) == -(-n // k)


def test_chunked_company_is_the_same_for_the_same_seed(chunked, tmp_path):
    again = simulate(600, seed=9, out=tmp_path, months=8, chunk_accounts=200)
    for name in TABLES:
        pd.testing.assert_frame_equal(_read(chunked.out, name), _read(again.out, name))
    pd.testing.assert_frame_equal(pd.read_parquet(chunked.out / "truth" / "snapshots.parquet"),
                                  pd.read_parquet(again.out / "truth" / "snapshots.parquet"))
    for name in ("enrichment.csv", "enterprise_domains.csv", "pqlml.toml"):
        assert (chunked.out / name).read_text() == (again.out / name).read_text()
    assert not any(p.name.startswith(".") for p in chunked.out.iterdir())   # no parts left


def test_one_chunk_is_the_unchunked_company(tmp_path):
    """A company no larger than a chunk is drawn from the seed alone, as before chunks."""
    a = simulate(150, seed=4, out=tmp_path / "a", months=6)
    b = simulate(150, seed=4, out=tmp_path / "b", months=6, chunk_accounts=150)
    c = simulate(150, seed=4, out=tmp_path / "c", months=6, chunk_accounts=50)
    for name in TABLES:
        pd.testing.assert_frame_equal(_read(a.out, name), _read(b.out, name))
    assert not _read(a.out, "events").equals(_read(c.out, "events"))


def test_chunks_make_one_consistent_company(chunked):
    out = chunked.out
    ev, users, acc, outcomes = (_read(out, n) for n in ("events", "users", "accounts", "outcomes"))
    assert chunked.counts["accounts"] == len(acc) == 600 and chunked.counts["events"] == len(ev)
    assert acc.account_id.is_unique and acc.domain.is_unique and users.user_id.is_unique
    assert users.email.is_unique
    # one time-ordered log numbered by row, whatever chunk an event came from
    assert ev.ts.is_monotonic_increasing and (ev.event_id.to_numpy() == np.arange(len(ev))).all()
    m = ev.merge(users[["user_id", "account_id", "signup_at"]], on="user_id", how="left",
                 suffixes=("", "_user"), indicator=True)
    assert (m._merge == "both").all() and (m.ts >= m.signup_at).all()
    assert (m.account_id.fillna("-") == m.account_id_user.fillna("-")).all()
    # every chunk has events, work-email users of its own accounts and outcomes
    first = acc.account_id.str[1:].astype(int) // 200
    assert set(first[acc.account_id.isin(ev.account_id)]) == {0, 1, 2}
    work = users.dropna(subset=["account_id"]).merge(acc[["account_id", "domain"]], on="account_id")
    assert (work.email.str.split("@").str[1] == work.domain).all()
    hr = outcomes[outcomes.outcome == "hand_raise"]
    # not user_id: the outcome names the account's buyer (issue 26), the event its own user
    key = ["account_id", "ts", "event"]
    raised = ev[ev.event.isin(P.HAND_RAISE_EVENTS)][key]
    pd.testing.assert_frame_equal(hr[key].sort_values(key).reset_index(drop=True),
                                  raised.sort_values(key).reset_index(drop=True))
    assert outcomes.ts.is_monotonic_increasing
    truth = pd.read_parquet(out / "truth" / "snapshots.parquet")
    assert truth.account_id.isin(acc.account_id).all()
    assert not truth.duplicated(["account_id", "as_of"]).any()
    enrichment = pd.read_csv(out / "enrichment.csv")
    assert enrichment.domain.is_unique and len(enrichment) == chunked.counts["enrichment"]
    assert pd.read_csv(out / "enterprise_domains.csv").domain.str.startswith("bigcorp-").sum() == 5


def _peak_mb(out, chunk):
    """Peak of the memory Python and NumPy allocate (tracemalloc) while simulating."""
    tracemalloc.start()
    try:
        simulate(5_000, seed=1, out=out, months=6, chunk_accounts=chunk)
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


@pytest.mark.slow
def test_memory_follows_the_chunk_not_the_company(tmp_path, monkeypatch):
    """The simulation's arrays at the peak: 5,000 accounts at once against in chunks of
    1,000 (29 MB against 6 MB when written). The events are merged in batches of a
    million rows, more than this company has: smaller batches here, so that the chunks'
    arrays are what is measured."""
    monkeypatch.setattr(simulate_write, "_ROW_GROUP", 1 << 14)
    whole, chunked = _peak_mb(tmp_path / "whole", 5_000), _peak_mb(tmp_path / "parts", 1_000)
    assert chunked < 0.4 * whole, (chunked, whole)


def test_streamed_features_equal_the_in_memory_table(chunked, tmp_path):
    project = open_project(chunked.config, cache=False)
    done = write_features(project, tmp_path / "f.parquet")
    streamed = pd.read_parquet(tmp_path / "f.parquet")
    key = ["account_id", "as_of"]
    streamed = streamed.sort_values(key).reset_index(drop=True)
    memory = project.features()            # the independent computation: collected whole
    assert list(streamed.columns) == list(memory.columns)
    assert done.rows == len(memory) and done.features == memory.shape[1] - 2
    assert memory.as_of.nunique() == len(done.dates) > 1
    # every column, exactly; 64-bit integer columns are stored as 32-bit, nothing else changes
    pd.testing.assert_frame_equal(streamed, memory, check_dtype=False, check_exact=True)
    for c in memory.columns:
        expected = "int32" if memory[c].dtype == "int64" else memory[c].dtype
        assert streamed[c].dtype == expected, c
    assert (memory.dtypes == "int64").any()       # the compaction was exercised


def test_cli_streams_on_request_and_refuses_csv(chunked, tmp_path, capsys):
    out = tmp_path / "f.parquet"
    assert main(["features", "--config", str(chunked.config), "--as-of", "2024-05-01",
                 "--stream", "--out", str(out)]) == 0
    assert "(streamed)" in capsys.readouterr().err
    X = pd.read_parquet(out)
    assert X.as_of.nunique() == 1 and X.account_id.is_unique
    assert main(["features", "--config", str(chunked.config), "--stream",
                 "--out", str(tmp_path / "f.csv")]) == 2
    assert "streamed to a Parquet file" in capsys.readouterr().err
    assert not (tmp_path / "f.csv").exists()


def test_a_count_beyond_32_bits_is_a_named_error():
    rows = pa.table({"account_id": ["a1", "a2"], "users_total": pa.array([3, 2**40], pa.int64())})
    schema = _compact_schema(rows.schema)
    assert schema.field("users_total").type == pa.int32()
    assert _cast(rows.slice(0, 1), schema)["users_total"].to_pylist() == [3]
    with pytest.raises(DataError, match="'users_total'.*32-bit"):
        _cast(rows, schema)


def test_an_engine_out_of_memory_names_the_memory_limit(chunked, tmp_path, capsys):
    tiny = chunked.out / "pqlml.tiny.toml"
    tiny.write_text(chunked.config.read_text().replace(
        'root = "."', 'root = "."\nmemory_limit = "40MB"', 1))
    assert main(["features", "--config", str(tiny), "--stream",
                 "--out", str(tmp_path / "f.parquet")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "Out of Memory" in err and "memory_limit (now '40MB')" in err
    assert not (tmp_path / "f.parquet").exists()
