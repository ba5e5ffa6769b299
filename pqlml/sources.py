"""Read the configured sources (files, DataFrames or database tables) as canonical ibis tables.

Files are read lazily through DuckDB (Parquet by ``.parquet``/``.pq``, CSV by
``.csv``/``.csv.gz``/``.tsv``; globs allowed); DataFrames (a config built in memory) are
copied into the project's DuckDB as temporary tables; with ``[data] connection`` set,
sources are table names in that database. :func:`canonical_table` maps source
column names onto the canonical ones (:mod:`pqlml.schema`), validates
(:mod:`pqlml.validate`) and casts.
"""

from __future__ import annotations

import difflib
import glob
import os
import re
import tempfile
import urllib.parse
from pathlib import Path
from typing import Mapping

import ibis
import pandas as pd

from pqlml.config import DataConfig, TableSource
from pqlml.errors import ConfigError, DataError
from pqlml.schema import COLUMN_ALIASES as _ALIASES
from pqlml.schema import FIXED_VALUES, TABLES, property_columns
from pqlml.readers._csv import read_csv_source
from pqlml.validate import (Finding, ValidationReport, check_future, future_bound,
                            validate_table)

__all__ = ["connect", "spill_directory", "read_table", "canonical_table", "load_tables",
           "describe_source", "FILL_IN"]

#: How a column mapping ``pqlml init`` could not guess starts ("<fill in: ...>").
FILL_IN = "<fill in:"

_PARQUET = (".parquet", ".pq")
_CSV = (".csv", ".csv.gz", ".tsv", ".tsv.gz")
def connect(data: DataConfig) -> ibis.BaseBackend:
    """Open the backend the sources live in, with the session time zone set to UTC.

    ``data.connection`` is an ibis URL (``duckdb:///warehouse.duckdb``,
    ``postgres://...``); relative DuckDB file paths are resolved against
    ``data.root``. Without a connection: an in-memory DuckDB that reads the files.
    ``data.memory_limit`` caps a DuckDB session's memory (it spills to disk beyond it).

    Examples
    --------
    >>> con = connect(DataConfig())
    >>> con.name
    'duckdb'
    >>> con = connect(DataConfig(memory_limit="1GiB"))
    >>> con.raw_sql("SELECT current_setting('memory_limit')").fetchall()[0][0]
    '1.0 GiB'

    ``data.engine = "spark"``: a SparkSession on ``data.master`` (:mod:`pqlml._spark`).
    """
    if data.engine == "spark":
        from ._spark import spark_backend
        return _session(spark_backend(data), data)
    if not data.connection:
        con = ibis.duckdb.connect()
    else:
        url = _resolve_duckdb_url(data.connection, Path(data.root))
        try:
            con = ibis.connect(url)
        except Exception as err:
            raise ConfigError(f"[data] connection = {_redact(data.connection)!r} could not be "
                              f"opened: {err}. Fix: use an ibis URL such as "
                              f"'duckdb:///path/to/warehouse.duckdb'.") from err
    return _session(con, data)


def duckdb_file(connection: str, root: Path) -> Path | None:
    """The DuckDB file a ``data.connection`` names (relative to ``root``), or None (another
    engine, in-memory, MotherDuck).

    Examples
    --------
    >>> duckdb_file("w.duckdb", Path("/data")), duckdb_file("postgres://h/db", Path("."))
    (PosixPath('/data/w.duckdb'), None)
    """
    parsed = urllib.parse.urlparse(connection)
    if parsed.scheme == "duckdb":
        path = parsed.netloc + parsed.path
    elif not parsed.scheme and connection.endswith((".duckdb", ".ddb")):
        path = parsed.path
    else:
        return None
    if path in ("", ":memory:") or path.startswith(("md:", "motherduck:")):
        return None
    return Path(os.path.abspath(root.expanduser() / Path(path).expanduser()))


def _resolve_duckdb_url(connection: str, root: Path) -> str:
    full = duckdb_file(connection, root)
    if full is None:
        return connection
    if not full.is_file():  # DuckDB would create an empty database instead
        raise DataError(f"[data] connection = {connection!r}: no DuckDB file at {full}. "
                        f"Fix: correct the path (relative paths start at the config's directory).")
    query = urllib.parse.urlparse(connection).query
    return f"duckdb://{full.as_posix()}" + (f"?{query}" if query else "")


