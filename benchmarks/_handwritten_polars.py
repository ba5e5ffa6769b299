"""pqlml's feature catalog hand-written in polars: a daily grain, then one query per cutoff.

The events are read once; those the windows can see are aggregated to one row per
(account, day) with a count column per event name. Each cutoff is a lazy query that
keeps its ``LOOKBACK`` days and sums per account with ``when(age <= w)``; distinct
users and the last / first event day are grouped per cutoff straight from the events.
The per-cutoff queries are concatenated (polars runs them in parallel) and joined to
the spine in one lazy plan. (One ``join_where`` of the grain with all cutoffs was
tried first: it was about twice as slow, as it materialises every pairing.)
See ``_catalog.py`` for the definitions.

    features(data_dir, ["2025-06-01", ...]) -> polars.DataFrame (account_id, as_of, ...)
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from _catalog import (BUYER_PATTERN, DAY_US, EVENT_COLUMNS, LOOKBACK, NEW_USER_DAYS, PREV,
                      SLOPE_DAYS, SLOPE_DENOM, WINDOWS, epoch_day, feature_name, free_mail_domains)

KEYS = ["account_id", "as_of"]
UTC = pl.Datetime("us", "UTC")
age, day, as_day = pl.col("age"), pl.col("day"), pl.col("as_day")


def _day(col: str) -> pl.Expr:
    return (pl.col(col).dt.epoch("us") // DAY_US).cast(pl.Int32)


def cutoffs(dates: list[str]) -> pl.LazyFrame:
    stamps = [dt.datetime.fromisoformat(d).replace(tzinfo=dt.timezone.utc) for d in dates]
    return pl.LazyFrame({"as_of": stamps, "as_day": [epoch_day(d) for d in dates]},
                        schema={"as_of": UTC, "as_day": pl.Int32})


def load_events(data: Path, last: dt.datetime) -> pl.DataFrame:
    """Events before the last cutoff that have an account, with their ``day``."""
    return (pl.scan_parquet(data / "events.parquet").select(EVENT_COLUMNS)
            .filter(pl.col("ts") < last, pl.col("account_id").is_not_null())
            .select("account_id", "user_id", "event", day=_day("ts")).collect())


def daily_grain(ev: pl.DataFrame, vocab: list[str], first_day: int) -> pl.DataFrame:
    """One row per (account_id, day) from ``first_day`` on: ``n_all`` and ``n_<event>`` counts."""
    per_event = [(pl.col("event") == e).sum().cast(pl.Int64).alias(f"n_{feature_name(e)}")
                 for e in vocab]
    return (ev.lazy().filter(day >= first_day)
            .group_by("account_id", "day").agg(pl.len().cast(pl.Int64).alias("n_all"), *per_event)
            .collect())


def _in_lookback(table: pl.DataFrame, as_of: dt.datetime, cut_day: int) -> pl.LazyFrame:
    return (table.lazy().filter(day >= cut_day - LOOKBACK, day < cut_day)
            .with_columns(as_of=pl.lit(as_of, UTC), age=cut_day - day))


def _upto(w: int, col: str | pl.Expr) -> pl.Expr:
    return pl.when(age <= w).then(col).otherwise(0)


def window_counts(grain: pl.DataFrame, vocab: list[str], as_of: dt.datetime,
                  cut_day: int) -> pl.LazyFrame:
    """Per-window volumes, prev-30d volume and weekly slope, per account."""
    prev = (age > PREV[0]) & (age <= PREV[1])
    aggs = []
    for w in WINDOWS:
        aggs.append(_upto(w, "n_all").sum().alias(f"events_{w}d"))
        aggs += [_upto(w, f"n_{feature_name(e)}").sum().alias(f"events_{feature_name(e)}_{w}d")
                 for e in vocab]
    # 57 N - 2 S summed in integers, divided once (see _catalog.py).
    weighted = pl.col("n_all") * (SLOPE_DAYS + 1 - 2 * age.cast(pl.Int64))
    aggs += [pl.when(prev).then(pl.col("n_all")).otherwise(0).sum().alias("events_prev_30d"),
             ((_upto(SLOPE_DAYS, weighted).sum() * 7).cast(pl.Float64) / SLOPE_DENOM)
             .alias("events_weekly_slope_8w")]
    return _in_lookback(grain, as_of, cut_day).group_by(KEYS).agg(aggs)


def active_users(ev: pl.DataFrame, as_of: dt.datetime, cut_day: int) -> pl.LazyFrame:
    """Distinct users per window and in the prev 30 days, per account: each user's newest age."""
    per_user = _in_lookback(ev, as_of, cut_day).group_by(*KEYS, "user_id").agg(
        newest=age.min(), prev=((age > PREV[0]) & (age <= PREV[1])).any())
    return per_user.group_by(KEYS).agg(
        *[(pl.col("newest") <= w).sum().cast(pl.Int64).alias(f"active_users_{w}d")
          for w in WINDOWS],
        active_users_prev_30d=pl.col("prev").sum().cast(pl.Int64))


