"""Feature catalog: exact against an independent pandas computation, and leak-free."""

from __future__ import annotations

import datetime as dt

import ibis
import sqlglot
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features_reference import reference_features
from pqlml.config import BUYER_TITLES, CountFeature, FeaturesConfig
from pqlml.errors import PqlmlError
from pqlml.features import Count, Derived, feature_table
from simulated import simulated_frames

UTC = dt.timezone.utc


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    f = simulated_frames(tmp_path_factory.mktemp("sim"), n_accounts=120, seed=4, months=6,
                         cutoffs=["2024-04-01", "2024-05-15", "2024-06-01"])
    return f["events"], f["users"], f["accounts"], f["spine"]


def _compute(events, spine, users=None, accounts=None, **kw):
    t = feature_table(ibis.memtable(spine.rename(columns={"account_id": "entity_id"})),
                      ibis.memtable(events), users=None if users is None else ibis.memtable(users),
                      accounts=None if accounts is None else ibis.memtable(accounts), **kw)
    return t.to_pandas().sort_values(["account_id", "as_of"]).reset_index(drop=True)


def _assert_equal_to_reference(got, ref, key="account_id"):
    ref = ref.sort_values([key, "as_of"]).reset_index(drop=True)
    assert len(got) == len(ref) and not got.duplicated([key, "as_of"]).any()
    missing = set(ref.columns) - set(got.columns)
    assert not missing, missing
    for column in ref.columns.drop([key, "as_of"]):
        np.testing.assert_allclose(got[column].astype(float), ref[column].astype(float),
                                   rtol=1e-9, atol=1e-9, err_msg=column, equal_nan=True)


def test_every_family_equals_the_pandas_reference(small):
    events, users, accounts, spine = small
    got = _compute(events, spine, users, accounts)
    ref = reference_features(events, spine, users, accounts, buyer_titles=BUYER_TITLES)
    assert {"events_invite_sent_prev_30d", "events_invite_sent_velocity_30d"} <= set(ref.columns)
    _assert_equal_to_reference(got, ref)


def test_a_60_day_window_and_per_event_active_users_equal_the_reference(small):
    # Every windowed family (volumes, per-event volumes, active users, property sums and
    # maxima) honours a window of 60 days; per-event active users for the events listed.
    events, users, accounts, spine = small
    rng = np.random.default_rng(5)
    events = events.assign(amount=np.where(rng.random(len(events)) < 0.4,
                                           np.round(rng.gamma(2.0, 30.0, len(events)), 2), np.nan))
    windows, listed = (7, 30, 60, 90), ("invite_sent", "task_created")
    got = _compute(events, spine, users, accounts, properties=("amount",),
                   settings=FeaturesConfig(windows=windows, active_users_events=listed))
    ref = reference_features(events, spine, users, accounts, windows=windows,
                             buyer_titles=BUYER_TITLES, active_users_events=listed,
                             properties=("amount",))
    new = ["events_60d", "events_invite_sent_60d", "active_users_60d", "sum_amount_60d",
           "max_amount_60d", "active_users_invite_sent_30d", "active_users_task_created_30d",
           "events_invite_sent_prev_30d"]
    assert (ref[new].fillna(0) > 0).any().all(), ref[new].sum()
    assert (ref.active_users_invite_sent_30d < ref.active_users_30d).any()
    _assert_equal_to_reference(got, ref)


def test_per_user_features_have_the_per_event_growth(small):
    events, _, _, spine = small
    users = sorted(events.user_id.dropna().unique())[:60]
    cutoffs = sorted(spine.as_of.unique())
    uspine = pd.DataFrame([(u, c) for u in users for c in cutoffs], columns=["entity_id", "as_of"])
    got = feature_table(ibis.memtable(uspine), ibis.memtable(events), entity="user").to_pandas()
    got = got.sort_values(["user_id", "as_of"]).reset_index(drop=True)
    # a user's events are the reference's "account" of one
    ref = reference_features(events.assign(account_id=events.user_id),
                             uspine.rename(columns={"entity_id": "account_id"}))
    ref = ref.rename(columns={"account_id": "user_id"})
    cols = [c for c in ref.columns if c.startswith("events_") and c != "events_per_active_user_30d"]
    assert "events_task_created_velocity_30d" in cols and (ref.events_task_created_prev_30d > 0).any()
    _assert_equal_to_reference(got, ref[["user_id", "as_of", *cols]], key="user_id")
    assert "active_users_task_created_30d" not in got


