"""MLflow tracking for ``train`` and ``backtest`` runs: which data, definitions and settings
produced a model, and how it scored.

The store is ``MLFLOW_TRACKING_URI`` when set (a real server), else a sqlite file
``mlflow.db`` with artifacts in ``mlartifacts/``, both in the working directory: no
server, no network (telemetry is switched off before MLflow is imported).

Each run logs: the config file and its SHA-256, the feature definitions (windows,
event vocabulary setting, custom counts, buyer titles) and their SHA-256, a
fingerprint of the input data (per table: rows, and for files their SHA-256), the
snapshot range, the metrics (pooled, and per fold as steps) and the artifacts.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import warnings
from contextlib import contextmanager
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

__all__ = ["tracking_uri", "tracked_run", "tracking_errors", "data_fingerprint", "definitions",
           "log_backtest", "log_train", "log_retrain", "log_drift", "register", "champion",
           "champion_version", "use_store", "load_logged_model", "writing"]

DB, ARTIFACTS = "mlflow.db", "mlartifacts"


def tracking_uri(workdir: str | Path | None = None) -> str:
    """``MLFLOW_TRACKING_URI``, else ``sqlite:///<workdir>/mlflow.db``."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    return uri or f"sqlite:///{Path(workdir or Path.cwd()).resolve() / DB}"


def use_store(workdir: str | Path | None = None, *, create: bool = True) -> str:
    """Point MLflow at :func:`tracking_uri` and return it. A local store is created (or
    checked) first, under its lock (:func:`pqlml.store.open_store`); ``create=False``, for
    commands that only read a model, refuses a store that does not exist."""
    import mlflow

    from .store import open_store

    uri = tracking_uri(workdir)
    open_store(uri, create=create)
    mlflow.set_tracking_uri(uri)
    return uri


