"""Engagement weights taken from the data instead of set by hand.

The engagement score is ``sum_e weight_e * decayed_e`` with ``decayed_e`` an event's
count with exponential decay (``[features] engagement_half_life_days``). A logistic
regression (statsmodels, so every weight has a standard error and a p-value) of the
outcome on the ``decayed_e`` of each event gives weights on the same scale: a weight is
the change in log-odds per decayed action, and the score is the fitted linear
predictor without its intercept. Negative weights stay (an event that goes with not
buying should lower the score); weights whose interval crosses 0 are shown as such.

Leak-free by construction: only snapshots whose label window closed by ``until`` are
used, and ``until`` defaults to the backtest's first test date, so a backtest of the
"activated, then ranked by engagement" playbook with these weights tests on later
months only. The outcome's own events (hand-raise, conversion) and events declared
outcome-adjacent are never weighted.

The stage works on frames: :meth:`Project.decayed_counts <pqlml.project.Project.decayed_counts>`
(one row per (entity, as_of), a ``decayed_<event>`` column per event) and the labels of the
same rows; ``pqlml engagement-weights`` (:func:`pqlml.runner.engagement_weights`) picks the
dates (:func:`engagement_window`) and events (:func:`weighted_events`) and passes both.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> counts = pd.DataFrame({"account_id": [f"a{i}" for i in range(800)],
...                        "as_of": pd.Timestamp("2024-06-01", tz="UTC"),
...                        "decayed_invite_sent": rng.exponential(2, 800),
...                        "decayed_login": rng.exponential(5, 800)})
>>> odds = np.exp(-3 + 0.8 * counts.decayed_invite_sent)
>>> labels = counts[["account_id", "as_of"]].assign(
...     conversion=(rng.random(800) < odds / (1 + odds)).astype(float))
>>> w = fit_engagement_weights(counts, "conversion", labels=labels,
...                            events=["invite_sent", "login"], until="2024-07-01",
...                            half_life_days=14)
>>> list(w.columns[:3]), w.attrs["until"], w.event.iloc[0]
(['event', 'weight', 'std_err'], '2024-07-01', 'invite_sent')
>>> print(weights_toml(w).splitlines()[0])
[features.engagement_weights]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .backtest import rolling_folds, training_dates
from .config import Config
from .errors import PqlmlError
from .features._specs import feature_name

__all__ = ["engagement_window", "weighted_events", "fit_engagement_weights", "weights_toml"]


def engagement_window(dates, *, settings: Config, until=None) -> tuple[str, list[pd.Timestamp]]:
    """``until`` (default: the backtest's first test date, from ``settings``' ``[labels]
    horizon_days`` and ``[model] test_periods``) and the snapshot ``dates`` whose label
    window closed by it: the rows the weights learn from.

    Examples
    --------
    >>> from pqlml.config import Config
    >>> engagement_window(["2024-01-01", "2024-02-01", "2024-03-01"], settings=Config(),
    ...                   until="2024-03-01")
    ('2024-03-01', [Timestamp('2024-01-01 00:00:00'), Timestamp('2024-02-01 00:00:00')])
    """
    dates = [str(d) for d in dates]
    horizon = settings.labels.horizon_days
    if until is None:
        until = rolling_folds(dates, horizon_days=horizon,
                              test_periods=settings.model.test_periods, min_train=1)[0][1]
    else:
        until = str(pd.Timestamp(until).date())
    train = [pd.Timestamp(d) for d in training_dates(dates, horizon, until)]
    if not train:
        raise PqlmlError(f"No snapshot's {horizon}-day label window closed by "
                         f"until = {until} (schedule {dates[0]} .. {dates[-1]}). Fix: a later "
                         "--until, or an earlier schedule.start.")
    return until, train


def weighted_events(seen, *, settings: Config) -> list[str]:
    """The events to weight: those of ``[features] engagement_weights``, else the ``seen``
    ones (e.g. ``project.event_names(until)``) but the outcomes' own events and those
    declared adjacent (``[discover] adjacent_events``).

    Examples
    --------
    >>> from pqlml.config import Config, OutcomesConfig
    >>> weighted_events(["demo_requested", "login"], settings=Config(
    ...     outcomes=OutcomesConfig(hand_raise_events=("demo_requested",))))
    ['login']
    """
    outcomes = settings.outcomes
    excluded = set(outcomes.events_of("hand_raise")) | set(outcomes.events_of("conversion")) \
        | set(settings.discover.adjacent_events)
    return list(settings.features.engagement_weights) or [e for e in seen if e not in excluded]


def fit_engagement_weights(counts: pd.DataFrame, outcome: str, *, labels: pd.DataFrame, events,
                           until, half_life_days: float) -> pd.DataFrame:
    """Per event: ``weight`` (log-odds per decayed action), ``std_err``, ``ci_low``,
    ``ci_high``, ``p_value`` and ``mean_decayed``; ``attrs`` holds ``until``,
    ``half_life_days``, ``outcome``, ``rows``, ``positives`` and ``as_of``.

    ``counts``: one row per (entity, as_of) keyed ``account_id`` (or ``user_id``) and
    ``as_of``, with ``decayed_<event>`` for each of ``events`` (counted with
    ``half_life_days``: ``project.decayed_counts(dates, events)``); ``labels``: the same
    rows' labels (``project.labels(dates)``), unlabelled (censored) rows left out.
    ``until``: the date every row's label window closed by (:func:`engagement_window`).
    """
    key = next((k for k in ("user_id", "account_id") if k in counts.columns), None)
    if key is None or key not in labels.columns or outcome not in labels.columns:
        raise PqlmlError(f"fit_engagement_weights needs counts keyed by account_id or user_id "
                         f"and labels with that key and {outcome!r}. Got counts columns "
                         f"{list(counts.columns)[:5]} and labels columns "
                         f"{list(labels.columns)[:5]}. Fix: pass project.decayed_counts(dates, "
                         "events) and project.labels(dates).")
    y = labels[[key, "as_of", outcome]].copy()
    y["as_of"] = y.as_of.astype(counts.as_of.dtype)
    frame = counts.merge(y, on=[key, "as_of"])
    frame = frame[frame[outcome].notna()].sort_values([key, "as_of"], ignore_index=True)
    events = list(events)
    table = _fit(frame, outcome, [f"decayed_{feature_name(e)}" for e in events], events)
    dates = sorted(pd.Timestamp(d) for d in pd.unique(labels.as_of))
    table.attrs |= {"until": str(until), "half_life_days": half_life_days, "outcome": outcome,
                    "rows": len(frame), "positives": int(frame[outcome].sum()),
                    "as_of": [str(d.date()) for d in dates]}
    return table


def _fit(frame: pd.DataFrame, outcome: str, columns: list[str], events: list[str]) -> pd.DataFrame:
    import statsmodels.api as sm

    y = frame[outcome].to_numpy(float)
    if y.sum() < 10 or y.sum() == len(y):
        raise PqlmlError(f"Only {int(y.sum())} of {len(y)} training snapshots have {outcome} = "
                         "1: too few to fit engagement weights. Fix: a later --until.")
    X = frame[columns].to_numpy(float)
    sd = X.std(axis=0)
    used = sd > 0                  # an event never seen before until gets no weight
    Z = sm.add_constant(X[:, used] / sd[used], has_constant="add")
    try:
        fit = sm.Logit(y, Z).fit(disp=0, maxiter=200)
    except np.linalg.LinAlgError as err:
        raise PqlmlError(f"The logistic fit of {outcome} on the decayed event counts failed "
                         f"({err}): some events always occur together. Fix: list fewer events "
                         "in [features] engagement_weights.") from err
    ci = fit.conf_int()
    out = pd.DataFrame({"event": events, "weight": 0.0, "std_err": np.nan, "ci_low": np.nan,
                        "ci_high": np.nan, "p_value": np.nan, "mean_decayed": X.mean(axis=0)})
    idx = np.flatnonzero(used)
    out.loc[idx, "weight"] = fit.params[1:] / sd[used]          # back to per-action units
    out.loc[idx, "std_err"] = fit.bse[1:] / sd[used]
    out.loc[idx, "ci_low"] = ci[1:, 0] / sd[used]
    out.loc[idx, "ci_high"] = ci[1:, 1] / sd[used]
    out.loc[idx, "p_value"] = fit.pvalues[1:]
    out.attrs["intercept"] = float(fit.params[0])
    out.attrs["not_seen"] = [e for e, u in zip(events, used) if not u]
    return out.sort_values("weight", ascending=False, ignore_index=True)


def weights_toml(table: pd.DataFrame) -> str:
    """The ``[features.engagement_weights]`` block for ``pqlml.toml`` (4 significant digits)."""
    lines = ["[features.engagement_weights]",
             f"# fitted on {table.attrs.get('rows', '?')} snapshots up to "
             f"{table.attrs.get('until', '?')} ({table.attrs.get('outcome', '?')}); "
             "log-odds per decayed action"]
    for r in table.itertuples():
        name = r.event if feature_name(r.event) == r.event else f'"{r.event}"'
        lines.append(f"{name} = {float(f'{r.weight:.4g}')}")
    return "\n".join(lines) + "\n"
