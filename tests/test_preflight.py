"""`pqlml validate` finds what later stages would refuse, with the stages' own messages."""

from __future__ import annotations

import re

import pytest

from pqlml.cli import main
from pqlml.errors import ConfigError, PqlmlError
from pqlml.preflight import preflight
from pqlml.project import open_project
from pqlml.rules import assign
from pqlml.simulate import simulate


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    simulate(n_accounts=150, seed=12, out=out, months=10)
    return out


def _config(sim, tmp_path, edit):
    text = (sim / "pqlml.toml").read_text().replace('root = "."', f'root = "{sim}"')
    path = tmp_path / "pqlml.toml"
    path.write_text(edit(text))
    return path


def test_a_sound_config_passes_and_says_what_it_checked(sim, capsys):
    assert main(["validate", "--config", str(sim / "pqlml.toml")]) == 0
    out = capsys.readouterr().out
    assert "ok: schedule: " in out and "ok: rules: " in out and "ok: target conversion: " in out


def test_a_rule_naming_a_missing_feature_fails_as_assign_would(sim, tmp_path, capsys):
    path = _config(sim, tmp_path, lambda t: t.replace(
        "[rules]\n", '[rules]\nbroken = "active_users_30dd >= 3"\n'))
    with pytest.raises(ConfigError) as later:          # what `pqlml rules` says
        project = open_project(path)
        assign(project.with_attributes(project.features("2024-05-01")),
               settings=project.config, leads=project.leads())
    assert main(["validate", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "1 problem(s) a later stage would refuse" in err
    assert str(later.value).splitlines()[0] in err       # the same message, word for word
    assert "active_users_30d" in err                     # the closest name, as a hint


def test_a_schedule_past_the_data_and_a_horizon_that_never_closes(sim, tmp_path):
    end = re.compile(r"end = \d{4}-\d{2}-\d{2}")
    late = _config(sim, tmp_path, lambda t: end.sub("end = 2025-03-01", t))
    checks = preflight(open_project(late))
    assert any("as_of date(s) outside the data" in p for p in checks.problems)
    long = _config(sim, tmp_path, lambda t: t.replace("horizon_days = 28", "horizon_days = 400"))
    project = open_project(long)
    checks = preflight(project)
    assert checks.problems == [
        "No labelled snapshot to learn from: every as_of's 400-day horizon runs past the end of "
        f"the data ({project.data_end.date()}), or no entity is eligible. Fix: a shorter "
        "labels.horizon_days or an earlier schedule.end."]     # project.snapshots' own words
    with pytest.raises(PqlmlError, match="400-day horizon runs past the end"):
        checks.raise_if_any()


def test_too_few_labelled_periods_for_the_backtest_and_an_outcome_that_never_happens(
        sim, tmp_path):
    end = re.compile(r"end = \d{4}-\d{2}-\d{2}")
    few = _config(sim, tmp_path, lambda t: end.sub("end = 2024-04-01", t))   # three as_of dates
    checks = preflight(open_project(few))
    assert any(p.startswith("No backtest fold has 3 training dates") for p in checks.problems)
    never = _config(sim, tmp_path, lambda t: t.replace(
        "[outcomes]\n", '[outcomes]\nvalues = { conversion = "ignore", upsell = "conversion" }\n'))
    checks = preflight(open_project(never))
    assert any(p.startswith("No conversion in any label window") for p in checks.problems)
    assert checks.warnings == [
        "[outcomes] values names 'upsell', which is neither an event nor an outcome value in "
        "the data: it maps nothing. Fix: check the spelling against the data."]
