"""Forward-in-time backtests: the model against the rules at the same sales volume.

Folds are rolling origins over the snapshot dates: each of the last
``model.test_periods`` as_of dates is a test period, and its model is trained on
the snapshots whose label window had closed by then (``as_of + horizon <= test
as_of``: a gap of at least the horizon, nothing shuffled). In every fold the
configured rule (``tiers.intent_rule``) flags some accounts; the model is scored
at that same volume (its top ones), and so are the best single-threshold signal
chosen on the fold's training data and two baselines an analyst would write, a generic
logistic and a recency / frequency / monetary logistic fitted on the fold's training rows
(:mod:`._baselines`). With ``kind="auto"`` each fold's model is chosen on that fold's own
training dates (:mod:`pqlml.model._select`; ``folds[i]["model_chosen"]`` records it). With
activation checkpoints and engagement weights configured, the "activated, then ranked by
engagement" playbook is scored the same way. On a simulated company the truth's
probabilities give the oracle (any world's, passed as ``truth``).

A user model (``project.entity = "user"``) is compared the same way, with two baselines
absent rather than faked, each said so in ``metrics["notes"]``: the rules, when the intent
rule reads account features (a team's ``active_users_30d``; the volume is then the sales
capacity, ``capacity.per_period`` a period), and the oracle (the simulator's truth is per
account: there is no per-user truth).

It runs on a project's labelled snapshots: ``backtest(project.snapshots(outcome), outcome,
"logistic", settings=project.config, truth=project.truth())``; the result's ``.write(out)``
writes the report and ``.log_to_mlflow()`` logs it (``pqlml backtest`` does both through
:func:`pqlml.runner.backtest`).

Examples
--------
>>> rolling_folds(["2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01"], horizon_days=28,
...               test_periods=2, min_train=1)
[(['2024-01-01', '2024-02-01'], '2024-03-01'), (['2024-01-01', '2024-02-01', '2024-03-01'], '2024-04-01')]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..discover._scan import candidates, scan
from ..errors import PqlmlError
from ..model import (KINDS, WEIGHT, LeadClassifier, Model, bootstrap_cis, feature_columns,
                     score_metrics, top_k_capture)
from ..rules import fit_flags, intent_rule_for
from ..schema import entity_key
from ._baselines import BASELINES, baseline_columns, fit_baselines
from ._plots import calibration_bins, calibration_plot, gains_plot, tier_plot
from ._report import (REPORT_FILES, backtest_page, comparison_table, model_intent, tier_table,
                      write_report)

__all__ = ["rolling_folds", "training_dates", "backtest", "Backtest", "model_intent", "tier_table",
           "write_report", "REPORT_FILES", "BASELINES", "baseline_columns", "gains_plot",
           "calibration_plot", "calibration_bins", "tier_plot", "backtest_page",
           "comparison_table"]

MIN_POSITIVES = 10
NO_INTENT_RULE = ("The backtest compares the model with the rules at the rules' volume, but "
                  "tiers.intent_rule is empty. Fix: name a rule in [rules], e.g. "
                  'intent_rule = "folk_pqa".')


def training_dates(dates, horizon_days: int, until) -> list:
    """The ``dates`` whose label window ``[as_of, as_of + horizon)`` closed by ``until``.

    Examples
    --------
    >>> training_dates(["2024-01-01", "2024-02-01", "2024-03-01"], 28, "2024-03-01")
    ['2024-01-01', '2024-02-01']
    """
    limit = pd.Timestamp(until) - pd.Timedelta(days=horizon_days)
    return [d for d in dates if pd.Timestamp(d) <= limit]


def rolling_folds(as_of_dates, *, horizon_days: int, test_periods: int, min_train: int = 3):
    """(training as_of dates, test as_of) pairs, oldest test first."""
    if horizon_days < 1:
        raise PqlmlError(f"The 'horizon_days' parameter of rolling_folds must be at least 1 "
                         f"(a label window of 0 days would let training see the test date). "
                         f"Got {horizon_days!r} instead.")
    dates = sorted({str(pd.Timestamp(d).date()) for d in as_of_dates})
    out = []
    for test in dates[-test_periods:]:
        train = training_dates(dates, horizon_days, test)
        if len(train) >= min_train:
            out.append((train, test))
    if not out:
        raise PqlmlError(f"No backtest fold has {min_train} training dates whose "
                         f"{horizon_days}-day label window closed before a test date among "
                         f"{len(dates)} snapshot dates ({dates[0]} .. {dates[-1]}). Fix: a "
                         f"longer schedule, or fewer model.test_periods.")
    return out


def _rule_probability(flag_train, y_train, flag_test, weights=None):
    """A rule as a calibrated step score: its training precision for flagged rows, the
    training rate of the rest for the others (``weights``: a sample's, the rates then the
    population's)."""
    w = np.ones(len(y_train)) if weights is None else np.asarray(weights, float)
    hit = np.average(y_train[flag_train], weights=w[flag_train]) if flag_train.any() else 0.0
    miss = np.average(y_train[~flag_train], weights=w[~flag_train]) if (~flag_train).any() else 0.0
    return np.where(flag_test, hit, miss)


def _best_single(train: pd.DataFrame, outcome: str, features, cfg) -> pd.Series:
    """The training data's best threshold rule (highest phi among significant ones with
    support >= 20): its ``feature``, ``threshold`` and ``rule``."""
    cands, _ = candidates(train, features, cfg.discover.counts, cfg.discover.quantiles,
                          cfg.features.windows)
    table = scan(train, outcome, cands)
    table = table[(table.q_value <= cfg.discover.alpha) & (table.support >= 20)]
    if table.empty:
        raise PqlmlError("No single-threshold rule is significant on a fold's training data. "
                         "Fix: train on a longer schedule.")
    best = table.sort_values("phi", ascending=False).iloc[0]
    return best


def _oracle(truth: pd.DataFrame | None, rows: pd.DataFrame, outcome: str,
            key: str) -> tuple[np.ndarray | None, str]:
    """The simulator's true probabilities of the test rows (``truth``: ``project.truth()``),
    or None with the reason (none when the data is not simulated)."""
    column = {"conversion": "p_convert", "hand_raise": "p_hand_raise"}.get(outcome)
    if column is None or truth is None or column not in truth.columns:
        return None, ""
    if key not in truth.columns:
        return None, (f"oracle: absent: the simulator's truth (snapshots.parquet) gives a "
                      f"probability per account and as_of, and there is no per-{key[:-3]} truth")
    t = truth[[key, "as_of", column]].copy()
    t["as_of"] = pd.to_datetime(t.as_of, utc=True).astype(rows.as_of.dtype)
    p = rows[[key, "as_of"]].merge(t, on=[key, "as_of"], how="left")[column]
    return (None, "") if p.isna().any() else (p.to_numpy(float), "")


@dataclass
class Backtest:
    """What :func:`backtest` found: ``metrics`` (what ``metrics.json`` holds: pooled figures
    with CIs per ranking, the same per fold, the settings it ran with) and ``rows`` (the
    pooled test rows, every score)."""

    metrics: dict
    rows: pd.DataFrame
    folder: Path | None = field(default=None, repr=False)   # where write() put the report

    def write(self, out: str | Path) -> list[Path]:
        """The report (:data:`REPORT_FILES`: ``metrics.json``, ``report.md``, ``report.html``
        and the plots) in folder ``out``; the paths."""
        write_report(self.metrics, self.rows, out)
        self.folder = Path(out)
        return [self.folder / name for name in REPORT_FILES]

    def log_to_mlflow(self) -> None:
        """Into the active MLflow run: the pooled and per-fold figures and the written report
        as artifacts (:func:`pqlml.track.log_backtest`)."""
        if self.folder is None:
            raise PqlmlError("Backtest.log_to_mlflow logs the report as artifacts, and none "
                             "was written. Fix: call .write(out) first.")
        from ..track import log_backtest
        log_backtest(self.metrics, self.folder)


def _recipe(estimator, settings) -> tuple[str, str, int]:
    """(kind, calibration, seed) of each fold's model: from a :class:`LeadClassifier`'s
    parameters, or the kind named (default ``model.kind``) with ``model.calibration``."""
    if isinstance(estimator, LeadClassifier):
        return estimator.kind, estimator.calibration, estimator.random_state
    if estimator is not None and not isinstance(estimator, str):
        raise PqlmlError(f"The 'estimator' parameter of backtest must be a model kind "
                         f"({', '.join(KINDS)}) or a LeadClassifier. Got "
                         f"{type(estimator).__name__} instead.")
    return estimator or settings.model.kind, settings.model.calibration, 0


def backtest(frame: pd.DataFrame, outcome: str, estimator=None, *, settings,
             truth: pd.DataFrame | None = None, attributes=None, progress=None) -> Backtest:
    """Run every fold on labelled snapshots; the model against the rules and baselines.

    Parameters
    ----------
    frame : DataFrame
        Labelled snapshots (``project.snapshots(outcome)``): the key, ``as_of``, the
        features and ``outcome``. With a ``sample_weight`` column (a sample,
        :meth:`pqlml.project.Project.training_snapshots`), each fold fits on the rows
        weighted above 0 with their weights (the model, the baselines and the rules'
        rates) and is evaluated on every row of its test cutoff, unweighted: the test
        cutoffs are kept whole.
    outcome : str
        The label to predict (``conversion``, ``hand_raise``, ``accepted``).
    estimator : str or LeadClassifier, optional
        Each fold's model: a kind (:data:`~pqlml.model.KINDS`; default ``model.kind``,
        calibrated by ``model.calibration``) or an unfitted
        :class:`~pqlml.model.LeadClassifier` whose kind, calibration and seed are used.
    settings : Config
        The config the snapshots were built with (``project.config``): the folds
        (``model``, ``labels``), the rules and tiers, the capacity, discovery's candidates
        for the best single rule, and fit.
    truth : DataFrame, optional
        The simulator's true probabilities (``project.truth()``): the oracle's scores.
    attributes : callable, optional
        ``attributes(rows)`` -> the rows with their accounts' attributes (industry,
        country, segment; a user's from its account), what fit reads; None: the rows' own
        columns.
    progress : callable, optional
        ``progress(i, n, as_of)`` before each fold.

    Returns
    -------
    Backtest
        ``metrics`` and ``rows``; ``.write(out)`` the report, ``.log_to_mlflow()``.
    """
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"The 'frame' parameter of backtest must be a DataFrame of labelled "
                        f"snapshots (project.snapshots(outcome)). Got {type(frame).__name__} "
                        "instead.")
    cfg = settings
    key = entity_key(cfg.project.entity)
    if not cfg.tiers.intent_rule and cfg.project.entity == "account":
        raise PqlmlError(NO_INTENT_RULE)
    kind, calibration, seed = _recipe(estimator, cfg)
    features = feature_columns(frame)
    rule, why = intent_rule_for(cfg, frame)
    notes = [] if rule else [f"rules: absent: {why}; the model and the other baselines are "
                             f"compared at the sales capacity ({cfg.capacity.per_period} "
                             f"a period) instead"]
    notes += [f"{name}: absent: the features have none of the columns it reads" for name, cols
              in baseline_columns(features).items() if not cols]
    folds = rolling_folds(frame.as_of.dt.strftime("%Y-%m-%d"), horizon_days=cfg.labels.horizon_days,
                          test_periods=cfg.model.test_periods)
    parts, fold_info = [], []
    for i, (train_dates, test_date) in enumerate(folds):
        if progress:
            progress(i, len(folds), test_date)
        day = frame.as_of.dt.strftime("%Y-%m-%d")
        in_train = day.isin(train_dates)
        if WEIGHT in frame.columns:           # a sample: fit on it, test on the whole cutoff
            in_train &= frame[WEIGHT] > 0
        train, test = frame[in_train], frame[day == test_date].copy()
        w = train[WEIGHT].to_numpy(float) if WEIGHT in train.columns else None
        _check_fold(train, test, outcome, test_date)
        model = Model.fit(train, outcome, kind=kind, features=features,
                          calibration=calibration, seed=seed,
                          gap_days=cfg.labels.horizon_days)
        test["p_model"] = model.predict(test)
        for name, p in fit_baselines(train[features + [outcome]], test, outcome,
                                     sample_weight=w).items():
            test[f"p_{name}"] = p
        if rule is not None:
            flag_train, flag_test = rule.evaluate(train).to_numpy(), rule.evaluate(test).to_numpy()
            test["rule_flag"] = flag_test
            test["p_rules"] = _rule_probability(flag_train, train[outcome].to_numpy(bool),
                                                flag_test, w)
        best = _best_single(train, outcome, features, cfg)
        value = {n: pd.to_numeric(d[best.feature], errors="coerce") for n, d in
                 (("train", train), ("test", test))}
        # ranked by the signal's value (its threshold moved to the rules' volume) and, for the
        # probability figures, as a step score like the rules
        test["best_single_score"] = value["test"].fillna(-np.inf)
        test["p_best"] = _rule_probability((value["train"] >= best.threshold).to_numpy(),
                                           train[outcome].to_numpy(bool),
                                           (value["test"] >= best.threshold).to_numpy(), w)
        best_rule = best.rule
        if {"activated", "engagement_score"} <= set(test.columns):
            # the activation + engagement playbook: activated accounts first, each group ranked
            # by engagement; its probability is the training rate of its group, like the rules'
            test["act_score"] = test.activated * 1e12 + test.engagement_score.fillna(0)
            test["p_act"] = _rule_probability(train.activated.to_numpy(bool),
                                              train[outcome].to_numpy(bool),
                                              test.activated.to_numpy(bool), w)
        test["fold"] = i
        parts.append(test)
        fold_info.append({"fold": i, "as_of": test_date, "train_as_of": [train_dates[0],
                                                                          train_dates[-1]],
                          "train_rows": len(train), "train_positives": int(train[outcome].sum()),
                          "train_sampled": w is not None,
                          "best_rule": best_rule, "model_chosen": _chosen(model)})
    rows = pd.concat(parts, ignore_index=True)
    oracle, why = _oracle(truth, rows, outcome, key)
    rows["p_oracle"] = np.nan if oracle is None else oracle
    notes += [why] if why else []
    # a user's fit is its account's firmographics and its own work email
    described = rows if attributes is None else attributes(rows)
    rows["fit"] = fit_flags(described, cfg.fit)["fit"].to_numpy()
    metrics = _metrics(rows, outcome, fold_info, cfg, key)
    metrics |= {"outcome": outcome, "kind": kind, "entity": cfg.project.entity,
                "horizon_days": cfg.labels.horizon_days,
                "intent_rule": rule.text if rule else None, "capacity": cfg.capacity.per_period,
                "volume_from": "rules" if rule else "capacity",
                "tier_method": cfg.tiers.method, "precision_target": cfg.tiers.precision_target,
                "notes": notes}
    return Backtest(metrics, rows)


