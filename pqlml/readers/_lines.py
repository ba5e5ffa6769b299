"""Every line of every export file, numbered: nothing can be dropped before it is counted.

Files may be plain, gzipped (``.gz``) or zip archives of either (Amplitude's export);
members are read in name order. Bytes that are not UTF-8 are replaced (the line then
fails JSON parsing and is counted as malformed). Lines go to Arrow as slices of the
file's own buffer (no per-line Python objects).
"""

from __future__ import annotations

import glob
import gzip
import io
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa

from ..errors import DataError

__all__ = ["read_lines", "expand"]


def expand(root: Path, pattern: str) -> list[Path]:
    """Files matching ``pattern`` (relative to ``root``; ``**`` allowed), sorted."""
    path = Path(pattern).expanduser()
    path = path if path.is_absolute() else Path(root) / path
    files = sorted(Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file())
    if not files:
        raise DataError(f"No export file matches {path}. Fix: set [data.export] source to the "
                        "folder/glob of the export, e.g. source = \"segment-logs/**/*.gz\".")
    return files


def _streams(path: Path):
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            for name in sorted(n for n in z.namelist() if not n.endswith("/")):
                data = z.read(name)
                if name.endswith(".gz"):
                    data = gzip.decompress(data)
                yield f"{path.name}!{name}", io.BytesIO(data)
    elif path.suffix == ".gz":
        with gzip.open(path, "rb") as f:
            yield str(path), f
    else:
        with open(path, "rb") as f:
            yield str(path), f


def _split(data: bytes) -> tuple[pa.Array, np.ndarray]:
    """Lines of one file as an Arrow string array without copying them through Python: each
    value is the line with its line break (JSON ignores trailing whitespace); blank lines
    left out. Returns (values, 1-based line numbers)."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        data = data.decode("utf-8", "replace").encode("utf-8")
    buf = np.frombuffer(data, np.uint8)
    breaks = np.flatnonzero(buf == 10)
    offsets = np.concatenate([[0], breaks + 1])
    if len(buf) and buf[-1] != 10:
        offsets = np.append(offsets, len(buf))
    values = pa.LargeStringArray.from_buffers(len(offsets) - 1, pa.py_buffer(offsets.astype(np.int64)),
                                              pa.py_buffer(data))
    ends = offsets[1:] - (buf[offsets[1:] - 1] == 10)              # without the "\n"
    ends = ends - ((ends > offsets[:-1]) & (buf[np.maximum(ends - 1, 0)] == 13))   # and "\r"
    keep = ends > offsets[:-1]
    return values.filter(pa.array(keep)), np.flatnonzero(keep) + 1


def read_lines(files) -> pa.Table:
    """``file``, ``line`` (1-based) and ``raw`` text (with its line break) of every
    non-blank line."""
    parts = []
    for path in files:
        try:
            for name, stream in _streams(Path(path)):
                values, numbers = _split(stream.read())
                parts.append(pa.table({"file": pa.array(np.full(len(numbers), name, dtype=object),
                                                        pa.string()),
                                       "line": pa.array(numbers, pa.int64()), "raw": values}))
        except (OSError, zipfile.BadZipFile, EOFError) as err:
            raise DataError(f"{path} cannot be read ({type(err).__name__}: {err}). Fix: check that "
                            "the file is a complete plain, gzip or zip export.") from err
    if not parts:
        return pa.table({"file": pa.array([], pa.string()), "line": pa.array([], pa.int64()),
                         "raw": pa.array([], pa.large_string())})
    return pa.concat_tables(parts)
