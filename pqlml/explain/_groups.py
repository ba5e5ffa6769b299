"""Features -> reason groups: the collinear features of one business signal explained together.

A group starts from the catalog's structure (:func:`~pqlml.explain._words.signal_of`: an
event's windows, growth and active users; a category's one-hot levels; an activation
checkpoint and its stage; the totals of events). Signals that move together in the training
rows are then merged: signals are clustered by complete linkage on ``1 - |correlation|``
(the largest between their columns, from the fitted model's ``correlation_``), cut at
:data:`CORRELATED` (every pair of signals in a group correlates at least that much, so
clusters never chain). Contributions are summed per group before reasons are ranked, so
two overlapping volumes can no longer cancel out and show the side that lowers the score.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._contributions import contributions
from ._words import signal_of

__all__ = ["CORRELATED", "Explanation", "explain", "reason_groups", "complete_clusters"]

CORRELATED = 0.8


@dataclass
class Explanation:
    """Why a model scored rows as it did, against its reference account.

    ``contributions``: one column per reason group (log-odds against the reference; a
    group's name joins its signals with ``" or "``); ``base``: the reference's log-odds
    (``base + contributions.sum(axis=1)`` is each row's log-odds when ``exact``);
    ``groups``: group -> its feature columns; ``reference``: the reference account (each
    feature's training median) and ``reference_probability`` its probability;
    ``monotone``: feature -> the direction the model was held to (+1 more never lowers the
    score, -1 the training rows said more goes with fewer outcomes, 0 free)."""

    contributions: pd.DataFrame
    base: np.ndarray
    groups: dict[str, list[str]]
    reference: pd.Series
    reference_probability: float
    monotone: dict[str, int]
    exact: bool


def reason_groups(model) -> dict[str, list[str]]:
    """Group name -> feature columns (see the module), in the order of ``model.features``."""
    features = list(model.features)
    signals = list(dict.fromkeys(signal_of(f) for f in features))
    label = _clusters(model, features, signals)
    groups: dict[str, list[str]] = {}
    members: dict[int, list[str]] = {}
    for s, k in zip(signals, label):
        members.setdefault(k, []).append(s)
    for k, names in members.items():
        groups[" or ".join(names)] = [f for f in features if signal_of(f) in names]
    return groups


def _clusters(model, features: list[str], signals: list[str]) -> np.ndarray:
    corr = getattr(model.estimator, "correlation_", None)
    if corr is None or len(signals) < 2:
        return np.arange(len(signals))
    index = np.array([signals.index(signal_of(f)) for f in features])
    c = np.nan_to_num(np.asarray(corr, float))
    # the largest |correlation| between any column of signal a and any of signal b
    to_signal = np.column_stack([c[:, index == b].max(axis=1) for b in range(len(signals))])
    between = np.vstack([to_signal[index == a].max(axis=0) for a in range(len(signals))])
    return complete_clusters(np.maximum(between, between.T), CORRELATED)


def complete_clusters(association: np.ndarray, threshold: float) -> np.ndarray:
    """Cluster labels of the items of a symmetric ``|association|`` matrix (correlations),
    by complete linkage on ``1 - |association|`` cut so that every pair in a cluster
    associates at least ``threshold``: clusters never chain. Reasons group signals with it,
    discovery its candidate columns.

    >>> complete_clusters(np.array([[1, .9, .85], [.9, 1, .5], [.85, .5, 1]]), 0.8).tolist()
    [1, 1, 2]
    """
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    distance = np.clip(1 - np.abs(np.asarray(association, float)), 0, None)
    np.fill_diagonal(distance, 0)
    tree = linkage(squareform(distance, checks=False), method="complete")
    return fcluster(tree, t=1 - threshold + 1e-12, criterion="distance")


def explain(model, X: pd.DataFrame) -> Explanation:
    """Contributions of ``X``'s rows per reason group, against the model's reference.

    Examples
    --------
    >>> from pqlml.model import Model
    >>> rng = np.random.default_rng(0)
    >>> sso = rng.poisson(2, 600)
    >>> X = pd.DataFrame({"events_security_viewed_30d": sso + rng.poisson(0.2, 600),
    ...                   "events_sso_viewed_30d": sso, "employees": rng.poisson(50, 600)})
    >>> frame = X.assign(as_of=pd.Timestamp("2024-01-01"),
    ...                  y=(rng.random(600) < 0.1 + 0.1 * (sso > 2)).astype(int))
    >>> m = Model.fit(frame, "y", kind="logistic", calibration="none")
    >>> e = explain(m, X)
    >>> list(e.groups)
    ['security_viewed or sso_viewed', 'company_size']
    >>> p = m.predict(X)
    >>> bool(np.allclose(e.base + e.contributions.sum(axis=1), np.log(p / (1 - p))))
    True
    """
    C, base, exact = contributions(model, X)
    groups = reason_groups(model)
    member = np.array([[f in cols for cols in groups.values()] for f in C.columns], float)
    G = pd.DataFrame(C.to_numpy() @ member, columns=list(groups), index=C.index)
    reference = pd.Series(np.asarray(model.estimator.reference_, float), index=model.features)
    p_ref = float(model.predict(reference.to_frame().T)[0])
    monotone = dict(zip(model.features, (int(v) for v in model.estimator.monotone_)))
    return Explanation(G, base, groups, reference, p_ref, monotone, exact)
