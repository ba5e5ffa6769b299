"""Backtest pictures: gains, calibration, and conversion per tier for model vs rules."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..outputs import save_figure
from ..tiers import TIERS

__all__ = ["gains_plot", "calibration_plot", "tier_plot"]


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def gains_plot(rows: pd.DataFrame, outcome: str, path: Path) -> Path:
    """Share of converters found vs share of accounts contacted, pooled over folds."""
    plt = _plt()
    y = rows[outcome].to_numpy(float)
    fig, ax = plt.subplots(figsize=(6, 4.5))
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
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)
    return path


def calibration_plot(rows: pd.DataFrame, outcome: str, path: Path, bins: int = 10) -> Path:
    """Observed rate vs mean predicted probability in equal-count bins."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4.5))
    y = rows[outcome].to_numpy(float)
    for col, label in (("p_model", "model"), ("p_rules", "rules (step score)"),
                       ("p_generic_logistic", "generic logistic"), ("p_oracle", "oracle")):
        if col in rows and rows[col].notna().all():
            p = rows[col].to_numpy(float)
            order = np.argsort(p, kind="stable")
            parts = [part for part in np.array_split(order, bins) if len(part)]
            ax.plot([p[i].mean() for i in parts], [y[i].mean() for i in parts], "o-",
                    label=label, ms=3)
    top = max(float(rows.p_model.max()), float(y.mean()) * 3)
    ax.plot([0, top], [0, top], color="grey", lw=0.6)
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("observed rate")
    ax.set_title("calibration (equal-count bins)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)
    return path


def tier_plot(tiers: pd.DataFrame, outcome: str, path: Path) -> Path:
    """Conversion rate per tier, intent from the model vs from the rule (when there is one)."""
    plt = _plt()
    order = list(TIERS)
    fig, ax = plt.subplots(figsize=(6, 4))
    x = np.arange(len(order))
    for i, who in enumerate(w for w in ("model", "rules") if w in tiers):
        rate = [tiers[tiers[who] == t][outcome].mean() * 100 if (tiers[who] == t).any() else 0
                for t in order]
        ax.bar(x + (i - 0.5) * 0.38, rate, width=0.38, label=who)
    ax.set_xticks(x, order)
    ax.set_ylabel(f"{outcome.replace('_', '-')} rate within the horizon (%)")
    ax.set_title("conversion per tier: the same labels, intent from model or rules")
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)
    return path
