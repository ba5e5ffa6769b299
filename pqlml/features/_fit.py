"""Fit from what people say and what vendors know: sign-up answers, enrichment, enterprise list.

* **Sign-up answers** (``company_size``, ``department``, ``seniority``, ``use_case``, from
  user properties or a ``signups`` table). An account sees the answers of its users who
  signed up before as_of; a user sees its own:

  - ``stated_employees``: the largest company size stated, read as the answer's first
    number ("51-200" -> 51, "1000+" -> 1000); null (imputed by the models) when nobody
    answered;
  - ``stated_seniority``: the highest seniority stated, 1 individual contributor,
    2 manager / lead, 3 director / head / VP, 4 executive / founder / owner; null when
    unknown;
  - ``signup_<question>_<answer>``: 1 when someone gave that answer (the 12 most common
    answers per question; rarer ones are ``rare``) and ``signup_<question>_unanswered``
    when nobody answered, so an unanswered questionnaire is a value, not a dropped row.

* **Enrichment** (a vendor file keyed by domain; ``www.`` and case ignored):
  ``enriched`` (1 when the domain is in the file), ``enriched_employees``,
  ``enriched_funding_usd``, ``enriched_revenue_usd`` (null when unknown) and
  ``enriched_industry_<v>`` one-hots with ``enriched_industry_unknown``. The file is
  static, like the accounts' own firmographics: a row describes the company now.

* **Enterprise list**: ``enterprise_domain`` is 1 when the entity's domain is on the
  configured list of known large companies.

Examples
--------
>>> seniority_rank(ibis.literal("VP Engineering")).execute()
3
>>> stated_number(ibis.literal("1,000+ employees")).execute()
1000.0
"""

from __future__ import annotations

import csv
from pathlib import Path

import ibis

from ..errors import ConfigError
from ..identity import ascii_domains, members_at, normalise_domain
from ._activity import _bit_or
from ._specs import feature_name

__all__ = ["signup_answers", "answer_vocabulary", "enrichment", "enrichment_industries",
           "enterprise_flag",
           "seniority_rank", "stated_number", "read_domain_list"]

_TOP = 12
_RESERVED = ("rare", "unanswered", "answered", "unknown")   # names of the buckets themselves
_CATEGORICAL = ("department", "use_case")
_SENIORITY = ((4, r"\b(executive|c-level|chief|ceo|cto|coo|cfo|founder|owner|president)\b"),
              (3, r"\b(director|head|vp|vice president)\b"),
              (2, r"\b(manager|lead|supervisor)\b"))


def seniority_rank(col: ibis.StringValue) -> ibis.IntegerValue:
    """1 (individual contributor) .. 4 (executive) from free text; null when empty."""
    low = col.lower()
    rank = ibis.cases(*[(low.re_search(p), r) for r, p in _SENIORITY], else_=1)
    return ibis.ifelse(col.isnull() | (col.strip() == ""), ibis.null("int64"), rank)


def stated_number(col: ibis.StringValue) -> ibis.FloatingValue:
    """The first number in an answer ("51-200" -> 51), thousands separators ignored."""
    return col.re_replace(r"(\d),(\d{3})", r"\1\2").re_extract(r"(\d+)", 1).nullif("") \
        .try_cast("float64")


def _top_values(table: ibis.Table, column: str) -> tuple[str, ...]:
    """The ``_TOP`` most common values of a text column, lower-case, most common first (the
    bucket names themselves never become a value's column)."""
    v = table.filter(table[column].notnull()).group_by(_v=table[column].lower().strip()) \
        .aggregate(_n=ibis._.count()).order_by([ibis.desc("_n"), "_v"]).limit(_TOP).to_pandas()
    return tuple(str(x) for x in v["_v"] if x and feature_name(str(x)) not in _RESERVED)


def answer_vocabulary(answers: ibis.Table, until) -> dict[str, tuple[str, ...]]:
    """Per categorical question, its most common answers among users signed up before ``until``."""
    seen = answers.filter(answers.signup_at < until)
    return {q: _top_values(seen, q) for q in _CATEGORICAL if q in answers.columns}


