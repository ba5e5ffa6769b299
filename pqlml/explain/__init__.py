"""Reasons in business words: why a model scored an account the way it did.

:func:`contributions` gives each feature's exact share of the log-odds (logistic: the
coefficients times the standardised values; boosting: SHAP TreeExplainer);
:func:`signal_contributions` sums the columns of one business signal (the windows of a
volume, a category's one-hot columns, active users now and a month earlier);
:func:`reasons` writes the strongest three per entity as sentences with their
direction and values.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._contributions import contributions
from ._words import EVENT_PHRASES, phrase, render, signal_of, times

__all__ = ["contributions", "signal_contributions", "reasons", "signal_of", "render", "phrase",
           "times", "EVENT_PHRASES"]


def signal_contributions(model, X: pd.DataFrame, C: pd.DataFrame | None = None) -> pd.DataFrame:
    """One column per business signal: the summed contributions of its feature columns."""
    if C is None:
        C = contributions(model, X)[0]
    signals = pd.Index([signal_of(f) for f in C.columns])
    names = list(dict.fromkeys(signals))
    member = (signals.to_numpy()[:, None] == np.array(names)[None, :]).astype(float)
    return pd.DataFrame(C.to_numpy() @ member, columns=names, index=C.index)


def reasons(model, X: pd.DataFrame, *, top: int = 3) -> pd.DataFrame:
    """``reason_1`` .. ``reason_<top>``: the signals with the largest absolute contribution,
    strongest first, e.g. ``"(+) 9 active users in the last 30 days (3 a month earlier)"``
    (``+`` raises the score, ``-`` lowers it). Rows align with ``X``."""
    C, _, _ = contributions(model, X)
    G = signal_contributions(model, X, C)
    columns_of = {s: [c for c in C.columns if signal_of(c) == s] for s in G.columns}
    k = min(top, G.shape[1])
    order = np.argsort(-np.abs(G.to_numpy()), axis=1, kind="stable")[:, :k]
    out = pd.DataFrame(index=X.index, columns=[f"reason_{i + 1}" for i in range(top)], dtype=object)
    out[:] = ""
    Xr, Cr = X.reset_index(drop=True), C.reset_index(drop=True)
    for rank in range(k):
        for j in np.unique(order[:, rank]):
            rows = np.flatnonzero(order[:, rank] == j)
            signal = G.columns[j]
            texts = render(signal, Xr.iloc[rows], Cr.iloc[rows][columns_of[signal]])
            out.iloc[rows, rank] = texts
    return out
