"""A project's randomised holdout, read: assignments from the holdouts table, outcomes from
the project's label machinery, effects per segment and pooled, the arms' balance.

Time is day-grained as everywhere in pqlml: an assignment at ``at`` is labelled on its
day, ``[day, day + horizon)`` (:func:`pqlml.labels.build_labels`), and described by the
features of that day (events strictly before it). An account that had converted before
its assignment's day is left out and counted (there was nothing left to change), and so
is an assignment whose horizon runs past the end of the data (its outcome is not known
yet).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError
from ._balance import IMBALANCE, standardised_differences
from ._effects import ARMS, POOLED, estimate_effects

__all__ = ["Experiment", "analyze", "assignments_of", "HOLDOUTS_FIX"]

HOLDOUTS_FIX = ('add\n[data.holdouts]\nsource = "holdouts.parquet"\n(one row per randomised '
                "assignment: account_id, at, experiment, arm = touch / holdout)")


@dataclass
class Experiment:
    """What ``pqlml experiment analyze`` found: ``effects`` (one row per segment, the pooled
    row ``"all"`` first; :data:`~pqlml.experiment.EFFECT_COLUMNS`), ``balance``
    (:func:`~pqlml.experiment.standardised_differences`), ``summary`` (what
    ``experiment.json`` holds) and ``rows`` (one per analysed assignment: account, day,
    arm, outcome, segment)."""

    effects: pd.DataFrame
    balance: pd.DataFrame
    summary: dict
    rows: pd.DataFrame = field(repr=False)

    def write(self, out) -> list[Path]:
        """``experiment.json``, ``experiment_segments.csv``, ``balance.csv``,
        ``effects.png`` and ``report.html`` into folder ``out``, landing together."""
        from ._report import write_experiment
        return write_experiment(self, out)


def _holdouts(project, experiment: str | None) -> tuple[pd.DataFrame, list[str]]:
    frame = project.holdouts()
    if frame is None:
        raise DataError(f"The project has no holdouts table, so there is no randomised "
                        f"experiment to analyze. Fix: {HOLDOUTS_FIX}.")
    names = sorted(frame["experiment"].dropna().astype(str).unique())
    if experiment is not None:
        chosen = fnmatch.filter(names, experiment)
        if not chosen:
            shown = ", ".join(map(repr, names[:8])) + (", ..." if len(names) > 8 else "")
            raise DataError(f"No experiment named {experiment!r} in the holdouts table "
                            f"(it has {len(names)}: {shown or 'none'}). Fix: --experiment "
                            "with one of those names or a pattern such as 'name-2025-*', "
                            "or leave it out to analyze them all.")
        frame = frame[frame["experiment"].astype(str).isin(chosen)]
        names = chosen
    if frame.empty:
        raise DataError("The holdouts table has no rows. Fix: " + HOLDOUTS_FIX + ".")
    return frame, names


def assignments_of(project, experiment: str | None = None,
                   outcome: str | None = None) -> tuple[pd.DataFrame, dict]:
    """(one row per assignment with its outcome, the counts of rows left out).

    Columns: ``account_id``, ``day`` (the assignment's UTC day), ``experiment``, ``arm``,
    ``outcome`` (0/1). Left out and counted: ``converted_before`` (the account was a
    customer by the assignment's day), ``censored`` (the horizon runs past the data's end),
    ``no_outcome`` (no label: e.g. no sales verdict for ``accepted``)."""
    from ..labels import build_labels, check_outcome, outcome_table
    from ..project import spine_for

    cfg = project.config
    outcome = check_outcome(outcome or cfg.outcomes.target, project.tables)
    frame, names = _holdouts(project, experiment)
    rows = pd.DataFrame({"account_id": frame["account_id"].astype(str),
                         "day": pd.to_datetime(frame["at"], utc=True).dt.normalize(),
                         "experiment": frame["experiment"].astype(str),
                         "arm": frame["arm"].astype(str)}).reset_index(drop=True)
    spine = rows[["account_id", "day"]].drop_duplicates()
    spine = spine.rename(columns={"account_id": "entity_id", "day": "as_of"})
    labels = build_labels(spine_for(project, as_of=spine, entity="account"),
                          outcome_table(project.tables, project.events, cfg.outcomes),
                          horizon_days=cfg.labels.horizon_days, data_end=project.data_end,
                          entity="account", dispositions=project.tables.get("dispositions"),
                          exclude_prior_positives=cfg.labels.exclude_prior_positives)
    labels = labels.select("entity_id", "as_of", "censored", _y=labels[outcome]).execute()
    labels = labels.rename(columns={"entity_id": "account_id", "as_of": "day"})
    labels["day"] = pd.to_datetime(labels.day, utc=True)
    rows = rows.merge(labels, on=["account_id", "day"], how="left", validate="many_to_one")
    gone, censored = rows.censored.isna(), rows.censored.fillna(False).astype(bool)
    unknown = ~gone & ~censored & rows._y.isna()
    left_out = {"converted_before": int(gone.sum()), "censored": int(censored.sum()),
                "no_outcome": int(unknown.sum())}
    rows = rows[~gone & ~censored & ~unknown].drop(columns="censored")
    rows = rows.rename(columns={"_y": "outcome"}).astype({"outcome": int})
    return rows.reset_index(drop=True), left_out | {"experiments": names, "outcome": outcome,
                                                    "assignments": len(frame)}


def _segments(project, rows: pd.DataFrame) -> tuple[pd.DataFrame, str | None]:
    by = project.config.experiment.segment_by
    attrs = project.attributes()
    if not by or by not in attrs.columns:
        return rows, None
    return rows.merge(attrs[["account_id", by]], on="account_id", how="left",
                      validate="many_to_one"), by


def _balance(project, rows: pd.DataFrame) -> pd.DataFrame:
    """The arms' standardised differences on the features of each assignment's day."""
    spine = rows[["account_id", "day"]].drop_duplicates().rename(
        columns={"account_id": "entity_id", "day": "as_of"})
    X = project.features(spine, entity="account")
    X = X.rename(columns={"as_of": "day"})
    X["day"] = pd.to_datetime(X.day, utc=True)
    joined = rows[["account_id", "day", "arm"]].merge(X, on=["account_id", "day"], how="left")
    features = [c for c in X.columns if c not in ("account_id", "day")]
    return standardised_differences(joined, features, alpha=project.config.experiment.alpha)


def _truth(project, rows: pd.DataFrame) -> dict | None:
    """The simulator's true average effect over the analysed assignments (from
    ``truth/touches.parquet`` beside simulated data), per segment; None elsewhere."""
    path = Path(project.config.data.root) / "truth" / "touches.parquet"
    if not path.exists():
        return None
    truth = pd.read_parquet(path, columns=["account_id", "as_of", "effect"])
    truth = truth.assign(account_id=truth.account_id.astype(str),
                         day=pd.to_datetime(truth.as_of, utc=True).dt.normalize())
    truth = truth.drop(columns="as_of").drop_duplicates(["account_id", "day"])
    joined = rows.merge(truth, on=["account_id", "day"], how="left")
    if joined.effect.isna().all():
        return None
    out = {POOLED: float(joined.effect.mean())}
    if "segment_name" in joined:
        out |= joined.groupby("segment_name").effect.mean().astype(float).to_dict()
    return out | {"rows_matched": int(joined.effect.notna().sum())}


def analyze(project, *, experiment: str | None = None, outcome: str | None = None,
            balance: bool = True) -> Experiment:
    """The randomised holdout of an open project, read (see the module).

    Parameters
    ----------
    project : pqlml.project.Project
        With a holdouts table (``[data.holdouts]``: ``account_id``, ``at``, ``experiment``,
        ``arm``).
    experiment : str, optional
        The experiment's name, or a pattern (``sales-touch-2025-*``: shell-style) of
        several analysed together; None: every assignment in the table.
    outcome : str, optional
        The label (default: ``outcomes.target``), in ``[day, day + horizon)``.
    balance : bool
        Compare the arms on their pre-assignment features (builds them).

    Raises
    ------
    DataError
        No holdouts table, an unknown experiment, or an arm without analysable rows.
    """
    alpha = project.config.experiment.alpha
    rows, counts = assignments_of(project, experiment, outcome)
    for arm in ARMS:
        if not (rows.arm == arm).any():
            raise DataError(f"The experiment's {arm} arm has no assignment to analyze "
                            f"({counts['assignments']:,} assignments; left out: "
                            f"{counts['converted_before']:,} converted before, "
                            f"{counts['censored']:,} whose horizon is not over). Fix: check "
                            "the holdouts table's arm column, or wait until the horizon of "
                            "the latest assignments has passed.")
    rows, by = _segments(project, rows)
    if by is not None:
        rows = rows.rename(columns={by: "segment_name"})
    effects = estimate_effects(rows, segment="segment_name" if by else None, alpha=alpha)
    table = _balance(project, rows) if balance else standardised_differences(rows, [])
    truth = _truth(project, rows)
    if truth is not None:           # simulated data: the true average effect beside each row
        effects["true_effect"] = effects.segment.map(truth)
    summary = _summary(project, rows, counts, effects, table, by, alpha)
    if truth is not None:
        summary["truth"] = truth
    return Experiment(effects, table, summary, rows)


def _summary(project, rows, counts, effects, balance, by, alpha) -> dict:
    pooled = effects.iloc[0]
    per_day = rows.groupby("day").arm.agg(
        touch=lambda a: int((a == "touch").sum()), holdout=lambda a: int((a == "holdout").sum()))
    shares = per_day.holdout / (per_day.touch + per_day.holdout)
    notes = []
    if len(shares) > 1 and shares.max() - shares.min() > 0.1:
        notes.append(f"The holdout share differs between periods ({shares.min():.0%} to "
                     f"{shares.max():.0%}): the pooled difference then mixes periods unequally.")
    if (balance.imbalanced).any():
        notes.append(f"{int(balance.imbalanced.sum())} pre-assignment feature(s) differ "
                     f"between the arms by more than {IMBALANCE} standard deviations, beyond "
                     "chance: check that the arms were drawn at random.")
    return {"experiments": counts["experiments"], "outcome": counts["outcome"],
            "horizon_days": project.config.labels.horizon_days, "alpha": alpha,
            "ci": f"{1 - alpha:.0%} Wald CI of a linear probability model, cluster-robust "
                  "(CR1) by account",
            "segment_by": by or "", "assignments": counts["assignments"],
            "analysed": len(rows), "accounts": int(rows.account_id.nunique()),
            "left_out": {k: counts[k] for k in ("converted_before", "censored", "no_outcome")},
            "periods": [{"day": d.date().isoformat(), "touch": int(r.touch),
                         "holdout": int(r.holdout)} for d, r in per_day.iterrows()],
            "pooled": {k: (v.item() if isinstance(v, np.generic) else v)
                       for k, v in pooled.drop("segment").items()},
            "segments": effects.iloc[1:].to_dict(orient="records"),
            "balance": {"features": len(balance),
                        "imbalanced": int(balance.imbalanced.sum()),
                        "max_abs_smd": float(balance.smd.abs().max()) if len(balance) else None},
            "notes": notes}
