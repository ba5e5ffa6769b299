"""Scoring: one call from a saved model (file or MLflow URI) to the list sales works from.

``Scorer.load(path_or_uri).score(X, project=project)`` scores a feature table of one
``as_of`` (``project.features([as_of])``: the same code as training, events strictly
before ``as_of``; :func:`default_as_of`, the day after the last event, counts every
event), refuses a feature set that differs from the model's, and returns
:class:`Scores`: one row per scored entity (with the CRM's match key: an account's
``domain``, a user's ``email``), ``probability``, ``percentile``, the model's
``tier`` (intent by ``tiers.method`` x ICP fit), the rules' ``funnel``, the playbook's
``motion``, three ``reason_*`` sentences and ``model_version``; and ``not_scored``. A model
that learned a touch's effect (:mod:`pqlml.uplift._scoring`: ``pqlml train`` on a project
with touches) adds ``uplift``, ``uplift_low`` and ``uplift_high`` after ``percentile``
(probability units; empty where the account's segment is not identifiable, ``uplift_note``
saying why); ``tiers.method = "uplift"`` then ranks intent by it, a worked tier whose touch
adds little goes to self-serve (``playbook.self_serve_uplift``) and a row routed by its
uplift gets that sentence as its first reason. No
entity is lost: whoever is not scored is listed with the reason (no events before as_of,
created after it, already a customer, a user on a free-mail or unknown domain, an account
whose domain's users were not attached to it because their domains differ:
``eu.acme.com`` against ``acme.com``). ``project``, the open project, is the data
context those reasons and the tiers' attributes are read from.

A user model (``trained_on["entity"] == "user"``) scores users: keyed ``user_id``, its
fit is the user's account's firmographics with the user's own work email, its funnel
is the account's, and its tiers' volume is the sales capacity when the intent rule
reads account features. A user is "already a customer" when the outcomes name that
user as the converter, the same rows its labels leave out.

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> from pqlml import runner
>>> from pqlml.simulate import simulate
>>> tmp = Path(tempfile.mkdtemp())
>>> sim = simulate(n_accounts=80, seed=3, out=tmp, months=5)
>>> trained = runner.train(sim.config, tmp / "model.skops", track=False)
>>> project = trained.project
>>> X = project.features(["2024-05-01"])
>>> found = Scorer.load(tmp / "model.skops").score(X, project=project)
>>> len(found.scores) + int(found.not_scored.account_id.notna().sum())
80
>>> [path.name for path in found.write(tmp / "scores")]
['scores.csv', 'not_scored.csv']
>>> [path.name for path in found.write(tmp / "crm", format="hubspot")]
['hubspot.csv', 'hubspot.json', 'not_scored.csv']
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import PqlmlError
from .model import Model
from .outputs import write_files
from .schema import entity_key
from .snapshots import utc
from .tiers import TierPolicy
from .uplift._scoring import UPLIFT_COLUMNS

__all__ = ["Scorer", "Scores", "SCORE_COLUMNS", "NOT_SCORED_COLUMNS", "default_as_of"]

SCORE_COLUMNS = ("as_of", "probability", "percentile", "tier", "funnel", "motion", "reason_1",
                 "reason_2", "reason_3", "model_version")
#: Columns every not-scored list has (beside the entity's key).
NOT_SCORED_COLUMNS = ("code", "reason")
_URI = re.compile(r"^(models|runs|mlflow-artifacts):/")


def default_as_of(project) -> pd.Timestamp:
    """The day after the last event (UTC midnight) of ``project`` (an open project): every
    event is before it."""
    return project.data_end.tz_convert("UTC").normalize() + pd.Timedelta(days=1)


@dataclass
class Scores:
    """A scoring's result: the scores and who was not scored, and why."""

    scores: pd.DataFrame        # best first: key, as_of, probability, ..., model_version
    not_scored: pd.DataFrame    # key (and user_id for accounts' orphans), code, reason
    version: str                # the model's version (file@sha or name/n)

    def write(self, out: str | Path, format: str = "csv", *, report: bool = False) -> list[Path]:
        """The scores and the not-scored list into the folder ``out`` (created if missing)
        as ``format``: ``csv``, ``parquet``, ``salesforce`` (with the Data Loader mapping
        and process-conf.xml) or ``hubspot`` (with the imports API request); see
        :mod:`pqlml.crm`; with ``report``, ``report.html`` too (the page to share:
        :func:`pqlml.score_report.score_page`). Every file lands or none does. The paths
        written."""
        from .crm import crm_files
        files = crm_files(self.scores, self.not_scored, format, out)
        if report:
            from .report import REPORT_NAME
            from .score_report import score_page
            files[Path(out) / REPORT_NAME] = score_page(self).html()
        return write_files(files)


