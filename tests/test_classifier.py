"""LeadClassifier is a scikit-learn classifier: the estimator checks, clone, Pipeline,
cross_validate over time, GridSearchCV; its time-aware calibration matches the scheme
computed by hand and never inverts the ranking."""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq
import pandas as pd
import pytest
import sklearn
from sklearn.base import clone, is_classifier
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, TimeSeriesSplit, cross_validate
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.estimator_checks import parametrize_with_checks

from pqlml.errors import PqlmlError
from pqlml.model import LeadClassifier, make_estimator
from pqlml.model._estimators import MedianImputer, fit_calibrator, level_rows
from pqlml.model._monotone import directions

# Full checks on logistic (calibrated and not) and gradient boosting (calibrated): about 6 s
# in all, gradient boosting ~5 of them. Uncalibrated boosting passes every check too (3.5 s
# more, measured), so it is left out: what the two kinds share is the calibration code.
ESTIMATORS = [LeadClassifier(kind="logistic"), LeadClassifier(kind="gradient_boosting"),
              LeadClassifier(kind="logistic", calibration="none"),
              LeadClassifier(kind="auto", calibration="none")]
SORTED = ("its rows are sorted by class: the calibration rows (the last quarter, rows taken "
          "in time order) hold one class, and fit refuses rather than calibrate on one class")


def expected_failures(estimator) -> dict:
    """The checks a calibrated LeadClassifier fails by design, each with the reason."""
    weighted = {"check_sample_weight_equivalence_on_dense_data": (
        "a row weighted 2 is not two rows in time: without as_of each row is its own date "
        "(the calibration quarter, Platt's level rows and the monotone test count rows), "
        "and the reference is the lower weighted median")}
    if estimator.calibration == "none":
        return weighted
    failures = {"check_classifier_data_not_an_array": f"12 rows; {SORTED}",
                "check_positive_only_tag_during_fit": f"iris made binary; {SORTED}",
                "check_sample_weights_not_overwritten": f"16 rows; {SORTED}",
                "check_sample_weights_shape": f"16 rows; {SORTED}", **weighted}
    failures["check_class_weight_classifiers"] = (
        "calibration is unweighted, so probabilities stay rates (Platt's level is the "
        "training rows' rate): class_weight reorders the scores but the calibrated "
        "predictions do not follow the weights")
    return failures


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failures)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@parametrize_with_checks([MedianImputer()])
def test_median_imputer_estimator_checks(estimator, check):
    check(estimator)


def test_median_imputer_equals_scikit_learns_median_imputation():
    from sklearn.impute import SimpleImputer

    rng = np.random.default_rng(4)
    X = rng.lognormal(size=(501, 7)) * rng.integers(0, 3, size=(501, 7))   # ties, zeros
    X[rng.random(X.shape) < 0.3] = np.nan
    X[:250, 2] = np.nan                                                   # mostly missing
    ours, theirs = MedianImputer().fit(X), SimpleImputer(strategy="median").fit(X)
    np.testing.assert_array_equal(ours.statistics_, theirs.statistics_)
    np.testing.assert_array_equal(ours.transform(X[::-1]), theirs.transform(X[::-1]))
    assert not np.isnan(X).all(axis=0).any() and np.isnan(ours.transform(X)).sum() == 0


def drifting(n_dates: int = 6, per: int = 200, seed: int = 0):
    """Rows in time order over monthly as_of dates; the base rate rises month by month."""
    rng = np.random.default_rng(seed)
    n = n_dates * per
    as_of = pd.Series(np.repeat(pd.date_range("2024-01-01", periods=n_dates, freq="MS",
                                              tz="UTC"), per))
    X = pd.DataFrame({"events_30d": rng.poisson(4, n), "users": rng.poisson(2, n).astype(float),
                      "pricing_page": rng.random(n) < 0.2})
    X.loc[rng.random(n) < 0.05, "users"] = np.nan
    z = 0.4 * X.events_30d + 1.5 * X.pricing_page + 0.3 * as_of.dt.month - 4
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int).to_numpy()
    return X, y, as_of


