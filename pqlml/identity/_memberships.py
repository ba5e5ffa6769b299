"""Membership over time: which account each user was in, when.

A user is a member of an account over half-open intervals ``[valid_from, valid_to)``:

* each row of a ``memberships`` table (``user_id``, ``account_id``, ``since``: from a
  CRM, or from the group calls of a Segment / Amplitude / Mixpanel export) starts an
  interval that lasts until the user's next row;
* before the user's first row, and always for a user without rows, the user's *base*
  account holds (:func:`~pqlml.identity._users.user_accounts`: ``users.account_id``,
  else the work-email domain), as one interval open on both sides when there are no rows.

Consecutive rows naming the same account are one interval. A user who is in no
account before their first row (a free-mail sign-up who later joins a workspace) is in
none until then. Everything downstream asks the intervals, never the latest value: an
event counts for the account its user was in at the event's time, and a cutoff's
account features count the users who were members just before it, so a later move
never changes an earlier cutoff.

The intervals also carry whole days: with ``as_of`` a midnight, "a member just before
``as_of``" is ``from_day < as_day <= to_day`` (``valid_from < as_of <= valid_to``),
integer comparisons with open ends as far-off days.

Examples
--------
>>> import pandas as pd
>>> from pqlml.validate import ValidationReport
>>> t = lambda *s: pd.to_datetime(list(s), utc=True)
>>> users = ibis.memtable({"user_id": ["u1", "u2"], "account_id": ["acme", "acme"],
...     "email_domain": ["acme.io"] * 2, "is_free_mail": [False] * 2, "title": ["vp", None],
...     "signup_at": t("2024-01-01", "2024-01-01")})
>>> moves = ibis.memtable({"user_id": ["u1"], "account_id": ["globex"],
...                        "since": t("2024-04-15 10:00")})
>>> report = ValidationReport()
>>> m = membership_intervals(users, moves, report=report)
>>> rows = m.order_by(["user_id", "from_day"]).to_pandas()
>>> [(r.user_id, r.account_id, str(r.valid_from)[:16], str(r.valid_to)[:16])
...  for r in rows.itertuples()]      # doctest: +NORMALIZE_WHITESPACE
[('u1', 'acme', 'NaT', '2024-04-15 10:00'), ('u1', 'globex', '2024-04-15 10:00', 'NaT'),
 ('u2', 'acme', 'NaT', 'NaT')]
>>> [(f.kind, f.rows) for f in report]
[('users_changing_account', 1)]
"""

from __future__ import annotations

import ibis

from ..backends import cached, to_days
from ..validate import Finding, ValidationReport

__all__ = ["MEMBER_COLUMNS", "OPEN_DAYS", "membership_intervals", "static_members",
           "member_then", "members_at"]

#: One row per (user, interval): the user's attributes and the interval.
MEMBER_COLUMNS = ("user_id", "account_id", "email_domain", "is_free_mail", "title", "signup_at",
                  "valid_from", "valid_to", "from_day", "to_day")
#: The days standing for an open end (before and after any data).
OPEN_DAYS = (-(2 ** 40), 2 ** 40)
_ATTRS = ("email_domain", "is_free_mail", "title", "signup_at")
_EARLIEST = "0001-01-01 00:00:00+00:00"     # orders a base account before every membership


def _with_days(t: ibis.Table) -> ibis.Table:
    lo, hi = (ibis.literal(d, "int64") for d in OPEN_DAYS)
    return t.mutate(from_day=ibis.coalesce(to_days(t.valid_from).cast("int64"), lo),
                    to_day=ibis.coalesce(to_days(t.valid_to).cast("int64"), hi))


def static_members(users_map: ibis.Table) -> ibis.Table:
    """The users map (:func:`~pqlml.identity._users.user_accounts`) as intervals open on both
    sides: each user in their base account at every time (no memberships table)."""
    t = users_map.filter(users_map.account_id.notnull())
    none = ibis.null("timestamp('UTC')")
    attrs = {c: t[c] if c in t.columns else ibis.null("string") for c in _ATTRS}
    return _with_days(t.select("user_id", "account_id", **attrs, valid_from=none, valid_to=none))


