"""The second world (``benchmarks/worlds/second_world.py``): its truth holds in its own data,
and pqlml reads it through its documented config alone and ranks its upgrades.

The world is a stranger's whiteboard product sharing nothing with ``pqlml.simulate``; every
check of its truth here is an independent pandas computation on the files it wrote.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from simulated import second_world

ROOT = Path(__file__).resolve().parents[1]
PATH = ROOT / "benchmarks" / "worlds" / "second_world.py"


world = second_world()


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """1,200 workspaces over 10 months (March to December: the December dip is in)."""
    out = tmp_path_factory.mktemp("tableau_blanc")
    config = world.write_world(out, n_orgs=1200, months=10, seed=3, test_periods=3)
    return config, out


@pytest.fixture(scope="module")
def counts(written):
    """Each workspace's actions over the 30 and 90 days before every month start, from the
    files alone: activity joined to the membership in force at each action's time."""
    _, out = written
    act = pd.read_parquet(out / "activity.parquet", columns=["member_uuid", "action",
                                                             "occurred_at"])
    ms = pd.read_csv(out / "memberships.csv")
    ms["since"] = pd.to_datetime(ms.joined_on, utc=True).astype(act.occurred_at.dtype)
    act = pd.merge_asof(act.sort_values("occurred_at"), ms.sort_values("since"),
                        left_on="occurred_at", right_on="since", by="member_uuid")
    assert act.workspace_id.notna().all()
    truth = pd.read_parquet(out / "truth_monthly.parquet")
    rows = []
    for as_of in truth.month_start.unique():
        for days in (30, 60, 90):
            w = act[(act.occurred_at >= as_of - pd.Timedelta(days=days))
                    & (act.occurred_at < as_of)]
            c = w.groupby(["workspace_id", "action"]).size().unstack(fill_value=0)
            rows.append(c.add_suffix(f"_{days}d").reset_index().assign(month_start=as_of))
    wide = pd.concat(rows).groupby(["workspace_id", "month_start"]).sum().reset_index()
    return truth.merge(wide, on=["workspace_id", "month_start"], how="left").fillna(0)


def test_the_generator_never_imports_pqlml():
    tree = ast.parse(PATH.read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
                for a in n.names}
    imported |= {(n.module or "").split(".")[0] for n in ast.walk(tree)
                 if isinstance(n, ast.ImportFrom)}
    assert "pqlml" not in imported
    assert imported <= {"__future__", "datetime", "json", "dataclasses", "pathlib", "numpy",
                        "pandas", "pyarrow", "argparse", "time"}


def test_same_seed_same_world_other_seed_other_world():
    a, b, c = (world.generate(60, 4, seed) for seed in (5, 5, 6))
    assert a["activity"].equals(b["activity"])
    pd.testing.assert_frame_equal(a["truth_monthly"], b["truth_monthly"])
    assert not a["activity"].equals(c["activity"])


def test_the_truth_driver_counts_are_the_logged_actions(counts):
    for term in world.DRIVERS:
        lo, hi = term.days
        logged = counts[f"{term.action}_{lo}d"] - (counts[f"{term.action}_{hi}d"] if hi else 0)
        assert (logged.to_numpy() == counts[term.name].to_numpy()).all(), term.name


def test_the_oracle_reproduces_the_upgrade_rate(written, counts):
    p, y = counts.p_upgrade.to_numpy(), counts.upgraded.to_numpy()
    expected, sd = p.sum(), np.sqrt((p * (1 - p)).sum())
    assert abs(y.sum() - expected) < 3 * sd, (y.sum(), expected, sd)
    _, out = written
    subs = pd.read_csv(out / "subscriptions.csv")
    assert set(subs[subs.change == "upgraded"].workspace_id) == \
        set(counts[counts.upgraded].workspace_id)
    # the oracle itself: eta from the counts reproduces p_upgrade
    eta = world.INTERCEPT + world.HEADCOUNT_COEF * np.log(counts.headcount / 50) \
        + world.DECEMBER * (counts.month_start.dt.month == 12)
    for term in world.DRIVERS:
        x = counts[term.name]
        eta += term.coef * (np.log1p(x) if term.transform == "log1p" else (x > 0))
    np.testing.assert_allclose(world.sigmoid(eta), p, rtol=1e-9)
    truth = json.loads((out / "truth.json").read_text())
    assert truth["oracle"]["upgrades"] == y.sum()
    assert {"Teammate Invited", "Security Settings Viewed", "App Connected"} == \
        set(truth["true_driver_actions"])
    assert truth["negative_driver_actions"] == ["PDF Exported"]


def test_the_collinear_pages_travel_together(counts):
    r = np.corrcoef(counts["SSO Page Viewed_30d"], counts["Security Settings Viewed_30d"])[0, 1]
    assert r > 0.8


