"""Tests for pqlml.config: the TOML loader and its error messages."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import doctest
import random
import re
import tomllib
from pathlib import Path
from types import MappingProxyType

import pytest

import pqlml.config._load as config_module
from pqlml.config import (
    CapacityConfig, Config, DataConfig, FitConfig, LabelsConfig, OutcomesConfig,
    ProjectConfig, ScheduleConfig, TableSource, TiersConfig, config_from_dict, load_config,
)
from pqlml.errors import ConfigError

EVENTS = '[data.events]\nsource = "events.parquet"\n'

FULL = """
[project]
name = "acme"
entity = "user"

[data]
root = "warehouse"
connection = ""
[data.events]
source = "events.parquet"
[data.events.columns]
ts = "timestamp"
user_id = "uid"
[data.users]
source = "users.parquet"
[data.accounts]
source = "accounts/*.csv"
[data.outcomes]
source = "outcomes.parquet"

[outcomes]
hand_raise_events = ["talk_to_sales_clicked", "demo_requested"]
conversion_events = []
target = "hand_raise"

[schedule]
start = 2024-02-01
end = "2025-06-01"
every = "14d"

[labels]
horizon_days = 21

[fit]
industries = ["software", "fintech"]
employees_min = 50
employees_max = 5000
countries = ["US", "GB"]
require_work_email = false

[rules]
folk_pqa = "active_users_30d >= 7 and events_task_created_30d >= 50"
other = "seats >= 3"

[tiers]
intent_rule = "folk_pqa"
method = "precision"
precision_target = 0.35

