"""The uplift a score carries: a touch's effect learned on every labelled snapshot, kept in
the model file and predicted beside each probability.

:func:`fit_for_scoring` is what ``pqlml train`` calls (when the project has touches and the
outcome is conversion, the label the touch effect is on): the treatment is
:func:`~pqlml.uplift.touched` (``[uplift] touch_window_days``); a propensity classifier
(P(touch | features)) is fitted on the training rows (thinned as the forward runs thin a
fold, :func:`~pqlml.uplift._forward.thinned`) and the per-segment overlap
(:func:`~pqlml.uplift.overlap`) is judged on the propensities of those same rows. They are
not forward in time, which is acceptable here: nothing is evaluated on them, they only say
which segments have comparable touched and untouched accounts (``pqlml uplift`` checks the
overlap forward in time, and its report is where the effect is evaluated). They are
cross-fitted over accounts (two folds, each row's from a classifier that never saw its
account): in-sample, the boosted classifier learns the touched accounts themselves and
hides the overlap the data has (a 1,500-account simulated company, half of its touches
randomised: no segment identifiable in-sample, all three cross-fitted). Then the configured
learner (:func:`~pqlml.uplift._learners.make_learner`) is fitted on the same thinned rows, with
``n_bootstrap`` resamples of its last stage for each row's band.

The result, :class:`ScoringUplift`, predicts ``uplift``, ``uplift_low`` and ``uplift_high``
(probability units, like ``probability``) and leaves rows of an unidentifiable segment
empty (NaN). It is stored inside the model file (skops; the learners' types are in
:data:`pqlml.model._file.UPLIFT_TYPES`).

Examples
--------
>>> import numpy as np, pandas as pd
>>> from pqlml.config import config_from_dict
>>> rng = np.random.default_rng(0)
>>> n = 6000
>>> frame = pd.DataFrame({"account_id": [f"a{i}" for i in range(n)],
...                       "as_of": pd.Timestamp("2024-01-01", tz="UTC"),
...                       "x": rng.normal(size=n)})
>>> t = rng.random(n) < 0.3
>>> frame["conversion"] = (rng.random(n) < 0.1 + 0.2 * t * (frame.x > 0)).astype(int)
>>> touches = pd.DataFrame({"account_id": frame.account_id[t],
...                         "at": pd.Timestamp("2024-01-03", tz="UTC")})
>>> found, info = fit_for_scoring(frame, "conversion", touches=touches, features=["x"],
...                               settings=config_from_dict({"uplift": {"learner": "t"}}, "."),
...                               n_bootstrap=3)
>>> info["learner"], info["identifiable"], info["touched_rows"] == int(t.sum())
('t', ['all'], True)
>>> u = found.predict(frame.head(400))
>>> list(u.columns), bool(u.uplift[frame.x.head(400) > 0].mean() > 0.1)
(['uplift', 'uplift_low', 'uplift_high'], True)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._forward import thinned
from ._learners import default_classifier, make_learner
from ._overlap import overlap
from ._treatment import touched

__all__ = ["fit_for_scoring", "ScoringUplift", "UPLIFT_COLUMNS", "segments_of",
           "described", "N_BOOTSTRAP"]

#: The score columns an uplift adds (probability units), and the note of an empty one.
UPLIFT_COLUMNS = ("uplift", "uplift_low", "uplift_high")
#: Last-stage refits for each row's band: as ``pqlml uplift`` (:data:`pqlml.uplift.N_BOOTSTRAP`).
N_BOOTSTRAP = 10


class ScoringUplift:
    """A fitted meta-learner with what scoring needs: ``learner``, ``name`` (``t``, ``x`` or
    ``dr``), ``features`` (its columns, in order), ``identifiable`` (the segments it ranks) and ``unidentifiable``
    (segment -> why not)."""

    def __init__(self, learner, name: str, features: list, identifiable: list,
                 unidentifiable: dict):
        self.learner = learner
        self.name = name
        self.features = list(features)
        self.identifiable = [str(s) for s in identifiable]
        self.unidentifiable = {str(k): str(v) for k, v in unidentifiable.items()}

    def predict(self, X: pd.DataFrame, segments=None) -> pd.DataFrame:
        """``uplift``, ``uplift_low``, ``uplift_high`` per row of ``X`` (its index kept): the
        learner's ``predict`` and ``predict_interval``, clipped to [-1, 1] (an effect on a
        probability lies there; a regression of noisy pseudo-outcomes, the DR-learner's, can
        leave it); NaN for rows whose segment (one per
        row, :func:`segments_of`) is not identifiable. Without ``segments`` every row is
        taken as identifiable when all training segments were, else left empty."""
        out = pd.DataFrame(np.nan, index=X.index, columns=list(UPLIFT_COLUMNS))
        ok = self.identifiable_rows(len(X), segments)
        if ok.any():
            Z = X.loc[ok, self.features].to_numpy(float)
            low, high = self.learner.predict_interval(Z)
            for col, v in zip(UPLIFT_COLUMNS, (self.learner.predict(Z), low, high)):
                out.loc[ok, col] = np.clip(v, -1.0, 1.0)
        return out

    def identifiable_rows(self, n: int, segments=None) -> np.ndarray:
        """True for each of ``n`` rows whose segment is identifiable (see :meth:`predict`)."""
        if segments is None:
            return np.full(n, not self.unidentifiable)
        return np.isin(segments_of(segments, n), self.identifiable)

    def notes(self, segments, n: int) -> np.ndarray:
        """Why a row's uplift is empty (``""`` where it is not): its segment's reason."""
        seg = segments_of(segments, n) if segments is not None else np.full(n, None)
        return np.array([f"not identifiable in segment {s}: {self.unidentifiable[s]}"
                         if s in self.unidentifiable else
                         ("" if segments is not None or not self.unidentifiable else
                          "no segment given: some training segments are not identifiable")
                         for s in seg], dtype=object)


def segments_of(segments, n: int) -> np.ndarray:
    """Each row's segment as text (missing: ``unknown``), as ``pqlml uplift`` names them; one
    segment ``all`` when ``segments`` is None."""
    if segments is None:
        return np.full(n, "all", dtype=object)
    return pd.Series(np.asarray(segments, dtype=object)).fillna("unknown").astype(str).to_numpy()


def fit_for_scoring(frame: pd.DataFrame, outcome: str, *, touches, settings, features,
                    segments=None, n_bootstrap: int = N_BOOTSTRAP, seed: int = 0):
    """(:class:`ScoringUplift` or None, what ``trained_on["uplift"]`` records): the
    configured learner fitted on every labelled snapshot of ``frame`` (rows a sample
    weighted 0 left out) after the overlap check (module docstring). None, with the reason
    in ``{"none": ...}``, when there are no touches, no touched snapshot, no identifiable
    segment or the learner cannot be fitted (an arm without both outcomes)."""
    up = settings.uplift
    if touches is None or touches.empty:
        return None, {"none": "the project has no touches table ([data.touches])"}
    from ..model import WEIGHT
    rows = (np.flatnonzero(frame[WEIGHT].to_numpy() > 0) if WEIGHT in frame.columns
            else np.arange(len(frame)))
    t = touched(frame, touches, window_days=up.touch_window_days).astype(int)
    if t[rows].sum() == 0:
        return None, {"none": f"no training snapshot has a touch in [as_of, as_of + "
                              f"{up.touch_window_days} days) ({len(touches):,} touches)"}
    X, y = frame[features].to_numpy(float), frame[outcome].to_numpy(int)
    seg = segments_of(segments, len(frame))
    e = _propensities(frame, X, y, t, rows, seed)
    fit_rows, w = thinned(frame, rows, y, t, seed=seed)
    found = overlap(e, t[rows], seg[rows], min_overlap=up.min_overlap,
                    rate=float(t[rows].mean()))
    info = {"learner": up.learner, "rows": int(len(rows)), "touched_rows": int(t[rows].sum()),
            "fitted_rows": int(len(fit_rows)), "n_bootstrap": int(n_bootstrap),
            "touch_window_days": up.touch_window_days,
            "identifiable": [str(s) for s in found.identifiable],
            "unidentifiable": {str(s): found.table.loc[s, "reason"] for s in found.unidentifiable}}
    if not found.identifiable:
        return None, {"none": f"no segment has comparable touched and untouched accounts. "
                              f"{found.verdict}", **info}
    learner = make_learner(up.learner, n_bootstrap=n_bootstrap, random_state=seed,
                           clip=up.min_overlap)
    try:
        learner.fit(X[fit_rows], y[fit_rows], treatment=t[fit_rows], sample_weight=w)
    except ValueError as err:
        return None, {"none": f"the {up.learner} learner cannot be fitted: {err}", **info}
    return ScoringUplift(learner, up.learner, features, found.identifiable,
                         info["unidentifiable"]), info


def described(info: dict) -> str:
    """One line of what ``trained_on["uplift"]`` (``info``) says, as ``pqlml train`` prints it.

    >>> described({"none": "the project has no touches table ([data.touches])"})
    'no uplift in the scores: the project has no touches table ([data.touches])'
    >>> described({"learner": "dr", "rows": 900, "touched_rows": 40, "identifiable": ["smb"],
    ...            "unidentifiable": {"enterprise": "0 comparable untouched rows"}})
    'uplift in the scores: dr learner on 900 snapshots (40 touched); identifiable: smb; not identifiable (empty uplift): enterprise (0 comparable untouched rows)'
    """
    if not info:
        return "no uplift in the scores (a model trained before pqlml learned uplifts)"
    if "none" in info:
        return f"no uplift in the scores: {info['none']}"
    text = (f"uplift in the scores: {info['learner']} learner on {info['rows']:,} snapshots "
            f"({info['touched_rows']:,} touched); identifiable: {', '.join(info['identifiable'])}")
    if info.get("unidentifiable"):
        text += "; not identifiable (empty uplift): " + "; ".join(
            f"{s} ({why})" for s, why in info["unidentifiable"].items())
    return text


def _propensities(frame, X, y, t, rows, seed: int) -> np.ndarray:
    """P(touch | features) of each of ``rows``, cross-fitted over accounts: two folds, each
    row's from a classifier fitted (on its fold's thinned rows) without its account."""
    from sklearn.model_selection import GroupKFold

    e = np.empty(len(rows))
    groups = frame["account_id"].astype(str).to_numpy()[rows]
    for fit, held in GroupKFold(2).split(rows, groups=groups):
        part, w = thinned(frame, rows[fit], y, t, seed=seed)
        if len(np.unique(t[part])) < 2:
            e[held] = float(t[part].mean())
            continue
        model = default_classifier(seed).fit(X[part], t[part],
                                             **({} if w is None else {"sample_weight": w}))
        e[held] = model.predict_proba(X[rows[held]])[:, 1]
    return e
