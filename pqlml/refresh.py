"""Incremental refresh: a new day of events costs the new day, not the whole history.

Scoring runs daily: the events grow by a day and the new ``as_of`` is the day after. The
windowed features of that ``as_of`` read only the widest window (``L`` days,
:func:`~pqlml.features._history.lookback`); what reaches further back (the first and last
event, activation's running counts, the decayed engagement score) is kept, per entity,
beside the feature cache (:class:`~pqlml.features._history.History`). A build of one
``as_of`` then reads the events of ``[cut, as_of)`` (DuckDB skips the Parquet row groups
and part files before ``cut``) and the kept history of the days before ``cut``, and gives
the table the whole history gives, every column equal (``tests/test_refresh.py``).

The state is written after a build of an ``as_of`` later than the data's last event (what
``pqlml score`` builds) and rolled forward by an incremental build once its cut would move by
a week (:data:`ROLL_DAYS`; until then a refresh reads a few more days of events and writes
nothing). It is kept only while **the data only grew**:

* the event files the state was built from are all there, unchanged (path, size and
  modification time, as :func:`pqlml.cache.data_fingerprint` sees them); new files may
  appear (a glob of daily part files);
* no event is dated before the kept data end (the count of events before it is what it
  was): a late event is a rewrite;
* the users and memberships put the users of the earlier events in the same accounts
  until then (new users, and a move after the kept end, are growth);
* the feature definitions and pqlml's code are the same (the state's name is their hash,
  like the cache key's);
* the ``as_of`` is after the kept data end.

Anything else falls back to the full build with one line saying why
(:attr:`pqlml.project.Project.refreshes`; the CLI prints it). ``pqlml features --full`` /
``pqlml score --full`` (or :func:`full_build` around API calls) always build in full.

The state's files are checked like the cache's (SHA-256 and rows recorded in a manifest,
written atomically, the manifest last; a file that fails its check is deleted and the
build is full), and a state of other definitions of the same project and entity is
deleted when a new one is written.
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

import ibis
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .backends import to_days
from .cache import _sha256, cache_folder, definitions_key
from .features._history import History, extend, lookback
from .features._specs import Count, Sum
from .schema import entity_key

__all__ = ["Refresh", "full_build", "incremental_features", "keep_state", "state_paths"]

_FORMAT = "pqlml-refresh-state/1"
#: The state is rolled forward (its cut moved to the new data's) once that moves the cut by a
#: week: until then each refresh reads up to a week more of events and writes nothing.
ROLL_DAYS = 7
_DAY = 86_400
_FULL: ContextVar[bool] = ContextVar("pqlml_full_build", default=False)
log = logging.getLogger("pqlml.refresh")


@contextmanager
def full_build(enabled: bool = True):
    """Inside the block, feature tables of one ``as_of`` are built from the whole history
    (``--full``), never from a kept state (which is still written afterwards)."""
    token = _FULL.set(bool(enabled))
    try:
        yield
    finally:
        _FULL.reset(token)


@dataclass(frozen=True)
class Refresh:
    """How a feature table of one ``as_of`` was built: ``"incremental"`` or ``"full"``, and
    why.

    >>> Refresh("full", "2025-06-30", "--full: the whole history").line()
    'features at 2025-06-30: full build (--full: the whole history)'
    """

    path: str
    as_of: str
    reason: str

    def line(self) -> str:
        """One line for the terminal."""
        return f"features at {self.as_of}: {self.path} build ({self.reason})"


def _note(project, path: str, as_of, reason: str) -> None:
    r = Refresh(path, str(as_of), reason)
    project.refreshes.append(r)
    log.info(r.line())


def state_paths(config, entity: str, extra=()) -> dict[str, Path]:
    """The state's files: ``manifest``, ``entities``, ``engaged``, ``users``."""
    key = hashlib.sha256(("refresh:" + definitions_key(config, entity, extra)).encode())
    stem = f"state-{key.hexdigest()[:32]}"
    folder = cache_folder(config)
    return {"manifest": folder / f"{stem}.state",
            **{p: folder / f"{stem}.{p}.parquet" for p in ("entities", "engaged", "users")}}


