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

import ibis
import pandas as pd

from ..errors import ConfigError
from ..identity import member_then
from ..project import build_features, build_labels, open_project
from ._expr import Rule, evaluate_rules, parse_rules
from ._report import group_rates, plot_rates, wilson
from ._tiers import FUNNELS, fit_flags, funnel_conditions, funnel_of, motion_for
from ..outputs import write_frames
from ..tiers import TIERS, TierPolicy

__all__ = ["Rule", "parse_rules", "evaluate_rules", "assign", "report", "attribution",
           "with_attributes", "intent_rule_for", "user_funnels",
           "fit_flags", "funnel_of", "motion_for", "group_rates", "wilson",
           "FUNNELS", "BUCKETS", "REPORT_FILES"]

#: What :func:`report` writes into its folder.
REPORT_FILES = ("rates.csv", "tiers.csv", "rates.png", "hand_raise_rates.png")

BUCKETS = ("pql", "pqa_mql", "pqa", "sales_led", "none")


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
    out["tier"] = TierPolicy.from_config(cfg).tiers(intent, fit["fit"])
    if "leads" in project.tables:
        out["bucket"] = attribution(frame, project, cfg.funnels)
    complexity, overrides = cfg.playbook.complexity, cfg.playbook.motions
    out["motion"] = [motion_for(t, s, complexity, overrides)
                     for t, s in zip(out.tier, out.segment.astype("object"))]
    return out


def with_attributes(X: pd.DataFrame, project) -> pd.DataFrame:
    """Features plus the accounts' raw industry / country / segment (for fit and motion).

    A user's row (``user_id``, no ``account_id``) gets its account's: the account it was a
    member of just before the row's ``as_of`` (``project.members``; none for free mail), and
    ``work_email_share`` is its own ``work_email``. Row order and count are kept."""
    X = X.reset_index(drop=True)
    if "account_id" not in X.columns and "user_id" in X.columns:
        X = _user_accounts(X, project)
    attrs = project.attributes()
    attrs = attrs[["account_id", *(c for c in attrs.columns[1:] if c not in X.columns)]]
    if attrs.shape[1] == 1 or "account_id" not in X.columns:
        return X
    return X.merge(attrs, on="account_id", how="left", validate="many_to_one")


def _user_accounts(X: pd.DataFrame, project) -> pd.DataFrame:
    """User rows with their account's id and, for the fit, their own work-email share."""
    if "work_email" in X.columns and "work_email_share" not in X.columns:
        X = pd.concat([X, X.work_email.rename("work_email_share")], axis=1)
    if project.members is None:
        return X
    # the account the user was in just before each row's as_of (membership is time-true)
    m, day = project.members, (pd.to_datetime(X.as_of, utc=True) - pd.Timestamp(0, tz="UTC")).dt.days
    rows = ibis.memtable(pd.DataFrame({"_row": range(len(X)), "_u": X.user_id.astype(str),
                                       "_day": day.to_numpy()}))
    j = rows.join(m, [rows._u == m.user_id, member_then(m, rows._day)])
    j = j.select("_row", "account_id").to_pyarrow().to_pandas().set_index("_row")
    account = j.account_id.reindex(range(len(X))).set_axis(X.index).rename("account_id")
    return pd.concat([X.drop(columns="account_id", errors="ignore"), account], axis=1)


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


def user_funnels(project, users: pd.DataFrame) -> pd.Series:
    """The funnel of each user row: its account's at the same as_of (a funnel is an
    account's motion: PQL when its buyer is likely among its users, PQA when outside it);
    ``self_serve`` for a user with no account (free mail) or whose account had no snapshot
    then. ``users``: user features (``user_id``, ``as_of``); aligned with its rows."""
    cfg = project.config
    users = with_attributes(users, project)
    if "account_id" not in users or users.account_id.isna().all():
        return pd.Series("self_serve", index=users.index, name="funnel")
    dates = sorted({pd.Timestamp(d).date() for d in users.as_of})
    accounts = with_attributes(build_features(project, as_of=dates, entity="account"), project)
    funnels = pd.DataFrame({"account_id": accounts.account_id,
                            "as_of": accounts.as_of.astype(users.as_of.dtype),
                            "funnel": funnel_of(accounts, fit_flags(accounts, cfg.fit)["fit"],
                                                cfg.funnels)})
    funnel = users[["account_id", "as_of"]].merge(funnels, on=["account_id", "as_of"],
                                                   how="left", validate="many_to_one").funnel
    return funnel.fillna("self_serve").set_axis(users.index).rename("funnel")


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
    write_frames({out / "rates.csv": rates, out / "tiers.csv": tiers})
    for name, outcome in zip(REPORT_FILES[2:], ("conversion", "hand_raise")):
        plot_rates(rates, out / name, outcome)
    return rates
