"""Segments: every window of every cutoff is a union of whole segments, and the
SQL expression puts each day in the same segment as the Python rule."""

import ibis
from hypothesis import given, settings
from hypothesis import strategies as st

from pqlml.features._segments import Segments

cutoffs = st.lists(st.integers(100, 400), min_size=1, max_size=8)
offsets = st.lists(st.integers(1, 90), min_size=1, max_size=5)


@settings(max_examples=40, deadline=None)
@given(cutoffs, offsets)
def test_windows_are_exact_unions_of_segments(as_days, offs):
    s = Segments.build(as_days, offs)
    for w in s.offsets[1:]:
        for a in s.as_days:
            segs = [i for i, b in s.window_rows(w) if b == a]
            days = {d for i in segs for d in range(s.edges[i], s.edges[i + 1])}
            assert days == set(range(a - w, a))


@settings(max_examples=15, deadline=None)
@given(cutoffs, offsets)
def test_sql_segment_of_matches_python(as_days, offs):
    s = Segments.build(as_days, offs)
    days = list(range(s.edges[0] - 3, s.edges[-1]))
    t = ibis.memtable({"day": days})
    got = t.select(seg=s.segment_expr(t.day)).to_pyarrow()["seg"].to_pylist()
    assert got == [s.segment_of(d) for d in days]
