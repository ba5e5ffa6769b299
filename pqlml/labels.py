"""Labels: what happens to an entity in the horizon after each as_of.

For a spine row ``(entity_id, as_of)`` and a horizon of ``h`` days, an outcome
counts when ``as_of <= ts < as_of + h days``. Features see ``ts < as_of``, so the
two partition time: an event stamped exactly at the cutoff (a date-only log's
midnight) is a label, never lost between the sides. Rows whose entity converted
before ``as_of`` are removed (there is nothing left to predict), unless
``exclude_prior_positives`` is off (conversion as a repeatable outcome: a repeat
purchase); rows whose horizon runs past the end of the data are kept as censored,
with null labels rather than negatives.
"""

from __future__ import annotations


import ibis
import ibis.expr.datatypes as dtypes
import numpy as np
import pandas as pd

from pqlml.errors import DataError, PqlmlError
from pqlml.schema import ENTITY_KEYS
from pqlml.snapshots import utc
from pqlml.validate import Finding, ValidationReport

__all__ = ["build_labels", "default_data_end", "OUTCOMES", "LABEL_COLUMNS", "check_outcome",
           "no_labelled_snapshot"]

OUTCOMES = ("hand_raise", "conversion", "accepted")
LABEL_COLUMNS = OUTCOMES + ("censored",)

UTC = dtypes.Timestamp(timezone="UTC")


def no_labelled_snapshot(horizon_days: int, data_end) -> str:
    """What training (and ``pqlml validate`` before it) says when no snapshot has a closed
    label window."""
    return (f"No labelled snapshot to learn from: every as_of's {horizon_days}-day horizon runs "
            f"past the end of the data ({data_end.date()}), or no entity is eligible. Fix: a "
            f"shorter labels.horizon_days or an earlier schedule.end.")


def default_data_end(events: ibis.Table):
    """The end of the data: the last event's timestamp.

    Examples
    --------
    >>> ts = pd.to_datetime(["2024-01-01 00:00", "2024-03-05 10:00"], utc=True)
    >>> default_data_end(ibis.memtable({"ts": ts}))
    Timestamp('2024-03-05 10:00:00+0000', tz='UTC')
    """
    end = events.ts.max().execute()
    if end is None or pd.isna(end):
        raise DataError("the events table is empty, so the data has no end. Fix: load events.")
    return _utc(end, "data_end")


def _utc(value, name: str) -> pd.Timestamp:
    return utc(value, name, "build_labels")


def check_outcome(outcome, tables: dict) -> str:
    """``outcome`` if it is a label pqlml can build from ``tables``, else a clear error."""
    if outcome not in OUTCOMES:
        raise PqlmlError(f"The 'outcome' parameter must be one of {', '.join(map(repr, OUTCOMES))}. "
                         f"Got {outcome!r} instead.")
    if outcome == "accepted" and "dispositions" not in tables:
        raise PqlmlError("The outcome 'accepted' comes from sales' dispositions, but the config "
                         "has no [data.dispositions] table. Fix: add\n[data.dispositions]\n"
                         'source = "dispositions.csv"\n(entity_id, at, disposition, reason, rep).')
    return outcome


def _check_params(horizon_days, entity) -> None:
    ok = isinstance(horizon_days, (int, np.integer)) and not isinstance(horizon_days, bool)
    if not ok or horizon_days <= 0:
        raise PqlmlError("The 'horizon_days' parameter of build_labels must be a positive int. "
                         f"Got {horizon_days!r} instead.")
    if entity not in ENTITY_KEYS:
        raise PqlmlError("The 'entity' parameter of build_labels must be one of 'account', "
                         f"'user'. Got {entity!r} instead.")


