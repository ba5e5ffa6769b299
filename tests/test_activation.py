"""Activation checkpoints and the decaying engagement score: equal to independent pandas
computations, and point-in-time."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from pqlml.config import config_from_dict
from pqlml.errors import ConfigError
from pqlml.project import build_features
from pqlml.simulate import simulate

from simulated import company_config, with_features

CHECKPOINTS = ["board_created >= 1", "invite_sent >= 2", "integration_connected >= 1"]
DATES = ["2024-04-01", "2024-06-01", "2024-08-01"]
HALF_LIFE = 10.5
WEIGHTS = {"task_created": 1.0, "invite_sent": 5.0, "pricing_page_viewed": 2.5}


@pytest.fixture(scope="module")
def company(tmp_path_factory):
    root = tmp_path_factory.mktemp("activation")
    sim = simulate(n_accounts=400, seed=12, out=root / "sim", months=8)
    with_features(sim.config, (
        f"[features]\nactivation = {CHECKPOINTS!r}\nactivation_within_days = 30\n"
        f"engagement_half_life_days = {HALF_LIFE}\n"
        "engagement_weights = {task_created = 1, invite_sent = 5, pricing_page_viewed = 2.5}\n"
    ).replace("'", '"'))
    return sim.config


def _days(ts: pd.Series) -> pd.Series:
    return (ts.dt.tz_convert("UTC").dt.floor("D") - pd.Timestamp(0, tz="UTC")).dt.days


def test_activation_features_equal_an_independent_computation(company):
    X = build_features(company, as_of=DATES).set_index(["account_id", "as_of"])
    ev = pd.read_parquet(company.parent / "events.parquet")
    ev = ev[ev.account_id.notna()].assign(day=lambda d: _days(d.ts))
    created = _days(pd.read_parquet(company.parent / "accounts.parquet")
                    .set_index("account_id").created_at)
    rows = []
    for (account, as_of), _ in X.iterrows():
        before = ev[(ev.account_id == account) & (ev.ts < as_of)]
        row = {"account_id": account, "as_of": as_of}
        passed, days = [], []
        for text in CHECKPOINTS:
            event, n = text.split(" >= ")
            hits = before[before.event == event].sort_values("ts")
            ok = len(hits) >= int(n)
            passed.append(ok)
            days.append(hits.day.iloc[int(n) - 1] - created[account] if ok else np.nan)
        row["activation_checkpoints_passed"] = sum(passed)
        row["activation_stage"] = int(np.argmin(passed + [False]))
        row["days_to_board_created"], row["days_to_invite_sent_2"], \
            row["days_to_integration_connected"] = days
        row["activated"] = int(all(passed))
        row["activated_within_30d"] = int(all(passed) and max(days) <= 30)
        rows.append(row)
    want = pd.DataFrame(rows).set_index(["account_id", "as_of"])
    got = X[want.columns]
    pd.testing.assert_frame_equal(got.astype(float), want.astype(float))
    assert 0 < got.activated.sum() < len(got) and got.activation_stage.max() == 3


def test_engagement_score_equals_an_independent_computation(company):
    X = build_features(company, as_of=DATES)
    ev = pd.read_parquet(company.parent / "events.parquet")
    ev = ev[ev.account_id.notna() & ev.event.isin(WEIGHTS)].assign(day=lambda d: _days(d.ts))
    for as_of in DATES:
        as_day = _days(pd.Series([pd.Timestamp(as_of, tz="UTC")])).iloc[0]
        before = ev[ev.ts < pd.Timestamp(as_of, tz="UTC")]
        want = (before.event.map(WEIGHTS) * 0.5 ** ((as_day - before.day) / HALF_LIFE)
                ).groupby(before.account_id).sum()
        got = X[X.as_of == pd.Timestamp(as_of, tz="UTC")].set_index("account_id").engagement_score
        assert got.reindex(want.index).to_numpy() == pytest.approx(want.to_numpy(), rel=1e-9)
        assert (got.drop(want.index) == 0).all()                # no weighted event: 0
    assert X.engagement_score.max() > 10


def test_activation_sees_nothing_at_or_after_as_of(company, tmp_path):
    cut = pd.Timestamp("2024-06-01", tz="UTC")
    shutil.copytree(company.parent, tmp_path / "cut")
    ev = pd.read_parquet(tmp_path / "cut" / "events.parquet")
    ev[ev.ts < cut].to_parquet(tmp_path / "cut" / "events.parquet")
    cols = ["activation_checkpoints_passed", "activation_stage", "days_to_board_created",
            "days_to_invite_sent_2", "days_to_integration_connected", "activated",
            "activated_within_30d", "engagement_score"]
    full = build_features(company, as_of=["2024-06-01"])[["account_id", *cols]]
    truncated = build_features(tmp_path / "cut" / company.name, as_of=["2024-06-01"])
    pd.testing.assert_frame_equal(full, truncated[["account_id", *cols]])


@pytest.mark.parametrize("bad", [["board_created"], ["board_created >= 0"], ["x > 1"], "board >= 1"])
def test_bad_checkpoints_are_config_errors(tmp_path, bad):
    with pytest.raises(ConfigError, match=r"'features\.activation' .* must be a list of \"<event> >= <n>\""):
        config_from_dict({"features": {"activation": bad}}, tmp_path)


def test_the_backtest_scores_activated_then_engagement_at_the_rules_volume(shared_company,
                                                                           tmp_path):
    import json

    from pqlml.cli import main

    config = company_config(shared_company(n_accounts=1_500, seed=4, months=12), tmp_path / "sim")
    with_features(config, '[features]\nactivation = ["board_created >= 1", "invite_sent >= 1"]\n'
                  "engagement_weights = {task_created = 1, invite_sent = 3}\n"
                  "\n[model]\ntest_periods = 2\nbootstrap = 10\n")
    assert main(["backtest", "--config", str(config), "--out", str(tmp_path / "bt"),
                 "--no-track"]) == 0
    m = json.loads((tmp_path / "bt" / "metrics.json").read_text())
    act, rules = m["activation_engagement"], m["rules"]
    assert act["volume"] == rules["volume"]                    # the same number of touches
    assert 0 < act["converters_captured"] <= rules["volume"]
    assert all("activation_engagement" in f for f in m["folds"])
    report = (tmp_path / "bt" / "report.md").read_text()
    header = next(line for line in report.splitlines() if line.startswith("| | model |"))
    assert "activation_engagement" in header                   # a column beside rules and model


@pytest.mark.parametrize("checkpoints", [["x >= 1", "y >= 1"], ["x >= 1", "y >= 2"]])
def test_checkpoint_days_equal_pandas_with_and_without_prior_counts(checkpoints):
    # every n = 1 takes the first-day route of nth_days, a mix the running-count one
    import ibis
    from pqlml.features._activation import nth_days, parse_checkpoints

    rng = np.random.default_rng(5)
    ev = pd.DataFrame({"entity_id": rng.choice(["a", "b", "c", "d"], 300),
                       "event": rng.choice(["x", "y", "z"], 300),
                       "day": rng.integers(0, 60, 300)})
    prior = pd.DataFrame({"entity_id": ["a", "b"], "_c0": [1, 0], "_c1": [1, 3]})
    parsed = parse_checkpoints(checkpoints)
    for before in (None, prior):
        got = [nth.execute().set_index("_e")[f"_d{i}"].sort_index()
               for i, nth in enumerate(nth_days(ibis.memtable(ev), parsed,
                                                None if before is None else ibis.memtable(before)))]
        for i, (event, n, _) in enumerate(parsed):
            counts = {} if before is None else before.set_index("entity_id")[f"_c{i}"]
            want = {}
            for entity, rows in ev[ev.event == event].sort_values("day").groupby("entity_id"):
                need = n - counts.get(entity, 0)       # _c<i>: the i-th checkpoint event, sorted
                want[entity] = rows.day.iloc[max(need, 1) - 1] if len(rows) >= need else None
            want = pd.Series({k: v for k, v in want.items() if v is not None}, dtype="int64")
            assert got[i].to_dict() == want.to_dict(), (checkpoints, before is not None, event)
