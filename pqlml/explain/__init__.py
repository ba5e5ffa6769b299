"""Reasons in business words: why a model scored an account the way it did.

Every reason is measured against a stated reference: a typical account, each feature at its
median over the training rows (the fitted model's ``reference_``; its probability is
:attr:`Explanation.reference_probability`). ``(+)`` means "raises the score compared with a
typical account", ``(-)`` "lowers it", and the values shown say why.

:func:`contributions` gives each feature's exact share of the log-odds against the
reference (logistic: the coefficients times the standardised difference; boosting: each
feature's step function at the row minus at the reference); :func:`signal_contributions`
sums the columns of one business signal (the windows of a volume, a category's one-hot
columns, active users now and a month earlier); :func:`explain` sums them per reason group
(signals that move together in the training rows are one group,
:func:`reason_groups`); :func:`reasons` writes the strongest three groups per entity as
sentences with their direction and values. They stay exact: the reference's log-odds plus
the groups' contributions is the row's (calibrated) log-odds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._contributions import contributions
from ._groups import CORRELATED, Explanation, explain, reason_groups
from ._uplift import self_serve_reason, uplift_reason
from ._words import (EVENT_PHRASES, phrase, render, render_group, signal_of, signal_words,
                     times)

__all__ = ["contributions", "signal_contributions", "explain", "Explanation", "reason_groups",
           "reasons", "lowering_words", "CORRELATED", "signal_of", "signal_words", "render",
           "render_group", "phrase", "times", "EVENT_PHRASES", "uplift_reason",
           "self_serve_reason"]

_VERBS = {"conversion": "convert", "hand_raise": "ask for sales"}


def signal_contributions(model, X: pd.DataFrame, C: pd.DataFrame | None = None) -> pd.DataFrame:
    """One column per business signal: the summed contributions of its feature columns."""
    if C is None:
        C = contributions(model, X)[0]
    signals = pd.Index([signal_of(f) for f in C.columns])
    names = list(dict.fromkeys(signals))
    member = (signals.to_numpy()[:, None] == np.array(names)[None, :]).astype(float)
    return pd.DataFrame(C.to_numpy() @ member, columns=names, index=C.index)


def lowering_words(model) -> str:
    """What a reason adds when the training data chose the lowering direction of one of its
    columns, e.g. ``"accounts doing this more convert less"``."""
    who = f"{model.trained_on.get('entity', 'account')}s"
    outcome = getattr(model, "outcome", "conversion")
    verb = _VERBS.get(outcome, f"reach {outcome.replace('_', ' ')}")
    return f"{who} doing this more {verb} less"


def reasons(model, X: pd.DataFrame, *, top: int = 3) -> pd.DataFrame:
    """``reason_1`` .. ``reason_<top>``: the reason groups (:func:`explain`) with the largest
    absolute contribution against the reference account, strongest first, e.g.
    ``"(+) 9 active users in the last 30 days (3 a month earlier)"`` (``(+)`` raises the score
    compared with a typical account, ``(-)`` lowers it). Rows align with ``X``."""
    e = explain(model, X)
    G = e.contributions
    C = contributions(model, X)[0] if len(X) else pd.DataFrame(columns=model.features)
    k = min(top, G.shape[1])
    order = np.argsort(-np.abs(G.to_numpy()), axis=1, kind="stable")[:, :k]
    out = pd.DataFrame(index=X.index, columns=[f"reason_{i + 1}" for i in range(top)], dtype=object)
    out[:] = ""
    Xr, Cr = X.reset_index(drop=True), C.reset_index(drop=True)
    note = lowering_words(model)
    for rank in range(k):
        for j in np.unique(order[:, rank]):
            rows = np.flatnonzero(order[:, rank] == j)
            group = G.columns[j]
            cols = e.groups[group]
            signals = list(dict.fromkeys(signal_of(c) for c in cols))
            low = [c for c in cols if e.monotone.get(c, 0) < 0]
            out.iloc[rows, rank] = render_group(signals, Xr.iloc[rows], Cr.iloc[rows][cols],
                                                lowering=note if low else "",
                                                lowering_columns=low)
    return out
