"""The canonical tables every pqlml stage reads.

Sources (Parquet/CSV files, warehouse tables, vendor exports) are mapped onto
these tables; nothing downstream knows the source's own column names.

==========  =========================================================  =========================
table       required columns                                           optional columns
==========  =========================================================  =========================
events      ``ts``, ``user_id``, ``event``                             ``account_id``, ``event_id``
users       ``user_id``, ``email``, ``signup_at``                      ``account_id``, ``title``,
                                                                       sign-up answers (below)
accounts    ``account_id``, ``domain``, ``created_at``                 ``employees``, ``industry``,
                                                                       ``country``, ``segment``
outcomes    ``account_id``, ``ts``, ``outcome``                        ``user_id``, ``amount``,
                                                                       ``event``
leads       ``account_id``, ``ts``                                     ``email``, ``source``,
                                                                       ``title``
signups     ``user_id``                                                sign-up answers (below)
enrichment  ``domain``                                                 ``industry``, ``employees``,
                                                                       ``country``, ``funding_usd``,
                                                                       ``revenue_usd``
dispositions ``entity_id``, ``at``, ``disposition``                    ``reason``, ``rep``
memberships ``user_id``, ``account_id``, ``since``
touches     ``account_id``, ``at``                                     ``kind``, ``rep``
holdouts    ``account_id``, ``at``, ``arm``                            ``experiment``
==========  =========================================================  =========================

``ts``, ``signup_at`` and ``created_at`` are UTC timestamps. ``outcome`` is
``"hand_raise"`` or ``"conversion"``. ``leads`` (optional) are the CRM's
leads / MQLs: an account became a lead at ``ts``, from ``email`` (a person, who
may or may not use the product), their job ``title`` and ``source`` (e.g. "webinar",
"outbound").

Sign-up answers (``company_size``, ``department``, ``seniority``, ``use_case``) are
user properties on ``users`` or, keyed by ``user_id``, a ``signups`` table (which
fills the users' gaps). ``enrichment`` is a firmographic file keyed by ``domain``
(an enrichment vendor's export; static, like the accounts' own firmographics).
``dispositions`` are the sales team's verdicts on the leads they got:
``entity_id`` (an account id, or a user id for user-level projects), ``at``,
``disposition`` in accepted / rejected / converted, a free-text ``reason`` and the
``rep``. ``memberships`` (optional) say when users moved between accounts: from
``since`` on, ``user_id`` is in ``account_id`` until the user's next row; before a
user's first row, ``users.account_id`` (else the work-email domain) holds
(:mod:`pqlml.identity`).

``touches`` (optional) are sales touches: the account was called, emailed or met
(``kind``) by ``rep`` at ``at``. ``holdouts`` (optional) record a randomised test of
touches: at ``at`` the account was assigned to ``arm`` ``"touch"`` (then touched within the
touch window) or ``"holdout"`` (not touched in it) of ``experiment``.

An entity is what a row of features describes: an ``"account"`` (PQA models), keyed
``account_id``, or a ``"user"`` (PQL models), keyed ``user_id`` (:func:`entity_key`).
"""

from dataclasses import dataclass

from .errors import PqlmlError

__all__ = ["TableSchema", "TABLES", "OUTCOME_KINDS", "DISPOSITIONS", "ARMS", "FIXED_VALUES",
           "SIGNUP_ANSWERS",
           "ACCOUNT_ATTRIBUTES", "MAX_NAME_LENGTH",
           "COLUMN_ALIASES", "property_columns", "ENTITY_KEYS", "KEY_COLUMNS", "entity_key"]

