"""Activation checkpoints: ordered "first value" milestones, point-in-time.

``[features] activation = ["board_created >= 1", "invite_sent >= 1",
"integration_connected >= 1"]`` lists checkpoints in order; checkpoint ``k`` is reached
on the day of the entity's ``n``-th ``event`` (all-time, so it is a fact about the
entity that a cutoff either has seen or not). For each (entity, as_of), with only days
before as_of counting:

* ``activation_checkpoints_passed``: how many checkpoints were reached, in any order;
* ``activation_stage``: the longest run of checkpoints 1..k all reached (the funnel stage);
* ``days_to_<event>[_<n>]``: days from sign-up (account creation; a user's sign-up; else
  the first event) to the checkpoint, null while it is not reached;
* ``activated``: every checkpoint reached; ``activated_within_<N>d``: and the last of
  them within ``activation_within_days`` of sign-up.

Examples
--------
>>> parse_checkpoints(["board_created >= 1", "task_created>=10"])
[('board_created', 1, 'board_created'), ('task_created', 10, 'task_created_10')]
"""

from __future__ import annotations

import re

import ibis

from ..errors import ConfigError
from ._specs import feature_name

__all__ = ["parse_checkpoints", "activation"]

_CHECKPOINT = re.compile(r"^\s*([A-Za-z_][\w.:$-]*)\s*>=\s*([1-9][0-9]*)\s*$")


def parse_checkpoints(texts) -> list[tuple[str, int, str]]:
    """``"event >= n"`` -> (event, n, feature suffix)."""
    out = []
    for text in texts:
        m = _CHECKPOINT.match(str(text))
        if not m:
            raise ConfigError(f"The activation checkpoint {text!r} must read '<event> >= <n>' with "
                              "n a positive integer. Fix: e.g. activation = [\"board_created >= 1\", "
                              "\"invite_sent >= 1\"].")
        event, n = m.group(1), int(m.group(2))
        out.append((event, n, feature_name(event) + ("" if n == 1 else f"_{n}")))
    return out


def activation(ev: ibis.Table, spine: ibis.Table, created: ibis.Table | None, checkpoints,
               within_days: int, first: ibis.Table | None = None) -> ibis.Table:
    """Activation features per spine row (``entity_id``, ``as_day``).

    ``ev``: events with ``entity_id``, ``event``, ``day`` (before the last cutoff);
    ``created``: ``entity_id``, ``created_day`` (sign-up), or None for the first event;
    ``first``: ``entity_id``, ``_first_day`` (each entity's first event day in ``ev``), when
    already known; else computed from ``ev``.
    """
    parsed = parse_checkpoints(checkpoints)
    if first is None:
        first = ev.group_by("entity_id").aggregate(_first_day=ev.day.min())
    base = spine.select("entity_id", "as_day").distinct()
    base = base.left_join(first, "entity_id").drop("entity_id_right")
    if created is not None:
        base = base.left_join(created, "entity_id").drop("entity_id_right")
        start = ibis.coalesce(base.created_day, base._first_day)
    else:
        start = base._first_day
    base = base.mutate(_start=start)
    # The day of the n-th occurrence from a daily grain (entity, event, day -> count) with a
    # running total: one pass over the checkpoint events instead of ranking every event.
    daily = ev.filter(ev.event.isin(sorted({e for e, _, _ in parsed}))) \
        .group_by(["entity_id", "event", "day"]).aggregate(_n=ibis._.count())
    daily = daily.mutate(_cum=daily._n.sum().over(ibis.window(
        group_by=["entity_id", "event"], order_by="day", rows=(None, 0))))
    for i, (event, n, _) in enumerate(parsed):
        hit = daily.filter((daily.event == event) & (daily._cum >= n))
        nth = hit.group_by(_e=hit.entity_id).aggregate(**{f"_d{i}": hit.day.min()})
        base = base.left_join(nth, base.entity_id == nth._e).drop("_e")
    passed = [base[f"_d{i}"].notnull() & (base[f"_d{i}"] < base.as_day) for i in range(len(parsed))]
    stage, run = ibis.literal(0), ibis.literal(True)
    for p in passed:
        run = run & p
        stage = stage + ibis.ifelse(run, 1, 0)
    done = run
    last = ibis.greatest(*[base[f"_d{i}"] for i in range(len(parsed))]) if len(parsed) > 1 \
        else base["_d0"]
    cols = {"activation_checkpoints_passed": sum(ibis.ifelse(p, 1, 0) for p in passed),
            "activation_stage": stage,
            **{f"days_to_{suffix}": ibis.ifelse(p, (base[f"_d{i}"] - base._start).cast("float64"),
                                                ibis.null("float64"))
               for i, ((_, _, suffix), p) in enumerate(zip(parsed, passed))},
            "activated": ibis.ifelse(done, 1, 0),
            f"activated_within_{within_days}d": ibis.ifelse(
                done & ((last - base._start) <= within_days), 1, 0)}
    return base.select("entity_id", "as_day", **cols)
