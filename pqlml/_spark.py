"""The Spark engine (``[data] engine = "spark"``): a SparkSession on the configured master,
and the configured sources read on it.

A source is read on the cluster, lazily: a Parquet file, a folder of them or a glob (paths
relative to ``data.root``; URLs such as ``s3a://bucket/events/`` as they are), or a table of
the session's catalog (Hive, Delta) named ``"table"`` or ``"db.table"``. CSV is refused:
Spark's CSV reader does not count and report malformed lines as :mod:`pqlml.readers._csv`
does. pyspark is imported here only, when a Spark project opens.
"""

from __future__ import annotations

import glob
import os
import re
from pathlib import Path

import ibis

from .errors import ConfigError, DataError

__all__ = ["spark_backend", "portable_compiler", "read_spark_source", "is_catalog_name",
           "spark_settings", "spark_path", "PARQUET", "CSV"]

PARQUET = (".parquet", ".pq")
CSV = (".csv", ".csv.gz", ".tsv", ".tsv.gz")
_CATALOG_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*){0,2}")


def _local(master: str) -> bool:
    """Whether the driver may bind to 127.0.0.1 only: local mode, or a master on this host."""
    return master.startswith("local") or re.match(r"spark://(127\.0\.0\.1|localhost)(:|$)",
                                                  master) is not None


def spark_settings(master: str, spark: dict) -> dict[str, str]:
    """The Spark settings pqlml opens a session with: UTC, no web UI or progress bars, Arrow
    transfers, the driver on 127.0.0.1 when the cluster is local, then the config's own
    ``[data.spark]``.

    Examples
    --------
    >>> s = spark_settings("local[2]", {"spark.sql.shuffle.partitions": "8"})
    >>> s["spark.sql.session.timeZone"], s["spark.driver.host"], s["spark.sql.shuffle.partitions"]
    ('UTC', '127.0.0.1', '8')
    >>> "spark.driver.host" in spark_settings("spark://10.0.0.5:7077", {})
    False
    """
    settings = {"spark.sql.session.timeZone": "UTC", "spark.ui.enabled": "false",
                "spark.sql.parquet.inferTimestampNTZ.enabled": "true",   # naive stays naive
                "spark.ui.showConsoleProgress": "false",
                "spark.sql.execution.arrow.pyspark.enabled": "true"}
    if _local(master):
        settings |= {"spark.driver.bindAddress": "127.0.0.1", "spark.driver.host": "127.0.0.1"}
    return settings | dict(spark)


def _regex_replace(self, op, *, arg, pattern, replacement):
    """A literal replacement's ``\\1`` back-references (DuckDB's, Python's) as Java's ``$1``."""
    import ibis.expr.operations as ops
    import sqlglot.expressions as sge

    if isinstance(op.replacement, ops.Literal):
        text = op.replacement.value.replace("$", "\\$")
        replacement = sge.convert(re.sub(r"\\(\d)", r"$\1", text))
    return self.f.regexp_replace(arg, pattern, replacement)


def _trim(pattern: str):
    def visit(self, op, *, arg):
        import sqlglot.expressions as sge
        return self.f.regexp_replace(arg, sge.convert(pattern), sge.convert(""))
    return visit


def portable_compiler() -> None:
    r"""Make ibis 12's Spark SQL mean what it means on DuckDB, where it does not:

    - ``strip()`` compiles to ``TRIM(' \t\n\r\v\f' FROM s)``; Spark reads the literal's
      unknown escapes ``\v`` and ``\f`` as the letters v and f, so "fintech" became
      "intech". ``lstrip`` / ``rstrip`` compile to Spark's ``ltrim`` / ``rtrim``, which
      trim spaces only. All three now remove Java's ``\s``, the same six characters.
    - ``re_replace``'s back-references are ``\1`` on DuckDB, ``$1`` on Spark.
    - Spark's ``TIMESTAMP`` columns are instants, but ibis reads them as naive times
      (pqlml would then report them as "naive, assumed UTC"); they are UTC instants here,
      as pqlml's session time zone is UTC. ``TIMESTAMP_NTZ`` stays naive.

    Idempotent; changes the Spark compiler only.

    Examples
    --------
    >>> portable_compiler()
    >>> t = ibis.table({"s": "string"}, name="t")
    >>> print(ibis.to_sql(t.select(a=t.s.strip(), b=t.s.re_replace(r"(\d),", r"\1")),
    ...                   dialect="pyspark"))
    SELECT
      REGEXP_REPLACE(`t0`.`s`, '^\\s+|\\s+$', '') AS `a`,
      REGEXP_REPLACE(`t0`.`s`, '(\\d),', '$1') AS `b`
    FROM `t` AS `t0`
    """
    import functools

    import ibis.expr.datatypes as dt
    from ibis.backends.pyspark import datatypes as spark_types
    from ibis.backends.sql.compilers.pyspark import PySparkCompiler

    # Spark's TIMESTAMP is an instant (TIMESTAMP_NTZ the naive kind, read as naive): in
    # pqlml's UTC session, an instant in UTC, as DuckDB reads a Parquet timestamp with a zone.
    spark_types._from_pyspark_dtypes[spark_types.pt.TimestampType] = functools.partial(
        dt.Timestamp, timezone="UTC")

    PySparkCompiler.visit_Strip = _trim(r"^\s+|\s+$")
    PySparkCompiler.visit_LStrip = _trim(r"^\s+")
    PySparkCompiler.visit_RStrip = _trim(r"\s+$")
    PySparkCompiler.visit_RegexReplace = _regex_replace


