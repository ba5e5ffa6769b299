"""The candidates: an account's product users at ``as_of``, with what marks a buyer.

A *candidate* of account ``a`` at ``as_of`` is a user who was a member of ``a`` just before
``as_of`` (:func:`pqlml.identity.member_then`), had signed up by then, and has a work email:
a free-mail user is never an account's contact. Each candidate row carries the user's
point-in-time features (``project.features(entity="user")``: events strictly before
``as_of``) reduced to the buyer signals:

* ``title_rank`` — seniority of the title, 1 individual contributor .. 4 executive
  (:func:`pqlml.features._fit.seniority_rank`), 0 without a title; ``stated_seniority``
  from the sign-up answers where given;
* ``admin_90d``, ``invites_90d``, ``pricing_90d``, ``legal_security_90d`` — the user's
  events whose names say so (:data:`BUYER_EVENTS`: admin / role / permission changes,
  invites, pricing / billing / plan views, terms / privacy / security / SOC 2 / DPA views)
  in the 90 days before ``as_of``;
* ``activity_share`` — the user's share of the candidates' events in those 90 days;
  ``events_30d``; ``tenure_days``; ``first_user`` — the account's earliest sign-up;
* ``outside_leads_90d``, ``outside_leads`` — the account's leads (``[data.leads]``) from
  people who are no product users (an outside buyer raising a hand: a demo request, a
  webinar), in the last 90 days and ever before ``as_of``.

:func:`buyer_examples` labels them: for each (account, as_of) whose account raised a hand or
converted in ``[as_of, as_of + horizon)``, the first such outcome's ``user_id`` is the buyer;
an outcome without a user, or whose user was no candidate then, says the buyer was outside
the product.

Examples
--------
>>> sorted(BUYER_EVENTS)
['admin', 'invites', 'legal_security', 'pricing']
>>> signal_events(("task_created", "admin_role_changed", "pricing_page_viewed",
...                "soc2_report_downloaded", "invite_sent"))["legal_security"]
('soc2_report_downloaded',)
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ..errors import PqlmlError

__all__ = ["BUYER_EVENTS", "SIGNALS", "signal_events", "candidates", "buyer_examples"]

#: Event-name fragments (whole words of the snake_case name) of each buyer action.
BUYER_EVENTS = {
    "admin": ("admin", "role", "roles", "permission", "permissions", "sso"),
    "invites": ("invite", "invited", "invites"),
    "pricing": ("pricing", "billing", "plan", "plans", "invoice", "checkout"),
    "legal_security": ("terms", "privacy", "soc2", "security", "legal", "dpa", "gdpr"),
}
#: The candidate columns the buyer model reads.
SIGNALS = ("title_rank", "stated_seniority", "admin_90d", "invites_90d", "pricing_90d",
           "legal_security_90d", "activity_share", "events_30d", "tenure_days", "first_user")
_KEYS = ["account_id", "as_of", "user_id"]


def signal_events(event_names, exclude=()) -> dict[str, tuple[str, ...]]:
    """The event names behind each buyer action (hand-raise events ``exclude``-d)."""
    out = {}
    for signal, words in BUYER_EVENTS.items():
        pattern = re.compile(r"(^|_)(" + "|".join(words) + r")(_|$)")
        out[signal] = tuple(e for e in event_names if pattern.search(e.lower())
                            and e not in exclude)
    return out


def _members(project) -> pd.DataFrame:
    """Work-email members with their title's rank, signup and stay (in days), once a run."""
    from ..backends import to_days
    from ..features._fit import seniority_rank

    def read():
        m = project.members
        m = m.filter(~m.is_free_mail.fill_null(False))
        t = m.select("user_id", "account_id", "from_day", "to_day",
                     signup_day=to_days(m.signup_at),
                     title_rank=seniority_rank(m.title).fill_null(0)).to_pyarrow().to_pandas()
        t["user_id"] = t.user_id.astype(str)
        t["account_id"] = t.account_id.astype(str)
        return t
    return project._once(("buyer_members",), read)


