"""What every command shares: its config read before any work, the project opened once, a
status line for the terminal, and one way of tracking a run in MLflow."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from ..errors import PqlmlError


@dataclass
class Result:
    """What a command did: the open project (pass it to the next command: nothing is read
    again) and the files it wrote."""

    project: object                                   # pqlml.project.Project
    written: list[Path] = field(default_factory=list, kw_only=True)


@dataclass
class Tracked(Result):
    """A command that fits or evaluates a model: also its MLflow run (None: not tracked)."""

    run_id: str | None = field(default=None, kw_only=True)
    store: str | None = field(default=None, kw_only=True)   # the tracking URI


def config_of(source):
    """The :class:`~pqlml.config.Config` of ``source`` (a path to ``pqlml.toml``, a Config,
    a dict of settings or an open :class:`~pqlml.project.Project`), read without opening
    the data, so that outputs are checked against the inputs before any work."""
    from ..config import Config, config_from_settings, load_config
    from ..project import Project

    if isinstance(source, Project):
        return source.config
    if isinstance(source, Config):
        return source
    if isinstance(source, Mapping):
        return config_from_settings(source)
    if isinstance(source, (str, Path)):
        return load_config(source)
    raise PqlmlError(f"The 'source' parameter of a pqlml.runner command must be a path to "
                     f"pqlml.toml, a Config, a dict of settings or an open Project. Got "
                     f"{type(source).__name__} instead.")


def open_once(source, config):
    """``source`` itself when it is an open project, else ``config``'s project, opened: the
    one place a command opens its project."""
    from .. import project

    if isinstance(source, project.Project):
        return source
    return project.open_project(config)


def stage(status: Callable | None, text: str):
    """``status(text)`` (e.g. ``rich.console.Console.status``) around a slow step, or
    nothing."""
    return nullcontext() if status is None else status(text)


def log_run(project, command: str, log: Callable, *, saved: str, enabled: bool = True,
            when: str = "", kind: str | None = None, frame=None, context: str = "training"):
    """``log()`` inside one MLflow run of the project's experiment in the project's store
    (:func:`pqlml.track.tracking_uri`), named ``<command> <project> <when>``
    (:func:`pqlml.track.run_name`; ``when``: the as_of or period), with what
    :func:`pqlml.track.tracked_run` logs of every run (config, definitions, data
    fingerprint, schedule, ``frame`` as the input dataset in ``context``) and the tags
    ``pqlml.command``, ``pqlml.project``, ``pqlml.kind`` (the model's kind) and
    ``pqlml.version``. A store failure is a :class:`~pqlml.errors.TrackingError` saying
    ``saved`` (what was already written). Returns ``(log()'s value, run id, store)``;
    ``(None, None, None)`` when not ``enabled`` (``--no-track``)."""
    if not enabled:
        return None, None, None
    from .. import __version__
    from ..track import run_name, tracked_run, tracking_errors, tracking_uri

    config = project.config
    store = tracking_uri(project)
    tags = {"pqlml.command": command, "pqlml.version": __version__,
            "pqlml.project": config.project.name}
    if kind:
        tags["pqlml.kind"] = kind
    with tracking_errors(f"logging the {command} run", saved, store), \
            tracked_run(project, run_name(command, config, when), tags=tags, frame=frame,
                        context=context) as run:
        value = log()
    return value, run.info.run_id, store


def period(as_of) -> str:
    """``<first>..<last>`` of the dates ``as_of`` (one date: that date); a run's name."""
    import pandas as pd

    dates = pd.to_datetime(pd.Series(as_of), utc=True)
    if dates.empty:
        return ""
    first, last = (str(d.date()) for d in (dates.min(), dates.max()))
    return first if first == last else f"{first}..{last}"
