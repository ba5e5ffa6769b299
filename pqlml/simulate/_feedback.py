"""Sales works some leads each month and says what it thinks of them: the dispositions.

At every scheduled as_of the simulated sales team gets three kinds of leads:

* ``outbound``: the ``capacity`` most active accounts (active users in the last 30 days,
  then events), the list a threshold rule would give it;
* ``inbound``: every account that raises a hand in ``[as_of, as_of + horizon)``, contacted
  within two days of asking;
* ``prospecting``: 1% of the other eligible accounts, at random.

Accounts held out of the month's touch experiment (:mod:`._touches`) are never outbound or
prospecting leads that month.

A lead that converts within the horizon is ``converted`` (at the conversion). Any other
lead is accepted with the *known* probability

``p_accept = sigmoid(ACCEPT_BASE + ACCEPT_SLOPE * (logit(p_hand_raise) + 3)
+ INBOUND_BONUS * inbound + rep bias + N(0, NOISE))``

so acceptance follows the true buying intent with noise and each rep's leniency; a
rejection carries a reason that depends on the account (too small, no buyer in sight)
or on nothing (bad timing, no budget). ``truth/dispositions.parquet`` keeps every
lead's route, ``p_accept`` and rep.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from . import _params as P
from ._company import Company
from ._outcomes import _sigmoid
from ._write import _ts, _write, account_ids

ACCEPT_BASE, ACCEPT_SLOPE, INBOUND_BONUS, NOISE = -0.6, 0.9, 1.0, 0.5
PROSPECTING = 0.01
REPS = (("amy.chen", 0.5), ("ben.okafor", 0.0), ("cara.silva", -0.3), ("dev.patel", -0.6))
REASONS = ("too small", "no buyer in the conversation", "bad timing", "no budget",
           "personal or student project")


def _reasons(rng, employees, buyer):
    """A rejection reason per lead: size and buyer presence shift the odds."""
    w = np.column_stack([0.3 + 3.0 * (employees < 50), 0.3 + 2.0 * (buyer == 0),
                         np.ones(len(buyer)), np.ones(len(buyer)), np.full(len(buyer), 0.3)])
    cdf = np.cumsum(w / w.sum(axis=1, keepdims=True), axis=1)
    return np.array(REASONS)[(rng.random(len(buyer))[:, None] > cdf[:, :-1]).sum(axis=1)]


def _held_out(outcomes, day: int) -> np.ndarray:
    """The accounts in the holdout arm of the experiment at ``day``: sales does not reach out
    to them that month (an inbound request is still answered)."""
    if outcomes.touches is None:
        return np.zeros(0, dtype=np.int64)
    h = outcomes.touches["holdouts"]
    return h["account"][(h["day"] == day) & (h["arm"] == 1)]


def simulate_dispositions(rng, c: Company, outcomes, capacity: int) -> pd.DataFrame:
    """One row per lead: account, as_of day, route, at (seconds), disposition, reason, rep,
    p_accept (NaN for converted leads)."""
    t = outcomes.truth
    day_s = P.DAY
    horizon = P.HORIZON_DAYS * day_s
    rows = []
    for day in np.unique(t["day"]):
        m = t["day"] == day
        acc, p_h = t["account"][m], t["p_hand_raise"][m]
        t0 = int(day) * day_s
        order = np.lexsort((-t["events_30d"][m], -t["active_users_30d"][m]))
        held = _held_out(outcomes, int(day))
        order = order[~np.isin(acc[order], held)]
        outbound = acc[order[:capacity]]
        in_window = (outcomes.sec >= t0) & (outcomes.sec < t0 + horizon)
        hr = in_window & (outcomes.kind == 0)
        hr_acc, first = np.unique(outcomes.account[hr], return_index=True)
        hr_at = outcomes.sec[hr][first]
        conv = in_window & (outcomes.kind == 1)
        conv_at = dict(zip(outcomes.account[conv], outcomes.sec[conv]))
        rest = np.setdiff1d(acc, np.concatenate([outbound, hr_acc, held]))
        prospect = rest[rng.random(len(rest)) < PROSPECTING]
        route = {a: "prospecting" for a in prospect} | {a: "outbound" for a in outbound} | \
            {a: "inbound" for a in hr_acc}
        leads = np.array(sorted(route), dtype=np.int64)
        if not len(leads):
            continue
        routes = np.array([route[a] for a in leads])
        inbound = routes == "inbound"
        ph = pd.Series(p_h, index=acc).reindex(leads).to_numpy()
        rep = rng.integers(0, len(REPS), len(leads))
        eta = (ACCEPT_BASE + ACCEPT_SLOPE * (np.log(ph / (1 - ph)) + 3) + INBOUND_BONUS * inbound
               + np.array([b for _, b in REPS])[rep] + rng.normal(0, NOISE, len(leads)))
        p_accept = _sigmoid(eta)
        accepted = rng.random(len(leads)) < p_accept
        contact = t0 + 1 + (rng.random(len(leads)) * 14 * day_s).astype(np.int64)
        asked = pd.Series(hr_at, index=hr_acc).reindex(leads).to_numpy()
        nudge = (rng.random(len(leads)) * 2 * day_s).astype(np.int64)
        contact = np.where(inbound, np.minimum(np.nan_to_num(asked, nan=0).astype(np.int64) + nudge,
                                               t0 + horizon - 1), contact)
        converted = np.array([a in conv_at for a in leads])
        at = np.where(converted, [conv_at.get(a, 0) for a in leads], contact)
        disposition = np.where(converted, "converted", np.where(accepted, "accepted", "rejected"))
        reason = np.where(disposition == "rejected",
                          _reasons(rng, c.employees[leads], t["buyer_title_present"][m][
                              np.searchsorted(acc, leads)]), None)
        rows.append(pd.DataFrame({
            "account": leads, "day": int(day), "route": routes, "at": at,
            "disposition": disposition, "reason": reason,
            "rep": np.array([r for r, _ in REPS])[rep],
            "p_accept": np.where(converted, np.nan, p_accept)}))
    if not rows:
        return pd.DataFrame({"account": np.zeros(0, np.int64), "day": np.zeros(0, np.int64),
                             "route": [], "at": np.zeros(0, np.int64), "disposition": [],
                             "reason": [], "rep": [], "p_accept": np.zeros(0)})
    return pd.concat(rows, ignore_index=True)


def write_dispositions(out: Path, leads: pd.DataFrame) -> int:
    """``dispositions.parquet`` (what a CRM would export) and ``truth/dispositions.parquet``."""
    leads = leads.sort_values("at", kind="stable")
    ids = account_ids(leads.account.to_numpy())
    _write(pa.table({"entity_id": ids, "at": _ts(leads["at"].to_numpy()),
                     "disposition": pa.array(leads.disposition.to_numpy()),
                     "reason": pa.array(leads.reason.to_numpy(), type=pa.string(), from_pandas=True),
                     "rep": pa.array(leads.rep.to_numpy())}), out / "dispositions.parquet")
    truth = out / "truth"
    truth.mkdir(parents=True, exist_ok=True)
    _write(pa.table({"account_id": ids, "as_of": _ts(leads.day.to_numpy(np.int64) * P.DAY),
                     "route": pa.array(leads.route.to_numpy()),
                     "at": _ts(leads["at"].to_numpy()),
                     "disposition": pa.array(leads.disposition.to_numpy()),
                     "rep": pa.array(leads.rep.to_numpy()),
                     "p_accept": pa.array(leads.p_accept.to_numpy(float))}),
           truth / "dispositions.parquet")
    return len(leads)