@dataclass
class Scorer:
    """A pqlml model ready to score, and where it came from (``model_version``)."""

    model: Model
    version: str

    @classmethod
    def load(cls, source) -> "Scorer":
        """A model file written by ``pqlml train`` / ``retrain``, or an MLflow model URI
        (``models:/pqlml@champion``, ``models:/pqlml/3``, ``runs:/<id>/pyfunc``) of a
        model pqlml logged."""
        text = str(source)
        if _URI.match(text):
            return cls(*_from_mlflow(text))
        path = Path(text)
        if not path.exists():
            raise PqlmlError(f"No model at {path}. Fix: pass a file written by `pqlml train` "
                             "or an MLflow URI such as models:/pqlml@champion.")
        model = Model.load(path)                 # checks the file (a directory, a pickle)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        return cls(model, f"{path.name}@{digest}")

    def score(self, X: pd.DataFrame, *, project, as_of=None,
              batch_rows: int | None = None) -> Scores:
        """Scores for the rows of ``X`` (features of one as_of, keyed by the model's entity:
        ``project.features([as_of], entity=...)``), best first, and the project's entities
        not scored, with the reason. ``project``: the open project (``"Project"``) the
        reasons and tier attributes are read from. ``as_of``: the features' date, needed
        only when ``X`` has no rows (else it must match). ``batch_rows`` (default ``[model]
        score_batch_rows``): the rows predicted, explained and described (fit, funnel, the
        intent rule's flags) at a time, so a company's whole design matrix and its
        contributions never exist at once; the percentiles and tiers, which rank the whole
        population, are computed from every probability at once. The result does not
        depend on it."""
        entity = self.model.trained_on.get("entity", project.config.project.entity)
        key = entity_key(entity)
        if key not in X.columns:
            raise PqlmlError(f"The features table has no {key} column: this model scores "
                             f"{entity}s. Fix: pass project.features([DATE], "
                             f"entity=\"{entity}\").")
        as_of = _one_as_of(X, as_of)
        self.check(X)
        self.check_policy(project.config)
        X = X.reset_index(drop=True)
        gone = _not_scored(project, X, key, entity, as_of)
        X = X[~X[key].isin(gone[key])].reset_index(drop=True)
        batch = batch_rows or project.config.model.score_batch_rows
        return Scores(self._score_rows(project, X, key, entity, batch), gone, self.version)

    def check(self, X: pd.DataFrame) -> None:
        """The schema guard (:meth:`pqlml.model.Model.check_features`): the feature columns
        must be exactly the model's."""
        self.model.check_features(X, exact=True, version=self.version)

    def check_policy(self, config) -> None:
        """``[tiers] method = "uplift"`` needs a model with an uplift: else a
        :class:`~pqlml.errors.PqlmlError` naming why it has none and the fix."""
        if config.tiers.method != "uplift" or self.model.uplift is not None:
            return
        why = (self.model.trained_on.get("uplift") or {}).get(
            "none", "it was trained before pqlml learned uplifts")
        raise PqlmlError(f"[tiers] method = \"uplift\" routes capacity by a touch's estimated "
                         f"effect, and model {self.version} has no uplift: {why}. Fix: retrain "
                         "with the sales touches ([data.touches], with a randomised holdout so "
                         "that the effect is identifiable; [uplift] in_scores = true), or choose "
                         "another [tiers] method (\"rules\", \"capacity\", \"precision\").")

    def _score_rows(self, project, X: pd.DataFrame, key: str, entity: str,
                    batch: int) -> pd.DataFrame:
        from .explain import reasons

        parts = []
        for i in range(0, len(X), batch):
            Xb = X.iloc[i:i + batch]
            part = _described(project, Xb, entity) | {"p": self.model.predict(Xb),
                                                       "reasons": reasons(self.model, Xb)}
            if self.model.uplift is not None:
                part["uplift"] = _uplift_of(self.model.uplift, Xb, part["segment"])
            parts.append(part)
        p = np.concatenate([b["p"] for b in parts]) if parts else np.array([])
        out = X[[key, "as_of"]].copy()
        # the CRM's match key beside the entity: an account's domain, a user's email
        match = {"account": ("accounts", "domain"), "user": ("users", "email")}[entity]
        if match[0] in project.tables:
            keys = project.tables[match[0]].select(key, match[1]).to_pyarrow().to_pandas()
            out = out.merge(keys.astype({key: str}).drop_duplicates(key), on=key,
                            how="left")[[key, match[1], "as_of"]]
        out["probability"] = p
        out["percentile"] = (pd.Series(p).rank(method="max", pct=True) * 100).round(1).to_numpy()
        uplift = None
        if self.model.uplift is not None:
            uplift = (pd.concat([b["uplift"] for b in parts]) if parts else
                      pd.DataFrame(columns=[*UPLIFT_COLUMNS, "uplift_note"], dtype=float))
            uplift = uplift.set_axis(out.index)
            for col in uplift.columns:
                out[col] = uplift[col].to_numpy()
        tiers = _tiers(project, parts, p, uplift)
        for col in ("tier", "funnel", "motion"):
            out[col] = tiers[col].to_numpy()
        why = (pd.concat([b["reasons"] for b in parts]) if parts
               else reasons(self.model, X)).set_axis(out.index)
        if uplift is not None:
            why = _routed_reasons(why, tiers["routed"].to_numpy(), uplift)
        out = pd.concat([out, why], axis=1)
        out["model_version"] = self.version
        # best first; ties (and floating-point near-ties: DuckDB's parallel float sums may
        # differ in the last bit between runs) broken by the key, so the order is reproducible
        order = pd.DataFrame({"p": -out.probability.round(12), "k": out[key].astype(str)})
        return out.loc[order.sort_values(["p", "k"]).index].reset_index(drop=True)


