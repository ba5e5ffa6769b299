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

Examples
--------
>>> import tempfile
>>> from pqlml.simulate import simulate
>>> sim = simulate(n_accounts=600, seed=2, out=tempfile.mkdtemp(), months=9)
>>> w = fit_engagement_weights(sim.config, until="2024-07-01")
>>> list(w.columns[:3]), w.attrs["until"]
(['event', 'weight', 'std_err'], '2024-07-01')
>>> print(weights_toml(w).splitlines()[0])
[features.engagement_weights]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .backtest import rolling_folds, training_dates
from .errors import PqlmlError
from .features._activity import to_days
from .features._engagement import decayed_counts
from .features._specs import feature_name
from .labels import check_outcome
from .project import build_labels, open_project, spine_for
from .schema import entity_key
from .snapshots import schedule_dates

__all__ = ["fit_engagement_weights", "weights_toml"]


def _default_until(cfg, dates) -> str:
    folds = rolling_folds(dates, horizon_days=cfg.labels.horizon_days,
                          test_periods=cfg.model.test_periods, min_train=1)
    return folds[0][1]


def fit_engagement_weights(config, *, until=None, outcome: str | None = None,
                           events=None) -> pd.DataFrame:
    """Per event: ``weight`` (log-odds per decayed action), ``std_err``, ``ci_low``,
    ``ci_high``, ``p_value`` and ``mean_decayed``; ``attrs`` holds ``until``,
    ``half_life_days``, ``outcome``, ``rows`` and ``positives``.

    ``events``: the events to weight (default: those of ``[features] engagement_weights``,
    else every event seen before ``until`` but the outcome's own and adjacent ones).
    """
    project = open_project(config)
    cfg = project.config
    outcome = check_outcome(outcome or cfg.outcomes.target, project.tables)
    dates = [str(d) for d in schedule_dates(cfg.schedule)]
    until = str(pd.Timestamp(until).date()) if until is not None else _default_until(cfg, dates)
    train = [pd.Timestamp(d) for d in training_dates(dates, cfg.labels.horizon_days, until)]
    if not train:
        raise PqlmlError(f"No snapshot's {cfg.labels.horizon_days}-day label window closed by "
                         f"until = {until} (schedule {dates[0]} .. {dates[-1]}). Fix: a later "
                         "--until, or an earlier schedule.start.")
    half_life = cfg.features.engagement_half_life_days
    if events is None:
        excluded = set(cfg.outcomes.events_of("hand_raise")) | \
            set(cfg.outcomes.events_of("conversion")) | set(cfg.discover.adjacent_events)
        events = list(cfg.features.engagement_weights) or \
            [e for e in project.event_names(max(train)) if e not in excluded]
    key = entity_key(cfg.project.entity)
    spine = spine_for(project, as_of=train)
    spine = spine.select(entity_id=spine.entity_id.cast("string"), as_of=spine.as_of,
                         as_day=to_days(spine.as_of))
    ev = project.events
    ev = ev.filter(ev[key].notnull() & (ev.ts < max(train))).select(
        entity_id=ev[key].cast("string"), event=ev.event, day=to_days(ev.ts))
    X = decayed_counts(ev, spine, events, half_life).to_pyarrow().to_pandas()
    X = X.merge(spine.select("entity_id", "as_day", "as_of").to_pyarrow().to_pandas(),
                on=["entity_id", "as_day"])
    y = build_labels(project, as_of=train).rename(columns={key: "entity_id"})
    y["as_of"] = y.as_of.astype(X.as_of.dtype)
    frame = X.merge(y[["entity_id", "as_of", outcome]], on=["entity_id", "as_of"])
    frame = frame[frame[outcome].notna()].sort_values(["entity_id", "as_of"], ignore_index=True)
    table = _fit(frame, outcome, [f"decayed_{feature_name(e)}" for e in events], events)
    table.attrs |= {"until": until, "half_life_days": half_life, "outcome": outcome,
                    "rows": len(frame), "positives": int(frame[outcome].sum()),
                    "as_of": [str(d.date()) for d in train]}
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
