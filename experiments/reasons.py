"""Are the reasons of Tier 1 accounts faithful? On pqlml's simulator and on the second world.

For each world: train the configured model (``runner.train``, the config's ``model.kind``,
or ``--kind``), score the last ``as_of`` and, for the accounts scoring puts in Tier 1,
measure

* ``driver_in_top3``: the share with a true driver among their three reasons (a reason
  counts when one of its feature columns belongs to a true driver's business signal:
  the simulator's ``truth/drivers.csv`` rows of role ``driver``; the second world's
  ``truth.json`` driver actions, the negative driver included, and headcount);
* ``first_is_high_usage_lowering``: the share whose first reason is a usage volume above
  the scored population's median presented as lowering the score (``(-)``), and the same
  share leaving out reasons whose lowering direction the training data chose (they say so
  in words).

    .venv/bin/python experiments/reasons.py                      # both worlds, seed 0
    .venv/bin/python experiments/reasons.py --sim 1500 --orgs 800 --months 10 --seed 3
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from pqlml import runner
from pqlml.explain import signal_of
from pqlml.features._names import event_family
from pqlml.features._specs import feature_name
from pqlml.score import Scorer, default_as_of
from _common import second_world

ROOT = Path(__file__).resolve().parents[1]


def _volume(column: str) -> bool:
    """A usage volume: an event's count or active users, or a catalog total of them."""
    fam = event_family(column)
    if fam:
        return fam[1] in ("volume", "active_users")
    return bool(pd.Series([column]).str.fullmatch(r"(events|active_users)_\d+d").iloc[0])


def _groups(model, X):
    """(per-group contributions, group -> columns, group -> data-chosen lowering?)."""
    try:
        from pqlml.explain import explain
    except ImportError:                                   # pqlml before reasons by group
        from pqlml.explain import signal_contributions
        G = signal_contributions(model, X)
        return G, {s: [c for c in model.features if signal_of(c) == s] for s in G.columns}, {}
    e = explain(model, X)
    lowering = {g: bool(any(e.monotone.get(c, 0) < 0 for c in cols))
                for g, cols in e.groups.items()}
    return e.contributions, e.groups, lowering


def measure(config, model_path: Path, driver_signals: set[str], kind: str | None) -> dict:
    trained = runner.train(config, model_path, kind=kind, track=False)
    project = trained.project
    scorer = Scorer.load(model_path)
    as_of = default_as_of(project)
    X = project.features([as_of.date()])
    found = scorer.score(X, project=project, as_of=as_of).scores
    X = X.set_index("account_id").loc[found.account_id].reset_index()
    G, groups, lowering = _groups(scorer.model, X)
    tier1 = (found.tier == "tier_1").to_numpy()
    top = np.argsort(-np.abs(G.to_numpy()), axis=1, kind="stable")[:, :3]
    names = np.asarray(G.columns)
    median = X[scorer.model.features].median()
    hit, bad, bad_data, shown = [], [], [], []
    for i in np.flatnonzero(tier1):
        cols = [groups[g] for g in names[top[i]]]
        hit.append(any(signal_of(c) in driver_signals for cs in cols for c in cs))
        first = names[top[i, 0]]
        high = any(_volume(c) and X[c].iloc[i] > median[c] for c in groups[first])
        is_bad = high and G[first].iloc[i] < 0
        bad.append(is_bad)
        bad_data.append(is_bad and not lowering.get(first, False))
        if is_bad:
            shown.append(found.reason_1.iloc[i])
    first_reasons = found.reason_1[tier1].value_counts().head(5).to_dict()
    return {"kind": scorer.model.kind, "scored": len(found), "tier_1": int(tier1.sum()),
            "driver_in_top3": float(np.mean(hit)) if hit else float("nan"),
            "first_is_high_usage_lowering": float(np.mean(bad)) if bad else float("nan"),
            "same_without_data_chosen_lowering": float(np.mean(bad_data)) if bad else float("nan"),
            "common_first_reasons": first_reasons,
            "high_usage_lowering_first_reasons": shown[:5]}


def simulator(n: int, seed: int, months: int, kind, tmp: Path) -> dict:
    from pqlml.simulate import simulate

    sim = simulate(n_accounts=n, seed=seed, out=tmp / "sim", months=months)
    drivers = pd.read_csv(tmp / "sim" / "truth" / "drivers.csv")
    signals = {signal_of(name) for name in drivers.name[drivers.role == "driver"]}
    return {"world": f"simulator n_accounts={n} months={months} seed={seed}",
            **measure(sim.config, tmp / "sim.skops", signals, kind)}


def second(n: int, months: int, seed: int, kind, tmp: Path) -> dict:
    world = second_world()
    config = world.write_world(tmp / "world", n, months, seed)
    truth = json.loads((tmp / "world" / "truth.json").read_text())
    actions = truth["true_driver_actions"] + truth["negative_driver_actions"]
    signals = {feature_name(a) for a in actions} | {signal_of("employees")}
    return {"world": f"second world n_orgs={n} months={months} seed={seed}",
            **measure(config, tmp / "world.skops", signals, kind)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sim", type=int, default=1500)
    parser.add_argument("--sim-months", type=int, default=8)
    parser.add_argument("--orgs", type=int, default=800)
    parser.add_argument("--months", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kind", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for result in (simulator(args.sim, args.seed, args.sim_months, args.kind, Path(tmp)),
                       second(args.orgs, args.months, args.seed, args.kind, Path(tmp))):
            print(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
