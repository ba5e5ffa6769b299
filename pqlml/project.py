"""A project opened once: the config's tables, resolved identities and time range.

This is the seam between the config and the stages: :func:`build_features` and
:func:`build_labels` take a config (or a path to one, or an open
:class:`Project`) and return pandas DataFrames with one row per
(entity, as_of), keyed ``account_id`` (or ``user_id``) and ``as_of``.

Examples
--------
>>> import tempfile
>>> from pqlml.simulate import simulate
>>> sim = simulate(n_accounts=80, seed=3, out=tempfile.mkdtemp(), months=5)
>>> project = open_project(sim.config)
>>> X = build_features(project, as_of="2024-04-01")
>>> y = build_labels(project, as_of="2024-04-01")
>>> int(X.active_users_30d.ge(0).all()), list(y.columns)
(1, ['account_id', 'as_of', 'hand_raise', 'conversion', 'censored', 'accepted'])
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping

import ibis
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .backends import cached, counts, record_batches, release_freed_memory
from .cache import FeatureCache, cache_for, definitions_key
from .config import Config, config_from_settings, load_config
from .errors import PqlmlError
from .features import feature_table
from .features._table import vocabulary
from .features._fit import read_domain_list
from . import refresh
from .identity import (account_events, member_then, membership_intervals, static_members,
                       user_accounts)
from .labels import build_labels as label_table
from .labels import check_outcome, no_labelled_snapshot, outcome_table
from .schema import ACCOUNT_ATTRIBUTES, SIGNUP_ANSWERS, entity_key
from .snapshots import (as_dates, build_spine, check_as_of, data_schedule, entities_from_tables,
                        schedule_dates)
from .sources import load_tables
from .validate import Finding, ValidationReport

__all__ = ["Project", "open_project", "spine_for", "project_features", "build_features", "build_labels"]


@dataclass
class Project:
    """Everything the stages read, opened once per run."""

    config: Config
    con: ibis.BaseBackend
    tables: dict
    users: ibis.Table | None     # user -> base account (pqlml.identity.user_accounts)
    members: ibis.Table | None   # user -> account over time (pqlml.identity.MEMBER_COLUMNS)
    events: ibis.Table           # ts, user_id, account_id (at the event's time), event
    report: ValidationReport
    data_start: pd.Timestamp
    data_end: pd.Timestamp
    first_seen: dict[str, pd.Timestamp]   # event name -> its first occurrence
    cache: FeatureCache | None = None     # feature tables kept between commands
    builds: list = field(default_factory=list, repr=False)   # (entity, dates, extra) built
    refreshes: list = field(default_factory=list, repr=False)  # pqlml.refresh.Refresh per build
    _frames: dict = field(default_factory=dict, repr=False)  # what this run computed

    @property
    def entity(self) -> str:
        """What a row is: ``"account"`` or ``"user"`` (``project.entity``)."""
        return self.config.project.entity

    @property
    def key(self) -> str:
        """The entity's key column: ``account_id`` or ``user_id``."""
        return entity_key(self.entity)

    def event_names(self, until) -> tuple[str, ...]:
        """Event names seen strictly before ``until``, sorted (the catalog's vocabulary)."""
        return vocabulary(self.events, until, self.first_seen)

    def dates(self, as_of=None) -> tuple | None:
        """``as_of`` as a tuple of dates (None: the config's schedule), checked against the
        data's range; None for an explicit spine table (rows, not dates)."""
        if isinstance(as_of, (pd.DataFrame, ibis.Table)):
            return None
        dates = as_dates(schedule_dates(self.config.schedule) if as_of is None else as_of)
        check_as_of(dates, self.data_start, self.data_end)
        return tuple(dates)

    def features(self, as_of=None, *, entity=None, extra=()) -> pd.DataFrame:
        """Point-in-time features: one row per (entity, as_of), events strictly before
        as_of (see :func:`build_features`). Each table is built once: kept for this run,
        and in :attr:`cache` for later ones (:attr:`builds` lists what was built)."""
        entity = _entity(self, entity)
        dates = self.dates(as_of)
        if dates is None:                   # explicit (entity_id, as_of) rows
            return self._build(spine_for(self, as_of=as_of, entity=entity), entity, extra)
        memo = ("features", entity, dates, repr(tuple(extra)))
        if memo not in self._frames and (wider := self._wider(memo)) is not None:
            return wider

        def built_or_cached():
            key = self.cache and self.cache.key(definitions_key(self.config, entity, extra),
                                                [str(d) for d in dates])
            frame = None if self.cache is None else self.cache.get(key)
            if frame is None and len(dates) == 1:
                frame = refresh.incremental_features(self, entity, extra, dates[0])
            if frame is None:
                frame = self._build(spine_for(self, as_of=list(dates), entity=entity), entity,
                                    extra, dates)
                if len(dates) == 1:
                    refresh.keep_state(self, entity, extra, dates[0])
                if self.cache is not None:
                    self.cache.put(key, frame)
            return frame
        return self._once(memo, built_or_cached)

    def _once(self, memo: tuple, compute) -> pd.DataFrame:
        """``compute()``, kept for the run under ``memo`` (each caller gets its own copy to
        change); not kept for an explicit spine (``None`` for dates in ``memo``)."""
        if None in memo:
            return compute()
        if memo not in self._frames:
            self._frames[memo] = compute()
        return self._frames[memo].copy(deep=False)

    def _wider(self, memo: tuple) -> pd.DataFrame | None:
        """The rows of ``memo``'s dates from a table already built for more dates with the
        same last one, or None. The same table: its columns (the event vocabulary, the answer
        and industry categories) depend on its last as_of only, and a row on its own as_of
        (up to the order of a float sum: the decayed engagement score may differ in its last
        digit)."""
        _, entity, dates, extra = memo
        for key, frame in self._frames.items():
            if key[0] != "features" or (key[1], key[3]) != (entity, extra):
                continue
            if key[2][-1] == dates[-1] and set(dates) <= set(key[2]):
                stamps = pd.DatetimeIndex([pd.Timestamp(d, tz="UTC") for d in dates])
                return frame[frame.as_of.isin(stamps)].reset_index(drop=True)
        return None

    def _build(self, spine: ibis.Table, entity: str, extra, dates=None,
               history=None) -> pd.DataFrame:
        self.builds.append((entity, dates, repr(tuple(extra))))
        if history is not None:
            return _keyed(project_features(self, spine, entity, extra, history=history), entity)
        from .grouped import feature_groups

        with feature_groups(self, spine, entity, extra) as groups:
            return _keyed(groups, entity)

    def labels(self, as_of=None, *, entity=None) -> pd.DataFrame:
        """Hand-raise, conversion (and acceptance) in ``[as_of, as_of + horizon)`` per row
        (see :func:`build_labels`), computed once per run."""
        entity = _entity(self, entity)
        dates = self.dates(as_of)

        def label():
            spine = spine_for(self, as_of=as_of if dates is None else list(dates),
                              entity=entity)
            return _keyed(self._label_table(spine, entity), entity)
        return self._once(("labels", entity, dates), label)

    def _label_table(self, spine: ibis.Table, entity: str) -> ibis.Table:
        cfg = self.config
        outcomes = outcome_table(self.tables, self.events, cfg.outcomes)
        return label_table(spine, outcomes, horizon_days=cfg.labels.horizon_days,
                           data_end=self.data_end, entity=entity, report=self.report,
                           dispositions=self.tables.get("dispositions"),
                           exclude_prior_positives=cfg.labels.exclude_prior_positives)

    def attributes(self) -> pd.DataFrame:
        """The accounts' raw attributes that fit and the playbook read (``industry``,
        ``country``, ``segment``: those the accounts table has), keyed by ``account_id``
        as text; no rows without an accounts table. Read once per run."""
        def read():
            accounts = self.tables.get("accounts")
            if accounts is None:
                return pd.DataFrame({"account_id": pd.Series(dtype="str")})
            cols = [c for c in ACCOUNT_ATTRIBUTES if c in accounts.columns]
            frame = accounts.select("account_id", *cols).to_pyarrow().to_pandas()
            frame["account_id"] = frame["account_id"].astype(str)
            return frame
        return self._once(("attributes",), read)

    def with_attributes(self, X: pd.DataFrame) -> pd.DataFrame:
        """``X`` (features) plus each row's account attributes (:meth:`attributes`), what fit
        and the playbook read. A user's row (``user_id``, no ``account_id``) gets the account
        it was a member of just before the row's ``as_of`` (:attr:`members`; none for free
        mail), and ``work_email_share`` is its own ``work_email``. Row order and count are
        kept."""
        X = X.reset_index(drop=True)
        if "account_id" not in X.columns and "user_id" in X.columns:
            X = _member_accounts(self, X)
        attrs = self.attributes()
        attrs = attrs[["account_id", *(c for c in attrs.columns[1:] if c not in X.columns)]]
        if attrs.shape[1] == 1 or "account_id" not in X.columns:
            return X
        return X.merge(attrs, on="account_id", how="left", validate="many_to_one")

    def accounts_then(self, users: pd.DataFrame) -> pd.DataFrame | None:
        """The account features, with attributes (:meth:`with_attributes`), at the as_of
        dates of ``users`` (user rows already given their accounts by
        :meth:`with_attributes`): what their funnels are read from; None when no user row
        has an account."""
        if "account_id" not in users or users.account_id.isna().all():
            return None
        dates = sorted({pd.Timestamp(d).date() for d in users.as_of})
        return self.with_attributes(self.features(dates, entity="account"))

    def leads(self) -> pd.DataFrame | None:
        """The leads (``[data.leads]``): ``account_id`` (text), ``ts`` and ``outside``
        (the lead's email is no product user's; True without emails: then a lead is a sales
        contact); None without a leads table. Read once per run."""
        if "leads" not in self.tables:
            return None

        def read():
            leads = self.tables["leads"]
            cols = ["account_id", "ts"] + (["email"] if "email" in leads.columns else [])
            frame = leads.select(*cols).to_pyarrow().to_pandas()
            frame["account_id"] = frame["account_id"].astype(str)
            if "email" in frame and self.users is not None:
                emails = self.tables["users"].select("email").to_pyarrow().to_pandas()["email"]
                frame["outside"] = ~frame["email"].str.lower().isin(set(emails.str.lower()))
            else:
                frame["outside"] = True
            return frame[["account_id", "ts", "outside"]]
        return self._once(("leads",), read)

    def touches(self) -> pd.DataFrame | None:
        """The sales touches (``[data.touches]``): ``account_id`` (text), ``at`` (UTC),
        ``kind`` and ``rep`` (text, None where the table has no such column); None without
        a touches table. Read once per run."""
        return self._optional_table("touches", ("kind", "rep"))

    def holdouts(self) -> pd.DataFrame | None:
        """The randomised touch assignments (``[data.holdouts]``): ``account_id`` (text),
        ``at`` (UTC), ``experiment`` (text, None where the table has none) and ``arm``
        (``touch`` or ``holdout``); None without a holdouts table. Read once per run."""
        return self._optional_table("holdouts", ("experiment", "arm"))

    def _optional_table(self, name: str, text: tuple[str, ...]) -> pd.DataFrame | None:
        """``account_id`` (text), ``at`` and the ``text`` columns of an optional table."""
        if name not in self.tables:
            return None

        def read():
            t = self.tables[name]
            frame = t.select("account_id", "at", *(c for c in text if c in t.columns)) \
                .to_pyarrow().to_pandas()
            frame["account_id"] = frame["account_id"].astype(str)
            frame["at"] = pd.to_datetime(frame["at"], utc=True)
            for c in text:
                frame[c] = frame[c].astype(object) if c in frame else None
            return frame[["account_id", "at", *text]]
        return self._once((name,), read)

    def snapshots(self, outcome: str | None = None, *, as_of=None) -> pd.DataFrame:
        """Labelled snapshots: features joined with their labels, censored and
        already-converted rows left out, ``outcome`` (default: ``outcomes.target``) as 0/1.
        What models learn from and discovery scans."""
        outcome = check_outcome(outcome or self.config.outcomes.target, self.tables)
        dates = self.dates(as_of)

        def labelled():
            X, y = self.features(as_of), self.labels(as_of)
            frame = X.merge(y, on=[self.key, "as_of"], how="inner", validate="one_to_one")
            frame = frame[frame[outcome].notna()].reset_index(drop=True)
            if frame.empty:
                raise PqlmlError(no_labelled_snapshot(self.config.labels.horizon_days,
                                                      self.data_end))
            frame[outcome] = frame[outcome].astype(int)
            return frame
        return self._once(("snapshots", outcome, dates), labelled)

    def training_snapshots(self, outcome: str | None = None, *, as_of=None,
                           whole: int = 0) -> tuple[pd.DataFrame, dict | None]:
        """(labelled snapshots to fit on, what their sample kept or None): the
        :meth:`snapshots` themselves while they number at most ``[model]
        max_training_rows``; beyond it a sample (:mod:`pqlml.model._sample`) of about that
        many rows: every positive, each cutoff's negatives at one rate, a ``sample_weight``
        column of 1 / rate, the features as float32. The last ``whole`` labelled cutoffs (a
        backtest's test dates) are kept entire besides, their negatives outside the sample
        weighted 0 (evaluated on, never fitted on). The sample is taken batch by batch as the engine hands the joined
        features and labels over, so the full table never exists in memory (nor in the
        feature cache: a sample is not cached)."""
        from .model._sample import WEIGHT, negative_rate, sample_record, weights_of

        outcome = check_outcome(outcome or self.config.outcomes.target, self.tables)
        dates = self.dates(as_of)
        budget, seed = self.config.model.max_training_rows, 0
        spine = spine_for(self, as_of=list(dates))
        labels = self._label_table(spine, self.entity)
        labels = labels.filter(labels[outcome].notnull())
        n = labels.group_by("as_of").aggregate(rows=labels.count(),
                                               positives=labels[outcome].cast("int64").sum()
                                               ).execute().sort_values("as_of")
        if n.empty or int(n["rows"].sum()) <= budget:
            return self.snapshots(outcome, as_of=as_of), None
        entire = set(pd.to_datetime(n.as_of, utc=True).iloc[len(n) - whole:]) if whole else set()
        rows, positives = int(n["rows"].sum()), int(n.positives.sum())
        rate = negative_rate(rows=rows, positives=positives, budget=budget)
        key = self.key
        # materialised once: each group of entities (pqlml.grouped) joins its features to it
        labels = cached(labels.rename({key: "entity_id"}))
        label_names = set(labels.columns)
        parts, kept, kept_pos, outside = [], 0, 0, 0
        for batch in _labelled_batches(self, spine, labels):
            keys, days = batch.column(key), batch.column("as_of")
            y = batch.column(outcome).to_numpy(zero_copy_only=False).astype(int)
            w = weights_of(keys.to_numpy(zero_copy_only=False), days.to_pandas(), y,
                           rate=rate, seed=seed)
            entire_row = pd.to_datetime(days.to_pandas(), utc=True).isin(entire).to_numpy()
            sampled = w > 0
            kept += int(sampled.sum())
            kept_pos += int(y[sampled].sum())
            mask = sampled | entire_row
            outside += int((mask & ~sampled).sum())
            batch = batch.filter(pa.array(mask))
            columns = [c.cast(pa.float32()) if name not in label_names and
                       (pa.types.is_integer(c.type) or pa.types.is_floating(c.type)) else c
                       for name, c in zip(batch.schema.names, batch.columns)]
            parts.append(pa.Table.from_arrays(
                columns + [pa.array(w[mask])], names=batch.schema.names + [WEIGHT]))
        table = pa.concat_tables(parts)
        del parts
        frame = _sorted_frame(table, key)
        frame[outcome] = frame[outcome].astype(int)
        record = sample_record(rows=rows, positives=positives, rate=rate, kept=kept,
                               kept_positives=kept_pos, budget=budget, seed=seed, whole=outside)
        return frame, record

    def outcome_events(self, outcome: str | None = None) -> ibis.Table:
        """The outcomes ``outcome`` (default: ``outcomes.target``) is labelled from, one row
        each (``account_id``, ``ts``, ``outcome``): the outcomes table and the configured
        outcome events (:func:`~pqlml.labels.outcome_table`), or for ``accepted`` the
        accepted (or converted) dispositions as ``accepted`` outcomes of their account. What
        discovery's adjacency check looks back from (:func:`pqlml.discover.discover`)."""
        outcome = check_outcome(outcome or self.config.outcomes.target, self.tables)
        if outcome != "accepted":
            return outcome_table(self.tables, self.events, self.config.outcomes)
        d = self.tables["dispositions"]
        d = d.filter(d.disposition.isin(["accepted", "converted"]))
        if self.entity == "user" and self.users is not None:
            m = self.users.select(_uid=self.users.user_id, _acc=self.users.account_id)
            d = d.join(m, d.entity_id == m._uid)
            return d.select(account_id=d._acc, ts=d.at, outcome=ibis.literal("accepted"))
        return d.select(account_id=d.entity_id, ts=d.at, outcome=ibis.literal("accepted"))

    def decayed_counts(self, as_of, events) -> pd.DataFrame:
        """``decayed_<event>`` per (entity, as_of) row of the ``as_of`` dates: each of
        ``events``' count before as_of with exponential decay (``[features]
        engagement_half_life_days``), keyed by :attr:`key` (as text) and ``as_of``. What
        :func:`pqlml.engagement.fit_engagement_weights` learns weights from."""
        from .features._activity import to_days
        from .features._engagement import decayed_counts

        key = self.key
        spine = spine_for(self, as_of=list(as_of))
        spine = spine.select(entity_id=spine.entity_id.cast("string"), as_of=spine.as_of,
                             as_day=to_days(spine.as_of))
        ev = self.events
        ev = ev.filter(ev[key].notnull() & (ev.ts < max(as_of))).select(
            entity_id=ev[key].cast("string"), event=ev.event, day=to_days(ev.ts))
        half_life = self.config.features.engagement_half_life_days
        counts = decayed_counts(ev, spine, events, half_life).to_pyarrow().to_pandas()
        counts = counts.merge(spine.select("entity_id", "as_day", "as_of").to_pyarrow()
                              .to_pandas(), on=["entity_id", "as_day"])
        return counts.rename(columns={"entity_id": key})

    def truth(self) -> pd.DataFrame | None:
        """The simulator's true probabilities per (account, as_of): ``account_id``,
        ``as_of`` (UTC), ``p_convert`` and ``p_hand_raise`` from ``truth/snapshots.parquet``
        beside the data (what :func:`pqlml.simulate.simulate` writes; the backtest's
        oracle); None for data that is not simulated. Where ``truth/touches.parquet`` says
        sales touched the account at that as_of, ``p_convert`` is its probability as touched
        (``p_convert_touch``): the true chance of what happened. Read once per run."""
        path = Path(self.config.data.root) / "truth" / "snapshots.parquet"
        if not path.exists():
            return None

        def read():
            import pyarrow.parquet as pq

            names = pq.read_schema(path).names
            wanted = ("account_id", "user_id", "as_of", "p_convert", "p_hand_raise")
            frame = pd.read_parquet(path, columns=[c for c in wanted if c in names])
            frame["as_of"] = pd.to_datetime(frame.as_of, utc=True)
            touches = path.with_name("touches.parquet")
            if "account_id" in frame and touches.exists():
                t = pd.read_parquet(touches, columns=["account_id", "as_of", "touched",
                                                      "p_convert_touch"])
                t = t[t.touched]
                t["as_of"] = pd.to_datetime(t.as_of, utc=True).astype(frame.as_of.dtype)
                p = frame[["account_id", "as_of"]].merge(t, how="left", validate="one_to_one",
                                                         on=["account_id", "as_of"])
                frame["p_convert"] = p.p_convert_touch.fillna(frame.p_convert).to_numpy()
            return frame
        return self._once(("truth",), read)


