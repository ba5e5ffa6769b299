"""pqlml's feature catalog hand-written in pandas: a daily grain, then one pass per cutoff.

Ids are read as dictionaries and grouped by their integer codes. The events the
windows can see (the ``LOOKBACK`` days before the earliest cutoff onwards) are
aggregated once to one row per (day, account) with a count column per event,
sorted by day; each cutoff then slices its ``LOOKBACK`` days of that grain and
sums per account. Distinct users and the last event day are grouped per cutoff
straight from the (day-sorted) events. See ``_catalog.py`` for the definitions.

    features(data_dir, ["2025-06-01", ...]) -> DataFrame (account_id, as_of, features...)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from _catalog import (BUYER_PATTERN, DAY_US, EVENT_COLUMNS, LOOKBACK, NEW_USER_DAYS, PREV,
                      SLOPE_DAYS, SLOPE_DENOM, WINDOWS, epoch_day, feature_name, free_mail_domains)


def _days(ts: pd.Series) -> np.ndarray:
    return ts.to_numpy("datetime64[us]").astype(np.int64) // DAY_US


@dataclass
class Events:
    """Events as integer codes, sorted by day; ``accounts[acc]`` is the account id."""

    frame: pd.DataFrame        # acc, user, event (codes), day (days since epoch)
    accounts: pd.Index
    vocab: list[str]           # event names seen, sorted; ``event`` codes index it


def load_events(data: Path, last: pd.Timestamp) -> Events:
    """Events before the last cutoff that have an account."""
    ev = pd.read_parquet(data / "events.parquet", columns=EVENT_COLUMNS,
                         filters=[("ts", "<", last)],
                         read_dictionary=["user_id", "account_id", "event"])
    names = ev.event.cat.categories
    vocab = sorted(names[np.unique(ev.event.cat.codes)])
    code = pd.Series(np.arange(len(vocab), dtype=np.int8), index=vocab)[names].to_numpy()
    f = pd.DataFrame({"acc": ev.account_id.cat.codes, "user": ev.user_id.cat.codes,
                      "event": code[ev.event.cat.codes], "day": _days(ev.ts).astype(np.int32)})
    f = f[f.acc >= 0]
    if not f.day.is_monotonic_increasing:
        f = f.sort_values("day", kind="stable")
    return Events(f.reset_index(drop=True), ev.account_id.cat.categories, vocab)


def daily_grain(ev: Events, first_day: int) -> pd.DataFrame:
    """One row per (day, acc) from ``first_day`` on, sorted by day: ``n_all``, ``n_<event>``."""
    f = ev.frame.iloc[ev.frame.day.searchsorted(first_day):]
    wide = f.groupby(["day", "acc", "event"]).size().unstack("event", fill_value=0)
    wide = wide.reindex(columns=range(len(ev.vocab)), fill_value=0)
    wide.columns = [f"n_{feature_name(e)}" for e in ev.vocab]
    wide.insert(0, "n_all", wide.sum(axis=1))
    return wide.reset_index()


def _rename(sums: pd.DataFrame, w: int) -> pd.DataFrame:
    return sums.rename(columns=lambda c: f"events_{w}d" if c == "n_all"
                       else f"events_{c[2:]}_{w}d")


def window_counts(grain: pd.DataFrame, as_day: int) -> pd.DataFrame:
    """Per-window volumes, prev-30d volume and weekly slope, per acc."""
    lo, hi = grain.day.searchsorted([as_day - LOOKBACK, as_day])
    g = grain.iloc[lo:hi]
    age = as_day - g.day.to_numpy()
    counts = g.columns.drop(["day", "acc"])
    parts = [_rename(g[age <= w].groupby("acc")[counts].sum(), w) for w in WINDOWS]
    prev = (age > PREV[0]) & (age <= PREV[1])
    # 57 N - 2 S summed in integers, divided once (see _catalog.py): pqlml's bits exactly.
    weighted = g.n_all.to_numpy() * (SLOPE_DAYS + 1 - 2 * age) * (age <= SLOPE_DAYS)
    slope = pd.Series(weighted).groupby(g.acc.to_numpy()).sum() * 7
    parts.append(pd.DataFrame({
        "events_prev_30d": g[prev].groupby("acc").n_all.sum(),
        "events_weekly_slope_8w": slope.astype(np.float64) / SLOPE_DENOM,
    }))
    return pd.concat(parts, axis=1)


def activity(ev: Events, as_day: int) -> pd.DataFrame:
    """Distinct users per window and in the prev 30 days; days since last / first event."""
    f = ev.frame
    lo, hi = f.day.searchsorted([as_day - LOOKBACK, as_day])
    recent = f.iloc[lo:hi]
    age = as_day - recent.day
    per_user = recent.assign(age=age, prev=(age > PREV[0]) & (age <= PREV[1])).groupby(
        ["acc", "user"]).agg(newest=("age", "min"), prev=("prev", "max"))
    out = pd.DataFrame({f"active_users_{w}d": (per_user.newest <= w).groupby("acc").sum()
                        for w in WINDOWS})
    out["active_users_prev_30d"] = per_user.prev.groupby("acc").sum()
    days = f.iloc[:hi].groupby("acc").day.agg(["min", "max"])
    return out.join((as_day - days).astype(np.float64).set_axis(
        ["days_since_first_event", "days_since_last_event"], axis=1), how="outer")


def load_users(data: Path) -> pd.DataFrame:
    """Users with an account: signup time and day, buyer-title and work-email flags."""
    u = pd.read_parquet(data / "users.parquet",
                        columns=["user_id", "email", "title", "signup_at", "account_id"])
    u = u[u.account_id.notna()]
    domain = u.email.str.rsplit("@", n=1).str[-1].str.strip().str.lower()
    return pd.DataFrame({
        "account_id": u.account_id, "signup_at": u.signup_at, "signup_day": _days(u.signup_at),
        "buyer": u.title.str.lower().str.contains(BUYER_PATTERN, regex=True).fillna(False)
                  .astype(np.int64),
        "work": (~domain.isin(free_mail_domains())).astype(np.int64)})


def user_profile(users: pd.DataFrame, as_of: pd.Timestamp, as_day: int) -> pd.DataFrame:
    """Team size, new users, buyer titles, work-email share, last signup, per account."""
    u = users[users.signup_at < as_of]
    u = u.assign(**{f"new_{d}": (u.signup_at >= as_of - pd.Timedelta(days=d)).astype(np.int64)
                    for d in NEW_USER_DAYS}, since=as_day - u.signup_day)
    out = u.groupby("account_id").agg(
        users_total=("signup_day", "size"), new_users_7d=("new_7", "sum"),
        new_users_30d=("new_30", "sum"), buyer_title_users=("buyer", "sum"),
        buyer_title_present=("buyer", "max"), work_email_share=("work", "mean"),
        days_since_last_signup=("since", "min"))
    return out.astype({"days_since_last_signup": np.float64})


def load_accounts(data: Path, last: pd.Timestamp) -> pd.DataFrame:
    """Accounts indexed by id: creation, employees, one-hot industry and segment."""
    a = pd.read_parquet(data / "accounts.parquet",
                        columns=["account_id", "created_at", "employees", "industry", "segment"])
    out = pd.DataFrame({"created_at": a.created_at, "created_day": _days(a.created_at),
                        "employees": a.employees.astype(np.float64)})
    for col in ("industry", "segment"):
        for v in sorted(a[col][a.created_at < last].dropna().unique()):
            out[f"{col}_{feature_name(v)}"] = (a[col] == v).astype(np.int64)
    return out.set_axis(a.account_id)


def derive(f: pd.DataFrame, vocab: list[str]) -> pd.DataFrame:
    """Counts of empty windows become 0; then distinct events and the derived ratios."""
    keep_nan = ("days_since_", "work_email_share", "employees", "account_age_days")
    f = f.fillna({c: 0 for c in f.columns if not c.startswith(keep_nan)})
    users_30d = f.active_users_30d
    per_event = f[[f"events_{feature_name(e)}_30d" for e in vocab]]
    return pd.concat([f, pd.DataFrame({
        "distinct_events_30d": (per_event > 0).sum(axis=1),
        "events_velocity_30d": np.log((f.events_30d + 1) / (f.events_prev_30d + 1)),
        "events_per_active_user_30d": f.events_30d / users_30d.replace(0, np.nan),
        "active_users_velocity_30d": np.log((users_30d + 1) / (f.active_users_prev_30d + 1)),
        "seven_plus_active_users_30d": (users_30d >= 7).astype(np.int64),
    })], axis=1)


def one_cutoff(as_of: str, ev: Events, grain, users, accounts) -> pd.DataFrame:
    """The feature rows of one cutoff: every account created before it."""
    ts, as_day = pd.Timestamp(as_of, tz="UTC"), epoch_day(as_of)
    spine = accounts[accounts.created_at < ts]
    by_code = pd.concat([window_counts(grain, as_day), activity(ev, as_day)], axis=1)
    by_code = by_code.set_axis(ev.accounts[by_code.index])
    f = (spine.drop(columns=["created_at", "created_day"])
         .assign(account_age_days=as_day - spine.created_day)
         .join([by_code, user_profile(users, ts, as_day)]))
    keys = pd.DataFrame({"account_id": f.index, "as_of": ts}, index=f.index)
    return pd.concat([keys, derive(f, ev.vocab)], axis=1).reset_index(drop=True)


def features(data: Path, dates: list[str]) -> pd.DataFrame:
    """One row per (account_id, as_of) for each date in ``dates`` (ISO strings)."""
    data, last = Path(data), pd.Timestamp(max(dates), tz="UTC")
    ev = load_events(data, last)
    grain = daily_grain(ev, min(epoch_day(d) for d in dates) - LOOKBACK)
    users, accounts = load_users(data), load_accounts(data, last)
    return pd.concat([one_cutoff(d, ev, grain, users, accounts) for d in dates],
                     ignore_index=True)
