"""``pqlml experiment plan`` and ``pqlml experiment analyze``: plan a randomised holdout,
and read one from the project's holdouts table."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


from ..errors import PqlmlError
from ._common import Result, Tracked, config_of, log_run, open_once, period, stage


@dataclass
class PlanResult(Result):
    plan: object                                   # pqlml.experiment.Plan
    sources: dict                                  # input -> where its value came from


@dataclass
class ExperimentResult(Tracked):
    experiment: object                             # pqlml.experiment.Experiment


def experiment_plan(source=None, out=None, *, effect: float, capacity: int | None = None,
                    base_rate: float | None = None, relative: bool = False,
                    periods: int | None = None, alpha: float | None = None,
                    power: float | None = None, status=None) -> PlanResult:
    """The holdout and periods a test needs (:func:`pqlml.experiment.plan`); ``plan.json``
    in folder ``out`` when given. Without ``capacity`` or ``base_rate`` the project's data
    (``source``, a config) gives them: the touches sales makes per period and the base
    conversion rate per as_of (:mod:`pqlml.experiment._defaults`); ``alpha`` and ``power``
    default to ``[experiment]``."""
    from ..experiment import plan
    from ..experiment._defaults import base_rate_of, capacity_of
    from ..outputs import check_folder, write_json

    config = None if source is None else config_of(source)
    if out is not None:
        check_folder(out, config=config, names=("plan.json",))
    sources = {"capacity": "--capacity", "base_rate": "--base-rate"}
    project = None
    if capacity is None or base_rate is None:
        if config is None:
            raise PqlmlError("experiment plan needs --capacity and --base-rate, or --config "
                             "to read them from the project's data.")
        project = open_once(source, config)
        with stage(status, "reading the base rate and the touches per period"):
            if capacity is None:
                capacity, sources["capacity"] = capacity_of(project)
            if base_rate is None:
                base_rate = base_rate_of(project)
                sources["base_rate"] = "the median conversion rate per as_of"
    settings = (config.experiment if config is not None else None)
    alpha = alpha if alpha is not None else (settings.alpha if settings else 0.05)
    power = power if power is not None else (settings.power if settings else 0.8)
    planned = plan(int(capacity), float(base_rate), effect, periods=periods, alpha=alpha,
                   power=power, relative=relative)
    written = []
    if out is not None:
        written.append(write_json(planned.as_dict() | {"sources": sources},
                                  Path(out) / "plan.json"))
    return PlanResult(project, planned, sources, written=written)


def experiment_analyze(source, out, *, experiment: str | None = None, outcome=None,
                       track: bool = True, status=None) -> ExperimentResult:
    """The randomised holdout's effects per segment and pooled, the arms' balance
    (:func:`pqlml.experiment.analyze`), written into folder ``out``; the MLflow run
    ``experiment <project> <first..last assignment day>`` (aggregates only) unless not
    ``track``."""
    from ..experiment import analyze
    from ..experiment._report import EXPERIMENT_FILES
    from ..outputs import check_folder

    config = config_of(source)
    check_folder(out, config=config, names=EXPERIMENT_FILES)
    project = open_once(source, config)
    with stage(status, "reading the assignments, their outcomes and features"):
        found = analyze(project, experiment=experiment, outcome=outcome)
    written = found.write(out)

    def log():
        _log(found, out)
    _, run_id, store = log_run(project, "experiment", log, enabled=track,
                               saved=f"The report was written to {out}.",
                               when=period(found.rows.day), context="evaluation")
    return ExperimentResult(project, found, run_id=run_id, store=store, written=written)


def _log(found, out) -> None:
    """Params, the pooled and per-segment figures (no account ids) and the folder."""
    import mlflow

    from ..track import _numbers

    s = found.summary
    mlflow.log_params({"experiments": ",".join(s["experiments"]), "outcome": s["outcome"],
                       "segment_by": s["segment_by"] or "-", "alpha": s["alpha"]})
    pooled = {k: v for k, v in s["pooled"].items() if k != "note"}
    pooled["effect_ci"] = [pooled.pop("ci_low"), pooled.pop("ci_high")]
    mlflow.log_metrics(_numbers(pooled, "pooled") | _numbers(s["left_out"], "left_out")
                       | _numbers(s["balance"], "balance"))
    for row in s["segments"]:
        block = {k: row[k] for k in ("effect", "n_touch", "n_holdout", "p_value")}
        block["effect_ci"] = [row["ci_low"], row["ci_high"]]
        mlflow.log_metrics(_numbers(block, f"segment_{row['segment']}"))
    mlflow.log_artifacts(str(out), "experiment")