def open_project(config=None, /, *, cache: bool | None = None, **settings) -> Project:
    """Load and validate the configured tables, resolve identities, find the data's range.

    Parameters
    ----------
    config : Config, str, Path, dict or Project, optional
        A :class:`~pqlml.config.Config`, a path to ``pqlml.toml``, an open
        :class:`Project` (returned as is), or a dict shaped like ``pqlml.toml`` whose
        ``data`` tables may be DataFrames.
    **settings
        Instead of a file (or beside a dict): the tables as DataFrames (pandas, pyarrow or
        polars) or file paths, ``events=df, users=df, accounts=df, outcomes=df``, and the
        config's sections as dicts, ``schedule={"start": "2024-02-01", "end":
        "2024-09-01", "every": "month"}``, ``labels={"horizon_days": 28}``, ...;
        ``root=``: the folder relative paths start at (default: the working directory).
        See :func:`~pqlml.config.config_from_settings`.
    cache : bool, optional
        Keep feature tables between runs (:mod:`pqlml.cache`); False builds every table
        afresh; None (the default) caches unless :func:`pqlml.cache.caching` turned it off
        (``pqlml --no-cache``).

    Notes
    -----
    A DataFrame is validated like a file (the same checks and messages, the table named
    "events (DataFrame)" where a file's path would be) and copied into the project's
    DuckDB when it opens: later changes to the frame do not reach the project. The
    config records each frame by its content hash (``"DataFrame sha256:<hex>"``), so a
    model's provenance names the data it learned from.

    A config not read from a file (settings or a dict) with no schedule dates gets them
    from the data: monthly cutoffs from the first month start once the widest feature
    window is full to the last whose label window closes within the data
    (:func:`~pqlml.snapshots.data_schedule`); a ``pqlml.toml`` states its schedule.

    Examples
    --------
    >>> import pandas as pd
    >>> events = pd.DataFrame({"ts": pd.date_range("2024-01-01", periods=300, freq="D"),
    ...                        "user_id": "u1", "account_id": "acme", "event": "task_created"})
    >>> project = open_project(events=events, labels={"horizon_days": 14})
    >>> project.report.files["events"], str(project.config.schedule.start)
    ('DataFrame', '2024-04-01')
    >>> open_project(events=events.drop(columns="event"))
    Traceback (most recent call last):
    ...
    pqlml.errors.DataError: events (DataFrame): missing required column(s) 'event'. ...
    """
    if isinstance(config, Project) and not settings:
        return config
    in_memory = config is None or isinstance(config, Mapping)
    if settings and not in_memory:
        raise PqlmlError(f"open_project takes a config ({type(config).__name__}) or settings "
                         f"({', '.join(settings)}), not both. Fix: open_project(config) for a "
                         "pqlml.toml, or open_project(events=df, ...) without one.")
    if in_memory:
        config = config_from_settings(config, **settings)
    if isinstance(config, (str, Path)):
        config = load_config(config)
    if not isinstance(config, Config):
        raise PqlmlError(f"The 'config' parameter must be a Config, a path to pqlml.toml, a "
                         f"dict of settings or a Project. Got {type(config).__name__} instead.")
    con, tables, report = load_tables(config.data, outcome_values=config.outcomes.values)
    moves = tables.get("memberships")
    users = (user_accounts(tables["users"], tables.get("accounts"), report=report,
                           moves=moves is not None)
             if "users" in tables else None)
    members = (membership_intervals(users, moves, report=report) if moves is not None
               else static_members(users) if users is not None else None)
    events = account_events(tables["events"], users, report=report,
                            members=members if moves is not None else None,
                            properties=config.data.properties,
                            users_only=config.project.entity == "user")
    if "enrichment" in tables:
        _report_enrichment_duplicates(tables["enrichment"], report)
    if "signups" in tables:
        _report_unknown_signups(tables["signups"], tables.get("users"), report)
    _report_unknown_entities(tables, users, events, config.project.entity, report)
    # One pass gives the data's range and each event's first occurrence (the vocabulary
    # of any cutoff), instead of a scan for each.
    e = tables["events"]
    seen = e.group_by("event").aggregate(first=e.ts.min(), last=e.ts.max()).execute()
    if seen.empty:
        where = report.files.get("events") or (config.data.events or config.data.export).source
        raise PqlmlError(f"The events table ({where}) has no rows: "
                         "there is nothing to build features from.")
    first_seen = {str(k): pd.Timestamp(v) for k, v in zip(seen["event"], seen["first"])}
    data_start, data_end = seen["first"].min(), seen["last"].max()
    if config.path is None:
        config = replace(config, schedule=data_schedule(
            config.schedule, data_start, data_end, widest_window=max(config.features.windows),
            horizon_days=config.labels.horizon_days))
    return Project(config, con, tables, users, members, events, report, data_start,
                   data_end, first_seen, None if cache is False else cache_for(config))


