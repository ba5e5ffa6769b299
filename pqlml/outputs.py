"""Every file and table pqlml writes: checked before any work, never over an input, written
atomically, valid in its format.

- :func:`check_file`, :func:`check_folder` and :func:`check_table` run before a command
  does any work: a wrong suffix, a path under a file, a folder that cannot be written, or a
  target that is one of the config's inputs (a source file or table, the config itself, the
  DuckDB file) is a clear :class:`~pqlml.errors.PqlmlError`.
- :func:`atomic` writes to a temporary name in the same folder and renames it into place;
  an error or Ctrl-C leaves the previous file intact and no partial file. :func:`landing`
  does the same for several files that belong together (scores and their not-scored list):
  all are written first, then renamed, with Ctrl-C held off during the renames.
- :func:`write_tables` writes database tables under staging names and swaps them in one
  transaction.
- :func:`write_json` writes JSON without ``NaN``/``Infinity`` (``null`` instead);
  :func:`write_frame` writes CSV whose text cells cannot run as spreadsheet formulas: a
  cell beginning with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading
  apostrophe (OWASP's CSV-injection rule), which spreadsheets show as text.

Examples
--------
>>> import tempfile, pandas as pd
>>> out = Path(tempfile.mkdtemp()) / "scores.csv"
>>> write_frame(pd.DataFrame({"account_id": ["a1", "=HYPERLINK(1)"], "p": [0.5, -1.0]}), out)
PosixPath('...scores.csv')
>>> print(out.read_text().strip())
account_id,p
a1,0.5
'=HYPERLINK(1),-1.0
>>> _ = write_json({"auc": float("nan"), "n": 3}, out.with_suffix(".json"))
>>> out.with_suffix(".json").read_text()
'{\\n  "auc": null,\\n  "n": 3\\n}'
"""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import tempfile
import threading
import uuid
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import PqlmlError
from .schema import TABLES

__all__ = ["atomic", "landing", "write_frame", "write_json", "write_text", "save_figure",
           "write_frames", "write_files", "write_tables", "safe_cells", "check_file", "check_folder", "check_table",
           "check_replaceable", "inputs_of",
           "FRAME_SUFFIXES", "FORMULA_START"]

FRAME_SUFFIXES = (".csv", ".parquet", ".pq")
#: Spreadsheets run a cell beginning with one of these as a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_TMP = ".pqlml-tmp-"


def _temp_of(path: Path) -> Path:
    """A hidden name in ``path``'s folder, keeping its suffix (writers pick formats by it)."""
    return path.with_name(f".{path.name}{_TMP}{uuid.uuid4().hex[:8]}{path.suffix}")


def _os_error(path: Path, err: OSError) -> PqlmlError:
    return PqlmlError(f"Could not write {path} ({err.strerror or err}). Nothing was changed "
                      "there. Fix: choose a folder you can write to with free space "
                      "(or free some).")


@contextmanager
def atomic(path: str | Path):
    """Yield a temporary path beside ``path``; on success rename it to ``path``.

    An exception or Ctrl-C inside the block deletes the temporary file: ``path`` keeps
    its previous content (or stays absent). OS errors become a :class:`PqlmlError`
    naming the path.
    """
    with landing(path) as (tmp,):
        yield tmp


@contextmanager
def landing(*paths: str | Path):
    """Yield temporary paths for ``paths``; when the block ends without error, rename them
    all into place (Ctrl-C is held off until the renames are done), else delete them all."""
    finals = [Path(p) for p in paths]
    temps = [_temp_of(p) for p in finals]
    try:
        for p in finals:
            p.parent.mkdir(parents=True, exist_ok=True)
        yield temps
        with _no_interrupt():
            for tmp, final in zip(temps, finals):
                os.replace(tmp, final)
    except OSError as err:
        raise _os_error(Path(err.filename or finals[0]), err) from err
    finally:
        for tmp in temps:
            tmp.unlink(missing_ok=True)