def _one_as_of(X: pd.DataFrame, as_of) -> pd.Timestamp:
    """The one as_of of the rows of ``X`` (``as_of``, when given, must be it; it is the
    date when ``X`` is empty)."""
    dates = pd.to_datetime(X["as_of"], utc=True).unique()
    wanted = None if as_of is None else utc(as_of)
    if len(dates) == 1 and wanted in (None, pd.Timestamp(dates[0])):
        return pd.Timestamp(dates[0])
    if not len(dates) and wanted is not None:
        return wanted
    raise PqlmlError(f"The features table holds as_of {', '.join(str(d.date()) for d in dates[:5])}"
                     f"; scoring needs exactly one{'' if as_of is None else f' ({as_of})'}. "
                     "Fix: pass project.features([DATE]).")


def _from_mlflow(uri: str) -> tuple[Model, str]:
    from .track import load_logged_model
    return load_logged_model(uri)


def _not_scored(project, X: pd.DataFrame, key: str, entity: str, as_of: pd.Timestamp) -> pd.DataFrame:
    """Entities of the input without a score, and why; one row each."""
    rows = []
    no_events = X[key][X["days_since_last_event"].isna()] if "days_since_last_event" in X else []
    rows += _no_events(project, list(no_events), entity)
    spined = set(X[key])
    if entity == "account":
        if "accounts" in project.tables:
            a = project.tables["accounts"].select("account_id", "created_at").to_pyarrow().to_pandas()
            late = a[~a.account_id.astype(str).isin(spined)]
            rows += [(str(r.account_id), None, "created_after_as_of", f"created {pd.Timestamp(r.created_at).date()}, "
                      "on or after as_of") for r in late.itertuples()]
        rows += _customers(project, spined, as_of)
        rows += _orphans(project, as_of)
    else:
        if "users" in project.tables:
            u = project.tables["users"].select("user_id", "signup_at").to_pyarrow().to_pandas()
            late = u[~u.user_id.astype(str).isin(spined)]
            rows += [(str(r.user_id), None, "created_after_as_of", f"signed up {pd.Timestamp(r.signup_at).date()}, "
                      "on or after as_of") for r in late.itertuples()]
        rows += _customers(project, spined, as_of, entity="user")
    out = pd.DataFrame(rows, columns=["_id", "_user", "code", "reason"])
    out = (out.rename(columns={"_id": key, "_user": "user_id"}) if entity == "account"
           else out.drop(columns="_user").rename(columns={"_id": key}))
    # an entity with two reasons (no events and already a customer, say) is listed once
    keyed = out[out[key].notnull()].drop_duplicates(key)
    out = pd.concat([keyed, out[out[key].isnull()]], ignore_index=True)
    # a stable order (DuckDB's group-by order is not): by reason, then by id
    order = {c: i for i, c in enumerate(("no_events", "created_after_as_of", "customer",
                                         "not_yet_member", "free_mail", "unmatched_domain",
                                         "no_domain"))}
    ids = (out[key].fillna(out["user_id"]) if "user_id" in out else out[key]).astype(str)
    out = out.assign(_o=out.code.map(order), _k=ids).sort_values(["_o", "_k"])
    return out.drop(columns=["_o", "_k"]).reset_index(drop=True)


