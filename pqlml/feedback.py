"""The sales feedback loop: how often sales accepts what each rule, tier, funnel and score band sends.

Reps accept or reject the leads they get, with a reason (``[data.dispositions]``:
``entity_id``, ``at``, ``disposition`` in accepted / rejected / converted, ``reason``,
``rep``). Each disposition is tied to the lead's snapshot: the latest scheduled
``as_of`` at or before ``at`` whose horizon still covers it (``as_of <= at < as_of +
horizon``, the window the ``accepted`` label uses). The rules, tier and funnel are then
evaluated on that snapshot's features, and a model (when given) scores it.

A disposition that fits no snapshot is never dropped silently: it is listed in
``not_attached`` with the reason (before the first as_of, beyond every horizon, an
entity pqlml does not know or that was no candidate then).

Acceptance is ``accepted`` or ``converted`` among the dispositions of a group, with a
95% Wilson interval, over all periods (``period == "all"``) and per as_of; ``reasons``
gives the most common rejection reasons per tier.

Examples
--------
>>> import tempfile
>>> from pqlml import runner
>>> from pqlml.simulate import simulate
>>> out = tempfile.mkdtemp()
>>> sim = simulate(n_accounts=400, seed=3, out=out, months=8)
>>> project = runner.features(sim.config, f"{out}/features.csv").project   # opened once
>>> fb = acceptance(project.features(), project.tables["dispositions"],
...                 settings=project.config, project=project)
>>> tiers = fb.rates.query("kind == 'tier' and period == 'all'")
>>> int(tiers.entities.sum()) + len(fb.not_attached) == fb.dispositions
True
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import PqlmlError
from .rules import FUNNELS, assign, group_rates, plot_rates, user_funnels
from .tiers import TIERS
from .schema import entity_key
from .snapshots import schedule_dates
from .outputs import save_figure, write_frames

__all__ = ["Feedback", "acceptance", "attach", "FEEDBACK_FILES"]

#: What :meth:`Feedback.write` writes into its folder.
FEEDBACK_FILES = ("acceptance.csv", "rejection_reasons.csv", "leads.csv", "not_attached.csv",
                  "acceptance.png")

YES = ("accepted", "converted")


@dataclass
class Feedback:
    """Acceptance per group, rejection reasons per tier, the leads and what was not attached."""

    rates: pd.DataFrame         # period (as_of, and "all"), kind, group, entities (dispositions),
                                # accepted, rate, Wilson CI
    reasons: pd.DataFrame       # tier, reason, rejections, share of the tier's rejections
    leads: pd.DataFrame         # one row per attached disposition, with its groups
    not_attached: pd.DataFrame  # dispositions tied to no snapshot, with the reason
    dispositions: int = 0

    def write(self, out: str | Path) -> Path:
        """``acceptance.csv``, ``rejection_reasons.csv``, ``leads.csv``,
        ``not_attached.csv`` and ``acceptance.png`` into folder ``out``."""
        out = Path(out)
        write_frames({out / "acceptance.csv": self.rates,
                      out / "rejection_reasons.csv": self.reasons,
                      out / "leads.csv": self.leads, out / "not_attached.csv": self.not_attached})
        return save_figure(plot_rates(self.rates, "accepted"), out / "acceptance.png")


def attach(dispositions: pd.DataFrame, dates, horizon_days: int) -> pd.DataFrame:
    """Each disposition's snapshot: ``as_of`` = the latest date <= ``at`` with ``at < as_of +
    horizon``; NaT with a ``why`` otherwise.

    Examples
    --------
    >>> d = pd.DataFrame({"entity_id": ["a", "b", "c"], "at": pd.to_datetime(
    ...     ["2024-02-10", "2024-01-01", "2024-03-20"], utc=True)})
    >>> a = attach(d, ["2024-02-01", "2024-03-01"], 14)
    >>> a.as_of.tolist()[0], a.as_of.isna().tolist()
    (Timestamp('2024-02-01 00:00:00+0000', tz='UTC'), [False, True, True])
    >>> a.why.tolist()[1:]
    ['before the first as_of (2024-02-01)', '14 days or more after the last as_of before it (2024-03-01)']
    """
    dates = pd.DatetimeIndex(sorted({pd.Timestamp(d) for d in dates}))
    dates = dates.tz_localize("UTC") if dates.tz is None else dates.tz_convert("UTC")
    at = pd.DatetimeIndex(dispositions["at"])
    idx = dates.searchsorted(at, side="right") - 1         # the last date at or before at
    out = dispositions.copy()
    if not len(dates):
        raise PqlmlError("No as_of dates to attach dispositions to. Fix: set [schedule] start "
                         "and end, or pass as_of.")
    before = dates[np.maximum(idx, 0)]
    late = np.asarray((at - before) >= pd.Timedelta(days=horizon_days))
    prev = pd.Series(before, index=out.index)
    out["as_of"] = prev.where((idx >= 0) & ~late)
    out["why"] = ""
    out.loc[idx < 0, "why"] = f"before the first as_of ({dates[0].date()})"
    out.loc[(idx >= 0) & late, "why"] = [f"{horizon_days} days or more after the last as_of "
                                         f"before it ({d.date()})" for d in prev[(idx >= 0) & late]]
    return out


def acceptance(X: pd.DataFrame, dispositions, *, settings, project, model=None, as_of=None,
               bands: int = 5) -> Feedback:
    """Acceptance rates per rule, tier, funnel, model score band and rep; rejection reasons.

    ``X``: the feature table of the snapshot dates (``project.features(as_of)``);
    ``dispositions``: sales' verdicts (``project.tables["dispositions"]``, a DataFrame or an
    ibis table; None when the config has none: an error naming the fix); ``settings``: the
    config (``schedule``, ``labels``, ``project``, the rules and tiers); ``project``: the
    open project the rules, tiers and funnels of the attached leads read their accounts'
    attributes and leads from, and the tables that say why a verdict names no snapshot.
    ``model``: a :class:`~pqlml.model.Model` (or anything with ``predict(frame)``) whose
    probabilities are cut into ``bands`` quantile bands over the attached leads.
    ``as_of``: the snapshot dates (default: the config's schedule), those of ``X``.
    """
    cfg = settings
    if dispositions is None:
        raise PqlmlError("No [data.dispositions] table in the config: acceptance needs sales' "
                         "verdicts. Fix: add\n[data.dispositions]\nsource = \"dispositions.csv\"\n"
                         "(entity_id, at, disposition, reason, rep).")
    d = (dispositions.copy() if isinstance(dispositions, pd.DataFrame)
         else dispositions.to_pyarrow().to_pandas())
    if d.empty:
        raise PqlmlError("The dispositions table has no rows: there is no feedback to report.")
    d["entity_id"] = d.entity_id.astype(str)
    dates = schedule_dates(cfg.schedule) if as_of is None else \
        ([as_of] if isinstance(as_of, str) else list(as_of))
    d = attach(d, dates, cfg.labels.horizon_days)
    entity = cfg.project.entity
    key = entity_key(entity)
    d["as_of"] = d.as_of.astype(X.as_of.dtype)
    known = X[[key, "as_of"]].rename(columns={key: "entity_id"}).assign(_known=True)
    d = d.merge(known, on=["entity_id", "as_of"], how="left")
    gone = d.as_of.notna() & d._known.isna()
    d.loc[gone, "why"] = "not a candidate at that as_of (an entity pqlml does not know, or created later)"
    if entity == "user" and "accounts" in project.tables:
        d.loc[_account_ids(project, d.entity_id), "why"] = (
            "an account id: this project models users (project.entity = \"user\"), so a "
            "verdict must name the user (entity_id = user_id)")
    attached = d[d.why == ""].drop(columns=["_known", "why"]).reset_index(drop=True)
    not_attached = d[d.why != ""].drop(columns=["_known"]).reset_index(drop=True)
    if attached.empty:
        why = ", ".join(f"{n:,} {w}" for w, n in not_attached.why.value_counts().items())
        raise PqlmlError(f"None of the {len(d):,} dispositions "
                         f"({project.report.files.get('dispositions', 'dispositions')}, column "
                         f"entity_id) fits a {entity} snapshot: {why}. Fix: key the "
                         f"dispositions by {key} and date them within labels.horizon_days after "
                         "a scheduled as_of.")
    leads = _groups(project, X, attached, key, model, bands)
    return Feedback(_rates(leads), _reasons(leads), leads, not_attached, len(d))


def _account_ids(project, ids: pd.Series) -> pd.Series:
    """Which ``ids`` are account ids and no user's id."""
    accounts = project.tables["accounts"].select("account_id").to_pyarrow().to_pandas()
    users = set() if project.users is None else \
        set(project.users.select("user_id").to_pyarrow().to_pandas().user_id.astype(str))
    return ids.isin(set(accounts.account_id.astype(str)) - users)


def _groups(project, X, attached, key, model, bands) -> pd.DataFrame:
    pairs = attached[["entity_id", "as_of"]].drop_duplicates().rename(columns={"entity_id": key})
    sub = X.merge(pairs, on=[key, "as_of"], how="inner").reset_index(drop=True)
    groups = sub[[key, "as_of"]].copy()
    if project.config.project.entity == "account":
        tiers = assign(project.with_attributes(sub), settings=project.config,
                       leads=project.leads())
        rule_cols = [c for c in tiers.columns if c.startswith("rule_")]
        groups = pd.concat([groups, tiers[rule_cols + ["funnel", "tier"]]], axis=1)
    else:       # the rules and their tiers are about accounts; a user's funnel is its account's
        users = project.with_attributes(sub)
        groups["funnel"] = user_funnels(users, project.accounts_then(users),
                                        settings=project.config).to_numpy()
    if model is not None:
        p = np.asarray(model.predict(sub), float)
        groups["probability"] = p
        groups["score_band"] = _bands(p, bands)
    leads = attached.merge(groups.rename(columns={key: "entity_id"}), on=["entity_id", "as_of"],
                           how="left", validate="many_to_one")
    leads["accepted"] = leads.disposition.isin(YES)
    return leads


def _bands(p: np.ndarray, bands: int) -> pd.Categorical:
    """Quantile bands of the score, named by their probability range, lowest first."""
    codes = pd.qcut(p, bands, labels=False, duplicates="drop")
    codes = np.nan_to_num(codes, nan=0).astype(int)     # one score for all: a single band
    edges = pd.Series(p).groupby(codes).agg(["min", "max"])
    for digits in (0, 1, 2):        # as coarse as the bands stay distinct and show their range
        names = {k: f"{r['min']:.{digits}%}-{r['max']:.{digits}%}" for k, r in edges.iterrows()}
        ranged = all(r["min"] == r["max"] or f"{r['min']:.{digits}%}" != f"{r['max']:.{digits}%}"
                     for _, r in edges.iterrows())
        if len(set(names.values())) == len(names) and ranged:
            break
    else:
        names = {k: f"band {k + 1}: {v}" for k, v in names.items()}
    return pd.Categorical([names[c] for c in codes], categories=[names[k] for k in sorted(names)])


def _rates(leads: pd.DataFrame) -> pd.DataFrame:
    kinds = {}
    for c in [c for c in leads.columns if c.startswith("rule_")]:
        kinds[f"rule: {c.removeprefix('rule_')}"] = pd.Categorical(
            leads[c].map({True: "flagged", False: "not flagged"}), ["not flagged", "flagged"])
    if "tier" in leads:
        kinds["tier"] = pd.Categorical(leads.tier, TIERS)
    if "funnel" in leads:
        kinds["funnel"] = pd.Categorical(leads.funnel, FUNNELS)
    if "score_band" in leads:
        kinds["score band"] = leads.score_band
    if "rep" in leads:
        kinds["rep"] = pd.Categorical(leads.rep.fillna("(none)"))
    kinds = {k: pd.Series(v, index=leads.index) for k, v in kinds.items()}
    return group_rates(leads.assign(accepted=leads.accepted.astype(int)), kinds, ("accepted",))


def _reasons(leads: pd.DataFrame, top: int = 3) -> pd.DataFrame:
    cols = ["tier", "reason", "rejections", "share"]
    if "reason" not in leads or "tier" not in leads:
        return pd.DataFrame(columns=cols)
    rej = leads[leads.disposition == "rejected"].assign(
        reason=lambda f: f.reason.fillna("(no reason given)"))
    if rej.empty:
        return pd.DataFrame(columns=cols)
    n = rej.groupby(["tier", "reason"]).size().rename("rejections").reset_index()
    n["share"] = n.rejections / n.groupby("tier").rejections.transform("sum")
    n["tier"] = pd.Categorical(n.tier, TIERS)
    n = n.sort_values(["tier", "rejections", "reason"], ascending=[True, False, True])
    return n.groupby("tier", observed=True).head(top).reset_index(drop=True)[cols]
