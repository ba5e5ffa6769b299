"""Readers for product-analytics exports: Segment, Amplitude, Mixpanel -> canonical tables.

Chosen in the config with ``[data.export]`` (instead of ``[data.events]`` etc.)::

    [data.export]
    format = "segment"             # segment | amplitude | mixpanel | segment_warehouse
    source = "segment-logs/**/*.gz"
    group_key = "company_id"       # Amplitude / Mixpanel group type naming the account
    people = "people.json"         # Mixpanel user profiles (optional)
    groups = "groups.json"         # Mixpanel group profiles (optional)
    signup_event = "signed_up"     # else a user's first event is their sign-up
    max_reject_rate = 0.01         # above it, loading stops with a clear error

Every line is numbered and parsed by DuckDB's JSON functions into one "calls" shape
(:mod:`._vendors`); lines that cannot be used are counted per reason, the first 1,000
written to ``rejects.csv`` in ``data.root`` (file, line, reason, text), and reported.
Identity: an anonymous id (Segment ``anonymousId``, Amplitude ``amplitude_id`` /
``device_id``, Mixpanel ``$device_id``) is stitched to the user it was first seen with
(identify calls, or any message carrying both); membership in an account comes from
group calls (Segment ``groupId``; the ``group_key`` group on Amplitude rows and Mixpanel
event properties), latest first; users without one are left to the work-email domain
rule in :mod:`pqlml.identity` (free mail never forms an account).
"""

from __future__ import annotations

import json
from pathlib import Path

import ibis
import pyarrow as pa

from ..errors import DataError
from ..validate import Finding, ValidationReport
from ._lines import expand, read_lines
from ._vendors import amplitude_sql, mixpanel_profiles_sql, mixpanel_sql, segment_sql

__all__ = ["read_export", "FORMATS", "REJECTS_KEPT"]

FORMATS = ("segment", "amplitude", "mixpanel", "segment_warehouse")
REJECTS_KEPT = 1_000
_REASONS = {"malformed_json": "not valid JSON", "not_an_object": "valid JSON but not an object",
            "unknown_shape": "not a shape the format documents (e.g. unknown call type)",
            "missing_fields": "required fields missing (ids, event name, time)",
            "unparseable_time": "the event time or a created-at trait is neither ISO 8601 "
                                "(2024-03-31T23:30:00Z, 2024-03-31 23:30:00.123-02:00) nor, for "
                                "Mixpanel's time, epoch seconds or milliseconds"}


def _do(con, sql: str) -> None:
    """Run a statement to completion (DuckDB keeps an unfinished result otherwise)."""
    con.execute(sql).fetchall()


def _profile_lines(files) -> pa.Table:
    """Mixpanel Engage exports (a JSON object with ``results``, a list of such pages, or
    JSON lines of profiles) flattened to one profile per line."""
    names, numbers, texts = [], [], []
    for path in files:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
        try:
            doc = json.loads(text)
            pages = doc if isinstance(doc, list) else [doc]
            found = [page.get("results", [page]) if isinstance(page, dict) else [page] for page in pages]
            profiles = [p for part in found for p in (part if isinstance(part, list) else [part])]
            rows = [json.dumps(p) for p in profiles]
        except json.JSONDecodeError:
            rows = [line for line in text.splitlines() if line.strip()]
        names += [str(path)] * len(rows)
        numbers += list(range(1, len(rows) + 1))
        texts += rows
    return pa.table({"file": pa.array(names, pa.string()), "line": pa.array(numbers, pa.int64()),
                     "raw": pa.array(texts, pa.string())})


