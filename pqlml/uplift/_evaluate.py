"""How much a ranking's touches change: Qini and uplift curves, gains at capacity.

Curves follow Radcliffe (2007, "Using control groups to target on predicted lift"). Rows are
ranked by the score, best first; in the top fraction ``phi``, ``R_t, R_c`` are the converted
touched and untouched rows and ``N_t, N_c`` the touched and untouched rows (weighted, when
weights are given: inverse propensities make targeted data comparable):

* Qini curve ``Q(phi) = R_t - R_c N_t / N_c``: incremental conversions among the touched rows
  of the top ``phi``, the untouched rows' rate standing for what they would have done.
* Uplift curve ``U(phi) = (R_t / N_t - R_c / N_c)(N_t + N_c)``: the incremental conversions
  had every row of the top ``phi`` been touched.
* Qini coefficient ``Q`` (Radcliffe's): the area between the Qini curve and the random
  ranking's straight line, divided by the same area for the optimum ranking of the observed
  outcomes (touched converters first, untouched converters last). 0 for a ranking no better
  than chance, 1 for the optimum; computed at every distinct score (ties move together), the
  same number as scikit-uplift's ``qini_auc_score`` (checked in ``tests/test_uplift.py``).

At capacity, each period's top ``k`` rows are the ones a team would call; their incremental
conversions per 100 touches are estimated by the mean AIPW pseudo-outcome of those rows
(:func:`~pqlml.uplift.aipw`, doubly robust) and, on simulated data, known exactly (the mean
true effect ``p_convert_touch - p_convert_no_touch``).

Examples
--------
>>> import numpy as np
>>> y, t = np.array([1, 0, 1, 0]), np.array([1, 0, 0, 1])
>>> qini_curves(y, t, np.array([4, 3, 2, 1]), grid=[0.5, 1.0]).qini.tolist()
[1.0, 0.0]
>>> top_per_period(np.array([3, 1, 2, 5]), np.array([0, 0, 1, 1]), 1).tolist()
[True, False, False, True]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..model import bootstrap_cis

__all__ = ["qini_curves", "qini_coefficient", "top_per_period", "at_capacity", "qini_with_cis",
           "GRID"]

GRID = np.linspace(0.05, 1.0, 20)


def _arms(y, t, w, order):
    """The rows taken in ``order``, cumulated: (touched conversions, touched rows, untouched
    conversions, untouched rows), weighted."""
    return tuple(np.cumsum(v[order]) for v in (w * t * y, w * t, w * (1 - t) * y, w * (1 - t)))


def _qini(rt, nt, rc, nc):
    """The Qini curve ``Q = R_t - R_c N_t / N_c`` (0 where no untouched row is in yet)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return rt - np.where(nc > 0, rc * nt / nc, 0.0)


def qini_curves(y, t, score, *, weights=None, grid=GRID) -> pd.DataFrame:
    """``fraction``, ``qini``, ``uplift`` and ``random`` (``fraction * Q(1)``) at each
    fraction of ``grid``, rows ranked by ``score`` (ties in a random but fixed order)."""
    y, t = np.asarray(y, float), np.asarray(t, float)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, float)
    order = np.lexsort((np.random.default_rng(0).random(len(y)), -np.asarray(score, float)))
    at = np.clip(np.ceil(np.asarray(grid) * len(y)).astype(int) - 1, 0, len(y) - 1)
    rt, nt, rc, nc = (c[at] for c in _arms(y, t, w, order))
    qini = _qini(rt, nt, rc, nc)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate_t, rate_c = np.where(nt > 0, rt / nt, 0.0), np.where(nc > 0, rc / nc, 0.0)
    uplift = (rate_t - rate_c) * (nt + nc)
    grid = np.asarray(grid, float)
    return pd.DataFrame({"fraction": grid, "qini": qini, "uplift": uplift,
                         "random": grid * qini[-1]})


def _qini_points(y, t, score, w):
    """(x, Q): the cumulative weight and the Qini curve at each distinct score, best first,
    from (0, 0)."""
    order = np.argsort(-score, kind="mergesort")
    s = score[order]
    at = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    rt, nt, rc, nc = (c[at] for c in _arms(y, t, w, order))
    return np.r_[0.0, (nt + nc)], np.r_[0.0, _qini(rt, nt, rc, nc)]


