"""A simulated product-led SaaS company that writes down its own truth.

:func:`simulate` draws accounts, users and a year and a half of product
events driven by a latent, time-varying buying intent, then draws hand-raises
and conversions from a *known* hazard of observable drivers. Beside the four
canonical tables it writes:

* ``truth/drivers.csv`` — every signal, its transform, its effect on the
  log-odds and whether it is a true driver, a distractor or outcome-adjacent;
* ``truth/snapshots.parquet`` — for each eligible (account, as_of) on the
  monthly schedule, the true ``p_convert`` and ``p_hand_raise`` and the raw
  signal values they were computed from;
* ``truth/dispositions.parquet`` — every lead sales worked: its route, rep and the
  true acceptance probability (:mod:`pqlml.simulate._feedback`);
* ``pqlml.toml`` — a ready config, so every later command runs on it.

Users carry sign-up answers; ``enrichment.csv`` (a vendor file with gaps),
``enterprise_domains.csv`` and ``dispositions.parquet`` (sales' verdicts) sit beside
the tables (:mod:`pqlml.simulate._profiles`).

Examples
--------
>>> import tempfile, pandas as pd
>>> from pqlml.simulate import simulate
>>> out = tempfile.mkdtemp()
>>> result = simulate(n_accounts=200, seed=7, out=out, months=6)
>>> sorted(result.counts)
['accounts', 'dispositions', 'enrichment', 'enterprise_domains', 'events', 'outcomes', 'users']
>>> truth = pd.read_parquet(f"{out}/truth/snapshots.parquet")
>>> bool(truth.p_convert.between(0, 1).all())
True
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import PqlmlError
from . import _params as P
from ._activity import simulate_activity, simulate_free_mail
from ._company import domains, draw_company
from ._config_template import render
from ._feedback import simulate_dispositions, write_dispositions
from ._outcomes import simulate_outcomes
from ._profiles import write_enrichment, write_enterprise_list
from ._write import write_tables, write_truth
from ..outputs import write_text

__all__ = ["simulate", "SimulationResult", "snapshot_dates"]

FREE_MAIL_SHARE = 0.35   # solo free-mail sign-ups per account


@dataclass(frozen=True)
class SimulationResult:
    """What :func:`simulate` wrote: the folder, the config and row counts."""

    out: Path
    config: Path
    counts: dict
    snapshots: tuple[dt.date, ...]


def snapshot_dates(months: int) -> tuple[dt.date, ...]:
    """Month starts after the first month whose label window fits in the data."""
    start = P.START.date()
    end = start + dt.timedelta(days=_n_days(months))
    dates, y, m = [], start.year, start.month
    while True:
        m += 1
        y, m = (y + 1, 1) if m == 13 else (y, m)
        d = dt.date(y, m, 1)
        if d + dt.timedelta(days=P.HORIZON_DAYS) > end:
            return tuple(dates)
        dates.append(d)


def _n_days(months: int) -> int:
    return int(round(months * 30.44 / 7)) * 7   # whole weeks


def _check(name, value, low):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise PqlmlError(f"The {name!r} parameter of simulate must be an integer >= {low}. "
                         f"Got {value!r} instead.")


def simulate(n_accounts: int = 2_000, seed: int = 0, out="simulated", *, months: int = 18,
             progress: bool = False) -> SimulationResult:
    """Simulate a product-led company and write its tables, truth and config.

    Parameters
    ----------
    n_accounts : int
        Number of company accounts (work-email domains). About 35% as many
        solo free-mail users are added; they never form an account.
    seed : int
        Seed of the only random generator used: same seed, same files.
    out : str or Path
        Folder to write into (created if missing).
    months : int, default 18
        Length of the event log, starting 2024-01-01.
    progress : bool
        Show a rich progress bar.

    Returns
    -------
    SimulationResult
    """
    _check("n_accounts", n_accounts, 1)
    _check("seed", seed, 0)
    _check("months", months, 3)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n_days = _n_days(months)
    dates = snapshot_dates(months)
    snapshot_days = [(d - P.START.date()).days for d in dates]
    with _progress(progress) as bar:
        c = draw_company(rng, n_accounts, n_days)
        names = domains(n_accounts, rng)
        step = bar(n_days // 7, "product activity (weeks)")
        activity = simulate_activity(rng, c, n_days // 7, step)
        free = simulate_free_mail(rng, int(FREE_MAIL_SHARE * n_accounts), n_days, len(c.user_account))
        step = bar(len(snapshot_days), "outcomes (months)")
        outcomes = simulate_outcomes(rng, c, activity, snapshot_days, n_days, step)
        step = bar(1, "writing parquet")
        # sign-up answers, enrichment and sales feedback draw from their own stream: the
        # events and outcomes of a seed do not depend on them
        profile_rng = np.random.default_rng([seed, 1])
        capacity = max(10, n_accounts // 100)
        counts = write_tables(out, rng, c, names, activity, free, outcomes, profile_rng)
        counts["enrichment"] = write_enrichment(out, profile_rng, c, names)
        counts["enterprise_domains"] = write_enterprise_list(out, profile_rng, c, names)
        counts["dispositions"] = write_dispositions(
            out, simulate_dispositions(profile_rng, c, outcomes, capacity))
        write_truth(out, outcomes, snapshot_days)
        step()
    config = out / "pqlml.toml"
    write_text(render(n_accounts, seed, dates[0], dates[-1], P.HORIZON_DAYS, capacity), config)
    return SimulationResult(out, config, counts, dates)


class _progress:
    """A rich progress bar, or nothing."""

    def __init__(self, show: bool):
        self.show = show
        self._bar = None

    def __enter__(self):
        if self.show:
            from rich.progress import Progress

            from ..terminal import columns
            self._bar = Progress(*columns(), transient=False)
            self._bar.__enter__()
        return self._add

    def _add(self, total, description):
        if self._bar is None:
            return lambda: None
        task = self._bar.add_task(description, total=total)
        return lambda: self._bar.advance(task)

    def __exit__(self, *exc):
        if self._bar is not None:
            self._bar.__exit__(*exc)
