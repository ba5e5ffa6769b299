"""Every time form the vendors document, with its offset, read as the UTC instant it names.

One case per (vendor, field, form): a one-line export in that form goes through
``load_tables`` and the canonical column must equal the instant Python's ``datetime``
computes from the wall-clock time and its offset (never DuckDB's reading of the string).
Where each form is documented: docs/export-formats.md, section 6.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pqlml.config import DataConfig, ExportConfig
from pqlml.sources import load_tables

UTC = timezone.utc


def off(hours: int, minutes: int = 0) -> timezone:
    """A fixed UTC offset (``off(-9, -30)`` is -09:30)."""
    return timezone(timedelta(hours=hours, minutes=minutes))


def utc(*wall, tz: timezone = UTC) -> datetime:
    """The UTC instant of a wall-clock time (y, m, d, H, M, S, us) at ``tz``."""
    return datetime(*wall, tzinfo=tz).astimezone(UTC)


def _load(root, fmt, source, **extra):
    _, tables, report = load_tables(DataConfig(root=root, export=ExportConfig(
        fmt, source, max_reject_rate=1, **extra)))
    rejects = {f.kind: f.rows for f in report if f.kind.startswith("rejected_")}
    return {name: t.execute() for name, t in tables.items()}, rejects


def _lines(path, *rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path.name


def _one(frame: pd.DataFrame, column: str, key: str, value: str):
    got = frame.loc[frame[key] == value, column]
    assert len(got) == 1, frame
    return got.iloc[0]


# --- Segment Spec messages -------------------------------------------------------------

# ``timestamp`` of a track call -> events.ts
SEGMENT_TIMESTAMP = [
    ("2024-03-31T23:30:00.123Z", utc(2024, 3, 31, 23, 30, 0, 123000)),       # Spec examples, S3 archive
    ("2024-03-31T23:30:00Z", utc(2024, 3, 31, 23, 30)),
    ("2024-03-31T23:30:00.123456+00:00", utc(2024, 3, 31, 23, 30, 0, 123456)),  # analytics-python
    ("2024-03-31T23:30:00.123456+02:00", utc(2024, 3, 31, 23, 30, 0, 123456, tz=off(2))),
    ("2024-03-31T23:30:00-02:00", utc(2024, 3, 31, 23, 30, tz=off(-2))),
    ("2024-03-31T23:30:00.5-09:30", utc(2024, 3, 31, 23, 30, 0, 500000, tz=off(-9, -30))),
    ("2024-03-31T23:30:00+0530", utc(2024, 3, 31, 23, 30, tz=off(5, 30))),   # ISO 8601 basic offset
    ("2024-03-31T23:30:00+05", utc(2024, 3, 31, 23, 30, tz=off(5))),         # ISO 8601 hour offset
    ("2024-03-31 23:30:00.123Z", utc(2024, 3, 31, 23, 30, 0, 123000)),       # RFC 3339 space
    ("2024-03-31t23:30:00z", utc(2024, 3, 31, 23, 30)),                      # RFC 3339 lower case
    ("2024-03-31T23:30:00.1234567+02:00",                                    # .NET "o": 7 digits,
     utc(2024, 3, 31, 23, 30, 0, 123456, tz=off(2))),                        # kept to the microsecond
    ("2024-03-31T23:30:00", utc(2024, 3, 31, 23, 30)),                       # no zone: UTC
]


@pytest.mark.parametrize("text,want", SEGMENT_TIMESTAMP, ids=[t for t, _ in SEGMENT_TIMESTAMP])
def test_segment_timestamp(tmp_path, text, want):
    source = _lines(tmp_path / "s.jsonl", {"type": "track", "userId": "u1", "event": "x",
                                           "messageId": "m1", "timestamp": text})
    tables, rejects = _load(tmp_path, "segment", source)
    assert rejects == {}
    assert _one(tables["events"], "ts", "event", "x") == pd.Timestamp(want)


# ``traits.createdAt`` / ``created_at`` of identify (users.signup_at) and group calls
# (accounts.created_at); analytics-python sends a ``date`` trait as ``YYYY-MM-DD``
SEGMENT_CREATED = [
    ("createdAt", "2023-06-01T08:00:00.000Z", utc(2023, 6, 1, 8)),
    ("createdAt", "2023-06-01T08:00:00-05:00", utc(2023, 6, 1, 8, tz=off(-5))),
    ("createdAt", "2023-06-01T08:00:00.250+0100", utc(2023, 6, 1, 8, 0, 0, 250000, tz=off(1))),
    ("createdAt", "2023-06-01", utc(2023, 6, 1)),
    ("created_at", "2023-06-01 08:00:00", utc(2023, 6, 1, 8)),
    ("created_at", "2023-06-01T08:00:00+09:00", utc(2023, 6, 1, 8, tz=off(9))),
]


@pytest.mark.parametrize("call", ["identify", "group"])
@pytest.mark.parametrize("key,text,want", SEGMENT_CREATED, ids=[f"{k}={t}" for k, t, _ in SEGMENT_CREATED])
def test_segment_created_at_trait(tmp_path, call, key, text, want):
    message = {"type": call, "userId": "u1", "messageId": "m1", "timestamp": "2024-01-02T09:00:00Z",
               "traits": {key: text}}
    if call == "group":
        message["groupId"] = "acme"
    source = _lines(tmp_path / "s.jsonl", message)
    tables, rejects = _load(tmp_path, "segment", source)
    assert rejects == {}
    table, column, k, v = (("users", "signup_at", "user_id", "u1") if call == "identify"
                           else ("accounts", "created_at", "account_id", "acme"))
    assert _one(tables[table], column, k, v) == pd.Timestamp(want)


# --- Amplitude Export API --------------------------------------------------------------

def _amplitude(**fields) -> dict:
    return {"event_type": "x", "user_id": "u1", "$insert_id": "i1",
            "event_time": "2024-01-02 09:00:00.000000"} | fields


# ``event_time`` -> events.ts. Documented: ``YYYY-MM-DD HH:MM:SS.ffffff``, UTC, no zone;
# users hand in ISO forms (re-exports, warehouse unloads, scripts) with ``T``, ``Z``, offsets.
AMPLITUDE_EVENT_TIME = [
    ("2024-03-31 23:30:00.123456", utc(2024, 3, 31, 23, 30, 0, 123456)),     # the documented form
    ("2024-03-31 23:30:00.123", utc(2024, 3, 31, 23, 30, 0, 123000)),
    ("2024-03-31 23:30:00", utc(2024, 3, 31, 23, 30)),
    ("2024-03-31T23:30:00", utc(2024, 3, 31, 23, 30)),
    ("2024-03-31T23:30:00.123456Z", utc(2024, 3, 31, 23, 30, 0, 123456)),
    ("2024-03-31T23:30:00-02:00", utc(2024, 3, 31, 23, 30, tz=off(-2))),    # issue 20
    ("2024-03-31T23:30:00.123+05:30", utc(2024, 3, 31, 23, 30, 0, 123000, tz=off(5, 30))),
    ("2024-03-31 23:30:00.123456+0200", utc(2024, 3, 31, 23, 30, 0, 123456, tz=off(2))),
    ("2024-03-31 23:30:00-08", utc(2024, 3, 31, 23, 30, tz=off(-8))),
]


@pytest.mark.parametrize("text,want", AMPLITUDE_EVENT_TIME, ids=[t for t, _ in AMPLITUDE_EVENT_TIME])
def test_amplitude_event_time(tmp_path, text, want):
    source = _lines(tmp_path / "a.json", _amplitude(event_time=text))
    tables, rejects = _load(tmp_path, "amplitude", source)
    assert rejects == {}
    assert _one(tables["events"], "ts", "event", "x") == pd.Timestamp(want)


def test_amplitude_offset_of_issue_20_is_the_next_day_in_utc(tmp_path):
    """The user's report: 23:30 at -02:00 on 31 March is 01:30 UTC on 1 April."""
    want = datetime(2024, 3, 31, 23, 30, tzinfo=ZoneInfo("America/Noronha")).astimezone(UTC)
    assert want == datetime(2024, 4, 1, 1, 30, tzinfo=UTC)            # Noronha is -02:00
    source = _lines(tmp_path / "a.json", _amplitude(event_time="2024-03-31T23:30:00-02:00"))
    tables, rejects = _load(tmp_path, "amplitude", source)
    assert rejects == {}
    assert tables["events"].ts.tolist() == [pd.Timestamp(want)]


