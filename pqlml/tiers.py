"""The tier policy: how intent and ICP fit become Tier 1/2/3/self-serve, in one place.

The rules (:func:`pqlml.rules.assign`), the backtest (:func:`pqlml.backtest.model_intent`) and
scoring (:class:`pqlml.score.Scorer`) all ask one :class:`TierPolicy`, built from the config's
``[tiers]`` and ``[capacity]`` sections by :meth:`TierPolicy.from_config`.

Tiers
    ``tier_1`` intent and fit · ``tier_2`` fit, no intent (yet) · ``tier_3`` intent, no fit ·
    ``self_serve`` neither. A missing intent or fit counts as no intent / no fit.
Intent
    For the rules, the intent rule's flag. For a model, ``probability >= cutpoint``: a cutpoint
    never splits entities with the same probability, and raising it never moves an entity to a
    higher tier. The cutpoint is chosen per period (one ``as_of``) by the settings:

``[tiers] intent_rule``
    The rule (a name in ``[rules]``) that means high intent; ``""``: none.
``[tiers] method``
    ``"rules"`` (the default) or its synonym ``"match_rules"``: the rules' volume, the model's
    top *k* where *k* is how many entities the intent rule flags in that period, so model and
    rules spend the same sales time; without a rule (none set, or a user model whose rule
    reads account features) the capacity. ``"capacity"``: the top ``[capacity] per_period``.
    ``"precision"``: the lowest cutpoint whose flagged set is *expected* to convert at
    ``precision_target`` or better. ``"uplift"``: the top ``[capacity] per_period`` by the
    estimated effect of a touch (the scores' ``uplift``, :mod:`pqlml.uplift._scoring`):
    capacity goes where a touch adds the most conversions, not where buying is likeliest;
    a missing uplift (a segment where the effect is not identifiable) is never intent.
    The values the policy ranks are then uplifts (probability units, possibly negative);
    scoring refuses this method for a model without an uplift. The backtest learns no
    uplift: under this method it tiers the model's probabilities at the same capacity
    (``pqlml uplift`` is where ranking by uplift is evaluated).
``[tiers] precision_target``
    A number in (0, 1) for ``method = "precision"``.
``[capacity] per_period``
    Sales touches per period (``TierPolicy.capacity``).

What ``precision`` means, and why
    The target is on the flagged set's precision: the share of flagged entities that convert.
    When tiers are assigned the outcomes are unknown, so the cutpoint must come from something
    known then. Two candidates: the calibrated probabilities of the rows being tiered (their
    mean over the flagged set *is* its expected precision), or a cutpoint learned when the
    model was trained, from held-out outcomes, and stored with it. pqlml uses the first. It
    needs only the probabilities, so the backtest (each test period's own probabilities, never
    its labels) and scoring compute the same cutpoint from the same numbers, and anything with
    probabilities goes through the same code (a rule as a step score: its training precision).
    A stored cutpoint would tie the policy to the model file, could not be recomputed by the
    backtest for scoring's model, and would flag a different share whenever the base rate moves.
    The price: the cutpoint is as good as the calibration; the backtest's report shows the
    realized conversion of each tier, so a miscalibrated model is visible there.

Examples
--------
>>> import pandas as pd
>>> p = pd.Series([0.9, 0.7, 0.4, 0.2, 0.1])
>>> fit = pd.Series([True, False, True, False, True])
>>> policy = TierPolicy.from_config({"method": "precision", "precision_target": 0.6})
>>> policy.cutpoint(p)      # (0.9 + 0.7 + 0.4) / 3 = 0.67 >= 0.6; with 0.2 it is 0.55
0.4
>>> policy.tiers(p, fit).tolist()
['tier_1', 'tier_3', 'tier_1', 'self_serve', 'tier_2']
>>> TierPolicy(method="capacity", capacity=1).tiers(p, fit).tolist()
['tier_1', 'self_serve', 'tier_2', 'self_serve', 'tier_2']
>>> TierPolicy().tiers(p, fit, rule_volume=2).tolist()    # the rule flagged 2 this period
['tier_1', 'tier_3', 'tier_2', 'self_serve', 'tier_2']
>>> TierPolicy().tiers(pd.Series([True, False, None]), pd.Series([True, True, None])).tolist()
['tier_1', 'tier_2', 'self_serve']

By uplift (NaN: not identifiable, never intent), the capacity's two largest effects:

>>> uplift = pd.Series([0.05, float("nan"), 0.01, 0.08, -0.02])
>>> TierPolicy(method="uplift", capacity=2).tiers(uplift, fit).tolist()
['tier_1', 'self_serve', 'tier_2', 'tier_3', 'tier_2']

From a loaded config (``load_config("pqlml.toml")`` gives the same object):

>>> from pqlml.config import config_from_dict
>>> cfg = config_from_dict({"tiers": {"method": "capacity"}, "capacity": {"per_period": 50}},
...                        ".")
>>> TierPolicy.from_config(cfg)
TierPolicy(method='capacity', capacity=50, precision_target=0.2, intent_rule='')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from .errors import PqlmlError

__all__ = ["TIERS", "METHODS", "TierPolicy", "capacity_cutpoint", "precision_cutpoint"]

TIERS = ("tier_1", "tier_2", "tier_3", "self_serve")
#: The values of ``[tiers] method``; ``match_rules`` is a synonym of ``rules``.
METHODS = ("rules", "capacity", "match_rules", "precision", "uplift")


@dataclass(frozen=True)
class TierPolicy:
    """How intent is chosen and crossed with fit; the ``[tiers]`` settings (module docstring).

    Parameters
    ----------
    method : {"rules", "capacity", "match_rules", "precision", "uplift"}
    capacity : int
        Sales touches per period (``[capacity] per_period``), at least 1.
    precision_target : float
        In (0, 1), for ``method = "precision"``.
    intent_rule : str
        The name of the rule that means high intent, or ``""``.
    """

    method: str = "rules"
    capacity: int = 100
    precision_target: float = 0.2
    intent_rule: str = ""

    def __post_init__(self):
        def bad(name, expected, fix):
            return PqlmlError(f"The '{name}' parameter of TierPolicy must be {expected}. Got "
                              f"{getattr(self, name)!r} instead. Fix: e.g. {fix}.")
        if self.method not in METHODS:
            raise bad("method", "one of " + ", ".join(map(repr, METHODS)), "method='rules'")
        if isinstance(self.capacity, bool) or not isinstance(self.capacity, int | np.integer) \
                or self.capacity < 1:
            raise bad("capacity", "a positive integer (sales touches per period)", "capacity=100")
        target = self.precision_target
        if isinstance(target, bool) or not isinstance(target, int | float) or not 0 < target < 1:
            raise bad("precision_target", "a number strictly between 0 and 1",
                      "precision_target=0.2")
        if not isinstance(self.intent_rule, str):
            raise bad("intent_rule", 'a rule name or ""', "intent_rule='folk_pqa'")

    @classmethod
    def from_config(cls, config, *, capacity: int | None = None) -> "TierPolicy":
        """The policy of a loaded config (its ``[tiers]`` and ``[capacity]``), of a
        ``TiersConfig``, or of a ``[tiers]`` table as a dict; ``capacity`` overrides the
        config's ``[capacity] per_period`` (default 100 where there is none)."""
        names = [f.name for f in fields(cls) if f.name != "capacity"]
        if hasattr(config, "tiers") and hasattr(config, "capacity"):
            capacity = config.capacity.per_period if capacity is None else capacity
            config = config.tiers
        if isinstance(config, Mapping):
            unknown = sorted(set(config) - set(names))
            if unknown:
                raise PqlmlError(f"TierPolicy.from_config got unknown [tiers] key(s) "
                                 f"{', '.join(map(repr, unknown))}. Allowed: "
                                 f"{', '.join(names)}. Fix: leave them out.")
            settings = dict(config)
        elif all(hasattr(config, n) for n in names):
            settings = {n: getattr(config, n) for n in names}
        else:
            raise PqlmlError(f"TierPolicy.from_config needs a config (load_config's), its "
                             f"tiers section or a dict of [tiers] settings. Got "
                             f"{type(config).__name__} instead. Fix: e.g. "
                             "TierPolicy.from_config(load_config('pqlml.toml')).")
        return cls(**settings, **({} if capacity is None else {"capacity": capacity}))

    @property
    def reads_rule(self) -> bool:
        """Whether the cutpoint takes the intent rule's volume (``rule_volume``)."""
        return self.method in ("rules", "match_rules") and bool(self.intent_rule)

    def cutpoint(self, probability, *, rule_volume: int | None = None) -> float:
        """The cutpoint of one period's probabilities by ``method``; ``rule_volume``: how many
        entities the intent rule flags in that period (None: no rule applies; the capacity).
        ``inf`` flags nobody. Under ``method = "uplift"`` the values are uplifts (missing
        ones are left out) and the cutpoint is the capacity's."""
        if self.method == "uplift":
            u = _uplifts(probability)
            u = u[~np.isnan(u)]
            return capacity_cutpoint(u, min(self.capacity, len(u)))
        p = _probabilities(probability, "probability", unit=self.method == "precision")
        if self.method == "precision":
            return precision_cutpoint(p, self.precision_target)
        if self.method == "capacity" or rule_volume is None:
            return capacity_cutpoint(p, min(self.capacity, len(p)))
        return capacity_cutpoint(p, int(rule_volume))

    def intent(self, probability, cutpoint: float | None = None, *,
               rule_volume: int | None = None) -> pd.Series:
        """``probability >= cutpoint`` (None: :meth:`cutpoint`), a boolean Series (under
        ``method = "uplift"``: ``uplift >= cutpoint``, a missing uplift False)."""
        p = (_uplifts(probability) if self.method == "uplift"
             else _probabilities(probability, "probability"))
        if cutpoint is None:
            cutpoint = self.cutpoint(p, rule_volume=rule_volume)
        index = probability.index if isinstance(probability, pd.Series) else None
        return pd.Series(p >= cutpoint, index=index, name="intent")

    def tiers(self, intent_or_probability, fit, *, cutpoint: float | None = None,
              rule_volume: int | None = None) -> pd.Series:
        """Tier 1 (intent and fit), 2 (fit only), 3 (intent only), else ``self_serve``.

        ``intent_or_probability``: booleans (a rule's flags; missing is False) or
        probabilities, turned into intent by :meth:`intent`. ``fit``: booleans, missing is
        False. The result has ``fit``'s index when it is a Series, else the intent's."""
        intent = intent_or_probability
        if not _is_boolean(intent):
            intent = self.intent(intent, cutpoint, rule_volume=rule_volume)
        index = fit.index if isinstance(fit, pd.Series) else None
        intent, fit = _flags(intent, "intent"), _flags(fit, "fit")
        if len(intent) != len(fit):
            raise PqlmlError(f"TierPolicy.tiers needs one fit flag per row: got {len(intent)} "
                             f"intents and {len(fit)} fit flags. Fix: pass both for the same "
                             "rows, in the same order.")
        i, f = intent.to_numpy(), fit.to_numpy()      # by position: the same rows, in order
        out = np.select([i & f, f, i], list(TIERS[:3]), default=TIERS[3])
        return pd.Series(out, index=intent.index if index is None else index, name="tier")