def _no_events(project, ids: list, entity: str) -> list:
    """Entities without events before as_of, and why: an account whose domain's users could
    not be attached to it (their email domain is a subdomain of the account's, or the
    account's of theirs: ``eu.acme.com`` against ``acme.com``) says so, with code
    ``unmatched_domain``; the rest had no product events."""
    plain = [(e, None, "no_events", "no product events before as_of") for e in ids]
    if not ids or entity != "account" or project.users is None or "accounts" not in project.tables:
        return plain
    from .identity import ascii_domains, normalise_domain

    a = project.tables["accounts"]
    a = ascii_domains(a.select("account_id", _d=normalise_domain(a.domain)), "_d")
    a = a.to_pyarrow().to_pandas()
    a = a[a.account_id.astype(str).isin(set(map(str, ids))) & a._d.notna()]
    u = project.users
    u = u.filter(u.account_id.isnull() & u.email_domain.notnull() & ~u.is_free_mail)
    lost = u.group_by("email_domain").aggregate(n=u.count()).to_pyarrow().to_pandas()
    # a related domain is a parent or a child: index the lost domains by each of their
    # parents (one pass over their labels), instead of comparing every pair
    users_on = dict(zip(lost.email_domain, lost.n))
    children: dict[str, list] = {}
    for x in users_on:
        for parent in _parents(x):
            children.setdefault(parent, []).append(x)
    near = {}
    for account_id, d in zip(a.account_id, a._d):
        related = children.get(d, []) + [p for p in _parents(d) if p in users_on]
        if related:
            near[str(account_id)] = (d, [(x, users_on[x]) for x in related])
    out = []
    for e, _, code, reason in plain:
        if e in near:
            d, hits = near[e]
            users = ", ".join(f"{n:,} on {x}" for x, n in hits[:3])
            out.append((e, None, "unmatched_domain", f"no events attached: its domain is {d}, "
                        f"and users of a related domain ({users}) match no account's domain "
                        f"exactly"))
        else:
            out.append((e, None, code, reason))
    return out


