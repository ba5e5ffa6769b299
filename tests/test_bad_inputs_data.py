"""The acceptance catalog of bad data (issue 21): each hostile input has one exact outcome.

Either a clear error (``pqlml validate`` exits 2 with the file, what is wrong and a Fix,
never a traceback) or a counted finding in the project's report (its ``kind`` and
``rows``). Tiny tables written to tmp_path; a project of 3 accounts, 6 users and ~480
events over 8 months that validates cleanly is the starting point of every case.
"""

from __future__ import annotations

import pandas as pd
import pytest

from pqlml.cli import main
from pqlml.project import build_features, open_project
from pqlml.schema import MAX_NAME_LENGTH

_TOML = """[project]
entity = "{entity}"
[data]
root = "."
{tables}
[outcomes]
target = "conversion"
[schedule]
start = 2024-02-01
end = 2024-08-01
every = "month"
[labels]
horizon_days = 28
[rules]
busy = "active_users_30d >= 1"
[tiers]
intent_rule = "busy"
"""


def _frames() -> dict:
    days = pd.date_range("2024-01-01", "2024-08-28", freq="D")
    users = pd.DataFrame({"user_id": ["u1", "u2", "u3", "u4", "u5", "u6"],
                          "email": ["ana@acme.io", "bo@acme.io", "cy@beta.io", "di@beta.io",
                                    "ed@gamma.io", "fi@gmail.com"],
                          "signup_at": ["2024-01-01T00:00:00Z"] * 6})
    accounts = pd.DataFrame({"account_id": ["a1", "a2", "a3"],
                             "domain": ["acme.io", "beta.io", "gamma.io"],
                             "created_at": ["2023-12-01T00:00:00Z"] * 3,
                             "employees": ["120", "40", "900"]})
    rows = [(f"{d:%Y-%m-%d}T{9 + j:02d}:00:00Z", u, ("login", "task_created", "invite_sent")[i % 3])
            for i, d in enumerate(days) for j, u in enumerate(users.user_id) if (i + j) % 3 == 0]
    events = pd.DataFrame(rows, columns=["ts", "user_id", "event"])
    outcomes = pd.DataFrame({"account_id": ["a1", "a2"],
                             "ts": ["2024-02-15T00:00:00Z", "2024-06-10T00:00:00Z"],
                             "outcome": ["conversion", "hand_raise"]})
    return {"events": events, "users": users, "accounts": accounts, "outcomes": outcomes}


def _config(tmp_path, entity="account", columns="", **tables):
    """A config over the base tables, each replaced by a DataFrame, or raw text / bytes
    (written as <name>.csv, or under the name given as a (filename, content) pair)."""
    frames = _frames() | tables
    lines = []
    for name, df in frames.items():
        if df is None:
            continue
        file = f"{name}.csv"
        if isinstance(df, tuple):
            file, df = df
        path = tmp_path / file
        if isinstance(df, pd.DataFrame):
            df.to_csv(path, index=False) if file.endswith(".csv") else df.to_parquet(path)
        elif isinstance(df, bytes):
            path.write_bytes(df)
        else:
            path.write_text(df, encoding="utf-8")
        lines.append(f'[data.{name}]\nsource = "{file}"')
        if name == "events" and columns:
            lines.append(f"[data.events.columns]\n{columns}")
    cfg = tmp_path / "pqlml.toml"
    cfg.write_text(_TOML.format(entity=entity, tables="\n".join(lines)))
    return cfg


def _findings(cfg) -> dict:
    report = open_project(cfg).report.to_frame()
    return dict(zip(report.kind, report.rows))


