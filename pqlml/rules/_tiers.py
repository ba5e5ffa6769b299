"""Fit, funnels, tiers and the playbook: the lists sales already works from.

* **fit** (the ICP): industry, employee range, country and work email, each a
  criterion only when the config sets it; ``fit_score`` is the share met,
  ``fit`` is all of them met;
* **funnel**: ``self_serve`` (not ICP, or no real usage) · ``pql`` (ICP, real
  usage, several users, and a small company or a buyer among the users) ·
  ``pqa`` (ICP, real usage, several users, a larger company with no buyer in
  the product) · else ``self_serve``;
* **tier**: intent (the config's ``tiers.intent_rule``) x fit, by the one tier
  policy (:class:`pqlml.tiers.TierPolicy`);
* **motion**: the playbook's recommendation for tier x segment x product
  complexity; where the scores carry an uplift, a worked tier whose touch adds little goes
  to self-serve (:func:`self_serve_by_uplift`).

Examples
--------
>>> motion_for("tier_1", "enterprise", "complex", {})
'enterprise outreach'
>>> motion_for("tier_1", "smb", "simple", {"tier_1/smb/*": "founder call"})
'founder call'
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..config import FitConfig, FunnelsConfig
from ._expr import Rule

__all__ = ["FUNNELS", "fit_flags", "funnel_conditions", "funnel_of", "motion_for",
           "self_serve_by_uplift", "SELF_SERVE_MOTION", "WORKED_TIERS"]

FUNNELS = ("pql", "pqa", "self_serve")
_LARGE = ("mid_market", "mid-market", "enterprise")


def fit_flags(frame: pd.DataFrame, fit: FitConfig) -> pd.DataFrame:
    """``fit_score`` (share of the configured ICP criteria met) and ``fit`` (all met).

    ``frame`` holds the account attributes it needs: ``industry``, ``country``,
    ``employees`` and ``work_email_share``; a missing value fails its criterion.
    """
    criteria = {}
    if fit.industries:
        criteria["industry"] = _col(frame, "industry").str.lower().isin(
            [i.lower() for i in fit.industries])
    if fit.employees_min or fit.employees_max is not None:
        emp = pd.to_numeric(_col(frame, "employees"), errors="coerce")
        hi = np.inf if fit.employees_max is None else fit.employees_max
        criteria["employees"] = emp.between(fit.employees_min, hi).fillna(False)
    if fit.countries:
        criteria["country"] = _col(frame, "country").str.upper().isin(
            [c.upper() for c in fit.countries])
    if fit.require_work_email:
        criteria["work_email"] = pd.to_numeric(_col(frame, "work_email_share"),
                                               errors="coerce").ge(0.5).fillna(False)
    if not criteria:
        ones = pd.Series(1.0, index=frame.index)
        return pd.DataFrame({"fit_score": ones, "fit": ones.astype(bool)})
    met = pd.DataFrame(criteria).fillna(False).astype(bool)
    return pd.DataFrame({"fit_score": met.mean(axis=1), "fit": met.all(axis=1)})


def _col(frame: pd.DataFrame, name: str) -> pd.Series:
    if name not in frame.columns:
        return pd.Series(pd.NA, index=frame.index, dtype="object")
    return frame[name].astype("string")


def funnel_conditions(frame: pd.DataFrame, funnels: FunnelsConfig) -> dict[str, pd.Series]:
    """The ``[funnels]`` conditions evaluated per row: usage, several_users, small_company,
    buyer_in_product."""
    return {k: Rule.parse(f"funnels.{k}", getattr(funnels, k)).evaluate(frame)
            for k in ("usage", "several_users", "small_company", "buyer_in_product")}


def funnel_of(frame: pd.DataFrame, fit: pd.Series, funnels: FunnelsConfig) -> pd.Series:
    """``pql`` / ``pqa`` / ``self_serve`` per row, from the fit flag and the funnel conditions."""
    cond = funnel_conditions(frame, funnels)
    engaged = fit & cond["usage"] & cond["several_users"]
    pql = engaged & (cond["small_company"] | cond["buyer_in_product"])
    pqa = engaged & ~pql
    out = np.select([pql, pqa], ["pql", "pqa"], default="self_serve")
    return pd.Series(out, index=frame.index, name="funnel")


#: The playbook's self-serve motion (the default table's, and the uplift rule's).
SELF_SERVE_MOTION = "self-serve nudge"
#: The tiers sales works (in front of a rep); the rest are left to the product.
WORKED_TIERS = ("tier_1", "tier_2")


def self_serve_by_uplift(tier, uplift_high, threshold: float) -> np.ndarray:
    """True where the playbook sends a worked tier (:data:`WORKED_TIERS`) to self-serve
    because a touch adds little: the uplift band's upper end is at or below ``threshold``
    (``[playbook] self_serve_uplift``, probability units). A missing uplift (not
    identifiable) never moves; a ``threshold`` of -1 or less moves nobody.

    >>> self_serve_by_uplift(["tier_1", "tier_2", "tier_3", "tier_1"],
    ...                      [0.0, 0.05, -0.02, float("nan")], 0.0).tolist()
    [True, False, False, False]
    """
    high = np.asarray(uplift_high, dtype=float)
    if threshold <= -1:
        return np.zeros(len(high), bool)
    with np.errstate(invalid="ignore"):
        return np.isin(np.asarray(tier, dtype=object), WORKED_TIERS) & (high <= threshold)


def _default_motion(tier: str, segment: str, complexity: str) -> str:
    large = str(segment).lower() in _LARGE
    if tier == "tier_1":
        return "enterprise outreach" if large or complexity == "complex" else "sales assist"
    if tier == "tier_2":
        return "sales assist" if large and complexity != "simple" else SELF_SERVE_MOTION
    if tier == "tier_3":
        return "sales assist" if complexity == "complex" else SELF_SERVE_MOTION
    return SELF_SERVE_MOTION


def motion_for(tier: str, segment, complexity: str, overrides) -> str:
    """The playbook's motion: the most specific matching override, else the default table."""
    best, best_score = None, -1
    for key, motion in overrides.items():
        parts = key.split("/")
        values = (tier, str(segment), complexity)
        if all(p == "*" or p == v for p, v in zip(parts, values)):
            score = sum(p != "*" for p in parts)
            if score > best_score:
                best, best_score = motion, score
    return best if best is not None else _default_motion(tier, segment, complexity)