def _parents(domain: str) -> list[str]:
    """``eu.acme.com`` -> ``["acme.com"]``: the domain's parents that still have a dot."""
    labels = domain.split(".")
    return [".".join(labels[i:]) for i in range(1, len(labels) - 1)]


def _orphans(project, as_of: pd.Timestamp) -> list:
    """Users in no account just before ``as_of`` (membership is time-true), with the reason."""
    if project.users is None:
        return []
    from .identity import member_then

    m, day = project.members, (as_of - pd.Timestamp(0, tz="UTC")).days
    now = m.filter(member_then(m, day)).select(_u=m.user_id)
    later = m.filter(m.from_day >= day)
    later = later.group_by(_l=later.user_id).aggregate(joins=later.valid_from.min(),
                                                       joins_account=later.account_id.argmin(
                                                           later.valid_from))
    u = project.users.anti_join(now, project.users.user_id == now._u)
    u = u.left_join(later, u.user_id == later._l).select(
        "user_id", "email_domain", "is_free_mail", "joins", "joins_account")
    return [(None, r.user_id, *_orphan_reason(r)) for r in u.to_pyarrow().to_pandas().itertuples()]


def _orphan_reason(r) -> tuple[str, str]:
    if r.joins is not None and not pd.isna(r.joins):
        return ("not_yet_member", f"user joins their first account ({r.joins_account}) on "
                f"{pd.Timestamp(r.joins).date()}, after as_of")
    if r.email_domain is None or pd.isna(r.email_domain):
        return "no_domain", "user without an email domain or account id: belongs to no account"
    if r.is_free_mail:
        return ("free_mail", f"user on a free-mail domain ({r.email_domain}): free mail never "
                "forms an account")
    return "unmatched_domain", f"user on {r.email_domain}, which matches no account in the accounts table"


def _customers(project, spined: set, as_of: pd.Timestamp, entity: str = "account") -> list:
    """Entities that converted before ``as_of``: left out as the labels leave them out, unless
    conversion is repeatable (``labels.exclude_prior_positives = false``)."""
    from .labels import outcome_table

    cfg = project.config
    if not cfg.labels.exclude_prior_positives:
        return []
    try:
        o = outcome_table(project.tables, project.events, cfg.outcomes)
    except PqlmlError:                # no outcomes configured: nobody is known to be a customer
        return []
    key = entity_key(entity)
    conv = o.filter((o.outcome == "conversion") & (o.ts < as_of.to_pydatetime())
                    & o[key].notnull())
    first = conv.group_by(key).aggregate(first=conv.ts.min()).to_pyarrow().to_pandas()
    first = first[first[key].astype(str).isin(spined)]
    return [(str(getattr(r, key)), None, "customer", f"already a customer (converted {pd.Timestamp(r.first).date()})")
            for r in first.itertuples()]


def _described(project, X: pd.DataFrame, entity: str) -> dict:
    """What the tiers read of a batch of rows, each row on its own: its ``fit``, its
    ``funnel`` (a user's is its account's), its ``segment`` and whether the intent rule
    flags it (``flag``, None without a rule that reads the entity's own features)."""
    from .rules import fit_flags, funnel_of, intent_rule_for, user_funnels

    cfg = project.config
    frame = project.with_attributes(X)
    fit = fit_flags(frame, cfg.fit)["fit"]
    policy = TierPolicy.from_config(cfg)
    rule = intent_rule_for(cfg, frame, entity)[0] if policy.reads_rule else None
    if entity == "user":
        funnel = user_funnels(frame, project.accounts_then(frame), settings=cfg).to_numpy()
    else:
        try:
            funnel = funnel_of(frame, fit, cfg.funnels).to_numpy()
        except PqlmlError:       # funnel rules naming features the accounts lack
            funnel = np.full(len(X), pd.NA, dtype=object)
    segment = frame["segment"] if "segment" in frame else pd.Series(pd.NA, index=frame.index)
    return {"fit": fit.to_numpy(), "funnel": funnel, "segment": segment.astype("object").to_numpy(),
            "flag": None if rule is None else rule.evaluate(frame).to_numpy(bool)}


