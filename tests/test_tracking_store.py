"""One project, one MLflow store: commands run from different folders find the store beside
the config and its champion; what each run logs (names, quality with CIs, dataset, drift
summary) and what the registered version says of itself."""

from __future__ import annotations

import hashlib
import json
import re
from importlib.metadata import version as installed
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from pqlml.cli import main
from pqlml.config import load_config
from pqlml.errors import ConfigError
from pqlml.simulate import simulate
from pqlml.track import tracking_uri

DATE = r"\d{4}-\d\d-\d\d"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """`pqlml retrain` run from folder a/, then `pqlml drift` and `pqlml score --model
    models:/pqlml@champion` from folder b/; the config lives in proj/."""
    root = tmp_path_factory.mktemp("tracking_store")
    sim = simulate(n_accounts=400, seed=8, out=root / "proj", months=12)
    sim.config.write_text(sim.config.read_text() + "\n[model]\nkind = \"logistic\"\n"
                          "bootstrap = 20\n")
    mp = pytest.MonkeyPatch()
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    codes = []
    try:
        for folder, argv in (("a", ["retrain", "--out", str(root / "out" / "rt")]),
                             ("b", ["drift", "--out", str(root / "out" / "dr")]),
                             ("b", ["score", "--model", "models:/pqlml@champion",
                                    "--out", str(root / "out" / "scores")])):
            (root / folder).mkdir(exist_ok=True)
            mp.chdir(root / folder)
            codes.append(main([argv[0], "--config", str(sim.config), *argv[1:]]))
    finally:
        mp.undo()
    assert codes == [0, 0, 0]
    uri = f"sqlite:///{root / 'proj' / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    exp = client.get_experiment_by_name("simulated-plg")
    runs = {r.data.tags["pqlml.command"]: r for r in client.search_runs([exp.experiment_id])}
    return root, sim.config, client, runs


def test_two_folders_find_one_store_beside_the_config(project):
    root, config, client, runs = project
    assert (root / "proj" / "mlflow.db").is_file() and (root / "proj" / "mlartifacts").is_dir()
    assert [p.name for p in (root / "a").iterdir()] == []          # nothing in either cwd
    assert [p.name for p in (root / "b").iterdir()] == []
    assert not list(root.rglob("mlruns"))                          # artifacts where documented
    assert set(runs) == {"retrain", "drift"}
    champion = client.get_model_version_by_alias("pqlml", "champion")
    assert int(champion.version) == 1 and champion.run_id == runs["retrain"].info.run_id
    scores = pd.read_csv(root / "out" / "scores" / "scores.csv")
    assert set(scores.model_version) == {"pqlml/1"}
    artifacts = Path(mlflow.get_run(champion.run_id).info.artifact_uri.removeprefix("file://"))
    assert artifacts.is_relative_to(root / "proj" / "mlartifacts")


def test_run_names_tags_and_the_champion_runs_quality(project):
    root, _, _, runs = project
    rt, dr = runs["retrain"], runs["drift"]
    summary = json.loads((root / "out" / "dr" / "summary.json").read_text())
    assert re.fullmatch(rf"retrain simulated-plg {DATE}\.\.{DATE}", rt.info.run_name)
    assert dr.info.run_name == f"drift simulated-plg {summary['as_of']}"
    assert rt.data.tags["pqlml.kind"] == dr.data.tags["pqlml.kind"] == "logistic"
    quality = json.loads((root / "out" / "rt" / "decision.json").read_text())["quality"]
    for k in ("roc_auc", "pr_auc", "brier", "ece"):
        low, high = rt.data.metrics[f"{k}_ci_low"], rt.data.metrics[f"{k}_ci_high"]
        assert rt.data.metrics[k] == pytest.approx(quality[k])
        assert [low, high] == pytest.approx(quality[f"{k}_ci"]) and low <= high
    assert 0.5 < rt.data.metrics["roc_auc"] <= 1


