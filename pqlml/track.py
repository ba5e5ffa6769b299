"""MLflow tracking for the commands that fit or evaluate a model (``backtest``, ``train``,
``retrain``, ``drift``): which data, definitions and settings produced a model, and how it
scored.

The store (:func:`tracking_uri`) is the config's ``[tracking] uri`` when set (a relative
``sqlite:///`` path is resolved against the config file's folder); else
``MLFLOW_TRACKING_URI`` when set (a real server); else the sqlite file ``mlflow.db`` beside
the config file, with artifacts in ``mlartifacts/`` beside it. So every command of a
project finds the same store from any working directory. A project without a config file
(settings passed to :func:`pqlml.open_project`) keeps its store in the working directory.
No server, no network (telemetry is switched off before MLflow is imported).

Each run is named ``<command> <project> <as_of or period>`` (:func:`run_name`), tagged
``pqlml.command``, ``pqlml.project``, ``pqlml.kind`` and ``pqlml.version``, and logs: the
config file (artifact ``config/pqlml.toml``) and its SHA-256, the feature definitions
and their SHA-256, a fingerprint of the input data (per table: rows, and for files their
SHA-256), the dataset it learned from or scored (``mlflow.log_input``: schema and row
count, the fingerprint's digest; no values), the snapshot range, then the stage's own
metrics and artifacts.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from .errors import PqlmlError, TrackingError

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# MLflow's INFO/WARNING chatter (pip inference, cloudpickle notes) drowns pqlml's own report.
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
# An unreachable server fails in seconds (MLflow's default retries for minutes).
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
# pqlml downloads two small files per model it loads: no progress bars on the terminal.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

__all__ = ["tracking_uri", "in_project", "run_name", "use_store", "writing", "tracked_run",
           "tracking_errors", "data_fingerprint", "definitions", "quality_metrics",
           "log_backtest", "log_retrain", "log_drift"]

DB, ARTIFACTS = "mlflow.db", "mlartifacts"
_ENV = "MLFLOW_TRACKING_URI"
#: The project whose store ``tracking_uri()`` means inside :func:`in_project`.
_PROJECT: ContextVar = ContextVar("pqlml_tracking_project", default=None)
_recent: list[str] = []          # the last project store use_store pointed at, this process


def tracking_uri(where=None) -> str:
    """The MLflow store of ``where``: a :class:`~pqlml.config.Config`, an open project or
    the path of a ``pqlml.toml``; a folder (a working directory); or None: the project of
    the enclosing :func:`in_project`, else the project store pqlml last used in this
    process (after ``runner.train(config)``, ``Scorer.load("models:/pqlml@champion")``
    finds that store), else the working directory.

    In order: the config's ``[tracking] uri`` (a relative ``sqlite:///`` path is resolved
    against the config file's folder); ``MLFLOW_TRACKING_URI``; ``sqlite:///<config
    folder>/mlflow.db`` for a config file; ``sqlite:///<folder>/mlflow.db`` otherwise.

    Examples
    --------
    >>> import os
    >>> from pathlib import Path
    >>> from pqlml.config import config_from_dict
    >>> env = os.environ.pop("MLFLOW_TRACKING_URI", None)
    >>> tracking_uri("/srv/proj")
    'sqlite:////srv/proj/mlflow.db'
    >>> cfg = config_from_dict({}, "/srv/proj", path=Path("/srv/proj/pqlml.toml"))
    >>> tracking_uri(cfg)
    'sqlite:////srv/proj/mlflow.db'
    >>> cfg = config_from_dict({"tracking": {"uri": "sqlite:///stores/runs.db"}}, "/srv/proj",
    ...                        path=Path("/srv/proj/pqlml.toml"))
    >>> tracking_uri(cfg)
    'sqlite:////srv/proj/stores/runs.db'
    >>> _ = env and os.environ.setdefault("MLFLOW_TRACKING_URI", env)
    """
    if where is None:
        where = _PROJECT.get()
    if where is None and _recent and not os.environ.get(_ENV):
        return _recent[-1]
    if isinstance(where, (str, Path)) and Path(where).suffix == ".toml":
        from .config import load_config
        where = load_config(where)
    config = None if where is None or isinstance(where, (str, Path)) else \
        getattr(where, "config", where)
    if config is not None and config.tracking.uri:
        return _resolved(config.tracking.uri, _home(config))
    if os.environ.get(_ENV):
        return os.environ[_ENV]
    folder = (_home(config) if config is not None and config.path is not None
              else where if isinstance(where, (str, Path)) else Path.cwd())
    return f"sqlite:///{Path(folder).resolve() / DB}"


def _home(config) -> Path:
    """The folder a config's relative store path starts at: its file's, else data.root."""
    return Path(config.path).resolve().parent if config.path is not None else config.data.root


def _resolved(uri: str, home: Path) -> str:
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri[len(prefix):].startswith("/") \
            and uri[len(prefix):].split("?")[0] not in ("", ":memory:"):
        return prefix + str((Path(home) / uri[len(prefix):]).resolve())
    return uri


@contextmanager
def in_project(where):
    """Within the block, ``tracking_uri()`` (and every store lookup without an explicit
    ``where``, e.g. loading ``models:/<name>@champion``) means ``where``'s store. Yields
    that URI."""
    token = _PROJECT.set(where)
    try:
        yield tracking_uri(where)
    finally:
        _PROJECT.reset(token)


def run_name(command: str, config, when: str = "") -> str:
    """``<command> <project> <as_of or period>``; the project is ``project.name``, or the
    config file's folder name when the name is left at its default.

    Examples
    --------
    >>> from pqlml.config import config_from_dict
    >>> run_name("drift", config_from_dict({"project": {"name": "acme"}}, "."), "2025-06-01")
    'drift acme 2025-06-01'
    """
    name = config.project.name
    if name == "pqlml" and config.path is not None:
        name = Path(config.path).resolve().parent.name or name
    return " ".join(part for part in (command, name, when) if part)


def use_store(where=None, *, create: bool = True) -> str:
    """Point MLflow at :func:`tracking_uri` (``where``) and return it. A local store is
    created (or checked) first, under its lock (:func:`pqlml.store.open_store`);
    ``create=False``, for commands that only read a model, refuses a store that does not
    exist. ``MLFLOW_TRACKING_URI`` is left as it was (MLflow exports the URI it is given:
    the next project's store would be this one)."""
    import mlflow

    from .store import open_store

    uri = tracking_uri(where)
    open_store(uri, create=create)
    if where is not None or _PROJECT.get() is not None:
        _recent[:] = [uri]
    before = os.environ.get(_ENV)
    mlflow.set_tracking_uri(uri)
    if before is None:
        os.environ.pop(_ENV, None)
    else:
        os.environ[_ENV] = before
    return uri


@contextmanager
def writing(where=None):
    """Hold the local store's lock (:func:`pqlml.store.store_lock`; none for a server)
    around a read-then-register sequence, so concurrent runs leave a consistent registry."""
    from .store import store_lock

    with store_lock(tracking_uri(where)):
        yield


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def data_fingerprint(project) -> dict:
    """Per configured table: its source, row count and, for files, their SHA-256."""
    out = {}
    for name, table in project.tables.items():
        data = project.config.data
        table_source = getattr(data, name)
        source = table_source.source if table_source is not None else data.export.source
        entry = {"source": source, "rows": int(table.count().execute())}
        files = sorted(Path(p) for p in _glob(project.config.resolve(source)))
        if files and not project.config.data.connection:
            entry["sha256"] = [_sha256(f) for f in files]
        out[name] = entry
    return out


def _glob(path: Path):
    import glob
    return glob.glob(str(path))


def definitions(config) -> dict:
    """The feature, label and rule definitions a model depends on."""
    f = config.features
    return {"windows": list(f.windows), "events": list(f.events), "buyer_titles": list(f.buyer_titles),
            "event_growth": f.event_growth, "active_users_events": list(f.active_users_events),
            "counts": {k: {"events": list(v.events), "window_days": v.window_days}
                       for k, v in f.counts.items()},
            "activation": list(f.activation), "activation_within_days": f.activation_within_days,
            "engagement_weights": dict(f.engagement_weights),
            "engagement_half_life_days": f.engagement_half_life_days,
            "horizon_days": config.labels.horizon_days, "target": config.outcomes.target,
            "rules": dict(config.rules), "intent_rule": config.tiers.intent_rule}


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


@contextmanager
def tracking_errors(what: str, saved: str = "", store: str | None = None):
    """Turn any MLflow or store failure into a :class:`~pqlml.errors.TrackingError` that
    names the store (``store``, default :func:`tracking_uri`), says what was already
    written locally (``saved``) and the fix."""
    try:
        yield
    except PqlmlError:
        raise
    except Exception as err:  # noqa: BLE001 - sqlite locks, HTTP errors, MLflow errors alike
        reason = " ".join(str(err).split())[:300]
        raise TrackingError(
            f"Tracking failed while {what} in the MLflow store {store or tracking_uri()} "
            f"({type(err).__name__}: {reason}).{(' ' + saved) if saved else ''} "
            f"{_advice(reason)}") from err


def _advice(reason: str) -> str:
    """The fix for a store failure; "rerun" only where rerunning can succeed."""
    text = reason.lower()
    if "locked" in text:
        return ("Fix: another process holds the store locked; wait for it to finish, then "
                "rerun (or pass --no-track).")
    if any(w in text for w in ("connection", "refused", "timed out", "timeout", "max retries",
                               "unreachable", "name or service", "http")):
        return ("Fix: check that the server is reachable (or unset MLFLOW_TRACKING_URI and "
                "[tracking] uri to use mlflow.db beside the config), then rerun; or pass "
                "--no-track.")
    return ("Fix: the store refused the write and a rerun would fail the same way; check the "
            "store (for a local mlflow.db: back it up, then move it aside so pqlml starts a "
            "new one), or pass --no-track.")


@contextmanager
def tracked_run(project, run_name: str, *, workdir: str | Path | None = None,
                tags: dict | None = None, frame=None, context: str = "training"):
    """An MLflow run named ``run_name`` in the project's experiment (``project.name``) of
    the project's store (:func:`tracking_uri`; ``workdir``: the store in that folder
    instead), with the config, definitions, data fingerprint, schedule and ``tags``
    logged, and ``frame`` (the rows fitted or scored) as the run's input dataset with
    ``context``; yields the active run. A local store's lock is held throughout
    (:func:`writing`)."""
    where = project if workdir is None else Path(workdir)
    with writing(where):
        uri = use_store(where)
        with _run(project, run_name, uri, tags or {}, frame, context) as run:
            yield run


@contextmanager
def _run(project, run_name: str, uri: str, tags: dict, frame, context: str):
    import mlflow

    from .store import local_db

    name = project.config.project.name
    exp = mlflow.get_experiment_by_name(name)
    if exp is None:
        db = local_db(uri)
        location = None if db is None else (db.resolve().parent / ARTIFACTS / name).as_uri()
        exp_id = mlflow.create_experiment(name, artifact_location=location)
    else:
        exp_id = exp.experiment_id
    cfg = project.config
    defs = definitions(cfg)
    fingerprint = data_fingerprint(project)
    with mlflow.start_run(experiment_id=exp_id, run_name=run_name) as run:
        config_text = Path(cfg.path).read_text() if cfg.path else repr(cfg)
        mlflow.set_tags(tags)
        mlflow.log_params({
            "config_sha256": hashlib.sha256(config_text.encode()).hexdigest(),
            "definitions_sha256": _digest(defs), "data_sha256": _digest(fingerprint),
            "entity": cfg.project.entity, "outcome": cfg.outcomes.target,
            "horizon_days": cfg.labels.horizon_days,
            "schedule": f"{cfg.schedule.start}..{cfg.schedule.end} every {cfg.schedule.every}",
            "data_start": str(project.data_start), "data_end": str(project.data_end)})
        mlflow.log_text(config_text, "config/pqlml.toml")
        mlflow.log_dict(defs, "config/definitions.json")
        mlflow.log_dict(fingerprint, "data/fingerprint.json")
        if frame is not None:
            _log_dataset(frame, fingerprint, cfg, context)
        yield run


def _log_dataset(frame, fingerprint: dict, config, context: str) -> None:
    """``frame`` as the run's input: its schema and row count only (MLflow's dataset
    records no values), named after the project and entity, its digest the data
    fingerprint's (the same input data gives the same digest in every run)."""
    import mlflow

    source = str(config.path) if config.path is not None else "pqlml settings"
    with warnings.catch_warnings():
        # a path is a "local artifact" source for two of MLflow's resolvers: same meaning
        warnings.filterwarnings("ignore", message="The specified dataset source can be")
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        dataset = mlflow.data.from_pandas(
            frame, source=source, digest=_digest(fingerprint)[:32],
            name=f"{config.project.name} {config.project.entity} snapshots")
        mlflow.log_input(dataset, context=context)        # the schema is inferred here


def _numbers(block: dict, prefix: str = "") -> dict:
    """The finite numbers of ``block``, ``<prefix>_`` before each name; a CI ``<k>_ci``
    (``[low, high]``) becomes ``<k>_ci_low`` and ``<k>_ci_high``.

    Examples
    --------
    >>> _numbers({"roc_auc": 0.8, "roc_auc_ci": [0.7, 0.9], "kind": "x", "ece": float("nan")})
    {'roc_auc': 0.8, 'roc_auc_ci_low': 0.7, 'roc_auc_ci_high': 0.9}
    """
    out = {}
    for k, v in block.items():
        if k.endswith("_ci") and isinstance(v, (list, tuple)) and len(v) == 2:
            out |= {f"{k}_low": v[0], f"{k}_high": v[1]}
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[k] = v
    head = f"{prefix}_" if prefix else ""
    return {head + k: float(v) for k, v in out.items()
            if isinstance(v, (int, float)) and v == v and abs(v) != float("inf")}


#: The quality figures every run that evaluates a model logs under these names.
QUALITY = ("roc_auc", "pr_auc", "brier", "ece")


def quality_metrics(block: dict) -> dict:
    """``roc_auc``, ``pr_auc``, ``brier``, ``ece`` and their ``*_ci_low``/``*_ci_high`` from
    a block of figures (a backtest's ``metrics["model"]``, a retrain's
    ``decision.quality``): the names every evaluating run logs, so runs compare."""
    return _numbers({k: v for k, v in block.items()
                     if k in QUALITY or k.removesuffix("_ci") in QUALITY})


def log_backtest(metrics: dict, out: str | Path) -> None:
    """The model's quality with CIs (:func:`quality_metrics`), the pooled figures of every
    ranking (``model_roc_auc``, ``rules_converters_captured``, ... and their CIs), the same
    per fold as steps, and the report folder as artifacts."""
    import mlflow

    names = [n for n in ("model", "rules", "best_single_rule", "activation_engagement", "oracle") if n in metrics]
    mlflow.log_params({"kind": metrics["kind"], "folds": len(metrics["folds"]),
                       "rule": metrics["intent_rule"], "tier_method": metrics["tier_method"]})
    if metrics.get("sample"):          # folds fitted on a weighted sample: what it kept
        mlflow.log_params({f"sample_{k}": v for k, v in metrics["sample"].items()})
    if "model" in metrics:
        mlflow.log_metrics(quality_metrics(metrics["model"]))
    for n in names:
        mlflow.log_metrics(_numbers(metrics[n], n))
    for fold in metrics["folds"]:
        for n in names:
            mlflow.log_metrics(_numbers(fold[n], f"fold_{n}"), step=fold["fold"])
    mlflow.log_artifacts(str(out), "backtest")


def log_retrain(decision, config, path: str | Path, out: str | Path):
    """The comparison and the decision (params, metrics, a tag and ``retrain/decision.json``),
    the challenger's forward-in-time quality with CIs (:func:`quality_metrics` of
    ``decision.quality``); then, when a challenger was trained, its pyfunc, registered as
    ``champion`` if promoted (the replaced champion keeps the alias ``previous``, for
    rollback) or ``challenger``, with :func:`version_description`. Returns (version,
    alias) or None."""
    import math

    import mlflow
    from mlflow.tracking import MlflowClient

    r = config.retrain
    mlflow.log_params({"retrain_metric": r.metric, "retrain_margin": r.margin,
                       "retrain_periods": ",".join(decision.periods) or "-",
                       "decision": decision.action,
                       "champion_version": decision.champion_version or "none"})
    mlflow.set_tag("pqlml.decision", decision.action)
    values = {f"challenger_{r.metric}": decision.challenger, f"champion_{r.metric}": decision.champion}
    mlflow.log_metrics({k: float(v) for k, v in values.items() if math.isfinite(v)})
    mlflow.log_metrics(quality_metrics(decision.quality))
    mlflow.log_dict(decision.as_dict(), "retrain/decision.json")
    from .registry import log_train, register, version_description

    if decision.model is None:
        return None
    uri = log_train(decision.model, path, decision.frame)
    name = config.model.registered_name
    version, alias = register(uri, name, "champion" if decision.promoted else "challenger",
                              description=version_description(decision.model))
    if decision.action == "promoted" and decision.champion_version is not None:
        MlflowClient().set_registered_model_alias(name, "previous", decision.champion_version)
    return version, alias


def log_drift(table, summary: dict, out: str | Path) -> None:
    """A few summary metrics (``psi_score``, ``max_psi`` of the features, ``n_features``,
    ``n_features_drifted``, ``n_features_moderate``, ``share_drifted``), the reference
    window and current as_of as params, the per-feature PSI table as an MLflow table
    (``drift/psi_table.json``) and the written files as artifacts; no metric per feature."""
    import mlflow

    features = table[table.feature != "score"]
    mlflow.log_params({"drift_as_of": summary["as_of"],
                       "drift_reference": "..".join(summary["reference"]),
                       "drift_threshold": summary["threshold"], "drift_model": summary["model"]})
    n = len(features)
    mlflow.log_metrics({"psi_score": summary["psi_score"],
                        "max_psi": float(features.psi.max()) if n else 0.0,
                        "n_features": n,
                        "n_features_drifted": summary["features_flagged"],
                        "n_features_moderate": summary["features_moderate"],
                        "share_drifted": summary["features_flagged"] / n if n else 0.0})
    with warnings.catch_warnings():      # MLflow's own use of pandas' select_dtypes
        warnings.filterwarnings("ignore", message="For backward compatibility, 'str' dtypes")
        mlflow.log_table(table, "drift/psi_table.json")
    mlflow.log_artifacts(str(out), "drift")


#: What moved to :mod:`pqlml.registry` (the model in the store), still importable from here.
_REGISTRY = ("log_train", "version_description", "register", "champion", "champion_version",
             "load_logged_model")


def __getattr__(name: str):
    if name in _REGISTRY:
        from . import registry
        return getattr(registry, name)
    raise AttributeError(f"module 'pqlml.track' has no attribute {name!r}")
