"""Feature columns -> business signals -> sentences sales can read.

Every catalog column belongs to one signal: an event's windows, previous 30 days, growth
and active users are one signal ("task created"), the one-hot columns of a category are
one ("industry"), active users now, a month earlier and their ratio are one ("active
users"). A reason is a signal with its summed contribution, written with its values, e.g.
"(+) 9 active users in the last 30 days (3 a month earlier)" or "(+) invite sent: 12 in
the last 30 days vs 3 the 30 before". The sign is in
parentheses so that no reason begins with ``+`` or ``-``: a spreadsheet opening the CRM
file would run such a cell as a formula.

Examples
--------
>>> signal_of("events_soc2_report_downloaded_7d"), signal_of("industry_fintech")
('soc2_report_downloaded', 'industry')
>>> signal_of("events_invite_sent_velocity_30d"), signal_of("events_60d")
('invite_sent', 'activity')
>>> times(1), times(2), times(12)
('once', 'twice', '12 times')
>>> phrase("soc2_report_downloaded", 2, 7)
'downloaded the SOC 2 report twice in the last 7 days'
>>> phrase("file_uploaded", 0, 30)
'no file uploaded in the last 30 days'
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ..features._names import GROWTH_DAYS, event_family, prev_name, volume_name

__all__ = ["signal_of", "render", "render_group", "signal_words", "times", "phrase",
           "EVENT_PHRASES"]

_FIXED = {
    "active_users": ("active_users_7d", "active_users_30d", "active_users_90d",
                     "active_users_prev_30d", "active_users_velocity_30d",
                     "seven_plus_active_users_30d"),
    # events per active user is the activity's intensity: with the users it absorbed the
    # activity totals in discovery's adjusted step (the simulator's events_30d and its growth)
    "activity": ("events_7d", "events_30d", "events_90d", "events_prev_30d",
                 "events_velocity_30d", "events_weekly_slope_8w", "events_per_active_user_30d"),
    "new_users": ("new_users_7d", "new_users_30d", "days_since_last_signup"),
    "breadth": ("distinct_events_30d",),
    "recency": ("days_since_last_event",),
    "tenure": ("days_since_first_event", "account_age_days", "tenure_days"),
    "company_size": ("employees", "enriched_employees", "stated_employees"),
    "seniority": ("stated_seniority",),
    "enrichment": ("enriched",),
    "funding": ("enriched_funding_usd",),
    "revenue": ("enriched_revenue_usd",),
    "enterprise": ("enterprise_domain",),
    "team_size": ("users_total",),
    "work_email": ("work_email_share", "work_email"),
    "buyer": ("buyer_title_present", "buyer_title_users", "buyer_title"),
}
_GROUP = {col: sig for sig, cols in _FIXED.items() for col in cols}
_WINDOWED = re.compile(r"^(?:events|active_users|new_users)_(.+)_(\d+)d$")
_TOTAL = {re.compile(r"events_\d+d"): "activity", re.compile(r"active_users_\d+d"): "active_users"}
_CATEGORY = re.compile(r"^(enriched_industry|industry|segment|country|"
                       r"signup_(?:company_size|department|seniority|use_case))_(.+)$")
_CATEGORIES = ("enriched_industry", "industry", "segment", "country", "signup_company_size",
               "signup_department", "signup_seniority", "signup_use_case")
_CATEGORY_WORDS = {"enriched_industry": "industry", "signup_company_size": "company size stated",
                   "signup_department": "department stated", "signup_seniority":
                   "seniority stated", "signup_use_case": "use case stated"}
_SENIORITY = {1: "an individual contributor", 2: "a manager or lead",
              3: "a director, head or VP", 4: "an executive or founder"}

# What the person did, as a verb phrase; the count and window are appended.
EVENT_PHRASES = {
    "soc2_report_downloaded": "downloaded the SOC 2 report",
    "pricing_page_viewed": "viewed the pricing page",
    "terms_page_viewed": "read the terms",
    "privacy_page_viewed": "read the privacy policy",
    "invite_sent": "invited teammates",
    "admin_role_changed": "changed admin roles",
    "paid_trial_started": "started a paid-plan trial",
    "addon_trial_started": "started an add-on trial",
    "integration_connected": "connected an integration",
    "demo_requested": "requested a demo",
    "talk_to_sales_clicked": "clicked 'talk to sales'",
    "webinar_attended": "attended a webinar",
    "help_center_viewed": "read the help centre",
    "report_exported": "exported a report",
    "phone_number_purchased": "bought a phone number",
}


def signal_of(column: str) -> str:
    """The business signal a feature column belongs to (its own name if unknown)."""
    if column in _GROUP:
        return _GROUP[column]
    if column.startswith(("activation_", "days_to_", "activated")):
        return "activation"
    m = _CATEGORY.match(column)
    if m:
        return m.group(1)
    for total, signal in _TOTAL.items():       # the totals over any configured window
        if total.fullmatch(column):
            return signal
    per_event = event_family(column)
    if per_event:
        return per_event[0]
    m = _WINDOWED.match(column)
    return m.group(1) if m else column


def times(n: float) -> str:
    n = int(round(n))
    return {1: "once", 2: "twice"}.get(n, f"{n:,} times")


def phrase(event: str, count: float, days: int) -> str:
    """``count`` occurrences of ``event`` in the last ``days`` days, in words."""
    window = f"in the last {days} days"
    if event in EVENT_PHRASES:
        verb = EVENT_PHRASES[event]
        return f"never {verb} {window}" if count == 0 else f"{verb} {times(count)} {window}"
    name = event.replace("_", " ")
    return f"no {name} {window}" if count == 0 else f"{name} {times(count)} {window}"


def _n(v) -> str:
    return "?" if pd.isna(v) else f"{v:,.0f}"


def _col(X: pd.DataFrame, *names) -> np.ndarray:
    for name in names:
        if name in X.columns:
            return X[name].to_numpy(float)
    return np.full(len(X), np.nan)


def render(signal: str, X: pd.DataFrame, C: pd.DataFrame) -> list[str]:
    """The reason text of ``signal`` for each row: direction (``(+)`` raises the score,
    ``(-)`` lowers it) and the signal in words. ``X``: feature values; ``C``: contributions of
    the signal's columns (same rows)."""
    signs = np.where(C.sum(axis=1).to_numpy() >= 0, "(+)", "(-)")
    return [f"{s} {t}" for s, t in zip(signs, _texts(signal, X, C))]


