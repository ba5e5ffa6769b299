"""The commands that fit or evaluate a model: ``backtest``, ``train``, ``retrain`` and
``drift``. Each is tracked the same way (:func:`~pqlml.runner._common.log_run`: one MLflow run
in the project's store, named ``<command> <project> <as_of or period>``, tagged
``pqlml.command``, ``pqlml.kind`` and ``pqlml.version``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..errors import PqlmlError
from ..outputs import check_folder
from ._common import Tracked, config_of, log_run, open_once, period, stage


@dataclass
class BacktestResult(Tracked):
    metrics: dict                                    # what metrics.json holds
    rows: pd.DataFrame                               # the pooled test rows, every score
    buyers: dict | None = None                       # the buyer backtest's figures (buyers=True)


@dataclass
class TrainResult(Tracked):
    model: object                                    # pqlml.model.Model
    frame: pd.DataFrame                              # the labelled snapshots it was fitted on
    registered: tuple | None = None                  # (version, alias) in the registry


@dataclass
class RetrainResult(Tracked):
    decision: object                                 # pqlml.retrain.Decision
    registered: tuple | None = None                  # (version, alias) in the registry


@dataclass
class DriftResult(Tracked):
    table: pd.DataFrame                              # PSI per feature and of the score
    summary: dict                                    # what summary.json holds
    champion_version: int | None = None              # when the champion was compared


def backtest(source, out, *, kind=None, outcome=None, track: bool = True,
             progress=None, buyers: bool = False) -> BacktestResult:
    """Forward-in-time folds, the model against the rules at the same volume
    (:func:`pqlml.backtest.backtest`); the report in folder ``out``; the MLflow run
    ``backtest <project> <first..last fold>`` unless not ``track``. ``progress(i, n, as_of)`` is called per fold.
    With ``buyers``, the buyer backtest too (:func:`pqlml.runner.buyers`: who to call in each
    qualified account), its files in ``out`` and among the run's artifacts."""
    from .. import backtest as backtests
    from ..backtest import REPORT_FILES
    from ._buyers import BUYERS_FILES, write_buyers

    config = config_of(source)
    check_folder(out, config=config, names=REPORT_FILES + (BUYERS_FILES if buyers else ()))
    project = open_once(source, config)
    outcome = _outcome(project, outcome)
    # beyond [model] max_training_rows: a sample to fit on, the test cutoffs whole
    frame, sample = project.training_snapshots(outcome, whole=project.config.model.test_periods)
    found = backtests.backtest(frame, outcome, kind,
                               settings=project.config, truth=project.truth(),
                               attributes=project.with_attributes,
                               progress=progress)
    if sample is not None:
        found.metrics["sample"] = sample
    written = found.write(out)
    buyer_metrics = None
    if buyers:
        ev, files = write_buyers(project, Path(out))
        written, buyer_metrics = written + files, ev.metrics
    _, run_id, store = log_run(project, "backtest", found.log_to_mlflow, enabled=track,
                               saved=f"The report was written to {out}.",
                               when=period(found.rows.get("as_of", [])), kind=found.metrics.get("kind"),
                               frame=frame, context="evaluation")
    return BacktestResult(project, found.metrics, found.rows, buyer_metrics, run_id=run_id,
                          store=store, written=written)