def _json_calls(con, export, root: Path) -> ibis.Table:
    """Temp table ``pqlml_calls``: every line of every export file in the calls shape."""
    raw, key = con.con, export.group_key
    raw.register("pqlml_lines", read_lines(expand(root, export.source)))
    try:
        props = export.properties
        sql = {"segment": lambda: segment_sql("pqlml_lines", props),
               "amplitude": lambda: amplitude_sql("pqlml_lines", key, props),
               "mixpanel": lambda: mixpanel_sql("pqlml_lines", key, props)}[export.format]()
        _do(raw, f"CREATE OR REPLACE TEMP TABLE pqlml_calls AS {sql}")
    finally:
        raw.unregister("pqlml_lines")
    for option, kind in (("people", "identify"), ("groups", "group")):
        pattern = getattr(export, option)
        if pattern and export.format != "mixpanel":
            raise DataError(f"[data.export] {option} is for Mixpanel profile exports; format "
                            f"{export.format!r} carries {option} in its own calls. Fix: remove it.")
        if pattern:
            raw.register("pqlml_profiles", _profile_lines(expand(root, pattern)))
            try:
                profiles = mixpanel_profiles_sql("pqlml_profiles", kind, export.properties)
                _do(raw, f"INSERT INTO pqlml_calls {profiles}")
            finally:
                raw.unregister("pqlml_profiles")
    return con.table("pqlml_calls")


def _rejects(calls: ibis.Table, export, root: Path, report: ValidationReport) -> None:
    """Count unusable lines per reason, write the first ones to rejects.csv, stop above the
    configured rate."""
    totals = calls.aggregate(total=calls.count(), bad=calls.reject.count(),
                             ignored=((calls.kind == "ignored") & calls.reject.isnull()).sum()
                             ).execute().iloc[0]
    total, bad, ignored = int(totals.total), int(totals.bad), int(totals.ignored or 0)
    where = f"{export.format} export {export.source}"
    if ignored:
        report.add(Finding("events", where, "type", "calls_not_used", ignored,
                           "not used: page, screen and alias calls are not product events",
                           "send product events as track calls"))
    if not bad:
        return
    rejected = calls.filter(calls.reject.notnull())
    counts = (rejected.group_by("reject").aggregate(n=rejected.count()).order_by(ibis.desc("n"))
              .execute())
    first = (rejected.select("file", "line", reason=rejected.reject, id=rejected.msg_id,
                             text=rejected.text).order_by(["file", "line", "id"])
             .limit(REJECTS_KEPT).execute())
    path = root / "rejects.csv"
    first.to_csv(path, index=False)
    for reason, n in zip(counts.reject, counts.n):
        report.add(Finding("events", where, "line", f"rejected_{reason}", int(n),
                           f"rejected ({_REASONS[reason]}); the first {REJECTS_KEPT:,} rejects are in "
                           f"{path}", "fix the export, or re-export the affected files"))
    rate = bad / max(total, 1)
    if rate > export.max_reject_rate:
        shown = "; ".join(f"{r.file}:{r.id if r.line != r.line or r.line is None else r.line} {r.reason}"
                          for r in first.head(5).itertuples())
        raise DataError(f"{bad:,} of {total:,} lines of the {where} were rejected ({rate:.1%}, "
                        f"above [data.export] max_reject_rate = {export.max_reject_rate:g}): "
                        + ", ".join(f"{n:,} {r.replace('_', ' ')}" for r, n in zip(counts.reject, counts.n))
                        + f". First: {shown}. All reasons and the first {REJECTS_KEPT:,} lines: "
                        f"{path}. Fix: repair or re-export those files, or raise max_reject_rate "
                        "if losing them is acceptable.")


_FAR = "2999-01-01 00:00:00"


