"""Checks that turn a source table into a canonical one, and the report of what they did.

Every check is an aggregate ibis query (no rows are pulled into pandas), so the
checks scale to large Parquet event logs and run on any ibis backend. Problems
that make the data unusable raise :class:`~pqlml.errors.DataError`; changes
pqlml makes on its own (dropping duplicate events, assuming UTC) are recorded
as :class:`Finding` records in a :class:`ValidationReport`.
"""

from __future__ import annotations

import json
import re
from dataclasses import astuple, dataclass, fields
from typing import Mapping, NamedTuple

import ibis
import ibis.expr.datatypes as dt
from ibis.common.exceptions import IbisError
import pandas as pd

from pqlml.backends import counts, duckdb_of
from pqlml.errors import DataError
from pqlml.schema import FIXED_VALUES, MAX_NAME_LENGTH, TABLES

__all__ = ["Finding", "ValidationReport", "validate_table", "AWARE_PATTERN", "future_bound",
           "check_future"]

UTC = dt.Timestamp(timezone="UTC")
#: A time of day, then an explicit zone: ``Z``, ``+02:00``, ``-05``, ``UTC``, ``Europe/Berlin``.
AWARE_PATTERN = (r"(?i)\d:\d\d(:\d\d([.,]\d+)?)?\s*"
                 r"(z|[+-]\d\d(:?\d\d)?|[a-z][a-z_]*(/[a-z_+-]+)*)\s*$")
_ISO_FIX = "write ISO 8601 timestamps such as '2024-01-31T09:30:00Z', or remove those rows"
_EPOCH_FIX = ("convert epoch numbers to timestamps upstream, e.g. "
              "pandas.to_datetime(df[col], unit='s', utc=True), or to_timestamp(col) in SQL")


@dataclass(frozen=True)
class Finding:
    """One change pqlml made to the input: which rows, why, and how to avoid it."""

    table: str
    file: str
    column: str
    kind: str
    rows: int
    action: str
    fix: str

    def __str__(self) -> str:
        what = self.kind.replace("_", " ")
        return (f"{self.table} ({self.file}): column {self.column!r}: {what} in "
                f"{_rows(self.rows)}: {self.action}. Fix: {self.fix}.")


class ValidationReport:
    """What loading the data changed: findings plus source columns that were not used.

    Examples
    --------
    >>> r = ValidationReport()
    >>> r.add(Finding("events", "e.csv", "ts", "duplicate_events", 2, "kept one of each", "dedupe"))
    >>> len(r), bool(r), r.to_frame()["rows"].tolist()
    (1, True, [2])
    """

    def __init__(self) -> None:
        self.findings: list[Finding] = []
        self.ignored_columns: dict[str, tuple[str, ...]] = {}
        self.files: dict[str, str] = {}

    def add(self, finding: Finding) -> None:
        """Record one finding."""
        self.findings.append(finding)

    def to_frame(self) -> pd.DataFrame:
        """The findings as a DataFrame, one row each (columns as in :class:`Finding`)."""
        return pd.DataFrame([astuple(f) for f in self.findings],
                            columns=[f.name for f in fields(Finding)])

    def render(self) -> list[str]:
        """The findings and ignored columns as plain text lines."""
        lines = [str(f) for f in self.findings]
        for table, cols in self.ignored_columns.items():
            where = self.files.get(table, "")
            lines.append(f"{table} ({where}): ignored columns {_quote(cols)} (not canonical; "
                         f"map one in [data.{table}.columns] to use it).")
        return lines

    def __len__(self) -> int:
        return len(self.findings)

    def __bool__(self) -> bool:
        return bool(self.findings)

    def __iter__(self):
        return iter(self.findings)


class _Parsed(NamedTuple):
    expr: ibis.Value          # the column converted to its canonical type
    bad: ibis.Value | None    # True where a non-null value could not be converted
    naive: ibis.Value | None  # True where a timestamp had no zone and UTC was assumed
    what: str = ""            # what the bad values are not, for messages
    # implausible values made null (unknown), by kind of finding: negative counts and
    # sizes, 'inf' / 'NaN' / '1e400', whole numbers too large for int64
    nulled: tuple[tuple[str, ibis.Value], ...] = ()


