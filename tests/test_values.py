"""Numeric event properties: window sums and maxima equal an independent pandas computation."""

from __future__ import annotations

import gzip
import json
import zipfile

import numpy as np
import pandas as pd
import pytest

from pqlml.config import DataConfig, ExportConfig
from pqlml.errors import ConfigError, DataError, PqlmlError
from pqlml.features import Sum
from pqlml.project import build_features, open_project
from pqlml.simulate import simulate
from pqlml.sources import load_tables

CUTOFFS = ["2024-03-01", "2024-04-01", "2024-05-01"]


@pytest.fixture(scope="module")
def company(tmp_path_factory):
    """A simulated company whose events carry an order total (text, with a few values that
    are no number) and a seat count, under the source's own column names."""
    out = tmp_path_factory.mktemp("sim")
    simulate(n_accounts=80, seed=4, out=out, months=5)
    ev = pd.read_parquet(out / "events.parquet")
    rng = np.random.default_rng(1)
    total = np.round(rng.gamma(2.0, 40.0, len(ev)), 2).astype(str).astype(object)
    total[rng.random(len(ev)) < 0.3] = None                   # most events carry no total
    bad = rng.choice(len(ev), 7, replace=False)
    total[bad] = ["n/a", "12 USD", "", "inf", "1,200", "NaN", "abc"]
    ev["Order Total"] = total
    ev["seats"] = rng.integers(0, 5, len(ev))
    ev.to_parquet(out / "events.parquet")
    text = (out / "pqlml.toml").read_text().replace(
        '[data.events]\nsource = "events.parquet"\n',
        '[data.events]\nsource = "events.parquet"\n[data.events.columns]\n'
        'amount = "Order Total"\nseats = "seats"\n')
    text += ('\n[features.sums.task_seats_30d]\nproperty = "seats"\nevents = ["task_created"]\n'
             'window_days = 30\n\n[features.sums.peak_order_14d]\nproperty = "amount"\n'
             'window_days = 14\nhow = "max"\n')
    (out / "pqlml.toml").write_text(text)
    return out, ev


def _reference(ev, name, as_of, days, events=(), how="sum"):
    """Per account: the property over the events in the ``days`` whole days before as_of."""
    as_of = pd.Timestamp(as_of, tz="UTC")
    values = pd.to_numeric(ev[name], errors="coerce").replace([np.inf, -np.inf], np.nan)
    inside = (ev.ts < as_of) & (ev.ts >= as_of - pd.Timedelta(days=days)) & ev.account_id.notna()
    if events:
        inside &= ev.event.isin(events)
    grouped = values[inside].groupby(ev.account_id[inside])
    return grouped.sum() if how == "sum" else grouped.max()


def test_property_sums_and_maxima_equal_pandas(company):
    out, ev = company
    ev = ev.rename(columns={"Order Total": "amount"})
    X = build_features(out / "pqlml.toml", as_of=CUTOFFS)
    expected_names = {f"{how}_{p}_{w}d" for how in ("sum", "max") for p in ("amount", "seats")
                      for w in (7, 30, 90)} | {"task_seats_30d", "peak_order_14d"}
    assert expected_names <= set(X.columns)
    checked = 0
    for as_of in CUTOFFS:
        rows = X[X.as_of == pd.Timestamp(as_of, tz="UTC")].set_index("account_id")
        for name, prop, days, events, how in (
                ("sum_amount_30d", "amount", 30, (), "sum"), ("max_amount_7d", "amount", 7, (), "max"),
                ("sum_seats_90d", "seats", 90, (), "sum"), ("max_seats_30d", "seats", 30, (), "max"),
                ("task_seats_30d", "seats", 30, ("task_created",), "sum"),
                ("peak_order_14d", "amount", 14, (), "max")):
            want = _reference(ev, prop, as_of, days, events, how).reindex(rows.index)
            got = rows[name]
            if how == "sum":              # an account without values in the window sums to 0
                want = want.fillna(0.0)
            np.testing.assert_allclose(got.to_numpy(float), want.to_numpy(float), rtol=1e-12,
                                       atol=1e-9, equal_nan=True, err_msg=f"{name} at {as_of}")
            checked += int(got.fillna(0).gt(0).sum())
    assert checked > 500


def test_values_that_are_no_number_are_a_counted_finding(company):
    out, _ = company
    findings = {f.kind: f for f in open_project(out / "pqlml.toml").report}
    bad = findings["non_numeric_property"]
    # "n/a", "12 USD", "", "inf", "1,200", "NaN", "abc": each a value that is no finite number
    assert bad.rows == 7 and bad.column == "Order Total"
    assert "kept with a null amount" in bad.action