def canonical_tables(calls: ibis.Table, signup_event: str = "signed_up",
                     properties: tuple[str, ...] = ()) -> dict[str, ibis.Table]:
    """Canonical ``events``, ``users``, ``accounts`` and ``memberships`` from the calls shape
    (lazy ibis expressions, so a warehouse computes them).

    Membership is kept over time: every group call (Segment) or event carrying the group
    (Amplitude, Mixpanel) that puts a user in another account than their previous one
    starts a membership at its time (:mod:`pqlml.identity`). A user's own ``account_id``
    is their *first* group, which also holds before their first group call (it usually
    follows the sign-up by moments); a later move never changes it. An account is created
    at its ``createdAt`` trait, else at the first event of the users who started in it.
    ``properties``: the events' numeric properties (``p__<name>`` in the calls)."""
    ok = calls.filter(calls.reject.isnull())
    both = ok.filter(ok.anon_id.notnull() & ok.user_id.notnull())
    links = both.group_by(_anon=both.anon_id).aggregate(_linked=both.user_id.argmin(both.ts))
    r = ok.left_join(links, ok.anon_id == links._anon)
    far = ibis.literal(_FAR).cast(r.ts.type())
    r = r.mutate(uid=ibis.coalesce(r.user_id, r._linked, r.anon_id), ord=r.ts.fill_null(far))
    is_event = r.kind == "event"
    events = r.filter(is_event).select(
        event_id=ibis.coalesce(r.msg_id, r.file.concat(":", r.line.cast("string"))),
        ts=r.ts, user_id=r.uid, event=r.event, **{p: r[f"p__{p}"] for p in properties})
    u = r.filter(r.uid.notnull())
    users = u.group_by(user_id=u.uid).aggregate(
        email=u.email.argmax(u.ord, where=u.email.notnull()),
        title=u.title.argmax(u.ord, where=u.title.notnull()),
        signup_at=ibis.coalesce(u.ts.min(where=(u.kind == "event") & (u.event == signup_event)),
                                u.user_created.min(), u.ts.min(where=u.kind == "event"), u.ts.min()),
        account_id=u.group_id.argmin(u.ord, where=u.group_id.notnull() & u.kind.isin(["event", "group"])))
    starters = events.join(users.select("user_id", "account_id"), "user_id")
    seen = starters.group_by(_acct=starters.account_id).aggregate(_first_seen=starters.ts.min())
    g = r.filter(r.group_id.notnull())
    traits = g.group_by(account_id=g.group_id).aggregate(
        domain=g.domain.argmax(g.ord, where=g.domain.notnull()),
        employees=g.employees.argmax(g.ord, where=g.employees.notnull()),
        industry=g.industry.argmax(g.ord, where=g.industry.notnull()),
        country=g.country.argmax(g.ord, where=g.country.notnull()),
        segment=g.segment.argmax(g.ord, where=g.segment.notnull()),
        _created=g.created_at.min(), _first_call=g.ts.min())
    a = traits.left_join(seen, traits.account_id == seen._acct)
    accounts = a.select("account_id", "domain",
                        created_at=ibis.coalesce(a._created, a._first_seen, a._first_call),
                        employees=a.employees, industry=a.industry, country=a.country,
                        segment=a.segment)
    return {"events": events, "users": users, "accounts": accounts,
            "memberships": _memberships(r)}


def _memberships(r: ibis.Table) -> ibis.Table:
    """``user_id``, ``account_id``, ``since``: the calls that put a user in another group
    than the user's previous one (group calls and events carrying a group), in time order."""
    g = r.filter(r.group_id.notnull() & r.uid.notnull() & r.ts.notnull()
                 & r.kind.isin(["event", "group"]))
    g = g.select(user_id=g.uid, account_id=g.group_id, since=g.ts, _file=g.file, _line=g.line)
    order = ibis.window(group_by="user_id", order_by=["since", "_file", "_line", "account_id"])
    g = g.mutate(_prev=g.account_id.lag().over(order))
    g = g.filter(g._prev.isnull() | (g._prev != g.account_id))
    return g.select("user_id", "account_id", "since")


def read_export(con: ibis.BaseBackend, export, root: Path, report: ValidationReport, *,
                connected: bool = False) -> dict:
    """Canonical ``events``, ``users`` and ``accounts`` ibis tables from the export
    ``[data.export]`` describes; rejects counted in ``report``. JSON exports are parsed
    into DuckDB temp tables; Segment's warehouse layout stays lazy on ``con``."""
    root = Path(root)
    if export.format == "segment_warehouse":
        from ._warehouse import warehouse_calls
        calls = warehouse_calls(con, export, root, connected=connected)
    else:
        if con.name != "duckdb":
            fix = ("remove engine = \"spark\", or load the export into Segment's warehouse "
                   "layout (format = \"segment_warehouse\")" if con.name == "pyspark"
                   else "drop [data] connection for file exports")
            raise DataError("Export files are read with DuckDB's JSON functions; this config's "
                            f"connection is {con.name}. Fix: {fix}.")
        calls = _json_calls(con, export, root)
    _rejects(calls, export, root, report)
    tables = canonical_tables(calls, export.signup_event, tuple(export.properties))
    if export.format == "segment_warehouse":
        return tables
    # parsed files: computed once, not once per downstream query
    return {name: con.create_table(f"pqlml_export_{name}", t, temp=True, overwrite=True)
            for name, t in tables.items()}
