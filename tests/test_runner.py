"""pqlml.runner: each command opens its project once (or uses the open one it is given),
checks its outputs before any work, writes them and returns what it computed; the commands
that fit or evaluate a model each log one MLflow run, the same way."""

from __future__ import annotations

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

import pqlml
import pqlml.project
from pqlml import runner
from pqlml.cache import caching
from pqlml.errors import PqlmlError
from pqlml.model import Model
from pqlml.simulate import simulate


@pytest.fixture(scope="module")
def company(tmp_path_factory):
    return simulate(n_accounts=80, seed=3, out=tmp_path_factory.mktemp("runner"), months=5)


@pytest.fixture()
def opened(monkeypatch):
    """Counts the projects actually opened (their tables loaded), by anyone."""
    calls = []
    load = pqlml.project.load_tables
    monkeypatch.setattr(pqlml.project, "load_tables",
                        lambda *a, **k: calls.append(1) or load(*a, **k))
    return calls


def test_commands_on_one_open_project_write_their_files_and_open_nothing_again(
        company, opened, tmp_path):
    with caching(False):           # no table from the cache: every build can be counted
        checked = runner.validate(company.config)
    project = checked.project
    assert len(opened) == 1 and checked.checks.problems == [] and checked.written == []
    assert checked.counts["events"] == len(pd.read_parquet(company.out / "events.parquet"))
    assert checked.counts["accounts"] == 80

    built = runner.features(project, tmp_path / "features.parquet")
    assert built.project is project and built.written == [tmp_path / "features.parquet"]
    back = pd.read_parquet(tmp_path / "features.parquet")
    assert back.shape == built.frame.shape and back.as_of.nunique() == 4

    rules = runner.rules(project, tmp_path / "rules")
    assert [p.name for p in rules.written] == ["rates.csv", "tiers.csv", "rates.png",
                                               "hand_raise_rates.png"]
    assert all(p.exists() for p in rules.written)
    assert len(pd.read_csv(tmp_path / "rules" / "rates.csv")) == len(rules.rates)

    trained = runner.train(project, tmp_path / "model.skops", track=False)
    assert trained.run_id is None and trained.registered is None
    again = Model.load(tmp_path / "model.skops")
    assert (again.predict(trained.frame) == trained.model.predict(trained.frame)).all()

    scored = runner.score(project, tmp_path / "model.skops", out=tmp_path)
    assert scored.written == [tmp_path / "scores.csv", tmp_path / "not_scored.csv",
                              tmp_path / "report.html"]
    assert len(pd.read_csv(tmp_path / "scores.csv")) == len(scored.scores) > 0
    assert len(scored.scores) + scored.not_scored.account_id.notna().sum() == 80
    assert scored.version.startswith("model.skops@") and scored.tables == []

    fb = runner.feedback(project, tmp_path / "feedback", model=tmp_path / "model.skops")
    assert all(p.exists() for p in fb.written) and fb.plot.exists()
    rates = pd.read_csv(tmp_path / "feedback" / "acceptance.csv")
    tiers = rates[(rates.kind == "tier") & (rates.period == "all")]
    assert tiers.entities.sum() == len(pd.read_csv(tmp_path / "feedback" / "leads.csv")) > 0
    assert "score band" in set(rates.kind)                     # the model's bands are there

    weights = runner.engagement_weights(project, tmp_path / "w.csv", outcome="hand_raise",
                                        until="2024-06-01")
    assert len(pd.read_csv(tmp_path / "w.csv")) == len(weights.table) > 0
    assert "engagement_weights" in weights.toml

    # no command opened the project again, and each feature table was built once: the
    # schedule's (features, rules, training, feedback, weights' labels) and scoring's date,
    # and the user rows scoring's contacts are chosen from (issue 26: explicit rows)
    assert len(opened) == 1
    assert len(project.builds) == len(set(project.builds)) == 3
    assert ("user", None, "()") in project.builds


def test_outputs_are_checked_before_any_work(company, opened, tmp_path):
    (tmp_path / "taken").write_text("x")
    with pytest.raises(PqlmlError, match="is a file; this command writes a folder"):
        runner.rules(company.config, tmp_path / "taken")
    with pytest.raises(PqlmlError, match="must end in .skops"):
        runner.train(company.config, tmp_path / "model.pkl")
    with pytest.raises(PqlmlError, match="Say where the scores go"):
        runner.score(company.config, tmp_path / "model.skops")
    with pytest.raises(PqlmlError, match="one of the config's inputs"):
        runner.features(company.config, company.out / "events.parquet")
    assert opened == [] and (tmp_path / "taken").read_text() == "x"


def test_model_commands_are_tracked_the_same_way(company, tmp_path, monkeypatch):
    import pqlml.backtest
    import pqlml.retrain
    from pqlml.outputs import write_json

    # this test's own store (the shared config's default store is beside it)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{(tmp_path / 'mlflow.db').resolve()}")
    monkeypatch.chdir(tmp_path)
    project = runner.validate(company.config, preflight=False).project
    trained = runner.train(project, tmp_path / "model.skops")
    assert trained.registered == (1, "champion")
    drifted = runner.drift(project, tmp_path / "drift")        # the registered champion
    assert drifted.champion_version == 1 and "models:/pqlml@champion" in drifted.summary["model"]
    assert [p.name for p in drifted.written] == ["drift.csv", "summary.json", "drift.png"]
    # backtest and retrain need more months than this company has: their stages are
    # stood in for, to see what the runner does around them (write, then track)
    metrics = {"kind": "logistic", "intent_rule": "folk_pqa", "tier_method": "capacity",
               "model": {"roc_auc": 0.7}, "folds": [{"fold": 0, "model": {"roc_auc": 0.7}}]}
    monkeypatch.setattr(pqlml.backtest, "backtest",
                        lambda *a, **k: pqlml.backtest.Backtest(metrics, pd.DataFrame()))
    monkeypatch.setattr(pqlml.backtest, "write_report",
                        lambda m, rows, out: write_json(m, out / "metrics.json"))
    tested = runner.backtest(project, tmp_path / "bt")
    assert (tmp_path / "bt" / "metrics.json").exists()
    decision = pqlml.retrain.Decision("not_compared", "nothing new", "captured_at_capacity")
    monkeypatch.setattr(pqlml.retrain, "retrain", lambda *a, **k: decision)
    retrained = runner.retrain(project, tmp_path / "rt")
    assert retrained.written == [tmp_path / "rt" / "decision.json"] and not retrained.registered
    untracked = runner.train(project, tmp_path / "again.skops", track=False)
    assert untracked.run_id is None and untracked.store is None

    store = f"sqlite:///{(tmp_path / 'mlflow.db').resolve()}"
    client = MlflowClient(store)
    exp = client.get_experiment_by_name(project.config.project.name)
    runs = {r.data.tags["pqlml.command"]: r for r in client.search_runs([exp.experiment_id])}
    results = {"train": trained, "drift": drifted, "backtest": tested, "retrain": retrained}
    assert set(runs) == set(results) and len(client.search_runs([exp.experiment_id])) == 4
    for name, result in results.items():
        run = runs[name]
        assert result.run_id == run.info.run_id and result.store == store
        assert run.data.tags["pqlml.command"] == name
        assert run.data.tags["pqlml.version"] == pqlml.__version__
        assert "config/pqlml.toml" in {a.path for a in client.list_artifacts(run.info.run_id,
                                                                              "config")}
    same = ("config_sha256", "definitions_sha256", "data_sha256", "schedule")
    assert len({tuple(r.data.params[k] for k in same) for r in runs.values()}) == 1
