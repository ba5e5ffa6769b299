"""The commands that read the data and describe it: ``validate``, ``features``, ``rules``,
``discover``, ``feedback`` and ``engagement-weights``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..errors import PqlmlError
from ._common import Result, config_of, open_once, stage

# what ``pqlml discover`` writes into its folder: the scan, then the tables
# :meth:`pqlml.discover.Discovery.write` puts beside it (and ``signals_plots/``)
DISCOVER_FILES = ("signals.csv", "signals.best.csv", "signals.adjusted.csv",
                  "signals.skipped.csv", "signals.adjacent.csv")


@dataclass
class ValidateResult(Result):
    """Rows per table (``project.report`` holds what validation found) and what later
    stages would refuse (``checks``; None when not asked for)."""

    counts: dict
    checks: object = None                             # pqlml.preflight.Preflight


@dataclass
class FeaturesResult(Result):
    frame: pd.DataFrame | None                        # one row per (entity, as_of); None:
    streamed: object = None                           # streamed to Parquet (pqlml.streamed.Streamed)


@dataclass
class RulesResult(Result):
    rates: pd.DataFrame                               # pqlml.rules.report's rates


@dataclass
class DiscoverResult(Result):
    found: object                                     # pqlml.discover.Discovery
    plots: Path                                       # the heatmaps' folder


@dataclass
class FeedbackResult(Result):
    feedback: object                                  # pqlml.feedback.Feedback
    plot: Path


@dataclass
class EngagementWeightsResult(Result):
    table: pd.DataFrame                               # one row per event; attrs: the fit
    toml: str                                         # the block to paste into the config


def validate(source, *, preflight: bool = True) -> ValidateResult:
    """Open the project (tables loaded and validated, identities resolved) and count each
    table's rows; with ``preflight``, also run the checks of what later stages would refuse
    (:func:`pqlml.preflight.preflight`; ``result.checks.raise_if_any()`` raises them)."""
    from ..preflight import preflight as later_stages

    project = open_once(source, config_of(source))
    counts = {name: int(table.count().execute()) for name, table in project.tables.items()}
    return ValidateResult(project, counts, later_stages(project) if preflight else None)


def features(source, out, *, as_of=None, entity=None, status=None,
             stream: bool | None = None) -> FeaturesResult:
    """Point-in-time features (:func:`pqlml.project.build_features`) written to ``out``
    (.csv or .parquet).

    ``stream``: True writes a Parquet ``out`` a batch at a time as the engine produces it
    (:func:`pqlml.streamed.write_features`: the table is never in memory, nor in the
    feature cache; ``result.frame`` is None); False builds the table in memory; None (the
    default) streams when ``out`` is Parquet and the table has more than
    :data:`~pqlml.streamed.STREAM_ROWS` rows."""
    from .. import project as projects
    from ..outputs import check_file, write_frame
    from ..streamed import write_features, worth_streaming

    config = config_of(source)
    check_file(out, config=config)
    parquet = Path(out).suffix.lower() in (".parquet", ".pq")
    if stream and not parquet:
        raise PqlmlError(f"Features are streamed to a Parquet file; --out {out} is not one. "
                         "Name a .parquet file, or build in memory (without --stream).")
    with stage(status, "loading and validating the tables"):
        project = open_once(source, config)
    if stream is None:
        stream = parquet and worth_streaming(project, as_of=as_of, entity=entity)
    if stream:
        with stage(status, f"building point-in-time features, streamed to {out}"):
            done = write_features(project, out, as_of=as_of, entity=entity)
        return FeaturesResult(project, None, done, written=[done.path])
    with stage(status, "building point-in-time features"):
        frame = projects.build_features(project, as_of=as_of, entity=entity)
    return FeaturesResult(project, frame, written=[write_frame(frame, out)])


def rules(source, out, *, as_of=None, status=None) -> RulesResult:
    """Today's rules, funnels and tiers and how each converts (:func:`pqlml.rules.report`),
    written into folder ``out``."""
    from ..outputs import check_folder
    from ..rules import REPORT_FILES, assign, report

    config = config_of(source)
    check_folder(out, config=config, names=REPORT_FILES)
    with stage(status, "rules, fit, funnels and tiers per snapshot, with their outcomes"):
        project = open_once(source, config)
        frame = project.with_attributes(project.features(as_of))
        tiers = assign(frame, settings=project.config, leads=project.leads())
        found = report(tiers, project.labels(as_of))
        written = found.write(out)
    return RulesResult(project, found.rates, written=written)


def discover(source, out, *, outcome=None, as_of=None, status=None) -> DiscoverResult:
    """Which signals separate the ``outcome`` (default: ``outcomes.target``)
    (:func:`pqlml.discover.discover`), written into folder ``out``: the scan
    ``signals.csv``, the ``signals.best``/``.adjusted``/``.skipped``/``.adjacent`` tables
    beside it, the heatmaps in ``signals_plots/`` and ``report.html`` (the page to share)."""
    from ..discover import discover as scan
    from ..outputs import check_folder
    from ..report import REPORT_NAME

    config = config_of(source)
    out = check_folder(out, config=config, names=(*DISCOVER_FILES, "signals_plots", REPORT_NAME))
    with stage(status, "scanning every feature against "
                       f"{outcome or config.outcomes.target}"):
        project = open_once(source, config)
        outcome = outcome or project.config.outcomes.target
        frame = project.snapshots(outcome, as_of=as_of)
        found = scan(frame, outcome, events=project.events,
                     outcomes=project.outcome_events(outcome), settings=project.config)
    with stage(status, "writing the tables and heatmaps"):
        plots = found.write(out / DISCOVER_FILES[0])
    return DiscoverResult(project, found, plots,
                          written=[out / n for n in (*DISCOVER_FILES, REPORT_NAME)])


def feedback(source, out, *, model=None, status=None) -> FeedbackResult:
    """How often sales accepts each rule, tier, funnel (and, with ``model``: a model file,
    an MLflow URI or a loaded model, each score band) (:func:`pqlml.feedback.acceptance`),
    written into folder ``out``."""
    from ..feedback import FEEDBACK_FILES, acceptance
    from ..outputs import check_folder

    config = config_of(source)
    check_folder(out, config=config, names=FEEDBACK_FILES)
    if isinstance(model, (str, Path)):
        from ..score import Scorer
        from ..track import in_project
        with in_project(config):             # an MLflow URI: the project's store
            model = Scorer.load(model).model
    with stage(status, "attaching dispositions to their snapshots"):
        project = open_once(source, config)
        found = acceptance(project.features(), project.tables.get("dispositions"),
                           settings=project.config, project=project, model=model)
    plot = found.write(out)
    return FeedbackResult(project, found, plot,
                          written=[Path(out) / name for name in FEEDBACK_FILES])


def engagement_weights(source, out, *, until=None, outcome=None,
                       status=None) -> EngagementWeightsResult:
    """Engagement weights from a logistic fit on decayed per-event counts
    (:func:`pqlml.engagement.fit_engagement_weights`), written to ``out`` (.csv)."""
    from ..engagement import (engagement_window, fit_engagement_weights, weighted_events,
                              weights_toml)
    from ..labels import check_outcome
    from ..outputs import check_file, write_frame
    from ..snapshots import schedule_dates

    config = config_of(source)
    check_file(out, config=config, suffixes=(".csv",))
    with stage(status, "fitting engagement weights"):
        project = open_once(source, config)
        cfg = project.config
        outcome = check_outcome(outcome or cfg.outcomes.target, project.tables)
        until, dates = engagement_window(schedule_dates(cfg.schedule), settings=cfg,
                                         until=until)
        events = weighted_events(project.event_names(max(dates)), settings=cfg)
        table = fit_engagement_weights(project.decayed_counts(dates, events), outcome,
                                       labels=project.labels(dates), events=events,
                                       until=until,
                                       half_life_days=cfg.features.engagement_half_life_days)
    return EngagementWeightsResult(project, table, weights_toml(table),
                                   written=[write_frame(table, out)])
