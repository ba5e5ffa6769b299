"""The Spark engine from the config, on a Spark standalone cluster: a master and two workers
started on 127.0.0.1 here and stopped by their PIDs afterwards.

A simulated company with users moving between accounts and a numeric order total is read
by ``[data] engine = "spark"`` from Parquet files and, for the accounts, a table of the
session's catalog; opening the project (validation, identities,
the data's range), the features and the labels equal the same config on DuckDB. Select
alone with ``pytest -m spark``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from pqlml._spark import spark_backend
from pqlml.config import load_config
from pqlml.project import build_features, build_labels, open_project
from simulated import moving_company

pytestmark = [pytest.mark.spark, pytest.mark.slow]

MOVE = pd.Timestamp("2024-03-20 12:00", tz="UTC")
AS_OF = ["2024-03-01", "2024-04-01", "2024-05-01"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alive_workers(webui: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{webui}/json/", timeout=2) as r:
            return int(json.load(r).get("aliveworkers", 0))
    except OSError:
        return 0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """``spark://127.0.0.1:<port>`` of a standalone master with two 1-core workers."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.fail("The Spark cluster test needs Java (17): install a JRE, e.g. "
                    "apt-get install openjdk-17-jre-headless")
    import pyspark

    spark_class = Path(pyspark.__file__).parent / "bin" / "spark-class"
    logs = tmp_path_factory.mktemp("spark-cluster")
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable,
           "SPARK_HOME": str(spark_class.parent.parent), "SPARK_NO_DAEMONIZE": "1"}
    port, webui = _free_port(), _free_port()
    url = f"spark://127.0.0.1:{port}"
    procs = []

    def start(name, *args):
        out = open(logs / f"{name}.log", "wb")     # noqa: SIM115 - closed with the process
        procs.append((subprocess.Popen([str(spark_class), *args], env=env, stdout=out,
                                       stderr=subprocess.STDOUT, start_new_session=True), out))

    try:
        start("master", "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
              "--port", str(port), "--webui-port", str(webui))
        for i in (1, 2):
            start(f"worker{i}", "org.apache.spark.deploy.worker.Worker", url, "--host",
                  "127.0.0.1", "--webui-port", str(_free_port()), "--cores", "1",
                  "--memory", "1g", "--work-dir", str(logs / f"work{i}"))
        deadline = time.monotonic() + 120
        while _alive_workers(webui) < 2:
            dead = [p.args[1] for p, _ in procs if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                pytest.fail(f"the Spark cluster did not start ({dead or 'timeout'}); "
                            f"logs in {logs}")
            time.sleep(0.5)
        yield url
    finally:
        from pyspark.sql import SparkSession

        session, driver_port = SparkSession.getActiveSession(), None
        if session is not None:
            driver_port = session.conf.get("spark.driver.port", None)
            session.stop()
        for p, out in reversed(procs):       # workers first, then the master
            p.terminate()
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            out.close()
        # spark-class execs java, so these PIDs were the JVMs; the workers' executors
        # (which name the driver's port) went with them
        left = [p.pid for p, _ in procs if _running(p.pid)]
        if driver_port is not None:
            left += _pids(f"spark.driver.port={driver_port}")
        assert not left, f"Spark processes left running: {left}"


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _pids(pattern: str) -> list[int]:
    found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout
    return [int(p) for p in found.split()]


@pytest.fixture(scope="module")
def company(tmp_path_factory):
    """One company as two configs, ``duckdb.toml`` and ``spark.toml``, that differ only in
    the engine: Parquet tables, users moving between accounts, an order total summed."""
    out = tmp_path_factory.mktemp("sim")
    text = moving_company(out, seed=5, draws=2, every=4, move=MOVE)
    pd.read_csv(out / "enrichment.csv").to_parquet(out / "enrichment.parquet")
    text = text.replace("enrichment.csv", "enrichment.parquet")
    (out / "duckdb.toml").write_text(text)
    return out, text


def test_identity_features_and_labels_on_a_standalone_cluster_equal_duckdb(cluster, company):
    out, text = company
    text = text.replace(
        'root = "."', f'root = "."\nengine = "spark"\nmaster = "{cluster}"\n\n[data.spark]\n'
        '"spark.sql.shuffle.partitions" = 2\n"spark.executor.memory" = "512m"\n'
        f'"spark.sql.warehouse.dir" = "{out / "warehouse"}"\n', 1)
    # the accounts as a table of the session's catalog (as a Hive or Delta table is named)
    text = text.replace('[data.accounts]\nsource = "accounts.parquet"',
                        '[data.accounts]\nsource = "pqlml_test.accounts"')
    assert 'source = "pqlml_test.accounts"' in text
    (out / "spark.toml").write_text(text)
    session = spark_backend(load_config(out / "spark.toml").data)._session
    session.sql("CREATE DATABASE IF NOT EXISTS pqlml_test")
    session.read.parquet(str(out / "accounts.parquet")).write.saveAsTable(
        "pqlml_test.accounts", mode="overwrite")
    duck = open_project(out / "duckdb.toml", cache=False)
    spark = open_project(out / "spark.toml", cache=False)     # the same session
    assert spark.report.files["accounts"] == "table 'pqlml_test.accounts' in the Spark catalog"
    assert spark.con.name == "pyspark"
    assert spark.con._session.sparkContext.master == cluster
    assert spark.con._session.sparkContext.defaultParallelism == 2       # both workers' cores

    found = lambda p: sorted((f.kind, f.table, f.rows) for f in p.report)   # noqa: E731
    assert dict((k, n) for k, _, n in found(duck))["users_changing_account"] > 5
    assert found(spark) == found(duck)
    assert (spark.data_start, spark.data_end, spark.first_seen) == \
        (duck.data_start, duck.data_end, duck.first_seen)

    X_duck, X_spark = build_features(duck, as_of=AS_OF), build_features(spark, as_of=AS_OF)
    assert {"sum_amount_30d", "max_amount_90d", "task_orders_30d", "users_total",
            "enriched_industry_fintech", "engagement_score"} <= set(X_duck.columns)
    assert X_duck.task_orders_30d.sum() > 0
    # row for row, every column; floats exact but for the order of a sum: the property sums
    # and the decayed engagement score add up partitions in the order they finish
    pd.testing.assert_frame_equal(X_spark, X_duck, check_exact=False, rtol=1e-9, atol=0)
    ints = [c for c in X_duck.columns if X_duck[c].dtype.kind in "iub"]
    pd.testing.assert_frame_equal(X_spark[ints], X_duck[ints], check_exact=True)

    y_duck, y_spark = build_labels(duck, as_of=AS_OF), build_labels(spark, as_of=AS_OF)
    assert y_duck.conversion.sum() > 0 and y_duck.hand_raise.sum() > 0
    pd.testing.assert_frame_equal(y_spark, y_duck, check_exact=True)
