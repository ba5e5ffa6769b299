"""Training on a sample when the labelled snapshots do not fit: every positive, the
negatives of each cutoff kept at one rate, each kept negative weighted by 1 / rate.

At a million accounts and twelve monthly cutoffs the labelled snapshots are ~12M rows; a
model learns the ranking as well from every positive and a few negatives per positive, and
its probabilities stay rates when the negatives it kept count for those it left out (a
case-control sample with inverse-probability weights). The weights reach every place a
rate is read: the fit, Platt's slope and its level (:class:`~pqlml.model.LeadClassifier`,
the weighted mean probability of the level rows is their weighted rate) and the
backtest's rule and baseline probabilities. Two places stay unweighted on purpose, as both
read a ranking that keeping every positive and a uniform share of the negatives leaves
unbiased: the ROC-AUC ``kind="auto"`` chooses by and the Mann-Whitney test of the
monotone directions.

Which negative is kept is a hash of (entity, as_of, seed), uniform in [0, 1) and kept
below the rate: the same row is kept whatever else is read with it, so a cutoff's sample
does not depend on the cutoffs beside it (time order kept; the snapshots are sampled
batch by batch as the engine hands them over, :meth:`pqlml.project.Project.
training_snapshots`).

Examples
--------
>>> frame = pd.DataFrame({"account_id": [f"a{i}" for i in range(1000)],
...                       "as_of": pd.Timestamp("2024-01-01", tz="UTC"),
...                       "conversion": (np.arange(1000) < 50).astype(int)})
>>> rate = negative_rate(rows=1000, positives=50, budget=240)
>>> rate
0.2
>>> sample = sample_rows(frame, "conversion", rate=rate)
>>> int(sample.conversion.sum()), sorted(set(sample[WEIGHT].round(6)))
(50, [1.0, 5.0])
>>> abs(len(sample) - 240) < 40                           # 50 + about 0.2 x 950
True
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import PqlmlError

__all__ = ["WEIGHT", "negative_rate", "keep_uniform", "weights_of", "sample_rows", "sample_record"]

#: The column a sampled frame carries: each row's weight (1 / its sampling rate; 0 for a
#: row outside the sample that is kept for evaluation only).
WEIGHT = "sample_weight"


def negative_rate(*, rows: int, positives: int, budget: int) -> float:
    """The share of negatives kept so that about ``budget`` of the ``rows`` labelled
    snapshots are fitted on: every positive and the negatives at the rate returned (1: no
    sample needed).

    >>> negative_rate(rows=100, positives=10, budget=1000), negative_rate(rows=1000, positives=100, budget=550)
    (1.0, 0.5)
    """
    if rows <= budget:
        return 1.0
    if positives >= budget:
        raise PqlmlError(f"[model] max_training_rows = {budget:,} leaves no room for negatives: "
                         f"the labelled snapshots hold {positives:,} positives. Fix: raise "
                         f"[model] max_training_rows above {positives:,} (e.g. "
                         f"{4 * positives:,}).")
    return (budget - positives) / (rows - positives)


def keep_uniform(keys, as_of, seed: int = 0) -> np.ndarray:
    """A number in [0, 1) per row, a hash of (key as text, as_of day, ``seed``): the same
    row gets the same number in any batch, order or company."""
    days = pd.to_datetime(pd.Series(np.asarray(as_of)), utc=True).dt.strftime("%Y-%m-%d")
    frame = pd.DataFrame({"k": pd.Series(np.asarray(keys)).astype(str).to_numpy(),
                          "d": days.to_numpy()})
    h = pd.util.hash_pandas_object(frame, index=False, hash_key=f"pqlml{seed:011d}"[-16:])
    return (h.to_numpy(np.uint64) >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def weights_of(keys, as_of, y, *, rate: float, seed: int = 0) -> np.ndarray:
    """Each row's weight: 1 for a positive, 1 / ``rate`` for a kept negative, 0 for a
    negative left out (:func:`keep_uniform` at or above ``rate``)."""
    y = np.asarray(y).astype(bool)
    if rate >= 1:
        return np.ones(len(y))
    kept = keep_uniform(keys, as_of, seed) < rate
    return np.where(y, 1.0, np.where(kept, 1.0 / rate, 0.0))


def sample_rows(frame: pd.DataFrame, outcome: str, *, rate: float, seed: int = 0,
                key: str | None = None) -> pd.DataFrame:
    """The rows of ``frame`` in the sample (every positive of ``outcome``, the negatives
    :func:`keep_uniform` keeps at ``rate``) with their :data:`WEIGHT`; the frame's order
    kept. ``key``: the entity column (default: ``account_id`` or else ``user_id``)."""
    key = key or ("account_id" if "account_id" in frame.columns else "user_id")
    w = weights_of(frame[key], frame["as_of"], frame[outcome], rate=rate, seed=seed)
    return frame[w > 0].assign(**{WEIGHT: w[w > 0]})


def sample_record(*, rows: int, positives: int, rate: float, kept: int, kept_positives: int,
                  budget: int, seed: int, whole: int = 0) -> dict:
    """What a model (``trained_on["sample"]``) and its MLflow run record of a sample
    (``whole``: rows kept outside it, for evaluation only)."""
    return {"labelled_rows": int(rows), "labelled_positives": int(positives),
            "max_training_rows": int(budget), "negative_rate": float(rate),
            "negative_weight": float(1 / rate), "rows_kept": int(kept),
            "positives_kept": int(kept_positives), "evaluation_only_rows": int(whole), "seed": int(seed),
            "method": "every positive; each cutoff's negatives kept at negative_rate "
                      "(a hash of entity, as_of, seed), weighted 1 / negative_rate"}
