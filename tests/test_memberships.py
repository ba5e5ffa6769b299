"""Membership over time: a user's move between accounts never changes an earlier cutoff.

Checked on hand-made intervals, by a property test over random logs and moves, against a
plain-pandas attribution, and on a simulated company read as canonical tables and as each
vendor's export (Segment, Amplitude, Mixpanel, Segment's warehouse layout).
"""

from __future__ import annotations

import datetime as dt
import shutil

import ibis
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pqlml.config import FeaturesConfig
from pqlml.features import feature_table
from pqlml.identity import account_events, membership_intervals, static_members, user_accounts
from pqlml.project import build_features, open_project
from pqlml.simulate import simulate
from pqlml.simulate._export import export_company
from pqlml.validate import ValidationReport

UTC = dt.timezone.utc
T0 = pd.Timestamp("2024-01-01", tz="UTC")


def _ts(*values):
    return pd.to_datetime(list(values), utc=True, format="ISO8601")


def _users(rows):
    """rows: (user_id, email, account_id or None, signup)."""
    return ibis.memtable(pd.DataFrame({
        "user_id": [r[0] for r in rows], "email": [r[1] for r in rows],
        "account_id": pd.array([r[2] for r in rows], "object"),
        "signup_at": _ts(*[r[3] for r in rows]), "title": ["vp"] * len(rows)}))


def _moves(rows):
    return ibis.memtable(pd.DataFrame({"user_id": [r[0] for r in rows],
                                       "account_id": [r[1] for r in rows],
                                       "since": _ts(*[r[2] for r in rows])}))


def _kinds(report):
    return {f.kind: f.rows for f in report}


def test_intervals_start_from_the_base_account_and_merge_repeated_stays():
    users = _users([("u1", "a@acme.io", "acme", "2024-01-01"),
                    ("u2", "b@gmail.com", None, "2024-01-01"),       # no base account
                    ("u3", "c@acme.io", "acme", "2024-01-01")])
    report = ValidationReport()
    umap = user_accounts(users, None, report=ValidationReport())
    moves = _moves([("u1", "acme", "2024-02-01"),        # the same stay as the base: merged
                    ("u1", "globex", "2024-04-15 10:00"),
                    ("u1", "globex", "2024-05-01"),      # still globex: merged
                    ("u2", "initech", "2024-03-01"),
                    ("u2", "initech", "2024-03-01"),     # a repeated row
                    ("ghost", "acme", "2024-02-01")])    # not in the users table
    m = membership_intervals(umap, moves, report=report).order_by(["user_id", "from_day"])
    got = [(r["user_id"], r["account_id"], r["valid_from"], r["valid_to"])
           for r in m.to_pyarrow().to_pylist()]
    at = lambda s: pd.Timestamp(s, tz="UTC").to_pydatetime()             # noqa: E731
    assert got == [("ghost", "acme", at("2024-02-01"), None),
                   ("u1", "acme", None, at("2024-04-15 10:00")),
                   ("u1", "globex", at("2024-04-15 10:00"), None),
                   ("u2", "initech", at("2024-03-01"), None),
                   ("u3", "acme", None, None)]
    assert _kinds(report) == {"users_changing_account": 1, "memberships_of_unknown_users": 1}
    clash = ValidationReport()
    membership_intervals(umap, _moves([("u3", "b", "2024-02-01"), ("u3", "a", "2024-02-01")]),
                         report=clash)
    assert _kinds(clash)["memberships_at_the_same_time"] == 1


def test_events_take_the_account_of_their_time_and_every_route_is_counted():
    users = _users([("u1", "a@acme.io", "acme", "2024-01-01"),
                    ("u2", "b@gmail.com", None, "2024-01-01"),
                    ("u4", "d@gmail.com", None, "2024-01-01")])
    umap = user_accounts(users, None, report=ValidationReport())
    members = membership_intervals(umap, _moves([("u1", "globex", "2024-04-15 10:00"),
                                                 ("u2", "initech", "2024-03-01")]),
                                   report=ValidationReport())
    events = ibis.memtable(pd.DataFrame({
        "ts": _ts("2024-04-15 09:59:59", "2024-04-15 10:00", "2024-02-01", "2024-03-01",
                  "2024-03-02", "2024-03-02"),
        "user_id": ["u1", "u1", "u2", "u2", "u4", "nobody"], "event": ["x"] * 6}))
    report = ValidationReport()
    out = account_events(events, umap, members=members, report=report).order_by("ts")
    got = [(r["user_id"], r["account_id"]) for r in out.to_pyarrow().to_pylist()]
    assert sorted(got, key=str) == sorted([("u1", "acme"), ("u1", "globex"), ("u2", None),
                                           ("u2", "initech"), ("u4", None), ("nobody", None)],
                                          key=str)
    assert _kinds(report) == {"events_by_user_account": 3, "free_mail_user_events": 1,
                              "events_before_first_membership": 1, "unknown_user_events": 1}


