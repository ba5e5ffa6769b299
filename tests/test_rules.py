"""Hand-set rules, fit, funnels, tiers, attribution and the playbook."""

import numpy as np
import pandas as pd
import pytest

from pqlml.config import FitConfig, FunnelsConfig
from pqlml.errors import ConfigError
from pqlml.rules import (Rule, assign, evaluate_rules, fit_flags, funnel_of, motion_for,
                         parse_rules, report, wilson)
from pqlml.project import open_project

# The published PQL definitions, written as teams write them, each with rows that sit on
# either side of every threshold: (expression, hand-built rows, expected flags).
PUBLISHED = {
    "invited 3+ coworkers and sent 1,000+ messages": (
        "events_invite_sent_30d >= 3 and events_message_sent_30d >= 1,000",
        {"events_invite_sent_30d": [3, 2, 3, 10], "events_message_sent_30d": [1000, 5000, 999, 1001]},
        [True, False, False, True]),
    "1,000+ blocks shared with 3+ team members": (
        "events_block_shared_30d >= 1,000 and active_users_30d >= 3",
        {"events_block_shared_30d": [1000, 999, 4000], "active_users_30d": [3, 9, 2]},
        [True, False, False]),
    "sent 1,000+ emails per month": (
        "events_email_sent_30d >= 1,000",
        {"events_email_sent_30d": [1000, 999, np.nan]},
        [True, False, False]),
    "created 10 boards and have 20 daily active users": (
        "events_board_created_30d >= 10 and active_users_1d >= 20",
        {"events_board_created_30d": [10, 9, 12], "active_users_1d": [20, 40, 19]},
        [True, False, False]),
    "made > 100 API calls in the last 30 days and bought a phone number": (
        "events_api_call_30d > 100 and events_phone_number_purchased_90d >= 1",
        {"events_api_call_30d": [101, 100, 500], "events_phone_number_purchased_90d": [1, 1, 0]},
        [True, False, False]),
    "7+ active users": (
        "active_users_30d >= 7", {"active_users_30d": [7, 6, 70]}, [True, False, True]),
}


@pytest.mark.parametrize("label", PUBLISHED)
def test_published_definitions_flag_the_right_rows(label):
    text, rows, expected = PUBLISHED[label]
    assert Rule.parse("r", text).evaluate(pd.DataFrame(rows)).tolist() == expected


def test_levels_build_on_earlier_rules():
    X = pd.DataFrame({"active_users_30d": [2, 7, 8], "events_task_created_30d": [0, 10, 60]})
    rules = parse_rules({"pql_1": "active_users_30d >= 7",
                         "pql_2": "pql_1 and events_task_created_30d >= 50",
                         "either": "not pql_1 or (pql_2 and 1 < active_users_30d / 2 <= 4)"})
    flags = evaluate_rules(rules, X)
    assert flags.pql_1.tolist() == [False, True, True]
    assert flags.pql_2.tolist() == [False, False, True]
    assert flags.either.tolist() == [True, False, True]


@pytest.mark.parametrize("text", [
    "__import__('os').system('true')", "events_30d.__class__ >= 1", "[x for x in y]",
    "lambda: 1", "events_30d >= 'many'", "open('/etc/passwd')", "events_30d >= True"])
def test_anything_but_comparisons_is_refused(text):
    with pytest.raises(ConfigError, match="Rule 'r' .*at position"):
        Rule.parse("r", text)


def test_malformed_expression_points_at_the_position():
    with pytest.raises(ConfigError) as err:
        Rule.parse("folk", "active_users_30d >= and events_30d > 5")
    msg = str(err.value)
    assert "position 21" in msg and "\n    active_users_30d >= and events_30d > 5\n" \
        "                        ^" in msg


def test_unknown_feature_lists_the_closest_names():
    X = pd.DataFrame({"active_users_30d": [1], "active_users_7d": [1], "events_30d": [1]})
    with pytest.raises(ConfigError, match=r"unknown features: 'active_user_30d' \(closest: "
                       r"active_users_30d, active_users_7d"):
        Rule.parse("r", "active_user_30d >= 7").evaluate(X)


def test_a_number_is_not_a_condition():
    with pytest.raises(ConfigError, match="is not a condition"):
        Rule.parse("r", "events_30d + 1").evaluate(pd.DataFrame({"events_30d": [1]}))


def test_fit_flag_and_score_count_only_configured_criteria():
    frame = pd.DataFrame({"industry": ["Software", "retail", "software", None],
                          "employees": [60, 60, 20_000, 60], "country": ["us", "US", "DE", "US"],
                          "work_email_share": [1.0, 1.0, 0.4, np.nan]})
    fit = fit_flags(frame, FitConfig(industries=("software",), employees_min=50,
                                     employees_max=5000, countries=("US",)))
    assert fit.fit.tolist() == [True, False, False, False]
    assert fit.fit_score.tolist() == [1.0, 0.75, 0.25, 0.5]
    assert fit_flags(frame, FitConfig(require_work_email=False)).fit.all()


def test_funnels_route_by_fit_usage_users_size_and_buyer():
    frame = pd.DataFrame({"events_30d": [50, 50, 50, 50, 1, 50],
                          "active_users_30d": [4, 4, 4, 1, 4, 4],
                          "employees": [40, 900, 900, 40, 40, 40],
                          "buyer_title_present": [0, 1, 0, 1, 1, 1]})
    fit = pd.Series([True, True, True, True, True, False])
    got = funnel_of(frame, fit, FunnelsConfig(usage="events_30d >= 10",
                                              several_users="active_users_30d >= 2"))
    # small + users; buyer + users; large, no buyer; one user; no usage; not ICP
    assert got.tolist() == ["pql", "pql", "pqa", "self_serve", "self_serve", "self_serve"]


