"""Bad model files, bad registry entries and store faults: each one input, its exact outcome.

Through the CLI (``pqlml score --model ...``: exit 2, one "pqlml score: error:" line naming
the file or URI with its fix, no traceback) or the API. One small company and one trained
model are shared by the module; the registry is one ``pqlml train`` in a temp dir.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import skops.io

from pqlml.cli import main
from pqlml.errors import PqlmlError
from pqlml.model import FORMAT, Model, train
from pqlml.model._file import ALLOWLIST
from pqlml.project import open_project
from pqlml.simulate import simulate


class Evil:
    """Unpickling this runs a shell command that leaves a marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class Foreign:
    """A class pqlml's models never hold."""


@pytest.fixture(scope="module")
def company(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad_models")
    sim = simulate(n_accounts=400, seed=8, out=root / "sim", months=12)
    project = open_project(sim.config)
    frame = project.snapshots()
    model = train(frame, settings=project.config, kind="logistic")
    model.save(root / "model.skops")
    return sim.config, model, frame, root


@pytest.fixture(scope="module")
def registry(company, tmp_path_factory):
    """A store where `pqlml train` registered pqlml version 1 as champion."""
    config = company[0]
    root = tmp_path_factory.mktemp("registry")
    # the store of this registry, not the one beside the shared config
    env = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{root / 'mlflow.db'}"
    try:
        assert main(["train", "--config", str(config), "--out", str(root / "m.skops"),
                     "--kind", "logistic"]) == 0
    finally:
        if env is None:
            os.environ.pop("MLFLOW_TRACKING_URI")
        else:
            os.environ["MLFLOW_TRACKING_URI"] = env
    return root


@pytest.fixture()
def in_dir(monkeypatch):
    """Work in ``path`` with the store ``path/mlflow.db`` (the tests share one config: its
    own store, beside it, is test_tracking_store.py's subject)."""
    def go(path: Path) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{path / 'mlflow.db'}")
        monkeypatch.chdir(path)
        return path
    return go


def score(config, model, tmp_path, capsys) -> str:
    """`pqlml score --model <model>`; must exit 2; returns its stderr on one line."""
    code = main(["score", "--config", str(config), "--model", str(model),
                 "--out", str(tmp_path / "scores")])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2, err
    assert err.startswith("pqlml score: error:") and "Fix" in err and "Traceback" not in err
    assert not (tmp_path / "scores").exists()
    return err


# --- model files --------------------------------------------------------------------------

def test_a_malicious_pickle_is_refused_by_the_cli_without_running_it(company, tmp_path, capsys):
    marker = tmp_path / "PWNED"
    joblib.dump({"format": "pqlml-model/1", "model": Evil(marker)}, tmp_path / "evil.joblib")
    err = score(company[0], tmp_path / "evil.joblib", tmp_path, capsys)
    assert f"{tmp_path / 'evil.joblib'} is not a pqlml model: a pickle" in err
    assert "never unpickles files" in err and "pqlml train" in err
    assert not marker.exists()


def test_a_malicious_pickle_is_refused_by_model_load_without_running_it(tmp_path):
    marker = tmp_path / "PWNED"
    joblib.dump(Evil(marker), tmp_path / "evil.joblib")
    with pytest.raises(PqlmlError, match=r"evil\.joblib is not a pqlml model: a pickle.*never "
                                         r"unpickles"):
        Model.load(tmp_path / "evil.joblib")
    assert not marker.exists()


def test_a_malicious_pickle_named_skops_is_refused_too(company, tmp_path, capsys):
    marker = tmp_path / "PWNED"
    joblib.dump(Evil(marker), tmp_path / "evil.skops")
    err = score(company[0], tmp_path / "evil.skops", tmp_path, capsys)
    assert "evil.skops is not a pqlml model: a pickle" in err
    assert not marker.exists()


def test_an_old_joblib_pqlml_model_is_refused_with_the_retrain_fix(company, tmp_path, capsys):
    joblib.dump({"format": "pqlml-model/1", "model": company[1]}, tmp_path / "model.joblib")
    err = score(company[0], tmp_path / "model.joblib", tmp_path, capsys)
    assert "model.joblib is not a pqlml model: a pickle (pqlml before version 2" in err
    assert "Fix: retrain with `pqlml train --config <config> --out model.skops`" in err


def test_an_empty_file_is_refused(company, tmp_path, capsys):
    (tmp_path / "empty.skops").touch()
    err = score(company[0], tmp_path / "empty.skops", tmp_path, capsys)
    assert "empty.skops is not a pqlml model: an empty file" in err


def test_a_text_file_is_refused(company, tmp_path, capsys):
    (tmp_path / "notes.skops").write_text("this is not a model\n")
    err = score(company[0], tmp_path / "notes.skops", tmp_path, capsys)
    assert "notes.skops is not a pqlml model: not a skops zip" in err


def test_a_truncated_model_is_refused(company, tmp_path, capsys):
    whole = (company[3] / "model.skops").read_bytes()
    (tmp_path / "cut.skops").write_bytes(whole[: len(whole) // 2])
    err = score(company[0], tmp_path / "cut.skops", tmp_path, capsys)
    assert "cut.skops is not a pqlml model: a damaged zip (truncated?)" in err


def test_a_zip_that_is_not_a_skops_file_is_refused(company, tmp_path, capsys):
    with zipfile.ZipFile(tmp_path / "other.skops", "w") as z:
        z.writestr("readme.txt", "hello")
    err = score(company[0], tmp_path / "other.skops", tmp_path, capsys)
    assert "other.skops is not a pqlml model: a zip file but not a readable skops model" in err


def test_a_skops_file_of_another_sklearn_model_is_refused(company, tmp_path, capsys):
    from sklearn.linear_model import LogisticRegression

    plain = LogisticRegression().fit(np.array([[0.0], [1.0]]), [0, 1])
    skops.io.dump(plain, tmp_path / "lr.skops")
    err = score(company[0], tmp_path / "lr.skops", tmp_path, capsys)
    assert f"lr.skops is a skops file but not a pqlml model (no '{FORMAT}' marker; found " \
           "'LogisticRegression')" in err


def test_a_model_file_of_an_older_format_asks_to_retrain_unloaded(company, tmp_path,
                                                                  monkeypatch, capsys):
    """pqlml-model/2 held a Recalibrated wrapper; its marker is read from the zip's JSON and
    the file refused before skops builds anything (as the old types are no longer allowed)."""
    skops.io.dump({"format": "pqlml-model/2", "model": Foreign()}, tmp_path / "old.skops")
    built = []
    monkeypatch.setattr(skops.io, "load", lambda *a, **k: built.append(a))
    err = score(company[0], tmp_path / "old.skops", tmp_path, capsys)
    assert f"old.skops is a pqlml model in another format (pqlml-model/2; this pqlml reads " \
           f"{FORMAT}), written by another version of pqlml; nothing in it was loaded. Fix: " \
           "retrain with `pqlml train" in err
    assert built == [] and FORMAT == "pqlml-model/4"


def test_a_skops_file_holding_a_function_reference_is_refused_unloaded(tmp_path, monkeypatch):
    skops.io.dump({"format": FORMAT, "model": os.system}, tmp_path / "fn.skops")
    built = []
    monkeypatch.setattr(skops.io, "load", lambda *a, **k: built.append(a))
    with pytest.raises(PqlmlError, match=r"fn\.skops is not a pqlml model: it holds 1 type\(s\) "
                                         r"a pqlml model never holds \(posix\.system\), so it "
                                         r"was not loaded"):
        Model.load(tmp_path / "fn.skops")
    assert built == []                              # refused before skops built anything


def test_a_skops_file_holding_a_foreign_class_is_refused(company, tmp_path, capsys):
    model = company[1]
    fake = Model(model.kind, model.features, Foreign(), model.outcome, dict(model.trained_on))
    skops.io.dump({"format": FORMAT, "model": fake}, tmp_path / "foreign.skops")
    err = score(company[0], tmp_path / "foreign.skops", tmp_path, capsys)
    assert "foreign.skops is not a pqlml model: it holds 1 type(s)" in err
    assert "test_bad_inputs_models.Foreign" in err


def test_a_directory_as_model_is_refused(company, tmp_path, capsys):
    (tmp_path / "models").mkdir()
    err = score(company[0], tmp_path / "models", tmp_path, capsys)
    assert f"{tmp_path / 'models'} is a directory, not a pqlml model file" in err


def test_both_kinds_and_calibrations_round_trip_exactly_within_the_allowlist(company, tmp_path):
    _, _, frame, _ = company
    outcome = "conversion"
    for kind in ("logistic", "gradient_boosting"):
        for calibration in ("platt", "isotonic", "none"):
            if kind == "gradient_boosting" and calibration != "platt":
                continue                                # the slowest fits: one is enough here
            model = Model.fit(frame, outcome, kind=kind, calibration=calibration)
            path = model.save(tmp_path / f"{kind}-{calibration}.skops")
            assert set(skops.io.get_untrusted_types(file=path)) <= ALLOWLIST
            back = Model.load(path)
            assert np.array_equal(back.predict(frame), model.predict(frame))
            assert back.features == model.features and back.trained_on == model.trained_on


# --- the registry --------------------------------------------------------------------------

def test_a_models_uri_with_no_store_is_refused_and_creates_nothing(company, tmp_path, capsys,
                                                                   in_dir):
    here = in_dir(tmp_path / "empty")
    err = score(company[0], "models:/x@champion", tmp_path, capsys)
    assert f"No MLflow store at {here / 'mlflow.db'}" in err
    assert list(here.iterdir()) == []


def test_drift_without_a_store_creates_nothing(company, tmp_path, capsys, in_dir):
    here = in_dir(tmp_path / "empty")
    assert main(["drift", "--config", str(company[0]), "--out", str(tmp_path / "d"),
                 "--no-track"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"No MLflow store at {here / 'mlflow.db'}" in err and "Fix" in err
    assert list(here.iterdir()) == []


@pytest.mark.parametrize("uri,version", [("models:/pqlml@champion", "pqlml/1"),
                                         ("models:/pqlml/1", "pqlml/1")])
def test_drift_takes_a_registry_uri_as_score_does(company, registry, uri, version, tmp_path,
                                                   in_dir):
    in_dir(registry)
    assert main(["drift", "--config", str(company[0]), "--model", uri, "--out",
                 str(tmp_path / "d"), "--no-track"]) == 0
    summary = json.loads((tmp_path / "d" / "summary.json").read_text())
    assert summary["model"] == (uri if version in uri else f"{uri} ({version})")
    # the registered model is the one `pqlml train` saved beside the store
    features = set(pd.read_csv(tmp_path / "d" / "drift.csv").feature)
    assert features == {"score", *Model.load(registry / "m.skops").features}


def test_quiet_train_registers_and_prints_nothing(company, tmp_path, capfd, in_dir):
    """--quiet: not a line on stdout or stderr, MLflow's own registration prints included."""
    in_dir(tmp_path)
    assert main(["train", "-q", "--config", str(company[0]), "--out", str(tmp_path / "m.skops"),
                 "--kind", "logistic"]) == 0
    assert capfd.readouterr() == ("", "")
    assert (tmp_path / "mlflow.db").exists() and (tmp_path / "m.skops").exists()


def test_drift_with_a_missing_alias_says_what_score_says(company, registry, tmp_path, capsys,
                                                         in_dir):
    in_dir(registry)
    assert main(["drift", "--config", str(company[0]), "--model", "models:/pqlml@nope",
                 "--out", str(tmp_path / "d"), "--no-track"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "MLflow has no model at models:/pqlml@nope" in err and "Traceback" not in err
    assert not (tmp_path / "d").exists()


def test_a_missing_alias_on_an_existing_store_is_named(company, registry, tmp_path, capsys,
                                                       in_dir):
    in_dir(registry)
    err = score(company[0], "models:/pqlml@nope", tmp_path, capsys)
    assert "MLflow has no model at models:/pqlml@nope" in err


def test_a_registered_model_without_pqlml_metadata_is_refused(company, registry, tmp_path,
                                                              capsys, in_dir):
    in_dir(registry)
    version = _register_foreign(registry, "other", capsys)
    err = score(company[0], f"models:/other/{version}", tmp_path, capsys)
    assert "models:/other/1 is not a pqlml model (its MLmodel has no 'pqlml_format" in err


def test_a_registered_model_of_an_older_format_asks_to_retrain(company, registry, tmp_path,
                                                               capsys, in_dir):
    in_dir(registry)
    version = _register_foreign(registry, "old", capsys,
                                metadata={"pqlml_format": "pqlml-model/2", "sha256": "0"})
    err = score(company[0], f"models:/old/{version}", tmp_path, capsys)
    assert f"models:/old/1 was logged by another version of pqlml (format pqlml-model/2; this " \
           f"pqlml reads {FORMAT}); nothing in it was loaded. Fix: train a new model" in err


def test_a_registered_model_whose_file_was_altered_is_refused(company, registry, tmp_path,
                                                              capsys, in_dir):
    in_dir(registry)
    [path] = list((registry / "mlartifacts").rglob("artifacts/m.skops"))
    original = path.read_bytes()
    path.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    try:
        err = score(company[0], "models:/pqlml@champion", tmp_path, capsys)
    finally:
        path.write_bytes(original)
    assert "The model file of models:/pqlml@champion (artifacts/m.skops) does not match the " \
           "SHA-256 recorded when it was logged" in err


# --- the store -------------------------------------------------------------------------------

def _copy_store(registry: Path, to: Path) -> Path:
    to.mkdir(parents=True)
    shutil.copy(registry / "mlflow.db", to / "mlflow.db")
    return to / "mlflow.db"


def _tables(db: Path) -> set[str]:
    with sqlite3.connect(db) as con:
        return {n for (n,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def test_a_half_migrated_store_is_repaired(company, registry, tmp_path, capsys, in_dir):
    """What two concurrent first runs left behind with MLflow 3.17 (reproduced): copies named
    _alembic_tmp_<table> beside the originals; every later migration then failed."""
    db = _copy_store(registry, tmp_path / "half")
    with sqlite3.connect(db) as con:
        for table in ("metrics", "latest_metrics"):
            con.execute(f"CREATE TABLE _alembic_tmp_{table} AS SELECT * FROM {table}")
    in_dir(db.parent)
    code = main(["score", "--config", str(company[0]), "--model", "models:/pqlml@champion",
                 "--out", str(tmp_path / "s")])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 0, err
    assert f"repaired the MLflow store {db}: dropped _alembic_tmp_latest_metrics, " \
           "_alembic_tmp_metrics" in err
    assert not {t for t in _tables(db) if t.startswith("_alembic_tmp_")}


def test_a_half_migrated_store_whose_original_is_gone_is_explained(company, registry, tmp_path,
                                                                   capsys, in_dir):
    db = _copy_store(registry, tmp_path / "lost")
    with sqlite3.connect(db) as con:
        con.execute("ALTER TABLE registered_model_tags RENAME TO _alembic_tmp_registered_model_tags")
    in_dir(db.parent)
    err = score(company[0], "models:/pqlml@champion", tmp_path, capsys)
    assert f"The MLflow store {db} is half-migrated" in err
    assert "_alembic_tmp_registered_model_tags" in err and "Rerunning cannot fix this" in err
    assert "then rerun" not in err
    assert "_alembic_tmp_registered_model_tags" in _tables(db)    # nothing guessed or dropped


def _schema(db: Path) -> tuple:
    """Every table's columns, indexes, foreign keys and CHECK value lists, and the alembic
    version. Not the DDL text: MLflow's own migrations write a CHECK's values and the
    constraints in an order that differs between two stores it creates (seen: 1 in 5)."""
    import re

    with sqlite3.connect(db) as con:
        tables = [n for (n,) in con.execute("SELECT name FROM sqlite_master WHERE type = "
                                            "'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        out = {}
        for t in tables:
            sql = con.execute("SELECT sql FROM sqlite_master WHERE name = ?", (t,)).fetchone()[0]
            indexes = sorted((i[1], i[2], tuple(c[2] for c in con.execute(
                f"PRAGMA index_info('{i[1]}')"))) for i in con.execute(f"PRAGMA index_list('{t}')"))
            out[t] = (con.execute(f"PRAGMA table_info('{t}')").fetchall(), indexes,
                      sorted(con.execute(f"PRAGMA foreign_key_list('{t}')").fetchall()),
                      sorted(tuple(sorted(v.split(", "))) for v in re.findall(r"IN \(([^)]*)\)", sql)))
        return out, con.execute("SELECT version_num FROM alembic_version").fetchall()


def test_a_store_copied_from_the_template_is_the_store_mlflow_migrates(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    from pqlml.store import open_store, store_template

    monkeypatch.setenv("PQLML_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    by_mlflow, by_template = tmp_path / "a" / "mlflow.db", tmp_path / "b" / "mlflow.db"
    by_mlflow.parent.mkdir()
    uri = f"sqlite:///{by_mlflow}"
    MlflowClient(tracking_uri=uri, registry_uri=uri).search_registered_models()
    open_store(f"sqlite:///{by_template}")
    assert store_template().parent == tmp_path / "cache"
    assert _schema(by_template) == _schema(by_mlflow)
    experiments = [MlflowClient(tracking_uri=f"sqlite:///{db}").search_experiments()
                   for db in (by_mlflow, by_template)]
    assert [[(e.experiment_id, e.name, e.artifact_location) for e in found]
            for found in experiments] == [[("0", "Default", f"{tmp_path}/mlruns/0")]] * 2


def test_a_damaged_store_template_is_rebuilt_not_copied(tmp_path, monkeypatch):
    from pqlml.store import open_store, store_template

    monkeypatch.setenv("PQLML_CACHE_HOME", str(tmp_path / "cache"))
    template = store_template()
    template.write_bytes(template.read_bytes()[:4096])                 # cut short
    open_store(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert store_template() == template and len(template.read_bytes()) > 4096
    assert "registered_models" in _tables(tmp_path / "mlflow.db")


def test_two_concurrent_first_trains_leave_a_consistent_registry(company, tmp_path):
    """Two `pqlml train` processes on a new store at once: before the lock, both raced in
    MLflow's migrations and the store was left half-migrated. With an empty cache folder
    both also race to build the store template."""
    config = company[0]
    env = os.environ | {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    env["PQLML_CACHE_HOME"] = str(tmp_path / "cache")
    procs = [subprocess.Popen([sys.executable, "-m", "pqlml.cli", "train", "--config",
                               str(config), "--out", f"m{i}.skops", "--kind", "logistic"],
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in (1, 2)]
    outs = [p.communicate(timeout=240) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0 and "Traceback" not in err, err[-2000:]
    assert not {t for t in _tables(tmp_path / "mlflow.db") if t.startswith("_alembic_tmp_")}
    from mlflow.tracking import MlflowClient
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    versions = sorted(int(v.version) for v in client.search_model_versions("name='pqlml'"))
    assert versions == [1, 2]
    aliases = client.get_registered_model("pqlml").aliases
    assert aliases == {"champion": "1", "challenger": "2"} or aliases == {"champion": 1,
                                                                            "challenger": 2}
    said = "".join(err for _, err in outs)
    assert "registered pqlml version 1 as @champion" in " ".join(said.split())
    assert "registered pqlml version 2 as @challenger" in " ".join(said.split())


def test_two_concurrent_first_retrains_leave_one_champion_and_a_store_that_opens(company, tmp_path):
    """Two `pqlml retrain` on a new store at once (the issue's case: both failed in a migration
    race and every later command failed): one becomes the first champion, the other waits
    for the lock, then compares its challenger with that champion."""
    config = company[0]
    env = os.environ | {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    procs = [subprocess.Popen([sys.executable, "-m", "pqlml.cli", "retrain", "--config",
                               str(config), "--out", f"r{i}"], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in (1, 2)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0 and "Traceback" not in err, err[-2000:]
    actions = sorted(json.loads((tmp_path / f"r{i}" / "decision.json").read_text())["action"]
                     for i in (1, 2))
    assert actions[0] == "first_champion" and actions[1] in ("promoted", "kept", "not_compared")
    assert not {t for t in _tables(tmp_path / "mlflow.db") if t.startswith("_alembic_tmp_")}
    from mlflow.tracking import MlflowClient
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)      # the store opens
    versions = sorted(int(v.version) for v in client.search_model_versions("name='pqlml'"))
    assert versions == ([1] if actions[1] == "not_compared" else [1, 2])
    assert "champion" in client.get_registered_model("pqlml").aliases


def _register_foreign(registry, name: str, capsys, metadata=None) -> str:
    """Register, as ``name``, an MLflow pyfunc model pqlml did not write; its version."""
    import mlflow
    import pandas as pd

    class Foreign(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input: pd.DataFrame) -> pd.DataFrame:
            return model_input

    mlflow.set_tracking_uri(f"sqlite:///{registry / 'mlflow.db'}")
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(name=name, python_model=Foreign(), pip_requirements=[],
                                       registered_model_name=name, metadata=metadata)
    capsys.readouterr()                             # MLflow's own registration messages
    return info.registered_model_version
