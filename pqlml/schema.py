"""The canonical tables every pqlml stage reads.

Sources (Parquet/CSV files, warehouse tables, vendor exports) are mapped onto
these tables; nothing downstream knows the source's own column names.

==========  =========================================================  =========================
table       required columns                                           optional columns
==========  =========================================================  =========================
events      ``ts``, ``user_id``, ``event``                             ``account_id``, ``event_id``
users       ``user_id``, ``email``, ``signup_at``                      ``account_id``, ``title``
accounts    ``account_id``, ``domain``, ``created_at``                 ``employees``, ``industry``,
                                                                       ``country``, ``segment``
outcomes    ``account_id``, ``ts``, ``outcome``                        ``user_id``, ``amount``,
                                                                       ``event``
leads       ``account_id``, ``ts``                                     ``email``, ``source``
==========  =========================================================  =========================

``ts``, ``signup_at`` and ``created_at`` are UTC timestamps. ``outcome`` is
``"hand_raise"`` or ``"conversion"``. ``leads`` (optional) are the CRM's
leads / MQLs: an account became a lead at ``ts``, from ``email`` (a person, who
may or may not use the product) and ``source`` (e.g. "webinar", "outbound").
"""

from dataclasses import dataclass

__all__ = ["TableSchema", "TABLES", "OUTCOME_KINDS"]

OUTCOME_KINDS = ("hand_raise", "conversion")


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
        optional=("account_id", "title"),
        kinds={"user_id": "id", "email": "string", "signup_at": "timestamp",
               "account_id": "id", "title": "string"},
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
        optional=("email", "source"),
        kinds={"account_id": "id", "ts": "timestamp", "email": "string", "source": "string"},
    ),
}
