"""Assemble the feature table for a spine: activity, users, firmographics, derived."""

from __future__ import annotations

from typing import Mapping

import ibis

from ..backends import cached
from ..config import FeaturesConfig
from ..errors import PqlmlError
from ..identity import members_at, static_members
from ..schema import entity_key
from ..snapshots import utc
from ._activation import activation
from ._engagement import engagement
from ._history import History, entities_table, first_with, recency_with
from ._history import _table as _history_table
from ._fit import answer_vocabulary, enrichment, enrichment_industries, enterprise_flag, signup_answers
from ._activity import (active_users, count_fields, first_days, offsets, packing_level, recency,
                        segment_grain, split_counts, to_days, windowed_activity, with_segments)
from ._profile import account_users, buyer_title, firmographics, one_hot_values
from ._segments import Segments
from ._names import growth_clashes, total_clashes
from ._specs import ACCOUNT_DERIVED, DEFAULT_DERIVED, Count, Derived, Sum, feature_name, growth_derived
from ._values import value_fields, value_names, value_offsets, windowed_values

__all__ = ["feature_table", "vocabulary"]

_KEYS = ["entity_id", "as_of"]
_NOT_COUNTS = ("days_since_", "days_to_", "stated_", "work_email_share", "employees", "account_age_days",
               "engagement_score")


def vocabulary(events: ibis.Table, until, first_seen: Mapping | None = None) -> tuple[str, ...]:
    """Event names seen strictly before ``until``, sorted: from ``first_seen`` (event name ->
    its first occurrence) when given, else by a query of ``events``."""
    if first_seen is not None:
        until = utc(until, "until")
        return tuple(sorted(str(e) for e, first in first_seen.items() if first < until))
    seen = events.filter(events.ts < until).select("event").distinct().to_pandas()["event"]
    return tuple(sorted(str(e) for e in seen))


