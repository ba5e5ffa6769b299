"""Benchmark: scoring 100,000 accounts with reasons, feature building excluded, for the
logistic and the gradient-boosting model.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_score.py [--accounts 100000] [--repeats 3]

The company to score is ``pqlml simulate --accounts N --seed 1`` in DIR (default
data/generated/sim{N}, git-ignored; created if missing); the models are trained once on
a 20,000-account company (seed 2) with ``pqlml.model.train`` and saved; the features at the
default as_of (the day after the last event) are built once and saved as Parquet. Each
(model, repeat) then runs in a fresh process, which opens the project and reads the
features (not timed), and times ``Scorer.score(X, project=project)``: probabilities, percentiles, tiers (intent x fit, funnels,
motions), three reasons per account, the not-scored table. The same process then times
the parts alone. Reported: medians, the peak RSS of the process (features loaded, model,
scoring), and boosting / logistic as a ratio. With ``--shap``, one more fresh process
times SHAP's TreeExplainer on the same boosting model and all rows, the generic way to
get the same numbers (checked equal), for the ratio to pqlml's additive-tree reasons.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("logistic", "gradient_boosting")


def _child(args) -> None:
    import pandas as pd

    from pqlml.explain import reasons
    from pqlml.project import open_project
    from pqlml.score import Scorer, _not_scored, _tiers

    project = open_project(args.data / "pqlml.toml")
    X = pd.read_parquet(args.work / "features.parquet")
    scorer = Scorer.load(args.work / f"{args.child}.skops")
    t = time.perf_counter()
    found = scorer.score(X, project=project)
    scores, gone = found.scores, found.not_scored
    total = time.perf_counter() - t
    parts = {}
    for name, fn in (("predict", lambda: scorer.model.predict(X)),
                     ("reasons", lambda: reasons(scorer.model, X)),
                     ("tiers", lambda: _tiers(project, X, scorer.model.predict(X), "account")),
                     ("not_scored", lambda: _not_scored(project, X, "account_id", "account",
                                                        scores.as_of.iloc[0]))):
        t = time.perf_counter()
        fn()
        parts[name] = time.perf_counter() - t
    print(json.dumps({"seconds": total, "rows": len(scores), "not_scored": len(gone),
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "parts": parts, "tier_1": int((scores.tier == "tier_1").sum())}))


def _shap_child(args) -> None:
    import numpy as np
    import pandas as pd
    import shap

    from pqlml.explain import contributions
    from pqlml.model import Model

    model = Model.load(args.work / "gradient_boosting.skops")
    X = pd.read_parquet(args.work / "features.parquet")[model.features]
    t = time.perf_counter()
    ours = contributions(model, X)[0].to_numpy() / model.estimator.calibrator_.coef_[0, 0]
    fast = time.perf_counter() - t
    t = time.perf_counter()
    values = shap.TreeExplainer(model.estimator.base_estimator_).shap_values(X.to_numpy(float))
    slow = time.perf_counter() - t
    print(json.dumps({"pqlml": fast, "shap": slow, "max_abs_diff": float(np.abs(values - ours).max()),
                      "rows": len(X)}))


def _prepare(args) -> None:
    from pqlml.model import train
    from pqlml.project import build_features, open_project
    from pqlml.score import default_as_of
    from pqlml.simulate import simulate

    for n, seed, folder in ((args.accounts, 1, args.data), (20_000, 2, args.train)):
        if not (folder / "pqlml.toml").exists():
            print(f"simulating {n:,} accounts into {folder}", file=sys.stderr)
            simulate(n, seed, folder)
    args.work.mkdir(parents=True, exist_ok=True)
    for kind in KINDS:
        if not (args.work / f"{kind}.skops").exists():
            print(f"training {kind} on {args.train}", file=sys.stderr)
            trainer = open_project(args.train / "pqlml.toml")
            train(trainer.snapshots(), settings=trainer.config,
                  kind=kind).save(args.work / f"{kind}.skops")
    if not (args.work / "features.parquet").exists():
        project = open_project(args.data / "pqlml.toml")
        build_features(project, as_of=[default_as_of(project).date()]).to_parquet(
            args.work / "features.parquet")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--accounts", type=int, default=100_000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--data", type=Path)
    p.add_argument("--train", type=Path, default=ROOT / "data" / "generated" / "sim20000_seed2")
    p.add_argument("--work", type=Path, default=ROOT / "data" / "generated" / "bench_score")
    p.add_argument("--shap", action="store_true", help="also time SHAP's TreeExplainer once")
    p.add_argument("--child", choices=(*KINDS, "shap"), help=argparse.SUPPRESS)
    args = p.parse_args()
    args.data = args.data or ROOT / "data" / "generated" / f"sim{args.accounts}"
    if args.child:
        return _shap_child(args) if args.child == "shap" else _child(args)
    _prepare(args)
    runs = {k: [] for k in KINDS}
    for r in range(args.repeats):
        for kind in KINDS:
            out = subprocess.run([sys.executable, __file__, "--child", kind, "--data", str(args.data),
                                  "--work", str(args.work)], check=True, capture_output=True,
                                 text=True, env=os.environ | {"OMP_NUM_THREADS": "1"})
            runs[kind].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"run {r + 1}/{args.repeats} {kind}: {runs[kind][-1]['seconds']:.2f} s", file=sys.stderr)
    med = {k: {"seconds": statistics.median(x["seconds"] for x in v),
               "rss": statistics.median(x["peak_rss_mb"] for x in v),
               "parts": {n: statistics.median(x["parts"][n] for x in v) for n in v[0]["parts"]},
               "rows": v[0]["rows"], "not_scored": v[0]["not_scored"], "tier_1": v[0]["tier_1"]}
           for k, v in runs.items()}
    print(f"Machine: {platform.platform()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; OMP_NUM_THREADS=1; {args.repeats} runs each, fresh "
          f"process per run.\n")
    print("| model | accounts scored | not scored | median s | peak RSS (MB) | predict | reasons "
          "| tiers, funnels, motions | not-scored table | vs logistic |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    base = med["logistic"]["seconds"]
    for k, m in med.items():
        parts = m["parts"]
        print(f"| {k} | {m['rows']:,} | {m['not_scored']:,} | {m['seconds']:.2f} | {m['rss']:,.0f} | "
              f"{parts['predict']:.2f} | {parts['reasons']:.2f} | {parts['tiers']:.2f} | "
              f"{parts['not_scored']:.2f} | {m['seconds'] / base:.2f}x |")
    if args.shap:
        out = subprocess.run([sys.executable, __file__, "--child", "shap", "--data", str(args.data),
                              "--work", str(args.work)], check=True, capture_output=True, text=True,
                             env=os.environ | {"OMP_NUM_THREADS": "1"})
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"\nBoosting reasons for {r['rows']:,} rows: pqlml's additive-tree attribution "
              f"{r['pqlml']:.2f} s, SHAP TreeExplainer {r['shap']:.1f} s ({r['shap'] / r['pqlml']:,.0f}x "
              f"slower); largest difference {r['max_abs_diff']:.1e} (log-odds).")


if __name__ == "__main__":
    main()
