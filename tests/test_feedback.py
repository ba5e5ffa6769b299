"""Profiles, enrichment and the sales feedback loop, checked against the simulator's truth
and against independent pandas computations."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from pqlml.cli import main
from pqlml.config import load_config
from pqlml.engagement import weights_toml
from pqlml.errors import ConfigError, PqlmlError
from pqlml.feedback import acceptance
from pqlml.labels import build_labels
from pqlml.model import Model
from pqlml.project import build_features, open_project
from pqlml.project import build_labels as project_labels
from pqlml.rules import assign
from pqlml.simulate import simulate

DATES = ["2024-05-01", "2024-09-01"]


def feedback_of(config, **kwargs):
    """Acceptance on a config's schedule, as ``pqlml feedback`` runs it."""
    project = open_project(config)
    return acceptance(project.features(), project.tables.get("dispositions"),
                      settings=project.config, project=project, **kwargs)


@pytest.fixture(scope="module")
def company(tmp_path_factory):
    root = tmp_path_factory.mktemp("feedback")
    return simulate(n_accounts=1_500, seed=21, out=root / "sim", months=12).config


def _days(ts):
    return (ts.dt.floor("D") - pd.Timestamp(0, tz="UTC")).dt.days


def test_accepted_is_labelled_on_worked_leads_only():
    import ibis

    spine = ibis.memtable({"entity_id": ["a", "b", "c", "d"],
                           "as_of": pd.to_datetime(["2024-02-01"] * 4, utc=True)})
    outcomes = ibis.memtable({"account_id": ["x"], "ts": pd.to_datetime(["2024-01-01"], utc=True),
                              "outcome": ["conversion"]})
    d = ibis.memtable({"entity_id": ["a", "b", "b", "d", "a"], "disposition": [
        "rejected", "rejected", "converted", "accepted", "accepted"],
        "at": pd.to_datetime(["2024-02-03", "2024-02-05", "2024-02-20", "2024-03-15", "2024-02-01"],
                             utc=True)})
    y = build_labels(spine, outcomes, horizon_days=28, data_end="2024-06-01", dispositions=d)
    y = y.order_by("entity_id").execute().set_index("entity_id").accepted
    # a: accepted at as_of itself (in the window [as_of, as_of + 28d)), then rejected;
    # b: converted; c: sales never saw it; d: accepted after the horizon
    assert y["a"] == 1 and y["b"] == 1 and pd.isna(y["c"]) and pd.isna(y["d"])
    y = build_labels(spine, outcomes, horizon_days=28, data_end="2024-06-01",
                     dispositions=d.filter(d.at > "2024-02-01"))
    assert y.order_by("entity_id").execute().set_index("entity_id").accepted["a"] == 0


def test_acceptance_per_tier_equals_an_independent_count(company):
    fb = feedback_of(company)
    cfg = load_config(company)
    d = pd.read_parquet(company.parent / "dispositions.parquet")
    dates = pd.date_range(str(cfg.schedule.start), str(cfg.schedule.end), freq="MS", tz="UTC")
    as_of = []
    for at in d["at"]:                       # the latest as_of at or before at, within the horizon
        prev = [x for x in dates if x <= at]
        ok = prev and at < prev[-1] + pd.Timedelta(days=cfg.labels.horizon_days)
        as_of.append(prev[-1] if ok else pd.NaT)
    d["as_of"] = pd.to_datetime(as_of, utc=True)
    project = open_project(company)
    tiers = assign(project.with_attributes(project.features()), settings=project.config,
                   leads=project.leads())
    tiers["as_of"] = tiers.as_of.astype(d.as_of.dtype)
    j = d.merge(tiers[["account_id", "as_of", "tier"]], left_on=["entity_id", "as_of"],
                right_on=["account_id", "as_of"], how="inner")
    expected = j.assign(ok=j.disposition.isin(["accepted", "converted"])).groupby("tier").ok.agg(
        ["size", "sum"])
    got = fb.rates[(fb.rates.kind == "tier") & (fb.rates.period == "all")].set_index("group")
    for tier, row in expected.iterrows():
        assert got.entities[tier] == row["size"] and got.accepted[tier] == row["sum"]
    assert len(fb.leads) + len(fb.not_attached) == len(d) == fb.dispositions
    reasons = fb.reasons[fb.reasons.tier == "self_serve"]
    assert reasons.rejections.is_monotonic_decreasing and (reasons.share <= 1).all()


