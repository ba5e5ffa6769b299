"""build_features / build_labels from a config, and the `pqlml features` command."""

from __future__ import annotations

import os
import sys

import numpy as np
import pandas as pd
import pytest

from pqlml.cli import main
from pqlml.config import load_config
from pqlml.errors import PqlmlError
from pqlml.project import build_features, build_labels, open_project
from pqlml.simulate import simulate


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    simulate(n_accounts=300, seed=21, out=out, months=8)
    return out


def test_features_on_the_schedule_match_the_truth(sim):
    X = build_features(sim / "pqlml.toml")
    truth = pd.read_parquet(sim / "truth" / "snapshots.parquet")
    assert not X.duplicated(["account_id", "as_of"]).any()
    config = load_config(sim / "pqlml.toml")
    assert X.as_of.min().date() == config.schedule.start and X.as_of.max().date() == config.schedule.end
    m = truth.merge(X, on=["account_id", "as_of"], suffixes=("_truth", ""))
    assert len(m) == len(truth)          # every truth snapshot has a feature row
    for name in ("active_users_30d", "events_30d", "events_velocity_30d", "employees",
                 "events_paid_trial_started_90d", "buyer_title_present", "industry_software"):
        np.testing.assert_allclose(m[name].astype(float), m[f"{name}_truth"].astype(float), err_msg=name)


def test_labels_match_the_simulators_outcomes(sim):
    y = build_labels(sim / "pqlml.toml")
    truth = pd.read_parquet(sim / "truth" / "snapshots.parquet")
    assert len(y) == len(truth) and not y.censored.any()
    assert y.conversion.sum() > 0 and y.hand_raise.sum() > 0
    # the simulator's truth rows are exactly the eligible (not yet converted) snapshots
    keys = ["account_id", "as_of"]
    assert y[keys].sort_values(keys).reset_index(drop=True).equals(truth[keys].sort_values(keys).reset_index(drop=True))


def test_outcome_values_are_mapped_from_a_vocabulary_of_ones_own(sim, tmp_path):
    """A deals file with the CRM's own kinds, and a product event named as a hand-raise, give
    the same labels as the canonical outcomes; unmapped values are an error naming the fix."""
    o = pd.read_parquet(sim / "outcomes.parquet")
    kinds = {"conversion": "subscription_started", "hand_raise": "contact_sales_submitted"}
    deals = o.assign(kind=o.outcome.map(kinds)).drop(columns="outcome")
    extra = deals.head(5).assign(kind="trial_ended")          # a kind that is no outcome
    pd.concat([deals, extra]).to_csv(tmp_path / "deals.csv", index=False)
    text = (sim / "pqlml.toml").read_text().replace('root = "."', f'root = "{sim}"')
    text = text.replace('[data.outcomes]\nsource = "outcomes.parquet"\n',
                        f'[data.outcomes]\nsource = "{tmp_path / "deals.csv"}"\n'
                        '[data.outcomes.columns]\noutcome = "kind"\n')
    (tmp_path / "unmapped.toml").write_text(text)
    with pytest.raises(PqlmlError, match=r"'kind' \(mapped to outcome\).*'subscription_started'"
                       r".*Fix: map them in the config, e\.g\. \[outcomes\] values = "):
        build_labels(tmp_path / "unmapped.toml")
    text = text.replace("[outcomes]\n", '[outcomes]\nvalues = { subscription_started = '
                        '"conversion", contact_sales_submitted = "hand_raise", trial_ended = '
                        '"ignore" }\n')
    (tmp_path / "pqlml.toml").write_text(text)
    project = open_project(tmp_path / "pqlml.toml")
    assert {f.kind: f.rows for f in project.report}["outcomes_ignored"] == 5
    mapped, canonical = build_labels(project), build_labels(sim / "pqlml.toml")
    pd.testing.assert_frame_equal(mapped, canonical)
    # an event mapped in the same table: hand-raises from the product log alone
    events_only = text.replace(f'[data.outcomes]\nsource = "{tmp_path / "deals.csv"}"\n'
                               '[data.outcomes.columns]\noutcome = "kind"\n', "")
    events_only = events_only.replace('hand_raise_events = ["talk_to_sales_clicked", '
                                      '"demo_requested"]', "hand_raise_events = []")
    events_only = events_only.replace('trial_ended = "ignore"', 'talk_to_sales_clicked = '
                                      '"hand_raise", demo_requested = "hand_raise"')
    (tmp_path / "events.toml").write_text(events_only)
    from_events = build_labels(tmp_path / "events.toml")
    m = canonical.merge(from_events, on=["account_id", "as_of"], suffixes=("_t", "_e"))
    assert len(m) == len(canonical) and (m.hand_raise_t == m.hand_raise_e).all()
    assert m.hand_raise_e.sum() > 10


