"""CRM files (`pqlml score --format salesforce|hubspot|csv|parquet --out DIR`) checked against
the formats the tools document, not against pqlml's own code:

- Salesforce Data Loader, "Data Types Supported by Data Loader": Date/Time as
  ``yyyy-MM-dd'T'HH:mm:ss.SSS'Z'``; a Percent field takes 37.1 for 37.1%; the mapping file
  (``.sdl``) is Java properties ``CSV column=Field API name``; the CLI's process-conf.xml is
  a Spring ``<beans>`` file whose ``configOverrideMap`` names ``sfdc.entity``,
  ``process.operation``, ``sfdc.externalIdField``, ``process.mappingFile``,
  ``dataAccess.name`` and ``dataAccess.type``;
- HubSpot imports API (``POST /crm/v3/imports``): an ``importRequest`` JSON with
  ``files[].fileImportPage.columnMappings`` (``columnObjectTypeId`` 0-2 companies / 0-1
  contacts, ``columnName``, ``propertyName``, ``idColumnType`` on the dedupe column) and a
  ``dateFormat``; a date picker imports ``YYYY-MM-DD`` under ``YEAR_MONTH_DAY``;
- OWASP CSV injection: no cell begins with ``= + - @``, a tab or a carriage return.

The user-level (Lead / contact) files are checked in tests/test_user_level.py, on that
module's user-level company and model.
"""

from __future__ import annotations

import csv
import json
import re
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pytest

from pqlml import runner
from pqlml.cli import main
from pqlml.errors import PqlmlError
from pqlml.outputs import write_files
from pqlml.buyers import CONTACT_COLUMNS
from pqlml.score import SCORE_COLUMNS, Scores
from pqlml.simulate import simulate

README = Path(__file__).parents[1] / "README.md"
#: The README's field API names, in the file's column order (typed here, not read from pqlml).
SALESFORCE = ["PQA_Account_Id__c", "Website", "PQA_Scored_At__c", "PQA_Probability__c",
              "PQA_Percentile__c", "PQA_Tier__c", "PQA_Funnel__c", "PQA_Motion__c",
              "PQA_Reason_1__c", "PQA_Reason_2__c", "PQA_Reason_3__c",
              # whom to call (issue 26): the Tier 1/2 rows' contact
              "PQA_Contact_User_Id__c", "PQA_Contact_Email__c", "PQA_Contact_Title__c",
              "PQA_Contact_Reason__c", "PQA_Buyer_In_Product__c", "PQA_Lead_Bucket__c",
              "PQA_Model_Version__c"]
HUBSPOT = ["pqa_account_id", "domain", "pqa_scored_at", "pqa_probability", "pqa_percentile",
           "pqa_tier", "pqa_funnel", "pqa_motion", "pqa_reason_1", "pqa_reason_2",
           "pqa_reason_3", "pqa_contact_user_id", "pqa_contact_email", "pqa_contact_title",
           "pqa_contact_reason", "pqa_buyer_in_product", "pqa_lead_bucket", "pqa_model_version"]
FORMULA = ("=", "+", "-", "@", "\t", "\r")
N_ACCOUNTS = 80


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """A small simulated company, a model file, and `pqlml score --format salesforce`."""
    root = tmp_path_factory.mktemp("crm")
    sim = simulate(n_accounts=N_ACCOUNTS, seed=3, out=root / "sim", months=5)
    trained = runner.train(sim.config, root / "model.skops", track=False)
    out = root / "sf"
    assert main(["score", "--config", str(sim.config), "--model", str(root / "model.skops"),
                 "--format", "salesforce", "--out", str(out)]) == 0
    result = runner.score(trained.project, root / "model.skops", out=root / "plain")
    return {"config": sim.config, "root": root, "sf": out, "result": result,
            "found": Scores(result.scores, result.not_scored, result.version)}


