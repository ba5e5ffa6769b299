"""Identity: users to accounts (explicit id, work domain, free mail) and events to accounts."""

import ibis
import ibis.expr.operations as ops
import pandas as pd
import pytest

from pqlml import identity
from pqlml.errors import DataError
from pqlml.identity import (FREE_MAIL_DOMAINS, account_events, email_domain, is_free_mail,
                            user_accounts)
from pqlml.validate import ValidationReport

T0 = pd.Timestamp("2024-01-01", tz="UTC")


def _users(rows):
    """rows: (user_id, email, account_id or None)."""
    return ibis.memtable(pd.DataFrame({
        "user_id": [r[0] for r in rows], "email": [r[1] for r in rows],
        "signup_at": [T0] * len(rows), "account_id": pd.array([r[2] for r in rows], "object"),
        "title": ["engineer"] * len(rows)}))


def _accounts(rows):
    return ibis.memtable(pd.DataFrame({"account_id": [r[0] for r in rows],
                                       "domain": [r[1] for r in rows],
                                       "created_at": [T0] * len(rows)}))


def _by_user(t):
    return {r["user_id"]: r for r in t.to_pyarrow().to_pylist()}


def _kinds(report):
    return {f.kind: f.rows for f in report}


USERS = [
    ("u1", "ana@acme.io", "a-explicit"),     # explicit id beats the domain
    ("u2", "bo@ACME.io", None),              # domain -> accounts.domain, any case
    ("u3", "cy@Globex.com", None),
    ("u4", "di@gmail.com", None),            # free mail
    ("u5", "ed@outlook.com", None),
    ("u6", "fa@proton.me", None),
    ("u7", "no-at-sign", None),              # no domain
    ("u8", "gi@unknown.org", None),          # work domain not in accounts
]
ACCOUNTS = [("a1", "Acme.IO"), ("a2", "globex.com")]


def test_free_mail_list_and_helper():
    assert len(FREE_MAIL_DOMAINS) > 4000
    assert {"gmail.com", "outlook.com", "proton.me"} <= FREE_MAIL_DOMAINS
    assert is_free_mail("GMAIL.com") and is_free_mail(" yahoo.com ")
    assert not is_free_mail("acme.io") and not is_free_mail(None)


def test_email_domain_is_lowercased_part_after_last_at():
    t = ibis.memtable({"e": ["A@B@Example.ORG", "x@y.com", "nope", None, "z@"]})
    got = t.select(d=email_domain(t.e)).to_pyarrow()["d"].to_pylist()
    assert got == ["example.org", "y.com", None, None, None]


def test_users_map_with_accounts_table():
    report = ValidationReport()
    m = _by_user(user_accounts(_users(USERS), _accounts(ACCOUNTS), report=report))
    assert {u: r["account_id"] for u, r in m.items()} == {
        "u1": "a-explicit", "u2": "a1", "u3": "a2", "u4": None, "u5": None, "u6": None,
        "u7": None, "u8": None}
    assert [m[u]["is_free_mail"] for u in ("u1", "u4", "u5", "u6", "u7", "u8")] == [
        False, True, True, True, False, False]
    assert m["u2"]["email_domain"] == "acme.io" and m["u7"]["email_domain"] is None
    assert m["u1"]["title"] == "engineer" and m["u1"]["signup_at"] == T0
    # u1's explicit a-explicit is no row of ACCOUNTS: kept, and counted as such
    assert _kinds(report) == {"users_account_not_in_accounts": 1, "users_by_email_domain": 2,
                              "free_mail_users_without_account": 3,
                              "users_without_email_domain": 1,
                              "users_domain_not_in_accounts": 1}
    assert sum(f.rows for f in report) == len(USERS)


def test_domain_is_the_account_without_accounts_table():
    report = ValidationReport()
    m = _by_user(user_accounts(_users(USERS), None, report=report))
    assert m["u2"]["account_id"] == "acme.io" and m["u8"]["account_id"] == "unknown.org"
    assert m["u1"]["account_id"] == "a-explicit" and m["u4"]["account_id"] is None
    assert _kinds(report)["users_by_email_domain"] == 3
    assert "users_domain_not_in_accounts" not in _kinds(report)


def test_explicit_id_beats_free_mail_and_optional_columns_may_be_absent():
    users = ibis.memtable({"user_id": ["u1"], "email": ["x@gmail.com"], "signup_at": [T0]})
    report = ValidationReport()
    m = _by_user(user_accounts(users, None, report=report))
    assert m["u1"]["account_id"] is None and m["u1"]["title"] is None
    explicit = _users([("u1", "x@gmail.com", "a7")])
    assert _by_user(user_accounts(explicit, None, report=ValidationReport()))["u1"][
        "account_id"] == "a7"


