"""Reading sources: files and database tables, column mapping, connections."""

import re
from types import MappingProxyType

import duckdb
import ibis
import pandas as pd
import pytest

from pqlml.config import DataConfig, TableSource
from pqlml.errors import ConfigError, DataError
from pqlml.sources import canonical_table, connect, describe_source, load_tables, read_table
from pqlml.validate import ValidationReport


def _src(path, **columns):
    return TableSource(path, MappingProxyType(columns))


def _events(n=3):
    return pd.DataFrame({
        "timestamp": [f"2024-01-0{i + 1}T10:00:00Z" for i in range(n)],
        "uid": list(range(100, 100 + n)),
        "event": ["login"] * n,
    })


def test_mapping_renames_and_casts_parquet(tmp_path):
    _events().to_parquet(tmp_path / "events.parquet")
    data = DataConfig(root=tmp_path, events=_src("events.parquet", ts="timestamp", user_id="uid"))
    con, tables, report = load_tables(data)
    t = tables["events"]
    assert t.columns == ("ts", "user_id", "event")
    assert str(t.schema()["ts"]) == "timestamp('UTC')" and t.schema()["user_id"].is_string()
    df = t.order_by("ts").execute()
    assert df["user_id"].tolist() == ["100", "101", "102"]
    assert df["ts"].iloc[0] == pd.Timestamp("2024-01-01 10:00", tz="UTC")
    assert len(report) == 0 and not report


def test_csv_glob_binds_columns_by_name(tmp_path):
    (tmp_path / "ev").mkdir()
    _events(2).assign(account_id=["a1", "a2"]).to_csv(tmp_path / "ev" / "a.csv", index=False)
    _events(3)[["event", "uid", "timestamp"]].to_csv(tmp_path / "ev" / "b.csv", index=False)
    data = DataConfig(root=tmp_path, events=_src("ev/*.csv", ts="timestamp", user_id="uid"))
    report = ValidationReport()
    df = canonical_table(connect(data), data, "events", report).order_by("user_id").to_pyarrow()
    # b.csv repeats a.csv's two events (without account_id) and adds one
    assert df["user_id"].to_pylist() == ["100", "101", "102"]
    assert df["account_id"].to_pylist() == ["a1", "a2", None]
    assert [(f.kind, f.rows) for f in report] == [("duplicate_events", 2)]


def test_ids_keep_leading_zeros_in_csv(tmp_path):
    pd.DataFrame({"ts": ["2024-01-01T00:00:00Z"], "user_id": ["007"], "event": ["x"]}).to_csv(
        tmp_path / "e.csv", index=False)
    data = DataConfig(root=tmp_path, events=_src("e.csv"))
    assert load_tables(data)[1]["events"].execute()["user_id"].tolist() == ["007"]


def test_missing_required_column_names_file_columns_and_fix(tmp_path):
    _events().rename(columns={"event": "event_name"}).to_parquet(tmp_path / "events.parquet")
    data = DataConfig(root=tmp_path, events=_src("events.parquet", user_id="uid"))
    with pytest.raises(DataError, match=r"events \(.*events\.parquet\): missing required "
                       r"column\(s\) 'ts', 'event'") as err:
        load_tables(data)
    msg = str(err.value)
    assert "Columns present: 'timestamp', 'uid', 'event_name'" in msg
    assert '[data.events.columns]\nts = "timestamp"\nevent = "event_name"' in msg


def test_mapping_to_absent_column_is_a_data_error(tmp_path):
    _events().to_parquet(tmp_path / "events.parquet")
    data = DataConfig(root=tmp_path, events=_src("events.parquet", ts="timestamp", user_id="user"))
    with pytest.raises(DataError, match=r"maps user_id = 'user', but the source has no such "
                       r"column.*'timestamp', 'uid', 'event'"):
        load_tables(data)


def test_mapping_with_unknown_canonical_name_is_a_config_error(tmp_path):
    _events().to_parquet(tmp_path / "events.parquet")
    data = DataConfig(root=tmp_path, events=_src("events.parquet", time="timestamp"))
    with pytest.raises(ConfigError, match=r"\[data.events.columns\]: 'time' are not events columns"):
        load_tables(data)


