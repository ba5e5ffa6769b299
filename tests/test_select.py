"""Model selection forward in time (kind="auto") and the baselines every backtest fits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV

from pqlml.backtest import backtest, baseline_columns
from pqlml.model import LeadClassifier, Model
from pqlml.model._select import GRID, ForwardSplit
from pqlml.project import open_project
from simulated import company_config


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=1, max_size=60), st.integers(0, 10),
       st.integers(1, 4))
def test_forward_splits_train_only_on_rows_gap_days_before_the_validation_date(days, gap, n):
    dates = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(np.array(days) * 7, unit="D")
    splits = list(ForwardSplit(n, gap_days=gap).split(dates, groups=dates))
    distinct = np.sort(np.unique(dates))
    assert len(splits) <= min(n, len(distinct))
    for train, test in splits:
        day = dates[test[0]]
        assert (dates[test] == day).all() and day in distinct[-n:]
        assert len(train) and (dates[train] <= day - pd.Timedelta(days=gap)).all()
        assert (dates[train] < day).all()


def _rows(seed=0, n=1600, periods=8):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({f"x{j}": rng.poisson(2, n) for j in range(12)})
    X["x0"] = X.x0 + rng.poisson(3, n)
    logit = -3 + 0.6 * np.log1p(X.x0) + 0.4 * np.log1p(X.x1)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    as_of = np.repeat(pd.date_range("2024-01-01", periods=periods, freq="MS", tz="UTC"),
                      n // periods)
    return X, y, pd.Series(as_of)


def test_auto_chooses_what_grid_search_chooses_on_the_same_forward_splits():
    """An independent computation: scikit-learn's GridSearchCV over the same candidates
    (uncalibrated: a validation date's ranking does not depend on calibration)."""
    X, y, as_of = _rows()
    clf = LeadClassifier(kind="auto", gap_days=28).fit(X, y, as_of=as_of)
    grid = [{"kind": [c["kind"]], **({"C": [c["C"]]} if "C" in c else {})} for c in GRID]
    search = GridSearchCV(LeadClassifier(calibration="none"), grid, scoring="roc_auc",
                          cv=ForwardSplit(2, gap_days=28), refit=False)
    search.fit(X, y, groups=as_of, as_of=as_of)
    assert clf.kind_ == search.best_params_["kind"]
    assert clf.C_ == search.best_params_.get("C", 1.0)
    ours = [row["roc_auc"] for row in clf.selection_]
    assert ours == pytest.approx(list(search.cv_results_["mean_test_score"]))
    # validated on the two latest dates only, each trained on dates >= 28 days before
    assert clf.selection_[0]["validated_on"] == ["2024-07-01", "2024-08-01"]


def test_auto_learns_each_splits_directions_from_its_training_rows_only():
    """On the two validation dates only, more of a usage column goes with fewer outcomes:
    the directions of every row say -1 for it, those of the earlier rows +1. The choice must
    not see the validation dates through the directions: its scores are GridSearchCV's,
    whose every fit learns its directions from its own training rows."""
    from pqlml.model._monotone import directions

    X, y, as_of = _rows()
    X = X.rename(columns={"x0": "events_x0_30d", "x2": "events_x2_30d"})
    late = (as_of >= pd.Timestamp("2024-07-01", tz="UTC")).to_numpy()
    y = y.copy()
    noise = np.random.default_rng(3).normal(0, 0.5, late.sum())
    y[late] = (X.events_x2_30d[late] + noise < 1.5).astype(int)
    names = np.array(X.columns)
    assert directions(X.to_numpy(float), y, names)[2] == -1
    assert directions(X.to_numpy(float)[~late], y[~late], names)[2] == 1
    clf = LeadClassifier(kind="auto", gap_days=28).fit(X, y, as_of=as_of)
    grid = [{"kind": [c["kind"]], **({"C": [c["C"]]} if "C" in c else {})} for c in GRID]
    search = GridSearchCV(LeadClassifier(calibration="none"), grid, scoring="roc_auc",
                          cv=ForwardSplit(2, gap_days=28), refit=False)
    search.fit(X, y, groups=as_of, as_of=as_of)
    ours = [row["roc_auc"] for row in clf.selection_]
    assert ours == pytest.approx(list(search.cv_results_["mean_test_score"]), abs=1e-12)
    assert clf.monotone_[2] == -1                  # the final model learns from every row


def test_auto_without_a_usable_split_takes_the_first_candidate():
    X, y, as_of = _rows(periods=2)
    clf = LeadClassifier(kind="auto", gap_days=90, calibration="none").fit(X, y, as_of=as_of)
    assert (clf.kind_, clf.C_) == (GRID[0]["kind"], GRID[0]["C"])
    assert all(row["roc_auc"] is None for row in clf.selection_)


def test_an_auto_model_saves_and_loads_with_its_choice(tmp_path):
    X, y, as_of = _rows()
    frame = X.assign(as_of=as_of, conversion=y)
    model = Model.fit(frame, "conversion", kind="auto", gap_days=28)
    assert model.kind == model.estimator.kind_ in ("logistic", "gradient_boosting")
    assert len(model.trained_on["selection"]) == len(GRID)
    back = Model.load(model.save(tmp_path / "m.skops"))
    assert back.kind == model.kind and back.estimator.C_ == model.estimator.C_
    assert np.allclose(back.predict(frame), model.predict(frame))


@pytest.fixture(scope="module")
def project(shared_company, tmp_path_factory):
    sim = shared_company(n_accounts=1_500, seed=4, months=12)
    extra = "[model]\nkind = \"auto\"\ntest_periods = 3\nbootstrap = 20\n"
    return open_project(company_config(sim, tmp_path_factory.mktemp("select"), extra))


def test_each_fold_chooses_on_its_own_training_dates_and_baselines_are_refitted(project,
                                                                               tmp_path):
    cfg, outcome = project.config, project.config.outcomes.target
    frame = project.snapshots(outcome)
    found = backtest(frame, outcome, settings=cfg, truth=project.truth())
    m, rows = found.metrics, found.rows
    for fold in m["folds"]:
        chosen = fold["model_chosen"]
        assert chosen["kind"] in ("logistic", "gradient_boosting")
        first, last = fold["train_as_of"]
        limit = pd.Timestamp(fold["as_of"]) - pd.Timedelta(days=cfg.labels.horizon_days)
        for row in chosen["candidates"]:
            for day in row["validated_on"]:      # never a test period: inside the training
                assert first <= day <= last and pd.Timestamp(day) <= limit
        best = max((r for r in chosen["candidates"] if r["roc_auc"] is not None),
                   key=lambda r: r["roc_auc"])
        assert (best["kind"], best.get("C")) == (chosen["kind"], chosen.get("C"))
    # the baselines: in metrics with CIs, and the generic one equal to an independent fit
    for name in ("generic_logistic", "rfm_logistic"):
        assert len(m[name]["roc_auc_ci"]) == 2 and m[name]["converters_captured"] >= 0
        assert m[name]["roc_auc"] == pytest.approx(roc_auc_score(rows[outcome],
                                                                 rows[f"p_{name}"]))
    cols = baseline_columns(frame.columns)["generic_logistic"]
    assert "active_users_30d" in cols and any(c.endswith("_prev_30d") for c in cols)
    fold = m["folds"][-1]
    day = frame.as_of.dt.strftime("%Y-%m-%d")
    train = frame[(day >= fold["train_as_of"][0]) & (day <= fold["train_as_of"][1])]
    test = rows[rows.fold == fold["fold"]]
    z = lambda d: np.log1p(np.clip(d[cols].fillna(train[cols].median()).to_numpy(float), 0, None))
    mean, sd = z(train).mean(axis=0), z(train).std(axis=0)
    sd[sd == 0] = 1
    lr = LogisticRegression(max_iter=2000).fit((z(train) - mean) / sd, train[outcome])
    expected = lr.predict_proba((z(test) - mean) / sd)[:, 1]
    assert np.allclose(test.p_generic_logistic, expected, atol=1e-4)
    found.write(tmp_path)             # the report's table and per-fold AUCs name them
    report = (tmp_path / "report.md").read_text()
    header = next(line for line in report.splitlines() if line.startswith("| | model |"))
    assert "| generic_logistic | rfm_logistic | oracle |" in header
    assert "generic_logistic AUC | rfm_logistic AUC" in report
