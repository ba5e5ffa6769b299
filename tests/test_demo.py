"""`pqlml demo` runs end to end and its report agrees with the files it wrote."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from rich.console import Console

from html_checks import assert_renders, needs_chromium, tables, text_of, well_formed

from pqlml.demo import run_demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """One demo run: its folder, summary, terminal text and the feature tables it built."""
    tmp_path = tmp_path_factory.mktemp("demo")
    import pqlml.project

    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
        (tmp_path / "elsewhere").mkdir()
        monkeypatch.chdir(tmp_path / "elsewhere")   # the MLflow store lands beside the config
        built = []                               # every feature table computed, by anyone
        compute = pqlml.project.project_features
        monkeypatch.setattr(pqlml.project, "project_features",
                            lambda project, spine, entity, extra=(), **kw: built.append(entity)
                            or compute(project, spine, entity, extra, **kw))
        buf = io.StringIO()
        summary = run_demo(out=tmp_path, n_accounts=300, seed=2,
                           console=Console(file=buf, width=120))
    return tmp_path, summary, buf.getvalue(), built


def test_demo_runs_and_reports(demo):
    tmp_path, summary, text, built = demo
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
    assert sum(len(dates or ()) > 1 for _, dates, _ in builds) == 1   # None: explicit rows
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


def test_demo_report_html_holds_each_steps_numbers(demo):
    tmp_path, summary, text, _ = demo
    root = well_formed(tmp_path / "report.html")
    words = text_of(root)
    assert "300 accounts" in words and f"{summary['counts']['events']:,} events" in words
    assert f"{summary['scored']:,} accounts scored" in words
    scores = pd.read_csv(tmp_path / "scores.csv")
    tier_1 = int((scores.tier == "tier_1").sum())
    assert f"{tier_1:,} tier 1 accounts to call" in words
    canonical = tables(root)[0]
    assert {row[0]: int(row[1].replace(",", "")) for row in canonical[1:]} == summary["counts"]
    for step in ("3. Point-in-time", "4. Today's rules", "5. Signal discovery",
                 "7. Monthly retraining", "8. Counts per tier", "9. The sales feedback loop",
                 "The simulator's truth"):
        assert step in words
    assert words.index("How to read this") < words.index("1-2. The canonical tables")
    assert "report with figures:" in text and (tmp_path / "signals" / "report.html").exists()


@pytest.mark.browser
@needs_chromium
def test_demo_report_renders_in_headless_chromium(demo, tmp_path):
    assert_renders(demo[0] / "report.html", tmp_path / "demo.png")
