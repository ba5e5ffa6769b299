"""Which segments a touch's effect can be learned in: overlap of touched and untouched rows.

An effect is identified only where touched and untouched accounts are comparable: where the
propensity of a touch given the features is neither near 0 nor near 1 once the touch rate is
divided out (:func:`~pqlml.uplift._propensity.balanced_propensity`: its odds are the density
ratio of touched to untouched rows at x, so ``min_overlap = 0.05`` keeps rows where that ratio
is between 1/19 and 19). A raw propensity would not do: touches are rare (5% of accounts a
month), so an account sampled into a randomised test has a raw propensity near 1%, however
comparable it is. Targeted touches (the
top accounts by a rule, all of them called) leave segments with no comparable untouched rows;
there any "effect" would be invented by the model's extrapolation, so those segments are named
and never ranked.

Examples
--------
>>> import numpy as np
>>> e = np.array([0.6, 0.6, 0.999, 0.999, 0.6, 0.6])
>>> t = np.array([1, 0, 1, 1, 1, 0])
>>> found = overlap(e, t, ["a", "a", "b", "b", "c", "c"], min_comparable=1)
>>> found.unidentifiable
['b']
>>> found.table.loc["b", "comparable_untouched"]
np.int64(0)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ._propensity import balanced_propensity

__all__ = ["overlap", "Overlap", "MIN_COMPARABLE"]

MIN_COMPARABLE = 20          # comparable rows needed in each arm of a segment


@dataclass
class Overlap:
    """Per segment (the index): ``rows``, ``touched``, ``untouched``, ``comparable_share``
    (rows with a propensity in ``[min_overlap, 1 - min_overlap]``), ``comparable_touched``,
    ``comparable_untouched``, ``identifiable`` and ``reason``; the verdict; ``comparable``:
    each row's flag, in the order given."""

    table: pd.DataFrame
    min_overlap: float
    min_comparable: int
    rate: float
    comparable: np.ndarray = field(repr=False, default=None)

    @property
    def identifiable(self) -> list:
        return self.table.index[self.table.identifiable].tolist()

    @property
    def unidentifiable(self) -> list:
        return self.table.index[~self.table.identifiable].tolist()

    @property
    def verdict(self) -> str:
        """One sentence: which segments can be ranked and why the others cannot."""
        if not self.unidentifiable:
            return f"Every segment ({len(self.table)}) has comparable touched and untouched accounts."
        named = "; ".join(f"{s}: {self.table.loc[s, 'reason']}" for s in self.unidentifiable)
        return (f"{len(self.unidentifiable)} of {len(self.table)} segments are unidentifiable "
                f"and not ranked ({named}).")


def overlap(propensity, treatment, segments, *, min_overlap: float = 0.05,
            min_comparable: int = MIN_COMPARABLE, rate: float | None = None) -> Overlap:
    """The overlap table and verdict.

    Parameters
    ----------
    propensity : array of float
        Each row's probability of a touch given its features, from a model fitted on
        earlier rows (forward in time).
    treatment : array of 0/1
        Whether the row was touched.
    segments : array
        Each row's segment (e.g. the account's company size).
    min_overlap : float
        Balanced propensities outside ``[min_overlap, 1 - min_overlap]`` are not comparable
        (``[uplift] min_overlap``).
    min_comparable : int
        A segment is identifiable with at least this many comparable touched rows and as
        many comparable untouched ones.
    rate : float, optional
        The touch rate the propensities were fitted at (default: the share of ``treatment``).
    """
    if not 0 <= min_overlap < 0.5:
        raise ValueError(f"The 'min_overlap' parameter of overlap must be in [0, 0.5). Got "
                         f"{min_overlap!r} instead.")
    e, t = np.asarray(propensity, float), np.asarray(treatment).astype(bool)
    seg = np.asarray(segments)
    if not len(e) == len(t) == len(seg):
        raise ValueError(f"overlap needs one propensity, treatment and segment per row. Got "
                         f"{len(e)}, {len(t)} and {len(seg)} instead.")
    rate = float(t.mean()) if rate is None else rate
    if 0 < rate < 1:
        b = balanced_propensity(np.clip(e, 1e-12, 1 - 1e-12), rate)
        comparable = (b >= min_overlap) & (b <= 1 - min_overlap)
    else:                                   # every row touched, or none: nothing to compare
        comparable = np.zeros(len(e), bool)
    frame = pd.DataFrame({"segment": seg, "touched": t, "untouched": ~t,
                          "comparable": comparable, "comparable_touched": comparable & t,
                          "comparable_untouched": comparable & ~t})
    table = frame.groupby("segment").agg(
        rows=("touched", "size"), touched=("touched", "sum"), untouched=("untouched", "sum"),
        comparable_share=("comparable", "mean"), comparable_touched=("comparable_touched", "sum"),
        comparable_untouched=("comparable_untouched", "sum"))
    table["identifiable"] = ((table.comparable_touched >= min_comparable)
                             & (table.comparable_untouched >= min_comparable))
    table["reason"] = [_reason(r, min_comparable, min_overlap) for r in table.itertuples()]
    return Overlap(table, min_overlap, min_comparable, rate, comparable)



def _reason(row, need: int, m: float) -> str:
    if row.identifiable:
        return ""
    missing = [f"{n:,} comparable {arm} rows" for arm, n in
               (("untouched", row.comparable_untouched), ("touched", row.comparable_touched))
               if n < need]
    return (f"{' and '.join(missing)} (need {need}; comparable: a propensity of a touch in "
            f"[{m:g}, {1 - m:g}] once the touch rate is divided out; {row.touched:,} touched, {row.untouched:,} untouched)")
