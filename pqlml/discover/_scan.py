"""The univariate signal scan: every feature as "did X at least n times within d days".

Each per-event volume ``events_<event>_<d>d`` becomes the rules ``>= n`` for the
grid of ``n`` (and every window ``d``), as Amplitude Compass and Mixpanel Signal
do; every other numeric feature is cut at its quantiles, a 0/1 flag at 1. Each
rule is a 2x2 table against the outcome, with support, outcome rate with and
without, lift, phi, the rule's precision and recall, the odds ratio with a 95%
Woolf interval (0.5 added to every cell when one is empty), the Pearson
chi-square p-value (Fisher's exact test when an expected cell is under 5) and
the Benjamini-Hochberg q-value over all rules scanned.

Rows are account-months: an account appears once per snapshot, so these
p-values treat snapshots as independent. The adjusted model
(:mod:`pqlml.discover._infer`) clusters its errors by account.

Examples
--------
>>> import numpy as np
>>> t = two_by_two(np.array([[30, 10]]), np.array([[20, 940]]))   # flagged/not x pos/neg
>>> round(float(t.lift[0]), 2), round(float(t.phi[0]), 3)
(15.0, 0.656)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests

from ..features._names import event_family

__all__ = ["Candidate", "event_volumes", "candidates", "two_by_two", "scan"]

_Z = stats.norm.ppf(0.975)


@dataclass(frozen=True)
class Candidate:
    """One rule to test: ``feature >= threshold``, shown under ``signal``."""

    signal: str
    feature: str
    threshold: float
    n: float | None = None       # "at least n times" for per-event volumes
    days: int | None = None

    @property
    def rule(self) -> str:
        t = int(self.threshold) if float(self.threshold).is_integer() else round(self.threshold, 6)
        return f"{self.feature} >= {t}"


def event_volumes(features, windows) -> dict[str, tuple[str, int]]:
    """``events_<event>_<d>d`` columns of events that have every window: name -> (event, d).
    An event's previous window and growth (``events_<event>_prev_30d``, ``_velocity_30d``)
    and the totals (``events_prev_30d``) are no volumes.

    >>> event_volumes(["events_x_7d", "events_x_30d", "events_x_prev_30d", "events_prev_30d",
    ...                "events_x_velocity_30d"], (7, 30))
    {'events_x_7d': ('x', 7), 'events_x_30d': ('x', 30)}
    """
    found: dict[str, dict[int, str]] = {}
    columns = set(features)
    for f in features:
        parsed = event_family(f, columns)
        if parsed and parsed[1] == "volume":
            found.setdefault(parsed[0], {})[parsed[2]] = f
    return {f: (event, d) for event, by_days in found.items() if set(windows) <= set(by_days)
            for d, f in by_days.items()}


def candidates(frame: pd.DataFrame, features, counts, quantiles, windows=(7, 30, 90)):
    """The rules to scan, and the features skipped with the reason (never silently)."""
    out, skipped = [], []
    volumes = event_volumes(features, windows)
    for f in features:
        values = pd.to_numeric(frame[f], errors="coerce")
        if values.notna().sum() == 0 or values.nunique(dropna=True) < 2:
            skipped.append({"feature": f, "reason": "constant" if values.notna().any()
                            else "all missing"})
            continue
        if f in volumes:
            event, days = volumes[f]
            top = values.max()
            out += [Candidate(event, f, float(n), n, days) for n in counts if n <= top]
            continue
        uniq = values.dropna().unique()
        if set(uniq) <= {0, 1}:
            out.append(Candidate(f, f, 1.0))
            continue
        cuts = sorted({float(q) for q in values.quantile(list(quantiles)).dropna()
                       if q > values.min()})
        if not cuts:
            skipped.append({"feature": f, "reason": "no quantile above its minimum"})
        out += [Candidate(f, f, c) for c in cuts]
    return out, pd.DataFrame(skipped, columns=["feature", "reason"])


@dataclass
class Table:
    """Vectorised 2x2 statistics for k rules (flagged/not x positive/negative)."""

    a: np.ndarray   # flagged, positive
    b: np.ndarray   # flagged, negative
    c: np.ndarray   # not flagged, positive
    d: np.ndarray   # not flagged, negative

    @property
    def n(self):
        return self.a + self.b + self.c + self.d

    @property
    def lift(self):
        base = (self.a + self.c) / self.n
        with np.errstate(invalid="ignore", divide="ignore"):
            return (self.a / (self.a + self.b)) / base

    @property
    def phi(self):
        num = self.a * self.d - self.b * self.c
        den = np.sqrt((self.a + self.b) * (self.c + self.d) * (self.a + self.c) * (self.b + self.d))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, num / np.where(den > 0, den, 1), 0.0)


def two_by_two(flagged_pos_neg: np.ndarray, rest_pos_neg: np.ndarray) -> Table:
    """A :class:`Table` from ``[[a, b], ...]`` (flagged) and ``[[c, d], ...]`` (not flagged)."""
    f, r = np.asarray(flagged_pos_neg, float), np.asarray(rest_pos_neg, float)
    return Table(f[:, 0], f[:, 1], r[:, 0], r[:, 1])


def _p_values(t: Table) -> np.ndarray:
    n = t.n
    chi2 = n * t.phi ** 2
    p = stats.chi2.sf(chi2, 1)
    rows, cols = np.stack([t.a + t.b, t.c + t.d]), np.stack([t.a + t.c, t.b + t.d])
    expected = rows[:, None, :] * cols[None, :, :] / n
    small = (expected < 5).reshape(4, -1).any(axis=0)
    for i in np.flatnonzero(small):
        p[i] = stats.fisher_exact([[t.a[i], t.b[i]], [t.c[i], t.d[i]]])[1]
    return p


def scan(frame: pd.DataFrame, outcome: str, cands: list[Candidate]) -> pd.DataFrame:
    """The scan table: one row per candidate rule, statistics as in the module docstring."""
    y = frame[outcome].to_numpy(bool)
    flags = np.column_stack([pd.to_numeric(frame[c.feature], errors="coerce").to_numpy(float)
                             >= c.threshold for c in cands])
    a = flags[y].sum(axis=0)
    b = flags[~y].sum(axis=0)
    t = Table(a.astype(float), b.astype(float), y.sum() - a.astype(float), (~y).sum() - b.astype(float))
    zero = (np.stack([t.a, t.b, t.c, t.d]) == 0).any(axis=0)
    h = np.where(zero, 0.5, 0.0)
    log_or = np.log((t.a + h) * (t.d + h) / ((t.b + h) * (t.c + h)))
    se = np.sqrt(1 / (t.a + h) + 1 / (t.b + h) + 1 / (t.c + h) + 1 / (t.d + h))
    p = _p_values(t)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = pd.DataFrame({
            "signal": [c.signal for c in cands], "feature": [c.feature for c in cands],
            "rule": [c.rule for c in cands], "at_least": [c.n for c in cands],
            "days": [c.days for c in cands], "threshold": [c.threshold for c in cands],
            "support": (t.a + t.b).astype(int), "support_share": (t.a + t.b) / t.n,
            "rate_with": t.a / (t.a + t.b), "rate_without": t.c / (t.c + t.d),
            "lift": t.lift, "phi": t.phi, "precision": t.a / (t.a + t.b),
            "recall": t.a / (t.a + t.c), "odds_ratio": np.exp(log_or),
            "or_low": np.exp(log_or - _Z * se), "or_high": np.exp(log_or + _Z * se),
            "p_value": p})
    out["q_value"] = multipletests(p, method="fdr_bh")[1] if len(p) else []
    return out