def incremental_features(project, entity: str, extra, as_of) -> pd.DataFrame | None:
    """The features of the one date ``as_of`` from the kept state, or None (then the caller
    builds in full; :attr:`~pqlml.project.Project.refreshes` says why). Rolls the state
    forward when ``as_of`` is after the data's last event and the cut would move by
    :data:`ROLL_DAYS` or more."""
    if project.cache is None:
        return None
    if _FULL.get():
        _note(project, "full", as_of, "--full: the whole history")
        return None
    paths = state_paths(project.config, entity, extra)
    manifest = _manifest(paths["manifest"])
    if manifest is None:
        _note(project, "full", as_of, _no_state(project.config, entity, paths))
        return None
    day = _day(as_of)
    reason = _rewrite(project, manifest, day, paths)
    history = None if reason else _load(paths, manifest)
    if history is None:
        reason = reason or "the kept state failed its checksum (deleted)"
        _note(project, "full", as_of, f"{reason}: the whole history")
        return None
    from .project import spine_for
    spine = spine_for(project, as_of=[as_of], entity=entity)
    frame = project._build(spine, entity, extra, (as_of,), history=history)
    _note(project, "incremental", as_of, f"events from {history.start.date()} on and the "
          f"kept history before it")
    moved = _day(project.data_end) + 1 - _catalog(project.config, extra) - history.cut
    if day > _day(project.data_end) and moved >= ROLL_DAYS:
        _write(project, entity, extra, paths, prior=(history, manifest))
    return frame


def keep_state(project, entity: str, extra, as_of) -> None:
    """After a full build of the one date ``as_of``: keep the state for the next day's
    refresh, when ``as_of`` is after the data's last event and the project has a cache."""
    if project.cache is None or _day(as_of) <= _day(project.data_end):
        return
    if _event_files(project.config) is None:
        return
    _write(project, entity, extra, state_paths(project.config, entity, extra), prior=None)


# ---------------------------------------------------------------------------- detection

def _rewrite(project, manifest: dict, day: int, paths: dict) -> str | None:
    """Why the data did not only grow since the state was kept, or None."""
    end = pd.Timestamp(manifest["end"])
    if day <= _day(end):
        return f"as_of {_date(day)} is not after the kept data end {end}"
    files = _event_files(project.config)
    if files is None:
        return "the events are not files whose growth can be seen"
    now = {p: (size, mtime) for p, size, mtime in files}
    for path, size, mtime in manifest["files"]:
        if path not in now:
            return f"the event file {path} was removed"
        if now[path] != (size, mtime):
            return f"the event file {path} changed (size or modification time)"
    ev = project.events
    before = int(ev.filter(ev.ts < end.to_pydatetime()).count().execute())
    if before != manifest["before_end"]:
        late = before - manifest["before_end"]
        return (f"{abs(late):,} event(s) dated before the kept data end {end} "
                f"{'appeared' if late > 0 else 'disappeared'}")
    users = pq.read_table(paths["users"]) if manifest.get("users_rows") else None
    if users is not None and _members_digest(project, users, end) != manifest["members"]:
        return ("the users or memberships put users of earlier events in other accounts "
                "before the kept data end")
    return None


def _no_state(config, entity: str, paths: dict) -> str:
    """Why there is no state: none was kept, or one of other definitions."""
    folder = paths["manifest"].parent
    for other in folder.glob("state-*.state") if folder.is_dir() else ():
        meta = _json(other)
        if meta and meta.get("entity") == entity:
            return "the feature definitions or pqlml changed since the kept state"
    return "no kept state yet (kept after a build later than the data's last event)"