def feature_table(spine: ibis.Table, events: ibis.Table, *, users: ibis.Table | None = None,
                  accounts: ibis.Table | None = None, settings: FeaturesConfig = FeaturesConfig(),
                  entity: str = "account", extra=(), answers: ibis.Table | None = None,
                  enrichment_table: ibis.Table | None = None, enterprise=(),
                  first_seen: Mapping | None = None,
                  members: ibis.Table | None = None,
                  properties: tuple[str, ...] = (), history: History | None = None,
                  cutoffs: ibis.Table | None = None) -> ibis.Table:
    """The lazy ibis feature table: one row per spine row, on the spine's backend.

    ``spine`` has ``entity_id`` and ``as_of`` (midnight UTC timestamps).
    ``events`` has ``ts``, ``user_id``, ``event`` and the resolved ``account_id``.
    ``users`` (``user_id``, ``account_id``, ``signup_at``, ``title``, ``is_free_mail``)
    and ``accounts`` (canonical) are optional: without them, their families are absent.
    ``members`` (:data:`pqlml.identity.MEMBER_COLUMNS`) say which users were in which
    account when; without them, each user is in their ``users.account_id`` at all times.
    ``answers`` (``user_id``, ``signup_at``, answer columns),
    ``enrichment_table`` (canonical enrichment) and ``enterprise`` (domains) add the fit
    family of :mod:`pqlml.features._fit`. ``first_seen`` (event name -> first occurrence,
    :attr:`pqlml.project.Project.first_seen`) gives the vocabulary without a query.
    ``properties`` name numeric columns of ``events`` summed and maximised per window
    (:mod:`pqlml.features._values`), with the ``Sum`` features of ``settings.sums`` and
    ``extra``.
    ``history`` (:class:`~pqlml.features._history.History`): what the events before its
    ``cut`` gave; only the events from then on are read (every cutoff must be at least
    :func:`~pqlml.features._history.lookback` days after the cut), and the table is the
    one all the events give (:mod:`pqlml.refresh`).
    ``cutoffs`` (a table with the whole spine's ``as_of``) when ``spine`` holds only some of
    its entities (:mod:`pqlml.grouped`): what every entity shares, the vocabulary, the
    segments and the categories, then follows every cutoff, not the group's.
    """
    # Materialised first: a spine such as ``spine.limit(1)`` need not give the same rows
    # each time it is evaluated, and it is read several times below.
    spine = cached(spine.select(entity_id=spine.entity_id.cast("string"), as_of=spine.as_of,
                                as_day=to_days(spine.as_of)))
    whole = spine if cutoffs is None else cutoffs.select(as_day=to_days(cutoffs.as_of),
                                                         as_of=cutoffs.as_of)
    last = whole.as_of.max().execute()
    if members is None and users is not None:
        members = static_members(users)
    vocab = settings.events or vocabulary(events, last, first_seen)
    counts = tuple(Count(n, c.events, c.window_days) for n, c in settings.counts.items()) + \
        tuple(x for x in extra if isinstance(x, Count))
    sums = tuple(Sum(n, c.property, c.window_days, c.events, c.how)
                 for n, c in settings.sums.items()) + tuple(x for x in extra if isinstance(x, Sum))
    _check_properties(properties, sums, events)
    per_event_users = settings.active_users_events if entity == "account" else ()
    _check_event_names(vocab, settings.event_growth, per_event_users, first_seen)
    values = value_fields(tuple(properties), sums)
    key = entity_key(entity)
    # Small integer keys: grouping and joining on them is 2x faster than on strings.
    ids = spine.select("entity_id").distinct()
    ids = cached(ids.mutate(_k=ibis.row_number().cast("int32")))
    spine = cached(spine.join(ids, "entity_id"))
    as_days = whole.select("as_day").distinct().to_pyarrow()["as_day"].to_pylist()
    segments = Segments.build(as_days, offsets(settings.windows, counts, value_offsets(sums)))
    if history is not None:
        events = events.filter(events.ts >= history.start)
    ev = events.filter(events[key].notnull() & (events.ts < last)).select(
        entity_id=events[key], user_id=events.user_id, event=events.event, day=to_days(events.ts),
        **{p: events[p] for p in dict.fromkeys(c[0] for c in values.values())})
    ev = with_segments(ev, segments)
    # The grain is read by three parts: materialise it once (a temp table, a Spark cache),
    # keyed by integers and in key order, so that the window sums update neighbouring groups.
    # Its counts packed three to a word (segment_grain); split before the window sums when a
    # window's sum could overflow a count's 17 bits, built unpacked when a segment's could.
    grain = _keyed_grain(segment_grain(ev, vocab, counts, values=values), ids)
    level = packing_level(grain)
    if level == 1:
        grain = cached(grain.select(*[c for c in grain.columns if not c.startswith("_w")],
                                    **split_counts(grain, count_fields(vocab, counts))))
    elif level == 0:
        grain = _keyed_grain(segment_grain(ev, vocab, counts, packed=False, values=values), ids)
    kept = None if history is None else entities_table(history, spine._find_backend(use_default=True), ids)
    rec = recency(grain, segments)
    if kept is not None:
        rec = recency_with(rec, spine, kept)
    parts = [(part.rename(_k="entity_id"), ("_k", "as_day")) for part in (
        *windowed_activity(grain, segments, windows=settings.windows, vocabulary=vocab,
                           counts=counts, packed=level == 2, growth=settings.event_growth),
        rec, *windowed_values(grain, segments, tuple(properties), sums, settings.windows))]
    if entity == "account":
        parts.append((active_users(ev, segments, settings.windows, per_event_users),
                      ("entity_id", "as_day")))
    # Activation and engagement read the events again, each for a few event names: run as
    # their own queries (small results, cached), so the final query does not share one read
    # of the events among three consumers (DuckDB then buffers the whole read: 12 cutoffs,
    # 100k accounts, every family: 4 GB, +3 s).
    if settings.activation:
        created = _created(users, accounts, entity)
        first = first_days(grain)
        if kept is not None:
            first = first_with(first, ids, kept)
        else:
            first = first.join(ids, first.entity_id == ids._k).select(
                entity_id=ids.entity_id, _first_day=first._first_day)
        parts.append((cached(activation(ev, spine, created, settings.activation,
                                        settings.activation_within_days, first=first,
                                        prior=kept)), ("entity_id", "as_day")))
    if settings.engagement_weights:
        engaged = None if history is None or history.engaged is None else \
            _history_table(spine._find_backend(use_default=True), history.engaged)
        parts.append((cached(engagement(ev, spine, dict(settings.engagement_weights),
                                        settings.engagement_half_life_days, prior=engaged,
                                        cutoffs=as_days)),
                      ("entity_id", "as_day")))
    if entity == "account" and members is not None:
        parts.append((account_users(spine, members, settings.buyer_titles), tuple(_KEYS)))
    if answers is not None:
        parts.append((signup_answers(spine, answers, answer_vocabulary(answers, last), entity,
                                     members), ("entity_id", "as_day")))
    # The profile and fit families join the same chain; the one projection after it fills
    # the counts of the parts above (not the profile's or the fit's columns).
    filled = {c for part, keys in parts for c in part.columns if c not in _keyset(keys)}
    profile, profile_columns = _profile(spine, users, members, accounts, settings, entity, last)
    parts += profile
    domains = _domains(spine, users, accounts, entity)
    fit = ([enrichment(domains, enrichment_table, enrichment_industries(enrichment_table))]
           if enrichment_table is not None else []) + \
        ([enterprise_flag(domains, tuple(enterprise))] if enterprise else [])
    parts += [(part, ("entity_id",)) for part in fit]
    table = _join_all(spine, parts)
    undefined = [n for n, (_, how, _) in value_names(tuple(properties), sums,
                                                       settings.windows).items() if how == "max"]
    columns = {"entity_id": table.entity_id, "as_of": table.as_of, "as_day": table.as_day,
               **{c: _filled(table[c], c, undefined) for c in table.columns if c in filled},
               **profile_columns(table),
               **{c: table[c] for part in fit for c in part.columns if c != "entity_id"}}
    columns["distinct_events_30d"] = sum(
        ibis.ifelse(columns[f"events_{feature_name(e)}_30d"] > 0, 1, 0) for e in vocab) \
        if vocab else ibis.literal(0)
    table = table.select(**columns)
    derived = DEFAULT_DERIVED + (ACCOUNT_DERIVED if entity == "account" else ())
    derived += growth_derived(vocab) if settings.event_growth else ()
    derived += tuple(x for x in extra if isinstance(x, Derived))
    table = table.mutate(**{d.name: d.fn(table) for d in derived})
    return table.select(*[table[c].name(key if c == "entity_id" else c)
                          for c in table.columns if c != "as_day"])


