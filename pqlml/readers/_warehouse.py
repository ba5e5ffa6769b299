"""Segment's warehouse layout -> the calls shape, as lazy ibis expressions.

Segment loads each source into a schema with ``tracks`` (one row per track call:
``id``, ``timestamp``, ``user_id``, ``anonymous_id``, ``event`` (slug), ``event_text``
(the name as sent)), ``identifies`` (traits as snake_case columns: ``email``,
``title``, ``created_at``) and ``groups`` (``group_id`` and the group's traits:
``domain`` / ``website``, ``employees``, ``industry``, ``country``, ``segment``,
``created_at``). ``[data.export] source`` names where they are: with ``[data]
connection`` set (or on the Spark engine, unless it is a folder), a schema prefix
(``"segment_prod"`` -> ``segment_prod.tracks`` of the Spark catalog or the connection; ``""``
for the default); otherwise a folder holding ``tracks``,
``identifies`` and ``groups`` as ``.parquet`` or ``.csv`` files. The warehouse does the
work: nothing is pulled out but the canonical tables' queries. ``timestamp`` and
``created_at`` may be typed timestamps (naive ones are UTC, as Segment loads them) or text
in the forms of :mod:`._times` (offsets honoured); a row whose time is given but not
readable is an ``unparseable_time`` reject.
"""

from __future__ import annotations

from pathlib import Path

import ibis

from ..errors import DataError
from ._times import UTC, utc_expr

__all__ = ["warehouse_calls", "TABLES"]

TABLES = ("tracks", "identifies", "groups")


def _table(con, export, root: Path, name: str, connected: bool) -> ibis.Table:
    if not connected:
        folder = Path(export.source)
        folder = folder if folder.is_absolute() else root / folder
        for suffix in (".parquet", ".csv"):
            path = folder / f"{name}{suffix}"
            if path.exists() and suffix == ".csv" and con.name == "pyspark":
                raise DataError(f"{path}: CSV is not read on the Spark engine. Fix: write "
                                f"Segment's {name} table as {name}.parquet in {folder}.")
            if path.exists():
                return (con.read_parquet(path) if suffix == ".parquet" else con.read_csv(path))
        raise DataError(f"No {name}.parquet or {name}.csv in {folder} (Segment's warehouse layout "
                        f"needs {', '.join(TABLES)}). Fix: export those tables there, or point "
                        "[data.export] source at the folder that has them.")
    try:
        return con.table(name, database=export.source or None)
    except Exception as err:  # noqa: BLE001 - every backend has its own not-found error
        raise DataError(f"The warehouse has no table {name!r}"
                        f"{' in ' + repr(export.source) if export.source else ''} ({type(err).__name__}). "
                        "Fix: set [data.export] source to the schema Segment loads this source "
                        "into.") from err


def _col(t: ibis.Table, *names, kind="string"):
    for n in names:
        if n in t.columns:
            return t[n].cast(kind)
    return ibis.null(kind)


def _ts(t: ibis.Table, name: str = "timestamp"):
    return utc_expr(t[name]) if name in t.columns else ibis.null(UTC)


def _unread(t: ibis.Table, name: str):
    """True where the time column ``name`` is given but not readable."""
    return t[name].notnull() & utc_expr(t[name]).isnull() if name in t.columns else ibis.literal(False)


def warehouse_calls(con, export, root: Path, *, connected: bool) -> ibis.Table:
    """``tracks`` / ``identifies`` / ``groups`` in the calls shape (``file`` = table name,
    ``line`` null, ``msg_id`` = the row's ``id``)."""
    parts = []
    for name, kind in (("tracks", "event"), ("identifies", "identify"), ("groups", "group")):
        t = _table(con, export, root, name, connected)
        ts = _ts(t)
        user, anon = _col(t, "user_id"), _col(t, "anonymous_id")
        event = _col(t, "event_text", "event")
        group = _col(t, "group_id")
        missing = user.isnull() & anon.isnull()
        if kind == "event":
            missing |= event.isnull()
        if kind == "group":
            missing |= group.isnull()
        bad_time = ts.isnull() if kind == "event" else ts.isnull() | _unread(t, "created_at")
        reject = ibis.cases((missing, "missing_fields"), (bad_time, "unparseable_time"),
                            else_=ibis.null("string"))
        identify, grp = kind == "identify", kind == "group"
        parts.append(t.select(
            file=ibis.literal(name), line=ibis.null("int64"), kind=ibis.literal(kind), ts=ts,
            user_id=user, anon_id=anon, event=event if kind == "event" else ibis.null("string"),
            group_id=group if grp else ibis.null("string"),
            email=_col(t, "email") if identify else ibis.null("string"),
            title=_col(t, "title") if identify else ibis.null("string"),
            user_created=_ts(t, "created_at") if identify else ibis.null(UTC),
            domain=(_domain(_col(t, "domain", "website")) if grp else ibis.null("string")),
            employees=_col(t, "employees", kind="int64") if grp else ibis.null("int64"),
            industry=_col(t, "industry") if grp else ibis.null("string"),
            country=_col(t, "country") if grp else ibis.null("string"),
            segment=_col(t, "segment") if grp else ibis.null("string"),
            created_at=_ts(t, "created_at") if grp else ibis.null(UTC),
            msg_id=_col(t, "id"),
            **{f"p__{p}": (_col(t, key) if kind == "event" else ibis.null("string"))
               for p, key in _properties(t, export, name, kind).items()},
            reject=reject, text=ibis.null("string")))
    return ibis.union(*parts)


def _properties(t: ibis.Table, export, name: str, kind: str) -> dict[str, str]:
    """``[data.export] properties`` (name -> column): columns of ``tracks``. Segment keeps a
    track call's properties in a table per event, so they must be joined into ``tracks``."""
    props = dict(export.properties)
    missing = [key for key in props.values() if key not in t.columns]
    if kind == "event" and missing:
        raise DataError(f"Segment's {name} table has no column(s) {', '.join(map(repr, missing))} "
                        f"named in [data.export] properties; its columns: "
                        f"{', '.join(map(repr, t.columns))}. Fix: Segment stores a track call's "
                        f"properties in one table per event: join them into {name} (e.g. a "
                        f"view), or correct [data.export] properties.")
    return props


def _domain(col):
    """``https://www.acme.io/about`` -> ``acme.io``."""
    bare = col.re_replace(r"^[a-zA-Z]+://", "").re_replace(r"^www\.", "").re_replace(r"[/:?#].*$", "")
    return bare.lower().nullif("")
