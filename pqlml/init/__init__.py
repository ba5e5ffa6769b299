"""``pqlml init``: inspect a product's files and write a commented ``pqlml.toml`` for them.

:func:`draft_config` reads the events (and, when given, users, accounts and outcomes)
through :mod:`pqlml.sources` with aggregate DuckDB queries only, and guesses what the
config needs: the column mapping (:mod:`._columns`), a schedule and horizon inside the
data (:mod:`._plan`) and the meaning of the outcome values. The draft is then run on the
data: :func:`run_draft` measures a project opened from :attr:`Draft.config` (pqlml's own
labels and features, :mod:`._check`), and :meth:`Draft.finish` picks from those figures a
target, the backtest's test periods and a starter intent rule. Every guess is written with
``# guess: <why>``; a required column nothing fits is a ``# fill in:`` placeholder that
``pqlml validate`` names. :func:`pqlml.runner.init` (what ``pqlml init`` runs) does the three
steps, opening the probe project between them.

Examples
--------
>>> import tempfile
>>> from pqlml import runner
>>> from pqlml.simulate import simulate
>>> sim = simulate(n_accounts=300, seed=3, out=tempfile.mkdtemp(), months=8)
>>> result = runner.init(sim.out / "mine", sim.out / "events.parquet",
...                      users=sim.out / "users.parquet")
>>> result.columns["events"]["ts"]
Guess(value='ts', why='')
>>> [line.split(" = ")[0] for line in result.guesses]  # doctest: +NORMALIZE_WHITESPACE
['entity', 'target', 'talk_to_sales_clicked', 'demo_requested', 'phone_number_purchased',
 'start', 'end', 'every', 'horizon_days', 'starter_intent', 'test_periods', 'per_period']
>>> result.write().name
'pqlml.toml'
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..config import Config, DataConfig, config_from_dict
from ..errors import DataError, PqlmlError
from ..sources import connect
from ._check import REPEAT_SHARE, DraftFigures, choose_target, run_draft, starter_rule
from ._columns import Guess, guess_columns
from ._draft import Choices, Word, draft
from ._inspect import TableFacts, inspect_table, value_counts
from ._plan import Schedule, outcome_kind, plan_schedule
from ._toml import FILL_IN, render
from ..outputs import write_text

__all__ = ["draft_config", "Draft", "run_draft", "DraftFigures", "InitResult", "Guess",
           "FILL_IN"]

_EPOCH_FIX = "pandas.to_datetime(df[col], unit='s', utc=True), or to_timestamp(col) in SQL"


@dataclass(frozen=True)
class InitResult:
    """What :func:`draft_config` found and the config it drafted (``text``) for ``directory``.

    ``tables``: each file's :class:`~pqlml.init._inspect.TableFacts`; ``columns``: table ->
    canonical column -> :class:`Guess`; ``words``: outcome values and event names with
    their meaning; ``figures``: the drafted config run on the data (``problem`` says why
    it could not be).
    """

    directory: Path
    tables: dict[str, TableFacts]
    columns: dict[str, dict[str, Guess]]
    schedule: Schedule
    words: tuple[Word, ...]
    choices: Choices
    figures: DraftFigures
    text: str

    @property
    def path(self) -> Path:
        return self.directory / "pqlml.toml"

    @property
    def guesses(self) -> list[str]:
        """The config lines marked ``# guess:``."""
        return [line for line in self.text.splitlines()
                if "  # guess:" in line and not line.startswith("#")]

    @property
    def fill_ins(self) -> list[str]:
        """The config lines marked ``# fill in:`` (placeholders)."""
        return [line for line in self.text.splitlines()
                if "  # fill in:" in line and not line.startswith("#")]

    def write(self, *, force: bool = False) -> Path:
        """Write ``directory/pqlml.toml`` (atomically: a temporary file, then a rename).

        Raises
        ------
        PqlmlError
            The file exists and ``force`` is false.
        """
        if self.path.exists() and not force:
            raise PqlmlError(f"{self.path} already exists; pqlml init does not overwrite a "
                             f"config. Fix: pass --force (force=True) to replace it, or choose "
                             f"another folder.")
        return write_text(self.text, self.path)


