"""Product activity week by week, driven by a latent, time-varying buying intent.

Each account has a baseline engagement and, now and then, a *buying episode*
(weeks in which someone is evaluating a purchase). Episodes raise every
intent-related behaviour: teammates join (velocity, breadth), users are more
active, and evaluation pages (terms, privacy, SOC 2), admin changes and paid
trials appear. Webinars track company size only; the help centre tracks
activity only; neither moves the outcome (the truth says so).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import _params as P
from ._company import Company

_EP_START = 0.03      # weekly chance that a buying episode starts
_EP_WEEKS = (3, 5)    # episode length: fixed part + Poisson mean
_JOIN = 0.05          # weekly join rate per missing teammate
_ACTIVE = 0.32        # weekly activity probability of a typical user
_EVENTS = 1.1         # core events per active user-week
_HELP = 0.18          # chance an active user opens the help centre in a week
_WEBINAR = 0.006      # weekly webinar rate per log10(employees)^2


@dataclass
class _Chunks:
    user: list = field(default_factory=list)
    kind: list = field(default_factory=list)
    sec: list = field(default_factory=list)

    def add(self, user, kind, sec):
        self.user.append(np.asarray(user, dtype=np.int32))
        self.kind.append(np.broadcast_to(np.asarray(kind, dtype=np.int8), np.shape(user)).copy())
        self.sec.append(np.asarray(sec, dtype=np.int64))

    def arrays(self):
        return (np.concatenate(self.user), np.concatenate(self.kind), np.concatenate(self.sec))


@dataclass
class Activity:
    """Events as parallel arrays, plus each potential user's sign-up (or -1)."""

    ev_user: np.ndarray
    ev_kind: np.ndarray
    ev_sec: np.ndarray
    signup_sec: np.ndarray


def _times(rng, lo, hi):
    """Uniform integer seconds in [lo, hi)."""
    return lo + (rng.random(len(lo)) * (hi - lo)).astype(np.int64)


def _pick_user(rng, c: Company, accounts, n_joined):
    """A uniformly chosen joined user of each account."""
    k = (rng.random(len(accounts)) * n_joined[accounts]).astype(np.int64)
    return c.user_offset[accounts] + k


def simulate_activity(rng, c: Company, n_weeks: int, progress=None) -> Activity:
    n_joined = np.zeros(c.n, dtype=np.int64)
    ep_left = np.zeros(c.n, dtype=np.int64)
    signup = np.full(len(c.user_account), -1, dtype=np.int64)
    joined = np.zeros(len(c.user_account), dtype=bool)
    mix_cdf = np.cumsum(P.PROFILE_MIX, axis=1)
    out = _Chunks()
    for w in range(n_weeks):
        ws, we = w * 7 * P.DAY, (w + 1) * 7 * P.DAY
        new = np.flatnonzero((c.created_sec >= ws) & (c.created_sec < we))
        n_joined[new] = 1
        signup[c.user_offset[new]] = c.created_sec[new]
        joined[c.user_offset[new]] = True
        alive = np.flatnonzero(c.created_sec < we)
        # buying episodes
        start = alive[(ep_left[alive] == 0) & (rng.random(len(alive)) < _EP_START)]
        ep_left[start] = _EP_WEEKS[0] + rng.poisson(_EP_WEEKS[1], size=len(start))
        ep = (ep_left > 0).astype(float)
        lo_acc = np.maximum(ws, c.created_sec)
        # teammates join (velocity); each join follows an accepted invite
        missing = c.team_size[alive] - n_joined[alive]
        lam = _JOIN * missing * (1 + 2.5 * ep[alive]) * np.sqrt(c.baseline[alive])
        k_new = np.minimum(rng.poisson(lam), missing)
        grow = alive[k_new > 0]
        k_new = k_new[k_new > 0]
        inviter = _pick_user(rng, c, grow, n_joined)
        inv_t = _times(rng, np.maximum(lo_acc[grow], signup[inviter]), np.full(len(grow), we))
        new_users = np.repeat(c.user_offset[grow] + n_joined[grow], k_new) + _ranks(k_new)
        signup[new_users] = _times(rng, np.repeat(inv_t, k_new), np.full(len(new_users), we))
        joined[new_users] = True
        out.add(np.repeat(inviter, k_new), P.EVENT_INDEX["invite_sent"],
                np.minimum(np.repeat(inv_t, k_new), signup[new_users]))
        n_joined[grow] += k_new
        _account_behaviour(rng, c, alive, ep, n_joined, signup, lo_acc, we, out)
        _user_activity(rng, c, joined, ep, signup, ws, we, mix_cdf, out)
        ep_left[ep_left > 0] -= 1
        if progress is not None:
            progress()
    ev_user, ev_kind, ev_sec = out.arrays()
    return Activity(ev_user, ev_kind, ev_sec, signup)