[capacity]
per_period = 200
"""


def write(tmp_path: Path, text: str, name: str = "pqlml.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def load(tmp_path: Path, text: str) -> Config:
    return load_config(write(tmp_path, text))


def test_full_round_trip_types(tmp_path):
    path = write(tmp_path, FULL)
    cfg = load_config(str(path))  # str accepted as well as Path

    assert cfg.path == path.resolve()
    assert cfg.project == ProjectConfig(name="acme", entity="user")
    assert cfg.data.root == (tmp_path / "warehouse").resolve()
    assert cfg.data.root.is_absolute()
    assert cfg.data.events.source == "events.parquet"
    assert isinstance(cfg.data.events.columns, MappingProxyType)
    assert dict(cfg.data.events.columns) == {"ts": "timestamp", "user_id": "uid"}
    assert isinstance(cfg.data.users.columns, MappingProxyType)
    assert dict(cfg.data.users.columns) == {}
    assert cfg.data.accounts.source == "accounts/*.csv"
    assert cfg.outcomes.hand_raise_events == ("talk_to_sales_clicked", "demo_requested")
    assert cfg.outcomes.conversion_events == ()
    assert cfg.outcomes.target == "hand_raise"
    assert cfg.schedule.start == dt.date(2024, 2, 1)
    assert type(cfg.schedule.end) is dt.date and cfg.schedule.end == dt.date(2025, 6, 1)
    assert cfg.schedule.every == "14d"
    assert cfg.labels.horizon_days == 21
    assert cfg.fit == FitConfig(industries=("software", "fintech"), employees_min=50,
                                employees_max=5000, countries=("US", "GB"),
                                require_work_email=False)
    assert isinstance(cfg.fit.industries, tuple)
    assert isinstance(cfg.rules, MappingProxyType)
    assert list(cfg.rules) == ["folk_pqa", "other"]
    assert cfg.tiers == TiersConfig(intent_rule="folk_pqa", method="precision",
                                    precision_target=0.35)
    assert cfg.capacity.per_period == 200


def test_minimal_config_uses_dataclass_defaults(tmp_path):
    cfg = load(tmp_path, EVENTS)
    assert cfg.project == ProjectConfig()
    assert cfg.outcomes == OutcomesConfig()
    assert cfg.schedule == ScheduleConfig()
    assert cfg.labels == LabelsConfig()
    assert cfg.fit == FitConfig()
    assert cfg.tiers == TiersConfig()
    assert cfg.capacity == CapacityConfig()
    assert dict(cfg.rules) == {}
    assert cfg.data.users is None and cfg.data.connection == ""
    assert cfg.data.root == tmp_path.resolve()  # default root: the config's folder


def test_relative_root_is_resolved_against_config_folder(tmp_path, monkeypatch):
    project = tmp_path / "project"
    project.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    path = write(project, '[data]\nroot = "../shared/data"\n' + EVENTS)
    cfg = load_config(Path("..") / "project" / "pqlml.toml")  # relative to the cwd
    assert cfg.data.root == (tmp_path / "shared" / "data").resolve()
    assert cfg.path == path.resolve()
    assert cfg.resolve("events.parquet") == cfg.data.root / "events.parquet"


def test_absolute_root_and_absolute_source(tmp_path):
    root = (tmp_path / "abs").resolve()
    cfg = load(tmp_path, f'[data]\nroot = "{root.as_posix()}"\n' + EVENTS)
    assert cfg.data.root == root
    assert cfg.resolve(str(tmp_path / "x.csv")) == tmp_path / "x.csv"


def test_connection_keeps_sources_as_table_names(tmp_path):
    cfg = load(tmp_path, '[data]\nconnection = "duckdb:///warehouse.db"\n'
                         '[data.events]\nsource = "analytics.events"\n')
    assert cfg.data.connection == "duckdb:///warehouse.db"
    assert cfg.data.events == TableSource(source="analytics.events")


def test_from_dict_without_file(tmp_path):
    raw = tomllib.loads(FULL)
    cfg = config_from_dict(raw, base_dir=tmp_path)
    assert cfg.path is None
    assert cfg.data.root == (tmp_path / "warehouse").resolve()
    assert config_from_dict({}, tmp_path).data.events is None  # only load_config requires it
    with pytest.raises(ConfigError, match=r"Unknown key 'labels\.horizon' in the config "
                                          r"passed to config_from_dict"):
        config_from_dict({"labels": {"horizon": 3}}, tmp_path)
    with pytest.raises(ConfigError, match=r"config_from_dict needs a mapping of sections, "
                                          r"as parsed from TOML\. Got \[1\] instead"):
        config_from_dict([1], tmp_path)  # type: ignore[arg-type]


@pytest.mark.parametrize("make", [
    lambda: ProjectConfig(), lambda: DataConfig(), lambda: TableSource(source="x"),
    lambda: ScheduleConfig(), lambda: LabelsConfig(), lambda: FitConfig(),
    lambda: TiersConfig(), lambda: CapacityConfig(), lambda: OutcomesConfig(),
    lambda: Config(),
])
def test_dataclasses_are_frozen(make):
    obj = make()
    name = dataclasses.fields(obj)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(obj, name, None)


def test_loaded_config_and_mappings_are_immutable(tmp_path):
    cfg = load(tmp_path, FULL)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.labels.horizon_days = 7
    with pytest.raises(TypeError):
        cfg.rules["new"] = "x"  # type: ignore[index]
    with pytest.raises(TypeError):
        cfg.data.events.columns["ts"] = "y"  # type: ignore[index]


def test_every_field_has_a_validator():
    specs = config_module._SPECS
    for cls, fields in specs.items():
        names = [f.name for f in dataclasses.fields(cls)]
        if cls is DataConfig:
            names = names[:6]  # root ... spark; the export and tables are built separately
        assert list(fields) == names, cls.__name__


def test_docstring_examples_run():
    result = doctest.testmod(config_module, optionflags=doctest.ELLIPSIS, extraglobs={"Path": Path})
    assert result.attempted > 0 and result.failed == 0


# --- error messages ----------------------------------------------------------------

def test_unknown_key_message_is_exact(tmp_path):
    path = write(tmp_path, EVENTS + '[schedule]\nevry = "month"\n')
    expected = (f"Unknown key 'schedule.evry' in {path.resolve()}. Did you mean "
                "'schedule.every'? Allowed keys in [schedule]: start, end, every.")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == expected


def test_wrong_type_message_is_exact(tmp_path):
    path = write(tmp_path, EVENTS + "[labels]\nhorizon_days = -3\n")
    expected = (f"The 'labels.horizon_days' setting in {path.resolve()} must be a positive "
                "integer (days). Got -3 instead. Fix: e.g. horizon_days = 28.")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == expected


@pytest.mark.parametrize("text, match", [
    ('[shedule]\nevery = "week"\n',
     r"Unknown key 'shedule' .* Did you mean 'schedule'\? Allowed keys at the top level: "
     r"project, data, outcomes, schedule, labels, fit, features, rules, tiers, funnels, playbook, discover, model, capacity, retrain, drift, tracking, uplift, experiment\."),
    ("[project]\nnmae = 'x'\n", r"Unknown key 'project\.nmae'.*Did you mean 'project\.name'"),
    ("[data.event]\nsource = 'e.csv'\n",
     r"Unknown key 'data\.event' .*Did you mean 'data\.events'\? Allowed keys in \[data\]: "
     r"root, connection, memory_limit, engine, master, spark, export, events, users, accounts, outcomes, leads, signups, enrichment, dispositions, memberships, touches, holdouts\."),
    ("[data.users]\nsource = 'u.csv'\nsorce = 'x'\n",
     r"Unknown key 'data\.users\.sorce'.*Did you mean 'data\.users\.source'"),
    ("[data.users]\nsource = 'u.csv'\n[data.users.columns]\nemial = 'mail'\n",
     r"Unknown key 'data\.users\.columns\.emial'.*Did you mean 'data\.users\.columns\.email'"
     r"\? Allowed keys in \[data\.users\.columns\]: user_id, email, signup_at, account_id, title"),
    ("[fit]\nemployees_minimum = 5\n", r"Did you mean 'fit\.employees_min'"),
    ("[tiers]\nprecision = 0.5\n", r"Unknown key 'tiers\.precision'"),
    ("[capacity]\nper_week = 5\n", r"Unknown key 'capacity\.per_week'"),
])
def test_unknown_keys(tmp_path, text, match):
    with pytest.raises(ConfigError, match=match):
        load(tmp_path, EVENTS + text)


def test_unknown_key_without_close_match_has_no_suggestion(tmp_path):
    with pytest.raises(ConfigError, match=r"Unknown key 'labels\.zzz'") as info:
        load(tmp_path, EVENTS + "[labels]\nzzz = 1\n")
    assert "Did you mean" not in str(info.value)
    assert "Allowed keys in [labels]: horizon_days, exclude_prior_positives." in str(info.value)


def test_unknown_canonical_column(tmp_path):
    text = '[data.events]\nsource = "e.parquet"\n[data.events.columns]\ntimestamp = "ts"\n'
    with pytest.raises(ConfigError, match=r"Unknown key 'data\.events\.columns\.timestamp'.*"
                                          r"Allowed keys in \[data\.events\.columns\]: ts, "
                                          r"user_id, event, account_id, event_id\."):
        load(tmp_path, text)


@pytest.mark.parametrize("text, key, got", [
    ("[labels]\nhorizon_days = true\n", "labels.horizon_days", "true (a boolean)"),
    ("[labels]\nhorizon_days = 0\n", "labels.horizon_days", "0"),
    ('[labels]\nhorizon_days = "28"\n', "labels.horizon_days", "'28'"),
    ("[labels]\nhorizon_days = 2.5\n", "labels.horizon_days", "2.5"),
    ("[capacity]\nper_period = 0\n", "capacity.per_period", "0"),
    ("[capacity]\nper_period = false\n", "capacity.per_period", "false (a boolean)"),
    ("[fit]\nemployees_min = -1\n", "fit.employees_min", "-1"),
    ("[fit]\nemployees_max = 1.5\n", "fit.employees_max", "1.5"),
    ('[fit]\nrequire_work_email = "yes"\n', "fit.require_work_email", "'yes'"),
    ("[fit]\nrequire_work_email = 1\n", "fit.require_work_email", "1"),
    ('[fit]\nindustries = "software"\n', "fit.industries", "'software'"),
    ("[fit]\ncountries = [1, 2]\n", "fit.countries", "[1, 2]"),
    ('[outcomes]\nhand_raise_events = ["demo", ""]\n', "outcomes.hand_raise_events",
     "['demo', '']"),
    ('[project]\nname = ""\n', "project.name", "''"),
    ("[data]\nconnection = 3\n", "data.connection", "3"),
    ('[data]\nroot = ""\n', "data.root", "''"),
    ("[tiers]\nintent_rule = 1\n", "tiers.intent_rule", "1"),
    ('[rules]\nfolk = 3\n', "rules.folk", "3"),
    ('[rules]\nfolk = "  "\n', "rules.folk", "'  '"),
    ("labels = 5\n", "labels", "5"),
    ("[fit.industries]\nx = 1\n", "fit.industries", "a table {'x': 1}"),
])
def test_wrong_types(tmp_path, text, key, got):
    pattern = (rf"The '{re.escape(key)}' setting in .*pqlml\.toml must be .*\. "
               rf"Got {re.escape(got)} instead\. Fix: e\.g\. ")
    with pytest.raises(ConfigError, match=pattern):
        load(tmp_path, text + EVENTS)  # text first: top-level keys precede tables


@pytest.mark.parametrize("value", ["0", "1", "1.5", "-0.2", "true", "nan", '"0.2"'])
def test_precision_target_outside_open_interval(tmp_path, value):
    with pytest.raises(ConfigError, match=r"'tiers\.precision_target' .* must be a number "
                                          r"strictly between 0 and 1\..*precision_target = 0\.2"):
        load(tmp_path, EVENTS + f"[tiers]\nprecision_target = {value}\n")


@pytest.mark.parametrize("text, match", [
    ("[retrain]\nmargin = -0.1\n", r"'retrain\.margin' .* must be a number >= 0"),
    ("[retrain]\nperiods = 0\n", r"'retrain\.periods' .* must be a positive integer"),
    ("[drift]\nbins = 1\n", r"'drift\.bins' .* must be an integer >= 2"),
    ("[drift]\nthreshold = 0\n", r"'drift\.threshold' .* must be a number > 0"),
    ("[drift]\nwarn = 0.3\nthreshold = 0.2\n", r"'drift\.warn' setting \(0\.3\) .* must be <= "
                                                r"'drift\.threshold' \(0\.2\)"),
])
def test_bad_retrain_and_drift_settings(tmp_path, text, match):
    with pytest.raises(ConfigError, match=match):
        load(tmp_path, EVENTS + text)


def test_retrain_and_drift_settings_load(tmp_path):
    cfg = load(tmp_path, EVENTS + '[retrain]\nmetric = "pr_auc"\nmargin = 0\nperiods = 2\n'
                                  "[drift]\nthreshold = 0.2\nwarn = 0.05\nbins = 5\n")
    assert (cfg.retrain.metric, cfg.retrain.margin, cfg.retrain.periods) == ("pr_auc", 0.0, 2)
    assert (cfg.drift.threshold, cfg.drift.warn, cfg.drift.bins) == (0.2, 0.05, 5)


@pytest.mark.parametrize("text, key, allowed", [
    ('[project]\nentity = "company"\n', "project.entity", r'"account", "user"'),
    ('[outcomes]\ntarget = "revenue"\n', "outcomes.target", r'"conversion", "hand_raise"'),
    ('[tiers]\nmethod = "ml"\n', "tiers.method",
     r'"rules", "capacity", "match_rules", "precision"'),
    ("[tiers]\nmethod = 1\n", "tiers.method", r'"rules", "capacity"'),
    ('[retrain]\nmetric = "auc"\n', "retrain.metric", r'"captured_at_capacity", "pr_auc"'),
])
def test_bad_enum_lists_allowed_values(tmp_path, text, key, allowed):
    with pytest.raises(ConfigError, match=rf"'{re.escape(key)}' .* must be one of {allowed}"):
        load(tmp_path, EVENTS + text)


@pytest.mark.parametrize("value", [
    '"2024/02/01"', '"2024-13-01"', '"2024-02-30"', '"20240201"', "20240201",
    "2024-02-01T00:00:00", '"yesterday"',
])
def test_bad_dates_name_the_format(tmp_path, value):
    with pytest.raises(ConfigError, match=r"'schedule\.start' .* must be a date in "
                                          r"YYYY-MM-DD format\. Got .* Fix: e\.g\. start = "):
        load(tmp_path, EVENTS + f"[schedule]\nstart = {value}\n")


@pytest.mark.parametrize("start, end", [("2025-06-01", "2024-02-01"),
                                        ("2024-02-01", "2024-02-01")])
def test_start_not_before_end(tmp_path, start, end):
    with pytest.raises(ConfigError, match=rf"The 'schedule\.start' setting \({start}\) in "
                                          rf".*pqlml\.toml must be before 'schedule\.end' "
                                          rf"\({end}\)\. Fix"):
        load(tmp_path, EVENTS + f"[schedule]\nstart = {start}\nend = {end}\n")


@pytest.mark.parametrize("value", ['"monthly"', '"0d"', '"d"', '"14 d"', '"-7d"', "14",
                                   '"2w"', '"Month"'])
def test_bad_every(tmp_path, value):
    with pytest.raises(ConfigError, match=r"'schedule\.every' .* must be \"month\", \"week\" "
                                          r"or \"<N>d\" with N a positive integer"):
        load(tmp_path, EVENTS + f"[schedule]\nevery = {value}\n")


@pytest.mark.parametrize("every", ["month", "week", "1d", "14d", "365d"])
def test_good_every(tmp_path, every):
    assert load(tmp_path, EVENTS + f'[schedule]\nevery = "{every}"\n').schedule.every == every


def test_employees_min_above_max(tmp_path):
    with pytest.raises(ConfigError, match=r"The 'fit\.employees_min' setting \(500\) in "
                                          r".*pqlml\.toml must be <= 'fit\.employees_max' "
                                          r"\(50\)\. Fix"):
        load(tmp_path, EVENTS + "[fit]\nemployees_min = 500\nemployees_max = 50\n")


def test_employees_min_equal_max_is_fine(tmp_path):
    cfg = load(tmp_path, EVENTS + "[fit]\nemployees_min = 50\nemployees_max = 50\n")
    assert (cfg.fit.employees_min, cfg.fit.employees_max) == (50, 50)


def test_intent_rule_not_in_rules_suggests_and_lists(tmp_path):
    text = EVENTS + ('[rules]\nfolk_pqa = "a >= 1"\nbig_team = "seats >= 10"\n'
                     '[tiers]\nintent_rule = "folk_pq"\n')
    with pytest.raises(ConfigError, match=r"'tiers\.intent_rule' .* must name a rule in "
                                          r"\[rules\].*Got 'folk_pq' instead\. Did you mean "
                                          r"'folk_pqa'\? Rules in \[rules\]: folk_pqa, "
                                          r"big_team\. Fix: use one of them, or add folk_pq = "):
        load(tmp_path, text)


def test_intent_rule_without_any_rules(tmp_path):
    with pytest.raises(ConfigError, match=r"Got 'folk_pqa' instead\. \[rules\] is empty\. "
                                          r"Fix: add folk_pqa = "):
        load(tmp_path, EVENTS + '[tiers]\nintent_rule = "folk_pqa"\n')


def test_invalid_toml_names_file_and_position(tmp_path):
    path = write(tmp_path, EVENTS + "[schedule]\nevery = month\n")
    with pytest.raises(ConfigError, match=rf"Invalid TOML in {re.escape(str(path.resolve()))}"
                                          r": .*line 4, column 9"):
        load_config(path)


def test_missing_file_names_path(tmp_path):
    missing = tmp_path / "nope" / "pqlml.toml"
    with pytest.raises(ConfigError, match=rf"Config file not found: {re.escape(str(missing))}"):
        load_config(missing)


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(ConfigError, match=rf"Cannot read config file {re.escape(str(tmp_path))}"):
        load_config(tmp_path)


def test_non_utf8_file(tmp_path):
    path = tmp_path / "pqlml.toml"
    path.write_bytes(b'[project]\nname = "\xff"\n')
    with pytest.raises(ConfigError, match=r"Cannot read config file .*UTF-8"):
        load_config(path)


@pytest.mark.parametrize("text, key", [
    ("[data.events]\n", "data.events.source"),
    ('[data.events]\nsource = ""\n', "data.events.source"),
    ("[data.events]\nsource = 3\n", "data.events.source"),
    (EVENTS + '[data.users]\n[data.users.columns]\nemail = "mail"\n', "data.users.source"),
    (EVENTS + '[data.outcomes]\nsource = "  "\n', "data.outcomes.source"),
])
def test_table_source_missing_or_empty(tmp_path, text, key):
    table = key.rsplit(".", 1)[0]
    with pytest.raises(ConfigError, match=rf"'{re.escape(key)}' .* must be a non-empty string"
                                          rf".*Fix: e\.g\. \[{re.escape(table)}\] source = "):
        load(tmp_path, text)


def test_missing_source_says_it_is_missing(tmp_path):
    with pytest.raises(ConfigError, match=r"Got nothing \(the key is missing\) instead"):
        load(tmp_path, "[data.events]\n")


def test_empty_column_rename(tmp_path):
    with pytest.raises(ConfigError, match=r"'data\.events\.columns\.ts' .* must be a "
                                          r"non-empty string \(the source's column name\)"):
        load(tmp_path, EVENTS + '[data.events.columns]\nts = ""\n')


@pytest.mark.parametrize("text", ["", '[data]\nroot = "."\n',
                                  '[data.users]\nsource = "users.parquet"\n'])
def test_events_table_is_required(tmp_path, text):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path.resolve()) in message
    assert 'Fix: add\n[data.events]\nsource = "events.parquet"\n' in message
    assert message.endswith('[data.export]\nformat = "segment"\nsource = "segment-logs/**/*.gz"')


def test_random_corruption_only_raises_config_error(tmp_path):
    """Seeded fuzz: any bad value yields a ConfigError, never KeyError/TypeError."""
    rng = random.Random(20240201)
    junk = [None, True, -1, 0, 3.5, "", "x", [], [1], ["a"], {}, {"k": 1},
            dt.date(2024, 1, 1), dt.datetime(2024, 1, 1), object()]
    base = tomllib.loads(FULL)
    leaves = [(s, k) for s, sec in base.items() for k in sec]
    leaves += [("data", t) for t in ("events", "users")] + [(None, s) for s in base]
    outcomes = {"ok": 0, "error": 0}
    for _ in range(400):
        raw = copy.deepcopy(base)
        section, key = rng.choice(leaves)
        target = raw if section is None else raw[section]
        target[key] = rng.choice(junk)
        try:
            config_from_dict(raw, tmp_path)
            outcomes["ok"] += 1
        except ConfigError as exc:
            assert re.search(r" in the config passed to config_from_dict", str(exc))
            outcomes["error"] += 1
    assert outcomes["error"] > 200


# --- [features] ---------------------------------------------------------------------

def test_features_section_parses_counts_and_sorts_windows(tmp_path):
    cfg = load_config(write(tmp_path, EVENTS + '[features]\nwindows = [90, 7, 30]\n'
                            '[features.counts.legal_pages_30d]\n'
                            'events = ["terms_page_viewed", "privacy_page_viewed"]\nwindow_days = 30\n'))
    assert cfg.features.windows == (7, 30, 90)
    count = cfg.features.counts["legal_pages_30d"]
    assert count.events == ("terms_page_viewed", "privacy_page_viewed") and count.window_days == 30
    assert "vp" in cfg.features.buyer_titles
    assert cfg.features.event_growth is True and cfg.features.active_users_events == ()


def test_features_section_parses_growth_switch_per_event_users_and_a_60_day_window(tmp_path):
    cfg = load_config(write(tmp_path, EVENTS + '[features]\nwindows = [60, 7, 30, 90]\n'
                            'event_growth = false\nactive_users_events = ["invite_sent"]\n'))
    assert cfg.features.windows == (7, 30, 60, 90) and cfg.features.event_growth is False
    assert cfg.features.active_users_events == ("invite_sent",)


@pytest.mark.parametrize("text, match", [
    ("[features]\nwindows = [7, 14]\n", r"'features\.windows' .* includes 30"),
    ("[features]\nevent_growth = \"no\"\n", r"'features\.event_growth' .* true or false"),
    ("[features]\nactive_users_events = \"invite_sent\"\n",
     r"'features\.active_users_events' .* list of non-empty strings"),
    ("[features]\nwindows = [30, 30]\n", r"'features\.windows' .* distinct"),
    ("[features.counts.Legal]\nevents = ['x']\nwindow_days = 3\n", r"'features\.counts\.Legal' .* lower_snake_case"),
    ("[features.counts.legal]\nevents = ['x']\n", r"needs both 'events' and 'window_days'"),
    ("[features.counts.legal]\nevents = ['x']\nwindow_days = 0\n", r"'features\.counts\.legal\.window_days' .* positive"),
    ("[features.counts.legal]\nevents = ['x']\nwindow = 3\n", r"Unknown key 'features\.counts\.legal\.window'"),
])
def test_features_section_errors(tmp_path, text, match):
    with pytest.raises(ConfigError, match=match):
        load_config(write(tmp_path, EVENTS + text))


def test_uplift_section_defaults_and_bad_values(tmp_path):
    cfg = config_from_dict({}, tmp_path)
    assert (cfg.uplift.touch_window_days, cfg.uplift.learner, cfg.uplift.capacity,
            cfg.uplift.min_overlap) == (14, "x", 0, 0.05)
    assert config_from_dict({"uplift": {"learner": "dr", "capacity": 400}}, tmp_path).uplift.capacity == 400
    with pytest.raises(ConfigError, match=r"'uplift\.min_overlap' setting .* must be a number in \[0, 0\.5\)"):
        config_from_dict({"uplift": {"min_overlap": 0.5}}, tmp_path)
    with pytest.raises(ConfigError, match=r"'uplift\.learner' setting .* must be one of \"t\", \"x\", \"dr\""):
        config_from_dict({"uplift": {"learner": "s"}}, tmp_path)


def test_experiment_settings_load_and_bad_ones_are_clear(tmp_path):
    cfg = load(tmp_path, EVENTS + '[experiment]\nalpha = 0.1\npower = 0.9\nsegment_by = ""\n')
    assert (cfg.experiment.alpha, cfg.experiment.power, cfg.experiment.segment_by) == (0.1, 0.9, "")
    assert load(tmp_path, EVENTS).experiment.segment_by == "segment"
    with pytest.raises(ConfigError, match=r"'experiment\.power' .* strictly between 0 and 1"):
        load(tmp_path, EVENTS + "[experiment]\npower = 1\n")
    with pytest.raises(ConfigError, match=r"'experiment\.segment_by' .* one of \"segment\""):
        load(tmp_path, EVENTS + '[experiment]\nsegment_by = "plan"\n')