def signup_answers(spine: ibis.Table, answers: ibis.Table, vocab: dict, entity: str,
                   members: ibis.Table | None = None) -> ibis.Table:
    """Answer features per spine row (``entity_id``, ``as_day``, ``as_of``).

    ``answers``: ``user_id``, ``signup_at`` and the answer columns present. A user sees
    its own answers once signed up; an account sees those of the users who were its
    members just before ``as_of`` (``members``: :data:`pqlml.identity.MEMBER_COLUMNS`).
    """
    cols = {"_uid": answers.user_id.cast("string"), "signup_at": answers.signup_at}
    if "company_size" in answers.columns:
        cols["_size"] = stated_number(answers.company_size)
    if "seniority" in answers.columns:
        cols["_rank"] = seniority_rank(answers.seniority)
    for q, values in vocab.items():
        a = answers[q].lower().strip()
        for v in values:
            cols[f"_{q}__{feature_name(v)}"] = ibis.ifelse(a == v, 1, 0)
        cols[f"_{q}__rare"] = ibis.ifelse(a.notnull() & (a != "") & ~a.isin(list(values)), 1, 0)
        cols[f"_{q}__answered"] = ibis.ifelse(a.notnull() & (a != ""), 1, 0)
    u = answers.select(**cols)
    rows = spine.select("entity_id", "as_of", "as_day")
    if entity == "account":
        rows = members_at(rows, members.select("user_id", "account_id", "from_day", "to_day"))
        rows = rows.select("entity_id", "as_of", "as_day", _who=rows.user_id)
    else:
        rows = rows.mutate(_who=rows.entity_id)
    # The 0/1 answer flags as bits of int64 words, one bit_or per word: at 100k simulated
    # accounts and 12 cutoffs (3.2M member rows, 21 flags) one aggregate instead of 21 maxima.
    flags = [c for c in u.columns if c.startswith("_") and "__" in c]
    words = {f"_bits{k}": sum((u[c].cast("int64") << i for i, c in enumerate(part)),
                              ibis.literal(0, "int64"))
             for k, part in enumerate(_words(flags))}
    u = u.select(*[c for c in u.columns if c not in flags], **words)
    j = rows.join(u, [rows._who == u._uid, u.signup_at < rows.as_of])
    agg = {}
    if "_size" in u.columns:
        agg["stated_employees"] = j._size.max()
    if "_rank" in u.columns:
        agg["stated_seniority"] = j._rank.max().cast("float64")
    agg.update({w: _bit_or(j[w]) for w in words})
    per = j.group_by(["entity_id", "as_day"]).aggregate(**agg) if agg else None
    if per is not None and flags:
        per = per.select(*[c for c in per.columns if c not in words], **{
            c: ((per[f"_bits{k}"] >> i) & 1).cast(_FLAG)
            for k, part in enumerate(_words(flags)) for i, c in enumerate(part)})
    base = spine.select("entity_id", "as_day").distinct()
    if per is None:
        return base
    out = base.left_join(per, ["entity_id", "as_day"]).drop("entity_id_right", "as_day_right")
    final = {c: out[c] for c in ("stated_employees", "stated_seniority") if c in out.columns}
    for q, values in vocab.items():
        for v in (*map(feature_name, values), "rare"):
            final[f"signup_{q}_{v}"] = out[f"_{q}__{v}"].fill_null(0)
        final[f"signup_{q}_unanswered"] = 1 - out[f"_{q}__answered"].fill_null(0)
    return out.select("entity_id", "as_day", **final)


_FLAG = "int8"     # an answer flag's type (ibis.ifelse(..., 1, 0)), kept through the bits


def _words(flags: list[str]) -> list[list[str]]:
    """``flags`` in runs of 62: the bits of one int64 word each (the sign bit unused).

    Examples
    --------
    >>> [len(w) for w in _words([str(i) for i in range(130)])]
    [62, 62, 6]
    """
    return [flags[i:i + 62] for i in range(0, len(flags), 62)]


def enrichment(domains: ibis.Table, table: ibis.Table, industries: tuple[str, ...]) -> ibis.Table:
    """Static enrichment features per entity: ``domains`` has ``entity_id``, ``_domain``."""
    e = table.select(_edom=normalise_domain(table.domain), **{
        c: table[c] for c in ("industry", "employees", "funding_usd", "revenue_usd")
        if c in table.columns})
    d = domains.mutate(_domain=normalise_domain(domains._domain))
    d, e = ascii_domains(d, "_domain", (e, "_edom"))    # münchen.de is xn--mnchen-3ya.de
    # "acme.io" and "WWW.Acme.io" are one company: one row per normalised domain (the
    # duplicates are counted when the project opens), so the join never fans out
    e = e.group_by("_edom").aggregate(**{c: e[c].max() for c in e.columns if c != "_edom"})
    j = d.left_join(e, d._domain == e._edom)
    cols = {"entity_id": j.entity_id, "enriched": ibis.ifelse(j._edom.notnull(), 1, 0)}
    for c in ("employees", "funding_usd", "revenue_usd"):
        if c in e.columns:
            cols[f"enriched_{c}"] = j[c].cast("float64")
    if "industry" in e.columns:
        ind = j.industry.lower().strip()
        ind = ibis.ifelse(ind == "unknown", ibis.null("string"), ind)
        for v in industries:
            cols[f"enriched_industry_{feature_name(v)}"] = ibis.ifelse(ind == v, 1, 0)
        cols["enriched_industry_unknown"] = ibis.ifelse(ind.isnull() | (ind == ""), 1, 0)
    return j.select(**cols)


def enrichment_industries(table: ibis.Table) -> tuple[str, ...]:
    """The enrichment file's most common industries (lower-case)."""
    return _top_values(table, "industry") if "industry" in table.columns else ()


def enterprise_flag(domains: ibis.Table, listed: tuple[str, ...]) -> ibis.Table:
    """``enterprise_domain`` per entity (``entity_id``, ``_domain``)."""
    names = sorted({d.strip().lower().removeprefix("www.") for d in listed if d.strip()})
    flag = normalise_domain(domains._domain).isin(names) if names else ibis.literal(False)
    return domains.select("entity_id", enterprise_domain=ibis.ifelse(flag.fill_null(False), 1, 0))


def read_domain_list(value, root: Path) -> tuple[str, ...]:
    """``[features] enterprise_domains``: the list itself, or the file it names (CSV with a
    ``domain`` column, or one domain per line)."""
    if not isinstance(value, str):
        return tuple(value)
    path = Path(value).expanduser()
    path = path if path.is_absolute() else Path(root) / path
    if not path.is_file():
        raise ConfigError(f"[features] enterprise_domains = {value!r}: no file at {path}. Fix: "
                          "correct the path (relative to data.root) or give the list itself, "
                          'e.g. enterprise_domains = ["bigco.com"].')
    with open(path, newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.reader(fh) if r and r[0].strip()]
    if rows and rows[0][0].strip().lower() == "domain":
        rows = rows[1:]
    return tuple(r[0].strip() for r in rows)

