"""The simulated company's constants: what exists, how often, and the truth.

Every number the simulator draws from lives here, so the truth it writes
(``truth/drivers.csv``) is read from the same table the hazard uses.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

START = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
DAY = 86_400
WEEK_DAYS = 7
HORIZON_DAYS = 28          # every label window lies inside one calendar month
CONVERTER_HAND_RAISE = 0.6  # share of converters that hand-raise before buying

SEGMENTS = ("smb", "mid_market", "enterprise")
SEGMENT_P = (0.70, 0.22, 0.08)
EMPLOYEE_RANGE = ((5, 200), (200, 1_000), (1_000, 50_000))
TEAM_EXTRA = (2.5, 6.0, 12.0)       # Poisson mean of users beyond the first
SEAT_PRICE = (120.0, 180.0, 240.0)  # USD per user per year

INDUSTRIES = ("software", "fintech", "healthcare", "retail", "education",
              "manufacturing", "media", "nonprofit")
INDUSTRY_P = (0.26, 0.12, 0.11, 0.13, 0.10, 0.12, 0.10, 0.06)
COUNTRIES = ("US", "GB", "DE", "FR", "CA", "AU", "NL", "IN", "BR", "ES")
COUNTRY_P = (0.38, 0.12, 0.10, 0.07, 0.07, 0.05, 0.05, 0.07, 0.05, 0.04)
FREE_MAIL = ("gmail.com", "outlook.com", "yahoo.com", "hotmail.com", "icloud.com",
             "proton.me", "gmx.de", "aol.com")
BUYER_TITLES = ("VP Engineering", "VP Operations", "Head of Product", "Head of Data",
                "Director of Engineering", "Director of Marketing", "CTO", "CEO",
                "Founder", "COO")
OTHER_TITLES = ("Software Engineer", "Product Manager", "Designer", "Data Analyst",
                "Marketing Manager", "Customer Success Manager", "Operations Associate",
                "Project Manager", "Sales Representative", "Intern")
BUYER_TITLE_P = (0.22, 0.10, 0.07)  # by segment: founders sign up in small companies

# Core usage: per active user-week counts, split by the account's use-case profile.
CORE_EVENTS = ("task_created", "board_created", "message_sent", "api_call",
               "file_uploaded", "comment_added", "block_shared", "email_sent",
               "report_exported")
PROFILE_MIX = np.array([
    # task board  msg   api   file  cmnt  block email report
    [0.34, 0.06, 0.20, 0.02, 0.10, 0.14, 0.08, 0.02, 0.04],  # project teams
    [0.14, 0.02, 0.10, 0.52, 0.05, 0.05, 0.02, 0.04, 0.06],  # developers (API)
    [0.10, 0.03, 0.52, 0.02, 0.08, 0.10, 0.10, 0.02, 0.03],  # chat-first
    [0.10, 0.02, 0.08, 0.06, 0.06, 0.04, 0.04, 0.56, 0.04],  # email campaigns
])
PROFILE_P = (0.45, 0.20, 0.20, 0.15)

# Account-week behaviour: (event, base rate, extra rate while in a buying episode).
# Rates are Poisson means per account-week.
BEHAVIOUR_EVENTS = (
    ("admin_role_changed", 0.004, 0.05),
    ("terms_page_viewed", 0.008, 0.10),
    ("privacy_page_viewed", 0.008, 0.08),
    ("soc2_report_downloaded", 0.0, 0.06),      # scaled by segment below
    ("paid_trial_started", 0.002, 0.035),
    ("addon_trial_started", 0.004, 0.03),
    ("integration_connected", 0.02, 0.03),
    ("pricing_page_viewed", 0.10, 0.12),        # many non-buyers look at prices
    ("phone_number_purchased", 0.0, 0.0),       # only developer accounts, below
)
SOC2_SEGMENT = (0.25, 1.0, 1.6)
HAND_RAISE_EVENTS = ("talk_to_sales_clicked", "demo_requested")
OTHER_EVENTS = ("invite_sent", "help_center_viewed", "webinar_attended")
EVENT_TYPES = CORE_EVENTS + tuple(e for e, _, _ in BEHAVIOUR_EVENTS) + OTHER_EVENTS \
    + HAND_RAISE_EVENTS
EVENT_INDEX = {e: i for i, e in enumerate(EVENT_TYPES)}
# Activation checkpoints, in funnel order (each "at least once"); truth/snapshots.parquet
# holds the stage every account had reached at each as_of.
ACTIVATION = ("board_created", "invite_sent", "integration_connected")


@dataclass(frozen=True)
class Signal:
    """One row of the truth: a feature and its effect on the outcome's log-odds.

    ``transform`` says how the feature enters the linear predictor:
    ``log1p`` (log(1 + x)), ``log10``, ``indicator`` (x > 0) or ``identity``.
    """

    name: str
    transform: str
    effect: float            # on the log-odds of converting within the horizon
    effect_hand_raise: float  # on the log-odds of the non-converters' hand-raise hazard
    role: str                # "driver" | "distractor" | "outcome_adjacent"
    definition: str


SIGNALS = (
    Signal("active_users_30d", "log1p", 0.80, 0.60, "driver",
           "distinct users with any event in [as_of - 30d, as_of)"),
    Signal("events_velocity_30d", "identity", 0.45, 0.35, "driver",
           "log((events_30d + 1) / (events in [as_of - 60d, as_of - 30d) + 1))"),
    Signal("events_30d", "log1p", 0.15, 0.10, "driver",
           "all events in [as_of - 30d, as_of)"),
    Signal("events_terms_page_viewed_30d", "indicator", 0.70, 0.50, "driver",
           "terms_page_viewed events in [as_of - 30d, as_of)"),
    Signal("events_privacy_page_viewed_30d", "indicator", 0.50, 0.40, "driver",
           "privacy_page_viewed events in [as_of - 30d, as_of)"),
    Signal("events_soc2_report_downloaded_90d", "indicator", 0.90, 0.60, "driver",
           "soc2_report_downloaded events in [as_of - 90d, as_of)"),
    Signal("events_admin_role_changed_90d", "indicator", 0.50, 0.40, "driver",
           "admin_role_changed events in [as_of - 90d, as_of)"),
    Signal("events_paid_trial_started_90d", "indicator", 0.70, 0.90, "driver",
           "paid_trial_started events in [as_of - 90d, as_of)"),
    Signal("events_addon_trial_started_90d", "indicator", 0.40, 0.50, "driver",
           "addon_trial_started events in [as_of - 90d, as_of)"),
    Signal("employees", "log10", 0.40, 0.20, "driver", "account employees"),
    Signal("industry_software", "indicator", 0.50, 0.30, "driver",
           "account industry == 'software'"),
    Signal("industry_fintech", "indicator", 0.30, 0.20, "driver",
           "account industry == 'fintech'"),
    Signal("buyer_title_present", "indicator", 0.40, 0.50, "driver",
           "a user who signed up before as_of has a buyer title (VP, Head of, Director, C-level, Founder)"),
    Signal("events_webinar_attended_90d", "indicator", 0.0, 0.0, "distractor",
           "webinar_attended events in [as_of - 90d, as_of); tracks company size only"),
    Signal("events_help_center_viewed_30d", "log1p", 0.0, 0.0, "distractor",
           "help_center_viewed events in [as_of - 30d, as_of); visited by many non-buyers"),
    Signal("events_pricing_page_viewed_30d", "indicator", 0.0, 0.0, "outcome_adjacent",
           "pricing_page_viewed events in [as_of - 30d, as_of); also viewed in the days before a hand-raise"),
)
INTERCEPT = -7.45          # conversion: about 2% of eligible accounts a month
INTERCEPT_HAND_RAISE = -6.2


def apply_transform(transform: str, x: np.ndarray) -> np.ndarray:
    """Map a raw feature to the scale on which it enters the log-odds."""
    x = np.asarray(x, dtype=float)
    if transform == "log1p":
        return np.log1p(x)
    if transform == "log10":
        return np.log10(np.maximum(x, 1.0))
    if transform == "indicator":
        return (x > 0).astype(float)
    if transform == "identity":
        return x
    raise ValueError(f"Unknown transform {transform!r}.")