class _Ctx(NamedTuple):
    table: str
    file: str
    names: Mapping[str, str]

    def src(self, c: str) -> str:
        return self.names.get(c, c)

    def col(self, c: str) -> str:
        return repr(c) if self.src(c) == c else f"{self.src(c)!r} (mapped to {c})"

    def error(self, text: str) -> str:
        return f"{self.table} ({self.file}): {text}"


def validate_table(t: ibis.Table, name: str, *, file: str = "",
                   source_columns: Mapping[str, str] | None = None,
                   report: ValidationReport | None = None,
                   properties: tuple[str, ...] = ()) -> ibis.Table:
    """Check a table with canonical column names and return it with canonical types.

    Parameters
    ----------
    t
        Columns renamed to canonical names (all required ones), source types.
    name
        ``"events"``, ``"users"``, ``"accounts"`` or ``"outcomes"``.
    file, source_columns
        Where the table came from and canonical -> source column names, for messages.
    report
        Findings (duplicates removed, UTC assumed) are added here.
    properties
        The events' numeric property columns: parsed as numbers; values that are not
        finite numbers become null and are counted in ``report``, never an error.

    Returns
    -------
    ibis.Table
        Lazy table: ids as strings, timestamps as UTC timestamps, ``employees``
        int64, ``amount`` float64; duplicate events removed.

    Raises
    ------
    DataError
        Unparseable or epoch-number timestamps (or numbers), null ids / timestamps /
        event names, duplicate user or account ids, unknown outcome values.

    Examples
    --------
    >>> import ibis
    >>> t = ibis.memtable({"ts": ["2024-01-01T10:00:00+02:00", "2024-01-01T10:00:00+02:00"],
    ...                    "user_id": [1, 1], "event": ["login", "login"]})
    >>> r = ValidationReport()
    >>> clean = validate_table(t, "events", file="memory", report=r)
    >>> clean.count().execute(), [f.kind for f in r]
    (1, ['duplicate_events'])
    """
    ctx = _Ctx(name, file, dict(source_columns or {}))
    report = ValidationReport() if report is None else report
    _check_columns(ctx, tuple(c for c in t.columns if c not in properties))
    values = {c: _number(t[c]) for c in properties}
    parsed = {c: _parse(ctx, t[c], TABLES[name].kinds[c]) for c in t.columns
              if c not in properties}
    for table, column in (("dispositions", "disposition"), ("holdouts", "arm")):
        if name == table and column in parsed:    # "Accepted " is accepted, "Holdout" too
            parsed[column] = _Parsed(parsed[column].expr.strip().lower(), None, None)
    metrics = _metrics(t, name, parsed)
    metrics.update({f"property:{c}": bad.sum() for c, (_, bad, _) in values.items()})
    metrics.update({f"negative_values:{c}": neg.sum() for c, (_, _, neg) in values.items()})
    if name == "events" and "event_id" in t.columns:
        # Rows with different event ids are never identical: when no id repeats (the usual
        # case) the distinct ids settle the duplicate check within this same scan.
        metrics["ids:event_id"] = t.event_id.nunique()
    elif name == "events":
        # without ids, a log whose every time is a midnight has dates only: identical rows are
        # one user's repeats of an event on one day, not duplicates
        ts = parsed["ts"].expr
        metrics["timed"] = (ts.notnull() & (ts != ts.truncate("D"))).sum()
    # sums over an empty table are null, not 0
    counts = {k: 0 if v is None else v for k, v in _run_metrics(ctx, t, metrics).items()}
    problems = _problems(ctx, t, parsed, counts)
    if problems:
        raise DataError("\n".join(problems))
    _report_naive(ctx, parsed, counts, report)
    _report_properties(ctx, values, counts, report)
    _report_nulled(ctx, [*parsed, *values], counts, report)
    parsed = _report_long(ctx, parsed, counts, report)
    out = t.select(**{c: p.expr for c, p in parsed.items()},
                   **{c: v for c, (v, _, _) in values.items()})
    if name != "events":
        return out
    return _dedupe_events(ctx, out, counts["n"], report, counts.get("ids:event_id"),
                          dates_only=counts["n"] > 0 and counts.get("timed", 1) == 0)


def _check_columns(ctx: _Ctx, columns: tuple[str, ...]) -> None:
    if ctx.table not in TABLES:
        raise DataError(f"unknown table {ctx.table!r}; pqlml reads {_quote(TABLES)}.")
    schema = TABLES[ctx.table]
    if set(schema.required) - set(columns) or set(columns) - set(schema.columns):
        raise DataError(ctx.error(f"has columns {_quote(columns)}; expected "
                                  f"{_quote(schema.required)} and any of {_quote(schema.optional)}."
                                  f" Fix: rename them first."))


