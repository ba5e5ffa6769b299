"""Each vendor's lines -> one "calls" shape, parsed by DuckDB's JSON functions.

A call is one of: ``event`` (a product event), ``identify`` (a user's traits or an
anonymous -> user link), ``group`` (a user's membership in an account, with the
account's traits) or ``ignored`` (valid but not used, e.g. Segment page calls).
Columns: :data:`COLUMNS` (``text``: the line itself, kept for rejected lines only;
``user_created``: when the user's account was created, e.g.
Segment's ``createdAt`` trait; ``created_at``: when the company account was). ``reject`` names why
a line cannot be used (malformed_json, not_an_object, unknown_shape, missing_fields,
unparseable_time); such lines are counted and reported, never used.

The field names are the vendors' documented ones: Segment's Spec (track / identify /
group with ``userId``, ``anonymousId``, ``groupId``, ``traits``, ``timestamp``),
Amplitude's Export API (``event_type``, ``user_id``, ``device_id``, ``amplitude_id``,
``event_time`` as ``YYYY-MM-DD HH:MM:SS.ffffff`` UTC, ``groups``, ``group_properties``,
``user_properties``, ``$insert_id``) and Mixpanel's raw export (``event``,
``properties.time`` in epoch seconds or milliseconds, ``distinct_id``,
``$device_id``, ``$user_id``, ``$insert_id``, group keys as event properties).
Every time is read by :mod:`._times` (offsets honoured, no zone = UTC); a time that is
present but not one of its forms makes the line an ``unparseable_time`` reject.
"""

from __future__ import annotations

import json
import re

from ._times import epoch_sql, utc_sql

__all__ = ["segment_sql", "amplitude_sql", "mixpanel_sql", "mixpanel_profiles_sql", "COLUMNS"]

COLUMNS = ("file", "line", "kind", "ts", "user_id", "anon_id", "event", "group_id", "email",
           "title", "user_created", "domain", "employees", "industry", "country", "segment",
           "created_at", "msg_id", "reject", "text")

_PARSED = """
    SELECT file, line, raw, CASE WHEN json_valid(raw) THEN raw END AS j, json_valid(raw) AS ok,
           CASE WHEN json_valid(raw) THEN json_type(raw) END AS jtype,
           CASE WHEN json_valid(raw) AND json_type(raw) = 'OBJECT'
                THEN json_transform(raw, '{schema}') END AS s
    FROM {lines}
"""
_STATIC = re.compile(r"json_extract_string\(j, '\$\.((?:[A-Za-z_]\w*|\"[^\"]+\")(?:\.(?:[A-Za-z_]\w*|\"[^\"]+\"))*)'\)")


def _structify(sql: str, lines: str) -> str:
    """Parse each line once: every static ``json_extract_string(j, '$.a.b')`` becomes a
    field of one ``json_transform`` struct (all VARCHAR; a list or object comes out as its
    JSON text), instead of one JSON parse per extracted field."""
    schema: dict = {}

    def field(match):
        parts = [p.strip('"') for p in re.findall(r'"[^"]+"|[^.]+', match.group(1))]
        node = schema
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                return match.group(0)          # used as a leaf elsewhere: keep the extract
        if isinstance(node.get(parts[-1]), dict):
            return match.group(0)
        node[parts[-1]] = "VARCHAR"
        return "s" + "".join(f"['{p}']" for p in parts)
    body = _STATIC.sub(field, sql)
    parsed = _PARSED.format(lines=lines, schema=json.dumps(schema).replace("'", "''"))
    return body.replace("{parsed}", parsed)


# the line, for the rejects file, on rejected lines only (a parse failure is the only case
# where the text is needed, and keeping it for every line would double the memory)
# (DuckDB lets a select list use an alias defined before it: ``reject``)
_TEXT = "CASE WHEN reject IS NOT NULL THEN left(rtrim(raw, chr(13) || chr(10)), 500) END AS text"


