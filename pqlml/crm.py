"""CRM files from scores: what Salesforce Data Loader and a HubSpot import take as is.

:func:`crm_files` turns a scoring's tables into the files of one ``format`` for a folder:

- ``csv``: ``scores.csv`` (the score columns, ``as_of`` as ISO 8601 UTC,
  ``2025-06-30T00:00:00Z``) and ``not_scored.csv``;
- ``parquet``: ``scores.parquet`` and ``not_scored.parquet``, values typed as they are;
- ``salesforce``: ``salesforce.csv`` whose headers are the fields' API names
  (:data:`ACCOUNT_FIELDS` on Account, :data:`USER_FIELDS` on Lead), Date/Time as
  ``yyyy-MM-dd'T'HH:mm:ss.SSS'Z'``, the probability as a percent 0-100, text cut to the
  field's length; ``salesforce.sdl``, the Data Loader mapping (Java properties,
  ``CSV header=field``); ``process-conf.xml``, a Data Loader CLI upsert on the external id;
- ``hubspot``: ``hubspot.csv`` whose headers are the properties' internal names, dates as
  ``YYYY-MM-DD`` (a date picker), the probability 0-100; ``hubspot.json``, the
  ``importRequest`` of HubSpot's imports API (``POST /crm/v3/imports``), one column mapping
  per CSV column, the dedupe column (``domain`` for companies, ``email`` for contacts) marked.

An account model with an uplift adds :data:`UPLIFT_FIELDS` (``PQA_Uplift__c`` /
``pqa_uplift`` and its band, in percentage points; ``PQA_Uplift_Note__c`` says why one is
empty).

Every CSV is UTF-8 with formula-safe cells (:func:`pqlml.outputs.safe_cells`); the
salesforce and hubspot formats add the plain ``not_scored.csv``.

Examples
--------
>>> import pandas as pd
>>> scores = pd.DataFrame({"account_id": ["a1"], "domain": ["acme.com"],
...     "as_of": [pd.Timestamp("2025-06-30", tz="UTC")], "probability": [0.3712],
...     "percentile": [100.0], "tier": ["tier_1"], "funnel": ["pqa"], "motion": ["call"],
...     "reason_1": ["(+) 9 active users"], "reason_2": [None], "reason_3": [None],
...     "model_version": ["pqlml/3"]})
>>> gone = pd.DataFrame(columns=["account_id", "user_id", "code", "reason"])
>>> import tempfile
>>> from pqlml.outputs import write_files
>>> out = Path(tempfile.mkdtemp())
>>> [p.name for p in write_files(crm_files(scores, gone, "salesforce", out))]
['salesforce.csv', 'salesforce.sdl', 'process-conf.xml', 'not_scored.csv']
>>> header, row = (out / "salesforce.csv").read_text().splitlines()
>>> header.split(",")[:4]
['PQA_Account_Id__c', 'Website', 'PQA_Scored_At__c', 'PQA_Probability__c']
>>> row
'a1,acme.com,2025-06-30T00:00:00.000Z,37.1,100.0,tier_1,pqa,call,(+) 9 active users,,,pqlml/3'
>>> print((out / "salesforce.sdl").read_text().splitlines()[2])
PQA_Account_Id__c=PQA_Account_Id__c
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .errors import PqlmlError

__all__ = ["FORMATS", "Field", "ACCOUNT_FIELDS", "CONTACT_FIELDS", "UPLIFT_FIELDS", "USER_FIELDS",
           "crm_files", "file_names", "fields_of", "SALESFORCE_DATETIME", "HUBSPOT_DATE"]

FORMATS = ("csv", "parquet", "salesforce", "hubspot")
#: Data Loader's documented Date/Time form (Java pattern ``yyyy-MM-dd'T'HH:mm:ss.SSS'Z'``).
SALESFORCE_DATETIME = "%Y-%m-%dT%H:%M:%S.000Z"
#: A HubSpot date picker's import form (``YYYY-MM-DD``, the request's ``YEAR_MONTH_DAY``).
HUBSPOT_DATE = "%Y-%m-%d"
_ISO = "%Y-%m-%dT%H:%M:%SZ"
#: Probabilities written 0-100, and the uplift columns as percentage points (0.042 -> 4.2).
_PERCENT = ("probability", "buyer_in_product", "uplift", "uplift_low", "uplift_high")


@dataclass(frozen=True)
class Field:
    """One score column as a CRM field: its Salesforce API name and type, its HubSpot
    internal name and type, its text length (``None``: not text), and ``match``: the
    CRM's own match key (a standard field: HubSpot's dedupe column; in the Salesforce
    file only to check the match, never written by the upsert)."""

    column: str
    salesforce: str
    salesforce_type: str
    hubspot: str
    hubspot_type: str
    length: int | None = None
    match: bool = False


def _fields(prefix: str, key: Field, match: Field) -> tuple[Field, ...]:
    sf, hs = prefix.upper(), prefix.lower()
    tiers, funnels = "tier_1, tier_2, tier_3, self_serve", "pql, pqa, self_serve"
    return (key, match,
            Field("as_of", f"{sf}_Scored_At__c", "Date/Time", f"{hs}_scored_at", "Date picker"),
            Field("probability", f"{sf}_Probability__c", "Percent(3, 1): 37.1 is 37.1%",
                  f"{hs}_probability", "Number (percent, 0-100)"),
            Field("percentile", f"{sf}_Percentile__c", "Number(3, 1)", f"{hs}_percentile",
                  "Number"),
            Field("tier", f"{sf}_Tier__c", f"Picklist: {tiers}", f"{hs}_tier",
                  f"Dropdown select: {tiers}", 255),
            Field("funnel", f"{sf}_Funnel__c", f"Picklist: {funnels}", f"{hs}_funnel",
                  f"Dropdown select: {funnels}", 255),
            Field("motion", f"{sf}_Motion__c", "Text(255)", f"{hs}_motion", "Single-line text",
                  255),
            *(Field(f"reason_{i}", f"{sf}_Reason_{i}__c", "Text(255)", f"{hs}_reason_{i}",
                    "Single-line text", 255) for i in (1, 2, 3)),
            Field("model_version", f"{sf}_Model_Version__c", "Text(80)", f"{hs}_model_version",
                  "Single-line text", 80))


#: An account model's fields: Salesforce Account (upsert on ``PQA_Account_Id__c``),
#: HubSpot company (deduplicated on ``domain``).
ACCOUNT_FIELDS = _fields(
    "PQA",
    Field("account_id", "PQA_Account_Id__c", "Text(255), External ID, Unique",
          "pqa_account_id", "Single-line text, unique values", 255),
    Field("domain", "Website", "standard field: not mapped, the upsert never changes it",
          "domain", "standard Company domain name: the import's dedupe key", match=True))
#: Whom to call in a worked account (:func:`pqlml.buyers.with_contacts`), after the account's
#: own fields: a person's id and email go to the CRM and nowhere else.
CONTACT_FIELDS = (
    Field("contact_user_id", "PQA_Contact_User_Id__c", "Text(255)", "pqa_contact_user_id",
          "Single-line text", 255),
    Field("contact_email", "PQA_Contact_Email__c", "Email", "pqa_contact_email",
          "Single-line text", 255),
    Field("contact_title", "PQA_Contact_Title__c", "Text(255)", "pqa_contact_title",
          "Single-line text", 255),
    Field("contact_reason", "PQA_Contact_Reason__c", "Text(255)", "pqa_contact_reason",
          "Single-line text", 255),
    Field("buyer_in_product", "PQA_Buyer_In_Product__c", "Percent(3, 1): 37.1 is 37.1%",
          "pqa_buyer_in_product", "Number (percent, 0-100)"),
    Field("lead_bucket", "PQA_Lead_Bucket__c", "Picklist: pql, pqa_find_buyer, sales_led",
          "pqa_lead_bucket", "Dropdown select: pql, pqa_find_buyer, sales_led", 255))
#: A touch's estimated effect (:mod:`pqlml.uplift._scoring`), after the percentile, when the
#: model has one: percentage points of the chance of converting, empty where the account's
#: segment is not identifiable (``uplift_note`` says why).
UPLIFT_FIELDS = (
    Field("uplift", "PQA_Uplift__c", "Number(4, 1): points a touch adds, 4.2 is +4.2 pts",
          "pqa_uplift", "Number (percentage points)"),
    Field("uplift_low", "PQA_Uplift_Low__c", "Number(4, 1): the 95% band's lower end, points",
          "pqa_uplift_low", "Number (percentage points)"),
    Field("uplift_high", "PQA_Uplift_High__c", "Number(4, 1): the 95% band's upper end, points",
          "pqa_uplift_high", "Number (percentage points)"),
    Field("uplift_note", "PQA_Uplift_Note__c", "Text(255)", "pqa_uplift_note",
          "Single-line text", 255))
_AFTER = [f.column for f in ACCOUNT_FIELDS].index("percentile") + 1
ACCOUNT_FIELDS = (ACCOUNT_FIELDS[:_AFTER] + UPLIFT_FIELDS + ACCOUNT_FIELDS[_AFTER:-1]
                  + CONTACT_FIELDS + ACCOUNT_FIELDS[-1:])
#: A user (PQL) model's fields: Salesforce Lead (upsert on ``PQL_User_Id__c``), HubSpot
#: contact (deduplicated on ``email``).
USER_FIELDS = _fields(
    "PQL",
    Field("user_id", "PQL_User_Id__c", "Text(255), External ID, Unique", "pql_user_id",
          "Single-line text, unique values", 255),
    Field("email", "Email", "standard field: not mapped, the upsert never changes it",
          "email", "standard Email: the import's dedupe key", match=True))
_CRM = {"account": {"salesforce": "Account", "hubspot": ("0-2", "companies")},
        "user": {"salesforce": "Lead", "hubspot": ("0-1", "contacts")}}


def fields_of(entity: str) -> tuple[Field, ...]:
    """The CRM fields of scores of ``entity`` (``"account"`` or ``"user"``)."""
    return USER_FIELDS if entity == "user" else ACCOUNT_FIELDS


def file_names(format: str) -> tuple[str, ...]:
    """The files ``format`` writes into the folder (checked before any work)."""
    _check_format(format)
    return {"csv": ("scores.csv", "not_scored.csv"),
            "parquet": ("scores.parquet", "not_scored.parquet"),
            "salesforce": ("salesforce.csv", "salesforce.sdl", "process-conf.xml",
                           "not_scored.csv"),
            "hubspot": ("hubspot.csv", "hubspot.json", "not_scored.csv")}[format]


def _check_format(format: str) -> None:
    if format not in FORMATS:
        raise PqlmlError(f"Unknown score format {format!r}. Fix: use one of "
                         f"{', '.join(FORMATS)} (--format).")


def crm_files(scores: pd.DataFrame, not_scored: pd.DataFrame, format: str,
              folder: str | Path) -> dict[Path, object]:
    """``{path: content}`` of ``format`` in ``folder``: tables as DataFrames, mapping files
    as text or JSON-ready dicts (write them with :func:`pqlml.outputs.write_files`).
    ``scores``: a scoring's table keyed by ``account_id`` or ``user_id`` (first column)."""
    folder = Path(folder)
    names = [folder / n for n in file_names(format)]
    entity = "user" if scores.columns[0] == "user_id" else "account"
    if format in ("csv", "parquet"):
        table = scores if format == "parquet" else scores.assign(as_of=_dates(scores.as_of, _ISO))
        return dict(zip(names, (table, not_scored)))
    fields = [f for f in fields_of(entity) if f.column in scores.columns]
    if format == "salesforce":
        table = _salesforce(scores, fields)
        content = (table, _sdl(fields, entity), _process_conf(entity, fields, *names[:2]))
    else:
        table = _hubspot(scores, fields)
        content = (table, _hubspot_request(entity, fields, names[0].name, scores))
    return dict(zip(names, (*content, not_scored)))


