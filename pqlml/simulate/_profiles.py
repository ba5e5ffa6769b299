"""What people say at sign-up and what an enrichment vendor knows, drawn from the truth.

All of it comes from its own random stream, so the events, users and outcomes of a
seed stay what they were before these files existed.

* **Sign-up answers** (columns of ``users.parquet``): ``company_size`` is the true
  employee bucket, one bucket off for 15% of people, skipped by 25%; ``seniority`` and
  ``department`` follow the job title; ``use_case`` names the account's true usage
  profile for 80% of the answers. Free-mail sign-ups mostly say "personal".
* **Enrichment** (``enrichment.csv``, keyed by domain): covers 65% / 80% / 90% of smb /
  mid-market / enterprise domains; employees with multiplicative noise, industry
  right 92% of the time, funding and revenue often blank; a few rows for domains that
  never signed up, and some domains written ``WWW.Name.io``.
* **Enterprise list** (``enterprise_domains.csv``): 70% of the enterprise accounts'
  domains, plus a few large companies that never signed up.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import _params as P
from ._company import Company

SIZE_BUCKETS = ((1, "1-10"), (11, "11-50"), (51, "51-200"), (201, "201-1000"),
                (1001, "1001-5000"), (5001, "5000+"))
USE_CASES = ("project management", "developer platform", "team chat", "email campaigns")
COVERAGE = (0.65, 0.80, 0.90)
_EXEC = ("CTO", "CEO", "Founder", "COO")
_DEPARTMENT = {"Engineering": "engineering", "Operations": "operations", "Product": "product",
               "Data": "data", "Marketing": "marketing", "CTO": "engineering", "CEO": "executive",
               "Founder": "executive", "COO": "operations", "Software Engineer": "engineering",
               "Product Manager": "product", "Designer": "design", "Data Analyst": "data",
               "Marketing Manager": "marketing", "Customer Success Manager": "customer success",
               "Operations Associate": "operations", "Project Manager": "operations",
               "Sales Representative": "sales", "Intern": "other"}


def _bucket(employees: np.ndarray) -> np.ndarray:
    lows = np.array([lo for lo, _ in SIZE_BUCKETS])
    return np.searchsorted(lows, employees, side="right") - 1


def _skip(rng, values: np.ndarray, share: float) -> np.ndarray:
    out = values.astype(object)
    out[rng.random(len(out)) < share] = None
    return out


def _department(title: str) -> str:
    for key, dep in _DEPARTMENT.items():
        if title == key or title.endswith(key):
            return dep
    return "other"


def signup_answers(rng, c: Company, joined: np.ndarray, titles: np.ndarray,
                   n_free: int) -> dict[str, np.ndarray]:
    """Answers per user, in ``users.parquet`` order (joined account users, then free mail)."""
    acc = c.user_account[joined]
    b = _bucket(c.employees[acc])
    b = np.clip(b + np.where(rng.random(len(b)) < 0.15, rng.choice([-1, 1], len(b)), 0),
                0, len(SIZE_BUCKETS) - 1)
    names = np.array([n for _, n in SIZE_BUCKETS], dtype=object)
    size = np.concatenate([names[b], np.where(rng.random(n_free) < 0.7, "1-10", "11-50")])
    buyer = c.user_buyer[joined]
    seniority = np.where(buyer, np.where(np.isin(titles, _EXEC), "executive", "director"),
                         np.where(np.char.find(titles.astype(str), "Manager") >= 0, "manager",
                                  "individual contributor"))
    seniority = np.concatenate([seniority, np.full(n_free, "individual contributor")])
    department = np.array([_department(t) for t in titles] + ["other"] * n_free, dtype=object)
    true_use = np.array(USE_CASES, dtype=object)[c.profile[acc]]
    wrong = rng.random(len(acc)) < 0.2
    true_use[wrong] = np.array(USE_CASES, dtype=object)[rng.integers(0, len(USE_CASES), wrong.sum())]
    free_use = np.where(rng.random(n_free) < 0.6, "personal",
                        np.array(USE_CASES, dtype=object)[rng.integers(0, len(USE_CASES), n_free)])
    return {"company_size": _skip(rng, size, 0.25),
            "department": _skip(rng, department, 0.2),
            "seniority": _skip(rng, seniority, 0.1),
            "use_case": _skip(rng, np.concatenate([true_use, free_use]), 0.15)}


def enrichment(rng, c: Company, domains: list[str], first_account: int = 0) -> pd.DataFrame:
    """The rows of ``enrichment.csv`` for accounts ``first_account`` onwards (a chunk)."""
    n = c.n
    covered = rng.random(n) < np.array(COVERAGE)[c.segment]
    idx = np.flatnonzero(covered)
    industry = c.industry[idx].copy()
    wrong = rng.random(len(idx)) < 0.08
    industry[wrong] = rng.integers(0, len(P.INDUSTRIES), wrong.sum())
    employees = np.round(c.employees[idx] * rng.lognormal(0.0, 0.3, len(idx))).astype(float)
    employees[rng.random(len(idx)) < 0.1] = np.nan
    funding = np.round(rng.lognormal(np.log(2e6) + 0.6 * np.log10(c.employees[idx]), 1.0), -3)
    funding[rng.random(len(idx)) < 0.5] = np.nan
    revenue = np.round(c.employees[idx] * rng.lognormal(np.log(120_000), 0.5, len(idx)), -3)
    revenue[rng.random(len(idx)) < 0.3] = np.nan
    dom = np.array(domains, dtype=object)[idx]
    shout = rng.random(len(idx)) < 0.05
    dom[shout] = ["WWW." + d.title() for d in dom[shout]]
    n_extra = max(1, n // 20)
    extra = pd.DataFrame({
        "domain": [f"nevercame-{first_account + i}.com" for i in range(n_extra)],
        "industry": np.array(P.INDUSTRIES)[rng.integers(0, len(P.INDUSTRIES), n_extra)],
        "employees": rng.integers(5, 5_000, n_extra).astype(float),
        "country": np.array(P.COUNTRIES)[rng.integers(0, len(P.COUNTRIES), n_extra)],
        "funding_usd": np.nan, "revenue_usd": np.nan})
    table = pd.DataFrame({"domain": dom, "industry": np.array(P.INDUSTRIES)[industry],
                          "employees": employees, "country": np.array(P.COUNTRIES)[c.country[idx]],
                          "funding_usd": funding, "revenue_usd": revenue})
    table = pd.concat([table, extra], ignore_index=True)
    table = table.sample(frac=1.0, random_state=int(rng.integers(0, 2**31))).reset_index(drop=True)
    table["employees"] = table.employees.astype("Int64")
    return table


def enterprise_list(rng, c: Company, domains: list[str], first_account: int = 0) -> pd.DataFrame:
    """The rows of ``enterprise_domains.csv`` (a ``domain`` column) for a chunk of accounts;
    the first chunk adds the large companies that never signed up."""
    listed = np.flatnonzero((c.segment == P.SEGMENTS.index("enterprise")) & (rng.random(c.n) < 0.7))
    never = [f"bigcorp-{i}.com" for i in range(5)] if first_account == 0 else []
    return pd.DataFrame({"domain": [domains[i] for i in listed] + never})
