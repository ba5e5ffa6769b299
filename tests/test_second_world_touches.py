"""Sales touches on the second world (``benchmarks/worlds/second_world.py`` with
``outreach=True``): a stranger's reach-outs (``outreach.csv``, dates only) and pilot
(``pilot.csv``, groups "Contacted" / "Control"), read through its own config, with an effect
pqlml's simulator does not have (a security review, a large company, a consultant's
workspace). Every truth here is read from the world's own files.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pqlml import runner
from pqlml.experiment import analyze
from pqlml.project import open_project
from simulated import second_world

pytestmark = pytest.mark.slow

world = second_world()


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("tableau_blanc_outreach")
    config = world.write_world(out, n_orgs=2000, months=10, seed=3, test_periods=3,
                               outreach=True)
    truth = pd.read_parquet(out / "truth_monthly.parquet")
    segments = pd.read_parquet(out / "workspaces.parquet", columns=["workspace_id",
                                                                    "sales_segment"])
    truth = truth.merge(segments, on="workspace_id")
    truth["effect"] = truth.p_if_contacted - truth.p_if_not
    return config, out, truth


def test_the_world_reaches_out_as_its_truth_says(written):
    _, out, truth = written
    reach = pd.read_csv(out / "outreach.csv")
    pilot = pd.read_csv(out / "pilot.csv")
    assert len(reach) == truth.contacted.sum()
    # the pilot is a coin: half of it contacted, and nobody in Control is reached that month
    assert set(pilot.group) == {"Contacted", "Control"}
    assert abs((pilot.group == "Contacted").mean() - 0.5) < 0.01
    control = truth[truth.pilot_arm == "Control"]
    assert not control.contacted.any() and truth[truth.pilot_arm == "Contacted"].contacted.all()
    # only a reached workspace's chance changes; the targeted rest are the largest workspaces
    untouched = truth[~truth.contacted]
    assert np.allclose(untouched.p_upgrade, untouched.p_if_not)
    assert truth[truth.sales_segment == "Enterprise"].contacted.mean() > 0.9


def test_pqlml_reads_the_reach_outs_and_the_pilot_in_their_own_words(written):
    config, out, _ = written
    project = open_project(config)
    touches, holdouts = project.touches(), project.holdouts()
    pilot = pd.read_csv(out / "pilot.csv")
    assert len(touches) == len(pd.read_csv(out / "outreach.csv"))
    assert (holdouts.arm == "touch").sum() == (pilot.group == "Contacted").sum()
    assert (holdouts.arm == "holdout").sum() == (pilot.group == "Control").sum()
    assert set(holdouts.experiment) == set(pilot.cohort)


def test_experiment_analyze_covers_the_pilots_true_effect(written):
    config, _, truth = written
    found = analyze(open_project(config), balance=False)
    pooled = found.effects.set_index("segment").loc["all"]
    # the truth of the rows it read: both potential chances of each analysed assignment
    read = found.rows.assign(month_start=lambda a: pd.to_datetime(a.day, utc=True))
    rows = read.merge(truth, left_on=["account_id", "month_start"],
                      right_on=["workspace_id", "month_start"], how="left")
    assert rows.effect.notna().all() and len(rows) == pooled.n_touch + pooled.n_holdout
    assert pooled.ci_low <= rows.effect.mean() <= pooled.ci_high


def test_uplift_refuses_the_targeted_segment_and_covers_the_others_truth(written, tmp_path):
    config, _, truth = written
    found = runner.uplift(config, tmp_path / "up", track=False)
    m = found.metrics
    # sales reached nearly every enterprise workspace: no comparable untouched ones
    assert list(m["unidentifiable"]) == ["Enterprise"]
    rows = found.rows.assign(month_start=lambda r: pd.to_datetime(r.as_of, utc=True))
    rows = rows.merge(truth[["workspace_id", "month_start", "effect"]],
                      left_on=["account_id", "month_start"],
                      right_on=["workspace_id", "month_start"], how="left")
    assert rows.effect.notna().all()
    seg = found.segments.set_index("segment")
    for name in ("Commercial", "Self-serve"):
        true_mean = rows[rows.segment == name].effect.mean()
        assert seg.loc[name, "ci_low"] <= true_mean <= seg.loc[name, "ci_high"], name
