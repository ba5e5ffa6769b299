"""The model in the MLflow store: logging it (a pyfunc with pinned requirements and the
sklearn flavour), registering it with a description, finding the champion, and loading a
logged model back without running MLflow's loader. The store and the runs are
:mod:`pqlml.track`'s."""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

from .errors import PqlmlError
from .track import QUALITY, _numbers, _sha256, tracking_errors, use_store

__all__ = ["log_train", "version_description", "register", "champion", "champion_version",
           "load_logged_model"]


def _requirements() -> list[str]:
    """Exact pins of what the pyfunc needs at load time: ``pqlml==<version>`` and every
    runtime dependency of pqlml at its installed version (MLflow's own inference is slow
    and lists unrelated packages), plus skops (the sklearn flavour's format). pqlml itself
    must be installed where the model is served."""
    from importlib.metadata import PackageNotFoundError, requires, version

    from packaging.requirements import Requirement

    names = ["skops"]
    for text in requires("pqlml") or []:
        req = Requirement(text)
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            names.append(req.name)
    pins = {}
    for name in names:
        try:
            pins[name.lower()] = f"{name}=={version(name)}"
        except PackageNotFoundError:          # declared, not installed: nothing to pin
            continue
    return [f"pqlml=={version('pqlml')}"] + sorted(pins.values())


def log_train(model, path: str | Path, example) -> str:
    """The model's kind, features and training window (and, for ``kind="auto"``, each
    candidate's validation ROC-AUC); the model file; the model as an MLflow pyfunc with a
    signature and pinned requirements, and in the same MLflow model the sklearn flavour
    of its LeadClassifier (``mlflow.sklearn.load_model(uri)``; MLflow asks
    ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION=true`` even for its skops format). Returns the
    model's URI."""
    import mlflow
    from mlflow.models import infer_signature

    mlflow.log_params({"kind": model.kind, "features": len(model.features),
                       "as_of_first": model.trained_on["as_of_first"],
                       "as_of_last": model.trained_on["as_of_last"]})
    mlflow.set_tag("pqlml.kind", model.kind)
    mlflow.log_metrics({"train_rows": model.trained_on["rows"],
                        "train_positives": model.trained_on["positives"]})
    if model.trained_on.get("sample"):          # fitted on a weighted sample: what it kept
        mlflow.log_params({f"sample_{k}": v for k, v in model.trained_on["sample"].items()})
    selection = model.trained_on.get("selection") or {}
    if isinstance(selection, dict):
        mlflow.log_metrics(_numbers({k: v for k, v in selection.items()
                                     if isinstance(v, (int, float))}, "selection_roc_auc"))
    mlflow.log_dict({"features": model.features}, "model/features.json")
    mlflow.log_artifact(str(path), "model")
    example = example[model.features].head(5)
    with warnings.catch_warnings():
        # counts are integers and never missing (empty windows count 0)
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        from .model import FORMAT, _pyfunc
        signature = infer_signature(example, _pyfunc.outputs(model, example))
        # "models from code": MLflow stores the code file, never a pickle of the adapter
        code = Path(__file__).parent / "model" / "_pyfunc_code.py"
        # the pyfunc (tiers, reasons) plus the sklearn flavour of the LeadClassifier (skops)
        info = mlflow.models.Model.log(None, _pyfunc, name="pyfunc", flavor_name="pqlml",
                                       classifier=model.estimator, python_model=str(code),
                                       artifacts={"model": str(path)}, signature=signature,
                                       input_example=example, pip_requirements=_requirements(),
                                       metadata={"pqlml_format": FORMAT,
                                                 "sha256": _sha256(Path(path))})
    return info.model_uri


def version_description(model) -> str:
    """What a registered version says of itself: the outcome, entity and training window,
    the quality the active run logged (with CIs), the data fingerprint and the run."""
    import mlflow

    run = mlflow.active_run()
    data = mlflow.get_run(run.info.run_id).data if run is not None else None
    t = model.trained_on
    text = (f"{model.kind} model of {model.outcome} for {t.get('entity', 'account')}s, "
            f"trained on as_of {t['as_of_first']}..{t['as_of_last']} ({t['rows']:,} rows, "
            f"{t['positives']:,} positive).")
    m = data.metrics if data is not None else {}
    shown = [f"{k} {m[k]:.4g}" + (f" [{m[k + '_ci_low']:.4g}, {m[k + '_ci_high']:.4g}]"
                                  if k + "_ci_low" in m else "") for k in QUALITY if k in m]
    text += (" Forward-in-time quality: " + ", ".join(shown) + " (95% CIs)." if shown else
             " Not evaluated in this run (`pqlml train` fits every labelled snapshot): see "
             "the project's backtest or retrain runs.")
    if data is not None:
        text += (f" Data fingerprint (SHA-256) {data.params.get('data_sha256', '?')[:16]}; "
                 f"config {data.params.get('config_sha256', '?')[:16]}; run "
                 f"'{run.info.run_name}' ({run.info.run_id}).")
    return text


def register(model_uri: str, name: str, alias: str | None = None, *,
             description: str = "") -> tuple[int, str]:
    """Register the pyfunc under ``name`` with ``alias`` and ``description``
    (:func:`version_description`); by default the first version becomes ``champion`` and
    later ones ``challenger`` (promotion is retraining's decision). A version whose alias
    or description cannot be set is deleted again: nothing is left half-registered.
    Returns (version, alias)."""
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
        if description:
            client.update_model_version(name, version, description=description)
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
