"""Feature tables kept between commands: built once, read back by later runs.

Building point-in-time features is most of the work of every command, and the commands
of one session (``features``, ``rules``, ``discover``, ``backtest``, ``train``) build the
same table. :class:`FeatureCache` stores each built table as Parquet in a folder beside
the project (``.pqlml-cache/`` next to ``pqlml.toml``), under a key made of

* the **definitions**: the config's ``[data]`` and ``[features]`` sections, the entity,
  any extra features and the code of pqlml itself (a new version or an edited feature
  never reads an old table);
* the **data's fingerprint**: path, size and modification time of every input file (the
  enterprise domain list included), or of the DuckDB file the sources live in;
* the **as_of dates**.

A change of any of them is another key: the old entry is never read again, and entries
of the project's earlier data are deleted when a new one is written. Sources whose
changes cannot be seen from here (a warehouse behind a URL) are not cached, nor are the
tables of a project opened from DataFrames (kept for the run only).

Reads are checked: the table must match the SHA-256 and shape recorded beside it when
it was written; a damaged or foreign file is deleted and the table rebuilt, never
trusted. Writes are atomic (temporary files renamed into place), so concurrent runs
leave a usable cache.

Examples
--------
>>> import tempfile, pandas as pd
>>> cache = FeatureCache(Path(tempfile.mkdtemp()) / ".pqlml-cache", data="d1")
>>> frame = pd.DataFrame({"account_id": ["a1"], "events_30d": [3]})
>>> key = cache.key("definitions", ["2024-02-01"])
>>> cache.get(key) is None
True
>>> cache.put(key, frame)
>>> cache.get(key).equals(frame)
True
>>> cache.clear()
1
"""

from __future__ import annotations

import hashlib
import json
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path

import pandas as pd

__all__ = ["FeatureCache", "CACHE_FOLDER", "caching", "cache_folder", "cache_for",
           "definitions_key", "data_fingerprint"]

CACHE_FOLDER = ".pqlml-cache"
_FORMAT = "pqlml-feature-cache/1"
_ENABLED: ContextVar[bool] = ContextVar("pqlml_feature_cache", default=True)


@contextmanager
def caching(enabled: bool):
    """Projects opened inside the block use the cache (``True``, the default) or build
    every table afresh (``False``: ``pqlml --no-cache``)."""
    token = _ENABLED.set(bool(enabled))
    try:
        yield
    finally:
        _ENABLED.reset(token)


class FeatureCache:
    """Parquet tables under ``folder``, each with a ``.json`` record of its SHA-256, shape
    and the ``data`` fingerprint it was built from."""

    def __init__(self, folder: str | Path, *, data: str, project: str = ""):
        self.folder, self.data, self.project = Path(folder), data, project
        self.rebuilt: list[str] = []        # keys whose stored table failed its check

    def key(self, *parts) -> str:
        """The entry name of a table: a hash of ``parts`` (definitions, dates) and of the
        data's fingerprint."""
        return hashlib.sha256(json.dumps([self.data, *map(str, parts)]).encode()).hexdigest()

    def _paths(self, key: str) -> tuple[Path, Path]:
        return self.folder / f"{key}.parquet", self.folder / f"{key}.json"

    def get(self, key: str) -> pd.DataFrame | None:
        """The table stored under ``key``, or None (absent, or failed its check: then
        deleted and noted in :attr:`rebuilt`)."""
        table, record = self._paths(key)
        if not record.exists():
            return None
        try:
            meta = json.loads(record.read_text())
            if (meta.get("format") != _FORMAT or meta.get("data") != self.data
                    or _sha256(table) != meta["sha256"]):
                raise ValueError("checksum")
            frame = pd.read_parquet(table)
            if list(frame.columns) != meta["columns"] or len(frame) != meta["rows"]:
                raise ValueError("shape")
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            self.rebuilt.append(key)
            for path in (record, table):
                path.unlink(missing_ok=True)
            return None
        return frame

    def put(self, key: str, frame: pd.DataFrame) -> None:
        """Store ``frame`` under ``key`` (atomically), and delete the entries built from
        other data. A folder that cannot be written leaves the cache off, not the run
        failed."""
        from .errors import PqlmlError
        from .outputs import atomic

        table, record = self._paths(key)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with atomic(table) as tmp:
                frame.to_parquet(tmp, index=False)
            meta = {"format": _FORMAT, "sha256": _sha256(table), "rows": len(frame),
                    "columns": [str(c) for c in frame.columns], "data": self.data,
                    "project": self.project}
            with atomic(record) as tmp:
                tmp.write_text(json.dumps(meta))
        except (OSError, PqlmlError):
            return
        self._drop_stale()

    def _drop_stale(self) -> None:
        """Delete this project's entries built from other data (never read again)."""
        for record in self.folder.glob("*.json"):
            try:
                meta = json.loads(record.read_text())
                stale = meta.get("project") == self.project and meta.get("data") != self.data
            except (OSError, ValueError, AttributeError):
                stale = True
            if stale:
                record.unlink(missing_ok=True)
                record.with_suffix(".parquet").unlink(missing_ok=True)

    def clear(self) -> int:
        """Delete every stored table and kept refresh state (:mod:`pqlml.refresh`); returns
        how many tables there were."""
        if not self.folder.is_dir():
            return 0
        n = 0
        for path in self.folder.iterdir():
            if path.suffix in (".parquet", ".json", ".state") or ".pqlml-tmp-" in path.name:
                n += path.suffix == ".parquet"
                path.unlink(missing_ok=True)
        return n


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def cache_folder(config) -> Path:
    """``.pqlml-cache`` beside the config file (or in ``data.root`` for a config built in
    code)."""
    base = Path(config.path).parent if config.path else Path(config.data.root)
    return base / CACHE_FOLDER


