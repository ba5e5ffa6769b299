"""One function per command: open the project once, check every output, run the stage, write
the outputs, track the run.

The CLI (:mod:`pqlml.cli`: it parses and renders) and the demo (:mod:`pqlml.demo`) both call
these; from Python they are the way to run a command. Each takes ``source``: a path to
``pqlml.toml``, a :class:`~pqlml.config.Config`, a dict of settings, or an open
:class:`~pqlml.project.Project` (used as is: pass ``result.project`` on and nothing is read
or built twice). Each checks every output before any work (the messages name the CLI's
options, ``--out``), and returns a small result: what it computed, ``project`` and
``written`` (the files). The commands that fit or evaluate a model (:func:`backtest`,
:func:`train`, :func:`retrain`, :func:`drift`) log one MLflow run each, the same way, unless
``track=False`` (``--no-track``); ``run_id`` and ``store`` say where.

``status(text)``, where a command takes it, is a context manager around each slow step
(the CLI passes ``rich.console.Console.status``); ``progress(i, n, as_of)`` is called per
period of a backtest or a retraining. :func:`init` comes before any config: it takes the
files, drafts ``pqlml.toml`` for them and returns it unwritten (:mod:`pqlml.init`).

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> from pqlml import runner
>>> from pqlml.simulate import simulate
>>> tmp = Path(tempfile.mkdtemp())
>>> sim = simulate(n_accounts=80, seed=3, out=tmp, months=5)
>>> built = runner.features(sim.config, tmp / "features.csv")      # opens the project
>>> trained = runner.train(built.project, tmp / "model.skops", track=False)
>>> [path.name for path in built.written + trained.written], trained.run_id
(['features.csv', 'model.skops'], None)
>>> len(built.project.builds)      # train reused the feature table: one build in all
1
"""

from ._common import Result, Tracked
from ._data import (DiscoverResult, EngagementWeightsResult, FeaturesResult, FeedbackResult,
                    RulesResult, ValidateResult, discover, engagement_weights, features,
                    feedback, rules, validate)
from ._models import (BacktestResult, DriftResult, RetrainResult, TrainResult, backtest, drift,
                      retrain, train)
from ._buyers import BuyersResult, buyers
from ._init import init
from ._score import ScoreResult, score
from ._uplift import UpliftResult, uplift
from ._experiment import (ExperimentResult, PlanResult, experiment_analyze,
                          experiment_plan)

__all__ = ["init", "validate", "features", "rules", "discover", "backtest", "train", "retrain", "drift",
           "score", "feedback", "engagement_weights", "buyers", "BuyersResult",
           "Result", "Tracked", "ValidateResult", "FeaturesResult", "RulesResult",
           "DiscoverResult", "BacktestResult", "TrainResult", "RetrainResult", "DriftResult",
           "ScoreResult", "FeedbackResult", "EngagementWeightsResult", "uplift", "UpliftResult",
           "experiment_plan", "experiment_analyze", "PlanResult", "ExperimentResult"]