# ``user_creation_time`` -> users.signup_at (no sign-up event, so the created time is it)
AMPLITUDE_CREATED = [
    ("2023-06-01 08:00:00.000000", utc(2023, 6, 1, 8)),
    ("2023-06-01T08:00:00Z", utc(2023, 6, 1, 8)),
    ("2023-06-01T08:00:00-05:00", utc(2023, 6, 1, 8, tz=off(-5))),
    ("2023-06-01 23:00:00.5+0930", utc(2023, 6, 1, 23, 0, 0, 500000, tz=off(9, 30))),
]


@pytest.mark.parametrize("text,want", AMPLITUDE_CREATED, ids=[t for t, _ in AMPLITUDE_CREATED])
def test_amplitude_user_creation_time(tmp_path, text, want):
    source = _lines(tmp_path / "a.json", _amplitude(user_creation_time=text))
    tables, rejects = _load(tmp_path, "amplitude", source)
    assert rejects == {}
    assert _one(tables["users"], "signup_at", "user_id", "u1") == pd.Timestamp(want)


@pytest.mark.parametrize("text,want", AMPLITUDE_CREATED, ids=[t for t, _ in AMPLITUDE_CREATED])
def test_amplitude_group_created_at(tmp_path, text, want):
    row = _amplitude(groups={"company_id": ["acme"]},
                     group_properties={"company_id": {"acme": {"created_at": text}}})
    tables, rejects = _load(tmp_path, "amplitude", _lines(tmp_path / "a.json", row))
    assert rejects == {}
    assert _one(tables["accounts"], "created_at", "account_id", "acme") == pd.Timestamp(want)