def build_labels(spine: ibis.Table, outcomes: ibis.Table, *, horizon_days: int, data_end,
                 entity: str = "account", report: ValidationReport | None = None,
                 dispositions: ibis.Table | None = None,
                 exclude_prior_positives: bool = True) -> ibis.Table:
    """Label each spine row with the outcomes in ``[as_of, as_of + horizon_days)``.

    Parameters
    ----------
    spine : ibis.Table
        ``entity_id`` and ``as_of`` (:func:`pqlml.snapshots.build_spine`).
    outcomes : ibis.Table
        Canonical outcomes: ``ts``, ``outcome`` and ``account_id`` (or
        ``user_id`` for ``entity="user"``, which matches outcomes on the user).
    horizon_days : int
        Length of the label window in days (positive).
    data_end : timestamp or date
        The end of the data (:func:`default_data_end`); naive values are UTC.
    entity : {"account", "user"}
    report : ValidationReport, optional
        When given, gets the number of rows removed (converted before as_of),
        censored, and (users) outcomes without a user. Counting runs one query;
        without a report the result stays fully lazy.
    dispositions : ibis.Table, optional
        Sales' verdicts (``entity_id``, ``at``, ``disposition``): adds ``accepted``.
    exclude_prior_positives : bool, default True
        Leave out rows whose entity converted before ``as_of``. False keeps them:
        conversion is then repeatable (a repeat purchase in the window is a 1).

    Returns
    -------
    ibis.Table
        ``entity_id, as_of, hand_raise, conversion, censored`` (and ``accepted``
        with dispositions): labels are 1
        or 0 (int8), both null where ``censored`` (``as_of + horizon > data_end``).
        Rows whose entity converted before ``as_of`` are left out (see
        ``exclude_prior_positives``).

    Examples
    --------
    >>> spine = ibis.memtable({"entity_id": ["a1", "a1", "a2"],
    ...     "as_of": pd.to_datetime(["2024-02-01", "2024-03-01", "2024-02-01"], utc=True)})
    >>> outcomes = ibis.memtable({"account_id": ["a1", "a1"], "outcome": ["hand_raise",
    ...     "conversion"], "ts": pd.to_datetime(["2024-02-01", "2024-02-29"], utc=True)})
    >>> labels = build_labels(spine, outcomes, horizon_days=28, data_end="2024-03-20")
    >>> # a1's hand-raise is at as_of: a label of that as_of (features see only what came
    >>> # before). The conversion on 02-29 is after the 28 days [02-01, 02-29): not a label;
    >>> # it is before 2024-03-01, so that row is removed (a customer by then)
    >>> df = labels.order_by(["entity_id", "as_of"]).execute()
    >>> print(df[["entity_id", "hand_raise", "conversion", "censored"]].to_string(index=False))
    entity_id  hand_raise  conversion  censored
           a1           1           0     False
           a2           0           0     False
    """
    _check_params(horizon_days, entity)
    end = _utc(data_end, "data_end")
    key = ENTITY_KEYS[entity]
    missing = [c for c in (key, "ts", "outcome") if c not in outcomes.columns]
    if missing:
        raise DataError(f"outcomes lack column(s) {', '.join(map(repr, missing))}, needed for "
                        f"{entity} labels. Fix: map them in [data.outcomes.columns].")
    s = spine.select(entity_id=spine.entity_id.cast("string"), as_of=spine.as_of.cast(UTC))
    o = outcomes.select(_eid=outcomes[key].cast("string"), _ts=outcomes.ts.cast(UTC),
                        _outcome=outcomes.outcome)
    if report is not None and entity == "user":
        _report_unmatched_outcomes(o, report)
    o = o.filter(o._eid.notnull())
    horizon = ibis.interval(days=int(horizon_days))
    hits = s.join(o, [s.entity_id == o._eid, o._ts >= s.as_of, o._ts < s.as_of + horizon])
    hits = hits.group_by(["entity_id", "as_of"]).aggregate(
        _hr=(hits._outcome == "hand_raise").any(), _conv=(hits._outcome == "conversion").any())
    conv = o.filter(o._outcome == "conversion")
    first = conv.group_by(_cid=conv._eid).aggregate(_first_conversion=conv._ts.min())
    t = s.left_join(hits, ["entity_id", "as_of"]).select(s.entity_id, s.as_of, "_hr", "_conv")
    t = t.left_join(first, t.entity_id == first._cid).drop("_cid")
    prior = t._first_conversion.notnull() & (t._first_conversion < t.as_of)
    t = t.mutate(_gone=prior if exclude_prior_positives else ibis.literal(False),
                 censored=(t.as_of + horizon) > ibis.literal(end, type=UTC))
    if report is not None:
        _report_rows(t, report, int(horizon_days), end)
    t = t.filter(~t._gone)
    cols = {"hand_raise": _label(t._hr, t.censored), "conversion": _label(t._conv, t.censored),
            "censored": t.censored}
    if dispositions is not None:
        t = t.left_join(_verdicts(s, dispositions, horizon), ["entity_id", "as_of"]) \
            .drop("entity_id_right", "as_of_right")
        cols["accepted"] = ibis.ifelse(t.censored | t._seen.isnull(), ibis.null("int8"),
                                       t._ok.cast("int8"))
    return t.select("entity_id", "as_of", **cols)