def _chosen(model) -> dict:
    """The model a fold fitted (``kind``, ``C`` for a logistic) and, when ``auto`` chose it,
    each candidate's validation ROC-AUC on the fold's own training dates."""
    est = model.estimator
    out = {"kind": est.kind_} | ({"C": est.C_} if est.kind_ == "logistic" else {})
    if est.selection_ is not None:
        out["candidates"] = est.selection_
    return out


def _check_fold(train, test, outcome, test_date):
    for name, part in (("training", train), ("test", test)):
        pos = int(part[outcome].sum())
        if pos < MIN_POSITIVES or pos == len(part):
            raise PqlmlError(f"Fold testing {test_date}: the {name} data has {pos:,} positives "
                             f"of {len(part):,} snapshots (need >= {MIN_POSITIVES} and both "
                             f"classes). Fix: a longer schedule or fewer model.test_periods.")


def _volumes(periods, flags, capacity: int) -> dict:
    """Rows contacted per period: as many as the rules flag there (the rules' volume), or,
    without a rule (``flags`` None), the sales capacity."""
    return {f: int(flags[periods == f].sum()) if flags is not None
            else min(capacity, int((periods == f).sum())) for f in np.unique(periods)}


def _captured(y, ranking, flags, periods, idx, capacity: int) -> int:
    """Converters found when each period's best-ranked rows are contacted, at the volume of
    :func:`_volumes`."""
    y, ranking, periods = y[idx], ranking[idx], periods[idx]
    k = _volumes(periods, None if flags is None else flags[idx], capacity)
    return sum(top_k_capture(y[periods == f], ranking[periods == f], k[f]) for f in k)


