"""The simulator's sales touches (:mod:`pqlml.simulate._touches`): a known policy, a known
effect, the truth consistent with the tables it writes, and every account a touch did not
change exactly as it was before touches existed."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pqlml.cli import main
from pqlml.errors import PqlmlError
from pqlml.simulate import _params as P
from pqlml.simulate import simulate
from pqlml.simulate._buyers import IN_PRODUCT_ACTIONS, IN_PRODUCT_SENIOR, SEGMENT_IN_PRODUCT
from pqlml.simulate._touches import (LIFT, LOW_INTENT_EFFECT, LOW_INTENT_EVENTS,
                                     RANDOMISED_SHARE, READY_P, READY_SCALE, TOUCH_DAYS,
                                     TOUCH_RATE)

HORIZON = pd.Timedelta(days=P.HORIZON_DAYS)
WINDOW = pd.Timedelta(days=14)


def _read(out, name):
    return pd.read_parquet(out / name)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One 2,000-account company three ways: touches acting, touches acting on nothing (the
    company before touches existed), and fully targeted touches."""
    root = tmp_path_factory.mktemp("touches")
    kw = dict(n_accounts=2_000, seed=3, months=12)
    return {"acting": simulate(out=root / "acting", **kw).out,
            "inert": simulate(out=root / "inert", touch_effect=False, **kw).out,
            "targeted": simulate(out=root / "targeted", randomised_share=0, **kw).out}


@pytest.fixture(scope="module")
def truth(runs):
    out = runs["acting"]
    t = _read(out, "truth/touches.parquet")
    t["as_of"] = pd.to_datetime(t.as_of).dt.tz_localize("UTC")
    return t


def _month(ts: pd.Series) -> pd.Series:
    """The first of the month of each (UTC) time: the as_of a touch or outcome belongs to."""
    return ts.dt.tz_convert(None).dt.to_period("M").dt.start_time.dt.tz_localize("UTC")


def _converted(truth, outcomes):
    """Did the row's account convert in [as_of, as_of + horizon)? From outcomes.parquet."""
    conv = outcomes[outcomes.outcome == "conversion"].set_index("account_id").ts
    at = truth.account_id.map(conv)
    return (at > truth.as_of) & (at <= truth.as_of + HORIZON)


def test_truth_rows_are_the_snapshots_with_both_potential_outcomes(runs, truth):
    snap = _read(runs["acting"], "truth/snapshots.parquet")
    assert len(truth) == len(snap)
    m = snap.merge(truth, on=["account_id", "as_of"], validate="one_to_one")
    assert len(m) == len(snap)
    np.testing.assert_allclose(m.p_convert_no_touch, m.p_convert)
    np.testing.assert_allclose(truth.effect, truth.p_convert_touch - truth.p_convert_no_touch)
    assert truth.p_convert_touch.between(0, 1).all()
    seg = _read(runs["acting"], "accounts.parquet").set_index("account_id").segment
    assert (truth.account_id.map(seg) == truth.segment).all()