# --- Mixpanel --------------------------------------------------------------------------

# ``properties.time`` -> events.ts: epoch seconds (documented), milliseconds (above 1e11)
MIXPANEL_TIME = [
    (1711927800, datetime.fromtimestamp(1711927800, UTC)),
    (1711927800.25, datetime.fromtimestamp(1711927800, UTC) + timedelta(milliseconds=250)),
    (1711927800123, datetime.fromtimestamp(1711927800, UTC) + timedelta(milliseconds=123)),
    ("1711927800", datetime.fromtimestamp(1711927800, UTC)),
]


@pytest.mark.parametrize("value,want", MIXPANEL_TIME, ids=[repr(v) for v, _ in MIXPANEL_TIME])
def test_mixpanel_time(tmp_path, value, want):
    source = _lines(tmp_path / "m.jsonl", {"event": "x", "properties": {
        "time": value, "distinct_id": "u1", "$insert_id": "i1"}})
    tables, rejects = _load(tmp_path, "mixpanel", source)
    assert rejects == {}
    assert _one(tables["events"], "ts", "event", "x") == pd.Timestamp(want)


# Engage ``$created`` -> users.signup_at / accounts.created_at. Documented: a Date is
# ``YYYY-MM-DDTHH:MM:SS`` in UTC, or a day ``YYYY-MM-DD``; offsets are honoured if sent.
MIXPANEL_CREATED = [
    ("2023-06-01T08:00:00", utc(2023, 6, 1, 8)),
    ("2023-06-01", utc(2023, 6, 1)),
    ("2023-06-01T08:00:00.123456", utc(2023, 6, 1, 8, 0, 0, 123456)),
    ("2023-06-01 08:00:00", utc(2023, 6, 1, 8)),
    ("2023-06-01T08:00:00Z", utc(2023, 6, 1, 8)),
    ("2023-06-01T08:00:00-05:00", utc(2023, 6, 1, 8, tz=off(-5))),
]


@pytest.mark.parametrize("kind", ["people", "groups"])
@pytest.mark.parametrize("text,want", MIXPANEL_CREATED, ids=[t for t, _ in MIXPANEL_CREATED])
def test_mixpanel_profile_created(tmp_path, kind, text, want):
    event = {"event": "x", "properties": {"time": 1704186000, "distinct_id": "u1", "company_id": "acme"}}
    source = _lines(tmp_path / "m.jsonl", event)
    profile = {"$distinct_id": "u1" if kind == "people" else "acme", "$properties": {"$created": text}}
    (tmp_path / "p.json").write_text(json.dumps({"page": 0, "page_size": 1000, "results": [profile]}))
    tables, rejects = _load(tmp_path, "mixpanel", source, **{kind: "p.json"})
    assert rejects == {}
    table, column, k, v = (("users", "signup_at", "user_id", "u1") if kind == "people"
                           else ("accounts", "created_at", "account_id", "acme"))
    assert _one(tables[table], column, k, v) == pd.Timestamp(want)


