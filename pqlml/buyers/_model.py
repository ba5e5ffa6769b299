"""Which user is the account's buyer, and is the buyer in the product at all.

:class:`BuyerModel` is two fits on the candidate rows (:func:`pqlml.buyers.candidates`), one
group per (account, as_of):

* **who**, a conditional logit over the group's users: ``P(user | buyer in product) =
  exp(s_user) / sum(exp(s))`` with ``s = Z @ coef_`` over the standardised signals (title
  rank, sign-up seniority, log admin changes, invites, pricing and legal / security views,
  activity share, log events, log tenure, first user), fitted by penalised maximum likelihood
  on the groups whose buyer was one of them;
* **whether**, a logistic regression of ``buyer_in_product`` (the buyer was a candidate) on
  the group: segment, employees, team size, the most senior title and stated seniority, the
  team's buyer actions, the log-sum-exp of the users' scores (how buyer-like the best of
  them looks) and the account's leads from outside the product (when the rows have them).

``P(user is the buyer) = buyer_in_product * P(user | in product)``.

Examples
--------
>>> import pandas as pd
>>> X = pd.DataFrame({"account_id": list("aabbccdd"), "as_of": "2025-01-01",
...                   "user_id": [f"u{i}" for i in range(8)], "segment": "smb",
...                   "employees": 40.0, "title_rank": [4.0, 1, 1, 3, 1, 1, 2, 1],
...                   "stated_seniority": 0.0, "admin_90d": [2.0, 0, 0, 1, 0, 0, 0, 1],
...                   "invites_90d": 0.0, "pricing_90d": [1.0, 0, 0, 1, 0, 1, 0, 0],
...                   "legal_security_90d": 0.0, "activity_share": 0.5, "events_30d": 5.0,
...                   "tenure_days": 30.0, "first_user": [1.0, 0, 1, 0, 1, 0, 1, 0]})
>>> m = BuyerModel().fit(X, [1, 0, 0, 1, 0, 0, 0, 0])     # c and d: the buyer was outside
>>> ranked = m.rank(X)
>>> ranked.loc[ranked.rank_in_account == 1, "user_id"].tolist()
['u0', 'u3', 'u5', 'u7']
>>> bool((ranked.buyer_in_product[:4] > ranked.buyer_in_product[4:].max()).all())
True
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression

from ..errors import PqlmlError

__all__ = ["BuyerModel", "rank_by", "title_score", "activity_score", "GROUP"]

GROUP = ("account_id", "as_of")
_LOG = ("admin_90d", "invites_90d", "pricing_90d", "legal_security_90d", "events_30d",
        "tenure_days")


def _user_design(X: pd.DataFrame) -> np.ndarray:
    cols = [(X.title_rank == r).astype(float) for r in (4, 3, 2)]
    cols += [(X.stated_seniority >= r).astype(float) for r in (4, 3)]
    cols += [np.log1p(X[c].astype(float).clip(lower=0)) for c in _LOG]
    cols += [X.activity_share.astype(float), X.first_user.astype(float)]
    return np.column_stack(cols)


def _codes(X: pd.DataFrame) -> np.ndarray:
    return X.groupby(list(GROUP), sort=False).ngroup().to_numpy()


def _group_lse(s: np.ndarray, codes: np.ndarray, n: int) -> np.ndarray:
    top = np.full(n, -np.inf)
    np.maximum.at(top, codes, s)
    return top + np.log(np.bincount(codes, weights=np.exp(s - top[codes]), minlength=n))


class BuyerModel(BaseEstimator):
    """The buyer of each (account, as_of) among its candidate users (scikit-learn style).

    Parameters
    ----------
    alpha : float, default 1.0
        L2 penalty of both fits (on standardised signals), per group.
    """

    def __init__(self, alpha: float = 1.0):
        self.alpha = alpha

    def fit(self, X: pd.DataFrame, y) -> "BuyerModel":
        """``X``: candidate rows; ``y``: 1 for the row of the group's buyer, else 0 (a group
        of zeros: the buyer was outside the product)."""
        y = np.asarray(y, dtype=float)
        if len(y) != len(X):
            raise PqlmlError(f"The 'y' parameter of BuyerModel.fit must have one value per "
                             f"candidate row ({len(X)}). Got {len(y)} instead.")
        codes = _codes(X)
        n = codes.max() + 1 if len(codes) else 0
        inside = np.bincount(codes, weights=y, minlength=n) > 0
        if inside.sum() < 2 or (~inside).sum() < 2:
            raise PqlmlError(f"The buyer model needs at least 2 accounts whose buyer was a "
                             f"product user and 2 whose buyer was outside; got "
                             f"{int(inside.sum())} and {int((~inside).sum())}. Use more "
                             "history (an earlier [schedule] start) or more outcomes with "
                             "user_id.")
        Z = _user_design(X)
        self.mean_, self.scale_ = Z.mean(axis=0), Z.std(axis=0) + 1e-9
        Z = (Z - self.mean_) / self.scale_
        keep = inside[codes]
        self.coef_ = self._conditional_logit(Z[keep], y[keep], codes[keep])
        A = self._account_design(X, codes, n, fit=True)
        self.in_product_ = LogisticRegression(C=1.0 / self.alpha, max_iter=2000).fit(
            A, inside.astype(int))
        return self

    def _conditional_logit(self, Z, y, codes) -> np.ndarray:
        _, codes = np.unique(codes, return_inverse=True)
        n = codes.max() + 1
        pos = y == 1

        def loss(w):
            s = Z @ w
            lse = _group_lse(s, codes, n)
            p = np.exp(s - lse[codes])
            grad = -(Z[pos].sum(axis=0) - (p[:, None] * Z).sum(axis=0)) + self.alpha * w
            return -(s[pos].sum() - lse.sum()) + 0.5 * self.alpha * w @ w, grad
        res = minimize(loss, np.zeros(Z.shape[1]), jac=True, method="L-BFGS-B")
        return res.x

    def _scores(self, X: pd.DataFrame) -> np.ndarray:
        return ((_user_design(X) - self.mean_) / self.scale_) @ self.coef_

    def _account_design(self, X, codes, n, *, fit=False) -> np.ndarray:
        def by_group(v, how):
            out = np.full(n, -np.inf if how == "max" else 0.0)
            (np.maximum if how == "max" else np.add).at(out, codes, np.asarray(v, float))
            return out
        first = np.zeros(n, dtype=int)
        first[codes[::-1]] = np.arange(len(codes))[::-1]
        segment = X.segment.astype(str).to_numpy()[first]
        if fit:
            self.segments_ = tuple(sorted(set(segment)))
            self.employees_ = float(np.nanmedian(X.employees)) if X.employees.notna().any() else 1.0
        employees = X.employees.astype(float).fillna(self.employees_).to_numpy()[first]
        actions = X.admin_90d + X.pricing_90d
        cols = [segment == s for s in self.segments_]
        cols += [np.log10(np.maximum(employees, 1)),
                 np.log1p(np.bincount(codes, minlength=n)),
                 by_group(X.title_rank, "max") >= 4, by_group(X.title_rank, "max") >= 3,
                 by_group(X.stated_seniority, "max") >= 3,
                 np.log1p(by_group(actions, "sum")), np.log1p(by_group(X.legal_security_90d, "sum")),
                 _group_lse(self._scores(X), codes, n)]
        for c in ("outside_leads_90d", "outside_leads"):
            lead = X[c].to_numpy(dtype=float)[first] if c in X else np.zeros(n)
            cols += [np.log1p(lead)]
        A = np.column_stack(cols).astype(float)
        if fit:
            self.account_mean_, self.account_scale_ = A.mean(axis=0), A.std(axis=0) + 1e-9
        return (A - self.account_mean_) / self.account_scale_

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Per candidate row: [P(not the buyer), P(the account's buyer)]."""
        r = self.rank(X)
        return np.column_stack([1 - r.p_buyer, r.p_buyer])

    def rank(self, X: pd.DataFrame) -> pd.DataFrame:
        """``X`` (row order kept) with ``p_user_given_inside``, ``buyer_in_product``
        (the account's), ``p_buyer`` (their product) and ``rank_in_account`` (1 = the
        contact)."""
        codes = _codes(X)
        n = codes.max() + 1 if len(codes) else 0
        s = self._scores(X)
        share = np.exp(s - _group_lse(s, codes, n)[codes])
        inside = self.in_product_.predict_proba(self._account_design(X, codes, n))[:, 1]
        out = X.copy()
        out["p_user_given_inside"] = share
        out["buyer_in_product"] = inside[codes]
        out["p_buyer"] = share * inside[codes]
        out["rank_in_account"] = rank_by(out, s)
        return out


def rank_by(X: pd.DataFrame, score) -> np.ndarray:
    """1, 2, ... within each (account, as_of) by descending ``score``; ties to the user id."""
    t = pd.DataFrame({"g": _codes(X), "s": -np.asarray(score, float),
                      "u": X.user_id.astype(str).to_numpy()})
    order = t.sort_values(["g", "s", "u"], kind="stable").index
    ranks = np.empty(len(t), dtype=int)
    ranks[order] = t.loc[order].groupby("g").cumcount().to_numpy() + 1
    return ranks


def title_score(X: pd.DataFrame) -> np.ndarray:
    """The title-only baseline: the most senior title (then stated seniority, then the
    earliest sign-up)."""
    return (X.title_rank.to_numpy() * 100 + X.stated_seniority.to_numpy() * 10
            + np.tanh(X.tenure_days.to_numpy() / 1e4))


def activity_score(X: pd.DataFrame) -> np.ndarray:
    """The most-active-user baseline: events in the last 30 days (then the 90-day share)."""
    return X.events_30d.to_numpy() + X.activity_share.to_numpy() / 2
