"""Sales touches: who sales calls at each as_of, and what a touch does to conversion.

At every scheduled ``as_of`` sales has a capacity of ``TOUCH_RATE`` of the eligible accounts
(created before ``as_of``, not yet converted). A share ``randomised_share`` of that capacity is
a randomised experiment: a random sample of all eligible accounts, half assigned to arm
``touch`` (touched) and half to ``holdout`` (not touched this month). The rest of the capacity
touches the most active of the other eligible accounts (active users in the last 30 days, then
events: the list a threshold rule gives, as the outbound leads of :mod:`._feedback`). A touch
lands within ``TOUCH_DAYS`` days of ``as_of`` (inside pqlml's default 14-day touch window), by
a rep of :data:`._feedback.REPS`, as an email, a call or a meeting.

A touch adds ``tau`` to the log-odds of converting in ``[as_of, as_of + horizon)``:
``tau = LIFT[segment] * P(buyer outside the product) * fade(p)`` for an account with intent,
``LOW_INTENT_EFFECT`` for one without, where ``p`` is the account's untouched probability of
converting this month and ``fade(p) = 1 / (1 + exp((logit(p) - logit(READY_P)) / READY_SCALE))``:

==========================  =====  ===========================================================
constant                    value  meaning
==========================  =====  ===========================================================
``LIFT`` (smb, mid, ent)    0.2,   clearly positive (about +1.2 on average) where the buyer is
                            2.0,   likely outside the product and the company is mid-market or
                            2.0    larger: the touch reaches a buyer who never saw the product;
                                   near zero (<= +0.05) for a small team, whose buyer is
                                   almost always a user and buys on its own
``READY_P``                 0.08   an account already on its way to buy (untouched chance this
``READY_SCALE``             0.5    month well above 8%) buys with or without the call: the
                                   lift fades, so the likeliest buyers are not those a touch
                                   helps most (the cannibalisation the field warns of)
``LOW_INTENT_EVENTS``       5      an account with fewer events in the last 30 days has low
                                   intent ...
``LOW_INTENT_EFFECT``       -0.3   ... and a touch slightly lowers its odds (it was not
                                   evaluating; the call is noise)
``TOUCH_RATE``              0.05   capacity: 5% of the eligible accounts a month. A 20,000-
                                   account company touches about 400 accounts a month (6,600
                                   touched snapshots in 18 months) and leaves 95% untouched, so
                                   an uplift model has touched and comparable untouched
                                   accounts in every segment
``RANDOMISED_SHARE``        0.4    default experiment share of the capacity: about 100
                                   accounts per arm a month at 20,000 accounts (1,600 per arm
                                   pooled), enough to read an effect of a few probability
                                   points, while 60% of the capacity still goes where the
                                   rule points, as a sales team would insist
``TOUCH_DAYS``              5      touches land in ``[as_of, as_of + 5 days)``
==========================  =====  ===========================================================

``P(buyer outside the product)`` is ``1 -`` the in-product probability of
:mod:`._buyers` evaluated at ``as_of`` from history alone: the segment, whether a senior user
(a buyer title) has signed up, and the admin changes and pricing views of the last 90 days.
The buyer draw itself happens later and plays no part.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _params as P
from ._buyers import in_product_probability
from ._feedback import REPS
from ._outcomes import _sigmoid, period_outcomes

__all__ = ["TouchPolicy", "TouchWorld", "Plan", "effect", "plan_touches", "LIFT", "READY_P",
           "READY_SCALE", "LOW_INTENT_EVENTS", "LOW_INTENT_EFFECT", "TOUCH_RATE",
           "RANDOMISED_SHARE", "TOUCH_DAYS", "KINDS"]

LIFT = (0.2, 2.0, 2.0)
READY_P = 0.08
READY_SCALE = 0.5
LOW_INTENT_EVENTS = 5
LOW_INTENT_EFFECT = -0.3
TOUCH_RATE = 0.05
RANDOMISED_SHARE = 0.4
TOUCH_DAYS = 5
KINDS = ("email", "call", "meeting")
KIND_P = (0.5, 0.35, 0.15)
_ACTIONS = (P.EVENT_INDEX["admin_role_changed"], P.EVENT_INDEX["pricing_page_viewed"])


@dataclass(frozen=True)
class TouchPolicy:
    """How sales touches: its random stream, the experiment share and whether a touch acts
    (``effect=False``: touches happen but change nothing)."""

    rng: np.random.Generator
    randomised_share: float = RANDOMISED_SHARE
    effect: bool = True


@dataclass
class Plan:
    """One as_of's touches, aligned with the eligible accounts it was planned for."""

    touched: np.ndarray      # bool
    randomised: np.ndarray   # bool: in the month's experiment
    arm: np.ndarray          # int8: 0 touch, 1 holdout, -1 not randomised
    at: np.ndarray           # seconds since START (touched rows), else -1
    kind: np.ndarray         # index into KINDS, -1 where untouched
    rep: np.ndarray          # index into REPS, -1 where untouched