def capacity_cutpoint(probability, k: int) -> float:
    """The probability of the k-th best-scored entity (the top k get intent; ties at it too);
    ``inf`` when k = 0 or there is nobody, the lowest probability when k exceeds the rows.

    Examples
    --------
    >>> capacity_cutpoint([0.1, 0.8, 0.5], 2), capacity_cutpoint([0.1, 0.8], 0)
    (0.5, inf)
    """
    p = np.sort(_probabilities(probability, "probability"))[::-1]
    if k <= 0 or not len(p):
        return np.inf
    return float(p[min(k, len(p)) - 1])


def precision_cutpoint(probability, target: float, *, outcomes=None) -> float:
    """The lowest cutpoint whose flagged set (``probability >= cutpoint``) converts at
    ``target`` or better: expected conversion (the mean probability) by default, the realized
    one with ``outcomes`` (0/1 per row, for a look back). ``inf`` when no set reaches it.

    Examples
    --------
    >>> precision_cutpoint([0.9, 0.1, 0.1], 0.5)     # with a 0.1, all three: 0.37 < 0.5
    0.9
    >>> precision_cutpoint([0.9, 0.3, 0.1], 0.5, outcomes=[0, 1, 1])
    0.1
    """
    p = _probabilities(probability, "probability", unit=outcomes is None)
    y = p if outcomes is None else np.asarray(outcomes, float)
    if len(y) != len(p):
        raise PqlmlError(f"precision_cutpoint needs one outcome per probability: got {len(y)} "
                         f"and {len(p)}. Fix: pass both for the same rows.")
    order = np.argsort(-p, kind="stable")
    p, y = p[order], y[order]
    last = np.r_[p[1:] != p[:-1], True]            # a cutpoint never splits a tie
    precision = (np.cumsum(y) / np.arange(1, len(p) + 1))[last]
    ok = np.flatnonzero(precision >= target)
    return float(p[last][ok[-1]]) if len(ok) else np.inf