# --- the property: a move at or after as_of never changes a feature row ---------------

BASE = dt.datetime(2024, 3, 1, tzinfo=UTC)
ACCOUNTS = ["a1", "a2", "a3"]
USERS = ["u1", "u2", "u3", "u4"]
_secs = st.integers(-100 * 86_400, 40 * 86_400)
_event = st.tuples(_secs, st.sampled_from(USERS), st.sampled_from(["task", "invite"]))
_move = st.tuples(_secs, st.sampled_from(USERS), st.sampled_from(ACCOUNTS))
_later = st.tuples(st.integers(0, 40 * 86_400), st.sampled_from(USERS), st.sampled_from(ACCOUNTS))
SPINE = pd.DataFrame({"entity_id": ACCOUNTS, "as_of": [pd.Timestamp(BASE)] * 3})
VOCAB = FeaturesConfig(events=("task", "invite"))


def _features(events, moves, signups=None):
    """Account features at BASE from a log without account ids, base accounts a1/a2/none
    and the ``moves`` (seconds from BASE, user, account)."""
    con = ibis.duckdb.connect()
    con.raw_sql("SET TimeZone='UTC'")
    signups = signups or {u: -120 * 86_400 for u in USERS}
    users = pd.DataFrame({"user_id": USERS, "email": [f"{u}@gmail.com" for u in USERS],
                          "account_id": pd.array(["a1", "a2", "a1", None], "object"),
                          "signup_at": [BASE + dt.timedelta(seconds=signups[u]) for u in USERS],
                          "title": ["vp", None, "engineer", None]})
    umap = user_accounts(con.create_table("users", users), None, report=ValidationReport())
    ev = pd.DataFrame({"ts": [BASE + dt.timedelta(seconds=s) for s, *_ in events],
                       "user_id": [u for _, u, _ in events], "event": [e for *_, e in events]})
    m = pd.DataFrame({"user_id": [u for _, u, _ in moves], "account_id": [a for *_, a in moves],
                      "since": [BASE + dt.timedelta(seconds=s) for s, *_ in moves]},
                     columns=["user_id", "account_id", "since"]).astype(
                         {"since": "datetime64[us, UTC]", "user_id": object, "account_id": object})
    m = ibis.memtable(m, schema={"user_id": "string", "account_id": "string",
                                 "since": "timestamp('UTC')"})
    members = membership_intervals(umap, con.create_table("moves", m), report=ValidationReport())
    events_t = account_events(con.create_table("events", ev), umap, members=members,
                              report=ValidationReport())
    spine = con.create_table("spine", SPINE)
    out = feature_table(spine, events_t, users=umap, members=members, settings=VOCAB)
    return out.to_pandas().sort_values("account_id").reset_index(drop=True)


@settings(max_examples=15, deadline=None)
@given(st.lists(_event, min_size=1, max_size=30), st.lists(_move, max_size=6),
       st.lists(_later, min_size=1, max_size=4))
def test_moves_at_or_after_as_of_never_change_a_feature_row(events, moves, later):
    before = _features(events, moves)
    after = _features(events, moves + later)
    pd.testing.assert_frame_equal(before, after)


