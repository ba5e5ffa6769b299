"""The scores' page (``report.html`` beside the score files): how many were scored and in
which tier, who was not scored and why, the accounts to call first with their reasons, and
the spread of probabilities per tier.

Examples
--------
>>> import pandas as pd
>>> from pqlml.score import Scores
>>> scores = pd.DataFrame({"account_id": ["a2", "a1"], "domain": ["b.io", "a.io"],
...     "as_of": pd.Timestamp("2025-07-01", tz="UTC"), "probability": [0.61, 0.08],
...     "tier": ["tier_1", "self_serve"], "motion": ["call", "nurture"],
...     "reason_1": ["(+) 9 active users", "(-) no logins"], "reason_2": "", "reason_3": ""})
>>> gone = pd.DataFrame({"account_id": ["a3"], "code": ["no_events"], "reason": ["no events"]})
>>> page = score_page(Scores(scores, gone, "pqlml/3"))
>>> page.numbers["accounts scored"], page.numbers["tier 1"], page.numbers["not scored"]
('2', '1', '1')
"""

from __future__ import annotations

import pandas as pd

from .report import Page, Section
from .tiers import TIERS

__all__ = ["score_page"]

#: Accounts (or users) listed with their reasons, best first.
TOP = 25


def score_page(found, *, top: int = TOP) -> Page:
    """The page of ``found`` (:class:`pqlml.score.Scores`)."""
    scores, gone = found.scores, found.not_scored
    key = scores.columns[0]
    who = key.split("_")[0] + "s"
    tiers = scores.tier.value_counts()
    as_of = (pd.Timestamp(scores.as_of.iloc[0]).strftime("%Y-%m-%d") if len(scores) else "-")
    numbers = {f"{who} scored": f"{len(scores):,}",
               **{t.replace("_", " "): f"{tiers.get(t, 0):,}" for t in TIERS},
               "not scored": f"{len(gone):,}", "as of": as_of, "model": found.version}
    how = ["Tier 1 is high intent and a good fit: call these first. Tier 2 is high intent "
           "with a weaker fit, Tier 3 a good fit not yet showing intent; self-serve is left "
           "to the product.",
           "Probability is the model's calibrated chance of the outcome within the label "
           "horizon; percentile ranks it among everyone scored today.",
           "Each reason compares the account with a typical one: (+) raises its score, (-) "
           "lowers it. The three strongest are listed.",
           f"Not scored: {who} the model cannot score today, with the reason; none is "
           "dropped silently."]
    per_tier = pd.DataFrame([{"tier": t, who: f"{tiers.get(t, 0):,}",
                              "share": f"{tiers.get(t, 0) / max(len(scores), 1):.1%}",
                              "mean probability": _pct(scores.probability[scores.tier == t].mean())}
                             for t in TIERS])
    reasons = (gone.groupby("code", sort=False).agg(count=("code", "size"),
                                                    example=("reason", "first"))
               .reset_index().sort_values("count", ascending=False, kind="stable")
               if len(gone) else gone)
    sections = [Section("Counts per tier", [per_tier, _spread(scores)]),
                Section(f"The {top} highest-scored {who}, with tier and reasons",
                        [_top(scores, key, top)]),
                Section("Not scored, by reason", [reasons])]
    return Page(f"Scores at {as_of}", numbers, how, sections,
                subtitle=f"pqlml score: every {who[:-1]} scored by {found.version}, with its "
                         "tier and reasons.")


def _pct(p) -> str:
    return "" if pd.isna(p) else f"{p:.1%}"


def _top(scores: pd.DataFrame, key: str, top: int) -> pd.DataFrame:
    rows = scores.head(top)
    table = {key: rows[key]}
    for col in ("domain", "email"):
        if col in rows:
            table[col] = rows[col]
    table |= {"probability": rows.probability.map(_pct), "tier": rows.tier}
    if "motion" in rows:
        table["motion"] = rows.motion
    for col in ("reason_1", "reason_2", "reason_3"):
        if col in rows:
            table[col.replace("_", " ")] = rows[col]
    return pd.DataFrame(table)


def _spread(scores: pd.DataFrame):
    """A histogram of the probabilities, one colour per tier."""
    import numpy as np

    from .figures import panel

    fig, ax = panel(size=(7, 3.2))
    p = scores.probability.to_numpy(float)
    bins = np.linspace(0, max(float(p.max(initial=0)), 1e-3), 31)
    parts = [(t, p[(scores.tier == t).to_numpy()]) for t in TIERS if (scores.tier == t).any()]
    if parts:
        ax.hist([v for _, v in parts], bins=bins, stacked=True,
                label=[t.replace("_", " ") for t, _ in parts])
        ax.legend(fontsize=8)
    ax.set_xlabel("probability")
    ax.set_ylabel(f"{scores.columns[0].split('_')[0]}s")
    ax.set_title("probabilities per tier")
    return fig
