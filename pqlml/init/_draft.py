"""The sections of the written ``pqlml.toml``, from the inspected files and the choices made."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..schema import TABLES
from ._columns import Guess, snake
from ._inspect import TableFacts
from ._plan import Schedule
from ._toml import FILL_IN, Entry, Section

__all__ = ["Word", "Choices", "draft"]


@dataclass(frozen=True)
class Word:
    """An outcome value (``source="outcomes"``) or event name (``"events"``), its rows, what it
    is taken to mean (``kind``; None: already canonical) and whether the config uses it."""

    name: str
    rows: int
    kind: str | None
    why: str
    source: str
    active: bool = True


@dataclass(frozen=True)
class Choices:
    """What init decided beyond the column mapping."""

    entity: Guess
    target: Guess
    test_periods: Guess
    rule: Guess               # the starter intent rule's expression
    capacity: Guess | None = None
    repeatable: Guess | None = None


def draft(directory: Path, tables: dict[str, TableFacts], columns: dict[str, dict[str, Guess]],
          schedule: Schedule, words: list[Word], choices: Choices, problem: str = ""
          ) -> tuple[list[str], list[Section]]:
    """(header lines, sections) of the config written into ``directory``; ``problem``: why
    pqlml could not open the data with it (said first)."""
    header = ["pqlml.toml written by `pqlml init` from these files (paths are relative to this",
              "file's folder):"]
    for name, t in tables.items():
        header.append(f"  {name:<9}{_relative(t.path, directory)}: {t.rows:,} rows")
    header += ["Check every line marked '# guess:' against your data and change what is wrong;",
               "a line marked '# fill in:' needs a column pqlml could not find, and",
               "`pqlml validate` stops until it is filled in. Every key is described in the",
               "README's \"Config reference (pqlml.toml)\"."]
    if problem:
        header += ["", "pqlml could not open the data with this config yet:"]
        header += [f"  {line}" for line in problem.splitlines()]
    name = snake(directory.name) if directory.name else "pqlml"
    sections = [Section("project", (Entry("name", name, note="names MLflow runs and the model"),
                                    _entry("entity", choices.entity))),
                Section("data", (Entry("root", ".", note="this file's folder"),))]
    for table, facts in tables.items():
        sections += _table_sections(table, facts, columns[table], directory)
    sections += _outcome_sections(tables, columns, words, choices)
    sections.append(Section("schedule", (
        Entry("start", schedule.start, why=schedule.why),
        Entry("end", schedule.end, why="see start"),
        Entry("every", schedule.every, why="see start"))))
    labels = [Entry("horizon_days", schedule.horizon_days,
                    why=f"the label window [as_of, as_of + {schedule.horizon_days} days); "
                        + ("28 days fit in every month" if schedule.every == "month"
                           else "a short log leaves room for a 14-day window only"))]
    if choices.repeatable is not None:
        labels.append(_entry("exclude_prior_positives", choices.repeatable))
    sections.append(Section("labels", tuple(labels)))
    sections.append(Section("rules", (_entry("starter_intent", choices.rule),), (
        "A first definition of high intent, from this data's usage, for the backtest to beat;",
        "replace it with the rule your sales team uses today.")))
    sections.append(Section("tiers", (Entry("intent_rule", "starter_intent",
                                            note="the rule that means high intent"),)))
    sections.append(Section("model", (_entry("test_periods", choices.test_periods),)))
    if choices.capacity is not None:
        sections.append(Section("capacity", (_entry("per_period", choices.capacity),)))
    return header, sections


def _entry(key: str, guess: Guess) -> Entry:
    return Entry(key, guess.value, why=guess.why)


def _relative(path: str, directory: Path) -> str:
    try:
        return Path(os.path.relpath(path, directory)).as_posix()
    except ValueError:   # another drive (Windows): keep it absolute
        return Path(path).as_posix()


def _table_sections(table: str, facts: TableFacts, guesses: dict[str, Guess],
                    directory: Path) -> list[Section]:
    used = {g.value for g in guesses.values() if g.value is not None}
    as_is = [c for c, g in guesses.items() if g.value == c]
    rest = [f"{c.name} ({c.describe()})" for c in facts.columns.values() if c.name not in used]
    comments = []
    if as_is:
        comments.append("read as named: " + ", ".join(as_is))
    if rest:
        comments.append("not used: " + "; ".join(rest))
    ts = facts.columns.get(guesses.get("ts", Guess(None)).value)
    if table == "events" and ts is not None and ts.dates_only and "event_id" not in guesses:
        comments += ["the times are dates only and there is no event id: one user's repeats of "
                     "an event on one day are", "identical rows, which pqlml keeps as repeats "
                     "(validate counts them as same_day_repeats_kept);", "a log exported twice "
                     "would look the same: export an event id to tell them apart"]
    head = Section(f"data.{table}", (Entry("source", _relative(facts.path, directory)),),
                   tuple(comments))
    entries = []
    for c, g in guesses.items():
        if g.value is None:
            entries.append(Entry(c, f"{FILL_IN} the column holding {c}>", why=g.why, fill=True))
        elif g.value != c:
            entries.append(Entry(c, g.value, why=g.why))
    notes = ()
    if table == "events":
        numeric = [c for c in facts.of_kind("number") if c.name not in used]
        for c in numeric:
            key = snake(c.name)
            key = f"{key}_value" if key in TABLES["events"].columns else key
            entries.append(Entry(key, c.name, off=True, note=c.describe()))
        if numeric:
            notes = ("numeric columns below are commented out: uncomment one to sum it per "
                     "window as an event property (sum_<name>_30d, max_<name>_30d)",)
    return [head] + ([Section(f"data.{table}.columns", tuple(entries), notes)] if entries else [])


def _outcome_sections(tables, columns, words: list[Word], choices: Choices) -> list[Section]:
    comments = []
    if "outcomes" in tables:
        column = columns["outcomes"].get("outcome", Guess(None)).value
        canonical = [w for w in words if w.source == "outcomes" and w.kind is None]
        if canonical:
            comments.append(f"read as they are (the outcomes file's {column!r}): "
                            + ", ".join(f"{w.name} ({w.rows:,} rows)" for w in canonical))
    else:
        comments.append("no outcomes file: labels come from the product events mapped below")
    values = [w for w in words if w.kind is not None]
    if not values and not any(w.source == "outcomes" for w in words):
        comments.append("no outcome found: map the event names (or outcome values) that mean "
                        "a purchase or a request to talk to sales under [outcomes.values]")
    head = Section("outcomes", (_entry("target", choices.target),), tuple(comments))
    if not values:
        return [head]
    entries = tuple(Entry(w.name, w.kind, why=_said(w) if w.active else "", off=not w.active,
                          note="" if w.active else f"suggestion: {_said(w)}") for w in values)
    notes = ("outcome values and event names -> conversion / hand_raise / ignore (left out)",)
    return [head, Section("outcomes.values", entries, notes)]


def _said(w: Word) -> str:
    return f"{w.why} ({w.rows:,} {'outcome rows' if w.source == 'outcomes' else 'events'})"