def _report_enrichment_duplicates(enrichment: ibis.Table, report: ValidationReport) -> None:
    from .identity import normalise_domain

    d = enrichment.select(_d=normalise_domain(enrichment.domain))
    n = d.aggregate(rows=d.count(), distinct=d._d.nunique()).execute().iloc[0]
    if n["rows"] > n["distinct"]:
        report.add(Finding("enrichment", report.files.get("enrichment", ""), "domain",
                           "enrichment_duplicate_domains", int(n["rows"] - n["distinct"]),
                           "merged: rows whose domains differ only by case, spaces or 'www.' "
                           "describe one company; each field keeps its largest value",
                           "keep one row per domain in the enrichment file"))


def _report_unknown_signups(signups: ibis.Table, users: ibis.Table | None,
                            report: ValidationReport) -> None:
    if users is None:
        n = signups.count().execute()
    else:
        known = users.select(_u=users.user_id)
        n = signups.anti_join(known, signups.user_id == known._u).count().execute()
    if n:
        report.add(Finding("signups", report.files.get("signups", ""), "user_id",
                           "signups_without_user", int(n),
                           "not used: no user with this user_id in the users table",
                           "export sign-up answers keyed by the same user ids as the users"))


# The tables whose rows name an entity, by column: (table, column, entity the column names).
_NAMED = (("outcomes", "account_id", "account"), ("outcomes", "user_id", "user"),
          ("leads", "account_id", "account"), ("dispositions", "entity_id", None),
          ("touches", "account_id", "account"), ("holdouts", "account_id", "account"))


