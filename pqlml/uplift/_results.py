"""The figures of ``pqlml uplift`` from the pooled test rows: each policy at capacity, the Qini
curves and coefficient, and the effect per segment, estimated beside the truth when known.

Rows of unidentifiable segments are left out of every ranking (none of the policies may call
them here: the comparison is on the accounts whose effect can be learned). A policy calls each
test period's ``capacity`` best-ranked rows. Its incremental conversions per 100 touches are
estimated by the AIPW pseudo-outcomes (:func:`~pqlml.uplift.aipw`: the learner's ``mu0``,
``mu1`` and the forward propensity, clipped to ``[min_overlap, 1 - min_overlap]``) and, on
simulated data, known (the mean true effect). The Qini curves read the randomised rows (the
experiment's touch and holdout arms) when both arms have at least
:data:`~pqlml.uplift._overlap.MIN_COMPARABLE` rows, else the comparable rows weighted by
inverse propensities (``qini_rows`` says which).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..experiment import mean_ci
from ._evaluate import at_capacity, qini_with_cis, top_per_period
from ._propensity import aipw
from ._overlap import MIN_COMPARABLE, Overlap

__all__ = ["POLICIES", "policies_at_capacity", "qini_by_policy", "segment_effects",
           "with_pseudo_outcomes"]

#: policy -> the column it ranks by
POLICIES = {"uplift": "uplift", "probability": "p_conversion", "rules": "rules_score",
            "true_effect": "true_effect"}


def _available(rows: pd.DataFrame) -> dict:
    return {name: col for name, col in POLICIES.items()
            if col in rows.columns and rows[col].notna().all()}


def policies_at_capacity(rows: pd.DataFrame, *, key: str, capacity: int, reps: int) -> dict:
    """Per policy: :func:`~pqlml.uplift._evaluate.at_capacity` of its top ``capacity`` rows a
    period; then ``uplift_vs_true_effect`` and ``uplift_vs_probability``: the ratios of the
    uplift ranking's incremental conversions to theirs (true ones when known, else estimated)."""
    out = {}
    truth = rows["true_effect"].to_numpy(float) if "true_effect" in _available(rows) else None
    for name, col in _available(rows).items():
        chosen = top_per_period(rows[col].to_numpy(float), rows["fold"].to_numpy(), capacity)
        out[name] = at_capacity(chosen, rows["psi"], rows[key], true_effect=truth, reps=reps)
    basis = "true_per_100" if truth is not None else "estimated_per_100"
    for other in ("true_effect", "probability"):
        if "uplift" in out and other in out:
            den = out[other][basis]
            out[f"uplift_vs_{other}"] = float(out["uplift"][basis] / den) if den else None
    out["compared_on"] = "true" if truth is not None else "estimated"
    return out


def qini_by_policy(rows: pd.DataFrame, *, outcome: str, key: str, reps: int) -> tuple[dict, dict, str]:
    """({policy: {coefficient, coefficient_ci}}, {policy: curves}, which rows were read)."""
    arms = rows["arm"]
    randomised = arms.notna() & ((arms == "touch") | (arms == "holdout"))
    enough = min((arms == "touch").sum(), (arms == "holdout").sum()) >= MIN_COMPARABLE
    if enough:
        data, weights, basis = rows[randomised], None, "randomised"
    else:
        data = rows[rows["comparable"]]
        e, t = data["e"].to_numpy(float), data["touched"].to_numpy(int)
        weights, basis = np.where(t == 1, 1 / e, 1 / (1 - e)), "comparable, inverse-propensity weighted"
    numbers, curves = {}, {}
    for name, col in _available(data).items():
        c, q, ci = qini_with_cis(data[outcome], data["touched"], data[col], data[key],
                                 weights=weights, reps=reps)
        numbers[name] = {"coefficient": q, "coefficient_ci": ci, "rows": int(len(data))}
        curves[name] = c
    return numbers, curves, basis


def segment_effects(rows: pd.DataFrame, found: Overlap, *, key: str) -> pd.DataFrame:
    """The overlap table (:class:`~pqlml.uplift._overlap.Overlap`) with, per identifiable
    segment, ``estimated_effect`` (mean AIPW pseudo-outcome of its test rows, probability
    points) and its ``ci_low`` / ``ci_high``, cluster-robust by account
    (:func:`pqlml.experiment.mean_ci`: the influence-function CI), ``model_effect`` (the
    learner's mean effect) and, when known, ``true_effect`` and ``truth_in_ci``."""
    table = found.table.copy()
    known = "true_effect" in rows.columns and rows["true_effect"].notna().any()
    for seg, part in rows.groupby("segment", sort=True):
        if seg not in table.index:
            continue
        if table.loc[seg, "identifiable"]:
            mean, low, high = mean_ci(part["psi"], part[key])
            table.loc[seg, ["estimated_effect", "ci_low", "ci_high", "model_effect"]] = (
                mean, low, high, part["uplift"].mean())
        if known:
            table.loc[seg, "true_effect"] = part["true_effect"].mean()
    if known and "estimated_effect" in table:
        inside = (table.ci_low <= table.true_effect) & (table.true_effect <= table.ci_high)
        table["truth_in_ci"] = inside.where(table.estimated_effect.notna())
    return table.reset_index()


def with_pseudo_outcomes(rows: pd.DataFrame, outcome: str, clip: float,
                         rate: float) -> pd.DataFrame:
    """``rows`` with ``psi``, the AIPW pseudo-outcome of each (the estimate of its effect;
    the propensity clipped on the balanced scale at the touch ``rate``)."""
    rows = rows.copy()
    rows["psi"] = aipw(rows[outcome], rows["touched"], rows["mu0"], rows["mu1"], rows["e"], clip,
                       rate)
    return rows
