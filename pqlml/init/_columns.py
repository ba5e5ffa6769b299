"""Which source column holds each canonical column: by name, then by what the values look like.

A column named exactly like the canonical one is read as it is (no mapping, nothing to
check). Otherwise, best first: a name from :data:`pqlml.sources._ALIASES` (or the id
column another file already uses, e.g. the accounts file's ``org``), a name made of the
canonical name's words (``work_email`` for ``email``), then, for required columns only,
the look of the values (the only timestamp column, the column of email addresses).
Each of these is a :class:`Guess` whose ``why`` the config prints beside it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

from ..schema import TABLES
from ..sources import _ALIASES
from ._inspect import ColumnFacts, TableFacts

__all__ = ["Guess", "guess_columns", "snake"]

# The looks (ColumnFacts.kind) a canonical kind accepts.
_FITS = {"timestamp": ("timestamp",), "id": ("text", "number"),
         "string": ("text", "email", "domain"), "integer": ("number",), "number": ("number",)}
_SAY = {"ts": "event times", "user_id": "user ids", "event": "event names",
        "account_id": "account ids", "email": "email addresses", "signup_at": "sign-up times",
        "domain": "the company's web domain", "created_at": "creation times",
        "outcome": "what happened (won, demo request, ...)"}


@dataclass(frozen=True)
class Guess:
    """A value ``pqlml init`` writes, and why; ``why`` is empty when nothing was guessed."""

    value: object
    why: str = ""

    @property
    def guessed(self) -> bool:
        return bool(self.why)


def snake(name: str) -> str:
    """``name`` in lower_snake_case.

    Examples
    --------
    >>> snake("Order Total"), snake("durationMs"), snake("2nd-value")
    ('order_total', 'duration_ms', 'c_2nd_value')
    """
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", str(name))
    s = re.sub(r"[^a-z0-9]+", "_", s.lower()).strip("_")
    return s if re.match(r"[a-z]", s) else f"c_{s}"


def guess_columns(facts: TableFacts, known: Mapping[str, tuple[str, str]] | None = None
                  ) -> dict[str, Guess]:
    """Canonical column -> the source column (``Guess.value``) holding it, for ``facts``'s table.

    ``known``: canonical id columns other files already map, and which file
    (``{"account_id": ("org", "accounts")}``).
    A required column nothing fits gets ``Guess(None, why)``.

    Examples
    --------
    >>> from ._inspect import ColumnFacts, TableFacts
    >>> def col(name, kind, distinct=10):
    ...     return ColumnFacts(name, "string", kind, 100, distinct)
    >>> facts = TableFacts("users", "users.csv", 100, {c.name: c for c in (
    ...     col("member_id", "text", 100), col("work_email", "email", 100),
    ...     col("joined_on", "timestamp"), col("title", "text"))}, table=None)
    >>> found = guess_columns(facts)
    >>> {c: (g.value, g.guessed) for c, g in found.items()}  # doctest: +NORMALIZE_WHITESPACE
    {'user_id': ('member_id', True), 'email': ('work_email', True),
     'signup_at': ('joined_on', True), 'title': ('title', False)}
    """
    schema = TABLES[facts.name]
    known = dict(known or {})
    free = dict(facts.columns)
    out: dict[str, Guess] = {}
    for c in schema.columns:
        found = _by_name(c, free, _FITS[schema.kinds[c]], known.get(c, (None, "")))
        if found is None and c in schema.required:
            found = _by_look(c, free, facts)
        if found is not None:
            out[c] = found
            free.pop(found.value, None)
        elif c in schema.required:
            out[c] = Guess(None, f"no column looks like {_SAY.get(c, c)}; columns: "
                                 + ", ".join(repr(n) for n in facts.columns))
    return out


def _by_name(c: str, free: dict[str, ColumnFacts], fits: tuple[str, ...],
             known: tuple[str | None, str]) -> Guess | None:
    for name in free:
        if name == c:
            return Guess(name)
    usable = {n: f for n, f in free.items() if f.kind in fits or f.kind == "empty"}
    for name in usable:
        if name.lower() == c:
            return Guess(name)
    if known[0] in usable:
        return Guess(known[0], f"the {known[1]} file's {c} column is named so too "
                               f"({usable[known[0]].describe()})")
    lower = {snake(n): n for n in usable}
    for alias in _ALIASES.get(c, ()):
        if alias in lower:
            return Guess(lower[alias], f"a usual name for {c} ({usable[lower[alias]].describe()})")
    words = set(c.split("_")) - {"at"}
    if c.endswith("_id") and c[:-3] not in TABLES["events"].columns:
        words -= {"id"}
    for low, name in lower.items():
        if words <= set(low.split("_")):
            return Guess(name, f"its name contains {'_'.join(sorted(words))!r} "
                               f"({usable[name].describe()})")
    return None


def _outcome_words(facts: TableFacts, texts: list[ColumnFacts]
                   ) -> tuple[ColumnFacts, list[str]] | None:
    """Of several text columns, the one whose values most often name a purchase or a
    hand-raise (``upgraded``, ``demo_requested``, ...: :func:`~._plan.outcome_kind`), with
    those values; None when no column's values do. A plan name (``team``, ``business``)
    has fewer distinct values than the outcome column beside it, and maps to nothing."""
    from ._inspect import value_counts
    from ._plan import outcome_kind

    named = {}
    for f in texts:
        values = [v for v, _ in value_counts(facts, f.name)]
        named[f.name] = [v for v in values if outcome_kind(v)[0] in ("conversion", "hand_raise")]
    best = max(texts, key=lambda f: (len(named[f.name]), -f.distinct))
    return (best, named[best.name]) if named[best.name] else None


def _by_look(c: str, free: dict[str, ColumnFacts], facts: TableFacts) -> Guess | None:
    left = list(free.values())
    if c in ("ts", "signup_at", "created_at", "since"):
        stamps = [f for f in left if f.kind == "timestamp"]
        if not stamps:
            return None
        best = max(stamps, key=lambda f: f.distinct)
        span = best.describe().removeprefix("timestamps ")
        if len(stamps) == 1:
            return Guess(best.name, f"the only timestamp column ({span})")
        others = ", ".join(repr(f.name) for f in stamps if f is not best)
        return Guess(best.name, f"the timestamp column with the most distinct values ({span}; "
                                f"also {others})")
    if c in ("email", "domain"):
        match = [f for f in left if f.kind == c]
        return Guess(match[0].name, f"its values are {_SAY[c]} (e.g. {match[0].examples[0]!r})") \
            if match and match[0].examples else None
    if c in ("event", "outcome"):
        most = max(50, facts.rows // 20)
        texts = [f for f in left if f.kind == "text" and 1 <= f.distinct <= most]
        if not texts:
            return None
        if c == "outcome" and len(texts) > 1 and facts.table is not None:
            found = _outcome_words(facts, texts)
            if found:
                best, words = found
                return Guess(best.name, f"the text column whose values name outcomes "
                                        f"({', '.join(map(repr, words[:3]))})")
        best = min(texts, key=lambda f: f.distinct)
        shown = ", ".join(map(repr, best.examples[:2]))
        return Guess(best.name, f"the text column with the fewest distinct values "
                                f"({best.distinct:,}, e.g. {shown})")
    ids = [f for f in left if f.kind in _FITS["id"]]
    if not ids:
        return None
    best = max(ids, key=lambda f: f.distinct)
    return Guess(best.name, f"the remaining column with the most distinct values "
                            f"({best.distinct:,})")