def _report_unknown_entities(tables: dict, users, events, entity: str,
                             report: ValidationReport) -> None:
    """Outcomes, leads, dispositions, touches and holdouts naming accounts or users that no accounts / users
    table (nor, without an accounts table, any user's or event's account) has: counted, as
    they label and describe nothing. Outcomes dated before their account's ``created_at``
    are counted too (one query for all)."""
    known = {}
    if "accounts" in tables:
        known["account"] = tables["accounts"].select(_k=tables["accounts"].account_id)
    else:
        parts = [t.select(_k=t.account_id.cast("string")) for t in (users, events)
                 if t is not None and "account_id" in t.columns]
        known["account"] = ibis.union(*parts) if parts else None
    if "users" in tables:
        known["user"] = tables["users"].select(_k=tables["users"].user_id)
    parts = {}
    for name, column, kind in _NAMED:
        if kind == "user" and entity != "user":    # an account's outcome still labels it
            continue
        kind = kind or entity
        t = tables.get(name)
        if t is None or column not in t.columns or known.get(kind) is None:
            continue
        ids = known[kind].filter(known[kind]._k.notnull()).distinct()
        rows = t.filter(t[column].notnull())
        unknown = rows.anti_join(ids, rows[column] == ids._k)
        parts[name, column, kind] = (unknown, None)
    a, o = tables.get("accounts"), tables.get("outcomes")
    if a is not None and o is not None and "account_id" in o.columns and "created_at" in a.columns:
        a = a.select(_acc=a.account_id, _created=a.created_at)
        j = o.join(a, o.account_id == a._acc)
        parts["outcomes", "ts", "early"] = (j, j.ts < j._created)
    for (name, column, kind), n in counts(parts).items():
        if n and kind == "early":
            report.add(Finding(name, report.files.get(name, ""), column,
                               "outcomes_before_account_created", n,
                               "kept: dated before their account's created_at, they label no "
                               "snapshot (the account had none yet); a conversion still makes "
                               "the account a customer from then on",
                               "check accounts.created_at (a CRM's record date can be later "
                               "than the company's first purchase) or the outcome's ts"))
        elif n:
            where = "accounts table" if kind == "account" and "accounts" in tables else \
                "users table" if kind == "user" else "users' or events' accounts"
            report.add(Finding(name, report.files.get(name, ""), column, "unknown_entities", n,
                               f"not used: no {kind} with this id in the {where}, so they "
                               f"label or describe no {kind}",
                               f"use the same {kind} ids in {name} as in the {where}, or add "
                               f"the missing {kind}s"))