def _texts(signal: str, X: pd.DataFrame, C: pd.DataFrame) -> list[str]:
    if signal == "active_users":
        return [f"{_n(a)} active users in the last 30 days ({_n(b)} a month earlier)"
                for a, b in zip(_col(X, "active_users_30d"), _col(X, "active_users_prev_30d"))]
    if signal == "activity":
        return [f"{_n(a)} product events in the last 30 days ({_n(b)} the month before)"
                for a, b in zip(_col(X, "events_30d"), _col(X, "events_prev_30d"))]
    if signal == "new_users":
        return [f"{_n(a)} new users signed up in the last 30 days" for a in _col(X, "new_users_30d")]
    if signal == "breadth":
        return [f"used {_n(a)} different features in the last 30 days"
                for a in _col(X, "distinct_events_30d")]
    if signal == "recency":
        return ["no product activity yet" if np.isnan(d) else f"last active {d:,.0f} days ago"
                for d in _col(X, "days_since_last_event")]
    if signal == "tenure":          # a user's own sign-up (tenure_days), else the account's
        return [f"signed up {_n(d)} days ago" for d in _col(X, "tenure_days", "account_age_days",
                                                           "days_since_first_event")]
    if signal == "company_size":
        return _company_size(X)
    if signal == "seniority":
        return ["nobody stated a seniority" if np.isnan(v) else
                f"the most senior user says they are {_SENIORITY.get(int(round(v)), 'senior')}"
                for v in _col(X, "stated_seniority")]
    if signal == "enrichment":
        return ["found in the enrichment data" if v > 0 else "not found in the enrichment data"
                for v in _col(X, "enriched")]
    if signal in ("funding", "revenue"):
        col = "enriched_funding_usd" if signal == "funding" else "enriched_revenue_usd"
        return [f"{signal} unknown" if np.isnan(v) else f"{signal}: ${_money(v)}"
                for v in _col(X, col)]
    if signal == "enterprise":
        return ["on the list of known large companies" if v > 0 else
                "not on the list of known large companies" for v in _col(X, "enterprise_domain")]
    if signal == "team_size":
        return [f"{_n(a)} users in total" for a in _col(X, "users_total")]
    if signal == "work_email" and "work_email_share" not in X and "work_email" in X:
        return ["work email unknown" if np.isnan(v) else "on a work email" if v > 0 else
                "on a free-mail address" for v in _col(X, "work_email")]      # one user's own
    if signal == "work_email":
        return ["work-email share unknown" if np.isnan(v) else f"{v:.0%} of users on a work email"
                for v in _col(X, "work_email_share", "work_email")]
    if signal == "buyer" and "buyer_title_users" not in X and "buyer_title" in X:
        return ["has a buyer title (VP, head of, director, founder, ...)" if n > 0 else
                "no buyer title (VP, head of, director, founder, ...)"
                for n in _col(X, "buyer_title")]
    if signal == "buyer":
        return ["no user with a buyer title (VP, head of, director, founder, ...)"
                if not (n > 0) else f"{_n(n)} user(s) with a buyer title"
                for n in _col(X, "buyer_title_users", "buyer_title")]
    if signal == "activation":
        return _activation_texts(X, C)
    if signal in _CATEGORIES:
        cols = list(C.columns)
        values = X[cols].to_numpy(float)
        names = np.array([c[len(signal) + 1:].replace("_", " ") for c in cols] + ["other"])
        hot = np.where((values == 1).any(axis=1), (values == 1).argmax(axis=1), len(cols))
        return [f"{_CATEGORY_WORDS.get(signal, signal)}: {v}" for v in names[hot]]
    families = {c: event_family(c) for c in C.columns}
    if any(f and f[1] != "volume" for f in families.values()):
        return _event_texts(signal, X, C, families)
    windowed = [c for c in C.columns if _WINDOWED.match(c)]
    if windowed:
        pick = np.abs(C[windowed].to_numpy(float)).argmax(axis=1)
        days = np.array([int(_WINDOWED.match(c).group(2)) for c in windowed])[pick]
        counts = X[windowed].to_numpy(float)[np.arange(len(X)), pick]
        return [phrase(signal, n, d) for n, d in zip(counts, days)]
    col = C.columns[0]
    return [f"{signal_words(col)}: {_n(v)}" for v in _col(X, col)]


