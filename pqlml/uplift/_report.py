"""The report of ``pqlml uplift``: ``metrics.json``, ``uplift_segments.csv``, ``qini.png``,
``gains.png`` and one self-contained ``report.html``; and its MLflow logging. Every file holds
aggregates (per policy, per segment): no account id or email is written or logged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..outputs import save_figure, write_frame, write_json
from ..report import REPORT_NAME, Page, Section

__all__ = ["UPLIFT_FILES", "write_report", "qini_plot", "gains_at_capacity_plot", "log_uplift"]

#: What :func:`write_report` writes into its folder.
UPLIFT_FILES = ("metrics.json", "uplift_segments.csv", "qini.png", "gains.png", REPORT_NAME)

LABELS = {"uplift": "by uplift (pqlml)", "probability": "by probability to convert",
          "rules": "by the rules (most active)", "true_effect": "by the true effect (simulator)"}
COLOURS = {"uplift": "#1f6fb4", "probability": "#d9822b", "rules": "#7a7a7a",
           "true_effect": "#2a9d55"}


def qini_plot(curves: dict, *, basis: str, ax=None):
    """Qini curves (incremental conversions among the ranked rows) with 95% bootstrap bands,
    one per policy, and the random ranking's line."""
    from ..figures import panel

    fig, ax = panel(ax, size=(6.5, 4.5))
    for name, c in curves.items():
        x = np.r_[0, c.fraction]
        ax.plot(x, np.r_[0, c.qini], label=LABELS.get(name, name), color=COLOURS.get(name))
        ax.fill_between(c.fraction, c.qini_low, c.qini_high, alpha=0.15, color=COLOURS.get(name))
    if curves:
        c = next(iter(curves.values()))
        ax.plot(np.r_[0, c.fraction], np.r_[0, c.random], ls="--", color="black", lw=1,
                label="random")
    ax.set(xlabel="share of accounts ranked, best first",
           ylabel="incremental conversions (Qini)", title=f"Qini curves ({basis} rows)")
    ax.legend(fontsize=8)
    return fig


def gains_at_capacity_plot(policies: dict, *, capacity: int, ax=None):
    """Incremental conversions per 100 touches at capacity by policy: estimated (with its
    95% CI) and, on simulated data, true."""
    from ..figures import panel

    fig, ax = panel(ax, size=(6.5, 4))
    names = [n for n in LABELS if n in policies]
    y = np.arange(len(names))
    est = [policies[n]["estimated_per_100"] for n in names]
    ci = np.array([policies[n].get("estimated_per_100_ci", [np.nan, np.nan]) for n in names])
    ax.errorbar(est, y - 0.12, xerr=np.abs(ci.T - est), fmt="o", color="#1f6fb4", capsize=3,
                label="estimated (AIPW, 95% CI)")
    true = [policies[n].get("true_per_100") for n in names]
    if all(v is not None for v in true):
        ax.plot(true, y + 0.12, "D", color="#2a9d55", label="true (simulator)")
    ax.axvline(0, color="black", lw=0.8)
    ax.invert_yaxis()                       # pqlml's ranking first
    ax.set_yticks(y, [LABELS[n] for n in names])
    ax.set(xlabel="incremental conversions per 100 touches",
           title=f"At capacity ({capacity:,} touches a period)")
    ax.legend(fontsize=8)
    return fig


def _policy_table(policies: dict) -> pd.DataFrame:
    rows = []
    for n in (n for n in LABELS if n in policies):
        p = policies[n]
        ci = p.get("estimated_per_100_ci", [np.nan, np.nan])
        rows.append({"ranking": LABELS[n], "touches": p["touches"],
                     "estimated per 100": f"{p['estimated_per_100']:.2f} [{ci[0]:.2f}, {ci[1]:.2f}]",
                     **({"true per 100": f"{p['true_per_100']:.2f}",
                         "true incremental conversions": f"{p['true_total']:.1f}"}
                        if "true_per_100" in p else {})})
    return pd.DataFrame(rows)


def _numbers(m: dict) -> dict:
    p, out = m["policies"], {}
    if "uplift" in p:
        out["incremental per 100 touches (uplift ranking, estimated)"] = \
            f"{p['uplift']['estimated_per_100']:.2f}"
    for other in ("true_effect", "probability"):
        if p.get(f"uplift_vs_{other}") is not None:
            out[f"uplift ranking vs {LABELS[other].removeprefix('by ')} ({p['compared_on']})"] = \
                f"{p[f'uplift_vs_{other}']:.2f}x"
    if "uplift" in m["qini"]:
        q = m["qini"]["uplift"]
        out["Qini coefficient (uplift ranking)"] = (f"{q['coefficient']:.4f} "
                                                    f"[{q['coefficient_ci'][0]:.4f}, "
                                                    f"{q['coefficient_ci'][1]:.4f}]")
    out["unidentifiable segments"] = str(len(m["unidentifiable"]))
    return out


def write_report(found, out: str | Path) -> list[Path]:
    """Every file of :data:`UPLIFT_FILES` into folder ``out`` (each written atomically)."""
    out, m = Path(out), found.metrics
    qini = qini_plot(found.curves, basis=m["qini_rows"])
    gains = gains_at_capacity_plot(m["policies"], capacity=m["capacity"])
    written = [write_json(m, out / "metrics.json"),
               write_frame(found.segments, out / "uplift_segments.csv"),
               save_figure(qini, out / "qini.png"), save_figure(gains, out / "gains.png")]
    how = ["A propensity score ranks accounts by how likely they are to buy; this ranks them by "
           "how much a touch changes that (the effect on P(convert), probability points).",
           f"Each test period's {m['capacity']:,} best-ranked accounts are the ones called; "
           "'estimated' is doubly robust (AIPW) on the test rows, 'true' the simulator's.",
           "Segments without comparable touched and untouched accounts are unidentifiable: "
           "they are named below and never ranked."]
    segs = found.segments.drop(columns=[c for c in ("comparable_touched", "comparable_untouched")
                                        if c in found.segments])
    unid = pd.DataFrame([{"segment": s, "why": r} for s, r in m["unidentifiable"].items()])
    page = Page("Whom a call changes", numbers=_numbers(m), how_to_read=how,
                subtitle=f"learner {m['learner']}, outcome {m['outcome']}, "
                         f"{len(m['folds'])} test periods forward in time",
                sections=[Section("Policies at capacity", [_policy_table(m["policies"]), gains]),
                          Section("Qini and uplift", [qini]),
                          Section("Effect per segment", [m["overlap_verdict"], segs]),
                          Section("Unidentifiable segments", [unid])])
    written.append(page.write(out / REPORT_NAME))
    return written


def log_uplift(metrics: dict, out: str | Path) -> None:
    """The settings as params, every policy's figures and Qini coefficients as metrics, the
    report folder as artifacts."""
    import mlflow

    from ..track import _numbers as numbers

    mlflow.log_params({"learner": metrics["learner"], "capacity": metrics["capacity"],
                       "touch_window_days": metrics["touch_window_days"],
                       "min_overlap": metrics["min_overlap"], "qini_rows": metrics["qini_rows"],
                       "unidentifiable_segments": len(metrics["unidentifiable"])})
    for name, block in metrics["policies"].items():
        if isinstance(block, dict):
            mlflow.log_metrics(numbers(block, name))
        elif block is not None and name.startswith("uplift_vs_"):
            mlflow.log_metric(name, block)
    for name, block in metrics["qini"].items():
        mlflow.log_metrics(numbers(block, f"qini_{name}"))
    mlflow.log_artifacts(str(out), "uplift")
