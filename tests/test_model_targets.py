"""The issue's model targets on a 20,000-account simulated company, forward in time.

Its own file (not in test_model.py): it is the suite's longest test, and ``make test``
hands out whole files, so alone it can run beside test_model.py's other work.
"""

from __future__ import annotations

import pytest

from pqlml.simulate import simulate
from simulated import run_backtest


@pytest.mark.slow
def test_targets_on_a_20000_account_company(tmp_path):
    """The issue's targets, forward in time on the simulated company (logistic model)."""
    sim = simulate(n_accounts=20_000, seed=1, out=tmp_path)
    sim.config.write_text(sim.config.read_text() + "\n[model]\nkind = \"logistic\"\nbootstrap = 50\n")
    found = run_backtest(sim.config)
    found.write(tmp_path / "bt")
    m, rows = found.metrics, found.rows
    model, rules, best, oracle = (m[k] for k in ("model", "rules", "best_single_rule", "oracle"))
    assert model["roc_auc"] >= oracle["roc_auc"] - 0.01
    assert model["converters_captured"] >= 1.5 * rules["converters_captured"]
    assert model["converters_captured"] > best["converters_captured"]
    assert model["ece"] <= 0.02
