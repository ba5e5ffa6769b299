"""The MLflow model: a thin pyfunc adapter around pqlml's own :class:`~pqlml.model.Model`,
plus the scikit-learn flavour of its :class:`~pqlml.model.LeadClassifier`.

``load_context`` loads the saved model file (an MLflow artifact); ``predict`` takes the
feature table and returns one probability per row (and the uplift columns when the model
has an uplift: :func:`outputs`). The schema guard is the model's own:
missing features are an error that lists them.

:func:`save_model` is the "flavour" :func:`pqlml.track.log_train` logs with: MLflow's
pyfunc (models from code, :mod:`pqlml.model._pyfunc_code`) and, in the same MLmodel, the
``sklearn`` flavour, so ``mlflow.sklearn.load_model(uri)`` gives the fitted
LeadClassifier. That copy is a skops file (no pickle) whose trusted types are
:data:`~pqlml.model._file.CLASSIFIER_TYPES`; it is for other tools: pqlml itself loads only
the pyfunc's model file, with its own checks.
"""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import pandas as pd

__all__ = ["PqlmlPyfunc", "save_model", "outputs"]

CLASSIFIER_FILE = "classifier.skops"


class PqlmlPyfunc(mlflow.pyfunc.PythonModel):
    """``mlflow.pyfunc.load_model(uri).predict(features)`` -> a ``probability`` column."""

    def load_context(self, context):
        from . import Model
        self.model = Model.load(context.artifacts["model"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        return outputs(self.model, frame)


def outputs(model, frame: pd.DataFrame) -> pd.DataFrame:
    """What the pyfunc returns for the feature rows ``frame``: ``probability`` and, when the
    model has an uplift (:mod:`pqlml.uplift._scoring`), ``uplift``, ``uplift_low`` and
    ``uplift_high``; a ``segment`` column in ``frame`` (the accounts' segment) leaves the
    rows of an unidentifiable segment empty. Without it, and with such segments, every
    uplift is empty: the pyfunc cannot tell. MLflow serving passes the signature's columns
    only (the features), so there it is without."""
    out = pd.DataFrame({"probability": model.predict(frame)})
    if model.uplift is not None:
        segments = frame["segment"].to_numpy() if "segment" in frame.columns else None
        found = model.uplift.predict(frame.reset_index(drop=True), segments)
        out = pd.concat([out, found.reset_index(drop=True)], axis=1)
    return out


def save_model(path, mlflow_model, *, classifier, **pyfunc):
    """Save the pyfunc (``mlflow.pyfunc.save_model(path, **pyfunc)``) and add the sklearn
    flavour of ``classifier`` (a fitted LeadClassifier) to the same MLmodel."""
    import sklearn
    import skops.io
    from mlflow.models.model import MLMODEL_FILE_NAME

    from ._file import CLASSIFIER_TYPES

    mlflow.pyfunc.save_model(path=path, mlflow_model=mlflow_model, **pyfunc)
    skops.io.dump(classifier, Path(path) / CLASSIFIER_FILE)
    mlflow_model.add_flavor("sklearn", pickled_model=CLASSIFIER_FILE,
                            sklearn_version=sklearn.__version__, serialization_format="skops",
                            code=None, skops_trusted_types=sorted(CLASSIFIER_TYPES))
    mlflow_model.save(str(Path(path) / MLMODEL_FILE_NAME))
