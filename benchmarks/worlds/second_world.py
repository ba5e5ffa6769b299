"""A second, independent world: "Tableau Blanc", a B2B collaborative whiteboard.

Written as a stranger's data would be, to test pqlml's generality: its own product, event
names, column names, file layout and dynamics, and its truth written beside the data. It
depends on numpy, pandas and pyarrow only and shares no code, vocabulary or structure with
``pqlml.simulate`` (it must never import pqlml).

The product: companies open *workspaces*; *members* draw on canvases, comment, invite
teammates, connect apps, export PDFs. A workspace upgrades to a paid plan (a row
``change = "upgraded"`` in ``subscriptions.csv``) and some click "Contact Sales" first.

Mechanism (exact; ``truth.json`` holds the same numbers). At the start of every calendar
month after the first, each workspace opened before it and not yet upgraded upgrades within
the month's first 28 days with probability ``p_upgrade = sigmoid(eta)``, where ``eta`` is a
linear function of what its members did in the days before (``DRIVERS``) plus a December
dip. Nothing unobserved enters ``eta``: ``p_upgrade`` is the oracle, the best any model of
the logged behaviour can do. Other events (``DISTRACTORS``) rise and fall with the same
latent engagement as the drivers but have no effect of their own. ``SSO Page Viewed`` is
logged beside most ``Security Settings Viewed`` (correlation > 0.8) and has no effect of its
own either.

Usage follows a weekly cycle (weekends at a quarter) and a December dip. About 5% of
members sign up with a personal address; about 3% move to another workspace (time-stamped
rows in ``memberships.csv``); the activity log carries no workspace column.

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> out = Path(tempfile.mkdtemp())
>>> config = write_world(out, n_orgs=60, months=5, seed=1)
>>> sorted(p.name for p in out.iterdir())  # doctest: +NORMALIZE_WHITESPACE
['TRUTH.md', 'activity.parquet', 'members.csv', 'memberships.csv', 'pqlml.toml',
 'subscriptions.csv', 'truth.json', 'truth_monthly.parquet', 'workspaces.parquet']
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["ACTIONS", "DRIVERS", "DISTRACTORS", "COLLINEAR", "HAND_RAISE", "generate",
           "write_world", "driver_values", "sigmoid"]

START = dt.date(2023, 3, 1)           # the log starts on a month start; 10 months reach December
LABEL_DAYS = 28                       # an upgrade lands in its month's first 28 days

# Actions, in the order of the daily count grid.
ACTIONS = ("Canvas Opened", "Sticky Note Added", "Comment Posted", "Template Applied",
           "Canvas Created", "Video Huddle Started", "Help Article Read", "Billing Page Viewed",
           "Teammate Invited", "Security Settings Viewed", "SSO Page Viewed", "App Connected",
           "PDF Exported", "Contact Sales Clicked")
A = {name: i for i, name in enumerate(ACTIONS)}
HAND_RAISE = "Contact Sales Clicked"
# Usage per active member per weekday (Poisson means), scaled by the workspace's engagement.
USAGE = {"Canvas Opened": 0.22, "Sticky Note Added": 0.16, "Comment Posted": 0.07,
         "Template Applied": 0.015, "Canvas Created": 0.03, "Video Huddle Started": 0.02,
         "Help Article Read": 0.012}
DISTRACTORS = tuple(USAGE) + ("Billing Page Viewed",)
COLLINEAR = {"SSO Page Viewed": "Security Settings Viewed"}


@dataclass(frozen=True)
class Driver:
    """One term of ``eta``: ``coef * transform(count of action over [as_of - lo, as_of - hi))``."""

    name: str          # the term's name in truth_monthly.parquet
    action: str
    days: tuple        # (lo, hi): days before as_of, e.g. (30, 0) = the last 30 days
    transform: str     # "log1p" or "any"
    coef: float
    meaning: str


INTERCEPT = -3.8
DECEMBER = -0.7        # added to eta for as_of in December (budgets frozen)
HEADCOUNT_COEF = 0.35  # per unit of log(headcount / 50)
DRIVERS = (
    Driver("invites_30d", "Teammate Invited", (30, 0), "log1p", 0.9,
           "growth: invites in the last 30 days ..."),
    Driver("invites_prev_30d", "Teammate Invited", (60, 30), "log1p", -0.9,
           "... against the 30 days before (equal coefficients of opposite sign: only growth "
           "counts)"),
    Driver("security_views_30d", "Security Settings Viewed", (30, 0), "log1p", 0.8,
           "security review before buying"),
    Driver("app_connected_90d", "App Connected", (90, 0), "any", 0.9,
           "an app connected in the last 90 days (binary)"),
    Driver("pdf_exports_30d", "PDF Exported", (30, 0), "log1p", -0.7,
           "the negative driver: heavy PDF exporting (a consultant using the tool once)"),
)
# Outreach (only with ``outreach=True``): account executives reach out at each month start.
OUTREACH_SHARE = 0.06  # reach-outs a month, as a share of the workspaces that could upgrade
PILOT_SHARE = 0.5      # of those, the pilot's: a random sample, half "Contacted", half "Control"
REACH_DAYS = 7         # a reach-out lands on one of the month's first 7 days (dates only)
# What a reach-out adds to eta (log-odds of upgrading that month): it helps a workspace in a
# security review (it needs a contract, a DPA, a human), a little more in a large company, and
# annoys a consultant's workspace (it was never going to buy a team plan).
REACH_EVALUATING = 1.2
REACH_LARGE = 0.4      # headcount >= LARGE_HEADCOUNT
LARGE_HEADCOUNT = 200
REACH_CONSULTANT = -0.6
CHANNELS = ("Cold call", "LinkedIn InMail", "Demo booked")
AES = ("Hugo", "Priya", "Mateo", "Sofia")
FREE_MAIL = ("gmail.com", "yahoo.fr", "outlook.com", "proton.me", "icloud.com")
VERTICALS = ("agency", "saas", "education", "consulting", "ecommerce", "public_sector")
VERTICAL_P = (0.2, 0.3, 0.12, 0.13, 0.15, 0.1)
REGIONS = ("NA", "EMEA", "APAC", "LATAM")
ROLES = ("Designer", "Product Designer", "Engineer", "Researcher", "PM", "Marketing Lead",
         "Design Director", "Head of Design", "CTO", "Student", "Freelancer")


def sigmoid(x):
    """The logistic function. >>> round(float(sigmoid(0.0)), 2)
    0.5"""
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float)))


def _month_starts(months: int) -> list[dt.date]:
    out, d = [], START
    for _ in range(months + 1):
        out.append(d)
        d = (d.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return out


def _day_factor(days: list[dt.date]) -> np.ndarray:
    """Weekly cycle (weekends at 0.25) and the December dip (0.6, 0.35 after the 20th)."""
    f = np.array([0.25 if d.weekday() >= 5 else 1.0 for d in days])
    dec = np.array([d.month == 12 for d in days])
    late = np.array([d.month == 12 and d.day > 20 for d in days])
    return f * np.where(late, 0.35, np.where(dec, 0.6, 1.0))


def driver_values(counts: np.ndarray, day0: int) -> dict:
    """The drivers' values at as_of = day ``day0`` from the daily count grid
    ``counts[org, day, action]`` (days before ``day0`` only)."""
    out = {}
    for d in DRIVERS:
        lo, hi = max(day0 - d.days[0], 0), max(day0 - d.days[1], 0)
        n = counts[:, lo:hi, A[d.action]].sum(axis=1)
        out[d.name] = n
    return out


def _eta(values: dict, headcount: np.ndarray, december: bool) -> np.ndarray:
    eta = INTERCEPT + HEADCOUNT_COEF * np.log(headcount / 50.0) + (DECEMBER if december else 0)
    for d in DRIVERS:
        x = values[d.name].astype(float)
        eta = eta + d.coef * (np.log1p(x) if d.transform == "log1p" else (x > 0))
    return eta


def reach_effect(evaluating: np.ndarray, headcount: np.ndarray,
                 consultant: np.ndarray) -> np.ndarray:
    """What a reach-out adds to a workspace's ``eta`` this month."""
    return (REACH_EVALUATING * evaluating + REACH_LARGE * (headcount >= LARGE_HEADCOUNT)
            + REACH_CONSULTANT * consultant)