def _member_accounts(project: Project, X: pd.DataFrame) -> pd.DataFrame:
    """User rows with the account each was in just before its ``as_of`` (membership is
    time-true) and, for the fit, their own work-email share."""
    if "work_email" in X.columns and "work_email_share" not in X.columns:
        X = pd.concat([X, X.work_email.rename("work_email_share")], axis=1)
    if project.members is None:
        return X
    m, day = project.members, (pd.to_datetime(X.as_of, utc=True) - pd.Timestamp(0, tz="UTC")).dt.days
    rows = ibis.memtable(pd.DataFrame({"_row": range(len(X)), "_u": X.user_id.astype(str),
                                       "_day": day.to_numpy()}))
    j = rows.join(m, [rows._u == m.user_id, member_then(m, rows._day)])
    j = j.select("_row", "account_id").to_pyarrow().to_pandas().set_index("_row")
    account = j.account_id.reindex(range(len(X))).set_axis(X.index).rename("account_id")
    return pd.concat([X.drop(columns="account_id", errors="ignore"), account], axis=1)


def _entity(project: Project, entity) -> str:
    entity = entity or project.entity
    entity_key(entity)                  # the one check of an entity's name
    return entity


def spine_for(project: Project, *, as_of=None, entity=None) -> ibis.Table:
    """The (entity_id, as_of) rows: ``as_of`` dates, or the config's schedule when None."""
    entity = _entity(project, entity)
    if isinstance(as_of, pd.DataFrame):
        # On the project's own connection: a free-standing memtable would be cached on
        # ibis's default backend, and joining it with the project's tables then fails.
        as_of = project.con.create_table(ibis.util.gen_name("pqlml_spine"), obj=as_of,
                                         temp=True)
    if isinstance(as_of, ibis.Table):
        return build_spine(None, as_of=as_of, entity=entity)
    dates = list(project.dates(as_of))
    entities = entities_from_tables(project.tables, entity, project.events)
    return build_spine(entities, as_of=dates, entity=entity)