def train(source, out="model.skops", *, kind=None, outcome=None, track: bool = True,
          status=None) -> TrainResult:
    """Fit the model on every labelled snapshot (``project.snapshots(outcome)``, by
    :func:`pqlml.model.train`; beyond ``[model] max_training_rows``, on a weighted sample of
    them, :meth:`pqlml.project.Project.training_snapshots`, recorded in the model's
    ``trained_on["sample"]`` and the run's params), with a touch's effect beside it when the
    project has touches (:func:`_scoring_uplift`), save it to ``out`` (.skops) and, unless
    not ``track``, log the MLflow run ``train <project> <training window>`` and register the
    model under ``model.registered_name`` (:func:`pqlml.registry.version_description`)."""
    from ..model import train as fit
    from ..outputs import check_file

    config = config_of(source)
    check_file(out, config=config, suffixes=(".skops",))
    project = open_once(source, config)
    with stage(status, "training on the labelled snapshots"):
        outcome = _outcome(project, outcome)
        frame, sample = project.training_snapshots(outcome)
        model = fit(frame, outcome, settings=project.config, kind=kind, sample=sample)
    with stage(status, "learning a touch's effect for the scores"):
        model.uplift, model.trained_on["uplift"] = _scoring_uplift(project, frame, outcome,
                                                                   model.features)
    model.save(out)

    def log():
        from ..registry import log_train, register, version_description
        return register(log_train(model, out, frame), project.config.model.registered_name,
                        description=version_description(model))
    registered, run_id, store = log_run(project, "train", log, enabled=track,
                                        saved=f"The model was saved to {out}; nothing was "
                                              "registered.", when=period(frame.as_of),
                                        kind=model.kind, frame=frame)
    return TrainResult(project, model, frame, registered, run_id=run_id, store=store,
                       written=[Path(out)])


def retrain(source, out="retrain", *, fit=None, progress=None) -> RetrainResult:
    """Train a challenger, compare it with the registered champion and decide
    (:func:`pqlml.retrain.retrain`); write ``out/decision.json`` and, when a challenger was
    trained, ``out/model.skops``; log the MLflow run ``retrain`` with the comparison and
    register the challenger (as ``champion`` if promoted), with a touch's effect beside it as
    ``train`` learns it (:func:`_scoring_uplift`). Always tracked: the decision is
    a change of the registry. A local store stays locked from reading the champion to
    registering (:func:`pqlml.track.writing`): a concurrent retrain waits, then compares
    with whatever this one registered. ``fit(frame, outcome) -> Model`` replaces the
    config's recipe; ``progress(i, n, as_of)`` is called per compared period."""
    from .. import retrain as retraining
    from ..registry import champion
    from ..track import in_project, tracking_errors, use_store, writing

    config = config_of(source)
    check_folder(out, config=config, names=retraining.RETRAIN_FILES)
    project = open_once(source, config)
    cfg = project.config
    with in_project(project), writing():
        outcome = _outcome(project, None)
        frame = project.snapshots(outcome)
        with tracking_errors("reading the champion"):
            use_store()
            current = champion(cfg.model.registered_name)
        decision = retraining.retrain(frame, outcome, settings=cfg, champion=current, fit=fit,
                                      progress=progress)
        if decision.model is not None and decision.model.uplift is None:
            decision.model.uplift, decision.model.trained_on["uplift"] = _scoring_uplift(
                project, frame, outcome, decision.model.features)
        written = decision.write(out)
        model = decision.model
        registered, run_id, store = log_run(project, "retrain",
                                            lambda: decision.log_to_mlflow(cfg),
                                            saved=f"The decision was written to {out}; "
                                                  "nothing was registered.",
                                            when=period(frame.as_of),
                                            kind=model.kind if model else cfg.model.kind,
                                            frame=frame)
    return RetrainResult(project, decision, registered, run_id=run_id, store=store,
                         written=written)