def test_the_effect_is_the_documented_function_of_what_exists_at_as_of(runs, truth):
    """Recomputed in pandas from the written events and users: tau = LIFT[segment] *
    P(buyer outside) * fade(untouched p) for accounts with intent, LOW_INTENT_EFFECT below
    LOW_INTENT_EVENTS."""
    out = runs["acting"]
    ev = _read(out, "events.parquet")
    ev = ev[ev.account_id.notna()]
    users = _read(out, "users.parquet")
    snap = _read(out, "truth/snapshots.parquet")
    buyer_titles = set(P.BUYER_TITLES)
    for as_of in sorted(truth.as_of.unique())[3::4]:
        rows = truth[truth.as_of == as_of].set_index("account_id")
        w90 = ev[(ev.ts >= as_of - pd.Timedelta(days=90)) & (ev.ts < as_of)
                 & ev.event.isin(["admin_role_changed", "pricing_page_viewed"])]
        actions = w90.groupby("account_id").size().reindex(rows.index).fillna(0)
        senior = users[(users.signup_at < as_of) & users.title.isin(buyer_titles)]
        senior = rows.index.isin(senior.account_id.dropna())
        seg = rows.segment.map({s: i for i, s in enumerate(P.SEGMENTS)}).to_numpy()
        p_in = 1 / (1 + np.exp(-(np.array(SEGMENT_IN_PRODUCT)[seg] + IN_PRODUCT_SENIOR * senior
                                 + IN_PRODUCT_ACTIONS * np.log1p(actions.to_numpy()))))
        events_30d = snap[snap.as_of == as_of].set_index("account_id").events_30d \
            .reindex(rows.index).to_numpy()
        logit = lambda p: np.log(p / (1 - p))     # noqa: E731
        fade = 1 / (1 + np.exp((logit(rows.p_convert_no_touch) - logit(READY_P)) / READY_SCALE))
        tau = np.where(events_30d < LOW_INTENT_EVENTS, LOW_INTENT_EFFECT,
                       np.array(LIFT)[seg] * (1 - p_in) * fade)
        got = logit(rows.p_convert_touch) - logit(rows.p_convert_no_touch)
        np.testing.assert_allclose(got, tau, atol=1e-9)


def test_the_effect_by_segment_is_as_the_issue_says(truth):
    mean = truth.groupby("segment").effect.mean()
    assert mean["mid_market"] > 0.01 and mean["enterprise"] > 0.02
    assert abs(mean["smb"]) < 0.003 < mean["mid_market"] / 3
    assert (truth.effect[truth.segment == "smb"] < 0.01).all()


def test_touched_accounts_convert_as_often_as_the_truth_says(runs, truth):
    y = _converted(truth, _read(runs["acting"], "outcomes.parquet"))
    for touched in (True, False):
        rows = truth.touched == touched
        p = np.where(touched, truth.p_convert_touch, truth.p_convert_no_touch)[rows]
        n_conv, expected = int(y[rows].sum()), p.sum()
        sd = np.sqrt((p * (1 - p)).sum())
        assert abs(n_conv - expected) < 3 * sd, (touched, n_conv, expected, sd)
    assert y[truth.touched].sum() >= 20        # enough conversions for the check to bite


def test_the_experiment_is_balanced_and_kept(runs, truth):
    out = runs["acting"]
    h, x = _read(out, "holdouts.parquet"), _read(out, "touches.parquet")
    arms = h.groupby("experiment").arm.value_counts().unstack()
    assert (arms.touch - arms.holdout).between(0, 1).all() and len(arms) == truth.as_of.nunique()
    j = h.merge(x, on="account_id", suffixes=("", "_touch"))
    j = j[(j.at_touch >= j["at"]) & (j.at_touch < j["at"] + WINDOW)]
    touched_in_window = set(zip(j.account_id, j["at"]))
    arm_touch = h[h.arm == "touch"]
    assert set(zip(arm_touch.account_id, arm_touch["at"])) <= touched_in_window
    assert not set(zip(h.account_id[h.arm == "holdout"], h["at"][h.arm == "holdout"])) \
        & touched_in_window
    r = truth[truth.randomised]
    assert sorted(zip(r.account_id, r.as_of, r.arm)) == sorted(zip(h.account_id, h["at"], h.arm))
    assert (truth.touched[truth.randomised] == (truth.arm[truth.randomised] == "touch")).all()
    assert not truth.touched[truth.arm == "holdout"].any()
    # sales leaves the held-out accounts alone that month (an inbound request is answered)
    d = _read(out, "truth/dispositions.parquet")
    worked = d.merge(h[h.arm == "holdout"], left_on=["account_id", "as_of"],
                     right_on=["account_id", "at"])
    assert set(worked.route) <= {"inbound"}