def _event_files(config) -> list[tuple[str, int, int]] | None:
    """(path, size, mtime_ns) of every event file, sorted; None when the events are not
    local files (a database's table, a DataFrame)."""
    data = config.data
    source = data.events if data.events is not None else data.export
    if data.connection or source is None or getattr(source, "frame", None) is not None:
        return None
    full = config.resolve(source.source)
    paths = [Path(p) for p in glob.glob(str(full))] or [full]
    base, found = _base(config), []
    for p in paths:
        for f in (sorted(p.rglob("*")) if p.is_dir() else [p]):
            if f.is_file():
                st = f.stat()
                found.append((_relative(f.resolve(), base), st.st_size, st.st_mtime_ns))
    return sorted(found) or None


def _base(config) -> Path:
    """The folder the state's file names are relative to (the cache's): a project folder
    moved or copied whole keeps its state."""
    return cache_folder(config).parent.resolve()


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


def _members_digest(project, users: pa.Table, end: pd.Timestamp) -> str:
    """A hash of the membership rows of ``users`` (the users of the kept events) as they
    stand up to ``end`` (the kept data end): equal exactly when each event until then keeps
    its account (an event takes the account its user was in at its time)."""
    if project.members is None:
        return ""
    m = project.members.select("user_id", "account_id", "valid_from", "valid_to")
    mine = project.con.create_table(ibis.util.gen_name("pqlml_state_users"), obj=users,
                                    temp=True)
    j = m.join(mine, m.user_id.cast("string") == mine.user_id.cast("string"))
    end = end.to_pydatetime()
    j = j.filter(j.valid_from.isnull() | (j.valid_from <= end))
    after = ibis.literal(end) + ibis.interval(microseconds=1)   # open, or open until then
    to = ibis.ifelse(j.valid_to.isnull() | (j.valid_to > after), after, j.valid_to)
    rows = j.select(user_id=j.user_id.cast("string"), account_id=j.account_id.cast("string"),
                    valid_from=j.valid_from, valid_to=to).to_pyarrow().to_pandas()
    rows = rows.sort_values(list(rows.columns), ignore_index=True)
    return hashlib.sha256(pd.util.hash_pandas_object(rows, index=False).to_numpy()
                          .tobytes()).hexdigest()


# ---------------------------------------------------------------------------- the state

def _catalog(config, extra):
    """The look-back ``L`` of the config's catalog with ``extra``."""
    s = config.features
    counts = tuple(Count(n, c.events, c.window_days) for n, c in s.counts.items()) + \
        tuple(x for x in extra if isinstance(x, Count))
    sums = tuple(Sum(n, c.property, c.window_days, c.events, c.how) for n, c in s.sums.items()) \
        + tuple(x for x in extra if isinstance(x, Sum))
    return lookback(s, counts, sums)


def _entity_events(project, entity: str, since=None) -> ibis.Table:
    """The events with an entity (``entity_id`` as text, ``event``, ``day``), from the
    timestamp ``since`` on when given: a filter on ``ts`` itself, which DuckDB meets with
    the Parquet statistics (files and row groups before it are skipped)."""
    ev = project.events
    key = entity_key(entity)
    ev = ev.filter(ev[key].notnull())
    if since is not None:
        ev = ev.filter(ev.ts >= since.to_pydatetime())
    return ev.select(entity_id=ev[key].cast("string"), event=ev.event, day=to_days(ev.ts),
                     ts=ev.ts, user_id=ev.user_id)