def by_hand(kind: str, calibration: str, X: pd.DataFrame, y, as_of) -> np.ndarray:
    """pqlml's calibration scheme written out with scikit-learn and scipy alone: the latest
    quarter of the dates held out, a model of the earlier ones scores it, Platt's slope (a
    logistic curve on the logit) or isotonic fitted there maps the scores of a model refitted
    on every row; Platt's level makes the mean probability of every row their rate. Each
    model is held to the directions its own rows give (``monotone="auto"``)."""
    dates = np.sort(as_of.unique())
    late = (as_of >= dates[-max(1, len(dates) // 4)]).to_numpy()
    early_model = make_estimator(kind, monotone=directions(X[~late].to_numpy(float), y[~late],
                                                           X.columns)).fit(X[~late], y[~late])
    full = make_estimator(kind, monotone=directions(X.to_numpy(float), y, X.columns)).fit(X, y)

    def logit(p):
        return np.log(p / (1 - p))[:, None]
    held, s = early_model.predict_proba(X[late])[:, 1], full.predict_proba(X)[:, 1]
    if calibration == "isotonic":
        return IsotonicRegression(out_of_bounds="clip").fit(held, y[late]).predict(s)
    slope = LogisticRegression(C=1e6, max_iter=1000).fit(logit(held), y[late]).coef_[0, 0]
    # the level: the intercept whose mean probability over the level's rows is their rate
    rows = level_by_hand(as_of, y, late)
    level = brentq(lambda c: np.mean(1 / (1 + np.exp(-(slope * logit(s[rows])[:, 0] + c))))
                   - y[rows].mean(), -50, 50)
    return 1 / (1 + np.exp(-(slope * logit(s)[:, 0] + level)))


def level_by_hand(as_of: pd.Series, y, late) -> np.ndarray:
    """Every row, or the calibration quarter's (``late``) when, month by month from the
    third, the latest quarter of the earlier months predicted the month's rate better
    (squared error, each month once) than all earlier months did."""
    months = [y[(as_of == d).to_numpy()] for d in np.sort(as_of.unique())]
    err = {"every": 0.0, "recent": 0.0}
    for i in range(2, len(months)) if len(months) >= 4 else ():
        earlier, recent = np.concatenate(months[:i]), np.concatenate(months[i - max(1, i // 4):i])
        err["every"] += (months[i].mean() - earlier.mean()) ** 2
        err["recent"] += (months[i].mean() - recent.mean()) ** 2
    return late if err["recent"] < err["every"] else np.ones(len(y), dtype=bool)


def test_each_date_counts_once_in_choosing_the_level():
    """Large months at a low rate, then small months at a rising one: weighted by rows, the
    large fifth month (6%, after a small month at 30%) would outvote the rest and keep every
    row's level; each month counting once, the latest quarter's level is chosen."""
    sizes, percent = [3000, 3000, 3000, 100, 3000, 100, 100, 100], [5, 5, 5, 30, 6, 40, 50, 55]
    as_of = np.repeat(np.arange(8), sizes)
    y = np.concatenate([np.arange(n) < n * p // 100 for n, p in zip(sizes, percent)]).astype(int)
    late = as_of >= 6
    assert (level_rows(as_of, y) == late).all()
    assert (level_by_hand(pd.Series(as_of), y, late) == late).all()


def test_the_level_follows_a_trending_rate_and_ignores_a_seasonal_dip():
    """A rate that rises month after month sets the level from the latest quarter; a
    stable rate with one low month, from every row (the low month is not carried forward)."""
    X, y, as_of = drifting(n_dates=8, per=300)
    late = (as_of >= np.sort(as_of.unique())[-2]).to_numpy()
    trend = LeadClassifier(kind="logistic").fit(X, y, as_of=as_of).predict_proba(X)[:, 1]
    assert trend[late].mean() == pytest.approx(y[late].mean(), abs=1e-6)
    assert trend.mean() > y.mean() + 0.02                  # above the average of the past
    rng = np.random.default_rng(1)
    dip = (as_of.dt.month == 8).to_numpy()                 # the last month: a dip
    z = 0.4 * X.events_30d + 1.5 * X.pricing_page - 2 - 1.5 * dip
    y = (rng.random(len(z)) < 1 / (1 + np.exp(-z))).astype(int).to_numpy()
    stable = LeadClassifier(kind="logistic").fit(X, y, as_of=as_of).predict_proba(X)[:, 1]
    assert stable.mean() == pytest.approx(y.mean(), abs=1e-6)
    assert level_by_hand(as_of, y, late).all()


@pytest.mark.parametrize("kind, calibration", [("logistic", "platt"), ("logistic", "isotonic"),
                                               ("gradient_boosting", "platt")])
def test_the_as_of_path_is_pqlmls_time_aware_calibration(kind, calibration):
    X, y, as_of = drifting()
    clf = LeadClassifier(kind=kind, calibration=calibration).fit(X, y, as_of=as_of)
    if calibration == "platt":
        assert clf.calibrator_.coef_[0, 0] > 0                  # a real fit, not the fallback
    p = clf.predict_proba(X)
    assert p[:, 1] == pytest.approx(by_hand(kind, calibration, X, y, as_of), abs=1e-12)
    assert p.sum(axis=1) == pytest.approx(1)
    if calibration == "platt":    # the rising rate: the level is the latest months'
        late = (as_of >= np.sort(as_of.unique())[-1]).to_numpy()
        assert not level_by_hand(as_of, y, late)[~late].any()
        assert p[late, 1].mean() == pytest.approx(y[late].mean(), abs=1e-6)


def test_without_as_of_the_last_quarter_of_the_rows_calibrates():
    X, y, as_of = drifting(per=150)
    no_dates = LeadClassifier(kind="logistic").fit(X, y).predict_proba(X)
    each_row = LeadClassifier(kind="logistic").fit(X, y, as_of=np.arange(len(y)))
    assert no_dates == pytest.approx(each_row.predict_proba(X), abs=1e-15)
    one_date = LeadClassifier(kind="logistic").fit(X, y, as_of=np.zeros(len(y)))
    assert one_date.calibrator_ is None                 # one date: nothing later to calibrate on
    plain = make_estimator("logistic", monotone=one_date.monotone_).fit(X, y).predict_proba(X)
    assert one_date.predict_proba(X) == pytest.approx(plain, abs=1e-12)


def test_calibration_never_inverts_the_ranking_when_the_latest_months_disagree():
    """The held-out months rank the other way round: the Platt slope is fixed at 1, so the
    calibrated probabilities keep the model's order; isotonic is non-decreasing."""
    X, y, as_of = drifting()
    late = (as_of >= as_of.unique()[-1]).to_numpy()
    y = y.copy()
    y[late] = (X.events_30d[late] < 4).astype(int)                  # high usage converts less
    for calibration in ("platt", "isotonic"):
        clf = LeadClassifier(kind="logistic", calibration=calibration).fit(X, y, as_of=as_of)
        score = clf.base_estimator_.predict_proba(X.to_numpy(float))[:, 1]
        p = clf.predict_proba(X)[:, 1]
        order = np.argsort(score, kind="stable")
        assert np.all(np.diff(p[order]) >= 0)
    assert clf.calibrator_ is not None and isinstance(clf.calibrator_, IsotonicRegression)
    platt = LeadClassifier(kind="logistic").fit(X, y, as_of=as_of).calibrator_
    assert platt.coef_[0, 0] == 1.0


def test_platt_never_inverts_the_ranking_when_the_held_out_months_disagree():
    """Under drift the calibration months can rank the other way round; the calibrator keeps
    the model's order (slope fixed at 1) and only matches the held-out rate."""
    from pqlml.model._estimators import calibrate

    rng = np.random.default_rng(0)
    score = rng.uniform(0.01, 0.99, 2_000)
    y = (rng.uniform(size=2_000) < 1 - score).astype(int)        # high scores convert less
    platt = fit_calibrator("platt", score, y)
    p = calibrate(platt, score)
    assert np.all(np.diff(p[np.argsort(score)]) >= 0)             # order kept
    assert p.mean() == pytest.approx(y.mean(), abs=1e-6)          # level matched
    normal = fit_calibrator("platt", score, 1 - y)                # agreeing months: a real fit
    assert normal.coef_[0, 0] > 0


def test_fitted_attributes_labels_arrays_and_empty_input():
    X, y, as_of = drifting(per=100)
    labels = np.where(y == 1, "converted", "open")
    clf = LeadClassifier(kind="logistic").fit(X, labels, as_of=as_of)
    assert is_classifier(clf)
    assert list(clf.classes_) == ["converted", "open"]           # sorted: "open" is classes_[1]
    assert list(clf.feature_names_in_) == list(X.columns) and clf.n_features_in_ == 3
    p = clf.predict_proba(X)
    assert list(clf.predict(X)) == list(np.where(p[:, 1] > 0.5, "open", "converted"))
    assert p[:, 1] == pytest.approx(1 - LeadClassifier(kind="logistic").fit(
        X, y, as_of=as_of).predict_proba(X)[:, 1], abs=1e-6)     # the other class's rate
    arrays = LeadClassifier(kind="logistic").fit(X.to_numpy(float), y, as_of=as_of.to_numpy())
    assert not hasattr(arrays, "feature_names_in_")
    assert arrays.monotone_.tolist() == [0, 0, 0]        # no names: no usage column is known
    assert arrays.predict_proba(X.to_numpy(float)) == pytest.approx(
        LeadClassifier(kind="logistic", monotone="none").fit(X, y, as_of=as_of).predict_proba(X),
        abs=1e-12)
    assert clf.predict_proba(X.head(0)).shape == (0, 2) and clf.predict(X.head(0)).shape == (0,)


def test_bad_parameters_and_dates_are_clear_errors():
    X, y, as_of = drifting(per=50)
    with pytest.raises(PqlmlError, match="The 'kind' parameter of LeadClassifier must be one of "
                                         "auto, logistic, gradient_boosting. Got 'forest' "
                                         "instead"):
        LeadClassifier(kind="forest").fit(X, y)
    with pytest.raises(PqlmlError, match="The 'C' parameter of LeadClassifier must be a "
                                         "positive number. Got 0 instead"):
        LeadClassifier(kind="logistic", C=0).fit(X, y)
    with pytest.raises(PqlmlError, match="The 'calibration' parameter .* Got 'sigmoid'"):
        LeadClassifier(calibration="sigmoid").fit(X, y)
    with pytest.raises(PqlmlError, match="a date for each of the 300 rows of X. Got 299 values"):
        LeadClassifier(kind="logistic").fit(X, y, as_of=as_of[1:])
    y_late_negative = np.where(as_of >= as_of.max(), 0, y)
    with pytest.raises(PqlmlError, match=r"calibration part of the training data \(50 rows.*"
                                         r"0 positives: one class only"):
        LeadClassifier(kind="logistic").fit(X, y_late_negative, as_of=as_of)


def test_clone_keeps_the_parameters_and_drops_the_fit():
    X, y, as_of = drifting(per=50)
    clf = LeadClassifier(kind="logistic", calibration="isotonic", class_weight="balanced",
                         random_state=3).fit(X, y, as_of=as_of)
    twin = clone(clf)
    assert twin.get_params() == clf.get_params() and not hasattr(twin, "classes_")
    assert twin.fit(X, y, as_of=as_of).predict_proba(X) == pytest.approx(clf.predict_proba(X))


def test_in_a_pipeline_the_dates_reach_the_classifier():
    X, y, as_of = drifting(per=100)
    step = FunctionTransformer(lambda Z: Z * 2.0)
    pipe = Pipeline([("double", step), ("clf", LeadClassifier(kind="logistic"))])
    pipe.fit(X, y, clf__as_of=as_of)
    alone = LeadClassifier(kind="logistic").fit(X * 2.0, y, as_of=as_of)
    assert pipe.predict_proba(X) == pytest.approx(alone.predict_proba(X * 2.0), abs=1e-12)
    assert list(pipe.predict(X)) == list(alone.predict(X * 2.0))


def _auc_by_hand(X, y, as_of, splits):
    out = []
    for train, test in splits:
        clf = LeadClassifier(kind="logistic").fit(X.iloc[train], y[train], as_of=as_of[train])
        out.append(roc_auc_score(y[test], clf.predict_proba(X.iloc[test])[:, 1]))
    return np.array(out)


def test_cross_validate_over_time_with_the_dates_as_params():
    X, y, as_of = drifting(per=100)
    cv = TimeSeriesSplit(3)
    expected = _auc_by_hand(X, y, as_of.to_numpy(), cv.split(X))
    got = cross_validate(LeadClassifier(kind="logistic"), X, y, cv=cv, scoring="roc_auc",
                         params={"as_of": as_of})
    assert got["test_score"] == pytest.approx(expected, abs=1e-12)
    with sklearn.config_context(enable_metadata_routing=True):    # the routed way
        routed = LeadClassifier(kind="logistic").set_fit_request(as_of=True)
        again = cross_validate(routed, X, y, cv=cv, scoring="roc_auc", params={"as_of": as_of})
    assert again["test_score"] == pytest.approx(expected, abs=1e-12)


def test_grid_search_picks_the_calibration_that_scores_best():
    X, y, as_of = drifting(per=100)
    cv = TimeSeriesSplit(3)
    search = GridSearchCV(LeadClassifier(kind="logistic"),
                          {"calibration": ["platt", "isotonic"]}, cv=cv, scoring="neg_log_loss")
    search.fit(X, y, as_of=as_of)
    losses = {}
    for calibration in ("platt", "isotonic"):
        scores = cross_validate(LeadClassifier(kind="logistic", calibration=calibration), X, y,
                                cv=cv, scoring="neg_log_loss", params={"as_of": as_of})
        losses[calibration] = scores["test_score"].mean()
    assert search.best_params_["calibration"] == max(losses, key=losses.get)
    assert search.best_score_ == pytest.approx(max(losses.values()))
    assert isinstance(search.best_estimator_, LeadClassifier)
    assert search.best_estimator_.predict_proba(X).shape == (len(X), 2)