def membership_intervals(users_map: ibis.Table | None, memberships: ibis.Table, *,
                         report: ValidationReport) -> ibis.Table:
    """The membership intervals of every user: :data:`MEMBER_COLUMNS`, computed once and
    cached on the backend.

    Parameters
    ----------
    users_map : ibis.Table or None
        :func:`~pqlml.identity._users.user_accounts` output: the base accounts and the
        users' attributes; None without a users table (then only the rows count).
    memberships : ibis.Table
        Canonical memberships: ``user_id``, ``account_id``, ``since``.
    report : ValidationReport
        Gets the users who change account, rows of users the users table lacks, and rows
        naming two accounts at the same instant (the largest ``account_id`` is kept).

    Returns
    -------
    ibis.Table
        Rows with a null ``account_id`` are left out: a user in no account has no interval.
    """
    ts = memberships.since.type()
    m = memberships.select(user_id=memberships.user_id.cast("string"),
                           account_id=memberships.account_id.cast("string"),
                           since=memberships.since)
    if users_map is not None:      # the base account: a row before every membership
        base = users_map.filter(users_map.account_id.notnull())
        m = m.union(base.select(user_id=base.user_id.cast("string"),
                                account_id=base.account_id.cast("string"),
                                since=ibis.null(ts)), distinct=False)
    m = m.mutate(_o=m.since.fill_null(ibis.literal(_EARLIEST).cast(ts)))
    m = m.group_by(["user_id", "_o"]).aggregate(account_id=m.account_id.max(),
                                                since=m.since.max(), _n=m.account_id.nunique())
    by_user = ibis.window(group_by="user_id", order_by="_o")
    m = m.mutate(_prev=m.account_id.lag().over(by_user))
    m = m.filter(m._prev.isnull() | (m._prev != m.account_id))   # one interval per stay
    rows = m.select("user_id", "account_id", "_n", valid_from=m.since,
                    valid_to=m._o.lead().over(by_user))
    if users_map is not None:
        attrs = users_map.select(_uid=users_map.user_id, **{f"_{c}": users_map[c] for c in _ATTRS})
        rows = rows.left_join(attrs, rows.user_id == attrs._uid)
        rows = rows.select("user_id", "account_id", "valid_from", "valid_to", "_n",
                           _known=rows._uid.notnull(), **{c: rows[f"_{c}"] for c in _ATTRS})
    else:
        rows = rows.mutate(email_domain=ibis.null("string"), is_free_mail=ibis.literal(False),
                           title=ibis.null("string"), signup_at=ibis.null("timestamp('UTC')"),
                           _known=ibis.literal(False))
    out = cached(_with_days(rows))
    _report(out, users_map is not None, report)
    return out.select(*MEMBER_COLUMNS)


def _report(rows: ibis.Table, have_users: bool, report: ValidationReport) -> None:
    per = rows.group_by("user_id").aggregate(_accounts=rows.account_id.nunique(),
                                             _unknown=(~rows._known).any(),
                                             _clash=(rows._n > 1).sum())
    n = per.aggregate(moved=(per._accounts > 1).sum(), unknown=per._unknown.sum(),
                      clash=per._clash.sum()).to_pyarrow().to_pylist()[0]
    where = report.files.get("memberships", "")
    if n["moved"]:
        report.add(Finding("memberships", where, "account_id", "users_changing_account",
                           int(n["moved"]),
                           "each event counts for the account the user was in at its time, and "
                           "a cutoff's account features count the users who were members just "
                           "before it: a later move never changes an earlier cutoff",
                           "none needed"))
    if have_users and n["unknown"]:
        report.add(Finding("memberships", where, "user_id", "memberships_of_unknown_users",
                           int(n["unknown"]),
                           "used for their events' accounts; they have no sign-up, title or "
                           "email, so they count in no account's users", 
                           "add those users to the users table"))
    if n["clash"]:
        report.add(Finding("memberships", where, "since", "memberships_at_the_same_time",
                           int(n["clash"]),
                           "a user joins several accounts at the same instant: the largest "
                           "account_id is kept", "give each membership its own time"))


def member_then(members: ibis.Table, as_day) -> ibis.BooleanValue:
    """Whether a member row's stay holds just before the cutoff of day ``as_day`` (an int or
    an integer column): ``from_day < as_day <= to_day``."""
    return (members.from_day < as_day) & (members.to_day >= as_day)


def members_at(spine: ibis.Table, members: ibis.Table, *, by: str = "account_id") -> ibis.Table:
    """``spine`` (``entity_id``, ``as_day``, ...) joined with the member rows of the users
    who were members just before each ``as_of`` (:func:`member_then`), matched on
    ``members[by]`` (``account_id``: an account's members; ``user_id``: a user's account
    then)."""
    return spine.join(members, [spine.entity_id == members[by],
                                member_then(members, spine.as_day)])