def test_the_drivers_move_upgrades_and_the_distractors_ride_engagement(counts):
    def rate(mask):
        return counts.upgraded[mask].mean()
    sec = counts.security_views_30d > 0
    app = counts.app_connected_90d > 0
    growth = counts.invites_30d > counts.invites_prev_30d
    heavy_pdf = counts.pdf_exports_30d >= 5
    assert rate(sec) > 1.5 * rate(~sec)
    assert rate(app) > 1.5 * rate(~app)
    assert rate(growth) > 1.3 * rate(~growth)
    assert rate(heavy_pdf) < 0.8 * rate(~heavy_pdf)
    # a distractor correlates with a driver (engagement), so it looks predictive on its own
    r = np.corrcoef(np.log1p(counts["Canvas Opened_30d"]), np.log1p(counts["App Connected_90d"]
                                                                     ))[0, 1]
    assert r > 0.05


def test_usage_is_seasonal_and_members_look_like_a_real_base(written):
    _, out = written
    act = pd.read_parquet(out / "activity.parquet", columns=["occurred_at"]).occurred_at
    weekend = act.dt.day_of_week >= 5
    assert 0.15 < weekend.sum() / 2 / ((~weekend).sum() / 5) < 0.35    # per day: ~0.25
    per_day = act.dt.floor("D").value_counts()
    nov = per_day[per_day.index.month == 11].mean()
    dec = per_day[per_day.index.month == 12].mean()
    assert dec < 0.75 * nov
    members = pd.read_csv(out / "members.csv")
    free = members.email_address.str.split("@").str[1].isin(world.FREE_MAIL)
    assert 0.03 < free.mean() < 0.08
    moved = pd.read_csv(out / "memberships.csv").member_uuid.value_counts()
    assert (moved > 1).sum() > 0 and len(moved) == len(members)


@pytest.mark.slow
def test_pqlml_reads_the_world_through_its_config_and_ranks_upgrades(written, counts,
                                                                     tmp_path):
    from pqlml import runner

    config, out = written
    checks = runner.validate(config).checks
    assert checks.problems == []
    feats = runner.features(config, tmp_path / "features.parquet").frame
    # pqlml's counts of the driver actions are the world's own, member moves included
    m = counts.merge(feats.assign(month_start=feats.as_of.astype(counts.month_start.dtype)),
                     left_on=["workspace_id", "month_start"],
                     right_on=["account_id", "month_start"])
    assert len(m) > 0.5 * len(feats)
    for action, days in (("Security Settings Viewed", 30), ("PDF Exported", 30),
                         ("Teammate Invited", 30), ("App Connected", 90)):
        name = "events_" + action.lower().replace(" ", "_") + f"_{days}d"
        np.testing.assert_array_equal(m[name].fillna(0), m[f"{action}_{days}d"], err_msg=name)
    # and so is the growth driver's previous window: invites 31..60 days before as_of
    prev = m["Teammate Invited_60d"] - m["Teammate Invited_30d"]
    assert prev.sum() > 0
    np.testing.assert_array_equal(m.events_teammate_invited_prev_30d, prev)
    np.testing.assert_array_equal(m.events_teammate_invited_prev_30d, m.invites_prev_30d)

    result = runner.backtest(config, tmp_path / "backtest", track=False)
    rows = result.rows
    truth = pd.read_parquet(out / "truth_monthly.parquet")
    truth = truth.assign(as_of=truth.month_start.astype(rows.as_of.dtype))
    j = rows.merge(truth, left_on=["account_id", "as_of"], right_on=["workspace_id", "as_of"])
    assert len(j) == len(rows)
    assert (j.conversion.astype(bool) == j.upgraded).all()     # pqlml's labels are the truth's
    model_auc = roc_auc_score(j.conversion, j.p_model)
    oracle_auc = roc_auc_score(j.conversion, j.p_upgrade)
    print(f"\nsecond world, {len(j):,} test rows, {int(j.conversion.sum())} upgrades: "
          f"pqlml ROC-AUC {model_auc:.3f}, oracle {oracle_auc:.3f}")
    assert model_auc > 0.6

    runner.train(config, tmp_path / "model.skops", track=False)
    scored = runner.score(config, tmp_path / "model.skops", out=tmp_path / "scores")
    every = pd.read_parquet(out / "workspaces.parquet").workspace_id
    ids = pd.concat([scored.scores.account_id, scored.not_scored.account_id])
    assert ids.is_unique and set(ids) == set(every)
    assert scored.not_scored.reason.notna().all() and (scored.not_scored.reason != "").all()
    assert scored.scores.tier.notna().all()