def _probabilities(values, name: str, *, unit: bool = False) -> np.ndarray:
    """``values`` as a float array, refusing missing values (and, with ``unit``, values
    outside [0, 1])."""
    try:
        p = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise PqlmlError(f"The tier policy's {name} must be numbers. Got "
                         f"{pd.Series(values).dtype} values instead. Fix: pass a model's "
                         "probabilities.") from None
    p = p.reshape(-1) if p.ndim == 0 else p
    bad = np.isnan(p) | ((p < 0) | (p > 1) if unit else False)
    if bad.any():
        raise PqlmlError(f"The tier policy's {name} has {int(bad.sum())} value(s) that are "
                         f"missing{' or outside [0, 1]' if unit else ''} (first: "
                         f"{p[bad][0]!r}, row {int(np.flatnonzero(bad)[0])}). Fix: score every "
                         "row with a calibrated model.")
    return p


def _uplifts(values) -> np.ndarray:
    """``values`` as a float array of uplifts: missing allowed (not identifiable), else in
    [-1, 1]."""
    try:
        u = np.asarray(values, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise PqlmlError(f"The tier policy's uplifts must be numbers. Got "
                         f"{pd.Series(values).dtype} values instead. Fix: pass the scores' "
                         "uplift column.") from None
    bad = ~np.isnan(u) & ((u < -1) | (u > 1))
    if bad.any():
        raise PqlmlError(f"The tier policy's uplifts have {int(bad.sum())} value(s) outside "
                         f"[-1, 1] (first: {u[bad][0]!r}, row {int(np.flatnonzero(bad)[0])}). "
                         "Fix: pass effects on a probability (the scores' uplift column), not "
                         "percentage points.")
    return u


def _is_boolean(values) -> bool:
    s = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values))
    if pd.api.types.is_bool_dtype(s.dtype):
        return True
    return s.dtype == object and all(isinstance(v, bool | np.bool_) for v in s.dropna())


def _flags(values, name: str) -> pd.Series:
    """Booleans with missing values as False."""
    s = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values))
    if not _is_boolean(s):
        raise PqlmlError(f"The tier policy's {name} flags must be booleans. Got {s.dtype} "
                         f"values instead. Fix: pass True/False per row (missing counts as "
                         "False).")
    return s.astype("boolean").fillna(False).astype(bool)