def test_acceptance_follows_true_intent_and_rep_leniency(company):
    truth = pd.read_parquet(company.parent / "truth" / "dispositions.parquet")
    fb = feedback_of(company)
    leads = fb.leads.merge(truth[["account_id", "at", "p_accept"]],
                           left_on=["entity_id", "at"], right_on=["account_id", "at"])
    assert len(leads) == len(fb.leads)
    worked = leads[leads.disposition != "converted"]
    q = pd.qcut(worked.p_accept, 4, labels=False)
    low, high = worked.accepted[q == 0], worked.accepted[q == 3]
    assert high.mean() - low.mean() > 0.3                     # truth: higher intent, accepted
    reps = fb.rates[(fb.rates.kind == "rep") & (fb.rates.period == "all")].set_index("group")
    # the most lenient rep (bias +0.5) accepts more than the strictest (-0.6), beyond noise
    assert reps.accepted_low["amy.chen"] > reps.accepted_high["dev.patel"] - 0.1
    assert reps.accepted_rate["amy.chen"] > reps.accepted_rate["dev.patel"]


def test_a_model_of_accepted_learns_the_true_acceptance(company):
    outcome = "accepted"
    frame = open_project(company).snapshots(outcome)
    assert outcome == "accepted" and frame.accepted.isin([0, 1]).all()
    truth = pd.read_parquet(company.parent / "truth" / "dispositions.parquet")
    truth = truth[truth.disposition != "converted"].groupby(["account_id", "as_of"]).p_accept.mean()
    labelled = frame.join(truth, on=["account_id", "as_of"], how="inner")
    rate = labelled.groupby(pd.qcut(labelled.p_accept, 4, labels=False)).accepted.mean()
    assert rate.is_monotonic_increasing and rate.iloc[-1] - rate.iloc[0] > 0.3   # the labels
    cut = pd.Timestamp("2024-10-01", tz="UTC")                 # forward: fit before, test after
    train, test = frame[frame.as_of < cut], frame[frame.as_of >= cut]
    model = Model.fit(train, "accepted", kind="logistic", calibration="none")
    test = test.assign(p=model.predict(test)).join(truth, on=["account_id", "as_of"], how="inner")
    rho, p_value = stats.spearmanr(test.p, test.p_accept)
    # p_accept also holds what no model can see at as_of (the rep, noise, a later hand-raise)
    assert len(test) > 100 and rho > 0.2 and p_value < 0.01, (len(test), rho, p_value)


