"""The MLflow pyfunc flavour: a thin adapter around pqlml's own :class:`~pqlml.model.Model`.

``load_context`` loads the saved model file (an MLflow artifact); ``predict`` takes the
feature table and returns one probability per row. The schema guard is the model's own:
missing features are an error that lists them.
"""

from __future__ import annotations

import mlflow.pyfunc
import pandas as pd

__all__ = ["PqlmlPyfunc"]


class PqlmlPyfunc(mlflow.pyfunc.PythonModel):
    """``mlflow.pyfunc.load_model(uri).predict(features)`` -> a ``probability`` column."""

    def load_context(self, context):
        from . import Model
        self.model = Model.load(context.artifacts["model"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        return pd.DataFrame({"probability": self.model.predict(frame)})
