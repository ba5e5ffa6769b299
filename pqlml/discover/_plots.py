"""Pictures of the scan: a Compass-style heatmap per signal (at least n times x within d days)
and the best rule per signal.

Each function returns a matplotlib figure and draws into ``ax=`` when given
(:mod:`pqlml.figures`); :meth:`pqlml.discover.Discovery.write` saves them.

The heatmap's colours are the lift on a diverging scale centred at 1 (no difference: white),
as far each way in ratio (``1/s`` to ``s``: a lift of 0.5 is as blue as 2 is red), ``s``
the largest lift or inverse lift among the cells drawn in colour, at least 2. A cell that
``MIN_CELL_SUPPORT`` or more rows do not support is grey: its lift is printed but sets no
colour and no scale (a rule two accounts meet can show a lift of 20 by chance).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["heatmap", "top_signals_chart", "lift_scale", "MIN_CELL_SUPPORT"]

#: Cells with fewer rows (account-months) meeting the rule are grey on the heatmap. Chosen
#: before looking at any data set, not tuned: 30 is the usual floor for treating a rate as
#: roughly normal, and below it one converter more or less moves the cell's rate by over
#: 3 points (1/30), as much as a base rate of a few percent, so the lift is mostly noise.
MIN_CELL_SUPPORT = 30

#: The scale reaches at least this lift (and its inverse): a flat signal looks flat.
MIN_SPAN = 2.0


def lift_scale(lifts, support, *, min_support: int = MIN_CELL_SUPPORT) -> tuple[np.ndarray, float]:
    """``(shown, span)``: ``lifts`` masked where ``support < min_support`` or unknown, and
    the scale's reach ``s`` (colours from ``1/s`` to ``s``) from the cells left.

    Examples
    --------
    >>> shown, span = lift_scale([[1.5, 20.0], [0.25, np.nan]], [[400, 2], [90, 0]])
    >>> shown.mask.tolist(), span            # n = 2 sets nothing; 0.25 is 1/4
    ([[False, True], [False, True]], 4.0)
    >>> lift_scale([[1.5]], [[400]])[0].mask.tolist()      # a mask per cell, even with none
    [[False]]
    """
    lifts, support = np.asarray(lifts, float), np.asarray(support, float)
    shown = np.ma.masked_array(lifts, mask=~(support >= min_support) | ~np.isfinite(lifts))
    kept = shown.compressed()
    ratios = np.concatenate([kept, 1 / kept[kept > 0]])
    return shown, max(MIN_SPAN, float(ratios.max(initial=0.0)))


def heatmap(rows: pd.DataFrame, *, outcome: str, alpha: float = 0.05,
            min_support: int = MIN_CELL_SUPPORT, ax=None) -> Figure:
    """Lift of "did it at least n times within d days" per cell (``rows``: one signal's
    rows of the scan), its support and a star where the rule is significant (q <= alpha);
    colours as in the module docstring, grey below ``min_support`` rows."""
    from matplotlib.colors import TwoSlopeNorm

    from ..figures import panel

    grid = rows.pivot_table(index="at_least", columns="days", values="lift", aggfunc="first")
    support = rows.pivot_table(index="at_least", columns="days", values="support", aggfunc="first")
    support = support.reindex(index=grid.index, columns=grid.columns)
    q = rows.pivot_table(index="at_least", columns="days", values="q_value", aggfunc="first")
    q = q.reindex(index=grid.index, columns=grid.columns)
    fig, ax = panel(ax, size=(1.3 * grid.shape[1] + 2.2, 0.45 * grid.shape[0] + 1.6))
    shown, span = lift_scale(grid.to_numpy(float), support.to_numpy(float),
                             min_support=min_support)
    import matplotlib
    cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad="#d9d9d9")
    im = ax.imshow(shown, cmap=cmap, aspect="auto",
                   norm=TwoSlopeNorm(vcenter=1.0, vmin=1 / span, vmax=span))
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            lift, n = grid.iat[i, j], support.iat[i, j]
            if np.isnan(lift):
                continue
            mark = " *" if q.iat[i, j] <= alpha else ""
            ax.text(j, i, f"{lift:.1f}x{mark}\nn={int(n):,}", ha="center", va="center", fontsize=7,
                    color="#555555" if shown.mask[i, j] else "black",
                    in_layout=False)        # inside the axes: tight_layout need not measure it
    ax.set_xticks(range(grid.shape[1]), [f"{d:g} d" for d in grid.columns])
    ax.set_yticks(range(grid.shape[0]), [f">= {int(n)}" for n in grid.index])
    ax.set_xlabel("within the last")
    ax.set_ylabel("did it at least")
    name = rows.signal.iloc[0]
    ax.set_title(f"{name}: lift in {outcome.replace('_', '-')} rate "
                 f"(* q <= {alpha:g}; grey: n < {min_support})", fontsize=9)
    ticks = sorted({1 / span, 0.5, 1.0, 2.0, span})
    fig.colorbar(im, ax=ax, label="lift (1 = no difference)", ticks=ticks,
                 format=lambda v, _: f"{v:.2g}")
    return fig


def top_signals_chart(best: pd.DataFrame, *, outcome: str, top: int = 15, ax=None) -> Figure:
    """Odds ratio (95% CI, log scale) of each signal's best rule; adjacent ones greyed."""
    from ..figures import panel

    rows = best.head(top).iloc[::-1]
    fig, ax = panel(ax, size=(8, 0.35 * len(rows) + 1.4))
    colors = ["#999999" if a else "#4C72B0" for a in rows.adjacent]
    y = np.arange(len(rows))
    err = np.vstack([rows.odds_ratio - rows.or_low, rows.or_high - rows.odds_ratio])
    ax.errorbar(rows.odds_ratio, y, xerr=np.clip(err, 0, None), fmt="none", ecolor=colors)
    ax.scatter(rows.odds_ratio, y, c=colors)
    ax.set_yticks(y, [f"{r.rule}" + ("  (adjacent)" if r.adjacent else "") for r in rows.itertuples()],
                  fontsize=7)
    ax.set_xscale("log")
    ax.axvline(1, color="black", lw=0.5)
    ax.set_xlabel(f"odds ratio for {outcome.replace('_', '-')} (95% CI)")
    ax.set_title("best rule per signal, ranked by phi")
    return fig
