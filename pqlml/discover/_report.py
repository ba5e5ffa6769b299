"""The discovery's page (``report.html``): the top signals with lift and q first, the
odds-ratio chart, the heatmaps of the strongest signals, and what survives adjustment."""

from __future__ import annotations

import pandas as pd

from ..report import Page, Section
from ._plots import MIN_CELL_SUPPORT, heatmap, top_signals_chart

__all__ = ["discovery_page", "top_table"]

#: Heatmaps drawn on the page: the strongest non-adjacent signals with a rule grid.
HEATMAPS = 4


def top_table(best: pd.DataFrame, top: int = 15) -> pd.DataFrame:
    """The best rule per signal, ranked, formatted for reading: rule, support, rate with,
    lift, phi, q, adjacent."""
    rows = best.head(top)
    return pd.DataFrame({
        "signal": rows.signal, "best rule": rows.rule,
        "support": rows.support.map("{:,.0f}".format),
        "rate with": rows.rate_with.map("{:.1%}".format),
        "lift": rows.lift.map("{:.2f}x".format),
        "phi": rows.phi.map("{:.3f}".format),
        "q": rows.q_value.map("{:.2g}".format),
        "adjacent": rows.adjacent.map({True: "yes", False: ""})})


def discovery_page(found, *, alpha: float = 0.05, top: int = 15) -> Page:
    """The page of ``found`` (a :class:`~pqlml.discover.Discovery`)."""
    outcome = found.outcome.replace("_", "-")
    best = found.best
    kept = best[(best.q_value <= alpha) & ~best.adjacent]
    numbers = {f"labelled snapshots ({found.positives:,} {outcome})": f"{found.rows:,}",
               "signals scanned": f"{best.signal.nunique():,}",
               f"significant, not adjacent (q <= {alpha:g})": f"{len(kept):,}"}
    if len(kept):
        lead = kept.iloc[0]
        numbers[f"top signal: {lead.rule} (q {lead.q_value:.2g})"] = f"{lead.lift:.2f}x lift"
    gone = found.adjusted[found.adjusted.vanishes].drop_duplicates("group")
    numbers["vanish once size and activity are controlled"] = f"{len(gone):,}"
    how = [f"Each signal is scanned as rules \"did it at least n times within d days\"; its "
           f"best rule is the significant one with the strongest association (phi). Lift is "
           f"the {outcome} rate with the rule over the rate without; q is the p-value "
           f"adjusted for the number of rules tested (Benjamini-Hochberg).",
           "Adjacent signals happen just before the outcome (a pricing page before a "
           "purchase): they describe it rather than predict it, and are left out of the "
           "adjusted model and of rules to act on.",
           f"In a heatmap, red cells raise the rate (lift above 1), blue lower it; grey cells "
           f"hold fewer than {MIN_CELL_SUPPORT} snapshots; * marks q <= {alpha:g}.",
           "The adjusted table fits every kept signal together with company size and "
           "activity: a signal that 'vanishes' was only a proxy for those (absorbed_by "
           "names what absorbed it)."]
    sections = [Section(f"Top signals for {outcome}", [top_table(best, top)])]
    if len(best):
        sections.append(Section("Odds ratio of each signal's best rule (95% CI)",
                                [top_signals_chart(best, outcome=found.outcome, top=top)]))
    scanned = found.signals[found.signals.days.notna()]
    shown = [s for s in kept.signal if s in set(scanned.signal)][:HEATMAPS]
    if shown:
        sections.append(Section("Heatmaps of the strongest signals", [
            heatmap(scanned[scanned.signal == s], outcome=found.outcome, alpha=alpha)
            for s in shown]))
    sections.append(Section("Alone vs adjusted for size, activity and the other signals",
                            [_adjusted(found.adjusted)]))
    if found.notes:
        sections.append(Section("Notes", list(found.notes)))
    if len(found.skipped):
        sections.append(Section("Not scanned", [found.skipped]))
    return Page(f"Signal discovery: {outcome}", numbers, how, sections,
                subtitle="pqlml discover: which product signals separate "
                         f"{outcome} from the rest.")


def _adjusted(adjusted: pd.DataFrame) -> pd.DataFrame:
    if adjusted.empty:
        return adjusted
    a = adjusted.drop_duplicates("group")
    cols = {"group": a.group, "members": a.members.str.replace(";", ", ")}
    for side in ("alone", "adjusted"):
        cols[f"odds ratio {side}"] = [f"{o:.2f} [{lo:.2f}, {hi:.2f}]" for o, lo, hi in zip(
            a[f"odds_ratio_{side}"], a[f"or_low_{side}"], a[f"or_high_{side}"])]
    cols["q adjusted"] = a.q_value_adjusted.map("{:.2g}".format)
    cols["vanishes"] = a.vanishes.map({True: "yes", False: ""})
    if "absorbed_by" in a:
        cols["absorbed by"] = a.absorbed_by
    return pd.DataFrame(cols)
