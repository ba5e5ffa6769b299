"""Whom to contact in each scored account, in the columns a CRM takes.

:func:`contacts` fits a :class:`~pqlml.buyers.BuyerModel` on the history whose label windows
closed by ``as_of`` (which user raised the hand or converted) and, per (account, as_of) row:

* ``buyer_in_product`` — the probability that the buyer is one of the account's users;
* ``lead_bucket`` — ``pql`` (``buyer_in_product >= 0.5``: sell to the contact),
  ``pqa_find_buyer`` (below it: usage, but the buyer is outside; marketing and sales find and
  connect a decision-maker) or ``sales_led`` (no work-email user of the product, but a lead);
* ``contact_user_id``, ``contact_email``, ``contact_title`` — for a PQL the user ranked first
  (a free-mail user never is: :func:`~pqlml.buyers.candidates`); for a PQA the most senior
  (then latest) lead from outside the product with a work email (``[data.leads]``: its email
  stands in ``contact_user_id`` too), else nobody yet;
* ``contact_reason`` — why, in business words: "VP Engineering; changed admin roles twice,
  viewed pricing 3 times in the last 90 days; 40% of the team's activity".

Examples
--------
>>> import pandas as pd
>>> r = pd.Series({"title": "VP Engineering", "admin_90d": 2.0, "invites_90d": 0.0,
...                "pricing_90d": 3.0, "legal_security_90d": 1.0, "activity_share": 0.4})
>>> print(user_reason(r))
VP Engineering; changed admin roles twice, viewed pricing 3 times, read the legal or security pages once in the last 90 days; 40% of the team's activity
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import PqlmlError
from ..explain import times
from ._candidates import buyer_examples, candidates
from ._evaluate import PQA_THRESHOLD
from ._model import BuyerModel

__all__ = ["CONTACT_COLUMNS", "LEAD_BUCKETS", "CONTACT_TIERS", "contacts", "with_contacts",
           "fit_on_history", "user_reason"]

CONTACT_COLUMNS = ("contact_user_id", "contact_email", "contact_title", "contact_reason",
                   "buyer_in_product", "lead_bucket")
LEAD_BUCKETS = ("pql", "pqa_find_buyer", "sales_led")
#: The tiers whose accounts get a contact in the scores: the ones sales works.
CONTACT_TIERS = ("tier_1", "tier_2")
_ACTS = (("admin_90d", "changed admin roles"), ("invites_90d", "invited teammates"),
         ("pricing_90d", "viewed pricing"),
         ("legal_security_90d", "read the legal or security pages"))


def user_reason(r) -> str:
    """Why a user is the contact: the title, the buyer actions and the share of activity."""
    acts = [f"{words} {times(r[col])}" for col, words in _ACTS if r[col] >= 1]
    parts = [str(r["title"]) if isinstance(r["title"], str) and r["title"] else "no title"]
    if acts:
        parts.append(", ".join(acts) + " in the last 90 days")
    parts.append(f"{r['activity_share']:.0%} of the team's activity")
    return "; ".join(parts)


def _history(project, as_of) -> pd.DataFrame:
    """The examples (:func:`~pqlml.buyers.buyer_examples`) whose label windows closed by
    ``as_of``."""
    as_of = pd.Timestamp(as_of)
    h = pd.Timedelta(days=project.config.labels.horizon_days)
    dates = [d for d in project.dates() if pd.Timestamp(d, tz="UTC") + h <= as_of]
    return buyer_examples(project, dates)


def _fit(X: pd.DataFrame, ex: pd.DataFrame, as_of) -> BuyerModel:
    X = X.merge(ex, on=["account_id", "as_of"])
    if X.empty:
        raise PqlmlError(f"No account raised a hand or converted in a label window closed by "
                         f"{pd.Timestamp(as_of).date()}: there is no history to learn who buys. "
                         "Check [data.outcomes] and [schedule].")
    return BuyerModel().fit(X, (X.user_id == X.buyer_user_id.astype("string"))
                            .fillna(False).astype(int))


def fit_on_history(project, as_of) -> BuyerModel:
    """A buyer model fitted on every scheduled example whose label window closed by
    ``as_of``."""
    ex = _history(project, as_of)
    return _fit(candidates(project, ex), ex, as_of)


def contacts(project, rows: pd.DataFrame, model: BuyerModel | None = None) -> pd.DataFrame:
    """``rows`` (``account_id``, ``as_of``: one date) with :data:`CONTACT_COLUMNS`, row order
    kept; ``model`` defaults to :func:`fit_on_history` at that date."""
    rows = rows[["account_id", "as_of"]].reset_index(drop=True).astype({"account_id": str})
    rows["as_of"] = pd.to_datetime(rows.as_of, utc=True)
    if rows.as_of.nunique() > 1:
        raise PqlmlError("contacts takes the rows of one as_of; got "
                         f"{rows.as_of.nunique()}. Fix: call it once per date.")
    out = rows.assign(**{c: None for c in CONTACT_COLUMNS})
    if rows.empty:
        return out
    if model is None:           # the history's candidates and these rows' in one build
        as_of = rows.as_of.iloc[0]
        ex = _history(project, as_of)
        both = candidates(project, pd.concat([ex[["account_id", "as_of"]], rows]))
        model = _fit(both[both.as_of < as_of], ex, as_of)
        X = both[both.as_of == as_of].reset_index(drop=True)
    else:
        X = candidates(project, rows)
    if len(X):
        ranked = model.rank(X)
        top = ranked[ranked.rank_in_account == 1].merge(_people(project), on="user_id",
                                                        how="left")
        top["reason"] = [user_reason(r) for _, r in top.iterrows()]
        top = top.set_index("account_id")
        idx = rows.account_id
        out["buyer_in_product"] = idx.map(top.buyer_in_product).astype(float).to_numpy()
        inside = out.buyer_in_product >= PQA_THRESHOLD
        for col, src in (("contact_user_id", "user_id"), ("contact_email", "email"),
                         ("contact_title", "title"), ("contact_reason", "reason")):
            out.loc[inside, col] = idx[inside].map(top[src]).to_numpy()
    out["buyer_in_product"] = out.buyer_in_product.astype(float).fillna(0.0)
    lead = _latest_outside_leads(project, rows)
    outside = out.buyer_in_product < PQA_THRESHOLD
    has_lead = rows.account_id.isin(lead.index)
    no_users = ~rows.account_id.isin(set(X.account_id)) if len(X) else pd.Series(True, rows.index)
    out["lead_bucket"] = np.where(~outside, "pql", np.where(no_users & has_lead, "sales_led",
                                                            "pqa_find_buyer"))
    p = out.buyer_in_product
    for i in np.flatnonzero(outside):
        a = rows.account_id.iat[i]
        if a in lead.index:
            l = lead.loc[a]
            out.loc[i, ["contact_user_id", "contact_email", "contact_title"]] = \
                [l.email, l.email, l.title]
            out.loc[i, "contact_reason"] = (
                f"buyer likely outside the product ({p.iat[i]:.0%} inside): "
                f"{l.title or 'a lead'} from {l.source or 'a lead form'} on {l.ts:%Y-%m-%d}")
        else:
            out.loc[i, "contact_reason"] = (f"buyer likely outside the product "
                                            f"({p.iat[i]:.0%} inside): find one; no lead yet")
    return out


def _people(project) -> pd.DataFrame:
    users = project.tables["users"]
    cols = [c for c in ("user_id", "email", "title") if c in users.columns]
    t = users.select(*cols).to_pyarrow().to_pandas()
    t["user_id"] = t.user_id.astype(str)
    for c in ("email", "title"):
        if c not in t:
            t[c] = None
    return t.drop_duplicates("user_id")


def _latest_outside_leads(project, rows: pd.DataFrame) -> pd.DataFrame:
    """Per account: its most senior lead before as_of whose person is no product user and
    has a work email (``email``, ``title``, ``source``, ``ts``; the latest among equals);
    empty without a leads table with emails."""
    empty = pd.DataFrame(columns=["email", "title", "source", "ts"])
    if "leads" not in project.tables or "email" not in project.tables["leads"].columns:
        return empty
    from ..features._fit import seniority_rank

    leads = project.tables["leads"]
    cols = [c for c in ("account_id", "ts", "email", "title", "source") if c in leads.columns]
    rank = seniority_rank(leads.title).fill_null(0) if "title" in leads.columns else 0
    t = leads.select(*cols, _rank=rank).to_pyarrow().to_pandas()
    for c in ("title", "source"):
        if c not in t:
            t[c] = None
    t["account_id"] = t.account_id.astype(str)
    t["ts"] = pd.to_datetime(t.ts, utc=True)
    from ..identity import is_free_mail

    users = set(_people(project).email.dropna().str.lower())
    free = t.email.fillna("").str.rsplit("@", n=1).str[-1].map(is_free_mail).astype(bool)
    t = t[t.email.notna() & ~t.email.str.lower().isin(users) & ~free
          & (t.ts < rows.as_of.iloc[0]) & t.account_id.isin(set(rows.account_id))]
    return (t.sort_values(["_rank", "ts"]).drop_duplicates("account_id", keep="last")
            .set_index("account_id"))


def with_contacts(project, scores: pd.DataFrame) -> pd.DataFrame:
    """An account scoring's table with :data:`CONTACT_COLUMNS` before ``model_version``, filled
    for the :data:`CONTACT_TIERS` rows (empty for the others); a ``pqa_find_buyer`` row's
    ``motion`` gains "; find the buyer". ``scores`` unchanged when the project cannot say who
    buys: not accounts, no users table, or outcomes without ``user_id``; with too little
    history to fit the buyer model, the worked rows' ``contact_reason`` says so and the other
    columns stay empty."""
    outcomes = project.tables.get("outcomes")
    if ("account_id" not in scores.columns or "users" not in project.tables
            or outcomes is None or "user_id" not in outcomes.columns):
        return scores
    worked = scores.tier.isin(CONTACT_TIERS) if "tier" in scores else pd.Series(True, scores.index)
    try:
        found = contacts(project, scores.loc[worked, ["account_id", "as_of"]])
    except PqlmlError as err:        # too little history to learn who buys: say so per row
        found = scores.loc[worked, ["account_id"]].assign(
            **{c: None for c in CONTACT_COLUMNS}, contact_reason=f"no buyer model: {err}")
    out = scores.copy()
    for c in CONTACT_COLUMNS:
        out[c] = pd.Series(found[c].to_numpy(), index=scores.index[worked]).reindex(scores.index)
    if "motion" in out:
        find = out.lead_bucket == "pqa_find_buyer"
        out.loc[find, "motion"] = out.loc[find, "motion"] + "; find the buyer"
    order = [c for c in out.columns if c not in (*CONTACT_COLUMNS, "model_version")]
    return out[order + list(CONTACT_COLUMNS) + (["model_version"] if "model_version" in out
                                                 else [])]
