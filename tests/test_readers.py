"""Segment, Amplitude and Mixpanel exports -> the same canonical tables; rejects counted."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pqlml.config import DataConfig, ExportConfig, config_from_dict
from pqlml.errors import ConfigError, DataError
from pqlml.project import build_features
from pqlml.simulate import simulate
from pqlml.simulate._export import export_company
from pqlml.sources import load_tables
from pqlml.validate import ValidationReport

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "exports"
MIXPANEL = {"people": "mixpanel/people.json", "groups": "mixpanel/groups_company_id.json"}
SOURCES = [("segment", "segment/events.jsonl", {}),
           ("segment", "segment/segment-logs/**/*.gz", {}),
           ("amplitude", "amplitude/*.zip", {}),
           ("mixpanel", "mixpanel/export.jsonl", MIXPANEL),
           ("mixpanel", "mixpanel/export_premerge.jsonl", MIXPANEL),
           ("mixpanel", "mixpanel/export_time_ms.jsonl", MIXPANEL),
           ("segment_warehouse", "segment_warehouse", {})]


def canonical(root, fmt, source, connection="", **extra):
    _, tables, report = load_tables(DataConfig(root=root, connection=connection,
                                               export=ExportConfig(fmt, source, **extra)))
    out = {}
    for name, t in tables.items():
        df = t.execute().drop(columns=["event_id"], errors="ignore")
        key = ["ts", "event"] if name == "events" else [df.columns[0]]
        out[name] = df.sort_values(key).reset_index(drop=True)
    return out, report


def expected(name):
    df = pd.read_csv(FIXTURES / "expected" / f"{name}.csv", keep_default_na=True)
    for col in ("ts", "signup_at", "first_seen_at", "created_at"):
        if col in df and df[col].notna().any():
            df[col] = pd.to_datetime(df[col], utc=True)
    return df


@pytest.mark.parametrize("fmt,source,extra", SOURCES, ids=[s for _, s, _ in SOURCES])
def test_each_reader_gives_the_documented_canonical_tables(fmt, source, extra):
    tables, report = canonical(FIXTURES, fmt, source, **extra)
    events, users, accounts = tables["events"], tables["users"], tables["accounts"]
    want = expected("events")
    assert events.ts.tolist() == want.ts.tolist()
    assert events.user_id.tolist() == want.user_id.tolist()        # anon-1's event is u1's
    assert events.event.tolist() == want.event.tolist()
    wu = expected("users").set_index("user_id")
    got = users.set_index("user_id")
    assert list(got.index) == list(wu.index)
    assert got.email.tolist() == wu.email.tolist()
    assert got.title.fillna("").tolist() == wu.title.fillna("").tolist()
    assert got.account_id.fillna("").tolist() == wu.account_id.fillna("").tolist()
    assert got.signup_at.tolist() == wu.signup_at.tolist()
    wa = expected("accounts").set_index("account_id")
    ga = accounts.set_index("account_id")
    assert ga.domain.tolist() == wa.domain.tolist() and ga.employees.tolist() == wa.employees.tolist()
    assert ga.industry.tolist() == wa.industry.tolist()
    assert ga.created_at.tolist() == wa.first_seen_at.tolist()     # no created-at trait given
    assert not [f for f in report if f.kind.startswith("rejected")]


def test_the_same_activity_gives_identical_tables_in_every_shape():
    reference, _ = canonical(FIXTURES, *SOURCES[0][:2])
    for fmt, source, extra in SOURCES[1:]:
        other, _ = canonical(FIXTURES, fmt, source, **extra)
        for name in reference:
            if name == "memberships":     # a group call's time (Segment) vs the first event
                keys = ["user_id", "account_id"]   # carrying the group (Amplitude, Mixpanel)
                pd.testing.assert_frame_equal(reference[name][keys], other[name][keys],
                                              obj=f"{source} {name}")
                continue
            pd.testing.assert_frame_equal(reference[name], other[name], obj=f"{source} {name}")


def test_segment_warehouse_tables_are_read_in_the_warehouse(tmp_path):
    import duckdb

    db = tmp_path / "wh.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE SCHEMA segment_prod")
        for name in ("tracks", "identifies", "groups"):
            con.execute(f"CREATE TABLE segment_prod.{name} AS SELECT * FROM read_csv("
                        f"'{FIXTURES / 'segment_warehouse' / name}.csv')")
        con.execute("UPDATE segment_prod.tracks SET timestamp = NULL WHERE event = 'invite_sent'")
    tables, report = canonical(tmp_path, "segment_warehouse", "segment_prod",
                               connection=f"duckdb:///{db}", max_reject_rate=0.5)
    reference, _ = canonical(FIXTURES, *SOURCES[0][:2])
    kept = reference["events"][reference["events"].event != "invite_sent"].reset_index(drop=True)
    pd.testing.assert_frame_equal(tables["events"], kept)
    pd.testing.assert_frame_equal(tables["users"], reference["users"])
    assert {f.kind: f.rows for f in report if f.kind.startswith("rejected_")} == {
        "rejected_unparseable_time": 1}
    assert pd.read_csv(tmp_path / "rejects.csv").file.tolist() == ["tracks"]


@pytest.fixture(scope="module")
def company(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    return simulate(n_accounts=300, seed=5, out=root / "sim", months=8).config


@pytest.mark.parametrize("fmt", ["segment", "amplitude", "mixpanel", "segment_warehouse"])
def test_a_simulated_company_exported_and_read_back_has_the_same_features(company, tmp_path, fmt):
    dates = ["2024-05-01", "2024-07-01"]
    original = build_features(company, as_of=dates)
    config = export_company(company.parent, fmt, tmp_path / fmt)
    assert "[data.export]" in config.read_text() and not (tmp_path / fmt / "events.parquet").exists()
    again = build_features(config, as_of=dates)
    assert list(again.columns) == list(original.columns) and len(original) > 300
    pd.testing.assert_frame_equal(original, again, check_dtype=False)


BAD = [("malformed_json", '{"type": "track", "userId": "u9"'),
       ("malformed_json", "not json at all"),
       ("not_an_object", "[1, 2, 3]"),
       ("unknown_shape", '{"type": "purchase", "userId": "u1", "timestamp": "2024-01-03T10:00:00Z"}'),
       ("missing_fields", '{"type": "track", "userId": "u1", "timestamp": "2024-01-03T10:00:00Z"}'),
       ("missing_fields", '{"type": "track", "event": "x", "timestamp": "2024-01-03T10:00:00Z"}'),
       ("unparseable_time", '{"type": "track", "userId": "u1", "event": "x", "timestamp": "yesterday"}')]


def _with_bad_lines(tmp_path: Path) -> Path:
    good = (FIXTURES / "segment" / "events.jsonl").read_text().splitlines()
    lines = good[:3] + [b for _, b in BAD[:4]] + good[3:] + [b for _, b in BAD[4:]]
    (tmp_path / "events.jsonl.gz").write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    return tmp_path / "events.jsonl.gz"


def test_rejects_are_counted_reported_and_kept_with_line_numbers(tmp_path):
    _with_bad_lines(tmp_path)
    tables, report = canonical(tmp_path, "segment", "events.jsonl.gz", max_reject_rate=0.5)
    counts = {f.kind: f.rows for f in report if f.kind.startswith("rejected_")}
    assert counts == {"rejected_malformed_json": 2, "rejected_not_an_object": 1,
                      "rejected_unknown_shape": 1, "rejected_missing_fields": 2,
                      "rejected_unparseable_time": 1}
    rejects = pd.read_csv(tmp_path / "rejects.csv")
    assert rejects.line.tolist() == [4, 5, 6, 7, 20, 21, 22]
    assert rejects.reason.tolist() == [r for r, _ in BAD]
    assert rejects.text.iloc[1] == "not json at all"
    assert len(tables["events"]) == 8                               # the good lines, all of them


def test_too_many_rejects_stop_loading_with_the_counts(tmp_path):
    _with_bad_lines(tmp_path)
    with pytest.raises(DataError, match=r"7 of 22 lines of the segment export events\.jsonl\.gz were "
                                        r"rejected \(31\.8%, above \[data\.export\] max_reject_rate = "
                                        r"0\.01\): 2 malformed json, 2 missing fields, .*events\.jsonl\.gz:4 "
                                        r"malformed_json.*rejects\.csv"):
        canonical(tmp_path, "segment", "events.jsonl.gz")


def test_mixpanel_and_amplitude_rejects(tmp_path):
    lines = (FIXTURES / "mixpanel" / "export.jsonl").read_text().splitlines()
    lines += ['{"event": "x", "properties": {"time": "soon", "distinct_id": "u1"}}',
              '{"event": "x", "properties": "flat"}', '{"properties": {"time": 1704186000}}']
    (tmp_path / "mp.jsonl").write_text("\n".join(lines))
    _, report = canonical(tmp_path, "mixpanel", "mp.jsonl", max_reject_rate=0.5)
    assert {f.kind: f.rows for f in report if f.kind.startswith("rejected_")} == {
        "rejected_unparseable_time": 1, "rejected_unknown_shape": 1, "rejected_missing_fields": 1}
    (tmp_path / "amp.json").write_text('{"event_type": "x", "event_time": "2024-13-45 99:00:00.000000", '
                                       '"user_id": "u1"}\n{"event_type": "x", "user_id": "u1"}\n')
    _, report = canonical(tmp_path, "amplitude", "amp.json", max_reject_rate=1)
    assert {f.kind: f.rows for f in report if f.kind.startswith("rejected_")} == {
        "rejected_unparseable_time": 1, "rejected_missing_fields": 1}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.one_of(st.binary(max_size=200),
                         st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                                      lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                                      max_leaves=10).map(lambda v: json.dumps(v).encode())),
       fmt=st.sampled_from(["segment", "amplitude", "mixpanel"]))
def test_parsers_never_crash_on_arbitrary_input(tmp_path_factory, payload, fmt):
    root = tmp_path_factory.mktemp("fuzz")
    (root / "x.jsonl").write_bytes(payload + b"\n" + payload)
    try:
        load_tables(DataConfig(root=root, export=ExportConfig(fmt, "x.jsonl", max_reject_rate=1)),
                    report=ValidationReport())
    except DataError:
        pass                                     # pqlml's own, with a message; never a raw crash


def test_export_config_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"\[data\.export\] .* provides events, users, accounts "
                                          r"and memberships \(from group calls\), so "
                                          r"\[data\.events\] cannot be set as well"):
        config_from_dict({"data": {"export": {"format": "segment", "source": "x"},
                                   "events": {"source": "e.parquet"}}}, tmp_path)
    with pytest.raises(ConfigError, match=r"'data\.export\.format' .* must be one of \"segment\", "
                                          r"\"amplitude\", \"mixpanel\""):
        config_from_dict({"data": {"export": {"format": "heap", "source": "x"}}}, tmp_path)
    with pytest.raises(ConfigError, match=r"\[data\.export\] .* needs 'source'"):
        config_from_dict({"data": {"export": {"format": "segment"}}}, tmp_path)
    with pytest.raises(DataError, match=r"No export file matches .*nothing-here"):
        load_tables(DataConfig(root=tmp_path, export=ExportConfig("segment", "nothing-here/*.gz")))
    shutil.copy(FIXTURES / "segment" / "events.jsonl", tmp_path / "e.jsonl")
    with pytest.raises(DataError, match=r"\[data\.export\] people is for Mixpanel profile exports"):
        load_tables(DataConfig(root=tmp_path, export=ExportConfig("segment", "e.jsonl", people="p.json")))
