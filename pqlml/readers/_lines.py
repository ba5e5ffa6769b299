"""Every line of every export file, numbered: nothing can be dropped before it is counted.

Files may be plain, gzipped (``.gz``) or zip archives of either (Amplitude's export);
members are read in name order. Bytes that are not UTF-8 are replaced (the line then
fails JSON parsing and is counted as malformed).
"""

from __future__ import annotations

import glob
import gzip
import io
import zipfile
from pathlib import Path

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


def read_lines(files) -> pa.Table:
    """``file``, ``line`` (1-based) and ``raw`` text of every non-blank line."""
    names, numbers, texts = [], [], []
    for path in files:
        try:
            for name, stream in _streams(Path(path)):
                for i, raw in enumerate(stream, 1):
                    if raw.strip():
                        names.append(name)
                        numbers.append(i)
                        texts.append(raw.decode("utf-8", "replace").rstrip("\r\n"))
        except (OSError, zipfile.BadZipFile, EOFError) as err:
            raise DataError(f"{path} cannot be read ({type(err).__name__}: {err}). Fix: check that "
                            "the file is a complete plain, gzip or zip export.") from err
    return pa.table({"file": pa.array(names, pa.string()), "line": pa.array(numbers, pa.int64()),
                     "raw": pa.array(texts, pa.string())})
