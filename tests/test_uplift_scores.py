"""The uplift in the scores (issue 27, item 5): `pqlml train` keeps a touch's effect beside the
model, `Scorer.score` writes it beside the probability, the tier method `uplift` routes the
capacity by it and the playbook sends worked accounts a touch barely changes to self-serve.

A small simulated company with touches (half of them randomised), its features cut to a few
columns so the learner fits in seconds; and a fully targeted one (no overlap)."""

import os
import tomllib

import numpy as np
import pandas as pd
import pytest
import skops.io
from simulated import with_features

from pqlml import runner
from pqlml.config import config_from_dict, load_config
from pqlml.crm import crm_files
from pqlml.errors import PqlmlError
from pqlml.model import Model
from pqlml.model._file import ALLOWLIST, FORMAT
from pqlml.model._pyfunc import outputs
from pqlml.rules import SELF_SERVE_MOTION, motion_for
from pqlml.score import Scorer
from pqlml.simulate import simulate
from pqlml.uplift._scoring import UPLIFT_COLUMNS, segments_of

# the company and its training (~30 s on a quiet machine) are shared by every test here
pytestmark = pytest.mark.slow

FEATURES = """
[features]
events = ["task_created", "invite_sent"]
windows = [30]

[uplift]
in_scores = true
"""


def _company(folder, randomised_share):
    simulate(n_accounts=1500, seed=2, out=folder, months=10, randomised_share=randomised_share)
    config = folder / "pqlml.toml"
    with_features(config, FEATURES)
    return config


def _project(config, **sections):
    """The project of ``config`` with its TOML ``sections`` (name -> {key: value}) updated."""
    from pqlml.project import open_project

    raw = tomllib.loads(config.read_text())
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return open_project(config_from_dict(raw, config.parent, config))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("uplift_scores")
    config = _company(folder / "company", 0.5)
    model_path = folder / "model.skops"
    result = runner.train(config, model_path, track=False)
    project = result.project
    as_of = project.dates()[-1]
    X = project.features([as_of])
    return {"config": config, "path": model_path, "result": result, "project": project,
            "X": X, "scores": Scorer.load(model_path).score(X, project=project).scores,
            "folder": folder}


def _rescore(trained, **sections):
    """Scores of the trained model under the config with ``sections`` updated."""
    project = _project(trained["config"], **sections)
    return Scorer.load(trained["path"]).score(trained["X"], project=project).scores


def test_train_keeps_the_learner_with_its_segments(trained):
    model = trained["result"].model
    info = model.trained_on["uplift"]
    learner = load_config(trained["config"]).uplift.learner
    assert model.uplift is not None and info["learner"] == learner == model.uplift.name
    assert info["identifiable"] == model.uplift.identifiable and info["identifiable"]
    assert set(info["identifiable"]) | set(info["unidentifiable"]) <= {
        "smb", "mid_market", "enterprise", "unknown"}
    assert info["touched_rows"] > 0 and info["rows"] == model.trained_on["rows"]


def test_the_uplift_columns_are_the_stored_learners_predictions(trained):
    s, X = trained["scores"], trained["X"]
    model = Model.load(trained["path"])
    rows = X.set_index("account_id").loc[s.account_id].reset_index()
    segment = trained["project"].with_attributes(rows[["account_id"]])["segment"]
    ok = np.isin(segments_of(segment, len(rows)), model.uplift.identifiable)
    assert ok.any() and s.uplift.notna().to_numpy().tolist() == ok.tolist()
    Z = rows.loc[ok, model.uplift.features].to_numpy(float)
    # the learner's own predictions, an effect on a probability kept within [-1, 1]
    assert np.array_equal(s.uplift.to_numpy()[ok], np.clip(model.uplift.learner.predict(Z), -1, 1))
    low, high = model.uplift.learner.predict_interval(Z)
    assert np.array_equal(s.uplift_low.to_numpy()[ok], np.clip(low, -1, 1))
    assert np.array_equal(s.uplift_high.to_numpy()[ok], np.clip(high, -1, 1))
    assert (s.uplift_note[ok] == "").all()
    for seg, note in zip(np.asarray(segments_of(segment, len(rows)))[~ok], s.uplift_note[~ok]):
        assert note == f"not identifiable in segment {seg}: {model.uplift.unidentifiable[seg]}"
    # the pyfunc served by MLflow returns the same, given the accounts' segment
    served = outputs(model, rows.assign(segment=segment.to_numpy()))
    assert np.array_equal(served.probability, s.probability)
    assert served[list(UPLIFT_COLUMNS)].equals(s[list(UPLIFT_COLUMNS)].reset_index(drop=True))


def test_the_model_file_round_trips_and_a_tampered_uplift_is_refused(trained, tmp_path):
    path = trained["path"]
    assert set(skops.io.get_untrusted_types(file=path)) <= ALLOWLIST
    back, model = Model.load(path), trained["result"].model
    X = trained["X"][model.features].head(300)
    assert np.array_equal(back.uplift.learner.predict(X.to_numpy(float)),
                          model.uplift.learner.predict(X.to_numpy(float)))
    back.uplift.learner.effect_ = os.system                # a function where a stage was
    skops.io.dump({"format": FORMAT, "model": back}, tmp_path / "tampered.skops")
    with pytest.raises(PqlmlError, match=r"tampered\.skops is not a pqlml model: it holds 1 "
                                         r"type\(s\) a pqlml model never holds \(posix\.system\)"):
        Model.load(tmp_path / "tampered.skops")