def _dates(values: pd.Series, form: str) -> pd.Series:
    return pd.to_datetime(values, utc=True).dt.strftime(form)


def _percent(p: pd.Series) -> pd.Series:
    """A probability as a percent with one decimal (0.3712 -> 37.1)."""
    return (pd.to_numeric(p) * 100).round(1)


def _cut(values: pd.Series, length: int) -> pd.Series:
    """Text no longer than ``length`` characters (a longer one ends in an ellipsis)."""
    return values.map(lambda v: v[:length - 1] + "\u2026" if isinstance(v, str)
                      and len(v) > length else v)


def _salesforce(scores: pd.DataFrame, fields: list[Field]) -> pd.DataFrame:
    out = pd.DataFrame(index=scores.index)
    for f in fields:
        v = scores[f.column]
        if f.column == "as_of":
            v = _dates(v, SALESFORCE_DATETIME)
        elif f.column in _PERCENT:
            v = _percent(v)
        elif f.length:
            v = _cut(v, f.length)
        out[f.salesforce] = v
    return out


def _hubspot(scores: pd.DataFrame, fields: list[Field]) -> pd.DataFrame:
    out = pd.DataFrame(index=scores.index)
    for f in fields:
        v = scores[f.column]
        out[f.hubspot] = (_dates(v, HUBSPOT_DATE) if f.column == "as_of" else
                          _percent(v) if f.column in _PERCENT else v)
    return out


