"""Labels: the [as_of, as_of + horizon) window, converted-before removal, censoring."""

import datetime as dt

import ibis
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pqlml.errors import DataError, PqlmlError
from pqlml.labels import build_labels, default_data_end
from pqlml.validate import ValidationReport

AS_OF = pd.Timestamp("2024-02-01", tz="UTC")
H = 28
END = pd.Timestamp("2024-12-31", tz="UTC")
SEC = pd.Timedelta(seconds=1)


def _spine(rows):
    return ibis.memtable(pd.DataFrame({"entity_id": [r[0] for r in rows],
                                       "as_of": pd.to_datetime([r[1] for r in rows], utc=True)}))


def _outcomes(rows, key="account_id"):
    return ibis.memtable(pd.DataFrame({key: [r[0] for r in rows],
                                       "outcome": [r[1] for r in rows],
                                       "ts": pd.to_datetime([r[2] for r in rows], utc=True)}))


def _labels(t):
    return {(r["entity_id"], r["as_of"].date().isoformat()):
            (r["hand_raise"], r["conversion"], r["censored"]) for r in t.to_pyarrow().to_pylist()}


def _kinds(report):
    return {f.kind: f.rows for f in report}


def test_window_is_closed_at_as_of_and_open_at_horizon_end():
    spine = _spine([(e, AS_OF) for e in ("at", "after", "last", "end", "before")])
    outcomes = _outcomes([
        ("at", "hand_raise", AS_OF),                                  # at the cutoff: a label
        ("at", "conversion", AS_OF),
        ("after", "hand_raise", AS_OF + SEC),
        ("last", "conversion", AS_OF + pd.Timedelta(days=H) - SEC),   # the window's last second
        ("end", "hand_raise", AS_OF + pd.Timedelta(days=H)),          # the next window's
        ("end", "conversion", AS_OF + pd.Timedelta(days=H)),
        ("before", "hand_raise", AS_OF - pd.Timedelta(days=3)),       # history, not a label
    ])
    t = build_labels(spine, outcomes, horizon_days=H, data_end=END)
    assert t.columns == ("entity_id", "as_of", "hand_raise", "conversion", "censored")
    assert t.schema()["hand_raise"].is_integer() and t.schema()["censored"].is_boolean()
    assert _labels(t) == {("at", "2024-02-01"): (1, 1, False),
                          ("after", "2024-02-01"): (1, 0, False),
                          ("last", "2024-02-01"): (0, 1, False),
                          ("end", "2024-02-01"): (0, 0, False),
                          ("before", "2024-02-01"): (0, 0, False)}


def test_converted_before_as_of_is_removed_and_counted():
    spine = _spine([("a", "2024-01-01"), ("a", "2024-02-01"), ("a", "2024-03-01"),
                    ("b", "2024-02-01"), ("c", "2024-02-01")])
    outcomes = _outcomes([("a", "conversion", AS_OF),              # exactly at as_of
                          ("a", "conversion", "2024-02-20"),       # a second conversion
                          ("b", "conversion", AS_OF - SEC),
                          ("c", "hand_raise", AS_OF - SEC)])       # not a conversion
    report = ValidationReport()
    t = build_labels(spine, outcomes, horizon_days=H, data_end=END, report=report)
    # a's conversion at 02-01 is the label of 2024-02-01 (not of 01-01: [01-01, 01-29))
    assert _labels(t) == {("a", "2024-01-01"): (0, 0, False),
                          ("a", "2024-02-01"): (0, 1, False),
                          ("c", "2024-02-01"): (0, 0, False)}
    assert _kinds(report) == {"converted_before_as_of": 2}


def test_repeatable_conversion_keeps_prior_positives():
    spine = _spine([("a", "2024-01-01"), ("a", "2024-02-01"), ("a", "2024-03-01")])
    outcomes = _outcomes([("a", "conversion", "2024-01-10"), ("a", "conversion", "2024-02-20")])
    report = ValidationReport()
    t = build_labels(spine, outcomes, horizon_days=H, data_end=END, report=report,
                     exclude_prior_positives=False)
    assert _labels(t) == {("a", "2024-01-01"): (0, 1, False),   # a first purchase
                          ("a", "2024-02-01"): (0, 1, False),   # a repeat purchase
                          ("a", "2024-03-01"): (0, 0, False)}   # none in [03-01, 03-29)
    assert "converted_before_as_of" not in _kinds(report)
    excluded = build_labels(spine, outcomes, horizon_days=H, data_end=END)
    assert _labels(excluded) == {("a", "2024-01-01"): (0, 1, False)}


