"""Incremental refresh: after events are appended, the features of the new as_of built from
the kept state equal the full rebuild exactly, every column; anything but growth falls back
to the full build and says why."""

import datetime as dt
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pqlml.cli import main
from pqlml.project import open_project
from pqlml.refresh import full_build, state_paths

UTC = dt.timezone.utc
START = pd.Timestamp("2024-01-01", tz="UTC")
EVENTS = ["task_created", "board_created", "invite_sent", "integration_connected",
          "message_sent", "page_viewed"]
CONFIG = """
[project]
name = "refresh"
entity = "account"

[data]
root = "."

[data.events]
source = "events/*.parquet"
[data.events.columns]
amount = "amount"

[data.users]
source = "users.parquet"

[data.accounts]
source = "accounts.parquet"

[data.memberships]
source = "memberships.parquet"

[schedule]
start = 2024-04-01
end = 2024-07-01
every = "month"

[labels]
horizon_days = 28

[features]
activation = ["board_created >= 1", "invite_sent >= 2", "integration_connected >= 1"]
activation_within_days = 14
engagement_half_life_days = 14

[features.engagement_weights]
task_created = 1
board_created = 3
message_sent = 0.5
invite_sent = 5

[features.sums.big_amounts_30d]
property = "amount"
window_days = 30
"""


def _users(n_accounts: int, n_users: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    accounts = pd.DataFrame({"account_id": [f"a{i}" for i in range(n_accounts)],
                             "domain": [f"a{i}.com" for i in range(n_accounts)],
                             "created_at": [START + pd.Timedelta(days=3 * i)
                                            for i in range(n_accounts)],
                             "employees": [10 * (i + 1) for i in range(n_accounts)]})
    users = pd.DataFrame({"user_id": [f"u{i}" for i in range(n_users)],
                          "account_id": [f"a{i % n_accounts}" for i in range(n_users)],
                          "email": [f"u{i}@a{i % n_accounts}.com" for i in range(n_users)],
                          "signup_at": [START + pd.Timedelta(days=2 * i) for i in range(n_users)],
                          "title": ["CTO" if i % 3 == 0 else "engineer" for i in range(n_users)]})
    return accounts, users


def _events(rows, users: pd.DataFrame, origin: pd.Timestamp) -> pd.DataFrame:
    """rows: (seconds after origin, user index, event index, amount or None)."""
    return pd.DataFrame({
        "ts": [origin + pd.Timedelta(seconds=int(s)) for s, *_ in rows],
        "user_id": [users.user_id.iloc[u % len(users)] for _, u, _, _ in rows],
        "event": [EVENTS[e] for _, _, e, _ in rows],
        "amount": pd.array([a for *_, a in rows], dtype="Float64")})


def _project_folder(rows, n_accounts=3, n_users=6) -> tuple[Path, pd.DataFrame]:
    root = Path(tempfile.mkdtemp(prefix="pqlml-refresh-"))
    (root / "events").mkdir()
    accounts, users = _users(n_accounts, n_users)
    accounts.to_parquet(root / "accounts.parquet")
    users.to_parquet(root / "users.parquet")
    # u0 moves from a0 to a1 on day 60: its earlier events stay a0's
    pd.DataFrame({"user_id": ["u0", "u0"], "account_id": ["a0", "a1"],
                  "since": [START, START + pd.Timedelta(days=60)]}).to_parquet(
        root / "memberships.parquet")
    ev = _events(rows, users, START)
    ev.to_parquet(root / "events" / "part-000.parquet")
    (root / "pqlml.toml").write_text(CONFIG)
    return root, users


def _day_after(ts) -> dt.date:
    return (pd.Timestamp(ts).floor("D") + pd.Timedelta(days=1)).date()


def _full(root: Path, as_of) -> pd.DataFrame:
    return open_project(root / "pqlml.toml", cache=False).features([as_of])


def _kept(root: Path):
    """Score-like run: features of the day after the last event (the state is kept)."""
    project = open_project(root / "pqlml.toml")
    return project, project.features([_day_after(project.data_end)])


def _append(root: Path, rows, users: pd.DataFrame, origin, name="part-001.parquet") -> None:
    _events(rows, users, origin).to_parquet(root / "events" / name)


_base = st.tuples(st.integers(0, 200 * 86_400), st.integers(0, 5), st.integers(0, 5),
                  st.one_of(st.none(), st.floats(0, 1000, allow_nan=False).map(lambda x: round(x, 2))))
_new = st.tuples(st.integers(0, 4 * 86_400), st.integers(0, 7), st.integers(0, 5),
                 st.one_of(st.none(), st.floats(0, 1000, allow_nan=False).map(lambda x: round(x, 2))))


@pytest.mark.slow
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_base, min_size=5, max_size=80), st.lists(_new, min_size=1, max_size=30),
       st.booleans(), st.integers(1, 9))