def test_missing_file_names_resolved_path_and_config_key(tmp_path):
    data = DataConfig(root=tmp_path, events=_src("nope/*.parquet"))
    with pytest.raises(DataError, match=rf"events \({re.escape(str(tmp_path))}/nope/\*\.parquet\): no file "
                       r"matches.*\[data\.events\] source"):
        load_tables(data)


def test_unknown_extension_and_unreadable_file(tmp_path):
    (tmp_path / "e.json").write_text("{}")
    (tmp_path / "e.parquet").write_text("not parquet")
    con = connect(DataConfig())
    for source, pattern in [("e.json", "unknown file type"), ("e.parquet", "could not read the file")]:
        data = DataConfig(root=tmp_path, events=_src(source))
        with pytest.raises(DataError, match=rf"events \(.*{source}\): {pattern}"):
            read_table(con, data, "events")


def test_extra_columns_are_reported_as_ignored(tmp_path):
    _events().assign(plan="pro", country="DE").to_csv(tmp_path / "e.csv", index=False)
    data = DataConfig(root=tmp_path, events=_src("e.csv", ts="timestamp", user_id="uid"))
    report = ValidationReport()
    t = canonical_table(connect(data), data, "events", report)
    assert "plan" not in t.columns
    assert report.ignored_columns == {"events": ("plan", "country")}
    assert any("ignored columns 'plan', 'country'" in line for line in report.render())


def test_source_column_named_like_a_canonical_one_is_ignored_when_remapped(tmp_path):
    df = _events().assign(ts="garbage")
    df.to_parquet(tmp_path / "e.parquet")
    data = DataConfig(root=tmp_path, events=_src("e.parquet", ts="timestamp", user_id="uid"))
    report = ValidationReport()
    t = canonical_table(connect(data), data, "events", report)
    assert t.count().execute() == 3
    assert report.ignored_columns["events"] == ("ts",)


def test_optional_tables_absent_and_events_required(tmp_path):
    _events().to_parquet(tmp_path / "e.parquet")
    users = pd.DataFrame({"user_id": [100], "email": ["a@x.com"], "signup_at": ["2024-01-01"]})
    users.to_csv(tmp_path / "u.csv", index=False)
    data = DataConfig(root=tmp_path, events=_src("e.parquet", ts="timestamp", user_id="uid"),
                      users=_src("u.csv"))
    _, tables, _ = load_tables(data)
    assert sorted(tables) == ["events", "users"]
    with pytest.raises(ConfigError, match=r"(?s)events: no source configured.*\[data.events\]"):
        load_tables(DataConfig(root=tmp_path, users=_src("u.csv")))


def test_accounts_and_outcomes_cast_to_canonical_types(tmp_path):
    pd.DataFrame({"id": [1, 2], "domain": ["a.com", "b.com"], "created_at": ["2024-01-01"] * 2,
                  "employees": ["10", "2500.0"]}).to_csv(tmp_path / "a.csv", index=False)
    pd.DataFrame({"account_id": [1.0, 2.0], "ts": pd.to_datetime(["2024-02-01"] * 2, utc=True),
                  "outcome": ["conversion", "hand_raise"], "amount": [100, 250]}
                 ).to_parquet(tmp_path / "o.parquet")
    data = DataConfig(root=tmp_path, events=_src("e.parquet"), accounts=_src("a.csv", account_id="id"),
                      outcomes=_src("o.parquet"))
    con = connect(data)
    acc = canonical_table(con, data, "accounts").order_by("account_id").execute()
    assert acc["employees"].tolist() == [10, 2500] and str(acc["employees"].dtype) == "int64"
    out = canonical_table(con, data, "outcomes")
    assert out.schema()["amount"].is_float64() and out.schema()["account_id"].is_string()
    assert sorted(out.execute()["account_id"]) == ["1", "2"]


def _warehouse(path):
    with duckdb.connect(str(path)) as db:
        db.execute("CREATE TABLE raw_events AS SELECT * FROM (VALUES "
                   "(TIMESTAMP '2024-01-01 10:00:00', 'u1', 'login'), "
                   "(TIMESTAMP '2024-01-02 10:00:00', 'u2', 'login')) v(occurred_at, user_id, event)")


