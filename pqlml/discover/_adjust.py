"""The adjusted step: which signals keep an effect once the others, size and activity are in.

:func:`adjust` takes the candidate signals and the controls and

1. chooses each feature's transform by the data (:func:`._groups.choose_transforms`);
2. gathers the features into signals, first by the catalog (an event's windows, previous
   30 days, growth and active users are one signal; the activity totals are one; the one-hot
   levels of a category are one: :func:`pqlml.explain.signal_of`, :func:`._groups.categories`),
   then by the data: within a signal, of features that move together (``|Spearman rho| >=
   threshold`` pairwise, :func:`._groups.collinear_groups`) only the best one-feature fit
   enters (an event's 30-day volume and its growth may both enter; its 7- and 90-day volumes
   then rarely add a column); across signals, signals whose best columns move together are
   one group, entered through the strongest signal's columns and reported under every
   name ("security settings viewed or sso page viewed"), since the data cannot tell them
   apart. A category's levels enter as 0/1 columns (not standardised); when they cover every
   row they are effect-coded, each level's odds ratio against the average level (none is
   hidden as the reference: the most common one's effect is minus the sum of the others',
   its interval from their covariance), else against the rows in none of them;
3. fits one logistic model (statsmodels, errors clustered by entity; an L2 refit on
   separation, see :mod:`._infer`) and tests each group as a whole: the Wald z of its column,
   or the joint Wald chi-square of its columns. The group is the unit tested:
   Benjamini-Hochberg q-values run over the groups, and every row of a group carries its
   group's q (``q_value_adjusted``) beside its own column's p (``p_value_adjusted``);
4. for each row significant alone but not adjusted (``vanishes``), names the group that
   absorbs it (``absorbed_by``): among the three significant groups most correlated with it,
   the one whose removal from the model raises its z the most.

Examples
--------
>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(1)
>>> n = 6000
>>> size = rng.gamma(2.0, 2.0, n)
>>> frame = pd.DataFrame({"account_id": np.arange(n), "size": size,
...                       "webinars": rng.poisson(size / 2),          # rides on size only
...                       "security": rng.poisson(1.0, n)})
>>> frame["sso"] = frame.security + (rng.random(n) < 0.03)           # collinear, no effect
>>> eta = -3 + 0.35 * size + 0.8 * np.log1p(frame.security)
>>> frame["y"] = rng.random(n) < 1 / (1 + np.exp(-eta))
>>> table, notes = adjust(frame, "y", ["webinars", "security", "sso"], controls=["size"])
>>> bool(table.set_index("group").loc["security or sso", "q_value_adjusted"] < 0.05)
True
>>> row = table.set_index("feature").loc["webinars"]
>>> bool(row.vanishes), row.absorbed_by
(True, 'size')
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.multitest import multipletests

from ._groups import categories, collinear_groups, numeric, one_feature_fits, words
from ._infer import _fit, _full_rank, _groups, _vif, adjusted_effects, design

__all__ = ["adjust"]

_ABSORBERS = 3          # the most correlated groups tried as the absorber of a vanished signal


def _signals(frame, features) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Catalog signals (an event's windows, growth and users; a category's levels; the
    activity totals ...: :func:`pqlml.explain.signal_of`) -> members, and the categories."""
    from ..explain._words import signal_of

    cats = categories(frame, features)
    level = {f: prefix for prefix, levels in cats.items() for f in levels}
    out: dict[str, list[str]] = {}
    for f in features:
        key = level.get(f) or signal_of(f)
        if key in cats and f not in level:
            key = f
        out.setdefault(key, []).append(f)
    return out, cats


def _plan(frame, outcome, features, threshold, notes):
    """Groups as (label, members, model columns), transforms, effect-coded categories
    (reference level -> levels) and every category level."""
    fits = one_feature_fits(frame, outcome, features)
    transforms = {f: t for f, (t, _) in fits.items()}
    signals, cats = _signals(frame, features)
    lead = {max(members, key=lambda f: fits[f][1]): key for key, members in signals.items()}
    groups, derived = [], {}
    for together in collinear_groups(frame, list(lead), threshold):
        keys = sorted((lead[c] for c in together), key=lambda k: -max(
            fits[f][1] for f in signals[k]))
        label = " or ".join(k.replace("_", " ") for k in keys)
        members = [f for k in keys for f in signals[k]]
        if keys[0] in cats:
            cols = list(cats[keys[0]])
            if (numeric(frame, cols).sum(axis=1) == 1).all():      # levels cover every row
                derived[max(cols, key=lambda f: numeric(frame, [f])[f].sum())] = cols
        else:                  # of the members that move together, the best fit alone
            plain = [f for k in keys if k not in cats for f in signals[k]]
            cols = sorted((max(c, key=lambda f: fits[f][1])
                           for c in collinear_groups(frame, plain, threshold)),
                          key=lambda f: -fits[f][1])
        groups.append((label, members, cols))
        if len(keys) > 1:
            notes.append(f"{', '.join(keys)} move together (|Spearman rho| >= {threshold:g}): "
                         f"reported as one signal, {label!r}, through {', '.join(cols)}")
    levels = {f for levels in cats.values() for f in levels}
    return groups, transforms, derived, levels


