"""Signal discovery: which product signals separate hand-raisers and converters.

:func:`discover` takes labelled (entity, as_of) snapshots (``project.snapshots(outcome)``),
scans every feature as "did X at least n times within d days" (:mod:`._scan`), marks
outcome-adjacent events (:mod:`._adjacent`, from the project's events and the outcomes
they precede), picks each signal's best rule (highest |phi| among significant cells; the
rule string goes straight into ``[rules]``) and fits the adjusted model (:mod:`._adjust`)
on every significant, non-adjacent signal's best feature plus company size and activity:
transforms chosen by the data, collinear signals grouped and reported together, categories
tested as a whole, and for each signal that vanishes the signal that absorbs it.

Examples
--------
>>> import tempfile
>>> from pqlml import runner
>>> from pqlml.simulate import simulate
>>> sim = simulate(n_accounts=600, seed=3, out=tempfile.mkdtemp(), months=8)
>>> project = runner.validate(sim.config, preflight=False).project    # opened once
>>> d = discover(project.snapshots("conversion"), "conversion", events=project.events,
...              outcomes=project.outcome_events("conversion"), settings=project.config)
>>> list(d.best.columns[:3])
['signal', 'feature', 'rule']
>>> bool(d.best.q_value.iloc[0] <= 0.05)
True
>>> list(d.adjusted.columns[:4])
['feature', 'group', 'members', 'transform']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import ibis
import pandas as pd

from ..config import Config
from ..errors import PqlmlError
from ..model import feature_columns
from ..schema import entity_key
from ..features._names import event_family
from ._adjacent import adjacent_events
from ._adjust import adjust
from ._groups import choose_transforms, collinear_groups
from ._infer import adjusted_effects, design, side_by_side
from ._report import discovery_page, top_table
from ._plots import MIN_CELL_SUPPORT, heatmap, lift_scale, top_signals_chart
from ._scan import candidates, scan
from ..outputs import check_file, save_figure, write_frames
from ..report import REPORT_NAME

__all__ = ["Discovery", "discover", "adjust", "adjusted_effects", "side_by_side", "design",
           "choose_transforms", "collinear_groups", "scan", "candidates", "adjacent_events",
           "heatmap", "top_signals_chart", "lift_scale", "MIN_CELL_SUPPORT", "discovery_page",
           "top_table"]

_SIZE = ("employees", "active_users_30d", "events_30d")


@dataclass
class Discovery:
    """Everything one discovery run found; :meth:`write` saves it."""

    outcome: str
    signals: pd.DataFrame            # every rule scanned
    best: pd.DataFrame               # the best rule per signal, ranked
    skipped: pd.DataFrame            # features not scanned, with the reason
    adjacent: pd.DataFrame           # per event: near / earlier outcomes, adjacent, reason
    adjusted: pd.DataFrame           # alone vs adjusted, per group; absorbed_by when it vanishes
    notes: list[str] = field(default_factory=list)
    rows: int = 0
    positives: int = 0

    def write(self, out: str | Path, *, alpha: float = 0.05) -> Path:
        """``out`` (a .csv or .parquet path) gets the scan; beside it ``<stem>.best.csv``,
        ``.adjusted.csv``, ``.skipped.csv``, ``.adjacent.csv``, ``<stem>_plots/`` (a
        heatmap per event signal and ``top_signals.png``) and ``report.html`` (the page:
        :func:`discovery_page`)."""
        out = check_file(out, option="The discover output")
        stem = out.with_suffix("")
        write_frames({out: self.signals} | {Path(f"{stem}.{name}.csv"): getattr(self, name)
                                            for name in ("best", "adjusted", "skipped", "adjacent")})
        plots = Path(f"{stem}_plots")
        plots.mkdir(exist_ok=True)
        for signal, rows in self.signals[self.signals.days.notna()].groupby("signal"):
            save_figure(heatmap(rows, outcome=self.outcome, alpha=alpha), plots / f"{signal}.png")
        save_figure(top_signals_chart(self.best, outcome=self.outcome), plots / "top_signals.png")
        discovery_page(self, alpha=alpha).write(out.parent / REPORT_NAME)
        return plots


def discover(frame: pd.DataFrame, outcome: str, *, events: ibis.Table, outcomes: ibis.Table,
             settings: Config = Config(), features=None, controls=_SIZE,
             group_correlation: float = 0.8) -> Discovery:
    """Scan, mark adjacency, rank, and adjust.

    Parameters
    ----------
    frame : DataFrame
        Labelled snapshots, one row per (entity, as_of) with its features and ``outcome``
        (0/1): :meth:`Project.snapshots(outcome) <pqlml.project.Project.snapshots>`.
    outcome : str
        The label column: ``hand_raise``, ``conversion`` or ``accepted``.
    events, outcomes : ibis.Table
        The product events (``account_id``, ``ts``, ``event``: ``project.events``) and the
        outcomes they may lead to (``account_id``, ``ts``, ``outcome``:
        ``project.outcome_events(outcome)``), for the adjacency check.
    settings : Config
        The project's config (``project.config``): ``[discover]`` (the rule grids,
        ``min_positives``, ``alpha``, adjacency), ``[features] windows`` (an event's volumes
        are "at least n times within d days" rules when it has every window), the events
        that define the outcome and ``discover.adjacent_events`` (marked adjacent), and the
        entity, whose key the adjusted model clusters its errors by (the snapshots of one
        entity are not independent).
    features : list of str, optional
        The adjusted model's features (default: each significant non-adjacent signal's
        best feature, and every level of a category one of whose levels is significant);
        ``controls`` are always in it (company size, active users and activity, when
        present).
    group_correlation : float
        Features whose |Spearman rho| with each other is at least this are one group in the
        adjusted model (:mod:`._groups`).
    """
    cfg = settings.discover
    windows = settings.features.windows
    frame = frame.assign(**{outcome: frame[outcome].astype(bool)})
    feats = feature_columns(frame)
    positives = int(frame[outcome].sum())
    if positives < cfg.min_positives:
        raise PqlmlError(f"Only {positives:,} of {len(frame):,} labelled snapshots have "
                         f"{outcome} = true, fewer than discover.min_positives = "
                         f"{cfg.min_positives}: too few to tell signals from noise. Fix: "
                         f"widen the schedule, use the other outcome, or lower min_positives.")
    cands, skipped = candidates(frame, feats, cfg.counts, cfg.quantiles, windows)
    signals = scan(frame, outcome, cands)
    declared = set(cfg.adjacent_events) | set(settings.outcomes.events_of(outcome))
    adj = adjacent_events(events, outcomes, outcome, gap_days=cfg.adjacent_gap_days,
                          ratio=cfg.adjacent_ratio, declared=sorted(declared))
    adjacent = set(adj.event[adj.adjacent])
    event = signals.feature.map(lambda f: (event_family(f, feats) or (None,))[0])
    signals["adjacent"] = signals.signal.isin(adjacent) | event.isin(adjacent)
    signals = signals.sort_values(["q_value", "phi"], ascending=[True, False],
                                  ignore_index=True)
    best = _best(signals, cfg.alpha)
    if features is None:       # every signal: significant, not adjacent, one feature each
        features = list(best.feature[(best.q_value <= cfg.alpha) & ~best.adjacent])
        features += _levels(frame, feats, features)
    side, notes = adjust(frame, outcome, features, controls=controls, alpha=cfg.alpha,
                         cluster=entity_key(settings.project.entity),
                         threshold=group_correlation)
    return Discovery(outcome, signals, best, skipped, adj, side, notes, len(frame), positives)


def _levels(frame: pd.DataFrame, feats, chosen) -> list[str]:
    """The other levels of every category one of whose one-hot levels is ``chosen``: a
    category is tested as a whole (a level against the rest can hide behind a stronger
    level in the rest, as fintech behind software)."""
    from ._groups import categories

    return [f for levels in categories(frame, feats).values() if set(levels) & set(chosen)
            for f in levels if f not in chosen]


def _best(signals: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Per signal, its highest-|phi| significant rule (else its lowest-q one), ranked by
    phi (a signal that lowers the outcome keeps its strongest rule, ranked last)."""
    sig = signals.assign(_ok=signals.q_value <= alpha, _strength=signals.phi.abs())
    sig = sig.sort_values(["signal", "_ok", "_strength"], ascending=[True, False, False])
    best = sig.groupby("signal", sort=False).head(1).drop(columns=["_ok", "_strength"])
    return best.sort_values(["adjacent", "phi"], ascending=[True, False], ignore_index=True)
