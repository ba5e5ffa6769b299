"""open_project from DataFrames (no TOML, no Parquet) and the top-level API."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib

import pandas as pd
import pyarrow as pa
import pytest

import pqlml
from pqlml.config import config_from_settings, load_config
from pqlml.errors import ConfigError, DataError, PqlmlError
from pqlml.model import provenance, train
from pqlml.project import build_features, build_labels, open_project
from pqlml.score import Scorer
from pqlml.simulate import simulate

TABLES = ("events", "users", "accounts", "outcomes", "dispositions", "touches", "holdouts")


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    result = simulate(n_accounts=80, seed=3, out=out, months=5)
    raw = tomllib.loads(result.config.read_text())
    frames = {n: pd.read_parquet(out / f"{n}.parquet") for n in TABLES}
    frames["enrichment"] = pd.read_csv(out / "enrichment.csv")
    sections = {k: v for k, v in raw.items() if k != "data"}
    return out, frames, sections


def _in_memory(sim, **changes):
    out, frames, sections = sim
    return open_project(data={**frames, **changes}, root=out, **sections)


def test_frames_give_the_features_labels_and_findings_of_the_files(sim):
    out = sim[0]
    files, memory = open_project(out / "pqlml.toml"), _in_memory(sim)
    pd.testing.assert_frame_equal(build_features(memory), build_features(files))
    pd.testing.assert_frame_equal(build_labels(memory), build_labels(files))
    found = [(f.table, f.column, f.kind, f.rows, f.action) for f in memory.report.findings]
    assert found == [(f.table, f.column, f.kind, f.rows, f.action)
                     for f in files.report.findings]
    assert {f.file for f in memory.report.findings} <= {"DataFrame", ""}
    assert memory.config.schedule == files.config.schedule


def test_provenance_is_the_frames_content(sim):
    out, frames, sections = sim
    a = config_from_settings(data=frames, root=out, **sections)
    b = config_from_settings(data={n: f.copy() for n, f in frames.items()}, root=out, **sections)
    events = frames["events"].copy()
    events.loc[0, "event"] = "something_else"
    c = config_from_settings(data={**frames, "events": events}, root=out, **sections)
    assert provenance(a) == provenance(b) != provenance(c)
    assert a.data.events.source.startswith("DataFrame sha256:") and a == b


def test_pyarrow_and_polars_frames_read_as_pandas(sim):
    """The canonical tables, which every feature is computed from, are equal."""
    pl = pytest.importorskip("polars")
    out, frames = sim[:2]
    names = ("events", "users", "accounts")
    want = open_project(data={n: frames[n] for n in names}, root=out)
    for convert in (pa.Table.from_pandas, lambda f: pl.from_pandas(f)):
        got = open_project(data={n: convert(frames[n]) for n in names}, root=out)
        for n in names:
            rows = [p.tables[n].execute().sort_values(list(want.tables[n].columns),
                                                      ignore_index=True) for p in (got, want)]
            pd.testing.assert_frame_equal(*rows)


def test_paths_and_frames_mix(sim):
    out, frames, sections = sim
    mixed = open_project(data={**frames, "users": "users.parquet"}, root=out, **sections)
    assert mixed.report.files["users"] == str(out / "users.parquet")
    assert mixed.report.files["events"] == "DataFrame"
    assert mixed.tables["users"].count().execute() == len(frames["users"])


def test_a_stage_takes_an_open_in_memory_project(sim):
    project = _in_memory(sim)
    model = train(project.snapshots(), settings=project.config)
    with pytest.raises(TypeError, match=r"'frame' parameter of train must be a DataFrame of "
                                        r"labelled snapshots \(project.snapshots\(outcome\)\). "
                                        r"Got Project instead"):
        train(project)
    scores = Scorer(model, "in-memory").score(project.features(["2024-05-01"]),
                                              project=project).scores
    assert len(scores) > 0 and {"probability", "tier", "reason_1"} <= set(scores.columns)
    assert scores.probability.between(0, 1).all()


def test_the_schedule_defaults_to_the_datas_months(sim):
    out, frames, sections = sim
    sections = {k: v for k, v in sections.items() if k != "schedule"}
    project = open_project(data=frames, root=out, **sections)
    s, start, end = project.config.schedule, project.data_start, project.data_end
    assert s.every == "month" and s.start.day == 1
    # the widest window (90 days) is full at the first cutoff, not a month later
    assert start + pd.Timedelta(days=90) <= pd.Timestamp(s.start, tz="UTC") \
        < start + pd.Timedelta(days=90 + 32)
    # the last label window closes inside the data
    assert pd.Timestamp(s.end, tz="UTC") + pd.Timedelta(days=28) <= end
    assert not build_labels(project).censored.any()
    # a pqlml.toml states its schedule: without one, the schedule stays missing
    text = re.sub(r"\[schedule\]\n(.+\n)+?every = .*\n", "", (out / "pqlml.toml").read_text())
    (out / "no_schedule.toml").write_text(text)
    assert load_config(out / "no_schedule.toml").schedule.start is None
    with pytest.raises(PqlmlError, match=r"(?s)schedule.start' setting must be a date.*in Python"):
        build_features(out / "no_schedule.toml")


# --- the same validation for a frame as for a file --------------------------------------

def _bad_events():
    n = 1200
    df = pd.DataFrame({"ts": pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC"),
                       "user_id": [f"u{i % 7}" for i in range(n)], "event": "login",
                       "account_id": "a1"})
    return pd.concat([df, df.iloc[[3, 4]]], ignore_index=True)   # two duplicated events


def _findings(report):
    return [(f.table, f.column, f.kind, f.rows, f.action, f.fix) for f in report.findings]


def test_a_bad_frame_gets_the_findings_and_errors_of_the_same_file(tmp_path):
    events = _bad_events()
    events.to_parquet(tmp_path / "events.parquet")
    files = open_project({"data": {"root": str(tmp_path), "events": "events.parquet"}})
    memory = open_project(events=events)
    assert _findings(memory.report) == _findings(files.report)
    assert ("duplicate_events", 2) in [f[2:4] for f in _findings(files.report)]

    nulls = events.astype({"user_id": object})
    nulls.loc[[5, 700], "user_id"] = None
    nulls.to_parquet(tmp_path / "nulls.parquet")
    with pytest.raises(DataError) as from_file:
        open_project({"data": {"root": str(tmp_path), "events": "nulls.parquet"}})
    with pytest.raises(DataError) as from_frame:
        open_project(events=nulls)
    assert "events (DataFrame): column 'user_id' is empty (null) in 2 of" in str(from_frame.value)
    assert str(from_frame.value) == str(from_file.value).replace(
        f"({tmp_path / 'nulls.parquet'})", "(DataFrame)")


def test_a_missing_column_is_named_with_the_fix():
    with pytest.raises(DataError, match=r"(?s)events \(DataFrame\): missing required column\(s\) "
                       r"'user_id'\. Columns present: 'ts', 'uid', 'event'.*\nuser_id = \"uid\""):
        open_project(events=_bad_events().rename(columns={"user_id": "uid"}).drop(
            columns="account_id"))
    renamed = _bad_events().rename(columns={"user_id": "uid"})
    project = open_project(data={"events": {"source": renamed, "columns": {"user_id": "uid"}}})
    assert project.tables["events"].count().execute() == len(renamed) - 2


@pytest.mark.parametrize("call,error,match", [
    (lambda e: open_project(events=e.user_id), ConfigError,
     r"'data.events' setting in the settings passed to open_project must be a table .*, a file "
     r"path, or a pandas DataFrame, a pyarrow Table or a polars DataFrame\. Got a "
     r"pandas.*Series instead"),
    (lambda e: open_project(events=[1, 2]), ConfigError, r"'data.events' setting .* Got \[1, 2\]"),
    (lambda e: open_project(users=e), ConfigError, r"No events in the settings passed to "
     r"open_project.*Fix: pass events=df"),
    (lambda e: open_project("pqlml.toml", events=e), PqlmlError,
     r"open_project takes a config \(str\) or settings \(events\), not both"),
    (lambda e: open_project(events=e, data={"events": e}), ConfigError,
     r"'data.events' setting is given twice"),
    (lambda e: open_project(events=e, horizon_days=14), ConfigError,
     r"Unknown setting 'horizon_days' passed to open_project"),
    (lambda e: open_project(events=e, shedule={}), ConfigError, r"Did you mean 'schedule'\?"),
    (lambda e: open_project(events=e, data={"connection": "duckdb:///w.duckdb"}), ConfigError,
     r"data.events in the settings passed to open_project is a DataFrame.*remove data.connection"),
    (lambda e: open_project(events=e.rename(columns={"ts": 0})), DataError,
     r"events \(DataFrame\): column names must be strings"),
    (lambda e: open_project(events=e.assign(user_id=[1, "u"] * (len(e) // 2))), DataError,
     r"events \(DataFrame\): could not be read .* Column\(s\) 'user_id' mix Python types"),
    (lambda e: open_project(events=e, labels={"horizon_days": 0}), ConfigError,
     r"'labels.horizon_days' setting in the settings passed to open_project must be a positive"),
    (lambda e: open_project(42), PqlmlError, r"must be a Config, a path to pqlml.toml, a dict"),
])
def test_bad_arguments_are_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call(_bad_events())


# --- the top-level API --------------------------------------------------------------------

def test_every_top_level_name_resolves():
    from pqlml.model import LeadClassifier
    from pqlml.tiers import TierPolicy

    for name in pqlml.__all__:
        assert getattr(pqlml, name) is not None, name
    assert pqlml.LeadClassifier is LeadClassifier and pqlml.TierPolicy is TierPolicy
    assert set(pqlml.__all__) <= set(dir(pqlml))
    assert pqlml.open_project is open_project and pqlml.Scorer is Scorer
    assert pqlml.train is train and pqlml.build_features is build_features
    assert pqlml.__version__ == __import__("importlib.metadata").metadata.version("pqlml")


def test_subpackages_named_like_their_function_are_callable():
    import pqlml.backtest as backtest_package
    from pqlml.discover import scan

    assert pqlml.backtest is backtest_package and callable(pqlml.backtest)
    assert pqlml.discover.scan is scan
    called = []
    pqlml.discover.discover, original = (lambda *a, **k: called.append((a, k))), \
        pqlml.discover.discover
    try:
        pqlml.discover("frame", "conversion", events="events")
    finally:
        pqlml.discover.discover = original
    assert called == [(("frame", "conversion"), {"events": "events"})]


def test_import_pqlml_loads_no_heavy_library():
    code = ("import sys, pqlml; heavy = {'pandas', 'ibis', 'sklearn', 'duckdb', 'mlflow'}; "
            "print(sorted(heavy & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
