"""pqlml.uplift.uplift on labelled snapshots of a company whose touch effect is known
(tests/uplift_world.company): forward in time, the refusal without overlap, the report."""

import json
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest
from uplift_world import company

from pqlml.config import config_from_dict
from pqlml.errors import PqlmlError
from pqlml.uplift import UPLIFT_FILES, uplift

SETTINGS = {"model": {"test_periods": 3, "bootstrap": 50}, "labels": {"horizon_days": 28}}


def _run(c, **settings):
    cfg = config_from_dict(SETTINGS | settings, ".")
    return uplift(c["frame"], "conversion", touches=c["touches"], holdouts=c["holdouts"],
                  truth=c["truth"], settings=cfg, segments=c["segment"], n_bootstrap=4)


@pytest.fixture(scope="module")
def found():
    return _run(company(3000, 8, seed=0))


def test_forward_in_time_on_the_last_dates_with_every_policy(found):
    m = found.metrics
    assert [f["as_of"] for f in m["folds"]] == ["2024-06-01", "2024-07-01", "2024-08-01"]
    # a test date's model never trained on a snapshot whose label window was open then
    for f in m["folds"]:
        assert pd.Timestamp(f["train_as_of"][1]) + pd.Timedelta(days=28) <= pd.Timestamp(f["as_of"])
    assert set(m["policies"]) >= {"uplift", "probability", "rules", "true_effect"}
    # 10% of 3,000 a month planned, the 60 held out of the randomised 120 untouched
    assert m["capacity"] == 240 and m["capacity_from"].startswith("median")
    assert all(m["policies"][p]["touches"] == 720 for p in ("uplift", "probability", "rules"))
    assert m["qini_rows"] == "randomised" and m["unidentifiable"] == {}


def test_true_gains_are_the_truths_of_the_chosen_rows(found):
    rows, m = found.rows, found.metrics
    top = rows.sort_values("true_effect", ascending=False).groupby("fold").head(m["capacity"])
    assert m["policies"]["true_effect"]["true_total"] == pytest.approx(top.true_effect.sum())
    # the oracle is the best any policy can do; uplift beats calling by probability here
    assert m["policies"]["uplift"]["true_total"] <= m["policies"]["true_effect"]["true_total"]
    assert m["policies"]["uplift_vs_probability"] > 1.2


def test_segment_effects_cover_the_truth(found):
    seg = found.segments.set_index("segment")
    assert seg.truth_in_ci.all()
    # the one segment with an effect is told apart from the others
    assert seg.loc["mid_outside", "ci_low"] > 0
    assert seg.loc["mid_outside", "model_effect"] > seg.loc["small", "model_effect"] + 0.1


def test_without_a_randomised_holdout_nothing_is_ranked():
    with pytest.raises(PqlmlError, match="no segment has comparable touched and untouched") as e:
        _run(company(3000, 8, seed=1, randomised=0.0))
    text = str(e.value)
    for name in ("mid_inside", "mid_outside", "small", "randomised holdout",
                 "pqlml experiment plan"):
        assert name in text


def test_untouched_company_is_refused_with_the_fix():
    c = company(600, 6, seed=2)
    c["touches"] = c["touches"].iloc[:0]
    with pytest.raises(PqlmlError, match=r"No labelled snapshot has a touch in \[as_of"):
        _run(c)


def test_report_holds_aggregates_only(found, tmp_path):
    written = found.write(tmp_path)
    assert sorted(p.name for p in written) == sorted(UPLIFT_FILES)
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["policies"]["uplift"]["estimated_per_100_ci"][0] <= m["policies"]["uplift"]["estimated_per_100"]
    table = pd.read_csv(tmp_path / "uplift_segments.csv")
    assert list(table.segment) == ["mid_inside", "mid_outside", "small"]
    html = (tmp_path / "report.html").read_text()
    ET.fromstring(html.removeprefix("<!DOCTYPE html>"))
    ids = set(found.rows.account_id)
    for path in written:
        if path.suffix in (".json", ".csv", ".html"):
            text = path.read_text()
            assert not any(f'"{i}"' in text or f",{i}," in text for i in list(ids)[:200])
    curves = found.curves["uplift"]
    assert np.all(curves.qini_low <= curves.qini_high)


def test_thinned_keeps_every_touch_and_converter_and_reweights_the_rest():
    from pqlml.uplift._forward import thinned

    c = company(3000, 4, seed=3)
    frame = c["frame"]
    y = frame.conversion.to_numpy()
    t = frame.account_id.isin([]).to_numpy().astype(int)
    t[::25] = 1
    rows = np.arange(len(frame))
    kept, w = thinned(frame, rows, y, t, budget=3000)
    whole = (t == 1) | (y == 1)
    assert set(rows[whole]) <= set(kept) and np.all(w[whole[kept]] == 1)
    # about the budget, or twice the rows kept whole when they alone come near it
    assert abs(len(kept) - max(3000, 2 * whole.sum())) < 0.1 * len(kept)
    # the weights stand for the rows left out: about as many as there were
    assert w.sum() == pytest.approx(len(frame), rel=0.05)
    same, none = thinned(frame, rows, y, t, budget=len(frame))
    assert np.array_equal(same, rows) and none is None
