"""How a user adds a feature without touching the catalog.

Three kinds, all backend-portable ibis:

* :class:`Count` — events of some names in ``[as_of - window_days, as_of)``;
* :class:`Sum` — the sum (or maximum) of a numeric event property there;
* :class:`Derived` — any expression over the catalog's columns.

Examples
--------
>>> from pqlml.features import Count, Derived, Sum
>>> legal = Count("legal_pages_30d", events=("terms_page_viewed", "privacy_page_viewed"),
...               window_days=30)
>>> per_user = Derived("tasks_per_active_user_30d",
...                    lambda t: t.events_task_created_30d / t.active_users_30d.nullif(0))
>>> seats = Sum("seats_added_30d", "seats", 30, events=("seat_added",))
>>> legal.name, per_user.name, seats.how
('legal_pages_30d', 'tasks_per_active_user_30d', 'sum')
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import ibis

from ..errors import PqlmlError
from ._names import GROWTH_DAYS, prev_name, velocity_name, volume_name

__all__ = ["Count", "Sum", "Derived", "DEFAULT_DERIVED", "feature_name"]

_NAME = re.compile(r"[a-z][a-z0-9_]*")


def feature_name(value: str) -> str:
    """A data value (event or industry name) as a lower_snake_case name fragment."""
    return re.sub(r"[^a-z0-9]+", "_", str(value).strip().lower()).strip("_") or "blank"


def _check_name(kind: str, name: str) -> None:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise PqlmlError(f"The 'name' parameter of {kind} must be lower_snake_case, e.g. "
                         f"'legal_pages_30d'. Got {name!r} instead.")


@dataclass(frozen=True)
class Count:
    """Events named ``events`` in the ``window_days`` days before ``as_of``."""

    name: str
    events: tuple[str, ...]
    window_days: int

    def __post_init__(self):
        _check_name("Count", self.name)
        if isinstance(self.events, str) or not self.events:
            raise PqlmlError(f"The 'events' parameter of Count must be a non-empty tuple of event "
                             f"names. Got {self.events!r} instead.")
        object.__setattr__(self, "events", tuple(self.events))
        if isinstance(self.window_days, bool) or not isinstance(self.window_days, int) \
                or self.window_days < 1:
            raise PqlmlError(f"The 'window_days' parameter of Count must be a positive integer. "
                             f"Got {self.window_days!r} instead.")


@dataclass(frozen=True)
class Sum:
    """The sum (``how="sum"``) or maximum (``how="max"``) of the numeric event property
    ``property`` over the events named ``events`` (every event when empty) in the
    ``window_days`` days before ``as_of``. An empty window sums to 0; its maximum is NaN."""

    name: str
    property: str
    window_days: int
    events: tuple[str, ...] = ()
    how: str = "sum"

    def __post_init__(self):
        _check_name("Sum", self.name)
        if not isinstance(self.property, str) or not _NAME.fullmatch(self.property):
            raise PqlmlError(f"The 'property' parameter of Sum must name a numeric event "
                             f"property in lower_snake_case. Got {self.property!r} instead.")
        if isinstance(self.events, str):
            raise PqlmlError(f"The 'events' parameter of Sum must be a tuple of event names "
                             f"(empty: every event). Got {self.events!r} instead.")
        object.__setattr__(self, "events", tuple(self.events))
        if isinstance(self.window_days, bool) or not isinstance(self.window_days, int) \
                or self.window_days < 1:
            raise PqlmlError(f"The 'window_days' parameter of Sum must be a positive integer. "
                             f"Got {self.window_days!r} instead.")
        if self.how not in ("sum", "max"):
            raise PqlmlError(f"The 'how' parameter of Sum must be 'sum' or 'max'. Got "
                             f"{self.how!r} instead.")


@dataclass(frozen=True)
class Derived:
    """A column computed from the catalog's columns: ``fn(table) -> ibis value``."""

    name: str
    fn: Callable[[ibis.Table], ibis.Value]

    def __post_init__(self):
        _check_name("Derived", self.name)
        if not callable(self.fn):
            raise PqlmlError(f"The 'fn' parameter of Derived must be a function of the feature "
                             f"table. Got {self.fn!r} instead.")


def _log_ratio(a: str, b: str):
    return lambda t: ((t[a] + 1).cast("float64") / (t[b] + 1)).ln()


def growth_derived(vocabulary: tuple[str, ...]) -> tuple[Derived, ...]:
    """Per event, ``events_<event>_velocity_30d`` = ln((events_<event>_30d + 1) /
    (events_<event>_prev_30d + 1)), as ``events_velocity_30d`` is for every event."""
    fragments = dict.fromkeys(map(feature_name, vocabulary))
    return tuple(Derived(velocity_name(e), _log_ratio(volume_name(e, GROWTH_DAYS), prev_name(e)))
                 for e in fragments)


DEFAULT_DERIVED = (
    Derived("events_velocity_30d", _log_ratio("events_30d", "events_prev_30d")),
)
ACCOUNT_DERIVED = (
    Derived("events_per_active_user_30d",
            lambda t: t.events_30d.cast("float64") / t.active_users_30d.nullif(0)),
    Derived("active_users_velocity_30d", _log_ratio("active_users_30d", "active_users_prev_30d")),
    Derived("seven_plus_active_users_30d", lambda t: (t.active_users_30d >= 7).cast("int64")),
)