def _session(con: ibis.BaseBackend, data: DataConfig) -> ibis.BaseBackend:
    """``con`` with pqlml's session settings: UTC, and on DuckDB the optimizer and
    allocator settings below and ``data.memory_limit`` (an error on other engines)."""
    if data.memory_limit.strip() and getattr(con, "name", "") != "duckdb":
        where = ("Spark: set spark.executor.memory / spark.driver.memory in [data.spark]"
                 if con.name == "pyspark" else "that engine's own configuration")
        raise ConfigError(f"[data] memory_limit = {data.memory_limit!r} sets DuckDB's memory "
                          f"limit, but the connection is {con.name}. Fix: remove it and set "
                          f"the memory in {where}.")
    if getattr(con, "name", "") == "duckdb":
        con.raw_sql("SET TimeZone='UTC'")
        # DuckDB 2.0's partial_aggregate_pushdown pre-aggregates a join's input by the
        # outer group keys. The window sums join the segment grain, already one row per
        # (entity, segment), so the pre-aggregation only adds work: with it, the window
        # sums took 4.1 s of CPU instead of 1.4 s at 100k accounts and 12 cutoffs.
        # Background threads hand memory that queries freed back to the system between
        # queries: the peak of a 12-cutoff build at 100k accounts fell from 2.4 GB to ~2.1 GB
        # at the same speed.
        for setting in ("disabled_optimizers = 'partial_aggregate_pushdown'",
                        "allocator_background_threads = true"):
            try:
                con.raw_sql(f"SET {setting}")
            except Exception:  # noqa: BLE001 - a DuckDB without that setting: nothing to set
                pass
        if data.memory_limit.strip():
            con.raw_sql(f"SET memory_limit = '{data.memory_limit.strip()}'")
        # DuckDB spills into ./.tmp of the working folder by default: gigabytes in a user's
        # folder (or a read-only one). A folder of this process in the system's temp folder
        # instead (TMPDIR moves it), created when needed and removed by DuckDB on close.
        con.raw_sql("SET temp_directory = '{}'".format(spill_directory().replace("'", "''")))
    return con


def spill_directory() -> str:
    """Where DuckDB spills beyond ``[data] memory_limit``: ``pqlml-spill-<pid>`` in the
    system's temp folder (``$TMPDIR``).

    Examples
    --------
    >>> con = connect(DataConfig())
    >>> con.raw_sql("SELECT current_setting('temp_directory')").fetchall()[0][0] == spill_directory()
    True
    """
    return os.path.join(tempfile.gettempdir(), f"pqlml-spill-{os.getpid()}")


def _redact(url: str) -> str:
    return re.sub(r"//[^/@]*@", "//***@", url)


def _source(data: DataConfig, name: str) -> TableSource:
    if name not in TABLES:
        raise ConfigError(f"unknown table {name!r}; pqlml reads {', '.join(TABLES)}.")
    src = getattr(data, name)
    if src is None:
        raise ConfigError(f"{name}: no source configured. Fix: add to the config:\n"
                          f'[data.{name}]\nsource = "{name}.parquet"')
    return src


def describe_source(data: DataConfig, name: str) -> str:
    """Where table ``name`` comes from: the resolved file path, the database table, or
    ``"DataFrame"`` (messages then read "events (DataFrame): ...").

    Examples
    --------
    >>> describe_source(DataConfig(root=Path("/data"), events=TableSource("e.csv")), "events")
    '/data/e.csv'
    """
    src = _source(data, name)
    if src.in_memory:
        return "DataFrame"
    if data.engine == "spark":
        from ._spark import is_catalog_name, spark_path
        path = spark_path(Path(data.root), src.source)
        if is_catalog_name(src.source) and not glob.glob(path):
            return f"table {src.source!r} in the Spark catalog"
        return path
    if data.connection:
        return f"table {src.source!r} in {_redact(data.connection)}"
    return os.path.abspath(Path(data.root).expanduser() / Path(src.source).expanduser())


