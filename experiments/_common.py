"""What both real-data experiments share: forward-in-time evaluation with pqlml's own parts.

Why forward in time: a model is used on cases that arrive after it was trained, and both
datasets drift (the bank's success rate goes from 4% to 50%; the loan office changes its
process over five months). A shuffled split mixes the future into training and hides that,
so it is computed too, only to show how much it flatters the numbers.

Every model is :meth:`pqlml.model.Model.fit` (calibrated on the latest quarter of its training
``as_of`` dates), every score :func:`pqlml.model.score_metrics`, every interval
:func:`pqlml.model.bootstrap_ci` and the folds :func:`pqlml.backtest.rolling_folds`.
"""

from __future__ import annotations

import inspect
import json
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from sklearn.metrics import roc_auc_score

from pqlml.backtest import rolling_folds
from pqlml.model import Model, bootstrap_ci, score_metrics

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results"
KINDS = ("auto", "logistic", "gradient_boosting")   # auto: pqlml's default
REPS = 200
# None = pass no calibration argument, i.e. pqlml's default (the main rows); the other two
# are comparison rows.
DEFAULT_CALIBRATION = inspect.signature(Model.fit).parameters["calibration"].default
CALIBRATIONS = (None, "isotonic", "none")


def calibration_name(calibration) -> str:
    """How a row's calibration is shown: ``platt (default)`` when none was passed."""
    return f"{DEFAULT_CALIBRATION} (default)" if calibration is None else calibration
console = Console(stderr=True)


def progress() -> Progress:
    """A progress bar on stderr, so stdout stays the markdown table."""
    return Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/"
                    "{task.total}"), TimeElapsedColumn(), console=console, transient=True)


def summary(y, p, groups, periods=None) -> dict:
    """pqlml's scores of one set of test predictions, the AUC with a 95% bootstrap CI over
    ``groups`` (cases or clients), and, when the test spans periods, the mean AUC within a
    period (weighted by rows): the pooled AUC also rewards ranking whole periods by their base
    rate, the within-period AUC only ranking inside a period, which is what a daily list needs."""
    y, p = np.asarray(y, int), np.asarray(p, float)
    out = score_metrics(y, p)
    out["roc_auc_ci"] = bootstrap_ci(lambda i: roc_auc_score(y[i], p[i]) if 0 < y[i].sum() < len(i)
                                     else float("nan"), groups, reps=REPS)
    out["n"], out["positives"] = int(len(y)), int(y.sum())
    out["p_exactly_0_or_1"], out["distinct_p"] = int(((p == 0) | (p == 1)).sum()), len(set(p))
    if periods is not None:
        aucs, weights = [], []
        for per in pd.unique(np.asarray(periods)):
            m = np.asarray(periods) == per
            if 0 < y[m].sum() < m.sum():
                aucs.append(roc_auc_score(y[m], p[m]))
                weights.append(m.sum())
        out["roc_auc_within_period"] = float(np.average(aucs, weights=weights))
    return out


def fit_predict(train: pd.DataFrame, test: pd.DataFrame, features, outcome, kind,
                calibration=None, gap_days: int = 0) -> np.ndarray:
    """pqlml's model, fitted on ``train`` and scored on ``test``. ``calibration=None`` passes
    nothing, so pqlml's default applies (Platt). With calibration the base model is fitted on
    the earliest three quarters of the training ``as_of`` dates only and calibrated on the
    latest quarter; with ``"none"`` it sees them all. ``kind="auto"`` chooses among pqlml's
    candidates on the training dates, each validation date ``gap_days`` after its training
    rows (the horizon in rolling folds)."""
    given = {} if calibration is None else {"calibration": calibration}
    return Model.fit(train, outcome, kind=kind, features=features, gap_days=gap_days,
                     **given).predict(test)


