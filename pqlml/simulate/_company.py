"""Accounts and their would-be users: firmographics, team size, titles."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _params as P

_WORDS = ("north", "blue", "peak", "river", "cedar", "bright", "iron", "swift", "lumen",
          "atlas", "nova", "harbor", "summit", "quartz", "ember", "delta", "orbit",
          "pixel", "maple", "vertex", "cobalt", "solar", "zen", "forge")
_TLDS = ("com", "io", "co", "de", "co.uk", "ai", "net", "fr")


@dataclass
class Company:
    """Arrays describing accounts (length n) and potential users (length n_users).

    Users of account ``a`` occupy ``user_offset[a] : user_offset[a] + team_size[a]``
    in join order; how many of them join, and when, is decided by the activity loop.
    """

    created_day: np.ndarray
    created_sec: np.ndarray   # seconds since START
    segment: np.ndarray       # index into P.SEGMENTS
    employees: np.ndarray
    industry: np.ndarray      # index into P.INDUSTRIES
    country: np.ndarray
    profile: np.ndarray       # index into P.PROFILE_MIX rows
    baseline: np.ndarray      # latent baseline engagement
    team_size: np.ndarray
    user_offset: np.ndarray
    user_account: np.ndarray
    user_buyer: np.ndarray    # bool: buyer title
    user_title: np.ndarray    # index into buyer/other titles
    user_engagement: np.ndarray

    @property
    def n(self) -> int:
        return len(self.created_day)


def draw_company(rng: np.random.Generator, n: int, n_days: int) -> Company:
    """Draw ``n`` accounts created uniformly over the first ``n_days - 45`` days."""
    created_sec = rng.integers(0, (n_days - 45) * P.DAY, size=n)
    segment = rng.choice(len(P.SEGMENTS), size=n, p=P.SEGMENT_P)
    lo = np.log(np.array([r[0] for r in P.EMPLOYEE_RANGE]))[segment]
    hi = np.log(np.array([r[1] for r in P.EMPLOYEE_RANGE]))[segment]
    employees = np.exp(rng.uniform(lo, hi)).astype(np.int64)
    industry = rng.choice(len(P.INDUSTRIES), size=n, p=P.INDUSTRY_P)
    country = rng.choice(len(P.COUNTRIES), size=n, p=P.COUNTRY_P)
    profile = rng.choice(len(P.PROFILE_P), size=n, p=P.PROFILE_P)
    baseline = rng.lognormal(0.0, 0.5, size=n)
    team_size = 1 + rng.poisson(np.array(P.TEAM_EXTRA)[segment])
    user_offset = np.concatenate([[0], np.cumsum(team_size)[:-1]])
    user_account = np.repeat(np.arange(n), team_size)
    n_users = int(team_size.sum())
    user_buyer = rng.random(n_users) < np.array(P.BUYER_TITLE_P)[segment][user_account]
    user_title = rng.integers(0, len(P.BUYER_TITLES), size=n_users)
    user_engagement = rng.lognormal(0.0, 0.6, size=n_users)
    return Company(created_sec // P.DAY, created_sec, segment, employees, industry, country,
                   profile, baseline, team_size, user_offset, user_account, user_buyer,
                   user_title, user_engagement)


def domains(n: int, rng: np.random.Generator, start: int = 0) -> list[str]:
    """Unique, readable company domains such as ``cedarorbit-7k2.io``, for accounts
    ``start`` to ``start + n - 1`` (the suffix is the account number in base 36)."""
    a = rng.integers(0, len(_WORDS), size=n)
    b = rng.integers(0, len(_WORDS), size=n)
    tld = rng.integers(0, len(_TLDS), size=n)
    return [f"{_WORDS[x]}{_WORDS[y]}-{np.base_repr(i, 36).lower()}.{_TLDS[t]}"
            for i, (x, y, t) in enumerate(zip(a, b, tld), start)]
