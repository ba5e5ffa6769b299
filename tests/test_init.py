"""`pqlml init`: the config it writes for the simulated company and for a company with other
names runs the README's five-minute path; guesses are marked; bad input is a clear error."""

from __future__ import annotations

import datetime as dt
import json
import re
import shlex
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pqlml import runner
from pqlml.cli import main
from pqlml.config import load_config
from pqlml.errors import DataError, PqlmlError
from pqlml.init._plan import outcome_kind, plan_schedule
from pqlml.snapshots import check_as_of, schedule_dates

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    from pqlml.simulate import simulate

    return simulate(n_accounts=600, seed=2, out=tmp_path_factory.mktemp("sim") / "acme").out


def _five_minute_commands() -> list[list[str]]:
    text = README.read_text().split("## Your own data in five minutes", 1)[1]
    block = re.search(r"```bash\n(.*?)```", text, flags=re.S).group(1)
    return [shlex.split(line)[1:] for line in block.splitlines() if line.startswith("pqlml ")]


def test_readme_five_minute_path_runs_on_the_simulated_company(sim, tmp_path, monkeypatch):
    """The README's commands, as written, on the simulator's four files (no config of the
    simulator's is used); tracking is switched off (--no-track) to keep the test fast."""
    monkeypatch.chdir(tmp_path)
    files = {f"{t}.csv": str(sim / f"{t}.parquet") for t in ("events", "users", "accounts")}
    files["deals.csv"] = str(sim / "outcomes.parquet")
    commands = _five_minute_commands()
    assert [c[0] for c in commands] == ["init", "validate", "discover", "backtest", "train",
                                        "score"]
    for argv in commands:
        argv = [files.get(a, a) for a in argv]
        if argv[0] in ("backtest", "train"):
            argv.append("--no-track")
        assert main(argv) == 0, argv
        if argv[0] == "init":
            cfg = load_config("mine/pqlml.toml")
            source = cfg.data.events.source             # relative to the config's folder
            assert not Path(source).is_absolute()
            assert cfg.resolve(source).resolve() == (sim / "events.parquet").resolve()
            assert cfg.data.events.columns == {}   # canonical names: nothing to map
            assert cfg.tiers.intent_rule in cfg.rules
    metrics = json.loads(Path("mine/backtest/metrics.json").read_text())
    assert metrics["model"]["roc_auc"] > 0.5
    assert len(metrics["folds"]) == load_config("mine/pqlml.toml").model.test_periods
    scores = pd.read_csv("mine/scores/scores.csv")
    accounts = pd.read_parquet(sim / "accounts.parquet")
    gone = pd.read_csv("mine/scores/not_scored.csv")
    assert set(scores.account_id) | set(gone.account_id.dropna()) == set(accounts.account_id)
    assert Path("mine/signals/signals.best.csv").exists()


RENAME = {"talk_to_sales_clicked": "contact_sales_submitted", "demo_requested": "demo_booked"}


def _other_company(sim: Path, out: Path) -> Path:
    """The simulated company as another product would export it: CSV files, its own column
    names and vocabulary, and event times as dates only."""
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(5)
    e = pd.read_parquet(sim / "events.parquet")
    pd.DataFrame({"occurred_at": e.ts.dt.strftime("%Y-%m-%d"), "member_id": e.user_id,
                  "org": e.account_id, "action_name": e.event.replace(RENAME),
                  "duration_s": rng.integers(1, 600, len(e)),
                  "platform": rng.choice(["web", "ios", "android"], len(e))}
                 ).to_csv(out / "events.csv", index=False)
    u = pd.read_parquet(sim / "users.parquet")
    pd.DataFrame({"member_id": u.user_id, "work_email": u.email, "org": u.account_id,
                  "joined_on": u.signup_at.dt.strftime("%Y-%m-%d"), "job_title": u.title}
                 ).to_csv(out / "users.csv", index=False)
    a = pd.read_parquet(sim / "accounts.parquet")
    pd.DataFrame({"org": a.account_id, "website": a.domain, "plan": "free",
                  "created": a.created_at.dt.strftime("%Y-%m-%d"), "headcount": a.employees,
                  "sector": a.industry, "country_code": a.country}
                 ).to_csv(out / "accounts.csv", index=False)
    o = pd.read_parquet(sim / "outcomes.parquet")
    kind = np.where(o.outcome == "conversion", "subscription_started", "contact_sales_submitted")
    ended = a.sample(40, random_state=1)
    deals = pd.concat([
        pd.DataFrame({"org": o.account_id, "member_id": o.user_id, "kind": kind,
                      "recorded_on": o.ts.dt.strftime("%Y-%m-%d %H:%M"), "value": o.amount}),
        pd.DataFrame({"org": ended.account_id, "member_id": None, "kind": "trial_ended",
                      "recorded_on": (ended.created_at + pd.Timedelta(days=30))
                      .dt.strftime("%Y-%m-%d %H:%M"), "value": None})])
    deals.to_csv(out / "deals.csv", index=False)
    return out


