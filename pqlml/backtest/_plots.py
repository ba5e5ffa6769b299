"""Backtest pictures: gains, calibration, and conversion per tier for model vs rules.

Each function returns a matplotlib figure and draws into ``ax=`` when given
(:mod:`pqlml.figures`); the report writer saves them (:func:`pqlml.outputs.save_figure`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..tiers import TIERS

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["gains_plot", "calibration_plot", "calibration_bins", "tier_plot"]

#: Above the largest binned probability or rate, the calibration axes run this much further.
CALIBRATION_MARGIN = 1.08


def gains_plot(rows: pd.DataFrame, outcome: str, *, ax=None) -> Figure:
    """Share of converters found vs share of accounts contacted, pooled over folds."""
    from ..figures import panel

    fig, ax = panel(ax, size=(6, 4.5))
    y = rows[outcome].to_numpy(float)
    for col, label in (("p_model", "model"), ("p_oracle", "oracle (truth)"),
                       ("best_single_score", "best single signal"),
                       ("p_generic_logistic", "generic logistic (baseline)"),
                       ("p_rfm_logistic", "recency/frequency/monetary (baseline)"),
                       ("act_score", "activated, then by engagement")):
        if col in rows and rows[col].notna().all():
            order = np.argsort(-rows[col].to_numpy(float), kind="stable")
            found = np.cumsum(y[order]) / y.sum()
            ax.plot(np.arange(1, len(y) + 1) / len(y), found, label=label)
    if "rule_flag" in rows:
        share, caught = rows.rule_flag.mean(), y[rows.rule_flag.to_numpy(bool)].sum() / y.sum()
        ax.scatter([share], [caught], color="black", zorder=3, label="the rules")
        ax.axvline(share, color="grey", lw=0.6, ls="--")
    ax.plot([0, 1], [0, 1], color="grey", lw=0.6, label="random")
    who = "user" if "user_id" in rows else "account"
    ax.set_xlabel(f"share of {who}-months contacted (best scored first)")
    ax.set_ylabel(f"share of {outcome.replace('_', '-')}s found")
    ax.set_title("gains: the model vs the rules at the rules' volume (dashed)"
                 if "rule_flag" in rows else "gains: best scored first (no rule for this entity)")
    ax.legend(fontsize=8)
    return fig


def calibration_bins(rows: pd.DataFrame, outcome: str, bins: int = 10) -> pd.DataFrame:
    """Per score column present (``p_model``, ``p_rules``, ``p_generic_logistic``,
    ``p_oracle``) and equal-count bin of it: ``score``, ``bin``, ``predicted`` (the bin's
    mean probability), ``observed`` (its ``outcome`` rate) and ``rows``.

    Examples
    --------
    >>> rows = pd.DataFrame({"p_model": [0.1, 0.2, 0.3, 0.4], "conversion": [0, 0, 1, 1]})
    >>> calibration_bins(rows, "conversion", bins=2)[["predicted", "observed", "rows"]]
       predicted  observed  rows
    0       0.15       0.0     2
    1       0.35       1.0     2
    """
    y = rows[outcome].to_numpy(float)
    out = []
    for col in ("p_model", "p_rules", "p_generic_logistic", "p_oracle"):
        if col in rows and rows[col].notna().all():
            p = rows[col].to_numpy(float)
            order = np.argsort(p, kind="stable")
            for i, part in enumerate(x for x in np.array_split(order, bins) if len(x)):
                out.append({"score": col, "bin": i, "predicted": p[part].mean(),
                            "observed": y[part].mean(), "rows": len(part)})
    return pd.DataFrame(out, columns=["score", "bin", "predicted", "observed", "rows"])


def calibration_plot(rows: pd.DataFrame, outcome: str, *, bins: int = 10, ax=None) -> Figure:
    """Observed rate vs mean predicted probability in equal-count bins
    (:func:`calibration_bins`); both axes run from 0 to a little (``CALIBRATION_MARGIN``)
    above the largest binned probability or rate, on the same scale, so the diagonal is
    perfect calibration and the points fill the panel."""
    from ..figures import panel

    fig, ax = panel(ax, size=(5, 4.5))
    table = calibration_bins(rows, outcome, bins)
    labels = {"p_model": "model", "p_rules": "rules (step score)",
              "p_generic_logistic": "generic logistic", "p_oracle": "oracle"}
    for col, part in table.groupby("score", sort=False):
        ax.plot(part.predicted, part.observed, "o-", label=labels[col], ms=3)
    largest = float(np.nanmax(table[["predicted", "observed"]].to_numpy(float), initial=0.0))
    top = min(1.0, largest * CALIBRATION_MARGIN) if largest > 0 else 1.0
    ax.plot([0, top], [0, top], color="grey", lw=0.6)
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_aspect("equal")
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("observed rate")
    ax.set_title("calibration (equal-count bins)")
    ax.legend(fontsize=8)
    return fig


def tier_plot(tiers: pd.DataFrame, outcome: str, *, ax=None) -> Figure:
    """Conversion rate per tier, intent from the model vs from the rule (when there is one)."""
    from ..figures import panel

    fig, ax = panel(ax, size=(6, 4))
    order = list(TIERS)
    x = np.arange(len(order))
    for i, who in enumerate(w for w in ("model", "rules") if w in tiers):
        rate = [tiers[tiers[who] == t][outcome].mean() * 100 if (tiers[who] == t).any() else 0
                for t in order]
        ax.bar(x + (i - 0.5) * 0.38, rate, width=0.38, label=who)
    ax.set_xticks(x, order)
    ax.set_ylabel(f"{outcome.replace('_', '-')} rate within the horizon (%)")
    ax.set_title("conversion per tier: the same labels, intent from model or rules")
    ax.legend()
    return fig