OUTCOME_KINDS = ("hand_raise", "conversion")
#: The longest name a value may be: event names, ids, property names (characters). Event
#: names become feature columns (``events_<name>_30d``) and ids are joined on everywhere:
#: the names trackers document stay far below it (GA4 allows 40 characters, Amplitude
#: and Mixpanel show ~255 in their UIs, Segment's spec examples are < 40), so a longer
#: value is a payload in the wrong column. Longer event names are cut to this length and
#: counted; longer ids are kept whole (cutting could merge two) and counted.
MAX_NAME_LENGTH = 200
DISPOSITIONS = ("accepted", "rejected", "converted")
#: The arms of a randomised touch experiment (the ``holdouts`` table's ``arm``).
ARMS = ("touch", "holdout")
#: The columns whose values come from a fixed list: table -> (column, allowed values). A
#: source's own words map onto them by ``[outcomes] values`` (outcomes) or the table's
#: ``values`` (``[data.holdouts] values = { control = "holdout", treated = "touch" }``).
FIXED_VALUES = {"outcomes": ("outcome", OUTCOME_KINDS),
                "dispositions": ("disposition", DISPOSITIONS),
                "holdouts": ("arm", ARMS)}
SIGNUP_ANSWERS = ("company_size", "department", "seniority", "use_case")
#: The accounts' raw attributes fit and the playbook read (``Project.attributes``).
ACCOUNT_ATTRIBUTES = ("industry", "country", "segment")
#: Names common exports use for the canonical columns (Segment, Mixpanel, Amplitude, CRMs,
#: hand-made logs), best first: `pqlml init` guesses mappings from them, and so do the fixes
#: error messages show. An events column's usual name is never a numeric event property.
COLUMN_ALIASES = {
    "ts": ("timestamp", "time", "event_time", "occurred_at", "occurred_on", "received_at",
           "event_timestamp", "event_date", "datetime", "date", "happened_at", "closed_at",
           "close_date", "closedate", "created_at"),
    "user_id": ("userid", "user", "member_id", "person_id", "uid", "distinct_id", "anonymous_id",
                "contact_id"),
    "event": ("event_name", "event_type", "name", "action", "action_name", "event_text",
              "activity"),
    "event_id": ("message_id", "insert_id", "event_uuid", "uuid"),
    "account_id": ("accountid", "account", "company_id", "org_id", "organization_id", "org",
                   "organization", "workspace_id", "team_id", "tenant_id", "customer_id",
                   "group_id", "company"),
    "email": ("email_address", "work_email", "user_email", "mail", "e_mail"),
    "signup_at": ("created_at", "signed_up_at", "signup_date", "signup_ts", "joined_on",
                  "joined_at", "registered_at", "date_joined"),
    "created_at": ("createdate", "create_date", "created", "created_on", "signup_at",
                   "first_seen_at"),
    "domain": ("website", "company_domain", "web_domain", "url", "email_domain"),
    "employees": ("headcount", "employee_count", "num_employees", "employees_count"),
    "industry": ("sector", "vertical"),
    "country": ("country_code", "hq_country"),
    "title": ("job_title", "role", "position"),
    "amount": ("value", "deal_amount", "revenue", "arr", "mrr", "price", "total"),
    "outcome": ("type", "kind", "stage", "status", "deal_stage"),
}
#: The key column of each entity's rows (features, labels, scores).
ENTITY_KEYS = {"account": "account_id", "user": "user_id"}
#: Columns that identify a snapshot row and are never features: the entities' keys, the
#: engine-side ``entity_id`` and the cutoff ``as_of``.
KEY_COLUMNS = (*ENTITY_KEYS.values(), "entity_id", "as_of")


def entity_key(entity: str) -> str:
    """The key column of ``entity``'s rows.

    Examples
    --------
    >>> entity_key("account"), entity_key("user")
    ('account_id', 'user_id')
    >>> entity_key("accounts")
    Traceback (most recent call last):
    ...
    pqlml.errors.PqlmlError: The 'entity' parameter must be one of 'account', 'user'. Got 'accounts' instead.
    """
    try:
        return ENTITY_KEYS[entity]
    except (KeyError, TypeError):
        raise PqlmlError(f"The 'entity' parameter must be one of "
                         f"{', '.join(map(repr, ENTITY_KEYS))}. Got {entity!r} instead.") from None