@dataclass(frozen=True)
class Draft:
    """The first draft: what the files showed and the config to run on the data
    (:attr:`config`); :meth:`finish` decides the rest from what the run measured."""

    directory: Path
    tables: dict[str, TableFacts]
    columns: dict[str, dict[str, Guess]]
    schedule: Schedule
    words: tuple[Word, ...]
    entity: Guess
    kinds: frozenset
    text: str

    @property
    def config(self) -> Config:
        """The drafted config, to open a probe project from (without the feature cache:
        nothing is left beside the config)."""
        return config_from_dict(tomllib.loads(self.text), self.directory)

    def finish(self, figures: DraftFigures) -> InitResult:
        """The config with the target, test periods, starter rule and capacity chosen from
        ``figures`` (:func:`run_draft`; its ``problem`` when the draft did not run)."""
        choices = _decide(figures, self.schedule, self.entity, self.kinds)
        text = render(*draft(self.directory, self.tables, self.columns, self.schedule,
                             list(self.words), choices, figures.problem))
        config_from_dict(tomllib.loads(text), self.directory)      # what is written always loads
        return InitResult(self.directory, self.tables, self.columns, self.schedule, self.words,
                          choices, figures, text)


def draft_config(directory, events, *, users=None, accounts=None, outcomes=None) -> Draft:
    """Inspect the files and draft a config for them in ``directory`` (nothing is written:
    run the draft on the data, then :meth:`Draft.finish` and :meth:`InitResult.write`).

    Parameters
    ----------
    directory : str or Path
        Where ``pqlml.toml`` goes; source paths are written relative to it.
    events : str or Path
        The product events (Parquet or CSV; a glob for several files).
    users, accounts, outcomes : str or Path, optional
        The users, accounts and outcomes (CRM deals, sign-ups to paid plans) files.

    Raises
    ------
    DataError
        A file cannot be read, the events have no timestamp column, or they span too
        little time for a backtest.
    """
    directory = Path(directory).expanduser().absolute()
    con = connect(DataConfig())
    given = {"accounts": accounts, "users": users, "events": events, "outcomes": outcomes}
    tables = {n: inspect_table(con, n, p) for n, p in given.items() if p is not None}
    columns: dict[str, dict[str, Guess]] = {}
    known: dict[str, tuple[str, str]] = {}
    for name, facts in tables.items():
        columns[name] = guess_columns(facts, known)
        for c in ("account_id", "user_id"):
            if columns[name].get(c, Guess(None)).value is not None:
                known.setdefault(c, (columns[name][c].value, name))
    first, last = _event_times(tables["events"], columns["events"])
    schedule = plan_schedule(first, last, where=f"events ({tables['events'].path})")
    words = _words(tables, columns)
    entity = _entity(tables, columns)
    kinds = {w.kind or w.name for w in words if w.active}
    choices = Choices(entity, Guess(_named_target(kinds), "a first draft"),
                      Guess(schedule.test_periods, "a first draft"),
                      Guess("events_30d >= 1", "a first draft"))
    text = render(*draft(directory, tables, columns, schedule, words, choices))
    return Draft(directory, tables, columns, schedule, tuple(words), entity, frozenset(kinds),
                 text)


def _event_times(facts: TableFacts, guesses: dict[str, Guess]):
    ts = facts.columns.get(guesses["ts"].value)
    if ts is None or ts.kind != "timestamp" or ts.first is None:
        shown = "; ".join(f"{c.name!r} ({c.describe()})" for c in facts.columns.values())
        epoch = [c.name for c in facts.of_kind("number")]
        hint = (f" If {', '.join(map(repr, epoch))} holds epoch numbers, convert them first, "
                f"e.g. {_EPOCH_FIX}." if epoch else "")
        raise DataError(f"events ({facts.path}): no column of the {facts.rows:,} rows holds "
                        f"timestamps, so pqlml cannot tell when each event happened. Columns: "
                        f"{shown}. Fix: export the event time as ISO 8601 text "
                        f"('2024-01-31T09:30:00Z' or '2024-01-31') or a timestamp type.{hint}")
    return ts.first, ts.last


