"""The model file: a skops zip that is checked before anything in it is built.

pqlml never unpickles a file (a pickle runs whatever code it names while it loads). A
model is saved with :mod:`skops.io`, whose file is a zip of a JSON tree and arrays; on
load the file must be a zip, every type skops does not trust by default must be one of
:data:`ALLOWLIST` (the types pqlml's own models hold, fixed here, never read from the
file) and only then is it built, with exactly those types trusted. Anything else is a
:class:`~pqlml.errors.PqlmlError` naming the file and the fix.

``ALLOWLIST`` was found by experiment: ``skops.io.get_untrusted_types`` of a model of
each kind (``logistic``, ``gradient_boosting``) with each calibration (``platt``,
``isotonic``, ``none``), skops 0.16, scikit-learn 1.9: the union is below (the
calibrators are scikit-learn's own LogisticRegression and IsotonicRegression, which skops
trusts). :data:`CLASSIFIER_TYPES`, the same without the :class:`~pqlml.model.Model` wrapper,
is what the MLflow sklearn flavour trusts when it loads the classifier alone.

``FORMAT`` changes whenever the saved structure does: ``pqlml-model/2`` held the model in
a ``Recalibrated`` wrapper, ``pqlml-model/3`` a :class:`~pqlml.model.LeadClassifier`
without the reference, directions and correlations reasons read (``pqlml-model/4``).
A file of another format is refused by its marker (read from the zip's JSON, nothing
built) with the fix: retrain. The uplift learner a model may hold (``Model.uplift``,
:data:`UPLIFT_TYPES`) did not change the format: it is optional, a file written before it
loads as a model without uplift, and a pqlml before it refuses a file holding one by its
types, never builds it.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from ..errors import PqlmlError

__all__ = ["FORMAT", "ALLOWLIST", "CLASSIFIER_TYPES", "UPLIFT_TYPES", "save_model", "load_model"]

FORMAT = "pqlml-model/4"

CLASSIFIER_TYPES = frozenset({
    "numpy.dtype",
    "pqlml.model._classifier.LeadClassifier",
    "pqlml.model._estimators.MedianImputer",
    "pqlml.model._estimators._signed_log1p",
    "pqlml.model._signed.SignedLogisticRegression",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
})
#: What a model's uplift learner (``Model.uplift``, :mod:`pqlml.uplift._scoring`) holds, found
#: the same way for each learner (``t``, ``x``, ``dr``): pqlml's own learner and last-stage
#: types; their estimators are scikit-learn's histogram gradient boosting (the predictor above).
UPLIFT_TYPES = frozenset({
    "pqlml.uplift._learners.DRLearner",
    "pqlml.uplift._learners.TLearner",
    "pqlml.uplift._learners.XLearner",
    "pqlml.uplift._scoring.ScoringUplift",
    "pqlml.uplift._learners._Blend",
    "pqlml.uplift._learners._Difference",
    "pqlml.uplift._learners._Regressed",
})
ALLOWLIST = CLASSIFIER_TYPES | UPLIFT_TYPES | {"pqlml.model.Model"}

_ZIP = b"PK\x03\x04"
_RETRAIN = ("Fix: retrain with `pqlml train --config <config> --out model.skops` (or `pqlml "
            "retrain`) to write a model in pqlml's .skops format.")


def save_model(model, path: str | Path) -> Path:
    """Write ``{"format": FORMAT, "model": model}`` as a skops file at ``path``, atomically
    (a temporary file renamed into place)."""
    import skops.io

    from ..outputs import atomic

    path = Path(path)
    with atomic(path) as tmp:
        skops.io.dump({"format": FORMAT, "model": model}, tmp)
    return path


def load_model(path: str | Path):
    """The :class:`~pqlml.model.Model` in the skops file ``path``, checked before it is
    built (see the module); any other file is a :class:`~pqlml.errors.PqlmlError`."""
    import skops.io

    from . import Model

    path = Path(path)
    _check_zip(path)
    marker = _marker(path)
    if isinstance(marker, str) and marker.startswith("pqlml-model/") and marker != FORMAT:
        raise PqlmlError(f"{path} is a pqlml model in another format ({marker}; this pqlml "
                         f"reads {FORMAT}), written by another version of pqlml; nothing in it "
                         f"was loaded. {_RETRAIN}")
    try:
        untrusted = skops.io.get_untrusted_types(file=path)
    except Exception as err:  # noqa: BLE001 - a damaged or foreign zip, whatever the cause
        raise PqlmlError(f"{path} is not a pqlml model: a zip file but not a readable skops "
                         f"model ({type(err).__name__}: {_short(err)}). It may be truncated or "
                         f"another program's zip. {_RETRAIN}") from err
    unexpected = [t for t in untrusted if t not in ALLOWLIST]
    if unexpected:
        raise PqlmlError(f"{path} is not a pqlml model: it holds {len(unexpected)} type(s) a "
                         f"pqlml model never holds ({', '.join(unexpected[:5])}"
                         f"{' ...' if len(unexpected) > 5 else ''}), so it was not loaded. "
                         f"Fix: pass a model written by `pqlml train`; never load a model "
                         "file from an unknown source.")
    try:
        obj = skops.io.load(path, trusted=sorted(ALLOWLIST))
    except Exception as err:  # noqa: BLE001 - a damaged file, whatever the cause
        raise PqlmlError(f"{path} is not a readable pqlml model ({type(err).__name__}: "
                         f"{_short(err)}). {_RETRAIN}") from err
    if not isinstance(obj, dict) or obj.get("format") != FORMAT or not isinstance(
            obj.get("model"), Model):
        found = obj.get("format") if isinstance(obj, dict) else type(obj).__name__
        raise PqlmlError(f"{path} is a skops file but not a pqlml model (no '{FORMAT}' "
                         f"marker; found {found!r}). {_RETRAIN}")
    return obj["model"]


def _marker(path: Path):
    """The ``format`` string of a skops file's top-level dict, read from its JSON schema
    without building anything; None when there is none (or the file is no such dict)."""
    try:
        with zipfile.ZipFile(path) as z:
            node = json.loads(z.read("schema.json"))["content"]["format"]
        return json.loads(node["content"]) if node.get("__loader__") == "JsonNode" else None
    except Exception:  # noqa: BLE001 - whatever the file holds, the checks below report it
        return None


def _check_zip(path: Path) -> None:
    """Refuse, by its first bytes alone, anything that is not a zip file."""
    if path.is_dir():
        raise PqlmlError(f"{path} is a directory, not a pqlml model file. Fix: pass the "
                         "model file itself (model.skops, written by `pqlml train`).")
    if not path.is_file():
        raise PqlmlError(f"No model at {path}. Fix: pass a file written by `pqlml train`.")
    with open(path, "rb") as f:
        head = f.read(4)
    if head == _ZIP and zipfile.is_zipfile(path):
        return
    if not head:
        what = "an empty file"
    elif head == _ZIP:
        what = "a damaged zip (truncated?)"
    elif head[:1] == b"\x80":
        what = "a pickle (pqlml before version 2 saved models with joblib)"
    else:
        what = "not a skops zip"
    raise PqlmlError(f"{path} is not a pqlml model: {what}. Nothing in it was loaded: pqlml "
                     "reads only its .skops format and never unpickles files (loading a pickle "
                     f"can run any code). {_RETRAIN}")


def _short(err: Exception) -> str:
    return " ".join(str(err).split())[:200]