def _hand_raisers(out: Path, as_of: dt.date, horizon: int) -> int:
    """Accounts with a hand-raise in [as_of, as_of + horizon), from the CSV files with pandas:
    the deals' contact_sales_submitted rows and the events of that name, less accounts that
    had subscribed before as_of."""
    deals = pd.read_csv(out / "deals.csv")
    events = pd.read_csv(out / "events.csv", usecols=["occurred_at", "org", "action_name"])
    start = pd.Timestamp(as_of)
    stop = start + pd.Timedelta(days=horizon)
    at = pd.to_datetime(deals.recorded_on)
    hit = deals[(deals.kind == "contact_sales_submitted") & (at >= start) & (at < stop)].org
    day = pd.to_datetime(events.occurred_at)
    hit2 = events[(events.action_name == "contact_sales_submitted") & (day >= start)
                  & (day < stop)].org
    bought = set(deals[(deals.kind == "subscription_started") & (at < start)].org)
    return len((set(hit) | set(hit2.dropna())) - bought)


def test_other_vocabulary_company(sim, tmp_path):
    out = _other_company(sim, tmp_path / "other")
    result = runner.init(out / "mine", out / "events.csv", users=out / "users.csv",
                         accounts=out / "accounts.csv", outcomes=out / "deals.csv")
    mapped = {t: {c: g.value for c, g in cols.items()} for t, cols in result.columns.items()}
    assert mapped == {
        "accounts": {"account_id": "org", "domain": "website", "created_at": "created",
                     "employees": "headcount", "industry": "sector", "country": "country_code"},
        "users": {"user_id": "member_id", "email": "work_email", "signup_at": "joined_on",
                  "account_id": "org", "title": "job_title"},
        "events": {"ts": "occurred_at", "user_id": "member_id", "event": "action_name",
                   "account_id": "org"},
        "outcomes": {"account_id": "org", "ts": "recorded_on", "outcome": "kind",
                     "user_id": "member_id", "amount": "value"}}
    path = result.write()
    cfg = load_config(path)
    assert dict(cfg.outcomes.values) == {"subscription_started": "conversion",
                                         "contact_sales_submitted": "hand_raise",
                                         "trial_ended": "ignore"}
    text = path.read_text()
    for line in ('ts = "occurred_at"', 'outcome = "kind"', 'trial_ended = "ignore"',
                 "start = ", "horizon_days = ", "starter_intent = "):
        written = next(x for x in text.splitlines() if x.startswith(line))
        assert "  # guess: " in written, written
    assert '# duration_s = "duration_s"' in text        # a property, offered commented out
    assert cfg.data.properties == ()
    # the schedule lies inside the data, and every label window closes inside it
    days = pd.to_datetime(pd.read_csv(out / "events.csv", usecols=["occurred_at"]).occurred_at)
    dates = schedule_dates(cfg.schedule)
    check_as_of(dates, days.min().tz_localize("UTC"), days.max().tz_localize("UTC"))
    horizon = cfg.labels.horizon_days
    assert pd.Timestamp(dates[-1]) + pd.Timedelta(days=horizon) <= days.max()
    assert dates[0] >= (days.min() + pd.Timedelta(days=28)).date()
    # date-only times end to end: the labels init counted are pandas' count from the files
    positives = dict(zip(result.figures.dates, result.figures.positives["hand_raise"]))
    for d in dates[-3:]:
        assert positives[d] == _hand_raisers(out, d, horizon), d
    assert main(["validate", "--config", str(path)]) == 0
    assert main(["backtest", "--config", str(path), "--out", str(tmp_path / "bt"),
                 "--no-track"]) == 0
    metrics = json.loads((tmp_path / "bt" / "metrics.json").read_text())
    assert metrics["model"]["roc_auc"] > 0.5
    assert metrics["outcome"] == cfg.outcomes.target