def cache_for(config) -> FeatureCache | None:
    """The project's cache, or None when caching is off (:func:`caching`) or its data
    cannot be fingerprinted."""
    if not _ENABLED.get():
        return None
    data = data_fingerprint(config)
    if data is None:
        return None
    return FeatureCache(cache_folder(config), data=data,
                        project=str(config.path or config.data.root))


def data_fingerprint(config) -> str | None:
    """A hash of every input's path, size and modification time; None when a source is
    not a local file (a warehouse table: its changes are not visible here; a DataFrame:
    an in-memory project writes nothing to disk) or is missing."""
    from .outputs import inputs_of
    from .schema import TABLES
    from .sources import duckdb_file

    data = config.data
    if data.connection and duckdb_file(data.connection, Path(data.root)) is None:
        return None
    if data.engine == "spark" and _outside_files(config):
        return None          # a Spark catalog table or a URL: its changes are not visible here
    if any(getattr(getattr(data, n), "frame", None) is not None for n in TABLES
           if getattr(data, n) is not None):
        return None          # in memory: kept for the run only, nothing written to disk
    files, _ = inputs_of(config)
    files.discard(Path(config.path).resolve() if config.path else None)
    domains = config.features.enterprise_domains
    if isinstance(domains, (str, Path)) and domains:
        files.add(config.resolve(domains).resolve())
    # a folder of Parquet files (read whole by Spark): its files
    files |= {f.resolve() for d in list(files) if d.is_dir() for f in d.rglob("*") if f.is_file()}
    parts = []
    for path in sorted(files):
        if path.is_dir() or not path.exists():   # a glob pattern itself, or a missing file
            continue
        stat = path.stat()
        parts.append((str(path), stat.st_size, stat.st_mtime_ns))
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest() if parts else None


def _outside_files(config) -> bool:
    """Whether a Spark source is a catalog table or a URL (not a local file, folder or glob)."""
    import glob

    from ._spark import is_catalog_name
    from .schema import TABLES

    data = config.data
    sources = [getattr(data, n).source for n in TABLES
               if getattr(data, n) is not None and not getattr(data, n).in_memory]
    if data.export is not None:
        sources.append(data.export.source)
    return any("://" in s or (is_catalog_name(s) and not glob.glob(str(config.resolve(s))))
               for s in sources)


def definitions_key(config, entity: str, extra=()) -> str:
    """A hash of what defines a feature table apart from the data and the dates."""
    text = json.dumps([repr(config.data), repr(config.features), entity, repr(tuple(extra)),
                       _code()])
    return hashlib.sha256(text.encode()).hexdigest()


@lru_cache(maxsize=1)
def _code() -> str:
    """A hash of pqlml's own source: an edited feature or a new version is a new key."""
    digest = hashlib.sha256()
    root = Path(__file__).parent
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()
