"""Models, tiers from probabilities, metrics and forward-in-time backtests."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from pqlml.backtest import backtest, rolling_folds
from pqlml.cli import main
from pqlml.errors import PqlmlError
from pqlml.model import (Model, bootstrap_ci, expected_calibration_error, score_metrics,
                         top_k_capture, train)
from pqlml.project import open_project
from pqlml.simulate import simulate
from pqlml.tiers import TierPolicy
from simulated import run_backtest


@settings(max_examples=40, deadline=None)
@given(st.lists(st.dates(min_value=pd.Timestamp("2023-01-01").date(),
                         max_value=pd.Timestamp("2025-12-01").date()), min_size=2, max_size=20,
                unique=True), st.integers(1, 60), st.integers(1, 8))
def test_folds_go_forward_with_a_gap_of_at_least_the_horizon(dates, horizon, periods):
    try:
        folds = rolling_folds(dates, horizon_days=horizon, test_periods=periods, min_train=1)
    except PqlmlError:
        return
    tests = [pd.Timestamp(t) for _, t in folds]
    assert tests == sorted(tests)
    for train, test in folds:
        assert all(pd.Timestamp(d) + pd.Timedelta(days=horizon) <= pd.Timestamp(test)
                   for d in train)


def test_metrics_match_independent_computations():
    rng = np.random.default_rng(3)
    p = rng.random(2000)
    y = (rng.random(2000) < p).astype(int)
    m = score_metrics(y, p)
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    assert m["brier"] == pytest.approx(np.mean((p - y) ** 2))
    assert m["ece"] < 0.05                               # calibrated by construction
    assert expected_calibration_error(y, np.clip(p + 0.2, 0, 1)) > 0.1
    order = np.argsort(-p)
    assert top_k_capture(y, p, 100) == y[order[:100]].sum()
    lo, hi = bootstrap_ci(lambda i: y[i].mean(), np.arange(2000) % 400, reps=100)
    assert lo < y.mean() < hi


@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 12)), min_size=1, max_size=60))
@settings(max_examples=200, deadline=None)
def test_metrics_equal_scikit_learns_with_ties(rows):
    """pqlml computes the bootstrap's metrics itself (one sort); scikit-learn is the
    reference, on scores with many ties and on one-class samples."""
    y = np.array([r[0] for r in rows])
    p = np.array([r[1] for r in rows]) / 12 * 0.98 + 0.01
    m = score_metrics(y, p)
    if 0 < y.sum() < len(y):
        assert m["roc_auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
        assert m["pr_auc"] == pytest.approx(average_precision_score(y, p), abs=1e-12)
    else:
        assert np.isnan(m["roc_auc"]) and np.isnan(m["pr_auc"])
    assert m["brier"] == pytest.approx(brier_score_loss(y, p), abs=1e-12)
    assert m["log_loss"] == pytest.approx(log_loss(y, p, labels=[0, 1]), abs=1e-12)


@pytest.fixture(scope="module")
def company(tmp_path_factory):
    out = tmp_path_factory.mktemp("model")
    sim = simulate(n_accounts=3_000, seed=9, out=out, months=14)
    text = sim.config.read_text() + "\n[model]\ntest_periods = 3\nbootstrap = 30\n"
    sim.config.write_text(text)
    return sim.config


def test_backtest_writes_metrics_report_and_plots(company, tmp_path):
    from pqlml.model import LeadClassifier

    found = run_backtest(company, kind=LeadClassifier(kind="logistic"))  # its kind and calibration
    with pytest.raises(PqlmlError, match=r"none was written. Fix: call .write\(out\) first"):
        found.log_to_mlflow()
    found.write(tmp_path)
    metrics, rows = found.metrics, found.rows
    assert metrics["kind"] == "logistic"
    m = json.loads((tmp_path / "metrics.json").read_text())
    for name in ("model", "rules", "best_single_rule", "oracle"):
        for key in ("volume", "converters_captured"):
            assert key in m[name], (name, key)
    for name in ("model", "rules", "best_single_rule", "oracle"):
        for key in ("roc_auc", "pr_auc", "brier", "ece"):
            assert key in m[name] and len(m[name][f"{key}_ci"]) == 2
    assert m["model"]["volume"] == m["rules"]["volume"] == int(rows.rule_flag.sum())
    assert len(m["folds"]) == 3 and all("model" in f and "rules" in f for f in m["folds"])
    # the oracle is the truth: it must rank better than the folk rule
    assert m["oracle"]["roc_auc"] > m["rules"]["roc_auc"]
    assert m["model"]["roc_auc"] > m["rules"]["roc_auc"]
    # pooled AUC equals an independent computation on the pooled rows
    assert m["model"]["roc_auc"] == pytest.approx(roc_auc_score(rows.conversion, rows.p_model))
    # converters found at the rules' volume, period by period, computed independently
    found = 0
    for _, g in rows.groupby("fold"):
        top = np.argsort(-g.p_model.to_numpy(), kind="stable")[:int(g.rule_flag.sum())]
        found += int(g.conversion.to_numpy()[top].sum())
    assert m["model"]["converters_captured"] == found
    assert m["rules"]["converters_captured"] == int(rows.conversion[rows.rule_flag.astype(bool)].sum())
    lo, hi = m["model"]["converters_captured_ci"]
    assert lo <= found <= hi
    for f in ("report.md", "gains.png", "calibration.png", "tiers.png"):
        assert (tmp_path / f).stat().st_size > 500


def test_train_saves_a_model_that_guards_its_schema(company, tmp_path, capsys):
    assert main(["train", "--config", str(company), "--out", str(tmp_path / "m.skops"),
                 "--kind", "logistic", "--no-track"]) == 0
    model = Model.load(tmp_path / "m.skops")
    assert model.kind == "logistic" and len(model.features) > 80
    frame = pd.DataFrame({f: [0.0] for f in model.features[:-2]})
    with pytest.raises(PqlmlError, match=rf"lacks 2 feature\(s\).*{model.features[-1]}"):
        model.predict(frame)
    (tmp_path / "junk.skops").write_text("not a model")
    with pytest.raises(PqlmlError, match="is not a pqlml model"):
        Model.load(tmp_path / "junk.skops")


def test_too_short_a_schedule_is_a_clear_error(tmp_path):
    sim = simulate(n_accounts=200, seed=1, out=tmp_path, months=3)
    with pytest.raises(PqlmlError, match="No backtest fold has 3 training dates"):
        run_backtest(sim.config)


@pytest.mark.parametrize("method", ["capacity", "match_rules", "precision"])
def test_model_intent_by_each_tier_method(method):
    from pqlml.backtest import model_intent

    rng = np.random.default_rng(5)
    rows = pd.DataFrame({"fold": np.repeat([0, 1, 2], 300), "p_model": rng.random(900),
                         "rule_flag": rng.random(900) < 0.1})
    rows["conversion"] = (rng.random(900) < rows.p_model ** 3).astype(int)
    policy = TierPolicy(method=method, capacity=25, precision_target=0.7)
    flags = model_intent(rows, policy)
    per = flags.groupby(rows.fold).sum()
    if method == "capacity":
        assert (per == 25).all()
    elif method == "match_rules":
        assert (per == rows.rule_flag.groupby(rows.fold).sum()).all()
    else:        # each period: the largest top set expected (mean p) to convert at the target
        for f in (0, 1, 2):
            p = np.sort(rows.p_model[rows.fold == f].to_numpy())[::-1]
            k = per[f]
            assert 0 < k < len(p) and p[:k].mean() >= 0.7 > p[:k + 1].mean()
            assert (flags[rows.fold == f] == (rows.p_model[rows.fold == f] >= p[k - 1])).all()


def test_a_horizon_longer_than_the_data_is_a_clear_error(tmp_path):
    sim = simulate(n_accounts=200, seed=1, out=tmp_path, months=4)
    sim.config.write_text(sim.config.read_text().replace("horizon_days = 28", "horizon_days = 400"))
    with pytest.raises(PqlmlError, match="every as_of's 400-day horizon runs past the end"):
        run_backtest(sim.config)


@pytest.fixture(scope="module")
def small_company(tmp_path_factory):
    return simulate(n_accounts=600, seed=2, out=tmp_path_factory.mktemp("entities"),
                    months=12).config


@pytest.mark.parametrize("entity", ["account", "user"])
def test_only_numeric_features_reach_the_estimator(small_company, tmp_path, monkeypatch, entity):
    """For both entities: the estimator sees exactly the numeric feature columns, never a key,
    as_of, a label or a text / datetime column."""
    from pqlml.labels import LABEL_COLUMNS
    from pqlml.model import LeadClassifier

    config = tmp_path / "pqlml.toml"
    text = small_company.read_text().replace('entity = "account"', f'entity = "{entity}"')
    config.write_text(text.replace('root = "."', f'root = "{small_company.parent}"'))
    seen = []
    real = LeadClassifier.fit

    def spy(self, X, y, **kw):
        seen.append(X)
        return real(self, X, y, **kw)
    monkeypatch.setattr(LeadClassifier, "fit", spy)
    frame = open_project(config).snapshots("conversion")
    model = train(frame, "conversion", kind="logistic")
    frame = frame.copy()        # one block per dtype: the assigns below add columns
    key = {"account": "account_id", "user": "user_id"}[entity]
    assert frame[key].dtype == object or pd.api.types.is_string_dtype(frame[key])
    X = seen[0]
    assert list(X.columns) == model.features
    assert list(model.estimator.feature_names_in_) == model.features
    assert model.estimator.n_features_in_ == len(model.features)
    # nothing but the key, as_of and the labels is left out; each feature is a number
    assert set(frame.columns) - set(model.features) == {key, "as_of"} | (
        set(LABEL_COLUMNS) & set(frame.columns))
    assert all(pd.api.types.is_numeric_dtype(X[c]) for c in X.columns)
    assert not {"account_id", "user_id", "entity_id", "as_of"} & set(X.columns)
    # asked for a key or a text column by name, fit refuses and names it
    with pytest.raises(PqlmlError, match=rf"numeric feature columns only.*{key}"):
        Model.fit(frame, "conversion", kind="logistic", features=[key, "events_30d"])
    with pytest.raises(PqlmlError, match=r"not numeric: industry \((object|str)"):
        Model.fit(frame.assign(industry="software"), "conversion", kind="logistic",
                  features=["events_30d", "industry"])
    with pytest.raises(PqlmlError, match="names 1 column\\(s\\) the frame lacks: nope"):
        Model.fit(frame, "conversion", features=["events_30d", "nope"])
    # a text column in the frame is never picked by default
    extra = Model.fit(frame.assign(industry="software", seen_at=frame.as_of), "conversion",
                      kind="logistic")
    assert extra.features == model.features


def test_backtest_names_an_estimator_it_cannot_use():
    from pqlml.config import config_from_dict

    cfg = config_from_dict({"rules": {"busy": "events_30d >= 3"},
                            "tiers": {"intent_rule": "busy"}}, ".")
    frame = pd.DataFrame({"account_id": ["a1", "a2"], "events_30d": [1, 5], "conversion": [0, 1],
                          "as_of": pd.to_datetime(["2024-01-01"] * 2, utc=True)})
    with pytest.raises(PqlmlError, match=r"'estimator' parameter of backtest must be a model "
                                         r"kind \(auto, logistic, gradient_boosting\) or a "
                                         r"LeadClassifier. Got int instead"):
        backtest(frame, "conversion", 3, settings=cfg)
    with pytest.raises(TypeError, match="'frame' parameter of backtest must be a DataFrame"):
        backtest("pqlml.toml", "conversion", settings=cfg)       # the old form: a config
