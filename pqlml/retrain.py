"""Monthly retraining with champion and challenger.

:func:`retrain` trains a challenger on the latest data with the config's recipe and
compares it with the registered champion (``models:/<name>@champion``, the model
sales is using) on the latest labelled periods:

- the **challenger** is scored as a backtest: for each test period, the recipe is
  fitted on the snapshots whose labels had closed by then (what it would have done);
- the **champion** is scored as deployed, but only on periods after its training
  window (``as_of >= its last training as_of + horizon``), so it is never credited
  for outcomes it was fitted on. The challenger is held to the same periods.

The challenger replaces the champion only when it is better by ``retrain.margin``
(relative) on ``retrain.metric``; a worse, tied or failed challenger never does.
With no champion yet, the first model becomes champion. The final challenger is
fitted on every labelled snapshot, saved, logged and registered either way, with
the alias ``champion`` (promoted) or ``challenger`` (not), so the decision is
auditable in MLflow.

Examples
--------
>>> better("captured_at_capacity", 120, 100, margin=0.1), better("brier", 0.05, 0.05, margin=0)
(True, False)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from .backtest import rolling_folds
from .errors import PqlmlError
from .model import (Model, bootstrap_ci, bootstrap_cis, provenance, score_metrics,
                    top_k_capture)
from .schema import entity_key

__all__ = ["retrain", "better", "metric_value", "Decision", "LOWER_IS_BETTER",
           "RETRAIN_FILES"]

LOWER_IS_BETTER = ("brier", "log_loss")
#: What :func:`pqlml.runner.retrain` writes into its folder: the challenger (when one was
#: trained) and the decision.
RETRAIN_FILES = ("model.skops", "decision.json")


@dataclass
class Decision:
    """What :func:`retrain` decided and why."""

    action: str                     # promoted | first_champion | kept | failed | not_compared
    reason: str
    metric: str
    challenger: float = float("nan")
    champion: float = float("nan")
    difference_ci: list = field(default_factory=lambda: [float("nan"), float("nan")])
    periods: list = field(default_factory=list)
    quality: dict = field(default_factory=dict)   # the challenger's on the periods, with CIs
    champion_version: int | None = None
    model: Model | None = None
    frame: pd.DataFrame | None = None
    folder: Path | None = field(default=None, repr=False)   # where write() put it

    @property
    def promoted(self) -> bool:
        return self.action in ("promoted", "first_champion")

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("action", "reason", "metric", "challenger",
                                              "champion", "difference_ci", "periods",
                                              "quality", "champion_version")} | {"promoted": self.promoted}

    def write(self, out: str | Path) -> list[Path]:
        """Into folder ``out`` (:data:`RETRAIN_FILES`): the challenger as ``model.skops``
        when one was trained, and ``decision.json``; the paths written."""
        from .outputs import write_json

        self.folder = Path(out)
        path, record = (self.folder / name for name in RETRAIN_FILES)
        written = []
        if self.model is not None:
            written.append(self.model.save(path))
        written.append(write_json(self.as_dict(), record))
        return written

    def log_to_mlflow(self, settings) -> tuple | None:
        """Into the active MLflow run: the comparison and the decision; then the challenger
        (when one was trained), registered under ``model.registered_name`` as ``champion``
        if promoted, else ``challenger`` (:func:`pqlml.track.log_retrain`). ``settings``:
        the config it was decided with. Returns (version, alias) or None."""
        if self.folder is None:
            raise PqlmlError("Decision.log_to_mlflow logs the saved challenger, and nothing "
                             "was written. Fix: call .write(out) first.")
        from .track import log_retrain
        return log_retrain(self, settings, self.folder / RETRAIN_FILES[0], self.folder)


def better(metric: str, challenger: float, champion: float, *, margin: float) -> bool:
    """Is ``challenger`` better than ``champion`` by the relative ``margin``?"""
    if not (np.isfinite(challenger) and np.isfinite(champion)):
        return False
    if metric in LOWER_IS_BETTER:
        return challenger < champion * (1 - margin)
    return challenger > champion * (1 + margin) if champion > 0 else challenger > champion


def metric_value(metric: str, y, p, period, capacity: int) -> float:
    """``metric`` of scores ``p`` on outcomes ``y``; captured_at_capacity sums the
    converters among each period's top ``capacity``."""
    y, p, period = np.asarray(y, int), np.asarray(p, float), np.asarray(period)
    if metric == "captured_at_capacity":
        return float(sum(top_k_capture(y[period == d], p[period == d], capacity)
                         for d in np.unique(period)))
    return score_metrics(y, p)[metric]