def _key(name: str) -> str:
    return '"' + name.replace('"', '') + '"'


def _first(j: str, path: str) -> str:
    """A JSON value that may be a string or a list of strings: the first string."""
    value = f"json_extract_string({j}, '{path}')"
    return (f"CASE WHEN left({value}, 1) = '[' THEN json_extract_string({value}, '$[0]') "
            f"ELSE {value} END")


def _parsed(raw: str, parsed: str) -> str:
    """True unless the time ``raw`` is given and ``parsed`` (its reading) is null."""
    return f"({raw} IS NULL OR {parsed} IS NOT NULL)"


def _reject(required: str, time_ok: str, shape_ok: str) -> str:
    return f"""CASE WHEN NOT ok THEN 'malformed_json'
                    WHEN jtype <> 'OBJECT' THEN 'not_an_object'
                    WHEN NOT ({shape_ok}) THEN 'unknown_shape'
                    WHEN NOT ({required}) THEN 'missing_fields'
                    WHEN NOT ({time_ok}) THEN 'unparseable_time' END"""


def _domain(expr: str) -> str:
    """``https://www.acme.io/about`` -> ``acme.io``."""
    return (f"nullif(lower(regexp_replace(regexp_replace({expr}, '^[a-zA-Z]+://', ''), "
            f"'^www\\.|[/:?#].*$', '', 'g')), '')")


def _properties(prefix: str, properties) -> str:
    """Select items for the numeric event properties (canonical name -> the vendor's key),
    as text under ``p__<name>``: :func:`pqlml.validate.validate_table` parses and counts."""
    return "".join(f"json_extract_string(j, '{prefix}.{_key(key)}') AS \"p__{name}\", "
                   for name, key in dict(properties or {}).items())


def segment_sql(lines: str, properties=None) -> str:
    """Segment Spec messages (the raw S3 archive: every call type, one JSON per line);
    ``properties``: canonical name -> key of a track call's ``properties``."""
    ts = utc_sql("json_extract_string(j, '$.timestamp')")
    kind = "json_extract_string(j, '$.type')"
    created_raw = ("coalesce(json_extract_string(j, '$.traits.createdAt'), "
                   "json_extract_string(j, '$.traits.created_at'))")
    created = utc_sql(created_raw)
    # the created-at trait is read on identify and group calls only (user_created / created_at)
    time_ok = (f"ts IS NOT NULL AND ({kind} NOT IN ('identify', 'group') OR "
               f"{_parsed(created_raw, 'coalesce(user_created, created_at)')})")
    shape = f"{kind} IN ('track', 'identify', 'group', 'page', 'screen', 'alias')"
    required = (f"(json_extract_string(j, '$.userId') IS NOT NULL OR json_extract_string(j, '$.anonymousId') IS NOT NULL)"
                f" AND json_extract_string(j, '$.timestamp') IS NOT NULL"
                f" AND ({kind} <> 'track' OR json_extract_string(j, '$.event') IS NOT NULL)"
                f" AND ({kind} <> 'group' OR json_extract_string(j, '$.groupId') IS NOT NULL)")
    return _structify(f"""
    WITH p AS ({{parsed}})
    SELECT file, line,
           CASE {kind} WHEN 'track' THEN 'event' WHEN 'identify' THEN 'identify'
                       WHEN 'group' THEN 'group' ELSE 'ignored' END AS kind,
           {ts} AS ts,
           json_extract_string(j, '$.userId') AS user_id,
           json_extract_string(j, '$.anonymousId') AS anon_id,
           json_extract_string(j, '$.event') AS event,
           json_extract_string(j, '$.groupId') AS group_id,
           json_extract_string(j, '$.traits.email') AS email,
           json_extract_string(j, '$.traits.title') AS title,
           CASE WHEN {kind} = 'identify' THEN {created} END AS user_created,
           {_domain("coalesce(json_extract_string(j, '$.traits.domain'), json_extract_string(j, '$.traits.website'))")} AS domain,
           TRY_CAST(json_extract_string(j, '$.traits.employees') AS BIGINT) AS employees,
           json_extract_string(j, '$.traits.industry') AS industry,
           json_extract_string(j, '$.traits.country') AS country,
           json_extract_string(j, '$.traits.segment') AS segment,
           CASE WHEN {kind} = 'group' THEN {created} END AS created_at,
           json_extract_string(j, '$.messageId') AS msg_id,
           {_properties("$.properties", properties)}{_reject(required, time_ok, shape)} AS reject, {_TEXT}
    FROM p""", lines)


