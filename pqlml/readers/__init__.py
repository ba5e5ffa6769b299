"""Readers for product-analytics exports: Segment, Amplitude, Mixpanel -> canonical tables.

Chosen in the config with ``[data.export]`` (instead of ``[data.events]`` etc.)::

    [data.export]
    format = "segment"             # segment | amplitude | mixpanel
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
from dataclasses import dataclass
from pathlib import Path

import ibis
import pyarrow as pa

from ..errors import DataError
from ..validate import Finding, ValidationReport
from ._lines import expand, read_lines
from ._vendors import amplitude_sql, mixpanel_profiles_sql, mixpanel_sql, segment_sql

__all__ = ["read_export", "FORMATS", "REJECTS_KEPT"]

FORMATS = ("segment", "amplitude", "mixpanel")
REJECTS_KEPT = 1_000
_REASONS = {"malformed_json": "not valid JSON", "not_an_object": "valid JSON but not an object",
            "unknown_shape": "not a shape the format documents (e.g. unknown call type)",
            "missing_fields": "required fields missing (ids, event name, time)",
            "unparseable_time": "the time cannot be parsed"}


@dataclass(frozen=True)
class _Ctx:
    con: object            # the raw DuckDB connection
    fmt: str
    root: Path


def _do(con, sql: str, params=None) -> None:
    """Run a statement to completion (DuckDB keeps an unfinished result otherwise)."""
    (con.execute(sql, params) if params else con.execute(sql)).fetchall()


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


def _calls(ctx: _Ctx, export) -> list[str]:
    """Temp table ``pqlml_calls``: every line of every file in the calls shape. Returns the
    names of the registered line tables (for the rejects file's text)."""
    con, key = ctx.con, export.group_key
    con.register("pqlml_lines", read_lines(expand(ctx.root, export.source)))
    sql = {"segment": lambda: segment_sql("pqlml_lines"),
           "amplitude": lambda: amplitude_sql("pqlml_lines", key),
           "mixpanel": lambda: mixpanel_sql("pqlml_lines", key)}[ctx.fmt]()
    _do(con, f"CREATE OR REPLACE TEMP TABLE pqlml_calls AS {sql}")
    names = ["pqlml_lines"]
    for option, kind in (("people", "identify"), ("groups", "group")):
        pattern = getattr(export, option)
        if pattern and ctx.fmt != "mixpanel":
            raise DataError(f"[data.export] {option} is for Mixpanel profile exports; format "
                            f"{ctx.fmt!r} carries {option} in its own calls. Fix: remove it.")
        if pattern:
            name = f"pqlml_{option}"
            con.register(name, _profile_lines(expand(ctx.root, pattern)))
            _do(con, f"INSERT INTO pqlml_calls {mixpanel_profiles_sql(name, kind)}")
            names.append(name)
    return names


def _rejects(ctx: _Ctx, export, report: ValidationReport, lines: list[str]) -> None:
    con = ctx.con
    total, bad = con.execute("SELECT count(*), count(reject) FROM pqlml_calls").fetchall()[0]
    counts = dict(con.execute("SELECT reject, count(*) FROM pqlml_calls WHERE reject IS NOT NULL "
                              "GROUP BY 1 ORDER BY 2 DESC").fetchall())
    ignored = con.execute("SELECT count(*) FROM pqlml_calls WHERE reject IS NULL AND kind = 'ignored'"
                          ).fetchall()[0][0]
    where = f"{ctx.fmt} export {export.source}"
    if ignored:
        report.add(Finding("events", where, "type", "calls_not_used", int(ignored),
                           "not used: page, screen and alias calls are not product events",
                           "send product events as track calls"))
    if not bad:
        return
    path = ctx.root / "rejects.csv"
    raw = " UNION ALL ".join(f"SELECT file, line, raw FROM {n}" for n in lines)
    _do(con, f"COPY (SELECT c.file, c.line, c.reject AS reason, left(l.raw, 500) AS text "
                f"FROM pqlml_calls c LEFT JOIN ({raw}) l USING (file, line) "
                f"WHERE c.reject IS NOT NULL ORDER BY c.file, c.line LIMIT {REJECTS_KEPT}) "
                f"TO '{path}' (HEADER)")
    first = con.execute("SELECT file, line, reject FROM pqlml_calls WHERE reject IS NOT NULL "
                        "ORDER BY file, line LIMIT 5").fetchall()
    for reason, n in counts.items():
        report.add(Finding("events", where, "line", f"rejected_{reason}", int(n),
                           f"rejected ({_REASONS[reason]}); the first {REJECTS_KEPT:,} rejects are in "
                           f"{path}", "fix the export, or re-export the affected files"))
    rate = bad / max(total, 1)
    if rate > export.max_reject_rate:
        shown = "; ".join(f"{f}:{n} {r}" for f, n, r in first)
        raise DataError(f"{bad:,} of {total:,} lines of the {where} were rejected ({rate:.1%}, "
                        f"above [data.export] max_reject_rate = {export.max_reject_rate:g}): "
                        + ", ".join(f"{n:,} {r.replace('_', ' ')}" for r, n in counts.items())
                        + f". First: {shown}. All reasons and the first {REJECTS_KEPT:,} lines: "
                        f"{path}. Fix: repair or re-export those files, or raise max_reject_rate "
                        "if losing them is acceptable.")


_CANONICAL = """
CREATE OR REPLACE TEMP TABLE pqlml_links AS
  SELECT anon_id, arg_min(user_id, ts) AS linked FROM pqlml_calls
  WHERE reject IS NULL AND anon_id IS NOT NULL AND user_id IS NOT NULL GROUP BY anon_id;
CREATE OR REPLACE TEMP TABLE pqlml_resolved AS
  SELECT c.*, coalesce(c.user_id, l.linked, c.anon_id) AS uid,
         coalesce(c.ts, TIMESTAMPTZ 'infinity') AS ord
  FROM pqlml_calls c LEFT JOIN pqlml_links l USING (anon_id) WHERE c.reject IS NULL;
CREATE OR REPLACE TEMP TABLE pqlml_export_events AS
  SELECT coalesce(msg_id, file || ':' || line) AS event_id, ts, uid AS user_id, event
  FROM pqlml_resolved WHERE kind = 'event';
CREATE OR REPLACE TEMP TABLE pqlml_export_users AS
  SELECT uid AS user_id,
         arg_max(email, ord) FILTER (WHERE email IS NOT NULL) AS email,
         arg_max(title, ord) FILTER (WHERE title IS NOT NULL) AS title,
         coalesce(min(ts) FILTER (WHERE kind = 'event' AND event = $signup), min(user_created),
                  min(ts) FILTER (WHERE kind = 'event'), min(ts)) AS signup_at,
         arg_max(group_id, ord) FILTER (WHERE group_id IS NOT NULL AND kind IN ('event', 'group'))
           AS account_id
  FROM pqlml_resolved WHERE uid IS NOT NULL GROUP BY uid;
CREATE OR REPLACE TEMP TABLE pqlml_export_accounts AS
  WITH seen AS (SELECT u.account_id, min(e.ts) AS first_seen FROM pqlml_export_events e
                JOIN pqlml_export_users u USING (user_id) GROUP BY 1),
       traits AS (SELECT group_id AS account_id,
         arg_max(domain, ord) FILTER (WHERE domain IS NOT NULL) AS domain,
         arg_max(employees, ord) FILTER (WHERE employees IS NOT NULL) AS employees,
         arg_max(industry, ord) FILTER (WHERE industry IS NOT NULL) AS industry,
         arg_max(country, ord) FILTER (WHERE country IS NOT NULL) AS country,
         arg_max(segment, ord) FILTER (WHERE segment IS NOT NULL) AS segment,
         min(created_at) AS created_trait, min(ts) AS first_call
         FROM pqlml_resolved WHERE group_id IS NOT NULL GROUP BY group_id)
  SELECT t.account_id, t.domain, coalesce(t.created_trait, s.first_seen, t.first_call)
         AS created_at, t.employees, t.industry, t.country, t.segment
  FROM traits t LEFT JOIN seen s USING (account_id);
"""


def read_export(con: ibis.BaseBackend, export, root: Path, report: ValidationReport) -> dict:
    """Canonical ``events``, ``users`` and ``accounts`` ibis tables (DuckDB temp tables on
    ``con``) from the export ``[data.export]`` describes; rejects counted in ``report``."""
    if con.name != "duckdb":
        raise DataError("Export files are read with DuckDB's JSON functions; this config's "
                        f"connection is {con.name}. Fix: drop [data] connection for file exports.")
    ctx = _Ctx(con.con, export.format, Path(root))
    lines = _calls(ctx, export)
    try:
        _rejects(ctx, export, report, lines)
    finally:
        for name in lines:
            ctx.con.unregister(name)
    for statement in _CANONICAL.replace("$signup", "?").split(";"):
        if statement.strip():
            _do(ctx.con, statement, [export.signup_event] if "?" in statement else None)
    return {name: con.table(f"pqlml_export_{name}") for name in ("events", "users", "accounts")}