def _join_all(table: ibis.Table, parts) -> ibis.Table:
    """``table`` left-joined with each ``(part, keys)`` in turn: ``keys`` name the columns
    both sides share, or map ``table``'s columns to the part's. The parts' keys come back
    as ``_j<i>_<name>``: select the columns wanted from the result.

    One join chain (one ``SELECT`` with a join per part) instead of a join and a projection
    per part: the query nests once instead of once per part, which is what ibis's compiler
    spends its time on (``sqlize`` rewrites each nested projection of ~200 columns).

    Examples
    --------
    >>> t = ibis.memtable({"k": [1, 2], "d": [5, 5]})
    >>> a = ibis.memtable({"k": [1], "d": [5], "x": [10]})
    >>> b = ibis.memtable({"k": [2], "y": [20]})
    >>> j = _join_all(t, [(a, ("k", "d")), (b, {"k": "k"})])
    >>> j.select("k", "d", "x", "y").order_by("k").to_pandas().fillna(0).values.tolist()
    [[1.0, 5.0, 10.0, 0.0], [2.0, 5.0, 0.0, 20.0]]
    """
    for i, (part, keys) in enumerate(parts):
        keys = keys if isinstance(keys, Mapping) else {k: k for k in keys}
        names = {f"_j{i}_{k}": k for k in keys.values()}
        part = part.rename(names)
        table = table.left_join(part, [(left, f"_j{i}_{right}") for left, right in keys.items()])
    return table


def _keyset(keys) -> set[str]:
    """The part's own names of the keys of a ``(part, keys)`` of :func:`_join_all`."""
    return set(keys.values() if isinstance(keys, Mapping) else keys)


def _keyed_grain(grain: ibis.Table, ids: ibis.Table) -> ibis.Table:
    """The grain keyed by the entities' integers, in key order, materialised once."""
    grain = grain.join(ids, "entity_id").drop("entity_id").rename(entity_id="_k")
    return cached(grain.order_by(["entity_id", "seg"]))


def _domains(spine, users, accounts, entity) -> ibis.Table:
    """``entity_id``, ``_domain`` per spine entity: the account's domain (its id when there is
    no accounts table: accounts are then named by domain), a user's email domain."""
    ids = spine.select("entity_id").distinct()
    if entity == "user":
        d = users.select(_id=users.user_id.cast("string"), _d=users.email_domain) if users is not None \
            else None
    elif accounts is not None:
        d = accounts.select(_id=accounts.account_id.cast("string"), _d=accounts.domain)
    else:
        return ids.mutate(_domain=ids.entity_id)
    if d is None:
        return ids.mutate(_domain=ibis.null("string"))
    j = ids.left_join(d, ids.entity_id == d._id)
    return j.select("entity_id", _domain=j._d)


