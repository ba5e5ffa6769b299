"""``pqlml demo``: the whole flow on a small simulated company, with a short report.

Stages are added here as they land: simulated company -> canonical tables ->
(features -> rules -> signals -> model -> tiers -> scores).
"""

from __future__ import annotations

import time
from pathlib import Path

__all__ = ["run_demo"]


def run_demo(out="demo-output", n_accounts: int = 2_000, seed: int = 0, console=None) -> dict:
    """Run every stage that exists on a simulated company; print and return a summary."""
    import ibis
    import pandas as pd
    from rich.console import Console
    from rich.table import Table

    from .config import load_config
    from .simulate import simulate
    from .sources import load_tables

    console = console or Console()
    t0 = time.perf_counter()
    out = Path(out)
    console.rule("[bold]pqlml demo")
    console.print(f"1. Simulating a product-led company: {n_accounts:,} accounts, seed {seed} -> {out}/")
    sim = simulate(n_accounts, seed, out, progress=True)
    config = load_config(sim.config)

    console.print(f"2. Loading the canonical tables named in {sim.config}")
    _, tables, report = load_tables(config.data)
    counts = {name: int(t.count().execute()) for name, t in tables.items()}
    grid = Table("table", "rows", title="canonical tables")
    for name, n in counts.items():
        grid.add_row(name, f"{n:,}")
    console.print(grid)
    console.print("   validation: " + ("; ".join(report.render()) if len(report) else "no findings"))

    o = tables["outcomes"]
    monthly = (o.mutate(month=o.ts.truncate("M").date())
                .group_by(["month", "outcome"]).aggregate(n=ibis._.count())
                .to_pandas().pivot(index="month", columns="outcome", values="n").fillna(0).astype(int))
    grid = Table("month", "hand-raises", "conversions", title="outcomes per month")
    for month, row in monthly.tail(6).iterrows():
        grid.add_row(str(month)[:7], f"{row.get('hand_raise', 0):,}", f"{row.get('conversion', 0):,}")
    console.print(grid)

    truth = pd.read_csv(out / "truth" / "drivers.csv")
    grid = Table("signal", "role", "transform", "effect on log-odds",
                 title="the simulator's truth (truth/drivers.csv)")
    for r in truth[truth.role != "intercept"].itertuples():
        grid.add_row(r.name, r.role, r.transform, f"{r.effect:+.2f}")
    console.print(grid)
    snaps = pd.read_parquet(out / "truth" / "snapshots.parquet", columns=["as_of", "p_convert"])
    console.print(f"   {len(snaps):,} eligible (account, as_of) snapshots over {snaps.as_of.nunique()} months; "
                  f"true conversion rate per month {snaps.p_convert.mean():.2%}")
    elapsed = time.perf_counter() - t0
    console.rule(f"demo finished in {elapsed:.1f} s")
    return {"counts": counts, "findings": len(report), "seconds": elapsed}
