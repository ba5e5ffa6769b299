"""``uplift``: whom a call changes, forward in time, on a project's labelled snapshots.

It runs on labelled snapshots with the project's touches: ``uplift(project.snapshots(outcome),
outcome, touches=project.touches(), settings=project.config, ...)``; the result's ``.write(out)``
writes the report and ``.log_to_mlflow()`` logs it (``pqlml uplift`` does both through
:func:`pqlml.runner.uplift`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import PqlmlError
from ..model import feature_columns
from ._forward import effects, fold_rows, propensities
from ._overlap import overlap
from ._propensity import within_design
from ._results import (policies_at_capacity, qini_by_policy, segment_effects,
                       with_pseudo_outcomes)
from ._treatment import assigned, per_period, touched

__all__ = ["uplift", "Uplift", "N_BOOTSTRAP"]

KEY = "account_id"
N_BOOTSTRAP = 10      # effect-model refits for each row's band (the nuisances held fixed)
_ACTIVITY = ("active_users_30d", "events_30d")   # the rules' tie-breaks: most active first


@dataclass
class Uplift:
    """What :func:`uplift` found: ``metrics`` (what ``metrics.json`` holds), ``segments``
    (``uplift_segments.csv``: the overlap and the effect per segment), ``rows`` (the pooled
    test rows, every score) and ``curves`` (policy -> Qini and uplift curves with bands)."""

    metrics: dict
    segments: pd.DataFrame
    rows: pd.DataFrame = field(repr=False)
    curves: dict = field(repr=False)
    folder: Path | None = field(default=None, repr=False)

    def write(self, out: str | Path) -> list[Path]:
        """The report (:data:`~pqlml.uplift._report.UPLIFT_FILES`) in folder ``out``."""
        from ._report import write_report
        written = write_report(self, out)
        self.folder = Path(out)
        return written

    def log_to_mlflow(self) -> None:
        """Into the active MLflow run: the aggregates (no account ids) and the written report."""
        if self.folder is None:
            raise PqlmlError("Uplift.log_to_mlflow logs the report as artifacts, and none was "
                             "written. Fix: call .write(out) first.")
        from ._report import log_uplift
        log_uplift(self.metrics, self.folder)


def _no_overlap(found, up) -> str:
    return (f"pqlml uplift cannot rank any account: no segment has comparable touched and "
            f"untouched accounts, so a touch's effect cannot be told from who was chosen. "
            f"{found.verdict} Fix: keep a randomised holdout (a random share of the eligible "
            f"accounts assigned to touch or not, recorded in [data.holdouts]); `pqlml experiment "
            f"plan` says how large and for how many periods; or lower [uplift] min_overlap "
            f"(now {up.min_overlap:g}) if near-certain propensities are acceptable.")


def uplift(frame: pd.DataFrame, outcome: str, *, touches: pd.DataFrame | None, settings,
           holdouts: pd.DataFrame | None = None, truth: pd.DataFrame | None = None,
           segments=None, progress=None, n_bootstrap: int = N_BOOTSTRAP) -> Uplift:
    """Learn a touch's effect forward in time and compare the policies at capacity.

    Parameters
    ----------
    frame : DataFrame
        Labelled account snapshots (``project.training_snapshots(outcome)``); a
        ``sample_weight`` column's 0-weighted rows are tested on only.
    outcome : str
        The label (conversion within the horizon).
    touches, holdouts : DataFrame or None
        ``project.touches()`` and ``project.holdouts()``.
    settings : Config
        ``[uplift]``, the folds (``model.test_periods``, ``labels.horizon_days``),
        ``model.bootstrap`` resamples, the rules.
    truth : DataFrame, optional
        The simulator's ``truth/touches.parquet``: ``account_id``, ``as_of``, ``effect``.
    segments : array, optional
        Each row's segment (e.g. the account's ``segment``); one segment without.
    progress : callable, optional
        ``progress(i, n, as_of)`` per step: each fold's propensity, then its effects.
    """
    from ..backtest import rolling_folds

    cfg, up = settings, settings.uplift
    if cfg.project.entity != "account":
        raise PqlmlError("pqlml uplift learns a touch's effect on an account; project.entity "
                         f"is {cfg.project.entity!r}. Fix: run it with project.entity = "
                         '"account".')
    if touches is None:
        raise PqlmlError("pqlml uplift needs the sales touches, and the project has no touches "
                         "table. Fix: add [data.touches] (account_id, at, kind, rep).")
    t = touched(frame, touches, window_days=up.touch_window_days).astype(int)
    if t.sum() == 0:
        raise PqlmlError(f"No labelled snapshot has a touch in [as_of, as_of + "
                         f"{up.touch_window_days} days) ({len(touches):,} touches, "
                         f"{len(frame):,} snapshots). Fix: check the touches' account_id and at "
                         "against the schedule, or widen [uplift] touch_window_days.")
    features = feature_columns(frame)
    X, y = frame[features].to_numpy(float), frame[outcome].to_numpy(int)
    folds = rolling_folds(frame.as_of.dt.strftime("%Y-%m-%d"), horizon_days=cfg.labels.horizon_days,
                          test_periods=cfg.model.test_periods)
    parts = fold_rows(frame, folds)
    n = 2 * len(folds)
    step = (lambda shift: (lambda i, k: progress(shift + i, n, folds[i][1]))) if progress else (
        lambda shift: None)
    seg = (np.full(len(frame), "all", dtype=object) if segments is None
           else pd.Series(segments).fillna("unknown").astype(str).to_numpy())
    test, e = propensities(frame, X, y, t, parts, progress=step(0))
    found = overlap(e, t[test], seg[test], min_overlap=up.min_overlap)
    if not found.identifiable:
        raise PqlmlError(_no_overlap(found, up))
    est = effects(frame, X, y, t, parts, learner=up.learner, n_bootstrap=n_bootstrap,
                  clip=up.min_overlap, progress=step(len(folds)))
    if not np.array_equal(est["row"].to_numpy(), test):
        raise RuntimeError("uplift: the effects' test rows are not the propensities' ones")
    rows = _test_rows(frame, est, outcome, t, seg, cfg, holdouts, truth)
    rows["e"], rows["comparable"] = within_design(e, rows.as_of, rows.arm), found.comparable
    rows["identifiable"] = rows.segment.isin(found.identifiable)
    rows = with_pseudo_outcomes(rows, outcome, up.min_overlap, found.rate)
    capacity = up.capacity or per_period(frame.as_of.to_numpy(), t)
    ranked = rows[rows.identifiable]
    reps = cfg.model.bootstrap
    policies = policies_at_capacity(ranked, key=KEY, capacity=capacity, reps=reps)
    qini, curves, basis = qini_by_policy(ranked, outcome=outcome, key=KEY, reps=reps)
    table = segment_effects(rows, found, key=KEY)
    metrics = {"outcome": outcome, "learner": up.learner, "capacity": capacity,
               "capacity_from": "config" if up.capacity else "median touched accounts per as_of",
               "touch_window_days": up.touch_window_days, "min_overlap": up.min_overlap,
               "folds": [{"fold": i, "as_of": test_date, "train_as_of": [d[0], d[-1]]}
                         for i, (d, test_date) in enumerate(folds)],
               "test_rows": int(len(rows)), "touched_test_rows": int(rows.touched.sum()),
               "ranked_rows": int(len(ranked)),
               "randomised_test_rows": int(rows.arm.notna().sum()),
               "identifiable": [str(s) for s in found.identifiable],
               "unidentifiable": {str(s): found.table.loc[s, "reason"]
                                  for s in found.unidentifiable},
               "overlap_verdict": found.verdict, "policies": policies,
               "qini": qini, "qini_rows": basis, "truth": "true_effect" in rows.columns,
               "segments": _records(table)}
    return Uplift(metrics, table, rows, curves)


def _test_rows(frame, est, outcome, t, seg, cfg, holdouts, truth) -> pd.DataFrame:
    """The pooled test rows: key, as_of, outcome, treatment, arm, segment, the scores (and the rules' and the true effect's when available)."""
    from ..rules import intent_rule_for

    r = est["row"].to_numpy()
    base = frame.iloc[r].reset_index(drop=True)
    rows = base[[KEY, "as_of", outcome]].copy()
    rows[KEY] = rows[KEY].astype(str)
    rows["touched"] = t[r]
    rows["arm"] = assigned(base, holdouts, window_days=cfg.uplift.touch_window_days)
    rows["segment"] = seg[r]
    for c in est.columns.drop("row"):
        rows[c] = est[c].to_numpy()
    rule, _ = intent_rule_for(cfg, base)
    rule = rule if rule is not None and rule.features <= set(base.columns) else None
    activity = [c for c in _ACTIVITY if c in base.columns]
    if rule is not None or activity:
        # flagged first, then by activity: a near-lexicographic score from percentile ranks
        score = np.zeros(len(base)) if rule is None else 2.0 * rule.evaluate(base).to_numpy(bool)
        for weight, c in zip((1.0, 1e-3), activity):
            score += weight * base[c].rank(pct=True).fillna(0).to_numpy()
        rows["rules_score"] = score
    if truth is not None and outcome == "conversion":
        rows["true_effect"] = _true_effects(rows, truth)
    return rows


def _true_effects(rows, truth) -> np.ndarray:
    t = truth[["account_id", "as_of", "effect"]].copy()
    t["account_id"] = t.account_id.astype(str)
    t["as_of"] = pd.to_datetime(t.as_of, utc=True).dt.strftime("%Y-%m-%d")
    days = rows.as_of.dt.strftime("%Y-%m-%d")
    found = pd.DataFrame({"account_id": rows[KEY], "as_of": days}).merge(
        t.drop_duplicates(["account_id", "as_of"]), on=["account_id", "as_of"], how="left")
    return found["effect"].to_numpy(float)


def _records(table: pd.DataFrame) -> list[dict]:
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()
             if not (isinstance(v, float) and np.isnan(v))}
            for row in table.to_dict("records")]
