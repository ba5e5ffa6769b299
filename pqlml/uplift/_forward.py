"""Forward in time: each test as_of's propensities and effects from models fitted on earlier
snapshots only (the backtest's rolling folds, :func:`pqlml.backtest.rolling_folds`: training
dates whose label window had closed by the test date; nothing shuffled).

Two passes, so the overlap is checked before anything costly is fitted: :func:`propensities`
(one classifier a fold: P(touch | features)) and :func:`effects` (the meta-learner, and a
conversion classifier on the same rows for the "by probability" ranking).

Beyond :data:`FIT_ROWS` training rows a fold fits on a weighted sample (:func:`thinned`):
every touched row and every converter, the untouched non-converters at one rate, weighted
1 / rate (:mod:`pqlml.model._sample`'s hash, so a row's fate does not depend on the others).
Touches are ~4% and conversions ~2% of the snapshots, so the rows that carry the effect are
all kept and the rest thinned.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..model import WEIGHT
from ..model._sample import negative_rate, weights_of
from ._learners import default_classifier, make_learner

__all__ = ["fold_rows", "propensities", "effects", "thinned", "FIT_ROWS"]

FIT_ROWS = 60_000


def fold_rows(frame: pd.DataFrame, folds) -> list[tuple[np.ndarray, np.ndarray]]:
    """(training row positions, test row positions) per fold; a sample's rows weighted 0
    are tested on, never fitted on."""
    day = frame["as_of"].dt.strftime("%Y-%m-%d").to_numpy()
    fitted = (frame[WEIGHT].to_numpy() > 0) if WEIGHT in frame.columns else np.ones(len(frame), bool)
    return [(np.flatnonzero(np.isin(day, train) & fitted), np.flatnonzero(day == test))
            for train, test in folds]


def _weights(frame, rows):
    return frame[WEIGHT].to_numpy(float)[rows] if WEIGHT in frame.columns else None


def thinned(frame: pd.DataFrame, rows: np.ndarray, y: np.ndarray, t: np.ndarray, *,
            budget: int = FIT_ROWS, seed: int = 0):
    """(the training ``rows`` to fit on, their weights or None): all of them within
    ``budget``, else every touched or converted row and the others at the rate that makes
    about ``budget``, weighted 1 / rate (times a sample's own weights)."""
    whole = (t[rows] == 1) | (y[rows] == 1)
    kept = int(whole.sum())
    rate = negative_rate(rows=len(rows), positives=kept, budget=max(budget, 2 * kept))
    w0 = _weights(frame, rows)
    if rate >= 1:
        return rows, w0
    w = weights_of(frame["account_id"].to_numpy()[rows], frame["as_of"].to_numpy()[rows], whole,
                   rate=rate, seed=seed)
    w = w if w0 is None else w * w0
    return rows[w > 0], w[w > 0]


def propensities(frame: pd.DataFrame, X: np.ndarray, y: np.ndarray, t: np.ndarray, parts, *,
                 seed: int = 0, progress=None) -> tuple[np.ndarray, np.ndarray]:
    """(test row positions, each one's P(touch | features) from a classifier fitted on its
    fold's training rows), folds in order; a fold whose training rows have a single
    treatment gets that treatment's share (0 or 1) as everyone's propensity."""
    index, e = [], []
    for i, (train, test) in enumerate(parts):
        if progress:
            progress(i, len(parts))
        if len(np.unique(t[train])) < 2:
            e.append(np.full(len(test), float(t[train].mean())))
        else:
            model = default_classifier(seed)
            train, w = thinned(frame, train, y, t, seed=seed)
            model.fit(X[train], t[train], **({} if w is None else {"sample_weight": w}))
            e.append(model.predict_proba(X[test])[:, 1])
        index.append(test)
    return np.concatenate(index), np.concatenate(e)


def effects(frame: pd.DataFrame, X: np.ndarray, y: np.ndarray, t: np.ndarray, parts, *,
            learner: str, n_bootstrap: int = 10, clip: float = 0.05, seed: int = 0,
            progress=None) -> pd.DataFrame:
    """Per test row, in fold order: ``fold``, ``uplift`` (the learner's effect on P(y=1)),
    ``uplift_low`` / ``uplift_high`` (its bootstrap band), ``mu0`` / ``mu1`` (P(y=1)
    untouched / touched) and ``p_conversion`` (a conversion classifier on all training rows,
    touched or not: what a propensity-to-buy score ranks by)."""
    out = []
    for i, (train, test) in enumerate(parts):
        if progress:
            progress(i, len(parts))
        train, w = thinned(frame, train, y, t, seed=seed)
        model = make_learner(learner, n_bootstrap=n_bootstrap, random_state=seed, clip=clip)
        model.fit(X[train], y[train], treatment=t[train], sample_weight=w)
        low, high = model.predict_interval(X[test]) if n_bootstrap else (np.nan, np.nan)
        mu0, mu1 = model.predict_outcomes(X[test])
        conversion = default_classifier(seed).fit(
            X[train], y[train], **({} if w is None else {"sample_weight": w}))
        out.append(pd.DataFrame({"row": test, "fold": i, "uplift": model.predict(X[test]),
                                 "uplift_low": low, "uplift_high": high, "mu0": mu0, "mu1": mu1,
                                 "p_conversion": conversion.predict_proba(X[test])[:, 1]}))
    return pd.concat(out, ignore_index=True)
