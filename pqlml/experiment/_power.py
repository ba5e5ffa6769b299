"""How large and how long a randomised holdout must be: a stated power calculation.

The design: each period, ``capacity`` accounts that sales would touch enter the test; a
``holdout`` of them (an integer count) is not touched, the rest are. Over ``periods``
periods the touch arm has ``periods * (capacity - holdout)`` accounts, the holdout arm
``periods * holdout``. The test: two-sided, two independent proportions (touch against
holdout), the normal approximation on Cohen's h (the arcsine difference
``2 asin(sqrt(p1)) - 2 asin(sqrt(p0))``), by statsmodels' ``NormalIndPower``. A larger
holdout reaches the power sooner but withholds more touches each period: the plan gives
the smallest holdout that reaches the power in the periods allowed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd

from ..errors import PqlmlError

__all__ = ["Plan", "plan", "design_power", "plan_sentence", "METHOD"]

METHOD = ("two-sided test of two independent proportions (touch vs holdout), normal "
          "approximation on Cohen's h (arcsine), statsmodels NormalIndPower")

#: The most periods a plan looks at: beyond that a test is not worth planning.
MAX_PERIODS = 1_000


@dataclass(frozen=True)
class Plan:
    """A planned holdout test: who is held out, for how long, what it costs and can find."""

    capacity: int                # accounts entering the test per period
    base_rate: float             # conversion per period without a touch (holdout arm)
    effect: float                # smallest effect worth detecting, absolute (probability)
    alpha: float
    power: float                 # the power asked for
    periods: int                 # periods the test runs
    holdout: int                 # accounts held out (not touched) per period
    achieved_power: float        # the design's power (>= power)
    tradeoff: pd.DataFrame       # periods, holdout share, withheld touches, power per option
    method: str = METHOD

    @property
    def holdout_share(self) -> float:
        """The share of each period's test accounts held out."""
        return self.holdout / self.capacity

    @property
    def touched(self) -> int:
        """Accounts touched per period inside the test."""
        return self.capacity - self.holdout

    def as_dict(self) -> dict:
        """What ``plan.json`` holds."""
        d = {k: v for k, v in asdict(self).items() if k != "tradeoff"}
        return d | {"holdout_share": self.holdout_share, "touched_per_period": self.touched,
                    "withheld_touches_per_period": self.holdout,
                    "withheld_touches_total": self.holdout * self.periods,
                    "n_touch": self.touched * self.periods,
                    "n_holdout": self.holdout * self.periods,
                    "target_rate": self.base_rate + self.effect,
                    "tradeoff": self.tradeoff.to_dict(orient="records")}


def design_power(effect: float, base_rate: float, *, n_touch: int, n_holdout: int,
                 alpha: float = 0.05) -> float:
    """The power of the two-sided test for ``n_touch`` touched and ``n_holdout`` held-out
    accounts (see the module's method).

    Examples
    --------
    >>> round(design_power(0.02, 0.05, n_touch=2000, n_holdout=2000), 3)
    0.762
    >>> design_power(0.02, 0.05, n_touch=2000, n_holdout=0)
    0.0
    """
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    if n_touch <= 0 or n_holdout <= 0:
        return 0.0
    h = abs(proportion_effectsize(base_rate + effect, base_rate))
    return float(NormalIndPower().power(h, nobs1=n_touch, alpha=alpha,
                                        ratio=n_holdout / n_touch))


def _check(capacity, base_rate, effect, alpha, power, periods) -> None:
    def bad(name, expect, value):
        raise PqlmlError(f"The '{name}' parameter of the experiment plan must be {expect}. "
                         f"Got {value!r} instead.")
    if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 2:
        bad("capacity", "an integer >= 2 (accounts entering the test per period)", capacity)
    if not 0 < base_rate < 1:
        bad("base_rate", "a conversion rate per period strictly between 0 and 1", base_rate)
    if effect == 0 or not 0 < base_rate + effect < 1:
        bad("effect", f"a non-zero change of the rate with base_rate + effect in (0, 1) "
                      f"(base_rate {base_rate})", effect)
    if not 0 < alpha < 1:
        bad("alpha", "strictly between 0 and 1", alpha)
    if not 0 < power < 1:
        bad("power", "strictly between 0 and 1", power)
    if periods is not None and (not isinstance(periods, int) or periods < 1):
        bad("periods", "a positive integer", periods)


