"""Signal discovery, checked against the simulator's known truth and independent fits."""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from pqlml.cli import main
from pqlml.discover import adjusted_effects, design, discover, scan
from pqlml.discover._scan import Candidate
from pqlml.errors import PqlmlError
from pqlml.model import feature_columns
from pqlml.project import open_project
from pqlml.simulate import simulate


@pytest.fixture(scope="module")
def company(tmp_path_factory):
    out = tmp_path_factory.mktemp("disc")
    sim = simulate(n_accounts=12_000, seed=21, out=out)
    drivers = pd.read_csv(out / "truth" / "drivers.csv")
    return sim.config, drivers[drivers.role != "intercept"]


@pytest.fixture(scope="module")
def project(company):
    config, _ = company
    return open_project(config)


def _discover(project, outcome, **kw):
    """The stage on the project's snapshots and tables, as ``pqlml discover`` runs it."""
    return discover(project.snapshots(outcome), outcome, events=project.events,
                    outcomes=project.outcome_events(outcome),
                    settings=kw.pop("settings", project.config), **kw)


def _frame(project, outcome="conversion"):
    """Labelled snapshots with the outcome as a boolean, and their feature columns."""
    frame = project.snapshots(outcome).astype({outcome: bool})
    return frame, feature_columns(frame)


@pytest.fixture(scope="module")
def conversion(project):
    return _discover(project, "conversion")


def test_every_true_driver_is_found(company, project, conversion):
    """Found = q <= 0.05 in the scan, in the right direction. One driver may be too weak
    alone: industry_fintech (fintech vs everyone else, and everyone else includes software,
    which converts even more) is found once adjusted, which is what the adjusted model is for."""
    _, drivers = company
    sig = conversion.signals
    masked = []
    for name in drivers.name[drivers.role == "driver"]:
        rows = sig[sig.feature == name]
        assert len(rows), name
        best = rows.sort_values("q_value").iloc[0]
        if best.q_value <= 0.05:
            assert best.lift > 1 and best.or_low > 1, name       # the right direction
        else:
            masked.append(name)
    assert masked in ([], ["industry_fintech"])
    frame, _ = _frame(project)
    table, _ = adjusted_effects(frame, "conversion", list(drivers.name[drivers.role == "driver"]),
                                transforms=dict(zip(drivers["name"], drivers["transform"])))
    adjusted = table.set_index("feature")
    for name in masked:
        assert adjusted.loc[name, "q_value"] <= 0.05 and adjusted.loc[name, "coef"] > 0
        # and discovery's own adjusted step finds it: its category tested whole, its level up
        row = conversion.adjusted.set_index("feature").loc[name]
        assert row.q_value_adjusted <= 0.05 and row.direction == "raises", row


def test_the_scan_matches_an_independent_two_by_two(conversion, project):
    frame, _ = _frame(project)
    row = conversion.signals[conversion.signals.rule == "events_terms_page_viewed_30d >= 1"].iloc[0]
    flag = frame.events_terms_page_viewed_30d >= 1
    y = frame.conversion
    a, b, c, d = (flag & y).sum(), (flag & ~y).sum(), (~flag & y).sum(), (~flag & ~y).sum()
    assert row.support == a + b and row.rate_with == pytest.approx(a / (a + b))
    assert row.odds_ratio == pytest.approx(a * d / (b * c))
    assert row.phi == pytest.approx(np.corrcoef(flag, y)[0, 1])
    assert row.recall == pytest.approx(a / (a + c))


def test_adjusted_model_finds_drivers_drops_distractors_and_controls_fdr(company, project):
    """With the truth's own transforms the conversion model is the true one: every driver
    keeps its sign, distractors and other behaviours are null, and among features reported
    (q <= 0.05) at most 10% are not drivers."""
    _, drivers = company
    frame, features = _frame(project)
    others = [f for f in features if f.startswith("events_") and f.endswith("_30d")
              and f not in set(drivers.name) and "velocity" not in f and "prev" not in f
              and "per_active" not in f and f != "events_30d"
              and "talk_to_sales" not in f and "demo_requested" not in f]
    candidates = list(drivers.name) + others
    transforms = dict(zip(drivers["name"], drivers["transform"]))
    table, notes = adjusted_effects(frame, "conversion", candidates, transforms=transforms)
    t = table.set_index("feature")
    reported = set(t.index[t.q_value <= 0.05])
    is_driver = set(drivers.name[drivers.role == "driver"])
    false = reported - is_driver
    assert len(false) / max(len(reported), 1) <= 0.10, (false, reported)
    for name, effect in zip(drivers.name, drivers.effect):
        if effect > 0:
            assert t.loc[name, "coef"] > 0, name
    for name in drivers.name[drivers.role != "driver"]:
        assert t.loc[name, "q_value"] > 0.05, name
    assert len(reported & is_driver) >= len(is_driver) - 2     # power: nearly all found