def _block(data: pd.DataFrame, outcome: str, p: str | None, ranking: str, reps: int, *,
           key: str, capacity: int) -> dict:
    """The figures of one ranking on ``data`` (probabilities ``p``, ranked by ``ranking``) at
    the rules' volume (without a rule: the capacity); with ``reps``, bootstrap CIs over the
    entities (``key``)."""
    y = data[outcome].to_numpy(int)
    prob = None if p is None else data[p].to_numpy(float)
    rank = data[ranking].to_numpy(float)
    flags = data.rule_flag.to_numpy(bool) if "rule_flag" in data else None
    periods = data.fold.to_numpy()

    def figures(i):
        out = score_metrics(y[i], prob[i]) if prob is not None else {}
        out["converters_captured"] = _captured(y, rank, flags, periods, i, capacity)
        return out
    out = figures(np.arange(len(y)))
    out["volume"] = sum(_volumes(periods, flags, capacity).values())
    out["converters_per_100_touches"] = 100 * out["converters_captured"] / max(out["volume"], 1)
    if reps:
        cis = bootstrap_cis(figures, data[key].to_numpy(), reps=reps)
        out |= {f"{k}_ci": v for k, v in cis.items() if k != "log_loss"}
    return out


_RANKINGS = {"model": ("p_model", "p_model"), "rules": ("p_rules", "rule_flag"),
             "best_single_rule": ("p_best", "best_single_score"),
             "activation_engagement": ("p_act", "act_score"),
             **{name: (f"p_{name}", f"p_{name}") for name in BASELINES},
             "oracle": ("p_oracle", "p_oracle")}