def candidates(project, rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (account, as_of, candidate user) for the (``account_id``, ``as_of``)
    ``rows``, with the buyer :data:`SIGNALS`; accounts with no candidate have no row."""
    if project.members is None:
        raise PqlmlError("The buyer model needs a users table: add [data.users] (user_id, "
                         "email, title, signup_at and account_id or a work email) to the config.")
    rows = rows[["account_id", "as_of"]].drop_duplicates().copy()
    rows["account_id"] = rows.account_id.astype(str)
    rows["as_of"] = pd.to_datetime(rows.as_of, utc=True)
    rows["as_day"] = (rows.as_of - pd.Timestamp(0, tz="UTC")).dt.days
    j = rows.merge(_members(project), on="account_id")
    j = j[(j.from_day < j.as_day) & (j.to_day >= j.as_day) & (j.signup_day < j.as_day)]
    if j.empty:
        return pd.DataFrame(columns=[*_KEYS, "segment", "employees", *SIGNALS,
                                     "outside_leads_90d", "outside_leads"])
    spine = j[["user_id", "as_of"]].drop_duplicates().rename(columns={"user_id": "entity_id"})
    X = project.features(spine.reset_index(drop=True), entity="user")
    j = j.merge(X, on=["user_id", "as_of"], how="left", validate="many_to_one")
    return _with_leads(project, _signals(project, j)).reset_index(drop=True)


def _with_leads(project, X: pd.DataFrame) -> pd.DataFrame:
    """``outside_leads_90d`` / ``outside_leads``: the account's leads (``[data.leads]``) whose
    person is no product user, in the 90 days before as_of / ever before it (0 without a
    leads table)."""
    X["outside_leads_90d"] = X["outside_leads"] = 0.0
    leads = project.leads()
    if leads is None or leads.empty:
        return X
    leads = leads[leads.outside.astype(bool)]
    keys = X[["account_id", "as_of"]].drop_duplicates()
    j = keys.merge(leads[["account_id", "ts"]], on="account_id")
    ts = pd.to_datetime(j.ts, utc=True)
    j = j[ts < j.as_of].assign(recent=(ts >= j.as_of - pd.Timedelta(days=90)).astype(float))
    n = j.groupby(["account_id", "as_of"]).agg(outside_leads=("recent", "size"),
                                                outside_leads_90d=("recent", "sum"))
    X = X.drop(columns=["outside_leads_90d", "outside_leads"]).merge(
        n.reset_index(), on=["account_id", "as_of"], how="left")
    X[["outside_leads", "outside_leads_90d"]] = X[["outside_leads", "outside_leads_90d"]].fillna(0.0)
    return X


def _signals(project, j: pd.DataFrame) -> pd.DataFrame:
    names = [c[len("events_"):-len("_90d")] for c in j.columns
             if c.startswith("events_") and c.endswith("_90d") and c != "events_90d"]
    events = signal_events(names, exclude=tuple(project.config.outcomes.hand_raise_events))
    out = j[_KEYS].copy()
    out["title_rank"] = j.title_rank.astype(float)
    out["stated_seniority"] = (j["stated_seniority"].fillna(0.0) if "stated_seniority" in j
                               else 0.0)
    for signal, kinds in events.items():
        out[f"{signal}_90d"] = sum((j[f"events_{k}_90d"].fillna(0) for k in kinds),
                                   start=pd.Series(0.0, index=j.index))
    total = j["events_90d"].fillna(0).astype(float)
    acc_total = total.groupby([j.account_id, j.as_of]).transform("sum")
    out["activity_share"] = np.where(acc_total > 0, total / acc_total.where(acc_total > 0, 1), 0.0)
    out["events_30d"] = j["events_30d"].fillna(0).astype(float)
    out["tenure_days"] = (j.as_day - j.signup_day).astype(float)
    first = j.groupby(["account_id", "as_of"]).signup_day.transform("min")
    out["first_user"] = (j.signup_day == first).astype(float)
    segments = [c for c in j.columns if c.startswith("segment_")]
    out["segment"] = (j[segments].idxmax(axis=1).str.removeprefix("segment_")
                      if segments else "all")
    out["employees"] = j["employees"].astype(float) if "employees" in j else np.nan
    return out


def buyer_examples(project, dates) -> pd.DataFrame:
    """(``account_id``, ``as_of``, ``buyer_user_id`` or null) for every account that raised a
    hand or converted in ``[as_of, as_of + horizon)`` at each of ``dates``: the first such
    outcome's user."""
    o = project.tables["outcomes"]
    cols = ["account_id", "ts"] + (["user_id"] if "user_id" in o.columns else [])
    o = o.select(*cols).to_pyarrow().to_pandas()
    o["account_id"] = o.account_id.astype(str)
    o["ts"] = pd.to_datetime(o.ts, utc=True)
    o["user_id"] = o["user_id"].astype("string") if "user_id" in o else pd.NA
    h = pd.Timedelta(days=project.config.labels.horizon_days)
    out = []
    for d in dates:
        as_of = pd.Timestamp(d, tz="UTC") if pd.Timestamp(d).tzinfo is None else pd.Timestamp(d)
        w = o[(o.ts >= as_of) & (o.ts < as_of + h)].sort_values(["ts", "account_id"])
        w = w.drop_duplicates("account_id")
        out.append(pd.DataFrame({"account_id": w.account_id.to_numpy(), "as_of": as_of,
                                 "buyer_user_id": w.user_id.to_numpy()}))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(
        columns=["account_id", "as_of", "buyer_user_id"])