# --- Segment warehouse layout ----------------------------------------------------------

def _warehouse(folder, *, timestamp: pa.Array, created_at: pa.Array | None = None):
    """tracks / identifies / groups as Parquet, one row each, with the given columns."""
    folder.mkdir()
    created = created_at if created_at is not None else pa.array([None], pa.string())
    common = {"id": ["m1"], "user_id": ["u1"], "anonymous_id": pa.array([None], pa.string())}
    pq.write_table(pa.table(common | {"timestamp": timestamp, "event": ["x"], "event_text": ["x"]}),
                   folder / "tracks.parquet")
    pq.write_table(pa.table(common | {"timestamp": timestamp, "email": ["a@acme.io"],
                                      "created_at": created}), folder / "identifies.parquet")
    pq.write_table(pa.table(common | {"timestamp": timestamp, "group_id": ["acme"],
                                      "created_at": created}), folder / "groups.parquet")
    return folder.name


# ``timestamp`` as text (a CSV or string unload) or typed -> events.ts
WAREHOUSE_TEXT = [
    ("2024-03-31T23:30:00.123Z", utc(2024, 3, 31, 23, 30, 0, 123000)),
    ("2024-03-31 23:30:00.2+00", utc(2024, 3, 31, 23, 30, 0, 200000)),    # Postgres / Redshift
    ("2024-03-31 23:30:00.2 UTC", utc(2024, 3, 31, 23, 30, 0, 200000)),   # BigQuery
    ("2024-03-31 23:30:00.123456", utc(2024, 3, 31, 23, 30, 0, 123456)),  # timestamp w/o zone
    ("2024-03-31T23:30:00-02:00", utc(2024, 3, 31, 23, 30, tz=off(-2))),
    ("2024-03-31 23:30:00.000 -0700", utc(2024, 3, 31, 23, 30, tz=off(-7))),  # Snowflake TZ
]


@pytest.mark.parametrize("text,want", WAREHOUSE_TEXT, ids=[t for t, _ in WAREHOUSE_TEXT])
def test_warehouse_timestamp_text(tmp_path, text, want):
    source = _warehouse(tmp_path / "wh", timestamp=pa.array([text]))
    tables, rejects = _load(tmp_path, "segment_warehouse", source)
    assert rejects == {}
    assert _one(tables["events"], "ts", "event", "x") == pd.Timestamp(want)


WAREHOUSE_TYPED = [
    ("timestamptz", pa.array([pd.Timestamp("2024-03-31 23:30", tz="-02:00")],
                             pa.timestamp("us", tz="-02:00"))),
    ("timestamp_utc", pa.array([pd.Timestamp("2024-04-01 01:30", tz="UTC")], pa.timestamp("us", tz="UTC"))),
    ("timestamp_naive", pa.array([pd.Timestamp("2024-04-01 01:30")], pa.timestamp("us"))),
]


@pytest.mark.parametrize("name,column", WAREHOUSE_TYPED, ids=[n for n, _ in WAREHOUSE_TYPED])
def test_warehouse_timestamp_typed(tmp_path, name, column):
    tables, rejects = _load(tmp_path, "segment_warehouse", _warehouse(tmp_path / "wh", timestamp=column))
    assert rejects == {}
    assert _one(tables["events"], "ts", "event", "x") == pd.Timestamp(datetime(2024, 4, 1, 1, 30, tzinfo=UTC))


@pytest.mark.parametrize("text,want", [("2023-06-01T08:00:00-05:00", utc(2023, 6, 1, 8, tz=off(-5))),
                                       ("2023-06-01 08:00:00+00", utc(2023, 6, 1, 8)),
                                       ("2023-06-01", utc(2023, 6, 1))])
def test_warehouse_created_at(tmp_path, text, want):
    source = _warehouse(tmp_path / "wh", timestamp=pa.array(["2024-01-02T09:00:00Z"]),
                        created_at=pa.array([text]))
    tables, rejects = _load(tmp_path, "segment_warehouse", source)
    assert rejects == {}
    assert _one(tables["users"], "signup_at", "user_id", "u1") == pd.Timestamp(want)
    assert _one(tables["accounts"], "created_at", "account_id", "acme") == pd.Timestamp(want)