def _verdicts(s: ibis.Table, dispositions: ibis.Table, horizon) -> ibis.Table:
    """Per spine row with a disposition in [as_of, as_of + horizon): whether one was accepted."""
    d = dispositions.select(_did=dispositions.entity_id.cast("string"), _at=dispositions.at.cast(UTC),
                            _yes=dispositions.disposition.isin(["accepted", "converted"]))
    j = s.join(d, [s.entity_id == d._did, d._at >= s.as_of, d._at < s.as_of + horizon])
    return j.group_by(["entity_id", "as_of"]).aggregate(_seen=j.count(), _ok=j._yes.any())


def _label(hit: ibis.BooleanValue, censored: ibis.BooleanValue) -> ibis.IntegerValue:
    return ibis.ifelse(censored, ibis.null("int8"), hit.fill_null(False).cast("int8"))


def _report_rows(t: ibis.Table, report: ValidationReport, horizon: int, end: pd.Timestamp):
    n = t.aggregate(gone=t._gone.sum(), censored=(t.censored & ~t._gone).sum()).execute().iloc[0]
    if n["gone"]:
        report.add(Finding("snapshots", "", "as_of", "converted_before_as_of", int(n["gone"]),
                           "removed: the entity had converted before as_of, so there is "
                           "nothing left to predict", "none needed; set [labels] "
                           "exclude_prior_positives = false if conversion repeats (a repeat "
                           "purchase, a renewal)"))
    if n["censored"]:
        report.add(Finding("snapshots", "", "as_of", "censored_horizon", int(n["censored"]),
                           f"kept with censored = True and null labels: as_of + {horizon} days "
                           f"runs past the end of the data ({end})",
                           f"use as_of dates up to {(end - pd.Timedelta(days=horizon)).date()}, "
                           f"or a shorter [labels] horizon_days"))


def _report_unmatched_outcomes(o: ibis.Table, report: ValidationReport) -> None:
    n = o._eid.isnull().sum().execute()
    if n:
        report.add(Finding("outcomes", report.files.get("outcomes", ""), "user_id",
                           "outcomes_without_user", int(n),
                           "not used for user labels: the outcome has no user_id",
                           "fill outcomes.user_id with the user who raised a hand or converted"))


def outcome_table(tables: dict, events: ibis.Table, outcomes_config) -> ibis.Table:
    """The outcomes labels come from: the outcomes table and the configured events.

    The ``[data.outcomes]`` table (a CRM's closed-won with amounts, say; its values
    already mapped by ``[outcomes] values`` when it was loaded) and the product events
    that mean an outcome (``outcomes.hand_raise_events``, ``conversion_events`` and the
    event names ``[outcomes] values`` maps to ``"hand_raise"`` / ``"conversion"``) are
    stacked; either may be absent. ``events`` is the output of
    :func:`pqlml.identity.account_events` (it carries the account at the event's time).

    Examples
    --------
    >>> from pqlml.config import OutcomesConfig
    >>> ev = ibis.memtable({"account_id": ["a1", "a1"], "user_id": ["u1", "u1"],
    ...     "ts": pd.to_datetime(["2024-01-02", "2024-01-03"], utc=True),
    ...     "event": ["login", "subscription_started"]})
    >>> cfg = OutcomesConfig(values={"subscription_started": "conversion"})
    >>> outcome_table({}, ev, cfg).execute()[["account_id", "outcome", "event"]].values.tolist()
    [['a1', 'conversion', 'subscription_started']]
    """
    hr, conv = outcomes_config.events_of("hand_raise"), outcomes_config.events_of("conversion")
    parts = []
    if "outcomes" in tables:
        o = tables["outcomes"]
        parts.append(o.select(account_id=o.account_id.cast("string"),
                              user_id=(o.user_id if "user_id" in o.columns
                                       else ibis.null("string")).cast("string"),
                              ts=o.ts, outcome=o.outcome,
                              event=(o.event if "event" in o.columns
                                     else ibis.null("string")).cast("string")))
    if hr or conv:
        e = events.filter(events.event.isin(list(hr) + list(conv)))
        kind = ibis.ifelse(e.event.isin(list(conv)), "conversion", "hand_raise") if hr else \
            ibis.literal("conversion")
        parts.append(e.select(account_id=e.account_id.cast("string"),
                              user_id=e.user_id.cast("string"), ts=e.ts, outcome=kind,
                              event=e.event.cast("string")))
    if not parts:
        raise PqlmlError("No outcomes to label with: the config has no [data.outcomes] table and "
                         "no outcome events. Fix: add "
                         '[data.outcomes]\nsource = "outcomes.parquet"\nor name the events under '
                         '[outcomes], e.g. conversion_events = ["plan_upgraded"] or values = '
                         '{ subscription_started = "conversion" }.')
    if len(parts) == 1:
        return parts[0]
    return parts[0].union(parts[1].cast(parts[0].schema()), distinct=False)
