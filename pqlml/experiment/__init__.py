"""Randomised holdouts: plan a test that proves a signal causes conversion, and read one.

- :func:`plan`: for a capacity (accounts a period), a base conversion rate and the smallest
  effect worth detecting, the holdout per period and the number of periods needed, by a
  stated power calculation (:data:`METHOD`), with what the holdout withholds.
- :func:`estimate_effects`: assignments (``account_id``, ``arm``, ``outcome``) in, the
  incremental conversion rate (touch - holdout) per segment and pooled out, with CIs
  cluster-robust by account.
- :func:`standardised_differences`: the arms' balance on pre-assignment features.
- :func:`capacity_of`, :func:`base_rate_of`: a plan's inputs from the project's data.
- :func:`analyze`: the project's holdouts table, its outcomes from the label machinery,
  segments and balance: an :class:`Experiment` with ``.write(out)``.

``pqlml experiment plan`` and ``pqlml experiment analyze`` run these.
"""

from ._analyze import Experiment, analyze, assignments_of
from ._balance import IMBALANCE, standardised_differences
from ._defaults import base_rate_of, capacity_of
from ._effects import ARMS, EFFECT_COLUMNS, POOLED, effect_of, estimate_effects, mean_ci
from ._power import METHOD, Plan, design_power, plan, plan_sentence

__all__ = ["plan", "Plan", "design_power", "plan_sentence", "METHOD", "estimate_effects",
           "effect_of", "mean_ci", "ARMS", "POOLED", "EFFECT_COLUMNS", "standardised_differences",
           "IMBALANCE", "analyze", "Experiment", "assignments_of", "base_rate_of",
           "capacity_of"]