def spark_backend(data) -> ibis.BaseBackend:
    """An ibis PySpark backend on a SparkSession for ``data.master`` (``local[*]`` when
    empty) with :func:`spark_settings`. An active session is reused with these settings
    applied (Spark keeps its master and other startup settings)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as err:
        raise ConfigError("[data] engine = \"spark\" needs pyspark. Fix: pip install "
                          "'pyspark>=4.0,<4.1' (and Java 17), or remove engine = "
                          "\"spark\".") from err
    master = data.master or "local[*]"
    builder = SparkSession.builder.master(master).appName("pqlml")
    for key, value in spark_settings(master, data.spark).items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except Exception as err:  # noqa: BLE001 - Java missing, master unreachable, bad setting
        raise ConfigError(f"[data] engine = \"spark\": no Spark session on master {master!r} "
                          f"({type(err).__name__}: {str(err).splitlines()[0][:300]}). Fix: "
                          f"check that Java 17 is installed and the master URL is reachable, "
                          f"and the [data.spark] settings.") from err
    session.conf.set("spark.sql.session.timeZone", "UTC")
    portable_compiler()
    session.sparkContext.setLogLevel("ERROR")    # pqlml reports its own progress and findings
    return ibis.pyspark.connect(session)


def is_catalog_name(source: str) -> bool:
    """Whether ``source`` names a catalog table (``db.table``), not a file.

    Examples
    --------
    >>> is_catalog_name("analytics.events"), is_catalog_name("events.parquet")
    (True, False)
    """
    return _CATALOG_NAME.fullmatch(source) is not None and not source.lower().endswith(
        PARQUET + CSV)


def spark_path(root: Path, source: str) -> str:
    """``source`` as Spark reads it: a URL as it is, a path resolved against ``root``."""
    if "://" in source:
        return source
    return os.path.abspath(Path(root).expanduser() / Path(source).expanduser())


def read_spark_source(con, root: Path, name: str, source: str) -> ibis.Table:
    """Table ``name``'s source read on the cluster: Parquet (a file, folder or glob) or a
    catalog table; CSV refused (see the module docstring)."""
    path = spark_path(root, source)
    where = f"{name} ({path})"
    if source.lower().endswith(CSV):
        raise ConfigError(f"{where}: CSV is not read on the Spark engine (malformed lines "
                          f"could not be counted and reported). Fix: convert it to Parquet, "
                          f"e.g. pqlml's DuckDB: COPY (FROM '{source}') TO "
                          f"'{Path(source).name.split('.')[0]}.parquet', and point "
                          f"[data.{name}] source at that file.")
    if "://" not in source and not glob.glob(path, recursive=True):
        if is_catalog_name(source):
            return _catalog_table(con, name, source)
        raise DataError(f"{where}: no file matches this path. Fix: correct [data.{name}] "
                        f"source (relative to the config file's directory), or name a table "
                        f"of the Spark catalog as \"db.table\".")
    try:
        # mergeSchema: files of one folder may differ in optional columns (DuckDB's union_by_name)
        return con.read_parquet(path, mergeSchema=True)
    except Exception as err:  # noqa: BLE001 - Spark's AnalysisException and Java errors alike
        raise DataError(f"{where}: Spark could not read it as Parquet "
                        f"({str(err).splitlines()[0][:300]}). Fix: point [data.{name}] source "
                        f"at Parquet files (a file, a folder of them or a glob).") from err


def _catalog_table(con, name: str, source: str) -> ibis.Table:
    *db, table = source.split(".")
    try:
        return con.table(table, database=".".join(db) or None)
    except Exception as err:  # noqa: BLE001
        try:
            known = ", ".join(sorted(con.list_tables(database=".".join(db) or None))) or "(none)"
        except Exception:  # noqa: BLE001 - the database itself is unknown
            known = "(the database is unknown)"
        raise DataError(f"{name}: no table {source!r} in the Spark catalog and no file of that "
                        f"name; tables there: {known}. Fix: correct [data.{name}] source.") from err
