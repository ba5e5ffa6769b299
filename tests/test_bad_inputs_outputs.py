"""The bad-input catalog, outputs: every file and table pqlml writes is checked before any
work, never written over an input, written atomically and valid in its format.

Each test is one bad argument, hostile value or fault with its exact outcome: a clear error
(exit code 2, a message naming the path or table and the fix, no traceback, nothing
written) or the right file content.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from pqlml.cli import main
from pqlml.config import load_config
from pqlml.errors import PqlmlError
from pqlml.model import train
from pqlml.project import open_project
from pqlml.outputs import (FORMULA_START, check_file, inputs_of, landing, safe_cells,
                           write_frame, write_frames, write_json, write_tables)
from pqlml.simulate import simulate



@pytest.fixture(scope="module")
def company(tmp_path_factory):
    """A small simulated company, a model file, and the same tables in a DuckDB warehouse
    with a config that reads them there."""
    root = tmp_path_factory.mktemp("outputs")
    sim = simulate(n_accounts=300, seed=3, out=root / "sim", months=9)
    project = open_project(sim.config)
    model = train(project.snapshots(), settings=project.config, kind="logistic")
    model.save(root / "model.skops")
    wh = root / "wh.duckdb"
    # every parquet table the simulated config reads, copied into the warehouse
    tables = re.findall(r'source = "(\w+)\.parquet"', sim.config.read_text())
    assert {"events", "users", "outcomes", "leads"} <= set(tables)
    with duckdb.connect(str(wh)) as db:
        for t in tables:
            db.execute(f"CREATE TABLE {t} AS SELECT * FROM read_parquet('{sim.out / t}.parquet')")
        db.execute(f"CREATE TABLE enrichment AS SELECT * FROM read_csv('{sim.out}/enrichment.csv')")
        db.execute("CREATE TABLE crm_contacts AS SELECT 1 AS contact_id, 'x@y.com' AS email")
    text = sim.config.read_text().replace('root = "."', f'root = "{sim.out}"\nconnection = "duckdb:///{wh}"')
    for t in tables:
        text = text.replace(f'source = "{t}.parquet"', f'source = "{t}"')
    text = text.replace('source = "enrichment.csv"', 'source = "enrichment"')
    (root / "wh.toml").write_text(text)
    return {"root": root, "config": sim.config, "data": sim.out, "model": root / "model.skops",
            "wh": wh, "wh_config": root / "wh.toml"}


def _refused(capsys, argv, *words) -> str:
    """``pqlml argv`` exits 2 with one message holding ``words`` and a fix, no traceback."""
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Fix:" in err, err
    for w in words:
        assert w in err, (w, err)
    return err


def _rows(wh: Path, table: str) -> int:
    with duckdb.connect(str(wh), read_only=True) as db:
        return db.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]


def _tables(wh: Path) -> set[str]:
    with duckdb.connect(str(wh), read_only=True) as db:
        return {r[0] for r in db.execute("SELECT table_name FROM information_schema.tables").fetchall()}


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if ".pqlml-tmp-" in p.name]


# ------------------------------------------------------------------ never write over inputs

def test_to_table_naming_a_source_table_is_refused_and_the_source_kept(company, capsys):
    before = _rows(company["wh"], "events")
    _refused(capsys, ["score", "--config", company["wh_config"], "--model", company["model"],
                      "--to-table", "events"], "--to-table events is a source table")
    assert _rows(company["wh"], "events") == before


def test_to_table_is_case_insensitive_like_the_database(company, capsys):
    _refused(capsys, ["score", "--config", company["wh_config"], "--model", company["model"],
                      "--to-table", "EVENTS"], "EVENTS is a source table")
    assert _rows(company["wh"], "events") > 0


def test_to_table_whose_not_scored_companion_is_a_source_is_refused(company, tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text(company["wh_config"].read_text()
                      .replace('source = "dispositions"', 'source = "pqa_not_scored"'))
    _refused(capsys, ["score", "--config", config, "--model", company["model"],
                      "--to-table", "pqa"], "pqa_not_scored is a source table")


def test_to_table_that_is_not_a_plain_name_is_refused(company, capsys):
    _refused(capsys, ["score", "--config", company["wh_config"], "--model", company["model"],
                      "--to-table", "s; DROP TABLE events"], "is not a plain table name")
    assert _rows(company["wh"], "events") > 0


def test_to_table_over_a_table_pqlml_did_not_write_is_refused_and_kept(company, capsys):
    _refused(capsys, ["score", "--config", company["wh_config"], "--model", company["model"],
                      "--to-table", "crm_contacts"], "crm_contacts already exists",
             "lacks as_of, probability")
    with duckdb.connect(str(company["wh"]), read_only=True) as db:
        assert db.execute("SELECT email FROM crm_contacts").fetchall() == [("x@y.com",)]


def test_to_table_replaces_its_own_earlier_output_in_one_swap(company, capsys):
    argv = ["score", "--config", str(company["wh_config"]), "--model", str(company["model"]),
            "--to-table", "pqa_scores"]
    assert main(argv) == 0 and main(argv) == 0
    capsys.readouterr()
    scored, gone = _rows(company["wh"], "pqa_scores"), _rows(company["wh"], "pqa_scores_not_scored")
    assert scored + gone >= 300 and scored > 0          # replaced, not appended
    assert not [t for t in _tables(company["wh"]) if "staging" in t]


def test_to_table_on_a_config_reading_files_is_refused_before_any_work(company, capsys):
    _refused(capsys, ["score", "--config", company["config"], "--model", company["model"],
                      "--to-table", "t"], "--to-table writes into the configured database")


def test_an_out_that_is_a_file_is_refused_before_any_table_is_written(company, tmp_path, capsys):
    (tmp_path / "s.txt").write_text("mine\n")
    _refused(capsys, ["score", "--config", company["wh_config"], "--model", company["model"],
                      "--to-table", "early", "--out", tmp_path / "s.txt"],
             "is a file; this command writes a folder", "s.txt")
    assert "early" not in _tables(company["wh"]) and list(tmp_path.iterdir()) == [tmp_path / "s.txt"]
    assert (tmp_path / "s.txt").read_text() == "mine\n"


def test_the_old_out_file_form_says_out_is_a_folder(company, tmp_path, capsys):
    _refused(capsys, ["score", "--config", company["config"], "--model", company["model"],
                      "--out", tmp_path / "scores.csv"],
             "names a file, but score writes a folder", f"Fix: --out {tmp_path / 'scores'}")
    assert not list(tmp_path.iterdir())


def test_a_missing_model_is_refused_before_any_table_is_written(company, tmp_path, capsys):
    _refused(capsys, ["score", "--config", company["wh_config"], "--model", tmp_path / "no.skops",
                      "--to-table", "early2"], "no.skops")
    assert "early2" not in _tables(company["wh"])


def test_out_naming_a_source_file_is_refused_and_the_file_kept(company, capsys):
    events = company["data"] / "events.parquet"
    before = events.read_bytes()
    _refused(capsys, ["score", "--config", company["config"], "--model", company["model"],
                      "--out", events], "is a file; this command writes a folder")
    assert events.read_bytes() == before


def test_out_folder_whose_files_include_a_source_is_refused(company, tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    pd.read_parquet(company["data"] / "events.parquet").to_csv(data / "not_scored.csv", index=False)
    before = (data / "not_scored.csv").read_bytes()
    config = tmp_path / "c.toml"
    config.write_text(company["config"].read_text()
                      .replace('root = "."', f'root = "{company["data"]}"')
                      .replace('source = "events.parquet"', f'source = "{data}/not_scored.csv"'))
    for fmt in ("csv", "salesforce", "hubspot"):
        _refused(capsys, ["score", "--config", config, "--model", company["model"],
                          "--format", fmt, "--out", data], "not_scored.csv is one of the config's inputs")
    assert (data / "not_scored.csv").read_bytes() == before and len(list(data.iterdir())) == 1


def test_features_out_naming_a_csv_source_is_refused(company, tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text(company["config"].read_text().replace('root = "."', f'root = "{company["data"]}"'))
    _refused(capsys, ["features", "--config", config, "--out", company["data"] / "enrichment.csv"],
             "enrichment.csv is one of the config's inputs")


def test_out_through_a_symlink_to_a_source_is_refused(company, tmp_path, capsys):
    link = tmp_path / "innocent.parquet"
    link.symlink_to(company["data"] / "users.parquet")
    _refused(capsys, ["features", "--config", company["config"], "--out", link],
             "innocent.parquet is one of the config's inputs")


def test_out_inside_a_glob_of_sources_is_refused(tmp_path, capsys):
    (tmp_path / "events").mkdir()
    part = tmp_path / "events" / "part-0.parquet"
    pd.DataFrame({"ts": ["2024-01-01"], "user_id": ["u"], "event": ["e"]}).to_parquet(part)
    (tmp_path / "c.toml").write_text('[data.events]\nsource = "events/*.parquet"\n')
    _refused(capsys, ["features", "--config", tmp_path / "c.toml", "--out", part],
             "part-0.parquet is one of the config's inputs")


def test_discover_out_whose_side_table_is_a_source_is_refused(company, tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text(company["config"].read_text()
                      .replace('root = "."', f'root = "{tmp_path}"')
                      .replace('source = "enrichment.csv"', 'source = "signals.best.csv"'))
    (tmp_path / "signals.best.csv").write_text("domain\nx.com\n")
    _refused(capsys, ["discover", "--config", config, "--out", tmp_path],
             "signals.best.csv is one of the config's inputs")
    assert (tmp_path / "signals.best.csv").read_text() == "domain\nx.com\n"


def test_a_report_folder_that_would_overwrite_a_source_is_refused(company, tmp_path, capsys):
    config = tmp_path / "c.toml"
    (tmp_path / "tiers.csv").write_text("domain\nx.com\n")
    config.write_text(company["config"].read_text()
                      .replace('root = "."', f'root = "{tmp_path}"')
                      .replace('source = "enrichment.csv"', 'source = "tiers.csv"'))
    _refused(capsys, ["rules", "--config", config, "--out", tmp_path], "tiers.csv is one of")


def test_the_config_file_itself_is_an_input(company):
    files, _ = inputs_of(load_config(company["config"]))
    assert company["config"].resolve() in files and (company["data"] / "events.parquet").resolve() in files


def test_the_warehouse_file_is_an_input_and_its_tables_too(company):
    files, tables = inputs_of(load_config(company["wh_config"]))
    assert company["wh"].resolve() in files and {"events", "enrichment"} <= tables


# ------------------------------------------------------------------ paths that cannot be written

def test_out_under_a_file_is_a_clear_error(company, tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    _refused(capsys, ["features", "--config", company["config"], "--out", tmp_path / "f" / "g.csv"],
             "is a file, so nothing can be written under it")


def test_out_on_a_read_only_file_system_is_a_clear_error(company, capsys):
    # /sys refuses new files even to root (a chmod'ed folder would not stop root)
    _refused(capsys, ["features", "--config", company["config"], "--out", "/sys/pqlml/g.csv"],
             "cannot be written", "/sys")


def test_out_naming_an_existing_folder_is_a_clear_error(company, tmp_path, capsys):
    (tmp_path / "g.csv").mkdir()
    _refused(capsys, ["features", "--config", company["config"], "--out", tmp_path / "g.csv"],
             "is a folder")


def test_a_report_folder_that_is_a_file_is_a_clear_error(company, tmp_path, capsys):
    (tmp_path / "report").write_text("x")
    _refused(capsys, ["backtest", "--config", company["config"], "--out", tmp_path / "report",
                      "--no-track"], "is a file; this command writes a folder")


def test_train_out_must_be_a_skops_file(company, tmp_path, capsys):
    _refused(capsys, ["train", "--config", company["config"], "--out", tmp_path / "m.joblib",
                      "--no-track"], "must end in .skops", "m.joblib")
    assert not list(tmp_path.iterdir())


def test_retrain_out_that_is_a_file_is_refused_before_any_work(company, tmp_path, capsys):
    (tmp_path / "r").write_text("x")
    _refused(capsys, ["retrain", "--config", company["config"], "--out", tmp_path / "r"],
             "is a file; this command writes a folder")
    assert not (tmp_path / "mlflow.db").exists()


def test_drift_with_a_bad_model_file_fails_before_any_work(company, tmp_path, capsys, monkeypatch):
    import pqlml.project

    def no_work(*a, **k):
        raise AssertionError("the project was opened before the model was checked")
    monkeypatch.setattr(pqlml.project, "open_project", no_work)
    (tmp_path / "m.skops").write_text("not a model")
    _refused(capsys, ["drift", "--config", company["config"], "--model", tmp_path / "m.skops",
                      "--out", tmp_path / "d", "--no-track"], "m.skops is not a pqlml model")


def test_engagement_weights_must_be_csv(company, tmp_path, capsys):
    _refused(capsys, ["engagement-weights", "--config", company["config"], "--out",
                      tmp_path / "w.parquet"], "must end in .csv")


def test_an_os_error_while_renaming_is_a_clear_error_and_changes_nothing(tmp_path, monkeypatch):
    out = tmp_path / "s.csv"
    out.write_text("previous\n")

    def full(*_):
        raise OSError(28, "No space left on device", str(out))
    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(PqlmlError, match="No space left on device.*Fix"):
        write_frame(pd.DataFrame({"a": [1]}), out)
    assert out.read_text() == "previous\n" and not _leftovers(tmp_path)


# ------------------------------------------------------------------ atomic outputs

class _Boom:
    def __str__(self):
        raise RuntimeError("cell failed")


def test_a_failing_write_leaves_the_previous_file_and_no_partial_one(tmp_path):
    out = tmp_path / "g.csv"
    out.write_text("good\n")
    frame = pd.DataFrame({"a": list(range(50_000)) + [0], "b": ["x"] * 50_000 + [_Boom()]})
    with pytest.raises(RuntimeError):
        write_frame(frame, out)
    assert out.read_text() == "good\n" and not _leftovers(tmp_path)


def test_scores_and_their_not_scored_list_land_together_or_not_at_all(tmp_path):
    scores, side = tmp_path / "s.csv", tmp_path / "s.not_scored.csv"
    scores.write_text("old scores\n")
    side.write_text("old list\n")
    with pytest.raises(RuntimeError):
        write_frames({scores: pd.DataFrame({"a": [1]}), side: pd.DataFrame({"b": [_Boom()]})})
    assert scores.read_text() == "old scores\n" and side.read_text() == "old list\n"
    assert not _leftovers(tmp_path)


def test_a_failing_table_write_replaces_neither_table(tmp_path):
    import ibis
    con = ibis.duckdb.connect(str(tmp_path / "w.duckdb"))
    con.create_table("s", pd.DataFrame({"a": [1, 2]}))
    con.create_table("s_not_scored", pd.DataFrame({"b": [1]}))
    with pytest.raises(Exception):
        write_tables(con, {"s": pd.DataFrame({"a": [9]}),
                           "s_not_scored": pd.DataFrame({"b": [object()]})})
    assert con.table("s").a.sum().execute() == 3
    assert sorted(con.raw_sql("SELECT table_name FROM information_schema.tables").fetchall()) == \
        [("s",), ("s_not_scored",)]


def test_sigint_during_a_write_leaves_no_partial_file_and_the_previous_one(tmp_path):
    out = tmp_path / "g.csv"
    out.write_text("the previous good file\n")
    # A slow disk: the real CSV, written in chunks with a pause after each, so the signal
    # lands mid-write however fast the machine (a plain 3M-row write could finish first).
    # SIGINT as a terminal delivers it: a shell starting the tests in the background
    # (``cmd &``) leaves it ignored in every child, and the write would just finish.
    script = textwrap.dedent(f"""
        import signal, time
        signal.signal(signal.SIGINT, signal.default_int_handler)
        import numpy as np, pandas as pd
        import pqlml.outputs
        from pqlml.outputs import write_frame

        def slow_csv(frame, path):
            with open(path, "w") as f:
                for start in range(0, len(frame), 100_000):
                    frame.iloc[start:start + 100_000].to_csv(f, index=False,
                                                             header=start == 0)
                    f.flush()
                    time.sleep(0.1)
        pqlml.outputs._csv = slow_csv
        frame = pd.DataFrame({{"a": np.arange(3_000_000), "b": "some text"}})
        print("ready", flush=True)
        write_frame(frame, {str(out)!r})
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:      # until the temporary file holds data
        temps = [p for p in tmp_path.iterdir() if ".pqlml-tmp-" in p.name]
        if temps and temps[0].stat().st_size > 100_000:
            break
        time.sleep(0.01)
    else:
        proc.kill()
        pytest.fail("the write never started")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "KeyboardInterrupt" in err
    assert out.read_text() == "the previous good file\n"
    assert not _leftovers(tmp_path)