def _reference(events, moves):
    """events_30d, active_users_30d and users_total at BASE per account, by hand."""
    base = {"u1": "a1", "u2": "a2", "u3": "a1", "u4": None}

    def account(user, t):
        mine = sorted((s, a) for s, u, a in moves if u == user and s <= t)
        return mine[-1][1] if mine else base[user]
    out = {}
    for a in ACCOUNTS:
        recent = [(u, s) for s, u, _ in events
                  if -30 * 86_400 <= s // 86_400 * 86_400 and s < 0 and account(u, s) == a]
        members = {u for u in USERS if account(u, -1e-6) == a}
        out[a] = (len(recent), len({u for u, _ in recent}), len(members))
    return out


@settings(max_examples=25, deadline=None)
@given(st.lists(_event, min_size=1, max_size=30), st.lists(_move, max_size=8))
def test_features_with_moves_equal_a_plain_python_attribution(events, moves):
    # times on whole seconds; a move and an event at the same second: the move counts first
    got = _features(events, moves).set_index("account_id")
    want = _reference(events, moves)
    for a in ACCOUNTS:
        assert (got.events_30d[a], got.active_users_30d[a], got.users_total[a]) == want[a], a


# --- a simulated company: canonical tables and every vendor's export ------------------

EARLY, LATE = "2024-04-01", "2024-06-01"
MOVE = pd.Timestamp("2024-04-11 15:30", tz="UTC")


@pytest.fixture(scope="module")
def worlds(tmp_path_factory):
    """``still``: the company with events carrying no account (users' accounts decide);
    ``moved``: the same, with 25 users moving to another account on MOVE."""
    sim = tmp_path_factory.mktemp("sim")
    simulate(n_accounts=120, seed=7, out=sim, months=6)
    out = {}
    for name in ("still", "moved"):
        folder = tmp_path_factory.mktemp(name)
        for f in sim.iterdir():
            if f.is_file():
                shutil.copy(f, folder / f.name)
        ev = pd.read_parquet(sim / "events.parquet")
        ev.drop(columns="account_id").to_parquet(folder / "events.parquet")
        # a user without events is not in an Amplitude or Mixpanel export at all
        users = pd.read_parquet(sim / "users.parquet")
        users[users.user_id.isin(ev.user_id)].to_parquet(folder / "users.parquet")
        out[name] = folder
    ev = pd.read_parquet(sim / "events.parquet")
    users = pd.read_parquet(out["still"] / "users.parquet")
    accounts = pd.read_parquet(sim / "accounts.parquet")
    active = ev[(ev.ts < MOVE) & ev.account_id.notna()].user_id.unique()
    later = ev[ev.ts > MOVE].user_id.unique()
    movers = users[users.user_id.isin(active) & users.user_id.isin(later)].head(25)
    old = accounts[accounts.created_at < MOVE].account_id.sort_values().to_numpy()
    rng = np.random.default_rng(0)
    target = [rng.choice(old[old != a]) for a in movers.account_id]
    moves = pd.DataFrame({"user_id": movers.user_id, "account_id": target, "since": MOVE})
    moves.to_parquet(out["moved"] / "memberships.parquet")
    # what Amplitude and Mixpanel can see of the move: the first event carrying the new group
    first = ev[ev.ts >= MOVE].groupby("user_id").ts.min()
    moves.assign(since=moves.user_id.map(first)).to_parquet(out["moved"] / "seen_moves.parquet")
    text = (out["moved"] / "pqlml.toml").read_text()
    for config, source in (("pqlml.toml", "memberships"), ("seen.toml", "seen_moves")):
        (out["moved"] / config).write_text(text.replace(
            "[data.outcomes]", f'[data.memberships]\nsource = "{source}.parquet"\n\n'
                               "[data.outcomes]"))
    assert len(movers) == 25
    return out


def test_a_move_changes_no_feature_before_it_and_counts_after_it(worlds):
    still = build_features(worlds["still"] / "pqlml.toml", as_of=[EARLY, LATE])
    moved = build_features(worlds["moved"] / "pqlml.toml", as_of=[EARLY, LATE])
    early = lambda X: X[X.as_of == EARLY].reset_index(drop=True)         # noqa: E731
    pd.testing.assert_frame_equal(early(still), early(moved))
    late_still, late_moved = (X[X.as_of == LATE].set_index("account_id") for X in (still, moved))
    assert (late_still.users_total != late_moved.users_total).sum() > 10
    assert late_still.users_total.sum() == late_moved.users_total.sum()  # users only moved
    # after the move: an independent attribution of each event by the user's account then
    ev = pd.read_parquet(worlds["moved"] / "events.parquet")
    users = pd.read_parquet(worlds["moved"] / "users.parquet")
    moves = pd.read_parquet(worlds["moved"] / "memberships.parquet").set_index("user_id")
    account = ev.user_id.map(users.set_index("user_id").account_id)
    moved_now = ev.user_id.isin(moves.index) & (ev.ts >= MOVE)
    account[moved_now] = ev.user_id[moved_now].map(moves.account_id)
    as_of = pd.Timestamp(LATE, tz="UTC")
    recent = ev.assign(a=account)[(ev.ts < as_of) & (ev.ts >= as_of - pd.Timedelta(days=30))]
    want = recent.groupby("a").size()
    got = late_moved.events_30d
    assert (got.reindex(want.index).astype(int) == want).all() and got.sum() == want.sum()
    members = users.set_index("user_id").account_id.copy()
    members[moves.index] = moves.account_id
    signed = users.set_index("user_id").signup_at < as_of
    want_users = members[signed & members.notna()].value_counts()
    assert (late_moved.users_total[late_moved.users_total > 0].astype(int).sort_index()
            == want_users.sort_index()).all()
    findings = open_project(worlds["moved"] / "pqlml.toml").report
    report = {f.kind: f.rows for f in findings}
    assert report["users_changing_account"] == 25
    # with memberships, a user's email route holds only until a memberships row: said so
    users = [f for f in findings if f.table == "users"]
    assert users and all("memberships row" in f.action and "not account features" not in
                         f.action for f in users)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["segment", "amplitude", "mixpanel", "segment_warehouse"])