def _matrix(frame, groups, transforms, derived, levels) -> pd.DataFrame:
    """Standardised, transformed columns; a category's levels as 0/1 (effect-coded against
    the ``derived`` level when the levels cover every row); and the constant."""
    used = {c for _, _, cols in groups for c in cols}
    levels = levels & used
    plain = [c for _, _, cols in groups for c in cols if c not in levels]
    X = design(frame, plain, transforms=transforms)
    raw = numeric(frame, sorted(levels))
    coded = {c: raw[c] - raw[reference] for reference, cols in derived.items()
             for c in cols if c != reference}
    coded |= {c: raw[c] for c in levels - {c for cols in derived.values() for c in cols}}
    X = pd.concat([X, pd.DataFrame(coded, index=X.index)], axis=1)
    order = [c for _, _, cols in groups for c in cols if c in X.columns and c not in derived]
    return sm.add_constant(X[order], has_constant="add")


def _group_tests(fit, X, groups, alpha):
    """Per group: Wald p (z for one column, chi-square for several)."""
    params = pd.Series(np.asarray(fit.params), index=X.columns)
    cov = pd.DataFrame(np.asarray(fit.cov_params()), index=X.columns, columns=X.columns)
    out = []
    for _, _, columns in groups:
        cols = [c for c in columns if c in X.columns]
        if not cols:
            out.append(np.nan)
            continue
        b = params[cols].to_numpy()
        v = cov.loc[cols, cols].to_numpy()
        chi2 = float(b @ np.linalg.pinv(v) @ b)
        out.append(float(stats.chi2.sf(chi2, len(cols))))
    return out


def _z(fit, X) -> pd.Series:
    return pd.Series(np.asarray(fit.params) / np.sqrt(np.diag(np.asarray(fit.cov_params()))),
                     index=X.columns)


def adjust(frame: pd.DataFrame, outcome: str, features, *, controls=(), cluster: str | None =
           "account_id", alpha: float = 0.05, threshold: float = 0.8
           ) -> tuple[pd.DataFrame, list[str]]:
    """The adjusted table (one row per model column, see the module docstring) and notes."""
    features = list(dict.fromkeys([*features, *(c for c in controls if c in frame)]))
    notes: list[str] = []
    X0 = numeric(frame, features)
    constant = [f for f in features if X0[f].nunique() < 2]
    notes += [f"{c} is constant in these rows: left out of the model" for c in constant]
    features = [f for f in features if f not in constant]
    groups, transforms, derived, levels = _plan(frame, outcome, features, threshold, notes)
    X, dependent = _full_rank(_matrix(frame, groups, transforms, derived, levels))
    notes += [f"{c} is a linear combination of the columns before it: left out of the model"
              for c in dependent]
    y = frame[outcome].to_numpy(float)
    clusters = _groups(frame, cluster)
    fit, method, more = _fit(y, X, clusters)
    notes += more
    penalised = method.startswith("L2")
    table = _rows(frame, outcome, fit, X, groups, transforms, cluster, alpha, penalised,
                  derived, levels)
    vif = _vif(X)
    table["vif"] = table.feature.map(vif)
    table["direction"] = _directions(table, fit, X, groups, levels)
    if not penalised:
        table["absorbed_by"] = _absorbed(table, fit, X, y, clusters, groups, alpha)
    else:
        table["absorbed_by"] = None
    for r in table[table.absorbed_by.notna()].drop_duplicates("group").itertuples():
        notes.append(f"{r.group} is significant alone (OR {r.odds_ratio_alone:.2f}) but not "
                     f"once the others are in (OR {r.odds_ratio_adjusted:.2f}, q "
                     f"{r.q_value_adjusted:.2g}): {r.absorbed_by} carries its effect")
    return table, notes


def _estimates(fit, X, alpha, penalised, derived):
    """Coefficient, interval and p per column, and per derived (effect-coded) level."""
    params = pd.Series(np.asarray(fit.params), index=X.columns)
    if penalised:
        nan = pd.Series(np.nan, index=[*X.columns, *derived])
        return pd.concat([params, nan[list(derived)]]), nan, nan, nan
    cov = pd.DataFrame(np.asarray(fit.cov_params()), index=X.columns, columns=X.columns)
    se = pd.Series(np.sqrt(np.diag(cov)), index=X.columns)
    for reference, cols in derived.items():
        others = [c for c in cols if c != reference and c in X.columns]
        params[reference] = -params[others].sum()
        se[reference] = float(np.sqrt(cov.loc[others, others].to_numpy().sum()))
    z = stats.norm.ppf(1 - alpha / 2)
    p = pd.Series(2 * stats.norm.sf(np.abs(params / se)), index=params.index)
    return params, params - z * se, params + z * se, p


