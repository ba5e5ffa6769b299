"""BPI Challenge 2012: which open loan applications will be approved? pqlml on a real event log.

The mapping onto pqlml's world: a loan application (case) is an account, its activities are
product events, ``A_APPROVED`` is the conversion. The question is asked once per case, as of
24 hours after submission, for the cases still open then (no approval, decline or
cancellation yet): will it be approved within the next 30 days? Features see only events
before the cutoff, so nothing of the decision leaks in (``cases.parquet``'s flags look at the
whole case and are never used as features).

Why 30 days: 90% of the approvals of open cases come within 28 days of the cutoff, 95% within
34; a longer horizon would leave too few cases whose window closes before the log ends
(2012-03-14), and a case whose window runs past the end is left out (censored), not negative.

Two feature sets, both said in EXPERIMENTS.md:

- ``hand-made @ 24 h``: computed here at exactly submission + 24 h: counts per activity (and
  per lifecycle step of the work items), events, staff involved, hours since the last event,
  hours to the first offer sent, amount requested, hour and weekday of submission.
- ``pqlml catalog``: pqlml's own feature builder on canonical tables written from the log
  (events: case = account = user; outcomes: ``A_APPROVED`` = conversion) with an explicit
  pandas spine, plus the amount requested. pqlml's features are day-grained, so the cutoff is the
  first midnight UTC at least 24 h after submission (24 to 48 h), and the labels are pqlml's
  own (``build_labels``: approval in ``[as_of, as_of + 30 d)``, censored past the log's end).

Evaluation: forward in time only. Weekly retraining (``pqlml.backtest.rolling_folds`` over the
cutoffs' weeks, every training case's 30-day window closed before the test week starts) and one
split (train on cases whose window closed by 2012-01-01, test on cases cut off from then on).
The shuffled split is computed only to show what it would wrongly claim. The main rows use
pqlml's default calibration (Platt); isotonic and none are there for comparison.

    .venv/bin/python experiments/bpi2012.py
"""

from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path

import pandas as pd

from _common import (CALIBRATIONS, KINDS, ROOT, calibration_name, console, markdown, one_split,
                     rolling, shuffled, write)
from pqlml.project import build_features, build_labels, open_project

DATA = ROOT / "data" / "real" / "bpi2012"
HORIZON = pd.Timedelta(days=30)
CUTOFF = pd.Timedelta(hours=24)
DECISIONS = ("A_APPROVED", "A_DECLINED", "A_CANCELLED")
SPLIT = pd.Timestamp("2012-01-01", tz="UTC")       # the one-split experiment's test start
MIN_TRAIN_WEEKS = 6
REFERENCE = "quick logistic baseline on cases open at 24 h: AUC ≈ 0.68"


def activity_key(activity: str, lifecycle: str) -> str:
    """``a_accepted``, ``w_completeren_aanvraag_start``: work items keep their lifecycle step."""
    name = activity if not activity.startswith("W_") else f"{activity}_{lifecycle}"
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def load() -> tuple[pd.DataFrame, pd.DataFrame]:
    events = pd.read_parquet(DATA / "events.parquet")
    events["key"] = [activity_key(a, lc) for a, lc in zip(events.activity, events.lifecycle)]
    cases = pd.read_parquet(DATA / "cases.parquet").set_index("case_id")
    return events, cases


def cases_at(events: pd.DataFrame, cutoff: pd.Series, log_end: pd.Timestamp) -> pd.DataFrame:
    """Per case: open at ``cutoff`` (no decision before it), label window closed before the
    log ends, and approved in ``(cutoff, cutoff + 30 d]``."""
    first = lambda act: events[events.activity.isin(act)].groupby("case_id").timestamp.min()
    decided = first(DECISIONS).reindex(cutoff.index)
    approved = first(["A_APPROVED"]).reindex(cutoff.index)
    out = pd.DataFrame({"cutoff": cutoff})
    out["open"] = ~(decided < cutoff)
    out["observed"] = cutoff + HORIZON <= log_end
    out["approved"] = ((approved > cutoff) & (approved <= cutoff + HORIZON)).astype(int)
    out["week"] = cutoff.dt.normalize() - pd.to_timedelta(cutoff.dt.day_of_week, unit="D")
    return out


def handmade_features(events: pd.DataFrame, cases: pd.DataFrame, cohort: pd.DataFrame):
    """Everything known at exactly submission + 24 h (events strictly before the cutoff)."""
    ev = events.merge(cohort[["cutoff"]], left_on="case_id", right_index=True)
    ev = ev[ev.timestamp < ev.cutoff]
    counts = ev.pivot_table(index="case_id", columns="key", values="event_seq", aggfunc="size",
                            fill_value=0).add_prefix("n_")
    g = ev.groupby("case_id")
    sent = ev[ev.activity == "O_SENT"].groupby("case_id").timestamp.min()
    X = counts.reindex(cohort.index, fill_value=0)
    X["n_events"] = g.size()
    X["n_staff"] = g.resource.nunique()
    X["hours_since_last_event"] = (cohort.cutoff - g.timestamp.max()).dt.total_seconds() / 3600
    submitted = cohort.cutoff - CUTOFF
    to_offer = sent.reindex(cohort.index) - submitted
    X["hours_to_first_offer_sent"] = to_offer.dt.total_seconds() / 3600
    X["amount_requested"] = cases.amount_req.reindex(cohort.index)
    local = submitted.dt.tz_convert("Europe/Amsterdam")
    X["submitted_hour"] = local.dt.hour
    X["submitted_weekend"] = (local.dt.day_of_week >= 5).astype(int)
    return X


