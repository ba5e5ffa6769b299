"""Small simulated companies as pandas frames, for tests that feed feature_table directly, and
the backtest of a simulated config as `pqlml backtest` runs it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
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


def shared_company(base, *, n_accounts: int, seed: int, months: int = 18) -> Path:
    """The folder of a simulated company made once per test session and shared by every
    module (and both xdist workers) that asks for the same arguments: read it, never write
    into it (:func:`company_config` gives a test its own config over it).

    ``base`` is a folder all workers see (the ``shared_company`` fixture's); a file lock
    makes one worker simulate while the other waits, and the folder appears only when
    complete (simulated beside it, then renamed). The name holds the arguments and a hash
    of pqlml's code, so a changed simulator is a new company. The feature cache beside its
    ``pqlml.toml`` (``.pqlml-cache/``) is shared too, see :func:`company_config`.
    """
    import fcntl
    import shutil

    from pqlml.cache import _code

    base = Path(base)
    base.mkdir(parents=True, exist_ok=True)
    folder = base / f"sim-{n_accounts}-{seed}-{months}-{_code()[:12]}"
    with open(base / "companies.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not folder.is_dir():
            part = base / f"{folder.name}.part"
            shutil.rmtree(part, ignore_errors=True)
            simulate(n_accounts=n_accounts, seed=seed, out=part, months=months)
            part.rename(folder)
    return folder


def company_config(company, folder, extra: str = "", *, name: str = "pqlml.toml") -> Path:
    """A config of its own for a test, in ``folder``, over the shared ``company``'s data.

    It is the simulated ``pqlml.toml`` with ``root`` set to the company's folder and
    ``extra`` (TOML) appended; what commands write beside their config (the MLflow store,
    retrain outputs) goes to ``folder``. ``folder/.pqlml-cache`` is a link to the
    company's feature cache: the features a test builds from the same ``[data]`` and
    ``[features]`` sections and dates are built once per session (the cache's key is the
    definitions, the data's files and the dates, none of them the config's path; its
    writes are atomic). A test whose config changes ``[features]`` gets its own entries
    under other keys.
    """

    from pqlml.cache import CACHE_FOLDER

    company, folder = Path(company), Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    text = (company / "pqlml.toml").read_text()
    assert '\nroot = "."\n' in text
    text = text.replace('\nroot = "."\n', f'\nroot = "{company}"\n', 1)
    config = folder / name
    config.write_text(text + ("\n" + extra.strip() + "\n" if extra.strip() else ""))
    cache = folder / CACHE_FOLDER
    if not cache.exists():
        (company / CACHE_FOLDER).mkdir(exist_ok=True)
        cache.symlink_to(company / CACHE_FOLDER, target_is_directory=True)
    return config


def moving_company(out, *, seed: int, draws: int, every: int, move: pd.Timestamp) -> str:
    """A 40-account, 5-month company simulated into ``out`` with every ``every``-th work user
    moved to an older account at ``move`` (``memberships.parquet``) and an order total on
    40% of the events (random stream ``draws``); returns the text of a config reading both,
    with the total summed over 30 days of task creations (``task_orders_30d``)."""
    out = Path(out)
    simulate(n_accounts=40, seed=seed, out=out, months=5)
    ev = pd.read_parquet(out / "events.parquet")
    rng = np.random.default_rng(draws)
    total = np.round(rng.gamma(2.0, 40.0, len(ev)), 2)
    ev["order_total"] = np.where(rng.random(len(ev)) < 0.4, total, np.nan)
    ev.to_parquet(out / "events.parquet")
    users = pd.read_parquet(out / "users.parquet")
    accounts = pd.read_parquet(out / "accounts.parquet")
    movers = users[users.account_id.notna()].iloc[::every]
    old = accounts[accounts.created_at < move].account_id.sort_values().to_numpy()
    pd.DataFrame({"user_id": movers.user_id.to_numpy(),
                  "account_id": [old[(i * 7 + 3) % len(old)] for i in range(len(movers))],
                  "since": move}).to_parquet(out / "memberships.parquet")
    text = (out / "pqlml.toml").read_text().replace(
        '[data.events]\nsource = "events.parquet"\n',
        '[data.events]\nsource = "events.parquet"\n[data.events.columns]\n'
        'amount = "order_total"\n\n[data.memberships]\nsource = "memberships.parquet"\n')
    text += ('\n[features.sums.task_orders_30d]\nproperty = "amount"\nevents = ["task_created"]\n'
             'window_days = 30\n')
    assert "[data.memberships]" in text and 'amount = "order_total"' in text
    return text