def test_shared_domain_goes_to_smallest_account_and_is_reported():
    report = ValidationReport()
    accounts = _accounts([("a2", "acme.io"), ("a1", "ACME.io"), ("a3", "other.com")])
    m = _by_user(user_accounts(_users([("u1", "x@acme.io", None)]), accounts, report=report))
    assert m["u1"]["account_id"] == "a1"
    assert _kinds(report)["accounts_sharing_a_domain"] == 2


def _events(rows, with_account=True):
    df = pd.DataFrame({"ts": [T0 + pd.Timedelta(minutes=i) for i in range(len(rows))],
                       "user_id": [r[0] for r in rows], "event": ["login"] * len(rows)})
    if with_account:
        df["account_id"] = pd.array([r[1] for r in rows], "object")
    return ibis.memtable(df)


@pytest.mark.parametrize("cached", [True, False])
def test_account_events_routes_and_counts_add_up(cached, monkeypatch):
    # Below the bound the events that need the user lookup are resolved once and cached;
    # above it they are joined in every query: both give the same rows and findings.
    monkeypatch.setattr(identity._events, "_CACHED_LOOKUPS", 10 ** 6 if cached else 0)
    report = ValidationReport()
    users_map = user_accounts(_users(USERS), _accounts(ACCOUNTS), report=ValidationReport())
    rows = [("u2", None), ("u2", None), ("u1", None),   # by user's account
            ("u4", "a9"),                              # own account beats free mail
            ("u4", None), ("u5", None), ("u6", None),  # free mail
            ("u7", None), ("u8", None),                # users without account
            ("ghost", None), ("ghost", None), ("ghost2", None),  # unknown users
            ("ghost", "a1")]                           # unknown user, own account
    out = account_events(_events(rows), users_map, report=report)
    assert out.columns == ("ts", "user_id", "account_id", "event")
    got = out.order_by("ts").to_pyarrow()["account_id"].to_pylist()
    assert got == ["a1", "a1", "a-explicit", "a9", None, None, None, None, None, None, None,
                   None, "a1"]
    assert _kinds(report) == {"events_with_own_account_id": 2, "events_by_user_account": 3,
                              "free_mail_user_events": 3, "events_of_users_without_account": 2,
                              "unknown_user_events": 3}
    unknown = next(f for f in report if f.kind == "unknown_user_events")
    assert unknown.fix == "add the users to the users table or give events an account_id"
    assert sum(f.rows for f in report) == len(rows) == out.count().execute()


def test_events_that_all_have_their_account_are_read_once():
    report = ValidationReport()
    out = account_events(_events([("u2", "a1"), ("zz", "a2")]), None, report=report)
    assert not isinstance(out.op(), ops.Union)   # no second read for lookups that are none
    assert out.order_by("ts").to_pyarrow()["account_id"].to_pylist() == ["a1", "a2"]
    assert _kinds(report) == {"events_with_own_account_id": 2}


def test_account_events_without_account_column_or_users():
    users_map = user_accounts(_users(USERS), None, report=ValidationReport())
    report = ValidationReport()
    out = account_events(_events([("u2", None), ("zz", None)], with_account=False), users_map,
                         report=report)
    assert out.order_by("ts").to_pyarrow()["account_id"].to_pylist() == ["acme.io", None]
    assert _kinds(report) == {"events_by_user_account": 1, "unknown_user_events": 1}
    report = ValidationReport()
    out = account_events(_events([("u2", "a1"), ("u3", None)]), None, report=report)
    assert _kinds(report) == {"events_with_own_account_id": 1, "events_without_account": 1}
    with pytest.raises(DataError, match="no account_id column and no users table"):
        account_events(_events([("u2", None)], with_account=False), None,
                       report=ValidationReport())


def test_simulated_users_map_to_their_accounts(tmp_path):
    from pqlml.config import load_config
    from pqlml.simulate import simulate
    from pqlml.sources import load_tables

    simulate(n_accounts=60, seed=3, out=tmp_path, months=3)
    _, tables, _ = load_tables(load_config(tmp_path / "pqlml.toml").data)
    report = ValidationReport()
    users = tables["users"].drop("account_id")   # force the email-domain route
    m = user_accounts(users, tables["accounts"], report=report)
    truth = tables["users"].to_pyarrow().to_pylist()
    got = {r["user_id"]: r["account_id"] for r in m.to_pyarrow().to_pylist()}
    assert got == {r["user_id"]: r["account_id"] for r in truth}
    kinds = _kinds(report)
    n_free = sum(r["account_id"] is None for r in truth)
    assert kinds["free_mail_users_without_account"] == n_free > 0
    assert kinds["users_by_email_domain"] == len(truth) - n_free
    ev_report = ValidationReport()
    ev = account_events(tables["events"].drop("account_id"), m, report=ev_report)
    n_events = tables["events"].count().execute()
    assert sum(f.rows for f in ev_report) == n_events == ev.count().execute()
    same = ev.join(tables["events"], ["ts", "user_id", "event"])
    mismatch = same.filter(same.account_id.fill_null("-") != same.account_id_right.fill_null("-"))
    assert mismatch.count().execute() == 0