def test_a_sum_of_a_property_nobody_mapped_is_a_clear_error(company, tmp_path):
    out, _ = company
    text = (out / "pqlml.toml").read_text().replace('root = "."', f'root = "{out}"')
    (tmp_path / "pqlml.toml").write_text(text.replace('property = "seats"', 'property = "units"'))
    with pytest.raises(ConfigError, match=r"'features\.sums\.task_seats_30d\.property'.*'units'.*"
                                          r"numeric properties: amount, seats"):
        open_project(tmp_path / "pqlml.toml")
    with pytest.raises(PqlmlError, match=r"The 'how' parameter of Sum must be 'sum' or 'max'"):
        Sum("x_30d", "amount", 30, how="mean")


# --- the vendors' event properties ------------------------------------------------------

AMOUNTS = [12.5, "n/a", "7", None]       # a number, text that is none, a number as text, none


def _segment(root):
    lines = [{"type": "identify", "userId": "u1", "timestamp": "2024-01-02T09:00:00Z",
              "traits": {"email": "ana@acme.io"}}]
    lines += [{"type": "track", "userId": "u1", "event": "order", "messageId": f"m{i}",
               "timestamp": f"2024-01-0{i + 2}T10:00:00Z",
               "properties": {} if a is None else {"Order Total": a}}
              for i, a in enumerate(AMOUNTS)]
    (root / "events.jsonl").write_text("\n".join(map(json.dumps, lines)) + "\n")
    return "events.jsonl"


def _amplitude(root):
    rows = [{"event_type": "order", "user_id": "u1", "$insert_id": f"m{i}",
             "event_time": f"2024-01-0{i + 2} 10:00:00.000000",
             "event_properties": {} if a is None else {"Order Total": a},
             "user_properties": {"email": "ana@acme.io"}} for i, a in enumerate(AMOUNTS)]
    with zipfile.ZipFile(root / "export.zip", "w") as z:
        z.writestr("1/1_2024-01-02_0#0.json.gz",
                   gzip.compress("\n".join(map(json.dumps, rows)).encode()))
    return "export.zip"


def _mixpanel(root):
    rows = [{"event": "order", "properties": {
        "time": 1704189600 + 86400 * i, "distinct_id": "u1", "$insert_id": f"m{i}",
        **({} if a is None else {"Order Total": a})}} for i, a in enumerate(AMOUNTS)]
    (root / "export.jsonl").write_text("\n".join(map(json.dumps, rows)) + "\n")
    return "export.jsonl"


def _warehouse(root):
    folder = root / "segment_prod"
    folder.mkdir()
    pd.DataFrame({"id": [f"m{i}" for i in range(4)], "user_id": "u1", "event": "order",
                  "timestamp": [f"2024-01-0{i + 2}T10:00:00Z" for i in range(4)],
                  "Order Total": ["12.5", "n/a", "7", None]}).to_csv(folder / "tracks.csv",
                                                                    index=False)
    pd.DataFrame({"id": ["i1"], "user_id": ["u1"], "timestamp": ["2024-01-02T09:00:00Z"],
                  "email": ["ana@acme.io"]}).to_csv(folder / "identifies.csv", index=False)
    pd.DataFrame({"id": ["g1"], "user_id": ["u1"], "group_id": ["acme"],
                  "timestamp": ["2024-01-02T09:00:00Z"], "domain": ["acme.io"]}
                 ).to_csv(folder / "groups.csv", index=False)
    return "segment_prod"


@pytest.mark.parametrize("fmt, write", [("segment", _segment), ("amplitude", _amplitude),
                                        ("mixpanel", _mixpanel), ("segment_warehouse", _warehouse)])
def test_each_vendor_reads_a_numeric_event_property(tmp_path, fmt, write):
    export = ExportConfig(fmt, write(tmp_path), properties={"amount": "Order Total"})
    _, tables, report = load_tables(DataConfig(root=tmp_path, export=export))
    ev = tables["events"].order_by("ts").execute()
    assert ev.amount.tolist()[:1] + ev.amount.tolist()[2:3] == [12.5, 7.0]
    assert ev.amount.isna().tolist() == [False, True, False, True]
    bad = {f.kind: f.rows for f in report}
    assert bad["non_numeric_property"] == 1           # "n/a"; an absent value is no finding


def test_a_warehouse_property_column_that_is_missing_names_the_fix(tmp_path):
    export = ExportConfig("segment_warehouse", _warehouse(tmp_path), properties={"seats": "seats"})
    with pytest.raises(DataError, match=r"tracks table has no column\(s\) 'seats'.*join them into "
                                        r"tracks"):
        load_tables(DataConfig(root=tmp_path, export=export))