def _small_log(out: Path, *, account: bool = True, days: int = 180) -> Path:
    """A hand-made CSV log: 40 users in 8 orgs, a few events a day, some demo requests."""
    rng = np.random.default_rng(0)
    n = 4_000
    frame = pd.DataFrame({
        "when": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, days * 24, n), "h"),
        "person": [f"p{i}" for i in rng.integers(0, 40, n)],
        "what": rng.choice(["board_opened", "card_moved", "demo_requested"], n, p=[.6, .39, .01])})
    if account:
        frame["team_id"] = "t" + (frame.person.str[1:].astype(int) % 8).astype(str)
    out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out / "events.csv", index=False)
    return out / "events.csv"


def test_init_refuses_to_overwrite(tmp_path, capsys):
    events = _small_log(tmp_path / "data")
    argv = ["init", str(tmp_path / "cfg"), "--events", str(events)]
    assert main(argv) == 0
    path = tmp_path / "cfg" / "pqlml.toml"
    path.write_text(path.read_text() + "# my edit\n")
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "already exists" in err and "--force" in err
    assert path.read_text().endswith("# my edit\n")
    assert main(argv + ["--force"]) == 0
    assert not path.read_text().endswith("# my edit\n")
    assert sorted(p.name for p in path.parent.iterdir()) == ["pqlml.toml"]   # no temp files
    assert sorted(p.name for p in events.parent.iterdir()) == ["events.csv"]  # nothing beside


def test_events_without_a_timestamp_column_is_a_clear_error(tmp_path, capsys):
    pd.DataFrame({"user": ["u1", "u2"], "action": ["login", "login"],
                  "when": [1704067200, 1704153600]}).to_csv(tmp_path / "log.csv", index=False)
    assert main(["init", str(tmp_path / "cfg"), "--events", str(tmp_path / "log.csv")]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "log.csv") in err
    for column in ("'user'", "'action'", "'when'"):
        assert column in err
    assert "epoch" in err and "2 rows" in err
    assert not (tmp_path / "cfg").exists()
    with pytest.raises(DataError, match="no column of the 2 rows holds timestamps"):
        runner.init(tmp_path / "cfg", tmp_path / "log.csv")


def test_a_required_column_init_cannot_find_is_a_placeholder_validate_names(tmp_path, capsys):
    events = _small_log(tmp_path / "data")
    pd.DataFrame({"person": [f"p{i}" for i in range(40)], "joined": "2024-01-01",
                  "nickname": "x"}).to_csv(tmp_path / "data" / "users.csv", index=False)
    result = runner.init(tmp_path / "cfg", events, users=tmp_path / "data" / "users.csv")
    assert [line.split(" = ")[0] for line in result.fill_ins] == ["email"]
    assert result.figures.problem        # the draft could not be measured
    result.write()
    tomllib.loads(result.path.read_text())
    capsys.readouterr()
    assert main(["validate", "--config", str(result.path)]) == 2
    err = capsys.readouterr().err
    assert "placeholder" in err and "'email'" in err and "users.csv" in err


def test_repeat_purchases_make_conversion_repeatable(tmp_path):
    events = _small_log(tmp_path / "data")
    months = pd.date_range("2024-01-15", "2024-06-15", freq="MS") + pd.Timedelta(days=14)
    pd.DataFrame([{"team_id": f"t{t}", "closed_at": m.date(), "kind": "order_paid"}
                  for t in range(8) for m in months]).to_csv(tmp_path / "orders.csv", index=False)
    result = runner.init(tmp_path / "cfg", events, outcomes=tmp_path / "orders.csv")
    assert not result.figures.problem
    assert result.figures.repeat == (8, 8)
    assert dict(load_config(result.write()).outcomes.values) == {"order_paid": "conversion"}
    assert load_config(result.path).labels.exclude_prior_positives is False
    assert "exclude_prior_positives = false  # guess: 8 of 8 converting" in result.text


