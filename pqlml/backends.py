"""Which engine an expression runs on, for the few places that take a DuckDB-only route."""

from __future__ import annotations

import ibis

__all__ = ["duckdb_of"]


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
