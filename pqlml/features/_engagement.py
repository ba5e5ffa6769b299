"""Decaying engagement score: a weighted sum of actions, older ones worth less.

``engagement_score`` at as_of = sum over events before as_of of
``weight(event) * 0.5 ** (age / half_life)``, with ``age = as_day - day`` in whole
days (an event on the day before as_of is 1 day old) and the weights and half-life
from ``[features] engagement_weights`` / ``engagement_half_life_days``.

Exact and without fan-out over events: the cutoffs ``c_1 < c_2 < ...`` cut time into
buckets ``[c_{k-1}, c_k)``; each event lands in one bucket and contributes
``w * 0.5 ** ((c_k - day) / h)`` to it; the score at ``c_m`` is
``sum_{k <= m} B_k * 0.5 ** ((c_m - c_k) / h)`` (every exponent is <= 0, so nothing
overflows whatever the half-life).

Examples
--------
>>> round(2 * 0.5 ** (1 / 14) + 5 * 0.5 ** (14 / 14), 4)   # 2 today-ish, 5 two weeks ago
4.4034
"""

from __future__ import annotations

import ibis

from ._segments import Segments

__all__ = ["engagement", "engaged_days", "decayed_counts"]


# Sums of doubles depend on the order a parallel engine adds them in (the last bits move, and
# two accounts with equal scores can swap ranks between runs); each term is rounded once to
# 18 decimals and summed exactly as a decimal, so the score is the same on every run.
_EXACT = "decimal(38, 18)"


def _exact(value):
    return value.cast(_EXACT)


def _decayed(ev: ibis.Table, spine: ibis.Table, weight, half_life: float, by=(),
             times=None, cutoffs=None) -> ibis.Table:
    """``entity_id``, ``as_day``, ``by`` and ``_v``: one (bucket, cutoff) pair's part of the
    decayed sum of ``weight`` (an expression over ``ev``), exact; sum ``_v`` per cutoff.
    ``times``: an integer column of ``ev`` when a row stands for that many events of one
    (entity, event, day): its exact term is multiplied by it, which equals the sum of that
    many equal exact terms. ``cutoffs``: the days of every cutoff (default: the spine's) when
    the spine holds a group of the entities (the buckets, hence the last digits, are the
    same for every group)."""
    if cutoffs is None:
        cutoffs = spine.select("as_day").distinct().to_pyarrow()["as_day"].to_pylist()
    cutoffs = sorted(cutoffs)
    # Bucket k holds the days in [cutoffs[k-1], cutoffs[k]) (k = 0: every day before the
    # first cutoff): its index from a tree of comparisons, its end from a 12-row lookup, not
    # a range join of every event with the buckets (1.2 s of CPU at 11M events).
    buckets = ibis.memtable({"_k": list(range(len(cutoffs))), "_hi": cutoffs}).cast({"_k": "int32"})
    weighted = ev.filter(ev.day < cutoffs[-1]).select(
        "entity_id", "day", *by, _w=weight, **({} if times is None else {"_t": times}))
    weighted = weighted.mutate(_k=Segments.build(cutoffs, (0,)).segment_expr(weighted.day) + 1)
    hit = weighted.join(buckets, "_k")
    hit = hit.mutate(_c=_exact(hit._w * (0.5 ** ((hit._hi - hit.day).cast("float64") / half_life))))
    if times is not None:
        hit = hit.mutate(_c=hit._c * hit._t)
    per = hit.group_by(["entity_id", *by, "_k", "_hi"]).aggregate(_b=hit._c.sum())
    points = buckets.select(_m=buckets._k, as_day=buckets._hi)
    pair = per.join(points, per._k <= points._m)
    return pair.select("entity_id", "as_day", *by, _v=_exact(
        pair._b.cast("float64") * (0.5 ** ((pair.as_day - pair._hi).cast("float64") / half_life))))


def _on_spine(spine: ibis.Table, score: ibis.Table) -> ibis.Table:
    """Every spine row, 0 where the entity had none of the events."""
    base = spine.select("entity_id", "as_day").distinct()
    out = base.left_join(score, ["entity_id", "as_day"]).drop("entity_id_right", "as_day_right")
    return out.mutate(**{c: out[c].fill_null(0.0) for c in score.columns
                         if c not in ("entity_id", "as_day")})


def engagement(ev: ibis.Table, spine: ibis.Table, weights: dict, half_life: float,
               prior: ibis.Table | None = None, cutoffs=None) -> ibis.Table:
    """``engagement_score`` per spine row (``entity_id``, ``as_day``). ``prior``: the weighted
    events before ``ev``'s as a daily grain (``entity_id``, ``event``, ``day``, ``_n``, the
    count; an incremental refresh's kept history, :func:`engaged_days`), added exactly.
    ``cutoffs``: every cutoff's day when ``spine`` holds a group of the entities."""
    ev = ev.filter(ev.event.isin(list(weights)))
    times = None
    if prior is not None:
        mine = engaged_days(ev)
        ev = mine.union(prior.select(**{c: prior[c].cast(mine[c].type()) for c in mine.columns}))
        times = ev._n
    w = ibis.cases(*[(ev.event == e, float(v)) for e, v in weights.items()], else_=0.0)
    pair = _decayed(ev, spine, w, half_life, times=times, cutoffs=cutoffs)
    return _on_spine(spine, pair.group_by(["entity_id", "as_day"]).aggregate(
        engagement_score=pair._v.sum().cast("float64")))


def engaged_days(ev: ibis.Table) -> ibis.Table:
    """``entity_id``, ``event``, ``day``, ``_n``: how many of ``ev``'s events each (entity,
    event, day) had. Each of them adds the same exact term to a score, so the grain gives
    the score the events give, to the last digit."""
    return ev.group_by(["entity_id", "event", "day"]).aggregate(
        _n=ev.count().cast("int64"))


def decayed_counts(ev: ibis.Table, spine: ibis.Table, events, half_life: float) -> ibis.Table:
    """``decayed_<event>`` per spine row: each event's own score with weight 1, the inputs
    a logistic fit turns into engagement weights (:mod:`pqlml.engagement`)."""
    from ._specs import feature_name

    events = list(events)
    ev = ev.filter(ev.event.isin(events))
    pair = _decayed(ev, spine, ibis.literal(1.0), half_life, by=("event",))
    zero = ibis.literal(0).cast(_EXACT)
    return _on_spine(spine, pair.group_by(["entity_id", "as_day"]).aggregate(**{
        f"decayed_{feature_name(x)}": ibis.ifelse(pair.event == x, pair._v, zero).sum().cast("float64")
        for x in events}))
