"""Events to accounts: an event's own ``account_id``, else its user's account at its time."""

from __future__ import annotations

import ibis

from ..backends import cached
from ..errors import DataError
from ..validate import ValidationReport
from ._users import add_route_findings, route_counts

__all__ = ["account_events"]

#: Events without their own account_id, up to which account_events() resolves them once and
#: keeps them (~50 bytes a row) instead of joining them with the users in every query.
_CACHED_LOOKUPS = 2_000_000
NO_ACCOUNTS = ("events have no account_id column and no users table was given, so no event "
               "can be attributed to an account. Fix: add [data.users] (user_id, email, "
               "signup_at) or an account_id column to the events, or score users: [project] "
               'entity = "user".')
_UNKNOWN_FIX = "add the users to the users table or give events an account_id"
_EVENT_ROUTES = {
    "own": ("events_with_own_account_id", "account from events.account_id", "none needed"),
    "user": ("events_by_user_account", "account from the user's account at the event's time",
             "none needed"),
    "free_mail": ("free_mail_user_events",
                  "kept with no account: used for user features, not account features",
                  "none needed for free-mail users"),
    "before_membership": ("events_before_first_membership",
                          "kept with no account: the user joined no account before this event",
                          "none needed; give the membership an earlier since if the user was "
                          "in the account already"),
    "user_without_account": ("events_of_users_without_account",
                             "kept with no account: their user has no account",
                             "see the users findings for why those users have no account"),
    "unknown_user": ("unknown_user_events",
                     "kept with no account: the user_id is not in the users table",
                     _UNKNOWN_FIX),
}


def account_events(events: ibis.Table, users_map: ibis.Table | None, *,
                   report: ValidationReport, members: ibis.Table | None = None,
                   properties: tuple[str, ...] = (), users_only: bool = False) -> ibis.Table:
    """Each event's account: its own ``account_id``, else its user's account at its time.

    Parameters
    ----------
    events : ibis.Table
        Canonical events (``ts``, ``user_id``, ``event``, optional ``account_id`` and
        numeric property columns).
    users_map : ibis.Table or None
        The output of :func:`~pqlml.identity.user_accounts`; None when there is no users
        table.
    report : ValidationReport
        Gets one finding per route; the findings' rows add up to the number of events.
    members : ibis.Table, optional
        Membership intervals (:func:`~pqlml.identity.membership_intervals`) when users
        change accounts: an event then takes the account its user was in at ``ts``
        (``valid_from <= ts < valid_to``). Without it, each user's one account.
    properties : tuple of str
        Numeric property columns of ``events`` carried through.
    users_only : bool
        A user-level (PQL) project: a log with nothing that names an account is fine (every
        event is kept without one, counted) instead of an error.

    Returns
    -------
    ibis.Table
        Every event (none is removed): ``ts, user_id, account_id, event`` and the
        properties; ``account_id`` is null for events of free-mail users and events that
        cannot be attributed (both counted in ``report``).

    Raises
    ------
    DataError
        Events have no ``account_id`` column and neither users nor memberships are given
        (unless ``users_only``).

    Examples
    --------
    >>> users = ibis.memtable({"user_id": ["u1", "u2"], "account_id": ["a1", None],
    ...                        "is_free_mail": [False, True]})
    >>> events = ibis.memtable({"ts": [1, 2, 3], "user_id": ["u1", "u2", "u7"],
    ...                         "event": ["login"] * 3})
    >>> report = ValidationReport()
    >>> out = account_events(events, users, report=report).order_by("ts").to_pyarrow()
    >>> out["account_id"].to_pylist()
    ['a1', None, None]
    >>> [(f.kind, f.rows) for f in report]
    [('events_by_user_account', 1), ('free_mail_user_events', 1), ('unknown_user_events', 1)]
    """
    own = events.account_id.cast("string") if "account_id" in events.columns else None
    if users_map is None and members is None and own is None and not users_only:
        raise DataError(NO_ACCOUNTS)
    keep = ("ts", "user_id", "account_id", "event", *properties)
    routes = dict(_EVENT_ROUTES)
    counts: dict[str, int] = {}
    if own is None:
        own_part, rest = None, events
    else:
        # An event's own account_id wins, so only events without one need the user lookup
        # (a join of every event with every user is the costliest step of a feature build).
        e = events.mutate(_own=own)
        rows = e.aggregate(n=e.count(), own=e._own.count()).to_pyarrow().to_pylist()[0]
        counts["own"] = int(rows["own"] or 0)
        own_part = e.filter(e._own.notnull()).mutate(account_id=e._own).select(*keep)
        if not (rows["n"] or 0) - counts["own"]:
            add_route_findings(counts, routes, "events", "account_id", report)
            return own_part
        rest = e.filter(e._own.isnull()).drop("_own", "account_id")
    if users_map is None and members is None:
        routes["unknown_user"] = ("events_without_account", "kept with no account: the event "
                                  "has no account_id and there is no users table", _UNKNOWN_FIX)
        rest = rest.mutate(_user_account=ibis.null("string"), _known=False, _free=False)
    else:
        rest = _lookup(rest, users_map, members)
    known = rest._known.fill_null(False)
    before = (rest._first.notnull() & (rest.ts < rest._first)) if "_first" in rest.columns \
        else ibis.literal(False)
    route = ibis.cases((rest._user_account.notnull(), "user"), (~known, "unknown_user"),
                       (before, "before_membership"),
                       (rest._free.fill_null(False), "free_mail"), else_="user_without_account")
    rest = rest.mutate(account_id=rest._user_account, _route=route).select(*keep, "_route")
    if own_part is not None and rows["n"] - counts["own"] <= _CACHED_LOOKUPS:
        # The few events that need the lookup are resolved once (a temp table, a Spark
        # cache), so each feature query reads the log once plus this table, not the log
        # twice and a join; their routes are counted from it.
        rest = cached(rest)
        rest = rest.cast({**own_part.schema(), "_route": "string"})
    counts.update(route_counts(rest, "_route"))
    add_route_findings(counts, routes, "events", "account_id", report)
    rest = rest.drop("_route")
    return rest if own_part is None else own_part.union(rest, distinct=False)


