"""What the CLI and the demo show while they work: a line per slow step with its elapsed
time, a bar over periods, nothing but errors under ``--quiet``, and no dependency's warnings.

:func:`step` and :func:`periods` fit the runner's ``status(text)`` and ``progress(i, n,
as_of)`` arguments (:mod:`pqlml.runner`). :func:`dependency_warnings_hidden` is for the CLI's
entry point only: the library never changes the warning filters of the program that imports
it.

Examples
--------
>>> from rich.console import Console
>>> console = Console(width=60, no_color=True, force_terminal=False)
>>> with step(console, "building features"):
...     pass                                     # doctest: +ELLIPSIS
building features: done in ... s
>>> with step(Console(quiet=True), "silent"):     # --quiet: nothing is shown
...     pass
"""

from __future__ import annotations

import sys
import time
import warnings
from contextlib import contextmanager
from functools import partial
from pathlib import Path

__all__ = ["consoles", "columns", "step", "status", "periods", "dependency_warnings_hidden"]

_PACKAGE = str(Path(__file__).resolve().parent)


def consoles(quiet: bool = False):
    """``(info, result)``: the rich consoles of a command, progress and notes on stderr, the
    result (tables) on stdout; ``quiet`` silences both (errors are printed by the caller)."""
    from rich.console import Console

    return Console(stderr=True, quiet=quiet), Console(quiet=quiet)


def columns():
    """The columns of every pqlml progress display: spinner, text, bar, count, elapsed time."""
    from rich.progress import (BarColumn, MofNCompleteColumn, SpinnerColumn, TextColumn,
                               TimeElapsedColumn)

    return (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
            MofNCompleteColumn(), TimeElapsedColumn())


@contextmanager
def step(console, text: str):
    """A spinner with ``text`` and the time elapsed while the block runs; after it, one line
    ``<text>: done in <seconds> s`` (nothing when ``console`` is quiet)."""
    if console.quiet:
        yield
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    t0 = time.perf_counter()
    if not console.is_terminal:          # a log file: the line at the end is enough
        yield
    else:
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                      console=console, transient=True) as bar:
            bar.add_task(text, total=None)
            yield
    console.print(f"{text}: done in {time.perf_counter() - t0:.1f} s", highlight=False,
                  markup=False)


def status(console):
    """``status(text)`` for a runner command: :func:`step` on ``console``."""
    return partial(step, console)


@contextmanager
def periods(console, name: str, label: str):
    """A bar over the periods of a backtest or a retraining, with the elapsed time: yields
    ``advance(i, n, as_of)`` for a runner's ``progress`` argument; ``label`` is formatted
    with ``i`` (1-based), ``n`` and ``as_of``. Before the first period the bar says what
    ``name`` is building; after the block, one line ``<name>: <n> periods, done in <s> s``."""
    if console.quiet:
        yield lambda i, n, as_of: None
        return
    from rich.progress import Progress

    t0, seen = time.perf_counter(), []
    with Progress(*columns(), console=console, transient=True,
                  disable=not console.is_terminal) as bar:
        task = bar.add_task(f"{name}: building features and labels", total=None)

        def advance(i, n, as_of):
            seen[:] = [n]
            bar.update(task, total=n, completed=i,
                       description=f"{name}: " + label.format(i=i + 1, n=n, as_of=as_of))
        yield advance
    count = f"{seen[0]} periods, " if seen else ""
    console.print(f"{name}: {count}done in {time.perf_counter() - t0:.1f} s", highlight=False,
                  markup=False)


@contextmanager
def dependency_warnings_hidden():
    """Within the block, a warning reaches the terminal only when pqlml's own code raised it;
    those raised inside a dependency (pandas' PerformanceWarning, deprecations) are dropped,
    and so are MLflow's artifact download bars and its log lines below ERROR.
    Python's ``-W`` option or ``PYTHONWARNINGS`` (``sys.warnoptions``) turns the filtering
    off. Everything is restored when the block ends."""
    import logging
    import os

    if sys.warnoptions:
        yield
        return
    # MLflow sets its loggers' level from MLFLOW_LOGGING_LEVEL when it is first imported (in
    # the command); one imported earlier (a test, a notebook) is set directly
    env = {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false", "MLFLOW_LOGGING_LEVEL": "ERROR"}
    before = {k: os.environ.get(k) for k in env}
    loggers = [logging.getLogger(name) for name in ("mlflow", "alembic")]
    levels = [lg.level for lg in loggers]
    with warnings.catch_warnings():
        shown = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            if _raised_by_pqlml():
                shown(message, category, filename, lineno, file, line)
        warnings.showwarning = show
        for key, value in env.items():
            os.environ[key] = before[key] or value
        for lg in loggers:
            lg.setLevel(max(lg.level, logging.ERROR))
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels):
                lg.setLevel(level)
            for key, value in before.items():
                if value is None:
                    os.environ.pop(key, None)


def _raised_by_pqlml() -> bool:
    """The code that called ``warnings.warn`` (the first frame above this handler outside
    the ``warnings`` module) is in the pqlml package."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_globals.get("__name__") in ("warnings", "_py_warnings"):
        frame = frame.f_back
    return frame is not None and frame.f_code.co_filename.startswith(_PACKAGE)