def test_dispositions_that_fit_no_snapshot_are_listed_with_the_reason(company, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(company.parent, data)
    d = pd.read_parquet(data / "dispositions.parquet")
    odd = pd.DataFrame({"entity_id": ["a000001", "nobody", d.entity_id.iloc[0]],
                        "at": pd.to_datetime(["2024-01-05", "2024-06-03", "2024-06-25"], utc=True),
                        "disposition": ["accepted", "rejected", "Accepted "],
                        "reason": [None, "no budget", None], "rep": ["amy.chen"] * 3})
    pd.concat([d, odd], ignore_index=True).to_parquet(data / "dispositions.parquet")
    fb = feedback_of(data / company.name)
    why = fb.not_attached.set_index("entity_id").why
    assert why["a000001"].startswith("before the first as_of")
    assert why["nobody"].startswith("not a candidate")
    assert len(fb.leads) + len(fb.not_attached) == len(d) + 3     # nothing dropped
    pd.concat([d, odd.assign(disposition="maybe")]).to_parquet(data / "dispositions.parquet")
    with pytest.raises(PqlmlError, match=r"disposition.*'maybe' \(3 rows\).*accepted"):
        feedback_of(data / company.name)


def test_profile_enrichment_and_enterprise_features_match_the_files(company):
    X = build_features(company, as_of=DATES)
    root = company.parent
    accounts = pd.read_parquet(root / "accounts.parquet")
    enr = pd.read_csv(root / "enrichment.csv")
    enr["key"] = enr.domain.str.lower().str.replace(r"^www\.", "", regex=True)
    listed = set(pd.read_csv(root / "enterprise_domains.csv").domain)
    a = X.merge(accounts[["account_id", "domain"]], on="account_id")
    a = a.merge(enr.drop(columns="domain").add_prefix("e_"), left_on="domain", right_on="e_key",
                how="left")
    assert (a.enriched == a.e_key.notna()).all() and 0.1 < 1 - a.enriched.mean() < 0.5
    both = a.e_employees.notna()
    assert np.allclose(a.enriched_employees[both], a.e_employees[both])
    assert (a.enriched_employees.isna() == a.e_employees.isna()).all()
    assert (a.enriched_industry_unknown == a.e_industry.isna()).all()
    assert (a.enterprise_domain == a.domain.isin(listed)).all()
    users = pd.read_parquet(root / "users.parquet")
    users["size"] = users.company_size.str.extract(r"(\d+)")[0].astype(float)
    for as_of, part in a.groupby("as_of"):
        seen = users[users.signup_at < as_of].groupby("account_id")
        exp = seen["size"].max().reindex(part.account_id).to_numpy()
        assert np.allclose(part.stated_employees, exp, equal_nan=True)
        use = seen.use_case.apply(lambda s: s.notna().any()).reindex(part.account_id).fillna(False)
        assert (part.signup_use_case_unanswered.to_numpy() == (~use).to_numpy().astype(int)).all()
    # the truth: stated size and enrichment both track the true employees
    true = a.merge(accounts[["account_id", "employees"]].rename(columns={"employees": "true"}),
                   on="account_id")
    assert stats.spearmanr(true.stated_employees, true.true, nan_policy="omit").statistic > 0.7
    assert stats.spearmanr(true.enriched_employees, true.true, nan_policy="omit").statistic > 0.9


def test_a_user_sees_its_own_answers_and_its_email_domain_enrichment(company):
    X = build_features(company, as_of=DATES[-1:], entity="user").set_index("user_id")
    users = pd.read_parquet(company.parent / "users.parquet").set_index("user_id")
    users = users.loc[X.index]
    exp_size = users.company_size.str.extract(r"(\d+)")[0].astype(float)
    assert np.allclose(X.stated_employees, exp_size, equal_nan=True)
    personal = (users.use_case == "personal").astype(int)
    assert (X.signup_use_case_personal == personal).all() and personal.sum() > 10
    assert (X.signup_use_case_unanswered == users.use_case.isna().astype(int)).all()
    free = users.account_id.isna()                  # free mail: no vendor row for gmail.com
    assert free.sum() > 10 and (X.enriched[free] == 0).all()


def test_activation_stage_equals_the_simulators_truth(company):
    truth = pd.read_parquet(company.parent / "truth" / "snapshots.parquet")
    X = build_features(company, as_of=DATES)
    truth["as_of"] = truth.as_of.astype(X.as_of.dtype)
    j = X.merge(truth[["account_id", "as_of", "activation_stage"]], on=["account_id", "as_of"],
                suffixes=("", "_true"))
    assert len(j) > 1000 and (j.activation_stage == j.activation_stage_true).all()
    assert j.activation_stage.nunique() == 4


def test_fitted_engagement_weights_equal_statsmodels_on_independent_decayed_counts(company,
                                                                                   tmp_path):
    from pqlml import runner

    cfg = load_config(company)
    w = runner.engagement_weights(company, tmp_path / "w.csv", until="2024-08-01").table
    assert all(pd.Timestamp(d) + pd.Timedelta(days=28) <= pd.Timestamp("2024-08-01")
               for d in w.attrs["as_of"])                      # labels closed by until
    events = list(cfg.features.engagement_weights)
    ev = pd.read_parquet(company.parent / "events.parquet")
    ev = ev[ev.account_id.notna() & ev.event.isin(events)].assign(day=lambda e: _days(e.ts))
    accounts = pd.read_parquet(company.parent / "accounts.parquet")
    y = project_labels(company, as_of=w.attrs["as_of"])
    y = y[y.conversion.notna()].merge(accounts[["account_id", "created_at"]], on="account_id")
    y = y[y.created_at < y.as_of]
    h = cfg.features.engagement_half_life_days
    cols = {}
    for e in events:
        per = ev[ev.event == e]
        vals = []
        for as_of, part in y.groupby("as_of", sort=False):
            day = (as_of - pd.Timestamp(0, tz="UTC")).days
            past = per[per.day < day]
            s = (0.5 ** ((day - past.day) / h)).groupby(past.account_id).sum()
            vals.append(s.reindex(part.account_id).fillna(0).set_axis(part.index))
        cols[e] = pd.concat(vals)
    X = pd.DataFrame(cols).loc[y.index]
    sd = X.std(ddof=0)
    fit = sm.Logit(y.conversion.astype(float), sm.add_constant(X / sd)).fit(disp=0)
    expected = fit.params[events] / sd
    got = w.set_index("event").weight[events]
    assert w.attrs["rows"] == len(y)
    assert np.allclose(got, expected, rtol=1e-6, atol=1e-9), pd.concat([got, expected], axis=1)
    toml = weights_toml(w)
    assert re.search(r"^invite_sent = [0-9.e-]+$", toml, re.M)


def test_target_accepted_needs_dispositions_and_the_cli_reports(company, tmp_path, capsys):
    from pqlml.config import config_from_dict

    with pytest.raises(ConfigError, match=r"target.*accepted.*\[data\.dispositions\]"):
        config_from_dict({"data": {"events": {"source": "e.csv"}},
                          "outcomes": {"target": "accepted"}}, tmp_path)
    with pytest.raises(ConfigError, match=r"enterprise_domains"):
        config_from_dict({"features": {"enterprise_domains": 3}}, tmp_path)
    assert main(["feedback", "--config", str(company), "--out", str(tmp_path / "fb")]) == 0
    assert (tmp_path / "fb" / "acceptance.png").stat().st_size > 10_000
    shown = capsys.readouterr().err
    assert "tier_1" in shown and "most common rejection reasons" in shown
    assert main(["engagement-weights", "--config", str(company), "--until", "2024-08-01",
                 "--out", str(tmp_path / "w.csv")]) == 0
    assert "[features.engagement_weights]" in capsys.readouterr().out
    assert main(["discover", "--config", str(company), "--outcome", "accepted",
                 "--out", str(tmp_path / "acc")]) == 0
    best = pd.read_csv(tmp_path / "acc" / "signals.best.csv")
    assert (best.q_value <= 0.05).sum() >= 3          # acceptance has signals: it follows intent


def test_score_bands_are_named_by_range_distinct_and_never_fail():
    from pqlml.feedback import _bands

    p = np.linspace(0.01, 0.9, 500)
    b = _bands(p, 5)
    assert len(b.categories) == 5 and pd.Series(b).value_counts().eq(100).all()
    assert list(b.categories)[0].startswith("1%") and list(b.categories)[-1].endswith("90%")
    close = _bands(np.linspace(0.01, 0.013, 100), 5)            # one decimal keeps them apart
    assert len(set(close.categories)) == 5
    assert list(_bands(np.full(10, 0.2), 3).categories) == ["20%-20%"]   # a constant score


def test_acceptance_without_dispositions_names_the_table_to_add():
    X = pd.DataFrame({"account_id": ["a1"], "as_of": pd.to_datetime(["2024-05-01"], utc=True)})
    with pytest.raises(PqlmlError, match=r"No \[data.dispositions\] table in the config.*"
                                         r"Fix: add\n\[data.dispositions\]"):
        acceptance(X, None, settings=None, project=None)