def amplitude_sql(lines: str, group_key: str, properties=None) -> str:
    """Amplitude Export API rows (every row an event; ``$identify`` / ``$groupidentify``
    rows carry properties only); ``properties``: name -> key of ``event_properties``."""
    g = f"$.groups.{_key(group_key)}"
    gid = _first("j", g)
    gp = f"json_extract(j, '$.group_properties.{_key(group_key)}')"
    ts = utc_sql("json_extract_string(j, '$.event_time')")
    created_raw = "json_extract_string(j, '$.user_creation_time')"
    etype = "json_extract_string(j, '$.event_type')"
    required = ("(json_extract_string(j, '$.user_id') IS NOT NULL OR json_extract_string(j, '$.device_id') IS NOT NULL)"
                " AND json_extract_string(j, '$.event_time') IS NOT NULL")
    account = f"json_extract({gp}, '$.' || to_json({gid})::VARCHAR)"
    group_created_raw = f"json_extract_string({account}, '$.created_at')"
    time_ok = (f"ts IS NOT NULL AND {_parsed(created_raw, 'user_created')} AND "
               f"{_parsed(group_created_raw, 'created_at')}")
    return _structify(f"""
    WITH p AS ({{parsed}})
    SELECT file, line,
           CASE WHEN {etype} LIKE '$%' THEN 'identify' ELSE 'event' END AS kind,
           {ts} AS ts,
           json_extract_string(j, '$.user_id') AS user_id,
           coalesce(json_extract_string(j, '$.amplitude_id'), json_extract_string(j, '$.device_id')) AS anon_id,
           {etype} AS event,
           {gid} AS group_id,
           coalesce(json_extract_string(j, '$.user_properties.email'),
                    json_extract_string(j, '$.user_properties."$email"')) AS email,
           json_extract_string(j, '$.user_properties.title') AS title,
           {utc_sql(created_raw)} AS user_created,
           {_domain(f"coalesce(json_extract_string({account}, '$.domain'), json_extract_string({account}, '$.website'))")} AS domain,
           TRY_CAST(json_extract_string({account}, '$.employees') AS BIGINT) AS employees,
           json_extract_string({account}, '$.industry') AS industry,
           json_extract_string({account}, '$.country') AS country,
           json_extract_string({account}, '$.segment') AS segment,
           {utc_sql(group_created_raw)} AS created_at,
           json_extract_string(j, '$."$insert_id"') AS msg_id,
           {_properties("$.event_properties", properties)}{_reject(required, time_ok, f"{etype} IS NOT NULL")} AS reject, {_TEXT}
    FROM p""", lines)


