"""What a source file holds: its columns, what each looks like, and the time it spans.

Every figure is a DuckDB aggregate over the file (read through
:func:`pqlml.sources.read_table`, so Parquet, CSV and globs behave as everywhere else);
what a column *looks like* (timestamps, numbers, email addresses, domains) is decided
on its first rows, the rest is counted over the whole file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import ibis
import ibis.expr.datatypes as dt
import pandas as pd

from ..config import DataConfig, TableSource
from ..errors import DataError
from ..sources import read_table

__all__ = ["ColumnFacts", "TableFacts", "inspect_table", "value_counts"]

UTC = dt.Timestamp(timezone="UTC")
SAMPLE = 5_000       # rows a column's look is judged on
SHARE = 0.95         # share of a sample's values that must look alike
_EMAIL = r"^\s*[^@\s]+@[^@\s]+\.[^@\s]+\s*$"
_DOMAIN = r"(?i)^\s*(https?://)?(www\.)?[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}/?\s*$"
_LOOKS = ("timestamp", "number", "email", "domain")   # tested in this order on text columns


@dataclass(frozen=True)
class ColumnFacts:
    """One source column: its type, what its values look like and how many there are.

    ``kind`` is ``"timestamp"``, ``"number"``, ``"email"``, ``"domain"``, ``"text"`` or
    ``"empty"``; ``first`` / ``last`` and ``dates_only`` (every value at midnight) are
    set for timestamps; ``distinct`` is approximate (HyperLogLog: a few percent off).
    """

    name: str
    type: str
    kind: str
    values: int
    distinct: int
    examples: tuple[str, ...] = ()
    first: pd.Timestamp | None = None
    last: pd.Timestamp | None = None
    dates_only: bool = False

    def describe(self) -> str:
        """A few words for a config comment, e.g. ``text, ~4 distinct, e.g. 'pro', 'free'``."""
        if self.kind == "timestamp":
            span = "empty" if self.first is None else f"{self.first.date()} .. {self.last.date()}"
            return f"timestamps {span}" + ("; dates only" if self.dates_only else "")
        shown = ", ".join(repr(e) for e in self.examples[:2])
        return f"{self.kind}, ~{self.distinct:,} distinct" + (f", e.g. {shown}" if shown else "")


@dataclass(frozen=True)
class TableFacts:
    """A source file as :func:`inspect_table` found it."""

    name: str
    path: str
    rows: int
    columns: dict[str, ColumnFacts]
    table: ibis.Table = field(repr=False, compare=False)

    def of_kind(self, *kinds: str) -> list[ColumnFacts]:
        """The columns whose values look like one of ``kinds``, in file order."""
        return [c for c in self.columns.values() if c.kind in kinds]


def inspect_table(con: ibis.BaseBackend, name: str, path: str | Path) -> TableFacts:
    """Read ``path`` as table ``name`` and describe each of its columns.

    Examples
    --------
    >>> import tempfile
    >>> from pqlml.sources import connect
    >>> root = Path(tempfile.mkdtemp())
    >>> pd.DataFrame({"occurred_at": ["2024-01-01", "2024-01-03"], "who": ["a@x.io", "b@y.io"],
    ...               "n": ["1", "2.5"]}).to_csv(root / "e.csv", index=False)
    >>> facts = inspect_table(connect(DataConfig()), "events", root / "e.csv")
    >>> [(c.name, c.kind) for c in facts.columns.values()]
    [('occurred_at', 'timestamp'), ('who', 'email'), ('n', 'number')]
    >>> facts.columns["occurred_at"].describe()
    'timestamps 2024-01-01 .. 2024-01-03; dates only'
    """
    path = str(Path(path).expanduser().absolute())
    data = DataConfig(root=Path("/"), **{name: TableSource(path)})
    t = read_table(con, data, name)
    looks = _looks(t, f"{name} ({path})")
    kinds = {c: _kind(t[c].type(), looks, c) for c in t.columns}
    whole = _run(t.aggregate(**_whole(t, kinds)), f"{name} ({path})")
    examples = _examples(t, f"{name} ({path})")
    columns = {}
    for c in t.columns:
        first, last = _stamp(whole.get(f"first:{c}")), _stamp(whole.get(f"last:{c}"))
        columns[c] = ColumnFacts(
            name=c, type=str(t[c].type()), kind=kinds[c], values=_int(whole[f"n:{c}"]),
            distinct=_int(whole[f"d:{c}"]), examples=examples.get(c, ()), first=first, last=last,
            dates_only=kinds[c] == "timestamp" and not whole.get(f"timed:{c}"))
    return TableFacts(name, path, _int(whole["rows"]), columns, t)


def _stamp(value) -> pd.Timestamp | None:
    return None if value is None or pd.isna(value) else pd.Timestamp(value)


def _int(value) -> int:
    return 0 if value is None or pd.isna(value) else int(value)


def _parsed(col: ibis.Column) -> ibis.TimestampValue:
    """A timestamp-looking column as UTC timestamps (text as pqlml's validation reads it)."""
    return col.try_cast(UTC) if col.type().is_string() else col.cast(UTC)


def _looks(t: ibis.Table, where: str) -> dict[str, int]:
    """On the first rows: per text column, how many values parse as each of ``_LOOKS``."""
    s = t.limit(SAMPLE)
    aggs = {"rows": s.count()}
    for c in t.columns:
        col = s[c]
        aggs[f"n:{c}"] = col.count()
        if col.type().is_string():
            aggs[f"timestamp:{c}"] = col.try_cast(UTC).notnull().sum()
            aggs[f"number:{c}"] = col.try_cast("float64").notnull().sum()
            aggs[f"email:{c}"] = col.re_search(_EMAIL).sum()
            aggs[f"domain:{c}"] = col.re_search(_DOMAIN).sum()
    return _run(s.aggregate(**aggs), where)


def _kind(typ: dt.DataType, looks: dict, c: str) -> str:
    if typ.is_timestamp() or typ.is_date():
        return "timestamp"
    if typ.is_numeric() and not typ.is_boolean():
        return "number"
    n = looks.get(f"n:{c}") or 0
    if not n:
        return "empty"
    if typ.is_string():
        for kind in _LOOKS:
            if (looks.get(f"{kind}:{c}") or 0) >= SHARE * n:
                return kind
    return "text"


def _whole(t: ibis.Table, kinds: dict[str, str]) -> dict[str, ibis.Value]:
    """Over the whole file: rows, and per column values, distinct values, time range."""
    aggs = {"rows": t.count()}
    for c in t.columns:
        aggs[f"n:{c}"] = t[c].count()
        aggs[f"d:{c}"] = t[c].approx_nunique()
        if kinds[c] == "timestamp":
            ts = _parsed(t[c])
            aggs[f"first:{c}"], aggs[f"last:{c}"] = ts.min(), ts.max()
            aggs[f"timed:{c}"] = (ts.notnull() & (ts != ts.truncate("D"))).sum()
    return aggs


def _examples(t: ibis.Table, where: str) -> dict[str, tuple[str, ...]]:
    rows = t.limit(200).select(*[t[c].cast("string").name(c) for c in t.columns])
    frame = _run_frame(rows, where)
    return {c: tuple(dict.fromkeys(v for v in frame[c] if pd.notna(v) and str(v).strip()))[:3]
            for c in frame.columns}


def value_counts(facts: TableFacts, column: str, limit: int = 200) -> list[tuple[str, int]]:
    """The ``limit`` most frequent values of ``column`` with their rows, most frequent first.

    Examples
    --------
    >>> import tempfile
    >>> from pqlml.sources import connect
    >>> root = Path(tempfile.mkdtemp())
    >>> pd.DataFrame({"kind": ["won", "lost", "won"]}).to_csv(root / "d.csv", index=False)
    >>> value_counts(inspect_table(connect(DataConfig()), "outcomes", root / "d.csv"), "kind")
    [('won', 2), ('lost', 1)]
    """
    t = facts.table
    counts = t.group_by(v=t[column].cast("string")).aggregate(k=t.count())
    frame = _run_frame(counts.order_by([ibis.desc("k"), "v"]).limit(limit),
                       f"{facts.name} ({facts.path})")
    return [(v, int(k)) for v, k in zip(frame["v"], frame["k"]) if v is not None]


def _run(expr: ibis.Table, where: str) -> dict:
    return _run_frame(expr, where).iloc[0].to_dict()


def _run_frame(expr: ibis.Table, where: str) -> pd.DataFrame:
    try:
        return expr.to_pyarrow().to_pandas()
    except Exception as err:  # backend read errors (bad CSV rows, corrupt files)
        raise DataError(f"{where}: could not read the file: {err}. Fix: check that the file "
                        f"is valid and matches its extension.") from err
