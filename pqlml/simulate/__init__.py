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
* ``truth/buyers.parquet`` — each account's buyer: ``buyer_user_id`` (a product user) or
  null (a person outside the product), ``buyer_in_product`` and its true probability
  (:mod:`pqlml.simulate._buyers`); outcomes carry the buyer's ``user_id`` where the buyer
  is a user, and outside buyers mostly appear in ``leads.parquet`` (marketing leads from
  the account's domain);
* ``truth/touches.parquet`` — for each eligible (account, as_of), its chance of converting
  with and without a sales touch, whether sales touched it and whether it was in the month's
  randomised experiment (:mod:`pqlml.simulate._touches`); the touches themselves are
  ``touches.parquet`` and the experiment's assignments ``holdouts.parquet``;
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
['accounts', 'dispositions', 'enrichment', 'enterprise_domains', 'events', 'holdouts', 'leads', 'outcomes', 'touches', 'users']
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
from ._buyers import draw_buyers
from ._company import domains, draw_company
from ._config_template import render
from ._feedback import simulate_dispositions
from ._outcomes import simulate_outcomes
from ._profiles import enrichment, enterprise_list
from ._touches import RANDOMISED_SHARE, TouchPolicy, TouchWorld
from ._write import CompanyWriter, write_drivers
from ..outputs import write_text

__all__ = ["simulate", "SimulationResult", "snapshot_dates", "chunk_sizes", "CHUNK_ACCOUNTS"]

FREE_MAIL_SHARE = 0.35   # solo free-mail sign-ups per account
#: Most accounts :func:`simulate` holds in memory at once (about 2.2 GB).
CHUNK_ACCOUNTS = 100_000


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
             progress: bool = False, chunk_accounts: int = CHUNK_ACCOUNTS,
             randomised_share: float = RANDOMISED_SHARE,
             touch_effect: bool = True) -> SimulationResult:
    """Simulate a product-led company and write its tables, truth and config.

    Parameters
    ----------
    n_accounts : int
        Number of company accounts (work-email domains). About 35% as many
        solo free-mail users are added; they never form an account.
    seed : int
        Seed of the random generators: same seed (and chunk size), same files.
    out : str or Path
        Folder to write into (created if missing).
    months : int, default 18
        Length of the event log, starting 2024-01-01.
    progress : bool
        Show a rich progress bar.
    chunk_accounts : int, default 100,000
        Most accounts simulated at once. A larger company is simulated in
        ``ceil(n_accounts / chunk_accounts)`` chunks of nearly equal size, each from its own
        random streams (``[seed, 2, k]`` and ``[seed, 3, k]`` for chunk ``k``), and
        written as it is done, so memory follows the chunk (about 2.2 GB at 100,000
        accounts) and not the company. A company of one chunk is drawn from ``seed`` alone,
        as before chunks existed. Accounts never interact, so a chunked company has the
        same distributions; its files differ from an unchunked draw of the same seed.
        Sales capacity (the outbound leads of the dispositions) is shared among the chunks
        in proportion to their size; the touches' capacity is a share of each chunk's
        eligible accounts.
    randomised_share : float, default 0.4
        Share of each month's touch capacity that is a randomised experiment: a random
        sample of the eligible accounts, half touched, half held out
        (:mod:`pqlml.simulate._touches`); 0 gives fully targeted touches, 1 only the
        experiment.
    touch_effect : bool, default True
        Whether a touch changes the odds of converting. With False, touches are drawn but act
        on nothing: events, outcomes and the truth are what they were before touches existed,
        and with ``randomised_share=0`` too (no holdouts, whom sales leaves alone) every
        table but the touches is. Touches draw from a stream of their own (``[seed, 6]``, or ``[seed, 7, k]``
        for chunk ``k``); an account whose conversion a touch changed draws its outcomes
        from it from then on, every other account keeps its outcomes and events.

    Returns
    -------
    SimulationResult
    """
    _check("n_accounts", n_accounts, 1)
    _check("seed", seed, 0)
    _check("months", months, 3)
    _check("chunk_accounts", chunk_accounts, 1)
    if isinstance(randomised_share, bool) or not isinstance(randomised_share, (int, float)) \
            or not 0 <= randomised_share <= 1:
        raise PqlmlError("The 'randomised_share' parameter of simulate must be a number "
                         f"between 0 and 1. Got {randomised_share!r} instead.")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    n_days = _n_days(months)
    dates = snapshot_dates(months)
    snapshot_days = [(d - P.START.date()).days for d in dates]
    sizes = chunk_sizes(n_accounts, chunk_accounts)
    k_chunks = len(sizes)
    with _progress(progress) as bar, CompanyWriter(out) as writer:
        weeks = bar(k_chunks * (n_days // 7), f"product activity (weeks x {k_chunks} chunks)"
                    if k_chunks > 1 else "product activity (weeks)")
        months_step = bar(k_chunks * len(snapshot_days), "outcomes (months)")
        step = bar(k_chunks + 1, "writing parquet")
        for k, n in enumerate(sizes):
            # sign-up answers, enrichment and sales feedback draw from their own stream: the
            # events and outcomes of a seed do not depend on them
            rng, profile_rng = (
                (np.random.default_rng(seed), np.random.default_rng([seed, 1])) if k_chunks == 1
                else (np.random.default_rng([seed, 2, k]), np.random.default_rng([seed, 3, k])))
            # who buys: a stream of its own, drawn after everything else of the chunk
            buyer_rng = np.random.default_rng([seed, 4] if k_chunks == 1 else [seed, 5, k])
            touch_rng = np.random.default_rng([seed, 6] if k_chunks == 1 else [seed, 7, k])
            first, first_user = writer.n_accounts, writer.n_users
            c = draw_company(rng, n, n_days)
            names = domains(n, rng, first)
            activity = simulate_activity(rng, c, n_days // 7, weeks)
            free = simulate_free_mail(rng, int(FREE_MAIL_SHARE * n), n_days, len(c.user_account))
            world = TouchWorld(TouchPolicy(touch_rng, float(randomised_share), bool(touch_effect)),
                               c, activity.signup_sec)
            outcomes = simulate_outcomes(rng, c, activity, snapshot_days, n_days, months_step,
                                         world)
            writer.add(rng, c, names, activity, free, outcomes, profile_rng)
            writer.add_profiles(enrichment(profile_rng, c, names, first),
                                enterprise_list(profile_rng, c, names, first))
            writer.add_leads(simulate_dispositions(profile_rng, c, outcomes, _capacity(n)), first)
            writer.add_touches(outcomes.touches, c.segment, first, randomised_share > 0)
            writer.add_buyers(draw_buyers(buyer_rng, c, activity, outcomes, snapshot_days, n_days,
                                          names), first, first_user)
            del c, names, activity, free, outcomes
            step()
        counts = writer.finish(n_days)
        write_drivers(out)
        step()
    config = out / "pqlml.toml"
    write_text(render(n_accounts, seed, dates[0], dates[-1], P.HORIZON_DAYS,
                      _capacity(n_accounts), holdouts=randomised_share > 0), config)
    return SimulationResult(out, config, counts, dates)


def chunk_sizes(n_accounts: int, chunk_accounts: int) -> list[int]:
    """Nearly equal chunks of at most ``chunk_accounts``.

    >>> chunk_sizes(250_000, 100_000)
    [83334, 83333, 83333]
    >>> chunk_sizes(500, 100_000)
    [500]
    """
    k = -(-n_accounts // chunk_accounts)
    return [n_accounts // k + (i < n_accounts % k) for i in range(k)]


def _capacity(n_accounts: int) -> int:
    """Leads sales can work a month: 1% of the accounts, at least 10."""
    return max(10, n_accounts // 100)


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
