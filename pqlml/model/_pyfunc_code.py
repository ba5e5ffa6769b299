"""The file MLflow runs to build pqlml's pyfunc ("models from code"): no pickle is logged.

:func:`pqlml.track.log_train` logs this file's path as the ``python_model``; MLflow copies
it into the model and runs it at load time (``mlflow.pyfunc.load_model``, ``mlflow models
serve``); it only builds the adapter, which then loads the skops model file (an artifact)
with pqlml's checks. pqlml never imports this module itself.
"""

import mlflow

from pqlml.model._pyfunc import PqlmlPyfunc

mlflow.models.set_model(PqlmlPyfunc())
