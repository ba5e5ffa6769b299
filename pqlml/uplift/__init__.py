"""Whom a call changes: the effect of a sales touch on conversion, per account.

:mod:`._learners` holds the T-, X- and DR-learners (scikit-learn estimators whose
``predict`` is a touch's effect on P(convert), in probability points); :mod:`._overlap`
says which segments have comparable touched and untouched accounts (the others are never
ranked); :mod:`._evaluate` scores a ranking at capacity (Qini and uplift curves, incremental
conversions per 100 touches, estimated and, on simulated data, true).
"""

from ._learners import (LEARNERS, DRLearner, TLearner, XLearner, aipw, default_classifier,
                        default_regressor)

__all__ = ["TLearner", "XLearner", "DRLearner", "LEARNERS", "default_classifier",
           "default_regressor", "aipw"]