def _sdl(fields: list[Field], entity: str) -> str:
    """Data Loader's mapping file: Java properties, ``CSV header=Salesforce field``."""
    skipped = [f for f in fields if f.match]
    lines = [f"# Data Loader mapping (CSV column=Salesforce field) of {_CRM[entity]['salesforce']}, "
             "written by pqlml score --format salesforce",
             *(f"# {f.salesforce} ({f.column}) is in the file to check the match; it is not "
               "mapped, so the upsert never changes it" for f in skipped)]
    lines += [f"{f.salesforce}={f.salesforce}" for f in fields if not f.match]
    return "\n".join(lines) + "\n"


def _process_conf(entity: str, fields: list[Field], csv: Path, sdl: Path) -> str:
    """A Data Loader CLI ``process-conf.xml``: one bean upserting ``csv`` on the external id
    with the ``sdl`` mapping. Login settings are left to the user's config.properties."""
    sobject, key = _CRM[entity]["salesforce"], fields[0].salesforce
    name = f"pqlml{sobject}Upsert"
    beans = ET.Element("beans")
    beans.append(ET.Comment(" Login (sfdc.endpoint, sfdc.username, sfdc.password or OAuth) goes in "
                            "config.properties beside this file: pqlml writes no credentials. "
                            "Run: process.bat <this folder> " + name + " "))
    bean = ET.SubElement(beans, "bean", id=name, scope="prototype",
                         attrib={"class": "com.salesforce.dataloader.process.ProcessRunner"})
    ET.SubElement(bean, "description").text = (
        f"Upsert pqlml scores into {sobject} on the external id {key}.")
    ET.SubElement(bean, "property", name="name", value=name)
    entries = ET.SubElement(ET.SubElement(bean, "property", name="configOverrideMap"), "map")
    folder = csv.resolve().parent
    for k, v in (("sfdc.entity", sobject), ("process.operation", "upsert"),
                 ("sfdc.externalIdField", key), ("process.mappingFile", str(sdl.resolve())),
                 ("dataAccess.type", "csvRead"), ("dataAccess.name", str(csv.resolve())),
                 ("dataAccess.readUTF8", "true"), ("process.useEuropeanDates", "false"),
                 ("process.outputSuccess", str(folder / "salesforce_success.csv")),
                 ("process.outputError", str(folder / "salesforce_error.csv"))):
        ET.SubElement(entries, "entry", key=k, value=v)
    ET.indent(beans)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE beans PUBLIC "-//SPRING//DTD '
            'BEAN//EN" "http://www.springframework.org/dtd/spring-beans.dtd">\n'
            + ET.tostring(beans, encoding="unicode") + "\n")


def _hubspot_request(entity: str, fields: list[Field], csv_name: str, scores) -> dict:
    """The ``importRequest`` JSON of HubSpot's imports API for ``csv_name``."""
    object_type, plural = _CRM[entity]["hubspot"]
    as_of = pd.to_datetime(scores.as_of, utc=True)
    when = as_of.iloc[0].strftime(HUBSPOT_DATE) if len(as_of) else "no rows"
    mappings = []
    for f in fields:
        m = {"columnObjectTypeId": object_type, "columnName": f.hubspot, "propertyName": f.hubspot}
        if f.match:                            # domain / email: HubSpot's own dedupe key
            m["idColumnType"] = "HUBSPOT_ALTERNATE_ID"
        mappings.append(m)
    request = {"name": f"pqlml scores of {plural} at {when}",
               "importOperations": {object_type: "UPSERT"},
               "dateFormat": "YEAR_MONTH_DAY",
               "files": [{"fileName": csv_name, "fileFormat": "CSV",
                          "fileImportPage": {"hasHeader": True, "columnMappings": mappings}}]}
    if entity == "user":
        request["marketableContactImport"] = False
    return request