def _tiers(project, parts: list, p: np.ndarray, uplift: pd.DataFrame | None = None) -> pd.DataFrame:
    """The model's tier (intent by the config's tier policy x fit), the rules' funnel and the
    motion, from the batches' :func:`_described` and every probability ``p``: intent ranks
    the whole population, so the tiers are set once. A user's fit is its account's
    firmographics and its own work email; its funnel is its account's (funnels are account
    motions); the intent rule sets the volume only where it reads the entity's own features
    (else the capacity does).

    With the model's ``uplift`` (the score's uplift columns): ``[tiers] method = "uplift"``
    ranks intent by it, and a worked tier whose band's upper end is at or below ``[playbook]
    self_serve_uplift`` gets the self-serve motion; ``routed`` says which rows either moved
    (``uplift`` / ``self_serve``, else ``""``)."""
    from .rules import SELF_SERVE_MOTION, motion_for, self_serve_by_uplift

    cfg = project.config
    if not len(p):
        return pd.DataFrame({"tier": [], "funnel": [], "motion": [], "routed": []})
    joined = {k: np.concatenate([b[k] for b in parts]) for k in ("fit", "funnel", "segment")}
    flags = [b["flag"] for b in parts]
    volume = None if flags[0] is None else int(sum(int(f.sum()) for f in flags))
    policy = TierPolicy.from_config(cfg)
    by_uplift = policy.method == "uplift"
    ranked = pd.Series(uplift["uplift"].to_numpy() if by_uplift else p)
    out = pd.DataFrame({"tier": policy.tiers(ranked, pd.Series(joined["fit"]),
                                             rule_volume=volume).to_numpy(),
                        "funnel": joined["funnel"]})
    out["motion"] = [motion_for(t, s, cfg.playbook.complexity, cfg.playbook.motions)
                     for t, s in zip(out.tier, joined["segment"])]
    out["routed"] = np.where(by_uplift & out.tier.isin(["tier_1", "tier_3"]), "uplift", "")
    if uplift is not None:
        moved = self_serve_by_uplift(out.tier, uplift["uplift_high"],
                                     cfg.playbook.self_serve_uplift)
        out.loc[moved, "motion"] = SELF_SERVE_MOTION
        out.loc[moved, "routed"] = "self_serve"
    return out


def _uplift_of(found, X: pd.DataFrame, segments) -> pd.DataFrame:
    """A batch's uplift columns and ``uplift_note`` (why an empty one is empty) from the
    model's uplift learner (:class:`pqlml.uplift._scoring.ScoringUplift`)."""
    out = found.predict(X, segments)
    out["uplift_note"] = found.notes(segments, len(X))
    return out


def _routed_reasons(why: pd.DataFrame, routed: np.ndarray, uplift: pd.DataFrame) -> pd.DataFrame:
    """The reasons with, first, the sentence of a row routed by its uplift (``routed``:
    ``uplift`` or ``self_serve``); the model's reasons move down one place."""
    from .explain import self_serve_reason, uplift_reason

    why = why.copy()
    cols = list(why.columns)
    for i in np.flatnonzero(routed != ""):
        u, low, high = (uplift[c].iat[i] for c in UPLIFT_COLUMNS)
        sentence = (self_serve_reason if routed[i] == "self_serve" else uplift_reason)(u, low, high)
        why.iloc[i, :] = [sentence, *why.iloc[i, :-1].tolist()][:len(cols)]
    return why