def _parse(ctx: _Ctx, col: ibis.Column, kind: str) -> _Parsed:
    typ = col.type()
    if typ.is_null():
        col, typ = col.cast("string"), dt.string
    if kind == "string":
        return _Parsed(col if typ.is_string() else col.cast("string"), None, None)
    if kind == "timestamp":
        return _parse_timestamp(ctx, col, typ)
    if kind == "id" and typ.is_string():
        return _Parsed(col, None, None)
    if kind in ("number", "integer") and (typ.is_numeric() or typ.is_string()):
        return _parse_count(col, typ, whole=kind == "integer")
    if typ.is_integer():
        return _Parsed(col.cast("string"), None, None)
    if typ.is_floating() or typ.is_decimal() or typ.is_string():     # an id written as a number
        f = col.try_cast("float64") if typ.is_string() else col.cast("float64")
        ok = f.notnull() & ~f.isnan() & ~f.isinf() & (f % 1 == 0) & (f.abs() < _INT64)
        whole = ibis.ifelse(ok, f, ibis.null("float64")).cast("int64")
        return _Parsed(whole.cast("string"), col.notnull() & ~ok, None, "whole numbers")
    raise DataError(ctx.error(f"column {ctx.col(col.get_name())} has type {typ}, which cannot "
                              f"hold {kind} values. Fix: write it as text or whole numbers."))


_INT64 = 2.0 ** 63


def _parse_count(col: ibis.Column, typ: dt.DataType, whole: bool) -> _Parsed:
    """A count or size (``employees``, ``amount``, ``funding_usd``): float64, or int64 when
    ``whole``. Text that is no number is bad (an error); values that are numbers but cannot
    be a count or size (negative, not finite, beyond int64) become null (unknown), counted."""
    f = col.try_cast("float64") if typ.is_string() else col.cast("float64")
    infinite = f.notnull() & (f.isnan() | f.isinf())
    if whole:
        infinite = infinite | (f.notnull() & (f.abs() >= _INT64))
    negative = f.notnull() & ~infinite & (f < 0)
    bad = col.notnull() & f.isnull() if typ.is_string() else None
    if whole:
        fraction = f.notnull() & ~infinite & (f % 1 != 0)
        bad = fraction if bad is None else bad | fraction
    keep = f.notnull() & ~infinite & ~negative & ((f % 1 == 0) if whole else True)
    value = ibis.ifelse(keep, f, ibis.null("float64"))
    return _Parsed(value.cast("int64") if whole else value, bad, None,
                   "whole numbers" if whole else "numbers",
                   (("non_finite_values", infinite), ("negative_values", negative)))


def _parse_timestamp(ctx: _Ctx, col: ibis.Column, typ: dt.DataType) -> _Parsed:
    if typ.is_timestamp() or typ.is_date():
        naive = col.notnull() if typ.is_date() or typ.timezone is None else None
        return _Parsed(col.cast(UTC), None, naive)
    if typ.is_string():
        # DuckDB: TRY_CAST(.. AS TIMESTAMPTZ) honours offsets; naive values use the session
        # zone, which connect() sets to UTC. (A cast to plain "timestamp" drops offsets.)
        ts = col.try_cast(UTC)
        naive = ts.notnull() & ~col.re_search(AWARE_PATTERN)
        return _Parsed(ts, col.notnull() & ts.isnull(), naive, "timestamps")
    what = "numbers (epoch time?)" if typ.is_numeric() else f"{typ} values"
    raise DataError(ctx.error(f"column {ctx.col(col.get_name())} holds {what}, not timestamps; "
                              f"epoch numbers are not converted because their unit (s, ms, us) "
                              f"is ambiguous. Fix: {_EPOCH_FIX}."))


def _not_null(name: str, columns) -> list[str]:
    schema = TABLES[name]
    keep = [c for c in schema.required if schema.kinds[c] in ("id", "timestamp")] + list(schema.key)
    return [c for c in columns if c in keep or (name == "events" and c == "event")]


