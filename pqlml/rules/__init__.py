"""Today's hand-set rules, funnels and tiers: the baseline a model must beat.

:func:`assign` scores every (entity, as_of) of the spine with the config's
rules (``[rules]``), the ICP fit (``[fit]``), the funnel (``[funnels]``), the
tier (``[tiers] intent_rule`` x fit), the lead-attribution bucket (when a
``[data.leads]`` table is given) and the playbook's motion (``[playbook]``).
:func:`report` adds the labels and shows how each group converts.

Examples
--------
>>> import tempfile
>>> from pqlml.simulate import simulate
>>> sim = simulate(n_accounts=300, seed=3, out=tempfile.mkdtemp(), months=5)
>>> tiers = assign(sim.config, as_of="2024-05-01")
>>> sorted(set(tiers.tier)) <= ["self_serve", "tier_1", "tier_2", "tier_3"]
True
>>> list(tiers.columns[:2]), "motion" in tiers
(['account_id', 'as_of'], True)
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..errors import ConfigError
from ..project import build_features, build_labels, open_project
from ._expr import Rule, evaluate_rules, parse_rules
from ._report import group_rates, plot_rates, wilson
from ._tiers import FUNNELS, TIERS, fit_flags, funnel_conditions, funnel_of, motion_for, tier_of

__all__ = ["Rule", "parse_rules", "evaluate_rules", "assign", "report", "attribution",
           "with_attributes",
           "fit_flags", "funnel_of", "tier_of", "motion_for", "group_rates", "wilson",
           "TIERS", "FUNNELS", "BUCKETS"]

BUCKETS = ("pql", "pqa_mql", "pqa", "sales_led", "none")
_ATTRS = ("industry", "country", "segment")


def assign(config, *, as_of=None, features: pd.DataFrame | None = None) -> pd.DataFrame:
    """Rules, fit, funnel, tier, bucket and motion for each (account, as_of).

    ``features``: an already built feature table (``build_features`` output) to
    reuse; otherwise it is built for ``as_of`` (None: the config's schedule).
    """
    project = open_project(config)
    cfg = project.config
    if cfg.project.entity != "account":
        raise ConfigError("Rules, funnels and tiers are defined for accounts (PQA); this "
                          "config has project.entity = \"user\". Fix: run them with "
                          "entity = \"account\".")
    X = build_features(project, as_of=as_of) if features is None else features
    frame = with_attributes(X, project)
    rules = parse_rules(cfg.rules)
    flags = evaluate_rules(rules, frame)
    fit = fit_flags(frame, cfg.fit)
    intent = flags[cfg.tiers.intent_rule] if cfg.tiers.intent_rule else \
        pd.Series(False, index=frame.index)
    out = frame[["account_id", "as_of"]].copy()
    out = pd.concat([out, flags.add_prefix("rule_"), fit], axis=1)
    out["segment"] = frame["segment"] if "segment" in frame else pd.NA
    out["funnel"] = funnel_of(frame, fit["fit"], cfg.funnels)
    out["tier"] = tier_of(intent, fit["fit"])
    if "leads" in project.tables:
        out["bucket"] = attribution(frame, project, cfg.funnels)
    complexity, overrides = cfg.playbook.complexity, cfg.playbook.motions
    out["motion"] = [motion_for(t, s, complexity, overrides)
                     for t, s in zip(out.tier, out.segment.astype("object"))]
    return out


def with_attributes(X: pd.DataFrame, project) -> pd.DataFrame:
    """Features plus the accounts' raw industry / country / segment (for fit and motion)."""
    accounts = project.tables.get("accounts")
    cols = [c for c in _ATTRS if accounts is not None and c in accounts.columns]
    if not cols:
        return X.reset_index(drop=True)
    attrs = accounts.select("account_id", *cols).to_pyarrow().to_pandas()
    attrs["account_id"] = attrs["account_id"].astype(str)
    return X.merge(attrs, on="account_id", how="left", validate="many_to_one")


def attribution(frame: pd.DataFrame, project, funnels) -> pd.Series:
    """Lead attribution per row: ``pql`` (usage, buyer inside the product), ``pqa_mql``
    (usage, no buyer inside, a lead from outside it), ``pqa`` (usage only), ``sales_led``
    (a lead, no usage), ``none``. A lead counts from its ``ts``, strictly before as_of."""
    leads = project.tables["leads"]
    cols = ["account_id", "ts"] + (["email"] if "email" in leads.columns else [])
    leads = leads.select(*cols).to_pyarrow().to_pandas()
    leads["account_id"] = leads["account_id"].astype(str)
    if "email" in leads and project.users is not None:
        emails = project.tables["users"].select("email").to_pyarrow().to_pandas()["email"]
        leads["outside"] = ~leads["email"].str.lower().isin(set(emails.str.lower()))
    else:
        leads["outside"] = True      # without emails, a lead is a sales contact
    keys = frame[["account_id", "as_of"]].reset_index()
    j = keys.merge(leads, on="account_id", how="inner")
    j = j[j.ts < j.as_of]
    by_row = j.groupby("index").agg(lead=("ts", "size"), outside=("outside", "any"))
    lead = by_row["lead"].reindex(frame.index).fillna(0).gt(0)
    outside = by_row["outside"].reindex(frame.index).fillna(False).astype(bool)
    cond = funnel_conditions(frame, funnels)
    usage, buyer = cond["usage"], cond["buyer_in_product"]
    out = pd.Series("none", index=frame.index, name="bucket")
    out[lead & ~usage] = "sales_led"
    out[usage & ~buyer] = "pqa"
    out[usage & ~buyer & lead & outside] = "pqa_mql"
    out[usage & buyer] = "pql"
    return out


def report(config, out: str | Path, *, as_of=None,
           features: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per period: entities, hand-raises and conversions per rule, tier, funnel and bucket
    with Wilson 95% intervals. Writes ``rates.csv``, ``tiers.csv`` and ``rates.png``
    (conversion) / ``hand_raise_rates.png`` into ``out``; returns the rates table.
    ``features``: reuse a feature table built for the same ``as_of``."""
    project = open_project(config)
    tiers = assign(project, as_of=as_of, features=features)
    labels = build_labels(project, as_of=as_of)
    # Left out of the rates (group_rates counts labelled rows only): censored snapshots and
    # accounts that had converted before as_of (no label row: they are not candidates).
    frame = tiers.merge(labels, on=["account_id", "as_of"], how="left", validate="one_to_one")
    flagged = ["not flagged", "flagged"]
    groups = {f"rule: {c.removeprefix('rule_')}":
              pd.Categorical(frame[c].map({True: "flagged", False: "not flagged"}), flagged)
              for c in frame.columns if c.startswith("rule_")}
    groups["tier"] = pd.Categorical(frame.tier, categories=TIERS)
    groups["funnel"] = pd.Categorical(frame.funnel, categories=FUNNELS)
    if "bucket" in frame:
        groups["bucket"] = pd.Categorical(frame.bucket, categories=BUCKETS)
    groups = {k: pd.Series(v, index=frame.index) for k, v in groups.items()}
    rates = group_rates(frame, groups)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rates.to_csv(out / "rates.csv", index=False)
    tiers.to_csv(out / "tiers.csv", index=False)
    plot_rates(rates, out / "rates.png", "conversion")
    plot_rates(rates, out / "hand_raise_rates.png", "hand_raise")
    return rates
