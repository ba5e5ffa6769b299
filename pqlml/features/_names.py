"""The names of the per-event feature families, written and read back in one place.

An event (as a name fragment, :func:`~pqlml.features._specs.feature_name`) ``e`` has

* ``events_<e>_<w>d``: its events in each look-back window of ``w`` days (a *volume*);
* ``events_<e>_prev_30d``: its events in the 30 days before the last 30 (ages 31..60);
* ``events_<e>_velocity_30d``: its growth, ln((events_<e>_30d + 1) / (events_<e>_prev_30d + 1));
* ``active_users_<e>_30d``: the distinct users who did it in the last 30 days.

The catalog's own totals (``events_prev_30d``, ``events_velocity_30d``,
``active_users_prev_30d``, ...) are no event's. Discovery, reasons and anything else that
reads feature names use :func:`event_family`, so that ``events_invite_sent_prev_30d`` is
never taken for the 30-day volume of an event named ``invite_sent_prev``.

Examples
--------
>>> event_family("events_invite_sent_prev_30d")
('invite_sent', 'prev', 30)
>>> event_family("events_invite_sent_60d"), event_family("active_users_invite_sent_30d")
(('invite_sent', 'volume', 60), ('invite_sent', 'active_users', 30))
>>> event_family("events_prev_30d") is None, event_family("active_users_60d") is None
(True, True)
"""

from __future__ import annotations

import re

__all__ = ["GROWTH_DAYS", "TOTALS", "volume_name", "prev_name", "velocity_name",
           "active_users_name", "event_family", "growth_clashes", "total_clashes"]

GROWTH_DAYS = 30
# Catalog columns that look like an event's but are totals over every event.
TOTALS = frozenset({"events_prev_30d", "events_velocity_30d", "events_per_active_user_30d",
                    "active_users_prev_30d", "active_users_velocity_30d"})
_GROWTH = re.compile(r"events_(?P<event>.+)_(?P<family>prev|velocity)_30d")
_VOLUME = re.compile(r"events_(?P<event>.+)_(?P<days>\d+)d")
_ACTIVE = re.compile(r"active_users_(?P<event>.+)_(?P<days>\d+)d")


def volume_name(event: str, days: int) -> str:
    return f"events_{event}_{days}d"


def prev_name(event: str) -> str:
    return f"events_{event}_prev_{GROWTH_DAYS}d"


def velocity_name(event: str) -> str:
    return f"events_{event}_velocity_{GROWTH_DAYS}d"


def active_users_name(event: str) -> str:
    return f"active_users_{event}_{GROWTH_DAYS}d"


def event_family(name: str, columns=None) -> tuple[str, str, int] | None:
    """``(event, family, days)`` of a per-event feature name, family ``"volume"``,
    ``"prev"``, ``"velocity"`` or ``"active_users"``; None for any other name.

    ``events_<x>_prev_30d`` is the previous window of ``x``; given the table's
    ``columns``, only when ``x``'s own 30-day volume is among them (else it is the
    30-day volume of an event ``x_prev``: with the growth family off, such an event
    keeps its name)."""
    if name in TOTALS:
        return None
    m = _GROWTH.fullmatch(name)
    if m and (columns is None or volume_name(m["event"], GROWTH_DAYS) in columns):
        return m["event"], m["family"], GROWTH_DAYS
    m = _VOLUME.fullmatch(name)
    if m:
        return m["event"], "volume", int(m["days"])
    m = _ACTIVE.fullmatch(name)
    if m:
        return m["event"], "active_users", int(m["days"])
    return None


def growth_clashes(events) -> list[str]:
    """Event fragments whose 30-day volume would share its name with another event's growth
    column (``x_prev`` beside ``x``, ``x_velocity`` beside ``x``).

    >>> growth_clashes(["invite", "invite_prev", "task", "task_velocity_x"])
    ['invite_prev']
    """
    have = set(events)
    return sorted(e for e in have for suffix in ("_prev", "_velocity")
                  if e.endswith(suffix) and e[: -len(suffix)] in have)


def total_clashes(events, active_users_events=()) -> list[str]:
    """Event fragments whose volume or active users would take a catalog total's name
    (an event ``prev``: ``events_prev_30d``).

    >>> total_clashes(["prev", "task"], ["velocity"])
    ['prev', 'velocity']
    """
    return sorted({e for e in events if volume_name(e, GROWTH_DAYS) in TOTALS}
                  | {e for e in active_users_events if active_users_name(e) in TOTALS})
