"""Who to call (:mod:`pqlml.buyers`): the buyer model ranks a hand-built account's known
buyer first, never names a free-mail user, and, forward in time on a simulated company,
beats both baselines with a calibrated ``buyer_in_product`` (the truth:
``truth/buyers.parquet``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pqlml.buyers import (BuyerModel, buyer_examples, candidates, evaluate_buyers, rank_by,
                          signal_events, title_score)
from pqlml.cache import CACHE_FOLDER
from pqlml.cli import main
from pqlml.project import open_project
from pqlml.simulate import simulate, snapshot_dates

HAND = "a999999"
PEOPLE = {  # user: (email, title, [(event, count)] in the 30 days before as_of)
    "u9000001": ("vp.eng@handbuilt.io", "VP Engineering",
                 [("admin_role_changed", 2), ("pricing_page_viewed", 2), ("task_created", 6)]),
    "u9000002": ("dev@handbuilt.io", "Software Engineer", [("task_created", 60)]),
    "u9000003": ("designer@handbuilt.io", "Designer",
                 [("task_created", 15), ("invite_sent", 1)]),
    # a free-mail user in the account, more buyer-like than anyone: never the contact
    "u9000004": ("boss.person@gmail.com", "CEO",
                 [("admin_role_changed", 6), ("pricing_page_viewed", 6), ("task_created", 80)]),
}


@pytest.fixture(scope="module")
def company(tmp_path_factory, shared_company):
    """A simulated company plus one hand-built account (:data:`PEOPLE`): a copy of the
    session's shared 1,500-account company (its data only, not its feature cache)."""
    root = tmp_path_factory.mktemp("buyers")
    out = root / "hand"
    shutil.copytree(shared_company(n_accounts=1_500, seed=4, months=12), out,
                    ignore=shutil.ignore_patterns(CACHE_FOLDER, "mlflow.db*"))
    as_of = pd.Timestamp(snapshot_dates(12)[-1], tz="UTC")
    created = as_of - pd.Timedelta(days=120)
    accounts = pd.read_parquet(out / "accounts.parquet")
    accounts = pd.concat([accounts, pd.DataFrame({
        "account_id": [HAND], "domain": ["handbuilt.io"], "employees": [150],
        "industry": ["software"], "country": ["US"], "created_at": [created],
        "segment": ["smb"]})], ignore_index=True)
    users = pd.read_parquet(out / "users.parquet")
    users = pd.concat([users, pd.DataFrame({
        "user_id": list(PEOPLE), "email": [p[0] for p in PEOPLE.values()],
        "title": [p[1] for p in PEOPLE.values()],
        "signup_at": [created + pd.Timedelta(days=i) for i in range(len(PEOPLE))],
        "account_id": HAND})], ignore_index=True)
    events = pd.read_parquet(out / "events.parquet")
    rows = [(u, e, as_of - pd.Timedelta(days=1 + k % 25, hours=k % 7))
            for u, (_, _, acts) in PEOPLE.items() for e, n in acts for k in range(n)]
    new = pd.DataFrame(rows, columns=["user_id", "event", "ts"]).assign(account_id=HAND)
    new["event_id"] = np.arange(len(new)) + events.event_id.max() + 1
    events = pd.concat([events.astype({c: str for c in ("user_id", "event")}), new],
                       ignore_index=True).sort_values("ts", kind="stable")
    for name, frame in (("accounts", accounts), ("users", users), ("events", events)):
        frame.to_parquet(out / f"{name}.parquet", index=False)
    return out / "pqlml.toml", as_of


@pytest.fixture(scope="module")
def project(company):
    return open_project(company[0], cache=False)


def test_buyer_events_are_found_by_name():
    found = signal_events(["Admin Role Changed".lower().replace(" ", "_"), "billing_viewed",
                           "plan_upgraded", "view_pricing", "sso_enabled", "invite_sent",
                           "terms_page_viewed", "dpa_signed", "task_created", "talk_to_sales"],
                          exclude=("talk_to_sales",))
    assert found == {"admin": ("admin_role_changed", "sso_enabled"),
                     "invites": ("invite_sent",),
                     "pricing": ("billing_viewed", "plan_upgraded", "view_pricing"),
                     "legal_security": ("terms_page_viewed", "dpa_signed")}


def test_the_known_buyer_ranks_first_and_free_mail_is_never_the_contact(project, company):
    _, as_of = company
    h = pd.Timedelta(days=project.config.labels.horizon_days)
    past = [d for d in project.dates() if pd.Timestamp(d, tz="UTC") + h <= as_of]
    ex = buyer_examples(project, past)
    X = candidates(project, ex).merge(ex, on=["account_id", "as_of"])
    model = BuyerModel().fit(X, (X.user_id == X.buyer_user_id).fillna(False).astype(int))
    hand = candidates(project, pd.DataFrame({"account_id": [HAND], "as_of": [as_of]}))
    assert set(hand.user_id) == {"u9000001", "u9000002", "u9000003"}    # no free mail
    ranked = model.rank(hand).sort_values("rank_in_account")
    assert ranked.user_id.tolist()[0] == "u9000001"
    assert ranked.p_user_given_inside.sum() == pytest.approx(1.0)
    # the signals read from the hand-built events, not invented
    vp = hand.set_index("user_id").loc["u9000001"]
    assert (vp.title_rank, vp.admin_90d, vp.pricing_90d) == (3, 2, 2)
    assert hand.set_index("user_id").activity_share.sum() == pytest.approx(1.0)
    # the baselines pick the others: the title-only one agrees here, the most active does not
    assert hand.user_id[rank_by(hand, title_score(hand)) == 1].item() == "u9000001"
    assert hand.user_id[rank_by(hand, hand.events_30d) == 1].item() == "u9000002"