def test_ctrl_c_in_a_command_is_a_short_message_and_exit_130(company, tmp_path, monkeypatch, capsys):
    import pqlml.project

    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(pqlml.project, "build_features", interrupted)
    out = tmp_path / "g.csv"
    out.write_text("previous\n")
    assert main(["features", "--config", str(company["config"]), "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "Traceback" not in err and out.read_text() == "previous\n"


# ------------------------------------------------------------------ valid formats

@pytest.mark.parametrize("cell", ["=1+2", "+1", "-2+3", "@SUM(A1)", "\tcmd", "\r=x",
                                  '=HYPERLINK("http://x","y")'])
def test_csv_cells_that_would_run_as_formulas_are_escaped(tmp_path, cell):
    out = write_frame(pd.DataFrame({"account_id": [cell], "p": [-0.5]}), tmp_path / "s.csv")
    back = pd.read_csv(out)
    assert back.account_id[0] == "'" + cell and back.p[0] == -0.5   # numbers untouched


def test_parquet_keeps_the_values_as_they_are(tmp_path):
    out = write_frame(pd.DataFrame({"account_id": ["=1+2"]}), tmp_path / "s.parquet")
    assert pd.read_parquet(out).account_id[0] == "=1+2"


def test_safe_cells_leaves_plain_text_missing_values_and_numbers(tmp_path):
    frame = pd.DataFrame({"a": ["acme", None, "a-b"], "n": [1, -2, 3]})
    assert safe_cells(frame) is frame and all(not str(c).startswith(FORMULA_START)
                                              for c in ("acme", "a-b"))


def test_json_outputs_hold_null_not_nan(tmp_path):
    out = write_json({"auc": np.float64("nan"), "ece": float("inf"), "n": np.int64(3),
                      "folds": [{"x": float("-inf")}], "at": pd.Timestamp("2024-01-01")},
                     tmp_path / "m.json")

    def refuse(constant):
        raise AssertionError(f"not JSON: {constant}")
    back = json.loads(out.read_text(), parse_constant=refuse)
    assert back == {"auc": None, "ece": None, "n": 3, "folds": [{"x": None}],
                    "at": "2024-01-01T00:00:00"}


def test_scores_in_csv_never_begin_with_a_formula_sign(company, tmp_path, capsys):
    assert main(["score", "--config", str(company["config"]), "--model", str(company["model"]),
                 "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    scores = pd.read_csv(tmp_path / "scores.csv", dtype=str)
    assert len(scores) > 0
    for col in ("reason_1", "reason_2", "reason_3"):
        cells = scores[col].dropna()
        assert len(cells) and cells.str[:4].isin(["(+) ", "(-) "]).all()
    assert (tmp_path / "not_scored.csv").exists() and not _leftovers(tmp_path)


def test_check_file_accepts_a_good_path_and_creates_nothing(tmp_path):
    out = check_file(tmp_path / "new" / "x.parquet")
    assert out == tmp_path / "new" / "x.parquet" and not (tmp_path / "new").exists()
    assert not _leftovers(tmp_path)
