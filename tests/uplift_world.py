"""A synthetic world with a known, heterogeneous effect of a touch (the uplift tests' truth).

Log-odds of converting: ``-2 + 0.9 x0 + 0.5 x1`` (x0: intent); a touch adds ``+1.4`` where
``x2 > 0`` and ``x3 > 0`` (mid-market, buyer outside the product), ``-0.4`` where ``x0 < -1``
(low intent), nothing elsewhere. Potential outcomes share one uniform draw, so untouched rows
convert exactly as they would have. Treatment: randomised with ``p_touch``, or, with
``targeted``, every row with ``x2 > 0.5`` touched (no untouched comparison there).
"""

from __future__ import annotations

import numpy as np
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