def drift(source, out="drift", *, model=None, as_of=None, track: bool = True,
          status=None) -> DriftResult:
    """Population stability (PSI) of the features and the score since the model's training
    window (:func:`pqlml.drift.drift`); ``model``: a model file or an MLflow URI such as
    ``models:/pqlml/3`` (default: the registered ``model.registered_name@champion``), loaded
    before any work, as :func:`score` and :func:`feedback` load theirs. Writes ``drift.csv``,
    ``summary.json`` and ``drift.png`` into folder ``out``; the MLflow run ``drift <project>
    <as_of>`` unless not ``track``."""
    from ..drift import DRIFT_FILES, plot_drift, training_window
    from ..drift import drift as psi_since_training
    from ..outputs import save_figure, write_frame, write_json

    config = config_of(source)
    check_folder(out, config=config, names=DRIFT_FILES)
    from ..track import in_project
    with in_project(config):                 # a registry URI: the project's store
        model, described, version = _model_for_drift(model, config)
    project = open_once(source, config)
    cfg = project.config
    entity = model.trained_on.get("entity", cfg.project.entity)     # the rows it scores
    schedule = project.dates()
    window = training_window(model, schedule)
    with stage(status, "building the reference and current snapshots"):
        reference = project.features(window, entity=entity)
        current = project.features(schedule[-1] if as_of is None else as_of, entity=entity)
        table, summary = psi_since_training(reference, current, model=model,
                                            settings=cfg.drift)
    summary["model"] = described
    out = Path(out)
    written = [write_frame(table, out / "drift.csv"), write_json(summary, out / "summary.json"),
               save_figure(plot_drift(table, threshold=cfg.drift.threshold,
                                      warn=cfg.drift.warn), out / "drift.png")]

    def log():
        from ..track import log_drift
        log_drift(table, summary, out)
    _, run_id, store = log_run(project, "drift", log, enabled=track,
                               saved=f"The table was written to {out}.",
                               when=summary["as_of"] or "", kind=model.kind, frame=current,
                               context="drift")
    return DriftResult(project, table, summary, version, run_id=run_id, store=store,
                       written=written)


def _scoring_uplift(project, frame, outcome: str, features: list):
    """(the uplift learner the model keeps or None, ``trained_on["uplift"]``): the
    ``[uplift] learner`` fitted on the training snapshots when ``[uplift] in_scores``, the
    project is of accounts, the outcome is conversion (what a touch's effect is on) and it
    has touches (:func:`pqlml.uplift._scoring.fit_for_scoring`); else None and why."""
    from ..uplift._scoring import fit_for_scoring

    cfg = project.config
    if not cfg.uplift.in_scores:
        return None, {"none": "[uplift] in_scores = false"}
    if cfg.project.entity != "account":
        return None, {"none": f"a touch's effect is learned on accounts; project.entity is "
                              f"{cfg.project.entity!r}"}
    if outcome != "conversion":
        return None, {"none": f"a touch's effect is learned on conversion; the outcome is "
                              f"{outcome!r}"}
    touches = project.touches()
    if touches is None:
        return None, {"none": "the project has no touches table ([data.touches])"}
    segments = project.with_attributes(frame[["account_id"]]).get("segment")
    return fit_for_scoring(frame, outcome, touches=touches, settings=cfg, features=features,
                           segments=None if segments is None else segments.to_numpy())


def _outcome(project, outcome) -> str:
    """``outcome`` (default: ``outcomes.target``), checked against the project's tables."""
    from ..labels import check_outcome

    return check_outcome(outcome or project.config.outcomes.target, project.tables)


def _model_for_drift(model, config):
    """(model, how it is described, champion version or None): ``model`` (a file or an
    MLflow URI, loaded by :meth:`pqlml.score.Scorer.load`), else the registered champion."""
    name = config.model.registered_name
    if model is not None:
        from ..score import Scorer
        loaded, text = Scorer.load(model), str(model)
        # a URI with the version it resolved to: models:/pqlml@champion (pqlml/3)
        plain = Path(text).is_file() or loaded.version in text
        return loaded.model, text if plain else f"{text} ({loaded.version})", None
    from ..registry import champion
    from ..track import tracking_errors, use_store

    with tracking_errors("reading the champion"):
        use_store(create=False)
        found = champion(name)
    if found is None:
        where = f" --config {config.path}" if config.path else ""
        raise PqlmlError(f"No model is registered as {name}@champion in the MLflow store. "
                         f"Fix: run `pqlml retrain{where}` (or `pqlml train`) first, or pass "
                         "--model FILE.")
    return found[1], f"models:/{name}@champion (version {found[0]})", found[0]