def test_each_run_logs_its_dataset_and_config(project):
    root, config, client, runs = project
    users = pd.read_parquet(root / "proj" / "users.parquet")
    for command, context in (("retrain", "training"), ("drift", "drift")):
        run = runs[command]
        (found,) = run.inputs.dataset_inputs
        fingerprint = json.loads(Path(mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, artifact_path="data/fingerprint.json",
            dst_path=str(root / "dl" / command))).read_text())
        digest = hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()
        assert found.dataset.digest == digest[:32]
        assert found.tags[0].value == context
        assert json.loads(found.dataset.profile)["num_rows"] > 0
        text = found.dataset.schema + found.dataset.profile + found.dataset.source
        assert not any(e in text for e in users.email.dropna().head(50))
        assert not any(u in text for u in users.user_id.head(50))
        config_text = mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/config/pqlml.toml")
        assert config_text == config.read_text()


def test_drift_logs_a_summary_and_a_table_not_a_metric_per_feature(project):
    root, _, client, runs = project
    dr = runs["drift"]
    table = pd.read_csv(root / "out" / "dr" / "drift.csv")
    features = table[table.feature != "score"]
    assert [k for k in dr.data.metrics if k.startswith("psi_")] == ["psi_score"]
    assert dr.data.metrics["max_psi"] == pytest.approx(features.psi.max())
    assert dr.data.metrics["n_features"] == len(features)
    assert dr.data.metrics["n_features_drifted"] == (features.psi > 0.25).sum()
    assert dr.data.metrics["share_drifted"] == pytest.approx((features.psi > 0.25).mean())
    files = {a.path for a in client.list_artifacts(dr.info.run_id, "drift")}
    assert {"drift/psi_table.json", "drift/drift.csv"} <= files
    logged = pd.read_json(mlflow.artifacts.download_artifacts(
        run_id=dr.info.run_id, artifact_path="drift/psi_table.json",
        dst_path=str(root / "dl" / "table")), orient="split")
    assert sorted(logged.feature) == sorted(table.feature)


def test_the_registered_version_describes_itself_and_pins_its_requirements(project,
                                                                              monkeypatch):
    import mlflow.sklearn

    from pqlml.model import LeadClassifier, Model

    root, _, client, runs = project
    version = client.get_model_version_by_alias("pqlml", "champion")
    model = Model.load(root / "out" / "rt" / "model.skops")
    t = model.trained_on
    assert f"as_of {t['as_of_first']}..{t['as_of_last']}" in version.description
    assert f"roc_auc {runs['retrain'].data.metrics['roc_auc']:.4g}" in version.description
    assert runs["retrain"].data.params["data_sha256"][:16] in version.description
    local = mlflow.artifacts.download_artifacts(version.source, dst_path=str(root / "v"))
    lines = Path(local, "requirements.txt").read_text().split()
    assert f"pqlml=={installed('pqlml')}" in lines
    assert f"scikit-learn=={installed('scikit-learn')}" in lines
    assert lines and all("==" in line for line in lines)
    from pqlml.project import build_features
    X = build_features(load_config(root / "proj" / "pqlml.toml"), as_of=t["as_of_last"]).head(50)
    pyfunc = mlflow.pyfunc.load_model("models:/pqlml@champion")
    assert pyfunc.predict(X).probability.to_numpy() == pytest.approx(model.predict(X), rel=1e-9)
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")   # MLflow's own gate
    clf = mlflow.sklearn.load_model("models:/pqlml@champion")
    assert isinstance(clf, LeadClassifier)
    assert clf.predict_proba(X[model.features])[:, 1] == pytest.approx(model.predict(X), rel=1e-9)


def test_the_store_is_the_configs_uri_then_the_environment_then_beside_the_config(
        tmp_path, monkeypatch):
    config = tmp_path / "proj" / "pqlml.toml"
    config.parent.mkdir()
    config.write_text('[data.events]\nsource = "events.parquet"\n')
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    assert tracking_uri(load_config(config)) == f"sqlite:///{tmp_path / 'proj' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    assert tracking_uri(load_config(config)) == "http://127.0.0.1:9"
    config.write_text(config.read_text() + '[tracking]\nuri = "sqlite:///../stores/runs.db"\n')
    assert tracking_uri(load_config(config)) == f"sqlite:///{tmp_path / 'stores' / 'runs.db'}"
    config.write_text(config.read_text().replace("sqlite:///../stores/runs.db", "runs.db"))
    with pytest.raises(ConfigError, match=r"'tracking.uri' setting .* Got 'runs.db'"):
        load_config(config)
