"""Small, seeded inputs for every pqlml plotting function, and one call of each.

Shared by tests/test_figures.py and the Jupyter kernel it starts (which imports this file
by path). The tables come from pqlml's own functions where one makes them (``group_rates``,
``drift_table``); the scan rows and the backtest rows are built here with the columns
those stages write, so a test controls the cells it checks (a cell with n = 2).
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd

PACKAGE = Path(__file__).resolve().parents[1] / "pqlml"


def plotting_functions() -> set[str]:
    """``module:function`` of every public pqlml function annotated to return a ``Figure``,
    read from the source (a new plotting function is found without being listed)."""
    found = set()
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_") and \
                    node.returns is not None and ast.unparse(node.returns).endswith("Figure"):
                found.add(f"{module.removesuffix('.__init__')}:{node.name}")
    return found


def heatmap_rows() -> pd.DataFrame:
    """One signal's scan rows: 3 thresholds x 3 windows; the cell (>= 5, 7 d) has n = 2 and a
    lift of 20, the cell (>= 5, 30 d) n = 29 and a lift of 6, the rest n >= 30."""
    lift = [[1.2, 1.4, 1.6], [1.8, 2.5, 3.0], [20.0, 6.0, 3.5]]
    support = [[900, 1500, 2100], [300, 600, 800], [2, 29, 120]]
    q = [[0.2, 0.04, 0.01], [0.03, 0.001, 0.001], [0.9, 0.3, 0.001]]
    rows = [{"signal": "report_exported", "at_least": n, "days": d, "lift": lift[i][j],
             "support": support[i][j], "q_value": q[i][j],
             "rule": f"events_report_exported_{d}d >= {n}"}
            for i, n in enumerate((1.0, 2.0, 5.0)) for j, d in enumerate((7.0, 30.0, 90.0))]
    return pd.DataFrame(rows)


def best_rules() -> pd.DataFrame:
    return pd.DataFrame({"rule": ["a >= 1", "b >= 2", "c >= 3"], "odds_ratio": [3.0, 1.5, 0.7],
                         "or_low": [2.0, 1.1, 0.5], "or_high": [4.5, 2.0, 0.98],
                         "adjacent": [False, True, False]})


def backtest_rows(seed: int = 0, n: int = 2_000) -> pd.DataFrame:
    """Test rows as the backtest keeps them: probabilities of a model that runs high (up to
    about 0.35), labels drawn from a truth, a rule's flags."""
    rng = np.random.default_rng(seed)
    truth = rng.beta(0.6, 8, n)
    p_model = np.clip(truth * 1.3 + rng.normal(0, 0.01, n), 0.001, 0.35)
    y = (rng.random(n) < truth).astype(int)
    return pd.DataFrame({"fold": np.repeat([0, 1], n // 2), "p_model": p_model,
                         "p_oracle": truth, "conversion": y,
                         "rule_flag": truth > np.quantile(truth, 0.9),
                         "fit": rng.random(n) < 0.5})


def tier_rows(rows: pd.DataFrame) -> pd.DataFrame:
    from pqlml.backtest import tier_table
    from pqlml.tiers import TierPolicy

    tiers = tier_table(rows, TierPolicy())
    tiers["conversion"] = rows.conversion
    return tiers


def drift_rows(seed: int = 0) -> pd.DataFrame:
    from pqlml.drift import drift_table

    rng = np.random.default_rng(seed)
    ref = pd.DataFrame({f"f{i}": rng.normal(0, 1, 500) for i in range(6)})
    cur = pd.DataFrame({f"f{i}": rng.normal(i * 0.3, 1, 500) for i in range(6)})
    return drift_table(ref, cur, list(ref.columns), threshold=0.25, warn=0.1)


def rate_rows(kinds: int = 6, seed: int = 0) -> pd.DataFrame:
    """``group_rates`` over ``kinds`` groupings of 400 rows and two periods."""
    from pqlml.rules import group_rates

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"as_of": pd.to_datetime(rng.choice(["2024-01-01", "2024-02-01"], 400),
                                                  utc=True),
                          "conversion": rng.integers(0, 2, 400),
                          "hand_raise": rng.integers(0, 2, 400)})
    groups = {f"kind {k}": pd.Series(rng.choice(["a", "b", "c"], 400), index=frame.index)
              for k in range(kinds)}
    return group_rates(frame, groups)


def call_every_plot() -> dict:
    """``{module:function: Figure}``: each plotting function called once on the inputs above."""
    from pqlml.backtest import calibration_plot, gains_plot, tier_plot
    from pqlml.discover import heatmap, top_signals_chart
    from pqlml.drift import plot_drift
    from pqlml.rules import plot_rates

    rows = backtest_rows()
    return {
        "pqlml.backtest._plots:gains_plot": gains_plot(rows, "conversion"),
        "pqlml.backtest._plots:calibration_plot": calibration_plot(rows, "conversion"),
        "pqlml.backtest._plots:tier_plot": tier_plot(tier_rows(rows), "conversion"),
        "pqlml.discover._plots:heatmap": heatmap(heatmap_rows(), outcome="hand_raise"),
        "pqlml.discover._plots:top_signals_chart": top_signals_chart(best_rules(),
                                                                     outcome="hand_raise"),
        "pqlml.drift:plot_drift": plot_drift(drift_rows(), threshold=0.25, warn=0.1),
        "pqlml.rules._report:plot_rates": plot_rates(rate_rows()),
    }