def _ranks(k):
    """0, 1, ..., k_i - 1 for each i, concatenated."""
    ends = np.cumsum(k)
    return np.arange(ends[-1] if len(ends) else 0) - np.repeat(ends - k, k)


def _account_behaviour(rng, c, alive, ep, n_joined, signup, lo_acc, we, out):
    seg = c.segment[alive]
    for name, base, extra in P.BEHAVIOUR_EVENTS:
        rate = base + extra * ep[alive]
        if name == "soc2_report_downloaded":
            rate = rate * np.array(P.SOC2_SEGMENT)[seg]
        elif name == "phone_number_purchased":
            rate = np.where(c.profile[alive] == 1, 0.012, 0.0)
        _emit(rng, c, alive, rng.poisson(rate), P.EVENT_INDEX[name], n_joined, signup, lo_acc, we, out)
    # a few more teammates are invited than join
    _emit(rng, c, alive, rng.poisson(0.03 + 0.3 * ep[alive]), P.EVENT_INDEX["invite_sent"],
          n_joined, signup, lo_acc, we, out)
    webinar = _WEBINAR * np.log10(np.maximum(c.employees[alive], 1)) ** 2
    _emit(rng, c, alive, rng.poisson(webinar), P.EVENT_INDEX["webinar_attended"],
          n_joined, signup, lo_acc, we, out)


def _emit(rng, c, alive, counts, kind, n_joined, signup, lo_acc, we, out):
    acc = np.repeat(alive, counts)
    if len(acc) == 0:
        return
    user = _pick_user(rng, c, acc, n_joined)
    out.add(user, kind, _times(rng, np.maximum(lo_acc[acc], signup[user]), np.full(len(acc), we)))


def _user_activity(rng, c, joined, ep, signup, ws, we, mix_cdf, out):
    users = np.flatnonzero(joined & (signup < we))
    acc = c.user_account[users]
    eng = c.user_engagement[users]
    p_act = np.clip(_ACTIVE * c.baseline[acc] ** 0.4 * eng ** 0.3 * (1 + 0.8 * ep[acc]), 0, 0.95)
    active = users[rng.random(len(users)) < p_act]
    acc = c.user_account[active]
    lam = _EVENTS * c.user_engagement[active] * np.sqrt(c.baseline[acc]) * (1 + 0.7 * ep[acc])
    k = 1 + rng.poisson(lam)                     # an active user does at least one thing
    ev_user = np.repeat(active, k)
    cdf = mix_cdf[c.profile[c.user_account[ev_user]]]
    kind = (rng.random(len(ev_user))[:, None] > cdf[:, :-1]).sum(axis=1)
    lo = np.maximum(ws, signup[ev_user])
    out.add(ev_user, kind, _times(rng, lo, np.full(len(ev_user), we)))
    helpers = active[rng.random(len(active)) < _HELP]
    out.add(helpers, P.EVENT_INDEX["help_center_viewed"],
            _times(rng, np.maximum(ws, signup[helpers]), np.full(len(helpers), we)))


def simulate_free_mail(rng, n_free: int, n_days: int, first_user: int) -> tuple:
    """Solo sign-ups with free-mail addresses: a few weeks of light use, no account.

    Returns (signup_sec, ev_user, ev_kind, ev_sec) with user ids from ``first_user``.
    """
    signup = rng.integers(0, (n_days - 14) * P.DAY, size=n_free)
    weeks = rng.geometric(0.35, size=n_free)
    days_left = (n_days * P.DAY - signup) // (7 * P.DAY)
    weeks = np.maximum(np.minimum(weeks, days_left), 1)
    uw = np.repeat(np.arange(n_free), weeks)
    wk = _ranks(weeks)
    keep = rng.random(len(uw)) < 0.6
    uw, wk = uw[keep], wk[keep]
    k = 1 + rng.poisson(2.0, size=len(uw))
    ev = np.repeat(uw, k)
    lo = signup[ev] + np.repeat(wk, k) * 7 * P.DAY
    sec = np.minimum(_times(rng, lo, lo + 7 * P.DAY), n_days * P.DAY - 1)
    cdf = np.cumsum(P.PROFILE_MIX[0])
    kind = (rng.random(len(ev))[:, None] > cdf[:-1]).sum(axis=1).astype(np.int8)
    pricing = rng.random(len(ev)) < 0.03
    kind[pricing] = P.EVENT_INDEX["pricing_page_viewed"]
    return signup, (ev + first_user).astype(np.int32), kind, sec
