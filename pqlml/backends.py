"""Which engine an expression runs on, for the few places that take a DuckDB-only route, and
materialising an expression on its engine."""

from __future__ import annotations

import ibis

__all__ = ["duckdb_of", "cached"]


def duckdb_of(expr: ibis.Expr):
    """The DuckDB backend ``expr`` runs on, or None (another engine, or none can be told).

    Examples
    --------
    >>> con = ibis.duckdb.connect()
    >>> duckdb_of(con.create_table("t", obj=ibis.memtable({"x": [1]})).x).name
    'duckdb'
    """
    try:
        con = expr._find_backend(use_default=True)
    except Exception:  # noqa: BLE001 - no backend can be told: the portable route
        return None
    return con if getattr(con, "name", "") == "duckdb" else None


def cached(table: ibis.Table) -> ibis.Table:
    """``table.cache()`` (a temp table on DuckDB, a cached view on Spark), with the in-memory
    tables it reads registered first: ibis 12's PySpark backend caches without registering
    them, and Spark then fails with "table or view not found".

    Examples
    --------
    >>> con = ibis.duckdb.connect()
    >>> t = con.create_table("t", obj=ibis.memtable({"x": [1, 2]}))
    >>> t.join(ibis.memtable({"x": [2]}), "x").pipe(cached).count().execute()
    1
    """
    con = table._find_backend(use_default=True)
    con._run_pre_execute_hooks(table)
    return table.cache()