def test_examples_are_the_first_outcome_of_each_window(project):
    d = project.dates()[-3]
    ex = buyer_examples(project, [d])
    o = pd.read_parquet(Path(project.config.data.root) / "outcomes.parquet")
    start = pd.Timestamp(d, tz="UTC")
    w = o[(o.ts >= start) & (o.ts < start + pd.Timedelta(days=28))].sort_values("ts")
    first = w.drop_duplicates("account_id").set_index("account_id").user_id
    got = ex.set_index("account_id").buyer_user_id
    assert set(got.index) == set(first.index)
    assert got.astype(object).where(got.notna(), None).to_dict() == \
        first.astype(object).where(first.notna(), None).to_dict()


def test_buyers_command_writes_aggregates_only(company, tmp_path):
    out = tmp_path / "report"
    assert main(["-q", "buyers", "--config", str(company[0]), "--out", str(out),
                 "--test-periods", "2"]) == 0
    summary = json.loads((out / "buyers.json").read_text())
    assert len(summary["test_dates"]) == 2 and summary["accounts_buyer_inside"] > 0
    assert {"top1_model", "top1_title", "top1_active", "ece_buyer_in_product"} <= set(summary)
    text = "".join(p.read_text() for p in out.iterdir())
    assert "@" not in text and "u00" not in text              # no email, no user id
    seg = pd.read_csv(out / "buyers_segments.csv")
    assert set(seg.segment) <= {"smb", "mid_market", "enterprise"}
    cal = pd.read_csv(out / "buyers_calibration.csv")
    assert cal.accounts.sum() == summary["accounts"]


def test_buyers_command_refuses_a_file_as_out(company, tmp_path, capsys):
    f = tmp_path / "x.json"
    assert main(["buyers", "--config", str(company[0]), "--out", str(f)]) == 2
    assert "names a file" in capsys.readouterr().err


@pytest.mark.slow
def test_acceptance_on_20k_accounts_forward_in_time(tmp_path_factory):
    """Issue 26: top-1 >= 1.3x the better baseline with a CI excluding it, ECE <= 0.03,
    >= 70% of PQA-routed accounts with the true buyer outside the product."""
    out = tmp_path_factory.mktemp("buyers_20k")
    sim = simulate(n_accounts=20_000, seed=0, out=out)
    ev = evaluate_buyers(open_project(sim.config, cache=False), reps=200)
    m = ev.metrics
    best = max(m["top1_title"], m["top1_active"])
    assert m["top1_model"] >= 1.3 * best
    assert m["ci"]["top1_ratio_to_best_baseline"][0] > 1.0
    assert m["ci"]["top1_model"][0] > max(m["ci"]["top1_title"][1], m["ci"]["top1_active"][1])
    assert m["ece_buyer_in_product"] <= 0.03
    assert m["pqa_true_buyer_outside"] >= 0.70
    # independently: the truth file, not the outcomes, says who was outside
    truth = pd.read_parquet(out / "truth" / "buyers.parquet").set_index("account_id")
    pqa = ev.rows[ev.rows.buyer_in_product < 0.5]
    assert (~truth.buyer_in_product.loc[pqa.account_id]).mean() >= 0.70


@pytest.mark.slow
def test_backtest_with_buyers_writes_both_reports(company, tmp_path):
    out = tmp_path / "bt"
    assert main(["-q", "backtest", "--config", str(company[0]), "--out", str(out),
                 "--no-track", "--buyers"]) == 0
    assert (out / "metrics.json").exists()
    summary = json.loads((out / "buyers.json").read_text())
    assert summary["test_dates"] and 0 <= summary["top1_model"] <= 1


