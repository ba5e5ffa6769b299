"""Today's hand-set rules, funnels and tiers: the baseline a model must beat.

:func:`assign` scores every (account, as_of) row of a feature table with the config's
rules (``[rules]``), the ICP fit (``[fit]``), the funnel (``[funnels]``), the tier
(``[tiers] intent_rule`` x fit), the lead-attribution bucket (when leads are given) and
the playbook's motion (``[playbook]``). :func:`report` adds the labels and shows how each
group converts. The rows come with their accounts' attributes
(``project.with_attributes(project.features(as_of))``), the leads from
``project.leads()`` and the labels from ``project.labels(as_of)``.

Examples
--------
>>> import pandas as pd
>>> from pqlml.config import config_from_dict
>>> cfg = config_from_dict({"rules": {"busy": "events_30d >= 3"},
...                         "tiers": {"intent_rule": "busy"},
...                         "fit": {"industries": ["software"]}}, ".")
>>> X = pd.DataFrame({"account_id": ["a1", "a2", "a3"],
...                   "as_of": pd.Timestamp("2024-05-01", tz="UTC"),
...                   "events_30d": [12, 1, 4], "active_users_30d": [3, 1, 1],
...                   "employees": [50, 900, 40], "buyer_title_present": [0, 0, 1],
...                   "work_email_share": 1.0, "industry": ["software", "software", "retail"]})
>>> tiers = assign(X, settings=cfg)
>>> tiers[["account_id", "rule_busy", "fit", "funnel", "tier"]]
  account_id  rule_busy    fit      funnel    tier
0         a1       True   True         pql  tier_1
1         a2      False   True  self_serve  tier_2
2         a3       True  False  self_serve  tier_3
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..errors import ConfigError
from ._expr import Rule, evaluate_rules, parse_rules
from ._report import group_rates, plot_rates, wilson
from ._tiers import (FUNNELS, SELF_SERVE_MOTION, fit_flags, funnel_conditions, funnel_of,
                     motion_for, self_serve_by_uplift)
from ..outputs import save_figure, write_frames
from ..tiers import TIERS, TierPolicy

__all__ = ["Rule", "parse_rules", "evaluate_rules", "assign", "report", "RulesReport",
           "attribution", "intent_rule_for", "user_funnels",
           "fit_flags", "funnel_of", "motion_for", "self_serve_by_uplift", "SELF_SERVE_MOTION",
           "group_rates", "wilson", "plot_rates",
           "FUNNELS", "BUCKETS", "REPORT_FILES"]

#: What :meth:`RulesReport.write` writes into its folder.
REPORT_FILES = ("rates.csv", "tiers.csv", "rates.png", "hand_raise_rates.png")

BUCKETS = ("pql", "pqa_mql", "pqa", "sales_led", "none")


def assign(frame: pd.DataFrame, *, settings, leads: pd.DataFrame | None = None
           ) -> pd.DataFrame:
    """Rules, fit, funnel, tier, bucket and motion for each (account, as_of) row.

    Parameters
    ----------
    frame : DataFrame
        Account features (``account_id``, ``as_of``, the features the rules name) with the
        accounts' attributes the fit and the playbook read
        (``project.with_attributes(project.features(as_of))``).
    settings : Config
        The whole config: its ``[rules]``, ``[fit]``, ``[funnels]``, ``[tiers]``,
        ``[capacity]`` and ``[playbook]``.
    leads : DataFrame, optional
        ``account_id``, ``ts``, ``outside`` (``project.leads()``); with them, each row's
        lead-attribution ``bucket``.
    """
    cfg = settings
    if cfg.project.entity != "account":
        raise ConfigError("Rules, funnels and tiers are defined for accounts (PQA); this "
                          "config has project.entity = \"user\". Fix: run them with "
                          "entity = \"account\".")
    frame = frame.reset_index(drop=True)
    rules = parse_rules(cfg.rules)
    flags = evaluate_rules(rules, frame)
    fit = fit_flags(frame, cfg.fit)
    intent = flags[cfg.tiers.intent_rule] if cfg.tiers.intent_rule else \
        pd.Series(False, index=frame.index)
    out = frame[["account_id", "as_of"]].copy()
    out = pd.concat([out, flags.add_prefix("rule_"), fit], axis=1)
    out["segment"] = frame["segment"] if "segment" in frame else pd.NA
    out["funnel"] = funnel_of(frame, fit["fit"], cfg.funnels)
    out["tier"] = TierPolicy.from_config(cfg).tiers(intent, fit["fit"])
    if leads is not None:
        out["bucket"] = attribution(frame, leads, cfg.funnels)
    complexity, overrides = cfg.playbook.complexity, cfg.playbook.motions
    out["motion"] = [motion_for(t, s, complexity, overrides)
                     for t, s in zip(out.tier, out.segment.astype("object"))]
    return out


def intent_rule_for(cfg, frame: pd.DataFrame, entity: str | None = None
                    ) -> tuple[Rule | None, str]:
    """The rule that sets intent (``tiers.intent_rule``) for ``frame``'s rows, or None with the
    reason. A rule reads the features of the entity it was written for: on a user frame a
    rule naming account features (a team's ``active_users_30d``) does not apply, and the
    model's volume is then the sales capacity. On accounts a rule always applies (a feature
    it names and the frame lacks is the rule's error)."""
    name = cfg.tiers.intent_rule
    if not name:
        return None, "no tiers.intent_rule is set"
    rule = Rule.parse(name, cfg.rules[name])
    missing = sorted(rule.features - set(frame.columns))
    entity = entity or cfg.project.entity
    if missing and entity != "account":
        return None, (f"tiers.intent_rule {name} ({rule.text!r}) reads "
                      f"{', '.join(missing)}, which a {entity} row does not have")
    return rule, ""


def user_funnels(users: pd.DataFrame, accounts: pd.DataFrame | None, *, settings
                 ) -> pd.Series:
    """The funnel of each user row: its account's at the same as_of (a funnel is an
    account's motion: PQL when its buyer is likely among its users, PQA when outside it);
    ``self_serve`` for a user with no account (free mail) or whose account had no snapshot
    then. ``users``: user features with their accounts (``project.with_attributes(X)``);
    ``accounts``: the account features with attributes at the users' as_of dates (None:
    no user has an account); ``settings``: the config (``[fit]``, ``[funnels]``). Aligned
    with ``users``' rows."""
    if accounts is None or "account_id" not in users or users.account_id.isna().all():
        return pd.Series("self_serve", index=users.index, name="funnel")
    funnels = pd.DataFrame({"account_id": accounts.account_id,
                            "as_of": accounts.as_of.astype(users.as_of.dtype),
                            "funnel": funnel_of(accounts, fit_flags(accounts, settings.fit)["fit"],
                                                settings.funnels)})
    funnel = users[["account_id", "as_of"]].merge(funnels, on=["account_id", "as_of"],
                                                   how="left", validate="many_to_one").funnel
    return funnel.fillna("self_serve").set_axis(users.index).rename("funnel")


def attribution(frame: pd.DataFrame, leads: pd.DataFrame, funnels) -> pd.Series:
    """Lead attribution per row: ``pql`` (usage, buyer inside the product), ``pqa_mql``
    (usage, no buyer inside, a lead from outside it), ``pqa`` (usage only), ``sales_led``
    (a lead, no usage), ``none``. ``leads``: ``account_id``, ``ts`` and ``outside``
    (``project.leads()``); a lead counts from its ``ts``, strictly before as_of.
    ``funnels``: the ``[funnels]`` settings."""
    keys = frame[["account_id", "as_of"]].reset_index()
    j = keys.merge(leads[["account_id", "ts", "outside"]], on="account_id", how="inner")
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


@dataclass
class RulesReport:
    """How each rule, tier, funnel and bucket converts: the rates and the tiers they come
    from."""

    rates: pd.DataFrame         # period, kind, group, entities, outcomes, rates, Wilson CIs
    tiers: pd.DataFrame         # assign's rows

    def write(self, out: str | Path) -> list[Path]:
        """``rates.csv``, ``tiers.csv`` and the conversion (``rates.png``) and hand-raise
        (``hand_raise_rates.png``) charts into folder ``out``; the paths written."""
        out = Path(out)
        write_frames({out / "rates.csv": self.rates, out / "tiers.csv": self.tiers})
        for name, outcome in zip(REPORT_FILES[2:], ("conversion", "hand_raise")):
            save_figure(plot_rates(self.rates, outcome), out / name)
        return [out / name for name in REPORT_FILES]


def report(tiers: pd.DataFrame, labels: pd.DataFrame) -> RulesReport:
    """Per period: entities, hand-raises and conversions per rule, tier, funnel and bucket
    with Wilson 95% intervals. ``tiers``: :func:`assign`'s rows; ``labels``: their labels
    (``project.labels(as_of)``, the same as_of).

    Left out of the rates (only labelled rows count): censored snapshots and accounts that
    had converted before as_of (no label row: they are not candidates)."""
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
    return RulesReport(group_rates(frame, groups), tiers)
