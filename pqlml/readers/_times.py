"""Vendor times -> UTC instants: the one place the readers turn a time into a timestamp.

Every time field the readers use goes through here: Segment's ``timestamp`` and
``createdAt`` / ``created_at`` traits, Amplitude's ``event_time``, ``user_creation_time``
and the group's ``created_at``, Mixpanel's ``properties.time`` and Engage ``$created``,
and the warehouse layout's ``timestamp`` / ``created_at`` columns. A time string is read
if it matches :data:`ISO_TIME` (the forms in docs/export-formats.md, section 6):

* a date, ``2024-03-31`` (midnight UTC; Mixpanel's day-only Date, a Python ``date`` trait);
* a date and a time, separated by ``T``, ``t`` or a space; seconds optional, a fraction
  of any length (digits past the microsecond are dropped, not rounded);
* then, optionally after a space, a zone: ``Z`` / ``z``, ``UTC``, or an offset ``+02:00``,
  ``+0200`` or ``+02``. An offset is honoured; no zone means UTC (Amplitude documents
  its naive ``YYYY-MM-DD HH:MM:SS.ffffff`` as UTC; so do Mixpanel and Segment's warehouses).

Anything else (``epoch``, ``infinity``, ``24-03-31``, ``2024-3-1``, zone names and
abbreviations such as ``PST``, ISO week or basic forms) is null, and the readers count
the line as ``unparseable_time``: DuckDB's own cast would read the first four as
1970-01-01, an infinite time, the year 24 and 1 March, silently.

"No zone means UTC" relies on the session time zone, which pqlml sets to UTC on every
connection it opens or is given (:func:`pqlml.sources.connect`); canonical tables are read
the same way (:mod:`pqlml.validate`).

Performance: one regex match a time, then DuckDB's cast reads the common forms itself; the
rewrite for the rest (lower case, a space before the zone, which the cast refuses) runs
only where the cast failed. Parsing 426,758 Segment lines (``bench_readers.py --gb 0.25``,
one thread) into the calls table took 1.09 s, 1.01 s with the bare cast before (best of 3).
"""

from __future__ import annotations

import ibis

__all__ = ["ISO_TIME", "UTC", "utc_sql", "utc_expr", "epoch_sql"]

UTC = "timestamp('UTC')"

#: The time strings read (POSIX classes only, so a warehouse's regex engine takes it too).
ISO_TIME = ("^ *[0-9]{4}-[0-9]{2}-[0-9]{2}"
            "([Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]+)?)?"
            " *([Zz]|[Uu][Tt][Cc]|[+-][0-9]{2}(:?[0-9]{2})?)?)? *$")
# applied to the upper-cased text: ``2024-03-31t23:30:00 +02:00`` -> ``2024-03-31 23:30:00+02:00``
_TIDY = ("^ *([0-9]{4}-[0-9]{2}-[0-9]{2})[T ]([0-9:.]+) *", r"\1 \2")
# epoch seconds up to here (year 5138); from here up to 1e14, milliseconds (Mixpanel)
_MS_FROM, _MS_TO = 1e11, 1e14


def utc_sql(text: str) -> str:
    """DuckDB SQL for "the vendor time string ``text`` as a UTC ``TIMESTAMPTZ``" (null if
    it is not one of the forms read).

    Parameters
    ----------
    text : str
        A SQL expression giving a VARCHAR.

    Examples
    --------
    >>> import duckdb
    >>> con = duckdb.connect()
    >>> _ = con.execute("SET TimeZone = 'UTC'")
    >>> sql = utc_sql("t")
    >>> q = f"SELECT strftime({sql}, '%Y-%m-%d %H:%M:%S.%f') FROM (VALUES (?)) v(t)"
    >>> [con.execute(q, [t]).fetchone()[0] for t in
    ...  ["2024-03-31T23:30:00-02:00", "2024-03-31 23:30:00.123456", "2024-03-31t23:30:00 +0530"]]
    ['2024-04-01 01:30:00.000000', '2024-03-31 23:30:00.123456', '2024-03-31 18:00:00.000000']
    >>> con.execute(q, ["epoch"]).fetchone()[0] is None
    True
    """
    pattern, replacement = _TIDY
    return (f"CASE WHEN regexp_full_match({text}, '{ISO_TIME}') THEN coalesce("
            f"TRY_CAST({text} AS TIMESTAMPTZ), TRY_CAST(regexp_replace(upper({text}), "
            f"'{pattern}', '{replacement}') AS TIMESTAMPTZ)) END")


def utc_expr(col: ibis.Value) -> ibis.Value:
    """:func:`utc_sql` as an ibis expression, for a column of any type: a timestamp is
    converted to UTC (naive = UTC), a date is its midnight UTC, anything else is read as
    text.

    Parameters
    ----------
    col : ibis.Value
        A column (or scalar) expression.

    Examples
    --------
    >>> import ibis
    >>> con = ibis.duckdb.connect()
    >>> _ = con.raw_sql("SET TimeZone = 'UTC'")
    >>> t = ibis.memtable({"t": ["2024-03-31T23:30:00-02:00", "2024-03-31 23:30:00.2+00", "soon"]})
    >>> [str(v) for v in con.execute(utc_expr(t.t).name("ts")).tolist()]
    ['2024-04-01 01:30:00+00:00', '2024-03-31 23:30:00.200000+00:00', 'NaT']
    """
    kind = col.type()
    if kind.is_timestamp() or kind.is_date():
        return col.cast(UTC)
    text = col.cast("string")
    pattern, replacement = _TIDY
    return ibis.ifelse(text.re_search(ISO_TIME),
                       ibis.coalesce(text.try_cast(UTC),
                                     text.upper().re_replace(pattern, replacement).try_cast(UTC)),
                       ibis.null(UTC))


def epoch_sql(number: str) -> str:
    """DuckDB SQL for an epoch number (a DOUBLE expression) as a UTC ``TIMESTAMPTZ``:
    seconds below 1e11, milliseconds from 1e11 to 1e14, else null (zero, negative, NaN,
    infinite or out of range; ``to_timestamp`` would raise on some of these).

    Examples
    --------
    >>> import duckdb
    >>> q = f"SELECT {epoch_sql('x')}::VARCHAR FROM (VALUES (?::DOUBLE)) v(x)"
    >>> con = duckdb.connect()
    >>> _ = con.execute("SET TimeZone = 'UTC'")
    >>> [con.execute(q, [x]).fetchone()[0] for x in [1711927800, 1711927800123, 0, 1e300]]
    ['2024-03-31 23:30:00+00', '2024-03-31 23:30:00.123+00', None, None]
    """
    return (f"CASE WHEN {number} > 0 AND {number} < {_MS_FROM:g} THEN to_timestamp({number}) "
            f"WHEN {number} >= {_MS_FROM:g} AND {number} < {_MS_TO:g} "
            f"THEN to_timestamp({number} / 1000) END")
