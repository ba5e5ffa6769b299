"""featuretools 1.31 DFS computing pqlml's activity features, for bench_features.py.

featuretools does not run on pandas 3, so this runs in its own uv environment
(no pqlml, pandas 2); bench_features.py starts it as::

    .tools/bin/uv run --no-project --python 3.11 --with 'featuretools==1.31.0' \\
        --with 'pandas<3' --with 'numpy<2.1' --with pyarrow --with 'setuptools<81' \\
        python benchmarks/_featuretools_dfs.py DATA '["2025-06-01"]' OUT.parquet [--sample-events N]

An EntitySet of accounts <- events (time index ``ts``) and accounts <- users
(time index ``signup_at``); one cutoff-time row per (account, as_of) for accounts
created before as_of; ``include_cutoff_time=False`` so a cutoff sees ``ts < as_of``
(featuretools' default is inclusive). One ``ft.dfs`` call per window: 7, 30 and 90
days (``training_window``, so ``ts >= as_of - w``), the previous 30 days (cutoffs
moved 30 days back, 30-day window) and all history. Each call computes only what has
a pqlml column (``PLANS``), named as pqlml names it: COUNT of events (and ``where``
each event name, the interesting values) -> ``events_[<event>_]<w>``, NUM_UNIQUE of
users -> ``active_users_<w>`` and of event names -> ``distinct_events_30d``, COUNT of
users -> ``new_users_7d/30d`` and ``users_total``, TIME_SINCE_LAST / _FIRST ->
``days_since_*``. Only the ``dfs`` calls are timed.

``--sample-events N``: keep a random set of accounts (seed 0) holding about N events.
Prints one line ``@@RESULT {json}``: seconds (DFS), setup_seconds, rss_mb, rows,
features, sample (None, or the accounts and events kept).
"""

from __future__ import annotations

import argparse
import json
import resource
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import featuretools as ft
import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq

DAY = pd.Timedelta(days=1)


@dataclass(frozen=True)
class Plan:
    """One ``dfs`` call: a window (None: all history) and what it aggregates."""

    days: int | None
    primitives: tuple[str, ...]
    options: dict                    # featuretools' primitive_options
    where: bool = False              # COUNT(events WHERE event = each event name)
    shift: int = 0                   # cutoffs moved this many days back


def _columns(*names: str) -> dict:
    """A primitive applied to these event columns only."""
    return {"include_columns": {"events": list(names)}}


def _dataframes(*names: str) -> dict:
    """A primitive applied to these child dataframes only."""
    return {"include_dataframes": list(names)}


_WINDOW = ("count", "num_unique")
PLANS = {
    "7d": Plan(7, _WINDOW, {"num_unique": _columns("user_id")}, where=True),
    "30d": Plan(30, _WINDOW, {"num_unique": _columns("user_id", "event")}, where=True),
    "90d": Plan(90, _WINDOW, {"count": _dataframes("events"), "num_unique": _columns("user_id")},
                where=True),
    "prev_30d": Plan(30, _WINDOW, {"count": _dataframes("events"),
                                   "num_unique": _columns("user_id")}, shift=30),
    None: Plan(None, ("count", "time_since_last", "time_since_first"),
               {"count": _dataframes("users"), "time_since_first": _dataframes("events")}),
}


def load(data: Path, last: pd.Timestamp, sample_events: int | None):
    """Events, users and accounts with an account id; optionally a sample of accounts."""
    ev = pq.read_table(data / "events.parquet", columns=["ts", "user_id", "account_id", "event"],
                       filters=(pc.field("ts") < last) & pc.field("account_id").is_valid())
    ev = ev.to_pandas()
    users = pd.read_parquet(data / "users.parquet", columns=["user_id", "account_id", "signup_at"])
    users = users[users.account_id.notna()]
    accounts = pd.read_parquet(data / "accounts.parquet", columns=["account_id", "created_at"])
    sample = None
    if sample_events and sample_events < len(ev):
        per_account = ev.account_id.value_counts().sample(frac=1.0, random_state=0)
        keep = per_account.index[:int(np.searchsorted(per_account.cumsum().to_numpy(),
                                                      sample_events)) + 1]
        ev = ev[ev.account_id.isin(keep)]
        users = users[users.account_id.isin(keep)]
        accounts = accounts[accounts.account_id.isin(keep)]
        sample = {"accounts": len(accounts), "events": len(ev)}
    return ev.reset_index(drop=True), users, accounts, sample