def mixpanel_sql(lines: str, group_key: str, properties=None) -> str:
    """Mixpanel raw export events; ``time`` from 1e11 is milliseconds (newer exports),
    below it seconds (:func:`._times.epoch_sql`). A ``$device:<id>`` distinct_id is an
    anonymous device. ``properties``: name -> key of the event's ``properties``."""
    ts = epoch_sql("TRY_CAST(json_extract_string(j, '$.properties.time') AS DOUBLE)")
    did = "json_extract_string(j, '$.properties.distinct_id')"
    user = (f"coalesce(json_extract_string(j, '$.properties.\"$user_id\"'), "
            f"CASE WHEN {did} NOT LIKE '$device:%' THEN {did} END)")
    anon = (f"coalesce(json_extract_string(j, '$.properties.\"$device_id\"'), "
            f"CASE WHEN {did} LIKE '$device:%' THEN substr({did}, 9) END)")
    required = f"json_extract_string(j, '$.event') IS NOT NULL AND {did} IS NOT NULL"
    shape = "json_type(j, '$.properties') = 'OBJECT'"
    return _structify(f"""
    WITH p AS ({{parsed}})
    SELECT file, line, 'event' AS kind,
           {ts} AS ts,
           {user} AS user_id,
           {anon} AS anon_id,
           json_extract_string(j, '$.event') AS event,
           {_first("j", f"$.properties.{_key(group_key)}")} AS group_id,
           NULL::VARCHAR AS email, NULL::VARCHAR AS title, NULL::TIMESTAMPTZ AS user_created,
           NULL::VARCHAR AS domain, NULL::BIGINT AS employees, NULL::VARCHAR AS industry,
           NULL::VARCHAR AS country, NULL::VARCHAR AS segment, NULL::TIMESTAMPTZ AS created_at,
           json_extract_string(j, '$.properties."$insert_id"') AS msg_id,
           {_properties("$.properties", properties)}{_reject(required, "ts IS NOT NULL", shape)} AS reject, {_TEXT}
    FROM p""", lines)


def mixpanel_profiles_sql(lines: str, kind: str, properties=None) -> str:
    """Mixpanel Engage profiles, one ``{"$distinct_id", "$properties"}`` object per line:
    user profiles (``identify``: ``$email``, ``title``) or group profiles (``group``:
    ``domain`` / ``website``, ``employees``, ``industry``, ``country``, ``segment``)."""
    props = "json_extract(j, '$.\"$properties\"')"
    ident = "json_extract_string(j, '$.\"$distinct_id\"')"

    def prop(name):
        return f"json_extract_string({props}, '$.{name}')"
    user, group = (ident, "NULL::VARCHAR") if kind == "identify" else ("NULL::VARCHAR", ident)
    email = f"coalesce({prop(chr(34) + '$email' + chr(34))}, {prop('email')})" if kind == "identify" \
        else "NULL::VARCHAR"
    created_raw = prop(chr(34) + '$created' + chr(34))
    created = utc_sql(created_raw)
    time_ok = _parsed(created_raw, "ts")                    # a profile's time is its $created
    account = kind == "group"
    return _structify(f"""
    WITH p AS ({{parsed}})
    SELECT file, line, '{kind}' AS kind, {created} AS ts, {user} AS user_id,
           NULL::VARCHAR AS anon_id, NULL::VARCHAR AS event, {group} AS group_id,
           {email} AS email, {prop('title') if not account else 'NULL::VARCHAR'} AS title,
           {created if not account else 'NULL::TIMESTAMPTZ'} AS user_created,
           {_domain(f"coalesce({prop('domain')}, {prop('website')})") if account else 'NULL::VARCHAR'} AS domain,
           {f"TRY_CAST({prop('employees')} AS BIGINT)" if account else 'NULL::BIGINT'} AS employees,
           {prop('industry') if account else 'NULL::VARCHAR'} AS industry,
           {prop('country') if account else 'NULL::VARCHAR'} AS country,
           {prop('segment') if account else 'NULL::VARCHAR'} AS segment,
           {created if account else 'NULL::TIMESTAMPTZ'} AS created_at, NULL::VARCHAR AS msg_id,
           {"".join(f'NULL::VARCHAR AS "p__{name}", ' for name in dict(properties or {}))}{_reject(f"{ident} IS NOT NULL", time_ok, f"json_type({props}) = 'OBJECT'")} AS reject, {_TEXT}
    FROM p""", lines)