def retrain(frame: pd.DataFrame, outcome: str, *, settings, champion: tuple | None = None,
            fit: Callable[[pd.DataFrame, str], Model] | None = None,
            progress=None) -> Decision:
    """Train and backtest a challenger, compare it with the champion on the same latest
    periods, and decide.

    ``frame``: labelled snapshots (``project.snapshots(outcome)``); ``settings``: the config
    they were built with (``model``, ``labels``, ``retrain``, ``capacity``);
    ``champion``: ``(version, Model)`` of the registered champion
    (:func:`pqlml.track.champion`), None when there is none yet. ``fit(frame, outcome) ->
    Model`` replaces the config's recipe (e.g. a different estimator to try); the registry
    and the saving are the caller's (:func:`pqlml.runner.retrain`: ``decision.write(out)``
    and ``decision.log_to_mlflow(settings)``). The returned decision carries the final
    challenger model (fitted on every labelled snapshot) and its frame."""
    cfg = settings
    recipe = fit or (lambda f, o: Model.fit(f, o, kind=cfg.model.kind,
                                            calibration=cfg.model.calibration))
    current = champion
    day = frame.as_of.dt.strftime("%Y-%m-%d")
    folds = rolling_folds(day, horizon_days=cfg.labels.horizon_days,
                          test_periods=cfg.retrain.periods)
    decision = Decision("", "", cfg.retrain.metric)
    if current is not None:
        version, deployed = current
        decision.champion_version = version
        if deployed.outcome != outcome:
            return _no(decision, "not_compared", f"the champion (version {version}) predicts "
                       f"{deployed.outcome}, the config's target is {outcome}")
        scores = deployed.trained_on.get("entity", "account")
        if scores != cfg.project.entity:
            return _no(decision, "not_compared", f"the champion (version {version}) scores "
                       f"{scores}s, the config's project.entity is {cfg.project.entity}")
        after = pd.Timestamp(deployed.trained_on["as_of_last"]) + pd.Timedelta(
            days=cfg.labels.horizon_days)
        folds = [(train, test) for train, test in folds if pd.Timestamp(test) >= after]
        if not folds:
            return _no(decision, "not_compared",
                       f"no labelled period after the champion's training window (version "
                       f"{version}: as_of up to {deployed.trained_on['as_of_last']}, labels "
                       f"to {after.date()}); the latest labelled as_of is {day.max()}. Run "
                       f"retrain again once a new period's {cfg.labels.horizon_days}-day "
                       f"labels have closed")
    decision.periods = [test for _, test in folds]
    rows = []
    for i, (train_dates, test_date) in enumerate(folds):
        if progress:
            progress(i, len(folds), test_date)
        test = frame[day == test_date].copy()
        if current is not None:             # a champion that cannot score is an error, not a refusal
            test["p_champion"] = _scores(deployed, test)
        try:
            test["p_challenger"] = recipe(frame[day.isin(train_dates)], outcome).predict(test)
        except Exception as err:  # noqa: BLE001 - any failure of a trial model is a refusal
            return _failed(decision, err)
        rows.append(test)
    scored = pd.concat(rows, ignore_index=True)
    try:
        final = recipe(frame, outcome)
    except Exception as err:  # noqa: BLE001
        return _failed(decision, err)
    final.trained_on |= provenance(cfg)
    decision.model, decision.frame = final, frame
    cap = cfg.capacity.per_period
    score = lambda col, idx=slice(None): metric_value(  # noqa: E731
        cfg.retrain.metric, scored[outcome].to_numpy()[idx], scored[col].to_numpy()[idx],
        scored.as_of.to_numpy()[idx], cap)
    decision.challenger = score("p_challenger")
    decision.quality = _quality(scored, outcome, entity_key(cfg.project.entity),
                                cfg.model.bootstrap)
    if current is None:
        decision.action = "first_champion"
        decision.reason = "no champion is registered yet: the first model becomes champion"
        return decision
    decision.champion = score("p_champion")
    decision.difference_ci = bootstrap_ci(
        lambda i: score("p_challenger", i) - score("p_champion", i),
        scored[entity_key(cfg.project.entity)], reps=cfg.model.bootstrap)
    won = better(cfg.retrain.metric, decision.challenger, decision.champion,
                 margin=cfg.retrain.margin)
    decision.action = "promoted" if won else "kept"
    direction = "lower" if cfg.retrain.metric in LOWER_IS_BETTER else "higher"
    decision.reason = (f"{cfg.retrain.metric} on {len(folds)} period(s) "
                       f"({', '.join(decision.periods)}): challenger {decision.challenger:.4g} vs "
                       f"champion {decision.champion:.4g} (version {decision.champion_version}); "
                       f"{'better' if won else 'not better'} by the required "
                       f"{cfg.retrain.margin:.0%} ({direction} is better; difference "
                       f"{decision.challenger - decision.champion:+.4g}, 95% bootstrap CI "
                       f"{decision.difference_ci[0]:+.4g} to {decision.difference_ci[1]:+.4g})")
    return decision


def _quality(scored: pd.DataFrame, outcome: str, key: str, reps: int) -> dict:
    """The challenger's ROC-AUC, PR-AUC, Brier and ECE on the compared periods, each with a
    95% bootstrap CI over the entities (``<figure>_ci``), as a backtest reports them."""
    y, p = scored[outcome].to_numpy(int), scored["p_challenger"].to_numpy(float)

    def figures(i):
        return {k: v for k, v in score_metrics(y[i], p[i]).items() if k != "log_loss"}
    out = figures(np.arange(len(y)))
    return out | {f"{k}_ci": v for k, v in bootstrap_cis(figures, scored[key].to_numpy(),
                                                         reps=reps).items()}


def _scores(champion: Model, test: pd.DataFrame) -> np.ndarray:
    try:
        return champion.predict(test)
    except Exception as err:  # noqa: BLE001 - a missing feature or any scoring failure
        raise PqlmlError(f"The champion cannot score the current features ({err}). It was "
                         "trained on other feature definitions; nothing was promoted. Fix: "
                         "compare by hand with `pqlml backtest`, then move the champion alias "
                         "in MLflow.") from err


def _failed(decision: Decision, err: Exception) -> Decision:
    what = str(err) if isinstance(err, PqlmlError) else f"{type(err).__name__}: {err}"
    return _no(decision, "failed", f"the challenger failed: {what}")


def _no(decision: Decision, action: str, reason: str) -> Decision:
    decision.action, decision.reason = action, reason
    return decision