def _area_over_random(x, q) -> float:
    """Trapezoid area under ``q(x)`` minus the straight line from (0, 0) to its end."""
    return float(np.sum((q[1:] + q[:-1]) / 2 * np.diff(x)) - x[-1] * q[-1] / 2)


def qini_coefficient(y, t, score, *, weights=None) -> float:
    """Radcliffe's Qini coefficient of ranking by ``score``: the area between its Qini curve
    and random targeting over the optimum's (NaN when the optimum is no better than random).

    >>> round(qini_coefficient([1, 0, 1, 0, 0, 1], [1, 1, 0, 0, 1, 0], [6, 5, 4, 3, 2, 1]), 4)
    0.4615
    """
    y, t = np.asarray(y, float), np.asarray(t, float)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, float)
    best = _area_over_random(*_qini_points(y, t, y * t - y * (1 - t), w))
    if not best > 0:
        return float("nan")
    return _area_over_random(*_qini_points(y, t, np.asarray(score, float), w)) / best


def qini_with_cis(y, t, score, groups, *, weights=None, reps: int = 200, seed: int = 0):
    """(curves with ``qini_low/high`` and ``uplift_low/high`` columns, Qini coefficient,
    its CI) by percentile bootstrap over ``groups`` (accounts: their rows move together)."""
    y, t, score = np.asarray(y), np.asarray(t), np.asarray(score, float)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, float)

    def stats(i):
        c = qini_curves(y[i], t[i], score[i], weights=w[i])
        out = {"coefficient": qini_coefficient(y[i], t[i], score[i], weights=w[i])}
        for j in range(len(c)):
            out[f"qini_{j}"], out[f"uplift_{j}"] = c.qini.iat[j], c.uplift.iat[j]
        return out
    curves = qini_curves(y, t, score, weights=w)
    cis = bootstrap_cis(stats, groups, reps=reps, seed=seed) if reps else {}
    for name in ("qini", "uplift"):
        for side, s in (("low", 0), ("high", 1)):
            curves[f"{name}_{side}"] = [cis.get(f"{name}_{j}", [np.nan] * 2)[s]
                                        for j in range(len(curves))]
    return (curves, qini_coefficient(y, t, score, weights=w),
            cis.get("coefficient", [np.nan, np.nan]))


def top_per_period(score, periods, capacity: int) -> np.ndarray:
    """True for each period's ``capacity`` best-scored rows (ties in a fixed random order)."""
    score, periods = np.asarray(score, float), np.asarray(periods)
    chosen = np.zeros(len(score), bool)
    tie = np.random.default_rng(0).random(len(score))
    for p in np.unique(periods):
        idx = np.flatnonzero(periods == p)
        best = idx[np.lexsort((tie[idx], -score[idx]))[:capacity]]
        chosen[best] = True
    return chosen


def at_capacity(chosen, pseudo, groups, *, true_effect=None, reps: int = 200,
                seed: int = 0) -> dict:
    """Incremental conversions per 100 touches of the ``chosen`` rows: ``estimated`` (mean AIPW
    pseudo-outcome x 100) with a bootstrap CI over ``groups``, and, with ``true_effect``,
    ``true`` (mean true effect x 100) and ``true_total`` (the sum: incremental conversions)."""
    chosen = np.asarray(chosen, bool)
    psi = np.asarray(pseudo, float)[chosen]
    out = {"touches": int(chosen.sum()), "estimated_per_100": float(100 * psi.mean())}
    if reps:
        ci = bootstrap_cis(lambda i: {"v": 100 * psi[i].mean()}, np.asarray(groups)[chosen],
                           reps=reps, seed=seed)
        out["estimated_per_100_ci"] = ci.get("v", [np.nan, np.nan])
    if true_effect is not None:
        tau = np.asarray(true_effect, float)[chosen]
        out |= {"true_per_100": float(100 * tau.mean()), "true_total": float(tau.sum())}
    return out
