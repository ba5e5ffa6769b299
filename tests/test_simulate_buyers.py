"""The simulator's buyers (:mod:`pqlml.simulate._buyers`): drawn after everything else, so a
seed's company is what it was before buyers existed, and consistent with the outcomes and
leads they write."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest

from pqlml.simulate import simulate

# Digests of a 300-account, 6-month company (seed 5) simulated by main before buyers existed
# (commit 9ff12de): the tables must not move; outcomes may change only their user_id.
BEFORE_BUYERS = {"accounts.parquet": "e3af30234a24cbe2", "users.parquet": "45577874148d4153",
                 "events.parquet": "481f633b5734083d", "dispositions.parquet": "b04ab1e7a2222b51",
                 "truth/snapshots.parquet": "0711029c87943faf",
                 "outcomes.parquet": "6275296697723ed2",
                 "enrichment.csv": "b717dce94a30bd36", "enterprise_domains.csv": "1230cda40eb790e8"}


def _digest(frame: pd.DataFrame) -> str:
    return hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).values.tobytes()
                          ).hexdigest()[:16]


@pytest.fixture(scope="module")
def company(tmp_path_factory):
    out = tmp_path_factory.mktemp("buyers_sim")
    # touches that act on nothing and no holdouts: the company before touches existed
    # (test_simulate_touches checks what acting touches change)
    simulate(n_accounts=300, seed=5, out=out, months=6, touch_effect=False, randomised_share=0)
    return out


@pytest.fixture(scope="module")
def bigger(tmp_path_factory):
    out = tmp_path_factory.mktemp("buyers_sim_3k")
    simulate(n_accounts=3_000, seed=11, out=out, months=12)
    return out


def test_a_seeds_company_is_unchanged_but_for_the_outcomes_users(company):
    got = {}
    for name in BEFORE_BUYERS:
        if name.endswith(".csv"):
            got[name] = hashlib.sha256((company / name).read_bytes()).hexdigest()[:16]
        else:
            frame = pd.read_parquet(company / name)
            got[name] = _digest(frame.drop(columns="user_id") if name == "outcomes.parquet"
                                else frame)
    assert got == BEFORE_BUYERS


def test_outcomes_carry_the_buyer_or_no_user(bigger):
    o = pd.read_parquet(bigger / "outcomes.parquet")
    truth = pd.read_parquet(bigger / "truth" / "buyers.parquet")
    users = pd.read_parquet(bigger / "users.parquet")
    assert len(truth) == 3_000 and truth.account_id.is_unique
    assert (truth.buyer_user_id.notna() == truth.buyer_in_product).all()
    m = o.merge(truth, on="account_id", validate="many_to_one")
    inside = m.buyer_in_product
    assert (m.user_id[inside] == m.buyer_user_id[inside]).all()
    assert m.user_id[~inside].isna().all() and 0.1 < (~inside).mean() < 0.6
    # the buyer is a member of the account who signed up before the outcome
    b = m[inside].merge(users[["user_id", "account_id", "signup_at"]], on="user_id",
                        suffixes=("", "_user"))
    assert len(b) == inside.sum()
    assert (b.account_id == b.account_id_user).all() and (b.signup_at < b.ts).all()


def test_small_companies_buy_from_inside_large_ones_from_outside(bigger):
    truth = pd.read_parquet(bigger / "truth" / "buyers.parquet")
    seg = pd.read_parquet(bigger / "accounts.parquet")[["account_id", "segment"]]
    share = truth.merge(seg, on="account_id").groupby("segment").buyer_in_product.mean()
    assert share["smb"] > 0.75 > share["mid_market"] > share["enterprise"]
    assert share["enterprise"] < 0.35


def test_outside_buyers_show_up_as_leads_from_the_domain_never_as_users(bigger):
    leads = pd.read_parquet(bigger / "leads.parquet")
    truth = pd.read_parquet(bigger / "truth" / "buyers.parquet")
    accounts = pd.read_parquet(bigger / "accounts.parquet")
    users = pd.read_parquet(bigger / "users.parquet")
    assert not set(leads.email.str.lower()) & set(users.email.str.lower())
    j = leads.merge(accounts[["account_id", "domain"]], on="account_id")
    assert (j.email.str.rsplit("@", n=1).str[1] == j.domain).all()
    outside = set(truth.account_id[~truth.buyer_in_product])
    with_lead = set(leads.account_id)
    assert 0.7 < len(outside & with_lead) / len(outside) < 0.9       # OUTSIDE_LEAD = 0.8
    # the outside buyer's lead comes before the account's reference time (its first outcome)
    first = j.merge(truth, on="account_id")
    buyer_leads = first[~first.buyer_in_product]
    assert (buyer_leads.groupby("account_id").ts.min()
            < buyer_leads.groupby("account_id").reference_at.first()).all()
