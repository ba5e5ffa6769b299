"""Who the entity is: users signed up before ``as_of`` and firmographics (fit)."""

from __future__ import annotations

import re

import ibis

from ..backends import to_days
from ..identity import members_at
from ._specs import feature_name

__all__ = ["buyer_title", "account_users", "firmographics", "one_hot_values"]


def buyer_title(title: ibis.StringValue, fragments: tuple[str, ...]) -> ibis.BooleanValue:
    """True when a title contains a buyer fragment as whole words (case-insensitive)."""
    pattern = r"\b(" + "|".join(re.escape(f.lower()) for f in fragments) + r")\b"
    return title.lower().re_search(pattern).fill_null(False)


def account_users(spine: ibis.Table, members: ibis.Table, fragments: tuple[str, ...]) -> ibis.Table:
    """Team size, new members, buyer titles and work-email share among the users who were
    members just before as_of and had signed up by then.

    ``members`` are membership intervals (:data:`pqlml.identity.MEMBER_COLUMNS`); ``spine``
    has ``as_day``, the whole days of ``as_of``. As ``as_of`` is a midnight, a sign-up is
    before it exactly when its day is before ``as_day``, and within the last ``w`` days
    exactly when its day is at least ``as_day - w``: integer comparisons instead of
    timestamp arithmetic on every (user, cutoff) pair. A user *joined* the account on the
    later of their sign-up and the start of their membership (a move counts as joining):
    ``new_users_<w>d`` and ``days_since_last_signup`` count from it.
    """
    m = members.select("user_id", "account_id", "from_day", "to_day",
                       signup_day=to_days(members.signup_at),
                       buyer=ibis.ifelse(buyer_title(members.title, fragments), 1, 0),
                       work=ibis.ifelse(members.is_free_mail, 0, 1))
    j = members_at(spine, m)
    j = j.filter(j.signup_day < j.as_day)
    joined = ibis.greatest(j.signup_day, j.from_day)
    return j.group_by(["entity_id", "as_of"]).aggregate(
        users_total=j.count(),
        new_users_7d=j.count(where=joined >= j.as_day - 7),
        new_users_30d=j.count(where=joined >= j.as_day - 30),
        buyer_title_users=j.count(where=j.buyer == 1),
        buyer_title_present=j.buyer.max(),
        work_email_share=j.work.mean(),
        days_since_last_signup=(j.as_day - joined).min(),
    )


def one_hot_values(table: ibis.Table, column: str) -> tuple[str, ...]:
    """Sorted distinct non-null values of a small categorical column."""
    values = table.select(v=table[column]).filter(ibis._.v.notnull()).distinct().to_pandas()["v"]
    return tuple(sorted(str(v) for v in values))


def firmographics(accounts: ibis.Table, categories: dict[str, tuple[str, ...]]) -> ibis.Table:
    """Per account: employees, creation day and one-hot industry / segment columns."""
    cols = {"entity_id": accounts.account_id, "created_day": to_days(accounts.created_at)}
    if "employees" in accounts.columns:
        cols["employees"] = accounts.employees.cast("float64")
    for column, values in categories.items():
        for v in values:
            cols[f"{column}_{feature_name(v)}"] = ibis.ifelse(accounts[column] == v, 1, 0)
    return accounts.select(**cols)
