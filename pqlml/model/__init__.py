"""Models that replace hand-set thresholds while keeping the tiers sales uses.

:class:`LeadClassifier` is the calibrated scikit-learn classifier; :class:`Model` holds a
fitted one with the feature list it was trained on; :func:`train` fits one on labelled
snapshots (``project.snapshots(outcome)``: features joined with their labels). Its probabilities
(intent) and fit become the same Tier 1/2/3/self-serve labels the rules give through the
one tier policy, :class:`pqlml.tiers.TierPolicy`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import PqlmlError
from ..labels import LABEL_COLUMNS
from ..schema import KEY_COLUMNS
from ._classifier import LeadClassifier
from ._estimators import KINDS, make_estimator
from ._file import FORMAT, load_model, save_model
from ._sample import WEIGHT
from ._metrics import (bootstrap_ci, bootstrap_cis, expected_calibration_error, score_metrics,
                       top_k_capture)

__all__ = ["Model", "LeadClassifier", "KINDS", "make_estimator", "feature_columns",
           "train", "provenance", "score_metrics",
           "expected_calibration_error", "top_k_capture", "bootstrap_ci", "bootstrap_cis",
           "FORMAT", "WEIGHT"]

@dataclass
class Model:
    """A fitted :class:`LeadClassifier` (``estimator``) and the exact feature list it expects;
    ``uplift``: a touch's effect learned beside it (:class:`pqlml.uplift._scoring.ScoringUplift`,
    fitted by ``pqlml train`` when the project has touches), or None (``trained_on["uplift"]``
    says why)."""

    kind: str
    features: list[str]
    estimator: LeadClassifier
    outcome: str = "conversion"
    trained_on: dict = field(default_factory=dict)
    uplift: object = None

    @classmethod
    def fit(cls, frame: pd.DataFrame, outcome: str, *, kind: str = "gradient_boosting",
            features=None, calibration: str = "platt", seed: int = 0,
            gap_days: int = 0) -> "Model":
        """Fit on labelled snapshots (``as_of``, the features, ``outcome``).

        ``kind="auto"`` chooses the model on these rows, forward in time with validation
        dates ``gap_days`` (the outcome's horizon) after their training rows
        (:mod:`pqlml.model._select`); ``kind`` is then the chosen one and ``trained_on``
        records the choice (``selection``: each candidate's validation ROC-AUC).

        ``features``: the columns to learn from (default: :func:`feature_columns`); a key,
        ``as_of``, a label or a non-numeric column among them is refused. The estimator is
        a :class:`LeadClassifier` fitted with the rows' ``as_of`` (time-aware calibration).

        A frame with a :data:`WEIGHT` column is a sample (:mod:`pqlml.model._sample`): the
        rows weighted 0 (kept to be evaluated on only) are left out, the others fitted with
        their weights; ``trained_on["weighted"]`` says so."""
        for column in (outcome, "as_of"):
            if column not in frame.columns:
                raise PqlmlError(f"Model.fit needs the column {column!r} in the frame; it has "
                                 f"{_show(list(frame.columns))}. Fix: pass labelled snapshots "
                                 "(project.snapshots(outcome)).")
        features = (feature_columns(frame, exclude=(outcome,)) if features is None
                    else _checked_features(frame, list(features), outcome))
        if not features:
            raise PqlmlError(f"Model.fit found no numeric feature column in the frame (columns: "
                             f"{_show(list(frame.columns))}). Fix: pass features merged with "
                             "their labels (project.snapshots(outcome)).")
        w = None
        if WEIGHT in frame.columns:
            frame = frame[frame[WEIGHT].to_numpy() > 0]
            w = frame[WEIGHT].to_numpy(float)
        y = frame[outcome].astype(int).to_numpy()
        est = LeadClassifier(kind=kind, calibration=calibration, random_state=seed,
                             gap_days=gap_days).fit(frame[features], y, as_of=frame.as_of,
                                                    sample_weight=w)
        info = {"rows": len(frame), "positives": int(y.sum()),
                "as_of_first": str(frame.as_of.min().date()),
                "as_of_last": str(frame.as_of.max().date())}
        if est.selection_ is not None:
            info["selection"] = est.selection_
        if w is not None:
            info["weighted"] = True
        return cls(est.kind_, features, est, outcome, info)

    def check_features(self, frame: pd.DataFrame, *, exact: bool = False,
                       version: str = "") -> None:
        """The schema guard: the frame must hold every training feature; with ``exact``
        (scoring), its feature columns (:func:`feature_columns`) must be exactly them.
        ``version`` names the model in the message."""
        missing = [f for f in self.features if f not in frame.columns]
        extra = ([f for f in feature_columns(frame) if f not in set(self.features)]
                 if exact else [])
        if exact and (missing or extra):
            raise PqlmlError(
                f"The features differ from those model {version} was trained on: "
                + (f"missing {_show(missing)}" if missing else "")
                + ("; " if missing and extra else "") + (f"extra {_show(extra)}" if extra else "")
                + ". Fix: build features with the training config (the same [features] events, "
                  "windows and counts), or retrain the model on the current definitions.")
        if missing:
            raise PqlmlError(f"The data lacks {len(missing)} feature(s) the model was trained "
                             f"on: {', '.join(missing[:20])}{' ...' if len(missing) > 20 else ''}."
                             " Fix: build features with the same config (events, windows, "
                             "counts) as training.")

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated probabilities of the outcome within the horizon."""
        self.check_features(frame)
        return self.estimator.predict_proba(frame[self.features])[:, 1]   # 0 rows: empty

    def save(self, path: str | Path) -> Path:
        """Write the model as a skops file (``model.skops``): no pickle, see :meth:`load`."""
        return save_model(self, path)

    @classmethod
    def load(cls, path: str | Path) -> "Model":
        """The model in a file :meth:`save` wrote. The file is checked before anything in
        it is built: a zip whose types are all pqlml's own (``pqlml.model._file``); a
        pickle, an older joblib model or any other file is refused."""
        return load_model(path)


def feature_columns(frame: pd.DataFrame, *, exclude=()) -> list[str]:
    """The columns of ``frame`` a model may learn from, in frame order: numeric ones that are
    not a key (``account_id``, ``user_id``, ``entity_id``), not ``as_of``, not a label and
    not a sample's weight (:data:`WEIGHT`) and not in ``exclude``. The one definition of
    "feature column" every stage uses.

    Examples
    --------
    >>> frame = pd.DataFrame({"user_id": ["u1"], "as_of": pd.to_datetime(["2024-01-01"]),
    ...                       "events_30d": [3], "industry": ["software"],
    ...                       "conversion": [0], "score": [0.5]})
    >>> feature_columns(frame, exclude=["score"])
    ['events_30d']
    """
    skip = set(KEY_COLUMNS) | set(LABEL_COLUMNS) | {WEIGHT} | set(exclude)
    return [c for c in frame.columns if c not in skip and _numeric(frame[c])]


def _numeric(column: pd.Series) -> bool:
    """Numbers or booleans: never text, categories, datetimes or durations."""
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_timedelta64_dtype(column)


def _checked_features(frame: pd.DataFrame, features: list[str], outcome: str) -> list[str]:
    """``features`` when each is a numeric feature column of ``frame``, else a clear error."""
    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise PqlmlError(f"The 'features' parameter of Model.fit names {len(missing)} column(s) "
                         f"the frame lacks: {_show(missing)}. Fix: pass columns of the frame "
                         "(feature_columns(frame) lists them).")
    not_features = [f for f in features if f in KEY_COLUMNS or f in LABEL_COLUMNS or f == outcome]
    text = [f"{f} ({frame[f].dtype})" for f in features
            if f not in not_features and not _numeric(frame[f])]
    if not_features or text:
        what = ([f"keys, as_of or labels: {_show(not_features)}"] if not_features else []) + \
            ([f"not numeric: {_show(text)}"] if text else [])
        raise PqlmlError(f"The 'features' parameter of Model.fit must name numeric feature "
                         f"columns only. Got {'; '.join(what)}. Fix: leave them out (or pass "
                         "features=None: feature_columns(frame) picks the numeric features).")
    return features


def _show(columns: list[str], limit: int = 15) -> str:
    return ", ".join(map(str, columns[:limit])) + (f" ... ({len(columns)} in all)"
                                                   if len(columns) > limit else "")


def provenance(config) -> dict:
    """What a model's ``trained_on`` records of the config it learned from: the ``entity``
    its rows are (scoring and drift build the same rows) and the config's SHA-256."""
    return {"entity": config.project.entity,
            "config_sha256": hashlib.sha256(json.dumps(repr(config), sort_keys=True)
                                            .encode()).hexdigest()}


def train(frame: pd.DataFrame, outcome: str | None = None, *, settings=None,
          kind: str | None = None, calibration: str | None = None,
          sample: dict | None = None) -> Model:
    """Fit a :class:`Model` on labelled snapshots: ``frame`` holds ``as_of``, the features
    and ``outcome`` (``project.snapshots(outcome)``: every labelled snapshot of the schedule).

    ``settings``: the :class:`~pqlml.config.Config` the snapshots were built with; its
    ``outcomes.target``, ``model.kind`` and ``model.calibration`` are the defaults of
    ``outcome``, ``kind`` and ``calibration``, and the model's ``trained_on`` records it
    (:func:`provenance`: the entity its rows are, the config's hash). Without it: name the
    ``outcome``; a ``gradient_boosting`` model with ``platt`` calibration that records no
    config. ``sample``: when ``frame`` is a sample (a :data:`WEIGHT` column,
    :meth:`pqlml.project.Project.training_snapshots`), what it kept
    (:func:`~pqlml.model._sample.sample_record`), recorded as ``trained_on["sample"]``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> frame = pd.DataFrame({"account_id": [f"a{i}" for i in range(400)],
    ...                       "as_of": pd.Timestamp("2024-01-01", tz="UTC")
    ...                       + pd.to_timedelta(np.arange(400) % 4 * 30, unit="D"),
    ...                       "events_30d": rng.poisson(5, 400)})
    >>> frame["conversion"] = (rng.random(400) < frame.events_30d / 20).astype(int)
    >>> model = train(frame, "conversion", kind="logistic")
    >>> model.features, model.trained_on["rows"]
    (['events_30d'], 400)
    >>> bool(model.predict(frame.head(2)).max() < 1)
    True
    >>> train(frame)
    Traceback (most recent call last):
    ...
    pqlml.errors.PqlmlError: train needs the outcome to learn: pass outcome= (e.g. "conversion") or settings=project.config (its outcomes.target).
    """
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"The 'frame' parameter of train must be a DataFrame of labelled "
                        f"snapshots (project.snapshots(outcome)). Got {type(frame).__name__} "
                        "instead.")
    if outcome is None and settings is None:
        raise PqlmlError("train needs the outcome to learn: pass outcome= (e.g. "
                         "\"conversion\") or settings=project.config (its outcomes.target).")
    outcome = outcome or settings.outcomes.target
    kind = kind or (settings.model.kind if settings is not None else "gradient_boosting")
    calibration = calibration or (settings.model.calibration if settings is not None
                                  else "platt")
    model = Model.fit(frame, outcome, kind=kind, calibration=calibration,
                      gap_days=settings.labels.horizon_days if settings is not None else 0)
    if settings is not None:
        model.trained_on |= provenance(settings)
    if sample is not None:
        model.trained_on["sample"] = dict(sample)
    return model