def test_tier_method_uplift_calls_the_capacitys_largest_identifiable_effects(trained):
    s = _rescore(trained, tiers={"method": "uplift"}, capacity={"per_period": 40})
    intent = s.tier.isin(["tier_1", "tier_3"])
    top = s.uplift.dropna().sort_values(ascending=False)
    assert top.iloc[39] > top.iloc[40]                     # no tie at the cutpoint
    assert set(s.account_id[intent]) == set(s.account_id[top.index[:40]])
    assert s.uplift[intent].notna().all() and intent.sum() == 40
    first = s.reason_1[intent]
    assert first.str.match(r"\(uplift\) a touch (adds about|changes it by about) [+-]\d+\.\d "
                           r"pts to the chance of converting \(95% CI [+-]\d+\.\d to "
                           r"[+-]\d+\.\d\)$").all()
    # the model's own reasons move down one place
    assert (s.reason_2[intent] == trained["scores"].set_index("account_id").loc[
        s.account_id[intent], "reason_1"].to_numpy()).all()


def test_tier_method_uplift_without_an_uplift_names_the_fix(trained, tmp_path):
    model = Model.load(trained["path"])
    model.uplift, model.trained_on["uplift"] = None, {"none": "[uplift] in_scores = false"}
    model.save(tmp_path / "plain.skops")
    project = _project(trained["config"], tiers={"method": "uplift"})
    with pytest.raises(PqlmlError, match=r'method = "uplift" routes capacity by a touch\'s '
                                         r"estimated effect, and model plain\.skops@\w+ has no "
                                         r"uplift: \[uplift\] in_scores = false\. Fix: retrain "
                                         r"with the sales touches"):
        Scorer.load(tmp_path / "plain.skops").score(trained["X"], project=project)


def test_self_serve_moves_exactly_the_worked_rows_a_touch_barely_changes(trained):
    base = trained["scores"]
    worked = base.tier.isin(["tier_1", "tier_2"]) & base.uplift.notna()
    threshold = float(base.uplift_high[worked].median())
    s = _rescore(trained, playbook={"self_serve_uplift": threshold})
    moved = (base.tier.isin(["tier_1", "tier_2"]) & (base.uplift_high <= threshold)).to_numpy()
    assert 0 < moved.sum() < worked.sum()
    assert (s.motion[moved] == SELF_SERVE_MOTION).all()
    assert s.reason_1[moved].str.startswith("(uplift) likely to buy on its own: a touch adds "
                                            "little or nothing (about ").all()
    cfg = trained["project"].config
    segment = trained["project"].with_attributes(s[["account_id"]])["segment"]
    expected = [motion_for(t, g, cfg.playbook.complexity, cfg.playbook.motions)
                for t, g in zip(s.tier, segment)]
    assert (s.motion[~moved] == np.asarray(expected, dtype=object)[~moved]).all()
    assert not s.reason_1[~moved].str.startswith("(uplift)").any()
    # off: nobody moves
    off = _rescore(trained, playbook={"self_serve_uplift": -1})
    assert not off.reason_1.str.startswith("(uplift)").any()


def test_the_crm_files_carry_the_uplift_in_points(trained, tmp_path):
    s = trained["scores"].head(20)
    gone = pd.DataFrame(columns=["account_id", "user_id", "code", "reason"])
    sf = crm_files(s, gone, "salesforce", tmp_path)[tmp_path / "salesforce.csv"]
    hs = crm_files(s, gone, "hubspot", tmp_path)[tmp_path / "hubspot.csv"]
    for table, names in ((sf, ("PQA_Uplift__c", "PQA_Uplift_Low__c", "PQA_Uplift_High__c")),
                         (hs, ("pqa_uplift", "pqa_uplift_low", "pqa_uplift_high"))):
        for name, column in zip(names, UPLIFT_COLUMNS):
            assert table[name].equals((s[column] * 100).round(1))
    assert list(sf.columns[5:9]) == ["PQA_Uplift__c", "PQA_Uplift_Low__c", "PQA_Uplift_High__c",
                                     "PQA_Uplift_Note__c"]


def test_in_scores_false_learns_no_uplift(trained):
    from pqlml.runner._models import _scoring_uplift

    project = _project(trained["config"], uplift={"in_scores": False})
    frame = trained["result"].frame
    assert _scoring_uplift(project, frame, "conversion", trained["result"].model.features) == (
        None, {"none": "[uplift] in_scores = false"})


def test_fully_targeted_touches_train_without_uplift_and_say_which_segments(tmp_path, capsys):
    from pqlml.cli import main

    # the company tests/test_uplift_cli.py refuses, with every feature: the classifier of a
    # touch then tells the touched (the most active) from the rest in every segment
    simulate(n_accounts=1_200, seed=5, out=tmp_path / "targeted", months=9, randomised_share=0.0)
    config = tmp_path / "targeted" / "pqlml.toml"
    config.write_text(config.read_text() + "\n[uplift]\nin_scores = true\n")
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "m.skops"),
                 "--no-track"]) == 0
    model = Model.load(tmp_path / "m.skops")
    info = model.trained_on["uplift"]
    assert model.uplift is None and not info["identifiable"] and info["unidentifiable"]
    assert info["none"].startswith("no segment has comparable touched and untouched accounts.")
    shown = " ".join(capsys.readouterr().err.split())
    assert "no uplift in the scores: no segment has comparable touched and untouched" in shown
    for seg in info["unidentifiable"]:
        assert f"{seg}:" in shown
    from pqlml.project import open_project
    project = open_project(load_config(config))
    X = project.features([project.dates()[-1]])
    scores = Scorer.load(tmp_path / "m.skops").score(X, project=project).scores
    assert not set(UPLIFT_COLUMNS) & set(scores.columns)
