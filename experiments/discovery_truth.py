"""Does discovery find every true driver and no distractor? Checked against written truth.

Two worlds whose truth is known: pqlml's simulator (``truth/drivers.csv``: each feature a
driver, a distractor or outcome-adjacent) at 20,000 accounts on several seeds, and the
independent second world (``benchmarks/worlds/second_world.py``, ``truth.json``: driver,
negative-driver and distractor actions; SSO Page Viewed collinear with Security Settings
Viewed). Discovery runs through :func:`pqlml.runner.discover` only, as a user's config would.

Per world it prints each true driver's scan q (its best rule's q-value) and adjusted q (the q of
the adjusted group that holds it, read on its own column when it has one, else on the
group's column), and each distractor's adjusted q. A driver counts as found after adjustment
when that q is <= 0.05 and its ``direction`` (the group's, or a category level's own; before
it existed, the column's odds ratio) has the effect's sign (a negative driver
must come out negative); a distractor counts as significant when a group made of it alone
(not reported together with another signal) has q <= 0.05. Results go to
``experiments/results/discovery_truth.json`` (``--tag`` names the run, e.g. ``before``).
Generated data is cached in ``experiments/results/discovery_data/`` (not committed).

    .venv/bin/python experiments/discovery_truth.py                    # seeds 5 6 7 + world
    .venv/bin/python experiments/discovery_truth.py --seeds 5 --no-world --tag dev
    # another version's code, e.g. main's exported to /tmp/base (git archive <commit> pqlml):
    PYTHONPATH=/tmp/base .venv/bin/python experiments/discovery_truth.py --tag before
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd

from pqlml import runner

from _common import second_world as world_module

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results"
DATA = RESULTS / "discovery_data"
ALPHA = 0.05


def _slug(action: str) -> str:
    return action.lower().replace(" ", "_")


def _members(row) -> list[str]:
    """The features an adjusted row stands for: its group's members, else its feature."""
    members = row.get("members") if hasattr(row, "get") else None
    if isinstance(members, str) and members:
        return members.split(";")
    return [row["feature"]]


def _adjusted_q(adjusted: pd.DataFrame, matches, sign: int = 0) -> dict:
    """The adjusted row holding a feature that ``matches`` (its own row, else its group's),
    the most significant one (in the direction ``sign`` when given)."""
    rows = []
    for _, row in adjusted.iterrows():
        members = _members(row)
        if matches(row["feature"]) or any(matches(m) for m in members):
            q = row.get("q_value_adjusted")
            odds = float(row.get("odds_ratio_adjusted", float("nan")))
            way = np.sign(odds - 1)
            if isinstance(row.get("direction"), str):    # the group's, or a level's own
                way = 1 if row["direction"] == "raises" else -1
            rows.append({"feature": row["feature"], "members": len(members),
                         "member_names": members,
                         "q": None if pd.isna(q) else float(q), "odds_ratio": odds,
                         "sign": int(way) if way == way else 0,
                         "own": bool(matches(row["feature"])),
                         "_key": (not (sign == 0 or way * sign > 0),
                                  1.0 if pd.isna(q) else float(q))})
    if not rows:
        return {"feature": None, "members": 0, "member_names": [], "q": None,
                "odds_ratio": None, "sign": 0, "own": False}
    rows = [r for r in rows if r["own"]] or rows          # its own column, if it has one
    top = min(rows, key=lambda r: r["_key"])
    top.pop("_key")
    return top


def _scan_q(best: pd.DataFrame, matches) -> dict:
    rows = best[best.signal.map(matches) | best.feature.map(matches)]
    if rows.empty:
        return {"rule": None, "q": None, "odds_ratio": None}
    top = rows.sort_values("q_value").iloc[0]
    return {"rule": top["rule"], "q": float(top.q_value), "odds_ratio": float(top.odds_ratio)}


def _judge(best, adjusted, drivers: dict, distractors: dict) -> dict:
    """``drivers``/``distractors``: name -> (matches(feature or signal), sign)."""
    out = {"drivers": {}, "distractors": {}}
    for name, (matches, sign) in drivers.items():
        s, a = _scan_q(best, matches), _adjusted_q(adjusted, matches, sign)
        right_way = a.get("sign", 0) * sign > 0
        out["drivers"][name] = {"scan": s, "adjusted": a,
                                "found_scan": s["q"] is not None and s["q"] <= ALPHA,
                                "found_adjusted": a["q"] is not None and a["q"] <= ALPHA
                                and right_way}
    for name, (matches, _) in distractors.items():
        a = _adjusted_q(adjusted, matches)
        alone = all(matches(m) for m in a["member_names"])     # not grouped with another
        out["distractors"][name] = {"adjusted": a, "significant": a["q"] is not None
                                    and a["q"] <= ALPHA and alone}
    d, x = out["drivers"].values(), out["distractors"].values()
    out["summary"] = {"drivers": len(d), "found_scan": sum(v["found_scan"] for v in d),
                      "found_adjusted": sum(v["found_adjusted"] for v in d),
                      "distractors": len(x), "distractors_significant":
                      sum(v["significant"] for v in x)}
    return out


