"""The drafted config run on the data: labels per cutoff, usage quantiles, repeat purchases.

What ``pqlml init`` fills in from these figures (the target, the backtest's test periods,
the starter rule's thresholds, the sales capacity) comes from pqlml's own features and
labels on the drafted config, so the numbers are the ones every later command sees.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..backtest import MIN_POSITIVES
from ..errors import PqlmlError
from ..snapshots import schedule_dates
from ._columns import Guess

__all__ = ["DraftFigures", "run_draft", "choose_target", "starter_rule"]

RULE_CUTOFFS = 3     # the latest cutoffs the starter rule's quantiles come from
REPEAT_SHARE = 0.2   # converting entities with a second conversion day: conversion repeats


@dataclass(frozen=True)
class DraftFigures:
    """Per cutoff: labelled positives of each outcome; the latest cutoffs' usage features;
    how often converting entities convert again. ``problem``: why the draft did not run."""

    dates: tuple = ()
    positives: dict = field(default_factory=dict)     # outcome -> positives per date
    usage: pd.DataFrame | None = None
    repeat: tuple[int, int] = (0, 0)                  # (entities converting twice, converting)
    problem: str = ""


def run_draft(project) -> DraftFigures:
    """Measure ``project`` (a :class:`~pqlml.project.Project` opened from the drafted config,
    :attr:`~pqlml.init.Draft.config`): labelled positives per cutoff, the latest cutoffs'
    usage, repeat conversions. A :class:`PqlmlError` (a guess that does not fit the data) is
    returned as ``problem``, not raised."""
    try:
        dates = schedule_dates(project.config.schedule)
        labels = project.labels(dates)
        labels = labels[~labels.censored.astype(bool)]
        day = labels.as_of.dt.date
        positives = {o: [int(labels.loc[day == d, o].sum()) for d in dates]
                     for o in ("conversion", "hand_raise")}
        usage = project.features(dates[-RULE_CUTOFFS:])
        repeat = _repeat(project.outcome_events("conversion"), project.key)
    except PqlmlError as err:
        return DraftFigures(problem=str(err))
    return DraftFigures(tuple(dates), positives, usage, repeat)


def _repeat(outcomes, key: str) -> tuple[int, int]:
    """(entities converting on more than one day, entities converting), in one query."""
    conv = outcomes.filter((outcomes.outcome == "conversion") & outcomes[key].notnull())
    days = conv.group_by(key).aggregate(d=conv.ts.truncate("D").nunique())
    n = days.aggregate(twice=(days.d > 1).sum(), converting=days.count()).execute().iloc[0]
    return (0 if pd.isna(n["twice"]) else int(n["twice"])), int(n["converting"])


def choose_target(figures: DraftFigures, test_periods: int) -> tuple[Guess, Guess]:
    """The outcome models learn and the backtest's test periods: conversion when each of
    the last ``test_periods`` cutoffs has enough conversions for a fold, else hand-raise;
    else the outcome with the longest such run at the end (then the most positives), tested
    on that run.

    Examples
    --------
    >>> f = DraftFigures(dates=tuple(range(8)), positives={"conversion": [3] * 8,
    ...                  "hand_raise": [15] * 8})
    >>> [g.value for g in choose_target(f, 5)]
    ['hand_raise', 5]
    >>> f = DraftFigures(dates=tuple(range(8)), positives={"conversion": [12] * 8,
    ...                  "hand_raise": [15] * 6 + [4, 30]})
    >>> [g.value for g in choose_target(f, 5)]
    ['conversion', 5]
    """
    last = {o: p[-test_periods:] for o, p in figures.positives.items()}
    runs = {o: _run_at_end(p, test_periods) for o, p in figures.positives.items()}
    shown = {o: ", ".join(map(str, p)) or "none" for o, p in last.items()}
    counts = (f"positives in the last {test_periods} label windows: conversion "
              f"{shown['conversion']}; hand_raise {shown['hand_raise']}")
    if runs["conversion"] == test_periods:
        return Guess("conversion", counts), Guess(test_periods, f"the schedule leaves "
                                                                f"{test_periods} backtest folds")
    target = max(("conversion", "hand_raise"), key=lambda o: (runs[o], sum(last[o])))
    need = f"a backtest fold needs {MIN_POSITIVES}+ positives in its test period"
    why = (f"{counts}: too few conversions ({need})" if target == "hand_raise" else
           f"{counts} ({need})")
    run = runs[target]
    if run == test_periods:
        periods = Guess(run, f"the schedule leaves {test_periods} backtest folds")
    elif run:
        periods = Guess(run, f"only the last {run} cutoff(s) have {MIN_POSITIVES}+ {target} "
                             f"positives")
    else:
        periods = Guess(test_periods, f"no test period has {MIN_POSITIVES}+ {target} positives, "
                                      f"so the backtest will stop: it needs more data (accounts "
                                      f"or months)")
    return Guess(target, why), periods


def _run_at_end(positives: list[int], limit: int) -> int:
    """How many of the last cutoffs in a row have enough positives (at most ``limit``)."""
    n = 0
    for p in reversed(positives):
        if p < MIN_POSITIVES or n == limit:
            break
        n += 1
    return n


def starter_rule(figures: DraftFigures, entity: str) -> tuple[str, str, int]:
    """A first intent rule from the latest cutoffs' usage: (expression, why, how many it flags
    per cutoff on average).

    Accounts: ``active_users_30d >= q90 and events_30d >= q75`` of the accounts active in
    the last 30 days; users: ``events_30d >= q90 and distinct_events_30d >= q75``.
    """
    first, second = (("active_users_30d", 0.9), ("events_30d", 0.75)) if entity == "account" \
        else (("events_30d", 0.9), ("distinct_events_30d", 0.75))
    u = figures.usage
    if u is None or u.empty or not {first[0], second[0], "events_30d"} <= set(u.columns):
        expr = (f"{first[0]} >= 3 and {second[0]} >= 20" if entity == "account" else
                f"{first[0]} >= 20 and {second[0]} >= 3")
        return expr, "a placeholder: the data could not be measured with these guesses", 0
    active = u[u.events_30d > 0]
    low = 2 if first[0] == "active_users_30d" else 1
    a = max(low, int(np.ceil(active[first[0]].quantile(first[1]))))
    b = max(1, int(np.ceil(active[second[0]].quantile(second[1]))))
    flagged = int(((u[first[0]] >= a) & (u[second[0]] >= b)).sum())
    per = round(flagged / max(u.as_of.nunique(), 1))
    label = "accounts" if entity == "account" else "users"
    why = (f"the top 10% of active {label} by {first[0]} ({a}+) and the top 25% by "
           f"{second[0]} ({b}+) at the last {u.as_of.nunique()} cutoffs: {per:,} of "
           f"{round(len(active) / max(u.as_of.nunique(), 1)):,} active {label} per cutoff")
    return f"{first[0]} >= {a} and {second[0]} >= {b}", why, per
