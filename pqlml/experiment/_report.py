"""The files of ``pqlml experiment analyze``: numbers, the per-segment table, the balance
table, a figure of the effects with their CIs and one self-contained HTML page."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..report import REPORT_NAME, Page, Section

__all__ = ["EXPERIMENT_FILES", "effects_plot", "experiment_page", "write_experiment", "names_text"]

#: What :func:`write_experiment` writes into its folder.
EXPERIMENT_FILES = ("experiment.json", "experiment_segments.csv", "balance.csv", "effects.png",
                    REPORT_NAME)


def names_text(names) -> str:
    """The experiments analysed, in a title: all of up to three, else the first and last.

    Examples
    --------
    >>> names_text(["t-2024-02", "t-2024-03", "t-2024-04", "t-2024-05"])
    't-2024-02 .. t-2024-05 (4 experiments)'
    """
    names = list(names)
    return ", ".join(names) if len(names) <= 3 else \
        f"{names[0]} .. {names[-1]} ({len(names)} experiments)"


def effects_plot(effects: pd.DataFrame, truth: dict | None = None, *, ax=None):
    """The incremental conversion rate per segment (pooled first) with its CI, in
    probability points; the simulator's true average effect as a cross where known."""
    from ..figures import panel

    fig, ax = panel(ax, size=(6.5, 0.55 * len(effects) + 1.6))
    rows = effects.iloc[::-1].reset_index(drop=True)
    y = range(len(rows))
    pts = 100 * rows.effect
    ax.errorbar(pts, y, xerr=[pts - 100 * rows.ci_low, 100 * rows.ci_high - pts], fmt="o",
                color="#3b73b9", ecolor="#3b73b9", capsize=4, label="estimate, 95% CI")
    if truth:
        known = [(i, 100 * truth[s]) for i, s in enumerate(rows.segment) if s in truth]
        if known:
            ax.plot([v for _, v in known], [i for i, _ in known], "x", color="#c0392b",
                    markersize=9, label="true average effect (simulator)")
    ax.axvline(0, color="#888", lw=1)
    ax.set_yticks(list(y), [f"{s}\n{t:,} touched, {h:,} held out" for s, t, h in
                            zip(rows.segment, rows.n_touch, rows.n_holdout)])
    ax.set_xlabel("incremental conversions per 100 touches (touch - holdout)")
    ax.legend(loc="best", fontsize=8)
    return fig


def _effect_text(row) -> str:
    if pd.isna(row.effect):
        return "-"
    return f"{100 * row.effect:+.2f} [{100 * row.ci_low:+.2f}, {100 * row.ci_high:+.2f}]"


def experiment_page(summary: dict, effects: pd.DataFrame, balance: pd.DataFrame, figure) -> Page:
    """The report: the pooled effect first, then segments, balance, periods, left out."""
    pooled = effects.iloc[0]
    conf = f"{1 - summary['alpha']:.0%}"
    numbers = {f"incremental conversions per 100 touches ({conf} CI)": _effect_text(pooled),
               "p-value": f"{pooled.p_value:.3g}" if pd.notna(pooled.p_value) else "-",
               "touched / held out": f"{pooled.n_touch:,} / {pooled.n_holdout:,}",
               "conversion touched / held out":
                   f"{pooled.rate_touch:.2%} / {pooled.rate_holdout:.2%}"}
    if "truth" in summary:
        numbers["true effect per 100 touches (simulator)"] = f"{100 * summary['truth']['all']:+.2f}"
    how = [f"Each assignment's outcome ({summary['outcome']}) is counted in the "
           f"{summary['horizon_days']} days from the assignment's day. The effect is the "
           "touched arm's conversion rate minus the held-out arm's: the conversions a touch "
           "adds, which a randomised holdout measures without the bias of targeting.",
           f"Brackets: {summary['ci']}. An account assigned in several periods counts as "
           "one cluster. An interval that excludes 0 is a significant effect.",
           "Balance: standardised mean differences of the features just before the "
           f"assignment; beyond {0.1} in absolute value the arms differ by more than chance "
           "usually makes them."]
    table = pd.DataFrame({
        "segment": effects.segment, "touched": effects.n_touch, "held out": effects.n_holdout,
        "conv. touched": effects.rate_touch.map("{:.2%}".format),
        "conv. held out": effects.rate_holdout.map("{:.2%}".format),
        f"per 100 touches ({conf} CI)": [_effect_text(r) for r in effects.itertuples()],
        "p-value": effects.p_value.map(lambda v: f"{v:.3g}" if pd.notna(v) else "-"),
        "note": effects.note})
    if "true_effect" in effects:
        table.insert(7, "true (simulator)", effects.true_effect.map(lambda v: f"{100 * v:+.2f}"))
    left = summary["left_out"]
    periods = pd.DataFrame(summary["periods"])
    sections = [Section("Incremental conversion per segment", [table, figure]),
                Section("Balance of the arms before assignment",
                        [balance.head(15).round(3) if len(balance) else "(not checked)"]),
                Section("Assignments per period", [periods]),
                Section("Left out", [f"{left['converted_before']:,} assignments of accounts "
                                     f"that had converted before; {left['censored']:,} whose "
                                     f"horizon runs past the end of the data; "
                                     f"{left['no_outcome']:,} without an outcome."]
                        + list(summary["notes"]))]
    return Page(f"Experiment: {names_text(summary['experiments'])}", numbers, how, sections,
                subtitle=f"pqlml experiment analyze: {summary['analysed']:,} assignments of "
                         f"{summary['accounts']:,} accounts.")


def write_experiment(found, out) -> list[Path]:
    """:data:`EXPERIMENT_FILES` into ``out``, landing together."""
    from ..outputs import save_figure, write_files

    out = Path(out)
    figure = effects_plot(found.effects, found.summary.get("truth"))
    files = {out / "experiment.json": found.summary,
             out / "experiment_segments.csv": found.effects,
             out / "balance.csv": found.balance,
             out / REPORT_NAME: experiment_page(found.summary, found.effects, found.balance,
                                                figure).html()}
    written = write_files(files)
    written.insert(3, save_figure(figure, out / "effects.png"))
    return written