def _entity(tables, columns) -> Guess:
    account = columns["events"].get("account_id", Guess(None)).value
    if account is not None:
        return Guess("account", f"the events carry an account id ({account!r}): accounts (PQA) "
                                f"are scored; \"user\" scores people (PQL)")
    if "users" in tables:
        return Guess("account", "accounts come from the users file (its account column, else "
                                "the work-email domain): accounts (PQA) are scored")
    return Guess("user", "the events have no account column and there is no users file, so "
                         "there are no accounts: users are scored (PQL). Add --users (emails) "
                         "or an account column to score accounts")


def _words(tables, columns) -> list[Word]:
    """The outcome file's values and the event names that sound like outcomes."""
    out: list[Word] = []
    listed = {}
    if "outcomes" in tables and columns["outcomes"]["outcome"].value is not None:
        facts, cols = tables["outcomes"], columns["outcomes"]
        for value, rows in value_counts(facts, cols["outcome"].value):
            if value in ("conversion", "hand_raise"):
                out.append(Word(value, rows, None, "", "outcomes"))
                continue
            kind, why = outcome_kind(value)
            if kind is None:
                kind, why = "ignore", (f"{why}: left out; change it to conversion or "
                                       f"hand_raise if it is one")
            out.append(Word(value, rows, kind, why, "outcomes"))
        if cols.get("event", Guess(None)).value is not None:
            listed = _outcome_events(facts, cols)
    meaning = {w.name: w.kind or w.name for w in out}
    names = value_counts(tables["events"], columns["events"]["event"].value, limit=2_000) \
        if columns["events"]["event"].value is not None else []
    for name, rows in names:
        if name in meaning:
            continue
        if name in listed and meaning.get(listed[name], listed[name]) != "ignore":
            kind = meaning.get(listed[name], listed[name])
            out.append(Word(name, rows, kind, f"the outcomes file records it as {listed[name]!r}",
                            "events"))
            continue
        kind, why = outcome_kind(name)
        if kind in ("conversion", "hand_raise"):
            out.append(Word(name, rows, kind, why, "events", active="outcomes" not in tables))
    return out


def _outcome_events(facts: TableFacts, cols: dict[str, Guess]) -> dict[str, str]:
    """Event name -> the outcome value the outcomes file most often records it with."""
    t = facts.table
    e, o = t[cols["event"].value].cast("string"), t[cols["outcome"].value].cast("string")
    pairs = t.group_by(e=e, o=o).aggregate(k=t.count()).order_by("k").execute()
    return {r.e: r.o for r in pairs.itertuples() if r.e is not None and r.o is not None}


def _named_target(kinds: set) -> str:
    """Conversion when some value or event means one (or none means either), else hand-raise."""
    return "hand_raise" if "hand_raise" in kinds and "conversion" not in kinds else "conversion"


def _decide(figures: DraftFigures, schedule: Schedule, entity: Guess, kinds: set) -> Choices:
    if figures.problem:
        why = f"could not check it on the data: {figures.problem.splitlines()[0]}"
        rule, rule_why, _ = starter_rule(figures, entity.value)
        return Choices(entity, Guess(_named_target(kinds), why), Guess(schedule.test_periods, why),
                       Guess(rule, rule_why))
    target, periods = choose_target(figures, schedule.test_periods)
    rule, rule_why, per = starter_rule(figures, entity.value)
    capacity = Guess(max(10, per), "sales touches per cutoff: as many as the starter rule "
                                   "flags (at least 10); set your team's real capacity")
    twice, converting = figures.repeat
    repeatable = None
    if converting and twice >= REPEAT_SHARE * converting:
        repeatable = Guess(False, f"{twice:,} of {converting:,} converting entities convert on "
                                  f"more than one day: conversion repeats (a repeat purchase?)")
    return Choices(entity, target, periods, Guess(rule, rule_why), capacity, repeatable)