def test_incremental_features_equal_the_full_rebuild_every_column(base, new, newcomers, days):
    """Random logs, a random append of one to nine days (new users in a new account when
    ``newcomers``; from seven days on the state rolls forward), the refresh twice in a row:
    each incremental table equals the full one."""
    root, users = _project_folder(base)
    project, _ = _kept(root)
    end = project.data_end
    if newcomers:        # a new account and two new users, who sign up on the new day
        accounts, _ = _users(4, 8)
        accounts.loc[3, "created_at"] = end + pd.Timedelta(seconds=1)
        accounts.to_parquet(root / "accounts.parquet")
        more = pd.DataFrame({"user_id": ["u6", "u7"], "account_id": ["a3", "a3"],
                             "email": ["u6@a3.com", "u7@a3.com"],
                             "signup_at": [end + pd.Timedelta(seconds=1)] * 2,
                             "title": ["CEO", "engineer"]})
        users = pd.concat([users, more], ignore_index=True)
        users.to_parquet(root / "users.parquet")
    else:
        users = users.head(6)
    new = [(min(s, days * 86_400 - 1), u, e, a) for s, u, e, a in new]
    _append(root, new, users, end)
    for step in range(2):
        project = open_project(root / "pqlml.toml")
        as_of = _day_after(project.data_end)
        got = project.features([as_of])
        assert [r.path for r in project.refreshes] == ["incremental"], project.refreshes
        pd.testing.assert_frame_equal(got, _full(root, as_of))
        _append(root, new[:3], users, project.data_end, name=f"part-{step + 2:03d}.parquet")


@pytest.fixture(scope="module")
def _grown_once():
    """The project of :func:`grown`, built once per module, and a copy of its folder as
    built (``shutil.copytree`` keeps each file's mtime, which the state's manifest holds)."""
    rng = np.random.default_rng(5)
    n = 400
    rows = [(int(s), int(u), int(e), float(a) if a > 500 else None) for s, u, e, a in
            zip(rng.integers(0, 200 * 86_400, n), rng.integers(0, 6, n),
                rng.integers(0, 6, n), rng.uniform(0, 1000, n))]
    root, users = _project_folder(rows)
    project, _ = _kept(root)
    _append(root, _one_day(rows[:40]), users, project.data_end)
    built = root.with_name(root.name + "-built")
    shutil.copytree(root, built)
    return root, users, project.data_end, built


@pytest.fixture
def grown(_grown_once):
    """A project with a kept state and a day of events appended since: its folder, users
    and the kept data end. Each test changes the folder, so each gets it as built, at the
    same path (the state's key holds the data's root)."""
    root, users, end, built = _grown_once
    shutil.rmtree(root)
    shutil.copytree(built, root)
    return root, users, end


def _one_day(rows):
    return [(s % 86_400, u, e, a) for s, u, e, a in rows]


def _refresh_reason(root: Path) -> tuple[str, str]:
    project = open_project(root / "pqlml.toml")
    project.features([_day_after(project.data_end)])
    (r,) = project.refreshes
    return r.path, r.reason


def test_a_grown_log_refreshes_incrementally_and_the_state_rolls_forward(grown):
    """A day, then nine days more (the state rolls forward: its cut moves), then a day: each
    refresh incremental and equal to the full rebuild."""
    root, users, _ = grown
    cuts = []
    for step, gap in enumerate((0, 9, 1)):
        project = open_project(root / "pqlml.toml")
        if gap:
            _append(root, _one_day([(5, 1, 2, 3.5), (7, 6, 1, None), (9, 2, 0, None)]), users,
                    project.data_end + pd.Timedelta(days=gap), name=f"part-{step + 1:03d}.parquet")
            project = open_project(root / "pqlml.toml")
        as_of = _day_after(project.data_end)
        got = project.features([as_of])
        assert [r.path for r in project.refreshes] == ["incremental"], project.refreshes
        pd.testing.assert_frame_equal(got, _full(root, as_of))
        cuts.append(_manifest_of(root)["cut"])
    assert cuts[1] > cuts[0] and cuts[2] == cuts[1]