def _metrics(t: ibis.Table, name: str, parsed: dict[str, _Parsed]) -> dict[str, ibis.Value]:
    m = {"n": t.count()}
    for c, p in parsed.items():
        if p.bad is not None:
            m[f"bad:{c}"] = p.bad.sum()
        if p.naive is not None:
            m[f"naive:{c}"] = p.naive.sum()
        for kind, where in p.nulled:
            m[f"{kind}:{c}"] = where.sum()
    for c in _long_checked(name, parsed):
        m[f"long:{c}"] = (parsed[c].expr.length() > MAX_NAME_LENGTH).sum()
    for c in _not_null(name, t.columns):
        m[f"null:{c}"] = t[c].isnull().sum()
    for k in TABLES[name].key:
        m[f"keys:{k}"] = t[k].nunique()
    column, allowed = FIXED_VALUES.get(name, (None, ()))
    if column in parsed:
        o = parsed[column].expr
        m[f"bad:{column}"] = (o.isnull() | ~o.isin(allowed)).sum()
    return m


def _problems(ctx: _Ctx, t: ibis.Table, parsed: dict[str, _Parsed], counts: dict) -> list[str]:
    n, out = counts["n"], []
    for c, p in parsed.items():
        if counts.get(f"bad:{c}") and p.bad is not None:
            out.append(_bad_values(ctx, t, c, p, counts[f"bad:{c}"], n))
    for c in _not_null(ctx.table, t.columns):
        if counts[f"null:{c}"]:
            out.append(ctx.error(f"column {ctx.col(c)} is empty (null) in {counts[f'null:{c}']:,} "
                                 f"of {n:,} rows. Fix: remove those rows or fill {ctx.src(c)} "
                                 f"upstream; every {ctx.table} row needs one."))
    for k in TABLES[ctx.table].key:
        if counts[f"keys:{k}"] != n - counts[f"null:{k}"]:
            out.append(_duplicate_keys(ctx, t, k))
    column, _ = FIXED_VALUES.get(ctx.table, (None, ()))
    if column and counts.get(f"bad:{column}"):
        values = t.select(v=parsed[column].expr)
        out.append(_bad_values_of(ctx, column, values, counts[f"bad:{column}"], n))
    return out


def _bad_values(ctx: _Ctx, t: ibis.Table, c: str, p: _Parsed, bad: int, n: int) -> str:
    ex = _run(ctx, t.filter(p.bad).select(v=t[c].cast("string")).distinct().limit(3))
    examples = [r["v"] for r in ex]
    fix = _ISO_FIX if p.what == "timestamps" else f"write {p.what} only, or remove those rows"
    digits = [e.strip().lstrip("-").replace(".", "").isdigit() for e in examples]
    if p.what == "timestamps" and digits and all(digits):
        fix = f"these look like epoch numbers; {_EPOCH_FIX}"
    return ctx.error(f"column {ctx.col(c)} has {bad:,} of {n:,} rows that are not {p.what} "
                     f"(e.g. {', '.join(map(_show, examples))}). Fix: {fix}.")


def _duplicate_keys(ctx: _Ctx, t: ibis.Table, k: str) -> str:
    g = t.group_by(k).aggregate(_n=t.count()).filter(lambda s: s._n > 1)
    stats = _run(ctx, g.aggregate(ids=g.count(), rows=g._n.sum()))[0]
    examples = _run(ctx, g.order_by(k).select(v=g[k].cast("string")).limit(3))
    return ctx.error(f"column {ctx.col(k)} has {stats['ids']:,} ids that appear more than once "
                     f"({stats['rows']:,} rows for those ids; e.g. "
                     f"{', '.join(_show(r['v']) for r in examples)}). Fix: keep one row per {ctx.src(k)} "
                     f"upstream.")


def _bad_values_of(ctx: _Ctx, column: str, rel: ibis.Table, bad: int, n: int) -> str:
    allowed = FIXED_VALUES[ctx.table][1]
    bad_rows = rel.filter(rel.v.isnull() | ~rel.v.isin(allowed))
    by_value = bad_rows.group_by("v").aggregate(k=ibis._.count())
    rows = _run(ctx, by_value.order_by(ibis.desc("k"), "v").limit(10))
    values = ", ".join(f"{_show(r['v'])} ({_rows(r['k'])})" for r in rows)
    if ctx.table == "outcomes":
        first = next((r["v"] for r in rows if r["v"] is not None and len(r["v"]) <= 60),
                     "subscription_started")
        fix = (f"map them in the config, e.g. [outcomes] values = {{ {json.dumps(first)} = "
               f"\"conversion\" }} "
               f"(each value to \"conversion\", \"hand_raise\" or \"ignore\")")
    else:
        first = next((r["v"] for r in rows if r["v"] is not None and len(r["v"]) <= 60),
                     "treated")
        guess = next((a for a in allowed if a[:4] in str(first).lower()),
                     "holdout" if re.search(r"control|hold|^no", str(first).lower())
                     and "holdout" in allowed else allowed[0])
        fix = (f"map them in the config, e.g. [data.{ctx.table}] values = {{ {json.dumps(first)} "
               f"= {json.dumps(guess)} }} (each value to "
               f"{' or '.join(map(repr, allowed))}), or drop those rows upstream")
    return ctx.error(f"column {ctx.col(column)} has {bad:,} of {n:,} rows outside the allowed "
                     f"values {_quote(allowed)}: {values}. Fix: {fix}.")


