"""UCI Bank Marketing: which clients will subscribe to a term deposit? pqlml on a real campaign log.

The mapping onto pqlml's world: a client is an account, subscribing is the conversion. There is
no event log, only one row per client contact, so pqlml's feature builder has nothing to do
here: the features are the row's own columns, known before the call (client profile, previous
campaigns, this campaign's call count, the economy that month). ``duration`` (the call's
length) is dropped: it is known only after the call and nearly decides the label.

Time: the rows are in time order from May 2008 to November 2010, with a month but no year. The
year is recovered from the month wrapping around (May..Dec 2008, Mar..Dec 2009, Mar..Nov 2010:
26 months), and each row's ``as_of`` is the first day of its month. The bank's success rate goes
from 3-6% in most of 2008 to 45-58% in 2010 (fewer, better targeted calls after the crisis), so time
matters more than anything here.

Evaluation: forward in time only, on the same test months, June 2009 to November 2010 (the
last 12% of rows): monthly retraining (``pqlml.backtest.rolling_folds``: each test month's model
is trained on every earlier month) and one split (one model trained on May 2008 to May 2009).
The shuffled split is computed only to show what it would wrongly claim. The main rows use
pqlml's default calibration (Platt); isotonic and none are there for comparison.

    .venv/bin/python experiments/bank_marketing.py              # every row, ~25 min
    .venv/bin/python experiments/bank_marketing.py --default    # the default (Platt) monthly
                                                                 # retraining rows, ~6 min
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from _common import (CALIBRATIONS, KINDS, ROOT, calibration_name, console, markdown, one_split,
                     rolling, shuffled, write)

DATA = ROOT / "data" / "real" / "bank_marketing" / "bank-additional-full.parquet"
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
TEST_START = pd.Timestamp("2009-06-01", tz="UTC")
NUMERIC = ("age", "campaign", "previous", "emp.var.rate", "cons.price.idx", "cons.conf.idx",
           "euribor3m", "nr.employed")
CATEGORICAL = ("job", "marital", "education", "default", "housing", "loan", "contact", "month",
               "day_of_week", "poutcome")
LEAK = ("duration",)          # known only after the call
REFERENCES = ("Moro et al. 2014 (richer data from the same bank, 2008-2012): AUC 0.80; "
              "a published forward-in-time logistic regression on this file: AUC 0.645")


def load() -> pd.DataFrame:
    """The rows with their month (``as_of``, first of the month, UTC) and a 0/1 outcome."""
    bank = pd.read_parquet(DATA)
    month = bank.month.map({m: i + 1 for i, m in enumerate(MONTHS)})
    year = 2008 + (month.diff() < 0).cumsum()          # the rows are in time order
    bank["as_of"] = pd.to_datetime(pd.DataFrame({"year": year, "month": month, "day": 1})
                                   ).dt.tz_localize("UTC")
    assert bank.as_of.is_monotonic_increasing and bank.as_of.nunique() == 26
    assert str(bank.as_of.iloc[-1].date()) == "2010-11-01"
    bank["subscribed"] = (bank.y == "yes").astype(int)
    bank["client"] = np.arange(len(bank))              # no client id: each row is one client
    return bank


def features(bank: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Pre-call features: numbers as they are (``pdays`` 999 = never contacted becomes a flag
    and a missing value), categories one-hot (the vocabulary is not a label)."""
    X = bank[list(NUMERIC)].astype(float)
    X["previously_contacted"] = (bank.pdays != 999).astype(float)
    X["days_since_previous_campaign"] = bank.pdays.where(bank.pdays != 999).astype(float)
    X = X.join(pd.get_dummies(bank[list(CATEGORICAL)], prefix_sep="=", dtype=float))
    assert not set(LEAK) & set(X.columns)
    return bank[["client", "as_of", "subscribed"]].join(X), list(X.columns)


def main(default_only: bool = False) -> None:
    """Every row of the table into ``results/bank_marketing.json``; ``default_only``: the
    monthly-retraining rows of pqlml's default calibration (Platt) alone, into
    ``results/bank_marketing_default.json``."""
    started = time.time()
    bank = load()
    frame, cols = features(bank)
    by_year = frame.groupby(frame.as_of.dt.year).subscribed.agg(["size", "mean"])
    console.print("rows and subscription rate per year: " + ", ".join(
        f"{y}: {int(r['size']):,} at {r['mean']:.1%}" for y, r in by_year.iterrows()))
    rows = []

    def add(split, kind, metrics, calibration=None):
        rows.append({"features": "pre-call columns (no `duration`)", "split": split, "kind": kind,
                     "calibration": calibration_name(calibration), "metrics": metrics})

    n_train_months = frame.as_of[frame.as_of < TEST_START].nunique()
    # pqlml's default first (Platt: base model on the earliest 3/4 of the training months,
    # calibrated on the latest 1/4), then isotonic the same way, then none (sees every month).
    for calibration in CALIBRATIONS[:1] if default_only else CALIBRATIONS:
        for kind in KINDS:
            # horizon_days=28 with month-start as_of: every earlier month trains, the test
            # month never does
            add("forward, monthly retrain", kind,
                rolling(frame, period="as_of", horizon_days=28, min_train=n_train_months,
                        features=cols, outcome="subscribed", kind=kind, group="client",
                        label=f"bank, {calibration_name(calibration)}", calibration=calibration),
                calibration)
    train, test = frame[frame.as_of < TEST_START], frame[frame.as_of >= TEST_START]
    for calibration in () if default_only else CALIBRATIONS:
        for kind in KINDS:
            add("forward, one split", kind,
                one_split(train, test, features=cols, outcome="subscribed", kind=kind,
                          group="client", period="as_of", calibration=calibration), calibration)
    for kind in () if default_only else KINDS:
        add("**shuffled (wrong)**", kind,
            shuffled(frame, features=cols, outcome="subscribed", kind=kind, group="client"))

    table = markdown(rows)
    print(f"## UCI Bank Marketing: term-deposit subscription, tested {TEST_START:%B %Y} to "
          f"November 2010\n\nReferences: {REFERENCES}.\n\n{table}\n")
    path = write("bank_marketing_default" if default_only else "bank_marketing", {
        "question": "subscribed (y = yes), pre-call features, duration dropped",
        "references": REFERENCES, "rows_total": len(frame), "test_start": str(TEST_START.date()),
        "rate_by_year": {int(y): {"n": int(r["size"]), "rate": float(r["mean"])}
                         for y, r in by_year.iterrows()},
        "features": cols, "rows": rows, "markdown": table}, started)
    console.print(f"wrote {path.relative_to(ROOT)} in {time.time() - started:.0f} s")


if __name__ == "__main__":
    import sys
    main(default_only="--default" in sys.argv[1:])