def test_event_growth_can_be_turned_off(small):
    events, _, _, spine = small
    got = _compute(events, spine, settings=FeaturesConfig(event_growth=False))
    totals = {"events_prev_30d", "events_velocity_30d", "active_users_prev_30d",
              "active_users_velocity_30d"}
    assert not [c for c in got.columns if c.endswith(("_prev_30d", "_velocity_30d"))
                and c not in totals]
    assert totals <= set(got.columns) and "events_invite_sent_30d" in got


def test_event_names_that_would_share_a_feature_name_are_errors():
    stamps = pd.to_datetime(["2024-02-01", "2024-02-02"], utc=True)
    spine = pd.DataFrame({"account_id": ["a1"], "as_of": [pd.Timestamp("2024-03-01", tz="UTC")]})

    def log(*names):
        return pd.DataFrame({"ts": stamps[:len(names)], "user_id": "u1", "account_id": "a1",
                             "event": list(names)})
    with pytest.raises(PqlmlError, match="event_growth = false"):
        _compute(log("invite", "invite_prev"), spine)
    # without the growth family, invite_prev is an event like any other
    row = _compute(log("invite", "invite_prev"), spine,
                   settings=FeaturesConfig(event_growth=False)).iloc[0]
    assert (row.events_invite_30d, row.events_invite_prev_30d) == (1, 1)
    with pytest.raises(PqlmlError, match="'prev' would give feature columns the names"):
        _compute(log("prev"), spine)
    first_seen = {"invite": stamps[0]}
    with pytest.raises(PqlmlError, match="'active_users_events' .* 'invit', which never occurs"):
        feature_table(ibis.memtable(spine.rename(columns={"account_id": "entity_id"})),
                      ibis.memtable(log("invite")), first_seen=first_seen,
                      settings=FeaturesConfig(active_users_events=("invit",)))