@contextmanager
def _no_interrupt():
    """Defer SIGINT (Ctrl-C) until the block ends, then deliver it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda *a: caught.append(a))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught and callable(previous):
            previous(*caught[0])


def _frame_writer(frame: pd.DataFrame, suffix: str):
    if suffix == ".csv":
        return lambda p: _csv(safe_cells(frame), p)
    if suffix in (".parquet", ".pq"):
        return lambda p: frame.to_parquet(p, index=False)
    raise PqlmlError(f"A table file must end in .csv, .parquet or .pq. Got {suffix!r}.")


def _csv(frame: pd.DataFrame, path: Path) -> None:
    """CSV, one line per row. Python's csv module quotes a cell holding a line feed but not
    one holding a lone carriage return, which readers take for a line break (a row split in
    two); a table with such a cell has every text cell quoted instead."""
    text = [c for c in frame.columns if pd.api.types.is_object_dtype(frame[c])
            or pd.api.types.is_string_dtype(frame[c])]
    cr = any(frame[c].map(lambda v: isinstance(v, str) and "\r" in v).any() for c in text)
    frame.to_csv(path, index=False, quoting=csv.QUOTE_NONNUMERIC if cr else csv.QUOTE_MINIMAL)


def write_frame(frame: pd.DataFrame, path: str | Path) -> Path:
    """``frame`` as CSV (formula-safe cells) or Parquet, by ``path``'s suffix, atomically."""
    path = Path(path)
    write = _frame_writer(frame, path.suffix.lower())
    with atomic(path) as tmp:
        write(tmp)
    return path


def write_frames(frames: dict) -> list[Path]:
    """Several tables ``{path: frame}`` that land together or not at all."""
    return write_files(frames)


def write_files(files: dict) -> list[Path]:
    """Several files ``{path: content}`` that land together or not at all: a DataFrame as
    a table by the path's suffix (:func:`write_frame`), a ``str`` as UTF-8 text, a ``dict``
    or ``list`` as indented JSON (:func:`write_json`)."""
    writers = [_writer(content, Path(p)) for p, content in files.items()]
    with landing(*files) as temps:
        for write, tmp in zip(writers, temps):
            write(tmp)
    return [Path(p) for p in files]


def _writer(content, path: Path):
    if isinstance(content, pd.DataFrame):
        return _frame_writer(content, path.suffix.lower())
    if isinstance(content, (dict, list)):
        content = json.dumps(_plain(content), indent=2, allow_nan=False)
    if isinstance(content, str):
        return lambda p: Path(p).write_text(content, encoding="utf-8")
    raise TypeError(f"write_files: {path} gets a DataFrame, str, dict or list; got "
                    f"{type(content).__name__}.")


def safe_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every text cell that a spreadsheet would run as a formula prefixed
    with an apostrophe (numbers, dates and booleans are untouched)."""
    out = None
    for col in frame.columns:
        s = frame[col]
        if not (pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s)):
            continue
        text = s.where(s.map(lambda v: isinstance(v, str)), None)
        risky = text.str.startswith(FORMULA_START, na=False)
        if risky.any():
            out = frame.copy() if out is None else out
            out[col] = s.where(~risky, "'" + text)
    return frame if out is None else out


def _plain(obj):
    """JSON-ready: NaN and infinities -> None, numpy and pandas scalars -> Python."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, np.ndarray, pd.Series, pd.Index)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if obj is None or isinstance(obj, str):
        return obj
    if obj is pd.NaT:
        return None
    if isinstance(obj, (pd.Timestamp, datetime, date)):
        return obj.isoformat()
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)


def write_json(obj, path: str | Path) -> Path:
    """``obj`` as indented JSON, ``null`` for NaN and infinities, atomically."""
    return write_text(json.dumps(_plain(obj), indent=2, allow_nan=False), path)


