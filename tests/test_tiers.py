"""The one tier policy: its cutpoints against brute force, and the same tiers from the rules,
the backtest and scoring."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pqlml.config import CapacityConfig, TiersConfig, load_config
from pqlml.errors import PqlmlError
from pqlml.tiers import TIERS, TierPolicy, capacity_cutpoint, precision_cutpoint

RANK = {"tier_1": 3, "tier_2": 2, "tier_3": 1, "self_serve": 0}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.booleans()), min_size=1, max_size=40),
       st.floats(0, 1), st.floats(0, 1))
def test_raising_a_cutpoint_never_moves_an_entity_to_a_higher_tier(rows, c1, c2):
    p = pd.Series([r[0] for r in rows])
    fit = pd.Series([r[1] for r in rows])
    low, high = sorted((c1, c2))
    before = TierPolicy().tiers(p, fit, cutpoint=low).map(RANK)
    after = TierPolicy().tiers(p, fit, cutpoint=high).map(RANK)
    assert (after <= before).all()


def test_tiers_cross_intent_with_fit():
    intent = pd.Series([True, True, False, False, None])
    fit = pd.Series([True, False, True, False, True])
    assert TierPolicy().tiers(intent, fit).tolist() == ["tier_1", "tier_3", "tier_2",
                                                        "self_serve", "tier_2"]
    fit_with_gap = pd.Series([None, True], index=[7, 8])
    got = TierPolicy().tiers(np.array([True, True]), fit_with_gap)
    assert got.tolist() == ["tier_3", "tier_1"] and list(got.index) == [7, 8]


def test_cutpoints_match_independent_computations():
    rng = np.random.default_rng(3)
    p = rng.random(2000)
    y = (rng.random(2000) < p).astype(int)
    assert capacity_cutpoint(p, 100) == np.sort(p)[::-1][99]
    cut = precision_cutpoint(p, 0.8, outcomes=y)
    assert y[p >= cut].mean() >= 0.8
    assert capacity_cutpoint(p, 0) == np.inf and capacity_cutpoint([], 3) == np.inf


def _brute_force(p, target, y=None):
    """The lowest distinct probability whose flagged set (p >= it) converts at target."""
    y = p if y is None else y
    ok = [c for c in np.unique(p) if y[p >= c].mean() >= target]
    return min(ok) if ok else np.inf


@pytest.mark.parametrize("seed", range(6))
def test_precision_cutpoint_is_the_brute_force_one(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    p = np.round(rng.random(n) ** 2, 2)                # ties, which a cutpoint never splits
    y = (rng.random(n) < p).astype(int)
    for target in (0.05, 0.3, 0.5, 0.8, 0.99):
        policy = TierPolicy(method="precision", precision_target=target)
        assert policy.cutpoint(p) == _brute_force(p, target)
        assert precision_cutpoint(p, target, outcomes=y) == _brute_force(p, target, y)
        flagged = policy.intent(p)
        if flagged.any():                              # the set reaches the target
            assert p[flagged].mean() >= target


def test_a_higher_precision_target_never_flags_more():
    p = np.random.default_rng(1).random(300) ** 3
    counts = [TierPolicy(method="precision", precision_target=t).intent(p).sum()
              for t in (0.1, 0.2, 0.4, 0.6, 0.8, 0.95)]
    assert counts == sorted(counts, reverse=True) and counts[0] > counts[-1]


def test_from_config_reads_every_tiers_setting(tmp_path):
    from pqlml.config import config_from_dict

    cfg = config_from_dict({"rules": {"hot": "events_30d >= 5"},
                            "tiers": {"intent_rule": "hot", "method": "precision",
                                      "precision_target": 0.3},
                            "capacity": {"per_period": 40}}, tmp_path)
    want = TierPolicy(method="precision", capacity=40, precision_target=0.3, intent_rule="hot")
    assert TierPolicy.from_config(cfg) == want
    assert TierPolicy.from_config(cfg.tiers, capacity=40) == want
    assert TierPolicy.from_config({"method": "precision", "precision_target": 0.3,
                                   "intent_rule": "hot"}, capacity=40) == want
    assert TierPolicy.from_config(cfg, capacity=7).capacity == 7


@pytest.mark.parametrize("make, match", [
    (lambda: TierPolicy(method="top"), "'method' parameter of TierPolicy must be one of"),
    (lambda: TierPolicy(capacity=0), "'capacity' parameter .* positive integer"),
    (lambda: TierPolicy(precision_target=1.5), "'precision_target' .* strictly between"),
    (lambda: TierPolicy.from_config({"methd": "rules"}), "unknown \\[tiers\\] key.*'methd'"),
    (lambda: TierPolicy.from_config(3), "needs a config .* Got int"),
    (lambda: TierPolicy(method="precision").cutpoint([0.2, np.nan]), "1 value.* missing"),
    (lambda: TierPolicy(method="precision").cutpoint([0.2, 1.2]), "outside \\[0, 1\\]"),
    (lambda: TierPolicy().tiers([0.1, 0.2], [True]), "one fit flag per row"),
    (lambda: TierPolicy().tiers([True], ["yes"]), "fit flags must be booleans"),
])
def test_bad_settings_and_inputs_are_clear_errors(make, match):
    with pytest.raises(PqlmlError, match=match):
        make()


@pytest.fixture(scope="module")
def company(tmp_path_factory):
    """A tiny simulated company at one as_of, its fit, and probabilities as a feature."""
    from pqlml.project import build_features, open_project
    from pqlml.rules import fit_flags
    from pqlml.simulate import simulate

    sim = simulate(n_accounts=80, seed=3, out=tmp_path_factory.mktemp("tiers"), months=5)
    project = open_project(load_config(sim.config))
    X = build_features(project, as_of=["2024-05-01"])
    X = X.copy()                                       # one block: no fragmented insert
    X["p_model"] = np.random.default_rng(4).random(len(X)) ** 2
    fit = fit_flags(project.with_attributes(X), project.config.fit)["fit"]
    return project, X, fit


@pytest.mark.parametrize("method", ["rules", "match_rules", "capacity", "precision"])
def test_rules_backtest_and_scoring_give_the_same_tiers(company, method):
    """The same probabilities and fit through each path. The rules path flags, with a rule on
    the probability, the rows that the cutpoint computed here independently flags."""
    from pqlml.backtest import tier_table
    from pqlml.rules import assign
    from pqlml.score import _described, _tiers

    project, X, fit = company
    p = X.p_model.to_numpy()
    cut = float({"capacity": np.sort(p)[::-1][9],        # the top capacity.per_period = 10
                 "precision": _brute_force(p, 0.45)}.get(method, 0.3))
    cfg = dataclasses.replace(project.config, rules={"hot": f"p_model >= {cut!r}"},
                              tiers=TiersConfig("hot", method, 0.45), capacity=CapacityConfig(10))
    project = dataclasses.replace(project, config=cfg)

    by_rules = assign(project.with_attributes(X), settings=cfg, leads=project.leads()).tier
    halves = [X.iloc[:len(X) // 2], X.iloc[len(X) // 2:]]       # scored in two batches
    by_scoring = _tiers(project, [_described(project, h, "account") for h in halves], p).tier
    rows = pd.DataFrame({"fold": 0, "p_model": p, "rule_flag": p >= cut, "fit": fit})
    by_backtest = tier_table(rows, TierPolicy.from_config(cfg))["model"]

    assert by_rules.tolist() == by_scoring.tolist() == by_backtest.tolist()
    assert {"tier_1", "tier_2", "tier_3"} <= set(by_rules) <= set(TIERS)
    assert (by_rules.isin(["tier_1", "tier_3"])).sum() == (p >= cut).sum()


def test_the_policy_and_the_model_import_no_stage_downstream():
    """tiers is imported by rules, model, backtest and scoring, so it imports none of them;
    the model no longer reaches the rules (nor, through them, the project)."""
    import subprocess
    import sys

    code = ("import sys, pqlml.tiers, pqlml.model; print(sorted(m for m in sys.modules if m in "
            "('pqlml.project', 'pqlml.rules', 'pqlml.backtest', 'pqlml.score')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
