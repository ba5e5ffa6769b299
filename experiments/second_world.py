"""pqlml's default backtest on the second world (``benchmarks/worlds/second_world.py``)
against the world's oracle, on the same test rows.

The world is generated into ``experiments/results/second_world_data/`` (not committed) with
its own ``pqlml.toml``; pqlml opens it as a user's config would (``runner.validate``) and
runs the backtest stage on its snapshots with the world's truth as the oracle (its
``p_upgrade`` per workspace and month, passed as ``truth=``), so the oracle is scored on the
same folds, at the same volume, as the model and every baseline. Beside them: a ceiling a
modeller could reach, a scikit-learn logistic regression on the world's true terms fitted
on the same training months. Numbers go to ``experiments/results/second_world.json``; the
table to stdout.

    .venv/bin/python experiments/second_world.py            # 2,000 orgs x 12 months, seed 0
    .venv/bin/python experiments/second_world.py --orgs 800 --months 10 --seed 3
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from pqlml import runner
from pqlml.backtest import backtest
from _common import second_world

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results"
RANKINGS = {"pqlml model": "model", "generic logistic (baseline)": "generic_logistic",
            "recency/frequency/monetary (baseline)": "rfm_logistic", "rules": "rules",
            "best single rule": "best_single_rule", "oracle": "oracle"}


def _true_terms(world, truth: pd.DataFrame) -> np.ndarray:
    cols = [np.log(truth.headcount), truth.month_start.dt.month == 12]
    for term in world.DRIVERS:
        x = truth[term.name]
        cols.append(np.log1p(x) if term.transform == "log1p" else (x > 0))
    return np.column_stack(cols).astype(float)


def _ceiling(world, truth, rows) -> np.ndarray:
    """Per test as_of: a logistic regression on the true terms, trained on the months whose
    28-day labels closed before it (the backtest's own training months)."""
    truth = truth.assign(as_of=truth.month_start.astype(rows.as_of.dtype))
    x, out = _true_terms(world, truth), pd.Series(np.nan, index=rows.index)
    for as_of, part in rows.groupby("as_of"):
        train = (truth.as_of <= as_of - pd.Timedelta(days=28)).to_numpy()
        fit = LogisticRegression(max_iter=2000).fit(x[train], truth.upgraded[train])
        test = part[["account_id", "as_of"]].merge(
            truth.reset_index(), left_on=["account_id", "as_of"],
            right_on=["workspace_id", "as_of"])["index"].to_numpy()
        out[part.index] = fit.predict_proba(x[test])[:, 1]
    return out.to_numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orgs", type=int, default=2000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    world = second_world()
    data = RESULTS / "second_world_data"
    shutil.rmtree(data, ignore_errors=True)
    t0 = time.perf_counter()
    config = world.write_world(data, args.orgs, args.months, args.seed)
    generated = time.perf_counter() - t0
    opened = runner.validate(config)
    opened.checks.raise_if_any()
    project = opened.project
    truth = pd.read_parquet(data / "truth_monthly.parquet")
    oracle = truth.rename(columns={"workspace_id": "account_id", "month_start": "as_of",
                                   "p_upgrade": "p_convert"})
    result = backtest(project.snapshots("conversion"), "conversion", settings=project.config,
                      truth=oracle, attributes=project.with_attributes)
    result.write(data / "backtest")
    elapsed = time.perf_counter() - t0
    rows, metrics = result.rows, result.metrics
    j = rows.merge(truth.assign(as_of=truth.month_start.astype(rows.as_of.dtype)),
                   left_on=["account_id", "as_of"], right_on=["workspace_id", "as_of"],
                   how="left")
    if j.p_upgrade.isna().any() or len(j) != len(rows):
        raise SystemExit("the backtest rows do not all have an oracle row")
    y = j.conversion.astype(int)
    if not np.allclose(j.p_upgrade, rows.p_oracle):
        raise SystemExit("the backtest's oracle is not the world's truth")
    aucs = {name: metrics[key]["roc_auc"] for name, key in RANKINGS.items()}
    aucs["logistic on the true terms"] = roc_auc_score(y, _ceiling(world, truth, rows))
    activity = pd.read_parquet(data / "activity.parquet", columns=["action"])
    out = {"orgs": args.orgs, "months": args.months, "seed": args.seed,
           "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                    capture_output=True, text=True).stdout.strip(),
           "events": len(activity), "test_rows": len(j), "upgrades_in_test": int(y.sum()),
           "roc_auc": aucs,
           "roc_auc_ci": {name: metrics[key]["roc_auc_ci"] for name, key in RANKINGS.items()},
           "converters_captured": {k: metrics[k]["converters_captured"] for k in RANKINGS.values()},
           "models_chosen": [f["model_chosen"]["kind"] + (f" C={f['model_chosen']['C']}"
                                                          if "C" in f["model_chosen"] else "")
                             for f in metrics["folds"]],
           "volume": metrics["model"]["volume"], "intent_rule": metrics["intent_rule"],
           "folds": metrics["folds"], "generate_seconds": round(generated, 1),
           "total_seconds": round(elapsed, 1)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "second_world.json").write_text(json.dumps(out, indent=2, default=str) + "\n")
    print(f"| {args.orgs:,} orgs x {args.months} months, seed {args.seed}: {len(activity):,} "
          f"events, {len(j):,} test rows, {int(y.sum())} upgrades | ROC-AUC |")
    print("|---|---|")
    for name, value in aucs.items():
        ci = out["roc_auc_ci"].get(name)
        print(f"| {name} | {value:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "") + " |")
    print(f"\nconverters captured at the rules' volume ({out['volume']:,}): "
          f"{out['converters_captured']}; chosen per fold: {out['models_chosen']}; "
          f"generated in {generated:.1f} s, "
          f"total {elapsed:.1f} s")


if __name__ == "__main__":
    main()
