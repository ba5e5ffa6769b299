"""An independent, plain-pandas computation of the feature catalog (for tests only).

Written from the catalog's documented definitions, row by row where that is
clearer, so that it shares no code with the ibis implementation.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

DAY = pd.Timedelta(days=1)


def _days(ts: pd.Series) -> pd.Series:
    return (ts - pd.Timestamp("1970-01-01", tz="UTC")) // DAY


def reference_features(events, spine, users=None, accounts=None, windows=(7, 30, 90),
                       vocabulary=None, buyer_titles=("vp", "head of", "director", "cto", "ceo"),
                       growth=True, active_users_events=(), properties=()):
    """One row per spine row (account_id, as_of), computed with pandas. ``growth``: per
    event, the previous 30 days and the growth; ``active_users_events``: distinct users per
    event over the last 30 days; ``properties``: sums and maxima of numeric columns."""
    ev = events[events.account_id.notna()].copy()
    ev["day"] = _days(ev.ts)
    vocab = sorted(ev.event.unique()) if vocabulary is None else list(vocabulary)
    rows = []
    for r in spine.itertuples(index=False):
        as_day = _days(pd.Series([r.as_of])).iloc[0]
        e = ev[(ev.account_id == r.account_id) & (ev.ts < r.as_of)]
        age = as_day - e.day
        out = {"account_id": r.account_id, "as_of": r.as_of}
        for w in windows:
            inw = e[age <= w]
            out[f"events_{w}d"] = len(inw)
            for name in vocab:
                out[f"events_{name}_{w}d"] = int((inw.event == name).sum())
            out[f"active_users_{w}d"] = inw.user_id.nunique()
            for p in properties:
                values = inw[p].dropna()
                out[f"sum_{p}_{w}d"] = values.sum()
                out[f"max_{p}_{w}d"] = values.max() if len(values) else np.nan
        prev = e[(age > 30) & (age <= 60)]
        out["events_prev_30d"] = len(prev)
        out["active_users_prev_30d"] = prev.user_id.nunique()
        for name in vocab if growth else ():
            out[f"events_{name}_prev_30d"] = int((prev.event == name).sum())
        last30 = e[age <= 30]
        for name in active_users_events:
            out[f"active_users_{name}_30d"] = last30[last30.event == name].user_id.nunique()
        # least-squares trend of the daily counts over the last 56 days, as weekly events
        # per week (49 x events a day per day)
        daily = [int((age == a).sum()) for a in range(1, 57)]
        out["events_weekly_slope_8w"] = 49 * np.polyfit(-np.arange(1, 57), daily, 1)[0]
        out["days_since_last_event"] = age.min() if len(e) else np.nan
        out["days_since_first_event"] = age.max() if len(e) else np.nan
        out["distinct_events_30d"] = e[(age <= 30) & e.event.isin(vocab)].event.nunique()
        if users is not None:
            out.update(_users(users, r, as_day, buyer_titles))
        if accounts is not None:
            out.update(_firm(accounts, r, as_day))
        rows.append(out)
    f = pd.DataFrame(rows)
    f["events_velocity_30d"] = np.log((f.events_30d + 1) / (f.events_prev_30d + 1))
    for name in vocab if growth else ():
        f[f"events_{name}_velocity_30d"] = np.log((f[f"events_{name}_30d"] + 1)
                                                  / (f[f"events_{name}_prev_30d"] + 1))
    f["active_users_velocity_30d"] = np.log((f.active_users_30d + 1) / (f.active_users_prev_30d + 1))
    f["seven_plus_active_users_30d"] = (f.active_users_30d >= 7).astype(int)
    f["events_per_active_user_30d"] = f.events_30d / f.active_users_30d.replace(0, np.nan)
    return f


def _users(users, r, as_day, buyer_titles):
    u = users[(users.account_id == r.account_id) & (users.signup_at < r.as_of)]
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, buyer_titles)) + r")\b", re.I)
    buyer = u.title.fillna("").map(lambda t: bool(pattern.search(t)))
    return {
        "users_total": len(u),
        "new_users_7d": int((u.signup_at >= r.as_of - 7 * DAY).sum()),
        "new_users_30d": int((u.signup_at >= r.as_of - 30 * DAY).sum()),
        "buyer_title_users": int(buyer.sum()),
        "buyer_title_present": int(buyer.any()),
        "work_email_share": (~u.is_free_mail).mean() if len(u) else np.nan,
        "days_since_last_signup": (as_day - _days(u.signup_at)).min() if len(u) else np.nan,
    }


def _firm(accounts, r, as_day):
    a = accounts[accounts.account_id == r.account_id].iloc[0]
    out = {"employees": float(a.employees),
           "account_age_days": as_day - _days(pd.Series([a.created_at])).iloc[0]}
    for column in ("industry", "segment"):
        for v in accounts[column].dropna().unique():
            out[f"{column}_{v}"] = int(a[column] == v)
    return out
