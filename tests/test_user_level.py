"""User level works everywhere: every command with ``[project] entity = "user"`` (PQL models,
one row per user and as_of) on one small simulated company, through the CLI.

The truths checked come from the simulated files, not from pqlml: the users table (every user
is scored or listed as not scored), the dispositions file (every verdict attached or listed),
the labels (the backtest's AUC recomputed with scikit-learn)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from pqlml.cli import main
from pqlml.config import load_config
from pqlml.model import Model
from pqlml.simulate import simulate

pytestmark = pytest.mark.slow
KEYS = {"account_id", "user_id", "entity_id", "as_of"}


@pytest.fixture(scope="module")
def company(tmp_path_factory):
    """A simulated company whose config models users; 2 backtest folds. Its sales verdicts
    name the lead person (entity_id = a user id: each account's first user), as a
    user-level project's dispositions do."""
    out = tmp_path_factory.mktemp("user_level")
    sim = simulate(n_accounts=900, seed=2, out=out)
    users = pd.read_parquet(out / "users.parquet")
    lead = users.sort_values(["signup_at", "user_id"]).groupby("account_id").user_id.first()
    d = pd.read_parquet(out / "dispositions.parquet")
    d.assign(entity_id=d.entity_id.map(lead)).to_parquet(out / "user_dispositions.parquet")
    text = sim.config.read_text().replace('entity = "account"', 'entity = "user"')
    text = text.replace('source = "dispositions.parquet"', 'source = "user_dispositions.parquet"')
    assert 'entity = "user"' in text and "user_dispositions" in text
    # a fixed kind: what these tests check is the user grain; the forward choice among kinds
    # (the default, auto: 6.7x a logistic fit) is tested in test_select.py
    sim.config.write_text(text + "\n[model]\nkind = \"logistic\"\ntest_periods = 2\n"
                                 "bootstrap = 20\n\n[retrain]\nperiods = 2\n")
    return sim.config


@pytest.fixture(scope="module")
def model_file(company, tmp_path_factory):
    path = tmp_path_factory.mktemp("user_model") / "model.skops"
    assert main(["train", "--config", str(company), "--out", str(path), "--no-track"]) == 0
    return path


def test_train_fits_a_user_model_on_numeric_features_only(model_file):
    model = Model.load(model_file)
    assert model.trained_on["entity"] == "user"
    assert not KEYS & set(model.features)
    assert list(model.estimator.feature_names_in_) == model.features
    # user features, not account ones: a user has no team to count
    assert "active_users_30d" not in model.features and "tenure_days" in model.features


def test_discover_scans_user_features(company, tmp_path, capsys):
    assert main(["discover", "--config", str(company), "--out", str(tmp_path)]) == 0
    # without --outcome: the configured target, named in the progress line and the title
    target = load_config(company).outcomes.target
    shown = " ".join(" ".join(capsys.readouterr()).split())
    assert f"scanning every feature against {target}: done in" in shown
    assert f"best rule per signal for {target}" in shown and "None" not in shown
    signals = pd.read_csv(tmp_path / "signals.csv")
    best = pd.read_csv(tmp_path / "signals.best.csv")
    assert len(best) and not KEYS & set(signals.feature)
    assert (best.q_value <= 0.05).any()


def test_backtest_ranks_users_better_than_chance(company, tmp_path, monkeypatch):
    import pqlml.backtest
    from pqlml.project import build_labels

    seen = {}
    report = pqlml.backtest.write_report
    monkeypatch.setattr(pqlml.backtest, "write_report",
                        lambda m, rows, out: report(m, seen.setdefault("rows", rows), out))
    out = tmp_path / "bt"
    assert main(["backtest", "--config", str(company), "--out", str(out), "--no-track"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert (out / "report.md").exists() and (out / "gains.png").exists()
    # no per-user truth in the simulator, and the intent rule counts a team's users: both
    # baselines are absent (said so), never faked; the volume is the sales capacity
    assert "oracle" not in m and "rules" not in m and m["volume_from"] == "capacity"
    assert any("oracle: absent" in n for n in m["notes"])
    assert any("folk_pqa" in n and "active_users_30d" in n for n in m["notes"])
    rows = seen["rows"]
    assert rows.user_id.notna().all() and not rows.duplicated(["user_id", "as_of"]).any()
    labels = build_labels(company, as_of=sorted(rows.as_of.dt.strftime("%Y-%m-%d").unique()))
    truth = rows[["user_id", "as_of", "p_model"]].merge(labels, on=["user_id", "as_of"])
    assert len(truth) == len(rows)
    auc = roc_auc_score(truth.conversion, truth.p_model)
    assert auc > 0.6 and auc == pytest.approx(m["model"]["roc_auc"])
    per_fold = rows.groupby("fold").size().clip(upper=10).sum()      # capacity 10 a period
    assert m["model"]["volume"] == per_fold
    # a user's fit is its account's firmographics and its own email: some users have it
    assert 0 < rows.fit.mean() < 1


def test_score_keys_every_user_once(company, model_file, tmp_path):
    assert main(["score", "--config", str(company), "--model", str(model_file),
                 "--out", str(tmp_path)]) == 0
    scores = pd.read_csv(tmp_path / "scores.csv")
    gone = pd.read_csv(tmp_path / "not_scored.csv")
    assert scores.columns[0] == "user_id" and scores.user_id.is_unique
    assert scores.probability.between(0, 1).all() and scores.reason_1.notna().all()
    users = pd.read_parquet(company.parent / "users.parquet")
    assert set(scores.user_id) | set(gone.user_id) == set(users.user_id)
    assert not set(scores.user_id) & set(gone.user_id) and gone.user_id.is_unique
    assert gone.reason.notna().all() and set(gone.code) <= {"no_events", "created_after_as_of",
                                                            "customer"}
    # fit from the user's account: users without an account (free mail) are never tier 1/2;
    # the funnel is the account's, self-serve without one
    accounts = users.set_index("user_id").account_id
    no_account = scores.user_id.map(accounts).isna()
    assert no_account.any() and (~no_account).any()
    assert not scores.tier[no_account].isin(["tier_1", "tier_2"]).any()
    assert scores.tier[~no_account].isin(["tier_1", "tier_2"]).any()
    assert (scores.funnel[no_account] == "self_serve").all()
    assert set(scores.funnel) <= {"pql", "pqa", "self_serve"}
    assert scores.funnel.ne("self_serve").any()
    assert not scores.reason_1.str.contains("user\\(s\\) with|of users on", regex=True).any()


def test_crm_files_of_a_user_model_name_leads_and_contacts(company, model_file, tmp_path):
    """A PQL model's CRM files: Salesforce Lead fields (upsert on PQL_User_Id__c), HubSpot
    contact properties deduplicated on email (object 0-1); each user's email is the users
    file's."""
    import csv
    import xml.etree.ElementTree as ET

    assert main(["score", "--config", str(company), "--model", str(model_file),
                 "--format", "salesforce", "--out", str(tmp_path / "sf")]) == 0
    assert main(["score", "--config", str(company), "--model", str(model_file),
                 "--format", "hubspot", "--out", str(tmp_path / "hs")]) == 0
    sf = pd.read_csv(tmp_path / "sf" / "salesforce.csv", dtype=str, keep_default_na=False)
    assert list(sf.columns) == ["PQL_User_Id__c", "Email", "PQL_Scored_At__c",
                                "PQL_Probability__c", "PQL_Percentile__c", "PQL_Tier__c",
                                "PQL_Funnel__c", "PQL_Motion__c", "PQL_Reason_1__c",
                                "PQL_Reason_2__c", "PQL_Reason_3__c", "PQL_Model_Version__c"]
    users = pd.read_parquet(company.parent / "users.parquet").set_index("user_id")
    assert (sf.Email == sf.PQL_User_Id__c.map(users.email)).all() and sf.Email.ne("").all()
    assert sf.PQL_Scored_At__c.str.fullmatch(r"\d{4}-\d\d-\d\dT00:00:00\.000Z").all()
    assert sf.PQL_Probability__c.astype(float).between(0, 100).all()
    entries = {e.get("key"): e.get("value")
               for e in ET.parse(tmp_path / "sf" / "process-conf.xml").getroot().iter("entry")}
    assert entries["sfdc.entity"] == "Lead" and entries["sfdc.externalIdField"] == "PQL_User_Id__c"
    sdl = (tmp_path / "sf" / "salesforce.sdl").read_text().splitlines()
    assert "PQL_User_Id__c=PQL_User_Id__c" in sdl and not any(x.startswith("Email=") for x in sdl)

    with open(tmp_path / "hs" / "hubspot.csv", encoding="utf-8", newline="") as f:
        header = next(csv.reader(f))
    request = json.loads((tmp_path / "hs" / "hubspot.json").read_text())
    maps = request["files"][0]["fileImportPage"]["columnMappings"]
    assert [m["columnName"] for m in maps] == header and header[:2] == ["pql_user_id", "email"]
    assert {m["columnObjectTypeId"] for m in maps} == {"0-1"}
    assert [m["columnName"] for m in maps if m.get("idColumnType")] == ["email"]
    assert request["importOperations"] == {"0-1": "UPSERT"}
    gone = pd.read_csv(tmp_path / "hs" / "not_scored.csv")
    assert set(gone.user_id) | set(pd.read_csv(tmp_path / "hs" / "hubspot.csv").pql_user_id) \
        == set(users.index)


def test_drift_compares_user_snapshots(company, model_file, tmp_path):
    out = tmp_path / "drift"
    assert main(["drift", "--config", str(company), "--model", str(model_file), "--out",
                 str(out), "--no-track"]) == 0
    table = pd.read_csv(out / "drift.csv")
    assert set(table.feature) == {"score", *Model.load(model_file).features}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["current_rows"] > 0 and summary["reference_rows"] > summary["current_rows"]


def test_feedback_attaches_verdicts_to_users(company, model_file, tmp_path):
    out = tmp_path / "feedback"
    assert main(["feedback", "--config", str(company), "--model", str(model_file),
                 "--out", str(out)]) == 0
    leads = pd.read_csv(out / "leads.csv")
    gone = pd.read_csv(out / "not_attached.csv")
    dispositions = pd.read_parquet(company.parent / "user_dispositions.parquet")
    assert len(leads) + len(gone) == len(dispositions)
    users = set(pd.read_parquet(company.parent / "users.parquet").user_id)
    assert len(leads) > len(gone) and set(leads.entity_id) <= users
    assert leads.probability.between(0, 1).all() and leads.funnel.notna().all()
    rates = pd.read_csv(out / "acceptance.csv")
    assert {"score band", "funnel", "rep"} <= set(rates.kind)


def test_feedback_on_account_verdicts_in_a_user_project_is_a_clear_error(company, tmp_path,
                                                                          capsys):
    config = company.parent / "account_verdicts.toml"
    config.write_text(company.read_text().replace("user_dispositions.parquet",
                                                  "dispositions.parquet"))
    assert main(["feedback", "--config", str(config), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "None of the" in err and "an account id" in err and "user_id" in err


def test_retrain_registers_a_user_champion_that_scores(company, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)
    # a champion trained three months earlier, then a challenger on the full schedule
    early = company.parent / "early.toml"
    early.write_text(company.read_text().replace("end = 2025-06-01", "end = 2025-03-01"))
    assert main(["retrain", "--config", str(early), "--out", str(tmp_path / "rt0")]) == 0
    assert json.loads((tmp_path / "rt0" / "decision.json").read_text())["action"] == \
        "first_champion"
    assert main(["retrain", "--config", str(company), "--out", str(tmp_path / "rt")]) == 0
    decision = json.loads((tmp_path / "rt" / "decision.json").read_text())
    assert decision["action"] in ("promoted", "kept") and len(decision["periods"]) == 2
    assert decision["champion_version"] == 1
    assert Model.load(tmp_path / "rt" / "model.skops").trained_on["entity"] == "user"
    assert main(["score", "--config", str(company), "--model", "models:/pqlml@champion",
                 "--format", "parquet", "--out", str(tmp_path / "s")]) == 0
    scores = pd.read_parquet(tmp_path / "s" / "scores.parquet")
    assert scores.user_id.is_unique and scores.model_version.str.startswith("pqlml/").all()