def recency(ev: pl.DataFrame, as_of: dt.datetime, cut_day: int) -> pl.LazyFrame:
    """Days since the last and the first event before as_of, per account."""
    return ev.lazy().filter(day < cut_day).group_by("account_id").agg(
        days_since_last_event=(cut_day - day.max()).cast(pl.Float64),
        days_since_first_event=(cut_day - day.min()).cast(pl.Float64),
    ).with_columns(as_of=pl.lit(as_of, UTC))


def user_profile(data: Path, cut: pl.LazyFrame) -> pl.LazyFrame:
    """Team size, new users, buyer titles, work-email share, last signup per (account, as_of)."""
    domain = pl.col("email").str.split("@").list.last().str.strip_chars().str.to_lowercase()
    users = pl.scan_parquet(data / "users.parquet").filter(pl.col("account_id").is_not_null())
    users = users.select(
        "account_id", "signup_at", signup_day=_day("signup_at"),
        buyer=pl.col("title").str.to_lowercase().str.contains(BUYER_PATTERN)
        .fill_null(False).cast(pl.Int64),
        work=(~domain.is_in(list(free_mail_domains()))).cast(pl.Int64))
    j = users.join_where(cut, pl.col("signup_at") < pl.col("as_of"))
    new = {f"new_users_{d}d": (pl.col("signup_at") >= pl.col("as_of") - pl.duration(days=d))
           .sum().cast(pl.Int64) for d in NEW_USER_DAYS}
    return j.group_by(KEYS).agg(
        users_total=pl.len().cast(pl.Int64), **new, buyer_title_users=pl.col("buyer").sum(),
        buyer_title_present=pl.col("buyer").max(), work_email_share=pl.col("work").mean(),
        days_since_last_signup=(as_day - pl.col("signup_day")).min().cast(pl.Float64))


def account_spine(data: Path, cut: pl.LazyFrame, last: dt.datetime) -> pl.LazyFrame:
    """(account, as_of) for accounts created before as_of, with firmographics."""
    accounts = pl.scan_parquet(data / "accounts.parquet")
    before = accounts.filter(pl.col("created_at") < last)
    onehot = []
    for col in ("industry", "segment"):
        values = before.select(pl.col(col).drop_nulls().unique().sort()).collect()[col]
        onehot += [(pl.col(col) == v).fill_null(False).cast(pl.Int64)
                   .alias(f"{col}_{feature_name(v)}") for v in values]
    a = accounts.select("account_id", "created_at", _day("created_at").alias("created_day"),
                        pl.col("employees").cast(pl.Float64), *onehot)
    s = a.join(cut, how="cross").filter(pl.col("created_at") < pl.col("as_of"))
    return s.with_columns(account_age_days=(as_day - pl.col("created_day")).cast(pl.Int64)) \
        .drop("created_at", "created_day")


def derive(f: pl.LazyFrame, vocab: list[str]) -> pl.LazyFrame:
    """Counts of empty windows become 0; then distinct events and the derived ratios."""
    keep_null = ("days_since_", "work_email_share", "employees", "account_age_days")
    counts = [c for c in f.collect_schema().names()
              if c not in (*KEYS, "as_day") and not c.startswith(keep_null)]
    f = f.with_columns(pl.col(counts).fill_null(0))
    e30, u30 = pl.col("events_30d"), pl.col("active_users_30d")
    return f.with_columns(
        distinct_events_30d=pl.sum_horizontal(
            (pl.col(f"events_{feature_name(e)}_30d") > 0).cast(pl.Int64) for e in vocab),
        events_velocity_30d=((e30 + 1) / (pl.col("events_prev_30d") + 1)).log(),
        events_per_active_user_30d=e30 / pl.when(u30 != 0).then(u30),
        active_users_velocity_30d=((u30 + 1) / (pl.col("active_users_prev_30d") + 1)).log(),
        seven_plus_active_users_30d=(u30 >= 7).cast(pl.Int64)).drop("as_day")


def features(data: Path, dates: list[str]) -> pl.DataFrame:
    """One row per (account_id, as_of) for each date in ``dates`` (ISO strings)."""
    data, cut = Path(data), cutoffs(dates)
    stamps = cut.collect()
    last = stamps["as_of"].max()
    ev = load_events(data, last)
    vocab = sorted(ev["event"].unique().to_list())
    grain = daily_grain(ev, vocab, stamps["as_day"].min() - LOOKBACK)

    def per_cutoff(part, *args) -> pl.LazyFrame:
        return pl.concat([part(*args, as_of, d) for as_of, d in stamps.iter_rows()])

    parts = [per_cutoff(window_counts, grain, vocab), per_cutoff(active_users, ev),
             per_cutoff(recency, ev), user_profile(data, cut)]
    f = account_spine(data, cut, last)
    for part in parts:
        f = f.join(part, on=KEYS, how="left")
    return derive(f, vocab).sort(KEYS).collect()
