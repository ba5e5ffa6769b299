"""DataFrames as table sources: which objects are frames, and a content hash of each.

A config built in memory (:func:`pqlml.open_project` with ``events=df``) holds the frames
themselves in :class:`~pqlml.config.TableSource` ``frame``; its ``source`` is a label with
the frame's content hash, ``"DataFrame sha256:<hex>"``, so ``repr(config)`` (the config's
provenance, :func:`pqlml.model.provenance`) names the data it was built from, and two
configs over equal frames have the same repr. Nothing here imports pandas, pyarrow or
polars: a frame of a library that was never imported cannot exist.
"""

from __future__ import annotations

import hashlib
import sys

__all__ = ["is_frame", "frame_label", "FRAME_KINDS"]

#: What an in-memory table source may be (named in error messages).
FRAME_KINDS = "a pandas DataFrame, a pyarrow Table or a polars DataFrame"

_PREFIX = "DataFrame sha256:"


def _kind(obj) -> str | None:
    for module, cls in (("pandas", "DataFrame"), ("pyarrow", "Table"), ("polars", "DataFrame")):
        lib = sys.modules.get(module)
        if lib is not None and isinstance(obj, getattr(lib, cls)):
            return module
    return None


def is_frame(obj) -> bool:
    """Whether ``obj`` is a table pqlml can read in memory (:data:`FRAME_KINDS`).

    Examples
    --------
    >>> import pandas as pd, pyarrow as pa
    >>> is_frame(pd.DataFrame({"a": [1]})), is_frame(pa.table({"a": [1]}))
    (True, True)
    >>> is_frame(pd.Series([1])), is_frame("events.parquet")
    (False, False)
    """
    return _kind(obj) is not None


def frame_columns(frame) -> list:
    """The column names of ``frame`` (a pyarrow Table's ``columns`` are its arrays)."""
    return list(frame.column_names if _kind(frame) == "pyarrow" else frame.columns)


def as_pandas(frame):
    """``frame`` as a pandas DataFrame (pyarrow and polars through Arrow; pandas as is)."""
    kind = _kind(frame)
    if kind == "polars":
        frame = frame.to_arrow()
    return frame.to_pandas() if kind in ("pyarrow", "polars") else frame


def frame_label(frame) -> str:
    """``"DataFrame sha256:<hex>"``: the SHA-256 of the frame's column names, types and
    values (row order counts, the pandas index does not: pqlml never reads it).

    The values are hashed by ``pandas.util.hash_pandas_object``, column by column (about
    0.1 s per million rows and column); a pyarrow or polars table is converted to pandas
    first. Equal frames of different libraries hash alike when their pandas types agree.

    Examples
    --------
    >>> import pandas as pd
    >>> a = pd.DataFrame({"user_id": ["u1", "u2"], "n": [1, 2]})
    >>> frame_label(a) == frame_label(a.set_index(pd.Index([7, 8])))
    True
    >>> frame_label(a) == frame_label(a.assign(n=[1, 3]))
    False
    >>> frame_label(a)[:17]
    'DataFrame sha256:'
    """
    import pandas as pd

    df = as_pandas(frame)
    h = hashlib.sha256()
    for name in df.columns:
        column = df[name]
        h.update(f"{name!r}:{column.dtype}:{len(column)};".encode())
        try:
            values = pd.util.hash_pandas_object(column, index=False)
        except TypeError:   # unhashable cells (lists, dicts): hash their text
            values = pd.util.hash_pandas_object(column.astype(str), index=False)
        h.update(values.to_numpy().tobytes())
    return _PREFIX + h.hexdigest()
