"""The feature query run by groups of entities when one query over every entity would not fit
in ``[data] memory_limit``.

Every feature of an entity reads that entity's own rows: its events (activity, recency,
property sums, active users, activation, engagement), its users and memberships, its
account's firmographics, enrichment and sign-up answers. What entities share is read from
every entity whatever the group: the vocabulary (the event names seen before the last
cutoff), the segments of the windows (from every cutoff), the one-hot categories (from the
accounts table) and the answers' vocabulary (from every user). So the resolved events
(after identity and time-true membership) are written once to a temporary Parquet folder
partitioned by a hash of the entity key into ``G`` groups, and each group's complete
feature query (every family, every cutoff) runs on its spine rows and its events slice:
the groups' rows together are the table one query gives (tested on every column).

``G`` is :func:`group_count`: one group per :data:`EVENTS_PER_GB` events for each GB of
DuckDB's memory limit, rounded up (1: the one query as before, nothing written). The limit
is the connection's ``memory_limit`` setting, which ``[data] memory_limit`` sets; without it
DuckDB's own default (80% of the machine's RAM) counts the same way, so on a 24 GB machine a
log of more than about 190M events is built in groups even when the config names no limit. At 100k
simulated accounts (22M events) the 12-cutoff build under ``memory_limit = "4GB"`` runs in
one group (it peaked at 2.5 GB); at 1M (221M events) one query ran out of DuckDB's 4 GB
(BENCHMARKS.md, "Scale: 10k, 100k, 1M accounts"), and the build runs in 6 groups. The choice
depends only on the event log's row count and the limit, so it is the same on every run.

Examples
--------
>>> group_count(22_000_000, 4 * 10**9), group_count(221_000_000, 4 * 10**9)
(1, 6)
>>> group_count(221_000_000, None)
1
>>> memory_limit_bytes("3.7 GiB"), memory_limit_bytes("400.0 MB")
(3972844748, 400000000)
"""

from __future__ import annotations

import math
import os
import re
import shutil
import tempfile
from contextlib import contextmanager

import ibis

from .schema import entity_key
from .sources import spill_directory

__all__ = ["feature_groups", "group_count", "memory_limit_bytes", "EVENTS_PER_GB"]

#: Resolved events one group's feature query is given per GB of ``[data] memory_limit``
#: (every family on, 12 cutoffs: 22M events at 4 GB ran in one query, 221M did not).
EVENTS_PER_GB = 10_000_000

_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}


def memory_limit_bytes(setting: str) -> int | None:
    """DuckDB's ``memory_limit`` setting (``"3.7 GiB"``, ``"4GB"``) in bytes; None when it
    is not a size."""
    m = re.fullmatch(r"\s*([0-9.]+)\s*([kmgt]?)(i?)b\s*", setting or "", re.I)
    if not m:
        return None
    unit = m.group(2).lower()
    scale = 1024 ** "kmgt".index(unit) * 1024 if m.group(3) and unit else _UNITS[unit]
    return int(float(m.group(1)) * scale)


def group_count(events: int, limit: int | None) -> int:
    """How many groups of entities a feature build over ``events`` resolved events runs
    in under a memory limit of ``limit`` bytes (None: no limit known, one group)."""
    if not limit or events <= 0:
        return 1
    return max(1, math.ceil(events / (EVENTS_PER_GB * limit / 1e9)))


@contextmanager
def feature_groups(project, spine: ibis.Table, entity: str, extra=(), *,
                   groups: int | None = None):
    """The lazy feature tables of ``spine``, one per group of entities, each built when the
    iterator reaches it (their rows together are :func:`~pqlml.project.project_features`'
    table), the entity under its own key column (``account_id``, ``user_id``). ``groups``:
    how many (default :func:`group_count` of the events and DuckDB's memory limit; engines
    other than DuckDB run one query). The groups' events are written to a temporary folder
    beside DuckDB's spill folder, removed on leaving the ``with`` block."""
    from .project import project_features

    con = project.con
    if groups is None:
        groups = _default_groups(project) if con.name == "duckdb" else 1
    key = entity_key(entity)
    if groups <= 1:
        yield iter([_keyed_by(project_features(project, spine, entity, extra), key)])
        return
    events = _resolved(project, spine, key)
    folder = tempfile.mkdtemp(prefix="pqlml-groups-", dir=os.path.dirname(spill_directory()))
    try:
        con.to_parquet(events.mutate(_g=_group(events[key], groups)), folder,
                       partition_by="_g")
        parts = con.read_parquet(f"{folder}/**/*.parquet", hive_partitioning=True)
        cutoffs = spine.select("as_of").distinct()
        # one group at a time: a group's parts (its grain, activation, engagement) are
        # materialised when its table is built and released when the next one is
        yield (_keyed_by(project_features(
            project, spine.filter(_group(spine.entity_id, groups) == g), entity, extra,
            events=parts.filter(parts._g == g).drop("_g"), cutoffs=cutoffs), key)
            for g in range(groups))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _keyed_by(table: ibis.Table, key: str) -> ibis.Table:
    """``table`` with its ``entity_id`` named ``key``."""
    return table.rename({key: "entity_id"}) if "entity_id" in table.columns else table


def _default_groups(project) -> int:
    setting = project.con.con.execute("select current_setting('memory_limit')").fetchall()[0][0]
    return group_count(int(project.tables["events"].count().execute()),
                       memory_limit_bytes(setting))


def _resolved(project, spine: ibis.Table, key: str) -> ibis.Table:
    """The resolved events a feature build reads: an entity's, before the last cutoff."""
    events = project.events
    last = spine.as_of.max().execute()
    keep = ["ts", "user_id", "event", key, *project.config.data.properties]
    return events.filter(events[key].notnull() & (events.ts < last)).select(
        *dict.fromkeys(keep))


def _group(key: ibis.Value, groups: int) -> ibis.IntegerValue:
    """The group of an entity key: a hash of its text, modulo ``groups`` (in
    ``[0, groups)`` whether the engine's hash is signed or not)."""
    r = key.cast("string").hash() % groups
    return ((r + groups) % groups).cast("int64")