def _number(col: ibis.Column) -> tuple[ibis.Value, ibis.Value, ibis.Value]:
    """A numeric property as float64 (null where it is not a finite number, or negative),
    where a non-null value was not a finite number, and where it was negative (event
    properties are counts and sizes: seats, messages, amounts)."""
    typ = col.type()
    f = col.try_cast("float64") if typ.is_string() else col.cast("float64")
    finite = f.notnull() & ~f.isnan() & ~f.isinf()
    negative = finite & (f < 0)
    return (ibis.ifelse(finite & ~negative, f, ibis.null("float64")), col.notnull() & ~finite,
            negative)


def _report_properties(ctx: _Ctx, values: dict, counts: dict, report: ValidationReport) -> None:
    for c in values:
        bad = counts.get(f"property:{c}") or 0
        if bad:
            report.add(Finding(ctx.table, ctx.file, ctx.src(c), "non_numeric_property", bad,
                               f"kept with a null {c}: the value is not a finite number (the "
                               f"event still counts; sums and maxima skip it)",
                               f"write numbers only in {ctx.src(c)} (no units, no thousands "
                               f"separators), or leave it empty"))


_NULLED = {
    "negative_values": ("made null (unknown): a count or size cannot be negative",
                        "write the true value, or leave it empty when unknown"),
    "non_finite_values": ("made null (unknown): 'inf', 'NaN' or a number too large to be a "
                          "count", "write finite numbers only, or leave it empty when unknown"),
}


def _report_nulled(ctx: _Ctx, columns, counts: dict, report: ValidationReport) -> None:
    for c in columns:
        for kind, (action, fix) in _NULLED.items():
            n = counts.get(f"{kind}:{c}") or 0
            if n:
                report.add(Finding(ctx.table, ctx.file, ctx.src(c), kind, n, action,
                                   f"{fix} in {ctx.src(c)}"))


def _long_checked(name: str, parsed: dict) -> list[str]:
    """The columns whose values are names: ids and the events' event names."""
    schema = TABLES[name]
    return [c for c in parsed if schema.kinds.get(c) == "id" or (name, c) == ("events", "event")]


def _report_long(ctx: _Ctx, parsed: dict, counts: dict, report: ValidationReport) -> dict:
    """Event names longer than MAX_NAME_LENGTH cut to it (each would be a feature column);
    longer ids kept whole (cutting could merge two ids); both counted."""
    out = dict(parsed)
    for c in _long_checked(ctx.table, parsed):
        n = counts.get(f"long:{c}") or 0
        if not n:
            continue
        if c == "event":
            e = parsed[c].expr
            out[c] = parsed[c]._replace(expr=ibis.ifelse(e.length() > MAX_NAME_LENGTH,
                                                         e.substr(0, MAX_NAME_LENGTH), e))
            action = (f"cut to their first {MAX_NAME_LENGTH} characters (each event name "
                      f"becomes a feature column)")
        else:
            action = "kept whole: ids are compared whole, never cut"
        report.add(Finding(ctx.table, ctx.file, ctx.src(c), "long_names", n,
                           f"{action}; longer than {MAX_NAME_LENGTH} characters",
                           f"check that {ctx.src(c)} holds names, not payloads (a JSON or a "
                           f"URL in the wrong column)"))
    return out


def _report_naive(ctx: _Ctx, parsed: dict, counts: dict, report: ValidationReport) -> None:
    for c in parsed:
        naive = counts.get(f"naive:{c}") or 0
        if naive:
            mixed = naive < counts["n"] - (counts.get(f"null:{c}") or 0)
            report.add(Finding(ctx.table, ctx.file, ctx.src(c), "naive_timestamps_assumed_utc",
                               naive, "normalised to UTC" if mixed else "assumed UTC",
                               "write timestamps with an explicit offset, e.g. "
                               "'2024-01-31T09:30:00Z'"))


