"""The CLI's surface is consistent: every option has a help text with its default, ``--version``,
bad values (dates, counts, choices) are one line naming the option with exit code 2,
``--quiet`` leaves nothing but errors, slow steps show their elapsed time, and warnings from
dependencies stay off the terminal while pqlml's own still show."""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import logging
import os
import re
import warnings

import numpy as np
import pandas as pd
import pytest

from pqlml.cli import _parser, main
from pqlml.simulate import simulate
from pqlml.terminal import dependency_warnings_hidden

COMMANDS = _parser()._subparsers._group_actions[0].choices


def _options(parser):
    """Every argument of ``parser`` but ``-h``."""
    return [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]


@pytest.mark.parametrize("name", [None, *COMMANDS])
def test_every_option_is_listed_with_a_help_text_and_its_default(name, capsys):
    argv = ["--help"] if name is None else [name, "--help"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    parser = _parser() if name is None else COMMANDS[name]
    flat = " ".join(text.split())
    for action in _options(parser):
        if isinstance(action, argparse._SubParsersAction):
            assert all(c in text for c in action.choices)
            continue
        assert action.help and len(action.help) > 10, (name, action.dest)
        shown = (action.option_strings[-1] if action.option_strings else
                 "{" + ",".join(action.choices) + "}" if action.choices else action.dest)
        assert shown in text, (name, shown)
        default = action.default
        if default not in (None, False, argparse.SUPPRESS) and not isinstance(default, bool):
            # e.g. "--top N  signals shown in the terminal (default: 15)"
            assert f"(default: {default})" in flat, (name, action.dest, flat)
    if name is not None:
        assert "--quiet" in text


def test_version_is_the_package_metadata(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"pqlml {importlib.metadata.version('pqlml')}\n"


DATED = [("features", "--as-of", ["--out", "f.csv"]), ("rules", "--as-of", ["--out", "r"]),
         ("discover", "--as-of", ["--out", "d"]), ("drift", "--as-of", []),
         ("score", "--as-of", ["--model", "m.skops", "--out", "s.csv"]),
         ("engagement-weights", "--until", [])]


@pytest.mark.parametrize("command,option,rest", DATED)
@pytest.mark.parametrize("bad,why", [("2025-13-01", "month must be in 1..12"),
                                     ("2023-02-29", "day is out of range for month"),
                                     ("30/06/2025", "not of the form YYYY-MM-DD"),
                                     ("2025-6-30", "not of the form YYYY-MM-DD")])
def test_a_bad_date_names_the_option_and_the_form(command, option, rest, bad, why, capsys):
    assert main([command, "--config", "nowhere.toml", *rest, option, bad]) == 2
    err = capsys.readouterr().err
    assert f"pqlml {command}: error: argument {option}: expected a date YYYY-MM-DD such as " \
           f"2025-06-30; got '{bad}' ({why})" in err
    assert "Traceback" not in err


def test_dates_are_parsed_to_calendar_days():
    args = _parser().parse_args(["features", "--config", "c", "--out", "f.csv",
                                 "--as-of", "2024-02-29"])
    assert args.as_of == dt.date(2024, 2, 29)
    assert _parser().parse_args(["engagement-weights", "--config", "c",
                                 "--until", "2025-06-30"]).until == dt.date(2025, 6, 30)


@pytest.mark.parametrize("argv,message", [
    (["simulate", "--accounts", "0", "--out", "x"],
     "argument --accounts: expected a whole number >= 1; got '0'"),
    (["simulate", "--accounts", "ten", "--out", "x"],
     "argument --accounts: expected a whole number >= 1; got 'ten'"),
    (["demo", "--seed", "-1"], "argument --seed: expected a whole number >= 0; got '-1'"),
    (["discover", "--config", "c", "--out", "d", "--top", "2.5"],
     "argument --top: expected a whole number >= 1; got '2.5'"),
    (["backtest", "--config", "c", "--out", "b", "--kind", "forest"],
     "argument --kind: invalid choice: 'forest'"),
    (["features", "--config", "c"], "the following arguments are required: --out"),
    (["rules", "--out", "r"], "the following arguments are required: --config"),
])
def test_a_bad_value_is_one_line_naming_the_option(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"pqlml {argv[0]}: error: {message}" in err and "Traceback" not in err


def test_a_folder_command_given_a_file_name_says_so_before_any_work(tmp_path, capsys):
    assert main(["discover", "--config", str(tmp_path / "c.toml"), "--out",
                 str(tmp_path / "signals.csv")]) == 2
    err = capsys.readouterr().err
    assert "Config file not found" in err                  # the config is read first
    (tmp_path / "c.toml").write_text('[data.events]\nsource = "e.parquet"\n')
    assert main(["discover", "--config", str(tmp_path / "c.toml"), "--out",
                 str(tmp_path / "signals.csv")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"--out {tmp_path / 'signals.csv'} names a file; this command writes several " \
           f"files into a folder. Fix: --out {tmp_path / 'signals'}" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.toml"]


@pytest.fixture(scope="module")
def company(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_help")
    return simulate(n_accounts=100, seed=1, out=root / "sim", months=4).config


@pytest.mark.parametrize("where", ["before", "after"])
def test_quiet_prints_nothing_on_success(company, tmp_path, where, capsys):
    command = ["features", "--config", str(company), "--out", str(tmp_path / "f.csv")]
    argv = ["--quiet", *command] if where == "before" else [*command, "-q"]
    assert main(argv) == 0
    assert capsys.readouterr() == ("", "")
    assert len(pd.read_csv(tmp_path / "f.csv")) > 0
    # errors still print
    assert main([*argv, "--as-of", "1999-01-01"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "pqlml features: error: 1 as_of date(s) outside the data" in err


def test_quiet_simulate_prints_nothing(tmp_path, capsys):
    assert main(["-q", "simulate", "--accounts", "30", "--months", "3", "--out",
                 str(tmp_path)]) == 0
    assert capsys.readouterr() == ("", "")
    assert (tmp_path / "pqlml.toml").exists()


def test_slow_steps_report_their_elapsed_time(company, tmp_path, capsys):
    assert main(["features", "--config", str(company), "--out", str(tmp_path / "f.csv")]) == 0
    err = capsys.readouterr().err
    times = re.findall(r"^(.+): done in (\d+\.\d) s$", err, flags=re.M)
    assert "building point-in-time features" in dict(times), err


def _fragmented() -> None:
    """pandas' own PerformanceWarning: a frame grown one column at a time."""
    frame = pd.DataFrame({"a": np.zeros(3)})
    for i in range(120):
        frame[f"c{i}"] = 1.0


def _pqlml_warns() -> None:
    """pqlml's own warning: its logistic fit that stops before converging."""
    from pqlml.model._signed import SignedLogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    SignedLogisticRegression(max_iter=1).fit(X, (X[:, 0] > 0).astype(int))


def test_dependency_warnings_stay_off_the_terminal_and_pqlml_s_show(monkeypatch):
    monkeypatch.setattr("sys.warnoptions", [])
    for key in ("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "MLFLOW_LOGGING_LEVEL"):
        monkeypatch.delenv(key, raising=False)
    mlflow_logger = logging.getLogger("mlflow")
    level = mlflow_logger.level
    shown = warnings.showwarning
    # record=True: what would reach the terminal is collected in `seen` instead
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with dependency_warnings_hidden():
            _fragmented()
            _pqlml_warns()
            assert os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == "false"
            assert os.environ["MLFLOW_LOGGING_LEVEL"] == "ERROR"
            assert not mlflow_logger.isEnabledFor(logging.WARNING)
        assert [str(w.message)[:48] for w in seen] == [
            "SignedLogisticRegression did not converge in 1 i"]
        # outside the block (the library, a notebook) nothing is hidden
        _fragmented()
        assert seen[-1].category is pd.errors.PerformanceWarning
    assert warnings.showwarning is shown
    assert "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR" not in os.environ
    assert "MLFLOW_LOGGING_LEVEL" not in os.environ and mlflow_logger.level == level


def test_python_s_warning_options_turn_the_filtering_off(monkeypatch):
    monkeypatch.setattr("sys.warnoptions", ["default"])
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with dependency_warnings_hidden():
            _fragmented()
    assert {w.category for w in seen} == {pd.errors.PerformanceWarning}