def _keyed(table, entity: str) -> pd.DataFrame:
    """The feature table (or its groups' tables, :mod:`pqlml.grouped`) as a DataFrame
    sorted by entity and as_of."""
    key = entity_key(entity)
    if not isinstance(table, ibis.Table):     # keyed already (pqlml.grouped)
        rows = [t.to_pyarrow() for t in table]
        rows = pa.concat_tables([r.cast(rows[0].schema) for r in rows])
        return _sorted_frame(rows, key)
    if "entity_id" in table.columns:
        table = table.rename({key: "entity_id"})
    # Through Arrow: ibis's own to_pandas spends 30x longer converting 100 columns. Sorted
    # by Arrow once the engine has handed its freed memory back (the engine's ORDER BY held
    # a third copy of the result at the peak), column by column on every core (Table.take
    # gathers the columns one after another: 0.95 s against 0.55 s for 835k rows x 107
    # columns on 2 cores), into contiguous columns that pandas takes without a copy,
    # freeing each Arrow buffer as it goes.
    return _sorted_frame(table.to_pyarrow(), key)


def _sorted_frame(rows: pa.Table, key: str) -> pd.DataFrame:
    """``rows`` sorted by (``key``, ``as_of``) as a DataFrame (see :func:`_keyed`); DuckDB's
    freed memory is handed back before the copy (:func:`~pqlml.backends.release_freed_memory`:
    a no-op where nothing is held)."""
    release_freed_memory()
    order = pc.sort_indices(rows, [(key, "ascending"), ("as_of", "ascending")])
    memory = _copy_pool()
    with ThreadPoolExecutor(_cores()) as pool:
        columns = list(pool.map(lambda column: pc.take(column, order, memory_pool=memory),
                                rows.columns))
    rows = pa.Table.from_arrays(columns, schema=rows.schema)
    del columns
    return rows.to_pandas(split_blocks=True, self_destruct=True)