def buyer_actions(c, log, day: int) -> np.ndarray:
    """Per account: admin changes and pricing views in ``[day - 90, day)`` (days)."""
    u, k = log.window(day - 90, day)
    return np.bincount(c.user_account[u[np.isin(k, _ACTIONS)]], minlength=c.n)


def effect(c, raw: dict, actions: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """``tau``: what a touch adds to each account's conversion log-odds at this as_of
    (``eta``: the untouched log-odds)."""
    p_out = 1.0 - in_product_probability(c.segment, raw["buyer_title_present"] > 0, actions)
    fade = _sigmoid(-(eta - np.log(READY_P / (1 - READY_P))) / READY_SCALE)
    low = raw["events_30d"] < LOW_INTENT_EVENTS
    return np.where(low, LOW_INTENT_EFFECT, np.array(LIFT)[c.segment] * p_out * fade)


def plan_touches(policy: TouchPolicy, elig: np.ndarray, raw: dict, t0: int) -> Plan:
    """Who is touched among ``elig`` (sorted account numbers) at ``t0`` (seconds)."""
    rng, n = policy.rng, len(elig)
    capacity = min(n, int(round(TOUCH_RATE * n)))
    n_random = min(capacity, int(round(policy.randomised_share * capacity)))
    sample = rng.choice(n, size=n_random, replace=False) if n_random else np.zeros(0, int)
    arm = np.full(n, -1, dtype=np.int8)
    arm[sample] = np.arange(n_random) >= (n_random + 1) // 2     # first half touch, then holdout
    order = np.lexsort((-raw["events_30d"][elig], -raw["active_users_30d"][elig]))
    order = order[arm[order] < 0][:capacity - n_random]
    touched = arm == 0
    touched[order] = True
    k = int(touched.sum())
    at, kind, rep = np.full(n, -1, np.int64), np.full(n, -1, np.int8), np.full(n, -1, np.int8)
    at[touched] = t0 + (rng.random(k) * TOUCH_DAYS * P.DAY).astype(np.int64)
    kind[touched] = rng.choice(len(KINDS), size=k, p=KIND_P)
    rep[touched] = rng.integers(0, len(REPS), size=k)
    return Plan(touched, arm >= 0, arm, at, kind, rep)


class TouchWorld:
    """The company as touched: who sales touches at each as_of and how that changes outcomes.

    Common random numbers: a touched account converts in the label window when the *same*
    uniform draw that decides its untouched conversion is below ``p_convert_touch``. An
    account whose conversion that changes (it converts thanks to the touch, or the touch
    talked it out of converting) *diverges*: from then on its outcomes and the events they add
    are drawn from the policy's stream (a touch-caused conversion after the touch), while the
    company's stream keeps making the draws of the untouched company, so every other account's
    outcomes and events are exactly those of the untouched company. The features of an account
    saved from converting include its own later hand-raises; the untouched company never reads
    them (it had converted).

    :func:`pqlml.simulate._outcomes.simulate_outcomes` calls :meth:`eligible` and
    :meth:`step` at each as_of, then :meth:`record`.
    """

    def __init__(self, policy: TouchPolicy, c, signup):
        self.policy, self.c, self.signup = policy, c, signup
        self.diverged = np.zeros(c.n, dtype=bool)   # conversion changed by a touch (ever)
        self.alive = np.zeros(c.n, dtype=bool)      # ... and not converted though the base did
        self._truth, self._touches, self._holdouts = [], [], []

    def eligible(self, elig: np.ndarray) -> np.ndarray:
        """The accounts eligible as touched, from those eligible untouched (sorted)."""
        return np.union1d(elig[~self.diverged[elig]], np.flatnonzero(self.alive))

    def step(self, log, raw, eta_c, q, shown, elig, u, t0, buyer_user, rows, extra):
        """Touch ``shown`` (eligible accounts) at ``t0``; return the window's outcome rows
        and added events as touched, from the untouched ones (``rows``, ``extra``; ``u`` the
        untouched draws of ``elig``). Edits ``log.extra[-1]`` (the window's added events) to
        the events touched features see."""
        c, rng = self.c, self.policy.rng
        plan = plan_touches(self.policy, shown, raw, t0)
        tau = effect(c, raw, buyer_actions(c, log, int(t0 // P.DAY)), eta_c)[shown]
        tau = tau if self.policy.effect else np.zeros(len(shown))
        p_no, p_yes = _sigmoid(eta_c[shown]), _sigmoid(eta_c[shown] + tau)
        base = np.isin(shown, elig, assume_unique=True)   # else saved from converting earlier
        draw = np.empty(len(shown))
        draw[base] = u[np.searchsorted(elig, shown[base])]
        draw[~base] = rng.random(int((~base).sum()))
        converts = draw < np.where(plan.touched, p_yes, p_no)
        flip = base & (converts != (draw < p_no))
        own = flip | ~base                     # accounts whose window the policy's stream draws
        self.diverged[shown[flip]] = True
        self.alive[shown[flip & ~converts]] = True
        self.alive[shown[~base & converts]] = False
        acc, conv = shown[own], converts[own]
        lo = np.where(plan.touched[own], plan.at[own], t0)[conv]
        own_rows, own_extra = period_outcomes(rng, c, self.signup, acc[conv], acc[~conv], q, t0,
                                              buyer_user, conv_lo=lo)
        out_rows = [tuple(col[~self.diverged[r[1]]] for col in r) for r in rows] + own_rows
        mine = ~self.diverged[c.user_account[extra[0]]]
        out_extra = tuple(np.concatenate([a[mine], b]) for a, b in zip(extra, own_extra))
        # what touched features see: the untouched company's added events but those of the
        # accounts saved from converting, whose own events (not those of an account converted by
        # a touch: the untouched company still reads its features) take their place
        saved = self.alive[c.user_account[extra[0]]]
        helped = (flip & converts)[own][np.searchsorted(acc, c.user_account[own_extra[0]])]
        u_, k_, s_ = (np.concatenate([a[~saved], b[~helped]]) for a, b in zip(extra, own_extra))
        log.extra[-1] = (u_, k_, (s_ // P.DAY).astype(np.int32))
        self._record(plan, shown, t0, p_yes, p_no)
        return out_rows, out_extra

    def _record(self, plan: Plan, shown, t0, p_yes, p_no) -> None:
        day = np.full(len(shown), t0 // P.DAY, dtype=np.int64)
        self._truth.append((shown, day, p_yes, p_no, plan.touched, plan.randomised, plan.arm))
        t = plan.touched
        self._touches.append((shown[t], plan.at[t], plan.kind[t], plan.rep[t]))
        r = plan.randomised
        self._holdouts.append((shown[r], day[r], plan.arm[r]))

    def record(self) -> dict:
        """The touches' tables and truth, accounts numbered within the chunk: ``truth``
        (account, day, p_convert_touch, p_convert_no_touch, touched, randomised, arm),
        ``touches`` (account, sec, kind, rep), ``holdouts`` (account, day, arm)."""
        def cat(parts, names):
            return {n: np.concatenate(col) for n, col in zip(names, zip(*parts))}
        return {"truth": cat(self._truth, ("account", "day", "p_convert_touch",
                                           "p_convert_no_touch", "touched", "randomised", "arm")),
                "touches": cat(self._touches, ("account", "sec", "kind", "rep")),
                "holdouts": cat(self._holdouts, ("account", "day", "arm"))}