def test_labels_from_events_when_there_is_no_outcomes_table(sim, tmp_path):
    text = (sim / "pqlml.toml").read_text().replace('[data.outcomes]\nsource = "outcomes.parquet"\n', "")
    text = text.replace('root = "."', f'root = "{sim}"')
    (tmp_path / "pqlml.toml").write_text(text)
    y_events = build_labels(tmp_path / "pqlml.toml")
    y_table = build_labels(sim / "pqlml.toml")
    # hand-raises are product events in the simulator: both sources agree on them exactly
    m = y_table.merge(y_events, on=["account_id", "as_of"], suffixes=("_t", "_e"))
    assert len(m) == len(y_table) and (m.hand_raise_t == m.hand_raise_e).all()
    # no conversion events are configured: nobody is excluded, nobody converts
    assert len(y_events) > len(y_table) and y_events.conversion.sum() == 0


def test_user_entity_features(sim):
    X = build_features(sim / "pqlml.toml", as_of="2024-06-01", entity="user")
    assert "user_id" in X and "tenure_days" in X and "buyer_title" in X
    assert (X.tenure_days >= 0).all() and X.events_30d.ge(0).all()


def test_as_of_outside_the_data_is_a_clear_error(sim):
    with pytest.raises(PqlmlError, match="as_of date.*outside the data: 2030-01-01"):
        build_features(sim / "pqlml.toml", as_of="2030-01-01")


def test_project_report_counts_identity_routes(sim):
    project = open_project(sim / "pqlml.toml")
    build_labels(project, as_of="2024-05-01")
    kinds = {f.kind for f in project.report}
    assert "free_mail_user_events" in kinds and "converted_before_as_of" in kinds


def test_cli_features_writes_one_row_per_account_and_as_of(sim, tmp_path, capsys):
    out = tmp_path / "features.parquet"
    assert main(["features", "--config", str(sim / "pqlml.toml"), "--as-of", "2024-05-01",
                 "--out", str(out)]) == 0
    X = pd.read_parquet(out)
    accounts = pd.read_parquet(sim / "accounts.parquet")
    existing = accounts[accounts.created_at < pd.Timestamp("2024-05-01", tz="UTC")]
    assert set(X.account_id) == set(existing.account_id) and X.as_of.nunique() == 1
    assert {"events_30d", "active_users_30d", "days_since_last_event"} <= set(X.columns)
    assert "wrote" in capsys.readouterr().err


def test_an_explicit_pandas_spine_gives_the_same_rows_as_the_schedule(sim):
    project = open_project(sim / "pqlml.toml")
    X = build_features(project, as_of="2024-05-01")
    spine = X[["account_id", "as_of"]].rename(columns={"account_id": "entity_id"}).head(40)
    Y = build_features(project, as_of=spine)
    y = build_labels(project, as_of=spine)
    pd.testing.assert_frame_equal(Y, X.head(40).reset_index(drop=True), check_dtype=False)
    assert len(y) <= 40 and set(y.account_id) <= set(spine.entity_id)


LIMIT, LIMIT_SHOWN = "200MB", "190.7 MiB"


def test_a_memory_limit_is_applied_without_changing_a_value(sim, tmp_path):
    """``[data] memory_limit`` caps DuckDB's memory; the features under the cap equal the
    unlimited ones, every column, every row. (200 MB is about the floor for one feature
    query here: each of its ~30 aggregates and joins reserves blocks of its own; that it
    spills at scale is measured in BENCHMARKS.md, 100k accounts under 1 GB.)"""
    limited = tmp_path / "limited.toml"
    text = (sim / "pqlml.toml").read_text()
    text = text.replace('root = "."', f'root = "{sim}"\nmemory_limit = "{LIMIT}"', 1)
    assert f'memory_limit = "{LIMIT}"' in text
    limited.write_text(text)
    project = open_project(limited)
    got = project.con.raw_sql("SELECT current_setting('memory_limit')").fetchall()[0][0]
    assert got == LIMIT_SHOWN
    X = build_features(project, as_of=["2024-05-01", "2024-07-01"])
    Y = build_features(sim / "pqlml.toml", as_of=["2024-05-01", "2024-07-01"])
    pd.testing.assert_frame_equal(X, Y)


def test_the_sort_uses_every_core_whatever_omp_num_threads_says():
    # Arrow sizes its own pool by OMP_NUM_THREADS (make test sets it to 1, so there
    # pa.cpu_count() is 1); the sort's gather must still use the cores the process may use.
    from pqlml.project import _cores

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert _cores() == cores


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="DuckDB has jemalloc on Linux only")
def test_duckdbs_freed_memory_is_handed_back_before_the_sorted_copy():
    # A query's hash table (~370 MB here) stays resident in DuckDB's jemalloc for about a
    # second after the query; build_features hands it back before its own large copy.
    import duckdb

    from pqlml.backends import release_freed_memory

    def resident_mb():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    con = duckdb.connect()
    con.execute("SET threads = 2")
    con.sql("SELECT count(*) FROM (SELECT DISTINCT range % 3000000 AS x, range // 7 AS y "
            "FROM range(6000000))").fetchall()
    before = resident_mb()
    assert release_freed_memory()
    assert resident_mb() < before - 150


