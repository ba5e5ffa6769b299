"""The part of an entity's history no window bounds, kept so a refresh need not reread it.

Every windowed feature of a cutoff ``as_of`` reads the events of ``[as_of - L, as_of)``,
``L`` the widest look-back of the catalog (:func:`lookback`). Four things read further
back, to the first event:

* recency: the first and the last event day (``days_since_first_event``,
  ``days_since_last_event``);
* activation: the running count of each checkpoint's event and the day each checkpoint
  was reached (:mod:`pqlml.features._activation`), and the first event day (the sign-up
  day when there is no creation date);
* engagement: every weighted event, decayed (:mod:`pqlml.features._engagement`).

:class:`History` holds them for the events before a day ``cut``: per entity
``_first_day``, ``_last_day``, ``_c<j>`` (the count of the ``j``-th checkpoint event,
:func:`~pqlml.features._activation.checkpoint_events`) and ``_d<i>`` (the day checkpoint
``i`` was reached, null while not); and the weighted events as a daily grain
(``entity_id``, ``event``, ``day``, ``_n``). Engagement is recomputed from that grain:
each of a day's ``n`` events adds the same exact decimal term, so ``n`` times the term is
the events' sum to the last digit. Given a History, :func:`~pqlml.features.feature_table`
reads only the events from ``cut`` on and gives the same table, every column equal.

Examples
--------
>>> ev = ibis.memtable({"entity_id": ["a", "a", "b", "a"], "event": ["x", "y", "x", "x"],
...                     "day": [1, 2, 3, 9]})
>>> ents, engaged = extend(ev, until=5, checkpoints=["x >= 2"], weights={"y": 1.0})
>>> ents.order_by("entity_id").execute()[["entity_id", "_first_day", "_last_day", "_c0",
...                                         "_d0"]].values.tolist()
[['a', 1, 2, 1, None], ['b', 3, 3, 1, None]]
>>> before = History(5, ents.to_pyarrow(), engaged.to_pyarrow())
>>> more, _ = extend(ev, until=10, checkpoints=["x >= 2"], weights={"y": 1.0}, prior=before)
>>> more.order_by("entity_id").execute()[["_first_day", "_last_day", "_c0", "_d0"]].values.tolist()
[[1.0, 9.0, 2.0, 9.0], [3.0, 3.0, 1.0, nan]]
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import ibis
import pandas as pd

from ._activation import checkpoint_events, nth_days, parse_checkpoints
from ._activity import offsets
from ._engagement import engaged_days
from ._values import value_offsets

__all__ = ["History", "extend", "lookback", "recency_with", "first_with"]


@dataclass(frozen=True)
class History:
    """What the events before day ``cut`` (days since 1970-01-01) gave: ``entities`` and
    ``engaged`` (None without engagement weights), as Arrow tables (nulls kept: a pandas
    float column would carry NaN, which is not null to an engine), Parquet files' paths
    or ibis tables."""

    cut: int
    entities: object
    engaged: object = None

    @property
    def start(self) -> pd.Timestamp:
        """Midnight UTC of ``cut``: the events a build with this history reads begin here."""
        return pd.Timestamp(self.cut * 86_400, unit="s", tz="UTC")


def lookback(settings, counts=(), sums=()) -> int:
    """The widest look-back in days of the catalog of ``settings`` (``[features]``) with
    ``counts`` and ``sums``: every windowed feature of ``as_of`` reads ``[as_of - L, as_of)``.

    >>> from pqlml.config import FeaturesConfig
    >>> lookback(FeaturesConfig())
    90
    """
    return max((*offsets(tuple(settings.windows), tuple(counts), value_offsets(tuple(sums))),))


def extend(ev: ibis.Table, *, until: int, checkpoints=(), weights=None,
           prior: History | None = None) -> tuple[ibis.Table, ibis.Table | None]:
    """The history of the events of ``ev`` (``entity_id``, ``event``, ``day``) before day
    ``until``, on top of ``prior`` (the events before ``prior.cut``; then only ``ev``'s days
    from ``prior.cut`` on are read): ``entities`` and ``engaged`` as lazy tables."""
    ev = ev.filter(ev.day < until)
    if prior is not None:
        ev = ev.filter(ev.day >= prior.cut)
    names = checkpoint_events(checkpoints) if checkpoints else []
    agg = ev.group_by("entity_id").aggregate(
        _first_day=ev.day.min().cast("int64"), _last_day=ev.day.max().cast("int64"),
        **{f"_c{j}": ev.count(where=ev.event == e).cast("int64") for j, e in enumerate(names)})
    con = ev._find_backend(use_default=True)
    old = None if prior is None else _table(con, prior.entities)
    parsed = parse_checkpoints(checkpoints) if checkpoints else []
    for nth in nth_days(ev, parsed, old) if parsed else []:
        agg = agg.left_join(nth, agg.entity_id == nth._e).drop("_e")
    ds = {f"_d{i}": agg[f"_d{i}"].cast("int64") for i in range(len(parsed))}
    ents = agg.select("entity_id", "_first_day", "_last_day",
                      *[f"_c{j}" for j in range(len(names))], **ds)
    if old is not None:
        j = old.outer_join(ents, old.entity_id == ents.entity_id)
        zero = ibis.literal(0, "int64")
        ents = j.select(
            entity_id=ibis.coalesce(j.entity_id, j.entity_id_right),
            _first_day=ibis.coalesce(j._first_day, j._first_day_right).cast("int64"),
            _last_day=ibis.coalesce(j._last_day_right, j._last_day).cast("int64"),
            **{f"_c{k}": (j[f"_c{k}"].cast("int64").fill_null(zero)
                          + j[f"_c{k}_right"].fill_null(zero)) for k in range(len(names))},
            **{f"_d{i}": ibis.coalesce(j[f"_d{i}"].cast("int64"), j[f"_d{i}_right"])
               for i in range(len(parsed))})
    engaged = None
    if weights:
        engaged = engaged_days(ev.filter(ev.event.isin(list(weights))))
        if prior is not None and prior.engaged is not None:
            kept = _table(con, prior.engaged)
            engaged = engaged.union(kept.select(**{c: kept[c].cast(engaged[c].type())
                                                   for c in engaged.columns}))
    return ents, engaged


def _table(con, frame) -> ibis.Table:
    """``frame`` (an Arrow table, or a Parquet file's path) as a table of ``con``; an ibis
    table is returned as is."""
    if isinstance(frame, ibis.Table):
        return frame
    if isinstance(frame, (str, Path)):
        return con.read_parquet(str(frame), table_name=ibis.util.gen_name("pqlml_history"))
    return con.create_table(ibis.util.gen_name("pqlml_history"), obj=frame, temp=True)


def entities_table(history: History, con, ids: ibis.Table) -> ibis.Table:
    """``history.entities`` on ``con``, keyed by the build's integer keys ``_k`` too."""
    t = _table(con, history.entities)
    keys = ids.select(_ek=ids.entity_id, _k=ids._k)
    return t.join(keys, t.entity_id.cast("string") == keys._ek).drop("_ek")


def recency_with(rec: ibis.Table, spine: ibis.Table, kept: ibis.Table) -> ibis.Table:
    """:func:`~pqlml.features._activity.recency` of the events from the cut on (``rec``,
    keyed by ``_k`` as ``entity_id``) completed by the kept history ``kept`` (with ``_k``):
    the last event is the newer part's when it has one, the first the history's."""
    base = spine.select(entity_id=spine._k, as_day=spine.as_day)
    j = base.left_join(rec, ["entity_id", "as_day"]).drop("entity_id_right", "as_day_right")
    k = kept.select(_kk=kept._k, _first_day=kept._first_day, _last_day=kept._last_day)
    j = j.left_join(k, j.entity_id == k._kk)
    last = ibis.coalesce(j.days_since_last_event.cast("int64"), j.as_day - j._last_day)
    first = ibis.coalesce(j.as_day - j._first_day, j.days_since_first_event.cast("int64"))
    j = j.select("entity_id", "as_day", days_since_last_event=last,
                 days_since_first_event=first)
    return j.filter(j.days_since_last_event.notnull())


def first_with(first: ibis.Table, ids: ibis.Table, kept: ibis.Table) -> ibis.Table:
    """``entity_id``, ``_first_day``: the first event day of the events from the cut on
    (``first``, keyed by ``_k``), or the kept history's when it has one."""
    base = ids.left_join(first, ids._k == first.entity_id)
    base = base.select(_k=base._k, entity_id=base.entity_id, _f=base._first_day)
    k = kept.select(_kk=kept._k, _h=kept._first_day)
    j = base.left_join(k, base._k == k._kk)
    j = j.select("entity_id", _first_day=ibis.coalesce(j._h, j._f.cast("int64")))
    return j.filter(j._first_day.notnull())
