"""Drift: has the population the champion scores moved away from the one it learned on?

The population stability index compares a feature's distribution now with its
distribution in a reference (the champion's training window):
``PSI = sum over bins of (current% - reference%) * ln(current% / reference%)``.
Bins are the reference's quantiles (ties merged, so a count that is mostly 0 gets a
bin of its own), plus one bin for missing values; empty bins count as 0.01% so the
logarithm stays finite. Below ``drift.warn`` (0.1) is stable, above
``drift.threshold`` (0.25) is flagged. The score gets the same treatment.

Examples
--------
>>> import numpy as np
>>> ref = np.repeat([0, 1, 2, 3], 25)
>>> round(psi(ref, ref), 6)
0.0
>>> round(psi(ref, np.repeat([0, 1, 2, 3], [10, 20, 30, 40])), 3)
0.228
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .config import DriftConfig
from .errors import PqlmlError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["psi", "drift_table", "training_window", "drift", "plot_drift", "EPSILON",
           "DRIFT_FILES"]

EPSILON = 1e-4
#: What ``pqlml drift`` writes into its folder.
DRIFT_FILES = ("drift.csv", "summary.json", "drift.png")


def _edges(reference: np.ndarray, bins: int) -> np.ndarray:
    values = reference[np.isfinite(reference)]
    if values.size == 0:
        return np.array([])
    return np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]))


def _shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of ``values`` per bin: right-closed quantile bins, then a missing-value bin."""
    values = np.asarray(values, float)
    missing = ~np.isfinite(values)
    counts = np.bincount(np.searchsorted(edges, values[~missing], side="left"),
                         minlength=len(edges) + 1).astype(float)
    counts = np.append(counts, missing.sum())
    return counts / max(len(values), 1)


def psi(reference, current, bins: int = 10) -> float:
    """Population stability index of ``current`` against ``reference`` (see module)."""
    reference, current = np.asarray(reference, float), np.asarray(current, float)
    edges = _edges(reference, bins)
    r = np.clip(_shares(reference, edges), EPSILON, None)
    c = np.clip(_shares(current, edges), EPSILON, None)
    return float(np.sum((c - r) * np.log(c / r)))


def drift_table(reference: pd.DataFrame, current: pd.DataFrame, columns, *, bins: int = 10,
                threshold: float = 0.25, warn: float = 0.1) -> pd.DataFrame:
    """One row per column: ``psi``, ``status`` (stable / moderate / drift), ``flagged``,
    the means and the share of zeros in each population; worst first."""
    rows = []
    for col in columns:
        ref = pd.to_numeric(reference[col], errors="coerce").to_numpy(float)
        cur = pd.to_numeric(current[col], errors="coerce").to_numpy(float)
        value = psi(ref, cur, bins)
        rows.append({"feature": col, "psi": value,
                     "status": "drift" if value > threshold else
                     "moderate" if value > warn else "stable",
                     "flagged": value > threshold,
                     "reference_mean": float(np.nanmean(ref)) if np.isfinite(ref).any() else np.nan,
                     "current_mean": float(np.nanmean(cur)) if np.isfinite(cur).any() else np.nan,
                     "reference_zero_share": float(np.mean(ref == 0)),
                     "current_zero_share": float(np.mean(cur == 0))})
    return pd.DataFrame(rows).sort_values("psi", ascending=False, kind="stable").reset_index(drop=True)


def training_window(model, dates) -> list:
    """The snapshot ``dates`` inside ``model``'s training window (``model.trained_on``:
    ``as_of_first`` .. ``as_of_last``): the reference of :func:`drift`.

    Examples
    --------
    >>> class M:
    ...     trained_on = {"as_of_first": "2024-02-01", "as_of_last": "2024-03-01"}
    >>> training_window(M(), ["2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01"])
    ['2024-02-01', '2024-03-01']
    """
    first, last = (pd.Timestamp(model.trained_on[k]) for k in ("as_of_first", "as_of_last"))
    window = [d for d in dates if first <= pd.Timestamp(d) <= last]
    if not window:
        raise PqlmlError(f"None of the config's snapshot dates falls inside the model's "
                         f"training window ({first.date()} .. {last.date()}). Fix: use the config "
                         f"the model was trained with, or widen [schedule].")
    return window


def drift(reference: pd.DataFrame, current: pd.DataFrame, *, model,
          settings: DriftConfig = DriftConfig()) -> tuple[pd.DataFrame, dict]:
    """PSI of every feature ``model`` uses and of its score, between ``reference`` (the
    feature rows of its training window, :func:`training_window`) and ``current`` (the
    rows of one as_of). ``settings``: bins, warn and threshold (``[drift]``). Returns
    (table, summary)."""
    model.check_features(current)
    reference, current = (pd.concat([f, pd.Series(model.predict(f), index=f.index, name="score")],
                                    axis=1) for f in (reference, current))
    d = settings
    table = drift_table(reference, current, ["score", *model.features], bins=d.bins,
                        threshold=d.threshold, warn=d.warn)
    as_of = pd.to_datetime(current.as_of, utc=True).max()
    summary = {"as_of": str(as_of.date()) if len(current) else None,
               "reference": [str(pd.Timestamp(model.trained_on[k]).date())
                             for k in ("as_of_first", "as_of_last")],
               "reference_rows": len(reference), "current_rows": len(current),
               "threshold": d.threshold, "warn": d.warn, "bins": d.bins,
               "psi_score": float(table.loc[table.feature == "score", "psi"].iloc[0]),
               "features_flagged": int(table.flagged[table.feature != "score"].sum()),
               "features_moderate": int((table.status == "moderate").sum())}
    return table, summary


def plot_drift(table: pd.DataFrame, *, threshold: float, warn: float, top: int = 25,
               ax=None) -> Figure:
    """Horizontal bars of the ``top`` largest PSIs (``table``: :func:`drift`'s) with the warn
    and flag lines; a matplotlib figure, drawn into ``ax`` when given (:mod:`pqlml.figures`)."""
    from .figures import panel

    shown = table.head(top).iloc[::-1]
    colors = ["#c0392b" if s == "drift" else "#e67e22" if s == "moderate" else "#7f8c8d"
              for s in shown.status]
    fig, ax = panel(ax, size=(8, 0.28 * len(shown) + 1.5))
    ax.barh(shown.feature, shown.psi, color=colors)
    ax.axvline(warn, color="#e67e22", ls=":", label=f"moderate > {warn:g}")
    ax.axvline(threshold, color="#c0392b", ls="--", label=f"drift > {threshold:g}")
    ax.set_xlabel("population stability index (PSI)")
    ax.set_title("Drift since the champion's training window")
    ax.legend(loc="lower right")
    return fig