def generate(n_orgs: int = 2000, months: int = 12, seed: int = 0, *,
             outreach: bool = False) -> dict:
    """The world as tables (keys: workspaces, members, memberships, subscriptions,
    truth_monthly: pandas; activity: a pyarrow Table, 1-3M rows) plus ``truth`` (a dict).
    With ``outreach``, also ``outreach`` and ``pilot`` (pandas) and a ``sales_segment`` column
    on the workspaces; the upgrade draws are the same ones, so only reached workspaces'
    upgrades can differ from the world without outreach."""
    if n_orgs < 1 or months < 2:
        raise ValueError(f"n_orgs must be >= 1 and months >= 2. Got {n_orgs}, {months}.")
    rng = np.random.default_rng(seed)
    reach_rng = np.random.default_rng([seed, 7])      # its own stream: the world's draws stay
    reached, pilot = [], []
    starts = _month_starts(months)
    n_days = (starts[-1] - START).days
    days = [START + dt.timedelta(days=i) for i in range(n_days)]
    factor = _day_factor(days)
    month_day0 = [(s - START).days for s in starts]

    # workspaces: half open in the first month, the rest spread until two months before the end
    early = rng.random(n_orgs) < 0.5
    opened = np.where(early, rng.integers(0, 28, n_orgs),
                      rng.integers(0, max(month_day0[max(months - 2, 1)], 29), n_orgs))
    headcount = np.clip(np.round(np.exp(rng.normal(np.log(40), 1.2, n_orgs))), 2, 20000)
    vertical = rng.choice(VERTICALS, n_orgs, p=VERTICAL_P)
    consultant = rng.random(n_orgs) < np.where(vertical == "consulting", 0.6, 0.12)
    engagement = np.exp(rng.normal(0, 0.6, n_orgs))

    # members: a founder plus an initial team; invites add more later
    team0 = 1 + rng.poisson(np.clip(np.log(headcount), 1, None) * 0.6)
    m_org = np.repeat(np.arange(n_orgs), team0)
    m_join = opened[m_org] + np.where(_first_of_groups(m_org), 0, rng.integers(0, 10, len(m_org)))
    m_org, m_join = list(m_org), list(np.minimum(m_join, n_days - 1))

    counts = np.zeros((n_orgs, n_days, len(ACTIONS)), dtype=np.int32)
    expanding = rng.random(n_orgs) < 0.15
    evaluating = np.zeros(n_orgs, dtype=bool)
    upgraded_day = np.full(n_orgs, -1)
    truth_rows = []
    for m in range(months):
        lo, hi = month_day0[m], month_day0[m + 1]
        as_of = starts[m]
        # conversion decided at the month's start from the days before it
        if m >= 1:
            alive = (opened < lo) & (upgraded_day < 0)
            vals = driver_values(counts, lo)
            eta = _eta(vals, headcount, as_of.month == 12)
            p = sigmoid(eta)
            u = rng.random(n_orgs)
            contacted, arm = (_reach_outs(reach_rng, alive, headcount) if outreach
                              else (np.zeros(n_orgs, bool), None))
            p_if_contacted = sigmoid(eta + reach_effect(evaluating, headcount, consultant))
            p_if_not = p
            p = np.where(contacted, p_if_contacted, p_if_not)
            won = alive & (u < p)
            if outreach:
                on = lo + reach_rng.integers(0, REACH_DAYS, n_orgs)
                reached += [(i, int(on[i]), reach_rng.choice(CHANNELS), reach_rng.choice(AES))
                            for i in np.flatnonzero(contacted)]
                pilot += [(i, lo, f"ae-pilot-{as_of:%Y-%m}", arm[i])
                          for i in np.flatnonzero(arm != "")]
            when = lo + rng.integers(0, LABEL_DAYS, n_orgs)
            upgraded_day[won] = when[won]
            q = 0.003 + 0.3 * p                      # non-buyers' hand-raise probability
            raised = np.where(won, rng.random(n_orgs) < 0.5, alive & (rng.random(n_orgs) < q))
            hr_day = np.where(won, lo + (rng.random(n_orgs) * (when - lo + 1)).astype(int),
                              lo + rng.integers(0, LABEL_DAYS, n_orgs))
            for i in np.flatnonzero(raised):
                counts[i, hr_day[i], A[HAND_RAISE]] += 1
            i = np.flatnonzero(alive)
            reach = ({"p_if_contacted": p_if_contacted[i], "p_if_not": p_if_not[i],
                      "contacted": contacted[i], "pilot_arm": arm[i]} if outreach else {})
            truth_rows.append(pd.DataFrame({
                "org": i, "month_start": pd.Timestamp(as_of, tz="UTC"), "p_upgrade": p[i],
                "p_contact_sales": 0.5 * p[i] + (1 - p[i]) * q[i], "upgraded": won[i],
                **{d.name: vals[d.name][i].astype(np.int64) for d in DRIVERS}, **reach}))
        # latent states move once a month
        expanding = np.where(expanding, rng.random(n_orgs) < 0.45, rng.random(n_orgs) < 0.12)
        p_eval = 0.04 * np.clip(np.log10(headcount), 0.5, None)
        evaluating = np.where(evaluating, rng.random(n_orgs) < 0.5, rng.random(n_orgs) < p_eval)
        engagement = engagement * np.exp(rng.normal(0, 0.15, n_orgs))
        size = np.bincount(np.asarray(m_org)[np.asarray(m_join) < lo + 1],
                           minlength=n_orgs).clip(1, None)
        live = (np.arange(lo, hi)[None, :] >= opened[:, None])     # org x day
        f = factor[lo:hi][None, :] * live
        e = engagement[:, None]
        rate = {a: USAGE[a] * size[:, None] * e * f for a in USAGE}
        rate["Billing Page Viewed"] = 0.012 * e * f
        rate["Teammate Invited"] = (0.012 + 0.12 * expanding[:, None]) * np.sqrt(e) * f
        sec = (0.002 * e + 0.07 * evaluating[:, None]) * f
        rate["Security Settings Viewed"] = sec
        rate["App Connected"] = (0.002 * np.sqrt(e) + 0.015 * evaluating[:, None]) * f
        rate["PDF Exported"] = (np.where(consultant, 0.35, 0.01)[:, None] * e) * f
        for a, r in rate.items():
            counts[:, lo:hi, A[a]] = rng.poisson(r)
        s = counts[:, lo:hi, A["Security Settings Viewed"]]
        counts[:, lo:hi, A["SSO Page Viewed"]] = rng.binomial(s, 0.8) + rng.poisson(0.001 * f)
        # each invite brings a new member with probability 0.6, 1-6 days later
        org_i, day_i = np.nonzero(counts[:, lo:hi, A["Teammate Invited"]])
        k = counts[:, lo:hi, A["Teammate Invited"]][org_i, day_i]
        org_i, day_i = np.repeat(org_i, k), np.repeat(day_i + lo, k)
        joins = rng.random(len(org_i)) < 0.6
        m_org += list(org_i[joins])
        m_join += list(np.minimum(day_i[joins] + rng.integers(1, 7, joins.sum()), n_days - 1))

    tables = _people(rng, np.asarray(m_org), np.asarray(m_join), n_orgs, n_days, opened)
    activity = _expand(rng, counts, tables.pop("_spans"), days)
    truth_monthly = pd.concat(truth_rows, ignore_index=True)
    ids = np.array([f"ws_{i:05d}" for i in range(n_orgs)])
    truth_monthly.insert(0, "workspace_id", ids[truth_monthly.pop("org").to_numpy()])
    truth_monthly["headcount"] = headcount[[int(w[3:]) for w in truth_monthly.workspace_id]]
    domains = _domains(rng, n_orgs)
    workspaces = pd.DataFrame({
        "workspace_id": ids, "web_domain": domains,
        "opened_on": [str(START + dt.timedelta(days=int(d))) for d in opened],
        "headcount": headcount.astype(int), "vertical": vertical,
        "region": rng.choice(REGIONS, n_orgs, p=(0.45, 0.35, 0.15, 0.05))})
    tables["members"]["email_address"] = _emails(rng, tables["members"], domains)
    tables["memberships"]["workspace_id"] = ids[tables["memberships"].pop("org").to_numpy()]
    subs = _subscriptions(rng, upgraded_day, ids, headcount, n_days)
    truth = _truth(n_orgs, months, seed, truth_monthly, consultant)
    extra = {}
    if outreach:
        workspaces["sales_segment"] = np.select(
            [headcount >= 500, headcount >= 50], ["Enterprise", "Commercial"], "Self-serve")
        day = lambda d: str(START + dt.timedelta(days=int(d)))       # noqa: E731
        extra["outreach"] = pd.DataFrame(
            [(ids[i], day(d), c, a) for i, d, c, a in reached],
            columns=["workspace_id", "reached_on", "channel", "ae"])
        extra["pilot"] = pd.DataFrame([(ids[i], day(d), c, g) for i, d, c, g in pilot],
                                      columns=["workspace_id", "assigned_on", "cohort", "group"])
        truth["outreach"] = _outreach_truth(truth_monthly)
    return {"workspaces": workspaces, **tables, "activity": activity, "subscriptions": subs,
            **extra, "truth_monthly": truth_monthly, "truth": truth}


