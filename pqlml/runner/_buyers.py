"""``pqlml buyers``: how right the contact is, forward in time (:mod:`pqlml.buyers`)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ._common import Result, config_of, open_once, stage

__all__ = ["BuyersResult", "buyers", "write_buyers", "BUYERS_FILES"]

#: What ``pqlml buyers`` writes into its folder.
BUYERS_FILES = ("buyers.json", "buyers_segments.csv", "buyers_calibration.csv")


@dataclass
class BuyersResult(Result):
    """The buyer backtest (:class:`pqlml.buyers.BuyerEvaluation`)."""

    evaluation: object


def buyers(source, out, *, test_periods=None, status=None) -> BuyersResult:
    """The buyer backtest (:func:`pqlml.buyers.evaluate_buyers`) written into folder ``out``:
    ``buyers.json`` (pooled figures with bootstrap CIs, the test dates), ``buyers_segments.csv``
    (the figures per segment) and ``buyers_calibration.csv`` (``buyer_in_product`` in ten
    equal-count bins against the observed share of buyers inside). Aggregates only: no user
    id or email is written."""
    from ..outputs import check_folder

    config = config_of(source)
    out = check_folder(out, config=config, names=BUYERS_FILES)
    with stage(status, "ranking each qualified account's users, forward in time"):
        project = open_once(source, config)
        ev, written = write_buyers(project, out, test_periods=test_periods)
    return BuyersResult(project, ev, written=written)


def write_buyers(project, out, *, test_periods=None):
    """Run the buyer backtest on an open project and write :data:`BUYERS_FILES` into the
    (checked) folder ``out``; ``(evaluation, paths written)``. What ``pqlml buyers`` and
    ``pqlml backtest --buyers`` share."""
    from ..buyers import evaluate_buyers
    from ..outputs import write_files

    ev = evaluate_buyers(project, test_periods=test_periods)
    summary = {"test_dates": [str(d) for d in ev.test_dates], **ev.metrics}
    written = write_files({out / BUYERS_FILES[0]: summary,
                           out / BUYERS_FILES[1]: ev.segments,
                           out / BUYERS_FILES[2]: calibration_table(ev.rows)})
    return ev, written


def calibration_table(rows: pd.DataFrame, bins: int = 10) -> pd.DataFrame:
    """``buyer_in_product`` in equal-count bins: mean probability against observed share."""
    r = rows.sort_values("buyer_in_product", kind="stable").reset_index(drop=True)
    r["bin"] = (r.index * bins // max(len(r), 1)) + 1
    return r.groupby("bin").agg(accounts=("inside", "size"),
                                mean_buyer_in_product=("buyer_in_product", "mean"),
                                share_buyer_inside=("inside", "mean")).reset_index()
