"""Who buys: each account's buyer, one of its product users or a person outside the product.

The buyer is drawn *after* the company's behaviour, from its own random stream, so a seed's
events, users, accounts and the (account, time, kind) of its outcomes stay what they were
before buyers existed; only the outcomes' ``user_id`` now names the buyer.

For each account the draw looks at the 90 days before its *reference time*: the ``as_of``
of its first outcome (the snapshot whose label window holds it), else the end of the data.

* **In or outside the product.** ``P(in product) = sigmoid(SEGMENT_IN_PRODUCT[segment] +
  IN_PRODUCT_SENIOR * (a senior user has signed up) + IN_PRODUCT_ACTIONS * log1p(admin
  changes and pricing views))``: likely in a small company, unlikely in an enterprise.
* **Which user.** Among the users signed up before the reference time, ``P(user) ∝
  exp(score)`` with ``score = sum(USER_WEIGHTS[k] * x_k)`` over the user's seniority
  (executive, director, manager, intern), ``log1p`` of their admin changes, invites sent,
  pricing views and legal / security views (terms, privacy, SOC 2) in the 90 days, their share
  of the account's events in those days, and whether they founded the account.
* **An outside buyer** shows up, with probability ``OUTSIDE_LEAD``, as a lead from the
  account's domain (a demo request, a webinar sign-up or a content download) in the 60 days
  before the reference time, never as a product user. Some other accounts (``NOISE_LEAD``) get
  a lead too: a junior person from the domain who is not the buyer.

Hand-raises and conversions carry the buyer's user id where the buyer is a user, and no user
where the buyer is outside. ``truth/buyers.parquet`` keeps, per account, ``buyer_user_id``
(or null), ``buyer_in_product``, the true ``p_buyer_in_product`` and the ``reference_at``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import _params as P
from ._company import Company

__all__ = ["Buyers", "draw_buyers", "in_product_probability", "SEGMENT_IN_PRODUCT",
           "USER_WEIGHTS"]

SEGMENT_IN_PRODUCT = (1.2, -1.0, -2.2)     # log-odds of an in-product buyer: smb, mid, ent
IN_PRODUCT_SENIOR = 1.4
IN_PRODUCT_ACTIONS = 0.6
USER_WEIGHTS = {"executive": 1.0, "director": 0.8, "manager": 0.2, "intern": -1.0,
                "admin": 1.8, "invites": 0.8, "pricing": 1.6, "legal_security": 0.9,
                "activity_share": 2.5, "founder": 0.4}
OUTSIDE_LEAD = 0.8
NOISE_LEAD = 0.1
LEAD_SOURCES = ("demo_request", "webinar", "content_download")
LEAD_SOURCE_P = (0.3, 0.4, 0.3)
_WINDOW_DAYS = 90
_LEAD_DAYS = 60
_EXEC = ("CTO", "CEO", "Founder", "COO")
_FIRST = ("alex", "bea", "carl", "dina", "emil", "flor", "gail", "hugo", "iris", "jon")
_LAST = ("adams", "brandt", "costa", "diaz", "evans", "fischer", "grant", "hale")


@dataclass
class Buyers:
    """One chunk's buyers: per account (chunk numbering) and the leads they show up as."""

    user: np.ndarray            # chunk-local user index, or -1 (outside the product)
    p_in_product: np.ndarray    # the true probability
    reference_sec: np.ndarray   # seconds since START
    leads: pd.DataFrame         # account, sec, email, title, source, is_buyer


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def in_product_probability(segment: np.ndarray, senior: np.ndarray,
                           actions: np.ndarray) -> np.ndarray:
    """``P(the buyer is a product user)`` per account, from its segment (index into
    ``P.SEGMENTS``), whether a senior user has signed up and its admin changes and pricing
    views in the 90 days looked at.

    >>> import numpy as np
    >>> in_product_probability(np.array([0, 2]), np.array([False, False]), np.zeros(2)).round(2)
    array([0.77, 0.1 ])
    """
    return _sigmoid(np.array(SEGMENT_IN_PRODUCT)[segment] + IN_PRODUCT_SENIOR * senior
                    + IN_PRODUCT_ACTIONS * np.log1p(actions))


def seniority(c: Company) -> np.ndarray:
    """Each potential user's seniority: executive, director, manager, intern or ic."""
    buyer_title = np.array(P.BUYER_TITLES)[c.user_title % len(P.BUYER_TITLES)]
    other_title = np.array(P.OTHER_TITLES)[c.user_title % len(P.OTHER_TITLES)]
    return np.where(c.user_buyer, np.where(np.isin(buyer_title, _EXEC), "executive", "director"),
                    np.where(np.char.find(other_title, "Manager") >= 0, "manager",
                             np.where(other_title == "Intern", "intern", "ic")))


def reference_times(c: Company, outcomes, snapshot_days, n_days) -> np.ndarray:
    """Per account: the as_of of its first outcome, else the end of the data (seconds)."""
    snaps = np.asarray(snapshot_days, dtype=np.int64) * P.DAY
    ref = np.full(c.n, n_days * P.DAY, dtype=np.int64)
    if len(outcomes.sec):
        as_of = snaps[np.searchsorted(snaps, outcomes.sec, side="left") - 1]
        np.minimum.at(ref, outcomes.account, as_of)
    return ref


