"""Small simulated companies as pandas frames, for tests that feed feature_table directly, and
the backtest of a simulated config as `pqlml backtest` runs it."""

from __future__ import annotations

import pandas as pd

from pqlml.identity import FREE_MAIL_DOMAINS
from pqlml.simulate import simulate


def simulated_frames(out, *, n_accounts: int, seed: int, months: int, cutoffs: list[str]) -> dict:
    """events, users (with is_free_mail), accounts and an (account_id, as_of) spine."""
    simulate(n_accounts=n_accounts, seed=seed, out=out, months=months)
    events = pd.read_parquet(out / "events.parquet")
    users = pd.read_parquet(out / "users.parquet")
    users["is_free_mail"] = users.email.str.split("@").str[1].isin(FREE_MAIL_DOMAINS)
    accounts = pd.read_parquet(out / "accounts.parquet")
    spine = accounts[["account_id", "created_at"]].merge(
        pd.DataFrame({"as_of": pd.to_datetime(cutoffs, utc=True)}), how="cross")
    spine = spine[spine.created_at < spine.as_of][["account_id", "as_of"]].reset_index(drop=True)
    return {"events": events, "users": users, "accounts": accounts, "spine": spine}


def with_features(config, block: str) -> None:
    """Replace the simulated config's ``[features...]`` sections with ``block`` (TOML)."""
    out, skip = [], False
    for line in config.read_text().splitlines():
        if line.startswith("["):
            skip = line.startswith("[features")
        if not skip:
            out.append(line)
    config.write_text("\n".join(out) + "\n\n" + block.strip() + "\n")


def second_world():
    """The second, independent world (``benchmarks/worlds/second_world.py``) as a module: it
    is a script beside the benchmarks, not a package, so it is loaded from its path (and
    registered, as dataclasses look their module up)."""
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "worlds" / "second_world.py"
    spec = importlib.util.spec_from_file_location("second_world", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["second_world"] = module
    spec.loader.exec_module(module)
    return module


def run_backtest(config, kind=None):
    """The backtest of a config's labelled snapshots, as ``pqlml backtest`` runs it."""
    from pqlml.backtest import backtest
    from pqlml.project import open_project

    project = open_project(config)
    outcome = project.config.outcomes.target
    return backtest(project.snapshots(outcome), outcome, kind, settings=project.config,
                    truth=project.truth(), attributes=project.with_attributes)