def _reach_outs(rng, alive: np.ndarray, headcount: np.ndarray):
    """(contacted, pilot arm: "Contacted" / "Control" / ""): a month's reach-outs. The pilot
    takes a random sample of the workspaces that could upgrade, half contacted; the rest of
    the capacity goes to the largest of the others (sales calls big companies)."""
    n = len(alive)
    idx = np.flatnonzero(alive)
    capacity = int(round(OUTREACH_SHARE * len(idx)))
    in_pilot = min(2 * int(round(PILOT_SHARE * capacity)), len(idx))
    sample = rng.choice(idx, in_pilot, replace=False)
    arm = np.full(n, "", dtype=object)
    arm[sample[: in_pilot // 2]], arm[sample[in_pilot // 2:]] = "Contacted", "Control"
    contacted = arm == "Contacted"
    others = idx[arm[idx] == ""]
    targeted = others[np.argsort(-headcount[others], kind="stable")][: capacity - in_pilot // 2]
    contacted[targeted] = True
    return contacted, arm


def _outreach_truth(tm: pd.DataFrame) -> dict:
    effect = tm.p_if_contacted - tm.p_if_not
    return {"file": "truth_monthly.parquet", "if_contacted": "p_if_contacted",
            "if_not": "p_if_not", "contacted": "contacted", "pilot_arm": "pilot_arm",
            "eta_effect": {"security_review": REACH_EVALUATING,
                           f"headcount_at_least_{LARGE_HEADCOUNT}": REACH_LARGE,
                           "consultant_workspace": REACH_CONSULTANT},
            "share_a_month": OUTREACH_SHARE, "pilot_share": PILOT_SHARE,
            "reach_outs": int(tm.contacted.sum()),
            "mean_effect_in_pilot": float(effect[tm.pilot_arm != ""].mean())}


def _first_of_groups(groups: np.ndarray) -> np.ndarray:
    return np.r_[True, groups[1:] != groups[:-1]] if len(groups) else groups.astype(bool)


def _people(rng, m_org, m_join, n_orgs, n_days, opened) -> dict:
    """Members, memberships (3% of non-founders move once) and the spans
    (member, org, from_day, to_day) that attribute events."""
    n = len(m_org)
    order = np.lexsort((m_join, m_org))
    m_org, m_join = m_org[order], m_join[order]
    founder = _first_of_groups(m_org)
    moves = ~founder & (rng.random(n) < 0.03) & (m_join < n_days - 20)
    move_day = np.where(moves, m_join + 1 + (rng.random(n) * (n_days - 1 - m_join)).astype(int),
                        n_days)
    target = rng.integers(0, n_orgs, n)
    target = np.where(opened[target] <= move_day, target, m_org)     # only into open workspaces
    moves &= target != m_org
    move_day = np.where(moves, move_day, n_days)
    spans = [(i, m_org[i], m_join[i], move_day[i]) for i in range(n)]
    spans += [(i, target[i], move_day[i], n_days) for i in np.flatnonzero(moves)]
    spans = pd.DataFrame(spans, columns=["member", "org", "from_day", "to_day"])
    uuid = np.array([rng.bytes(16).hex() for _ in range(n)])
    first_seen = (pd.Timestamp(START, tz="UTC") + pd.to_timedelta(m_join, unit="D")
                  + pd.to_timedelta(rng.integers(8 * 3600, 18 * 3600, n), unit="s")
                  ).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    members = pd.DataFrame({"member_uuid": uuid, "first_seen": first_seen,
                            "job_role": rng.choice(ROLES, n), "_org": m_org,
                            "_free": rng.random(n) < np.where(moves, 0.4, 0.04)})
    memberships = pd.DataFrame({
        "member_uuid": uuid[spans.member.to_numpy()], "org": spans.org.to_numpy(),
        "joined_on": [str(START + dt.timedelta(days=int(d))) for d in spans.from_day]})
    return {"members": members, "memberships": memberships, "_spans": spans.assign(
        uuid=uuid[spans.member.to_numpy()])}


def _expand(rng, counts, spans, days) -> pa.Table:
    """One row per event: a member of the workspace that day, a time in working hours."""
    org_i, day_i, act_i = np.nonzero(counts)
    k = counts[org_i, day_i, act_i]
    org_e, day_e, act_e = np.repeat(org_i, k), np.repeat(day_i, k), np.repeat(act_i, k)
    member = np.zeros(len(org_e), dtype=np.int64)
    by_org = np.argsort(org_e, kind="stable")
    bounds = np.searchsorted(org_e[by_org], np.arange(counts.shape[0] + 1))
    s_org, s_from, s_to, s_member = (spans[c].to_numpy() for c in
                                     ("org", "from_day", "to_day", "member"))
    s_order = np.argsort(s_org, kind="stable")
    s_bounds = np.searchsorted(s_org[s_order], np.arange(counts.shape[0] + 1))
    u = rng.random(len(org_e))
    for o in range(counts.shape[0]):
        idx = by_org[bounds[o]:bounds[o + 1]]
        if not len(idx):
            continue
        g = s_order[s_bounds[o]:s_bounds[o + 1]]
        d = day_e[idx]
        active = (s_from[g][:, None] <= d) & (d < s_to[g][:, None])
        cs = active.cumsum(axis=0)
        n_active = cs[-1]
        # the founder is always in: n_active >= 1 on every day with events
        pick = np.floor(u[idx] * np.maximum(n_active, 1)).astype(int)
        member[idx] = s_member[g][(cs > pick).argmax(axis=0)]
    secs = np.clip(rng.normal(13.5 * 3600, 3 * 3600, len(org_e)), 0, 86_399).astype(np.int64)
    base = np.array([dt.datetime(d.year, d.month, d.day, tzinfo=dt.timezone.utc).timestamp()
                     for d in days], dtype=np.int64)
    ms = (base[day_e] + secs) * 1000 + rng.integers(0, 1000, len(org_e))
    order = np.argsort(ms, kind="stable")
    pages = np.where(act_e == A["PDF Exported"], rng.integers(1, 40, len(org_e)), 0)
    platform = rng.choice(3, len(org_e), p=(0.7, 0.22, 0.08))
    uuids = pa.array(spans.drop_duplicates("member").sort_values("member").uuid.to_numpy())
    n = len(org_e)
    return pa.table({
        "event_uuid": pa.array(np.arange(n, dtype=np.int64) + 10_000_000),
        "member_uuid": uuids.take(pa.array(member[order])),
        "action": pa.array(ACTIONS).take(pa.array(act_e[order])),
        "occurred_at": pa.array(ms[order], pa.timestamp("ms", tz="UTC")),
        "platform": pa.array(["web", "desktop", "ipad"]).take(pa.array(platform[order])),
        "page_count": pa.array(pages[order])})


def _domains(rng, n):
    a = ("bright", "north", "blue", "pixel", "lumen", "hex", "stone", "fern", "kite", "nova",
         "orbit", "maple", "cobalt", "tidal", "ember", "atlas")
    b = ("loop", "works", "studio", "labs", "craft", "forge", "field", "frame", "yard", "line")
    tld = ("io", "com", "co", "design", "fr", "de")
    return np.array([f"{rng.choice(a)}{rng.choice(b)}{i}.{rng.choice(tld)}" for i in range(n)])


def _emails(rng, members, domains):
    first = ("ana", "li", "sam", "noor", "jo", "kai", "eva", "omar", "mia", "tom", "ines", "raj")
    local = [f"{rng.choice(first)}.{u[:6]}" for u in members.member_uuid]
    dom = np.where(members.pop("_free"), rng.choice(FREE_MAIL, len(members)),
                   domains[members.pop("_org").to_numpy()])
    return [f"{x}@{d}" for x, d in zip(local, dom)]


def _subscriptions(rng, upgraded_day, ids, headcount, n_days) -> pd.DataFrame:
    """Upgrades (the outcome), plus trials and cancellations that mean nothing for the label."""
    rows = []
    for i in np.flatnonzero(upgraded_day >= 0):
        d = int(upgraded_day[i])
        seats = int(min(headcount[i], 3 + rng.poisson(8)))
        plan = "business" if headcount[i] > 200 else "team"
        rows.append((ids[i], plan, "upgraded", d, seats, seats * (144 if plan == "team" else 288)))
        if rng.random() < 0.1 and d + 40 < n_days:
            rows.append((ids[i], plan, "cancelled", int(d + 40 + rng.integers(0, n_days - d - 40)),
                         0, 0))
    trial = np.flatnonzero(rng.random(len(ids)) < 0.08)
    for i in trial:
        rows.append((ids[i], "business", "trial_started", int(rng.integers(0, n_days)), 0, 0))
    subs = pd.DataFrame(rows, columns=["workspace_id", "plan", "change", "day", "seats",
                                       "arr_usd"]).sort_values("day", kind="stable")
    subs.insert(0, "sub_id", [f"sub-{j:06d}" for j in range(len(subs))])
    subs["effective_date"] = [str(START + dt.timedelta(days=int(d))) for d in subs.pop("day")]
    return subs.reset_index(drop=True)


def _truth(n_orgs, months, seed, tm, consultant) -> dict:
    return {
        "world": "Tableau Blanc (benchmarks/worlds/second_world.py)",
        "n_orgs": n_orgs, "months": months, "seed": seed, "start": str(START),
        "oracle": {"file": "truth_monthly.parquet", "key": ["workspace_id", "month_start"],
                   "probability": "p_upgrade", "hand_raise_probability": "p_contact_sales",
                   "label_window_days": LABEL_DAYS,
                   "rows": int(len(tm)), "upgrades": int(tm.upgraded.sum())},
        "eta": {"intercept": INTERCEPT, "december": DECEMBER,
                "log_headcount_over_50": HEADCOUNT_COEF,
                "terms": [{"name": d.name, "action": d.action, "days_before_as_of": list(d.days),
                           "transform": d.transform, "coef": d.coef, "meaning": d.meaning}
                          for d in DRIVERS]},
        "true_driver_actions": sorted({d.action for d in DRIVERS if d.coef > 0}),
        "negative_driver_actions": sorted({d.action for d in DRIVERS if d.coef < 0
                                           and d.action != "Teammate Invited"}),
        "distractor_actions": list(DISTRACTORS),
        "collinear_actions": COLLINEAR,
        "true_attributes": {"headcount": f"+{HEADCOUNT_COEF} per log(headcount / 50)"},
        "hand_raise": {"action": HAND_RAISE, "converters": 0.5,
                       "non_converters": "0.003 + 0.3 * p_upgrade"},
        "consultant_workspaces": int(consultant.sum()),
    }


TRUTH_MD = """# Tableau Blanc: the truth of this world

Generated by `benchmarks/worlds/second_world.py` (n_orgs={n_orgs}, months={months},
seed={seed}); `truth.json` holds the same numbers, `truth_monthly.parquet` the oracle.

Files: `workspaces.parquet` (workspace_id, web_domain, opened_on date, headcount, vertical,
region), `members.csv` (member_uuid, first_seen ISO time, job_role, email_address; ~5%
personal addresses), `memberships.csv` (member_uuid, workspace_id, joined_on date: a member is
in a workspace from that date until their next row), `activity.parquet` (event_uuid,
member_uuid, action, occurred_at UTC, platform, page_count; no workspace column),
`subscriptions.csv` (sub_id, workspace_id, plan, change = upgraded | trial_started |
cancelled, effective_date, seats, arr_usd).

**Upgrade (conversion).** At each month start `as_of` after the first, a workspace opened
before it and not yet upgraded upgrades on one of the month's first 28 days with probability
`p_upgrade = sigmoid(eta)`, drawn independently:

    eta = {intercept} + {hc} * log(headcount / 50) + {dec} * [as_of in December]
{terms}

Counts are over the workspace's members' actions (membership at the time of the action) in
`[as_of - lo, as_of - hi)` days. Only these enter `eta`; `p_upgrade` is the oracle.

- True drivers: Teammate Invited *growth* (last 30 days against the 30 before), Security
  Settings Viewed, App Connected (any in 90 days), headcount.
- Negative driver: PDF Exported (consultant workspaces export heavily and rarely buy).
- Distractors (follow the same engagement, no effect): {distractors}.
- Collinear: SSO Page Viewed is logged with 80% of Security Settings Viewed; no own effect.
- Seasonality: weekends at a quarter of weekday usage; December usage at 0.6 (0.35 after
  the 20th) and December upgrades at exp({dec}) the odds.

**Hand-raise.** Half of the upgrading workspaces click "Contact Sales Clicked" between the
month start and the upgrade day; a workspace that does not upgrade that month clicks it with
probability `0.003 + 0.3 * p_upgrade` (`p_contact_sales` in the oracle file).

**Counts here:** {rows:,} workspace-months at risk, {upgrades:,} upgrades.
"""


OUTREACH_MD = """
**Outreach.** At each month start after the first, account executives reach out to
{share:.0%} of the workspaces that could upgrade. Half of those reach-outs
({pilot:.0%}) are a pilot: a random sample of those workspaces, half in group `Contacted`
(reached out to) and half in `Control` (left alone that month), `pilot.csv`; the rest go to
the largest other workspaces by headcount. A reach-out lands on one of the month's first
{days} days (`outreach.csv`, dates only) and adds to that month's `eta`:

    {ev:+.1f} * [the workspace was in a security review last month]
    {large:+.1f} * [headcount >= {hc}]
    {cons:+.1f} * [a consultant's workspace]

The same uniform draw decides the upgrade with or without the reach-out: `p_if_contacted`
and `p_if_not` in `truth_monthly.parquet` are both potential chances, `p_upgrade` the one that
applied. {reach_outs:,} reach-outs; the mean effect in the pilot is {mean_effect_in_pilot:+.4f}.
Workspaces carry `sales_segment` (Enterprise: headcount >= 500, Commercial: >= 50, else
Self-serve).
"""


def write_world(out, n_orgs: int = 2000, months: int = 12, seed: int = 0,
                *, test_periods: int | None = None, outreach: bool = False) -> Path:
    """Generate the world into folder ``out`` and return the path of its ``pqlml.toml``
    (a stranger's hand-written config: column mappings, memberships, outcome vocabulary).
    With ``outreach``, also ``outreach.csv`` (workspace_id, reached_on date, channel, ae) and
    ``pilot.csv`` (workspace_id, assigned_on date, cohort, group = Contacted | Control)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    w = generate(n_orgs, months, seed, outreach=outreach)
    if outreach:
        w["outreach"].to_csv(out / "outreach.csv", index=False)
        w["pilot"].to_csv(out / "pilot.csv", index=False)
    pq.write_table(pa.Table.from_pandas(w["workspaces"], preserve_index=False),
                   out / "workspaces.parquet")
    w["members"].to_csv(out / "members.csv", index=False)
    w["memberships"].to_csv(out / "memberships.csv", index=False)
    pq.write_table(w["activity"], out / "activity.parquet")
    w["subscriptions"].to_csv(out / "subscriptions.csv", index=False)
    pq.write_table(pa.Table.from_pandas(w["truth_monthly"], preserve_index=False),
                   out / "truth_monthly.parquet")
    truth = w["truth"]
    (out / "truth.json").write_text(json.dumps(truth, indent=2) + "\n")
    terms = "\n".join(f"        {d.coef:+.2f} * {d.transform}(count of '{d.action}' in "
                      f"[as_of - {d.days[0]}d, as_of - {d.days[1]}d))" for d in DRIVERS)
    (out / "TRUTH.md").write_text(TRUTH_MD.format(
        n_orgs=n_orgs, months=months, seed=seed, intercept=INTERCEPT, hc=HEADCOUNT_COEF,
        dec=DECEMBER, terms=terms, distractors=", ".join(DISTRACTORS),
        rows=truth["oracle"]["rows"], upgrades=truth["oracle"]["upgrades"])
        + (OUTREACH_MD.format(share=OUTREACH_SHARE, pilot=PILOT_SHARE, days=REACH_DAYS,
                              ev=REACH_EVALUATING, large=REACH_LARGE, hc=LARGE_HEADCOUNT,
                              cons=REACH_CONSULTANT, **truth["outreach"]) if outreach else ""))
    path = out / "pqlml.toml"
    path.write_text(_config(months, test_periods, outreach))
    return path


def _config(months: int, test_periods: int | None, outreach: bool = False) -> str:
    starts = _month_starts(months)
    first = starts[min(3, months - 1)]          # a 90-day look-back fits
    last = starts[months - 1]                   # its 28 days close inside the log
    n = test_periods or max(2, min(6, months - 6))
    segment = ', segment = "sales_segment"' if outreach else ""
    outreach_tables = ("""[data.touches]
source = "outreach.csv"
columns = { account_id = "workspace_id", at = "reached_on", kind = "channel", rep = "ae" }

[data.holdouts]
source = "pilot.csv"
columns = { account_id = "workspace_id", at = "assigned_on", experiment = "cohort", arm = "group" }
values = { Contacted = "touch", Control = "holdout" }

""" if outreach else "")
    return f'''# Tableau Blanc, read by pqlml (written by benchmarks/worlds/second_world.py)
[project]
name = "tableau_blanc"

[data.events]
source = "activity.parquet"
columns = {{ ts = "occurred_at", user_id = "member_uuid", event = "action", event_id = "event_uuid", pages = "page_count" }}

[data.users]
source = "members.csv"
columns = {{ user_id = "member_uuid", email = "email_address", signup_at = "first_seen", title = "job_role" }}

[data.accounts]
source = "workspaces.parquet"
columns = {{ account_id = "workspace_id", domain = "web_domain", created_at = "opened_on", employees = "headcount", industry = "vertical", country = "region"{segment} }}

[data.memberships]
source = "memberships.csv"
columns = {{ user_id = "member_uuid", account_id = "workspace_id", since = "joined_on" }}

[data.outcomes]
source = "subscriptions.csv"
columns = {{ account_id = "workspace_id", ts = "effective_date", outcome = "change", amount = "arr_usd" }}

{outreach_tables}[outcomes]
values = {{ upgraded = "conversion", trial_started = "ignore", cancelled = "ignore", "{HAND_RAISE}" = "hand_raise" }}

[schedule]
start = "{first}"
end = "{last}"
every = "month"

[labels]
horizon_days = {LABEL_DAYS}

[rules]
busy_team = "active_users_30d >= 6 and events_30d >= 120"

[tiers]
intent_rule = "busy_team"

[model]
test_periods = {n}
bootstrap = 50

[capacity]
per_period = 50
'''


if __name__ == "__main__":
    import argparse
    import time

    parser = argparse.ArgumentParser(description="Write the Tableau Blanc world and its "
                                                 "pqlml.toml into a folder.")
    parser.add_argument("out")
    parser.add_argument("--orgs", type=int, default=2000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--outreach", action="store_true",
                        help="also sales reach-outs and a randomised pilot of them")
    args = parser.parse_args()
    t0 = time.perf_counter()
    written = write_world(args.out, args.orgs, args.months, args.seed, outreach=args.outreach)
    print(f"wrote {written} in {time.perf_counter() - t0:.1f} s")
