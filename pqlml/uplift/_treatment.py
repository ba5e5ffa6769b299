"""Which snapshots were touched, and which were in a randomised experiment.

A snapshot (account, ``as_of``) is *touched* when its account has a touch in
``[as_of, as_of + window_days)`` (``[uplift] touch_window_days``): the touch a sales team makes
after reading that as_of's scores, inside the label window. It is *randomised* when a holdouts
row assigned the account in that same window; its ``arm`` (``touch`` / ``holdout``) is then the
assignment, chosen by a coin, not by the account's features.

Examples
--------
>>> import pandas as pd
>>> snaps = pd.DataFrame({"account_id": ["a", "a", "b"],
...                       "as_of": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-01-01"], utc=True)})
>>> touches = pd.DataFrame({"account_id": ["a", "b"],
...                         "at": pd.to_datetime(["2024-01-03", "2024-01-20"], utc=True)})
>>> touched(snaps, touches, window_days=14).tolist()
[True, False, False]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["touched", "assigned", "per_period"]


def _in_window(frame: pd.DataFrame, events: pd.DataFrame, window_days: int, columns=()):
    """For each row of ``frame``: the first of ``events`` (``account_id``, ``at``) in
    ``[as_of, as_of + window_days)``, as (found: bool array, its ``columns``)."""
    if window_days < 1:
        raise ValueError(f"The 'window_days' parameter must be a positive number of days. Got "
                         f"{window_days!r} instead.")
    rows = pd.DataFrame({"account_id": frame["account_id"].astype(str).to_numpy(),
                         "as_of": pd.to_datetime(frame["as_of"], utc=True).to_numpy(),
                         "_row": np.arange(len(frame))})
    ev = events[["account_id", "at", *columns]].copy()
    ev["account_id"] = ev["account_id"].astype(str)
    ev["at"] = pd.to_datetime(ev["at"], utc=True)
    rows["as_of"] = pd.to_datetime(rows["as_of"], utc=True).astype(ev["at"].dtype)
    both = rows.merge(ev, on="account_id", how="inner")
    span = pd.Timedelta(days=window_days)
    hit = both[(both["at"] >= both["as_of"]) & (both["at"] < both["as_of"] + span)]
    hit = hit.sort_values("at").drop_duplicates("_row")
    found = np.zeros(len(frame), bool)
    found[hit["_row"].to_numpy()] = True
    values = {c: pd.Series(hit[c].to_numpy(), index=hit["_row"].to_numpy())
              .reindex(range(len(frame))).to_numpy() for c in columns}
    return found, values


def touched(frame: pd.DataFrame, touches: pd.DataFrame | None, *, window_days: int) -> np.ndarray:
    """True for each snapshot (``account_id``, ``as_of``) whose account was touched in
    ``[as_of, as_of + window_days)``; all False without touches."""
    if touches is None or touches.empty:
        return np.zeros(len(frame), bool)
    return _in_window(frame, touches, window_days)[0]


def assigned(frame: pd.DataFrame, holdouts: pd.DataFrame | None, *,
             window_days: int) -> np.ndarray:
    """Each snapshot's randomised arm (``touch`` / ``holdout``) when a holdouts row assigned
    its account in ``[as_of, as_of + window_days)``, else None."""
    if holdouts is None or holdouts.empty:
        return np.full(len(frame), None, dtype=object)
    found, values = _in_window(frame, holdouts, window_days, columns=("arm",))
    return np.where(found, values["arm"], None)


def per_period(as_of, flags) -> int:
    """Touches per period: the median, over the as_of dates with any touched snapshot, of the
    snapshots touched at that date (``flags``, one per snapshot, from :func:`touched`); 0
    without any. The one count ``pqlml uplift``'s capacity and ``pqlml experiment plan``'s
    default capacity read.

    >>> per_period(pd.to_datetime(["2024-01-01"] * 3 + ["2024-02-01"] * 2 + ["2024-03-01"]),
    ...            [True, True, False, True, False, False])
    1
    """
    counts = pd.Series(np.asarray(flags, dtype=int)).groupby(np.asarray(as_of)).sum()
    counts = counts[counts > 0]
    return int(counts.median()) if len(counts) else 0