def _smallest_holdout(capacity: int, periods: int, power_of) -> int | None:
    """The smallest holdout count per period reaching the power in ``periods`` periods
    (power rises with the holdout up to half the capacity), or None."""
    if power_of(periods, capacity // 2) is None:
        return None
    return _first(1, capacity // 2, lambda m: power_of(periods, m) is not None)


def _first(lo: int, hi: int, reached) -> int:
    """The smallest ``x`` in ``[lo, hi]`` with ``reached(x)``, ``reached`` rising with ``x``
    and true at ``hi`` (bisection).

    >>> _first(1, 100, lambda x: x * x >= 50)
    8
    """
    while lo < hi:
        mid = (lo + hi) // 2
        if reached(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def plan(capacity: int, base_rate: float, effect: float, *, periods: int | None = None,
         alpha: float = 0.05, power: float = 0.8, relative: bool = False) -> Plan:
    """The holdout and the number of periods a test needs to detect ``effect``.

    Parameters
    ----------
    capacity : int
        Accounts entering the test per period (the touches sales would make there).
    base_rate : float
        The conversion rate per period without a touch.
    effect : float
        The smallest effect worth detecting: absolute (0.02 = two probability points), or
        relative to ``base_rate`` when ``relative`` (0.3 = a 30% lift).
    periods : int, optional
        Periods the test may run. None: the fewest that can reach the power (half the
        capacity held out), then the smallest holdout that still does.
    alpha, power : float
        Two-sided significance level and the power asked for.

    Returns
    -------
    Plan
        ``holdout`` per period, ``periods``, ``achieved_power``; ``tradeoff``: for the
        plan's period count and a few longer ones, the smallest holdout and the touches it
        withholds.

    Examples
    --------
    >>> p = plan(400, 0.05, 0.02)
    >>> p.periods, p.holdout, round(p.achieved_power, 3)
    (11, 195, 0.8)
    >>> t = p.tradeoff.head(3)       # a longer test, a smaller holdout, fewer touches withheld
    >>> t.periods.tolist(), t.holdout_per_period.tolist(), t.withheld_total.tolist()
    ([11, 12, 13], [195, 143, 122], [2145, 1716, 1586])
    >>> plan(400, 0.05, 0.4, relative=True).effect
    0.02
    """
    effect = round(base_rate * effect, 12) if relative else effect
    _check(capacity, base_rate, effect, alpha, power, periods)

    def power_of(k: int, m: int) -> float | None:
        p = design_power(effect, base_rate, n_touch=k * (capacity - m), n_holdout=k * m,
                         alpha=alpha)
        return p if p >= power else None

    fastest = _fewest_periods(capacity, power_of)
    if periods is not None and periods < fastest:
        best = design_power(effect, base_rate, n_touch=periods * (capacity - capacity // 2),
                            n_holdout=periods * (capacity // 2), alpha=alpha)
        raise PqlmlError(f"{periods} period(s) of {capacity:,} accounts cannot detect an effect "
                         f"of {effect:+.4f} on a base rate of {base_rate:.4f}: even half held "
                         f"out the power is {best:.2f} < {power}. Fix: run at least {fastest} "
                         f"periods, raise the capacity, or plan for a larger effect.")
    k = periods or fastest
    m = _smallest_holdout(capacity, k, power_of)
    rows = []
    for kk in range(k, min(k + 6, MAX_PERIODS + 1)):
        mm = _smallest_holdout(capacity, kk, power_of)
        rows.append({"periods": kk, "holdout_per_period": mm, "holdout_share": mm / capacity,
                     "touched_per_period": capacity - mm, "withheld_total": mm * kk,
                     "power": power_of(kk, mm)})
    return Plan(capacity, base_rate, effect, alpha, power, k, m, power_of(k, m),
                pd.DataFrame(rows))


def _fewest_periods(capacity: int, power_of) -> int:
    """The fewest periods reaching the power with half the capacity held out."""
    half = capacity // 2
    k = 1
    while power_of(k, half) is None:
        k *= 2
        if k > MAX_PERIODS:
            raise PqlmlError(f"Even {MAX_PERIODS:,} periods of {capacity:,} accounts, half held "
                             "out, do not reach the power asked for. Fix: raise the capacity "
                             "or plan for a larger effect.")
    return _first(k // 2 + 1 if k > 1 else 1, k, lambda kk: power_of(kk, half) is not None)


def plan_sentence(p: Plan) -> str:
    """One sentence: the plan and its cost."""
    return (f"hold out {p.holdout:,} of {p.capacity:,} accounts a period "
            f"({p.holdout_share:.0%}) for {p.periods} period(s): {p.touched * p.periods:,} "
            f"touched vs {p.holdout * p.periods:,} held out; the holdout withholds "
            f"{p.holdout:,} touches a period ({p.holdout * p.periods:,} in all); power "
            f"{p.achieved_power:.2f} to detect {p.effect:+.4f} on {p.base_rate:.4f} at "
            f"alpha {p.alpha}")
