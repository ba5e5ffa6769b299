"""The model side at scale (issue 25): training on a weighted sample of negatives, its
calibration corrected, and scoring in batches."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from pqlml import runner
from pqlml.errors import PqlmlError
from pqlml.model import WEIGHT, LeadClassifier, Model
from pqlml.model._sample import keep_uniform, negative_rate, sample_rows
from pqlml.project import open_project
from pqlml.score import Scorer
from pqlml.simulate import simulate


def _limited(project, **model):
    """``project`` with ``[model]`` settings replaced (the budget forced small)."""
    cfg = project.config
    return dataclasses.replace(project, config=dataclasses.replace(
        cfg, model=dataclasses.replace(cfg.model, **model)), _frames={})


@pytest.fixture(scope="module")
def company(tmp_path_factory):
    """A company small enough to fit whole, opened once: its full labelled snapshots and a
    project whose budget is a quarter of them."""
    sim = simulate(n_accounts=1_500, seed=7, out=tmp_path_factory.mktemp("scale"), months=10)
    project = open_project(sim.config, cache=False)
    full = project.snapshots()
    small = _limited(project, max_training_rows=len(full) // 4, kind="logistic",
                     test_periods=2, bootstrap=10)
    return small, full


def _synthetic(n_per_date=6_000, dates=8, seed=0):
    """Rows whose outcome follows a known logistic in two features (rate ~3%)."""
    rng = np.random.default_rng(seed)
    n = n_per_date * dates
    X = pd.DataFrame({"events_30d": rng.poisson(3, n).astype(float),
                      "active_users_30d": rng.poisson(2, n).astype(float)})
    logit = -5.2 + 0.35 * X.events_30d + 0.3 * X.active_users_30d
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    as_of = np.repeat(pd.date_range("2024-01-01", periods=dates, freq="MS", tz="UTC"),
                      n_per_date)
    return pd.DataFrame({"account_id": [f"a{i % n_per_date}" for i in range(n)],
                         "as_of": as_of, **X, "conversion": y})


def test_the_sample_keeps_every_positive_each_cutoff_at_the_rate_and_weights_1_over_rate():
    frame = _synthetic()
    rate = negative_rate(rows=len(frame), positives=int(frame.conversion.sum()), budget=12_000)
    sample = sample_rows(frame, "conversion", rate=rate, seed=3)
    pos = frame[frame.conversion == 1]
    assert sample[sample.conversion == 1].index.tolist() == pos.index.tolist()
    # time order kept: the frame's own order, each cutoff sampled at the one rate
    assert sample.index.is_monotonic_increasing and sample.as_of.is_monotonic_increasing
    negatives = frame[frame.conversion == 0].groupby("as_of").size()
    kept = sample[sample.conversion == 0].groupby("as_of").size()
    sd = np.sqrt(negatives * rate * (1 - rate))
    assert (abs(kept - negatives * rate) < 4 * sd).all()
    w = sample[WEIGHT]
    assert (w[sample.conversion == 1] == 1).all()
    assert np.allclose(w[sample.conversion == 0], 1 / rate)
    # the weighted sample counts the population: its weight per cutoff is the cutoff's rows
    total = sample.groupby("as_of")[WEIGHT].sum()
    assert np.allclose(total, frame.groupby("as_of").size(), rtol=0.05)
    # a row's fate is its own: one cutoff sampled alone keeps the same rows
    one = frame[frame.as_of == frame.as_of.iloc[-1]]
    alone = sample_rows(one, "conversion", rate=rate, seed=3)
    assert alone.index.tolist() == sample[sample.as_of == one.as_of.iloc[0]].index.tolist()
    assert not np.array_equal(keep_uniform(frame.account_id, frame.as_of, 3),
                              keep_uniform(frame.account_id, frame.as_of, 4))


def test_the_budget_must_leave_room_for_negatives():
    assert negative_rate(rows=100, positives=10, budget=100) == 1.0
    with pytest.raises(PqlmlError, match=r"max_training_rows = 50 .* 60 positives"):
        negative_rate(rows=1_000, positives=60, budget=50)


@pytest.mark.parametrize("kind", ["logistic", "gradient_boosting"])
def test_a_weighted_sample_predicts_the_rate_forward_and_ranks_as_well(kind):
    """On rows whose truth is known: trained on the first 7 dates, tested on the 8th. The
    sampled model's mean probability matches the observed rate (as the unsampled model's
    does); the same sample unweighted is off by about 1 / rate, so the check can fail."""
    frame = _synthetic()
    train, test = frame[frame.as_of < frame.as_of.max()], frame[frame.as_of == frame.as_of.max()]
    rate = negative_rate(rows=len(train), positives=int(train.conversion.sum()), budget=6_000)
    assert rate < 0.15
    sample = sample_rows(train, "conversion", rate=rate)
    fit = dict(kind=kind, features=["events_30d", "active_users_30d"], gap_days=0)
    whole, sampled = Model.fit(train, "conversion", **fit), Model.fit(sample, "conversion", **fit)
    naive = Model.fit(sample.drop(columns=WEIGHT), "conversion", **fit)
    observed = test.conversion.mean()
    se = np.sqrt(observed * (1 - observed) / len(test))
    p_whole, p_sampled = whole.predict(test), sampled.predict(test)
    assert abs(p_whole.mean() - observed) < 4 * se
    assert abs(p_sampled.mean() - observed) < 4 * se
    assert naive.predict(test).mean() > 3 * observed
    truth = 1 / (1 + np.exp(-(-5.2 + 0.35 * test.events_30d + 0.3 * test.active_users_30d)))
    assert abs(p_sampled.mean() - truth.mean()) < 4 * se
    auc_whole = roc_auc_score(test.conversion, p_whole)
    assert roc_auc_score(test.conversion, p_sampled) > auc_whole - 0.02
    assert sampled.trained_on["weighted"] and "weighted" not in whole.trained_on
    assert sampled.trained_on["rows"] == len(sample)


def test_weights_reach_the_level_the_reference_and_must_be_positive():
    frame = _synthetic(n_per_date=2_000, dates=4)
    X, y = frame[["events_30d", "active_users_30d"]], frame.conversion.to_numpy()
    w = np.where(y == 1, 1.0, 5.0)
    clf = LeadClassifier(kind="logistic").fit(X, y, as_of=frame.as_of, sample_weight=w)
    # the reference is the weighted median (independently: a row repeated by its weight)
    repeated = np.repeat(X.events_30d.to_numpy(), w.astype(int))
    assert clf.reference_[0] == np.sort(repeated)[(len(repeated) - 1) // 2]
    with pytest.raises(ValueError, match="sample_weight"):
        LeadClassifier(kind="logistic").fit(X, y, as_of=frame.as_of, sample_weight=w[:-1])
    with pytest.raises(PqlmlError, match="two classes among the rows weighted above 0"):
        LeadClassifier(kind="logistic").fit(X, y, as_of=frame.as_of, sample_weight=w * y)


def test_training_snapshots_sample_the_full_snapshots_batch_by_batch(company):
    project, full = company
    frame, record = project.training_snapshots(whole=2)
    key = ["account_id", "as_of"]
    assert record["labelled_rows"] == len(full)
    assert record["labelled_positives"] == int(full.conversion.sum())
    in_sample = frame[frame[WEIGHT] > 0]
    assert record["rows_kept"] == len(in_sample)
    assert abs(len(in_sample) - project.config.model.max_training_rows) < 0.15 * len(in_sample)
    assert int(in_sample.conversion.sum()) == int(full.conversion.sum())   # every positive
    # the two last cutoffs whole, their negatives outside the sample weighted 0
    last = sorted(full.as_of.unique())[-2:]
    assert (frame[frame.as_of.isin(last)].groupby("as_of").size()
            == full[full.as_of.isin(last)].groupby("as_of").size()).all()
    assert record["evaluation_only_rows"] == int((frame[WEIGHT] == 0).sum()) > 0
    # each row is the full build's (features as float32), in the same (key, as_of) order
    both = frame.merge(full, on=key, suffixes=("", "_full"), validate="one_to_one")
    assert len(both) == len(frame) and frame[key].equals(frame.sort_values(key)[key])
    for c in ("events_30d", "active_users_30d", "account_age_days", "engagement_score"):
        assert frame[c].dtype == np.float32
        np.testing.assert_allclose(both[c], both[f"{c}_full"], rtol=1e-6)
    assert (both.conversion == both.conversion_full).all()


def test_under_the_budget_the_snapshots_are_used_whole(company):
    project, full = company
    frame, record = _limited(project, max_training_rows=len(full)).training_snapshots()
    assert record is None and WEIGHT not in frame and len(frame) == len(full)


def test_train_records_the_sample_and_batched_scores_equal_unbatched(company, tmp_path):
    project, full = company
    trained = runner.train(project, tmp_path / "m.skops", track=False)
    sample = trained.model.trained_on["sample"]
    assert sample["rows_kept"] == trained.model.trained_on["rows"] < len(full)
    assert sample["negative_weight"] == pytest.approx(1 / sample["negative_rate"])
    scorer = Scorer.load(tmp_path / "m.skops")
    assert scorer.model.trained_on["sample"] == sample          # kept in the file
    X = project.features([full.as_of.max().date()])
    whole = scorer.score(X, project=project, batch_rows=10 ** 9).scores
    for rows in (97, 500):
        pd.testing.assert_frame_equal(scorer.score(X, project=project, batch_rows=rows).scores,
                                      whole)
    assert whole.tier.nunique() > 1 and (whole.reason_1 != "").all()


@pytest.mark.slow
def test_the_backtest_fits_on_the_sample_and_tests_whole_cutoffs(company, tmp_path):
    project, full = company
    found = runner.backtest(project, tmp_path / "bt", track=False)
    assert found.metrics["sample"]["rows_kept"] < len(full)
    for fold in found.metrics["folds"]:
        assert fold["train_sampled"]
        day = pd.Timestamp(fold["as_of"], tz="UTC")
        tested = found.rows[found.rows.as_of == day]
        assert len(tested) == int((full.as_of == day).sum())
    # the model's probabilities are rates: its mean near the tested cutoffs' rate
    rows = found.rows
    assert abs(rows.p_model.mean() - rows.conversion.mean()) < 0.5 * rows.conversion.mean()