def _copy_pool() -> pa.MemoryPool:
    """Arrow's jemalloc pool where the build has one (Linux wheels), else the default.
    After DuckDB has handed its freed memory back, the sorted copy (0.4 GB: 12 cutoffs, 100k
    accounts) took 0.26-0.30 s from the jemalloc pool (five runs), 0.27-0.64 s from the
    default, mimalloc (eight runs), at the same peak."""
    try:
        return pa.jemalloc_memory_pool()
    except NotImplementedError:
        return pa.default_memory_pool()


def _cores() -> int:
    """The cores this process may run on. Not ``pa.cpu_count()``: Arrow sizes its pool by
    ``OMP_NUM_THREADS`` when set, and with ``OMP_NUM_THREADS=1`` (set to keep scikit-learn's
    OpenMP from oversubscribing) the gather ran on one core, 1.2 s instead of 0.7 s."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # no sched_getaffinity (macOS, Windows)
        return max(1, os.cpu_count() or 1)


def build_features(config, *, as_of=None, entity=None, extra=()) -> pd.DataFrame:
    """Point-in-time features: one row per (entity, as_of), events strictly before as_of.

    ``as_of``: a date, a list of dates, an explicit spine table (``entity_id``,
    ``as_of``), or None for the config's whole schedule. ``extra``:
    :class:`~pqlml.features.Count` / :class:`~pqlml.features.Derived` features.
    (:meth:`Project.features` on an open project.)
    """
    return open_project(config).features(as_of, entity=entity, extra=extra)


def project_features(project: Project, spine: ibis.Table, entity: str, extra=(),
                     history=None, *, events=None, cutoffs=None) -> ibis.Table:
    """The lazy feature table of ``spine`` from the project's tables and configured families
    (what :func:`build_features` runs); ``history``: a kept
    :class:`~pqlml.features._history.History` (:mod:`pqlml.refresh`); ``events`` and
    ``cutoffs``: one group's resolved events and every cutoff (:mod:`pqlml.grouped`)."""
    settings = project.config.features
    return feature_table(spine, project.events if events is None else events,
                         users=project.users, members=project.members,
                         first_seen=project.first_seen,
                         accounts=project.tables.get("accounts"),
                         settings=settings, entity=entity, extra=extra,
                         answers=signup_answers_table(project),
                         enrichment_table=project.tables.get("enrichment"),
                         enterprise=read_domain_list(settings.enterprise_domains,
                                                     project.config.data.root),
                         properties=project.config.data.properties, history=history,
                         cutoffs=cutoffs)


