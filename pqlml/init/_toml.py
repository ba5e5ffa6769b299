"""A commented TOML file: sections of ``key = value`` lines, each with its reason.

A guessed value gets ``# guess: <why>``, a value pqlml could not find gets
``# fill in: <why>`` (its value is a :data:`FILL_IN` placeholder that
``pqlml validate`` names), a suggestion the user may take is written commented out.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field

from ..sources import FILL_IN

__all__ = ["Entry", "Section", "render", "FILL_IN"]


@dataclass(frozen=True)
class Entry:
    """One ``key = value`` line; ``why`` marks a guess, ``fill`` a placeholder, ``note`` is a
    plain comment, ``off`` writes the line commented out (a suggestion)."""

    key: str
    value: object
    why: str = ""
    note: str = ""
    fill: bool = False
    off: bool = False


@dataclass(frozen=True)
class Section:
    name: str
    entries: tuple[Entry, ...] = ()
    comments: tuple[str, ...] = field(default=())


def render(header: list[str], sections: list[Section]) -> str:
    """The TOML text.

    Examples
    --------
    >>> print(render(["hello"], [Section("labels", (Entry("horizon_days", 28, why="short log"),),
    ...                                  ("the label window",))]), end="")
    # hello
    <BLANKLINE>
    [labels]
    # the label window
    horizon_days = 28  # guess: short log
    """
    lines = [f"# {h}".rstrip() for h in header]
    for s in sections:
        lines += ["", f"[{s.name}]"] + [f"# {c}".rstrip() for c in s.comments]
        for e in s.entries:
            line = f"{_key(e.key)} = {_value(e.value)}"
            tail = (f"# fill in: {e.why}" if e.fill else f"# guess: {e.why}" if e.why else
                    f"# {e.note}" if e.note else "")
            if e.why and e.note:
                tail += f"; {e.note}"
            line = f"# {line}" if e.off else line
            lines.append(f"{line}  {tail}" if tail else line)
    return "\n".join(lines) + "\n"


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    return json.dumps(str(v))
