"""`pqlml demo` runs end to end and its report agrees with the files it wrote."""

from __future__ import annotations

import io

import pandas as pd
from rich.console import Console

from pqlml.demo import run_demo


def test_demo_runs_and_reports(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")    # the MLflow store lands beside the config
    import pqlml.project

    built = []                                   # every feature table computed, by anyone
    compute = pqlml.project.project_features
    monkeypatch.setattr(pqlml.project, "project_features",
                        lambda project, spine, entity, extra=(): built.append(entity)
                        or compute(project, spine, entity, extra))
    buf = io.StringIO()
    summary = run_demo(out=tmp_path, n_accounts=300, seed=2, console=Console(file=buf, width=120))
    text = buf.getvalue()
    assert summary["counts"]["events"] == len(pd.read_parquet(tmp_path / "events.parquet"))
    assert summary["counts"]["accounts"] == 300
    for heading in ("canonical tables", "labels per as_of", "most active accounts",
                    "the simulator's truth", "demo finished",
                    "conversion within the horizon per tier and funnel", "top signals for hand-raise",
                    "A model instead of the thresholds", "Monthly retraining",
                    "first champion", "registered pqlml version 1 as @champion", "mlflow ui",
                    "top 10 Tier-1 accounts to call, and why", "by pqlml/1",
                    "The sales feedback loop", "simulated dispositions", "top rejection reason"):
        assert heading in text
    assert (tmp_path / "rules" / "rates.png").exists() and "tier_1" in text
    rates = pd.read_csv(tmp_path / "feedback" / "acceptance.csv")
    tiers = rates[(rates.kind == "tier") & (rates.period == "all")]
    assert tiers.entities.sum() == len(pd.read_csv(tmp_path / "feedback" / "leads.csv"))
    assert (tmp_path / "feedback" / "acceptance.png").exists()
    scores = pd.read_csv(tmp_path / "scores.csv")
    gone = pd.read_csv(tmp_path / "not_scored.csv")
    assert summary["scored"] == len(scores) > 0
    assert len(scores) + gone.account_id.notna().sum() == 300           # nobody lost
    assert text.rstrip().splitlines()[-1].count("demo finished") == 1
    # each distinct (entity, as_of dates) table is built once: the schedule's, scoring's
    builds = summary["builds"]
    assert len(built) == len(builds) == len(set(builds)) >= 2
    assert sum(len(dates) > 1 for _, dates, _ in builds) == 1
    # the demo tracks its backtest, retrain and drift in the store beside its config
    from mlflow.tracking import MlflowClient
    assert list((tmp_path / "elsewhere").iterdir()) == []
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.get_experiment_by_name("simulated-plg")
    runs = client.search_runs([exp.experiment_id])
    backtested = (tmp_path / "backtest" / "metrics.json").exists()   # 300 accounts: too few
    assert sorted(r.data.tags["pqlml.command"] for r in runs) == \
        ["backtest"] * backtested + ["drift", "retrain"]
    assert (tmp_path / "mlartifacts").is_dir() and not (tmp_path / "mlruns").exists()
    features = summary["features"]
    assert features[1] - 2 >= 80 and features[0] > 300
