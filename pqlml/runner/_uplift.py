"""``uplift``: whom a call changes (:mod:`pqlml.uplift`), tracked like the backtest: one MLflow
run ``uplift <project> <first..last test as_of>`` (aggregates only)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..outputs import check_folder
from ._common import Tracked, config_of, log_run, open_once, period, stage

__all__ = ["UpliftResult", "uplift"]


@dataclass
class UpliftResult(Tracked):
    metrics: dict                                    # what metrics.json holds
    segments: pd.DataFrame                           # uplift_segments.csv
    rows: pd.DataFrame                               # the pooled test rows, every score


def touch_truth(config) -> pd.DataFrame | None:
    """The simulator's ``truth/touches.parquet`` beside the data (each eligible account's
    effect of a touch at each as_of), or None for data that is not simulated."""
    path = Path(config.data.root) / "truth" / "touches.parquet"
    if not path.exists():
        return None
    return pd.read_parquet(path, columns=["account_id", "as_of", "effect"])


def uplift(source, out, *, outcome=None, track: bool = True, progress=None,
           status=None) -> UpliftResult:
    """Learn a touch's effect forward in time and compare calling by uplift, by probability,
    by the rules and (simulated data) by the true effect at capacity
    (:func:`pqlml.uplift.uplift`); the report in folder ``out``; the MLflow run unless not
    ``track``. Segments without comparable touched and untouched accounts are named and not
    ranked; when none has them, a :class:`~pqlml.errors.PqlmlError` says so and how to fix it
    (a randomised holdout), before anything is written."""
    from ..uplift import UPLIFT_FILES
    from ..uplift import uplift as learn
    from ._models import _outcome

    config = config_of(source)
    check_folder(out, config=config, names=UPLIFT_FILES)
    project = open_once(source, config)
    outcome = _outcome(project, outcome)
    with stage(status, "building the labelled snapshots"):
        frame, sample = project.training_snapshots(outcome,
                                                   whole=project.config.model.test_periods)
        segments = project.with_attributes(frame[["account_id"]]).get("segment")
    found = learn(frame, outcome, touches=project.touches(), settings=project.config,
                  holdouts=project.holdouts(), truth=touch_truth(project.config),
                  segments=None if segments is None else segments.to_numpy(), progress=progress)
    if sample is not None:
        found.metrics["sample"] = sample
    written = found.write(out)
    _, run_id, store = log_run(project, "uplift", found.log_to_mlflow, enabled=track,
                               saved=f"The report was written to {out}.",
                               when=period(found.rows.as_of), kind=found.metrics["learner"],
                               frame=frame, context="evaluation")
    return UpliftResult(project, found.metrics, found.segments, found.rows, run_id=run_id,
                        store=store, written=written)