def entityset(ev: pd.DataFrame, users: pd.DataFrame, accounts: pd.DataFrame) -> ft.EntitySet:
    es = ft.EntitySet("plg")
    es.add_dataframe(accounts[["account_id"]], dataframe_name="accounts", index="account_id",
                     logical_types={"account_id": "Categorical"})
    es.add_dataframe(ev, dataframe_name="events", index="event_id", make_index=True,
                     time_index="ts", logical_types={
                         "account_id": "Categorical", "user_id": "Categorical",
                         "event": "Categorical"})
    es.add_dataframe(users, dataframe_name="users", index="user_id", time_index="signup_at",
                     logical_types={"account_id": "Categorical"})
    es.add_relationship("accounts", "account_id", "events", "account_id")
    es.add_relationship("accounts", "account_id", "users", "account_id")
    es.add_interesting_values(dataframe_name="events",
                              values={"event": sorted(ev.event.unique())})
    return es


def spine(accounts: pd.DataFrame, dates: list[str]) -> pd.DataFrame:
    """Cutoff times: one (account_id, time) row per account created before each as_of."""
    rows = [accounts.loc[accounts.created_at < t, ["account_id"]].assign(time=t)
            for t in pd.to_datetime(dates, utc=True)]
    return pd.concat(rows, ignore_index=True)


_NAMES = {"COUNT(events)": "events_{}", "NUM_UNIQUE(events.user_id)": "active_users_{}",
          "NUM_UNIQUE(events.event)": "distinct_events_{}", "COUNT(users)": "new_users_{}"}
_ALL_HISTORY = {"COUNT(users)": "users_total",
                "TIME_SINCE_LAST(events.ts)": "days_since_last_event",
                "TIME_SINCE_FIRST(events.ts)": "days_since_first_event",
                "TIME_SINCE_LAST(users.signup_at)": "days_since_last_signup"}


def _rename(column: str, window: str | None) -> str:
    """featuretools' column name as pqlml's."""
    if window is None:
        return _ALL_HISTORY[column]
    if column.startswith("COUNT(events WHERE event = "):
        return f"events_{column[len('COUNT(events WHERE event = '):-1]}_{window}"
    return _NAMES[column].format(window)


def one_dfs(es: ft.EntitySet, cutoffs: pd.DataFrame, window: str | None) -> pd.DataFrame:
    """One ``ft.dfs`` call (``PLANS[window]``); keyed (account_id, as_of)."""
    plan = PLANS[window]
    shift = plan.shift * DAY
    fm, _ = ft.dfs(entityset=es, target_dataframe_name="accounts",
                   cutoff_time=cutoffs.assign(time=cutoffs.time - shift),
                   training_window=f"{plan.days} days" if plan.days else None,
                   agg_primitives=list(plan.primitives), primitive_options=plan.options,
                   where_primitives=["count"] if plan.where else [],
                   trans_primitives=[], max_depth=1, include_cutoff_time=False,
                   cutoff_time_in_index=True)
    fm = fm.rename(columns=lambda c: _rename(c, window)).reset_index()
    fm = fm.rename(columns={"time": "as_of"}).assign(as_of=lambda f: f.as_of + shift)
    return fm.set_index(["account_id", "as_of"])


def finish(fm: pd.DataFrame) -> pd.DataFrame:
    """Empty windows count 0; seconds since an event become whole days (its age)."""
    since = [c for c in fm.columns if c.startswith("days_since_")]
    counts = fm.columns.drop(since)
    fm[counts] = fm[counts].fillna(0).astype(np.int64)
    fm[since] = np.ceil(fm[since].astype(np.float64) / 86_400)
    return fm.reset_index()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("data", type=Path)
    p.add_argument("dates", type=json.loads)
    p.add_argument("out", type=Path)
    p.add_argument("--sample-events", type=int)
    args = p.parse_args()
    warnings.filterwarnings("ignore")
    t0 = time.perf_counter()
    ev, users, accounts, sample = load(args.data, pd.Timestamp(max(args.dates), tz="UTC"),
                                       args.sample_events)
    es, cutoffs = entityset(ev, users, accounts), spine(accounts, args.dates)
    del ev
    setup = time.perf_counter() - t0
    parts, seconds = [], 0.0
    for window in PLANS:
        t = time.perf_counter()
        parts.append(one_dfs(es, cutoffs, window))
        seconds += time.perf_counter() - t
    fm = finish(pd.concat(parts, axis=1))
    fm.account_id = fm.account_id.astype(str)
    fm.to_parquet(args.out)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("@@RESULT " + json.dumps({"seconds": seconds, "setup_seconds": setup, "rows": len(fm),
                                    "features": fm.shape[1] - 2, "sample": sample,
                                    "rss_mb": rss_mb}))


if __name__ == "__main__":
    main()
