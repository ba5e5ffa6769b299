"""A touch effect read from rare randomised touches and a noisy propensity model: the
design bound (:func:`pqlml.uplift._propensity.within_design`) and the cluster-robust CI
(:func:`pqlml.experiment.mean_ci`) keep the AIPW mean honest, where the raw model
propensities make it heavy-tailed. Known truth: every row's effect is 0.02."""

import numpy as np
import pandas as pd

from pqlml.experiment import mean_ci
from pqlml.model import bootstrap_ci
from pqlml.uplift import aipw
from pqlml.uplift._propensity import within_design

EFFECT, BASE, RATE, N = 0.02, 0.04, 0.03, 3000


def _draw(rng):
    """One as_of: 3% of the rows assigned to touch and 3% held out at random, nobody else
    touched; the model's propensity is the truth times a log-normal error."""
    u = rng.random(N)
    arm = np.where(u < RATE, "touch", np.where(u < 2 * RATE, "holdout", None))
    t = (arm == "touch").astype(int)
    y = (rng.random(N) < BASE + EFFECT * t).astype(int)
    e_model = np.clip(RATE * np.exp(rng.normal(0, 1.2, N)), 1e-4, 0.99)
    return y, t, arm, e_model


def test_the_design_bound_keeps_the_aipw_mean_honest():
    rng = np.random.default_rng(0)
    raw_err, bound_err, covered, bootstrap_covered = [], [], 0, 0
    reps = 200
    for _ in range(reps):
        y, t, arm, e = _draw(rng)
        mu0, mu1 = np.full(N, BASE), np.full(N, BASE + EFFECT)
        raw = aipw(y, t, mu0, mu1, e, clip=0.0, rate=RATE)
        bounded_e = within_design(e, np.zeros(N), arm)
        assert (bounded_e >= (arm == "touch").mean()).all()
        psi = aipw(y, t, mu0, mu1, bounded_e, clip=0.0, rate=RATE)
        raw_err.append(raw.mean() - EFFECT)
        bound_err.append(psi.mean() - EFFECT)
        _, low, high = mean_ci(psi, np.arange(N))
        covered += low <= EFFECT <= high
        b_low, b_high = bootstrap_ci(lambda i: psi[i].mean(), np.arange(N), reps=50)
        bootstrap_covered += b_low <= EFFECT <= b_high
    rmse = lambda err: float(np.sqrt(np.mean(np.square(err))))    # noqa: E731
    # the model's small propensities make the raw mean far noisier than the design allows
    assert rmse(bound_err) < 0.5 * rmse(raw_err)
    # the cluster-robust CI covers the truth at about its 95% level
    assert covered / reps >= 0.90
    assert covered >= bootstrap_covered


def test_mean_ci_is_the_cluster_robust_mean():
    """Independent: the CR1 variance of a mean, by hand."""
    rng = np.random.default_rng(1)
    groups = rng.integers(0, 40, 300)
    values = rng.normal(0, 1, 300) + groups * 0.05
    mean, low, high = mean_ci(values, groups)
    sums = pd.Series(values - values.mean()).groupby(groups).sum()
    g, n = len(sums), len(values)
    se = np.sqrt((sums ** 2).sum() * g / (g - 1)) / n      # CR1: (n - 1) / (n - k) is 1 for k = 1
    assert np.isclose(mean, values.mean())
    assert np.isclose(high - mean, 1.959964 * se, rtol=1e-4)
    assert np.isclose(mean - low, high - mean)