def test_playbook_most_specific_override_wins():
    overrides = {"tier_1/*/*": "call", "tier_1/enterprise/*": "enterprise team",
                 "*/*/simple": "nudge"}
    assert motion_for("tier_1", "enterprise", "simple", overrides) == "enterprise team"
    assert motion_for("tier_1", "smb", "complex", overrides) == "call"
    assert motion_for("tier_3", "smb", "simple", overrides) == "nudge"
    assert motion_for("tier_2", "enterprise", "complex", {}) == "sales assist"
    assert motion_for("self_serve", "enterprise", "complex", {}) == "self-serve nudge"


def test_wilson_matches_the_closed_form():
    k, n, z = 7, 40, 1.959963984540054
    p = k / n
    centre, half = (p + z * z / (2 * n)), z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    lo, hi = wilson(k, n)
    assert lo == pytest.approx((centre - half) / (1 + z * z / n))
    assert hi == pytest.approx((centre + half) / (1 + z * z / n))
    assert np.isnan(wilson(0, 0)[0])


def _project(tmp_path):
    """Four accounts: usage with a buyer, usage with an outside lead, usage only, a lead only."""
    day = pd.Timestamp("2024-03-01", tz="UTC")
    accounts = pd.DataFrame({"account_id": ["a1", "a2", "a3", "a4"],
                             "domain": ["a1.io", "a2.io", "a3.io", "a4.io"],
                             "created_at": [day - pd.Timedelta(days=60)] * 4,
                             "employees": [100, 3000, 3000, 3000],
                             "industry": ["software"] * 4, "segment": ["smb", "enterprise",
                                                                      "enterprise", "enterprise"]})
    users = pd.DataFrame({"user_id": ["u1", "u2", "u3", "u4"],
                          "email": ["ceo@a1.io", "dev@a2.io", "dev@a3.io", "x@a4.io"],
                          "title": ["CEO", "Engineer", "Engineer", "Analyst"],
                          "signup_at": [day - pd.Timedelta(days=50)] * 4})
    events = pd.DataFrame({"ts": [day - pd.Timedelta(days=d) for d in (1, 2, 3) * 3],
                           "user_id": ["u1"] * 3 + ["u2"] * 3 + ["u3"] * 3,
                           "event": ["task_created"] * 9})
    leads = pd.DataFrame({"account_id": ["a2", "a4", "a3"],
                          "ts": [day - pd.Timedelta(days=5), day - pd.Timedelta(days=5),
                                 day + pd.Timedelta(days=5)],        # a3's lead comes later
                          "email": ["cfo@a2.io", "cto@a4.io", "cfo@a3.io"]})
    for name, df in {"accounts": accounts, "users": users, "events": events,
                     "leads": leads}.items():
        df.to_parquet(tmp_path / f"{name}.parquet")
    (tmp_path / "pqlml.toml").write_text("""
[data.events]\nsource = "events.parquet"\n[data.users]\nsource = "users.parquet"
[data.accounts]\nsource = "accounts.parquet"\n[data.leads]\nsource = "leads.parquet"
[fit]\nindustries = ["software"]\n[rules]\nbusy = "events_30d >= 3"
[tiers]\nintent_rule = "busy"
[funnels]\nusage = "events_30d >= 3"\nseveral_users = "active_users_30d >= 1"
[playbook]\ncomplexity = "complex"
""")
    return tmp_path / "pqlml.toml"


def _assign(project, as_of=None):
    """The rules' rows of the project's accounts at ``as_of`` (None: the schedule), as
    ``pqlml rules`` assigns them."""
    frame = project.with_attributes(project.features(as_of))
    return assign(frame, settings=project.config, leads=project.leads())


def test_attribution_buckets_and_motions_on_a_hand_built_project(tmp_path):
    got = _assign(open_project(_project(tmp_path)), "2024-03-01").set_index("account_id")
    assert got.bucket.to_dict() == {"a1": "pql", "a2": "pqa_mql", "a3": "pqa", "a4": "sales_led"}
    assert got.funnel.to_dict() == {"a1": "pql", "a2": "pqa", "a3": "pqa", "a4": "self_serve"}
    assert got.tier.to_dict() == {"a1": "tier_1", "a2": "tier_1", "a3": "tier_1",
                                  "a4": "tier_2"}
    assert got.motion.to_dict() == {"a1": "enterprise outreach", "a2": "enterprise outreach",
                                    "a3": "enterprise outreach", "a4": "sales assist"}


def test_report_on_a_simulated_company_tier_1_beats_self_serve(tmp_path):
    from pqlml.simulate import simulate

    sim = simulate(n_accounts=3000, seed=5, out=tmp_path / "sim", months=10)
    project = open_project(sim.config)
    found = report(_assign(project), project.labels())
    found.write(tmp_path / "out")
    rates = found.rates
    pooled = rates[rates.period == "all"].set_index(["kind", "group"])
    t1, ss = pooled.loc[("tier", "tier_1")], pooled.loc[("tier", "self_serve")]
    assert t1.entities > 50 and t1.conversion_low > ss.conversion_high
    # every tier, funnel and rule group is listed for every period, even when empty
    periods = rates.period.nunique()
    assert (rates.groupby(["kind", "group"]).size() == periods).all()
    assert {"tier_1", "tier_2", "tier_3", "self_serve"} <= set(rates[rates.kind == "tier"].group)
    for f in ("rates.csv", "tiers.csv", "rates.png", "hand_raise_rates.png"):
        assert (tmp_path / "out" / f).stat().st_size > 1000
