"""The command line: sub-commands run, and pqlml's own errors exit 2 with one clear line."""

from __future__ import annotations

import pandas as pd

from pqlml.cli import main


def test_simulate_writes_tables_truth_and_config(tmp_path, capsys):
    assert main(["simulate", "--accounts", "150", "--seed", "3", "--out", str(tmp_path), "--months", "6"]) == 0
    for name in ("events", "users", "accounts", "outcomes"):
        assert len(pd.read_parquet(tmp_path / f"{name}.parquet")) > 0
    assert (tmp_path / "truth" / "drivers.csv").exists()
    assert "150 accounts" in capsys.readouterr().err


def test_validate_reports_counts(tmp_path, capsys):
    main(["simulate", "--accounts", "100", "--out", str(tmp_path), "--months", "10"])
    assert main(["validate", "--config", str(tmp_path / "pqlml.toml")]) == 0
    out = capsys.readouterr().out
    n_events = len(pd.read_parquet(tmp_path / "events.parquet"))
    assert f"events: {n_events:,} rows" in out
    # sign-up answers for a user nobody knows are counted, with the table and the fix
    users = pd.read_parquet(tmp_path / "users.parquet")
    pd.DataFrame({"user_id": [users.user_id.iloc[0], "u_ghost"], "use_case": ["x", "y"]}).to_csv(
        tmp_path / "signups.csv", index=False)
    cfg = tmp_path / "pqlml.toml"
    cfg.write_text(cfg.read_text() + '\n[data.signups]\nsource = "signups.csv"\n')
    assert main(["validate", "--config", str(cfg)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "signups" in out and "signups without user" in out and "1 row" in out, out
    # a column nobody mapped is named with the key that would map it (rich took the
    # brackets for markup: "map one in  to use it")
    ev = pd.read_parquet(tmp_path / "events.parquet").assign(plan="free")
    ev.to_parquet(tmp_path / "events.parquet")
    assert main(["validate", "--config", str(cfg)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "ignored columns 'plan' (not canonical; map one in [data.events.columns] to use it)" in out


def test_config_error_is_one_line_and_exit_code_2(tmp_path, capsys):
    bad = tmp_path / "pqlml.toml"
    bad.write_text('[data.events]\nsource = "events.parquet"\n[labels]\nhorizon_dayz = 3\n')
    assert main(["validate", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "Unknown key 'labels.horizon_dayz'" in err and "Traceback" not in err


def test_missing_data_file_is_a_clear_error(tmp_path, capsys):
    cfg = tmp_path / "pqlml.toml"
    cfg.write_text('[data.events]\nsource = "nowhere.parquet"\n')
    assert main(["validate", "--config", str(cfg)]) == 2
    assert "nowhere.parquet" in capsys.readouterr().err


def test_simulate_bad_parameter_is_named(tmp_path, capsys):
    assert main(["simulate", "--accounts", "0", "--out", str(tmp_path)]) == 2
    assert "argument --accounts: expected a whole number >= 1; got '0'" in \
        capsys.readouterr().err


def test_rules_writes_the_report_and_names_a_bad_rule(tmp_path, capsys):
    main(["simulate", "--accounts", "400", "--seed", "4", "--out", str(tmp_path), "--months", "5"])
    cfg = tmp_path / "pqlml.toml"
    assert main(["rules", "--config", str(cfg), "--out", str(tmp_path / "r")]) == 0
    captured = capsys.readouterr()
    assert "tier_1" in captured.out and "wrote rates.csv" in captured.err
    tiers = pd.read_csv(tmp_path / "r" / "tiers.csv")
    assert {"rule_folk_pqa", "fit", "fit_score", "funnel", "tier", "motion"} <= set(tiers.columns)
    cfg.write_text(cfg.read_text().replace('seven_active_users = "active_users_30d >= 7"',
                                           'seven_active_users = "active_user_30d >= 7"'))
    assert main(["rules", "--config", str(cfg), "--out", str(tmp_path / "r2")]) == 2
    err = capsys.readouterr().err
    assert "'active_user_30d' (closest: active_users_30d" in err and "Traceback" not in err