def _directions(table, fit, X, groups, levels) -> list[str]:
    """"raises" or "lowers": a category level by its own coefficient; any other group by
    how its part of the linear predictor moves with its leading column (a signal entering
    as volume and growth can have columns of both signs and still one direction)."""
    params = pd.Series(np.asarray(fit.params), index=X.columns)
    by_group = {}
    for label, _, cols in groups:
        cols = [c for c in cols if c in X.columns]
        if cols:
            part = X[cols].to_numpy(float) @ params[cols].to_numpy()
            by_group[label] = np.corrcoef(part, X[cols[0]])[0, 1] if np.std(part) > 0 else 0.0
    out = []
    for r in table.itertuples():
        value = np.log(r.odds_ratio_adjusted) if r.feature in levels else by_group.get(r.group,
                                                                                       np.nan)
        out.append("raises" if value > 0 else "lowers" if value < 0 else None)
    return out


def _rows(frame, outcome, fit, X, groups, transforms, cluster, alpha, penalised, derived,
          levels):
    params, low, high, p = _estimates(fit, X, alpha, penalised, derived)
    group_p = [np.nan] * len(groups) if penalised else _group_tests(fit, X, groups, alpha)
    ok = [i for i, v in enumerate(group_p) if np.isfinite(v)]
    group_q = np.full(len(groups), np.nan)
    if ok:
        group_q[ok] = multipletests([group_p[i] for i in ok], method="fdr_bh")[1]
    rows = []
    for (label, members, columns), gp, gq in zip(groups, group_p, group_q):
        cols = [c for c in columns if c in X.columns or c in derived]
        for c in cols:
            alone, _ = adjusted_effects(frame, outcome, [c], cluster=cluster,
                                        transforms={c: transforms[c]}, alpha=alpha,
                                        standardise=c not in levels)
            a = alone.iloc[0]
            rows.append({"feature": c, "group": label, "members": ";".join(members),
                         "transform": transforms[c], "odds_ratio_alone": a.odds_ratio,
                         "or_low_alone": a.or_low, "or_high_alone": a.or_high,
                         "p_value_alone": a.p_value, "odds_ratio_adjusted": np.exp(params[c]),
                         "or_low_adjusted": np.exp(low[c]), "or_high_adjusted": np.exp(high[c]),
                         "p_value_adjusted": p[c], "p_value_group": gp,
                         "q_value_adjusted": gq})
    table = pd.DataFrame(rows)
    table["vanishes"] = (table.p_value_alone < alpha) & ~(table.q_value_adjusted <= alpha)
    return table


def _refit_z(y, X, start, kw) -> pd.Series | None:
    """z per column of the model on ``X``; None when it cannot be fitted (separation)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return _z(sm.Logit(y, X).fit(disp=0, maxiter=200, start_params=start, **kw), X)
        except (np.linalg.LinAlgError, ValueError):
            return None


def _absorbed(table, fit, X, y, clusters, groups, alpha) -> list:
    """Per vanished row, the significant group whose removal raises its z (in its own
    direction) most (what carries an effect is itself significant: the refits stay few)."""
    kept = set(table.group[table.q_value_adjusted <= alpha])
    z_full = _z(fit, X)
    corr = X.drop(columns="const").corr().abs()
    kw = {"cov_type": "cluster", "cov_kwds": {"groups": clusters}} if clusters is not None \
        else {}
    refits: dict[int, pd.Series] = {}
    out = []
    for r in table.itertuples():
        if not r.vanishes or r.feature not in corr.columns:
            out.append(None)
            continue
        sign = np.sign(np.log(r.odds_ratio_alone))
        others = [i for i, (label, _, cols) in enumerate(groups) if r.feature not in cols
                  and label in kept and any(c in corr.columns for c in cols)]
        others.sort(key=lambda i: -max(corr.loc[r.feature, c] for c in groups[i][2]
                                       if c in corr.columns))
        best, gain = None, 0.0
        for i in others[:_ABSORBERS]:
            if i not in refits:
                keep = [c for c in X.columns if c not in groups[i][2]]
                refits[i] = _refit_z(y, X[keep], fit.params[keep], kw)
            if refits[i] is None:
                continue
            change = sign * (refits[i][r.feature] - z_full[r.feature])
            if change > gain:
                best, gain = groups[i][0], change
        out.append(best)
    return out