def test_distractors_vanish_once_adjusted_and_say_what_absorbs_them(company, conversion):
    """Each distractor's signal (every window, growth) is one group, not significant once
    the others are in; it separates converters alone, so it vanishes and names its absorber.
    The group is found by its event: the window the scan picks as the event's best rule need
    not be the one the truth is written in (30 or 90 days)."""
    _, drivers = company
    side = conversion.adjusted
    for name in drivers.name[drivers.role == "distractor"]:
        event = name.removeprefix("events_").rsplit("_", 1)[0]
        rows = side[side.members.str.split(";").map(
            lambda m: any(f.startswith(f"events_{event}_") for f in m))]
        assert len(rows) and (rows.group == event.replace("_", " ")).all(), name
        assert (rows.q_value_adjusted > 0.05).all(), rows
        own = rows[rows.feature == rows.feature.iloc[0]].iloc[0]
        if own.p_value_alone < 0.05:
            assert own.vanishes and isinstance(own.absorbed_by, str), own


def test_statsmodels_matches_unpenalised_scikit_learn(project):
    frame, _ = _frame(project)
    feats = ["active_users_30d", "events_30d", "employees", "events_terms_page_viewed_30d"]
    table, _ = adjusted_effects(frame, "conversion", feats, cluster=None)
    X = design(frame, feats)
    sk = LogisticRegression(C=np.inf, max_iter=5000, tol=1e-10).fit(X, frame.conversion)
    np.testing.assert_allclose(table.coef, sk.coef_[0], rtol=1e-4, atol=1e-6)


def test_clustered_errors_are_wider_than_naive_when_snapshots_repeat(project):
    frame, _ = _frame(project)
    feats = ["active_users_30d", "employees"]
    clustered, _ = adjusted_effects(frame, "conversion", feats)
    naive, _ = adjusted_effects(frame, "conversion", feats, cluster=None)
    np.testing.assert_allclose(clustered.coef, naive.coef)
    assert ((clustered.or_high - clustered.or_low) > (naive.or_high - naive.or_low)).all()


@pytest.fixture(scope="module")
def hand_raise_cli(company, tmp_path_factory):
    """``pqlml discover --outcome hand_raise`` run once: its folder and what it printed. The
    CLI's tables are what the hand-raise tests read (one discovery, not one per test)."""
    config, _ = company
    out = tmp_path_factory.mktemp("hand_raise")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["discover", "--config", str(config), "--outcome", "hand_raise",
                     "--out", str(out)])
    return code, out, printed.getvalue()


def test_pricing_is_outcome_adjacent_for_hand_raise_and_no_driver_is(company, hand_raise_cli):
    _, drivers = company
    _, out, _ = hand_raise_cli
    adj = pd.read_csv(out / "signals.adjacent.csv").set_index("event")
    assert adj.loc["pricing_page_viewed", "adjacent"]
    events = {n.removeprefix("events_").rsplit("_", 1)[0] for n in drivers.name[
        drivers.role == "driver"] if n.startswith("events_")}
    assert not adj.adjacent.reindex(sorted(events)).fillna(False).any()
    best = pd.read_csv(out / "signals.best.csv").set_index("signal")
    assert best.loc["pricing_page_viewed", "adjacent"]