def test_warehouse_csv_with_offsets(tmp_path):
    """A CSV of offset strings: whatever type DuckDB's sniffer gives the column, the instant holds."""
    folder = tmp_path / "wh"
    folder.mkdir()
    head = "id,user_id,anonymous_id,timestamp,"
    (folder / "tracks.csv").write_text(head + "event,event_text\nm1,u1,,2024-03-31T23:30:00-02:00,x,x\n"
                                       "m2,u1,,2024-03-31T23:30:00+05:30,y,y\n")
    (folder / "identifies.csv").write_text(head + "email,created_at\nm3,u1,,2024-01-02T09:00:00Z,"
                                           "a@acme.io,2023-06-01T08:00:00-05:00\n")
    (folder / "groups.csv").write_text(head + "group_id\nm4,u1,,2024-01-02T09:00:00Z,acme\n")
    tables, rejects = _load(tmp_path, "segment_warehouse", "wh")
    assert rejects == {}
    events = tables["events"].set_index("event").ts
    assert events["x"] == pd.Timestamp(utc(2024, 3, 31, 23, 30, tz=off(-2)))
    assert events["y"] == pd.Timestamp(utc(2024, 3, 31, 23, 30, tz=off(5, 30)))
    assert _one(tables["users"], "signup_at", "user_id", "u1") == pd.Timestamp(utc(2023, 6, 1, 8, tz=off(-5)))


# --- what is not a time is a counted reject, never a silent null --------------------------

NOT_TIMES = ["yesterday", "epoch", "infinity", "24-03-31", "2024-3-1", "20240331T233000Z",
             "2024-03-31T23:30:00-02:00[America/Noronha]", "2024-13-45 99:00:00", "1711927800",
             "2024-03-31 23:30:00 PST"]


@pytest.mark.parametrize("text", NOT_TIMES)
def test_segment_and_amplitude_times_that_are_not_times_are_rejected(tmp_path, text):
    good = {"type": "track", "userId": "u1", "event": "ok", "timestamp": "2024-01-02T09:00:00Z"}
    _lines(tmp_path / "s.jsonl", good, good | {"event": "bad", "timestamp": text},
           {"type": "identify", "userId": "u2", "timestamp": "2024-01-02T09:00:00Z",
            "traits": {"createdAt": text}})
    tables, rejects = _load(tmp_path, "segment", "s.jsonl")
    assert rejects == {"rejected_unparseable_time": 2}
    assert tables["events"].event.tolist() == ["ok"]
    _lines(tmp_path / "a.json", _amplitude(event_time=text), _amplitude(user_creation_time=text),
           _amplitude(groups={"company_id": ["acme"]},
                      group_properties={"company_id": {"acme": {"created_at": text}}}),
           _amplitude(event_type="ok"))
    tables, rejects = _load(tmp_path, "amplitude", "a.json")
    assert rejects == {"rejected_unparseable_time": 3}
    assert tables["events"].event.tolist() == ["ok"]


@pytest.mark.parametrize("value", [0, -5, 1e300, "nan", "inf", 1e15, "soon"])
def test_mixpanel_times_out_of_range_are_rejected(tmp_path, value):
    ok = {"event": "ok", "properties": {"time": 1704186000, "distinct_id": "u1"}}
    _lines(tmp_path / "m.jsonl", ok, {"event": "bad", "properties": {"time": value, "distinct_id": "u1"}})
    (tmp_path / "p.json").write_text(json.dumps({"$distinct_id": "u1", "$properties": {"$created": "soon"}}))
    tables, rejects = _load(tmp_path, "mixpanel", "m.jsonl", people="p.json")
    assert rejects == {"rejected_unparseable_time": 2}
    assert tables["events"].event.tolist() == ["ok"]


def test_warehouse_times_that_are_not_times_are_rejected(tmp_path):
    source = _warehouse(tmp_path / "wh", timestamp=pa.array(["epoch"]), created_at=pa.array(["soon"]))
    _, rejects = _load(tmp_path, "segment_warehouse", source)
    assert rejects == {"rejected_unparseable_time": 3}
