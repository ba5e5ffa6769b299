"""train and backtest runs are tracked in MLflow: config, definitions, data, metrics, artifacts."""

from __future__ import annotations

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from pqlml.cli import main
from pqlml.config import load_config
from simulated import company_config


@pytest.fixture()
def company(shared_company, tmp_path, monkeypatch):
    """A config of this test's own (its default store beside it) over the session's shared
    company, whose features are built once for every test."""
    sim = shared_company(n_accounts=1_500, seed=4, months=12)
    # a fixed kind: tracking is what is tested (the forward choice, auto, in test_select.py)
    config = company_config(sim, tmp_path / "sim", "[model]\nkind = \"logistic\"\n"
                            "test_periods = 2\nbootstrap = 10\n")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)                 # the default store lives beside the config
    return config


def test_backtest_and_train_are_logged_to_a_local_store(company, tmp_path):
    assert main(["backtest", "--config", str(company), "--out", str(tmp_path / "bt")]) == 0
    assert main(["train", "--config", str(company), "--out", str(tmp_path / "m.skops")]) == 0
    assert (company.parent / "mlflow.db").exists() and (company.parent / "mlartifacts").is_dir()
    mlflow.set_tracking_uri(f"sqlite:///{company.parent / 'mlflow.db'}")
    client = MlflowClient()
    exp = client.get_experiment_by_name("simulated-plg")
    runs = {r.data.tags["pqlml.command"]: r for r in client.search_runs([exp.experiment_id])}
    assert set(runs) == {"backtest", "train"}
    assert runs["train"].info.run_name.startswith("train simulated-plg 20")
    assert not (tmp_path / "mlflow.db").exists()           # nothing in the working directory
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
    assert {a.path for a in client.list_artifacts(tr.info.run_id, "model")} >= {"model/m.skops"}
    assert tr.data.metrics["train_rows"] > 0
    for k in ("roc_auc", "pr_auc", "brier", "ece"):     # the backtest's model, with its CIs
        assert bt.data.metrics[k] == pytest.approx(metrics["model"][k])
        assert [bt.data.metrics[f"{k}_ci_low"], bt.data.metrics[f"{k}_ci_high"]] == \
            pytest.approx(metrics["model"][f"{k}_ci"])
    assert bt.data.tags["pqlml.kind"] == tr.data.tags["pqlml.kind"] == "logistic"
    assert [d.tags[0].value for d in bt.inputs.dataset_inputs] == ["evaluation"]


def test_the_tracking_uri_environment_variable_is_respected(company, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'elsewhere.db'}")
    assert main(["train", "--config", str(company), "--out", str(tmp_path / "m.skops")]) == 0
    assert (tmp_path / "elsewhere.db").exists() and not (company.parent / "mlflow.db").exists()