def test_separation_is_detected_and_refitted_with_a_penalty():
    rng = np.random.default_rng(0)
    y = rng.random(400) < 0.3
    frame = pd.DataFrame({"account_id": np.arange(400) % 50, "y": y,
                          "leak": y.astype(float) * 5, "noise": rng.normal(size=400)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table, notes = adjusted_effects(frame, "y", ["leak", "noise"])
    assert table.method.str.startswith("L2").all() and table.p_value.isna().all()
    assert any("separation" in n for n in notes)


def test_collinear_and_constant_features_are_reported():
    rng = np.random.default_rng(1)
    a = rng.normal(size=500)
    frame = pd.DataFrame({"account_id": np.arange(500), "y": rng.random(500) < 0.3, "a": a,
                          "b": a + rng.normal(scale=0.05, size=500), "c": 2 * a, "k": 1.0})
    table, notes = adjusted_effects(frame, "y", ["a", "b", "c", "k"])
    assert set(table.feature) == {"a", "b"}
    text = " ".join(notes)
    assert "k is constant" in text and "c is a linear combination" in text and "VIF" in text


def test_scan_skips_constant_features_and_too_few_positives_is_an_error(project):
    from dataclasses import replace

    from scipy.stats import fisher_exact

    from pqlml.discover import candidates

    frame = pd.DataFrame({"x": [1, 2, 3, 4], "k": [5] * 4, "y": [True, False, False, False]})
    out = scan(frame, "y", [Candidate("x", "x", 2.0)])
    assert out.support.iloc[0] == 3
    assert out.p_value.iloc[0] == pytest.approx(fisher_exact([[0, 3], [1, 0]])[1])
    cands, skipped = candidates(frame, ["x", "k"], (1, 2), (0.5,))
    assert skipped.to_dict("records") == [{"feature": "k", "reason": "constant"}]
    assert [c.feature for c in cands] == ["x"]
    cfg = project.config
    settings = replace(cfg, discover=replace(cfg.discover, min_positives=100_000))
    with pytest.raises(PqlmlError, match="fewer than discover.min_positives = 100000"):
        _discover(project, "conversion", settings=settings)


def test_cli_writes_the_table_and_heatmaps(hand_raise_cli):
    code, out, printed = hand_raise_cli
    assert code == 0
    table = pd.read_csv(out / "signals.csv")
    assert {"rule", "support", "lift", "phi", "odds_ratio", "or_low", "or_high", "p_value",
            "q_value", "adjacent"} <= set(table.columns)
    assert (out / "signals_plots" / "soc2_report_downloaded.png").stat().st_size > 5000
    assert (out / "signals.best.csv").exists() and "best rule per signal" in printed


def test_declared_adjacent_events_are_marked_even_when_never_seen():
    import ibis

    from pqlml.discover import adjacent_events

    day = pd.Timestamp("2024-03-01", tz="UTC")
    events = ibis.memtable({"account_id": ["a1"] * 2, "event": ["login", "pricing"],
                            "ts": [day - pd.Timedelta(days=40), day - pd.Timedelta(hours=5)]})
    outcomes = ibis.memtable({"account_id": ["a1"], "ts": [day], "outcome": ["hand_raise"]})
    table = adjacent_events(events, outcomes, "hand_raise", gap_days=2, ratio=3,
                            declared=["pricing", "demo_requested"]).set_index("event")
    assert table.adjacent.to_dict() == {"pricing": True, "demo_requested": True}
    assert table.loc["demo_requested", "reason"] == "declared in the config"
    assert table.loc["pricing", "near"] == 1      # login is 40 days before: in neither window


def test_an_events_growth_columns_are_no_window_volumes():
    from pqlml.discover._scan import event_volumes

    feats = ["events_invite_sent_30d", "events_invite_sent_prev_30d", "events_prev_30d",
             "events_invite_sent_velocity_30d", "events_velocity_30d",
             "events_per_active_user_30d", "active_users_invite_sent_30d"]
    assert event_volumes(feats, (30,)) == {"events_invite_sent_30d": ("invite_sent", 30)}
    # with the growth family off, an event named x_prev keeps its own volume
    assert event_volumes(["events_x_prev_30d"], (30,)) == {"events_x_prev_30d": ("x_prev", 30)}


def _size_world(n=6000, seed=1):
    """Company size drives the outcome, webinars ride on size only, security views drive it
    and SSO views copy security views (no effect of their own)."""
    rng = np.random.default_rng(seed)
    size = rng.gamma(2.0, 2.0, n)
    frame = pd.DataFrame({"account_id": np.arange(n) // 3, "size": size,
                          "webinars": rng.poisson(size / 2), "security": rng.poisson(1.0, n)})
    frame["sso"] = frame.security + (rng.random(n) < 0.03)
    eta = -3 + 0.35 * size + 0.8 * np.log1p(frame.security)
    frame["y"] = rng.random(n) < 1 / (1 + np.exp(-eta))
    return frame


def test_transforms_are_chosen_by_the_shape_of_the_effect():
    from pqlml.discover import choose_transforms

    rng = np.random.default_rng(4)
    n = 20_000
    x = rng.poisson(3.0, n)
    wide = rng.integers(0, 100, n)
    flag = rng.random(n) < 0.5
    frame = pd.DataFrame({"x": x, "wide": wide, "flag": flag.astype(int),
                          "neg": rng.normal(size=n)})
    eta = -2 + 1.2 * (x > 0) + 0.03 * wide + 0.5 * flag
    frame["y"] = rng.random(n) < 1 / (1 + np.exp(-eta))
    chosen = choose_transforms(frame, "y", ["x", "wide", "flag", "neg"])
    assert chosen == {"x": "indicator", "wide": "identity", "flag": "identity",
                      "neg": "identity"}
    heavy = rng.negative_binomial(1, 0.02, n)              # counts from 0 to several hundred
    frame = pd.DataFrame({"heavy": heavy})
    frame["y"] = rng.random(n) < 1 / (1 + np.exp(-(-4 + 0.6 * np.log1p(heavy))))
    assert choose_transforms(frame, "y", ["heavy"])["heavy"] == "log1p"


def test_collinear_signals_are_one_group_and_a_vanished_signal_names_its_absorber():
    from pqlml.discover import adjust

    frame = _size_world()
    table, notes = adjust(frame, "y", ["webinars", "security", "sso"], controls=["size"])
    t = table.set_index("feature")
    group = t.loc[t.group == "security or sso"]
    assert len(group) == 1 and set(group.members.iloc[0].split(";")) == {"security", "sso"}
    assert group.q_value_adjusted.iloc[0] <= 0.05 and group.odds_ratio_adjusted.iloc[0] > 1
    # webinars separate the outcome alone, through size only: they vanish, absorbed by size
    assert t.loc["webinars", "p_value_alone"] < 1e-6
    assert t.loc["webinars", "vanishes"] and t.loc["webinars", "absorbed_by"] == "size"
    assert any("size carries its effect" in n for n in notes)
    assert pd.isna(t.loc["size", "absorbed_by"]) and not t.loc["size", "vanishes"]
    # the odds ratio is per standard deviation of the chosen transform (log1p for security)
    assert group["transform"].iloc[0] in ("log1p", "sqrt")


def test_a_category_is_tested_whole_and_a_level_behind_a_stronger_one_is_found():
    from pqlml.discover import adjust

    rng = np.random.default_rng(7)
    n = 30_000
    level = rng.choice(["software", "fintech", "retail", "health"], n, p=[0.3, 0.15, 0.3, 0.25])
    frame = pd.DataFrame({f"industry_{v}": (level == v).astype(int)
                          for v in ("software", "fintech", "retail", "health")})
    frame["account_id"] = np.arange(n)
    eta = -3 + 0.6 * (level == "software") + 0.35 * (level == "fintech")
    frame["y"] = rng.random(n) < 1 / (1 + np.exp(-eta))
    table, notes = adjust(frame, "y", list(frame.columns[:4]))
    t = table.set_index("feature")
    assert set(t.index) == {f"industry_{v}" for v in ("software", "fintech", "retail", "health")}
    assert t.group.nunique() == 1 and t.q_value_adjusted.max() <= 1
    # effect-coded: each level against the average level, fintech above it, retail below
    assert t.loc["industry_fintech", "odds_ratio_adjusted"] > 1
    assert t.loc["industry_fintech", "q_value_adjusted"] <= 0.05
    assert t.loc["industry_retail", "or_high_adjusted"] < 1
    # fintech against everyone else (software included) is the weak comparison of the scan
    assert t.loc["industry_fintech", "odds_ratio_alone"] < t.loc["industry_fintech",
                                                                 "odds_ratio_adjusted"]


@pytest.mark.slow
def test_second_world_reports_sso_with_security_and_pdf_exports_as_negative(tmp_path):
    import importlib.util
    import sys
    from pathlib import Path

    from pqlml import runner

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "worlds" / "second_world.py"
    spec = importlib.util.spec_from_file_location("second_world", path)
    world = importlib.util.module_from_spec(spec)
    sys.modules["second_world"] = world
    spec.loader.exec_module(world)
    config = world.write_world(tmp_path / "world", 2000, 12, 0)  # experiments/discovery_truth
    found = runner.discover(config, tmp_path / "signals").found
    adjusted = found.adjusted
    sso = adjusted[adjusted.members.str.contains("events_sso_page_viewed_")]
    # one group (a row per column it enters with), reported under both names, significant
    assert sso.group.nunique() == 1 and "events_security_settings_viewed_30d" in \
        sso.members.iloc[0].split(";")
    assert set(sso.group.iloc[0].split(" or ")) == {"security settings viewed",
                                                    "sso page viewed"}
    assert (sso.q_value_adjusted <= 0.05).all()
    pdf = adjusted[adjusted.members.str.contains("events_pdf_exported_")]
    assert (pdf.q_value_adjusted <= 0.05).all() and (pdf.direction == "lowers").all()
    distractors = [a.lower().replace(" ", "_") for a in world.DISTRACTORS]
    alone = adjusted[adjusted.members.map(lambda m: all(
        any(f"events_{d}_" in x for d in distractors) for x in m.split(";")))]
    assert not (alone.q_value_adjusted <= 0.05).any(), alone
