"""How right the contact is, forward in time: the buyer backtest.

For each test ``as_of`` (the last ``[model] test_periods`` scheduled dates), a
:class:`~pqlml.buyers.BuyerModel` is fitted on the examples whose label windows had closed by
then (``as_of + horizon <= test as_of``) and ranks the candidates of the accounts that raised a
hand or converted in the test window. Pooled over the test dates:

* ``top1`` / ``top3``: the share of accounts whose buyer was a product user (the outcome's
  ``user_id``, a candidate then) that the model ranks first / in its first three, against the
  two baselines (the most senior title, the most active user), with bootstrap CIs over accounts
  and the ratio to the better baseline (its CI from the same resamples);
* ``ece`` of ``buyer_in_product`` against whether the buyer was a candidate;
* the same per segment;
* on simulated data (``truth/buyers.parquet`` beside the data): top-1 against the true buyer,
  and the share of PQA-routed accounts (``buyer_in_product < 0.5``) whose true buyer is
  outside the product.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import PqlmlError
from ..model._metrics import bootstrap_cis, expected_calibration_error
from ._candidates import buyer_examples, candidates
from ._model import BuyerModel, activity_score, rank_by, title_score

__all__ = ["BuyerEvaluation", "evaluate_buyers", "PQA_THRESHOLD"]

#: Below this ``buyer_in_product`` an account is routed to find an outside buyer (PQA).
PQA_THRESHOLD = 0.5
_RANKERS = ("model", "title", "active")


@dataclass
class BuyerEvaluation:
    """The pooled test rows (one per account and test as_of) and their figures."""

    rows: pd.DataFrame
    metrics: dict
    segments: pd.DataFrame
    test_dates: tuple = field(default=())


def _labelled(project, dates) -> pd.DataFrame:
    ex = buyer_examples(project, dates)
    if ex.empty:
        raise PqlmlError("No account raised a hand or converted inside the label windows of "
                         "the schedule: the buyer model has nothing to learn from. Check "
                         "[data.outcomes] and [schedule].")
    X = candidates(project, ex)
    X = X.merge(ex, on=["account_id", "as_of"], how="left")
    X["y"] = (X.user_id == X.buyer_user_id.astype("string")).fillna(False).astype(int)
    return X


def _test_rows(X: pd.DataFrame, model: BuyerModel) -> pd.DataFrame:
    r = model.rank(X)
    r["rank_title"] = rank_by(X, title_score(X))
    r["rank_active"] = rank_by(X, activity_score(X))
    g = r.groupby(["account_id", "as_of"], sort=False)
    out = g.agg(segment=("segment", "first"), inside=("y", "max"),
                buyer_in_product=("buyer_in_product", "first"), n_candidates=("y", "size"))
    for name, col in (("model", "rank_in_account"), ("title", "rank_title"),
                      ("active", "rank_active")):
        buyer_rank = r[col].where(r.y == 1)
        out[f"rank_{name}"] = buyer_rank.groupby([r.account_id, r.as_of], sort=False).min()
    out["contact_user_id"] = r[r.rank_in_account == 1].set_index(
        ["account_id", "as_of"]).user_id
    return out.reset_index()


def evaluate_buyers(project, *, test_periods: int | None = None, reps: int | None = None,
                    alpha: float = 1.0) -> BuyerEvaluation:
    """Backtest the buyer model on the project's schedule (see the module docstring)."""
    dates = [pd.Timestamp(d, tz="UTC") for d in project.dates()]
    cfg = project.config.model
    k = test_periods or cfg.test_periods
    h = pd.Timedelta(days=project.config.labels.horizon_days)
    X = _labelled(project, dates)
    tests = [d for d in dates[-k:] if ((X.as_of + h <= d) & (X.as_of < d)).any()]
    rows = []
    for d in tests:
        train = X[X.as_of + h <= d]
        model = BuyerModel(alpha=alpha).fit(train, train.y)
        rows.append(_test_rows(X[X.as_of == d], model))
    if not rows:
        raise PqlmlError("No test date of the buyer backtest has earlier labelled examples: "
                         "lengthen the [schedule] or lower [model] test_periods.")
    rows = pd.concat(rows, ignore_index=True)
    rows = _with_truth(project, rows)
    metrics = _metrics(rows, reps or cfg.bootstrap)
    segments = pd.DataFrame([{"segment": s, **_metrics(part, reps or cfg.bootstrap, cis=False)}
                             for s, part in rows.groupby("segment")])
    return BuyerEvaluation(rows, metrics, segments, tuple(d.date() for d in tests))


def _with_truth(project, rows: pd.DataFrame) -> pd.DataFrame:
    path = Path(project.config.data.root) / "truth" / "buyers.parquet"
    if not path.exists():
        return rows
    t = pd.read_parquet(path, columns=["account_id", "buyer_user_id", "buyer_in_product"])
    t = t.rename(columns={"buyer_user_id": "true_buyer", "buyer_in_product": "true_inside"})
    t["account_id"] = t.account_id.astype(str)
    return rows.merge(t, on="account_id", how="left")


def _rates(rows: pd.DataFrame) -> dict:
    inside = rows[rows.inside == 1]
    out = {"accounts": len(rows), "accounts_buyer_inside": len(inside),
           "share_buyer_inside": float(rows.inside.mean()) if len(rows) else float("nan")}
    for name in _RANKERS:
        out[f"top1_{name}"] = float((inside[f"rank_{name}"] == 1).mean())
        out[f"top3_{name}"] = float((inside[f"rank_{name}"] <= 3).mean())
    best = max(out["top1_title"], out["top1_active"])
    out["top1_ratio_to_best_baseline"] = out["top1_model"] / best if best > 0 else float("nan")
    out["ece_buyer_in_product"] = expected_calibration_error(rows.inside, rows.buyer_in_product)
    out["mean_buyer_in_product"] = float(rows.buyer_in_product.mean())
    pqa = rows[rows.buyer_in_product < PQA_THRESHOLD]
    out["pqa_routed"] = len(pqa)
    out["pqa_buyer_outside"] = float((pqa.inside == 0).mean()) if len(pqa) else float("nan")
    if "true_inside" in rows:
        out["pqa_true_buyer_outside"] = (float((~pqa.true_inside.astype(bool)).mean())
                                         if len(pqa) else float("nan"))
        true_in = rows[rows.true_inside.astype(bool)]
        out["top1_model_vs_truth"] = float((true_in.contact_user_id == true_in.true_buyer).mean())
    return out


def _metrics(rows: pd.DataFrame, reps: int, *, cis: bool = True) -> dict:
    out = _rates(rows)
    if cis and len(rows):
        names = ("top1_model", "top1_title", "top1_active", "top3_model",
                 "top1_ratio_to_best_baseline", "ece_buyer_in_product", "pqa_buyer_outside")
        ci = bootstrap_cis(lambda i: {n: _rates(rows.iloc[i])[n] for n in names},
                           rows.account_id.to_numpy(), reps=reps)
        out["ci"] = ci
    return out
