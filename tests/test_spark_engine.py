"""The Spark engine's config and source rules, checked without starting Spark (the engine
itself runs in tests/test_spark_cluster.py and tests/test_spark.py)."""

from __future__ import annotations

import doctest
from pathlib import Path

import pandas as pd
import pytest

import pqlml._spark as spark_module
from pqlml._spark import is_catalog_name, read_spark_source, spark_settings
from pqlml.cache import data_fingerprint
from pqlml.config import load_config
from pqlml.errors import ConfigError, DataError

EVENTS = '[data.events]\nsource = "events.parquet"\n'


def _config(tmp_path: Path, data: str, tables: str = EVENTS):
    path = tmp_path / "pqlml.toml"
    path.write_text(f"[data]\n{data}\n{tables}")
    return load_config(path)


def test_the_engine_master_and_spark_settings_are_read(tmp_path):
    cfg = _config(tmp_path, 'engine = "spark"\nmaster = "spark://127.0.0.1:7077"\n'
                            '[data.spark]\n"spark.sql.shuffle.partitions" = 8\n'
                            '"spark.sql.adaptive.enabled" = true\n')
    assert (cfg.data.engine, cfg.data.master) == ("spark", "spark://127.0.0.1:7077")
    assert dict(cfg.data.spark) == {"spark.sql.shuffle.partitions": "8",
                                    "spark.sql.adaptive.enabled": "true"}
    assert _config(tmp_path, "").data.engine == "duckdb"


@pytest.mark.parametrize("data, match", [
    ('engine = "sparc"', r"'data\.engine' setting .* must be one of \"duckdb\", \"spark\""),
    ('master = "local[2]"', r"\[data\] master .* data\.engine is 'duckdb'\. Fix: add "
                            r"engine = \"spark\""),
    ('engine = "spark"\nmaster = "spark//host:7077"', r"'data\.master' setting .* must be a "
                                                        r"Spark master URL"),
    ('engine = "spark"\nconnection = "duckdb:///w.duckdb"', r"names another database\. Fix: "
                                                            r"remove data\.connection"),
    ('[data.spark]\n"spark.executor.memory" = "1g"', r"\[data\] spark .* Fix: add engine"),
    ('engine = "spark"\n[data.spark]\nexecutor_memory = "1g"',
     r"'data\.spark\.executor_memory' setting .* starting with 'spark\.'"),
    ('engine = "spark"\n[data.spark]\n"spark.sql.session.timeZone" = "Europe/Paris"',
     r"must be \"UTC\""),
])
def test_a_wrong_engine_setting_names_the_key_and_the_fix(tmp_path, data, match):
    with pytest.raises(ConfigError, match=match):
        _config(tmp_path, data)


def test_memory_limit_on_spark_is_refused_with_the_spark_setting_to_use():
    from pqlml.config import DataConfig
    from pqlml.sources import _session

    class Spark:               # what _session reads of a backend: its name
        name = "pyspark"
    with pytest.raises(ConfigError, match=r"memory_limit .* connection is pyspark\. Fix: .*"
                                          r"spark\.executor\.memory"):
        _session(Spark(), DataConfig(engine="spark", memory_limit="4GB"))


def test_csv_on_spark_is_refused_with_the_conversion(tmp_path):
    with pytest.raises(ConfigError, match=r"CSV is not read on the Spark engine.*Fix: convert "
                                          r"it to Parquet.*\[data\.users\] source"):
        read_spark_source(None, tmp_path, "users", "users.csv")


def test_a_missing_file_that_is_no_table_name_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match=r"events \(.*/logs/ev\*\.parquet\): no file matches"):
        read_spark_source(None, tmp_path, "events", "logs/ev*.parquet")


def test_catalog_names_and_files_are_told_apart():
    assert is_catalog_name("events") and is_catalog_name("prod.analytics.events")
    assert not any(map(is_catalog_name, ("events.parquet", "e.csv", "logs/*.parquet",
                                          "s3a://b/events", "a.b.c.d")))


def test_local_masters_bind_the_driver_to_loopback_and_remote_ones_do_not():
    for master in ("local[2]", "local[*]", "spark://127.0.0.1:7077", "spark://localhost:7077"):
        assert spark_settings(master, {})["spark.driver.bindAddress"] == "127.0.0.1", master
    assert "spark.driver.bindAddress" not in spark_settings("spark://10.1.2.3:7077", {})
    assert spark_settings("local[1]", {})["spark.sql.session.timeZone"] == "UTC"


def test_a_catalog_source_is_not_cached_and_a_folder_is_fingerprinted_by_its_files(tmp_path):
    (tmp_path / "events").mkdir()
    part = tmp_path / "events" / "part-0.parquet"
    pd.DataFrame({"x": [1]}).to_parquet(part)
    assert data_fingerprint(_config(tmp_path, 'engine = "spark"',
                                    '[data.events]\nsource = "prod.events"\n')) is None
    folder = _config(tmp_path, 'engine = "spark"', '[data.events]\nsource = "events"\n')
    before = data_fingerprint(folder)
    pd.DataFrame({"x": [1, 2]}).to_parquet(part)
    assert before is not None and data_fingerprint(folder) != before


def test_docstring_examples_run():
    result = doctest.testmod(spark_module)
    assert result.attempted > 0 and result.failed == 0


def test_a_dataframe_with_the_spark_engine_is_refused_with_the_fix():
    from pqlml.config import config_from_dict

    with pytest.raises(ConfigError, match=r"data\.events .* is a DataFrame.*Fix: write it to "
                                          r"Parquet"):
        config_from_dict({"data": {"engine": "spark", "events": pd.DataFrame({"ts": [1]})}},
                         Path("."))
