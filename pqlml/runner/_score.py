"""The ``score`` command: a model's scores, tiers and reasons for every entity, into files
and/or tables of the configured database."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..errors import PqlmlError
from ._common import Result, config_of, open_once, stage


@dataclass
class ScoreResult(Result):
    scores: pd.DataFrame                             # best first, with tiers and reasons
    not_scored: pd.DataFrame                         # who was not scored, and why
    version: str                                     # the model's version (file@sha or name/n)
    tables: list[str] = field(default_factory=list)  # tables written into data.connection


def score(source, model, *, out=None, format="csv", to_table=None, as_of=None,
          status=None, batch_rows=None) -> ScoreResult:
    """Scores at ``as_of`` (default: the day after the last event) with ``model`` (a model
    file, or an MLflow URI such as ``models:/pqlml@champion``) (:meth:`pqlml.score.Scorer.
    score`): into the folder ``out`` as ``format`` (``csv``, ``parquet``, ``salesforce``,
    ``hubspot``: :meth:`pqlml.score.Scores.write`) with ``report.html``, and/or tables
    ``to_table`` and ``<to_table>_not_scored`` of ``data.connection``. ``batch_rows`` (default ``[model]
    score_batch_rows``): entities predicted and explained at a time. An account model's
    Tier 1 and 2 rows get whom to call (:func:`pqlml.buyers.with_contacts`). Every argument
    is checked, and the model loaded, before any work."""
    from ..crm import file_names
    from ..report import REPORT_NAME
    from ..outputs import FRAME_SUFFIXES, check_folder, check_replaceable, check_table, \
        write_tables
    from ..score import NOT_SCORED_COLUMNS, SCORE_COLUMNS, Scorer, default_as_of
    from ..snapshots import utc

    if not (out or to_table):
        raise PqlmlError("Say where the scores go: --out DIR (a folder) and/or --to-table NAME.")
    names = (*file_names(format), REPORT_NAME)
    if format != "csv" and not out:
        raise PqlmlError(f"--format {format} writes files: say where. Fix: add --out DIR.")
    config = config_of(source)
    if out:
        if Path(out).suffix.lower() in FRAME_SUFFIXES and not Path(out).exists():
            raise PqlmlError(f"--out {out} names a file, but score writes a folder ({', '.join(names)}"
                             f"). Fix: --out {Path(out).with_suffix('')} (created if missing).")
        check_folder(out, config=config, names=names)
    tables = {}
    if to_table:
        tables = {to_table: SCORE_COLUMNS, f"{to_table}_not_scored": NOT_SCORED_COLUMNS}
        check_table(to_table, config, companions=list(tables)[1:])
    from ..track import in_project
    with in_project(config):                 # an MLflow URI: the project's store
        scorer = Scorer.load(model)
    project = open_once(source, config)
    check_replaceable(project.con, tables)
    with stage(status, f"scoring with {scorer.version}"):
        as_of = utc(default_as_of(project) if as_of is None else as_of)
        entity = scorer.model.trained_on.get("entity", project.config.project.entity)
        X = project.features([as_of.date()], entity=entity)
        found = scorer.score(X, project=project, as_of=as_of, batch_rows=batch_rows)
    if entity == "account":
        from ..buyers import with_contacts
        with stage(status, "finding whom to call in the worked tiers"):
            found.scores = with_contacts(project, found.scores)
    if to_table:
        write_tables(project.con, dict(zip(tables, (found.scores, found.not_scored))))
    written = found.write(out, format, report=True) if out else []
    return ScoreResult(project, found.scores, found.not_scored, scorer.version, list(tables),
                       written=written)
