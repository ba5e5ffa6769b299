"""A config from Python settings: the tables as DataFrames or paths, the sections as dicts.

What :func:`pqlml.open_project` builds from ``events=df, schedule={...}``: the same
:class:`~pqlml.config.Config` a ``pqlml.toml`` gives, checked by the same code
(:mod:`._load`), so every later stage treats it alike.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any, Mapping

from ..errors import ConfigError
from ..schema import TABLES
from ._load import _SECTIONS, _build_config
from ._model import Config

__all__ = ["config_from_settings", "SETTINGS_SOURCE"]

#: How messages name a config built from settings (where a TOML config names its file).
SETTINGS_SOURCE = "the settings passed to open_project"


def config_from_settings(raw: Mapping | None = None, /, *, root: str | os.PathLike | None = None,
                         **settings: Any) -> Config:
    """A config from a dict shaped like ``pqlml.toml`` and/or keyword settings.

    Parameters
    ----------
    raw : Mapping, optional
        Sections, as parsed from TOML; ``raw["data"]`` may hold DataFrames, e.g.
        ``{"data": {"events": df}, "schedule": {"start": "2024-02-01", ...}}``.
    root : str or Path, optional
        ``data.root``: the folder relative paths (files, ``enterprise_domains``) start at;
        default the working directory.
    **settings
        Tables by name (``events``, ``users``, ``accounts``, ``outcomes``, ``leads``,
        ``signups``, ``enrichment``, ``dispositions``, ``memberships``): a DataFrame
        (pandas, pyarrow or polars), a file path, or a table ``{"source": df, "columns":
        {...}}``; and sections by name (``schedule={...}``, ``labels={...}``, ...).
        ``outcomes`` is the outcomes table unless it is a dict without ``source``: then
        it is the ``[outcomes]`` section (``data={"outcomes": df}`` gives the table too).

    Returns
    -------
    Config
        ``path`` None, ``data.root`` absolute.

    Raises
    ------
    ConfigError
        An unknown setting, a setting given twice, no events, or any bad value (the
        messages of :func:`~pqlml.config.load_config`, naming "the settings passed to
        open_project" where a file's path would be).

    Examples
    --------
    >>> import pandas as pd
    >>> events = pd.DataFrame({"ts": ["2024-01-01"], "user_id": ["u1"], "event": ["login"]})
    >>> cfg = config_from_settings(events=events, labels={"horizon_days": 14})
    >>> cfg.data.events.in_memory, cfg.data.events.source[:17], cfg.labels.horizon_days
    (True, 'DataFrame sha256:', 14)
    >>> config_from_settings(events=events, horizon_days=14)
    Traceback (most recent call last):
    ...
    pqlml.errors.ConfigError: Unknown setting 'horizon_days' passed to open_project. ...
    """
    if raw is not None and not isinstance(raw, Mapping):
        raise ConfigError(f"open_project takes a config dict shaped like pqlml.toml. Got a "
                          f"{type(raw).__name__} instead. Fix: e.g. open_project("
                          "{'data': {'events': df}}), or open_project(events=df).")
    raw = dict(raw or {})
    data = raw.get("data", {})
    if not isinstance(data, Mapping):
        raise ConfigError(f"The 'data' setting in {SETTINGS_SOURCE} must be a dict of tables. "
                          f"Got a {type(data).__name__} instead. Fix: e.g. data={{'events': df}}.")
    data = dict(data)
    for key, value in settings.items():
        if key in TABLES and not (key == "outcomes" and isinstance(value, Mapping)
                                  and "source" not in value):
            _once(key in data, f"data.{key}", f"{key}=...")
            data[key] = value
        elif key == "data":
            if not isinstance(value, Mapping):
                raise ConfigError(f"The 'data' setting in {SETTINGS_SOURCE} must be a dict. "
                                  f"Got a {type(value).__name__} instead. Fix: e.g. "
                                  "data={'events': df}.")
            for k in value:
                _once(k in data, f"data.{k}", "data=...")
            data.update(value)
        elif key in _SECTIONS:
            _once(key in raw, key, f"{key}=...")
            raw[key] = value
        else:
            allowed = [*TABLES, *_SECTIONS, "root"]
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"Unknown setting {key!r} passed to open_project.{hint} Fix: pass "
                              f"tables ({', '.join(TABLES)}) as DataFrames or paths, and config "
                              f"sections as dicts ({', '.join(_SECTIONS)}), e.g. "
                              "labels={'horizon_days': 28}; or root='data'.")
    if root is not None:
        _once("root" in data, "data.root", "root=...")
        data["root"] = os.fspath(root)
    if data.get("events") is None and data.get("export") is None:
        raise ConfigError(f"No events in {SETTINGS_SOURCE}: pqlml needs the product events. "
                          "Fix: pass events=df (a DataFrame with columns ts, user_id, event) "
                          "or events='events.parquet'.")
    raw["data"] = data
    return _build_config(raw, Path.cwd(), None, SETTINGS_SOURCE)


def _once(twice: bool, key: str, argument: str) -> None:
    if twice:
        raise ConfigError(f"The '{key}' setting is given twice in {SETTINGS_SOURCE} (in the "
                          f"config dict and as {argument}). Fix: give it once.")