def _lookup(rest: ibis.Table, users_map: ibis.Table | None,
            members: ibis.Table | None) -> ibis.Table:
    """``rest`` with ``_user_account`` (the account), ``_known``, ``_free`` and, with
    ``members``, ``_first`` (the user's first membership, before which a user without a base
    account has none)."""
    if members is None:
        m = users_map.select(_uid=users_map.user_id, _user_account=users_map.account_id,
                             _free=users_map.is_free_mail, _known=ibis.literal(True))
        return rest.left_join(m, rest.user_id == m._uid).drop("_uid")
    iv = members.select(_iu=members.user_id, _user_account=members.account_id,
                        _vf=members.valid_from, _vt=members.valid_to)
    rest = rest.left_join(iv, [rest.user_id == iv._iu,
                               iv._vf.isnull() | (rest.ts >= iv._vf),
                               iv._vt.isnull() | (rest.ts < iv._vt)]).drop("_iu", "_vf", "_vt")
    firsts = members.group_by(_fu=members.user_id).aggregate(_first=members.valid_from.min())
    if users_map is not None:
        u = users_map.select(_uid=users_map.user_id, _free=users_map.is_free_mail)
        u = u.outer_join(firsts, u._uid == firsts._fu)
        u = u.select(_uid=ibis.coalesce(u._uid, u._fu), _free=u._free.fill_null(False),
                     _first=u._first, _known=ibis.literal(True))
    else:
        u = firsts.select(_uid=firsts._fu, _free=ibis.literal(False), _first=firsts._first,
                          _known=ibis.literal(True))
    return rest.left_join(u, rest.user_id == u._uid).drop("_uid")