@dataclass(frozen=True)
class TableSchema:
    """Column names and kinds of one canonical table.

    ``kinds`` maps each column to ``"id"``, ``"string"``, ``"timestamp"``,
    ``"integer"`` or ``"number"``.
    """

    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    kinds: dict
    key: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        return self.required + self.optional

    @property
    def timestamps(self) -> tuple[str, ...]:
        return tuple(c for c in self.columns if self.kinds[c] == "timestamp")

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(c for c in self.columns if self.kinds[c] == "id")


TABLES: dict[str, TableSchema] = {
    "events": TableSchema(
        name="events",
        required=("ts", "user_id", "event"),
        optional=("account_id", "event_id"),
        kinds={"ts": "timestamp", "user_id": "id", "event": "string",
               "account_id": "id", "event_id": "id"},
    ),
    "users": TableSchema(
        name="users",
        required=("user_id", "email", "signup_at"),
        optional=("account_id", "title") + SIGNUP_ANSWERS,
        kinds={"user_id": "id", "email": "string", "signup_at": "timestamp",
               "account_id": "id", "title": "string", **dict.fromkeys(SIGNUP_ANSWERS, "string")},
        key=("user_id",),
    ),
    "accounts": TableSchema(
        name="accounts",
        required=("account_id", "domain", "created_at"),
        optional=("employees", "industry", "country", "segment"),
        kinds={"account_id": "id", "domain": "string", "created_at": "timestamp",
               "employees": "integer", "industry": "string", "country": "string",
               "segment": "string"},
        key=("account_id",),
    ),
    "outcomes": TableSchema(
        name="outcomes",
        required=("account_id", "ts", "outcome"),
        optional=("user_id", "amount", "event"),
        kinds={"account_id": "id", "ts": "timestamp", "outcome": "string",
               "user_id": "id", "amount": "number", "event": "string"},
    ),
    "leads": TableSchema(
        name="leads",
        required=("account_id", "ts"),
        optional=("email", "source", "title"),
        kinds={"account_id": "id", "ts": "timestamp", "email": "string", "source": "string",
               "title": "string"},
    ),
    "signups": TableSchema(
        name="signups",
        required=("user_id",),
        optional=SIGNUP_ANSWERS,
        kinds={"user_id": "id", **dict.fromkeys(SIGNUP_ANSWERS, "string")},
        key=("user_id",),
    ),
    "enrichment": TableSchema(
        name="enrichment",
        required=("domain",),
        optional=("industry", "employees", "country", "funding_usd", "revenue_usd"),
        kinds={"domain": "string", "industry": "string", "employees": "integer",
               "country": "string", "funding_usd": "number", "revenue_usd": "number"},
        key=("domain",),
    ),
    "dispositions": TableSchema(
        name="dispositions",
        required=("entity_id", "at", "disposition"),
        optional=("reason", "rep"),
        kinds={"entity_id": "id", "at": "timestamp", "disposition": "string",
               "reason": "string", "rep": "string"},
    ),
    "memberships": TableSchema(
        name="memberships",
        required=("user_id", "account_id", "since"),
        optional=(),
        kinds={"user_id": "id", "account_id": "id", "since": "timestamp"},
    ),
    "touches": TableSchema(
        name="touches",
        required=("account_id", "at"),
        optional=("kind", "rep"),
        kinds={"account_id": "id", "at": "timestamp", "kind": "string", "rep": "string"},
    ),
    "holdouts": TableSchema(
        name="holdouts",
        required=("account_id", "at", "arm"),
        optional=("experiment",),
        kinds={"account_id": "id", "at": "timestamp", "arm": "string", "experiment": "string"},
    ),
}


def property_columns(mapping) -> tuple[str, ...]:
    """The numeric event properties of an events column mapping (``[data.events.columns]``):
    the keys that are neither canonical events columns nor a usual name of one (``timestamp``
    is a misnamed ``ts``, not a property; ``revenue`` may be one).

    Examples
    --------
    >>> property_columns({"ts": "time", "amount": "Order Total", "timestamp": "t", "revenue": "r"})
    ('amount', 'revenue')
    """
    events = TABLES["events"].columns
    aliases = {a for c in events for a in COLUMN_ALIASES.get(c, ())}
    return tuple(k for k in mapping if k not in TABLES["events"].columns and k not in aliases)
