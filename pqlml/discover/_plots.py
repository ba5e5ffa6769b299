"""Pictures of the scan: a Compass-style heatmap per signal (at least n times x within d days)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..outputs import save_figure

__all__ = ["heatmap", "top_signals_chart"]


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def heatmap(rows: pd.DataFrame, path: Path, *, outcome: str, alpha: float) -> Path:
    """Lift of "did it at least n times within d days" per cell; support and a dot where
    the rule is significant (q <= alpha)."""
    plt = _plt()
    grid = rows.pivot_table(index="at_least", columns="days", values="lift", aggfunc="first")
    support = rows.pivot_table(index="at_least", columns="days", values="support", aggfunc="first")
    q = rows.pivot_table(index="at_least", columns="days", values="q_value", aggfunc="first")
    fig, ax = plt.subplots(figsize=(1.3 * grid.shape[1] + 2.2, 0.45 * grid.shape[0] + 1.6))
    im = ax.imshow(grid.to_numpy(float), cmap="RdBu_r", aspect="auto",
                   vmin=0, vmax=max(2.0, float(np.nanmax(grid.to_numpy(float)))))
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            lift, n = grid.iat[i, j], support.iat[i, j]
            if np.isnan(lift):
                continue
            mark = " *" if q.iat[i, j] <= alpha else ""
            ax.text(j, i, f"{lift:.1f}x{mark}\nn={int(n):,}", ha="center", va="center", fontsize=7,
                    in_layout=False)        # inside the axes: tight_layout need not measure it
    ax.set_xticks(range(grid.shape[1]), [f"{d} d" for d in grid.columns])
    ax.set_yticks(range(grid.shape[0]), [f">= {int(n)}" for n in grid.index])
    ax.set_xlabel("within the last")
    ax.set_ylabel("did it at least")
    name = rows.signal.iloc[0]
    ax.set_title(f"{name}: lift in {outcome.replace('_', '-')} rate (* q <= {alpha:g})",
                 fontsize=9)
    fig.colorbar(im, ax=ax, label="lift")
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)
    return path


def top_signals_chart(best: pd.DataFrame, path: Path, *, outcome: str, top: int = 15) -> Path:
    """Odds ratio (95% CI, log scale) of each signal's best rule; adjacent ones greyed."""
    plt = _plt()
    rows = best.head(top).iloc[::-1]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(rows) + 1.4))
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
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)
    return path
