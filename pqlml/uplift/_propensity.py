"""Propensities of a touch: their balanced scale and the doubly robust pseudo-outcome.

Touches are rare (5% of accounts a month), so comparability and clipping are judged on the
*balanced* propensity: the propensity had touched and untouched rows been equally many. Its odds
are the density ratio f(x | touched) / f(x | untouched).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["balanced_propensity", "aipw", "within_design"]


def balanced_propensity(e, rate: float):
    """The propensity had touched and untouched rows been equally many: ``e`` with the
    touch rate's odds ``rate / (1 - rate)`` divided out (0.5 where ``e`` equals the rate).
    Its odds are the density ratio f(x | touched) / f(x | untouched), what comparability is
    about; with rare touches (5% of accounts) a raw propensity is small everywhere and says
    nothing about it.

    >>> round(float(balanced_propensity(0.01, 0.05)), 3), float(balanced_propensity(0.05, 0.05))
    (0.161, 0.5)
    """
    odds = np.asarray(e, float) / (1 - np.asarray(e, float)) * (1 - rate) / rate
    return odds / (1 + odds)


def _raw_propensity(b, rate: float):
    """The raw propensity whose balanced value is ``b`` (kept off 0 and 1: a clip of 0 still
    leaves every weight finite)."""
    b = min(max(b, 1e-9), 1 - 1e-9)
    odds = b / (1 - b) * rate / (1 - rate)
    return odds / (1 + odds)


def aipw(y, t, mu0, mu1, e, clip: float = 0.05, rate: float = 0.5):
    """The doubly robust (AIPW) pseudo-outcome of each row, whose mean over any set of rows
    estimates the mean effect there: ``mu1 - mu0 + t (y - mu1) / e - (1 - t)(y - mu0) / (1 - e)``,
    the propensity ``e`` clipped where its balanced value (:func:`balanced_propensity` at the
    touch ``rate``; 0.5: none) leaves ``[clip, 1 - clip]``.

    >>> float(aipw([1], [1], [0.2], [0.5], [0.5])[0])
    1.3
    >>> float(aipw([1], [1], [0.2], [0.5], [0.001], rate=0.05)[0]) == 0.3 + 0.5 / _raw_propensity(0.05, 0.05)
    True
    >>> bool(np.isfinite(aipw([0, 1], [1, 0], [0.2, 0.2], [0.5, 0.5], [0.0, 1.0], clip=0.0, rate=0.05)).all())
    True
    """
    y, t = np.asarray(y, float), np.asarray(t, float)
    mu0, mu1 = np.asarray(mu0, float), np.asarray(mu1, float)
    if not 0 <= clip < 0.5:
        raise ValueError(f"The 'clip' parameter must be in [0, 0.5). Got {clip!r} instead.")
    if not 0 < rate < 1:
        raise ValueError(f"The touch 'rate' must be in (0, 1). Got {rate!r} instead.")
    e = np.clip(np.asarray(e, float), _raw_propensity(clip, rate), _raw_propensity(1 - clip, rate))
    return mu1 - mu0 + t * (y - mu1) / e - (1 - t) * (y - mu0) / (1 - e)


def within_design(e, as_of, arm):
    """``e`` kept within what a randomised holdout guarantees: at an as_of where a share
    ``r1`` of the accounts was assigned to touch and ``r0`` to hold out, at random, every
    account's chance of a touch is at least ``r1`` and at most ``1 - r0``, whatever a model
    estimates. A model's propensity below the experiment's own touch rate is an estimation
    error, and its inverse is the weight that makes an AIPW mean heavy-tailed (one converter
    weighted 300 where the design allows 60). ``arm`` is each row's ``touch`` / ``holdout`` /
    None (:func:`~pqlml.uplift.assigned`), the rows being every eligible account of its as_of.

    >>> within_design([0.001, 0.5, 0.999, 0.3], ["a"] * 4, ["touch", None, None, "holdout"]).tolist()
    [0.25, 0.5, 0.75, 0.3]
    """
    e = np.asarray(e, float)
    frame = pd.DataFrame({"as_of": np.asarray(as_of), "touch": np.asarray(arm) == "touch",
                          "holdout": np.asarray(arm) == "holdout"})
    rates = frame.groupby("as_of")[["touch", "holdout"]].transform("mean")
    return np.clip(e, rates["touch"].to_numpy(), 1 - rates["holdout"].to_numpy())