def read_table(con: ibis.BaseBackend, data: DataConfig, name: str,
               report: ValidationReport | None = None) -> ibis.Table:
    """The raw source of table ``name`` (source column names and types), lazily.

    A CSV file's malformed lines are skipped and counted in ``report``
    (:mod:`pqlml.readers._csv`); without one, any such line is an error.

    Examples
    --------
    >>> import pathlib, tempfile, pandas as pd
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> pd.DataFrame({"time": ["2024-01-01"], "uid": ["u1"]}).to_csv(root / "e.csv", index=False)
    >>> data = DataConfig(root=root, events=TableSource("e.csv"))
    >>> read_table(connect(data), data, "events").columns
    ('time', 'uid')
    """
    src = _source(data, name)
    if src.in_memory:
        return _read_frame(con, name, src.frame)
    if getattr(con, "name", "") == "pyspark":
        from ._spark import read_spark_source
        return read_spark_source(con, Path(data.root), name, src.source)
    if data.connection:
        return _read_db_table(con, data, name, src.source)
    return _read_file(con, name, describe_source(data, name), report)


def _read_frame(con: ibis.BaseBackend, name: str, frame) -> ibis.Table:
    """A DataFrame copied into ``con`` as a temporary table: the project reads the data as
    it was when opened, as it reads a file once, whatever happens to the frame later. The
    frame's own types are kept (as from Parquet); its index is not read."""
    from pqlml.config._frames import as_pandas, frame_columns

    bad = [c for c in frame_columns(frame) if not isinstance(c, str)]
    if bad:
        raise DataError(f"{name} (DataFrame): column names must be strings. Got {_q(bad)}. "
                        f"Fix: name the columns, e.g. df.columns = [str(c) for c in df.columns].")
    try:
        obj = frame.to_arrow() if type(frame).__module__.startswith("polars") else frame
        return con.create_table(ibis.util.gen_name(f"pqlml_{name}"), obj=obj, temp=True)
    except Exception as err:  # noqa: BLE001 - pandas/Arrow conversion errors alike
        df = as_pandas(frame)
        mixed = [c for c in df.columns if df[c].dropna().map(type).nunique() > 1]
        which = f" Column(s) {_q(mixed)} mix Python types." if mixed else ""
        raise DataError(f"{name} (DataFrame): could not be read ({type(err).__name__}: "
                        f"{err}).{which} Fix: give each column one type, e.g. "
                        f"df['user_id'] = df['user_id'].astype(str).") from err


def _read_file(con: ibis.BaseBackend, name: str, path: str,
               report: ValidationReport | None = None) -> ibis.Table:
    where = f"{name} ({path})"
    if os.path.isdir(path):
        raise DataError(f"{where}: is a directory. Fix: point [data.{name}] source at the files, "
                        f'e.g. source = "{name}/*.parquet".')
    if not glob.glob(path, recursive=True):
        raise DataError(f"{where}: no file matches this path. Fix: correct [data.{name}] source "
                        f"(it is relative to the config file's directory).")
    lower = path.lower()
    if not lower.endswith(_PARQUET + _CSV):
        raise DataError(f"{where}: unknown file type. Fix: use a {', '.join(_PARQUET + _CSV)} "
                        f"file in [data.{name}] source.")
    try:
        if lower.endswith(_PARQUET):
            return con.read_parquet(path, union_by_name=True)
        # Read CSV as text; validate_table parses with counted, reported failures.
        return read_csv_source(con, name, path, report)
    except DataError:
        raise
    except Exception as err:
        raise DataError(f"{where}: could not read the file: {err}. Fix: check that the file is "
                        f"valid and matches its extension.") from err


def _read_db_table(con: ibis.BaseBackend, data: DataConfig, name: str, table: str) -> ibis.Table:
    *db, tname = table.split(".")
    try:
        return con.table(tname, database=tuple(db) if len(db) > 1 else (db[0] if db else None))
    except Exception as err:
        tables = ", ".join(map(repr, _list_tables(con))) or "(none)"
        raise DataError(f"{name} ({describe_source(data, name)}): no such table. Tables available: "
                        f"{tables}. Fix: correct [data.{name}] source.") from err


def _list_tables(con: ibis.BaseBackend) -> list[str]:
    # ibis 12 list_tables() calls a cursor method DuckDB 2.0 removed: query DuckDB directly.
    try:
        if con.name == "duckdb":
            rows = con.raw_sql("SELECT DISTINCT table_schema, table_name FROM "
                               "information_schema.tables ORDER BY 1, 2").fetchall()
            return [t if s == "main" else f"{s}.{t}" for s, t in rows]
        return sorted(con.list_tables())
    except Exception:  # listing is only a hint in an error message
        return []