def _feature_matcher(name: str):
    """A simulator truth feature: itself, or its event's signal (any window)."""
    from pqlml.features._names import event_family

    def event(f):
        parsed = event_family(f)
        return parsed[0] if parsed else None

    own = event(name)
    return lambda f: f == name or (own is not None and (f == own or event(f) == own))


def simulator(seed: int, accounts: int, months: int) -> dict:
    from pqlml.simulate import simulate

    folder = DATA / f"sim_{accounts}_{months}_{seed}"
    if not (folder / "pqlml.toml").exists():
        simulate(n_accounts=accounts, seed=seed, out=folder, months=months)
    truth = pd.read_csv(folder / "truth" / "drivers.csv")
    found = runner.discover(folder / "pqlml.toml", folder / "out" / "discover")
    effect = "effect"
    drivers = {r["name"]: (_feature_matcher(r["name"]), 1 if r[effect] > 0 else -1)
               for _, r in truth[truth.role == "driver"].iterrows()}
    distractors = {r["name"]: (_feature_matcher(r["name"]), 0)
                   for _, r in truth[truth.role == "distractor"].iterrows()}
    return _judge(found.found.best, found.found.adjusted, drivers, distractors)


def second_world(orgs: int, months: int, seed: int) -> dict:
    world = world_module()
    folder = DATA / f"world_{orgs}_{months}_{seed}"
    config = folder / "pqlml.toml"
    if not config.exists():
        config = world.write_world(folder, orgs, months, seed)
    found = runner.discover(config, folder / "out" / "discover")
    drivers = {}
    for d in world.DRIVERS:
        slug = _slug(d.action)
        if d.name.endswith("_prev_30d"):
            continue                    # the growth driver: one signal, invites now vs before
        drivers[d.action] = ((lambda s: lambda f: f == s or f.startswith(f"events_{s}_"))(slug),
                             1 if d.coef > 0 else -1)
    drivers["headcount"] = (lambda f: f == "employees", 1)
    distractors = {a: ((lambda s: lambda f: f == s or f.startswith(f"events_{s}_"))(_slug(a)), 0)
                   for a in (*world.DISTRACTORS, *world.COLLINEAR)}
    return _judge(found.found.best, found.found.adjusted, drivers, distractors)


def _print(name: str, result: dict) -> None:
    s = result["summary"]
    print(f"\n## {name}: drivers found in the scan {s['found_scan']}/{s['drivers']}, after "
          f"adjustment {s['found_adjusted']}/{s['drivers']}; distractors significant after "
          f"adjustment {s['distractors_significant']}/{s['distractors']}")
    for k, v in result["drivers"].items():
        a = v["adjusted"]
        print(f"  driver     {k:42s} scan q {_fmt(v['scan']['q'])}  adjusted q {_fmt(a['q'])}"
              f"  OR {_fmt(a['odds_ratio'])} {'+-'[a['sign'] < 0] if a['sign'] else ' '} "
              f"(row {a['feature']}, {a['members']} member(s))")
    for k, v in result["distractors"].items():
        a = v["adjusted"]
        print(f"  distractor {k:42s} adjusted q {_fmt(a['q'])}  OR {_fmt(a['odds_ratio'])}"
              f"  (row {a['feature']}, {a['members']} member(s))")


def _fmt(x) -> str:
    return "  -   " if x is None or x != x else f"{x:.3g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="*", default=[5, 6, 7])
    parser.add_argument("--accounts", type=int, default=20_000)
    parser.add_argument("--months", type=int, default=18)
    parser.add_argument("--no-world", action="store_true")
    parser.add_argument("--tag", default="after")
    args = parser.parse_args()
    path = RESULTS / "discovery_truth.json"
    saved = json.loads(path.read_text()) if path.exists() else {}
    run = saved.setdefault(args.tag, {})
    import pqlml

    code = Path(pqlml.__file__).resolve().parents[1]        # PYTHONPATH may point elsewhere
    run["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=code,
                                   capture_output=True, text=True).stdout.strip() or None
    run["pqlml_from"] = str(code)
    for seed in args.seeds:
        t0 = time.perf_counter()
        result = simulator(seed, args.accounts, args.months)
        result["seconds"] = round(time.perf_counter() - t0, 1)
        run[f"simulator_{args.accounts}_seed_{seed}"] = result
        _print(f"simulator, {args.accounts:,} accounts, seed {seed}", result)
        path.write_text(json.dumps(saved, indent=2, default=str) + "\n")
    if not args.no_world:
        t0 = time.perf_counter()
        result = second_world(2000, 12, 0)
        result["seconds"] = round(time.perf_counter() - t0, 1)
        run["second_world_2000_12_seed_0"] = result
        _print("second world, 2,000 orgs x 12 months, seed 0", result)
    RESULTS.mkdir(exist_ok=True)
    path.write_text(json.dumps(saved, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
