"""Outcomes from a known hazard of observable drivers, period by period.

At each scheduled ``as_of`` every eligible account (created before ``as_of``,
not yet converted) gets the true probabilities

* ``p_convert = sigmoid(INTERCEPT + sum(effect * transform(feature)))``
* ``p_hand_raise = p_convert * CONVERTER_HAND_RAISE + (1 - p_convert) * q``
  with ``q = sigmoid(INTERCEPT_HAND_RAISE + sum(effect_hand_raise * ...))``

where each feature is computed from the events strictly before ``as_of``,
exactly as ``truth/drivers.csv`` defines it. Conversions and hand-raises are
then drawn inside ``(as_of, as_of + HORIZON_DAYS)``; a hand-raise adds its
event (talk to sales / demo request) and, usually, pricing-page views in the
few days before it (outcome-adjacent, never before ``as_of``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _params as P
from ._company import Company

_K = len(P.EVENT_TYPES)


@dataclass
class Outcomes:
    truth: dict          # column -> array, one row per (eligible account, as_of)
    kind: np.ndarray     # 0 hand-raise, 1 conversion
    account: np.ndarray
    user: np.ndarray
    sec: np.ndarray
    event: np.ndarray    # event index (hand-raise) or -1 (conversion: closed-won)
    amount: np.ndarray
    extra_user: np.ndarray   # events the outcomes add to the log
    extra_kind: np.ndarray
    extra_sec: np.ndarray
    touches: dict | None = None   # the touches' tables and truth (pqlml.simulate._touches)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


class _Log:
    """Account events sorted by day, so any day window is one slice."""

    def __init__(self, c: Company, user, kind, sec, n_days):
        day = (sec // P.DAY).astype(np.int32)
        order = np.argsort(day, kind="stable")
        self.user, self.kind, self.day = user[order], kind[order], day[order]
        self.acc = c.user_account[self.user]
        self.starts = np.searchsorted(self.day, np.arange(n_days + 1))
        self.extra = []                       # (user, kind, day) added by outcomes

    def window(self, lo, hi):
        s = slice(self.starts[max(lo, 0)], self.starts[max(hi, 0)])
        users, kinds = [self.user[s]], [self.kind[s]]
        for u, k, d in self.extra:
            m = (d >= lo) & (d < hi)
            users.append(u[m])
            kinds.append(k[m])
        return np.concatenate(users), np.concatenate(kinds)


def features_at(c: Company, log: _Log, signup, day: int) -> dict:
    """Raw values of every truth signal for all accounts, as of midnight of ``day``."""
    n, n_users = c.n, len(c.user_account)
    out = {}
    for w in (30, 90):
        u, k = log.window(day - w, day)
        counts = np.bincount(c.user_account[u] * _K + k, minlength=n * _K).reshape(n, _K)
        out[w] = counts
        if w == 30:
            seen = np.zeros(n_users, dtype=bool)
            seen[u] = True
            active = np.bincount(c.user_account[seen], minlength=n)
    u_prev, _ = log.window(day - 60, day - 30)
    prev = np.bincount(c.user_account[u_prev], minlength=n)
    ev30 = out[30].sum(axis=1)
    signed = (signup >= 0) & (signup < day * P.DAY)
    buyer = np.bincount(c.user_account, weights=(signed & c.user_buyer), minlength=n) > 0
    raw = {
        "active_users_30d": active,
        "events_velocity_30d": np.log((ev30 + 1) / (prev + 1)),
        "events_30d": ev30,
        "employees": c.employees,
        "industry_software": (c.industry == P.INDUSTRIES.index("software")).astype(int),
        "industry_fintech": (c.industry == P.INDUSTRIES.index("fintech")).astype(int),
        "buyer_title_present": buyer.astype(int),
    }
    u_all, k_all = log.window(0, day)
    ever = np.bincount(c.user_account[u_all] * _K + k_all, minlength=n * _K).reshape(n, _K)
    stage, run = np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool)
    for event in P.ACTIVATION:        # the funnel stage pqlml's activation features must find
        run &= ever[:, P.EVENT_INDEX[event]] >= 1
        stage += run
    raw["activation_stage"] = stage
    for s in P.SIGNALS:
        if s.name not in raw:
            event, window = s.name[len("events_"):].rsplit("_", 1)
            raw[s.name] = out[int(window[:-1])][:, P.EVENT_INDEX[event]]
    return raw


def linear_predictors(raw: dict) -> tuple[np.ndarray, np.ndarray]:
    eta_c = np.full(len(raw["employees"]), P.INTERCEPT)
    eta_h = np.full(len(raw["employees"]), P.INTERCEPT_HAND_RAISE)
    for s in P.SIGNALS:
        x = P.apply_transform(s.transform, raw[s.name])
        eta_c = eta_c + s.effect * x
        eta_h = eta_h + s.effect_hand_raise * x
    return eta_c, eta_h


def simulate_outcomes(rng, c: Company, activity, snapshot_days, n_days, progress=None,
                      world=None) -> Outcomes:
    """Each as_of's truth and the outcomes drawn from it. With a ``world``
    (:class:`pqlml.simulate._touches.TouchWorld`), sales touches accounts and the touches'
    effects are drawn from the world's own stream: ``rng`` makes exactly the draws it makes
    without one, and an account whose conversion no touch changed keeps its outcomes and
    events."""
    account_users = activity.ev_user < len(c.user_account)
    log = _Log(c, activity.ev_user[account_users], activity.ev_kind[account_users],
               activity.ev_sec[account_users], n_days)
    signup = activity.signup_sec
    converted = np.zeros(c.n, dtype=bool)
    truth, rows, extra = [], [], []
    founder = c.user_offset
    for day in snapshot_days:
        raw = features_at(c, log, signup, day)
        eta_c, eta_h = linear_predictors(raw)
        p_c, q = _sigmoid(eta_c), _sigmoid(eta_h)
        p_h = p_c * P.CONVERTER_HAND_RAISE + (1 - p_c) * q
        elig = np.flatnonzero((c.created_sec < day * P.DAY) & ~converted)
        shown = elig if world is None else world.eligible(elig)
        truth.append({"account": shown, "day": np.full(len(shown), day), "p_convert": p_c[shown],
                      "p_hand_raise": p_h[shown], **{k: v[shown] for k, v in raw.items()}})
        t0 = day * P.DAY
        u = rng.random(len(elig))
        conv = elig[u < p_c[elig]]
        buyer_user = _buyer_or_founder(c, signup, t0, founder)
        day_rows, new_extra = period_outcomes(rng, c, signup, conv, np.setdiff1d(elig, conv), q,
                                              t0, buyer_user)
        log.extra.append((new_extra[0], new_extra[1], (new_extra[2] // P.DAY).astype(np.int32)))
        if world is not None:
            day_rows, new_extra = world.step(log, raw, eta_c, q, shown, elig, u, t0, buyer_user,
                                             day_rows, new_extra)
        rows.extend(day_rows)
        extra.append(new_extra)
        converted[conv] = True
        if progress is not None:
            progress()
    cols = [np.concatenate(x) for x in zip(*rows)]
    ex = [np.concatenate(x) for x in zip(*extra)]
    t = {k: np.concatenate([d[k] for d in truth]) for k in truth[0]}
    return Outcomes(t, *cols, *ex, touches=None if world is None else world.record())


def period_outcomes(rng, c: Company, signup, conv, rest, q, t0, buyer_user, conv_lo=None):
    """The hand-raises and conversions of one label window ``(t0, t0 + horizon)``: ``conv``
    convert (after ``conv_lo``, per account, else ``t0``), the others in ``rest`` raise a
    hand with probability ``q``. Returns the outcome rows (hand-raises, conversions) and the
    events they add (user, kind, seconds)."""
    span = P.HORIZON_DAYS * P.DAY - 1
    if conv_lo is None:
        conv_t = t0 + 1 + (rng.random(len(conv)) * span).astype(np.int64)
    else:
        conv_t = conv_lo + 1 + (rng.random(len(conv)) * (t0 + span - conv_lo)).astype(np.int64)
    hr_rest = rest[rng.random(len(rest)) < q[rest]]
    hr_conv_mask = rng.random(len(conv)) < P.CONVERTER_HAND_RAISE
    hr = np.concatenate([hr_rest, conv[hr_conv_mask]])
    hr_hi = np.concatenate([np.full(len(hr_rest), t0 + 1 + span), conv_t[hr_conv_mask]])
    hr_t = t0 + 1 + (rng.random(len(hr)) * (hr_hi - t0 - 1)).astype(np.int64)
    hr_event = np.where(rng.random(len(hr)) < 0.6, P.EVENT_INDEX["talk_to_sales_clicked"],
                        P.EVENT_INDEX["demo_requested"])
    amount = _amounts(rng, c, signup, t0, conv)
    rows = [(np.zeros(len(hr), int), hr, buyer_user[hr], hr_t, hr_event, np.full(len(hr), np.nan)),
            (np.ones(len(conv), int), conv, buyer_user[conv], conv_t, np.full(len(conv), -1),
             amount)]
    return rows, _adjacent_events(rng, hr, buyer_user[hr], hr_t, hr_event, t0)


def _buyer_or_founder(c: Company, signup, t0, founder):
    """Per account: its first buyer-titled user signed up before t0, else the founder."""
    cand = np.flatnonzero(c.user_buyer & (signup >= 0) & (signup < t0))
    user = founder.copy()
    acc, first = np.unique(c.user_account[cand], return_index=True)
    user[acc] = cand[first]
    return user


def _amounts(rng, c: Company, signup, t0, conv):
    """Closed-won amount: seats x price per seat per year x noise."""
    seats = np.bincount(c.user_account, weights=(signup >= 0) & (signup < t0), minlength=c.n)
    price = np.array(P.SEAT_PRICE)[c.segment[conv]]
    noise = rng.lognormal(0.0, 0.3, size=len(conv))
    return np.round(np.maximum(seats[conv], 1) * price * noise, 2)


def _adjacent_events(rng, hr, user, hr_t, hr_event, t0):
    """The hand-raise event itself, and pricing views in the 3 days before it."""
    n_view = np.where(rng.random(len(hr)) < 0.8, 1 + rng.poisson(1.0, size=len(hr)), 0)
    v_user = np.repeat(user, n_view)
    v_hi = np.repeat(hr_t, n_view)
    v_lo = np.maximum(t0 + 1, v_hi - 3 * P.DAY)
    v_t = v_lo + (rng.random(len(v_user)) * (v_hi - v_lo)).astype(np.int64)
    users = np.concatenate([user, v_user]).astype(np.int32)
    kinds = np.concatenate([hr_event, np.full(len(v_user), P.EVENT_INDEX["pricing_page_viewed"])])
    return users, kinds.astype(np.int8), np.concatenate([hr_t, v_t]).astype(np.int64)
