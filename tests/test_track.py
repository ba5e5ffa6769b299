"""train and backtest runs are tracked in MLflow: config, definitions, data, metrics, artifacts."""

from __future__ import annotations

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from pqlml.cli import main
from pqlml.simulate import simulate


@pytest.fixture()
def company(tmp_path, monkeypatch):
    sim = simulate(n_accounts=1_500, seed=4, out=tmp_path / "sim", months=12)
    sim.config.write_text(sim.config.read_text() + "\n[model]\ntest_periods = 2\nbootstrap = 10\n")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)                 # the default store lives in the working dir
    return sim.config


def test_backtest_and_train_are_logged_to_a_local_store(company, tmp_path):
    assert main(["backtest", "--config", str(company), "--out", str(tmp_path / "bt")]) == 0
    assert main(["train", "--config", str(company), "--out", str(tmp_path / "m.joblib")]) == 0
    assert (tmp_path / "mlflow.db").exists() and (tmp_path / "mlartifacts").is_dir()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    client = MlflowClient()
    exp = client.get_experiment_by_name("simulated-plg")
    runs = {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}
    assert set(runs) == {"backtest", "train"}
    bt, tr = runs["backtest"], runs["train"]
    for run in (bt, tr):
        assert len(run.data.params["config_sha256"]) == 64
        assert run.data.params["definitions_sha256"] == bt.data.params["definitions_sha256"]
        assert run.data.params["data_sha256"] == bt.data.params["data_sha256"]
    metrics = __import__("json").loads((tmp_path / "bt" / "metrics.json").read_text())
    assert bt.data.metrics["model_roc_auc"] == pytest.approx(metrics["model"]["roc_auc"])
    assert bt.data.metrics["rules_converters_captured"] == metrics["rules"]["converters_captured"]
    history = client.get_metric_history(bt.info.run_id, "fold_model_roc_auc")
    assert sorted(m.step for m in history) == [0, 1]
    files = {a.path for a in client.list_artifacts(bt.info.run_id, "backtest")}
    assert {"backtest/metrics.json", "backtest/report.md", "backtest/gains.png"} <= files
    assert {a.path for a in client.list_artifacts(tr.info.run_id, "model")} >= {"model/m.joblib"}
    assert tr.data.metrics["train_rows"] > 0


def test_the_tracking_uri_environment_variable_is_respected(company, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'elsewhere.db'}")
    assert main(["train", "--config", str(company), "--out", str(tmp_path / "m.joblib")]) == 0
    assert (tmp_path / "elsewhere.db").exists() and not (tmp_path / "mlflow.db").exists()


def test_train_logs_a_pyfunc_and_registers_champion_then_challenger(company, tmp_path):
    import pandas as pd

    from pqlml.model import Model
    from pqlml.project import build_features

    for _ in range(2):
        assert main(["train", "--config", str(company), "--out", str(tmp_path / "m.joblib")]) == 0
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    client = MlflowClient()
    assert int(client.get_model_version_by_alias("pqlml", "champion").version) == 1
    assert int(client.get_model_version_by_alias("pqlml", "challenger").version) == 2
    pyfunc = mlflow.pyfunc.load_model("models:/pqlml@champion")
    X = build_features(company, as_of="2024-10-01")
    got = pyfunc.predict(X)
    model = Model.load(tmp_path / "m.joblib")
    assert list(got.columns) == ["probability"] and len(got) == len(X)
    assert pyfunc.metadata.get_input_schema().input_names()[:3] == model.features[:3]
    version = client.get_model_version_by_alias("pqlml", "champion")
    local = mlflow.artifacts.download_artifacts(version.source, dst_path=str(tmp_path / "dl"))
    text = open(f"{local}/requirements.txt").read()
    assert "scikit-learn==" in text and "pqlml" in text
    with pytest.raises(Exception, match=rf"missing inputs \['{model.features[0]}'\]"):
        pyfunc.predict(X.drop(columns=[model.features[0]]))
    assert isinstance(got, pd.DataFrame)