def _metrics(rows: pd.DataFrame, outcome: str, folds: list, cfg, key: str) -> dict:
    """Pooled figures with CIs, the same per fold, and capture / lift at sales capacity."""
    if "rule_flag" in rows:
        rows = rows.assign(rule_flag=rows.rule_flag.astype(bool))
    names = [n for n, (_, ranking) in _RANKINGS.items()
             if ranking in rows and rows[ranking].notna().all()]

    def blocks(data, reps):
        return {n: _block(data, outcome, *_RANKINGS[n], reps, key=key,
                          capacity=cfg.capacity.per_period) for n in names}
    out = blocks(rows, cfg.model.bootstrap)
    k, y = cfg.capacity.per_period, rows[outcome].to_numpy(int)
    for name in ("model", "oracle"):
        if name in out:
            col = _RANKINGS[name][1]
            got = sum(top_k_capture(g[outcome].to_numpy(), g[col].to_numpy(), min(k, len(g)))
                      for _, g in rows.groupby("fold"))
            touched = sum(min(k, len(g)) for _, g in rows.groupby("fold"))
            out[name]["capture_at_capacity"] = got / max(int(y.sum()), 1)
            out[name]["lift_at_capacity"] = (got / max(touched, 1)) / y.mean()
    out["folds"] = [dict(info, **blocks(g, 0)) for info, (_, g) in zip(folds, rows.groupby("fold"))]
    return out