def write_text(text: str, path: str | Path) -> Path:
    path = Path(path)
    with atomic(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def save_figure(fig, path: str | Path, *, dpi: int = 110, **kwargs) -> Path:
    """``fig.savefig`` atomically (the format from ``path``'s suffix, ``dpi`` for raster
    formats): the one way pqlml writes a figure. pqlml's figures
    (:mod:`pqlml.figures`) are not in pyplot's list of open figures, so nothing holds
    one once its caller lets go; nothing is closed here."""
    path = Path(path)
    with atomic(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or None, dpi=dpi, **kwargs)
    return path


def write_tables(con, tables: dict) -> None:
    """Database tables ``{name: frame}``: each written under a staging name, then all
    swapped in, in one transaction on DuckDB (any other ibis backend: one rename each)."""
    staged = {}
    try:
        for name, frame in tables.items():
            staging = f"{name}__pqlml_staging_{uuid.uuid4().hex[:8]}"
            con.create_table(staging, frame)
            staged[name] = staging
        if con.name == "duckdb":
            sql = ["BEGIN TRANSACTION"]
            for name, staging in staged.items():
                sql += [f"DROP TABLE IF EXISTS {_ident(name)}",
                        f"ALTER TABLE {_ident(staging)} RENAME TO {_ident(name)}"]
            con.raw_sql("; ".join(sql + ["COMMIT"]))
        else:
            for name, staging in staged.items():
                con.drop_table(name, force=True)
                con.rename_table(staging, name)
        staged = {}
    finally:
        for staging in staged.values():
            if con.name == "duckdb":
                con.raw_sql(f"DROP TABLE IF EXISTS {_ident(staging)}")
            else:
                con.drop_table(staging, force=True)


def check_replaceable(con, tables: dict) -> None:
    """Each table of ``{name: columns}`` that already exists in ``con`` must hold
    ``columns``: an earlier output of the same kind. pqlml replaces its own outputs only."""
    if not tables:
        return
    existing = {t.lower(): t for t in _table_names(con)}
    for name, columns in tables.items():
        found = existing.get(name.lower())
        if found is None:
            continue
        missing = [c for c in columns if c not in con.table(found).columns]
        if missing:
            raise PqlmlError(f"--to-table: the table {found} already exists and is not an earlier "
                             f"pqlml output of this kind (it lacks {', '.join(missing)}); pqlml "
                             "replaces only its own outputs. Fix: choose another name, or drop "
                             "the table yourself if it may go.")


def _table_names(con) -> list[str]:
    if con.name == "duckdb":   # ibis' list_tables needs an API DuckDB 2 removed
        rows = con.raw_sql("SELECT table_name FROM information_schema.tables "
                           "WHERE table_schema = current_schema()").fetchall()
        return [r[0] for r in rows]
    return con.list_tables()


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# --------------------------------------------------------------------------- checks


def inputs_of(config) -> tuple[set[Path], set[str]]:
    """What a command must never write over: the config's source files (globs expanded,
    vendor people/groups files included), the config file, the DuckDB file; and the
    source table names of its connection (lower case)."""
    import glob

    from .sources import duckdb_file

    data = config.data
    sources = [getattr(data, n).source for n in TABLES
               if getattr(data, n) is not None and not getattr(data, n).in_memory]
    if data.export is not None:
        sources += [s for s in (data.export.source, data.export.people, data.export.groups) if s]
    files: set[Path] = set()
    tables: set[str] = set()
    if data.connection:
        tables = {s.lower() for s in sources}
        db = duckdb_file(data.connection, Path(data.root))
        if db is not None:
            files.add(db.resolve())
    else:
        for s in sources:
            full = config.resolve(s)
            files |= {Path(p).resolve() for p in glob.glob(str(full))} | {full.resolve()}
    if config.path:
        files.add(Path(config.path).resolve())
    return files, tables


def check_file(path: str | Path, *, config=None, suffixes=FRAME_SUFFIXES, option="--out",
               companions=()) -> Path:
    """``path`` is a file pqlml may write: a known suffix, a writable folder, not an input
    of ``config``. ``companions``: other files the same command writes beside it (checked
    the same way). Returns ``path``."""
    path = Path(path)
    if suffixes and path.suffix.lower() not in suffixes:
        raise PqlmlError(f"The {option} file must end in {' or '.join(suffixes)}. Got "
                         f"{str(path)!r} instead. Fix: e.g. {path.with_suffix(suffixes[0])}.")
    if path.is_dir():
        raise PqlmlError(f"{option} {path} is a folder. Fix: name a file such as "
                         f"{path / ('out' + (suffixes[0] if suffixes else ''))}.")
    _writable_folder(path.parent, option, path)
    for p in (path, *map(Path, companions)):
        _not_an_input(p, config, option)
    return path


def check_folder(path: str | Path, *, config=None, names=(), option="--out") -> Path:
    """``path`` is a folder pqlml may write ``names`` into (created if missing). Returns it."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise PqlmlError(f"{option} {path} is a file; this command writes a folder of results. "
                         "Fix: name a folder (it is created if missing).")
    if not path.exists() and path.suffix.lower() in (*FRAME_SUFFIXES, ".skops", ".json"):
        raise PqlmlError(f"{option} {path} names a file; this command writes several files "
                         f"into a folder. Fix: --out {path.with_suffix('')} (created if "
                         "missing).")
    _writable_folder(path, option, path)
    files = inputs_of(config)[0] if config is not None else set()    # globs expanded once
    for target in (*(path / name for name in names), path):
        _not_an_input(target, config, option, files)
    return path


def _writable_folder(folder: Path, option: str, target: Path) -> None:
    """The nearest existing ancestor of ``folder`` is a writable folder."""
    probe = folder.resolve() if folder != Path("") else Path.cwd()
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise PqlmlError(f"{option} {target}: {probe} is a file, so nothing can be written "
                         "under it. Fix: choose a path in a folder.")
    try:   # a real file, not os.access: root passes os.access on a read-only file system
        fd, name = tempfile.mkstemp(prefix=f".{_TMP}probe-", dir=probe)
        os.close(fd)
        os.unlink(name)
    except OSError as err:
        raise PqlmlError(f"{option} {target}: the folder {probe} cannot be written "
                         f"({err.strerror or err}: a read-only file system or no permission). "
                         "Fix: choose a folder you can write to.") from None


def _not_an_input(path: Path, config, option: str, files: set[Path] | None = None) -> None:
    """``files``: ``inputs_of(config)``'s files when the caller already has them."""
    if config is None:
        return
    if path.resolve() in (inputs_of(config)[0] if files is None else files):
        raise PqlmlError(f"{option} {path} is one of the config's inputs ({config.path or 'the config'} "
                         "reads it); pqlml never writes over its inputs. Fix: choose another "
                         "name or folder for the output.")


def check_table(name: str, config, *, companions=(), option="--to-table") -> str:
    """``name`` (and ``companions``) are tables pqlml may (re)write in ``data.connection``:
    not one of the config's source tables. Returns ``name``."""
    if not config.data.connection:
        raise PqlmlError(f"{option} writes into the configured database (data.connection), "
                         "but this config reads files. Fix: set data.connection = "
                         '"duckdb:///warehouse.db" (and table names as sources), or use --out.')
    _, tables = inputs_of(config)
    for t in (name, *companions):
        if not t or not t.replace("_", "").isalnum():
            raise PqlmlError(f"{option} {t!r} is not a plain table name. Fix: use letters, "
                             "digits and underscores, e.g. pqlml_scores.")
        if t.lower() in tables:
            raise PqlmlError(f"{option} {t} is a source table of this config (data.*.source); "
                             "pqlml never writes over its inputs. Fix: choose another name, "
                             "e.g. pqlml_scores.")
    return name