def test_censored_rows_have_null_labels_and_are_counted():
    end = AS_OF + pd.Timedelta(days=H)
    spine = _spine([("a", AS_OF), ("a", AS_OF + pd.Timedelta(days=1)), ("b", "2024-03-01")])
    outcomes = _outcomes([("a", "hand_raise", AS_OF + pd.Timedelta(days=2)),
                          ("b", "conversion", "2024-01-15")])
    report = ValidationReport()
    t = build_labels(spine, outcomes, horizon_days=H, data_end=end, report=report)
    assert _labels(t) == {("a", "2024-02-01"): (1, 0, False),    # horizon ends at data_end
                          ("a", "2024-02-02"): (None, None, True)}
    assert _kinds(report) == {"converted_before_as_of": 1, "censored_horizon": 1}
    naive = build_labels(spine, outcomes, horizon_days=H, data_end=end.tz_localize(None).date())
    assert _labels(naive) == _labels(t)


def test_user_entity_matches_outcomes_on_user_id():
    outcomes = ibis.memtable(pd.DataFrame({
        "account_id": ["a1", "a1", "a1"], "user_id": ["u1", None, "u2"],
        "outcome": ["hand_raise", "hand_raise", "conversion"],
        "ts": [AS_OF, AS_OF + SEC, AS_OF - SEC]}))
    spine = _spine([("u1", AS_OF), ("u2", AS_OF), ("a1", AS_OF)])
    report = ValidationReport()
    t = build_labels(spine, outcomes, horizon_days=H, data_end=END, entity="user", report=report)
    assert _labels(t) == {("u1", "2024-02-01"): (1, 0, False), ("a1", "2024-02-01"): (0, 0, False)}
    assert _kinds(report) == {"outcomes_without_user": 1, "converted_before_as_of": 1}
    with pytest.raises(DataError, match="'user_id'"):
        build_labels(spine, _outcomes([]), horizon_days=H, data_end=END, entity="user")


@pytest.mark.parametrize("kwargs, match", [
    ({"horizon_days": 0}, "The 'horizon_days' parameter of build_labels must be a positive int. "
                          "Got 0 instead."),
    ({"horizon_days": 7.0}, "Got 7.0 instead"),
    ({"horizon_days": True}, "Got True instead"),
    ({"entity": "org"}, "The 'entity' parameter"),
    ({"data_end": "soon"}, "The 'data_end' parameter"),
    ({"data_end": None}, "The 'data_end' parameter"),
])
def test_bad_parameters(kwargs, match):
    args = {"horizon_days": H, "data_end": END, **kwargs}
    with pytest.raises(PqlmlError, match=match):
        build_labels(_spine([("a", AS_OF)]), _outcomes([("a", "conversion", AS_OF)]), **args)


def test_default_data_end_is_the_last_event():
    ev = ibis.memtable({"ts": pd.to_datetime(["2024-03-01 10:00", "2024-01-01 00:00"], utc=True)})
    assert default_data_end(ev) == pd.Timestamp("2024-03-01 10:00", tz="UTC")


def _reference(spine, outcomes, horizon, end):
    """Plain-Python labels: {(entity, as_of): (hand_raise, conversion, censored)}."""
    out = {}
    for entity, as_of in set(spine):
        mine = [(k, ts) for e, k, ts in outcomes if e == entity]
        if any(k == "conversion" and ts < as_of for k, ts in mine):
            continue
        stop = as_of + dt.timedelta(days=horizon)
        if stop > end:
            out[(entity, as_of)] = (None, None, True)
            continue
        hit = {k for k, ts in mine if as_of <= ts < stop}
        out[(entity, as_of)] = (int("hand_raise" in hit), int("conversion" in hit), False)
    return out


_T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
# Small ranges and times on, or a second off, day boundaries: the window's edges
# [as_of, as_of + horizon) and the censoring edge (data_end) are hit often.
_days = st.integers(0, 12)
_times = st.tuples(st.integers(0, 20), st.sampled_from([-1, 0, 0, 1])).map(
    lambda d: _T0 + dt.timedelta(days=d[0], seconds=d[1]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spine=st.lists(st.tuples(st.sampled_from("ab"), _days), min_size=1, max_size=8,
                      unique=True),
       outcomes=st.lists(st.tuples(st.sampled_from("abc"),
                                   st.sampled_from(["hand_raise", "conversion"]), _times),
                         max_size=8),
       horizon=st.integers(1, 6), end=_times)
def test_labels_match_a_plain_python_reference(spine, outcomes, horizon, end):
    spine = [(e, _T0 + dt.timedelta(days=d)) for e, d in spine]
    spine_t = ibis.memtable(pd.DataFrame(spine, columns=["entity_id", "as_of"]))
    out_t = ibis.memtable(pd.DataFrame(outcomes, columns=["account_id", "outcome", "ts"])
                          .astype({"ts": "datetime64[us, UTC]", "account_id": "object",
                                   "outcome": "object"}))
    rows = build_labels(spine_t, out_t, horizon_days=horizon, data_end=end).to_pyarrow()
    got = {(r["entity_id"], r["as_of"]): (r["hand_raise"], r["conversion"], r["censored"])
           for r in rows.to_pylist()}
    assert len(got) == rows.num_rows   # one row per spine row
    assert got == _reference(spine, outcomes, horizon, end)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cutoffs=st.lists(st.integers(0, 30), min_size=1, max_size=6, unique=True),
       outcomes=st.lists(st.tuples(st.sampled_from(["hand_raise", "conversion"]), _times),
                         min_size=1, max_size=10),
       horizon=st.integers(1, 10))