def _write(project, entity: str, extra, paths: dict, prior) -> None:
    """Keep the state of the project's current data: the history before ``cut`` (the day
    after the last event less the look-back), built on ``prior`` (history, manifest) when
    rolling forward."""
    from .errors import PqlmlError
    from .outputs import atomic

    config, end = project.config, pd.Timestamp(project.data_end)
    files = _event_files(config)
    if files is None:
        return
    cut = _day(end) + 1 - _catalog(config, extra)
    s = config.features
    history, manifest = prior if prior is not None else (None, None)
    ev = _entity_events(project, entity, None if history is None else history.start)
    if history is not None and cut <= history.cut:
        cut = history.cut                              # nothing to move into the history
    weights = dict(s.engagement_weights) if s.engagement_weights else None
    ents, engaged = extend(ev, until=cut, checkpoints=s.activation, weights=weights,
                           prior=history)
    raw = project.events
    if manifest is None:
        fresh = raw
    else:
        fresh = raw.filter(raw.ts >= pd.Timestamp(manifest["end"]).to_pydatetime())
    fresh = fresh.filter(fresh.user_id.notnull()).select(user_id=fresh.user_id.cast("string"))
    users = fresh.distinct()
    if manifest is not None and manifest.get("users_rows"):
        old = project.con.create_table(ibis.util.gen_name("pqlml_state_users"),
                                       obj=pq.read_table(paths["users"]), temp=True)
        users = users.union(old.select(user_id=old.user_id.cast("string")), distinct=True)
    tables = {"entities": ents.to_pyarrow(), "users": users.to_pyarrow(),
              **({"engaged": engaged.to_pyarrow()} if engaged is not None else {})}
    meta = {"format": _FORMAT, "project": _project(config), "entity": entity,
            "cut": int(cut), "end": str(end), "files": [list(f) for f in files],
            "before_end": _before(raw, end, manifest),
            "members": _members_digest(project, tables["users"], end),
            "users_rows": tables["users"].num_rows,
            "sha256": {}, "rows": {}}
    try:
        paths["manifest"].parent.mkdir(parents=True, exist_ok=True)
        for name, table in tables.items():
            with atomic(paths[name]) as tmp:
                pq.write_table(table, tmp)
            meta["sha256"][name] = _sha256(paths[name])
            meta["rows"][name] = table.num_rows
        with atomic(paths["manifest"]) as tmp:
            tmp.write_text(json.dumps(meta))
    except (OSError, PqlmlError):
        return
    _drop_other_states(config, entity, paths)


def _before(events: ibis.Table, end: pd.Timestamp, manifest: dict | None) -> int:
    """How many events are dated before ``end``; rolling forward from ``manifest`` (whose
    count was just checked), its count plus the events since its end: a read from there on."""
    if manifest is None:
        return int(events.filter(events.ts < end.to_pydatetime()).count().execute())
    since = pd.Timestamp(manifest["end"]).to_pydatetime()
    new = events.filter((events.ts >= since) & (events.ts < end.to_pydatetime()))
    return int(manifest["before_end"]) + int(new.count().execute())


def _load(paths: dict, manifest: dict) -> History | None:
    """The kept history, each file checked against its recorded SHA-256 and rows; None (and
    the state deleted) when one fails."""
    try:
        for name, digest in manifest["sha256"].items():
            if _sha256(paths[name]) != digest:
                raise ValueError("checksum")
            if pq.read_metadata(paths[name]).num_rows != manifest["rows"][name]:
                raise ValueError("rows")
    except (OSError, ValueError, KeyError, pa.ArrowException):
        _delete(paths)
        return None
    # the checked files themselves: the engine reads them (7M rows of engagement grain at
    # 100k accounts), not a copy held in Python
    return History(int(manifest["cut"]), paths["entities"],
                   paths["engaged"] if "engaged" in manifest["sha256"] else None)


def _manifest(path: Path) -> dict | None:
    meta = _json(path)
    return meta if meta and meta.get("format") == _FORMAT else None


def _json(path: Path) -> dict | None:
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def _drop_other_states(config, entity: str, paths: dict) -> None:
    """Delete the states of the same entity under other definitions (the folder is the
    project's)."""
    for other in paths["manifest"].parent.glob("state-*.state"):
        if other == paths["manifest"]:
            continue
        meta = _json(other)
        if meta is None or meta.get("entity") == entity:
            stem = other.name[:-len(".state")]
            for f in other.parent.glob(f"{stem}.*"):
                f.unlink(missing_ok=True)


def _delete(paths: dict) -> None:
    for p in paths.values():
        p.unlink(missing_ok=True)


def _project(config) -> str:
    return str(config.path or config.data.root)


def _day(ts) -> int:
    """Whole days since 1970-01-01 of a date or timestamp (UTC)."""
    t = pd.Timestamp(ts)
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    return int(t.value // (_DAY * 10 ** 9))


def _date(day: int) -> str:
    return str(pd.Timestamp(day * _DAY, unit="s").date())