def _company_size(X: pd.DataFrame) -> list[str]:
    """Employees from the accounts table, else the enrichment vendor's, else the sign-up
    answer's ("said at sign-up")."""
    out = []
    for own, vendor, stated in zip(_col(X, "employees"), _col(X, "enriched_employees"),
                                   _col(X, "stated_employees")):
        if not np.isnan(own):
            out.append(f"{_n(own)} employees")
        elif not np.isnan(vendor):
            out.append(f"{_n(vendor)} employees (enrichment data)")
        elif not np.isnan(stated):
            out.append(f"{_n(stated)}+ employees, as stated at sign-up")
        else:
            out.append("company size unknown")
    return out


def _money(v: float) -> str:
    for size, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= size:
            return f"{v / size:,.1f}{unit}".replace(".0" + unit, unit)
    return f"{v:,.0f}"


_SIGNAL_WORDS = {"activity": "product events", "active_users": "active users",
                 "new_users": "new users", "breadth": "features used", "recency": "recency",
                 "tenure": "tenure", "company_size": "company size", "team_size": "users in total",
                 "work_email": "work email", "buyer": "buyer titles", "activation": "activation"}


def signal_words(signal: str) -> str:
    """A signal's name in words, e.g. ``"sso page viewed"``, ``"product events"``,
    ``"the sum of pages in the last 30 days"`` (for ``sum_pages_30d``)."""
    if signal in _SIGNAL_WORDS or signal in _CATEGORY_WORDS:
        return _SIGNAL_WORDS.get(signal, _CATEGORY_WORDS.get(signal))
    m = _AGGREGATE.fullmatch(signal)
    if m:
        return _AGGREGATES[m.group(1)].format(m.group(2).replace("_", " "), m.group(3))
    m = re.fullmatch(r"(.+)_(\d+)d", signal)
    if m:
        return f"{m.group(1).replace('_', ' ')} in the last {m.group(2)} days"
    return signal.replace("_", " ")


_AGGREGATE = re.compile(r"(sum|max|min|avg|mean|distinct)_(.+)_(\d+)d")
_AGGREGATES = {"sum": "{} summed over the events of the last {} days",
               "max": "the most {} in one event of the last {} days",
               "min": "the fewest {} in one event of the last {} days",
               "avg": "{} per event on average in the last {} days",
               "mean": "{} per event on average in the last {} days",
               "distinct": "distinct {} in the last {} days"}


