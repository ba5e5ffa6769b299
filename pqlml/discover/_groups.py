"""Before the adjusted fit: a transform per feature, chosen by the data, and collinear groups.

:func:`choose_transforms` fits, per feature, a one-feature logistic model of the outcome
under each transform that suits its values (``log1p``, ``indicator`` (> 0), ``sqrt`` and
``identity`` for a non-negative feature; ``identity`` for a 0/1 flag or a feature with
negative values) on the same rows, and keeps the transform with the highest likelihood
(every candidate has two parameters, so this is the lowest AIC too); a tie goes to the
earlier transform in that order. The transform is chosen on the rows it is then tested on:
a choice among four monotone versions of one column, whose effect on the p-values is small
next to a fixed transform that misfits (a 0/1-shaped effect forced through ``log1p``).

:func:`collinear_groups` puts features whose values move together in one group: complete
linkage on ``1 - |Spearman rho|`` over the rows, cut at ``threshold`` (default 0.8), so every
two members of a group have ``|rho| >= threshold``. Spearman's rho is blind to monotone
transforms, so the grouping does not depend on the transforms chosen. The one-hot levels of a
category (0/1 columns sharing a name prefix, at most one of them 1 in any row: ``industry_``)
form their own group, tested jointly.

Examples
--------
>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> x = rng.poisson(2.0, 4000)
>>> y = rng.random(4000) < np.where(x > 0, 0.3, 0.1)         # an indicator-shaped effect
>>> frame = pd.DataFrame({"x": x, "x_copy": x + (rng.random(4000) < 0.05), "y": y})
>>> choose_transforms(frame, "y", ["x"])["x"]
'indicator'
>>> collinear_groups(frame, ["x", "x_copy"])
[['x', 'x_copy']]
>>> words(["events_security_settings_viewed_30d", "events_sso_page_viewed_30d"])
'security settings viewed or sso page viewed'
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import statsmodels.api as sm
from ..explain._groups import complete_clusters
from ..features._names import event_family

__all__ = ["TRANSFORMS", "candidate_transforms", "one_feature_fits", "choose_transforms",
           "categories", "collinear_groups", "words"]

TRANSFORMS = ("log1p", "indicator", "sqrt", "identity")


def numeric(frame: pd.DataFrame, features) -> pd.DataFrame:
    """The features as floats, missing values set to the column's median (as the model)."""
    X = frame[list(features)].apply(pd.to_numeric, errors="coerce").astype(float)
    return X.fillna(X.median())


def candidate_transforms(values: pd.Series) -> tuple[str, ...]:
    """The transforms that suit a column: every one for a non-negative feature with more
    than two values, ``identity`` alone for a flag or a feature with negative values."""
    if values.min() < 0 or values.nunique() <= 2:
        return ("identity",)
    return TRANSFORMS


def _loglik(y: np.ndarray, x: np.ndarray) -> float:
    if np.ptp(x) == 0:
        return -np.inf
    X = np.column_stack([np.ones_like(x), (x - x.mean()) / x.std()])
    try:
        return float(sm.Logit(y, X).fit(disp=0, maxiter=100).llf)
    except (np.linalg.LinAlgError, ValueError):
        return -np.inf


def one_feature_fits(frame: pd.DataFrame, outcome: str, features) -> dict[str, tuple[str, float]]:
    """Per feature: the transform whose one-feature logistic fit has the highest likelihood,
    and that likelihood (the log of it)."""
    from ._infer import TRANSFORM_FUNCTIONS

    X = numeric(frame, features)
    y = frame[outcome].to_numpy(float)
    out = {}
    for f in X.columns:
        options = candidate_transforms(X[f])
        fits = [_loglik(y, np.asarray(TRANSFORM_FUNCTIONS[t](X[f]), float)) for t in options]
        best = int(np.argmax(fits))                      # argmax keeps the first of a tie
        out[f] = (options[best], fits[best])
    return out


def choose_transforms(frame: pd.DataFrame, outcome: str, features) -> dict[str, str]:
    """Per feature, the transform whose one-feature logistic fit has the highest likelihood."""
    return {f: t for f, (t, _) in one_feature_fits(frame, outcome, features).items()}


def categories(frame: pd.DataFrame, features) -> dict[str, list[str]]:
    """One-hot levels per category: 0/1 columns that share a name prefix (cut at ``_``),
    at least two of them, at most one 1 in any row; each level under its longest such
    prefix. ``{"industry": ["industry_fintech", "industry_software"]}``."""
    flags = [f for f in features
             if set(pd.to_numeric(frame[f], errors="coerce").dropna().unique()) <= {0, 1}]
    by_prefix: dict[str, list[str]] = {}
    for f in flags:
        parts = f.split("_")
        for i in range(1, len(parts)):
            by_prefix.setdefault("_".join(parts[:i]), []).append(f)
    out, taken = {}, set()
    for prefix in sorted(by_prefix, key=len, reverse=True):
        levels = [f for f in by_prefix[prefix] if f not in taken]
        if len(levels) < 2:
            continue
        if (numeric(frame, levels).sum(axis=1) <= 1).all():
            out[prefix] = levels
            taken.update(levels)
    return out


def collinear_groups(frame: pd.DataFrame, features, threshold: float = 0.8) -> list[list[str]]:
    """Groups (in the order of ``features``) whose members have ``|Spearman rho| >=
    threshold`` pairwise; a feature alone is a group of one."""
    features = list(features)
    if len(features) < 2:
        return [features] if features else []
    ranks = numeric(frame, features).rank().to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.nan_to_num(np.corrcoef(ranks, rowvar=False))
    labels = complete_clusters(rho, threshold)
    groups: dict[int, list[str]] = {}
    for f, g in zip(features, labels):
        groups.setdefault(int(g), []).append(f)
    return list(groups.values())


def _word(feature: str) -> str:
    parsed = event_family(feature)
    if parsed is None:
        return feature.replace("_", " ")
    event, family, _ = parsed
    name = event.replace("_", " ")
    return {"volume": name, "prev": f"{name} the 30 days before",
            "velocity": f"{name} growth", "active_users": f"users who {name}"}[family]


def words(members) -> str:
    """A group in business words: its members' signals joined by "or", each once."""
    return " or ".join(dict.fromkeys(_word(m) for m in members))
