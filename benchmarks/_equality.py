"""Do two feature tables agree? Same (account_id, as_of) rows, every common column equal.

pqlml's table is the reference. Its float columns (ratios, logs, the slope, recency
in days) are equal within a relative tolerance of 1e-9, NaN equal to NaN: engines
round differently (numpy's vectorised ``log`` against the C library's, a division by a
literal done as a multiplication by its reciprocal). Every other column (counts,
flags, whole-day ages) must be exactly equal; its values are compared as float64,
exact for integers below 2**53, so a null where pqlml has a number is a difference.

Columns are reported per tool: compared, missing (pqlml has them, the tool not) and
extra (the tool's, not pqlml's). A tool that claims the whole catalog
(``complete=True``: the hand-written versions) fails on any missing or extra column;
one that computes a subset (featuretools) only reports them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

KEYS = ["account_id", "as_of"]
RTOL = 1e-9


def load(path) -> pd.DataFrame:
    """A feature table indexed by (account_id as str, as_of as UTC), sorted."""
    f = pd.read_parquet(path)
    as_of = pd.to_datetime(f.as_of)
    as_of = as_of.dt.tz_localize("UTC") if as_of.dt.tz is None else as_of.dt.tz_convert("UTC")
    f = f.assign(account_id=f.account_id.astype(str), as_of=as_of.astype("datetime64[us, UTC]"))
    return f.set_index(KEYS).sort_index()


@dataclass
class Check:
    tool: str
    complete: bool                 # the tool claims every pqlml column
    rows: int = 0
    missing_rows: int = 0          # in pqlml's output, not in the tool's
    extra_rows: int = 0            # in the tool's output, not in pqlml's
    exact: list = field(default_factory=list)
    close: list = field(default_factory=list)       # floats within RTOL, not bit-identical
    different: list = field(default_factory=list)   # (column, rows differing, example row)
    missing_columns: list = field(default_factory=list)
    extra_columns: list = field(default_factory=list)

    @property
    def compared(self) -> int:
        return len(self.exact) + len(self.close) + len(self.different)

    @property
    def passed(self) -> bool:
        columns_ok = not (self.complete and (self.missing_columns or self.extra_columns))
        return (self.compared > 0 and self.rows > 0 and columns_ok and not self.different
                and not self.missing_rows and not self.extra_rows)

    def verdict(self) -> str:
        """Short, for the table: PASS/FAIL and the columns compared."""
        total = self.compared + len(self.missing_columns)
        return f"{'PASS' if self.passed else 'FAIL'} ({self.compared}/{total} cols)"

    def summary(self) -> str:
        text = (f"{'PASS' if self.passed else 'FAIL'} {self.tool}: {self.compared} columns x "
                f"{self.rows:,} rows compared, {len(self.exact)} exactly equal")
        if self.close:
            text += f", {len(self.close)} floats within rtol {RTOL:g} ({', '.join(self.close)})"
        if self.different:
            text += "; DIFFERENT: " + "; ".join(f"{c} ({n:,} rows, e.g. {ex})"
                                                for c, n, ex in self.different)
        if self.missing_rows or self.extra_rows:
            text += f"; rows missing {self.missing_rows:,}, extra {self.extra_rows:,}"
        for kind, cols in (("missing", self.missing_columns), ("extra", self.extra_columns)):
            if cols:
                text += f"\n    {len(cols)} {kind} column(s): {', '.join(cols)}"
        return text


def _example(rows: pd.Index, x: np.ndarray, y: np.ndarray, bad: np.ndarray) -> str:
    i = int(np.flatnonzero(bad)[0])
    account, as_of = rows[i]
    return f"{account} @ {as_of:%Y-%m-%d}: pqlml {float(x[i])!r}, tool {float(y[i])!r}"


def _compare_column(check: Check, name: str, rows: pd.Index, ref: pd.Series,
                    other: pd.Series) -> None:
    x, y = ref.to_numpy(np.float64, na_value=np.nan), other.to_numpy(np.float64, na_value=np.nan)
    same = (x == y) | (np.isnan(x) & np.isnan(y))
    if same.all():
        check.exact.append(name)
        return
    ok = np.isclose(y, x, rtol=RTOL, atol=0.0, equal_nan=True) if \
        pd.api.types.is_float_dtype(ref.dtype) else same
    if ok.all():
        check.close.append(name)
    else:
        check.different.append((name, int((~ok).sum()), _example(rows, x, y, ~ok)))


def compare(tool: str, ref: pd.DataFrame, other: pd.DataFrame, *, complete: bool,
            sample: bool = False) -> Check:
    """Compare ``other`` with pqlml's ``ref`` on their common rows and columns.

    ``sample``: ``other`` covers only some accounts; the reference is cut to those.
    """
    if sample:
        ref = ref[ref.index.get_level_values("account_id").isin(
            other.index.get_level_values("account_id"))]
    check = Check(tool, complete, missing_rows=len(ref.index.difference(other.index)),
                  extra_rows=len(other.index.difference(ref.index)),
                  missing_columns=[c for c in ref.columns if c not in other.columns],
                  extra_columns=[c for c in other.columns if c not in ref.columns])
    rows = ref.index.intersection(other.index)
    check.rows = len(rows)
    ref, other = ref.reindex(rows), other.reindex(rows)
    for name in [c for c in ref.columns if c in other.columns]:
        _compare_column(check, name, rows, ref[name], other[name])
    return check