def test_contacts_name_the_buyer_the_outside_lead_or_nobody(project, company):
    from pqlml.buyers import contacts, fit_on_history, with_contacts

    _, as_of = company
    model = fit_on_history(project, as_of)
    leads = pd.read_parquet(Path(project.config.data.root) / "leads.parquet")
    outside = leads[leads.ts < as_of].account_id.drop_duplicates().head(40).tolist()
    rows = pd.DataFrame({"account_id": [HAND, *outside], "as_of": as_of})
    got = contacts(project, rows, model).set_index("account_id")
    hand = got.loc[HAND]
    assert (hand.contact_user_id, hand.contact_email, hand.contact_title, hand.lead_bucket) == \
        ("u9000001", "vp.eng@handbuilt.io", "VP Engineering", "pql")
    assert "changed admin roles twice, viewed pricing twice" in hand.contact_reason
    assert not got.contact_email.fillna("").str.contains("gmail").any()
    find = got[got.lead_bucket == "pqa_find_buyer"]
    assert len(find) and (find.buyer_in_product < 0.5).all()
    # an outside buyer's contact is the account's most senior (then latest) lead before as_of
    senior = leads.title.str.contains(r"\b(?:CEO|CTO|COO|Founder|VP|Head|Director)\b")
    latest = (leads[leads.ts < as_of].assign(s=senior).sort_values(["s", "ts"])
              .drop_duplicates("account_id", keep="last").set_index("account_id"))
    with_lead = find[find.contact_email.notna()]
    assert len(with_lead)
    assert (with_lead.contact_email == latest.email.reindex(with_lead.index)).all()
    assert (with_lead.contact_user_id == with_lead.contact_email).all()
    # in the scores: the worked tiers only, the motion told to find the buyer
    scores = rows.assign(tier=["tier_1"] + ["tier_2"] * (len(rows) - 2) + ["tier_3"],
                         motion="sales assist", model_version="m@1")
    out = with_contacts(project, scores)
    assert list(out.columns)[-1] == "model_version" and out.contact_user_id.iat[0] == "u9000001"
    assert out.lead_bucket.iat[-1] is None or pd.isna(out.lead_bucket.iat[-1])
    assert (out.motion[out.lead_bucket == "pqa_find_buyer"] == "sales assist; find the buyer").all()


def test_contact_columns_become_crm_fields(tmp_path):
    from pqlml.crm import crm_files
    from pqlml.outputs import write_files

    scores = pd.DataFrame({"account_id": ["a1"], "domain": ["acme.com"],
                           "as_of": [pd.Timestamp("2025-06-30", tz="UTC")], "probability": [0.4],
                           "tier": ["tier_1"], "contact_user_id": ["u1"],
                           "contact_email": ["vp@acme.com"], "contact_title": ["VP Sales"],
                           "contact_reason": ["VP Sales; viewed pricing twice"],
                           "buyer_in_product": [0.8123], "lead_bucket": ["pql"],
                           "model_version": ["m"]})
    gone = pd.DataFrame(columns=["account_id", "code", "reason"])
    write_files(crm_files(scores, gone, "salesforce", tmp_path))
    sf = pd.read_csv(tmp_path / "salesforce.csv")
    assert sf.PQA_Contact_Email__c.item() == "vp@acme.com"
    assert sf.PQA_Buyer_In_Product__c.item() == 81.2 and sf.PQA_Lead_Bucket__c.item() == "pql"
    assert list(sf.columns)[-1] == "PQA_Model_Version__c"


def test_the_model_reaches_the_oracle_on_a_known_choice_model():
    """Buyers drawn from a known multinomial logit (and inside with a known logistic): the
    model's top-1 comes within 3 points of the truth's own ranking, its buyer_in_product
    within 0.05 of the true probability on average."""
    rng = np.random.default_rng(0)
    n, k = 4_000, 4
    X = pd.DataFrame({"account_id": np.repeat([f"a{i}" for i in range(n)], k),
                      "as_of": "2025-01-01", "user_id": [f"u{i}" for i in range(n * k)],
                      "segment": np.repeat(rng.choice(["smb", "enterprise"], n), k),
                      "employees": 100.0, "title_rank": rng.integers(1, 5, n * k).astype(float),
                      "stated_seniority": 0.0,
                      "admin_90d": rng.poisson(0.5, n * k).astype(float), "invites_90d": 0.0,
                      "pricing_90d": rng.poisson(0.8, n * k).astype(float),
                      "legal_security_90d": 0.0, "activity_share": 1 / k, "events_30d": 3.0,
                      "tenure_days": 60.0, "first_user": np.tile([1.0, 0, 0, 0], n)})
    score = (1.0 * (X.title_rank == 4) + 1.5 * np.log1p(X.admin_90d)
             + 1.2 * np.log1p(X.pricing_90d)).to_numpy()
    g = score.reshape(n, k) + rng.gumbel(size=(n, k))
    p_in = np.where(X.segment.to_numpy()[::k] == "smb", 0.85, 0.25)
    inside = rng.random(n) < p_in
    y = np.zeros(n * k, dtype=int)
    y[np.arange(n)[inside] * k + g.argmax(axis=1)[inside]] = 1
    train, test = slice(0, n * k // 2), slice(n * k // 2, None)
    model = BuyerModel().fit(X[train], y[train])
    r = model.rank(X[test])
    buyer = y[test] == 1
    top1 = (r.rank_in_account.to_numpy()[buyer] == 1).mean()
    oracle = (rank_by(X[test], score[test])[buyer] == 1).mean()
    assert top1 > oracle - 0.03 and top1 > 0.4
    got = r.buyer_in_product.to_numpy()[::k]
    assert abs(got - p_in[n // 2:]).mean() < 0.05
