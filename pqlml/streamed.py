"""Point-in-time features written to Parquet as the engine produces them: the whole table
is never in memory.

:func:`write_features` builds the same lazy feature table as
:meth:`pqlml.project.Project.features` (every cutoff at once, so the events are read once)
and, instead of collecting it, reads the engine's result a batch of rows at a time and
appends each batch to the output file. The file holds the in-memory table: same columns,
rows and values (tested on every column), in the engine's row order (sort by entity and
as_of when order matters). The engine's work runs under ``[data] memory_limit``: DuckDB
spills its joins and sorts to disk beyond it; the Python side holds one batch.

Types are the in-memory table's, made smaller where that is exact: whole-number columns
held as 64-bit integers (active, new and buyer-title users, account age in days,
distinct events) are written as 32-bit integers with a checked cast (a value beyond
+-2,147,483,647 stops with a :class:`~pqlml.errors.DataError` naming the column). Event
counts are 32-bit and flags 8-bit already; floats stay 64-bit (32 bits would round them).

Examples
--------
>>> import tempfile, pandas as pd
>>> from pqlml.project import open_project
>>> from pqlml.simulate import simulate
>>> sim = simulate(n_accounts=80, seed=3, out=tempfile.mkdtemp(), months=5)
>>> project = open_project(sim.config, cache=False)
>>> done = write_features(project, sim.out / "features.parquet")
>>> streamed = pd.read_parquet(sim.out / "features.parquet")
>>> in_memory = project.features()
>>> streamed.shape == in_memory.shape == (done.rows, done.features + 2)
True
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import ibis
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .backends import record_batches
from .errors import DataError
from .outputs import atomic
from .sources import spill_directory

__all__ = ["write_features", "worth_streaming", "Streamed", "BATCH_ROWS", "STREAM_ROWS"]

#: Rows per batch read from the engine and per row group of the file.
BATCH_ROWS = 1 << 17
#: ``pqlml features --out X.parquet`` streams a table of more rows than this (about 2 GB
#: in memory at the simulated config's 194 features); a smaller one is built in memory and
#: kept in the feature cache for later commands.
STREAM_ROWS = 2_000_000


@dataclass(frozen=True)
class Streamed:
    """What :func:`write_features` wrote: the file, its rows, feature columns and as_of dates."""

    path: Path
    rows: int
    features: int
    dates: tuple | None


def write_features(project, out, *, as_of=None, entity=None, extra=(),
                   progress=None, groups: int | None = None) -> Streamed:
    """The features of ``as_of`` (as for :meth:`~pqlml.project.Project.features`; default
    the config's schedule) appended to the Parquet file ``out`` a batch at a time, written
    atomically. ``progress(rows)`` is called after each batch with the rows written so far.
    ``groups``: how many groups of entities the query runs in, one after another into the
    same file (default :func:`pqlml.grouped.group_count` of the events and the memory limit;
    :mod:`pqlml.grouped`).
    """
    from .grouped import feature_groups
    from .project import _entity, spine_for

    entity = _entity(project, entity)
    dates = project.dates(as_of)
    spine = spine_for(project, as_of=as_of if dates is None else list(dates), entity=entity)
    out, rows, writer, schema = Path(out), 0, None, None
    with feature_groups(project, spine, entity, extra, groups=groups) as tables, \
            atomic(out) as tmp:
        try:
            for table in tables:
                for batch in _batches(project.con, table, project.config.data.memory_limit):
                    schema = schema or _compact_schema(batch.schema)
                    if writer is None:
                        writer = pq.ParquetWriter(tmp, schema, compression="zstd")
                    writer.write_table(_cast(batch, schema), row_group_size=BATCH_ROWS)
                    rows += batch.num_rows
                    if progress is not None:
                        progress(rows)
            if writer is None:      # no rows: the file still has the table's columns
                schema = _compact_schema(table.schema().to_pyarrow())
                writer = pq.ParquetWriter(tmp, schema, compression="zstd")
        finally:
            if writer is not None:
                writer.close()
    return Streamed(out, rows, len(schema) - 2, dates)


def worth_streaming(project, *, as_of=None, entity=None) -> bool:
    """Whether the feature table of ``as_of`` has more than :data:`STREAM_ROWS` rows
    (counted on the spine, a cheap query)."""
    from .project import _entity, spine_for

    entity = _entity(project, entity)
    dates = project.dates(as_of)
    spine = spine_for(project, as_of=as_of if dates is None else list(dates), entity=entity)
    return int(spine.count().execute()) > STREAM_ROWS


def _batches(con, table: ibis.Table, memory_limit: str = ""):
    """Arrow tables of up to :data:`BATCH_ROWS` rows of ``table``, typed as ibis types them,
    from the engine's stream (:func:`pqlml.backends.record_batches`). On DuckDB without
    keeping insertion order (the rows' order is the engine's anyway; DuckDB then needs less
    memory to stream), and an engine that runs out of memory is a
    :class:`~pqlml.errors.DataError` saying so."""
    if con.name != "duckdb":
        for batch in record_batches(table, BATCH_ROWS):
            yield pa.Table.from_batches([batch])
        return
    import duckdb
    from ibis.backends.duckdb.converter import DuckDBPyArrowData

    raw = con.con
    keep = raw.execute("select current_setting('preserve_insertion_order')").fetchone()[0]
    raw.execute("set preserve_insertion_order = false")
    try:
        for batch in record_batches(table, BATCH_ROWS):
            yield table.__pyarrow_result__(pa.Table.from_batches([batch]),
                                           data_mapper=DuckDBPyArrowData)
    except (OSError, duckdb.Error) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        limit = f"now {memory_limit!r}" if memory_limit else "not set"
        raise DataError(f"DuckDB stopped building the features: {first}. Fix: raise "
                        f"[data] memory_limit ({limit}) or give DuckDB's spill folder "
                        f"({spill_directory()}, in $TMPDIR) more free disk.") from err
    finally:
        raw.execute(f"set preserve_insertion_order = {str(bool(keep)).lower()}")


def _compact_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` with 64-bit integer columns as 32-bit."""
    return pa.schema([f.with_type(pa.int32()) if pa.types.is_int64(f.type) else f
                      for f in schema], metadata=schema.metadata)


def _cast(rows: pa.Table, schema: pa.Schema) -> pa.Table:
    columns = []
    for column, field in zip(rows.columns, schema):
        if column.type != field.type:
            try:
                column = pc.cast(column, field.type, safe=True)
            except pa.ArrowInvalid as err:
                raise DataError(f"Feature {field.name!r} has a value beyond a 32-bit integer, "
                                f"which the streamed features file stores it as. Write the "
                                f"features to a .csv file instead (built in memory).") from err
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=schema)
