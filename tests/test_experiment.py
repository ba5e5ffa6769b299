"""The randomised-holdout toolkit (pqlml.experiment): the plan's power against a seeded Monte
Carlo of the planned design, and the analysis's CI coverage of a known true average effect."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pqlml.errors import DataError, PqlmlError
from pqlml.experiment import design_power, estimate_effects, plan, standardised_differences


# --- plan ------------------------------------------------------------------------------

def _binomial_ci(hits: int, n: int, z: float = 2.58) -> tuple[float, float]:
    """Wilson 99% interval of a Monte Carlo rate."""
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


@pytest.mark.parametrize("capacity, base_rate, effect", [(400, 0.05, 0.02), (150, 0.10, 0.05)])
def test_planned_design_reaches_its_power_in_a_monte_carlo(capacity, base_rate, effect):
    """Draw the planned design's outcomes 20,000 times, test each with a two-sided
    two-proportion z test (unpooled, alpha 0.05: the analysis's test without clusters,
    every account once) and count rejections: the design reaches the stated power within
    the Monte Carlo's binomial CI, and the arcsine approximation is within 2 points of the
    simulated power (it is slightly conservative for unequal arms: 0.803 planned, 0.817
    simulated for 970 touched vs 530 held out)."""
    p = plan(capacity, base_rate, effect)
    assert p.achieved_power >= 0.8
    n1, n0 = p.touched * p.periods, p.holdout * p.periods
    rng = np.random.default_rng(27)
    reps = 20_000
    r1 = rng.binomial(n1, base_rate + effect, reps) / n1
    r0 = rng.binomial(n0, base_rate, reps) / n0
    se = np.sqrt(r1 * (1 - r1) / n1 + r0 * (1 - r0) / n0)
    rejected = int((np.abs(r1 - r0) / se > 1.959964).sum())
    low, high = _binomial_ci(rejected, reps)
    assert high >= p.power, (rejected / reps, p.power)
    assert abs(rejected / reps - p.achieved_power) < 0.02, (rejected / reps, p.achieved_power)


def test_a_longer_test_needs_a_smaller_holdout():
    p = plan(400, 0.05, 0.02)
    t = p.tradeoff
    assert t.periods.tolist() == list(range(p.periods, p.periods + 6))
    assert t.holdout_per_period.is_monotonic_decreasing
    assert (t.power >= 0.8).all()
    # the smallest holdout: one fewer does not reach the power
    fewer = design_power(0.02, 0.05, n_touch=p.periods * (p.touched + 1),
                         n_holdout=p.periods * (p.holdout - 1))
    assert fewer < 0.8
    assert p.as_dict()["withheld_touches_per_period"] == p.holdout


def test_plan_periods_too_few_and_bad_values_are_clear():
    with pytest.raises(PqlmlError, match=r"1 period\(s\) of 100 accounts cannot detect.*at least"):
        plan(100, 0.05, 0.01, periods=1)
    with pytest.raises(PqlmlError, match="'base_rate' parameter.*Got 1.5"):
        plan(100, 1.5, 0.01)
    with pytest.raises(PqlmlError, match="'effect' parameter"):
        plan(100, 0.5, 0.6)
    assert plan(400, 0.05, 0.4, relative=True).effect == pytest.approx(0.02)


# --- analysis: coverage of the true average effect ------------------------------------

SEGMENTS = np.array(["smb", "mid_market", "enterprise"])


def _company(rng, n=6_000):
    """Accounts with known conversion probabilities with (p1) and without (p0) a touch:
    mid-market and enterprise gain, small teams barely move, low intent loses a little."""
    segment = SEGMENTS[rng.choice(3, n, p=[0.6, 0.3, 0.1])]
    intent = rng.beta(1.2, 12, n)
    lift = np.select([segment == "smb", intent < 0.03], [0.002, -0.01], 0.06)
    return pd.DataFrame({"account_id": [f"a{i}" for i in range(n)], "segment": segment,
                         "p0": intent, "p1": np.clip(intent + lift, 0, 1)})


def _holdout(company, rng, periods=6, per_period=900):
    """One randomised experiment: each period a fresh random sample of accounts (an account
    may be drawn in several periods), half touched, half held out; outcomes drawn from the
    arm's probability."""
    rows = []
    for k in range(periods):
        picked = rng.choice(len(company), per_period, replace=False)
        arm = np.where(rng.permutation(per_period) < per_period // 2, "touch", "holdout")
        rows.append(company.iloc[picked].assign(arm=arm, period=k))
    frame = pd.concat(rows, ignore_index=True)
    p = np.where(frame.arm == "touch", frame.p1, frame.p0)
    return frame.assign(outcome=(rng.random(len(frame)) < p).astype(int))


def test_the_ci_covers_the_true_average_effect_in_at_least_90_of_100_holdouts():
    rng = np.random.default_rng(2027)
    company = _company(rng)
    covered, segment_covered, widths = 0, {s: 0 for s in SEGMENTS}, []
    for _ in range(100):
        frame = _holdout(company, rng)
        truth = (frame.p1 - frame.p0)
        e = estimate_effects(frame, segment="segment").set_index("segment")
        covered += e.ci_low["all"] <= truth.mean() <= e.ci_high["all"]
        widths.append(e.ci_high["all"] - e.ci_low["all"])
        for s in SEGMENTS:
            t = truth[frame.segment == s].mean()
            segment_covered[s] += e.ci_low[s] <= t <= e.ci_high[s]
    assert covered >= 90, covered
    assert min(segment_covered.values()) >= 88, segment_covered
    assert np.mean(widths) < 0.04         # informative, not covering by being wide


def test_effects_match_a_hand_computation_and_count_accounts_once():
    frame = pd.DataFrame({"account_id": ["a", "a", "b", "c", "d", "e"],
                          "arm": ["touch", "holdout", "touch", "touch", "holdout", "holdout"],
                          "outcome": [1, 0, 1, 0, 1, 0]})
    e = estimate_effects(frame).iloc[0]
    assert (e.n_touch, e.n_holdout, e.accounts) == (3, 3, 5)
    assert e.effect == pytest.approx(2 / 3 - 1 / 3)
    assert e.per_100_touches == pytest.approx(100 / 3)
    assert e.incremental_conversions == pytest.approx(1.0)


def test_bad_assignments_are_clear():
    ok = pd.DataFrame({"account_id": ["a", "b"], "arm": ["touch", "touch"], "outcome": [1, 0]})
    with pytest.raises(DataError, match="has no holdout rows"):
        estimate_effects(ok)
    with pytest.raises(DataError, match=r"arm column holds \['control'\]"):
        estimate_effects(ok.assign(arm=["touch", "control"]))
    with pytest.raises(DataError, match="lack column.*'outcome'"):
        estimate_effects(ok.drop(columns="outcome"))


# --- balance -----------------------------------------------------------------------------

def test_standardised_differences_flag_an_imbalanced_feature():
    rng = np.random.default_rng(5)
    arm = np.where(rng.random(2000) < 0.5, "touch", "holdout")
    frame = pd.DataFrame({"arm": arm, "fair": rng.normal(size=2000),
                          "skewed": rng.normal(size=2000) + (arm == "touch") * 0.5})
    b = standardised_differences(frame, ["fair", "skewed"]).set_index("feature")
    assert abs(b.smd["fair"]) < 0.1 and b.smd["skewed"] == pytest.approx(0.5, abs=0.1)
    assert b.imbalanced["skewed"] and not b.imbalanced["fair"]
    assert b.index.tolist() == ["skewed", "fair"]          # the largest difference first


# --- the commands ------------------------------------------------------------------------

def test_plan_command_writes_the_plan_it_prints(tmp_path, capsys):
    from pqlml.cli import main

    argv = ["experiment", "plan", "--capacity", "400", "--base-rate", "0.05", "--lift", "0.4",
            "--out", str(tmp_path / "plan")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    written = __import__("json").loads((tmp_path / "plan" / "plan.json").read_text())
    expected = plan(400, 0.05, 0.02)
    assert (written["periods"], written["holdout"]) == (expected.periods, expected.holdout)
    assert written["withheld_touches_per_period"] == expected.holdout
    assert f"withholds {expected.holdout:,} touches a period" in " ".join(out.split())
    assert "NormalIndPower" in " ".join(out.split())


@pytest.mark.parametrize("argv, message", [
    (["--effect", "0.02"], "needs --capacity and --base-rate, or --config"),
    (["--capacity", "400", "--base-rate", "1.5", "--effect", "0.02"],
     "argument --base-rate: expected a number strictly between 0 and 1; got '1.5'"),
    (["--capacity", "400", "--base-rate", "0.05"], "one of the arguments --effect --lift"),
])
def test_plan_command_bad_input_is_one_line_and_exit_2(argv, message, capsys):
    from pqlml.cli import main

    assert main(["experiment", "plan", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


# --- end to end on a simulated company (its holdouts table, issue 27's simulator) --------

@pytest.fixture()
def company(shared_company, tmp_path, monkeypatch):
    from simulated import company_config

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    sim = shared_company(n_accounts=1_500, seed=4, months=12)
    return sim, company_config(sim, tmp_path / "cfg")


def _independent_outcomes(sim, horizon=28) -> pd.DataFrame:
    """Each assignment's conversion in [day, day + horizon) from the files alone, accounts
    that converted before the day left out (pandas, not pqlml's labels)."""
    h = pd.read_parquet(sim / "holdouts.parquet")
    h["day"] = pd.to_datetime(h["at"], utc=True).dt.normalize()
    o = pd.read_parquet(sim / "outcomes.parquet")
    conv = o[o.outcome == "conversion"].assign(ts=lambda d: pd.to_datetime(d.ts, utc=True))
    first = conv.groupby("account_id").ts.min()
    h = h[~(h.account_id.map(first) < h.day)]
    j = h.reset_index().merge(conv[["account_id", "ts"]], on="account_id", how="left")
    hit = (j.ts >= j.day) & (j.ts < j.day + pd.Timedelta(days=horizon))
    y = hit.groupby(j["index"]).any()
    return h.assign(outcome=y.reindex(h.index).astype(int).to_numpy())


def test_analyze_command_on_a_simulated_holdout(company, tmp_path, capsys):
    import json

    import mlflow
    from mlflow.tracking import MlflowClient

    from pqlml.cli import main

    sim, config = company
    out = tmp_path / "exp"
    assert main(["experiment", "analyze", "--config", str(config), "--out", str(out)]) == 0
    shown = " ".join(capsys.readouterr().out.split())
    assert "Randomised holdout" in shown and "per 100 touches" in shown
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["experiment.json", "experiment_segments.csv", "balance.csv", "effects.png", "report.html"])
    found = json.loads((out / "experiment.json").read_text())
    # the pooled rates match an independent computation from the files
    rows = _independent_outcomes(sim)
    pooled = found["pooled"]
    for arm in ("touch", "holdout"):
        mine = rows[rows.arm == arm]
        assert pooled[f"n_{arm}"] == len(mine)
        assert pooled[f"rate_{arm}"] == pytest.approx(mine.outcome.mean())
    assert found["left_out"]["converted_before"] == found["assignments"] - len(rows) \
        - found["left_out"]["censored"]
    assert pooled["ci_low"] < pooled["effect"] < pooled["ci_high"]
    assert "truth" in found and found["truth"]["rows_matched"] == found["analysed"]
    from html_checks import external_urls, parse, text_of

    page = text_of(parse(out / "report.html"))
    assert "incremental conversions per 100 touches" in page and "Balance of the arms" in page
    assert not external_urls((out / "report.html").read_text())
    segments = pd.read_csv(out / "experiment_segments.csv")
    assert segments.segment.iloc[0] == "all" and set(segments.segment[1:]) <= {
        "smb", "mid_market", "enterprise"}
    assert segments.n_touch[1:].sum() == pooled["n_touch"]
    # tracked: aggregates only, no account ids
    mlflow.set_tracking_uri(f"sqlite:///{config.parent / 'mlflow.db'}")
    runs = MlflowClient().search_runs(
        [MlflowClient().get_experiment_by_name("simulated-plg").experiment_id])
    run = next(r for r in runs if r.data.tags["pqlml.command"] == "experiment")
    assert run.data.metrics["pooled_effect"] == pytest.approx(pooled["effect"])
    assert {"pooled_effect_ci_low", "pooled_effect_ci_high", "pooled_n_touch"} <= set(
        run.data.metrics)
    logged = json.dumps([run.data.params, run.data.metrics])
    assert not any(a in logged for a in rows.account_id.unique()[:50])


def test_plan_command_reads_capacity_and_base_rate_from_the_project(company, tmp_path):
    import json

    from pqlml.cli import main
    from pqlml.config import load_config

    sim, config = company
    assert main(["experiment", "plan", "--config", str(config), "--lift", "0.5",
                 "--out", str(tmp_path / "plan")]) == 0
    found = json.loads((tmp_path / "plan" / "plan.json").read_text())
    touches = pd.read_parquet(sim / "touches.parquet")
    at = pd.to_datetime(touches["at"], utc=True)
    cfg = load_config(config)
    days = pd.date_range(cfg.schedule.start, cfg.schedule.end, freq="MS", tz="UTC")
    per_day = [touches.account_id[(at >= d) & (at < d + pd.Timedelta(days=14))].nunique()
               for d in days]
    assert found["capacity"] == int(pd.Series([n for n in per_day if n]).median())
    assert 0 < found["base_rate"] < 0.2 and found["sources"]["base_rate"].startswith("the median")


def _with_holdouts(config, tmp_path, frame=None, *, name: str) -> str:
    """``config``'s text with its holdouts table replaced by ``frame`` (None: removed)."""
    text, out, skip = config.read_text(), [], False
    for line in text.splitlines():
        if line.startswith("["):
            skip = line.strip() == "[data.holdouts]"
        if not skip:
            out.append(line)
    if frame is not None:
        frame.to_parquet(tmp_path / f"{name}.parquet")
        out += ["[data.holdouts]", f'source = "{tmp_path / name}.parquet"']
    path = config.with_name(f"{name}.toml")
    path.write_text("\n".join(out) + "\n")
    return str(path)


def test_analyze_bad_input_is_clear_and_exit_2(company, tmp_path, capsys):
    from pqlml.cli import main

    sim, config = company
    h = pd.read_parquet(sim / "holdouts.parquet")
    cases = [(_with_holdouts(config, tmp_path, name="none"), [], "has no holdouts table"),
             (str(config), ["--experiment", "nope"], "No experiment named 'nope'"),
             (_with_holdouts(config, tmp_path, h[h.arm == "touch"], name="one_arm"), [],
              "holdout arm has no assignment to analyze")]
    for path, extra, message in cases:
        argv = ["experiment", "analyze", "--config", path, "--out", str(tmp_path / "o"),
                "--no-track", *extra]
        assert main(argv) == 2, message
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