CONFIG = """\
# pqlml config for BPI Challenge 2012, written by experiments/bpi2012.py
[project]
name = "bpi2012"

[data.events]
source = "events.parquet"      # ts, user_id = account_id = case, event = activity (+ lifecycle)

[data.outcomes]
source = "outcomes.parquet"    # A_APPROVED -> conversion

[labels]
horizon_days = 30

[features]
windows = [1, 30]              # a case's whole history is under 2 days old at the cutoff
"""


def pqlml_features(events: pd.DataFrame, cases: pd.DataFrame, log_end) -> pd.DataFrame:
    """pqlml's feature builder and labels on canonical tables written from the log, one
    explicit spine row per case at the first midnight >= submission + 24 h."""
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        pd.DataFrame({"ts": events.timestamp, "user_id": events.case_id,
                      "account_id": events.case_id, "event": events.key}
                     ).to_parquet(d / "events.parquet", index=False)
        ok = events[events.activity == "A_APPROVED"]
        pd.DataFrame({"account_id": ok.case_id, "ts": ok.timestamp, "outcome": "conversion"}
                     ).to_parquet(d / "outcomes.parquet", index=False)
        (d / "pqlml.toml").write_text(CONFIG)
        project = open_project(d / "pqlml.toml")
        submitted = events.groupby("case_id").timestamp.min()
        spine = pd.DataFrame({"entity_id": submitted.index,
                              "as_of": (submitted + CUTOFF).dt.ceil("D").to_numpy()})
        X = build_features(project, as_of=spine)
        y = build_labels(project, as_of=spine)
    frame = X.merge(y, on=["account_id", "as_of"])
    frame = frame[~frame.censored].set_index("account_id")
    ours = cases_at(events, frame.as_of, log_end)
    assert (ours.approved == frame.conversion.astype(int)).all(), "pqlml's labels differ from ours"
    frame = frame[ours.open].assign(approved=frame.conversion.astype(int), week=ours.week,
                                    amount_requested=cases.amount_req)
    return frame.drop(columns=["hand_raise", "conversion", "censored"])


def main() -> None:
    started = time.time()
    events, cases = load()
    log_end = events.timestamp.max()
    submitted = events.groupby("case_id").timestamp.min()
    allc = cases_at(events, submitted + CUTOFF, log_end)
    cohort = allc[allc.open & allc.observed]
    console.print(f"{len(cases):,} cases; {int(allc.open.sum()):,} open at 24 h; "
                  f"{len(cohort):,} of them with a closed 30-day window "
                  f"({cohort.approved.mean():.1%} approved)")

    X = handmade_features(events, cases, cohort)
    hand = X.join(cohort).reset_index().rename(columns={"cutoff": "as_of"})
    hand_features = list(X.columns)
    rows = []

    def add(features, split, kind, metrics, calibration=None):
        rows.append({"features": features, "split": split, "kind": kind,
                     "calibration": calibration_name(calibration), "metrics": metrics})

    weekly = dict(period="week", horizon_days=HORIZON.days + 7, min_train=MIN_TRAIN_WEEKS,
                  outcome="approved", group="case_id")
    # pqlml's default first (Platt: base model on the earliest 3/4 of the training cutoffs,
    # calibrated on the latest 1/4), then isotonic the same way, then none (sees every case).
    for calibration in CALIBRATIONS:
        for kind in KINDS:
            add("hand-made @ 24 h", "forward, weekly retrain", kind,
                rolling(hand, features=hand_features, kind=kind, calibration=calibration,
                        label=f"hand-made, {calibration_name(calibration)}", **weekly),
                calibration)
    train = hand[hand.as_of + HORIZON <= SPLIT]
    test = hand[hand.as_of >= SPLIT]
    for calibration in CALIBRATIONS:
        for kind in KINDS:
            add("hand-made @ 24 h", "forward, one split", kind,
                one_split(train, test, features=hand_features, outcome="approved", kind=kind,
                          group="case_id", period="week", calibration=calibration), calibration)

    t = time.time()
    cat = pqlml_features(events, cases, log_end).reset_index()
    console.print(f"pqlml catalog: {cat.shape[1] - 5} features + amount requested for "
                  f"{len(cat):,} open cases ({cat.approved.mean():.1%} approved) in "
                  f"{time.time() - t:.1f} s")
    cat_features = [c for c in cat.columns if c not in ("account_id", "as_of", "approved", "week")]
    for calibration in CALIBRATIONS:
        for kind in KINDS:
            add("pqlml catalog @ midnight ≥ 24 h", "forward, weekly retrain", kind,
                rolling(cat, features=cat_features, kind=kind, calibration=calibration,
                        label=f"pqlml catalog, {calibration_name(calibration)}",
                        **weekly | {"group": "account_id"}), calibration)

    for kind in KINDS:
        add("hand-made @ 24 h", "**shuffled (wrong)**", kind,
            shuffled(hand, features=hand_features, outcome="approved", kind=kind, group="case_id"))

    table = markdown(rows)
    print(f"## BPI Challenge 2012: approval within 30 days of a case still open at 24 h\n\n"
          f"Reference: {REFERENCE}.\n\n{table}\n")
    path = write("bpi2012", {
        "question": "A_APPROVED within 30 days of the cutoff, cases open at the cutoff",
        "reference": REFERENCE, "cases": len(cases), "open_at_24h": int(allc.open.sum()),
        "cohort": len(cohort), "horizon_days": HORIZON.days, "one_split_test_start": str(SPLIT),
        "hand_features": hand_features, "pqlml_features": cat_features, "rows": rows,
        "markdown": table}, started)
    console.print(f"wrote {path.relative_to(ROOT)} in {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