def _error(cfg, capsys) -> str:
    assert main(["validate", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "pqlml validate: error:" in err
    return err


def _edit(name, **cells):
    """The base table ``name`` with cells replaced: column={row: value}."""
    df = _frames()[name].copy()
    for column, values in cells.items():
        for row, value in values.items():
            df.loc[row, column] = value
    return df


def test_the_base_project_validates_cleanly(tmp_path, capsys):
    cfg = _config(tmp_path)
    assert main(["validate", "--config", str(cfg)]) == 0
    assert set(_findings(cfg)) == {"users_by_email_domain", "free_mail_users_without_account",
                                   "events_by_user_account", "free_mail_user_events"}


# ---- counted findings: (table edit, kind, rows) -------------------------------------------
_EMP = "employees"
FINDINGS = {
    "negative employees": (dict(accounts=_edit("accounts", employees={0: "-500"})),
                           "negative_values", 1),
    "inf employees": (dict(accounts=_edit("accounts", employees={0: "inf"})),
                      "non_finite_values", 1),
    "NaN employees": (dict(accounts=_edit("accounts", employees={1: "NaN", 2: "-inf"})),
                      "non_finite_values", 2),
    "1e400 employees": (dict(accounts=_edit("accounts", employees={0: "1e400"})),
                        "non_finite_values", 1),
    "employees beyond int64": (dict(accounts=_edit("accounts", employees={0: "1e300"})),
                               "non_finite_values", 1),
    "outcome of an unknown account": (dict(outcomes=pd.concat([_frames()["outcomes"], pd.DataFrame(
        {"account_id": ["zz", "zz"], "ts": ["2024-03-01T00:00:00Z"] * 2,
         "outcome": ["conversion", "hand_raise"]})])), "unknown_entities", 2),
    "an outcome before its account was created": (
        dict(outcomes=_edit("outcomes", ts={0: "2023-11-15T00:00:00Z"})),
        "outcomes_before_account_created", 1),
    "negative amount": (dict(outcomes=_frames()["outcomes"].assign(amount=["-10", "5"])),
                        "negative_values", 1),
    "inf amount": (dict(outcomes=_frames()["outcomes"].assign(amount=["inf", "5"])),
                   "non_finite_values", 1),
    "lead of an unknown account": (dict(leads=pd.DataFrame(
        {"account_id": ["a1", "nope"], "ts": ["2024-03-01T00:00:00Z"] * 2})),
        "unknown_entities", 1),
    "disposition of an unknown account": (dict(dispositions=pd.DataFrame(
        {"entity_id": ["a1", "ghost", "ghost"], "at": ["2024-03-01T00:00:00Z"] * 3,
         "disposition": ["accepted", "rejected", "Accepted "]})), "unknown_entities", 2),
    "touch of an unknown account": (dict(touches=pd.DataFrame(
        {"account_id": ["a1", "nope", "a2"], "at": ["2024-03-01T00:00:00Z"] * 3,
         "kind": ["call", "email", "meeting"]})), "unknown_entities", 1),
    "holdout of an unknown account": (dict(holdouts=pd.DataFrame(
        {"account_id": ["a1", "ghost", "ghost"], "at": ["2024-03-01T00:00:00Z"] * 3,
         "arm": ["touch", "Holdout ", "holdout"]})), "unknown_entities", 2),
    "conflicting event ids": (dict(events=_frames()["events"].assign(
        event_id=lambda d: [f"e{i}" for i in range(len(d) - 3)] + ["e0", "e1", "e2"])),
        "conflicting_event_ids", 3),
    "identical duplicate events": (dict(events=pd.concat(
        [_frames()["events"], _frames()["events"].head(4)])), "duplicate_events", 4),
    "a 200,000-character event name": (dict(events=_edit("events", event={3: "x" * 200_000})),
                                       "long_names", 1),
    "a 300-character user id": (dict(events=_edit("events", user_id={3: "u" * 300})),
                                "long_names", 1),
    "an event in 2099": (dict(events=_edit("events", ts={3: "2099-01-01T00:00:00Z"})),
                         "future_timestamps", 1),
    "events typed in 2026, two years after the log": (
        dict(events=_edit("events", ts={3: "2026-03-01T00:00:00Z", 4: "2026-03-02T00:00:00Z"})),
        "future_timestamps", 2),
    "a sign-up in 2099": (dict(users=_edit("users", signup_at={0: "2099-05-01T00:00:00Z"})),
                          "future_timestamps", 1),
    "naive timestamps": (dict(outcomes=_edit("outcomes", ts={0: "2024-02-15 00:00:00"})),
                         "naive_timestamps_assumed_utc", 1),
    "users on a domain no account has": (dict(users=_edit("users", email={4: "ed@delta.io"})),
                                         "users_domain_not_in_accounts", 1),
    "users naming an account the accounts table lacks": (dict(users=_frames()["users"].assign(
        account_id=["a1", "a9", None, "a9", None, None])), "users_account_not_in_accounts", 2),
    "accounts sharing a domain": (dict(accounts=_edit("accounts", domain={2: "acme.io"})),
                                  "accounts_sharing_a_domain", 2),
    "sign-up answers of unknown users": (dict(signups=pd.DataFrame(
        {"user_id": ["u1", "u99"], "company_size": ["51-200", "1-10"]})),
        "signups_without_user", 1),
}


@pytest.mark.parametrize("case", FINDINGS)
def test_bad_input_is_a_counted_finding(tmp_path, case):
    tables, kind, rows = FINDINGS[case]
    assert _findings(_config(tmp_path, **tables)).get(kind) == rows


def test_implausible_employees_never_reach_a_reason_or_a_feature(tmp_path):
    acc = _edit("accounts", employees={0: "-500", 1: "inf"})
    X = build_features(_config(tmp_path, accounts=acc), as_of="2024-06-01")
    assert X.set_index("account_id").employees.isna().to_dict() == {"a1": True, "a2": True,
                                                                    "a3": False}


def test_a_long_event_name_is_cut_not_a_giant_column(tmp_path):
    cfg = _config(tmp_path, events=_edit("events", event={3: "x" * 200_000}))
    names = open_project(cfg).first_seen
    assert max(map(len, names)) == MAX_NAME_LENGTH
    # the cut name plus the longest family's affix (events_<event>_velocity_30d), no more
    longest = max(map(len, build_features(cfg, as_of="2024-06-01").columns))
    assert longest == MAX_NAME_LENGTH + len("events__velocity_30d")


def test_conflicting_event_ids_keep_the_earliest_row(tmp_path):
    ev = _frames()["events"].head(3).assign(event_id=["e1", "e1", "e2"])
    ev.loc[1, "event"] = "retried_differently"
    ev = pd.concat([ev, _frames()["events"].iloc[3:].assign(event_id=lambda d: d.index.astype(str))])
    project = open_project(_config(tmp_path, events=ev))
    kept = project.tables["events"].filter(lambda t: t.event_id == "e1").execute()
    assert kept.event.tolist() == ["login"] and len(kept) == 1


def test_a_future_event_does_not_move_the_end_of_the_data(tmp_path):
    project = open_project(_config(tmp_path, events=_edit("events", ts={3: "2099-01-01T00:00:00Z"})))
    assert project.data_end.year == 2024


def test_a_few_malformed_csv_lines_are_skipped_and_named(tmp_path):
    lines = _frames()["events"].to_csv(index=False).splitlines()
    lines[50] += ",extra,fields"
    project = open_project(_config(tmp_path, events="\n".join(lines) + "\n"))
    f = next(f for f in project.report if f.kind == "malformed_csv_lines")
    assert f.rows == 1 and "line 51: more fields than the header" in f.action
    assert project.tables["events"].count().execute() == len(lines) - 2


def test_an_unterminated_quote_is_an_error_naming_its_line(tmp_path, capsys):
    lines = _frames()["events"].to_csv(index=False).splitlines()
    lines[60] = '2024-02-01T00:00:00Z,u1,"unterminated'
    err = _error(_config(tmp_path, events="\n".join(lines) + "\n"), capsys)
    assert "line 61" in err and "unterminated quote" in err and "Fix:" in err


def test_numeric_properties_nan_strings_and_negatives(tmp_path):
    ev = _frames()["events"].assign(seats="1")
    ev.loc[[0, 1], "seats"] = ["NaN", "inf"]
    ev.loc[[2, 3, 4], "seats"] = "-3"
    found = _findings(_config(tmp_path, events=ev, columns='seats = "seats"'))
    assert found["non_numeric_property"] == 2 and found["negative_values"] == 3


# ---- clear errors: (table edit, words the message must hold) -----------------------------
ERRORS = {
    "an empty events file": (dict(events=""), ["events.csv", "empty", "Fix:"]),
    "a header-only events file": (dict(events="ts,user_id,event\n"), ["has no rows"]),
    "a zero-byte Parquet file": (dict(events=("events.parquet", b"")),
                                 ["events.parquet", "could not read", "Fix:"]),
    "null user ids": (dict(events=_edit("events", user_id={2: None, 7: None})),
                      ["'user_id' is empty (null) in 2 of", "Fix:"]),
    "duplicate account ids with different domains": (
        dict(accounts=_edit("accounts", account_id={1: "a1"})),
        ["'account_id' has 1 ids that appear more than once", "Fix:"]),
    "Excel serial dates": (dict(events=_edit("events", ts={0: "45292", 1: "45293"})),
                           ["2 of", "epoch numbers", "Fix:"]),
    "a header with a repeated name": (dict(events="ts,user_id,event,event\n2024-01-01,u1,a,b\n"),
                                      ["names 'event' more than once", "Fix:"]),
    "a header with a blank name": (dict(events="ts,,event\n2024-01-01,u1,a\n"),
                                   ["have no name", "Fix:"]),
    "an unknown outcome kind 200,000 characters long": (
        dict(outcomes=_edit("outcomes", outcome={0: "y" * 200_000})),
        ["200,000 characters", "Fix:"]),
    "words in employees": (dict(accounts=_edit("accounts", employees={0: "many"})),
                           ["'employees' has 1 of 3 rows that are not whole numbers", "Fix:"]),
    "an arm that is not touch or holdout": (dict(holdouts=pd.DataFrame(
        {"account_id": ["a1", "a2"], "at": ["2024-03-01T00:00:00Z"] * 2,
         "arm": ["touch", "control"]})),
        ["'arm' has 1 of 2 rows outside the allowed values 'touch', 'holdout': 'control'",
         "Fix: map them in the config, e.g. [data.holdouts] values = { \"control\" = "
         "\"holdout\" }"]),
    "a touch time that is no time": (dict(touches=pd.DataFrame(
        {"account_id": ["a1", "a2"], "at": ["2024-03-01T00:00:00Z", "last tuesday"]})),
        ["touches.csv", "'at' has 1 of 2 rows that are not timestamps", "Fix:"]),
    "a touches table without times": (dict(touches=pd.DataFrame({"account_id": ["a1"]})),
                                      ["touches.csv", "missing required column(s) 'at'", "Fix:"]),
    "a rule naming an unknown feature": (None, ["'active_user_30d'", "closest: active_users_30d"]),
}


@pytest.mark.parametrize("case", ERRORS)
def test_bad_input_is_a_clear_error(tmp_path, capsys, case):
    tables, words = ERRORS[case]
    cfg = _config(tmp_path, **(tables or {}))
    if tables is None:
        cfg.write_text(cfg.read_text().replace('"active_users_30d >= 1"', '"active_user_30d >= 1"'))
    err = _error(cfg, capsys)
    assert all(w in err for w in words), err[:2000]
    assert len(err) < 5_000


# ---- inputs that must load as the data means -----------------------------------------------
def test_a_byte_order_mark_and_a_semicolon_delimiter_load(tmp_path):
    text = _frames()["events"].to_csv(index=False, sep=";")
    cfg = _config(tmp_path, events=("\ufeff" + text).encode("utf-8"))
    project = open_project(cfg)
    assert project.tables["events"].count().execute() == len(_frames()["events"])


def test_a_column_named_like_a_sql_keyword_and_a_wide_row_are_ignored_columns(tmp_path):
    ev = _frames()["events"].assign(select="x", **{f"c{i}": i for i in range(300)})
    project = open_project(_config(tmp_path, events=ev))
    assert "select" in project.report.ignored_columns["events"]
    assert len(project.report.ignored_columns["events"]) == 301


def test_ids_that_differ_only_by_leading_zeros_stay_distinct(tmp_path):
    ev = _edit("events", user_id={0: "007"})
    users = pd.concat([_frames()["users"], pd.DataFrame(
        {"user_id": ["007", "7"], "email": ["x@acme.io", "y@acme.io"],
         "signup_at": ["2024-01-01T00:00:00Z"] * 2})])
    project = open_project(_config(tmp_path, events=ev, users=users))
    assert project.users.filter(lambda t: t.user_id.isin(["007", "7"])).count().execute() == 2


def test_unicode_and_punycode_spellings_of_a_domain_match(tmp_path):
    users = _edit("users", email={4: "ed@MÜNCHEN.de."})
    accounts = _edit("accounts", domain={2: "https://www.xn--mnchen-3ya.de/"})
    project = open_project(_config(tmp_path, users=users, accounts=accounts))
    assert "users_domain_not_in_accounts" not in {f.kind for f in project.report}
    got = project.users.filter(lambda t: t.user_id == "u5").execute().account_id.tolist()
    assert got == ["a3"]


def test_enrichment_finds_an_account_under_either_spelling_of_its_domain(tmp_path):
    accounts = _edit("accounts", domain={2: "MÜNCHEN.de"})
    enrichment = pd.DataFrame({"domain": ["www.xn--mnchen-3ya.de", "acme.io"],
                               "employees": ["75", "10"]})
    X = build_features(_config(tmp_path, accounts=accounts, enrichment=enrichment),
                       as_of="2024-06-01").set_index("account_id")
    assert X.enriched.to_dict() == {"a1": 1, "a2": 0, "a3": 1}
    assert X.enriched_employees["a3"] == 75


def test_an_account_whose_users_use_a_subdomain_is_not_scored_for_that_reason(tmp_path):
    from pqlml.score import _not_scored

    project = open_project(_config(tmp_path, users=_edit("users", email={4: "ed@eu.gamma.io"})))
    X = build_features(project, as_of="2024-06-01")
    gone = _not_scored(project, X, "account_id", "account", pd.Timestamp("2024-06-01", tz="UTC"))
    row = gone[gone.account_id == "a3"].iloc[0]
    assert row.code == "unmatched_domain" and "eu.gamma.io" in row.reason
    assert "no_events" not in set(gone.code)
