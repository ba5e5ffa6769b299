"""The ready ``pqlml.toml`` written beside a simulated company."""

from __future__ import annotations

import datetime as dt

TEMPLATE = '''\
# pqlml project config for a simulated product-led company (pqlml simulate).
# accounts={n_accounts} seed={seed}. Paths are relative to this file's folder.

[project]
name = "simulated-plg"
entity = "account"

[data]
root = "."

[data.events]
source = "events.parquet"

[data.users]
source = "users.parquet"

[data.accounts]
source = "accounts.parquet"

[data.outcomes]
source = "outcomes.parquet"

[data.enrichment]
# A firmographic vendor's file keyed by domain, with gaps: an account it does not cover
# gets enriched = 0 and "unknown" values, and is scored like any other.
source = "enrichment.csv"

# Marketing leads from the accounts' domains (demo requests, webinar sign-ups, downloads):
# mostly buyers outside the product, a few junior people (pqlml.simulate._buyers).
# `pqlml buyers` tells from them the accounts whose buyer is outside the product, a PQA's
# contact is its lead, and `pqlml rules` adds lead buckets.
[data.leads]
source = "leads.parquet"

[data.dispositions]
# What sales said about the leads it worked: accepted / rejected / converted, with a reason.
source = "dispositions.parquet"

[data.touches]
# Sales touches (emails, calls, meetings: pqlml.simulate._touches): mostly the most active
# accounts, plus a randomised experiment among all eligible accounts.
source = "touches.parquet"
{holdouts}
[outcomes]
# Product events that are explicit buying actions. Labels come from the outcomes
# table; these names mark the events so they are never presented as drivers.
hand_raise_events = ["talk_to_sales_clicked", "demo_requested"]
conversion_events = []
target = "conversion"

[schedule]
start = {start}
end = {end}
every = "month"

[labels]
# 28 days: every label window [as_of, as_of + 28d) lies inside one calendar month.
horizon_days = {horizon}

[fit]
# The ideal customer profile (ICP) sales uses today.
industries = ["software", "fintech", "healthcare"]
employees_min = 50
employees_max = 5000
countries = ["US", "GB", "DE", "FR", "CA", "AU", "NL"]
require_work_email = true

[features]
# Activation: ordered "first value" checkpoints, and an engagement score with decay.
activation = ["board_created >= 1", "invite_sent >= 1", "integration_connected >= 1"]
activation_within_days = 14
engagement_half_life_days = 14
enterprise_domains = "enterprise_domains.csv"

[features.engagement_weights]
task_created = 1
board_created = 3
message_sent = 0.5
file_uploaded = 1
report_exported = 2
invite_sent = 5
integration_connected = 8

[rules]
# The folk thresholds: "7+ active users and N+ tasks in the last 30 days", with N
# scaled to this product's volume (10 tasks here is about the top 3% of accounts).
folk_pqa = "active_users_30d >= 7 and events_task_created_30d >= 10"
seven_active_users = "active_users_30d >= 7"

[tiers]
intent_rule = "folk_pqa"
method = "rules"
precision_target = 0.2

[funnels]
# Self-serve unless ICP fit and real usage. Then PQL when several users and a small company
# or a buyer in the product (a buyer title, or buyer actions); PQA when several users of a
# larger company with no buyer in sight.
usage = "events_30d >= 20"
several_users = "active_users_30d >= 3"
small_company = "employees < 200"
buyer_in_product = "buyer_title_present >= 1 or events_pricing_page_viewed_30d >= 1 or events_paid_trial_started_90d >= 1 or events_invite_sent_30d >= 3"

[playbook]
# simple | intermediate | complex: how much help the product needs to be bought.
complexity = "intermediate"

[capacity]
# Sales touches per snapshot period.
per_period = {capacity}
'''


HOLDOUTS = '''
[data.holdouts]
# That experiment's assignments: each month's sample, half touched, half held out.
source = "holdouts.parquet"
'''


def render(n_accounts: int, seed: int, start: dt.date, end: dt.date, horizon: int,
           capacity: int, holdouts: bool = True) -> str:
    """The config; ``holdouts``: the company ran randomised experiments (else it has no
    holdouts table)."""
    return TEMPLATE.format(n_accounts=n_accounts, seed=seed, start=start.isoformat(),
                           end=end.isoformat(), horizon=horizon, capacity=capacity,
                           holdouts=HOLDOUTS if holdouts else "")
