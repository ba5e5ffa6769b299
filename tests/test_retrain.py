"""Monthly retraining: champion/challenger on the same latest periods, promotion by margin.

One simulated company is retrained as the months go by (a config whose schedule ends
earlier stands for an earlier month): a champion trained on shuffled labels is replaced
by a real challenger; a shuffled challenger is refused; a failing one is refused; a
rerun with no new labelled period is not compared. Every decision is logged to MLflow.
"""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from pqlml.cli import main
from pqlml.model import Model, top_k_capture
from pqlml.project import open_project
from pqlml import runner
from pqlml.retrain import better
from simulated import company_config


def run_retrain(config, out, **kwargs):
    """The runner's retrain as (decision, registered (version, alias) or None, run id)."""
    result = runner.retrain(config, out, **kwargs)
    return result.decision, result.registered, result.run_id


def shuffled(frame, outcome):
    """A challenger that learns nothing: labels permuted."""
    frame = frame.copy()
    frame[outcome] = np.random.default_rng(0).permutation(frame[outcome].to_numpy())
    return Model.fit(frame, outcome, kind="logistic")


def broken(frame, outcome):
    raise RuntimeError("the trial estimator diverged")


@pytest.fixture(scope="module")
def months(shared_company, tmp_path_factory):
    """Configs of one company at three months: schedule ends 2024-07, 2024-09, 2024-12."""
    root = tmp_path_factory.mktemp("retrain")
    sim = shared_company(n_accounts=1_500, seed=4, months=12)
    # a fixed kind: the decision is what is tested (the forward choice, auto, in test_select.py)
    text = company_config(sim, root / "sim", "[model]\nkind = \"logistic\"\nbootstrap = 50\n"
                          ).read_text()
    assert "end = 2024-12-01" in text
    out = {}
    for name, end in (("jul", "2024-07-01"), ("sep", "2024-09-01"), ("dec", "2024-12-01")):
        out[name] = root / "sim" / f"{name}.toml"
        out[name].write_text(text.replace("end = 2024-12-01", f"end = {end}"))
    return out


@pytest.fixture()
def store(tmp_path, monkeypatch):
    # a store per test (the configs share a folder; their default store is beside them)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def aliases(client, name="pqlml"):
    return {a: int(v) for a, v in client.get_registered_model(name).aliases.items()}


def test_champion_challenger_sequence(months, store):
    # July: no champion yet -> the first model (a useless one) becomes champion
    first, registered, _ = run_retrain(months["jul"], store / "r1", fit=shuffled)
    assert first.action == "first_champion" and registered == (1, "champion")
    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")

    # September: the real recipe beats the shuffled champion on the months after its window
    sep, registered, run_id = run_retrain(months["sep"], store / "r2")
    assert sep.action == "promoted", sep.reason
    assert sep.periods == ["2024-08-01", "2024-09-01"]          # after 2024-07-01 + 28 days
    assert registered == (2, "champion")
    assert aliases(client) == {"champion": 2, "previous": 1}
    run = client.get_run(run_id)
    assert run.data.tags["pqlml.decision"] == "promoted"
    assert run.data.metrics["challenger_captured_at_capacity"] == sep.challenger
    assert run.data.metrics["champion_captured_at_capacity"] == sep.champion
    saved = json.loads((store / "r2" / "decision.json").read_text())
    assert saved["action"] == "promoted" and saved["champion_version"] == 1

    # the champion's figure, recomputed independently: the shuffled model (version 1) scored
    # on the compared months, top 10 per month (capacity.per_period), converters counted
    project = open_project(months["sep"])
    outcome = project.config.outcomes.target
    frame = project.snapshots(outcome)
    test = frame[frame.as_of.dt.strftime("%Y-%m-%d").isin(sep.periods)]
    v1 = mlflow.pyfunc.load_model("models:/pqlml/1").predict(test)["probability"].to_numpy()
    by_hand = sum(top_k_capture(test[outcome].to_numpy()[m], v1[m], 10)
                  for m in [(test.as_of == d).to_numpy() for d in pd.to_datetime(sep.periods, utc=True)])
    assert sep.champion == by_hand

    # December: a challenger trained on shuffled labels is refused; the champion stays
    dec, registered, _ = run_retrain(months["dec"], store / "r3", fit=shuffled)
    assert dec.action == "kept" and dec.challenger < dec.champion, dec.reason
    assert dec.periods == ["2024-10-01", "2024-11-01", "2024-12-01"]
    assert registered == (3, "challenger")
    assert aliases(client) == {"champion": 2, "previous": 1, "challenger": 3}

    # a failing challenger is refused, registers nothing and the CLI-level call fails loudly
    failed, registered, run_id = run_retrain(months["dec"], store / "r4", fit=broken)
    assert failed.action == "failed" and "diverged" in failed.reason and registered is None
    assert client.get_run(run_id).data.tags["pqlml.decision"] == "failed"
    assert len(client.search_model_versions("name='pqlml'")) == 3
    assert aliases(client)["champion"] == 2
    # its decision.json is JSON: a challenger's missing figure is null, never NaN
    text = (store / "r4" / "decision.json").read_text()
    assert "NaN" not in text and json.loads(text)["challenger"] is None

    # the same month again, through the CLI: the champion (trained through September) is
    # compared on Oct-Dec; an identical recipe with more data must clear the 2% margin
    assert main(["retrain", "--config", str(months["dec"]), "--out", str(store / "r5")]) == 0
    again = json.loads((store / "r5" / "decision.json").read_text())
    assert again["action"] in ("promoted", "kept") and again["periods"] == dec.periods

    # an earlier month than the champion's window: nothing to compare, nothing trained
    stale, registered, _ = run_retrain(months["jul"], store / "r6")
    assert stale.action == "not_compared" and registered is None
    assert "no labelled period after the champion's training window" in stale.reason


def test_a_failed_challenger_makes_the_cli_exit_non_zero(months, store, monkeypatch, capsys):
    import pqlml.retrain as retrain_module

    real = retrain_module.retrain
    monkeypatch.setattr(retrain_module, "retrain", lambda *a, **k: real(*a, **(k | {"fit": broken})))
    assert main(["retrain", "--config", str(months["jul"]), "--out", str(store / "r")]) == 2
    assert "retraining failed, the champion was kept" in capsys.readouterr().err
    assert not (store / "r" / "model.skops").exists()


@pytest.mark.parametrize("metric,challenger,champion,margin,expected", [
    ("captured_at_capacity", 103, 100, 0.02, True),
    ("captured_at_capacity", 102, 100, 0.02, False),     # ties with the margin do not win
    ("roc_auc", 0.80, 0.78, 0.02, True),
    ("brier", 0.0190, 0.0200, 0.02, True),              # lower is better
    ("brier", 0.0199, 0.0200, 0.02, False),
    ("pr_auc", float("nan"), 0.1, 0.0, False),          # a failed figure never wins
])
def test_better_by_margin(metric, challenger, champion, margin, expected):
    assert better(metric, challenger, champion, margin=margin) is expected
