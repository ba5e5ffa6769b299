"""A synthetic world with a known, heterogeneous effect of a touch (the uplift tests' truth).

Log-odds of converting: ``-2 + 0.9 x0 + 0.5 x1`` (x0: intent); a touch adds ``+1.4`` where
``x2 > 0`` and ``x3 > 0`` (mid-market, buyer outside the product), ``-0.4`` where ``x0 < -1``
(low intent), nothing elsewhere. Potential outcomes share one uniform draw, so untouched rows
convert exactly as they would have. Treatment: randomised with ``p_touch``, or, with
``targeted``, every row with ``x2 > 0.5`` touched (no untouched comparison there).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit


def world(n: int = 20000, features: int = 10, *, seed: int = 0, p_touch: float = 0.3,
          effect: float = 1.0, targeted: bool = False, periods: int = 4) -> dict:
    """``X``, ``y``, ``t``, ``p0``, ``p1`` (true probabilities untouched / touched),
    ``tau`` (= p1 - p0), ``segment`` (0..3 from x2 > 0, x3 > 0), ``period`` (0..periods-1)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, features))
    base = -2 + 0.9 * X[:, 0] + 0.5 * X[:, 1]
    lift = effect * (1.4 * ((X[:, 2] > 0) & (X[:, 3] > 0)) - 0.4 * (X[:, 0] < -1))
    p0, p1 = expit(base), expit(base + lift)
    t = (rng.random(n) < p_touch).astype(int)
    if targeted:
        t = np.where(X[:, 2] > 0.5, 1, t * (X[:, 2] <= 0.5))
    u = rng.random(n)
    y = np.where(t == 1, u < p1, u < p0).astype(int)
    segment = 2 * (X[:, 2] > 0) + (X[:, 3] > 0)
    return {"X": X, "y": y, "t": t, "p0": p0, "p1": p1, "tau": p1 - p0, "segment": segment,
            "period": rng.integers(0, periods, n)}


def company(accounts: int = 3000, months: int = 8, *, seed: int = 0, randomised: float = 0.4,
            rate: float = 0.1) -> dict:
    """Monthly labelled account snapshots of :func:`world` (``frame``: ``account_id``,
    ``as_of``, ``f0..f5``, ``active_users_30d`` (x0's rank: the rules' activity), ``conversion``),
    with ``touches`` (``rate`` of the accounts a month: a ``randomised`` share of that capacity
    is a random sample, half touched, half held out (``holdouts``); the rest the most active),
    ``truth`` (``account_id``, ``as_of``, ``effect``) and each row's ``segment``."""
    rng = np.random.default_rng(seed)
    frames, touches, holdouts, truth = [], [], [], []
    k = int(rate * accounts)
    n_random = int(round(randomised * k))
    for m in range(months):
        w = world(accounts, 6, seed=seed * 100 + m, p_touch=0.0)
        as_of = pd.Timestamp("2024-01-01", tz="UTC") + pd.DateOffset(months=m)
        ids = np.array([f"a{i}" for i in range(accounts)])
        sample = rng.choice(accounts, n_random, replace=False)
        arm = np.full(accounts, None, dtype=object)
        arm[sample[: (n_random + 1) // 2]], arm[sample[(n_random + 1) // 2:]] = "touch", "holdout"
        t = arm == "touch"
        rest = np.flatnonzero(arm == None)  # noqa: E711 (object array)
        t[rest[np.argsort(-w["X"][rest, 0])[: k - n_random]]] = True
        u = rng.random(accounts)
        y = np.where(t, u < w["p1"], u < w["p0"]).astype(int)
        frame = pd.DataFrame(w["X"], columns=[f"f{j}" for j in range(6)])
        frame.insert(0, "account_id", ids)
        frame.insert(1, "as_of", as_of)
        frame["active_users_30d"] = pd.Series(w["X"][:, 0]).rank().to_numpy()
        frame["conversion"] = y
        frames.append(frame)
        day = as_of + pd.Timedelta(days=2)
        touches.append(pd.DataFrame({"account_id": ids[t], "at": day, "kind": "call", "rep": ""}))
        r = arm != None  # noqa: E711
        holdouts.append(pd.DataFrame({"account_id": ids[r], "at": as_of, "experiment": "m",
                                      "arm": arm[r]}))
        truth.append(pd.DataFrame({"account_id": ids, "as_of": as_of.date(), "effect": w["tau"]}))
    frame = pd.concat(frames, ignore_index=True)
    segment = np.where(frame.f2 > 0, np.where(frame.f3 > 0, "mid_outside", "mid_inside"), "small")
    return {"frame": frame, "touches": pd.concat(touches, ignore_index=True),
            "holdouts": pd.concat(holdouts, ignore_index=True),
            "truth": pd.concat(truth, ignore_index=True), "segment": segment}