def canonical_table(con: ibis.BaseBackend, data: DataConfig, name: str,
                    report: ValidationReport | None = None, *,
                    outcome_values: Mapping[str, str] | None = None) -> ibis.Table:
    """Table ``name`` with canonical column names and types, validated.

    Source columns are renamed by ``[data.<name>.columns]``; columns that are
    not canonical are left out and listed in ``report.ignored_columns``, except the
    events' numeric properties (``[data.events.columns]`` keys that are not canonical
    columns, e.g. ``amount = "Order Total"``). For
    ``outcomes``, ``outcome_values`` (``[outcomes] values``) maps the source's own
    outcome values onto ``conversion`` / ``hand_raise``; rows mapped to ``ignore``
    are left out and counted.

    Raises
    ------
    DataError
        A required column is missing, a mapping names a column the source lacks,
        or the data fails a check in :func:`pqlml.validate.validate_table`.

    Examples
    --------
    >>> import pathlib, tempfile, pandas as pd
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> pd.DataFrame({"time": ["2024-01-01T10:00:00+02:00"], "user_id": [7], "event": ["login"],
    ...               "plan": ["pro"]}).to_parquet(root / "e.parquet")
    >>> data = DataConfig(root=root, events=TableSource("e.parquet", {"ts": "time"}))
    >>> report = ValidationReport()
    >>> t = canonical_table(connect(data), data, "events", report)
    >>> t.execute().to_dict("records")
    [{'ts': Timestamp('2024-01-01 08:00:00+0000', tz='UTC'), 'user_id': '7', 'event': 'login'}]
    >>> report.ignored_columns
    {'events': ('plan',)}
    """
    report = ValidationReport() if report is None else report
    raw, where = read_table(con, data, name, report), describe_source(data, name)
    names = _match_columns(name, where, raw.columns, _source(data, name).columns)
    report.files[name] = where
    ignored = tuple(c for c in raw.columns if c not in names.values())
    if ignored:
        report.ignored_columns[name] = ignored
    renamed = raw.select(**{c: raw[s] for c, s in names.items()})
    if name == "outcomes" and outcome_values:
        renamed = _map_outcomes(renamed, outcome_values, where, names["outcome"], report)
    elif _source(data, name).values:
        renamed = _map_values(renamed, FIXED_VALUES[name][0], _source(data, name).values)
    properties = tuple(c for c in names if c not in TABLES[name].columns)
    return validate_table(renamed, name, file=where, source_columns=names, report=report,
                          properties=properties)


def _map_outcomes(t: ibis.Table, values: Mapping[str, str], where: str, column: str,
                  report: ValidationReport) -> ibis.Table:
    """``outcome`` values renamed by ``values``; rows mapped to ``ignore`` left out, counted."""
    value = t.outcome.cast("string")
    mapped = ibis.cases(*[(value == k, v) for k, v in values.items()], else_=value)
    t = t.mutate(outcome=mapped)
    ignored = [k for k, v in values.items() if v == "ignore"]
    if ignored:
        n = int(t.filter(t.outcome == "ignore").count().execute())
        if n:
            report.add(Finding("outcomes", where, column, "outcomes_ignored", n,
                               f"left out: [outcomes] values maps {_q(ignored)} to \"ignore\"",
                               "none needed"))
        t = t.filter(t.outcome != "ignore")
    return t


def _map_values(t: ibis.Table, column: str, values: Mapping[str, str]) -> ibis.Table:
    """``column``'s values renamed by a table's ``values`` (``[data.holdouts] values``),
    matched case- and space-insensitively; the others kept for validation to judge."""
    value = t[column].cast("string")
    key = value.strip().lower()
    return t.mutate(**{column: ibis.cases(*[(key == k.strip().lower(), v)
                                            for k, v in values.items()], else_=value)})