def _user_counts(c: Company, activity, ref) -> dict:
    """Per potential user: events of each kind in the 90 days before its account's reference."""
    n_pot = len(c.user_account)
    mine = activity.ev_user < n_pot
    user, kind, sec = activity.ev_user[mine], activity.ev_kind[mine], activity.ev_sec[mine]
    r = ref[c.user_account[user]]
    keep = (sec < r) & (sec >= r - _WINDOW_DAYS * P.DAY)
    user, kind = user[keep], kind[keep]

    def count(*names):
        m = np.isin(kind, [P.EVENT_INDEX[n] for n in names])
        return np.bincount(user[m], minlength=n_pot)
    total = np.bincount(user, minlength=n_pot)
    acc_total = np.bincount(c.user_account, weights=total, minlength=c.n)
    return {"admin": count("admin_role_changed"), "invites": count("invite_sent"),
            "pricing": count("pricing_page_viewed"),
            "legal_security": count("terms_page_viewed", "privacy_page_viewed",
                                    "soc2_report_downloaded"),
            "activity_share": total / np.maximum(acc_total[c.user_account], 1)}


def user_scores(c: Company, activity, ref) -> tuple[np.ndarray, dict]:
    """Each potential user's buyer score (log of the unnormalised choice weight), and the
    90-day counts it was computed from."""
    counts = _user_counts(c, activity, ref)
    level = seniority(c)
    score = np.zeros(len(c.user_account))
    for name in ("executive", "director", "manager", "intern"):
        score += USER_WEIGHTS[name] * (level == name)
    for name in ("admin", "invites", "pricing", "legal_security"):
        score += USER_WEIGHTS[name] * np.log1p(counts[name])
    score += USER_WEIGHTS["activity_share"] * counts["activity_share"]
    founder = np.zeros(len(c.user_account), dtype=bool)
    founder[c.user_offset] = True
    return score + USER_WEIGHTS["founder"] * founder, counts


def draw_buyers(rng: np.random.Generator, c: Company, activity, outcomes, snapshot_days,
                n_days: int, domains: list[str]) -> Buyers:
    """Each account's buyer and the leads outside buyers (and a few others) show up as."""
    ref = reference_times(c, outcomes, snapshot_days, n_days)
    score, counts = user_scores(c, activity, ref)
    signup = activity.signup_sec
    cand = (signup >= 0) & (signup < ref[c.user_account])
    senior = np.bincount(c.user_account, weights=cand & c.user_buyer, minlength=c.n) > 0
    actions = np.bincount(c.user_account, weights=cand * (counts["admin"] + counts["pricing"]),
                          minlength=c.n)
    p_in = in_product_probability(c.segment, senior, actions)
    n_cand = np.bincount(c.user_account, weights=cand, minlength=c.n)
    inside = (rng.random(c.n) < p_in) & (n_cand > 0)
    # Gumbel-max: the argmax of score + Gumbel noise is a draw with P(user) ∝ exp(score)
    noisy = np.where(cand, score + rng.gumbel(size=len(score)), -np.inf)
    best = np.full(c.n, -np.inf)
    np.maximum.at(best, c.user_account, noisy)
    is_best = cand & (noisy == best[c.user_account])
    pick = np.full(c.n, -1, dtype=np.int64)
    pick[c.user_account[is_best]] = np.flatnonzero(is_best)
    user = np.where(inside, pick, -1)
    return Buyers(user, p_in, ref, _leads(rng, c, inside, ref, domains))


def _leads(rng, c: Company, inside, ref, domains) -> pd.DataFrame:
    """Outside buyers as leads (most of them), and a few non-buyer leads of other accounts."""
    buyer = np.flatnonzero(~inside & (rng.random(c.n) < OUTSIDE_LEAD))
    noise = np.flatnonzero(rng.random(c.n) < NOISE_LEAD)
    acc = np.concatenate([buyer, noise])
    is_buyer = np.arange(len(acc)) < len(buyer)
    lo = np.maximum(c.created_sec[acc], ref[acc] - _LEAD_DAYS * P.DAY)
    sec = lo + (rng.random(len(acc)) * np.maximum(ref[acc] - lo, 1)).astype(np.int64)
    title = np.where(is_buyer,
                     np.array(P.BUYER_TITLES)[rng.integers(0, len(P.BUYER_TITLES), len(acc))],
                     np.array(P.OTHER_TITLES)[rng.integers(0, len(P.OTHER_TITLES), len(acc))])
    first = rng.integers(0, len(_FIRST), len(acc))
    last = rng.integers(0, len(_LAST), len(acc))
    source = rng.choice(len(LEAD_SOURCES), size=len(acc), p=LEAD_SOURCE_P)
    # "lead" in the local part: never a product user's address (those end in the user number)
    email = [f"{_FIRST[f]}.{_LAST[g]}.lead{i}@{domains[a]}"
             for i, (f, g, a) in enumerate(zip(first, last, acc))]
    return pd.DataFrame({"account": acc, "sec": sec, "email": email, "title": title,
                         "source": np.array(LEAD_SOURCES)[source], "is_buyer": is_buyer})
