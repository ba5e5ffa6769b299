"""The local MLflow store (``mlflow.db`` beside the config, :func:`pqlml.track.tracking_uri`):
created once, never half-migrated, one writer.

MLflow creates and migrates a sqlite store the first time a process opens it (alembic,
dozens of migrations, several seconds). Two processes doing it at once race: one fails
("table _alembic_tmp_experiments already exists", "duplicate column name"), and a process
stopped inside a migration leaves a ``_alembic_tmp_<table>`` copy behind that makes every
later migration fail. So, for a local sqlite store only (a server behind
``MLFLOW_TRACKING_URI`` serialises its own writes):

- :func:`store_lock` holds ``mlflow.db.lock`` beside the store (``fcntl.flock``): one pqlml
  process at a time creates or migrates the store, and a write that reads the registry
  before it registers (train, retrain) holds it throughout, so two runs leave consistent
  versions and aliases. A process that has to wait says so on stderr.
- :func:`open_store` repairs a half-migrated store when that is safe (the original table
  is still there: the leftover copy is dropped and the migration runs again) and otherwise
  stops with the exact fix, before MLflow touches the file; ``create=False`` (reading a
  model or the champion) refuses a store that does not exist instead of creating one.
- A new store starts as a copy of an empty, fully migrated one (:func:`store_template`,
  kept per MLflow version in the user's cache folder, ``$XDG_CACHE_HOME/pqlml`` or
  ``~/.cache/pqlml``; ``PQLML_CACHE_HOME`` moves it): 0.05 s instead of MLflow's 1.8 s of
  migrations. The template holds no experiment, so MLflow creates the store's own
  ``Default`` experiment (with this store's artifact location) when it first opens it.
  Without a usable cache folder a store is created as MLflow creates it.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote

from .errors import PqlmlError, TrackingError

__all__ = ["local_db", "store_lock", "open_store", "store_template", "half_migrated", "repair"]

_held: dict[Path, int] = {}          # lock depth per store in this process (re-entrant)
_opened: set[str] = set()           # stores created/checked by this process


def local_db(uri: str) -> Path | None:
    """The sqlite file of ``uri`` (``sqlite:///<path>``), or None for any other store.

    Examples
    --------
    >>> local_db("sqlite:////work/mlflow.db"), local_db("sqlite:///mlflow.db")
    (PosixPath('/work/mlflow.db'), PosixPath('mlflow.db'))
    >>> local_db("http://127.0.0.1:5000") is None
    True
    """
    if not uri.startswith("sqlite:///"):         # a server, or sqlite:// in memory
        return None
    path = unquote(uri[len("sqlite:///"):].split("?")[0])   # "/abs/x.db" or "relative.db"
    return Path(path) if path and path != ":memory:" else None


@contextmanager
def store_lock(uri: str):
    """Hold ``<store>.lock`` for a local sqlite ``uri`` (re-entrant within a process); any
    other store: no lock."""
    db = local_db(uri)
    if db is None or _held.get(db):
        if db is not None:
            _held[db] += 1
        try:
            yield
        finally:
            if db is not None:
                _held[db] -= 1
        return
    import fcntl

    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(db.name + ".lock"), "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for another pqlml run to release {db.name} ({db}) ...",
                  file=sys.stderr, flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        _held[db] = 1
        try:
            yield
        finally:
            _held.pop(db, None)
            fcntl.flock(handle, fcntl.LOCK_UN)


def open_store(uri: str, *, create: bool = True) -> None:
    """Make the local sqlite store of ``uri`` ready before MLflow uses it: created and
    migrated under :func:`store_lock` (tracking and model-registry tables alike), a
    half-migrated one repaired or explained. ``create=False``: a missing store file is a
    :class:`~pqlml.errors.PqlmlError` and nothing is created. Other stores: nothing to do."""
    db = local_db(uri)
    if db is None:
        return
    if not create and not db.is_file():
        raise PqlmlError(f"No MLflow store at {db}: nothing has been trained or registered "
                         "into it. Fix: run `pqlml train` or `pqlml retrain` with this config "
                         "first (a project's store is mlflow.db beside its config file, from "
                         "any working directory), point [tracking] uri in the config (or "
                         "MLFLOW_TRACKING_URI) at your store, or pass a model file instead.")
    if uri in _opened and db.is_file():
        return
    from .track import tracking_errors

    with store_lock(uri), tracking_errors("creating or upgrading the store"):
        leftover = half_migrated(db) if db.is_file() else []
        if leftover:
            repair(db, leftover)
        if not db.is_file():
            _from_template(db)
        _migrate(uri)
    _opened.add(uri)


def _migrate(uri: str) -> None:
    """Let MLflow create or upgrade the store at ``uri``: its tracking tables and its
    registry's (each is migrated when first read)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.search_experiments(max_results=1)
    client.search_registered_models(max_results=1)


def store_template() -> Path | None:
    """An empty MLflow store of the installed MLflow version, fully migrated and without
    experiments, in the user's cache folder: built once (under a lock, written atomically),
    checked on every use (a damaged file is rebuilt). None when no cache folder can be
    written (then each new store is created by MLflow itself)."""
    import mlflow

    folder = Path(os.environ.get("PQLML_CACHE_HOME") or
                  Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pqlml")
    path = folder / f"mlflow-{mlflow.__version__}-empty-store.db"
    if _usable(path):
        return path
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with store_lock(f"sqlite:///{path}"):
            if not _usable(path):
                _build_template(path)
    except OSError:
        return None
    return path if _usable(path) else None


def _build_template(path: Path) -> None:
    import sqlite3
    import uuid

    # a new name each build: MLflow keeps a store (and its open file) per URI in a process
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        _migrate(f"sqlite:///{tmp}")
        with sqlite3.connect(tmp) as con:                  # MLflow makes Default per store
            con.execute("DELETE FROM experiment_tags")
            con.execute("DELETE FROM experiments")
        with sqlite3.connect(tmp) as con:
            con.execute("VACUUM")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _usable(path: Path) -> bool:
    """``path`` is a migrated store without experiments (a template pqlml wrote whole)."""
    import sqlite3

    if not path.is_file():
        return False
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
            if con.execute("PRAGMA quick_check").fetchone()[0] != "ok":   # a cut-short file
                return False
            version = con.execute("SELECT count(*) FROM alembic_version").fetchone()[0]
            experiments = con.execute("SELECT count(*) FROM experiments").fetchone()[0]
            models = con.execute("SELECT count(*) FROM registered_models").fetchone()[0]
    except sqlite3.Error:
        return False
    return version == 1 and experiments == 0 and models == 0


def _from_template(db: Path) -> None:
    """``db`` (which does not exist) as a copy of :func:`store_template`, written atomically;
    nothing when there is no template."""
    import shutil

    template = store_template()
    if template is None:
        return
    db.parent.mkdir(parents=True, exist_ok=True)
    tmp = db.with_name(f".{db.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(template, tmp)
        os.replace(tmp, db)
    finally:
        tmp.unlink(missing_ok=True)


def half_migrated(db: Path) -> list[str]:
    """The ``_alembic_tmp_*`` tables an interrupted migration left in ``db``."""
    import sqlite3

    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        return [name for (name,) in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE '\\_alembic\\_tmp\\_%' "
            "ESCAPE '\\' ORDER BY name")]


def repair(db: Path, leftover: list[str]) -> None:
    """Drop each leftover ``_alembic_tmp_<table>`` whose ``<table>`` still exists (the
    migration's copy, never applied: the original holds the data) and say so; if an
    original is gone, the data is only in the copy: a :class:`TrackingError` with the fix."""
    import sqlite3

    with sqlite3.connect(db, timeout=30) as con:
        tables = {n for (n,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        lost = [t for t in leftover if t.removeprefix("_alembic_tmp_") not in tables]
        if lost:
            originals = ", ".join(t.removeprefix("_alembic_tmp_") for t in lost)
            raise TrackingError(
                f"The MLflow store {db} is half-migrated: an interrupted upgrade left "
                f"{', '.join(lost)} and the original table(s) {originals} are gone, so the rows "
                "exist only in the copy and pqlml will not guess. Rerunning cannot fix this. "
                f"Fix: back up {db}, then in `sqlite3 {db}` rename each copy back (ALTER TABLE "
                f"{lost[0]} RENAME TO {lost[0].removeprefix('_alembic_tmp_')};) and rerun; or "
                f"move {db} aside to start a new, empty store.")
        for table in leftover:
            con.execute(f'DROP TABLE "{table}"')
    print(f"repaired the MLflow store {db}: dropped {', '.join(leftover)}, left by an "
          "interrupted upgrade (the original tables hold the data); the upgrade runs again.",
          file=sys.stderr, flush=True)