def test_a_date_only_purchase_log_of_customers_alone(tmp_path):
    """A retail-like log pqlml did not generate: dates only, customers and no accounts at
    all, purchases as events and repeatable. Labels equal a plain count of purchases in
    [as_of, as_of + 28 days); the midnight purchases on a cutoff are that cutoff's."""
    rng = np.random.default_rng(5)
    n = 3000
    log = pd.DataFrame({"date": (pd.Timestamp("2024-01-01") + pd.to_timedelta(
        rng.integers(0, 180, n), unit="D")).strftime("%Y-%m-%d"),
        "customer": [f"c{i}" for i in rng.integers(0, 150, n)],
        "what": rng.choice(["view", "buy"], n, p=[0.8, 0.2])})
    log.to_csv(tmp_path / "log.csv", index=False)
    (tmp_path / "pqlml.toml").write_text(
        '[project]\nentity = "user"\n[data.events]\nsource = "log.csv"\n'
        '[data.events.columns]\nts = "date"\nuser_id = "customer"\nevent = "what"\n'
        '[outcomes]\nvalues = { buy = "conversion" }\n[labels]\nexclude_prior_positives = false\n'
        '[schedule]\nstart = 2024-02-01\nend = 2024-06-01\n')
    project = open_project(tmp_path / "pqlml.toml")
    y = build_labels(project)
    X = build_features(project)
    assert len(X) == len(y) and y.conversion.sum() > 100
    seen = log.assign(ts=lambda d: pd.to_datetime(d.date, utc=True))
    first = seen.groupby("customer").ts.min()
    buys = seen[seen.what == "buy"]
    for as_of, rows in y.groupby("as_of"):
        # a customer is a snapshot from their first event on (the day after, at the earliest)
        assert set(rows.user_id) == set(first.index[first < as_of]), as_of
        if rows.censored.all():        # the window runs past the log's last day
            assert rows.conversion.isna().all() and as_of + pd.Timedelta(days=28) > seen.ts.max()
            continue
        window = buys[(buys.ts >= as_of) & (buys.ts < as_of + pd.Timedelta(days=28))
                      & buys.customer.map(first < as_of)]
        assert set(rows.user_id[rows.conversion == 1]) == set(window.customer), as_of
    on_cutoff = buys[buys.ts.isin(y.as_of.unique())]
    assert len(on_cutoff) > 0                    # midnight purchases at a cutoff: not lost
    kinds = {f.kind for f in project.report}
    assert "events_without_account" in kinds and "same_day_repeats_kept" in kinds


def test_arms_and_dispositions_in_a_vocabulary_of_ones_own(sim, tmp_path):
    """A holdouts file that says "Treated" / "Control group" and a dispositions file that says
    "SQL" / "Disqualified" / "Closed Won" read, through ``values``, as the canonical tables."""
    canonical = open_project(sim / "pqlml.toml")
    h = pd.read_parquet(sim / "holdouts.parquet")
    d = pd.read_parquet(sim / "dispositions.parquet")
    assert set(h.arm) == {"touch", "holdout"} and set(d.disposition) >= {"accepted", "rejected"}
    h.assign(arm=h.arm.map({"touch": "Treated", "holdout": " Control group"})).to_csv(
        tmp_path / "pilot.csv", index=False)
    d.assign(disposition=d.disposition.map({"accepted": "SQL", "rejected": "disqualified",
                                            "converted": "Closed Won"})).to_csv(
        tmp_path / "sales.csv", index=False)
    text = (sim / "pqlml.toml").read_text().replace('root = "."', f'root = "{sim}"')
    text = text.replace('source = "holdouts.parquet"',
                        f'source = "{tmp_path / "pilot.csv"}"\n'
                        'values = { treated = "touch", "control group" = "holdout" }')
    text = text.replace('source = "dispositions.parquet"',
                        f'source = "{tmp_path / "sales.csv"}"\nvalues = {{ SQL = "accepted", '
                        'Disqualified = "rejected", "closed won" = "converted" }')
    (tmp_path / "pqlml.toml").write_text(text)
    own = open_project(tmp_path / "pqlml.toml")
    for table in ("holdouts", "dispositions"):
        got = own.tables[table].execute()
        want = canonical.tables[table].execute()
        key = list(want.columns)
        pd.testing.assert_frame_equal(got.sort_values(key).reset_index(drop=True),
                                      want.sort_values(key).reset_index(drop=True),
                                      check_dtype=False)