def _match_columns(name: str, where: str, present: tuple[str, ...],
                   mapping: Mapping[str, str]) -> dict[str, str]:
    """Canonical name -> source column, for the canonical columns the source has."""
    schema = TABLES[name]
    properties = property_columns(mapping) if name == "events" else ()
    unknown = [c for c in mapping if c not in schema.columns and c not in properties]
    if unknown:
        raise ConfigError(f"[data.{name}.columns]: {_q(unknown)} are not {name} columns. "
                          f"Fix: use canonical names as keys: {_q(schema.columns)}.")
    bad = {c: s for c, s in mapping.items() if s not in present}
    blank = [c for c, s in bad.items() if s.startswith(FILL_IN)]
    if blank:
        raise DataError(f"{name} ({where}): [data.{name}.columns] {_q(blank)} still hold the "
                        f"placeholder pqlml init wrote: it found no column for them. Columns "
                        f"present: {_q(present)}. Fix: replace each placeholder with the name "
                        f"of the column holding it:\n"
                        f"{_snippet(name, dict.fromkeys(blank), present)}")
    if bad:
        raise DataError(f"{name} ({where}): [data.{name}.columns] maps " +
                        ", ".join(f"{c} = {s!r}" for c, s in bad.items()) +
                        f", but the source has no such column. Columns present: {_q(present)}. "
                        f"Fix:\n{_snippet(name, bad, present)}")
    names = {c: mapping.get(c, c) for c in (*schema.columns, *properties)
             if mapping.get(c, c) in present}
    missing = [c for c in schema.required if c not in names]
    if missing:
        raise DataError(f"{name} ({where}): missing required column(s) {_q(missing)}. "
                        f"Columns present: {_q(present)}. Fix: map them in the config:\n"
                        f"{_snippet(name, dict.fromkeys(missing), present)}")
    return names


def _snippet(name: str, wanted: Mapping[str, str | None], present: tuple[str, ...]) -> str:
    lines = [f"[data.{name}.columns]"]
    for c in wanted:
        guess = _guess(c, present)
        lines.append(f'{c} = "{guess}"' if guess else f'{c} = "<the column holding {c}>"')
    return "\n".join(lines)


def _guess(column: str, present: tuple[str, ...]) -> str | None:
    lower = {p.lower(): p for p in present}
    close = difflib.get_close_matches(column.lower(), list(lower), n=1, cutoff=0.6)
    if close:
        return lower[close[0]]
    return next((lower[a] for a in _ALIASES.get(column, ()) if a in lower), None)


def _q(values) -> str:
    return ", ".join(repr(v) for v in values)


def _in_catalog(data: DataConfig) -> bool:
    """Whether ``[data.export] source`` names a database schema (``data.connection``, or on
    the Spark engine anything but a folder) rather than a folder of files."""
    if data.engine == "spark":
        return not (Path(data.root).expanduser() / data.export.source).is_dir()
    return bool(data.connection)


def load_tables(data: DataConfig, *, con: ibis.BaseBackend | None = None,
                report: ValidationReport | None = None,
                outcome_values: Mapping[str, str] | None = None
                ) -> tuple[ibis.BaseBackend, dict[str, ibis.Table], ValidationReport]:
    """Every configured table, canonical and validated (``events`` is required).
    ``outcome_values``: ``[outcomes] values`` (see :func:`canonical_table`).

    A given ``con`` gets its DuckDB session time zone set to UTC, which the
    timestamp parsing relies on.

    Examples
    --------
    >>> import pathlib, tempfile, pandas as pd
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> pd.DataFrame({"ts": ["2024-01-01 10:00", "2024-01-01 10:00"], "user_id": ["u1", "u1"],
    ...               "event": ["login", "login"]}).to_csv(root / "events.csv", index=False)
    >>> con, tables, report = load_tables(DataConfig(root=root, events=TableSource("events.csv")))
    >>> sorted(tables), tables["events"].count().execute()
    (['events'], 1)
    >>> [(f.kind, f.rows) for f in report.findings]
    [('naive_timestamps_assumed_utc', 2), ('duplicate_events', 1)]
    """
    if data.export is None:
        _source(data, "events")
    con = connect(data) if con is None else _session(con, data)
    report = ValidationReport() if report is None else report
    tables = {}
    if data.export is not None:
        from .readers import read_export
        where = f"{data.export.format} export {data.export.source}"
        for name, t in read_export(con, data.export, Path(data.root), report,
                                   connected=_in_catalog(data)).items():
            report.files[name] = where
            tables[name] = validate_table(t, name, file=where, report=report,
                                          properties=data.properties if name == "events" else ())
    read_at = pd.Timestamp.now(tz="UTC")
    tables |= {name: canonical_table(con, data, name, report, outcome_values=outcome_values)
               for name in TABLES if getattr(data, name) is not None}
    if "events" in tables:
        bound, rule = future_bound(tables["events"], read_at)
        tables = check_future(tables, bound, rule, report)
    return con, tables, report
