"""Engine parity: the same ibis definitions on PySpark (local mode) give identical results.

Select alone with ``pytest -m spark``; CI runs them with everything else.
"""

from __future__ import annotations

import os
import shutil

import ibis
import numpy as np
import pandas as pd
import pytest

from pqlml.config import CountFeature, FeaturesConfig
from pqlml.features import feature_table
from pqlml.simulate import simulate
from simulated import simulated_frames

pytestmark = [pytest.mark.spark, pytest.mark.slow]


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.fail("PySpark parity tests need Java (17): install a JRE, e.g. apt-get install openjdk-17-jre-headless")
    from pyspark.sql import SparkSession

    warehouse = tmp_path_factory.mktemp("spark-warehouse")
    session = (SparkSession.builder.master("local[2]").appName("pqlml-tests")
               .config("spark.driver.bindAddress", "127.0.0.1").config("spark.driver.host", "127.0.0.1")
               .config("spark.sql.session.timeZone", "UTC").config("spark.ui.enabled", "false")
               .config("spark.sql.shuffle.partitions", "4")
               .config("spark.sql.warehouse.dir", str(warehouse)).getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def company(tmp_path_factory):
    f = simulated_frames(tmp_path_factory.mktemp("sim"), n_accounts=60, seed=8, months=5,
                         cutoffs=["2024-03-01", "2024-04-01", "2024-05-01"])
    f["spine"] = f["spine"].rename(columns={"account_id": "entity_id"})
    return f


# Every family that reads the events, a custom count, a 60-day window, the per-event growth
# (on by default) and per-event active users among them. Activation and engagement run as
# cached queries of their own (engagement's reads an in-memory table, which ibis's PySpark
# cache does not register by itself).
SETTINGS = FeaturesConfig(windows=(7, 30, 60, 90), active_users_events=("invite_sent", "task_created"),
                          counts={"legal_pages_30d": CountFeature(("terms_page_viewed",
                                                                   "privacy_page_viewed"), 30)},
                          activation=("board_created >= 1", "invite_sent >= 1"),
                          engagement_weights={"task_created": 1.0, "invite_sent": 3.0})


def _run(con, data):
    t = {k: con.create_table(f"pqlml_{k}", v, overwrite=True) for k, v in data.items()}
    out = feature_table(t["spine"], t["events"], users=t["users"], accounts=t["accounts"],
                        settings=SETTINGS).to_pandas()
    return out.sort_values(["account_id", "as_of"]).reset_index(drop=True)


def test_feature_table_is_identical_on_duckdb_and_pyspark(spark, company):
    duck = _run(ibis.duckdb.connect(), company)
    sp = _run(ibis.pyspark.connect(spark), company)
    assert list(duck.columns) == list(sp.columns)
    assert {"legal_pages_30d", "activation_stage", "engagement_score", "events_invite_sent_60d",
            "active_users_60d", "events_invite_sent_prev_30d", "events_invite_sent_velocity_30d",
            "active_users_invite_sent_30d", "active_users_task_created_30d"} <= set(duck.columns)
    assert duck.events_invite_sent_prev_30d.sum() > 0 and duck.active_users_invite_sent_30d.sum() > 0
    assert (duck.account_id == sp.account_id).all()
    assert (duck.as_of.dt.tz_convert("UTC") == pd.to_datetime(sp.as_of, utc=True)).all()
    for c in duck.columns.drop(["account_id", "as_of"]):
        np.testing.assert_allclose(duck[c].astype(float), sp[c].astype(float), rtol=1e-12,
                                   equal_nan=True, err_msg=c)


def test_labels_are_identical_on_duckdb_and_pyspark(spark, tmp_path_factory):
    from pqlml.labels import build_labels

    out = tmp_path_factory.mktemp("sim")
    simulate(n_accounts=80, seed=9, out=out, months=6)
    outcomes = pd.read_parquet(out / "outcomes.parquet")
    outcomes["user_id"] = outcomes.user_id.astype(object).where(outcomes.user_id.notna(), None)
    spine = pd.read_parquet(out / "truth" / "snapshots.parquet", columns=["account_id", "as_of"])
    spine = spine.rename(columns={"account_id": "entity_id"})
    end = pd.Timestamp("2024-06-15", tz="UTC")          # some horizons run past it: censored

    def run(con):
        s = con.create_table("pqlml_spine", spine, overwrite=True)
        o = con.create_table("pqlml_outcomes", outcomes, overwrite=True)
        t = build_labels(s, o, horizon_days=28, data_end=end).to_pandas()
        t["as_of"] = pd.to_datetime(t.as_of, utc=True)
        return t.sort_values(["entity_id", "as_of"]).reset_index(drop=True)

    duck, sp = run(ibis.duckdb.connect()), run(ibis.pyspark.connect(spark))
    assert duck.censored.any() and duck.conversion.sum() > 0
    pd.testing.assert_frame_equal(duck, sp, check_dtype=False)


def _identity_run(con, data):
    """Users -> accounts over time, events by their user's account at their time, features
    with a summed property: the whole path from canonical tables, on ``con``."""
    from pqlml.config import SumFeature
    from pqlml.identity import account_events, membership_intervals, user_accounts
    from pqlml.validate import ValidationReport

    t = {k: con.create_table(f"pqlml_m_{k}", v, overwrite=True) for k, v in data.items()}
    report = ValidationReport()
    users = user_accounts(t["users"], t["accounts"], report=report)
    members = membership_intervals(users, t["memberships"], report=report)
    events = account_events(t["events"], users, members=members, properties=("amount",),
                            report=report)
    settings = FeaturesConfig(windows=(7, 30, 60, 90),
                              sums={"big_tasks_30d": SumFeature("amount", 30, ("task_created",))})
    out = feature_table(t["spine"], events, users=users, members=members, accounts=t["accounts"],
                        settings=settings, properties=("amount",)).to_pandas()
    return out.sort_values(["account_id", "as_of"]).reset_index(drop=True), \
        sorted((f.kind, f.rows) for f in report)


def test_memberships_and_property_sums_are_identical_on_duckdb_and_pyspark(spark, company):
    events = company["events"].drop(columns=["account_id", "event_id"])
    rng = np.random.default_rng(3)
    events["amount"] = np.where(rng.random(len(events)) < 0.5, np.round(rng.gamma(2, 30, len(events)), 2),
                                np.nan)
    # missing values as None: pandas' NaN would reach Spark as a value ('nan', NaN)
    events["amount"] = events.amount.astype(object).where(events.amount.notna(), None)
    users = company["users"].drop(columns=["is_free_mail"])
    for c in ("account_id", "title"):
        users[c] = users[c].astype(object).where(users[c].notna(), None)
    movers = users[users.account_id.notna()].iloc[::7]
    others = company["accounts"].account_id.to_numpy()
    moves = pd.DataFrame({"user_id": movers.user_id,
                          "account_id": [others[(i * 5 + 1) % len(others)] for i in range(len(movers))],
                          "since": pd.Timestamp("2024-03-20 12:00", tz="UTC")})
    data = {"events": events, "users": users, "accounts": company["accounts"],
            "memberships": moves, "spine": company["spine"]}
    (duck, duck_found), (sp, sp_found) = (_identity_run(ibis.duckdb.connect(), data),
                                          _identity_run(ibis.pyspark.connect(spark), data))
    assert dict(duck_found)["users_changing_account"] > 5 and duck_found == sp_found
    assert {"sum_amount_30d", "sum_amount_60d", "max_amount_60d", "max_amount_90d", "big_tasks_30d",
            "users_total"} <= set(duck.columns)
    assert list(duck.columns) == list(sp.columns) and (duck.account_id == sp.account_id).all()
    for c in duck.columns.drop(["account_id", "as_of"]):
        np.testing.assert_allclose(duck[c].astype(float), sp[c].astype(float), rtol=1e-12,
                                   equal_nan=True, err_msg=c)