def test_each_vendor_export_keeps_the_move_at_its_time(worlds, fmt, tmp_path):
    # Segment sends a group call at the move; Amplitude and Mixpanel show the new group on
    # the user's next event
    config = "seen.toml" if fmt in ("amplitude", "mixpanel") else "pqlml.toml"
    canonical = build_features(worlds["moved"] / config, as_of=[EARLY, LATE])
    read = {name: build_features(export_company(worlds[name], fmt, tmp_path / name),
                                 as_of=[EARLY, LATE]) for name in ("still", "moved")}
    early = lambda X: X[X.as_of == EARLY].reset_index(drop=True)         # noqa: E731
    pd.testing.assert_frame_equal(early(read["still"]), early(read["moved"]))
    pd.testing.assert_frame_equal(canonical, read["moved"], check_dtype=False)


def test_scoring_lists_users_by_their_membership_then(worlds, tmp_path):
    """A free-mail user who joins an account after as_of is listed as not yet a member; one
    who joined before it is in the account (no longer an orphan). Customers are listed only
    while conversion is not repeatable."""
    from pqlml.model import train
    from pqlml.project import open_project
    from pqlml.score import Scorer

    folder = tmp_path / "world"
    shutil.copytree(worlds["moved"], folder)
    users = pd.read_parquet(folder / "users.parquet")
    free = users[users.account_id.isna()].user_id.head(2).tolist()
    moves = pd.read_parquet(folder / "memberships.parquet")
    joins = pd.DataFrame({"user_id": free, "account_id": ["a000001", "a000002"],
                          "since": pd.to_datetime(["2024-03-10", "2024-06-10"], utc=True)})
    pd.concat([moves, joins]).to_parquet(folder / "memberships.parquet")
    project = open_project(folder / "pqlml.toml")
    model = train(project.snapshots(), settings=project.config)
    scorer = Scorer(model, "test")
    project = open_project(folder / "pqlml.toml")
    gone = scorer.score(project.features([LATE]), project=project).not_scored
    code = gone.set_index("user_id").code
    assert free[0] not in code.index                       # a member of a000001 by then
    assert code[free[1]] == "not_yet_member"
    assert "a000002" in gone.set_index("user_id").reason[free[1]]
    assert (gone.code == "customer").sum() > 0
    text = (folder / "pqlml.toml").read_text().replace(
        "[labels]\n", "[labels]\nexclude_prior_positives = false\n")
    (folder / "repeat.toml").write_text(text)
    project = open_project(folder / "repeat.toml")
    gone = scorer.score(project.features([LATE]), project=project).not_scored
    assert not (gone.code == "customer").any()
