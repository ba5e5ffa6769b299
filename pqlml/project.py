"""A project opened once: the config's tables, resolved identities and time range.

This is the seam between the config and the stages: :func:`build_features` and
:func:`build_labels` take a config (or a path to one, or an open
:class:`Project`) and return pandas DataFrames with one row per
(entity, as_of), keyed ``account_id`` (or ``user_id``) and ``as_of``.

Examples
--------
>>> import tempfile
>>> from pqlml.simulate import simulate
>>> sim = simulate(n_accounts=80, seed=3, out=tempfile.mkdtemp(), months=5)
>>> project = open_project(sim.config)
>>> X = build_features(project, as_of="2024-04-01")
>>> y = build_labels(project, as_of="2024-04-01")
>>> int(X.active_users_30d.ge(0).all()), list(y.columns)
(1, ['account_id', 'as_of', 'hand_raise', 'conversion', 'censored'])
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import ibis
import pandas as pd

from .config import Config, load_config
from .errors import PqlmlError
from .features import feature_table
from .identity import account_events, user_accounts
from .labels import build_labels as label_table
from .labels import outcome_table
from .snapshots import build_spine, check_as_of, entities_from_tables, schedule_dates
from .sources import load_tables
from .validate import ValidationReport

__all__ = ["Project", "open_project", "spine_for", "build_features", "build_labels"]


@dataclass
class Project:
    """Everything the stages read, opened once per run."""

    config: Config
    con: ibis.BaseBackend
    tables: dict
    users: ibis.Table | None     # user -> account (pqlml.identity.user_accounts)
    events: ibis.Table           # ts, user_id, account_id (resolved), event
    report: ValidationReport
    data_start: pd.Timestamp
    data_end: pd.Timestamp


def open_project(config) -> Project:
    """Load and validate the configured tables, resolve identities, find the data's range.

    ``config`` is a :class:`~pqlml.config.Config`, a path to ``pqlml.toml`` or
    an open :class:`Project` (returned as is).
    """
    if isinstance(config, Project):
        return config
    if isinstance(config, (str, Path)):
        config = load_config(config)
    if not isinstance(config, Config):
        raise PqlmlError(f"The 'config' parameter must be a Config, a path to pqlml.toml or a "
                         f"Project. Got {type(config).__name__} instead.")
    con, tables, report = load_tables(config.data)
    # Cached: every stage reads the user -> account map, and it costs regexes over all emails.
    users = (user_accounts(tables["users"], tables.get("accounts"), report=report).cache()
             if "users" in tables else None)
    events = account_events(tables["events"], users, report=report)
    span = tables["events"].aggregate(lo=ibis._.ts.min(), hi=ibis._.ts.max()).execute().iloc[0]
    if pd.isna(span["lo"]):
        where = (config.data.events or config.data.export).source
        raise PqlmlError(f"The events table ({where}) has no rows: "
                         "there is nothing to build features from.")
    return Project(config, con, tables, users, events, report, span["lo"], span["hi"])


def _entity(project: Project, entity) -> str:
    entity = entity or project.config.project.entity
    if entity not in ("account", "user"):
        raise PqlmlError(f"The 'entity' parameter must be 'account' or 'user'. Got {entity!r} instead.")
    return entity


def spine_for(project: Project, *, as_of=None, entity=None) -> ibis.Table:
    """The (entity_id, as_of) rows: ``as_of`` dates, or the config's schedule when None."""
    entity = _entity(project, entity)
    if isinstance(as_of, pd.DataFrame):
        # On the project's own connection: a free-standing memtable would be cached on
        # ibis's default backend, and joining it with the project's tables then fails.
        as_of = project.con.create_table(ibis.util.gen_name("pqlml_spine"), obj=as_of,
                                         temp=True)
    if isinstance(as_of, ibis.Table):
        return build_spine(None, as_of=as_of, entity=entity)
    dates = schedule_dates(project.config.schedule) if as_of is None else as_of
    dates = [dates] if isinstance(dates, str) or not hasattr(dates, "__iter__") else list(dates)
    check_as_of(dates, project.data_start, project.data_end)
    entities = entities_from_tables(project.tables, entity, project.events)
    return build_spine(entities, as_of=dates, entity=entity)


def _keyed(table: ibis.Table, entity: str) -> pd.DataFrame:
    key = "account_id" if entity == "account" else "user_id"
    if "entity_id" in table.columns:
        table = table.rename({key: "entity_id"})
    # Through Arrow: ibis's own to_pandas spends 30x longer converting 100 columns.
    return table.order_by([key, "as_of"]).to_pyarrow().to_pandas()


def build_features(config, *, as_of=None, entity=None, extra=()) -> pd.DataFrame:
    """Point-in-time features: one row per (entity, as_of), events strictly before as_of.

    ``as_of``: a date, a list of dates, an explicit spine table (``entity_id``,
    ``as_of``), or None for the config's whole schedule. ``extra``:
    :class:`~pqlml.features.Count` / :class:`~pqlml.features.Derived` features.
    """
    project = open_project(config)
    entity = _entity(project, entity)
    spine = spine_for(project, as_of=as_of, entity=entity)
    table = feature_table(spine, project.events, users=project.users,
                          accounts=project.tables.get("accounts"),
                          settings=project.config.features, entity=entity, extra=extra)
    return _keyed(table, entity)


def build_labels(config, *, as_of=None, entity=None) -> pd.DataFrame:
    """Hand-raise and conversion in ``(as_of, as_of + horizon]`` for each spine row.

    Entities that converted at or before ``as_of`` are left out and snapshots
    whose horizon runs past the end of the data are censored (labels null);
    both are counted in ``open_project(config).report``.
    """
    project = open_project(config)
    entity = _entity(project, entity)
    spine = spine_for(project, as_of=as_of, entity=entity)
    outcomes = outcome_table(project.tables, project.events, project.config.outcomes)
    table = label_table(spine, outcomes, horizon_days=project.config.labels.horizon_days,
                        data_end=project.data_end, entity=entity, report=project.report)
    return _keyed(table, entity)
