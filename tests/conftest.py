"""The order in which `make test` hands files to its workers.

`make test` runs whole files on two workers (``--dist loadfile``); a worker takes the next
file when it finishes one, so the suite ends when the last file does. By default
pytest-xdist queues files by their number of tests, which puts the long files of few tests
(the 20,000-account targets, the Spark parity, the notebooks) last, where one of them can
keep a worker busy minutes after the other has run out of work. ``make test`` turns that
off (``--no-loadscope-reorder``) and this hook queues the longest files first, longest
first; every other file follows in its usual order and fills the gaps. Tests inside a file
keep their order.

HEAVY_FIRST comes from a full run's ``--durations`` (issue 25: the files over ~20 s, setup
and calls of their slowest tests summed; seconds of the quiet CI run of 2026-12-06; issue
27's files from their own runs with ``--durations=0``, scaled to a quiet machine). A file
missing from it only runs later; a new long file belongs here.

``shared_company`` (below) is the session's simulated companies: a test that needs a
simulated company asks for it by its simulate arguments, and every module and both
workers asking for the same arguments read one folder and one feature cache (see
``simulated.shared_company`` and ``simulated.company_config``).
"""

from __future__ import annotations

import pytest

HEAVY_FIRST = (
    "tests/test_model_targets.py",          # 171: the targets on 20,000 accounts
    "tests/test_spark_cluster.py",          # 119: a standalone cluster (a master, two workers)
    "tests/test_spark.py",                  # ~95: three PySpark local-mode parity runs
    "tests/test_uplift_cli.py",             # ~95: `pqlml uplift` forward on 1,500 accounts
    "tests/test_init.py",                   # ~90: the README's five-minute path, twice
    "tests/test_discover.py",               # ~85: a 12,000-account company, two discoveries
    "tests/test_refresh.py",                # ~75: the incremental-refresh property test
    "tests/test_buyers.py",                 # ~60: the buyer model, 20,000 accounts for issue 26
    "tests/test_second_world_touches.py",   # ~60: uplift and a pilot on 2,000 foreign workspaces
    "tests/test_uplift_scores.py",          # ~50: train with the scores' uplift, twice
    "tests/test_retrain.py",                # ~55: monthly champion/challenger, concurrency
    "tests/test_features.py",               # ~45: two leak-freedom property tests
    "notebooks/02_model_vs_rules.ipynb",    # 42
    "tests/test_memberships.py",            # ~40: two property tests, every vendor export
    "tests/test_user_level.py",             # ~35
    "tests/test_uplift_run.py",             # ~30: pqlml.uplift forward on a 3,000-account world
    "tests/test_demo.py",                   # ~30
    "tests/test_track.py",                  # ~30 (its company shared since issue 25's D)
    "tests/test_report.py",                 # ~30
    "tests/test_experiment.py",             # ~25: 100 seeded holdouts, the analyze command
    "notebooks/01_signal_discovery.ipynb",  # 21
    "tests/test_second_world.py",           # ~20
    "notebooks/03_score_and_registry.ipynb",  # 19
    "tests/test_readme.py",                 # ~20
    "tests/test_score.py",                  # ~20
    "tests/test_simulate_touches.py",       # ~15: touched companies simulated several ways
    "tests/test_uplift.py",                 # ~15: the learners on 20,000-row worlds
)


def pytest_collection_modifyitems(config, items):
    """Longest files first (HEAVY_FIRST's order), then the rest as collected."""
    rank = {path: i for i, path in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


@pytest.fixture(scope="session")
def shared_company(tmp_path_factory, worker_id):
    """``shared_company(n_accounts=, seed=, months=)``: the folder of a simulated company
    made once per session for every module and both workers (``simulated.shared_company``;
    give a test its own config over it with ``simulated.company_config``)."""
    from simulated import shared_company as made

    base = tmp_path_factory.getbasetemp()
    if worker_id != "master":            # xdist: each worker's basetemp is inside the run's
        base = base.parent
    return lambda **args: made(base / "companies", **args)
