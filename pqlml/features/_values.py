"""Numeric event properties: sums and maxima of amounts, seats, API units or storage per window.

An event may carry numeric properties (``[data.events.columns] amount = "Order Total"``, or
``[data.export] properties``). For every property ``p`` and look-back window ``w`` the
catalog has ``sum_<p>_<w>d`` (0 over a window without a value) and ``max_<p>_<w>d`` (NaN
then), over ``[as_of - w, as_of)``; :class:`~pqlml.features.Sum` names one of its own
(a property over some events and one window, summed or its maximum).

They ride on the activity grain (:mod:`pqlml.features._activity`): each (entity, segment)
row gets the segment's sums and maxima, and a window's figure is the sum of its segments'
sums or the maximum of their maxima. Sums are exact decimals (each value rounded once to
nine decimals), so the same data give the same bits on any engine and in any order of
addition, as the counts do; the result is a double.

Examples
--------
>>> fields = value_fields(("amount",), (Sum("big_orders_30d", "amount", 30, ("order",)),))
>>> list(fields)
['vs__amount', 'vx__amount', 'vc__big_orders_30d']
>>> ev = ibis.memtable({"entity_id": ["a", "a", "a"], "seg": [0, 0, 1],
...                     "event": ["order", "refund", "order"], "amount": [10.5, 2.25, None]})
>>> g = ev.group_by(["entity_id", "seg"]).aggregate(**grain_values(ev, fields))
>>> rows = g.order_by("seg").to_pyarrow().to_pylist()
>>> [(float(r["vs__amount"] or 0), r["vx__amount"], float(r["vc__big_orders_30d"] or 0))
...  for r in rows]
[(12.75, 10.5, 10.5), (0.0, None, 0.0)]
"""

from __future__ import annotations

import ibis

from ._segments import Segments
from ._specs import Sum

__all__ = ["value_fields", "grain_values", "windowed_values", "value_offsets", "value_names"]

_EXACT = "decimal(38, 9)"


def value_fields(properties: tuple[str, ...], sums: tuple[Sum, ...]) -> dict[str, tuple]:
    """The grain's value columns: name -> (property, ``"sum"`` or ``"max"``, events or ())."""
    fields = {}
    for p in properties:
        fields[f"vs__{p}"] = (p, "sum", ())
        fields[f"vx__{p}"] = (p, "max", ())
    fields.update({f"vc__{s.name}": (s.property, s.how, s.events) for s in sums})
    return fields


def grain_values(events: ibis.Table, fields: dict[str, tuple]) -> dict[str, ibis.Value]:
    """The aggregates of :func:`value_fields` over ``events`` (one group of the grain)."""
    out = {}
    for name, (prop, how, names) in fields.items():
        hit = None if not names else (events.event == names[0] if len(names) == 1
                                      else events.event.isin(list(names)))
        value = events[prop]
        out[name] = (value.cast(_EXACT).sum(where=hit) if how == "sum"
                     else value.cast("float64").max(where=hit))
    return out


def value_names(properties: tuple[str, ...], sums: tuple[Sum, ...],
                windows: tuple[int, ...]) -> dict[str, tuple[str, str, int]]:
    """Feature name -> (grain column, how, window days), in catalog order."""
    names = {}
    for p in properties:
        for w in windows:
            names[f"sum_{p}_{w}d"] = (f"vs__{p}", "sum", w)
            names[f"max_{p}_{w}d"] = (f"vx__{p}", "max", w)
    names.update({s.name: (f"vc__{s.name}", s.how, s.window_days) for s in sums})
    return names


def value_offsets(sums: tuple[Sum, ...]) -> tuple[int, ...]:
    """The window edges the user's sums need beyond the catalog's windows."""
    return tuple(sorted({s.window_days for s in sums}))


def windowed_values(grain: ibis.Table, segments: Segments, properties: tuple[str, ...],
                    sums: tuple[Sum, ...], windows: tuple[int, ...]) -> list[ibis.Table]:
    """Per (entity_id, as_day): every value feature, one table per distinct window (join
    them on the keys), each an aggregation over the segment rows in that window."""
    by_days: dict[int, dict[str, tuple[str, str]]] = {}
    for name, (column, how, days) in value_names(properties, sums, windows).items():
        by_days.setdefault(days, {})[name] = (column, how)
    out = []
    for days, cols in by_days.items():
        j = grain.join(segments.window_rows_table(days, 0), "seg")
        out.append(j.group_by(["entity_id", "as_day"]).aggregate(**{
            name: (j[column].sum().cast("float64") if how == "sum" else j[column].max())
            for name, (column, how) in cols.items()}))
    return out