def test_capacity_touches_the_most_active_and_randomises_the_share(runs, truth):
    snap = _read(runs["acting"], "truth/snapshots.parquet")
    m = truth.merge(snap[["account_id", "as_of", "active_users_30d", "events_30d"]],
                    on=["account_id", "as_of"])
    for as_of, g in m.groupby("as_of"):
        capacity = round(TOUCH_RATE * len(g))
        assert g.randomised.sum() == round(RANDOMISED_SHARE * capacity)
        targeted = g[g.touched & ~g.randomised]
        rest = g[~g.touched & ~g.randomised]
        assert len(targeted) == capacity - g.randomised.sum()
        lowest = min(zip(targeted.active_users_30d, targeted.events_30d))
        assert max(zip(rest.active_users_30d, rest.events_30d)) <= lowest
    x = _read(runs["acting"], "touches.parquet")
    as_of = _month(x["at"])
    assert ((x["at"] - as_of) < pd.Timedelta(days=TOUCH_DAYS)).all() and (x["at"] >= as_of).all()
    end = _read(runs["acting"], "events.parquet").ts.max()
    assert x["at"].max() < end
    assert set(x.kind) == {"email", "call", "meeting"} and x.rep.notna().all()


def test_fully_targeted_touches_have_no_holdouts(runs):
    from pqlml.project import open_project

    out = runs["targeted"]
    t = _read(out, "truth/touches.parquet")
    assert not (out / "holdouts.parquet").exists() and "[data.holdouts]" not in \
        (out / "pqlml.toml").read_text()
    project = open_project(out / "pqlml.toml")
    assert project.holdouts() is None and len(project.touches()) == t.touched.sum()
    assert not t.randomised.any() and t.arm.isna().all()
    per_month = t.groupby("as_of").agg(n=("touched", "size"), touched=("touched", "sum"))
    assert (per_month.touched == (TOUCH_RATE * per_month.n).round()).all()


def test_an_untouched_account_keeps_its_events_and_outcomes(runs, truth):
    """Common random numbers: the accounts whose outcomes moved were all touched, few, and
    every other account's outcomes, events and truth are those of the company whose touches
    act on nothing, whose tables are byte for byte those of the company before touches
    existed (test_simulate_buyers)."""
    a, b = runs["inert"], runs["acting"]
    oa, ob = _read(a, "outcomes.parquet"), _read(b, "outcomes.parquet")
    m = oa.merge(ob, how="outer", indicator=True)
    moved = set(m.account_id[m._merge != "both"])
    assert 0 < len(moved) <= truth.touched.sum() // 5
    assert moved <= set(truth.account_id[truth.touched])
    for name in ("events.parquet", "outcomes.parquet", "truth/snapshots.parquet",
                 "accounts.parquet", "users.parquet", "truth/buyers.parquet"):
        x, y = (_read(d, name).drop(columns="event_id", errors="ignore") for d in (a, b))
        x, y = (t[~t.account_id.isin(moved)].reset_index(drop=True) for t in (x, y))
        pd.testing.assert_frame_equal(x, y, obj=name)
    # a touch-caused conversion happens after the touch
    x = _read(b, "touches.parquet")
    gained = ob[(ob.outcome == "conversion") & ob.account_id.isin(moved)
                & ~ob.account_id.isin(oa.account_id[oa.outcome == "conversion"])]
    j = gained.assign(as_of=_month(gained.ts - pd.Timedelta(seconds=1))).merge(
        x.assign(as_of=_month(x["at"])), on=["account_id", "as_of"], suffixes=("", "_touch"))
    assert len(j) == len(gained) > 0 and (j.ts > j["at"]).all()