def test_duckdb_file_connection_reads_tables(tmp_path, monkeypatch):
    _warehouse(tmp_path / "wh.duckdb")
    monkeypatch.chdir(tmp_path.parent)  # relative paths resolve against root, not the cwd
    for url in (f"duckdb:///{tmp_path}/wh.duckdb", "duckdb://wh.duckdb", "wh.duckdb"):
        data = DataConfig(root=tmp_path, connection=url, events=_src("raw_events", ts="occurred_at"))
        con, tables, report = load_tables(data)
        df = tables["events"].order_by("ts").execute()
        assert df["ts"].iloc[0] == pd.Timestamp("2024-01-01 10:00", tz="UTC")
        assert [f.kind for f in report] == ["naive_timestamps_assumed_utc"]
        assert report.findings[0].file == f"table 'raw_events' in {url}"
        con.disconnect()


def test_missing_database_table_lists_available_tables(tmp_path):
    _warehouse(tmp_path / "wh.duckdb")
    data = DataConfig(root=tmp_path, connection="duckdb://wh.duckdb", events=_src("events"))
    with pytest.raises(DataError, match=r"events \(table 'events' in duckdb://wh.duckdb\): no such "
                       r"table. Tables available: 'raw_events'"):
        load_tables(data)


def test_connect_sets_utc_and_rejects_unknown_urls(tmp_path):
    con = connect(DataConfig())
    assert con.raw_sql("SELECT current_setting('TimeZone')").fetchall() == [("UTC",)]
    with pytest.raises(ConfigError, match=r"\[data\] connection = 'nonsense' could not be opened"):
        connect(DataConfig(connection="nonsense"))
    with pytest.raises(DataError, match=rf"no DuckDB file at {re.escape(str(tmp_path))}/missing\.duckdb"):
        connect(DataConfig(root=tmp_path, connection="duckdb://missing.duckdb"))
    assert not (tmp_path / "missing.duckdb").exists()


def test_describe_source_redacts_credentials(tmp_path):
    data = DataConfig(connection="postgres://me:secret@host/db", events=_src("ev"))
    assert describe_source(data, "events") == "table 'ev' in postgres://***@host/db"


def test_a_given_connection_gets_the_session_settings_and_memory_limit(tmp_path):
    # load_tables(con=...) applies what connect() applies: UTC and [data] memory_limit.
    _events().rename(columns={"timestamp": "ts", "uid": "user_id"}).to_parquet(tmp_path / "e.parquet")
    con = ibis.duckdb.connect()
    data = DataConfig(root=tmp_path, events=TableSource("e.parquet"), memory_limit="300MB")
    load_tables(data, con=con)
    settings = con.raw_sql("SELECT current_setting('TimeZone'), "
                           "current_setting('memory_limit')").fetchall()
    assert settings == [("UTC", "286.1 MiB")]


def test_a_capped_session_spills_into_the_temp_folder_not_the_working_folder(tmp_path, monkeypatch):
    """DuckDB's default spill folder is ./.tmp: under a memory limit, a large sort would write
    gigabytes into the user's folder. pqlml's sessions spill into $TMPDIR/pqlml-spill-<pid>."""
    work, spill_root = tmp_path / "work", tmp_path / "tmp"
    work.mkdir(), spill_root.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("TMPDIR", str(spill_root))
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", None)      # re-read TMPDIR
    con = connect(DataConfig(memory_limit="30MB"))
    raw = con.con
    raw.execute("SET threads = 1")
    spilled = []
    rel = raw.sql("SELECT i, random() AS r FROM range(4000000) t(i) ORDER BY r")
    reader = rel.to_arrow_reader(100_000)
    next(iter(reader))                                   # the sort has run: it spilled
    spilled = [p for p in spill_root.rglob("*") if p.is_file()]
    assert spilled, "the sort under a 30MB cap did not spill: the test shows nothing"
    assert all(p.parent.name.startswith("pqlml-spill-") for p in spilled)
    assert not (work / ".tmp").exists() and not list(work.iterdir())