def test_active_users_over_many_cutoffs_equal_the_reference(small):
    # 16 weekly cutoffs cut the calendar at 70 window edges: a user's active segments take
    # two 63-bit words, so both words and the edges between them are exercised.
    from pqlml.features._activity import PREV, _WORD
    from pqlml.features._segments import Segments

    events, _, _, _ = small
    cutoffs = pd.date_range("2024-03-04", periods=16, freq="7D", tz="UTC")
    edges = Segments.build([c.value // 86_400_000_000_000 for c in cutoffs], (0, 7, 30, 90, *PREV))
    assert len(edges.edges) > _WORD
    accounts = sorted(events.account_id.dropna().unique())[:25]
    spine = pd.DataFrame([(a, c) for a in accounts for c in cutoffs], columns=["account_id", "as_of"])
    got = _compute(events, spine)
    ref = reference_features(events, spine).sort_values(["account_id", "as_of"]).reset_index(drop=True)
    cols = ["active_users_7d", "active_users_30d", "active_users_90d", "active_users_prev_30d"]
    assert ref[cols].to_numpy().sum() > 0
    pd.testing.assert_frame_equal(got[cols].astype("int64"), ref[cols].astype("int64"))


def test_catalog_has_the_named_features_and_at_least_80(small):
    events, users, accounts, spine = small
    got = _compute(events, spine, users, accounts)
    for name in ("events_30d", "active_users_30d", "days_since_last_event"):
        assert name in got.columns
    assert len(got.columns) - 2 >= 80


def _one_account(stamps, as_of):
    events = pd.DataFrame({"ts": pd.to_datetime(stamps, utc=True), "user_id": "u1",
                           "account_id": "a1", "event": "task_created"})
    spine = pd.DataFrame({"account_id": ["a1"], "as_of": [pd.Timestamp(as_of, tz="UTC")]})
    return _compute(events, spine).iloc[0]


def test_window_edges_are_exclusive_of_as_of_and_inclusive_of_the_window_start():
    row = _one_account(["2024-03-01 00:00:00",        # at as_of: never seen
                        "2024-02-29 23:59:59",        # age 1
                        "2024-01-31 00:00:00",        # exactly 30 days before: in the 30d window
                        "2024-01-30 23:59:59"],       # 30 days and a second: not in it
                       "2024-03-01")
    assert row.events_7d == 1 and row.events_30d == 2 and row.events_90d == 3
    assert row.days_since_last_event == 1 and row.days_since_first_event == 31


@pytest.mark.parametrize("level", [1, 0])
def test_the_unpacked_grains_give_the_packed_grains_features(small, monkeypatch, level):
    # Level 1 splits the packed grain before the window sums, level 0 builds it with one
    # filtered count per event: both must give what the packed sums give (level 2 here).
    import pqlml.features._table as table

    events, users, accounts, spine = small
    legal = Count("legal_pages_30d", ("terms_page_viewed", "privacy_page_viewed"), 30)
    packed = _compute(events, spine, users, accounts, extra=[legal])
    monkeypatch.setattr(table, "packing_level", lambda grain: level)
    pd.testing.assert_frame_equal(_compute(events, spine, users, accounts, extra=[legal]), packed)


@pytest.mark.parametrize("recent, older, level", [(3, 3, 2), (5, 5, 1), (0, 9, 0)])
def test_counts_beyond_a_packed_field_are_still_exact(monkeypatch, recent, older, level):
    # With 3-bit fields (counts 0..7): 3 + 3 events fit a window's sum of words; 5 + 5 fit
    # each segment but not the 30-day sum; 9 fit nothing. Each gets the exact counts.
    import pqlml.features._activity as activity
    import pqlml.features._table as table

    monkeypatch.setattr(activity, "_FIELD_BITS", 3)
    seen = []
    monkeypatch.setattr(table, "packing_level", lambda g: seen.append(activity.packing_level(g)) or seen[-1])
    stamps = ["2024-02-27"] * recent + ["2024-02-10"] * older     # ages 3 and 20 days
    row = _one_account(stamps, "2024-03-01")
    assert seen == [level]
    assert (row.events_7d, row.events_task_created_7d) == (recent, recent)
    assert (row.events_30d, row.events_task_created_30d) == (recent + older, recent + older)


def test_empty_windows_are_zero_and_undefined_quantities_are_nan():
    row = _one_account(["2023-06-01"], "2024-03-01")   # only an old event
    assert row.events_30d == 0 and row.active_users_30d == 0 and row.events_task_created_90d == 0
    assert row.days_since_last_event == (pd.Timestamp("2024-03-01") - pd.Timestamp("2023-06-01")).days
    assert np.isnan(row.events_per_active_user_30d)
    nothing = _compute(pd.DataFrame({"ts": pd.to_datetime(["2024-05-01"], utc=True), "user_id": ["u1"],
                                     "account_id": ["a1"], "event": ["x"]}),
                       pd.DataFrame({"account_id": ["a2"], "as_of": [pd.Timestamp("2024-03-01", tz="UTC")]}))
    assert nothing.events_30d.iloc[0] == 0 and np.isnan(nothing.days_since_last_event.iloc[0])


def test_user_defined_count_and_derived_features(small):
    events, users, accounts, spine = small
    legal = Count("legal_pages_30d", ("terms_page_viewed", "privacy_page_viewed"), 30)
    ratio = Derived("tasks_per_user_30d", lambda t: t.events_task_created_30d / t.active_users_30d.nullif(0))
    got = _compute(events, spine, users, accounts, extra=[legal, ratio])
    assert (got.legal_pages_30d == got.events_terms_page_viewed_30d + got.events_privacy_page_viewed_30d).all()
    expected = got.events_task_created_30d / got.active_users_30d.replace(0, np.nan)
    np.testing.assert_allclose(got.tasks_per_user_30d, expected, equal_nan=True)


def test_config_counts_and_vocabulary(small):
    events, _, _, spine = small
    settings_ = FeaturesConfig(events=("task_created",), windows=(30,),
                               counts={"tasks_14d": CountFeature(("task_created",), 14)})
    got = _compute(events, spine, settings=settings_)
    assert "events_task_created_30d" in got and "events_api_call_30d" not in got
    assert (got.tasks_14d <= got.events_task_created_30d).all() and got.tasks_14d.sum() > 0


# --- leakage: metamorphic property tests --------------------------------------------

BASE = dt.datetime(2024, 3, 1, tzinfo=UTC)
_offsets = st.integers(min_value=-120 * 86_400, max_value=40 * 86_400)
_event = st.tuples(_offsets, st.sampled_from(["a1", "a2"]), st.sampled_from(["u1", "u2", "u3"]),
                   st.sampled_from(["task_created", "invite_sent", "pricing_page_viewed"]))


def _log(rows):
    return pd.DataFrame({"ts": [BASE + dt.timedelta(seconds=s) for s, *_ in rows],
                         "account_id": [a for _, a, _, _ in rows], "user_id": [u for *_, u, _ in rows],
                         "event": [e for *_, e in rows]})


SPINE = pd.DataFrame({"account_id": ["a1", "a2"], "as_of": [pd.Timestamp(BASE)] * 2})
VOCAB = FeaturesConfig(events=("task_created", "invite_sent", "pricing_page_viewed"))


@settings(max_examples=25, deadline=None)
@given(st.lists(_event, min_size=1, max_size=40), st.lists(_event, min_size=1, max_size=20))
def test_events_at_or_after_as_of_never_change_a_feature_row(before, extra):
    log = _log(before)
    later = _log(extra)
    later["ts"] = BASE + (later.ts - later.ts.min())          # shift every extra event to >= as_of
    full = pd.concat([log, later], ignore_index=True)
    pd.testing.assert_frame_equal(_compute(log, SPINE, settings=VOCAB), _compute(full, SPINE, settings=VOCAB))


@settings(max_examples=25, deadline=None)
@given(st.lists(_event, min_size=1, max_size=60))
def test_features_from_a_log_truncated_at_as_of_equal_those_from_the_full_log(rows):
    log = _log(rows)
    truncated = log[log.ts < BASE]
    pd.testing.assert_frame_equal(_compute(log, SPINE, settings=VOCAB),
                                  _compute(truncated, SPINE, settings=VOCAB))


def _join_nesting(sql: str) -> tuple[int, int]:
    """The most parts one SELECT of ``sql`` joins, and how many SELECTs enclose it."""
    tree = sqlglot.parse_one(sql, read="duckdb")
    widest = max(tree.find_all(sqlglot.exp.Select), key=lambda s: len(s.args.get("joins") or []))
    depth, node = 0, widest.parent
    while node is not None:
        depth += isinstance(node, sqlglot.exp.Select)
        node = node.parent
    return len(widest.args.get("joins") or []), depth


def test_every_family_joins_in_one_select_under_a_few_projections(small):
    """The fixed cost of a build is ibis compiling the query, which grows with how deep the
    ~200 columns are nested: a join and a projection per part nested them once per part
    (1.6 CPU s to compile at 200 accounts, 0.65 s in one join chain, BENCHMARKS.md)."""
    events, users, accounts, spine = small
    t = feature_table(ibis.memtable(spine.rename(columns={"account_id": "entity_id"})),
                      ibis.memtable(events), users=ibis.memtable(users),
                      accounts=ibis.memtable(accounts))
    joins, depth = _join_nesting(ibis.to_sql(t))
    assert joins >= 8 and depth <= 2, (joins, depth)