def test_same_seed_same_touches_and_chunks_share_the_capacity(tmp_path):
    a = simulate(400, seed=2, out=tmp_path / "a", months=6)
    b = simulate(400, seed=2, out=tmp_path / "b", months=6)
    for name in ("touches.parquet", "holdouts.parquet", "truth/touches.parquet"):
        pd.testing.assert_frame_equal(_read(a.out, name), _read(b.out, name))
    chunked = simulate(400, seed=2, out=tmp_path / "c", months=6, chunk_accounts=200)
    t = _read(chunked.out, "truth/touches.parquet")
    t["chunk"] = t.account_id.str[1:].astype(int) // 200
    per = t.groupby(["chunk", "as_of"]).agg(n=("touched", "size"), touched=("touched", "sum"),
                                           randomised=("randomised", "sum"))
    assert set(per.index.get_level_values("chunk")) == {0, 1}
    capacity = (TOUCH_RATE * per.n).round()
    assert (per.touched == capacity - per.randomised // 2).all()


@pytest.mark.parametrize("share", [-0.1, 1.5, "half", True, float("nan")])
def test_a_bad_randomised_share_is_named(tmp_path, share):
    with pytest.raises(PqlmlError, match="'randomised_share' parameter of simulate must be a "
                                         "number between 0 and 1"):
        simulate(50, out=tmp_path, months=3, randomised_share=share)


def test_the_command_takes_the_share(tmp_path, capsys):
    assert main(["simulate", "--accounts", "50", "--out", str(tmp_path),
                 "--randomised-share", "2"]) == 2
    assert "expected a share between 0 and 1; got '2'" in capsys.readouterr().err
    assert main(["simulate", "--accounts", "300", "--months", "4", "--out", str(tmp_path),
                 "--randomised-share", "1", "-q"]) == 0
    t = _read(tmp_path, "truth/touches.parquet")
    assert t.touched.sum() and (t.randomised | ~t.touched).all()


def test_the_project_reads_touches_and_holdouts(runs):
    from pqlml.project import open_project

    out = runs["acting"]
    project = open_project(out / "pqlml.toml")
    touches, holdouts = project.touches(), project.holdouts()
    assert list(touches.columns) == ["account_id", "at", "kind", "rep"]
    assert list(holdouts.columns) == ["account_id", "at", "experiment", "arm"]
    written = _read(out, "touches.parquet")
    pd.testing.assert_series_equal(touches["at"], written["at"].astype(touches["at"].dtype))
    assert touches.account_id.tolist() == written.account_id.tolist()
    assert set(holdouts.arm) == {"touch", "holdout"} and holdouts.experiment.notna().all()
    assert not [f for f in project.report.findings if f.table in ("touches", "holdouts")]
    text = re.sub(r"\[data\.(touches|holdouts)\]\n(#.*\n)*source = .*\n", "",
                  (out / "pqlml.toml").read_text())
    assert "[data.touches]" not in text and "[data.holdouts]" not in text
    bare = out / "bare.toml"
    bare.write_text(text)
    try:
        plain = open_project(bare)
        assert plain.touches() is None and plain.holdouts() is None
    finally:
        bare.unlink()


def test_the_oracle_is_the_chance_of_what_happened(runs, truth):
    """project.truth() (the backtest's oracle): a touched snapshot's p_convert is its chance
    as touched, every other one's the untouched chance of truth/snapshots.parquet."""
    from pqlml.project import open_project

    got = open_project(runs["acting"] / "pqlml.toml").truth()
    snaps = _read(runs["acting"], "truth/snapshots.parquet")
    snaps["as_of"] = pd.to_datetime(snaps.as_of, utc=True)
    both = got.merge(truth, on=["account_id", "as_of"], how="left", validate="one_to_one")
    assert len(got) == len(snaps) and both.touched.notna().all()
    touched = both.touched.astype(bool)
    assert touched.sum() > 100
    assert np.allclose(both.p_convert[touched], both.p_convert_touch[touched])
    assert np.allclose(both.p_convert[~touched], both.p_convert_no_touch[~touched])
    assert (both.p_convert[touched] != both.p_convert_no_touch[touched]).mean() > 0.5


def test_a_company_too_small_for_a_touch_or_a_lead_is_still_written(tmp_path):
    r = simulate(3, seed=2, out=tmp_path, months=4)
    assert r.counts["touches"] == r.counts["leads"] == 0
    assert list(_read(tmp_path, "touches.parquet").columns) == ["account_id", "at", "kind", "rep"]
    assert len(_read(tmp_path, "leads.parquet")) == 0
