"""How each rule, tier, funnel and bucket converts, per period, with Wilson intervals.

Examples
--------
>>> lo, hi = wilson(3, 10)
>>> round(lo, 3), round(hi, 3)
(0.108, 0.603)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import proportion_confint

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["wilson", "group_rates", "plot_rates"]

OUTCOMES = ("conversion", "hand_raise")
#: Panels a row in :func:`plot_rates`: six kinds (three rules, tier, funnel, bucket) make a
#: 3 x 2 grid about 1,400 x 750 px at 110 dpi, instead of one row six panels wide.
RATE_COLUMNS = 3


def wilson(successes, trials, alpha: float = 0.05):
    """Wilson score interval (statsmodels); NaN where there are no trials."""
    successes, trials = np.asarray(successes, float), np.asarray(trials, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        lo, hi = proportion_confint(successes, np.where(trials > 0, trials, 1), alpha=alpha,
                                    method="wilson")
    lo, hi = np.where(trials > 0, lo, np.nan), np.where(trials > 0, hi, np.nan)
    return (float(lo), float(hi)) if np.ndim(lo) == 0 else (lo, hi)


def group_rates(frame: pd.DataFrame, groups: dict[str, pd.Series],
                outcomes: tuple[str, ...] = OUTCOMES) -> pd.DataFrame:
    """One row per period (and ``all``) x group: entities, outcomes, rates and Wilson CIs.

    ``frame`` has ``as_of`` and the ``outcomes`` columns (default ``conversion`` and
    ``hand_raise``; rows where the first is null, e.g. censored, are left out).
    ``groups`` maps ``kind`` to a Series of group names per row, e.g. ``{"tier":
    tiers}``; a rule's group is the rows it flags. Empty groups are listed with 0
    entities, never hidden.
    """
    labelled = frame[outcomes[0]].notna()
    rows = []
    periods = [("all", labelled)] + [(str(pd.Timestamp(p).date()), labelled & (frame.as_of == p))
                                     for p in sorted(frame.as_of.unique())]
    for kind, values in groups.items():
        names = values.cat.categories if hasattr(values, "cat") else sorted(values.dropna().unique())
        for period, mask in periods:
            for name in names:
                sel = mask & (values == name)
                row = {"period": period, "kind": kind, "group": str(name), "entities": int(sel.sum())}
                for outcome in outcomes:
                    k = int(frame.loc[sel, outcome].sum()) if sel.any() else 0
                    lo, hi = wilson(k, row["entities"])
                    rate = k / row["entities"] if row["entities"] else np.nan
                    row |= {outcome: k, f"{outcome}_rate": rate, f"{outcome}_low": lo,
                            f"{outcome}_high": hi}
                rows.append(row)
    return pd.DataFrame(rows)


def plot_rates(rates: pd.DataFrame, outcome: str = "conversion", *,
               columns: int = RATE_COLUMNS) -> Figure:
    """A bar chart of the pooled rate per group with Wilson error bars (``rates``:
    :func:`group_rates`'), one panel per kind in a grid ``columns`` wide; a matplotlib
    figure (:mod:`pqlml.figures`)."""
    from ..figures import panels

    pooled = rates[rates.period == "all"]
    kinds = list(dict.fromkeys(pooled.kind))
    fig, axes = panels(max(len(kinds), 1), size=(4.2, 3.4), columns=columns)
    for ax, kind in zip(axes, kinds):
        part = pooled[pooled.kind == kind]
        rate = part[f"{outcome}_rate"].to_numpy(float) * 100
        err = np.vstack([rate - part[f"{outcome}_low"] * 100, part[f"{outcome}_high"] * 100 - rate])
        err = np.clip(np.nan_to_num(err), 0, None)      # 0 of n: the bound is 0 up to rounding
        ax.bar(part.group, np.nan_to_num(rate), yerr=err, capsize=3,
               color="#4C72B0")
        for x, n in enumerate(part.entities):
            ax.annotate(f"n={n:,}", (x, 0), xytext=(0, 2), textcoords="offset points",
                        ha="center", fontsize=7, color="white" if n else "black")
        ax.set_title(kind)
        ax.set_ylabel(f"{outcome.replace('_', '-')} rate within horizon (%)")
        ax.tick_params(axis="x", rotation=30)
    fig.suptitle(f"Observed {outcome.replace('_', '-')} rate by group, all periods "
                 "(95% Wilson intervals)")
    return fig