def _manifest_of(root: Path) -> dict:
    import json
    config = open_project(root / "pqlml.toml").config
    return json.loads(state_paths(config, "account")["manifest"].read_text())


def test_a_changed_old_file_is_a_rewrite(grown):
    root = grown[0]
    part = root / "events" / "part-000.parquet"
    ev = pd.read_parquet(part)
    ev.iloc[:-1].to_parquet(part)
    path, reason = _refresh_reason(root)
    assert path == "full" and "part-000.parquet changed" in reason


def test_a_removed_old_file_is_a_rewrite(grown):
    root = grown[0]
    old = root / "events" / "part-000.parquet"
    old.rename(root / "events" / "part-999.parquet")
    path, reason = _refresh_reason(root)
    assert path == "full" and "part-000.parquet was removed" in reason


def test_a_late_event_is_a_rewrite(grown):
    root, users, end = grown
    _append(root, [(0, 1, 0, None)], users, end - pd.Timedelta(days=10), name="late.parquet")
    path, reason = _refresh_reason(root)
    assert path == "full" and "1 event(s) dated before the kept data end" in reason


def test_a_membership_rewritten_before_the_kept_end_is_a_rewrite(grown):
    root = grown[0]
    pd.DataFrame({"user_id": ["u0", "u0"], "account_id": ["a0", "a2"],
                  "since": [START, START + pd.Timedelta(days=60)]}).to_parquet(
        root / "memberships.parquet")
    path, reason = _refresh_reason(root)
    assert path == "full" and "users or memberships" in reason


def test_a_move_after_the_kept_end_is_growth(grown):
    root = grown[0]
    pd.DataFrame({"user_id": ["u0", "u0", "u0"], "account_id": ["a0", "a1", "a2"],
                  "since": [START, START + pd.Timedelta(days=60),
                            grown[2] + pd.Timedelta(hours=1)]}).to_parquet(
        root / "memberships.parquet")
    assert _refresh_reason(root)[0] == "incremental"


def test_changed_definitions_as_of_not_after_the_end_and_full(grown):
    root = grown[0]
    with full_build():
        path, reason = _refresh_reason(root)
    assert path == "full" and "--full" in reason
    project = open_project(root / "pqlml.toml")
    project.features([project.data_end.date()])          # not after the kept end
    assert project.refreshes[-1].path == "full" and "not after the kept data end" in \
        project.refreshes[-1].reason
    text = (root / "pqlml.toml").read_text().replace("engagement_half_life_days = 14",
                                                     "engagement_half_life_days = 7")
    (root / "pqlml.toml").write_text(text)
    path, reason = _refresh_reason(root)
    assert path == "full" and "definitions" in reason


def test_a_damaged_state_is_deleted_and_the_build_is_full(grown):
    root = grown[0]
    config = open_project(root / "pqlml.toml").config
    paths = state_paths(config, "account")
    paths["entities"].write_bytes(b"not parquet")
    path, reason = _refresh_reason(root)
    assert path == "full" and "checksum" in reason


def test_the_cli_says_which_path_and_takes_full(grown, tmp_path, capsys):
    root = grown[0]
    as_of = str(_day_after(open_project(root / "pqlml.toml").data_end))
    out = tmp_path / "f.parquet"
    assert main(["features", "--config", str(root / "pqlml.toml"), "--as-of", as_of,
                 "--out", str(out)]) == 0
    assert "incremental build" in capsys.readouterr().err
    full = tmp_path / "g.parquet"
    assert main(["features", "--config", str(root / "pqlml.toml"), "--as-of", as_of,
                 "--out", str(full), "--full", "--no-cache"]) == 0
    assert "incremental" not in capsys.readouterr().err
    pd.testing.assert_frame_equal(pd.read_parquet(out), pd.read_parquet(full))