def test_train_logs_a_pyfunc_and_registers_champion_then_challenger(company, tmp_path,
                                                                    monkeypatch):
    import mlflow.sklearn
    import pandas as pd

    from pqlml.model import LeadClassifier, Model
    from pqlml.project import build_features

    for _ in range(2):
        assert main(["train", "--config", str(company), "--out", str(tmp_path / "m.skops")]) == 0
    mlflow.set_tracking_uri(f"sqlite:///{company.parent / 'mlflow.db'}")
    client = MlflowClient()
    assert int(client.get_model_version_by_alias("pqlml", "champion").version) == 1
    assert int(client.get_model_version_by_alias("pqlml", "challenger").version) == 2
    pyfunc = mlflow.pyfunc.load_model("models:/pqlml@champion")
    X = build_features(company, as_of="2024-10-01")
    got = pyfunc.predict(X)
    model = Model.load(tmp_path / "m.skops")
    # and, with the touch effect the model learned on the company's touches, its uplift
    uplift = ["uplift", "uplift_low", "uplift_high"] if model.uplift is not None else []
    assert list(got.columns) == ["probability", *uplift] and len(got) == len(X)
    # version 1 (champion) and the file of version 2 were fitted identically: same scores
    assert got.probability.to_numpy() == pytest.approx(model.predict(X), rel=1e-12)
    assert pyfunc.metadata.get_input_schema().input_names()[:3] == model.features[:3]
    version = client.get_model_version_by_alias("pqlml", "champion")
    local = mlflow.artifacts.download_artifacts(version.source, dst_path=str(tmp_path / "dl"))
    text = open(f"{local}/requirements.txt").read()
    assert "scikit-learn==" in text and "pqlml" in text
    with pytest.raises(Exception, match=rf"missing inputs \['{model.features[0]}'\]"):
        pyfunc.predict(X.drop(columns=[model.features[0]]))
    assert isinstance(got, pd.DataFrame)
    # the same MLflow model has the sklearn flavour: the LeadClassifier itself, a skops file
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")   # MLflow's own gate
    clf = mlflow.sklearn.load_model("models:/pqlml/1")
    assert isinstance(clf, LeadClassifier) and list(clf.feature_names_in_) == model.features
    assert clf.predict_proba(X[model.features])[:, 1] == pytest.approx(model.predict(X),
                                                                       rel=1e-12)
    flavors = mlflow.models.get_model_info("models:/pqlml/1").flavors
    assert flavors["sklearn"]["serialization_format"] == "skops"
    assert flavors["python_function"]["artifacts"]["model"]["path"] == "artifacts/m.skops"


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_mlflow_models_serve_answers_for_the_champion(company, tmp_path):
    """`mlflow models serve` on 127.0.0.1 for models:/pqlml@champion: one request, the same
    scores as pqlml's scorer, the server stopped by its PID."""
    import json
    import os
    import shutil
    import signal
    import subprocess
    import sys
    import time
    import urllib.request
    from pathlib import Path

    from pqlml.model import Model
    from pqlml.project import build_features

    assert main(["train", "--config", str(company), "--out", str(tmp_path / "m.skops")]) == 0
    X = build_features(company, as_of="2024-10-01").head(20)
    port = _free_port()
    bin_dir = str(Path(sys.executable).parent)          # the server execs uvicorn from PATH
    mlflow_cli = shutil.which("mlflow", path=bin_dir)
    env = os.environ | {"MLFLOW_TRACKING_URI": f"sqlite:///{company.parent / 'mlflow.db'}",
                        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    server = subprocess.Popen([mlflow_cli, "models", "serve", "-m", "models:/pqlml@champion",
                               "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2)
                break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode()[-2000:]
                assert time.monotonic() < deadline, "the server did not answer /ping in 90 s"
                time.sleep(0.5)
        body = {"dataframe_split": json.loads(X.to_json(orient="split", index=False,
                                                          date_format="iso"))}
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations",
                                         json.dumps(body).encode(),
                                         {"Content-Type": "application/json"})
        answer = json.loads(urllib.request.urlopen(request, timeout=30).read())
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    served = [row["probability"] for row in answer["predictions"]]
    assert served == pytest.approx(Model.load(tmp_path / "m.skops").predict(X).tolist(), rel=1e-9)
    assert server.returncode is not None


def test_an_unreachable_store_fails_clearly_after_writing_local_outputs(company, tmp_path,
                                                                        monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{_free_port()}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    assert main(["train", "--config", str(company), "--out", str(tmp_path / "m.skops")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "Tracking failed while logging the train run" in err and "127.0.0.1" in err
    assert "saved to" in err and "nothing was registered" in err and "--no-track" in err
    assert (tmp_path / "m.skops").exists()


def test_a_locked_store_fails_clearly_and_registers_nothing(company, tmp_path, capsys):
    import sqlite3

    assert main(["train", "--config", str(company), "--out", str(tmp_path / "m.skops")]) == 0
    lock = sqlite3.connect(company.parent / "mlflow.db", timeout=0)
    lock.execute("BEGIN EXCLUSIVE")                  # another process holds the store
    try:
        assert main(["train", "--config", str(company), "--out", str(tmp_path / "m2.skops")]) == 2
    finally:
        lock.rollback()
        lock.close()
    err = " ".join(capsys.readouterr().err.split())
    assert "Tracking failed" in err and "locked" in err and (tmp_path / "m2.skops").exists()
    mlflow.set_tracking_uri(f"sqlite:///{company.parent / 'mlflow.db'}")
    versions = MlflowClient().search_model_versions("name='pqlml'")
    assert [int(v.version) for v in versions] == [1]


def test_no_email_or_user_id_reaches_the_store(company, tmp_path):
    """Privacy: artifacts and params hold domains and ids of accounts at most, also with the
    buyer backtest (who to call) and the leads' emails read."""
    import pandas as pd

    assert main(["backtest", "--config", str(company), "--out", str(tmp_path / "bt"),
                 "--buyers"]) == 0
    assert main(["retrain", "--config", str(company), "--out", str(tmp_path / "rt")]) == 0
    root = load_config(company).data.root
    users = pd.read_parquet(root / "users.parquet")
    emails = set(users.email.dropna()) | set(pd.read_parquet(root / "leads.parquet").email)
    assert list((company.parent / "mlartifacts").rglob("buyers.json"))
    ids = set(users.user_id)
    texts = [p.read_bytes().decode("utf-8", "ignore") for p in (company.parent / "mlartifacts").rglob("*")
             if p.is_file() and p.suffix in (".json", ".md", ".csv", ".txt", ".toml", ".yaml", "")]
    assert len(texts) > 10
    import re
    found = {m for text in texts for m in re.findall(r"[\w.+-]+@[\w-]+\.[\w.-]+", text)}
    assert not (found & emails) and not {i for i in ids if any(i in t for t in texts)}