def _dedupe_events(ctx: _Ctx, t: ibis.Table, n: int, report: ValidationReport,
                   distinct_ids: int | None = None, dates_only: bool = False) -> ibis.Table:
    """``t`` without repeated events; ``distinct_ids`` (the event ids' distinct count, when
    the table has them) equal to ``n`` proves there are none without another query. In a
    log of dates only without event ids (``dates_only``), identical rows are kept: they are
    a user's repeats of one event on one day, and counted as such."""
    keys = [c for c in ("ts", "user_id", "event", "event_id") if c in t.columns]
    if distinct_ids is not None and distinct_ids == n:
        return t
    distinct = t.select(*keys).distinct()
    if "event_id" in keys:
        # rows that share an event id but differ in time, user or name: one event told twice
        stats = _run(ctx, distinct.aggregate(k=distinct.count(),
                                             ids=distinct.event_id.nunique(),
                                             idless=distinct.event_id.isnull().sum()))[0]
        conflicts = stats["k"] - (stats["idless"] or 0) - stats["ids"]
    else:
        stats, conflicts = _run(ctx, distinct.aggregate(k=distinct.count()))[0], 0
    removed = n - stats["k"]
    if conflicts:
        return _resolve_event_ids(ctx, t, keys, removed, conflicts, report)
    if not removed:
        return t
    if dates_only:
        report.add(Finding(ctx.table, ctx.file, ", ".join(ctx.src(c) for c in keys),
                           "same_day_repeats_kept", removed,
                           "kept: the times are dates only and there is no event id, so a "
                           "user's repeats of one event on one day are identical rows, not "
                           "duplicates",
                           "export an event id or the time of day to tell repeats from "
                           "duplicates"))
        return t
    report.add(Finding(ctx.table, ctx.file, ", ".join(ctx.src(c) for c in keys),
                       "duplicate_events", removed, "kept one of each",
                       f"remove duplicate events upstream (rows identical on {', '.join(keys)})"))
    others = [c for c in t.columns if c not in keys]
    if len(others) > 1:  # several columns may differ: keep whole rows (a slower sort)
        rank = ibis.row_number().over(group_by=keys, order_by=others)
        return t.mutate(_rank=rank).filter(lambda s: s._rank == 0).drop("_rank")
    # At most one other column (account_id): min() keeps a real row, preferring a non-null one.
    return t.group_by(keys).aggregate(**{c: t[c].min() for c in others}).select(*t.columns)


def _resolve_event_ids(ctx: _Ctx, t: ibis.Table, keys: list[str], removed: int, conflicts: int,
                       report: ValidationReport) -> ibis.Table:
    """One row per event id: the earliest (then by user_id, event name and the other
    columns), so the choice does not depend on the file's order; rows without an id are
    deduplicated on the other keys as usual."""
    others = [c for c in t.columns if c not in keys]
    if removed:
        report.add(Finding(ctx.table, ctx.file, ", ".join(ctx.src(c) for c in keys),
                           "duplicate_events", removed, "kept one of each",
                           f"remove duplicate events upstream (rows identical on "
                           f"{', '.join(keys)})"))
    report.add(Finding(ctx.table, ctx.file, ctx.src("event_id"), "conflicting_event_ids",
                       conflicts, "left out: another row has the same event id with a different "
                       "time, user or event name; the earliest row of each id is kept (then by "
                       "user_id, event)",
                       f"give each event its own {ctx.src('event_id')} upstream (a retried "
                       f"send must repeat the same row)"))
    e = t.event_id
    part = [e, *(ibis.ifelse(e.isnull(), t[c], ibis.null(t[c].type())) for c in keys
                 if c != "event_id")]
    rank = ibis.row_number().over(group_by=part,
                                  order_by=[c for c in keys if c != "event_id"] + others)
    return t.mutate(_rank=rank).filter(lambda s: s._rank == 0).drop("_rank")