def render_group(signals: list[str], X: pd.DataFrame, C: pd.DataFrame, *,
                 lowering: str = "", lowering_columns=()) -> list[str]:
    """The reason text of a group of signals (:func:`~pqlml.explain.reason_groups`) per row:
    the direction of their summed contribution, then the words of the member signal that
    contributes most in that row, naming the others it moves with; ``lowering`` (e.g.
    ``"accounts doing this more convert less"``) is appended when the training data chose
    the lowering direction (``lowering_columns``) in a row where those columns move the score
    the way the group does. ``C``: contributions of the group's columns (same rows as ``X``).

    >>> X = pd.DataFrame({"events_security_viewed_30d": [5], "events_sso_viewed_30d": [4]})
    >>> C = pd.DataFrame({"events_security_viewed_30d": [0.4], "events_sso_viewed_30d": [0.1]})
    >>> render_group(["security_viewed", "sso_viewed"], X, C)
    ['(+) security viewed 5 times in the last 30 days (together with sso viewed)']
    """
    signs = np.where(C.sum(axis=1).to_numpy() >= 0, "(+)", "(-)")
    by = {s: [c for c in C.columns if signal_of(c) == s] for s in signals}
    by = {s: cols for s, cols in by.items() if cols}
    if not by:
        return [""] * len(X)
    names = list(by)
    # the member that explains the group's direction: the largest contribution of its sign
    total = np.where(C.sum(axis=1).to_numpy() >= 0, 1.0, -1.0)
    strength = np.column_stack([C[by[s]].sum(axis=1).to_numpy() * total for s in names])
    main = strength.argmax(axis=1)
    texts = np.empty(len(X), dtype=object)
    for k, s in enumerate(names):
        rows = np.flatnonzero(main == k)
        if len(rows):
            texts[rows] = _texts(s, X.iloc[rows], C.iloc[rows][by[s]])
    low = [c for c in C.columns if c in set(lowering_columns)]
    part = C[low].sum(axis=1).to_numpy()
    noted = bool(lowering) & (part * total > 0)
    out = []
    for i, (sign, text) in enumerate(zip(signs, texts)):
        others = [signal_words(s) for k, s in enumerate(names) if k != main[i]]
        if others:
            text += f" (together with {', '.join(others)})"
        out.append(f"{sign} {text}" + (f"; {lowering}" if noted[i] else ""))
    return out


def _activation_texts(X: pd.DataFrame, C: pd.DataFrame) -> list[str]:
    """The activation signal per row, in the words of the column that moves the score most:
    the speed of a checkpoint (``days_to_<checkpoint>``: "reached task created 12 days after
    sign-up", "has not reached task created") when that is what counts — a stage-3 account
    that got there slowly is told so, not "(-) activation stage 3 of 3" — else the stage."""
    passed = _col(X, "activation_checkpoints_passed")
    stage = _col(X, "activation_stage")
    total = sum(1 for c in X.columns if c.startswith("days_to_"))
    cols = list(C.columns)
    pick = np.abs(C.to_numpy(float)).argmax(axis=1) if cols else np.zeros(len(X), int)
    out = []
    for i, k in enumerate(pick):
        col = cols[k] if cols else ""
        if col.startswith("days_to_") and col in X.columns:
            name = col[len("days_to_"):].replace("_", " ")
            days = X[col].iloc[i]
            out.append(f"has not reached {name} yet" if pd.isna(days) else
                       f"reached {name} {days:,.0f} days after sign-up")
        else:
            out.append(f"activation stage {_n(stage[i])} of {total} ({_n(passed[i])} "
                       "checkpoint(s) reached)")
    return out


def _event_texts(event: str, X: pd.DataFrame, C: pd.DataFrame, families: dict) -> list[str]:
    """An event's signal when its growth or active users are among its columns: the family
    with the largest contribution in words. Growth: "invite sent: 12 in the last 30 days vs
    3 the 30 before"; active users: "invite sent: 4 users in the last 30 days"; a volume as
    :func:`phrase` says it."""
    cols = list(C.columns)
    pick = np.abs(C.to_numpy(float)).argmax(axis=1)
    name = event.replace("_", " ")
    now = _col(X, volume_name(event, GROWTH_DAYS))
    before = _col(X, prev_name(event))
    out = []
    for i, k in enumerate(pick):
        _, family, days = families[cols[k]]
        value = X[cols[k]].iloc[i] if cols[k] in X.columns else np.nan
        if family in ("prev", "velocity"):
            out.append(f"{name}: {_n(now[i])} in the last {days} days vs {_n(before[i])} "
                       f"the {days} before")
        elif family == "active_users":
            out.append(f"{name}: {_n(value)} users in the last {days} days")
        else:
            out.append(phrase(event, value, days))
    return out
