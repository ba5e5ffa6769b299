"""Whom a call changes: the effect of a sales touch on conversion, per account.

:mod:`._learners` holds the T-, X- and DR-learners (scikit-learn estimators whose
``predict`` is a touch's effect on P(convert), in probability points); :mod:`._overlap`
says which segments have comparable touched and untouched accounts (the others are never
ranked); :mod:`._evaluate` scores a ranking at capacity (Qini and uplift curves, incremental
conversions per 100 touches, estimated and, on simulated data, true); :func:`uplift` runs it
all forward in time on a project's snapshots (what ``pqlml uplift`` calls) and
:mod:`._report` writes its report.
"""

from ._evaluate import at_capacity, qini_coefficient, qini_curves, qini_with_cis, top_per_period
from ._learners import (LEARNERS, DRLearner, TLearner, XLearner, default_classifier,
                        default_regressor)
from ._propensity import aipw, balanced_propensity
from ._overlap import MIN_COMPARABLE, Overlap, overlap
from ._report import UPLIFT_FILES
from ._run import Uplift, uplift
from ._treatment import assigned, per_period, touched

__all__ = ["uplift", "Uplift", "UPLIFT_FILES", "overlap", "Overlap", "MIN_COMPARABLE",
           "touched", "assigned", "per_period", "qini_curves", "qini_coefficient", "qini_with_cis",
           "top_per_period", "at_capacity", "TLearner", "XLearner", "DRLearner", "LEARNERS",
           "default_classifier", "default_regressor", "aipw", "balanced_propensity"]
