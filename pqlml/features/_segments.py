"""Time segments shared by every cutoff: the calendar cut at every window edge.

A window of ``w`` days before ``as_of`` is the days ``[as_of - w, as_of)``. Cut
the calendar at every such edge of every cutoff (``as_of - k`` for each offset
``k``, including 0) and each window of each cutoff is a union of whole
*segments*. Events are then aggregated once, per entity and segment; a
cutoff's window is a sum over a handful of segment rows, whatever the number
of cutoffs. Segment ``-1`` holds everything before the first edge (it matters
only to recency); events on or after the last cutoff are never read.

Examples
--------
>>> s = Segments.build([20, 30], offsets=(0, 7, 10))
>>> s.edges                     # 20-10, 20-7, 30-10, 30-7, ...
(10, 13, 20, 23, 30)
>>> s.segment_of(12), s.segment_of(20), s.segment_of(9)
(0, 2, -1)
>>> [(a, s.edges[i]) for i, a in s.window_rows(7)]   # segments of each 7-day window
[(20, 13), (30, 23)]
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import ibis
import pandas as pd

__all__ = ["Segments"]


@dataclass(frozen=True)
class Segments:
    """Edges (whole days since the epoch) cut at ``as_day - k`` for every cutoff and offset."""

    as_days: tuple[int, ...]
    offsets: tuple[int, ...]
    edges: tuple[int, ...]

    @classmethod
    def build(cls, as_days, offsets) -> "Segments":
        as_days = tuple(sorted({int(a) for a in as_days}))
        offsets = tuple(sorted({0, *(int(k) for k in offsets)}))
        edges = tuple(sorted({a - k for a in as_days for k in offsets}))
        return cls(as_days, offsets, edges)

    @property
    def lookback(self) -> int:
        return self.offsets[-1]

    def segment_of(self, day: int) -> int:
        """The segment holding ``day``: ``i`` for ``edges[i] <= day < edges[i+1]``, -1 before."""
        return bisect.bisect_right(self.edges, day) - 1

    def window_rows(self, days: int, skip: int = 0):
        """(segment, as_day) pairs: segments in ``[as_day - days, as_day - skip)`` per cutoff."""
        for a in self.as_days:
            lo, hi = self.edges.index(a - days), self.edges.index(a - skip)
            yield from ((i, a) for i in range(lo, hi))

    def segment_expr(self, day: ibis.IntegerValue) -> ibis.IntegerValue:
        """:meth:`segment_of` as an ibis expression: a balanced tree of comparisons
        (``log2(edges)`` per row), needing no lookup table on any backend."""
        def tree(lo: int, hi: int):            # segments lo..hi-1, each edges[i] <= day
            if hi - lo == 1:
                return ibis.literal(lo, "int32")
            mid = (lo + hi) // 2
            return ibis.ifelse(day < self.edges[mid], tree(lo, mid), tree(mid, hi))
        n = len(self.edges)
        if n <= 1:                             # no cutoff (an empty spine) or one edge
            return ibis.literal(-1, "int32")
        return ibis.ifelse(day < self.edges[0], ibis.literal(-1, "int32"), tree(0, n - 1))

    def window_rows_table(self, days: int, skip: int = 0) -> ibis.Table:
        """:meth:`window_rows` as a table: ``seg, as_day``, one row per segment of each
        cutoff's window ``[as_day - days, as_day - skip)``."""
        frame = pd.DataFrame(list(self.window_rows(days, skip)), columns=["seg", "as_day"],
                             dtype="int64")
        return ibis.memtable(frame.astype({"seg": "int32"}))

    def point_table(self, points: dict[str, tuple[int, int]]) -> ibis.Table:
        """Query points for last-activity lookups, one row per cutoff and named point.

        ``points`` maps a name to ``(skip, days)``: the point is ``as_day - skip``;
        ``bound`` is the first segment at or after it (segments before ``bound`` are
        history there) and ``since = as_day - days`` the oldest day that still counts.
        """
        rows = [{"as_day": a, "point": name, "bound": self.edges.index(a - skip),
                 "since": a - days}
                for a in self.as_days for name, (skip, days) in points.items()]
        return ibis.memtable(pd.DataFrame(rows).astype({"bound": "int32"}))