def _created(users, accounts, entity):
    """Sign-up day per entity (account creation, a user's sign-up), or None."""
    if entity == "account" and accounts is not None:
        return accounts.select(entity_id=accounts.account_id.cast("string"),
                               created_day=to_days(accounts.created_at))
    if entity == "user" and users is not None:
        return users.select(entity_id=users.user_id.cast("string"), created_day=to_days(users.signup_at))
    return None


def _filled(column: ibis.Value, name: str, undefined=()) -> ibis.Value:
    """Empty windows count 0; undefined quantities (recency, shares, maxima of nothing, the
    names in ``undefined``) are null (NaN)."""
    if name.startswith(_NOT_COUNTS) or name in undefined:
        return column.cast("float64")
    return column.fill_null(0)


def _check_properties(properties, sums, events: ibis.Table) -> None:
    missing = sorted({p for p in properties if p not in events.columns}
                     | {s.property for s in sums if s.property not in properties})
    if missing:
        raise PqlmlError(f"The 'properties' parameter of feature_table must name numeric "
                         f"columns of the events, and every Sum's property must be among them. "
                         f"Got {', '.join(map(repr, missing))}, which "
                         f"{'is' if len(missing) == 1 else 'are'} not. Fix: map the property in "
                         f"[data.events.columns] (e.g. amount = \"Order Total\") or pass it in "
                         f"properties.")


def _check_event_names(vocab, growth: bool, per_event_users, first_seen) -> None:
    """Every per-event name is one event's: no event's volume takes a total's name
    (``events_prev_30d``) or, with growth, another event's growth name (``x_prev`` beside
    ``x``); every event of ``active_users_events`` occurs in the data."""
    fragments = [feature_name(e) for e in vocab]
    clash = total_clashes(fragments, [feature_name(e) for e in per_event_users])
    if clash:
        raise PqlmlError(f"The event name(s) {', '.join(map(repr, clash))} would give feature "
                         f"columns the names of the catalog's totals (e.g. events_prev_30d). "
                         f"Fix: list the other events in [features] events (and "
                         f"active_users_events), or rename the event in the data.")
    clash = growth_clashes(fragments) if growth else []
    if clash:
        raise PqlmlError(f"With [features] event_growth = true, the 30-day volume of the "
                         f"event(s) {', '.join(map(repr, clash))} would share its name with "
                         f"another event's growth column (events_x_prev_30d is x's previous 30 "
                         f"days). Fix: set event_growth = false, or list the events without "
                         f"them in [features] events.")
    unknown = [e for e in per_event_users if first_seen is not None and e not in first_seen]
    if unknown:
        raise PqlmlError(f"The 'active_users_events' setting of [features] must name events of "
                         f"the data. Got {', '.join(map(repr, unknown))}, which never "
                         f"occur{'s' if len(unknown) == 1 else ''}. Fix: correct the name(s) "
                         f"or leave them out of active_users_events.")


def _profile(spine, users, members, accounts, settings, entity, last):
    """The profile family as parts of :func:`_join_all` and a function of the joined table
    giving its columns, in order: for a user, the user's own (buyer title, work e-mail,
    tenure) and the account they were in just before as_of; then that account's
    firmographics and age."""
    parts, on, user = [], "entity_id", entity == "user" and users is not None
    if user:
        u = users.select(entity_id=users.user_id, _signup_day=to_days(users.signup_at),
                         buyer_title=ibis.ifelse(buyer_title(users.title, settings.buyer_titles), 1, 0),
                         work_email=ibis.ifelse(users.is_free_mail, 0, 1))
        # the user's account just before as_of: its firmographics are the user's fit
        then = members_at(spine.select("entity_id", "as_day"),
                          members.select("user_id", "account_id", "from_day", "to_day"),
                          by="user_id")
        then = then.select("entity_id", "as_day", _account=then.account_id)
        parts += [(u, ("entity_id",)), (then, ("entity_id", "as_day"))]
        on = "_account"

    def own(t):
        return {"buyer_title": t.buyer_title, "work_email": t.work_email,
                "tenure_days": t.as_day - t._signup_day} if user else {}
    if accounts is None:
        return parts, own
    existing = accounts.filter(accounts.created_at < last)
    cats = {c: one_hot_values(existing, c) for c in ("industry", "segment") if c in accounts.columns}
    firm = firmographics(accounts, cats)
    parts.append((firm, {on: "entity_id"}))
    onehots = [c for c in firm.columns if c.startswith(tuple(f"{k}_" for k in cats))]

    def columns(t):
        return {**own(t),
                **{c: t[c].fill_null(0) if c in onehots else t[c] for c in firm.columns
                   if c not in ("entity_id", "created_day")},
                "account_age_days": t.as_day - t.created_day}
    return parts, columns
