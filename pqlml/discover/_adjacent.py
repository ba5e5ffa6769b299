"""Outcome-adjacent events: what people do on the way to the outcome, not why they get there.

Someone about to ask for a demo views the pricing page first; the pricing view
then "predicts" the hand-raise perfectly a day ahead and explains nothing. An
event is adjacent when the outcomes it precedes within ``gap_days`` outnumber,
``ratio`` times or more, the outcomes it preceded in the same number of days
four weeks earlier (the same accounts, so size and activity cancel out), and a
one-sided binomial test says the excess is no accident (p < 0.001: with few
outcomes a ratio alone is noise). The events that define an outcome and the ones declared in the config are adjacent
too. Adjacent signals are marked in the scan, not presented as drivers.
"""

from __future__ import annotations

import ibis
import pandas as pd
from scipy import stats

__all__ = ["adjacent_events"]

_EARLIER = 28


def adjacent_events(events: ibis.Table, outcomes: ibis.Table, outcome: str, *, gap_days: int,
                    ratio: float, declared=(), min_outcomes: int = 5) -> pd.DataFrame:
    """Per event: outcomes preceded within ``gap_days`` (``near``), the same window four
    weeks earlier (``earlier``), their ratio, and ``adjacent`` with its ``reason``."""
    o = outcomes.filter(outcomes.outcome == outcome)
    o = o.select(_acc=o.account_id, _ots=o.ts).mutate(_oid=ibis.row_number())
    e = events.filter(events.account_id.notnull()).select("account_id", "ts", "event")
    lo = ibis.interval(days=_EARLIER + gap_days)
    j = o.join(e, [o._acc == e.account_id, e.ts < o._ots, e.ts >= o._ots - lo])
    near = j.ts >= j._ots - ibis.interval(days=gap_days)
    earlier = j.ts < j._ots - ibis.interval(days=_EARLIER)
    per = j.group_by(["_oid", "event"]).aggregate(
        near=ibis.ifelse(near, 1, 0).max(), earlier=ibis.ifelse(earlier, 1, 0).max())
    counts = per.group_by("event").aggregate(near=per.near.sum(), earlier=per.earlier.sum())
    table = counts.to_pyarrow().to_pandas()
    table["ratio"] = table.near / table.earlier.clip(lower=1)
    # Without adjacency, near and earlier are two looks at the same accounts: each outcome
    # preceded in either window is equally likely to be near.
    table["p_value"] = [stats.binomtest(int(n), int(n + m), 0.5, alternative="greater").pvalue
                        if n + m else 1.0 for n, m in zip(table.near, table.earlier)]
    table["adjacent"] = ((table.ratio >= ratio) & (table.near >= min_outcomes)
                         & (table.p_value < 0.001))
    table["reason"] = [f"precedes {n:,} {outcome} outcomes within {gap_days} d vs {m:,} "
                       f"four weeks earlier" if adj else ""
                       for n, m, adj in zip(table.near, table.earlier, table.adjacent)]
    unseen = [n for n in declared if n not in set(table.event)]
    if unseen:
        table = pd.concat([table, pd.DataFrame({"event": unseen, "near": 0, "earlier": 0,
                                                "ratio": 0.0, "p_value": 1.0,
                                                "adjacent": False, "reason": ""})],
                          ignore_index=True)
    for name in declared:
        row = table.event == name
        table.loc[row, "adjacent"] = True
        table.loc[row, "reason"] = "declared in the config"
    return table.sort_values("ratio", ascending=False).reset_index(drop=True)