def rolling(frame: pd.DataFrame, *, period: str, horizon_days: int, min_train: int,
            features, outcome: str, kind: str, group: str, label: str,
            calibration: str | None = None) -> dict:
    """Retrain before every test period on every earlier period whose labels had closed
    (``pqlml.backtest.rolling_folds``: training periods <= test period - horizon_days); pool
    the test predictions. Nothing from a test period or after it is ever seen in training."""
    dates = frame[period].dt.strftime("%Y-%m-%d")
    folds = rolling_folds(dates, horizon_days=horizon_days, test_periods=dates.nunique(),
                          min_train=min_train)
    parts, info = [], []
    with progress() as bar:
        task = bar.add_task(f"{label}: {kind}, {len(folds)} forward folds", total=len(folds))
        for train_dates, test_date in folds:
            train, test = frame[dates.isin(train_dates)], frame[dates == test_date].copy()
            test["p"] = fit_predict(train, test, features, outcome, kind, calibration,
                                    gap_days=horizon_days)
            parts.append(test)
            info.append({"test_period": test_date,
                         "train_periods": [train_dates[0], train_dates[-1]],
                         "train_n": len(train), "train_positives": int(train[outcome].sum()),
                         "test_n": len(test), "test_positives": int(test[outcome].sum()),
                         "test_roc_auc": score_metrics(test[outcome], test.p)["roc_auc"],
                         "test_mean_p": float(test.p.mean())})
            bar.advance(task)
    rows = pd.concat(parts)
    out = summary(rows[outcome], rows.p, rows[group], rows[period])
    out["folds"] = info
    out["train_n"] = [info[0]["train_n"], info[-1]["train_n"]]
    out["train_positives"] = [info[0]["train_positives"], info[-1]["train_positives"]]
    return out


def one_split(train: pd.DataFrame, test: pd.DataFrame, *, features, outcome, kind, group,
              period=None, calibration=None) -> dict:
    """One model trained on the past, scored on the future."""
    p = fit_predict(train, test, features, outcome, kind, calibration)
    out = summary(test[outcome], p, test[group], None if period is None else test[period])
    out["train_n"], out["train_positives"] = len(train), int(train[outcome].sum())
    return out


def shuffled(frame: pd.DataFrame, *, features, outcome, kind, group, test_share=0.25,
             seed=0, calibration=None) -> dict:
    """THE WRONG WAY, kept only for contrast: a random split of all rows, time ignored
    throughout (the calibration quarter is random too: ``as_of`` is shuffled in training)."""
    rng = np.random.default_rng(seed)
    is_test = rng.random(len(frame)) < test_share
    train, test = frame[~is_test].copy(), frame[is_test]
    train["as_of"] = rng.permutation(train.as_of.to_numpy())
    p = fit_predict(train, test, features, outcome, kind, calibration)
    out = summary(test[outcome], p, test[group])
    out["train_n"], out["train_positives"] = len(train), int(train[outcome].sum())
    return out


def _count(v) -> str:
    if isinstance(v, list):
        return f"{v[0]:,}→{v[1]:,}" if v[0] != v[1] else f"{v[0]:,}"
    return f"{v:,}"


def markdown(rows: list[dict]) -> str:
    """The results table: one row per (features, split, model)."""
    head = ("| features | split | model | calibration | train n (positives) | test n "
            "(positives) | ROC-AUC [95% CI] | AUC within period | PR-AUC | Brier | ECE |")
    lines = [head, "|" + "---|" * 11]
    for r in rows:
        m = r["metrics"]
        within = m.get("roc_auc_within_period")
        lines.append(
            f"| {r['features']} | {r['split']} | {r['kind'].replace('_', ' ')} | "
            f"{r['calibration']} | "
            f"{_count(m['train_n'])} ({_count(m['train_positives'])}) | {m['n']:,} "
            f"({m['positives']:,}) | **{m['roc_auc']:.3f}** [{m['roc_auc_ci'][0]:.3f}, "
            f"{m['roc_auc_ci'][1]:.3f}] | {'—' if within is None else f'{within:.3f}'} | "
            f"{m['pr_auc']:.3f} | {m['brier']:.3f} | {m['ece']:.3f} |")
    return "\n".join(lines)


def write(name: str, payload: dict, started: float) -> Path:
    """``experiments/results/<name>.json`` with the run's settings, rows and timing."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload |= {"seconds": round(time.time() - started, 1), "python": platform.python_version(),
                "command": f".venv/bin/python experiments/{name}.py"}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, default=_jsonable) + "\n")
    return path


def _jsonable(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, (pd.Timestamp, np.datetime64)):
        return str(v)
    raise TypeError(type(v))


def second_world():
    """The second, independent world (``benchmarks/worlds/second_world.py``) as a module,
    loaded from its path (it is a script, not a package) and registered (dataclasses look
    their module up)."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(
        "second_world", ROOT / "benchmarks" / "worlds" / "second_world.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["second_world"] = module
    spec.loader.exec_module(module)
    return module