def _labelled_batches(project: Project, spine: ibis.Table, labels: ibis.Table):
    """The features of ``spine`` joined to ``labels``, as Arrow batches, a group of entities
    after another (:func:`pqlml.grouped.feature_groups`)."""
    from .grouped import feature_groups

    key = project.key
    with feature_groups(project, spine, project.entity) as groups:
        for feats in groups:
            yield from record_batches(feats.join(labels, [key, "as_of"]))


def signup_answers_table(project: Project) -> ibis.Table | None:
    """``user_id``, ``signup_at`` and the sign-up answers: the users' own properties, gaps
    filled from the ``signups`` table; None without any answers. (Which account a user's
    answers count for, and when, comes from ``project.members``.)"""
    users, signups = project.tables.get("users"), project.tables.get("signups")
    if project.users is None:
        return None
    own = [c for c in SIGNUP_ANSWERS if users is not None and c in users.columns]
    extra = [c for c in SIGNUP_ANSWERS if signups is not None and c in signups.columns]
    if not own and not extra:
        return None
    m = project.users.select("user_id", "signup_at")
    if own:
        u = users.select(_uid=users.user_id, **{f"_o_{c}": users[c] for c in own})
        m = m.left_join(u, m.user_id == u._uid).drop("_uid")
    if extra:
        t = signups.select(_sid=signups.user_id, **{f"_s_{c}": signups[c] for c in extra})
        m = m.left_join(t, m.user_id == t._sid).drop("_sid")
    answers = {}
    for c in SIGNUP_ANSWERS:
        parts = [m[f"_{p}_{c}"] for p in ("o", "s") if f"_{p}_{c}" in m.columns]
        if parts:
            answers[c] = ibis.coalesce(*parts) if len(parts) > 1 else parts[0]
    return m.select("user_id", "signup_at", **answers)


def build_labels(config, *, as_of=None, entity=None) -> pd.DataFrame:
    """Hand-raise and conversion in ``[as_of, as_of + horizon)`` for each spine row.

    Entities that converted before ``as_of`` are left out (unless ``[labels]
    exclude_prior_positives = false``) and snapshots
    whose horizon runs past the end of the data are censored (labels null);
    both are counted in ``open_project(config).report``. (:meth:`Project.labels` on an
    open project.)
    """
    return open_project(config).labels(as_of, entity=entity)