@contextmanager
def writing(workdir: str | Path | None = None):
    """Hold the local store's lock (:func:`pqlml.store.store_lock`; none for a server)
    around a read-then-register sequence, so concurrent runs leave a consistent registry."""
    from .store import store_lock

    with store_lock(tracking_uri(workdir)):
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
def tracking_errors(what: str, saved: str = ""):
    """Turn any MLflow or store failure into a :class:`~pqlml.errors.TrackingError` that
    names the store, says what was already written locally (``saved``) and the fix."""
    try:
        yield
    except PqlmlError:
        raise
    except Exception as err:  # noqa: BLE001 - sqlite locks, HTTP errors, MLflow errors alike
        reason = " ".join(str(err).split())[:300]
        raise TrackingError(
            f"Tracking failed while {what} in the MLflow store {tracking_uri()} "
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
        return ("Fix: check that the server is reachable (or unset MLFLOW_TRACKING_URI to use "
                "./mlflow.db), then rerun; or pass --no-track.")
    return ("Fix: the store refused the write and a rerun would fail the same way; check the "
            "store (for ./mlflow.db: back it up, then move it aside so pqlml starts a new one), "
            "or pass --no-track.")


@contextmanager
def tracked_run(project, run_name: str, *, workdir: str | Path | None = None):
    """An MLflow run in the project's experiment (``project.name``), with the config,
    definitions, data fingerprint and schedule logged; yields the active run. A local
    store's lock is held throughout (:func:`writing`)."""
    workdir = Path(workdir or Path.cwd())
    server = os.environ.get("MLFLOW_TRACKING_URI")   # read first: set_tracking_uri exports it
    with writing(workdir):
        use_store(workdir)
        with _run(project, run_name, workdir, server) as run:
            yield run


@contextmanager
def _run(project, run_name: str, workdir: Path, server):
    import mlflow

    name = project.config.project.name
    exp = mlflow.get_experiment_by_name(name)
    if exp is None:
        location = None if server else (workdir.resolve() / ARTIFACTS / name).as_uri()
        exp_id = mlflow.create_experiment(name, artifact_location=location)
    else:
        exp_id = exp.experiment_id
    cfg = project.config
    defs = definitions(cfg)
    fingerprint = data_fingerprint(project)
    with mlflow.start_run(experiment_id=exp_id, run_name=run_name) as run:
        config_text = Path(cfg.path).read_text() if cfg.path else repr(cfg)
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
        yield run


def _numbers(block: dict, prefix: str) -> dict:
    return {f"{prefix}_{k}": float(v) for k, v in block.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and v == v}


def log_backtest(metrics: dict, out: str | Path) -> None:
    """Pooled figures (``model_roc_auc``, ``rules_converters_captured``, ...), the same per
    fold as steps, the CIs as params, and the report folder as artifacts."""
    import mlflow

    names = [n for n in ("model", "rules", "best_single_rule", "activation_engagement", "oracle") if n in metrics]
    mlflow.log_params({"kind": metrics["kind"], "folds": len(metrics["folds"]),
                       "rule": metrics["intent_rule"], "tier_method": metrics["tier_method"]})
    for n in names:
        mlflow.log_metrics(_numbers(metrics[n], n))
    for fold in metrics["folds"]:
        for n in names:
            mlflow.log_metrics(_numbers(fold[n], f"fold_{n}"), step=fold["fold"])
    mlflow.log_artifacts(str(out), "backtest")


def _requirements() -> list[str]:
    """Explicit pins of what the pyfunc needs at load time (MLflow's own inference is slow
    and lists unrelated packages). pqlml itself must be installed where the model is served."""
    from importlib.metadata import version
    return ["pqlml"] + [f"{p}=={version(p)}" for p in
                        ("scikit-learn", "skops", "pandas", "numpy", "scipy", "mlflow-skinny")]


def log_train(model, path: str | Path, example) -> str:
    """The model's kind, features and training window; the model file; the model as an
    MLflow pyfunc with a signature and pinned requirements, and in the same MLflow model
    the sklearn flavour of its LeadClassifier (``mlflow.sklearn.load_model(uri)``; MLflow
    asks ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION=true`` even for its skops format). Returns
    the model's URI."""
    import mlflow
    from mlflow.models import infer_signature

    mlflow.log_params({"kind": model.kind, "features": len(model.features),
                       "as_of_first": model.trained_on["as_of_first"],
                       "as_of_last": model.trained_on["as_of_last"]})
    mlflow.log_metrics({"train_rows": model.trained_on["rows"],
                        "train_positives": model.trained_on["positives"]})
    mlflow.log_dict({"features": model.features}, "model/features.json")
    mlflow.log_artifact(str(path), "model")
    example = example[model.features].head(5)
    with warnings.catch_warnings():
        # counts are integers and never missing (empty windows count 0)
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        signature = infer_signature(example, _probability_frame(model.predict(example)))
        from .model import FORMAT
        # "models from code": MLflow stores the code file, never a pickle of the adapter
        code = Path(__file__).parent / "model" / "_pyfunc_code.py"
        from .model import _pyfunc
        # the pyfunc (tiers, reasons) plus the sklearn flavour of the LeadClassifier (skops)
        info = mlflow.models.Model.log(None, _pyfunc, name="pyfunc", flavor_name="pqlml",
                                       classifier=model.estimator, python_model=str(code),
                                       artifacts={"model": str(path)}, signature=signature,
                                       input_example=example, pip_requirements=_requirements(),
                                       metadata={"pqlml_format": FORMAT,
                                                 "sha256": _sha256(Path(path))})
    return info.model_uri


def log_retrain(decision, config, path: str | Path, out: str | Path):
    """The comparison and the decision (params, metrics, a tag and ``retrain/decision.json``);
    then, when a challenger was trained, its pyfunc, registered as ``champion`` if promoted
    (the replaced champion keeps the alias ``previous``, for rollback) or ``challenger``.
    Returns (version, alias) or None."""
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
    mlflow.log_dict(decision.as_dict(), "retrain/decision.json")
    if decision.model is None:
        return None
    uri = log_train(decision.model, path, decision.frame)
    name = config.model.registered_name
    version, alias = register(uri, name, "champion" if decision.promoted else "challenger")
    if decision.action == "promoted" and decision.champion_version is not None:
        MlflowClient().set_registered_model_alias(name, "previous", decision.champion_version)
    return version, alias


def log_drift(table, summary: dict, out: str | Path) -> None:
    """PSI of the score and of every feature (``psi_<feature>``), the counts flagged, the
    reference window and current as_of, and the table and plot as artifacts."""
    import mlflow

    mlflow.log_params({"drift_as_of": summary["as_of"],
                       "drift_reference": "..".join(summary["reference"]),
                       "drift_threshold": summary["threshold"], "drift_model": summary["model"]})
    mlflow.log_metrics({"psi_score": summary["psi_score"],
                        "features_flagged": summary["features_flagged"],
                        "features_moderate": summary["features_moderate"]})
    mlflow.log_metrics({f"psi_{f}": float(v) for f, v in zip(table.feature, table.psi)
                        if f != "score"})
    mlflow.log_artifacts(str(out), "drift")


def _probability_frame(p):
    import pandas as pd
    return pd.DataFrame({"probability": p})


def register(model_uri: str, name: str, alias: str | None = None) -> tuple[int, str]:
    """Register the pyfunc under ``name`` with ``alias``; by default the first version
    becomes ``champion`` and later ones ``challenger`` (promotion is retraining's
    decision). A version whose alias cannot be set is deleted again: nothing is left
    half-registered. Returns (version, alias)."""
    import mlflow
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    if alias is None:
        alias = "challenger" if champion_version(name) is not None else "champion"
    # MLflow prints "Successfully registered model ..." and "Created version ..." to stderr;
    # pqlml's commands say what was registered themselves (the CLI, the demo)
    with contextlib.redirect_stderr(io.StringIO()):
        version = mlflow.register_model(model_uri, name).version
    try:
        client.set_registered_model_alias(name, alias, version)
    except Exception:
        client.delete_model_version(name, version)
        raise
    return int(version), alias


def champion_version(name: str):
    """The registered ``name@champion`` version (an MLflow ``ModelVersion``), or None."""
    import mlflow
    from mlflow.tracking import MlflowClient

    try:
        return MlflowClient().get_model_version_by_alias(name, "champion")
    except mlflow.exceptions.MlflowException as err:
        if "RESOURCE_DOES_NOT_EXIST" in str(getattr(err, "error_code", "")) or \
                "not found" in str(err).lower() or "does not exist" in str(err).lower():
            return None
        raise


def champion(name: str):
    """``(version, model)`` of ``models:/<name>@champion`` (pqlml's own model, loaded by
    :func:`load_logged_model`), or None when no version has the alias."""
    version = champion_version(name)
    if version is None:
        return None
    return int(version.version), load_logged_model(f"models:/{name}/{version.version}")[0]


def load_logged_model(uri: str):
    """``(model, version)``: the pqlml model behind an MLflow URI (``models:/<name>@alias``,
    ``models:/<name>/<n>``, ``runs:/<id>/pyfunc``), without running MLflow's loader (which
    runs the model's code): only the ``MLmodel`` file is read first (YAML, safely); it must
    carry pqlml's metadata; the model file it names is downloaded, its SHA-256 must match
    the metadata, and it is loaded with :meth:`pqlml.model.Model.load`'s checks.
    ``version`` is ``<name>/<n>`` for a registry URI, else the URI."""
    from .model import FORMAT, Model
    return _load_logged(uri, FORMAT, Model)


def _load_logged(uri: str, fmt: str, model_class):
    import re
    import tempfile

    import mlflow
    import yaml
    from mlflow.tracking import MlflowClient

    fix = ("Fix: pass a model logged by `pqlml train` or `pqlml retrain` (or retrain to log "
           "a new one).")
    with tracking_errors(f"loading {uri}"):
        use_store(create=False)
        version, base = uri, uri.rstrip("/")
        try:
            m = re.match(r"^models:/([^/@]+)(?:@([^/]+)|/(\d+))/?$", uri)
            if m:
                client = MlflowClient()
                name, alias, number = m.groups()
                found = (client.get_model_version_by_alias(name, alias) if alias
                         else client.get_model_version(name, number))
                version = f"{name}/{found.version}"
                base = client.get_model_version_download_uri(name, found.version)
            elif (m := re.match(r"^models:/([^/@]+)/?$", uri)):      # a logged model's id
                base = MlflowClient().get_logged_model(m.group(1)).artifact_location
            with tempfile.TemporaryDirectory(prefix="pqlml-model-") as tmp:
                mlmodel = mlflow.artifacts.download_artifacts(artifact_uri=f"{base}/MLmodel",
                                                              dst_path=tmp)
                meta = yaml.safe_load(Path(mlmodel).read_text()) or {}
                pqlml = meta.get("metadata") or {}
                found = str(pqlml.get("pqlml_format") or "")
                if found.startswith("pqlml-model/") and found != fmt:
                    raise PqlmlError(f"{uri} was logged by another version of pqlml (format "
                                     f"{found}; this pqlml reads {fmt}); nothing in it was "
                                     f"loaded. Fix: train a new model with this pqlml (`pqlml "
                                     f"train` logs and registers one) and use that version.")
                if found != fmt or not pqlml.get("sha256"):
                    flavors = ", ".join(meta.get("flavors") or {}) or "none"
                    raise PqlmlError(f"{uri} is not a pqlml model (its MLmodel has no "
                                     f"'pqlml_format: {fmt}' metadata; flavours: {flavors}); "
                                     f"nothing in it was loaded. {fix}")
                relative = (((meta.get("flavors") or {}).get("python_function") or {})
                            .get("artifacts") or {}).get("model", {}).get("path", "")
                if not relative or ".." in Path(relative).parts or Path(relative).is_absolute():
                    raise PqlmlError(f"{uri} is not a pqlml model (its MLmodel names no model "
                                     f"file: {relative!r}). {fix}")
                local = Path(mlflow.artifacts.download_artifacts(
                    artifact_uri=f"{base}/{relative}", dst_path=tmp))
                digest = _sha256(local)
                if digest != pqlml["sha256"]:
                    raise PqlmlError(f"The model file of {uri} ({relative}) does not match the "
                                     f"SHA-256 recorded when it was logged ({digest[:12]}... vs "
                                     f"{str(pqlml['sha256'])[:12]}...): it was altered or "
                                     f"damaged after logging; it was not loaded. Fix: log the "
                                     f"model again with `pqlml train` or `pqlml retrain`.")
                return model_class.load(local), version
        except mlflow.exceptions.MlflowException as err:
            raise PqlmlError(f"MLflow has no model at {uri} ({' '.join(str(err).split())[:200]}). "
                             "Fix: check the name and alias/version (`pqlml retrain` registers "
                             "models:/<model.registered_name>@champion).") from err
