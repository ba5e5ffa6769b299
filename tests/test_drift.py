"""Drift: PSI by hand, a shifted distribution is flagged, an unshifted one is not, and
``pqlml drift`` finds a shift put into the event log on purpose."""

from __future__ import annotations

import json
import shutil

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from pqlml.cli import main
from pqlml.drift import drift_table, psi
from pqlml.simulate import simulate


def test_psi_equals_the_formula_computed_by_hand():
    ref = np.array([0] * 50 + [1] * 30 + [5] * 20, float)
    cur = np.array([0] * 20 + [1] * 30 + [5] * 40 + [np.nan] * 10, float)
    # bins from ref's quantiles: (-inf, 0], (0, 1], (1, inf), missing
    r, c = np.array([.5, .3, .2, 1e-4]), np.array([.2, .3, .4, .1])
    assert psi(ref, cur, bins=10) == pytest.approx(float(np.sum((c - r) * np.log(c / r))))
    assert psi(ref, ref) == 0.0


def test_a_shifted_feature_is_flagged_and_a_resample_is_not():
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"steady": rng.poisson(3, 5_000), "shifted": rng.poisson(3, 5_000),
                        "mostly_zero": rng.binomial(1, .1, 5_000) * rng.poisson(4, 5_000)})
    cur = pd.DataFrame({"steady": rng.poisson(3, 1_000), "shifted": rng.poisson(6, 1_000),
                        "mostly_zero": rng.binomial(1, .1, 1_000) * rng.poisson(4, 1_000)})
    table = drift_table(ref, cur, ["steady", "shifted", "mostly_zero"]).set_index("feature")
    assert table.loc["shifted", "flagged"] and table.loc["shifted", "status"] == "drift"
    assert table.loc["steady", "psi"] < 0.05 and table.loc["mostly_zero", "psi"] < 0.05
    assert not table.loc[["steady", "mostly_zero"], "flagged"].any()
    assert table.index[0] == "shifted"                       # worst first


@pytest.fixture(scope="module")
def company(tmp_path_factory):
    root = tmp_path_factory.mktemp("drift")
    sim = simulate(n_accounts=1_500, seed=6, out=root / "sim", months=12)
    assert main(["train", "--config", str(sim.config), "--out", str(root / "m.skops"),
                 "--no-track"]) == 0
    return sim.config, root / "m.skops"


def test_drift_flags_a_feature_shifted_on_purpose(company, tmp_path, monkeypatch):
    config, model = company
    # one store for both configs (the copy's default store would be beside the copy)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)
    feature = "events_file_uploaded_30d"

    assert main(["drift", "--config", str(config), "--model", str(model), "--out",
                 str(tmp_path / "before")]) == 0
    before = pd.read_csv(tmp_path / "before" / "drift.csv").set_index("feature")
    assert not before.loc[feature, "flagged"], before.loc[feature]

    # the same company, but in the 30 days before the last as_of every file upload
    # happens four times (new event ids): only that event's features should move
    shifted = tmp_path / "shifted"
    shutil.copytree(config.parent, shifted)
    events = pd.read_parquet(shifted / "events.parquet")
    as_of = pd.Timestamp("2024-12-01", tz="UTC")
    late = events[(events.event == "file_uploaded") & (events.ts >= as_of - pd.Timedelta(days=30))
                  & (events.ts < as_of)]
    copies = [late.assign(event_id=late.event_id + (k + 1) * 10**8) for k in range(3)]
    pd.concat([events, *copies]).to_parquet(shifted / "events.parquet")
    assert main(["drift", "--config", str(shifted / config.name), "--model", str(model),
                 "--as-of", "2024-12-01", "--out", str(tmp_path / "after")]) == 0
    after = pd.read_csv(tmp_path / "after" / "drift.csv").set_index("feature")
    assert after.loc[feature, "flagged"] and after.loc[feature, "psi"] > 4 * before.loc[feature, "psi"]
    assert after.loc[feature, "current_mean"] == pytest.approx(4 * before.loc[feature, "current_mean"],
                                                               rel=0.01)
    # engagement_score weighs file uploads (1 each in the simulated config): it moves too
    untouched = [f for f in after.index if "file_uploaded" not in f and not f.startswith("events_")
                 and f not in ("score", "engagement_score")]
    assert (after.loc[untouched, "psi"] - before.loc[untouched, "psi"]).abs().max() < 1e-9
    assert (tmp_path / "after" / "drift.png").stat().st_size > 10_000

    # logged to MLflow: the table, the plot, a summary (no metric per feature)
    summary = json.loads((tmp_path / "after" / "summary.json").read_text())
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.get_experiment_by_name("simulated-plg")
    run = client.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"])[0]
    assert run.info.run_name == "drift simulated-plg 2024-12-01"
    assert f"psi_{feature}" not in run.data.metrics
    assert run.data.metrics["psi_score"] == pytest.approx(summary["psi_score"])
    features = after.drop(index="score")
    assert run.data.metrics["max_psi"] == pytest.approx(features.psi.max())
    assert run.data.metrics["n_features_drifted"] == features.flagged.sum() >= 1
    assert {a.path for a in client.list_artifacts(run.info.run_id, "drift")} >= {
        "drift/drift.csv", "drift/drift.png", "drift/summary.json", "drift/psi_table.json"}


def test_drift_without_a_champion_says_what_to_do(company, tmp_path, monkeypatch, capsys):
    config, _ = company
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert main(["drift", "--config", str(config), "--out", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert "No MLflow store at" in err and "pqlml retrain" in err and "Fix" in err
    assert not (tmp_path / "mlflow.db").exists()          # reading never creates a store
    assert not (config.parent / "mlflow.db").exists()     # (the project's, beside its config)