def future_bound(events: ibis.Table, read_at: pd.Timestamp) -> tuple[pd.Timestamp, str]:
    """The latest plausible time of the data, and the rule that set it.

    A time is in the future when it is after ``read_at`` (when the files were read: nothing
    recorded can be later), or when it lies beyond the event log's median time by more than
    twice the distance from the log's 1st percentile to its median, and by more than a year.
    The first part is relative to the log itself, so it scales from a log of weeks to one
    of years: a log spread evenly over a span S tolerates times up to S/2 after its end.
    The year keeps a short or tiny log (whose percentiles say little) from losing real
    events; what the rule is for, a year typed as 2027 or 2204 instead of 2024, is beyond it.
    """
    e = events.ts.epoch_seconds()
    q = events.aggregate(mid=e.approx_median(), low=e.approx_quantile(0.01)).execute().iloc[0]
    if pd.isna(q["mid"]):
        return read_at, "the time the files were read"
    reach = max(2 * (float(q["mid"]) - float(q["low"])), 365 * 86_400.0)
    relative = pd.Timestamp(float(q["mid"]) + reach, unit="s", tz="UTC")
    if relative < read_at:
        return relative, ("beyond the event log's median time by more than twice its spread "
                          "(1st percentile to median) and more than a year")
    return read_at, "the time the files were read"


def check_future(tables: dict, bound: pd.Timestamp, rule: str,
                 report: ValidationReport) -> dict:
    """``tables`` with their events dated after ``bound`` left out, counted; other tables'
    rows after it are counted and kept (a user or account row is still the entity it
    names). One query counts every table's timestamp columns (a query per column cost more
    than the counting on small data)."""
    bound_literal = ibis.literal(bound.floor("s").to_pydatetime(), type=UTC)
    columns = [(name, c) for name, t in tables.items() for c in TABLES[name].timestamps
               if c in t.columns]
    if not columns:
        return tables
    found = counts({(name, c): (tables[name], tables[name][c] > bound_literal)
                    for name, c in columns})
    out = dict(tables)
    for name, c in columns:
        n, t = found[name, c], out[name]
        if not n:
            continue
        where = report.files.get(name, "")
        drop = name == "events"
        report.add(Finding(name, where, c, "future_timestamps", n,
                           f"{'left out' if drop else 'kept'}: dated after "
                           f"{bound.strftime('%Y-%m-%d %H:%M')} UTC ({rule})"
                           + ("" if drop else "; they count as after every cutoff"),
                           "correct the dates upstream (a typo in the year, or a clock set "
                           "wrong), or remove those rows"))
        if drop:
            out[name] = t.filter(t[c].isnull() | (t[c] <= bound_literal))
    return out


def _run_metrics(ctx: _Ctx, t: ibis.Table, metrics: dict[str, ibis.Value]) -> dict:
    """The one-row aggregate of ``metrics`` over ``t``.

    DuckDB counts distinct integers with a perfect hash table (a bitmap over the range its
    statistics bound: no hashing, no collisions) up to 2^12 values by default; for this
    query the bound is raised to 2^26, so the distinct event ids of a Parquet file (22M of
    them) cost 0.25 s and ~15 MB within the scan the other checks make anyway, instead of
    a separate 0.6 s group-by. Text ids and other backends count as usual.
    """
    query = t.aggregate(**metrics)
    con = duckdb_of(t.event_id) if "event_id" in t.columns and t.event_id.type().is_integer() \
        else None
    if con is None:
        return _run(ctx, query)[0]
    con.raw_sql("SET perfect_ht_threshold = 26")
    try:
        return _run(ctx, query)[0]
    finally:
        con.raw_sql("RESET perfect_ht_threshold")


def _run(ctx: _Ctx, expr: ibis.Table) -> list[dict]:
    """Execute a small result (aggregates, examples) as a list of row dicts."""
    try:
        return expr.to_pyarrow().to_pylist()
    except (DataError, IbisError):  # ours, or a bug in the expression: not the data's fault
        raise
    except Exception as err:  # backend read errors (bad CSV rows, corrupt files)
        raise DataError(ctx.error(f"could not read the data: {err}. Fix: check that the file "
                                  f"is valid and matches its extension.")) from err


def _rows(n: int) -> str:
    return f"{n:,} row" + ("" if n == 1 else "s")


def _show(value) -> str:
    """A value for a message: quoted, and cut when it is too long to read."""
    if isinstance(value, str) and len(value) > 60:
        return f"{value[:40]!r}... ({len(value):,} characters)"
    return repr(value)


def _quote(values) -> str:
    return ", ".join(repr(v) for v in values)