def cells(path: Path) -> list[list[str]]:
    """Every row of a CSV as read by the csv module (header first), from UTF-8 bytes."""
    text = path.read_bytes().decode("utf-8")
    assert not text.startswith("\ufeff")
    return list(csv.reader(text.splitlines()))


def assert_formula_safe(path: Path) -> None:
    bad = [c for row in cells(path) for c in row if c.startswith(FORMULA)]
    assert not bad, (path.name, bad[:3])


def properties(text: str) -> dict[str, str]:
    """A Java properties file of ``key=value`` lines (``#`` / ``!`` comments)."""
    out = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith(("#", "!")):
            key, value = line.split("=", 1)
            out[key.strip()] = value.strip()
    return out


def test_salesforce_files_import_as_data_loader_documents(scored):
    out, scores = scored["sf"], scored["result"].scores
    assert sorted(p.name for p in out.iterdir()) == ["not_scored.csv", "process-conf.xml",
                                                     "report.html", "salesforce.csv",
                                                     "salesforce.sdl"]
    rows = cells(out / "salesforce.csv")
    assert rows[0] == SALESFORCE and len(rows) == len(scores) + 1 > 1
    table = pd.DataFrame(rows[1:], columns=rows[0])
    assert table.PQA_Account_Id__c.tolist() == scores.account_id.tolist()
    # Date/Time: yyyy-MM-dd'T'HH:mm:ss.SSS'Z', the moment of as_of in UTC
    assert table.PQA_Scored_At__c.str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z").all()
    parsed = [datetime.strptime(v, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
              for v in table.PQA_Scored_At__c]
    assert parsed == [t.to_pydatetime() for t in pd.to_datetime(scores.as_of, utc=True)]
    # Percent: 0-100, 100 x probability rounded to one decimal (the field's scale)
    percent = table.PQA_Probability__c.astype(float)
    assert percent.between(0, 100).all() and percent.max() > 1
    assert (percent == [round(100 * p, 1) for p in scores.probability]).all()
    assert table.PQA_Probability__c.str.fullmatch(r"\d{1,3}\.\d").all()
    assert (table.PQA_Percentile__c.astype(float) == scores.percentile).all()
    for col, n in (("PQA_Reason_1__c", 255), ("PQA_Motion__c", 255), ("PQA_Model_Version__c", 80)):
        assert table[col].str.len().max() <= n
    assert set(table.PQA_Tier__c) <= {"tier_1", "tier_2", "tier_3", "self_serve"}
    assert_formula_safe(out / "salesforce.csv")

    mapping = properties((out / "salesforce.sdl").read_text(encoding="utf-8"))
    assert set(mapping) <= set(rows[0]) and list(mapping) == [c for c in SALESFORCE if c != "Website"]
    assert all(k == v for k, v in mapping.items())          # headers are the API names

    conf = ET.parse(out / "process-conf.xml").getroot()
    assert conf.tag == "beans"
    (bean,) = conf.findall("bean")
    assert bean.get("class") == "com.salesforce.dataloader.process.ProcessRunner"
    entries = {e.get("key"): e.get("value") for e in bean.iter("entry")}
    assert entries["sfdc.entity"] == "Account" and entries["process.operation"] == "upsert"
    assert entries["sfdc.externalIdField"] == "PQA_Account_Id__c" in mapping
    assert Path(entries["process.mappingFile"]) == (out / "salesforce.sdl").resolve()
    assert Path(entries["dataAccess.name"]) == (out / "salesforce.csv").resolve()
    assert entries["dataAccess.type"] == "csvRead" and entries["dataAccess.readUTF8"] == "true"

    gone = pd.read_csv(out / "not_scored.csv")
    assert len(scores) + gone.account_id.notna().sum() == N_ACCOUNTS


def test_hubspot_files_import_as_the_imports_api_documents(scored, tmp_path):
    found = scored["found"]
    written = found.write(tmp_path, "hubspot")
    assert [p.name for p in written] == ["hubspot.csv", "hubspot.json", "not_scored.csv"]
    rows = cells(tmp_path / "hubspot.csv")
    assert rows[0] == HUBSPOT and len(rows) == len(found.scores) + 1
    table = pd.DataFrame(rows[1:], columns=rows[0])
    assert table.pqa_scored_at.str.fullmatch(r"\d{4}-\d\d-\d\d").all()
    days = {datetime.strptime(v, "%Y-%m-%d").date() for v in table.pqa_scored_at}
    assert days == set(pd.to_datetime(found.scores.as_of, utc=True).dt.date)
    percent = table.pqa_probability.astype(float)
    assert percent.between(0, 100).all()
    assert (percent == [round(100 * p, 1) for p in found.scores.probability]).all()
    # numbers plain: digits and one decimal point, no thousands separator or exponent
    assert table.pqa_percentile.str.fullmatch(r"\d+(\.\d+)?").all()
    assert_formula_safe(tmp_path / "hubspot.csv")

    request = json.loads((tmp_path / "hubspot.json").read_text(encoding="utf-8"))
    assert request["dateFormat"] == "YEAR_MONTH_DAY"
    assert request["importOperations"] == {"0-2": "UPSERT"}
    (file,) = request["files"]
    assert file["fileName"] == "hubspot.csv" and file["fileFormat"] == "CSV"
    page = file["fileImportPage"]
    assert page["hasHeader"] is True
    maps = page["columnMappings"]
    assert [m["columnName"] for m in maps] == rows[0]              # one per column, in order
    assert all(m["columnObjectTypeId"] == "0-2" and m["propertyName"] == m["columnName"]
               for m in maps)
    keys = [m["columnName"] for m in maps if m.get("idColumnType")]
    assert keys == ["domain"] and maps[1]["idColumnType"] == "HUBSPOT_ALTERNATE_ID"


def test_csv_and_parquet_keep_the_columns_with_an_iso_date(scored, tmp_path):
    found = scored["found"]
    text = cells(scored["root"] / "plain" / "scores.csv")
    assert text[0] == ["account_id", "domain", *SCORE_COLUMNS[:-1], *CONTACT_COLUMNS,
                       SCORE_COLUMNS[-1]]
    as_of = [r[2] for r in text[1:]]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", v) for v in as_of)
    assert {datetime.strptime(v, "%Y-%m-%dT%H:%M:%SZ") for v in as_of} == \
        set(pd.to_datetime(found.scores.as_of).dt.tz_convert(None))
    assert_formula_safe(scored["root"] / "plain" / "scores.csv")
    assert (scored["root"] / "plain" / "not_scored.csv").exists()

    found.write(tmp_path, "parquet")
    back = pd.read_parquet(tmp_path / "scores.parquet")
    pd.testing.assert_frame_equal(back, found.scores, check_dtype=False)
    assert str(back.as_of.dt.tz) == "UTC"
    assert len(pd.read_parquet(tmp_path / "not_scored.parquet")) == len(found.not_scored)


def _hostile(entity: str = "account") -> Scores:
    key, match = ("user_id", "email") if entity == "user" else ("account_id", "domain")
    scores = pd.DataFrame({
        key: ["=1+1", "@a", "-3"], match: ["+x.com", "\tx.com", "x.com"],
        "as_of": pd.Timestamp("2025-06-30", tz="UTC"), "probability": [0.99951, 0.5, 0.00049],
        "percentile": [100.0, 66.7, 33.3], "tier": "tier_1", "funnel": "pqa",
        "motion": ["=HYPERLINK(\"http://x\")", "+call", "\rcall"],
        "reason_1": ["- lowers", "x" * 300, "(+) fine"], "reason_2": None, "reason_3": "@sum",
        "model_version": ["m" * 90, "=v", "v"]})
    gone = pd.DataFrame({key: ["=2"], "code": ["no_events"], "reason": ["-no events"]})
    return Scores(scores, gone, "v")


@pytest.mark.parametrize("entity", ["account", "user"])
def test_no_cell_of_any_format_runs_as_a_formula(tmp_path, entity):
    found = _hostile(entity)
    for fmt in ("csv", "salesforce", "hubspot"):
        for path in found.write(tmp_path / fmt, fmt):
            if path.suffix == ".csv":
                assert_formula_safe(path)
    sf = pd.DataFrame(cells(tmp_path / "salesforce" / "salesforce.csv")[1:],
                      columns=cells(tmp_path / "salesforce" / "salesforce.csv")[0])
    prefix = "PQL" if entity == "user" else "PQA"
    # Text(255) / Text(80): a longer text is cut, ending in an ellipsis
    reason = sf[f"{prefix}_Reason_1__c"].iloc[1]
    assert len(reason) == 255 and reason.endswith("\u2026") and reason.startswith("xxx")
    assert sf[f"{prefix}_Model_Version__c"].str.len().tolist() == [80, 3, 1]
    assert sf[f"{prefix}_Probability__c"].tolist() == ["100.0", "50.0", "0.0"]
    hs = pd.read_csv(tmp_path / "hubspot" / "hubspot.csv", dtype=str)
    assert hs.iloc[1, 8] == "x" * 300                       # HubSpot text holds 65,536


def test_the_files_of_a_format_land_together_or_not_at_all(tmp_path):
    class Boom:
        def __str__(self):
            raise RuntimeError("disk full")
    (tmp_path / "salesforce.sdl").write_text("old\n")
    with pytest.raises(RuntimeError):
        write_files({tmp_path / "salesforce.sdl": "new\n", tmp_path / "x.json": {"a": 1},
                     tmp_path / "salesforce.csv": pd.DataFrame({"a": [Boom()]})})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["salesforce.sdl"]
    assert (tmp_path / "salesforce.sdl").read_text() == "old\n"


def test_bad_formats_and_outs_are_refused_before_any_work(scored, tmp_path, capsys):
    model = scored["root"] / "model.skops"
    with pytest.raises(PqlmlError, match=r"Unknown score format 'excel'.*salesforce, hubspot"):
        _hostile().write(tmp_path, "excel")
    with pytest.raises(PqlmlError, match=r"--format hubspot writes files.*Fix: add --out DIR"):
        runner.score(scored["config"], model, format="hubspot", to_table="t")
    try:                                   # argparse's own refusal exits 2
        code = main(["score", "--config", str(scored["config"]), "--model", str(model),
                     "--format", "excel", "--out", str(tmp_path / "x")])
    except SystemExit as exit_:
        code = exit_.code
    assert code == 2
    assert "invalid choice: 'excel'" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())

    # a folder where the config reads its events from hubspot.csv: never written over
    config, folder = scored["config"], tmp_path / "data"
    folder.mkdir()
    pd.read_parquet(config.parent / "events.parquet").to_csv(folder / "hubspot.csv", index=False)
    before = (folder / "hubspot.csv").read_bytes()
    other = tmp_path / "c.toml"
    other.write_text(config.read_text()
                     .replace('root = "."', f'root = "{config.parent}"')
                     .replace('source = "events.parquet"', f'source = "{folder}/hubspot.csv"'))
    with pytest.raises(PqlmlError, match=r"hubspot\.csv is one of the config's inputs"):
        runner.score(other, model, out=folder, format="hubspot")
    assert (folder / "hubspot.csv").read_bytes() == before
    assert [p.name for p in folder.iterdir()] == ["hubspot.csv"]


def test_readme_documents_every_field_and_its_type():
    text = README.read_text()
    for name in SALESFORCE + HUBSPOT:
        assert f"`{name}`" in text, name
    for name in ("salesforce.sdl", "process-conf.xml", "hubspot.json", "--format"):
        assert name in text