def test_each_outcome_is_in_one_label_window_or_outside_all(cutoffs, outcomes, horizon):
    """The time partition: with cutoffs a horizon or more apart (a schedule), every outcome
    lands in exactly one snapshot's window, or in none when no window covers its time; one
    stamped exactly at a cutoff (a date-only log's midnight) is that cutoff's label."""
    days = sorted(cutoffs)
    days = [d for i, d in enumerate(days) if all(d - e >= horizon for e in days[:i])]
    as_of = [_T0 + dt.timedelta(days=d) for d in days]
    # each outcome is its own entity's, so one call labels them all independently
    ids = [f"e{i}" for i in range(len(outcomes))]
    spine = ibis.memtable(pd.DataFrame([(e, a) for e in ids for a in as_of],
                                       columns=["entity_id", "as_of"]))
    out = ibis.memtable(pd.DataFrame({"account_id": ids, "outcome": [k for k, _ in outcomes],
                                      "ts": [ts for _, ts in outcomes]})
                        .astype({"ts": "datetime64[us, UTC]"}))
    rows = build_labels(spine, out, horizon_days=horizon, data_end=_T0 + dt.timedelta(days=99),
                        exclude_prior_positives=False).to_pyarrow().to_pylist()
    for e, (kind, ts) in zip(ids, outcomes):
        hits = sorted(r["as_of"] for r in rows if r["entity_id"] == e and r[kind] == 1)
        covering = [a for a in as_of if a <= ts < a + dt.timedelta(days=horizon)]
        assert hits == covering and len(hits) <= 1


def test_midnight_outcomes_at_as_of_are_labels(tmp_path):
    """A date-only log: every purchase at midnight, cutoffs at midnights. Each purchase is in
    the label window of the month it falls in, none lost between the sides."""
    days = pd.date_range("2024-01-01", "2024-06-30", freq="D", tz="UTC")
    outcomes = pd.DataFrame({"account_id": [f"c{i % 7}" for i in range(len(days))],
                             "outcome": "conversion", "ts": days})
    cutoffs = pd.date_range("2024-01-01", "2024-06-01", freq="MS", tz="UTC")
    spine = pd.DataFrame([(f"c{i}", a) for i in range(7) for a in cutoffs],
                         columns=["entity_id", "as_of"])
    t = build_labels(ibis.memtable(spine), ibis.memtable(outcomes), horizon_days=28,
                     data_end=days[-1], exclude_prior_positives=False).to_pandas()
    on_cutoff = outcomes[outcomes.ts.isin(cutoffs)]
    assert len(on_cutoff) == 6
    for r in on_cutoff.itertuples():
        row = t[(t.entity_id == r.account_id) & (t.as_of == r.ts)]
        assert row.conversion.tolist() == [1]
    # every purchase in some [as_of, as_of + 28d) is counted: the positives are exactly the
    # (customer, cutoff) pairs with a purchase in the window
    covered = {(r.account_id, a) for r in outcomes.itertuples() for a in cutoffs
               if a <= r.ts < a + pd.Timedelta(days=28)}
    assert set(zip(t.entity_id[t.conversion == 1], t.as_of[t.conversion == 1])) == covered


def test_simulated_spine_minus_converted_equals_truth(tmp_path):
    from pqlml.config import load_config
    from pqlml.identity import account_events, user_accounts
    from pqlml.simulate import simulate
    from pqlml.snapshots import build_spine, check_as_of, entities_from_tables, schedule_dates
    from pqlml.sources import load_tables

    simulate(n_accounts=300, seed=1, out=tmp_path, months=6)
    cfg = load_config(tmp_path / "pqlml.toml")
    _, tables, report = load_tables(cfg.data)
    dates = schedule_dates(cfg.schedule)
    ev = account_events(tables["events"], user_accounts(tables["users"], tables["accounts"],
                                                        report=report), report=report)
    check_as_of(dates, ev.ts.min().execute(), default_data_end(ev))
    spine = build_spine(entities_from_tables(tables), as_of=dates)
    labels = build_labels(spine, tables["outcomes"], horizon_days=cfg.labels.horizon_days,
                          data_end=default_data_end(tables["events"]), report=report)
    got = labels.select("entity_id", "as_of").to_pandas()
    truth = pd.read_parquet(tmp_path / "truth" / "snapshots.parquet", columns=["account_id",
                                                                               "as_of"])
    assert len(got) == len(truth) > 500
    assert set(zip(got.entity_id, got.as_of)) == set(zip(truth.account_id, truth.as_of))
    assert not labels.censored.any().execute()   # the simulator's windows fit in the data
    kinds = _kinds(report)
    assert kinds["converted_before_as_of"] == spine.count().execute() - len(truth) > 0