def test_the_outcome_column_is_the_one_whose_values_name_outcomes(tmp_path):
    # "plan" has fewer distinct values than "change", but none of them names an outcome
    events = _small_log(tmp_path / "data")
    rows = [{"team_id": f"t{t}", "closed_at": f"2024-0{m}-10", "plan": ("team", "business")[t % 2],
             "change": ("trial_started", "upgraded", "cancelled")[(t + m) % 3]}
            for t in range(8) for m in range(2, 7)]
    pd.DataFrame(rows).to_csv(tmp_path / "subs.csv", index=False)
    result = runner.init(tmp_path / "cfg", events, outcomes=tmp_path / "subs.csv")
    config = load_config(result.write())
    assert config.data.outcomes.columns["outcome"] == "change"
    assert dict(config.outcomes.values)["upgraded"] == "conversion"


def test_user_level_log_is_scored_per_user(tmp_path):
    events = _small_log(tmp_path / "data", account=False)
    result = runner.init(tmp_path / "cfg", events)
    assert result.choices.entity.value == "user"
    assert 'entity = "user"  # guess: the events have no account column' in result.text
    assert load_config(result.write()).project.entity == "user"
    assert result.columns["events"]["ts"].value == "when"
    assert dict(load_config(result.path).outcomes.values) == {"demo_requested": "hand_raise"}
    # a log of users alone opens as a user-level project: the draft ran on the data
    assert not result.figures.problem
    assert "could not open the data" not in result.text
    assert main(["validate", "--config", str(result.path)]) == 0


@pytest.mark.parametrize("first, last", [("2024-01-03 10:00", "2025-06-29 23:00"),
                                         ("2024-01-01", "2024-07-01"),
                                         ("2024-03-15 08:00", "2024-06-20"),
                                         ("2024-02-01", "2024-04-20 12:00")])
def test_schedule_lies_in_the_data_and_leaves_backtest_folds(first, last):
    from pqlml.backtest import rolling_folds

    s = plan_schedule(first, last)
    dates = s.dates
    check_as_of(dates, first, last)                  # pqlml's own check of as_of dates
    assert pd.Timestamp(dates[-1], tz="UTC") + pd.Timedelta(days=s.horizon_days) \
        <= pd.Timestamp(last, tz="UTC")
    assert pd.Timestamp(dates[-1], tz="UTC") + pd.Timedelta(days=s.horizon_days + 7) \
        > pd.Timestamp(last, tz="UTC")              # and no later cutoff would fit
    folds = rolling_folds(dates, horizon_days=s.horizon_days, test_periods=s.test_periods)
    assert len(folds) == s.test_periods >= 1
    span = (pd.Timestamp(last) - pd.Timestamp(first)).days
    assert (s.every, s.horizon_days) == (("month", 28) if span > 300 else ("week", 14))


def test_too_short_a_log_is_a_clear_error():
    with pytest.raises(DataError, match="span only 59 days .* about 10 weeks"):
        plan_schedule("2024-02-01", "2024-03-31 12:00")


def test_outcome_words_follow_the_brief():
    kinds = {v: outcome_kind(v)[0] for v in (
        "closed_won", "Purchase Completed", "subscription_started", "plan_upgraded", "paid",
        "converted", "demo_requested", "talk_to_sales_clicked", "contact_sales_submitted",
        "quote_requested", "trial_requested", "closed_lost", "churned", "subscription_cancelled",
        "trial_ended", "paid_trial_started", "task_created")}
    assert kinds == {
        "closed_won": "conversion", "Purchase Completed": "conversion",
        "subscription_started": "conversion", "plan_upgraded": "conversion", "paid": "conversion",
        "converted": "conversion", "demo_requested": "hand_raise",
        "talk_to_sales_clicked": "hand_raise", "contact_sales_submitted": "hand_raise",
        "quote_requested": "hand_raise", "trial_requested": "hand_raise",
        "closed_lost": "ignore", "churned": "ignore", "subscription_cancelled": "ignore",
        "trial_ended": "ignore", "paid_trial_started": None, "task_created": None}


def test_init_cli_is_refused_on_unreadable_input(tmp_path, capsys):
    (tmp_path / "events.txt").write_text("a,b\n")
    assert main(["init", str(tmp_path / "cfg"), "--events", str(tmp_path / "events.txt")]) == 2
    assert "unknown file type" in capsys.readouterr().err
    with pytest.raises(PqlmlError):
        runner.init(tmp_path / "cfg", tmp_path / "missing.csv")
